/* HTTP/1.1 connections: llhttp glue, per-request parsing state, input, output, limits and timeouts, open and
 * close. Bytes come and go through the connection's transport (net/conn.h, net/transport.h): this file does not
 * know whether they are encrypted.
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
 * Lifetimes: the connection holds one reference per open handle (the network connection's poll handle and the
 * timer here); it is freed when the last one is closed, never inside its own callbacks. */
#include "http/http1.h"

#include <stdlib.h>
#include <unistd.h>

#include "core/log.h"
#include "core/mem.h"
#include "http/method.h"

#define LINGER_TIMEOUT_MS 2000

static void conn_flush(sc_http_conn *c);
static void conn_update(sc_http_conn *c);

static size_t in_limit(const sc_http_conn *c)
{
    const sc_http_limits *l = &c->server->cfg.limits;
    return l->max_header_bytes + l->max_url_bytes + SC_HTTP_READ_BUF_SIZE;
}

/* Output is backed up when more than STACCATO_MAX_WRITE_BUFFER waits for this client, or, while the server's
 * queued output as a whole is over its budget (STACCATO_MAX_OUTPUT_MEMORY), when any of this client's response
 * bytes still wait in memory: then the connection reads no further requests until its output drains or the total
 * falls back within the budget. A connection is looked at again on each write event, which every connection with
 * output in memory has coming, so none waits for the others. */
static bool output_backed_up(const sc_http_conn *c)
{
    const sc_server *s = c->server;
    const sc_http_limits *l = &s->cfg.limits;
    /* The total counts this connection's output as of its last flush (out_counted): use what is queued now. */
    size_t queued = c->super.out.len - c->super.out_off;
    if (l->max_output_memory && queued && s->output_memory - c->out_counted + queued > l->max_output_memory)
        return true;
    return sc_conn_pending_output(&c->super) > l->max_write_buffer;
}

/* Parsing stops while a request is with its handler, while output is backed up, and once the connection is on
 * its way out. */
static bool parse_blocked(const sc_http_conn *c)
{
    return c->super.closing || c->close_after || c->state == CONN_HANDLING || c->state == CONN_LINGER ||
           c->body_paused || output_backed_up(c);
}

/* ---- budgets ---------------------------------------------------------------------------------------------- */

/* Takes n more bytes of the server's body budget (STACCATO_MAX_BODY_MEMORY) for the request; false, taking
 * nothing, when that would pass the budget. */
static bool body_reserve(sc_http_conn *c, uint64_t n)
{
    sc_server *s = c->server;
    uint64_t max = s->cfg.limits.max_body_memory;
    if (max && (s->body_memory > max || n > max - s->body_memory))
        return false;
    s->body_memory += n;
    c->body_reserved += n;
    return true;
}

void sc_http_body_release(sc_http_conn *c)
{
    c->server->body_memory -= c->body_reserved;
    c->body_reserved = 0;
}

/* Brings the server's total of output queued in memory in line with this connection's (none once closing). */
static void output_account(sc_http_conn *c)
{
    size_t queued = c->super.closing ? 0 : c->super.out.len - c->super.out_off;
    c->server->output_memory = c->server->output_memory - c->out_counted + queued;
    c->out_counted = queued;
}

/* The body clock stops while the body is not read for the server's own reasons (its handler has not claimed it,
 * or its sink asked for a pause), so that the minimum rate measures the client alone. */
static void body_pause(sc_http_conn *c)
{
    c->body_paused = true;
    c->paused_since = sc_conn_now(&c->super);
}

/* ---- llhttp callbacks ------------------------------------------------------------------------------------- */

#define CONN(p) ((sc_http_conn *)(p)->data)

static int reject(sc_http_conn *c, int status)
{
    c->error_status = status;
    return -1;
}

static int on_message_begin(llhttp_t *p)
{
    sc_http_conn *c = CONN(p);
    sc_http_req_reset(c);
    c->req.start_ns = uv_hrtime();
    c->state = CONN_HEADERS;
    c->state_since = sc_conn_now(&c->super);
    return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t len)
{
    sc_http_conn *c = CONN(p);
    if (c->url_len + len > c->server->cfg.limits.max_url_bytes)
        return reject(c, 414);
    sc_buf_append(&c->raw, at, len);
    c->url_len += (uint32_t)len;
    return 0;
}

