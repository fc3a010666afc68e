/* Operational endpoints (api/ops.c): liveness, readiness and metrics. */
#ifndef SC_API_OPS_H
#define SC_API_OPS_H

#include "http/request.h"

#define SC_ROUTES_OPS(X)                                                                                          \
    X(SC_M_GET, "/health", SC_API_PUBLIC, sc_api_health)                                                          \
    X(SC_M_GET, "/ready", SC_API_PUBLIC, sc_api_ready)                                                            \
    X(SC_M_GET, "/metrics", SC_API_PUBLIC, sc_api_metrics)

/* clang-format off */
#define SC_STMTS_OPS(X) X(PING, "SELECT 1")
/* clang-format on */

/* GET /health: 200 as long as the process serves, without touching the database or Redis. */
int sc_api_health(sc_req *req);
/* GET /ready: 200 when the database answers, else 503; says whether Redis is connected. */
int sc_api_ready(sc_req *req);
/* GET /metrics: the server's counters and the media cache's, in the Prometheus text format. */
int sc_api_metrics(sc_req *req);

#endif
