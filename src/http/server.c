/* HTTP/1.1 connections: llhttp glue, request lifecycle, response writing, limits and timeouts.
 *
 * A connection handles one request at a time. Bytes are parsed straight out of a loop-wide read buffer; whatever
 * cannot be parsed yet (a pipelined request behind one that is still being answered) is kept in the connection's
 * `in` buffer. A request whose handler answers at once is followed immediately by the next pipelined one, and all
 * responses produced by one read are sent with one write. A request whose handler is asynchronous pauses the
 * parser until sc_req_finish, which keeps responses in request order.
 *
 * Every connection has one timer whose deadline depends on its state (keep-alive idle, reading headers, reading a
 * body, writing, lingering). The timer is re-armed lazily: moving a deadline later only updates a field, and the
 * timer, when it fires early, sets itself again for the remaining time. That keeps the per-request cost of the
 * timeouts at a comparison on the hot path.
 *
 * Socket I/O is done here rather than through uv_tcp_t: each connection is a non-blocking socket watched by a
 * uv_poll_t, read with read(2) and written with writev(2) and sendfile(2). That is what lets a response body come
 * straight from a file with no copy through user space, driven by the socket's writability; a slow reader costs
 * its socket buffer and nothing more. Output is one buffer of bytes (headers, small bodies) with file ranges
 * spliced in at given positions.
 *
 * Lifetimes: a connection holds one reference per open handle (poll and timer); it is freed when the last one is
 * closed, never inside its own callbacks. */
#define _GNU_SOURCE /* accept4 */
#include "http/server.h"

#include <errno.h>
#include <fcntl.h>
#include <llhttp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "core/arena.h"
#include "core/log.h"
#include "core/mem.h"
#include "http/method.h"
#include "http/metrics.h"
#include "http/request.h"
#include "http/status.h"
#include "net/tls.h"

#define READ_BUF_SIZE (64 * 1024)
#define LINGER_TIMEOUT_MS 2000
#define NO_DEADLINE UINT64_MAX

struct sc_dispose_hook {
    sc_dispose_hook *next;
    void (*cb)(void *data);
    void *data;
};

typedef enum {
    CONN_IDLE,     /* between requests */
    CONN_HEADERS,  /* reading the request line and headers */
    CONN_BODY,     /* reading the body */
    CONN_HANDLING, /* the handler has the request */
    CONN_LINGER,   /* response sent, write side shut, draining what the client still sends */
} conn_state;

typedef struct raw_header {
    uint32_t name_off, name_len, value_off, value_len;
} raw_header;

typedef struct sc_conn sc_conn;

/* A file range of the output, sent with sendfile once the output before it (up to `at`) is written. */
typedef struct file_seg {
    struct file_seg *next;
    size_t at;
    sc_file *file;
    uint64_t offset, remaining;
} file_seg;

/* A file range of a response body under construction, at position `at` of the memory body. */
struct sc_res_part {
    sc_res_part *next;
    size_t at;
    sc_file *file;
    uint64_t offset, len;
};

struct sc_conn {
    uv_poll_t poll; /* first member: the handle's address is the connection's */
    uv_timer_t timer;
    int fd;
    int events; /* UV_READABLE | UV_WRITABLE being watched */
    sc_server *server;
    sc_tls_conn *tls;  /* NULL on plaintext connections */
    bool tls_ready;    /* handshake done */
    /* A handshake step with public-key work runs on the threadpool; the session is its meanwhile: no reads from
     * the socket into it, no sends out of it. */
    uv_work_t hswork;
    bool hs_pending;
    int hs_result;
    bool kick_queued;  /* on the server's list of TLS connections to read without a socket event */
    sc_conn *kick_next;
    /* TLS cannot sendfile: file ranges are read into fbuf off the loop, then encrypted. */
    uv_fs_t fsreq;
    bool fs_pending;
    char *fbuf;
    size_t fbuf_len, fbuf_off;
    sc_conn *prev, *next;
    llhttp_t parser;
    int refs;
    conn_state state;
    bool closing;     /* uv_close called */
    bool close_after; /* close (lingering) once the output is written */
    bool writing;     /* output waits for the socket to become writable */
    bool reading;
    bool in_parser;   /* inside llhttp_execute */
    bool shed;        /* accepted above the connection limit, answered 503 */
    bool keep_alive;
    bool http10;
    bool trailers; /* past the headers: header callbacks now deliver chunked trailers */
    bool dispatched;   /* the handler has the request (a streaming one gets it before the body) */
    bool streaming;    /* the body goes to a sink rather than into c->body */
    bool body_paused;  /* the body is not read: not claimed yet, or its sink asked for a pause */
    bool expect_continue;
    bool kick;         /* the parser was paused inside a message: run it even with no new input */
    const sc_body_sink *sink;
    void *sink_ctx;
    int error_status; /* set by a parser callback that rejects the request */

    uint64_t deadline;    /* when the timer is due, NO_DEADLINE when stopped */
    uint64_t state_since; /* loop time the current read phase started or last progressed */
    uint64_t write_since; /* loop time of the last write progress */

    sc_buf in;      /* unparsed input */
    sc_buf out;     /* output bytes; out_off of them are written */
    size_t out_off;
    file_seg *segs, *segs_tail; /* file ranges spliced into the output */

    /* Request parsing state. */
    sc_buf raw; /* URL and header bytes, in arrival order */
    uint32_t url_len, cur_off;
    raw_header *raw_headers;
    size_t nraw, raw_cap;
    uint64_t header_bytes, body_limit, body_bytes;

    sc_buf body, res_headers, res_body;
    sc_arena arena;
    sc_req req;
    uint8_t peer_addr[16];
    char peer[48];
};

struct sc_server {
    uv_loop_t *loop;
    struct listener {
        uv_poll_t poll;
        int fd;
        bool tls;
        sc_server *server;
    } listeners[2];
    int nlisteners, listeners_closed;
    sc_tls_config *tls; /* for new TLS connections; replaced on reload */
    sc_conn *kicks;     /* TLS connections with bytes buffered in the session */
    uv_idle_t kick_idle;
    bool kick_idle_closed;
    uv_timer_t accept_timer; /* accepting paused after running out of file descriptors */
    uv_timer_t drain_timer;
    bool listening, draining, drain_timer_closed, accept_timer_closed;
    sc_server_config cfg;
    sc_router *router;
    const char **route_names;
    sc_conn *conns;
    uint64_t nconns; /* counted against the limit (shed ones are not) */
    uint64_t nall;   /* every open connection object */
    sc_metrics metrics;
    llhttp_settings_t settings;
    char *readbuf;
    void (*on_done)(void *data);
    void *on_done_data;
    time_t date_sec;
    char date[40];
};

static void conn_close(sc_conn *c);
static void conn_flush(sc_conn *c);
static void conn_pump(sc_conn *c);
static void conn_update(sc_conn *c);
static void respond_error(sc_conn *c, int status);
static void finish(sc_req *req, int status);

/* ---- small helpers ---------------------------------------------------------------------------------------- */

static uint64_t now_ms(const sc_conn *c) { return uv_now(c->server->loop); }