static int header_bytes(sc_http_conn *c, size_t len)
{
    c->header_bytes += len;
    return c->header_bytes > c->server->cfg.limits.max_header_bytes ? reject(c, 431) : 0;
}

/* Trailers of a chunked body count against the header limit but are not kept: the request's slices point into
 * c->raw, which must not grow (and move) once the headers are complete. */
static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
    sc_http_conn *c = CONN(p);
    if (header_bytes(c, len))
        return -1;
    if (!c->trailers)
        sc_buf_append(&c->raw, at, len);
    return 0;
}

static int on_header_field_complete(llhttp_t *p)
{
    sc_http_conn *c = CONN(p);
    if (c->trailers)
        return 0;
    if (c->nraw >= c->server->cfg.limits.max_headers)
        return reject(c, 431);
    if (c->nraw == c->raw_cap) {
        c->raw_cap = c->raw_cap ? c->raw_cap * 2 : 16;
        c->raw_headers = sc_realloc(c->raw_headers, c->raw_cap * sizeof(sc_raw_header));
    }
    sc_raw_header *h = &c->raw_headers[c->nraw++];
    h->name_off = c->cur_off;
    h->name_len = (uint32_t)(c->raw.len - c->cur_off);
    h->value_off = (uint32_t)c->raw.len;
    h->value_len = 0;
    return 0;
}

/* A field value never continues on the next line. llhttp, even in strict mode, takes "X: y\r\n Content-Length: 43"
 * as one value folded over two lines (obs-fold, RFC 9112 section 5.2), delivered as a second span that starts
 * right after the line end; a front end that does not fold reads two fields there. Such a request is a 400. (CR,
 * LF, NUL and the other control bytes inside a value are refused by llhttp itself in strict mode, so a span never
 * holds them.) */
static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
    sc_http_conn *c = CONN(p);
    if (header_bytes(c, len))
        return -1;
    char before = at > c->chunk ? at[-1] : c->before_chunk;
    if (before == '\n')
        return reject(c, 400); /* a span right after a line end continues a folded value */
    if (!c->trailers)
        sc_buf_append(&c->raw, at, len);
    return 0;
}

static int on_header_value_complete(llhttp_t *p)
{
    sc_http_conn *c = CONN(p);
    if (c->trailers)
        return 0;
    sc_raw_header *h = &c->raw_headers[c->nraw - 1];
    h->value_len = (uint32_t)(c->raw.len - h->value_off);
    c->cur_off = (uint32_t)c->raw.len;
    return 0;
}

static int on_url_complete(llhttp_t *p)
{
    sc_http_conn *c = CONN(p);
    c->cur_off = (uint32_t)c->raw.len;
    return 0;
}

static unsigned method_bit(llhttp_t *p)
{
    switch (llhttp_get_method(p)) {
    case HTTP_GET:
        return SC_M_GET;
    case HTTP_HEAD:
        return SC_M_HEAD;
    case HTTP_POST:
        return SC_M_POST;
    case HTTP_PUT:
        return SC_M_PUT;
    case HTTP_PATCH:
        return SC_M_PATCH;
    case HTTP_DELETE:
        return SC_M_DELETE;
    case HTTP_OPTIONS:
        return SC_M_OPTIONS;
    default:
        return 0;
    }
}

/* The method is known before the headers: an error found while reading them (431) still answers a HEAD
 * without a body. */
static int on_method_complete(llhttp_t *p)
{
    sc_http_conn *c = CONN(p);
    c->req.method_name = sc_slice_cstr(llhttp_method_name(llhttp_get_method(p)));
    c->req.method = method_bit(p);
    return 0;
}

