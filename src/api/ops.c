/* Operational endpoints: liveness and metrics. */
#include "api/api.h"
#include "http/request.h"
#include "http/server.h"

static const char health_body[] = "{\"status\":\"success\",\"data\":{\"status\":\"ok\"}}";

int sc_api_health(sc_req *req)
{
    req->res.content_type = "application/json; charset=utf-8";
    sc_buf_append(req->res.body, health_body, sizeof(health_body) - 1);
    return 200;
}

int sc_api_metrics(sc_req *req)
{
    req->res.content_type = "text/plain; version=0.0.4; charset=utf-8";
    sc_server_metrics_render(req->server, req->res.body);
    return 200;
}
