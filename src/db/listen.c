/* LISTEN on a dedicated connection: libpq's non-blocking connect and notification reading driven by uv_poll.
 *
 *   DOWN --connect--> CONNECTING --PQconnectPoll OK, send LISTEN--> LISTENING --LISTEN answered--> READY
 *     ^                    |                                            |                           |
 *     +---- backoff <------+--------------------- error, timeout -------+------- error, heartbeat --+
 *                                                                                  not answered
 *
 * In READY the timer alternates: heartbeat_ms until the next `SELECT 1`, then connect_timeout_ms for its answer.
 *
 * The socket may change while PQconnectPoll works through the addresses of a connection string, so it is read
 * again after every step, and a poll handle is never left on a socket that libpq has closed: the handle is stopped
 * and closed before PQfinish. */
#include "db/listen.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/mem.h"
#include "core/random.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 10000

typedef enum { L_DOWN, L_CONNECTING, L_LISTENING, L_READY, L_CLOSED } listener_state;

struct sc_pg_listener {
    uv_loop_t *loop;
    char *conninfo;
    char *listen_sql;
    uint64_t connect_timeout_ms;
    uint64_t heartbeat_ms;
    bool beat_out; /* a heartbeat query awaits its answer */
    PGconn *pg;
    uv_poll_t *poll; /* on fd, or NULL */
    int fd;
    int events;
    uv_timer_t timer; /* connect deadline, reconnect backoff, heartbeat and its deadline */
    listener_state state;
    uint64_t backoff_ms;
    bool ever_up;
    char *what; /* names the connection in the log */
    char *app_name;
    sc_pg_listener_fn on_event;
    void *data;
    void (*on_closed)(void *data);
    void *closed_data;
    unsigned open_handles;
};

static void on_poll(uv_poll_t *h, int status, int events);
static void on_timer(uv_timer_t *t);

static void handle_closed(sc_pg_listener *l)
{
    if (--l->open_handles > 0 || l->state != L_CLOSED)
        return;
    void (*cb)(void *) = l->on_closed;
    void *data = l->closed_data;
    free(l->conninfo);
    free(l->listen_sql);
    free(l->what);
    free(l->app_name);
    free(l);
    if (cb)
        cb(data);
}

static void on_poll_closed(uv_handle_t *h)
{
    sc_pg_listener *l = h->data;
    free(h);
    handle_closed(l);
}

static void on_timer_closed(uv_handle_t *h) { handle_closed(h->data); }

static void unwatch(sc_pg_listener *l)
{
    if (!l->poll)
        return;
    uv_poll_stop(l->poll);
    uv_close((uv_handle_t *)l->poll, on_poll_closed);
    l->poll = NULL;
    l->fd = -1;
    l->events = 0;
}

/* Watches libpq's current socket for events (a new socket gets a new poll handle). Returns -1 on failure. */
static int watch(sc_pg_listener *l, int events)
{
    int fd = PQsocket(l->pg);
    if (fd < 0)
        return -1;
    if (l->poll && l->fd != fd)
        unwatch(l);
    if (!l->poll) {
        l->poll = sc_alloc(sizeof(*l->poll));
        if (uv_poll_init(l->loop, l->poll, fd) != 0) {
            free(l->poll);
            l->poll = NULL;
            return -1;
        }
        l->poll->data = l;
        l->open_handles++;
        l->fd = fd;
        l->events = 0;
    }
    if (events != l->events) {
        if (uv_poll_start(l->poll, events, on_poll) != 0)
            return -1;
        l->events = events;
    }
    return 0;
}

/* Tears the connection down and plans the next attempt. A warning when a connection goes away or the first
 * attempt fails; repeated failures only at debug level. */
