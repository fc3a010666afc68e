#include "http/router.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "http/method.h"

typedef struct segment {
    sc_slice literal; /* empty ptr: a parameter */
    sc_slice param;
} segment;

typedef struct compiled {
    segment segs[SC_ROUTE_MAX_SEGMENTS];
    int nsegs;
} compiled;

struct sc_router {
    const sc_route *routes;
    compiled *compiled;
    size_t n;
};

const char *sc_method_name(unsigned method)
{
    switch (method) {
#define X(name, bit)                                                                                              \
    case SC_M_##name:                                                                                             \
        return #name;
        SC_METHOD_MAP(X)
#undef X
    }
    return NULL;
}

/* Splits "/a/b/c" into segments; "/" has none. Returns -1 when there are too many. */
static int split(sc_slice path, sc_slice *out, int max)
{
    int n = 0;
    size_t i = 0;
    if (path.len && path.ptr[0] == '/')
        i = 1;
    if (i == path.len)
        return 0;
    while (i <= path.len) {
        size_t start = i;
        while (i < path.len && path.ptr[i] != '/')
            i++;
        if (n == max)
            return -1;
        out[n++] = (sc_slice){path.ptr + start, i - start};
        i++;
    }
    return n;
}

sc_router *sc_router_new(const sc_route *routes, size_t n)
{
    sc_router *r = sc_calloc(sizeof(*r));
    r->routes = routes;
    r->n = n;
    r->compiled = sc_calloc(sizeof(compiled) * (n ? n : 1));
    for (size_t i = 0; i < n; i++) {
        sc_slice parts[SC_ROUTE_MAX_SEGMENTS];
        int np = split(sc_slice_cstr(routes[i].pattern), parts, SC_ROUTE_MAX_SEGMENTS);
        int nparams = 0;
        if (np < 0 || routes[i].pattern[0] != '/') {
            fprintf(stderr, "fatal: bad route pattern %s\n", routes[i].pattern);
            abort();
        }
        for (int k = 0; k < np; k++) {
            segment *s = &r->compiled[i].segs[k];
            if (parts[k].len >= 2 && parts[k].ptr[0] == '{' && parts[k].ptr[parts[k].len - 1] == '}') {
                s->param = (sc_slice){parts[k].ptr + 1, parts[k].len - 2};
                if (++nparams > SC_ROUTE_MAX_PARAMS) {
                    fprintf(stderr, "fatal: too many parameters in %s\n", routes[i].pattern);
                    abort();
                }
            } else {
                s->literal = parts[k];
            }
        }
        r->compiled[i].nsegs = np;
    }
    return r;
}

void sc_router_free(sc_router *r)
{
    if (!r)
        return;
    free(r->compiled);
    free(r);
}

const sc_route *sc_router_route(const sc_router *r, int index) { return &r->routes[index]; }
size_t sc_router_count(const sc_router *r) { return r->n; }

static bool segs_match(const compiled *c, const sc_slice *parts, int np, sc_route_match *m)
{
    if (c->nsegs != np)
        return false;
    int nparams = 0;
    for (int k = 0; k < np; k++) {
        const segment *s = &c->segs[k];
        if (s->literal.ptr) {
            if (!sc_slice_eq(s->literal, parts[k]))
                return false;
        } else {
            if (parts[k].len == 0)
                return false;
            m->params[nparams].name = s->param;
            m->params[nparams].value = parts[k];
            nparams++;
        }
    }
    m->nparams = nparams;
    return true;
}

void sc_router_match(const sc_router *r, unsigned method, sc_slice path, sc_route_match *m)
{
    sc_slice parts[SC_ROUTE_MAX_SEGMENTS];
    m->index = -1;
    m->allow = 0;
    m->nparams = 0;
    int np = split(path, parts, SC_ROUTE_MAX_SEGMENTS);
    if (np < 0)
        return;
    unsigned want = method == SC_M_HEAD ? (SC_M_HEAD | SC_M_GET) : method;
    for (size_t i = 0; i < r->n; i++) {
        sc_route_match tmp;
        if (!segs_match(&r->compiled[i], parts, np, &tmp))
            continue;
        unsigned methods = r->routes[i].methods;
        if (methods & SC_M_GET)
            methods |= SC_M_HEAD;
        if (methods & want) {
            *m = tmp;
            m->index = (int)i;
            return;
        }
        m->allow |= methods;
    }
}

void sc_router_allow_header(unsigned allow, char *out, size_t outlen)
{
    size_t o = 0;
    out[0] = '\0';
    for (unsigned bit = 1; bit <= SC_M_OPTIONS; bit <<= 1) {
        if (!(allow & bit))
            continue;
        char item[16];
        int w = snprintf(item, sizeof(item), "%s%s", o ? ", " : "", sc_method_name(bit));
        if (w < 0 || (size_t)w >= outlen - o)
            break; /* only whole entries: a truncated list is still a well-formed header */
        memcpy(out + o, item, (size_t)w + 1);
        o += (size_t)w;
    }
}
