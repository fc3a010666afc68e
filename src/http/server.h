/* The HTTP/1.1 server: accepts connections on one loop, parses requests with llhttp, routes them, writes
 * responses, and enforces the limits and timeouts of sc_http_limits. */
#ifndef SC_HTTP_SERVER_H
#define SC_HTTP_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "core/buf.h"
#include "http/cors.h"
#include "http/host.h"
#include "http/request.h"
#include "http/router.h"
#include "net/addr.h"
#include "net/tls.h"

typedef struct sc_http_limits {
    uint64_t max_connections;
    uint64_t max_header_bytes;
    uint64_t max_headers;
    uint64_t max_url_bytes;
    uint64_t max_body_bytes;
    uint64_t max_write_buffer;
    uint64_t header_timeout_ms;
    uint64_t body_timeout_ms;
    uint64_t keepalive_timeout_ms;
    uint64_t send_timeout_ms;
    uint64_t drain_timeout_ms;
    uint64_t tls_handshake_timeout_ms;
    /* The budgets and rates below: 0 turns each off (max_json_body_bytes 0: max_body_bytes applies). */
    uint64_t max_body_memory;             /* bytes of buffered request bodies, all connections together (503) */
    uint64_t max_connections_per_address; /* open connections per peer address, trusted proxies exempt (503) */
    uint64_t min_body_rate;               /* bytes/s a body averages from its start, after the grace (408) */
    uint64_t min_body_rate_grace_ms;
    uint64_t max_json_body_bytes; /* body limit of SC_ROUTE_JSON_BODY routes without one of their own */
    uint64_t max_output_memory;   /* response bytes queued in memory, all connections together */
} sc_http_limits;

typedef struct sc_server_config {
    sc_http_limits limits;
    const sc_route *routes;
    size_t nroutes;
    bool https_redirect; /* plaintext requests get 308 to https://host:tls_port (not /health) */
    unsigned tls_port;
    uint64_t hsts_max_age;               /* Strict-Transport-Security on TLS responses; 0: none */
    const sc_cidr_list *trusted_proxies; /* borrowed */
    const sc_host_list *allowed_hosts;   /* borrowed; NULL or empty: every valid Host */
    const sc_cors_policy *cors;          /* borrowed; NULL or without origins: no CORS headers */
    void *app;                           /* handed to handlers as req->app */
    sc_error_body_fn error_body;         /* body of error responses; NULL: the message as text/plain */
} sc_server_config;

typedef struct sc_server sc_server;

/* Creates a server on the loop. The configuration is copied; routes, trusted proxies, allowed hosts and the CORS
 * policy are borrowed. */
sc_server *sc_server_new(uv_loop_t *loop, const sc_server_config *cfg);
/* Starts accepting on a bound socket fd (listening or not yet), plaintext or TLS (up to one of each). TLS needs
 * a configuration set first. Returns 0 or a libuv error code. */
int sc_server_listen_fd(sc_server *s, int fd, int backlog, bool tls);
/* Sets the TLS configuration for connections accepted from now on (takes a reference; established connections
 * keep theirs). Used at start and on certificate reload. */
void sc_server_set_tls(sc_server *s, sc_tls_config *cfg);
/* Serves an already connected stream socket as a client connection (the server owns fd afterwards). Used by the
 * fuzz driver with one end of a socketpair; also fit for sockets handed over by a supervisor. */
int sc_server_adopt(sc_server *s, int fd, bool tls);
/* Graceful stop: no new connections, in-flight requests finish (their responses say Connection: close), idle
 * connections close; after the drain timeout whatever remains is closed. on_done runs once every connection and
 * handle of the server is closed. */
void sc_server_shutdown(sc_server *s, void (*on_done)(void *data), void *data);
/* Frees a server whose shutdown has completed. */
void sc_server_free(sc_server *s);

/* The loop the server runs on. */
uv_loop_t *sc_server_loop(const sc_server *s);

/* Appends the server's metrics in Prometheus text format. */
void sc_server_metrics_render(sc_server *s, sc_buf *out);

#endif
