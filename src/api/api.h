/* The HTTP API: the single route table and the handlers behind it. */
#ifndef SC_API_H
#define SC_API_H

#include <stdbool.h>
#include <stddef.h>

#include "cache/redis.h"
#include "db/pg.h"
#include "http/router.h"
#include "jobs/jobs.h"
#include "outbound/outbound.h"
#include "settings.h"

typedef struct sc_ratelimit sc_ratelimit;
typedef struct sc_media_cache sc_media_cache;

/* The application context every handler reaches through req->app. */
typedef struct sc_app {
    bool debug_routes;
    const sc_settings *settings;
    sc_pg_pool *pg;
    sc_redis *redis;
    uv_loop_t *loop;
    sc_ratelimit *local_limits; /* login counters while Redis is away */
    bool compat_openmusic;
    sc_outbound *outbound; /* SMTP and HTTP to other services */
    sc_jobs *jobs;         /* the job workers of this process, or NULL (STACCATO_JOBS=off) */
    sc_media_cache *media; /* facts and open files for streaming, or NULL (off, or not serving HTTP) */
} sc_app;

/* Returns the route table for this configuration (debug routes only when enabled); *n is its length. The table is
 * static: no need to free it. */
const sc_route *sc_api_routes(const sc_app *app, size_t *n);

/* Handlers, one group per file. */
int sc_api_health(sc_req *req);
int sc_api_metrics(sc_req *req);
int sc_api_ready(sc_req *req);
int sc_api_users_create(sc_req *req);
int sc_api_users_me(sc_req *req);
int sc_api_users_me_update(sc_req *req);
int sc_api_users_list(sc_req *req);
int sc_api_users_get(sc_req *req);
int sc_api_users_update(sc_req *req);
int sc_api_users_delete(sc_req *req);
int sc_api_auth_login(sc_req *req);
int sc_api_auth_refresh(sc_req *req);
int sc_api_auth_logout(sc_req *req);
int sc_api_debug_echo(sc_req *req);
int sc_api_debug_sleep(sc_req *req);
int sc_api_debug_db(sc_req *req);
int sc_api_debug_upload(sc_req *req);

#endif
