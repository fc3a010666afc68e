/* Inside the HTTP layer (not for handlers, which see http/request.h and http/server.h): the HTTP/1.1 connection,
 * the server object, and the calls between the files of the layer.
 *
 *   http1.c     the connection: llhttp glue, per-request parsing state, input, output, deadlines, close
 *   request.c   the request as handlers see it, its lifecycle (dispatch, finish, dispose)
 *   response.c  the response as handlers build it, and its serialisation (status line, headers, HSTS)
 *   server.c    listeners, accepting, the drain on shutdown, metrics
 *
 * An sc_http_conn embeds its network connection (net/conn.h) as the first member `super`, and the request as
 * `req`: SC_CONTAINER_OF turns either back into the HTTP connection. */
#ifndef SC_HTTP_HTTP1_H
#define SC_HTTP_HTTP1_H

#include <llhttp.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>
#include <uv.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/container.h"
#include "http/metrics.h"
#include "http/request.h"
#include "http/router.h"
#include "http/server.h"
#include "net/conn.h"
#include "net/peers.h"

#define SC_HTTP_READ_BUF_SIZE (64 * 1024)

struct sc_dispose_hook {
    sc_dispose_hook *next;
    void (*cb)(void *data);
    void *data;
};

/* A file range of a response body under construction, at position `at` of the memory body. */
struct sc_res_part {
    sc_res_part *next;
    size_t at;
    sc_file *file;
    uint64_t offset, len;
};

typedef enum {
    CONN_IDLE,     /* between requests */
    CONN_HEADERS,  /* reading the request line and headers */
    CONN_BODY,     /* reading the body */
    CONN_HANDLING, /* the handler has the request */
    CONN_LINGER,   /* response sent, write side shut, draining what the client still sends */
} sc_http_conn_state;

typedef struct sc_raw_header {
    uint32_t name_off, name_len, value_off, value_len;
} sc_raw_header;

typedef struct sc_http_conn sc_http_conn;

struct sc_http_conn {
    sc_conn super; /* first member: the socket, its transport, the output queue */
    uv_timer_t timer;
    sc_server *server;
    sc_http_conn *prev, *next;
    llhttp_t parser;
    sc_http_conn_state state;
    bool close_after; /* close (lingering) once the output is written */
    bool in_parser;   /* inside llhttp_execute */
    bool shed;        /* accepted above the connection limit, answered 503 */
    bool keep_alive;
    bool http10;
    bool trailers;     /* past the headers: header callbacks now deliver chunked trailers */
    const char *chunk; /* the bytes llhttp is parsing now, and the byte before them (obs-fold detection) */
    char before_chunk;
    bool dispatched;  /* the handler has the request (a streaming one gets it before the body) */
    bool streaming;   /* the body goes to a sink rather than into c->body */
    bool body_paused; /* the body is not read: not claimed yet, or its sink asked for a pause */
    bool expect_continue;
    bool kick; /* the parser was paused inside a message: run it even with no new input */
    const sc_body_sink *sink;
    void *sink_ctx;
    int error_status;  /* set by a parser callback that rejects the request */
    bool peer_counted; /* counted in the server's per-address table */
    bool gate_done;    /* the route's gate ran at the end of the headers; gate_status is its answer (0: go on) */
    int gate_status;

    uint64_t deadline;    /* when the timer is due, SC_HTTP_NO_DEADLINE when stopped */
    uint64_t state_since; /* loop time the current read phase started or last progressed */
    uint64_t body_since;  /* loop time the body began, moved later by the time it spent paused */
    uint64_t paused_since;
    uint64_t body_reserved; /* bytes of the server's body budget this request holds */
    size_t out_counted;     /* bytes of the output counted in the server's output total */

    sc_buf in; /* unparsed input */

    /* Request parsing state. */
    sc_buf raw; /* URL and header bytes, in arrival order */
    uint32_t url_len, cur_off;
    sc_raw_header *raw_headers;
    size_t nraw, raw_cap;
    uint64_t header_bytes, body_limit, body_bytes;

    sc_buf body, res_headers, res_body;
    sc_arena arena;
    sc_req req;
};

