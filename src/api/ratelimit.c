#include "api/ratelimit.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/mem.h"

#define LOCAL_BUCKETS 4096
#define LOCAL_MAX_ENTRIES 100000

typedef struct entry {
    struct entry *next;
    uint64_t window_end;
    uint64_t count;
    char key[];
} entry;

struct sc_ratelimit {
    entry *buckets[LOCAL_BUCKETS];
    size_t n;
};

sc_ratelimit *sc_ratelimit_new(void) { return sc_calloc(sizeof(sc_ratelimit)); }

void sc_ratelimit_free(sc_ratelimit *rl)
{
    if (!rl)
        return;
    for (size_t i = 0; i < LOCAL_BUCKETS; i++) {
        entry *e = rl->buckets[i];
        while (e) {
            entry *next = e->next;
            free(e);
            e = next;
        }
    }
    free(rl);
}

static uint64_t hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

uint64_t sc_ratelimit_local_hit(sc_ratelimit *rl, const char *key, uint64_t window_s, uint64_t now_s,
                                uint64_t *left_s)
{
    entry **slot = &rl->buckets[hash(key) % LOCAL_BUCKETS];
    entry *found = NULL;
    /* Expired entries in this chain are dropped on the way, which bounds the table by the live keys. */
    for (entry **pp = slot; *pp;) {
        entry *e = *pp;
        if (e->window_end <= now_s) {
            *pp = e->next;
            free(e);
            rl->n--;
            continue;
        }
        if (strcmp(e->key, key) == 0)
            found = e;
        pp = &e->next;
    }
    if (!found) {
        if (rl->n >= LOCAL_MAX_ENTRIES) {
            *left_s = window_s;
            return UINT64_MAX; /* under a flood of distinct keys, refuse rather than grow without bound */
        }
        size_t kl = strlen(key) + 1;
        found = sc_calloc(sizeof(entry) + kl);
        memcpy(found->key, key, kl);
        found->window_end = now_s + window_s;
        found->next = *slot;
        *slot = found;
        rl->n++;
    }
    found->count++;
    *left_s = found->window_end - now_s;
    return found->count;
}

void sc_ratelimit_local_undo(sc_ratelimit *rl, const char *key)
{
    for (entry *e = rl->buckets[hash(key) % LOCAL_BUCKETS]; e; e = e->next)
        if (strcmp(e->key, key) == 0 && e->count > 0)
            e->count--;
}

/* INCR both keys, start their windows on first use, and report counts and time left in one round trip. */
static const char script[] = "local r = {}\n"
                             "for i, k in ipairs(KEYS) do\n"
                             "  local n = redis.call('INCR', k)\n"
                             "  if n == 1 then redis.call('EXPIRE', k, ARGV[1]) end\n"
                             "  r[#r + 1] = n\n"
                             "  r[#r + 1] = redis.call('TTL', k)\n"
                             "end\n"
                             "return r\n";

typedef struct login_check {
    sc_req *req;
    sc_redis_cmd *cmd;
    sc_ratelimit_cb cb;
    char account_key[160];
    char address_key[96];
} login_check;

static void decide(login_check *lc, uint64_t account_n, uint64_t account_ttl, uint64_t address_n,
                   uint64_t address_ttl)
{
    const sc_settings *st = ((sc_app *)lc->req->app)->settings;
    uint64_t retry = 0;
    if (account_n > st->login_max_per_account)
        retry = account_ttl;
    if (address_n > st->login_max_per_address && address_ttl > retry)
        retry = address_ttl;
    lc->cb(lc->req, retry == 0, retry ? retry : 0);
}

static void decide_locally(login_check *lc)
{
    sc_app *app = lc->req->app;
    uint64_t window = app->settings->login_window_s, now = (uint64_t)time(NULL), t1, t2;
    uint64_t n1 = sc_ratelimit_local_hit(app->local_limits, lc->account_key, window, now, &t1);
    uint64_t n2 = sc_ratelimit_local_hit(app->local_limits, lc->address_key, window, now, &t2);
    decide(lc, n1, t1, n2, t2);
}

static void on_reply(void *data, const char *err, redisReply *r)
{
    login_check *lc = data;
    lc->cmd = NULL;
    if (err || r->type != REDIS_REPLY_ARRAY || r->elements != 4) {
        decide_locally(lc);
        return;
    }
    uint64_t v[4];
    for (int i = 0; i < 4; i++)
        v[i] = r->element[i]->type == REDIS_REPLY_INTEGER && r->element[i]->integer > 0
                   ? (uint64_t)r->element[i]->integer
                   : 1;
    decide(lc, v[0], v[1], v[2], v[3]);
}

static void on_request_gone(void *data)
{
    login_check *lc = data;
    sc_redis_cancel(lc->cmd);
    lc->cmd = NULL;
}

static void make_keys(sc_req *req, sc_slice username, login_check *lc)
{
    size_t n = snprintf(lc->account_key, sizeof(lc->account_key), "staccato:login:user:");
    for (size_t i = 0; i < username.len && n + 1 < sizeof(lc->account_key); i++)
        lc->account_key[n++] = (char)tolower((unsigned char)username.ptr[i]);
    lc->account_key[n] = '\0';
    sc_slice client = sc_req_client(req);
    snprintf(lc->address_key, sizeof(lc->address_key), "staccato:login:addr:%.*s", (int)client.len, client.ptr);
}

void sc_ratelimit_login(sc_req *req, sc_slice username, sc_ratelimit_cb cb)
{
    sc_app *app = req->app;
    login_check *lc = sc_arena_alloc(req->arena, sizeof(*lc));
    lc->req = req;
    lc->cb = cb;
    make_keys(req, username, lc);
    char window[24];
    snprintf(window, sizeof(window), "%llu", (unsigned long long)app->settings->login_window_s);
    const char *argv[] = {"EVAL", script, "2", lc->account_key, lc->address_key, window};
    size_t lens[] = {4, sizeof(script) - 1, 1, strlen(lc->account_key), strlen(lc->address_key), strlen(window)};
    sc_req_on_dispose(req, on_request_gone, lc);
    lc->cmd = sc_redis_command(app->redis, on_reply, lc, 6, argv, lens);
}

void sc_ratelimit_login_succeeded(sc_req *req, sc_slice username)
{
    sc_app *app = req->app;
    login_check keys;
    make_keys(req, username, &keys);
    sc_ratelimit_local_undo(app->local_limits, keys.account_key);
    sc_ratelimit_local_undo(app->local_limits, keys.address_key);
    /* Fire and forget: a lost decrement only makes the limit a little stricter. */
    static const char undo[] = "for i, k in ipairs(KEYS) do if redis.call('DECR', k) <= 0 then redis.call('DEL', k) "
                               "end end return 0";
    const char *argv[] = {"EVAL", undo, "2", keys.account_key, keys.address_key};
    size_t lens[] = {4, sizeof(undo) - 1, 1, strlen(keys.account_key), strlen(keys.address_key)};
    sc_redis_command(app->redis, NULL, NULL, 5, argv, lens);
}
