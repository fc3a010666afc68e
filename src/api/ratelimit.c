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

uint64_t sc_ratelimit_local_peek(sc_ratelimit *rl, const char *key, uint64_t now_s)
{
    for (entry *e = rl->buckets[hash(key) % LOCAL_BUCKETS]; e; e = e->next)
        if (strcmp(e->key, key) == 0 && e->window_end > now_s)
            return e->count;
    return 0;
}

/* Addresses an account signed in from stay known this long: strangers' failures elsewhere do not lock them out. */
#define KNOWN_ADDRESS_S (30 * 86400)
#define MAX_RULES 3

/* Counts a hit on each key (KEYS[1..n], windows ARGV[2..n+1]) and answers count and seconds left for each. A rule
 * whose flag ARGV[n+1+i] is "1" is skipped (answered 0, 0) when the member ARGV[2n+2] is in the set KEYS[n+1]:
 * the account's known addresses. One round trip, atomic. */
static const char check_script[] =
    "local n = tonumber(ARGV[1])\n"
    "local known = 0\n"
    "if #KEYS > n then known = redis.call('SISMEMBER', KEYS[n + 1], ARGV[2 * n + 2]) end\n"
    "local r = {}\n"
    "for i = 1, n do\n"
    "  if known == 1 and ARGV[n + 1 + i] == '1' then\n"
    "    r[#r + 1] = 0; r[#r + 1] = 0\n"
    "  else\n"
    "    local c = redis.call('INCR', KEYS[i])\n"
    "    if c == 1 then redis.call('EXPIRE', KEYS[i], ARGV[1 + i]) end\n"
    "    r[#r + 1] = c; r[#r + 1] = redis.call('TTL', KEYS[i])\n"
    "  end\n"
    "end\n"
    "return r\n";

typedef struct rule {
    char key[256]; /* prefix, account (< 128) and address (< 64) */
    uint64_t max, window_s;
    bool unless_known; /* not counted for an address the account signed in from */
} rule;

typedef struct check {
    sc_req *req;
    sc_redis_cmd *cmd;
    sc_ratelimit_cb cb;
    rule rules[MAX_RULES];
    size_t n;
    char known_key[192]; /* the account's set of known addresses; empty: no exemption */
    char member[64];     /* the client address, as a member of that set */
} check;

static void decide(check *ck, const uint64_t *counts, const uint64_t *ttls)
{
    uint64_t retry = 0;
    for (size_t i = 0; i < ck->n; i++)
        if (counts[i] > ck->rules[i].max && ttls[i] > retry)
            retry = ttls[i];
    ck->cb(ck->req, retry == 0, retry);
}

static void decide_locally(check *ck)
{
    sc_app *app = ck->req->app;
    uint64_t now = (uint64_t)time(NULL), counts[MAX_RULES], ttls[MAX_RULES];
    char known[sizeof(ck->known_key) + sizeof(ck->member) + 1];
    snprintf(known, sizeof(known), "%s:%s", ck->known_key, ck->member);
    bool is_known = ck->known_key[0] && sc_ratelimit_local_peek(app->local_limits, known, now) > 0;
    for (size_t i = 0; i < ck->n; i++) {
        if (is_known && ck->rules[i].unless_known)
            counts[i] = ttls[i] = 0;
        else
            counts[i] = sc_ratelimit_local_hit(app->local_limits, ck->rules[i].key, ck->rules[i].window_s, now,
                                               &ttls[i]);
        if (ttls[i] == 0 && counts[i])
            ttls[i] = 1;
    }
    decide(ck, counts, ttls);
}

