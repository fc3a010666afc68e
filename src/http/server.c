/* The HTTP server: listening sockets and accepting, adopted sockets, the TLS configuration for new secure
 * connections, the graceful stop (drain) and the metrics. Connections themselves are in http1.c.
 *
 * Listening sockets are watched with uv_poll_t and accepted with accept4(2), so that a client socket is
 * non-blocking from the start and goes to the connection code without a libuv stream in between. */
#define _GNU_SOURCE /* accept4 */
#include "http/server.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "core/mem.h"
#include "http/http1.h"

static void on_accept_timer(uv_timer_t *t);

static void on_listener(uv_poll_t *h, int status, int events)
{
    struct sc_http_listener *l = h->data;
    sc_server *s = l->server;
    if (status < 0) {
        sc_log_warn("listener: %s", uv_strerror(status));
        return;
    }
    /* Accept what is waiting, in bounded batches so that established connections are served too. */
    for (int i = 0; i < 128 && !s->draining; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        int fd = accept4(l->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            sc_http_conn_start(s, fd, (struct sockaddr *)&ss, l->secure);
            continue;
        }
        if (errno == EINTR || errno == ECONNABORTED)
            continue;
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
            /* Out of descriptors: pausing for a moment lets some close, instead of spinning on the ready socket.
             */
            sc_log_warn("accept: %s; pausing new connections for 100 ms", strerror(errno));
            for (int k = 0; k < s->nlisteners; k++)
                uv_poll_stop(&s->listeners[k].poll);
            uv_timer_start(&s->accept_timer, on_accept_timer, 100, 0);
        } else if (errno != EAGAIN && errno != EWOULDBLOCK) {
            sc_log_warn("accept: %s", strerror(errno));
        }
        return;
    }
}

static void on_accept_timer(uv_timer_t *t)
{
    sc_server *s = t->data;
    if (!s->draining)
        for (int k = 0; k < s->nlisteners; k++)
            uv_poll_start(&s->listeners[k].poll, UV_READABLE, on_listener);
}

int sc_server_adopt(sc_server *s, int fd, bool tls)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
        return uv_translate_sys_error(errno);
    bool named = getpeername(fd, (struct sockaddr *)&ss, &sl) == 0 && ss.ss_family != AF_UNIX;
    sc_http_conn_start(s, fd, named ? (struct sockaddr *)&ss : NULL, tls);
    return 0;
}

/* ---- server ----------------------------------------------------------------------------------------------- */

sc_server *sc_server_new(uv_loop_t *loop, const sc_server_config *cfg)
{
    sc_server *s = sc_calloc(sizeof(*s));
    s->loop = loop;
    s->cfg = *cfg;
    s->router = sc_router_new(cfg->routes, cfg->nroutes);
    s->route_names = sc_calloc(sizeof(char *) * (cfg->nroutes ? cfg->nroutes : 1));
    for (size_t i = 0; i < cfg->nroutes; i++)
        s->route_names[i] = cfg->routes[i].pattern;
    s->readbuf = sc_alloc(SC_HTTP_READ_BUF_SIZE);
    sc_http_parser_settings(&s->settings);
    sc_conn_group_init(&s->net, loop);
    uv_timer_init(loop, &s->drain_timer);
    s->drain_timer.data = s;
    uv_timer_init(loop, &s->accept_timer);
    s->accept_timer.data = s;
    return s;
}

int sc_server_listen_fd(sc_server *s, int fd, int backlog, bool tls)
{
    if (s->nlisteners == 2 || (tls && !s->tls_config))
        return UV_EINVAL;
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0 || listen(fd, backlog) != 0)
        return uv_translate_sys_error(errno);
    struct sc_http_listener *l = &s->listeners[s->nlisteners];
    int rc = uv_poll_init_socket(s->loop, &l->poll, fd);
    if (rc != 0)
        return rc;
    l->poll.data = l;
    l->fd = fd;
    l->secure = tls;
    l->server = s;
    s->nlisteners++;
    s->listening = true;
    return uv_poll_start(&l->poll, UV_READABLE, on_listener);
}

void sc_server_set_tls(sc_server *s, sc_tls_config *cfg)
{
    if (cfg)
        sc_tls_config_ref(cfg);
    sc_tls_config_unref(s->tls_config);
    s->tls_config = cfg;
}

static void on_listener_closed(uv_handle_t *h)
{
    struct sc_http_listener *l = h->data;
    l->server->listeners_closed++;
    sc_http_server_maybe_done(l->server);
}

