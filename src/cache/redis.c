/* The Redis client. It attaches hiredis to libuv with its own small set of event hooks rather than hiredis 0.14's
 * bundled libuv adapter: that adapter ignores poll errors (libuv reports a refused connect or a reset as an error
 * status and stops the poll), which would leave a dead connection undetected until every command timed out. Here
 * an error status is handed to hiredis as readability, and hiredis discovers the failure itself. */
#include "cache/redis.h"

#include <hiredis/async.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/mem.h"

const char SC_REDIS_ERR_UNAVAILABLE[] = "cache unavailable";
const char SC_REDIS_ERR_TIMEOUT[] = "cache command timed out";
const char SC_REDIS_ERR_REPLY[] = "cache error reply";
const char SC_REDIS_ERR_SHUTDOWN[] = "cache closing";

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000

struct sc_redis_cmd {
    sc_redis_cmd *prev, *next; /* the client's list of commands awaiting replies or deferred delivery */
    sc_redis *r;
    sc_redis_cb cb;
    void *data;
    uint64_t deadline;
    const char *err; /* deferred failure */
};

typedef struct ev_hooks {
    uv_poll_t poll;
    redisAsyncContext *ac;
    int events;
} ev_hooks;

struct sc_redis {
    uv_loop_t *loop;
    sc_redis_config cfg;
    char *host;
    redisAsyncContext *ac;
    bool connected, closing;
    uv_timer_t reconnect;
    uv_timer_t tick;
    uv_prepare_t prepare;
    sc_redis_cmd *waiting;  /* sent, awaiting a reply */
    sc_redis_cmd *deferred; /* failed at submission, to be reported from the prepare phase */
    uint64_t backoff_ms;
    uint64_t nwaiting;
    int open_handles;
    bool ever_connected;
    void (*on_closed)(void *data);
    void *on_closed_data;
};

static void redis_connect(sc_redis *r);
static void on_reconnect_timer(uv_timer_t *t);
static void on_tick(uv_timer_t *t);

/* ---- event hooks for hiredis ------------------------------------------------------------------------------- */

static void on_ev_poll(uv_poll_t *h, int status, int events)
{
    ev_hooks *e = h->data;
    if (!e->ac)
        return;
    if (status < 0) {
        redisAsyncHandleRead(e->ac); /* hiredis reads, sees the error, and disconnects */
        return;
    }
    if (events & UV_READABLE)
        redisAsyncHandleRead(e->ac);
    if (e->ac && (events & UV_WRITABLE))
        redisAsyncHandleWrite(e->ac);
}

static void ev_update(ev_hooks *e, int add, int del)
{
    e->events = (e->events | add) & ~del;
    if (e->events)
        uv_poll_start(&e->poll, e->events, on_ev_poll);
    else
        uv_poll_stop(&e->poll);
}

static void ev_add_read(void *p) { ev_update(p, UV_READABLE, 0); }
static void ev_del_read(void *p) { ev_update(p, 0, UV_READABLE); }
static void ev_add_write(void *p) { ev_update(p, UV_WRITABLE, 0); }
static void ev_del_write(void *p) { ev_update(p, 0, UV_WRITABLE); }
static void on_ev_closed(uv_handle_t *h) { free(h->data); }

static void ev_cleanup(void *p)
{
    ev_hooks *e = p;
    e->ac = NULL;
    uv_close((uv_handle_t *)&e->poll, on_ev_closed);
}

static int ev_attach(redisAsyncContext *ac, uv_loop_t *loop)
{
    ev_hooks *e = sc_calloc(sizeof(*e));
    if (uv_poll_init(loop, &e->poll, ac->c.fd) != 0) {
        free(e);
        return -1;
    }
    e->poll.data = e;
    e->ac = ac;
    ac->ev.data = e;
    ac->ev.addRead = ev_add_read;
    ac->ev.delRead = ev_del_read;
    ac->ev.addWrite = ev_add_write;
    ac->ev.delWrite = ev_del_write;
    ac->ev.cleanup = ev_cleanup;
    return 0;
}

/* ---- commands ---------------------------------------------------------------------------------------------- */

static void list_push(sc_redis_cmd **head, sc_redis_cmd *c)
{
    c->prev = NULL;
    c->next = *head;
    if (*head)
        (*head)->prev = c;
    *head = c;
}