static void broken(sc_pg_listener *l, const char *why)
{
    if (l->state == L_DOWN || l->state == L_CLOSED)
        return;
    if (l->state == L_READY || (!l->ever_up && l->backoff_ms == 0))
        sc_log_warn("%s notification connection %s: %s", l->what, l->state == L_READY ? "lost" : "failed", why);
    else
        sc_log_debug("%s notification connection failed again: %s", l->what, why);
    unwatch(l);
    if (l->pg) {
        PQfinish(l->pg);
        l->pg = NULL;
    }
    l->state = L_DOWN;
    l->beat_out = false;
    l->backoff_ms = l->backoff_ms ? l->backoff_ms * 2 : BACKOFF_MIN_MS;
    if (l->backoff_ms > BACKOFF_MAX_MS)
        l->backoff_ms = BACKOFF_MAX_MS;
    uint64_t jitter = sc_random_below(l->backoff_ms / 4 + 1);
    uv_timer_start(&l->timer, on_timer, l->backoff_ms + jitter, 0);
}

/* Notices and warnings from the server go to our log as one line, not straight to stderr. */
static void on_notice(void *arg, const char *message)
{
    sc_pg_listener *l = arg;
    sc_log_warn("%s notification connection: %s", l->what, message);
}

static void connect_start(sc_pg_listener *l)
{
    /* Named in pg_stat_activity unless the connection string names itself. */
    const char *const keys[] = {"dbname", "fallback_application_name", NULL};
    const char *const values[] = {l->conninfo, l->app_name, NULL};
    l->pg = PQconnectStartParams(keys, values, 1);
    l->state = L_CONNECTING;
    if (l->pg)
        PQsetNoticeProcessor(l->pg, on_notice, l);
    if (!l->pg || PQstatus(l->pg) == CONNECTION_BAD) {
        broken(l, l->pg ? PQerrorMessage(l->pg) : "out of memory");
        return;
    }
    uv_timer_start(&l->timer, on_timer, l->connect_timeout_ms, 0);
    if (watch(l, UV_WRITABLE) != 0)
        broken(l, "cannot watch the connection's socket");
}

/* Sends what libpq has buffered; keeps write interest while some is left. */
static void flush(sc_pg_listener *l)
{
    int r = PQflush(l->pg);
    if (r < 0 || watch(l, r == 1 ? UV_READABLE | UV_WRITABLE : UV_READABLE) != 0)
        broken(l, PQerrorMessage(l->pg));
}

static void connect_step(sc_pg_listener *l)
{
    int rc = 0;
    switch (PQconnectPoll(l->pg)) {
    case PGRES_POLLING_READING:
        rc = watch(l, UV_READABLE);
        break;
    case PGRES_POLLING_WRITING:
        rc = watch(l, UV_WRITABLE);
        break;
    case PGRES_POLLING_OK:
        if (PQsetnonblocking(l->pg, 1) != 0 || !PQsendQuery(l->pg, l->listen_sql)) {
            broken(l, PQerrorMessage(l->pg));
            return;
        }
        l->state = L_LISTENING;
        flush(l);
        return;
    default:
        broken(l, PQerrorMessage(l->pg));
        return;
    }
    if (rc != 0)
        broken(l, "cannot watch the connection's socket");
}