#define SC_HTTP_NO_DEADLINE UINT64_MAX

struct sc_server {
    uv_loop_t *loop;
    struct sc_http_listener {
        uv_poll_t poll;
        int fd;
        bool secure;
        sc_server *server;
    } listeners[2];
    int nlisteners, listeners_closed;
    sc_tls_config *tls_config; /* for new secure connections; replaced on reload */
    sc_conn_group net;         /* the connections' loop, counters and pending queue */
    bool net_closed;
    uv_timer_t accept_timer; /* accepting paused after running out of file descriptors */
    uv_timer_t drain_timer;
    bool listening, draining, drain_timer_closed, accept_timer_closed;
    sc_server_config cfg;
    sc_router *router;
    const char **route_names;
    sc_http_conn *conns;
    uint64_t nconns;                          /* counted against the limit (shed ones are not) */
    uint64_t nall;                            /* every open connection object */
    sc_peer_table peers;                      /* open connections per peer address (not of trusted proxies) */
    uint64_t body_memory;                     /* bytes of request bodies buffered (reserved), all connections */
    uint64_t output_memory;                   /* response bytes queued in memory, all connections */
    uint64_t connections_refused_per_address; /* counter for /metrics */
    sc_metrics metrics;
    llhttp_settings_t settings;
    char *readbuf;
    void (*on_done)(void *data);
    void *on_done_data;
    time_t date_sec;
    char date[40];
};

/* The HTTP connection of a request. */
static inline sc_http_conn *sc_http_conn_of(const sc_req *req) { return SC_CONTAINER_OF(req, sc_http_conn, req); }

/* Empties a buffer for the next request, giving back the memory of a large one. */
static inline void sc_http_shrink(sc_buf *b)
{
    if (b->cap > 64 * 1024)
        sc_buf_free(b);
    else
        b->len = 0;
}

/* ---- http1.c ---------------------------------------------------------------------------------------------- */

/* Fills in the llhttp callbacks of the connections. */
void sc_http_parser_settings(llhttp_settings_t *settings);
/* Makes a connection of an open, non-blocking client socket; over the limit it is answered 503 and closed. */
void sc_http_conn_start(sc_server *s, int fd, const struct sockaddr *peer, bool secure);
/* Closes a connection: a request with its handler is disposed of, memory goes with the last reference. */
void sc_http_conn_close(sc_http_conn *c);
/* Parses what can be parsed and writes what was produced, until input runs out or something blocks. */
void sc_http_conn_pump(sc_http_conn *c);
/* Answers a request that was rejected before its handler ran, and closes afterwards. A 503 says Retry-After. */
void sc_http_respond_error(sc_http_conn *c, int status);
/* Gives back the share of the server's body budget the connection's request holds (every way a request ends). */
void sc_http_body_release(sc_http_conn *c);

/* ---- request.c -------------------------------------------------------------------------------------------- */

/* Starts the per-request state over. */
void sc_http_req_reset(sc_http_conn *c);
/* Runs the dispose hooks and releases everything the request allocated. */
void sc_http_req_dispose(sc_http_conn *c);
/* Runs the route's gate, if it has one, when the request's headers are complete (before any body byte), once:
 * returns 0 to go on, or the status it answered, which dispatch then finishes the request with. A request that
 * is redirected to HTTPS is not gated. */
int sc_http_gate(sc_http_conn *c);
/* Hands a request whose headers are complete to its handler (or answers it: redirect, 404, 405, or what its
 * gate answered). */
void sc_http_dispatch(sc_http_conn *c);
/* Serialises the response into the output, logs it, counts it and releases the request. */
void sc_http_finish(sc_req *req, int status);

/* ---- response.c ------------------------------------------------------------------------------------------- */

/* Writes the response to req with status into the connection's output (status line, headers, body, file ranges
 * handed to the output queue) and returns the body's length as the headers announce it. */
uint64_t sc_http_response_write(sc_http_conn *c, int status);

/* ---- server.c --------------------------------------------------------------------------------------------- */

/* Called whenever a connection or handle of a draining server closes: completes the shutdown after the last. */
void sc_http_server_maybe_done(sc_server *s);

#endif
