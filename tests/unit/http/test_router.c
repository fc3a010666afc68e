/* The router: literal and parameter segments, 404 against 405 and the Allow mask, trailing slashes, limits. */
#include <string.h>

#include "check.h"
#include "http/method.h"
#include "http/router.h"

static int h_any(sc_req *req) { return 200; }

static const sc_route routes[] = {
    {SC_M_GET, "/", h_any, 0, 0, NULL, NULL},                                       /* 0 */
    {SC_M_GET, "/health", h_any, 0, 0, NULL, NULL},                                 /* 1 */
    {SC_M_GET, "/albums", h_any, 0, 0, NULL, NULL},                                 /* 2 */
    {SC_M_POST, "/albums", h_any, 0, 0, NULL, NULL},                                /* 3 */
    {SC_M_GET | SC_M_PUT | SC_M_DELETE, "/albums/{id}", h_any, 0, 0, NULL, NULL},   /* 4 */
    {SC_M_GET, "/albums/new", h_any, 0, 0, NULL, NULL},                             /* 5: shadowed by 4 for GET */
    {SC_M_POST, "/albums/{id}/likes", h_any, 0, 0, NULL, NULL},                     /* 6 */
    {SC_M_GET, "/users/{user}/playlists/{pl}/tracks/{t}", h_any, 0, 0, NULL, NULL}, /* 7 */
    {SC_M_PATCH, "/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p", h_any, 4096, 0, NULL, NULL}, /* 8: 16 segments, the maximum */
    {SC_M_OPTIONS, "/opts", h_any, 0, 0, NULL, NULL},                             /* 9 */
    {SC_M_HEAD, "/only-head", h_any, 0, 0, NULL, NULL},                           /* 10 */
    {SC_M_POST, "/albums/new", h_any, 0, 0, NULL, NULL},                          /* 11 */
};
#define NROUTES (sizeof(routes) / sizeof(routes[0]))

static sc_route_match match(const sc_router *r, unsigned method, const char *path)
{
    sc_route_match m;
    memset(&m, 0x5a, sizeof(m)); /* garbage in: the router must set what it reports */
    sc_router_match(r, method, sc_slice_cstr(path), &m);
    return m;
}

static void test_table(const sc_router *r)
{
    CHECK_EQ_UINT(sc_router_count(r), NROUTES);
    CHECK(sc_router_route(r, 4) == &routes[4]);
    CHECK_EQ_STR(sc_router_route(r, 8)->pattern, "/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p");
    CHECK_EQ_UINT(sc_router_route(r, 8)->max_body, 4096);
}

static void test_literal(const sc_router *r)
{
    sc_route_match m = match(r, SC_M_GET, "/health");
    CHECK_EQ_INT(m.index, 1);
    CHECK_EQ_INT(m.nparams, 0);

    m = match(r, SC_M_GET, "/");
    CHECK_EQ_INT(m.index, 0);
    CHECK_EQ_INT(m.nparams, 0);

    /* Same path, the method picks the row. */
    CHECK_EQ_INT(match(r, SC_M_GET, "/albums").index, 2);
    CHECK_EQ_INT(match(r, SC_M_POST, "/albums").index, 3);

    /* Case matters in paths. */
    m = match(r, SC_M_GET, "/Health");
    CHECK_EQ_INT(m.index, -1);
    CHECK_EQ_UINT(m.allow, 0);

    /* Prefixes and extensions of a literal are not matches. */
    CHECK_EQ_INT(match(r, SC_M_GET, "/healt").index, -1);
    CHECK_EQ_INT(match(r, SC_M_GET, "/healthz").index, -1);
    CHECK_EQ_INT(match(r, SC_M_GET, "/health/x").index, -1);

    /* 16 segments: the maximum a pattern may have. */
    m = match(r, SC_M_PATCH, "/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p");
    CHECK_EQ_INT(m.index, 8);
}