/* Reads what arrived: the answer to LISTEN, then notifications. Callbacks run last: one may close the listener. */
static void read_input(sc_pg_listener *l)
{
    if (!PQconsumeInput(l->pg)) {
        broken(l, PQerrorMessage(l->pg));
        return;
    }
    bool ready_now = false, beat_answered = false;
    while (!PQisBusy(l->pg)) {
        PGresult *r = PQgetResult(l->pg);
        if (!r)
            break;
        ExecStatusType st = PQresultStatus(r);
        if (st != (l->state == L_LISTENING ? PGRES_COMMAND_OK : PGRES_TUPLES_OK)) {
            char why[256];
            snprintf(why, sizeof(why), "%s failed: %s", l->state == L_LISTENING ? "LISTEN" : "heartbeat",
                     PQresultErrorMessage(r));
            PQclear(r);
            broken(l, why);
            return;
        }
        PQclear(r);
        if (l->state == L_LISTENING) {
            if (l->ever_up)
                sc_log_info("%s notification connection back", l->what);
            l->state = L_READY;
            l->ever_up = true;
            l->backoff_ms = 0;
            ready_now = true;
        } else if (l->beat_out) {
            beat_answered = true;
        }
    }
    if (ready_now || beat_answered) {
        l->beat_out = false;
        uv_timer_start(&l->timer, on_timer, l->heartbeat_ms, 0);
    }
    if (PQstatus(l->pg) == CONNECTION_BAD) {
        broken(l, PQerrorMessage(l->pg));
        return;
    }
    /* Whatever was announced while we were not listening is lost: the owner starts over. */
    if (ready_now && l->on_event)
        l->on_event(l->data, NULL, NULL);
    PGnotify *n;
    while (l->state == L_READY && (n = PQnotifies(l->pg)) != NULL) {
        if (l->on_event)
            l->on_event(l->data, n->relname, n->extra);
        PQfreemem(n);
    }
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    sc_pg_listener *l = h->data;
    if (h != l->poll || l->state == L_DOWN || l->state == L_CLOSED)
        return;
    if (l->state == L_CONNECTING) {
        connect_step(l);
        return;
    }
    if (status < 0) {
        broken(l, PQconsumeInput(l->pg) ? "socket error" : PQerrorMessage(l->pg));
        return;
    }
    if (events & UV_WRITABLE) {
        flush(l);
        if (l->state == L_DOWN)
            return;
    }
    if (events & UV_READABLE)
        read_input(l);
}

static void on_timer(uv_timer_t *t)
{
    sc_pg_listener *l = t->data;
    if (l->state == L_CONNECTING || l->state == L_LISTENING) {
        broken(l, "connect timed out");
    } else if (l->state == L_DOWN) {
        connect_start(l);
    } else if (l->state == L_READY && l->beat_out) {
        char why[96];
        snprintf(why, sizeof(why), "no answer to a heartbeat within %llu ms",
                 (unsigned long long)l->connect_timeout_ms);
        broken(l, why);
    } else if (l->state == L_READY) {
        if (!PQsendQuery(l->pg, "SELECT 1")) {
            broken(l, PQerrorMessage(l->pg));
            return;
        }
        l->beat_out = true;
        uv_timer_start(&l->timer, on_timer, l->connect_timeout_ms, 0);
        flush(l);
    }
}

sc_pg_listener *sc_pg_listener_new(uv_loop_t *loop, const sc_pg_listener_config *cfg, sc_pg_listener_fn on_event,
                                   void *data)
{
    sc_pg_listener *l = sc_calloc(sizeof(*l));
    l->loop = loop;
    l->conninfo = sc_strdup(cfg->conninfo ? cfg->conninfo : "");
    size_t len = strlen(cfg->channel) + sizeof("LISTEN ");
    l->listen_sql = sc_alloc(len);
    snprintf(l->listen_sql, len, "LISTEN %s", cfg->channel);
    l->what = sc_strdup(cfg->what ? cfg->what : cfg->channel);
    l->app_name = sc_strdup(cfg->app_name ? cfg->app_name : "staccato");
    l->connect_timeout_ms = cfg->connect_timeout_ms ? cfg->connect_timeout_ms : 3000;
    l->heartbeat_ms = cfg->heartbeat_ms ? cfg->heartbeat_ms : 10000;
    l->fd = -1;
    l->on_event = on_event;
    l->data = data;
    uv_timer_init(loop, &l->timer);
    l->timer.data = l;
    l->open_handles = 1;
    l->state = L_DOWN;
    connect_start(l);
    return l;
}

bool sc_pg_listener_ready(const sc_pg_listener *l) { return l->state == L_READY; }

void sc_pg_listener_close(sc_pg_listener *l, void (*on_closed)(void *data), void *data)
{
    l->on_closed = on_closed;
    l->closed_data = data;
    l->on_event = NULL;
    unwatch(l);
    if (l->pg) {
        PQfinish(l->pg);
        l->pg = NULL;
    }
    l->state = L_CLOSED;
    uv_timer_stop(&l->timer);
    uv_close((uv_handle_t *)&l->timer, on_timer_closed);
}
