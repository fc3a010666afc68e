/* The one route table. Every endpoint of the server is a row here; the debug rows exist only when
 * STACCATO_DEBUG_ROUTES is on. */
#include "api/api.h"
#include "api/routes_catalog.h"
#include "api/routes_jobs.h"
#include "api/routes_playlists.h"
#include "api/routes_social.h"
#include "api/routes_stream.h"
#include "api/routes_upload.h"
#include "http/method.h"

#define ROUTES(X)                                                                                                 \
    X(SC_M_GET, "/health", sc_api_health)                                                                         \
    X(SC_M_GET, "/ready", sc_api_ready)                                                                           \
    X(SC_M_GET, "/metrics", sc_api_metrics)                                                                       \
    X(SC_M_POST, "/users", sc_api_users_create)                                                                   \
    X(SC_M_GET, "/users", sc_api_users_list)                                                                      \
    X(SC_M_GET, "/users/me", sc_api_users_me)                                                                     \
    X(SC_M_PUT, "/users/me", sc_api_users_me_update)                                                              \
    X(SC_M_GET, "/users/{id}", sc_api_users_get)                                                                  \
    X(SC_M_PUT, "/users/{id}", sc_api_users_update)                                                               \
    X(SC_M_DELETE, "/users/{id}", sc_api_users_delete)                                                            \
    X(SC_M_POST, "/authentications", sc_api_auth_login)                                                           \
    X(SC_M_PUT, "/authentications", sc_api_auth_refresh)                                                          \
    X(SC_M_DELETE, "/authentications", sc_api_auth_logout)                                                       \
    SC_ROUTES_CATALOG(X)                                                                                          \
    SC_ROUTES_PLAYLISTS(X)                                                                                        \
    SC_ROUTES_SOCIAL(X)                                                                                           \
    SC_ROUTES_STREAM(X)                                                                                           \
    SC_ROUTES_JOBS(X)                                                                                             \
    SC_ROUTES_UPLOAD_PLAIN(X)

#define DEBUG_ROUTES(X)                                                                                           \
    X(SC_M_POST | SC_M_PUT, "/_debug/echo", sc_api_debug_echo)                                                   \
    X(SC_M_GET, "/_debug/sleep", sc_api_debug_sleep)                                                              \
    X(SC_M_GET, "/_debug/db", sc_api_debug_db)

#define ROW(methods, pattern, handler) {methods, pattern, handler, 0, 0},
/* Uploads: the handler takes the body as a stream (see SC_ROUTE_STREAM_BODY). */
#define STREAM_ROW(methods, pattern, handler) {methods, pattern, handler, 0, SC_ROUTE_STREAM_BODY},

static const sc_route routes[] = {ROUTES(ROW) SC_ROUTES_UPLOAD(STREAM_ROW)};
static const sc_route routes_with_debug[] = {ROUTES(ROW) SC_ROUTES_UPLOAD(STREAM_ROW) DEBUG_ROUTES(ROW)
                                                STREAM_ROW(SC_M_POST | SC_M_PUT, "/_debug/upload", sc_api_debug_upload)};

const sc_route *sc_api_routes(const sc_app *app, size_t *n)
{
    if (app->debug_routes) {
        *n = sizeof(routes_with_debug) / sizeof(routes_with_debug[0]);
        return routes_with_debug;
    }
    *n = sizeof(routes) / sizeof(routes[0]);
    return routes;
}
