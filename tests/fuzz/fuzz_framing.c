/* libFuzzer driver: request framing and header values in strict mode, against request smuggling.
 *
 * Each input describes one request built from a vocabulary of framing elements: header lines that are fine
 * (Content-Length, Transfer-Encoding: chunked, ordinary fields whose values the input chooses) and the forms two
 * HTTP parsers may read differently (obs-fold, a bare CR or LF, a Transfer-Encoding list or a second one,
 * Content-Length beside Transfer-Encoding or twice, a space before the colon, a control byte in a value, chunk
 * data not followed by CRLF...). The body follows as the header lines say (or not, as the input says), and behind
 * it comes a second request, GET /smuggled.
 *
 *     <method> <target> HTTP/1.1 CRLF          the first request, as the input builds it
 *     Host: a CRLF
 *     (element CRLF)*                           from the vocabulary below, values from the input
 *     CRLF
 *     body                                      framed by Content-Length or chunked, or mis-framed
 *     GET /smuggled HTTP/1.1 CRLF Host: a CRLF CRLF
 *
 * Invariant (abort on violation): when the first request holds an ambiguous element, the server answers it with
 * an error and reads no further, so the handler of /smuggled never runs. (A well-formed first request is followed
 * by /smuggled legitimately; then nothing is checked but the absence of crashes, leaks and hangs.) Another check:
 * a header value that reaches a handler never holds CR, LF or NUL.
 *
 * The server runs on one loop for the whole run; each input is one connection over a socketpair, as in
 * fuzz_http. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "core/buf.h"
#include "core/log.h"
#include "http/method.h"
#include "http/request.h"
#include "http/server.h"

#define RUN_STEPS 50
#define CLOSE_STEPS 1000

static uv_loop_t loop;
static sc_server *server;
static bool smuggled_reached;

static const char *error_body(sc_buf *out, int status, const char *message)
{
    sc_buf_append_str(out, message);
    return "text/plain";
}

/* The first request's handler: every header value it sees is free of line breaks and NUL. */
static int first_handler(sc_req *req)
{
    for (size_t i = 0; i < req->nheaders; i++) {
        sc_slice v = req->headers[i].value;
        if (memchr(v.ptr, '\r', v.len) || memchr(v.ptr, '\n', v.len) || memchr(v.ptr, '\0', v.len)) {
            fprintf(stderr, "fuzz_framing: a header value with CR, LF or NUL reached a handler\n");
            abort();
        }
    }
    return 204;
}

static int smuggled_handler(sc_req *req)
{
    smuggled_reached = true;
    return 204;
}

static sc_route routes[] = {
    {.methods = SC_M_GET | SC_M_POST | SC_M_PUT, .pattern = "/first", .handler = first_handler},
    {.methods = SC_M_GET, .pattern = "/smuggled", .handler = smuggled_handler},
};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    signal(SIGPIPE, SIG_IGN);
    sc_log_configure(SC_LOG_ERROR, false, false);
    if (uv_loop_init(&loop) != 0)
        abort();
    sc_server_config cfg = {
        .limits =
            {
                .max_connections = 8,
                .max_header_bytes = 4096,
                .max_headers = 32,
                .max_url_bytes = 256,
                .max_body_bytes = 4096,
                .max_write_buffer = 65536,
                .header_timeout_ms = 3600000,
                .body_timeout_ms = 3600000,
                .keepalive_timeout_ms = 3600000,
                .send_timeout_ms = 3600000,
                .drain_timeout_ms = 3600000,
            },
        .routes = routes,
        .nroutes = sizeof(routes) / sizeof(routes[0]),
        .error_body = error_body,
    };
    server = sc_server_new(&loop, &cfg);
    return 0;
}

/* The input, read a byte at a time; past its end every byte is 0. */
typedef struct input {
    const uint8_t *p;
    size_t n;
} input;

static uint8_t next(input *in)
{
    if (!in->n)
        return 0;
    in->n--;
    return *in->p++;
}

/* Framing elements. The ambiguous ones are marked. */
typedef struct element {
    const char *text; /* a header line without its CRLF, or a line-level form */
    bool ambiguous;
    int framing; /* 1: says Content-Length, 2: says chunked */
} element;

static const element vocabulary[] = {
    {"Content-Length: %u", false, 1},
    {"Transfer-Encoding: chunked", false, 2},
    {"X-Note: %v", false, 0},
    {"User-Agent: %v", false, 0},
    {"Accept: */*", false, 0},
    /* obs-fold: a line that starts with SP or HTAB continues the previous one */
    {"X-Fold: a\r\n Content-Length: 3", true, 0},
    {"X-Fold: a\r\n\tTransfer-Encoding: chunked", true, 0},
    {"X-Fold: a\r\n %v", true, 0},
    /* bare CR and LF */
    {"X-Cr: a\rb", true, 0},
    {"X-Lf: a\nContent-Length: 0", true, 0},
    /* Transfer-Encoding other than exactly chunked, or twice */
    {"Transfer-Encoding: identity, chunked", true, 0},
    {"Transfer-Encoding: gzip, chunked", true, 0},
    {"Transfer-Encoding: chunked, chunked", true, 0},
    {"Transfer-Encoding: chunked\r\nTransfer-Encoding: x", true, 0},
    {"Transfer-Encoding: \x0b"
     "chunked",
     true, 0},
    {"Transfer-Encoding : chunked", true, 0},
    {"Transfer-Encoding: chunked%v", true, 0},
    /* Content-Length twice, as a list, signed, or beside Transfer-Encoding */
    {"Content-Length: 1\r\nContent-Length: 2", true, 0},
    {"Content-Length: 2, 2", true, 0},
    {"Content-Length: +2", true, 0},
    {"Content-Length : 2", true, 0},
    {"Content-Length: 2\r\nTransfer-Encoding: chunked", true, 0},
    /* control bytes in a value */
    {"X-Nul: a\x01"
     "b",
     true, 0},
};
#define NVOCAB (sizeof(vocabulary) / sizeof(vocabulary[0]))

