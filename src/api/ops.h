/* Operational endpoints (api/ops.c): liveness, readiness and metrics. */
#ifndef SC_API_OPS_H
#define SC_API_OPS_H

#include "http/request.h"
#include "settings.h"

#define SC_ROUTES_OPS(X)                                                                                          \
    X(SC_M_GET, "/health", SC_API_PUBLIC, sc_api_health)                                                          \
    X(SC_M_GET, "/ready", SC_API_PUBLIC, sc_api_ready)                                                            \
    X(SC_M_GET, "/metrics", sc_api_gate_metrics, sc_api_metrics)

/* clang-format off */
#define SC_STMTS_OPS(X) X(PING, "SELECT 1")
/* clang-format on */

/* GET /health: 200 as long as the process serves, without touching the database or Redis. */
int sc_api_health(sc_req *req);
/* GET /ready: 200 when the database answers, else 503; says whether Redis is connected. */
int sc_api_ready(sc_req *req);
/* The gate of GET /metrics, after STACCATO_METRICS: public lets anyone by; local the clients sc_req_client_local
 * finds local (http/host.h); token those whose Authorization is "Bearer " and STACCATO_METRICS_TOKEN, compared in
 * constant time. Others get 403; off answers 404 like an unknown route. Returns 0 to go on, or the status. */
int sc_api_gate_metrics(sc_req *req);
/* GET /metrics: the server's counters and the media cache's, in the Prometheus text format. */
int sc_api_metrics(sc_req *req);
/* Checks the STACCATO_METRICS settings at start: token needs a STACCATO_METRICS_TOKEN of at least 16 bytes.
 * Returns 0, or -1 with a message in err. */
int sc_api_metrics_check(const sc_settings *st, char *err, size_t errlen);

#endif