static const char *http_date(sc_server *s)
{
    time_t t = time(NULL);
    if (t != s->date_sec) {
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(s->date, sizeof(s->date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
        s->date_sec = t;
    }
    return s->date;
}

/* Output bytes not yet written; file ranges count as their length. */
static size_t pending_output(const sc_conn *c)
{
    size_t n = c->out.len - c->out_off;
    for (const file_seg *f = c->segs; f; f = f->next)
        n += f->remaining;
    return n;
}

static size_t in_limit(const sc_conn *c)
{
    const sc_http_limits *l = &c->server->cfg.limits;
    return l->max_header_bytes + l->max_url_bytes + READ_BUF_SIZE;
}

/* Parsing stops while a request is with its handler, while output is backed up, and once the connection is on
 * its way out. */
static bool parse_blocked(const sc_conn *c)
{
    return c->closing || c->close_after || c->state == CONN_HANDLING || c->state == CONN_LINGER || c->body_paused ||
           pending_output(c) > c->server->cfg.limits.max_write_buffer;
}

static void conn_unref(sc_conn *c)
{
    if (--c->refs > 0)
        return;
    while (c->segs) {
        file_seg *f = c->segs;
        c->segs = f->next;
        sc_file_unref(f->file);
        free(f);
    }
    sc_tls_conn_free(c->tls);
    free(c->fbuf);
    sc_buf_free(&c->in);
    sc_buf_free(&c->out);
    sc_buf_free(&c->raw);
    sc_buf_free(&c->body);
    sc_buf_free(&c->res_headers);
    sc_buf_free(&c->res_body);
    sc_arena_reset(&c->arena);
    free(c->raw_headers);
    free(c);
}

/* ---- the request as handlers see it ----------------------------------------------------------------------- */

sc_slice sc_req_header(const sc_req *req, const char *name)
{
    sc_slice n = sc_slice_cstr(name);
    for (size_t i = 0; i < req->nheaders; i++)
        if (sc_slice_eq_nocase(req->headers[i].name, n))
            return req->headers[i].value;
    return SC_SLICE_NULL;
}

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

sc_file *sc_file_new(int fd)
{
    sc_file *f = sc_alloc(sizeof(*f));
    f->fd = fd;
    f->refs = 1;
    return f;
}

void sc_file_ref(sc_file *f) { f->refs++; }

void sc_file_unref(sc_file *f)
{
    if (f && --f->refs == 0) {
        close(f->fd);
        free(f);
    }
}

void sc_res_body_file(sc_req *req, sc_file *f, uint64_t offset, uint64_t len)
{
    if (len == 0)
        return;
    sc_res_part *p = sc_arena_alloc(req->arena, sizeof(*p));
    p->next = NULL;
    p->at = req->res.body->len;
    p->file = f;
    p->offset = offset;
    p->len = len;
    sc_file_ref(f);
    if (req->res.parts_tail)
        req->res.parts_tail->next = p;
    else
        req->res.parts = p;
    req->res.parts_tail = p;
    req->res.parts_len += len;
}

void sc_res_header(sc_req *req, const char *name, sc_slice value)
{
    sc_buf *b = req->res.headers;
    sc_buf_append_str(b, name);
    sc_buf_append(b, ": ", 2);
    /* A header value never carries a line break, whatever a handler was given. */
    for (size_t i = 0; i < value.len; i++)
        sc_buf_append_char(b, value.ptr[i] == '\r' || value.ptr[i] == '\n' ? ' ' : value.ptr[i]);
    sc_buf_append(b, "\r\n", 2);
}

static const char *plain_error_body(sc_buf *out, int status, const char *message)
{
    (void)status;
    sc_buf_append_str(out, message);
    return "text/plain; charset=utf-8";
}

int sc_res_error(sc_req *req, int status, const char *message)
{
    sc_conn *c = (sc_conn *)((char *)req - offsetof(sc_conn, req));
    req->res.body->len = 0;
    for (sc_res_part *p = req->res.parts; p; p = p->next)
        sc_file_unref(p->file);
    req->res.parts = req->res.parts_tail = NULL;
    req->res.parts_len = 0;
    sc_error_body_fn write_body = c->server->cfg.error_body ? c->server->cfg.error_body : plain_error_body;
    req->res.content_type = write_body(req->res.body, status, message ? message : sc_http_default_message(status));
    return status;
}

/* ---- request lifecycle ------------------------------------------------------------------------------------ */

static void req_reset(sc_conn *c)
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
    c->trailers = false;
    c->dispatched = c->streaming = c->body_paused = c->expect_continue = c->kick = false;
    c->sink = NULL;
    c->sink_ctx = NULL;
}

static void shrink(sc_buf *b)
{
    if (b->cap > 64 * 1024)
        sc_buf_free(b);
    else
        b->len = 0;
}

/* Runs the dispose hooks and releases everything the request allocated. */
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

static void req_dispose(sc_conn *c)
{
    sc_req_run_dispose_hooks(&c->req);
    for (sc_res_part *p = c->req.res.parts; p; p = p->next)
        sc_file_unref(p->file);
    sc_arena_reset(&c->arena);
    shrink(&c->body);
    shrink(&c->res_body);
    shrink(&c->res_headers);
    shrink(&c->raw);
    if (c->raw_cap > 256) {
        free(c->raw_headers);
        c->raw_headers = NULL;
        c->raw_cap = 0;
    }
    req_reset(c);
}

/* The address to log: with a trusted proxy as peer, X-Forwarded-For is walked from the right and the first
 * address that is not a trusted proxy is the client. */
static sc_slice client_address(sc_conn *c)
{
    sc_slice peer = sc_slice_cstr(c->peer);
    const sc_cidr_list *trusted = c->server->cfg.trusted_proxies;
    if (!trusted || trusted->n == 0 || !sc_cidr_list_contains(trusted, c->peer_addr))
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

bool sc_req_secure(const sc_req *req)
{
    return ((const sc_conn *)((const char *)req - offsetof(sc_conn, req)))->tls != NULL;
}

sc_slice sc_req_client(sc_req *req)
{
    return client_address((sc_conn *)((char *)req - offsetof(sc_conn, req)));
}

static void append_status_line(sc_buf *out, int status)
{
    sc_buf_append_str(out, "HTTP/1.1 ");
    sc_buf_append_u64(out, (uint64_t)status);
    sc_buf_append_char(out, ' ');
    sc_buf_append_str(out, sc_http_reason(status));
    sc_buf_append(out, "\r\n", 2);
}

/* Serialises the response into the output buffer, logs it, counts it and releases the request. */
static void finish(sc_req *req, int status)
{
    sc_conn *c = (sc_conn *)((char *)req - offsetof(sc_conn, req));
    sc_server *s = c->server;
    if (req->finished)
        return;
    req->finished = true;
    if (status < 100 || status > 599) {
        sc_log_error("handler for %.*s returned invalid status %d", (int)req->path.len, req->path.ptr, status);
        status = sc_res_error(req, 500, NULL);
    }
    /* A streaming handler that answers before the body is in leaves the rest unread: the connection cannot go on. */
    if (s->draining || !c->keep_alive || c->state == CONN_BODY)
        c->close_after = true;

    bool no_body = status == 204 || status == 304 || status < 200;
    uint64_t body_len = no_body ? 0 : req->res.body->len + req->res.parts_len;
    sc_buf *out = &c->out;
    size_t before = out->len;
    append_status_line(out, status);
    sc_buf_append_str(out, "Server: staccato\r\nDate: ");
    sc_buf_append_str(out, http_date(s));
    sc_buf_append(out, "\r\n", 2);
    if (!no_body) {
        if (req->res.content_type && (body_len || req->method == SC_M_HEAD)) {
            sc_buf_append_str(out, "Content-Type: ");
            sc_buf_append_str(out, req->res.content_type);
            sc_buf_append(out, "\r\n", 2);
        }
        sc_buf_append_str(out, "Content-Length: ");
        sc_buf_append_u64(out, body_len);
        sc_buf_append(out, "\r\n", 2);
    }
    if (c->tls && s->cfg.hsts_max_age) {
        sc_buf_append_str(out, "Strict-Transport-Security: max-age=");
        sc_buf_append_u64(out, s->cfg.hsts_max_age);
        sc_buf_append(out, "\r\n", 2);
    }
    if (c->close_after)
        sc_buf_append_str(out, "Connection: close\r\n");
    else if (c->http10)
        sc_buf_append_str(out, "Connection: keep-alive\r\n");
    sc_buf_append(out, req->res.headers->ptr, req->res.headers->len);
    sc_buf_append(out, "\r\n", 2);
    if (req->method != SC_M_HEAD && body_len) {
        size_t body_at = out->len;
        sc_buf_append(out, req->res.body->ptr, req->res.body->len);
        /* File ranges move to the connection, which sends them in place. */
        for (sc_res_part *p = req->res.parts; p; p = p->next) {
            file_seg *f = sc_alloc(sizeof(*f));
            f->next = NULL;
            f->at = body_at + p->at;
            f->file = p->file;
            f->offset = p->offset;
            f->remaining = p->len;
            if (c->segs_tail)
                c->segs_tail->next = f;
            else
                c->segs = f;
            c->segs_tail = f;
        }
        req->res.parts = req->res.parts_tail = NULL; /* the references went with them */
    }
    (void)before;

    uint64_t duration_us = (uv_hrtime() - req->start_ns) / 1000;
    sc_metrics_record(&s->metrics, req->route_index, req->method, status, duration_us);
    if (sc_log_access_enabled()) {
        sc_access_entry e = {client_address(c), req->method_name, req->path, status,
                             req->method == SC_M_HEAD ? 0 : body_len, duration_us};
        sc_log_access(&e);
    }
    req_dispose(c);
    c->state = CONN_IDLE;
    c->state_since = now_ms(c);
}

void sc_req_finish(sc_req *req, int status)
{
    sc_conn *c = (sc_conn *)((char *)req - offsetof(sc_conn, req));
    finish(req, status);
    if (c->in_parser)
        return; /* the parser loop goes on by itself */
    conn_pump(c);
}

/* The HTTPS address of this request: the Host header's name with the TLS port. */
static int redirect_to_https(sc_conn *c)
{
    sc_req *r = &c->req;
    sc_slice host = sc_slice_trim(sc_req_header(r, "host"));
    sc_slice name = SC_SLICE_NULL;
    if (host.len && host.ptr[0] == '[') { /* [v6]:port */
        long close_br = sc_slice_find(host, ']');
        if (close_br > 1)
            name = (sc_slice){host.ptr, (size_t)close_br + 1};
    } else {
        long colon = sc_slice_find(host, ':');
        name = (sc_slice){host.ptr, colon < 0 ? host.len : (size_t)colon};
    }
    /* Only host-name characters go into the Location; otherwise (no Host, or a strange one) the address the
     * client reached us at. */
    bool ok = name.len > 0 && name.len <= 255;
    for (size_t i = 0; ok && i < name.len; i++) {
        char ch = name.ptr[i];
        ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '.' ||
             ch == '-' || ch == '_' || (name.ptr[0] == '[' && (ch == ':' || ch == '[' || ch == ']'));
    }
    char local[64];
    if (!ok) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        char addr[48] = "localhost";
        if (getsockname(c->fd, (struct sockaddr *)&ss, &sl) == 0)
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

static void dispatch(sc_conn *c)
{
    sc_req *r = &c->req;
    int status;
    c->dispatched = true;
    const sc_server_config *cfg = &c->server->cfg;
    if (!c->tls && cfg->https_redirect && cfg->tls_port && !sc_slice_eq(r->path, SC_SLICE_LIT("/health"))) {
        status = redirect_to_https(c);
    } else if (r->route_index >= 0) {
        status = r->route->handler(r);
    } else if (r->match.allow) {
        char allow[96];
        unsigned methods = r->match.allow | SC_M_OPTIONS;
        sc_router_allow_header(methods, allow, sizeof(allow));
        sc_res_header(r, "Allow", sc_slice_cstr(allow));
        status = r->method == SC_M_OPTIONS ? 204 : sc_res_error(r, 405, NULL);
    } else {
        status = sc_res_error(r, 404, "route not found");
    }
    if (status != SC_ASYNC)
        finish(r, status);
}

/* ---- llhttp callbacks ------------------------------------------------------------------------------------- */

#define CONN(p) ((sc_conn *)(p)->data)

static int reject(sc_conn *c, int status)
{
    c->error_status = status;
    return -1;
}

static int on_message_begin(llhttp_t *p)
{
    sc_conn *c = CONN(p);
    req_reset(c);
    c->req.start_ns = uv_hrtime();
    c->state = CONN_HEADERS;
    c->state_since = now_ms(c);
    return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t len)
{
    sc_conn *c = CONN(p);
    if (c->url_len + len > c->server->cfg.limits.max_url_bytes)
        return reject(c, 414);
    sc_buf_append(&c->raw, at, len);
    c->url_len += (uint32_t)len;
    return 0;
}

static int header_bytes(sc_conn *c, size_t len)
{
    c->header_bytes += len;
    return c->header_bytes > c->server->cfg.limits.max_header_bytes ? reject(c, 431) : 0;
}

/* Trailers of a chunked body count against the header limit but are not kept: the request's slices point into
 * c->raw, which must not grow (and move) once the headers are complete. */
static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
    sc_conn *c = CONN(p);
    if (header_bytes(c, len))
        return -1;
    if (!c->trailers)
        sc_buf_append(&c->raw, at, len);
    return 0;
}

static int on_header_field_complete(llhttp_t *p)
{
    sc_conn *c = CONN(p);
    if (c->trailers)
        return 0;
    if (c->nraw >= c->server->cfg.limits.max_headers)
        return reject(c, 431);
    if (c->nraw == c->raw_cap) {
        c->raw_cap = c->raw_cap ? c->raw_cap * 2 : 16;
        c->raw_headers = sc_realloc(c->raw_headers, c->raw_cap * sizeof(raw_header));
    }
    raw_header *h = &c->raw_headers[c->nraw++];
    h->name_off = c->cur_off;
    h->name_len = (uint32_t)(c->raw.len - c->cur_off);
    h->value_off = (uint32_t)c->raw.len;
    h->value_len = 0;
    return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
    sc_conn *c = CONN(p);
    if (header_bytes(c, len))
        return -1;
    if (!c->trailers)
        sc_buf_append(&c->raw, at, len);
    return 0;
}

static int on_header_value_complete(llhttp_t *p)
{
    sc_conn *c = CONN(p);
    if (c->trailers)
        return 0;
    raw_header *h = &c->raw_headers[c->nraw - 1];
    h->value_len = (uint32_t)(c->raw.len - h->value_off);
    c->cur_off = (uint32_t)c->raw.len;
    return 0;
}

static int on_url_complete(llhttp_t *p)
{
    sc_conn *c = CONN(p);
    c->cur_off = (uint32_t)c->raw.len;
    return 0;
}

static unsigned method_bit(llhttp_t *p)
{
    switch (llhttp_get_method(p)) {
    case HTTP_GET: return SC_M_GET;
    case HTTP_HEAD: return SC_M_HEAD;
    case HTTP_POST: return SC_M_POST;
    case HTTP_PUT: return SC_M_PUT;
    case HTTP_PATCH: return SC_M_PATCH;
    case HTTP_DELETE: return SC_M_DELETE;
    case HTTP_OPTIONS: return SC_M_OPTIONS;
    default: return 0;
    }
}

/* The method is known before the headers: an error found while reading them (431) still answers a HEAD
 * without a body. */
static int on_method_complete(llhttp_t *p)
{
    sc_conn *c = CONN(p);
    c->req.method_name = sc_slice_cstr(llhttp_method_name(llhttp_get_method(p)));
    c->req.method = method_bit(p);
    return 0;
}

static int on_headers_complete(llhttp_t *p)
{
    sc_conn *c = CONN(p);
    sc_req *r = &c->req;
    sc_server *s = c->server;

    /* The raw buffer no longer grows, so slices into it are stable until the request ends. */
    c->trailers = true;
    r->target = (sc_slice){c->raw.ptr, c->url_len};
    r->headers = sc_arena_alloc(r->arena, sizeof(sc_header) * (c->nraw ? c->nraw : 1));
    for (size_t i = 0; i < c->nraw; i++) {
        raw_header *h = &c->raw_headers[i];
        r->headers[i].name = (sc_slice){c->raw.ptr + h->name_off, h->name_len};
        r->headers[i].value = sc_slice_trim((sc_slice){c->raw.ptr + h->value_off, h->value_len});
    }
    r->nheaders = c->nraw;
    long q = sc_slice_find(r->target, '?');
    r->path = q < 0 ? r->target : (sc_slice){r->target.ptr, (size_t)q};
    r->query = q < 0 ? SC_SLICE_NULL : (sc_slice){r->target.ptr + q + 1, r->target.len - (size_t)q - 1};
    c->http10 = p->http_major == 1 && p->http_minor == 0;
    c->keep_alive = llhttp_should_keep_alive(p);

    if (p->http_major != 1)
        return reject(c, 505);
    if (!r->method || p->upgrade)
        return reject(c, 501);
    /* RFC 9112: an HTTP/1.1 request carries exactly one Host header. */
    int hosts = 0;
    for (size_t i = 0; i < r->nheaders; i++)
        hosts += sc_slice_eq_nocase(r->headers[i].name, SC_SLICE_LIT("host"));
    if (hosts > 1 || (hosts == 0 && !c->http10))
        return reject(c, 400);
    if (r->path.len == 0 || r->path.ptr[0] != '/')
        return reject(c, 400); /* absolute-form and asterisk-form targets are for proxies */

    sc_router_match(s->router, r->method, r->path, &r->match);
    r->route_index = r->match.index;
    if (r->route_index >= 0) {
        r->route = sc_router_route(s->router, r->route_index);
        if (r->route->max_body)
            c->body_limit = r->route->max_body;
    }
    bool has_body = (p->flags & F_CHUNKED) || ((p->flags & F_CONTENT_LENGTH) && p->content_length > 0);
    bool stream = r->route && (r->route->flags & SC_ROUTE_STREAM_BODY);
    if (stream)
        c->body_limit = UINT64_MAX; /* the handler's sink applies its own limits */
    if ((p->flags & F_CONTENT_LENGTH) && p->content_length > c->body_limit)
        return reject(c, 413);
    sc_slice expect = sc_req_header(r, "expect");
    if (expect.ptr) {
        if (!sc_slice_eq_nocase(expect, SC_SLICE_LIT("100-continue")))
            return reject(c, 417);
        c->expect_continue = has_body && !c->http10;
        if (c->expect_continue && !stream)
            sc_buf_append_str(&c->out, "HTTP/1.1 100 Continue\r\n\r\n");
    }
    c->state = CONN_BODY;
    c->state_since = now_ms(c);
    if (!stream)
        return 0;
    /* A streaming handler decides about the body before any of it is read. */
    c->streaming = true;
    c->body_paused = true;
    dispatch(c);
    return parse_blocked(c) ? HPE_PAUSED : 0;
}

void sc_req_stream_body(sc_req *req, const sc_body_sink *sink, void *ctx)
{
    sc_conn *c = (sc_conn *)((char *)req - offsetof(sc_conn, req));
    c->sink = sink;
    c->sink_ctx = ctx;
    if (c->expect_continue) {
        c->expect_continue = false;
        sc_buf_append_str(&c->out, "HTTP/1.1 100 Continue\r\n\r\n");
    }
    sc_req_resume_body(req);
}

void sc_req_resume_body(sc_req *req)
{
    sc_conn *c = (sc_conn *)((char *)req - offsetof(sc_conn, req));
    if (!c->body_paused || req->finished)
        return;
    c->body_paused = false;
    c->kick = true;
    c->state_since = now_ms(c);
    if (!c->in_parser)
        conn_pump(c);
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
    sc_conn *c = CONN(p);
    c->body_bytes += len;
    if (c->body_bytes > c->body_limit)
        return reject(c, 413);
    c->state_since = now_ms(c);
    if (c->streaming) {
        int rc = c->sink->on_data(c->sink_ctx, at, len);
        if (rc == SC_BODY_PAUSE) {
            c->body_paused = true;
            return HPE_PAUSED;
        }
        return rc ? reject(c, rc) : 0;
    }
    sc_buf_append(&c->body, at, len);
    return 0;
}

static int on_message_complete(llhttp_t *p)
{
    sc_conn *c = CONN(p);
    c->state = CONN_HANDLING;
    if (c->streaming)
        c->sink->on_end(c->sink_ctx);
    else
        dispatch(c);
    return parse_blocked(c) ? HPE_PAUSED : 0;
}

/* ---- input ------------------------------------------------------------------------------------------------ */

/* Parses data; returns how many bytes were consumed. A parse error answers the client and closes. */
static size_t parse(sc_conn *c, const char *data, size_t len)
{
    c->in_parser = true;
    llhttp_errno_t err = llhttp_execute(&c->parser, data, len);
    c->in_parser = false;
    if (err == HPE_OK)
        return len;
    if (err == HPE_PAUSED) {
        size_t used = (size_t)(llhttp_get_error_pos(&c->parser) - data);
        llhttp_resume(&c->parser);
        return used;
    }
    int status = c->error_status ? c->error_status : err == HPE_INVALID_METHOD ? 501 : 400;
    if (!c->error_status)
        sc_log_debug("bad request from %s: %s", c->peer, llhttp_errno_name(err));
    respond_error(c, status);
    return len;
}

static void conn_process_input(sc_conn *c)
{
    /* A pause right after a message's last body byte leaves llhttp short of calling on_message_complete; it does
     * so when run again, even on no input. */
    if (c->kick && !parse_blocked(c)) {
        c->kick = false;
        if (c->in.len == 0)
            parse(c, "", 0);
    }
    while (c->in.len && !parse_blocked(c)) {
        size_t used = parse(c, c->in.ptr, c->in.len);
        sc_buf_consume(&c->in, used);
        if (c->close_after)
            c->in.len = 0; /* nothing after an error or a closing response is read */
    }
}

/* Parses what can be parsed and writes what was produced, until input runs out or something blocks. A flush that
 * the kernel takes whole completes without a write callback, so the loop here is what resumes the parsing that
 * output backpressure had paused. */
static void conn_pump(sc_conn *c)
{
    for (;;) {
        conn_process_input(c);
        conn_flush(c);
        if (c->closing || c->writing || c->in.len == 0 || parse_blocked(c))
            break;
    }
    conn_update(c);
}

/* Handles n bytes that arrived in data (the loop-wide read buffer, or the tail of c->in). */
static void conn_input(sc_conn *c, const char *data, size_t n, bool in_buffer)
{
    if (c->state == CONN_LINGER) {
        c->in.len = 0;
        return;
    }
    if (!in_buffer) {
        size_t used = parse(c, data, n);
        if (used < n && !c->close_after)
            sc_buf_append(&c->in, data + used, n - used);
    } else {
        c->in.len += n;
    }
    conn_pump(c);
}

/* End of input. A request with its handler is abandoned; responses already produced are still sent. */
static void conn_eof(sc_conn *c)
{
    if (c->state == CONN_HANDLING || c->state == CONN_LINGER || pending_output(c) == 0) {
        conn_close(c);
    } else {
        c->close_after = true;
        c->in.len = 0;
        conn_update(c);
    }
}

/* Sends queued TLS ciphertext; false when the connection died. */
static bool tls_send(sc_conn *c)
{
    if (c->hs_pending)
        return true;
    size_t len;
    const char *p = sc_tls_out(c->tls, &len);
    while (len) {
        ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errno == EAGAIN || errno == EWOULDBLOCK;
        }
        c->server->metrics.bytes_sent += (uint64_t)n;
        c->write_since = now_ms(c);
        sc_tls_out_consume(c->tls, (size_t)n);
        p = sc_tls_out(c->tls, &len);
    }
    return true;
}

#define READ_AGAIN (-2)

static void handshake_done(sc_conn *c)
{
    c->tls_ready = true;
    c->server->metrics.tls_handshakes++;
    if (sc_log_enabled(SC_LOG_DEBUG)) {
        char d[128];
        sc_log_debug("TLS from %s: %s", c->peer, sc_tls_describe(c->tls, d, sizeof(d)));
    }
}

static void on_handshake_work(uv_work_t *w)
{
    sc_conn *c = w->data;
    c->hs_result = sc_tls_handshake(c->tls, true);
}

static void conn_readable(sc_conn *c);

static void on_handshake_worked(uv_work_t *w, int status)
{
    sc_conn *c = w->data;
    c->hs_pending = false;
    if (c->closing || status != 0 || c->hs_result < 0 || !tls_send(c)) {
        if (!c->closing)
            conn_close(c);
        conn_unref(c);
        return;
    }
    if (c->hs_result > 0)
        handshake_done(c);
    conn_readable(c); /* what arrived meanwhile, and the HTTP bytes the session may already hold */
    if (!c->closing)
        conn_update(c);
    conn_unref(c);
}

/* Runs the rest of the handshake up to its next wait for input on the threadpool: the public-key operations of
 * mbedTLS take milliseconds, which the loop must not spend. False when it cannot be queued. */
static bool handshake_off_loop(sc_conn *c)
{
    c->hswork.data = c;
    if (uv_queue_work(c->server->loop, &c->hswork, on_handshake_work, on_handshake_worked) != 0)
        return false;
    c->hs_pending = true;
    c->refs++;
    c->server->metrics.tls_handshake_offloads++;
    return true;
}

#define TLS_READS_PER_CALL 4

/* Reads plaintext: > 0 bytes, 0 at end of input, READ_AGAIN when nothing more is there now (or, on TLS, when the
 * read budget of one call is spent: the socket then still signals), -1 on errors. On TLS connections this drives
 * the handshake and decryption. */
static ssize_t transport_read(sc_conn *c, char *buf, size_t cap)
{
    if (!c->tls) {
        for (;;) {
            ssize_t n = read(c->fd, buf, cap);
            if (n >= 0)
                return n;
            if (errno == EINTR)
                continue;
            return errno == EAGAIN || errno == EWOULDBLOCK ? READ_AGAIN : -1;
        }
    }
    /* Socket reads per call: records that yield nothing (warning alerts, which mbedTLS skips, or handshake
     * messages in pieces) must not keep the loop on one client while its socket has more. Whenever the session
     * asks for input it holds no unread record, so stopping there loses nothing: the socket stays readable. */
    int reads = 0;
    for (;;) {
        if (c->tls_ready) {
            ssize_t n = sc_tls_read(c->tls, buf, cap);
            if (n != SC_TLS_WANT_INPUT) {
                if (!tls_send(c)) /* reading may have produced alerts or ticket records */
                    return -1;
                return n;
            }
        } else {
            if (c->hs_pending)
                return READ_AGAIN;
            int hs = sc_tls_handshake(c->tls, false);
            if (hs == SC_TLS_HANDSHAKE_HEAVY) {
                if (!tls_send(c) || !handshake_off_loop(c))
                    return -1;
                return READ_AGAIN;
            }
            if (!tls_send(c) || hs < 0)
                return -1;
            if (hs > 0) {
                handshake_done(c);
                continue;
            }
        }
        /* The session wants ciphertext: read some from the socket. */
        if (reads++ == TLS_READS_PER_CALL)
            return READ_AGAIN;
        char cipher[16 * 1024 + 512];
        ssize_t n = read(c->fd, cipher, sizeof(cipher));
        if (n > 0) {
            sc_tls_feed(c->tls, cipher, (size_t)n);
            continue;
        }
        if (n == 0)
            return 0;
        if (errno == EINTR)
            continue;
        return errno == EAGAIN || errno == EWOULDBLOCK ? READ_AGAIN : -1;
    }
}

static void queue_kick(sc_conn *c);

static void conn_readable(sc_conn *c)
{
    /* A few reads per wake-up at most, so that one busy client cannot starve the others. */
    for (int round = 0; round < 4 && !c->closing && c->reading; round++) {
        bool direct = c->in.len == 0 && !parse_blocked(c);
        char *buf;
        size_t cap;
        if (direct) {
            buf = c->server->readbuf;
            cap = READ_BUF_SIZE;
        } else {
            buf = sc_buf_reserve(&c->in, 16 * 1024);
            cap = c->in.cap - c->in.len;
        }
        ssize_t n = transport_read(c, buf, cap);
        if (n > 0) {
            conn_input(c, buf, (size_t)n, !direct);
            if ((size_t)n < cap && !(c->tls && sc_tls_pending(c->tls)))
                break;
            continue;
        }
        if (n == 0)
            conn_eof(c);
        else if (n != READ_AGAIN)
            conn_close(c);
        break;
    }
    /* Out of rounds with plaintext still inside the TLS session: the socket will not signal it again. */
    if (!c->closing && c->reading && c->tls && !c->hs_pending && sc_tls_pending(c->tls))
        queue_kick(c);
    /* Handshake records the socket did not take yet wait for writability. */
    if (!c->closing && c->tls) {
        conn_flush(c);
        conn_update(c);
    }
}

static void conn_writable(sc_conn *c);

static void on_conn_poll(uv_poll_t *h, int status, int events)
{
    sc_conn *c = (sc_conn *)h;
    if (c->closing)
        return;
    if (status < 0) {
        conn_close(c);
        return;
    }
    if (events & UV_WRITABLE)
        conn_writable(c);
    if (!c->closing && (events & (UV_READABLE | UV_DISCONNECT)))
        conn_readable(c);
}

/* ---- output ----------------------------------------------------------------------------------------------- */

/* All output is written: close now, or shut the write side and linger so that the client reads the last
 * response before it sees the connection go (closing with unread input would send a reset). */
static void output_done(sc_conn *c)
{
    c->write_since = now_ms(c);
    if (!c->close_after || c->closing || c->state == CONN_LINGER)
        return;
    if (c->state == CONN_HANDLING)
        return; /* an error during an in-flight request: wait for it */
    c->state = CONN_LINGER;
    c->state_since = now_ms(c);
    if (c->tls) {
        sc_tls_close_notify(c->tls);
        if (!tls_send(c)) {
            conn_close(c);
            return;
        }
    }
    if (shutdown(c->fd, SHUT_WR) != 0)
        conn_close(c);
}

/* Writes as much output as the socket takes: bytes with send(2), file ranges with sendfile(2). Returns 1 when
 * everything is written, 0 when the socket is full, -1 on a dead connection. */
static int write_out_tls(sc_conn *c);

static int write_out(sc_conn *c)
{
    sc_metrics *m = &c->server->metrics;
    if (c->tls)
        return write_out_tls(c);
    for (;;) {
        size_t until = c->segs ? c->segs->at : c->out.len;
        if (c->out_off < until) {
            /* Bytes that a file range follows (headers, a multipart boundary) wait in the kernel for it
             * (MSG_MORE): the peer gets them in the same segments as the file's first bytes, not in a small
             * packet and a wake-up of their own. */
            int flags = MSG_NOSIGNAL | (c->segs ? MSG_MORE : 0);
            ssize_t n = send(c->fd, c->out.ptr + c->out_off, until - c->out_off, flags);
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
            }
            c->out_off += (size_t)n;
            m->bytes_sent += (uint64_t)n;
            c->write_since = now_ms(c);
            continue;
        }
        if (c->segs) {
            file_seg *f = c->segs;
            off_t off = (off_t)f->offset;
            size_t chunk = f->remaining > (1u << 30) ? (1u << 30) : (size_t)f->remaining;
            ssize_t n = sendfile(c->fd, f->file->fd, &off, chunk);
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
            }
            if (n == 0) {
                sc_log_warn("file shorter than its response (%llu bytes missing): closing %s",
                            (unsigned long long)f->remaining, c->peer);
                return -1; /* the Content-Length promised more: only closing keeps the stream honest */
            }
            f->offset += (uint64_t)n;
            f->remaining -= (uint64_t)n;
            m->bytes_sent += (uint64_t)n;
            c->write_since = now_ms(c);
            if (f->remaining == 0) {
                c->segs = f->next;
                if (!c->segs)
                    c->segs_tail = NULL;
                sc_file_unref(f->file);
                free(f);
            }
            continue;
        }
        /* Everything is out: the buffer starts over. */
        c->out_off = 0;
        shrink(&c->out);
        return 1;
    }
}