static void list_remove(sc_redis_cmd **head, sc_redis_cmd *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        *head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
}

static void on_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    sc_redis_cmd *c = privdata;
    sc_redis *r = c->r;
    list_remove(&r->waiting, c);
    r->nwaiting--;
    if (r->nwaiting == 0)
        uv_timer_stop(&r->tick);
    redisReply *rep = reply;
    if (c->cb) {
        const char *err = !rep ? (r->closing ? SC_REDIS_ERR_SHUTDOWN : SC_REDIS_ERR_UNAVAILABLE)
                          : rep->type == REDIS_REPLY_ERROR ? SC_REDIS_ERR_REPLY
                                                           : NULL;
        c->cb(c->data, err, rep);
    }
    free(c);
}

sc_redis_cmd *sc_redis_command(sc_redis *r, sc_redis_cb cb, void *data, int argc, const char **argv,
                               const size_t *lens)
{
    sc_redis_cmd *c = sc_calloc(sizeof(*c));
    c->r = r;
    c->cb = cb;
    c->data = data;
    c->deadline = uv_now(r->loop) + r->cfg.command_timeout_ms;
    if (!r->connected || r->closing || redisAsyncCommandArgv(r->ac, on_reply, c, argc, argv, lens) != REDIS_OK) {
        c->err = r->closing ? SC_REDIS_ERR_SHUTDOWN : SC_REDIS_ERR_UNAVAILABLE;
        list_push(&r->deferred, c);
        return c;
    }
    list_push(&r->waiting, c);
    if (r->nwaiting++ == 0) {
        uint64_t every = r->cfg.command_timeout_ms / 4 ? r->cfg.command_timeout_ms / 4 : 1;
        uv_timer_start(&r->tick, on_tick, every, every);
    }
    return c;
}

void sc_redis_cancel(sc_redis_cmd *c)
{
    if (!c)
        return;
    c->cb = NULL;
    if (c->err) {
        list_remove(&c->r->deferred, c);
        free(c);
    }
}

static void on_prepare(uv_prepare_t *h)
{
    sc_redis *r = h->data;
    while (r->deferred) {
        sc_redis_cmd *c = r->deferred;
        list_remove(&r->deferred, c);
        if (c->cb)
            c->cb(c->data, c->err, NULL);
        free(c);
    }
}

static void on_tick(uv_timer_t *t)
{
    sc_redis *r = t->data;
    uint64_t now = uv_now(r->loop);
    for (sc_redis_cmd *c = r->waiting; c; c = c->next) {
        if (c->cb && c->deadline <= now) {
            sc_redis_cb cb = c->cb;
            c->cb = NULL; /* the reply, if it ever comes, is dropped */
            cb(c->data, SC_REDIS_ERR_TIMEOUT, NULL);
        }
    }
}

/* ---- connection -------------------------------------------------------------------------------------------- */

static void schedule_reconnect(sc_redis *r)
{
    if (r->closing)
        return;
    r->backoff_ms = r->backoff_ms ? r->backoff_ms * 2 : BACKOFF_MIN_MS;
    if (r->backoff_ms > BACKOFF_MAX_MS)
        r->backoff_ms = BACKOFF_MAX_MS;
    uv_timer_start(&r->reconnect, on_reconnect_timer, r->backoff_ms, 0);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    sc_redis *r = ac->data;
    uv_timer_stop(&r->reconnect);
    if (status != REDIS_OK) {
        if (r->backoff_ms == 0 || r->ever_connected)
            sc_log_warn("redis %s:%d: connect failed: %s", r->host, r->cfg.port, ac->errstr);
        r->ever_connected = false;
        r->ac = NULL; /* hiredis frees the context after this callback */
        schedule_reconnect(r);
        return;
    }
    sc_log_info("redis %s:%d connected", r->host, r->cfg.port);
    r->connected = true;
    r->ever_connected = true;
    r->backoff_ms = 0;
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    sc_redis *r = ac->data;
    if (status != REDIS_OK && !r->closing)
        sc_log_warn("redis %s:%d: connection lost: %s", r->host, r->cfg.port, ac->errstr);
    r->connected = false;
    r->ac = NULL;
    schedule_reconnect(r);
}

