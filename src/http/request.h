/* The request as handlers see it, and the calls that build its response.
 *
 * A request lives inside its connection and everything it allocates comes from the connection's arena, released
 * in one place after the access-log line is written. Work that outlives a request (a database query, a timer)
 * registers a dispose hook with sc_req_on_dispose: it runs when the request ends for any reason, including the
 * client going away, and must make sure the pending work never touches the request again. */
#ifndef SC_HTTP_REQUEST_H
#define SC_HTTP_REQUEST_H

#include <stdbool.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/slice.h"
#include "http/router.h"
#include "net/file.h" /* sc_file: the open files response bodies send from */

typedef struct sc_header {
    sc_slice name;
    sc_slice value;
} sc_header;

typedef struct sc_dispose_hook sc_dispose_hook;
typedef struct sc_server sc_server;
typedef struct sc_res_part sc_res_part;

struct sc_req {
    sc_arena *arena;
    unsigned method; /* one SC_M_* bit */
    sc_slice method_name;
    sc_slice target; /* as sent: path and query */
    sc_slice path;   /* before '?' */
    sc_slice query;  /* after '?', may be empty */
    sc_header *headers;
    size_t nheaders;
    sc_buf *body; /* the request body, complete when the handler runs */
    const sc_route *route;
    int route_index; /* -1 when no route matched */
    sc_route_match match;
    void *app;       /* the application context given to the server */
    void *state;     /* the handler's own per-request state, for its asynchronous steps */
    void *principal; /* set by the route's gate for the handler (who is calling); NULL without one */
    sc_server *server;
    uint64_t start_ns;

    /* The response under construction. */
    struct {
        const char *content_type; /* NULL with an empty body: no Content-Type */
        sc_buf *headers;          /* extra header lines, each ending in CRLF */
        sc_buf *body;
        sc_res_part *parts; /* file ranges of the body, in order */
        sc_res_part *parts_tail;
        uint64_t parts_len;
    } res;

    sc_dispose_hook *hooks;
    bool finished;
};

/* The first header with this name (case-insensitive), or an empty slice with ptr NULL. */
static inline sc_slice sc_req_header(const sc_req *req, const char *name)
{
    /* Inline, so that the length of a literal name is known at compile time. */
    sc_slice n = sc_slice_cstr(name);
    for (size_t i = 0; i < req->nheaders; i++)
        if (sc_slice_eq_nocase(req->headers[i].name, n))
            return req->headers[i].value;
    return SC_SLICE_NULL;
}
/* A path parameter of the matched route, e.g. "id" for /albums/{id}. */
sc_slice sc_req_param(const sc_req *req, const char *name);
/* The percent-decoded value of a query parameter; false when absent. Decoded into the arena. */
bool sc_req_query(const sc_req *req, const char *name, sc_slice *out);
/* Whether the request came over TLS. */
bool sc_req_secure(const sc_req *req);
/* The client's address: the peer, or with a trusted proxy as peer, the address X-Forwarded-For names. */
sc_slice sc_req_client(sc_req *req);
/* Registers a hook run (in reverse order of registration) when the request ends. */
void sc_req_on_dispose(sc_req *req, void (*cb)(void *data), void *data);

/* Runs the dispose hooks now (newest first) and forgets them. The server calls it when a request ends; exposed for
 * drivers that build requests by hand (fuzzing). */
void sc_req_run_dispose_hooks(sc_req *req);

/* Adds a response header line. */
void sc_res_header(sc_req *req, const char *name, sc_slice value);
/* Writes the body of an error response with the given status and message (never NULL) into out and returns its
 * Content-Type. The HTTP layer knows no body format: the application installs one through sc_server_config
 * (the API's JSON envelope); without one, the message goes out as text/plain. */
typedef const char *(*sc_error_body_fn)(sc_buf *out, int status, const char *message);

/* Replaces the response with an error body (written by the server's sc_error_body_fn) and returns status, so
 * handlers can write `return sc_res_error(req, 404, "album not found");`. NULL message: the status' default
 * message. */
int sc_res_error(sc_req *req, int status, const char *message);

/* Appends len bytes of file f from offset to the response body, after whatever body bytes were added before (and
 * before any added later). Takes a reference on f. Sent with sendfile; Content-Length counts it. */
void sc_res_body_file(sc_req *req, sc_file *f, uint64_t offset, uint64_t len);

/* The body of a SC_ROUTE_STREAM_BODY request, delivered piece by piece as it arrives. */
typedef struct sc_body_sink {
    /* Takes a piece; returns 0 to go on, SC_BODY_PAUSE to stop reading until sc_req_resume_body, or an HTTP
     * status to reject the request (answered at once with that status, then the connection closes). */
    int (*on_data)(void *ctx, const char *data, size_t len);
    /* The whole body has arrived; the handler answers with sc_req_finish, now or later. */
    void (*on_end)(void *ctx);
} sc_body_sink;

#define SC_BODY_PAUSE 1

/* Claims the body of a streaming request: until this is called, the body is not read (so a handler can check
 * permissions first), and an Expect: 100-continue is answered only now. */
void sc_req_stream_body(sc_req *req, const sc_body_sink *sink, void *ctx);
/* Reading goes on after on_data returned SC_BODY_PAUSE. */
void sc_req_resume_body(sc_req *req);

/* Completes a request whose handler returned SC_ASYNC. */
void sc_req_finish(sc_req *req, int status);

#endif