static void test_params(const sc_router *r)
{
    sc_route_match m = match(r, SC_M_GET, "/albums/42");
    CHECK_EQ_INT(m.index, 4);
    if (CHECK_EQ_INT(m.nparams, 1)) {
        CHECK_EQ_SLICE(m.params[0].name, "id");
        CHECK_EQ_SLICE(m.params[0].value, "42");
    }

    /* A parameter takes any non-empty segment, percent escapes and all, undecoded. */
    m = match(r, SC_M_DELETE, "/albums/a%2Fb");
    CHECK_EQ_INT(m.index, 4);
    if (CHECK_EQ_INT(m.nparams, 1))
        CHECK_EQ_SLICE(m.params[0].value, "a%2Fb");

    /* Earlier rows win: GET /albums/new is the parameter route, POST /albums/new the literal one. */
    m = match(r, SC_M_GET, "/albums/new");
    CHECK_EQ_INT(m.index, 4);
    if (CHECK_EQ_INT(m.nparams, 1))
        CHECK_EQ_SLICE(m.params[0].value, "new");
    m = match(r, SC_M_POST, "/albums/new");
    CHECK_EQ_INT(m.index, 11);
    CHECK_EQ_INT(m.nparams, 0);

    m = match(r, SC_M_POST, "/albums/7/likes");
    CHECK_EQ_INT(m.index, 6);
    if (CHECK_EQ_INT(m.nparams, 1)) {
        CHECK_EQ_SLICE(m.params[0].name, "id");
        CHECK_EQ_SLICE(m.params[0].value, "7");
    }

    m = match(r, SC_M_GET, "/users/ann/playlists/p-1/tracks/99");
    CHECK_EQ_INT(m.index, 7);
    if (CHECK_EQ_INT(m.nparams, 3)) {
        CHECK_EQ_SLICE(m.params[0].name, "user");
        CHECK_EQ_SLICE(m.params[0].value, "ann");
        CHECK_EQ_SLICE(m.params[1].name, "pl");
        CHECK_EQ_SLICE(m.params[1].value, "p-1");
        CHECK_EQ_SLICE(m.params[2].name, "t");
        CHECK_EQ_SLICE(m.params[2].value, "99");
    }

    /* An empty segment is not a parameter value. */
    m = match(r, SC_M_GET, "/albums//likes");
    CHECK_EQ_INT(m.index, -1);
    CHECK_EQ_UINT(m.allow, 0);
    m = match(r, SC_M_GET, "/users//playlists/p/tracks/t");
    CHECK_EQ_INT(m.index, -1);
}

static void test_404_405(const sc_router *r)
{
    /* No route has this path: 404 (allow 0). */
    sc_route_match m = match(r, SC_M_GET, "/nope");
    CHECK_EQ_INT(m.index, -1);
    CHECK_EQ_UINT(m.allow, 0);
    CHECK_EQ_INT(m.nparams, 0);

    /* The path exists for other methods: 405 with their union, HEAD implied by GET. */
    m = match(r, SC_M_POST, "/health");
    CHECK_EQ_INT(m.index, -1);
    CHECK_EQ_UINT(m.allow, SC_M_GET | SC_M_HEAD);

    m = match(r, SC_M_DELETE, "/albums");
    CHECK_EQ_INT(m.index, -1);
    CHECK_EQ_UINT(m.allow, SC_M_GET | SC_M_HEAD | SC_M_POST);

    m = match(r, SC_M_POST, "/albums/5");
    CHECK_EQ_INT(m.index, -1);
    CHECK_EQ_UINT(m.allow, SC_M_GET | SC_M_HEAD | SC_M_PUT | SC_M_DELETE);

    /* /albums/new: the union of the parameter route and both literal rows. */
    m = match(r, SC_M_PATCH, "/albums/new");
    CHECK_EQ_INT(m.index, -1);
    CHECK_EQ_UINT(m.allow, SC_M_GET | SC_M_HEAD | SC_M_PUT | SC_M_DELETE | SC_M_POST);

    m = match(r, SC_M_GET, "/albums/5/likes");
    CHECK_EQ_INT(m.index, -1);
    CHECK_EQ_UINT(m.allow, SC_M_POST);

    /* HEAD is served by a GET route. */
    m = match(r, SC_M_HEAD, "/health");
    CHECK_EQ_INT(m.index, 1);
    m = match(r, SC_M_HEAD, "/albums/3");
    CHECK_EQ_INT(m.index, 4);
    if (CHECK_EQ_INT(m.nparams, 1))
        CHECK_EQ_SLICE(m.params[0].value, "3");

    /* A HEAD-only route does not serve GET, and its allow mask says HEAD only. */
    CHECK_EQ_INT(match(r, SC_M_HEAD, "/only-head").index, 10);
    m = match(r, SC_M_GET, "/only-head");
    CHECK_EQ_INT(m.index, -1);
    CHECK_EQ_UINT(m.allow, SC_M_HEAD);

    /* OPTIONS routes are ordinary rows. */
    CHECK_EQ_INT(match(r, SC_M_OPTIONS, "/opts").index, 9);
    m = match(r, SC_M_GET, "/opts");
    CHECK_EQ_INT(m.index, -1);
    CHECK_EQ_UINT(m.allow, SC_M_OPTIONS);

    /* An unknown method (0) never matches, but still learns the allow mask. */
    m = match(r, 0, "/health");
    CHECK_EQ_INT(m.index, -1);
    CHECK_EQ_UINT(m.allow, SC_M_GET | SC_M_HEAD);
}