static void on_reconnect_timer(uv_timer_t *t)
{
    sc_redis *r = t->data;
    if (r->ac && !r->connected) {
        /* The connect did not finish in time: give up on this attempt. No callback runs for it. */
        redisAsyncContext *ac = r->ac;
        r->ac = NULL;
        redisAsyncFree(ac);
        schedule_reconnect(r);
        return;
    }
    redis_connect(r);
}

static void redis_connect(sc_redis *r)
{
    redisAsyncContext *ac = redisAsyncConnect(r->host, r->cfg.port);
    if (!ac || ac->err) {
        sc_log_warn("redis %s:%d: %s", r->host, r->cfg.port, ac ? ac->errstr : "out of memory");
        if (ac)
            redisAsyncFree(ac);
        schedule_reconnect(r);
        return;
    }
    if (ev_attach(ac, r->loop) != 0) {
        redisAsyncFree(ac);
        schedule_reconnect(r);
        return;
    }
    ac->data = r;
    r->ac = ac;
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    uv_timer_start(&r->reconnect, on_reconnect_timer, r->cfg.connect_timeout_ms, 0);
}

int sc_redis_parse_url(const char *url, char *host, size_t hostlen, int *port, char *err, size_t errlen)
{
    const char *p = url;
    if (strncmp(p, "redis://", 8) == 0)
        p += 8;
    if (strchr(p, '@')) {
        snprintf(err, errlen, "REDIS_URL: passwords are not supported");
        return -1;
    }
    const char *end = p + strcspn(p, "/");
    if (*end == '/' && end[1] && strcmp(end, "/0") != 0) {
        snprintf(err, errlen, "REDIS_URL: only database 0 is supported");
        return -1;
    }
    const char *colon = NULL;
    if (*p == '[') {
        const char *close = memchr(p, ']', (size_t)(end - p));
        if (!close) {
            snprintf(err, errlen, "REDIS_URL: bad IPv6 address");
            return -1;
        }
        snprintf(host, hostlen, "%.*s", (int)(close - p - 1), p + 1);
        colon = close + 1 < end && close[1] == ':' ? close + 1 : NULL;
    } else {
        colon = memchr(p, ':', (size_t)(end - p));
        size_t hl = (size_t)((colon ? colon : end) - p);
        snprintf(host, hostlen, "%.*s", (int)hl, p);
    }
    *port = 6379;
    if (colon) {
        char *e;
        long v = strtol(colon + 1, &e, 10);
        if (e != end || v <= 0 || v > 65535) {
            snprintf(err, errlen, "REDIS_URL: bad port");
            return -1;
        }
        *port = (int)v;
    }
    if (!*host)
        snprintf(host, hostlen, "127.0.0.1");
    return 0;
}

sc_redis *sc_redis_new(uv_loop_t *loop, const sc_redis_config *cfg)
{
    sc_redis *r = sc_calloc(sizeof(*r));
    r->loop = loop;
    r->cfg = *cfg;
    r->host = sc_strdup(cfg->host);
    uv_timer_init(loop, &r->reconnect);
    uv_timer_init(loop, &r->tick);
    uv_prepare_init(loop, &r->prepare);
    r->reconnect.data = r->tick.data = r->prepare.data = r;
    uv_prepare_start(&r->prepare, on_prepare);
    uv_unref((uv_handle_t *)&r->prepare);
    r->open_handles = 3;
    redis_connect(r);
    return r;
}

bool sc_redis_connected(const sc_redis *r) { return r->connected; }

static void on_handle_closed(uv_handle_t *h)
{
    sc_redis *r = h->data;
    if (--r->open_handles > 0)
        return;
    void (*cb)(void *) = r->on_closed;
    void *data = r->on_closed_data;
    free(r->host);
    free(r);
    if (cb)
        cb(data);
}

void sc_redis_close(sc_redis *r, void (*on_closed)(void *data), void *data)
{
    r->closing = true;
    r->on_closed = on_closed;
    r->on_closed_data = data;
    if (r->ac) {
        redisAsyncContext *ac = r->ac;
        r->ac = NULL;
        r->connected = false;
        redisAsyncFree(ac); /* pending commands get their callbacks with no reply */
    }
    on_prepare(&r->prepare);
    uv_close((uv_handle_t *)&r->reconnect, on_handle_closed);
    uv_close((uv_handle_t *)&r->tick, on_handle_closed);
    uv_close((uv_handle_t *)&r->prepare, on_handle_closed);
}