/* Appends a value of the input's bytes, limited to characters that are fine in a field value. */
static void append_value(sc_buf *out, input *in)
{
    size_t len = next(in) % 24;
    for (size_t i = 0; i < len; i++) {
        uint8_t c = next(in);
        sc_buf_append_char(out, c >= 0x20 && c != 0x7f ? (char)c : 'x');
    }
}

static void append_element(sc_buf *out, const element *e, input *in, unsigned body_len)
{
    for (const char *t = e->text; *t; t++) {
        if (t[0] == '%' && t[1] == 'u') {
            sc_buf_printf(out, "%u", body_len);
            t++;
        } else if (t[0] == '%' && t[1] == 'v') {
            append_value(out, in);
            t++;
        } else {
            sc_buf_append_char(out, *t);
        }
    }
    sc_buf_append(out, "\r\n", 2);
}

/* Builds the first request and the smuggled one behind it; returns whether the first is ambiguous. */
static bool build(sc_buf *out, input *in)
{
    static const char *methods[] = {"POST", "PUT", "GET"};
    sc_buf_printf(out, "%s /first HTTP/1.1\r\nHost: a\r\n", methods[next(in) % 3]);
    unsigned body_len = next(in) % 64;
    bool ambiguous = false;
    int framing = 0; /* the last framing a well-formed element declared */
    int cl = 0, te = 0;
    size_t nelem = 1 + next(in) % 4;
    for (size_t i = 0; i < nelem; i++) {
        const element *e = &vocabulary[next(in) % NVOCAB];
        append_element(out, e, in, body_len);
        ambiguous |= e->ambiguous;
        if (e->framing == 1)
            cl++;
        if (e->framing == 2)
            te++;
        if (e->framing)
            framing = e->framing;
    }
    /* Content-Length twice (even equal) or beside chunked is ambiguous as well. */
    if (cl > 1 || te > 1 || (cl && te))
        ambiguous = true;
    sc_buf_append(out, "\r\n", 2);

    uint8_t body_form = next(in) % 4;
    if (framing == 2) {
        /* chunked: one chunk, then its CRLF (or two other bytes, which is ambiguous), then the last chunk */
        sc_buf_printf(out, "%x\r\n", body_len);
        for (unsigned i = 0; i < body_len; i++)
            sc_buf_append_char(out, 'b');
        if (body_form == 0 && body_len) {
            sc_buf_append(out, "\n5", 2);
            ambiguous = true;
        } else if (body_form == 1 && body_len) {
            sc_buf_append(out, "XX", 2);
            ambiguous = true;
        } else {
            sc_buf_append(out, "\r\n", 2);
        }
        if (body_len)
            sc_buf_append(out, "0\r\n", 3);
        sc_buf_append(out, "\r\n", 2);
    } else if (framing == 1) {
        for (unsigned i = 0; i < body_len; i++)
            sc_buf_append_char(out, 'b');
    }
    sc_buf_append_str(out, "GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n");
    return ambiguous;
}

static void drain(int fd)
{
    char buf[16384];
    while (read(fd, buf, sizeof(buf)) > 0) {
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    input in = {data, size};
    sc_buf req = {0};
    bool ambiguous = build(&req, &in);

    int fds[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0)
        abort();
    if (sc_server_adopt(server, fds[0], false) != 0)
        abort();
    if (fcntl(fds[1], F_SETFL, O_NONBLOCK) != 0)
        abort();
    smuggled_reached = false;
    size_t off = 0;
    bool shut = false;
    for (int step = 0; step < RUN_STEPS; step++) {
        if (!shut && off < req.len) {
            ssize_t w = write(fds[1], req.ptr + off, req.len - off);
            if (w > 0)
                off += (size_t)w;
            else if (w < 0 && errno != EAGAIN && errno != EINTR)
                off = req.len;
        }
        if (!shut && off == req.len) {
            shutdown(fds[1], SHUT_WR);
            shut = true;
        }
        drain(fds[1]);
        uv_run(&loop, UV_RUN_NOWAIT);
    }
    close(fds[1]);
    for (int step = 0; step < CLOSE_STEPS && uv_loop_alive(&loop); step++)
        uv_run(&loop, UV_RUN_NOWAIT);
    if (uv_loop_alive(&loop)) {
        fprintf(stderr, "fuzz_framing: the connection outlived its client\n");
        abort();
    }
    if (ambiguous && smuggled_reached) {
        fprintf(stderr, "fuzz_framing: a request behind an ambiguous one was served:\n%.*s\n", (int)req.len,
                req.ptr);
        abort();
    }
    sc_buf_free(&req);
    return 0;
}
