/* libFuzzer driver: client bytes through the real connection code (llhttp glue, limits, routing, handlers,
 * response writing, access log, connection close).
 *
 * One server lives for the whole run. Each input is one client connection: one end of a socketpair is adopted by
 * the server, the input is written to the other end followed by end-of-input, and the loop runs (a bounded number
 * of non-blocking iterations) while the driver reads and discards whatever the server answers. Then the client end
 * is closed and the loop runs until the connection is gone. A connection that outlives its client is a bug (it
 * would leak into the next input), so the driver aborts on it.
 *
 * The route table holds the API's rows for /health, /metrics and /_debug/echo (not /_debug/sleep, whose timers
 * would outlive the bounded loop, nor the routes that need a database), plus a parameter route /albums/{id}
 * answered by /health's handler and a route of the driver's own that reads path and query parameters.
 * Access-log lines go to standard output, which the driver points at /dev/null; libFuzzer reports on standard
 * error. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "api/api.h"
#include "core/log.h"
#include "http/method.h"
#include "http/request.h"
#include "http/server.h"
#include "net/addr.h"
#include "settings.h"

#define RUN_STEPS 50     /* loop iterations while the client is connected */
#define CLOSE_STEPS 1000 /* loop iterations allowed for the connection to go after the client closed */

static uv_loop_t loop;
static sc_server *server;
/* /metrics keeps its gate: local clients only, which a socketpair's peer (no address) is not always taken for. */
static sc_settings settings = {.metrics = "local", .metrics_token = ""};
static sc_app app = {.debug_routes = true, .settings = &settings};
static sc_route routes[16];
static sc_cidr_list trusted;
static bool trace; /* FUZZ_HTTP_TRACE in the environment: copy responses to stderr (to study a reproducer) */

/* A handler of the driver's own, for the request accessors the API's handlers above do not use: path and query
 * parameters (percent-decoding client bytes) and a response header carrying client bytes. */
static int query_handler(sc_req *req)
{
    sc_slice id = sc_req_param(req, "id"), n = sc_req_param(req, "n"), q;
    if (!id.ptr || !n.ptr || sc_req_param(req, "other").ptr)
        abort();
    sc_res_header(req, "X-Album", id);
    if (sc_req_query(req, "q", &q))
        sc_res_header(req, "X-Query", q);
    if (sc_req_query(req, "", &q))
        sc_res_header(req, "X-Empty-Key", q);
    sc_res_header(req, "X-Agent", sc_req_header(req, "user-agent"));
    return sc_res_error(req, 404, "no such track");
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    signal(SIGPIPE, SIG_IGN);
    trace = getenv("FUZZ_HTTP_TRACE") != NULL;
    int devnull = open("/dev/null", O_WRONLY);
    if (devnull < 0 || dup2(devnull, STDOUT_FILENO) < 0)
        abort();
    close(devnull);
    /* Access log on, so that client_address() and the log escaping see every request; errors only on stderr. */
    sc_log_configure(SC_LOG_ERROR, false, true);

    /* The API's rows for the handlers that answer at once without a database, then two parameter routes. */
    size_t n, k = 0;
    const sc_route *api = sc_api_routes(&app, &n);
    for (size_t i = 0; i < n && k < sizeof(routes) / sizeof(routes[0]) - 1; i++)
        if (api[i].handler == sc_api_health || api[i].handler == sc_api_metrics ||
            api[i].handler == sc_api_debug_echo)
            routes[k++] = api[i];
    if (k != 3)
        abort(); /* the API table changed: revisit this driver */
    routes[k++] = (sc_route){SC_M_GET, "/albums/{id}", sc_api_health, 0, 0, NULL, NULL};
    routes[k++] = (sc_route){SC_M_GET | SC_M_PATCH, "/albums/{id}/tracks/{n}", query_handler, 64, 0, NULL, NULL};

    /* The peer of a socketpair has no IP address, so it counts as "::": trusting ::/0 makes the server walk
     * X-Forwarded-For. */
    char err[128];
    if (sc_cidr_list_parse("::/0", &trusted, err, sizeof(err)) != 0)
        abort();

    if (uv_loop_init(&loop) != 0)
        abort();
    sc_server_config cfg = {
        .limits =
            {
                .max_connections = 8,
                /* Small limits, so that inputs of a few hundred bytes reach 414, 431 and 413. */
                .max_header_bytes = 1024,
                .max_headers = 8,
                .max_url_bytes = 256,
                .max_body_bytes = 4096,
                .max_write_buffer = 2048,
                .header_timeout_ms = 3600000,
                .body_timeout_ms = 3600000,
                .keepalive_timeout_ms = 3600000,
                .send_timeout_ms = 3600000,
                .drain_timeout_ms = 3600000,
            },
        .routes = routes,
        .nroutes = k,
        .trusted_proxies = &trusted,
        .app = &app,
    };
    server = sc_server_new(&loop, &cfg);
    return 0;
}

/* Reads and discards what the server wrote. */
static void drain(int fd)
{
    char buf[16384];
    ssize_t n;
    while ((n = read(fd, buf, sizeof(buf))) > 0) {
        if (trace)
            fwrite(buf, 1, (size_t)n, stderr);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fds[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0)
        abort();
    if (sc_server_adopt(server, fds[0], false) != 0)
        abort();
    if (fcntl(fds[1], F_SETFL, O_NONBLOCK) != 0)
        abort();
    /* Small socket buffers: the request arrives in several reads and responses need several writes, so that the
     * partial-input, blocked-parser and queued-write paths run, not only the one-read-one-write fast path. */
    int sndbuf = 4096;
    setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
    setsockopt(fds[1], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));

    /* Alternate the log format so that both escapers see client bytes. */
    sc_log_configure(SC_LOG_ERROR, size & 1, true);

    size_t off = 0;
    bool shut = false;
    for (int step = 0; step < RUN_STEPS; step++) {
        if (!shut && off < size) {
            ssize_t w = write(fds[1], data + off, size - off);
            if (w > 0)
                off += (size_t)w;
            else if (w < 0 && errno != EAGAIN && errno != EINTR)
                off = size; /* the server closed its end: nothing more can be sent */
        }
        if (!shut && off == size) {
            shutdown(fds[1], SHUT_WR);
            shut = true;
        }
        drain(fds[1]);
        uv_run(&loop, UV_RUN_NOWAIT);
    }
    close(fds[1]);
    for (int step = 0; step < CLOSE_STEPS && uv_loop_alive(&loop); step++)
        uv_run(&loop, UV_RUN_NOWAIT);
    if (uv_loop_alive(&loop)) {
        fprintf(stderr, "fuzz_http: the connection is still open %d loop iterations after its client closed\n",
                CLOSE_STEPS);
        abort();
    }
    sc_log_flush();
    return 0;
}