/* The only transfer coding a request may have is chunked, alone, in one field: a list ("identity, chunked",
 * "gzip, chunked", "chunked, chunked") or a second Transfer-Encoding field is where a front end and this server
 * could disagree about where the body ends. Two fields or a list that names chunked are malformed (400); any other
 * coding is one the server does not implement (501). Content-Length beside Transfer-Encoding is refused by llhttp.
 * Returns 0 or the status to answer. */
static int check_transfer_encoding(const sc_req *r)
{
    const sc_slice *te = NULL;
    for (size_t i = 0; i < r->nheaders; i++) {
        if (!sc_slice_eq_nocase(r->headers[i].name, SC_SLICE_LIT("transfer-encoding")))
            continue;
        if (te)
            return 400;
        te = &r->headers[i].value;
    }
    if (!te || sc_slice_eq_nocase(*te, SC_SLICE_LIT("chunked")))
        return 0;
    for (size_t i = 0; i + 7 <= te->len; i++)
        if (sc_slice_eq_nocase((sc_slice){te->ptr + i, 7}, SC_SLICE_LIT("chunked")))
            return 400;
    return 501;
}

static int on_headers_complete(llhttp_t *p)
{
    sc_http_conn *c = CONN(p);
    sc_req *r = &c->req;
    sc_server *s = c->server;

    /* The raw buffer no longer grows, so slices into it are stable until the request ends. */
    c->trailers = true;
    r->target = (sc_slice){c->raw.ptr, c->url_len};
    r->headers = sc_arena_alloc(r->arena, sizeof(sc_header) * (c->nraw ? c->nraw : 1));
    for (size_t i = 0; i < c->nraw; i++) {
        sc_raw_header *h = &c->raw_headers[i];
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
    int status = check_transfer_encoding(r);
    if (status)
        return reject(c, status);

    sc_router_match(s->router, r->method, r->path, &r->match);
    r->route_index = r->match.index;
    if (r->route_index >= 0) {
        r->route = sc_router_route(s->router, r->route_index);
        if (r->route->max_body)
            c->body_limit = r->route->max_body;
        else if ((r->route->flags & SC_ROUTE_JSON_BODY) && s->cfg.limits.max_json_body_bytes)
            c->body_limit = s->cfg.limits.max_json_body_bytes;
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
    }
    /* The gate sees the headers only: a caller it turns away is answered now, with the body (if any) never read,
     * and a request with a body then cannot go on (its body would be taken for the next request). One without a
     * body ends as usual, with the gate's answer, when dispatched. */
    status = sc_http_gate(c);
    if (status && has_body) {
        c->close_after = true;
        c->keep_alive = false;
        sc_http_finish(r, status);
        return HPE_PAUSED;
    }
    /* A buffered body is held for the whole of its declared length from the start (a chunked one as it comes). */
    if (!stream && (p->flags & F_CONTENT_LENGTH) && p->content_length > 0 && !body_reserve(c, p->content_length))
        return reject(c, 503);
    if (c->expect_continue && !stream)
        sc_buf_append_str(&c->super.out, "HTTP/1.1 100 Continue\r\n\r\n");
    c->state = CONN_BODY;
    c->state_since = c->body_since = sc_conn_now(&c->super);
    if (!stream)
        return 0;
    /* A streaming handler decides about the body before any of it is read. */
    c->streaming = true;
    body_pause(c);
    sc_http_dispatch(c);
    return parse_blocked(c) ? HPE_PAUSED : 0;
}

void sc_req_stream_body(sc_req *req, const sc_body_sink *sink, void *ctx)
{
    sc_http_conn *c = sc_http_conn_of(req);
    c->sink = sink;
    c->sink_ctx = ctx;
    if (c->expect_continue) {
        c->expect_continue = false;
        sc_buf_append_str(&c->super.out, "HTTP/1.1 100 Continue\r\n\r\n");
    }
    sc_req_resume_body(req);
}

void sc_req_resume_body(sc_req *req)
{
    sc_http_conn *c = sc_http_conn_of(req);
    if (!c->body_paused || req->finished)
        return;
    c->body_paused = false;
    c->kick = true;
    c->state_since = sc_conn_now(&c->super);
    c->body_since += c->state_since - c->paused_since;
    if (!c->in_parser)
        sc_http_conn_pump(c);
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
    sc_http_conn *c = CONN(p);
    c->body_bytes += len;
    if (c->body_bytes > c->body_limit)
        return reject(c, 413);
    c->state_since = sc_conn_now(&c->super);
    if (c->streaming) {
        int rc = c->sink->on_data(c->sink_ctx, at, len);
        if (rc == SC_BODY_PAUSE) {
            body_pause(c);
            return HPE_PAUSED;
        }
        return rc ? reject(c, rc) : 0;
    }
    if (c->body_bytes > c->body_reserved && !body_reserve(c, c->body_bytes - c->body_reserved))
        return reject(c, 503); /* a chunked body past the budget */
    sc_buf_append(&c->body, at, len);
    return 0;
}

static int on_message_complete(llhttp_t *p)
{
    sc_http_conn *c = CONN(p);
    c->state = CONN_HANDLING;
    if (c->streaming)
        c->sink->on_end(c->sink_ctx);
    else
        sc_http_dispatch(c);
    return parse_blocked(c) ? HPE_PAUSED : 0;
}

/* ---- input ------------------------------------------------------------------------------------------------ */

/* Parses data; returns how many bytes were consumed. A parse error answers the client and closes. */
static size_t parse(sc_http_conn *c, const char *data, size_t len)
{
    c->in_parser = true;
    c->chunk = data;
    llhttp_errno_t err = llhttp_execute(&c->parser, data, len);
    c->in_parser = false;
    if (err == HPE_OK) {
        if (len)
            c->before_chunk = data[len - 1];
        return len;
    }
    if (err == HPE_PAUSED) {
        size_t used = (size_t)(llhttp_get_error_pos(&c->parser) - data);
        llhttp_resume(&c->parser);
        if (used)
            c->before_chunk = data[used - 1];
        return used;
    }
    int status = c->error_status ? c->error_status : err == HPE_INVALID_METHOD ? 501 : 400;
    if (!c->error_status)
        sc_log_debug("bad request from %s: %s", c->super.peer, llhttp_errno_name(err));
    sc_http_respond_error(c, status);
    return len;
}

static void conn_process_input(sc_http_conn *c)
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

/* A flush that the kernel takes whole completes without a write callback, so the loop here is what resumes the
 * parsing that output backpressure had paused. */
void sc_http_conn_pump(sc_http_conn *c)
{
    for (;;) {
        conn_process_input(c);
        conn_flush(c);
        if (c->super.closing || c->super.writing || c->in.len == 0 || parse_blocked(c))
            break;
    }
    conn_update(c);
}

/* Handles n bytes that arrived in data (the loop-wide read buffer, or the tail of c->in). */
static void conn_input(sc_http_conn *c, const char *data, size_t n, bool in_buffer)
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
    sc_http_conn_pump(c);
}