static void on_reply(void *data, const char *err, redisReply *r)
{
    check *ck = data;
    ck->cmd = NULL;
    if (err || r->type != REDIS_REPLY_ARRAY || r->elements != 2 * ck->n) {
        decide_locally(ck);
        return;
    }
    uint64_t v[2 * MAX_RULES];
    for (size_t i = 0; i < 2 * ck->n; i++)
        v[i] = r->element[i]->type == REDIS_REPLY_INTEGER && r->element[i]->integer > 0
                   ? (uint64_t)r->element[i]->integer
                   : 0;
    uint64_t counts[MAX_RULES], ttls[MAX_RULES];
    for (size_t i = 0; i < ck->n; i++) {
        counts[i] = v[2 * i];
        ttls[i] = v[2 * i + 1] ? v[2 * i + 1] : 1; /* a key without a TTL yet still asks for a pause */
    }
    decide(ck, counts, ttls);
}

static void on_request_gone(void *data)
{
    check *ck = data;
    sc_redis_cancel(ck->cmd);
    ck->cmd = NULL;
}

static void run(check *ck)
{
    sc_app *app = ck->req->app;
    const char *argv[4 + 3 * MAX_RULES + 3];
    size_t lens[sizeof(argv) / sizeof(argv[0])];
    char nkeys[4], nrules[4], windows[MAX_RULES][24];
    size_t k = 0;
    bool with_known = ck->known_key[0] != '\0';
    snprintf(nkeys, sizeof(nkeys), "%zu", ck->n + (with_known ? 1 : 0));
    snprintf(nrules, sizeof(nrules), "%zu", ck->n);
    argv[k++] = "EVAL";
    argv[k++] = check_script;
    argv[k++] = nkeys;
    for (size_t i = 0; i < ck->n; i++)
        argv[k++] = ck->rules[i].key;
    if (with_known)
        argv[k++] = ck->known_key;
    argv[k++] = nrules;
    for (size_t i = 0; i < ck->n; i++) {
        snprintf(windows[i], sizeof(windows[i]), "%llu", (unsigned long long)ck->rules[i].window_s);
        argv[k++] = windows[i];
    }
    for (size_t i = 0; i < ck->n; i++)
        argv[k++] = ck->rules[i].unless_known ? "1" : "0";
    argv[k++] = ck->member;
    for (size_t i = 0; i < k; i++)
        lens[i] = i == 1 ? sizeof(check_script) - 1 : strlen(argv[i]);
    sc_req_on_dispose(ck->req, on_request_gone, ck);
    ck->cmd = sc_redis_command(app->redis, on_reply, ck, (int)k, argv, lens);
}

static check *check_new(sc_req *req, sc_ratelimit_cb cb)
{
    check *ck = sc_arena_alloc(req->arena, sizeof(*ck));
    memset(ck, 0, sizeof(*ck));
    ck->req = req;
    ck->cb = cb;
    sc_slice client = sc_req_client(req);
    snprintf(ck->member, sizeof(ck->member), "%.*s", (int)client.len, client.ptr);
    return ck;
}

static void add_rule(check *ck, uint64_t max, uint64_t window_s, bool unless_known, const char *fmt, const char *a,
                     const char *b)
{
    rule *r = &ck->rules[ck->n++];
    r->max = max;
    r->window_s = window_s;
    r->unless_known = unless_known;
    snprintf(r->key, sizeof(r->key), fmt, a, b);
}

/* The account name folded to lower case (names are unique in any case), bounded. */
static void account_of(sc_slice username, char *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < username.len && n + 1 < cap; i++)
        out[n++] = (char)tolower((unsigned char)username.ptr[i]);
    out[n] = '\0';
}

/* The login rules: attempts on the account from this address (the owner's own failures), attempts on the account
 * from addresses it never signed in from (strangers, a longer window), and attempts from this address on any
 * account (one guesser trying many). */
static void login_rules(sc_req *req, sc_slice username, check *ck)
{
    const sc_settings *st = ((sc_app *)req->app)->settings;
    char account[128];
    account_of(username, account, sizeof(account));
    add_rule(ck, st->login_max_per_account, st->login_window_s, false, "staccato:login:pair:%s:%s", account,
             ck->member);
    add_rule(ck, st->login_max_per_account_global, st->login_global_window_s, true, "staccato:login:user:%s%s",
             account, "");
    add_rule(ck, st->login_max_per_address, st->login_window_s, false, "staccato:login:addr:%s%s", ck->member, "");
    snprintf(ck->known_key, sizeof(ck->known_key), "staccato:login:known:%s", account);
}