static void conn_writable(sc_conn *c);

static void on_file_read(uv_fs_t *req)
{
    sc_conn *c = req->data;
    ssize_t n = req->result;
    uv_fs_req_cleanup(req);
    c->fs_pending = false;
    if (c->closing) {
        conn_unref(c);
        return;
    }
    if (n <= 0) {
        sc_log_warn("reading a file for %s failed or ended early: closing", c->peer);
        conn_close(c);
    } else {
        c->fbuf_len = (size_t)n;
        c->fbuf_off = 0;
        conn_writable(c);
    }
    conn_unref(c);
}

/* The TLS variant of write_out: plaintext is encrypted a record at a time as the socket drains; file ranges are
 * read off the loop (uv_fs_read) into fbuf first. Returns 1 done, 0 waiting (socket or file), -1 dead. */
/* Whether preadv2(RWF_NOWAIT) works here (until it says otherwise). */
static bool nowait_reads = true;

static int write_out_tls(sc_conn *c)
{
    /* A client that drains as fast as we encrypt must not keep the loop to itself: after this many bytes the
     * connection waits for its next writable event (level-triggered, so at once) like everybody else. */
    size_t budget = 256 * 1024;
    if (c->hs_pending)
        return 0; /* the session is busy on the threadpool; its completion flushes */
    for (;;) {
        if (!tls_send(c))
            return -1;
        size_t queued;
        sc_tls_out(c->tls, &queued);
        if (queued)
            return 0; /* the socket is full */
        if (c->tls_ready && budget == 0)
            return 0;
        if (!c->tls_ready)
            return 1; /* handshake bytes are out; HTTP output only comes after the handshake */
        size_t until = c->segs ? c->segs->at : c->out.len;
        if (c->out_off < until) {
            ssize_t n = sc_tls_write(c->tls, c->out.ptr + c->out_off, until - c->out_off);
            if (n < 0)
                return -1;
            c->out_off += (size_t)n;
            continue;
        }
        if (c->segs) {
            file_seg *f = c->segs;
            if (c->fbuf_off < c->fbuf_len) {
                ssize_t n = sc_tls_write(c->tls, c->fbuf + c->fbuf_off, c->fbuf_len - c->fbuf_off);
                if (n < 0)
                    return -1;
                budget = (size_t)n < budget ? budget - (size_t)n : 0;
                c->fbuf_off += (size_t)n;
                f->offset += (uint64_t)n;
                f->remaining -= (uint64_t)n;
                if (f->remaining == 0) {
                    c->segs = f->next;
                    if (!c->segs)
                        c->segs_tail = NULL;
                    sc_file_unref(f->file);
                    free(f);
                    c->fbuf_off = c->fbuf_len = 0;
                }
                continue;
            }
            if (c->fs_pending)
                return 0;
            if (!c->fbuf)
                c->fbuf = sc_alloc(READ_BUF_SIZE);
            size_t want = f->remaining < READ_BUF_SIZE ? (size_t)f->remaining : READ_BUF_SIZE;
            /* What the page cache holds is read right here: with RWF_NOWAIT, preadv2 returns only data that needs
             * no disk I/O (EAGAIN when there is none), so the loop never waits for a disk; the rest, and files on
             * file systems without the flag, go through the threadpool. */
            if (nowait_reads) {
                struct iovec iov = {c->fbuf, want};
                ssize_t n = preadv2(f->file->fd, &iov, 1, (off_t)f->offset, RWF_NOWAIT);
                if (n > 0) {
                    c->fbuf_len = (size_t)n;
                    c->fbuf_off = 0;
                    continue;
                }
                if (n < 0 && (errno == EOPNOTSUPP || errno == ENOSYS || errno == EINVAL))
                    nowait_reads = false;
            }
            uv_buf_t b = uv_buf_init(c->fbuf, (unsigned)want);
            c->fsreq.data = c;
            if (uv_fs_read(c->server->loop, &c->fsreq, f->file->fd, &b, 1, (int64_t)f->offset, on_file_read) != 0)
                return -1;
            c->fs_pending = true;
            c->refs++;
            return 0;
        }
        c->out_off = 0;
        shrink(&c->out);
        free(c->fbuf);
        c->fbuf = NULL;
        return 1;
    }
}