/* End of input. A request with its handler is abandoned; responses already produced are still sent. */
static void conn_eof(sc_http_conn *c)
{
    if (c->state == CONN_HANDLING || c->state == CONN_LINGER || sc_conn_pending_output(&c->super) == 0) {
        sc_http_conn_close(c);
    } else {
        c->close_after = true;
        c->in.len = 0;
        conn_update(c);
    }
}

static void conn_readable(sc_http_conn *c)
{
    /* A few reads per wake-up at most, so that one busy client cannot starve the others. */
    for (int round = 0; round < 4 && !c->super.closing && c->super.reading; round++) {
        bool direct = c->in.len == 0 && !parse_blocked(c);
        char *buf;
        size_t cap;
        if (direct) {
            buf = c->server->readbuf;
            cap = SC_HTTP_READ_BUF_SIZE;
        } else {
            buf = sc_buf_reserve(&c->in, 16 * 1024);
            cap = c->in.cap - c->in.len;
        }
        ssize_t n = sc_conn_read(&c->super, buf, cap);
        if (n > 0) {
            conn_input(c, buf, (size_t)n, !direct);
            if ((size_t)n < cap && !sc_conn_has_pending(&c->super))
                break;
            continue;
        }
        if (n == 0)
            conn_eof(c);
        else if (n != SC_NET_AGAIN)
            sc_http_conn_close(c);
        break;
    }
    /* Out of rounds with input still inside the transport (plaintext in a TLS session): the socket will not
     * signal it again. */
    if (!c->super.closing && c->super.reading)
        sc_conn_check_pending(&c->super);
    /* Bytes the transport produced by itself (handshake records) that the socket did not take yet wait for
     * writability. */
    if (!c->super.closing && sc_conn_speaks(&c->super)) {
        conn_flush(c);
        conn_update(c);
    }
}