static void test_slashes(const sc_router *r)
{
    /* A trailing slash is a different path: not /health, and no route has it. */
    sc_route_match m = match(r, SC_M_GET, "/health/");
    CHECK_EQ_INT(m.index, -1);
    CHECK_EQ_UINT(m.allow, 0);
    m = match(r, SC_M_GET, "/albums/");
    CHECK_EQ_INT(m.index, -1); /* the {id} segment would be empty */
    CHECK_EQ_UINT(m.allow, 0);
    m = match(r, SC_M_GET, "/albums/1/");
    CHECK_EQ_INT(m.index, -1);
    CHECK_EQ_UINT(m.allow, 0);

    /* Doubled slashes are empty segments, not collapsed. */
    CHECK_EQ_INT(match(r, SC_M_GET, "//health").index, -1);
    CHECK_EQ_INT(match(r, SC_M_GET, "/albums//1").index, -1);
    CHECK_EQ_INT(match(r, SC_M_GET, "//").index, -1);

    /* Only "/" is the root. */
    CHECK_EQ_INT(match(r, SC_M_GET, "/").index, 0);
}

static void test_segments_limit(const sc_router *r)
{
    /* 17 segments: more than any pattern can have; no match and no allow mask. */
    sc_route_match m = match(r, SC_M_PATCH, "/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q");
    CHECK_EQ_INT(m.index, -1);
    CHECK_EQ_UINT(m.allow, 0);
    CHECK_EQ_INT(m.nparams, 0);

    /* A very long path of empty segments. */
    char path[4096];
    memset(path, '/', sizeof(path) - 1);
    path[sizeof(path) - 1] = '\0';
    m = match(r, SC_M_GET, path);
    CHECK_EQ_INT(m.index, -1);
    CHECK_EQ_UINT(m.allow, 0);

    /* 16 segments with the wrong method: 405 still works at the maximum. */
    m = match(r, SC_M_GET, "/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p");
    CHECK_EQ_INT(m.index, -1);
    CHECK_EQ_UINT(m.allow, SC_M_PATCH);
}

static void test_allow_header(void)
{
    char out[96];
    sc_router_allow_header(SC_M_GET | SC_M_HEAD | SC_M_POST, out, sizeof(out));
    CHECK_EQ_STR(out, "GET, HEAD, POST");
    sc_router_allow_header(SC_M_OPTIONS, out, sizeof(out));
    CHECK_EQ_STR(out, "OPTIONS");
    sc_router_allow_header(0, out, sizeof(out));
    CHECK_EQ_STR(out, "");
    sc_router_allow_header(SC_M_DELETE | SC_M_GET, out, sizeof(out)); /* in bit order, not argument order */
    CHECK_EQ_STR(out, "GET, DELETE");
    sc_router_allow_header(SC_M_GET | SC_M_HEAD | SC_M_POST | SC_M_PUT | SC_M_PATCH | SC_M_DELETE | SC_M_OPTIONS,
                           out, sizeof(out));
    CHECK_EQ_STR(out, "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS");
    /* Bits above the known methods are ignored. */
    sc_router_allow_header(SC_M_PUT | (1u << 20), out, sizeof(out));
    CHECK_EQ_STR(out, "PUT");

    /* A small buffer is truncated at a method boundary and stays NUL-terminated. */
    char small[12];
    memset(small, 'X', sizeof(small));
    sc_router_allow_header(SC_M_GET | SC_M_HEAD | SC_M_POST, small, sizeof(small));
    CHECK_EQ_STR(small, "GET, HEAD");

    CHECK_EQ_STR(sc_method_name(SC_M_PATCH), "PATCH");
    CHECK(sc_method_name(SC_M_GET | SC_M_POST) == NULL);
    CHECK(sc_method_name(0) == NULL);
}

int main(void)
{
    sc_router *r = sc_router_new(routes, NROUTES);
    test_table(r);
    test_literal(r);
    test_params(r);
    test_404_405(r);
    test_slashes(r);
    test_segments_limit(r);
    test_allow_header();
    sc_router_free(r);

    /* An empty table matches nothing. */
    sc_router *empty = sc_router_new(NULL, 0);
    sc_route_match m = match(empty, SC_M_GET, "/");
    CHECK_EQ_INT(m.index, -1);
    CHECK_EQ_UINT(m.allow, 0);
    sc_router_free(empty);
    sc_router_free(NULL);
    return check_report();
}