static void conn_flush(sc_conn *c)
{
    if (c->closing)
        return;
    int rc = write_out(c);
    if (rc < 0) {
        conn_close(c);
        return;
    }
    bool was = c->writing;
    c->writing = rc == 0;
    if (!c->writing)
        output_done(c);
    else if (!was)
        c->write_since = now_ms(c);
}

static void conn_writable(sc_conn *c)
{
    conn_flush(c);
    if (!c->closing && !c->writing)
        conn_pump(c); /* the output drained: parsing paused by backpressure may go on */
    else
        conn_update(c);
}

/* Answers a request that was rejected before its handler ran, and closes afterwards. */
static void respond_error(sc_conn *c, int status)
{
    sc_req *r = &c->req;
    if (c->state == CONN_IDLE) {
        /* Rejected before a request began (bad request line): start one for the log and metrics. */
        req_reset(c);
        r->start_ns = uv_hrtime();
    }
    if (c->state == CONN_HANDLING) {
        c->close_after = true;
        return;
    }
    c->close_after = true;
    c->keep_alive = false;
    r->res.headers->len = 0;
    finish(r, sc_res_error(r, status, NULL));
}

/* ---- timers, read interest -------------------------------------------------------------------------------- */

static uint64_t conn_deadline(const sc_conn *c, bool *write_stalled)
{
    const sc_http_limits *l = &c->server->cfg.limits;
    uint64_t d = NO_DEADLINE;
    switch (c->state) {
    case CONN_IDLE:
        if (c->tls && !c->tls_ready)
            d = c->state_since + l->tls_handshake_timeout_ms; /* closed, not answered: there is no HTTP yet */
        else if (!c->writing && c->in.len == 0)
            d = c->state_since + l->keepalive_timeout_ms;
        break;
    case CONN_HEADERS:
        d = c->state_since + l->header_timeout_ms;
        break;
    case CONN_BODY:
        if (!c->body_paused) /* a paused body waits for its handler, which has deadlines of its own */
            d = c->state_since + l->body_timeout_ms;
        break;
    case CONN_HANDLING:
        break;
    case CONN_LINGER:
        d = c->state_since + LINGER_TIMEOUT_MS;
        break;
    }
    *write_stalled = false;
    if (c->writing && c->write_since + l->send_timeout_ms < d) {
        d = c->write_since + l->send_timeout_ms;
        *write_stalled = true;
    }
    return d;
}