static void conn_writable(sc_http_conn *c);

static void on_conn_poll(uv_poll_t *h, int status, int events)
{
    sc_http_conn *c = SC_CONTAINER_OF(SC_CONTAINER_OF(h, sc_conn, poll), sc_http_conn, super);
    if (c->super.closing)
        return;
    if (status < 0) {
        sc_http_conn_close(c);
        return;
    }
    if (events & UV_WRITABLE)
        conn_writable(c);
    if (!c->super.closing && (events & (UV_READABLE | UV_DISCONNECT)))
        conn_readable(c);
}

/* ---- output ----------------------------------------------------------------------------------------------- */

/* All output is written: close now, or shut the write side and linger so that the client reads the last
 * response before it sees the connection go (closing with unread input would send a reset). */
static void output_done(sc_http_conn *c)
{
    c->super.write_since = sc_conn_now(&c->super);
    if (!c->close_after || c->super.closing || c->state == CONN_LINGER)
        return;
    if (c->state == CONN_HANDLING)
        return; /* an error during an in-flight request: wait for it */
    c->state = CONN_LINGER;
    c->state_since = sc_conn_now(&c->super);
    if (sc_conn_shutdown(&c->super) != 0)
        sc_http_conn_close(c);
}

/* Writes as much output as the transport and the socket take (bytes, and file ranges in place). */
static void conn_flush(sc_http_conn *c)
{
    if (c->super.closing)
        return;
    int rc = sc_conn_write_out(&c->super);
    if (rc < 0) {
        sc_http_conn_close(c);
        return;
    }
    output_account(c);
    bool was = c->super.writing;
    c->super.writing = rc == 0;
    if (!c->super.writing)
        output_done(c);
    else if (!was)
        c->super.write_since = sc_conn_now(&c->super);
}

static void conn_writable(sc_http_conn *c)
{
    conn_flush(c);
    if (!c->super.closing && !c->super.writing)
        sc_http_conn_pump(c); /* the output drained: parsing paused by backpressure may go on */
    else
        conn_update(c);
}

void sc_http_respond_error(sc_http_conn *c, int status)
{
    sc_req *r = &c->req;
    if (c->state == CONN_IDLE) {
        /* Rejected before a request began (bad request line): start one for the log and metrics. */
        sc_http_req_reset(c);
        r->start_ns = uv_hrtime();
    }
    if (c->state == CONN_HANDLING) {
        c->close_after = true;
        return;
    }
    c->close_after = true;
    c->keep_alive = false;
    r->res.headers->len = 0;
    if (status == 503)
        sc_res_header(r, "Retry-After", SC_SLICE_LIT("1")); /* a budget or limit that frees up as others end */
    sc_http_finish(r, sc_res_error(r, status, NULL));
}

/* ---- timers, read interest -------------------------------------------------------------------------------- */

