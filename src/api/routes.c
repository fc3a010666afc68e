/* The one route table. Every endpoint of the server is a row here. */
#include "api/api.h"
#include "http/method.h"

static const sc_route routes[] = {
    {SC_M_GET, "/health", sc_api_health, 0},
    {SC_M_GET, "/metrics", sc_api_metrics, 0},
    {SC_M_GET, "/ready", sc_api_ready, 0},
};

static const sc_route debug_routes[] = {
    {SC_M_GET, "/health", sc_api_health, 0},
    {SC_M_GET, "/metrics", sc_api_metrics, 0},
    {SC_M_GET, "/ready", sc_api_ready, 0},
    {SC_M_POST | SC_M_PUT, "/_debug/echo", sc_api_debug_echo, 0},
    {SC_M_GET, "/_debug/sleep", sc_api_debug_sleep, 0},
    {SC_M_GET, "/_debug/db", sc_api_debug_db, 0},
};

const sc_route *sc_api_routes(const sc_app *app, size_t *n)
{
    if (app->debug_routes) {
        *n = sizeof(debug_routes) / sizeof(debug_routes[0]);
        return debug_routes;
    }
    *n = sizeof(routes) / sizeof(routes[0]);
    return routes;
}