static void on_timer(uv_timer_t *t)
{
    sc_conn *c = t->data;
    bool write_stalled;
    c->deadline = NO_DEADLINE;
    uint64_t d = conn_deadline(c, &write_stalled);
    uint64_t now = now_ms(c);
    if (d == NO_DEADLINE)
        return;
    if (d > now) {
        c->deadline = d;
        uv_timer_start(&c->timer, on_timer, d - now, 0);
        return;
    }
    if (write_stalled || c->state == CONN_IDLE || c->state == CONN_LINGER) {
        if (write_stalled)
            sc_log_debug("closing %s: client stopped reading", c->peer);
        conn_close(c);
        return;
    }
    /* Headers or body too slow. */
    respond_error(c, 408);
    conn_flush(c);
    conn_update(c);
}

/* Brings read interest and the timer in line with the connection's state. */
static void conn_update(sc_conn *c)
{
    if (c->closing)
        return;
    bool want_read = !c->hs_pending &&
                     (c->state == CONN_LINGER || (!c->close_after && c->in.len < in_limit(c) &&
                                                  pending_output(c) <= c->server->cfg.limits.max_write_buffer));
    if (want_read && !c->reading && c->tls && sc_tls_pending(c->tls))
        queue_kick(c); /* bytes wait inside the TLS session; no socket event will announce them */
    c->reading = want_read;
    bool socket_full = c->writing && !c->fs_pending && !c->hs_pending;
    int events = (want_read ? UV_READABLE | UV_DISCONNECT : 0) | (socket_full ? UV_WRITABLE : 0);
    if (events != c->events) {
        c->events = events;
        if (events)
            uv_poll_start(&c->poll, events, on_conn_poll);
        else
            uv_poll_stop(&c->poll);
    }
    bool write_stalled;
    uint64_t d = conn_deadline(c, &write_stalled);
    if (d == NO_DEADLINE || d >= c->deadline)
        return; /* the timer fires no later than needed and re-arms itself */
    uint64_t now = now_ms(c);
    c->deadline = d;
    uv_timer_start(&c->timer, on_timer, d > now ? d - now : 0, 0);
}

