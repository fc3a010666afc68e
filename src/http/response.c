/* The response as handlers build it (headers, error bodies, file ranges of the body) and its serialisation: the
 * status line, the headers the server adds (Date, Content-Type, Content-Length, Strict-Transport-Security on
 * secure connections, Connection, CORS), and the hand-over of file ranges to the connection's output queue. The
 * HTTP layer knows no body format: error bodies are written by the server's error_body hook. */
#include <string.h>
#include <time.h>

#include "core/mem.h"
#include "http/http1.h"
#include "http/method.h"
#include "http/status.h"

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
    sc_buf_append_str(out, message);
    return "text/plain; charset=utf-8";
}

int sc_res_error(sc_req *req, int status, const char *message)
{
    sc_http_conn *c = sc_http_conn_of(req);
    req->res.body->len = 0;
    for (sc_res_part *p = req->res.parts; p; p = p->next)
        sc_file_unref(p->file);
    req->res.parts = req->res.parts_tail = NULL;
    req->res.parts_len = 0;
    sc_error_body_fn write_body = c->server->cfg.error_body ? c->server->cfg.error_body : plain_error_body;
    req->res.content_type = write_body(req->res.body, status, message ? message : sc_http_default_message(status));
    return status;
}

static void append_status_line(sc_buf *out, int status)
{
    sc_buf_append_str(out, "HTTP/1.1 ");
    sc_buf_append_u64(out, (uint64_t)status);
    sc_buf_append_char(out, ' ');
    sc_buf_append_str(out, sc_http_reason(status));
    sc_buf_append(out, "\r\n", 2);
}

uint64_t sc_http_response_write(sc_http_conn *c, int status)
{
    sc_req *req = &c->req;
    sc_server *s = c->server;
    bool no_body = status == 204 || status == 304 || status < 200;
    uint64_t body_len = no_body ? 0 : req->res.body->len + req->res.parts_len;
    sc_buf *out = &c->super.out;
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
    if (s->cfg.hsts_max_age && sc_conn_secure(&c->super)) {
        sc_buf_append_str(out, "Strict-Transport-Security: max-age=");
        sc_buf_append_u64(out, s->cfg.hsts_max_age);
        sc_buf_append(out, "\r\n", 2);
    }
    if (c->close_after)
        sc_buf_append_str(out, "Connection: close\r\n");
    else if (c->http10)
        sc_buf_append_str(out, "Connection: keep-alive\r\n");
    sc_cors_response_headers(s->cfg.cors, req, out);
    sc_buf_append(out, req->res.headers->ptr, req->res.headers->len);
    sc_buf_append(out, "\r\n", 2);
    if (req->method != SC_M_HEAD && body_len) {
        size_t body_at = out->len;
        sc_buf_append(out, req->res.body->ptr, req->res.body->len);
        /* File ranges move to the connection, which sends them in place. */
        for (sc_res_part *p = req->res.parts; p; p = p->next)
            sc_conn_queue_file(&c->super, body_at + p->at, p->file, p->offset, p->len);
        req->res.parts = req->res.parts_tail = NULL; /* the references went with them */
    }
    return body_len;
}
