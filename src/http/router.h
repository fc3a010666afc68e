/* The router: one table of routes, matched by method and path with {name} parameters.
 *
 * Patterns are compiled once into segments. Matching splits the request path on '/' and compares it with each
 * route's segments; a path that matches some route but not for this method is a 405, and the union of the methods
 * that would match becomes the Allow header. HEAD is allowed wherever GET is. */
#ifndef SC_HTTP_ROUTER_H
#define SC_HTTP_ROUTER_H

#include <stdbool.h>
#include <stddef.h>

#include "core/slice.h"

#define SC_ROUTE_MAX_PARAMS 4
#define SC_ROUTE_MAX_SEGMENTS 16

typedef struct sc_req sc_req;

/* A handler returns an HTTP status once the response is ready, or SC_ASYNC when it will call sc_req_finish later.
 * SC_ASYNC is a value no helper returns by accident (not 0, not a negative error code, not a status): a handler
 * that passes on a helper's "0 = go on" by mistake is answered 500 and logged instead of left hanging. */
typedef int (*sc_handler)(sc_req *req);
#define SC_ASYNC 0x5CA5C

/* A route's gate runs once per request, as soon as its headers are complete and before any body byte is read
 * (buffered and SC_ROUTE_STREAM_BODY routes alike), so that a caller it turns away never has a body buffered: it
 * sees the request line and headers only. It returns 0 to go on to the handler, or the status it answered (the
 * request ends with it and the handler does not run; a request with a body is answered at once and its connection
 * closed, the body unread). It answers at once, never SC_ASYNC. What it finds out for the handler goes into
 * sc_req.principal. The router gives it no meaning: the application decides what a gate checks (the API's access
 * levels, api/auth.h). */
typedef int (*sc_gate)(sc_req *req);

typedef struct sc_route {
    unsigned methods;    /* SC_M_* bits */
    const char *pattern; /* "/albums/{id}/likes" */
    sc_handler handler;
    unsigned long long max_body; /* 0: the server's default body limit (for SC_ROUTE_JSON_BODY, the JSON one) */
    unsigned flags;              /* SC_ROUTE_* */
    sc_gate gate;                /* NULL: the handler runs without one */
    const char *name;            /* the operation's name in the API description (api/openapi.h), or NULL */
} sc_route;

/* The handler runs as soon as the headers are in, and takes the body as a stream (sc_req_stream_body) instead of
 * receiving it buffered: for uploads, which must never be held in memory whole. Its own limits apply (max_body
 * is not used). */
#define SC_ROUTE_STREAM_BODY 1u
/* The body, if any, is JSON read whole: without a max_body of its own the server's JSON body limit applies
 * (sc_http_limits.max_json_body_bytes), smaller than the general one. */
#define SC_ROUTE_JSON_BODY 2u

typedef struct sc_route_param {
    sc_slice name;
    sc_slice value;
} sc_route_param;

typedef struct sc_router sc_router;

typedef struct sc_route_match {
    int index;      /* index into the route table, or -1 */
    unsigned allow; /* with index -1: methods the path allows (0: no route has this path) */
    sc_route_param params[SC_ROUTE_MAX_PARAMS];
    int nparams;
} sc_route_match;

/* Compiles a route table (kept by pointer, so it must outlive the router). Aborts on a malformed pattern: a
 * route table is code, not input. */
sc_router *sc_router_new(const sc_route *routes, size_t n);
void sc_router_free(sc_router *r);
const sc_route *sc_router_route(const sc_router *r, int index);
size_t sc_router_count(const sc_router *r);

/* Matches method (one SC_M_* bit) and the path (without query). */
void sc_router_match(const sc_router *r, unsigned method, sc_slice path, sc_route_match *m);

/* Writes "GET, HEAD, POST" for a method mask into out. */
void sc_router_allow_header(unsigned allow, char *out, size_t outlen);

#endif