/* ---- connection open and close ---------------------------------------------------------------------------- */

static void on_handle_closed(uv_handle_t *h)
{
    conn_unref(h->data);
}

static void maybe_done(sc_server *s);

static bool tls_send(sc_conn *c);

static void conn_close(sc_conn *c)
{
    if (c->closing)
        return;
    /* A TLS peer learns that the end is deliberate (RFC 5246 7.2.1), best effort. */
    if (c->tls && c->tls_ready && c->state != CONN_LINGER) {
        sc_tls_close_notify(c->tls);
        tls_send(c);
    }
    c->closing = true;
    /* A handshake step still queued for the threadpool is dropped (one already running finishes): a client that
     * gave up, or was timed out, costs no more public-key work. */
    if (c->hs_pending)
        uv_cancel((uv_req_t *)&c->hswork);
    if ((c->state == CONN_HANDLING || c->dispatched) && !c->req.finished) {
        req_dispose(c); /* the dispose hooks cancel whatever the handler still has pending */
    }
    sc_server *s = c->server;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    if (!c->shed)
        s->nconns--;
    s->nall--;
    /* uv_close stops the poll at once, so the descriptor can be closed right after. */
    uv_close((uv_handle_t *)&c->poll, on_handle_closed);
    close(c->fd);
    c->fd = -1;
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
    maybe_done(s);
}