void sc_ratelimit_login(sc_req *req, sc_slice username, sc_ratelimit_cb cb)
{
    check *ck = check_new(req, cb);
    login_rules(req, username, ck);
    run(ck);
}

void sc_ratelimit_login_succeeded(sc_req *req, sc_slice username)
{
    sc_app *app = req->app;
    check ck;
    memset(&ck, 0, sizeof(ck));
    ck.req = req;
    sc_slice client = sc_req_client(req);
    snprintf(ck.member, sizeof(ck.member), "%.*s", (int)client.len, client.ptr);
    login_rules(req, username, &ck);
    uint64_t now = (uint64_t)time(NULL), left;
    for (size_t i = 0; i < ck.n; i++)
        sc_ratelimit_local_undo(app->local_limits, ck.rules[i].key);
    char known[sizeof(ck.known_key) + sizeof(ck.member) + 1];
    snprintf(known, sizeof(known), "%s:%s", ck.known_key, ck.member);
    if (sc_ratelimit_local_peek(app->local_limits, known, now) == 0)
        sc_ratelimit_local_hit(app->local_limits, known, KNOWN_ADDRESS_S, now, &left);
    /* Fire and forget: a lost decrement only makes the limit a little stricter. The address joins the account's
     * known ones (the set lives 30 days from the last sign-in). The account-wide counter is only taken back when
     * the address was counted on it, which the set tells. */
    static const char undo[] = "local known = redis.call('SISMEMBER', KEYS[4], ARGV[1])\n"
                               "for i = 1, 3 do\n"
                               "  if not (i == 2 and known == 1) then\n"
                               "    if redis.call('DECR', KEYS[i]) <= 0 then redis.call('DEL', KEYS[i]) end\n"
                               "  end\n"
                               "end\n"
                               "redis.call('SADD', KEYS[4], ARGV[1])\n"
                               "redis.call('EXPIRE', KEYS[4], ARGV[2])\n"
                               "return 0\n";
    char ttl[24];
    snprintf(ttl, sizeof(ttl), "%d", KNOWN_ADDRESS_S);
    const char *argv[] = {"EVAL",       undo,      "4", ck.rules[0].key, ck.rules[1].key, ck.rules[2].key,
                          ck.known_key, ck.member, ttl};
    size_t lens[9];
    for (size_t i = 0; i < 9; i++)
        lens[i] = i == 1 ? sizeof(undo) - 1 : strlen(argv[i]);
    sc_redis_command(app->redis, NULL, NULL, 9, argv, lens);
}

void sc_ratelimit_register(sc_req *req, sc_ratelimit_cb cb)
{
    const sc_settings *st = ((sc_app *)req->app)->settings;
    check *ck = check_new(req, cb);
    add_rule(ck, st->register_max_per_address, st->register_window_s, false, "staccato:register:addr:%s%s",
             ck->member, "");
    run(ck);
}

void sc_ratelimit_password_reset(sc_req *req, sc_slice email, sc_ratelimit_cb cb)
{
    const sc_settings *st = ((sc_app *)req->app)->settings;
    check *ck = check_new(req, cb);
    char address[128];
    account_of(email, address, sizeof(address));
    add_rule(ck, st->password_reset_max_per_address, st->password_reset_window_s, false,
             "staccato:reset:addr:%s%s", ck->member, "");
    add_rule(ck, st->password_reset_max_per_address, st->password_reset_window_s, false,
             "staccato:reset:email:%s%s", address, "");
    run(ck);
}

void sc_ratelimit_anon_write(sc_req *req, sc_ratelimit_cb cb)
{
    const sc_settings *st = ((sc_app *)req->app)->settings;
    check *ck = check_new(req, cb);
    add_rule(ck, st->anon_writes_per_address, st->anon_write_window_s, false, "staccato:anonwrite:addr:%s%s",
             ck->member, "");
    run(ck);
}