static void on_net_closed(void *data)
{
    sc_server *s = data;
    s->net_closed = true;
    sc_http_server_maybe_done(s);
}

static void on_accept_timer_closed(uv_handle_t *h)
{
    sc_server *s = h->data;
    s->accept_timer_closed = true;
    sc_http_server_maybe_done(s);
}

static void on_drain_timer_closed(uv_handle_t *h)
{
    sc_server *s = h->data;
    s->drain_timer_closed = true;
    sc_http_server_maybe_done(s);
}

void sc_http_server_maybe_done(sc_server *s)
{
    if (!s->draining || s->nall > 0)
        return;
    if (!uv_is_closing((uv_handle_t *)&s->drain_timer)) {
        uv_close((uv_handle_t *)&s->drain_timer, on_drain_timer_closed);
        sc_conn_group_close(&s->net, on_net_closed, s);
        return;
    }
    if (s->listeners_closed == s->nlisteners && s->drain_timer_closed && s->accept_timer_closed && s->net_closed &&
        s->on_done) {
        void (*cb)(void *) = s->on_done;
        s->on_done = NULL;
        cb(s->on_done_data);
    }
}

static void on_drain_timeout(uv_timer_t *t)
{
    sc_server *s = t->data;
    if (s->nall)
        sc_log_warn("drain timeout: closing %llu connections", (unsigned long long)s->nall);
    while (s->conns)
        sc_http_conn_close(s->conns);
}

void sc_server_shutdown(sc_server *s, void (*on_done)(void *data), void *data)
{
    if (s->draining)
        return;
    s->draining = true;
    s->on_done = on_done;
    s->on_done_data = data;
    for (int k = 0; k < s->nlisteners; k++) {
        uv_close((uv_handle_t *)&s->listeners[k].poll, on_listener_closed);
        close(s->listeners[k].fd);
        s->listeners[k].fd = -1;
    }
    uv_close((uv_handle_t *)&s->accept_timer, on_accept_timer_closed);
    uv_timer_start(&s->drain_timer, on_drain_timeout, s->cfg.limits.drain_timeout_ms, 0);
    sc_http_conn *c = s->conns;
    while (c) {
        sc_http_conn *next = c->next;
        if (c->state == CONN_IDLE && !c->super.writing && c->super.out.len == 0 && c->in.len == 0)
            sc_http_conn_close(c);
        else
            c->keep_alive = false; /* the response in progress says Connection: close */
        c = next;
    }
    sc_http_server_maybe_done(s);
}

void sc_server_free(sc_server *s)
{
    if (!s)
        return;
    sc_router_free(s->router);
    sc_tls_config_unref(s->tls_config);
    free(s->route_names);
    free(s->readbuf);
    sc_metrics_free(&s->metrics);
    sc_peer_table_free(&s->peers);
    free(s);
}

uv_loop_t *sc_server_loop(const sc_server *s) { return s->loop; }

void sc_server_metrics_render(sc_server *s, sc_buf *out)
{
    /* Socket-level counters are kept by the connections (net/conn.h) and read here. */
    s->metrics.bytes_sent = s->net.stats.bytes_sent;
    s->metrics.tls_handshakes = s->net.stats.tls_handshakes;
    s->metrics.tls_handshake_offloads = s->net.stats.tls_handshake_offloads;
    sc_metrics_render(&s->metrics, s->route_names, s->nconns, out);
    sc_buf_printf(out,
                  "# HELP staccato_http_body_memory_bytes Bytes of request bodies buffered (held from each body's "
                  "Content-Length), against STACCATO_MAX_BODY_MEMORY.\n"
                  "# TYPE staccato_http_body_memory_bytes gauge\n"
                  "staccato_http_body_memory_bytes %llu\n"
                  "# HELP staccato_http_output_memory_bytes Response bytes queued in memory for clients (file "
                  "ranges not counted), against STACCATO_MAX_OUTPUT_MEMORY.\n"
                  "# TYPE staccato_http_output_memory_bytes gauge\n"
                  "staccato_http_output_memory_bytes %llu\n"
                  "# HELP staccato_http_connections_refused_per_address_total Connections refused with 503 at "
                  "STACCATO_MAX_CONNECTIONS_PER_ADDRESS.\n"
                  "# TYPE staccato_http_connections_refused_per_address_total counter\n"
                  "staccato_http_connections_refused_per_address_total %llu\n",
                  (unsigned long long)s->body_memory, (unsigned long long)s->output_memory,
                  (unsigned long long)s->connections_refused_per_address);
}