/* Makes a connection of an open, non-blocking client socket; over the limit it is answered 503 and closed. */
static void conn_start(sc_server *s, int fd, const struct sockaddr *peer, bool tls)
{
    sc_conn *c = sc_calloc(sizeof(*c));
    c->server = s;
    c->fd = fd;
    if (tls && !(s->tls && (c->tls = sc_tls_conn_new(s->tls)))) {
        close(fd);
        free(c);
        return;
    }
    if (uv_poll_init_socket(s->loop, &c->poll, fd) != 0) {
        close(fd);
        free(c);
        return;
    }
    uv_timer_init(s->loop, &c->timer);
    c->poll.data = c;
    c->timer.data = c;
    c->refs = 2;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (peer) {
        sc_addr_format(peer, c->peer, sizeof(c->peer));
        sc_addr_parse(sc_slice_cstr(c->peer), c->peer_addr);
    }
    llhttp_init(&c->parser, HTTP_REQUEST, &s->settings);
    c->parser.data = c;
    c->deadline = NO_DEADLINE;
    c->state = CONN_IDLE;
    c->state_since = c->write_since = uv_now(s->loop);
    c->keep_alive = true;
    req_reset(c);
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->nall++;
    s->metrics.connections_accepted++;
    if (s->nconns >= s->cfg.limits.max_connections) {
        /* Over the limit: answer 503 and close, so the client learns why instead of timing out. (Over TLS there
         * is no HTTP before a handshake, which is the cost the limit is there to avoid: just close.) */
        c->shed = true;
        s->metrics.connections_shed++;
        if (c->tls) {
            conn_close(c);
            return;
        }
        respond_error(c, 503);
        conn_flush(c);
        conn_update(c);
        return;
    }
    s->nconns++;
    if (s->draining) {
        conn_close(c);
        return;
    }
    conn_update(c);
}

static void on_accept_timer(uv_timer_t *t);

static void on_listener(uv_poll_t *h, int status, int events)
{
    struct listener *l = h->data;
    sc_server *s = l->server;
    (void)events;
    if (status < 0) {
        sc_log_warn("listener: %s", uv_strerror(status));
        return;
    }
    /* Accept what is waiting, in bounded batches so that established connections are served too. */
    for (int i = 0; i < 128 && !s->draining; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        int fd = accept4(l->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            conn_start(s, fd, (struct sockaddr *)&ss, l->tls);
            continue;
        }
        if (errno == EINTR || errno == ECONNABORTED)
            continue;
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
            /* Out of descriptors: pausing for a moment lets some close, instead of spinning on the ready socket. */
            sc_log_warn("accept: %s; pausing new connections for 100 ms", strerror(errno));
            for (int k = 0; k < s->nlisteners; k++)
                uv_poll_stop(&s->listeners[k].poll);
            uv_timer_start(&s->accept_timer, on_accept_timer, 100, 0);
        } else if (errno != EAGAIN && errno != EWOULDBLOCK) {
            sc_log_warn("accept: %s", strerror(errno));
        }
        return;
    }
}

