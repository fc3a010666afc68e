/* The request as handlers see it (headers, parameters, query, client address) and its lifecycle: reset between
 * requests, the route's gate (run at the end of the headers) and dispatch to its handler, finish (the response
 * serialised, the access-log line, the metrics), and dispose, the one place where everything a request allocated
 * is released and its dispose hooks run. */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "core/arena.h"
#include "core/log.h"
#include "http/cors.h"
#include "http/host.h"
#include "http/http1.h"
#include "http/method.h"
#include "net/addr.h"

sc_slice sc_req_param(const sc_req *req, const char *name)
{
    sc_slice n = sc_slice_cstr(name);
    for (int i = 0; i < req->match.nparams; i++)
        if (sc_slice_eq(req->match.params[i].name, n))
            return req->match.params[i].value;
    return SC_SLICE_NULL;
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

static sc_slice percent_decode(sc_arena *a, sc_slice s)
{
    char *out = sc_arena_alloc(a, s.len + 1);
    size_t o = 0;
    for (size_t i = 0; i < s.len; i++) {
        if (s.ptr[i] == '+') {
            out[o++] = ' ';
        } else if (s.ptr[i] == '%' && i + 2 < s.len && hexval(s.ptr[i + 1]) >= 0 && hexval(s.ptr[i + 2]) >= 0) {
            out[o++] = (char)(hexval(s.ptr[i + 1]) * 16 + hexval(s.ptr[i + 2]));
            i += 2;
        } else {
            out[o++] = s.ptr[i];
        }
    }
    out[o] = '\0';
    return (sc_slice){out, o};
}

bool sc_req_query(const sc_req *req, const char *name, sc_slice *out)
{
    sc_slice q = req->query, n = sc_slice_cstr(name);
    while (q.len) {
        long amp = sc_slice_find(q, '&');
        sc_slice pair = {q.ptr, amp < 0 ? q.len : (size_t)amp};
        q = amp < 0 ? SC_SLICE_NULL : (sc_slice){q.ptr + amp + 1, q.len - (size_t)amp - 1};
        long eq = sc_slice_find(pair, '=');
        sc_slice key = {pair.ptr, eq < 0 ? pair.len : (size_t)eq};
        if (!sc_slice_eq(percent_decode(req->arena, key), n))
            continue;
        sc_slice val = eq < 0 ? SC_SLICE_LIT("") : (sc_slice){pair.ptr + eq + 1, pair.len - (size_t)eq - 1};
        *out = percent_decode(req->arena, val);
        return true;
    }
    return false;
}

void sc_req_on_dispose(sc_req *req, void (*cb)(void *data), void *data)
{
    sc_dispose_hook *h = sc_arena_alloc(req->arena, sizeof(*h));
    h->cb = cb;
    h->data = data;
    h->next = req->hooks;
    req->hooks = h;
}

/* ---- request lifecycle ------------------------------------------------------------------------------------ */

void sc_http_req_reset(sc_http_conn *c)
{
    sc_req *r = &c->req;
    sc_server *s = c->server;
    *r = (sc_req){0};
    r->arena = &c->arena;
    r->body = &c->body;
    r->res.headers = &c->res_headers;
    r->res.body = &c->res_body;
    r->route_index = -1;
    r->match.index = -1;
    r->app = s->cfg.app;
    r->server = s;
    r->method_name = SC_SLICE_LIT("-");
    r->path = SC_SLICE_LIT("-");
    c->raw.len = 0;
    c->nraw = 0;
    c->url_len = 0;
    c->cur_off = 0;
    c->header_bytes = 0;
    c->body_bytes = 0;
    c->body_limit = s->cfg.limits.max_body_bytes;
    c->error_status = 0;
    c->gate_done = false;
    c->gate_status = 0;
    sc_http_body_release(c);
    c->trailers = false;
    c->dispatched = c->streaming = c->body_paused = c->expect_continue = c->kick = false;
    c->sink = NULL;
    c->sink_ctx = NULL;
}

void sc_req_run_dispose_hooks(sc_req *r)
{
    sc_dispose_hook *h = r->hooks;
    r->hooks = NULL;
    while (h) {
        sc_dispose_hook *next = h->next;
        h->cb(h->data);
        h = next;
    }
}

void sc_http_req_dispose(sc_http_conn *c)
{
    sc_req_run_dispose_hooks(&c->req);
    for (sc_res_part *p = c->req.res.parts; p; p = p->next)
        sc_file_unref(p->file);
    sc_arena_reset(&c->arena);
    sc_http_shrink(&c->body);
    sc_http_shrink(&c->res_body);
    sc_http_shrink(&c->res_headers);
    sc_http_shrink(&c->raw);
    if (c->raw_cap > 256) {
        free(c->raw_headers);
        c->raw_headers = NULL;
        c->raw_cap = 0;
    }
    sc_http_req_reset(c);
}

/* The address to log: with a trusted proxy as peer, X-Forwarded-For is walked from the right and the first
 * address that is not a trusted proxy is the client. */
static sc_slice client_address(sc_http_conn *c)
{
    sc_slice peer = sc_slice_cstr(c->super.peer);
    const sc_cidr_list *trusted = c->server->cfg.trusted_proxies;
    if (!trusted || trusted->n == 0 || !sc_cidr_list_contains(trusted, c->super.peer_addr))
        return peer;
    sc_slice xff = sc_req_header(&c->req, "x-forwarded-for");
    sc_slice client = peer;
    while (xff.len) {
        size_t end = xff.len;
        size_t start = end;
        while (start > 0 && xff.ptr[start - 1] != ',')
            start--;
        sc_slice item = sc_slice_trim((sc_slice){xff.ptr + start, end - start});
        xff.len = start ? start - 1 : 0;
        uint8_t addr[16];
        if (item.len == 0)
            continue;
        if (sc_addr_parse(item, addr) != 0)
            break;
        client = item;
        if (!sc_cidr_list_contains(trusted, addr))
            break;
    }
    return client;
}

bool sc_req_secure(const sc_req *req) { return sc_conn_secure(&sc_http_conn_of(req)->super); }

sc_slice sc_req_client(sc_req *req) { return client_address(sc_http_conn_of(req)); }

void sc_http_finish(sc_req *req, int status)
{
    sc_http_conn *c = sc_http_conn_of(req);
    sc_server *s = c->server;
    if (req->finished)
        return;
    req->finished = true;
    if (status < 100 || status > 599) {
        sc_log_error("handler for %.*s returned invalid status %d", (int)req->path.len, req->path.ptr, status);
        status = sc_res_error(req, 500, NULL);
    }
    /* A streaming handler that answers before the body is in leaves the rest unread: the connection cannot go on.
     */
    if (s->draining || !c->keep_alive || c->state == CONN_BODY)
        c->close_after = true;
    uint64_t body_len = sc_http_response_write(c, status);

    uint64_t duration_us = (uv_hrtime() - req->start_ns) / 1000;
    sc_metrics_record(&s->metrics, req->route_index, req->method, status, duration_us);
    if (sc_log_access_enabled()) {
        sc_access_entry e = {client_address(c),
                             req->method_name,
                             req->path,
                             status,
                             req->method == SC_M_HEAD ? 0 : body_len,
                             duration_us};
        sc_log_access(&e);
    }
    sc_http_req_dispose(c);
    c->state = CONN_IDLE;
    c->state_since = sc_conn_now(&c->super);
}

void sc_req_finish(sc_req *req, int status)
{
    sc_http_conn *c = sc_http_conn_of(req);
    sc_http_finish(req, status);
    if (c->in_parser)
        return; /* the parser loop goes on by itself */
    sc_http_conn_pump(c);
}

/* The HTTPS address of this request: the Host header's name (http/host.h: valid and allowed) with the TLS port;
 * else the first of STACCATO_ALLOWED_HOSTS, or without a list the address the client reached us at. */
static int redirect_to_https(sc_http_conn *c)
{
    sc_req *r = &c->req;
    sc_host host;
    sc_slice name;
    const sc_host *first;
    char local[64];
    if (sc_req_host(r, &host)) {
        name = host.name;
    } else if ((first = sc_req_first_allowed_host(r))) {
        name = first->name;
    } else {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        char addr[48] = "localhost";
        if (getsockname(c->super.fd, (struct sockaddr *)&ss, &sl) == 0)
            sc_addr_format((struct sockaddr *)&ss, addr, sizeof(addr));
        bool v6 = strchr(addr, ':') != NULL;
        snprintf(local, sizeof(local), "%s%s%s", v6 ? "[" : "", addr, v6 ? "]" : "");
        name = sc_slice_cstr(local);
    }
    sc_buf loc = {0};
    sc_buf_printf(&loc, "https://%.*s", (int)name.len, name.ptr);
    if (c->server->cfg.tls_port != 443)
        sc_buf_printf(&loc, ":%u", c->server->cfg.tls_port);
    sc_buf_append_slice(&loc, r->target);
    sc_res_header(r, "Location", sc_buf_slice(&loc));
    sc_buf_free(&loc);
    return sc_res_error(r, 308, "use HTTPS");
}

/* Whether the request is answered with a redirect to HTTPS rather than by its route. */
static bool redirects(const sc_http_conn *c)
{
    const sc_server_config *cfg = &c->server->cfg;
    return !sc_conn_secure(&c->super) && cfg->https_redirect && cfg->tls_port &&
           !sc_slice_eq(c->req.path, SC_SLICE_LIT("/health"));
}

int sc_http_gate(sc_http_conn *c)
{
    sc_req *r = &c->req;
    if (!c->gate_done && r->route && r->route->gate && !redirects(c)) {
        c->gate_done = true;
        c->gate_status = r->route->gate(r);
    }
    return c->gate_status;
}

void sc_http_dispatch(sc_http_conn *c)
{
    sc_req *r = &c->req;
    int status;
    c->dispatched = true;
    if (redirects(c)) {
        status = redirect_to_https(c);
    } else if (r->route_index >= 0) {
        status = sc_http_gate(c); /* normally run at the end of the headers already, and not again */
        if (!status)
            status = r->route->handler(r);
    } else if (r->match.allow) {
        char allow[96];
        unsigned methods = r->match.allow | SC_M_OPTIONS;
        sc_router_allow_header(methods, allow, sizeof(allow));
        sc_res_header(r, "Allow", sc_slice_cstr(allow));
        if (r->method == SC_M_OPTIONS) {
            sc_cors_preflight(c->server->cfg.cors, r, r->match.allow); /* nothing unless a CORS preflight */
            status = 204;
        } else {
            status = sc_res_error(r, 405, NULL);
        }
    } else {
        status = sc_res_error(r, 404, "route not found");
    }
    if (status != SC_ASYNC)
        sc_http_finish(r, status);
}
