/* The table of current token versions: a chained hash table, filled by loads and notifications (see the
 * header). */
#include "api/token_versions.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/db.h"
#include "core/log.h"
#include "core/mem.h"
#include "db/listen.h"

#define DELETED INT64_MAX /* the version of an account that is gone: no token has it */
#define RETRY_MS 1000     /* a failed load is tried again after this long */
#define MIN_PRUNE 1024    /* entries before the first sweep for old ones */

typedef struct entry entry;
struct entry {
    entry *next;
    uint32_t hash;
    int64_t version;
    uint64_t noted_ms; /* when this process learnt of the change (not earlier than the change itself) */
    size_t idlen;
    char id[];
};

struct sc_token_versions {
    uv_loop_t *loop;
    sc_pg_pool *pool;
    sc_pg_listener *listener;
    uv_timer_t retry;
    sc_pg_query *loading;
    entry **buckets;
    size_t nbuckets; /* a power of two */
    size_t count, prune_at;
    uint64_t window_ms;
    char window_s[24];
    void (*on_closed)(void *data);
    void *closed_data;
    unsigned open; /* the listener and the timer, while not closed */
};

static uint32_t hash_id(const char *id, size_t n)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)id[i];
        h *= 16777619u;
    }
    return h;
}

static entry **slot_of(const sc_token_versions *t, const char *id, size_t n, uint32_t h)
{
    entry **p = &t->buckets[h & (t->nbuckets - 1)];
    while (*p && !((*p)->hash == h && (*p)->idlen == n && memcmp((*p)->id, id, n) == 0))
        p = &(*p)->next;
    return p;
}

static void grow(sc_token_versions *t)
{
    size_t n = t->nbuckets * 2;
    entry **b = sc_calloc(n * sizeof(*b));
    for (size_t i = 0; i < t->nbuckets; i++) {
        entry *e = t->buckets[i];
        while (e) {
            entry *next = e->next;
            e->next = b[e->hash & (n - 1)];
            b[e->hash & (n - 1)] = e;
            e = next;
        }
    }
    free(t->buckets);
    t->buckets = b;
    t->nbuckets = n;
}

/* Drops the entries older than any access token can be: every token they would refuse has expired. */
static void prune(sc_token_versions *t)
{
    uint64_t now = uv_now(t->loop);
    for (size_t i = 0; i < t->nbuckets; i++) {
        entry **p = &t->buckets[i];
        while (*p) {
            entry *e = *p;
            if (e->noted_ms + t->window_ms < now) {
                *p = e->next;
                free(e);
                t->count--;
            } else {
                p = &e->next;
            }
        }
    }
    t->prune_at = t->count * 2 > MIN_PRUNE ? t->count * 2 : MIN_PRUNE;
}

static void note(sc_token_versions *t, const char *id, size_t n, int64_t version)
{
    if (!t || n == 0)
        return;
    uint32_t h = hash_id(id, n);
    entry **slot = slot_of(t, id, n, h);
    if (*slot) {
        if ((*slot)->version < version)
            (*slot)->version = version;
        (*slot)->noted_ms = uv_now(t->loop);
        return;
    }
    if (t->count >= t->prune_at)
        prune(t);
    if (t->count >= t->nbuckets)
        grow(t);
    entry *e = sc_calloc(sizeof(*e) + n + 1);
    e->hash = h;
    e->version = version;
    e->noted_ms = uv_now(t->loop);
    e->idlen = n;
    memcpy(e->id, id, n);
    e->next = NULL;
    *slot_of(t, id, n, h) = e;
    t->count++;
}

void sc_token_versions_note(sc_token_versions *t, const char *user_id, int64_t version)
{
    note(t, user_id, strlen(user_id), version);
}

void sc_token_versions_note_deleted(sc_token_versions *t, const char *user_id)
{
    note(t, user_id, strlen(user_id), DELETED);
}

bool sc_token_versions_current(const sc_token_versions *t, const char *user_id, int64_t ver)
{
    if (!t)
        return true;
    size_t n = strlen(user_id);
    const entry *e = *slot_of(t, user_id, n, hash_id(user_id, n));
    return !e || (e->version != DELETED && ver >= e->version);
}

/* A version as the database sends it: decimal digits. Returns -1 for anything else. */
static int64_t parse_version(const char *s)
{
    unsigned long long v;
    if (sc_slice_to_u64(sc_slice_cstr(s), (unsigned long long)INT64_MAX - 1, &v) != 0)
        return -1;
    return (int64_t)v;
}

static void load(sc_token_versions *t);

static void on_retry(uv_timer_t *h) { load(h->data); }

/* Rows of (user id, version or NULL for a deleted account). */
static void on_loaded(void *data, const char *err, PGresult *res)
{
    sc_token_versions *t = data;
    t->loading = NULL;
    if (err) {
        sc_log_warn("token versions not loaded (%s): trying again", err);
        uv_timer_start(&t->retry, on_retry, RETRY_MS, 0);
        return;
    }
    for (int i = 0; i < PQntuples(res); i++) {
        const char *id = PQgetvalue(res, i, 0);
        int64_t v = PQgetisnull(res, i, 1) ? DELETED : parse_version(PQgetvalue(res, i, 1));
        if (v >= 0)
            note(t, id, strlen(id), v);
    }
}