static uint64_t conn_deadline(const sc_http_conn *c, bool *write_stalled)
{
    const sc_http_limits *l = &c->server->cfg.limits;
    uint64_t d = SC_HTTP_NO_DEADLINE;
    switch (c->state) {
    case CONN_IDLE:
        if (!c->super.ready) /* the transport's handshake: closed, not answered, as there is no HTTP yet */
            d = c->state_since + l->tls_handshake_timeout_ms;
        else if (!c->super.writing && c->in.len == 0)
            d = c->state_since + l->keepalive_timeout_ms;
        break;
    case CONN_HEADERS:
        d = c->state_since + l->header_timeout_ms;
        break;
    case CONN_BODY:
        if (c->body_paused) /* a paused body waits for its handler, which has deadlines of its own */
            break;
        d = c->state_since + l->body_timeout_ms;
        /* The minimum rate: b bytes received buy b / rate seconds since the body began, and never less than the
         * grace period. Each byte moves this later, so the lazily re-armed timer suits it as it is. */
        if (l->min_body_rate && c->body_bytes <= UINT64_MAX / 1000) {
            uint64_t earned = c->body_bytes * 1000 / l->min_body_rate + 1;
            uint64_t rate_d = c->body_since +
                              (earned > l->min_body_rate_grace_ms ? earned : l->min_body_rate_grace_ms);
            if (rate_d < d)
                d = rate_d;
        }
        break;
    case CONN_HANDLING:
        break;
    case CONN_LINGER:
        d = c->state_since + LINGER_TIMEOUT_MS;
        break;
    }
    *write_stalled = false;
    if (c->super.writing && c->super.write_since + l->send_timeout_ms < d) {
        d = c->super.write_since + l->send_timeout_ms;
        *write_stalled = true;
    }
    return d;
}

static void on_timer(uv_timer_t *t)
{
    sc_http_conn *c = t->data;
    bool write_stalled;
    c->deadline = SC_HTTP_NO_DEADLINE;
    uint64_t d = conn_deadline(c, &write_stalled);
    uint64_t now = sc_conn_now(&c->super);
    if (d == SC_HTTP_NO_DEADLINE)
        return;
    if (d > now) {
        c->deadline = d;
        uv_timer_start(&c->timer, on_timer, d - now, 0);
        return;
    }
    if (write_stalled || c->state == CONN_IDLE || c->state == CONN_LINGER) {
        if (write_stalled)
            sc_log_debug("closing %s: client stopped reading", c->super.peer);
        sc_http_conn_close(c);
        return;
    }
    /* Headers or body too slow. */
    sc_http_respond_error(c, 408);
    conn_flush(c);
    conn_update(c);
}

/* Brings read interest and the timer in line with the connection's state. */
static void conn_update(sc_http_conn *c)
{
    if (c->super.closing)
        return;
    bool want_read = !c->super.hold_reads &&
                     (c->state == CONN_LINGER ||
                      (!c->close_after && c->in.len < in_limit(c) && !output_backed_up(c)));
    if (want_read && !c->super.reading)
        sc_conn_check_pending(&c->super); /* bytes wait inside the transport; no socket event will announce them */
    sc_conn_watch(&c->super, want_read);
    bool write_stalled;
    uint64_t d = conn_deadline(c, &write_stalled);
    if (d == SC_HTTP_NO_DEADLINE || d >= c->deadline)
        return; /* the timer fires no later than needed and re-arms itself */
    uint64_t now = sc_conn_now(&c->super);
    c->deadline = d;
    uv_timer_start(&c->timer, on_timer, d > now ? d - now : 0, 0);
}

/* ---- connection open and close ---------------------------------------------------------------------------- */

static void on_timer_closed(uv_handle_t *h)
{
    sc_http_conn *c = h->data;
    sc_conn_unref(&c->super);
}

void sc_http_conn_close(sc_http_conn *c)
{
    if (c->super.closing)
        return;
    sc_conn_close(&c->super); /* the transport's last word, then the socket goes */
    if ((c->state == CONN_HANDLING || c->dispatched) && !c->req.finished) {
        sc_http_req_dispose(c); /* the dispose hooks cancel whatever the handler still has pending */
    }
    sc_server *s = c->server;
    sc_http_body_release(c);
    output_account(c);
    if (c->peer_counted)
        sc_peer_table_release(&s->peers, c->super.peer_addr);
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    if (!c->shed)
        s->nconns--;
    s->nall--;
    uv_close((uv_handle_t *)&c->timer, on_timer_closed);
    sc_http_server_maybe_done(s);
}

