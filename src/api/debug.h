/* Endpoints for the test suite (api/debug.c), routed only with STACCATO_DEBUG_ROUTES: never in production. */
#ifndef SC_API_DEBUG_H
#define SC_API_DEBUG_H

#include "http/request.h"

#define SC_ROUTES_DEBUG(X)                                                                                        \
    X(SC_M_POST | SC_M_PUT, "/_debug/echo", SC_API_PUBLIC, sc_api_debug_echo)                                     \
    X(SC_M_GET, "/_debug/sleep", SC_API_PUBLIC, sc_api_debug_sleep)                                               \
    X(SC_M_GET, "/_debug/db", SC_API_PUBLIC, sc_api_debug_db)                                                     \
    X(SC_M_GET, "/_debug/routes", SC_API_PUBLIC, sc_api_debug_routes)

/* The debug routes that take their body as a stream (SC_ROUTE_STREAM_BODY). */
#define SC_ROUTES_DEBUG_STREAM(X) X(SC_M_POST | SC_M_PUT, "/_debug/upload", SC_API_PUBLIC, sc_api_debug_upload)

/* clang-format off */
#define SC_STMTS_DEBUG(X) X(DEBUG_SLEEP, "SELECT $1::text, pg_sleep($2::float8 / 1000)")
/* clang-format on */

/* POST|PUT /_debug/echo: the body's size and the body parsed as JSON and written again. */
int sc_api_debug_echo(sc_req *req);
/* GET /_debug/sleep?ms=: answers after ms milliseconds of a timer (slow asynchronous work). */
int sc_api_debug_sleep(sc_req *req);
/* GET /_debug/db?tag=&sleep_ms=: one query that echoes tag after sleep_ms on the database. */
int sc_api_debug_db(sc_req *req);
/* GET /_debug/routes: the route table as data.routes = [{method, pattern, access, stream}], one entry per method
 * of a row, in the table's order: access is "public", "optional", "user" or "admin" (the row's gate), stream
 * whether the handler takes its body as a stream. The authorization matrix test reads it, so that a route without
 * expectations there fails the test. */
int sc_api_debug_routes(sc_req *req);
/* POST|PUT /_debug/upload?limit=&reject=: a streaming body sink that pauses now and then. */
int sc_api_debug_upload(sc_req *req);

#endif