/* The first load, before the process serves: blocking, once, at start (as the migrations check and the admin
 * account are), so that a server started after a change refuses the earlier tokens from its first request. When
 * the database cannot be reached now, the loads on the loop fill the table as soon as it can. */
static void load_at_start(sc_token_versions *t, const char *conninfo, uint64_t connect_timeout_ms)
{
    char timeout[24];
    snprintf(timeout, sizeof(timeout), "%llu", (unsigned long long)(connect_timeout_ms + 999) / 1000);
    const char *const keys[] = {"dbname", "connect_timeout", "fallback_application_name", NULL};
    const char *const values[] = {conninfo, timeout, "staccato-token-versions", NULL};
    PGconn *c = PQconnectdbParams(keys, values, 1);
    PGresult *r = NULL;
    if (PQstatus(c) == CONNECTION_OK) {
        const char *params[] = {t->window_s};
        r = PQexecParams(c, sc_api_stmts[SC_STMT_TOKEN_VERSIONS_RECENT].sql, 1, NULL, params, NULL, NULL, 0);
    }
    if (r && PQresultStatus(r) == PGRES_TUPLES_OK)
        on_loaded(t, NULL, r);
    else
        sc_log_warn("token versions not loaded at start: %s", PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
}

static void load(sc_token_versions *t)
{
    if (t->loading || !t->pool)
        return;
    uv_timer_stop(&t->retry);
    t->loading = SC_API_PG_EXEC(t->pool, SC_STMT_TOKEN_VERSIONS_RECENT, on_loaded, t, t->window_s);
}

/* A notification "<user id> <version>" or "<user id> deleted"; or, with channel NULL, the LISTEN (re)established:
 * what was announced in between is loaded again. */
static void on_event(void *data, const char *channel, const char *payload)
{
    sc_token_versions *t = data;
    if (!channel) {
        load(t);
        return;
    }
    const char *space = payload ? strchr(payload, ' ') : NULL;
    if (!space)
        return;
    int64_t v = strcmp(space + 1, "deleted") == 0 ? DELETED : parse_version(space + 1);
    if (v >= 0)
        note(t, payload, (size_t)(space - payload), v);
}

sc_token_versions *sc_token_versions_new(uv_loop_t *loop, sc_pg_pool *pool, const char *conninfo,
                                         uint64_t window_s, uint64_t connect_timeout_ms, uint64_t heartbeat_ms)
{
    sc_token_versions *t = sc_calloc(sizeof(*t));
    t->loop = loop;
    t->pool = pool;
    t->nbuckets = 64;
    t->buckets = sc_calloc(t->nbuckets * sizeof(*t->buckets));
    t->prune_at = MIN_PRUNE;
    t->window_ms = window_s * 1000;
    snprintf(t->window_s, sizeof(t->window_s), "%llu", (unsigned long long)window_s);
    uv_timer_init(loop, &t->retry);
    t->retry.data = t;
    uv_unref((uv_handle_t *)&t->retry);
    t->open = 2;
    sc_pg_listener_config lc = {.conninfo = conninfo,
                                .channel = SC_TOKEN_CHANNEL,
                                .what = "token version",
                                .app_name = "staccato-token-versions",
                                .connect_timeout_ms = connect_timeout_ms,
                                .heartbeat_ms = heartbeat_ms};
    load_at_start(t, conninfo, connect_timeout_ms);
    t->listener = sc_pg_listener_new(loop, &lc, on_event, t); /* loaded again when the LISTEN is in effect */
    return t;
}

static void closed_one(sc_token_versions *t)
{
    if (--t->open > 0)
        return;
    void (*cb)(void *) = t->on_closed;
    void *cb_data = t->closed_data;
    for (size_t i = 0; i < t->nbuckets; i++)
        for (entry *e = t->buckets[i], *next; e; e = next) {
            next = e->next;
            free(e);
        }
    free(t->buckets);
    free(t);
    if (cb)
        cb(cb_data);
}

static void on_listener_closed(void *data) { closed_one(data); }
static void on_timer_closed(uv_handle_t *h) { closed_one(h->data); }

void sc_token_versions_close(sc_token_versions *t, void (*on_closed)(void *data), void *data)
{
    if (!t) {
        if (on_closed)
            on_closed(data);
        return;
    }
    t->on_closed = on_closed;
    t->closed_data = data;
    if (t->loading)
        sc_pg_cancel(t->loading);
    t->loading = NULL;
    t->pool = NULL;
    uv_timer_stop(&t->retry);
    uv_close((uv_handle_t *)&t->retry, on_timer_closed);
    sc_pg_listener_close(t->listener, on_listener_closed, t);
}
