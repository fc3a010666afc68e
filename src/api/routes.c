/* The one route table: every endpoint of the server is a row of one resource's list, joined here.
 *
 * How to add an endpoint: write its handler in api/<resource>.c, with a doc comment on its prototype in
 * api/<resource>.h, add its row X(methods, "/pattern/{param}", access, handler) to that header's
 * SC_ROUTES_<RESOURCE> list (SC_ROUTES_<RESOURCE>_STREAM for a handler that takes its body as a stream), and its
 * statements as X(NAME, "sql") rows to SC_STMTS_<RESOURCE> in the same header, and its description to
 * api/<resource>.openapi.json under the handler's name without "sc_api_" (api/openapi.h). The access says who may
 * call it (api/auth.h): SC_API_PUBLIC, SC_API_OPTIONAL, SC_API_USER or SC_API_ADMIN. Its gate runs before the
 * handler and answers 401 or 403 by itself, so the handler starts from a caller already checked, sc_api_who(req)
 * (NULL for an anonymous one); only a handler whose rules for who may call depend on more than the route (the
 * mode, the body, its own credentials) is SC_API_PUBLIC and authenticates itself. A new resource adds its route
 * list below and its statement list to SC_API_STMTS (api/db.h). Within the table the first row that matches a path
 * and method wins, so a literal segment comes before a parameter in the same place (/users/me before /users/{id}).
 * The debug rows exist only when STACCATO_DEBUG_ROUTES is on. */
#include "api/api.h"

#include "api/albums.h"
#include "api/auth.h"
#include "api/authentications.h"
#include "api/collaborations.h"
#include "api/debug.h"
#include "api/docs.h"
#include "api/export.h"
#include "api/genres.h"
#include "api/likes.h"
#include "api/openapi.h"
#include "api/ops.h"
#include "api/playlists.h"
#include "api/songs.h"
#include "api/stream.h"
#include "api/uploads.h"
#include "api/users.h"
#include "http/method.h"

/* Routes whose bodies are read whole before the handler runs, as JSON (within the server's JSON body limit). */
#define ROUTES(X)                                                                                                 \
    SC_ROUTES_OPS(X)                                                                                              \
    SC_ROUTES_OPENAPI(X)                                                                                          \
    SC_ROUTES_USERS(X)                                                                                            \
    SC_ROUTES_AUTHENTICATIONS(X)                                                                                  \
    SC_ROUTES_ALBUMS(X)                                                                                           \
    SC_ROUTES_SONGS(X)                                                                                            \
    SC_ROUTES_GENRES(X)                                                                                           \
    SC_ROUTES_PLAYLISTS(X)                                                                                        \
    SC_ROUTES_COLLABORATIONS(X)                                                                                   \
    SC_ROUTES_LIKES(X)                                                                                            \
    SC_ROUTES_STREAM(X)                                                                                           \
    SC_ROUTES_EXPORT(X)                                                                                           \
    SC_ROUTES_DOCS(X)

/* Routes whose handlers take the body as a stream (see SC_ROUTE_STREAM_BODY). */
#define STREAM_ROUTES(X) SC_ROUTES_UPLOADS_STREAM(X)

/* A row's name is its handler's without the prefix: the key of its description in api/<resource>.openapi.json. */
#define NAME(handler) (&(#handler)[sizeof("sc_api_") - 1])
#define ROW(methods, pattern, access, handler)                                                                    \
    {methods, pattern, handler, 0, SC_ROUTE_JSON_BODY, access, NAME(handler)},
#define DEBUG_ROW(methods, pattern, access, handler) {methods, pattern, handler, 0, 0, access, NAME(handler)},
#define STREAM_ROW(methods, pattern, access, handler)                                                             \
    {methods, pattern, handler, 0, SC_ROUTE_STREAM_BODY, access, NAME(handler)},

static const sc_route routes[] = {ROUTES(ROW) STREAM_ROUTES(STREAM_ROW)};
static const sc_route routes_with_debug[] = {ROUTES(ROW) STREAM_ROUTES(STREAM_ROW) SC_ROUTES_DEBUG(DEBUG_ROW)
                                                 SC_ROUTES_DEBUG_STREAM(STREAM_ROW)};

const sc_route *sc_api_routes(const sc_app *app, size_t *n)
{
    if (app->debug_routes) {
        *n = sizeof(routes_with_debug) / sizeof(routes_with_debug[0]);
        return routes_with_debug;
    }
    *n = sizeof(routes) / sizeof(routes[0]);
    return routes;
}
