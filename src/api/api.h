/* The HTTP API: the application context every handler reaches, and the route table.
 *
 * Each resource lives in api/<resource>.c, with api/<resource>.h holding its route rows, its handlers'
 * prototypes and its SQL; routes.c joins the rows into the one table and db.h the statements into the one enum.
 * What several resources share is in respond.h (answers, ids, paging), list.h (paged lists), db.h (queries),
 * auth.h (who is calling) and cache_keys.h (Redis keys and invalidation). */
#ifndef SC_API_H
#define SC_API_H

#include <stdbool.h>
#include <stddef.h>

#include "cache/redis.h"
#include "db/pg.h"
#include "http/request.h"
#include "http/router.h"
#include "jobs/jobs.h"
#include "outbound/outbound.h"
#include "settings.h"

typedef struct sc_ratelimit sc_ratelimit;
typedef struct sc_media_cache sc_media_cache;
typedef struct sc_token_versions sc_token_versions;

/* The application context every handler reaches through req->app. */
typedef struct sc_app {
    bool debug_routes;
    const sc_settings *settings;
    sc_pg_pool *pg;
    sc_redis *redis;
    uv_loop_t *loop;
    sc_ratelimit *local_limits; /* login counters while Redis is away */
    bool compat_openmusic;
    sc_outbound *outbound;     /* SMTP and HTTP to other services */
    sc_jobs *jobs;             /* the job workers of this process, or NULL (STACCATO_JOBS=off) */
    sc_media_cache *media;     /* facts and open files for streaming, or NULL (off, or not serving HTTP) */
    sc_token_versions *tokens; /* current token versions for the gates, or NULL (not serving HTTP) */
    const char *openapi;       /* the API description of this table (api/openapi.h), and its length and ETag */
    size_t openapi_len;
    char openapi_etag[24];
} sc_app;

/* The application context of a request (the server hands every request the one it was given). */
static inline sc_app *sc_api_app(const sc_req *req) { return req->app; }

/* Returns the route table for this configuration (debug routes only when enabled); *n is its length. The table is
 * static: no need to free it. */
const sc_route *sc_api_routes(const sc_app *app, size_t *n);

/* The operational and debug handlers are named with the table: the fuzz drivers build their own tables around
 * /health, /metrics and /_debug/echo. */
#include "api/debug.h"
#include "api/ops.h"

#endif