static void on_accept_timer(uv_timer_t *t)
{
    sc_server *s = t->data;
    if (!s->draining)
        for (int k = 0; k < s->nlisteners; k++)
            uv_poll_start(&s->listeners[k].poll, UV_READABLE, on_listener);
}

int sc_server_adopt(sc_server *s, int fd, bool tls)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
        return uv_translate_sys_error(errno);
    bool named = getpeername(fd, (struct sockaddr *)&ss, &sl) == 0 && ss.ss_family != AF_UNIX;
    conn_start(s, fd, named ? (struct sockaddr *)&ss : NULL, tls);
    return 0;
}

/* ---- TLS connections with buffered input ---------------------------------------------------------------- */

/* Plaintext or ciphertext already inside a TLS session raises no socket event, so such connections are read
 * from an idle handle instead (which also keeps the loop from sleeping meanwhile). */
static void on_kick(uv_idle_t *h)
{
    sc_server *s = h->data;
    sc_conn *list = s->kicks;
    s->kicks = NULL;
    uv_idle_stop(&s->kick_idle);
    while (list) {
        sc_conn *c = list;
        list = c->kick_next;
        c->kick_queued = false;
        if (!c->closing && c->reading)
            conn_readable(c);
        conn_unref(c);
    }
}

static void queue_kick(sc_conn *c)
{
    sc_server *s = c->server;
    if (c->kick_queued || s->kick_idle_closed)
        return;
    c->kick_queued = true;
    c->refs++;
    c->kick_next = s->kicks;
    s->kicks = c;
    uv_idle_start(&s->kick_idle, on_kick);
}

/* ---- server ----------------------------------------------------------------------------------------------- */

sc_server *sc_server_new(uv_loop_t *loop, const sc_server_config *cfg)
{
    sc_server *s = sc_calloc(sizeof(*s));
    s->loop = loop;
    s->cfg = *cfg;
    s->router = sc_router_new(cfg->routes, cfg->nroutes);
    s->route_names = sc_calloc(sizeof(char *) * (cfg->nroutes ? cfg->nroutes : 1));
    for (size_t i = 0; i < cfg->nroutes; i++)
        s->route_names[i] = cfg->routes[i].pattern;
    s->readbuf = sc_alloc(READ_BUF_SIZE);
    llhttp_settings_init(&s->settings);
    s->settings.on_message_begin = on_message_begin;
    s->settings.on_method_complete = on_method_complete;
    s->settings.on_url = on_url;
    s->settings.on_url_complete = on_url_complete;
    s->settings.on_header_field = on_header_field;
    s->settings.on_header_field_complete = on_header_field_complete;
    s->settings.on_header_value = on_header_value;
    s->settings.on_header_value_complete = on_header_value_complete;
    s->settings.on_headers_complete = on_headers_complete;
    s->settings.on_body = on_body;
    s->settings.on_message_complete = on_message_complete;
    uv_idle_init(loop, &s->kick_idle);
    s->kick_idle.data = s;
    uv_timer_init(loop, &s->drain_timer);
    s->drain_timer.data = s;
    uv_timer_init(loop, &s->accept_timer);
    s->accept_timer.data = s;
    return s;
}

int sc_server_listen_fd(sc_server *s, int fd, int backlog, bool tls)
{
    if (s->nlisteners == 2 || (tls && !s->tls))
        return UV_EINVAL;
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0 || listen(fd, backlog) != 0)
        return uv_translate_sys_error(errno);
    struct listener *l = &s->listeners[s->nlisteners];
    int rc = uv_poll_init_socket(s->loop, &l->poll, fd);
    if (rc != 0)
        return rc;
    l->poll.data = l;
    l->fd = fd;
    l->tls = tls;
    l->server = s;
    s->nlisteners++;
    s->listening = true;
    return uv_poll_start(&l->poll, UV_READABLE, on_listener);
}

void sc_server_set_tls(sc_server *s, sc_tls_config *cfg)
{
    if (cfg)
        sc_tls_config_ref(cfg);
    sc_tls_config_unref(s->tls);
    s->tls = cfg;
}

static void on_listener_closed(uv_handle_t *h)
{
    struct listener *l = h->data;
    l->server->listeners_closed++;
    maybe_done(l->server);
}

static void on_kick_idle_closed(uv_handle_t *h)
{
    sc_server *s = h->data;
    s->kick_idle_closed = true;
    maybe_done(s);
}

static void on_accept_timer_closed(uv_handle_t *h)
{
    sc_server *s = h->data;
    s->accept_timer_closed = true;
    maybe_done(s);
}

static void on_drain_timer_closed(uv_handle_t *h)
{
    sc_server *s = h->data;
    s->drain_timer_closed = true;
    maybe_done(s);
}

static void maybe_done(sc_server *s)
{
    if (!s->draining || s->nall > 0)
        return;
    if (!uv_is_closing((uv_handle_t *)&s->drain_timer)) {
        while (s->kicks) { /* every connection is closed: drop their places in the read queue */
            sc_conn *c = s->kicks;
            s->kicks = c->kick_next;
            c->kick_queued = false;
            conn_unref(c);
        }
        uv_close((uv_handle_t *)&s->drain_timer, on_drain_timer_closed);
        uv_close((uv_handle_t *)&s->kick_idle, on_kick_idle_closed);
        return;
    }
    if (s->listeners_closed == s->nlisteners && s->drain_timer_closed && s->accept_timer_closed &&
        s->kick_idle_closed && s->on_done) {
        void (*cb)(void *) = s->on_done;
        s->on_done = NULL;
        cb(s->on_done_data);
    }
}

static void on_drain_timeout(uv_timer_t *t)
{
    sc_server *s = t->data;
    if (s->nall)
        sc_log_warn("drain timeout: closing %llu connections", (unsigned long long)s->nall);
    while (s->conns)
        conn_close(s->conns);
}

void sc_server_shutdown(sc_server *s, void (*on_done)(void *data), void *data)
{
    if (s->draining)
        return;
    s->draining = true;
    s->on_done = on_done;
    s->on_done_data = data;
    for (int k = 0; k < s->nlisteners; k++) {
        uv_close((uv_handle_t *)&s->listeners[k].poll, on_listener_closed);
        close(s->listeners[k].fd);
        s->listeners[k].fd = -1;
    }
    uv_close((uv_handle_t *)&s->accept_timer, on_accept_timer_closed);
    uv_timer_start(&s->drain_timer, on_drain_timeout, s->cfg.limits.drain_timeout_ms, 0);
    sc_conn *c = s->conns;
    while (c) {
        sc_conn *next = c->next;
        if (c->state == CONN_IDLE && !c->writing && c->out.len == 0 && c->in.len == 0)
            conn_close(c);
        else
            c->keep_alive = false; /* the response in progress says Connection: close */
        c = next;
    }
    maybe_done(s);
}

void sc_server_free(sc_server *s)
{
    if (!s)
        return;
    sc_router_free(s->router);
    sc_tls_config_unref(s->tls);
    free(s->route_names);
    free(s->readbuf);
    sc_metrics_free(&s->metrics);
    free(s);
}

uv_loop_t *sc_server_loop(const sc_server *s) { return s->loop; }

void sc_server_metrics_render(sc_server *s, sc_buf *out)
{
    sc_metrics_render(&s->metrics, s->route_names, s->nconns, out);
}