/* The last reference went (in a close or completion callback). */
static void on_conn_free(sc_conn *conn)
{
    sc_http_conn *c = SC_CONTAINER_OF(conn, sc_http_conn, super);
    sc_buf_free(&c->in);
    sc_buf_free(&c->raw);
    sc_buf_free(&c->body);
    sc_buf_free(&c->res_headers);
    sc_buf_free(&c->res_body);
    sc_arena_reset(&c->arena);
    free(c->raw_headers);
    free(c);
}

static void on_transport_readable(sc_conn *conn) { conn_readable(SC_CONTAINER_OF(conn, sc_http_conn, super)); }

static void on_transport_writable(sc_conn *conn) { conn_writable(SC_CONTAINER_OF(conn, sc_http_conn, super)); }

static void on_transport_error(sc_conn *conn) { sc_http_conn_close(SC_CONTAINER_OF(conn, sc_http_conn, super)); }

static const sc_conn_handler handler = {
    .on_readable = on_transport_readable,
    .on_writable = on_transport_writable,
    .on_error = on_transport_error,
    .on_free = on_conn_free,
};

/* A connection over a limit is answered 503 and closed, so the client learns why instead of timing out. (Over TLS
 * there is no HTTP before a handshake, which is the cost the limits are there to avoid: it is just closed.) It is
 * not counted against the limits. */
static void shed(sc_http_conn *c)
{
    c->shed = true;
    if (!c->super.ready) {
        sc_http_conn_close(c);
        return;
    }
    sc_http_respond_error(c, 503);
    conn_flush(c);
    conn_update(c);
}

void sc_http_conn_start(sc_server *s, int fd, const struct sockaddr *peer, bool secure)
{
    sc_http_conn *c = sc_calloc(sizeof(*c));
    c->server = s;
    if (sc_conn_init(&c->super, &s->net, fd, peer, secure, s->tls_config, &handler, on_conn_poll) != 0) {
        close(fd);
        free(c);
        return;
    }
    uv_timer_init(s->loop, &c->timer);
    c->timer.data = c;
    sc_conn_ref(&c->super); /* for the timer */
    llhttp_init(&c->parser, HTTP_REQUEST, &s->settings);
    c->parser.data = c;
    c->deadline = SC_HTTP_NO_DEADLINE;
    c->state = CONN_IDLE;
    c->state_since = c->super.write_since = uv_now(s->loop);
    c->keep_alive = true;
    sc_http_req_reset(c);
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->nall++;
    s->metrics.connections_accepted++;
    if (s->nconns >= s->cfg.limits.max_connections) {
        s->metrics.connections_shed++;
        shed(c);
        return;
    }
    /* Over the cap of its address: the same answer. A reverse proxy in STACCATO_TRUSTED_PROXIES carries many
     * clients and is not counted; neither is a peer without an address (a socketpair). */
    uint64_t cap = s->cfg.limits.max_connections_per_address;
    const sc_cidr_list *trusted = s->cfg.trusted_proxies;
    if (cap && peer && !(trusted && sc_cidr_list_contains(trusted, c->super.peer_addr))) {
        if (!sc_peer_table_take(&s->peers, c->super.peer_addr, cap > UINT32_MAX ? UINT32_MAX : (uint32_t)cap)) {
            s->connections_refused_per_address++;
            shed(c);
            return;
        }
        c->peer_counted = true;
    }
    s->nconns++;
    if (s->draining) {
        sc_http_conn_close(c);
        return;
    }
    conn_update(c);
}

void sc_http_parser_settings(llhttp_settings_t *settings)
{
    llhttp_settings_init(settings);
    settings->on_message_begin = on_message_begin;
    settings->on_method_complete = on_method_complete;
    settings->on_url = on_url;
    settings->on_url_complete = on_url_complete;
    settings->on_header_field = on_header_field;
    settings->on_header_field_complete = on_header_field_complete;
    settings->on_header_value = on_header_value;
    settings->on_header_value_complete = on_header_value_complete;
    settings->on_headers_complete = on_headers_complete;
    settings->on_body = on_body;
    settings->on_message_complete = on_message_complete;
}
