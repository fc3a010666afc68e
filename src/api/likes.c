/* Likes and ratings: album likes (with a cached count), song likes, song ratings (routes and SQL in api/likes.h).
 *
 * Album like counts are cached in Redis (cache-aside, staccato:album-likes:<albumId>, 30 minutes; the keys are
 * spelled in api/cache_keys.h). A read that
 * hits answers with X-Data-Source: cache. A miss becomes a "flight": one database query per album at a time in
 * this process, whatever the number of requests that missed together; they all wait on it and get its result.
 * Across processes a flight first re-reads the cache and, still missing, takes a short lock
 * (staccato:album-likes-lock:<albumId>, SET NX PX 2000 with a random token), both in one script; when another
 * process holds the lock, the flight tries again a few times after a short delay, and queries the database itself
 * (without caching) if nothing shows up. Only the lock holder refills the cache, through a script that writes the
 * value only while the lock is still its own, and releases it. Likes and unlikes delete both keys after their
 * database write committed: a refill that read the count before that commit has lost its lock by the time it
 * tries to store it, so a stale count is never cached. When Redis fails or is slow, reads go to the database
 * (never with the cache header) and writes succeed all the same.
 *
 * Counts are cached only for albums visible to everyone (not flagged): a hit needs no visibility check. Whoever
 * flags, unflags or deletes an album must delete staccato:album-likes:<albumId> too
 * (sc_api_invalidate_album_likes_then_finish), or a hit could still answer for a hidden or deleted album until
 * the entry expires.
 *
 * Each worker process is single-threaded, so the table of flights is a plain static table. A flight lives on the
 * heap, independent of any request: a waiting request unlinks itself from its flight in its dispose hook, and a
 * flight whose waiters all left stops (cancels its command, query or timer) and frees itself. */
#include "api/likes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/auth.h"
#include "api/cache_keys.h"
#include "api/db.h"
#include "api/respond.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/random.h"
#include "json/read.h"

#define ID_MAX SC_API_KEY_ALBUM_ID_MAX /* an album id must fit its cache keys; song ids follow the same rule */
#define KEY_MAX SC_API_KEY_MAX
#define CACHE_TTL_S "1800"
#define LOCK_TTL_MS "2000"
#define RETRY_DELAY_MS 40
#define MAX_RETRIES 10
#define FLIGHT_BUCKETS 64

/* ---- common ------------------------------------------------------------------------------------------------ */

/* The {id} path parameter, copied, or NULL when it cannot be an id (then no row can have it: 404). Ids are opaque
 * text, but only printable ASCII of bounded length ever reaches the database or a cache key. */
static const char *id_param(sc_req *req)
{
    sc_slice p = sc_req_param(req, "id");
    if (p.len == 0 || p.len > ID_MAX)
        return NULL;
    for (size_t i = 0; i < p.len; i++)
        if ((unsigned char)p.ptr[i] < 0x21 || (unsigned char)p.ptr[i] > 0x7e)
            return NULL;
    return sc_arena_strndup(req->arena, p.ptr, p.len);
}

/* {"status":"success","data":{"likes":n}} */
static int likes_body(sc_req *req, unsigned long long n)
{
    sc_jw *w = sc_api_begin(req);
    sc_jw_key(w, "data");
    sc_jw_obj_begin(w);
    sc_jw_key(w, "likes");
    sc_jw_uint(w, n);
    sc_jw_obj_end(w);
    return sc_api_end(w, 200);
}

/* A cached count: a decimal number, nothing else. */
static bool cached_count(const redisReply *r, unsigned long long *n)
{
    return r && r->type == REDIS_REPLY_STRING && r->len > 0 && r->len <= 19 &&
           sc_slice_to_u64((sc_slice){r->str, r->len}, UINT64_MAX, n) == 0;
}

/* ---- album like count flights ------------------------------------------------------------------------------ */

typedef struct likes_flight likes_flight;

/* A GET /albums/{id}/likes request (arena). */
typedef struct likes_waiter {
    struct likes_waiter *prev, *next;
    likes_flight *flight; /* the flight it waits on, or NULL */
    sc_req *req;
    sc_redis_cmd *cmd; /* its own cache read */
    const char *album_id;
    const char *user_id; /* NULL: anonymous */
    bool admin;
} likes_waiter;

/* One refill of one album's count in this process (heap). */
struct likes_flight {
    likes_flight *next; /* in its bucket while in_table */
    bool in_table;      /* new misses for the album join it */
    bool use_cache;     /* Redis answers: coordinate through the lock and refill the cache */
    bool locked;        /* holds the refill lock (token) */
    bool invalidated;   /* a like or unlike committed meanwhile: its count must not be cached */
    bool delivering;
    bool ended;
    int retries;
    sc_app *app;
    likes_waiter *waiters;
    sc_redis_cmd *cmd;
    sc_pg_query *query;
    uv_timer_t timer;
    char token[40];
    char album_id[]; /* NUL-terminated */
};

/* What a flight found out, handed to each waiter. */
typedef struct likes_result {
    const char *db_err; /* the query failed: db_res holds the error result */
    PGresult *db_res;
    bool from_cache;
    bool exists;
    bool flagged;
    const char *owner_id; /* NULL: none */
    unsigned long long count;
} likes_result;

static likes_flight *flights[FLIGHT_BUCKETS];

static unsigned bucket_of(const char *id)
{
    unsigned long long h = 1469598103934665603ULL;
    for (; *id; id++)
        h = (h ^ (unsigned char)*id) * 1099511628211ULL;
    return (unsigned)(h % FLIGHT_BUCKETS);
}

static likes_flight *table_find(const char *album_id)
{
    for (likes_flight *f = flights[bucket_of(album_id)]; f; f = f->next)
        if (strcmp(f->album_id, album_id) == 0)
            return f;
    return NULL;
}

static void table_remove(likes_flight *f)
{
    if (!f->in_table)
        return;
    for (likes_flight **pp = &flights[bucket_of(f->album_id)]; *pp; pp = &(*pp)->next) {
        if (*pp == f) {
            *pp = f->next;
            break;
        }
    }
    f->next = NULL;
    f->in_table = false;
}

static void waiter_link(likes_flight *f, likes_waiter *w)
{
    w->flight = f;
    w->prev = NULL;
    w->next = f->waiters;
    if (f->waiters)
        f->waiters->prev = w;
    f->waiters = w;
}

static void waiter_unlink(likes_waiter *w)
{
    likes_flight *f = w->flight;
    if (w->prev)
        w->prev->next = w->next;
    else
        f->waiters = w->next;
    if (w->next)
        w->next->prev = w->prev;
    w->prev = w->next = NULL;
    w->flight = NULL;
}

/* Stores value (a count) under the album's key if this flight still holds the lock (an empty value: nothing to
 * store), and releases the lock. */
static const char store_script[] = "if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end\n"
                                   "redis.call('DEL', KEYS[2])\n"
                                   "if ARGV[2] == '' then return 0 end\n"
                                   "redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])\n"
                                   "return 1\n";

static void flight_store(likes_flight *f, const char *value)
{
    char vkey[KEY_MAX], lkey[KEY_MAX];
    size_t vlen = sc_api_key_album_likes(vkey, f->album_id);
    size_t llen = sc_api_key_album_likes_lock(lkey, f->album_id);
    const char *argv[] = {"EVAL", store_script, "2", vkey, lkey, f->token, value, CACHE_TTL_S};
    size_t lens[] =
        {4, sizeof(store_script) - 1, 1, vlen, llen, strlen(f->token), strlen(value), sizeof(CACHE_TTL_S) - 1};
    sc_redis_command(f->app->redis, NULL, NULL, 8, argv, lens); /* a lost store is only a later miss */
    f->locked = false;
}

static void on_flight_closed(uv_handle_t *h) { free(h->data); }

/* Stops whatever the flight still does and frees it (once its timer handle is closed). */
static void flight_end(likes_flight *f)
{
    if (f->ended)
        return;
    f->ended = true;
    table_remove(f);
    sc_redis_cancel(f->cmd);
    f->cmd = NULL;
    if (f->query)
        sc_pg_cancel(f->query);
    f->query = NULL;
    if (f->locked)
        flight_store(f, "");
    uv_close((uv_handle_t *)&f->timer, on_flight_closed);
}

static int likes_answer(likes_waiter *w, const likes_result *r)
{
    sc_req *req = w->req;
    if (r->db_err)
        return sc_api_db_error(req, r->db_err, r->db_res);
    bool mine = w->user_id && r->owner_id && strcmp(w->user_id, r->owner_id) == 0;
    if (!r->exists || (r->flagged && !w->admin && !mine))
        return sc_res_error(req, 404, "album not found");
    if (r->from_cache)
        sc_res_header(req, "X-Data-Source", SC_SLICE_LIT("cache"));
    return likes_body(req, r->count);
}

/* Answers every waiter and ends the flight. */
static void flight_deliver(likes_flight *f, const likes_result *r)
{
    table_remove(f);
    f->delivering = true;
    likes_waiter *w;
    while ((w = f->waiters) != NULL) {
        waiter_unlink(w);
        sc_req_finish(w->req, likes_answer(w, r));
    }
    f->delivering = false;
    flight_end(f);
}

static void on_flight_db(void *data, const char *err, PGresult *res)
{
    likes_flight *f = data;
    f->query = NULL;
    likes_result r = {0};
    if (err) {
        r.db_err = err;
        r.db_res = res;
    } else if (PQntuples(res) > 0) {
        r.exists = true;
        r.flagged = sc_api_db_true(res, 0);
        r.owner_id = PQgetisnull(res, 0, 1) ? NULL : PQgetvalue(res, 0, 1);
        sc_slice_to_u64(sc_slice_cstr(PQgetvalue(res, 0, 2)), UINT64_MAX, &r.count);
    }
    if (f->locked) {
        char value[24] = "";
        if (!err && r.exists && !r.flagged && !f->invalidated)
            snprintf(value, sizeof(value), "%llu", r.count);
        flight_store(f, value);
    }
    flight_deliver(f, &r);
}

static void flight_query(likes_flight *f)
{
    sc_log_debug("album likes cache refill %s", f->album_id);
    f->query = SC_API_PG_EXEC(f->app->pg, SC_STMT_LIKE_ALBUM_COUNT, on_flight_db, f, f->album_id);
}

/* One round trip: the cached count if there is one (a refill may have finished since the request's own read),
 * else the refill lock if it is free. Replies {1, count}, {2} (the lock is ours) or {3} (someone else's). */
static const char probe_script[] =
    "local v = redis.call('GET', KEYS[1])\n"
    "if v and string.match(v, '^%d+$') then return {1, v} end\n"
    "if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return {2} end\n"
    "return {3}\n";

static void on_probe_reply(void *data, const char *err, redisReply *reply);

static void flight_probe(likes_flight *f)
{
    char vkey[KEY_MAX], lkey[KEY_MAX];
    size_t vlen = sc_api_key_album_likes(vkey, f->album_id);
    size_t llen = sc_api_key_album_likes_lock(lkey, f->album_id);
    const char *argv[] = {"EVAL", probe_script, "2", vkey, lkey, f->token, LOCK_TTL_MS};
    size_t lens[] = {4, sizeof(probe_script) - 1, 1, vlen, llen, strlen(f->token), sizeof(LOCK_TTL_MS) - 1};
    f->cmd = sc_redis_command(f->app->redis, on_probe_reply, f, 7, argv, lens);
}

static void on_retry_timer(uv_timer_t *t) { flight_probe(t->data); }

static void on_probe_reply(void *data, const char *err, redisReply *reply)
{
    likes_flight *f = data;
    f->cmd = NULL;
    long long what = 0;
    if (!err && reply->type == REDIS_REPLY_ARRAY && reply->elements >= 1 &&
        reply->element[0]->type == REDIS_REPLY_INTEGER)
        what = reply->element[0]->integer;
    unsigned long long n;
    if (what == 1 && reply->elements == 2 && cached_count(reply->element[1], &n)) {
        likes_result r = {.from_cache = true, .exists = true, .count = n};
        flight_deliver(f, &r);
    } else if (what == 2) {
        f->locked = true;
        flight_query(f);
    } else if (what == 3 && f->retries++ < MAX_RETRIES) { /* another process is refilling: give it a moment */
        uv_timer_start(&f->timer, on_retry_timer, RETRY_DELAY_MS, 0);
    } else { /* Redis failed, or the other refill takes too long: the database answers, the cache stays as is */
        f->use_cache = false;
        flight_query(f);
    }
}

static likes_flight *flight_start(sc_app *app, const char *album_id, bool use_cache)
{
    size_t len = strlen(album_id);
    likes_flight *f = sc_calloc(sizeof(*f) + len + 1);
    memcpy(f->album_id, album_id, len + 1);
    f->app = app;
    f->use_cache = use_cache;
    sc_random_id("lock", f->token, sizeof(f->token));
    uv_timer_init(app->loop, &f->timer);
    f->timer.data = f;
    unsigned b = bucket_of(album_id);
    f->next = flights[b];
    flights[b] = f;
    f->in_table = true;
    return f;
}

/* A like or unlike of the album committed: misses from now on start a new flight, and a flight under way does
 * not cache what it read. */
static void flights_invalidate(const char *album_id)
{
    likes_flight *f = table_find(album_id);
    if (f) {
        f->invalidated = true;
        table_remove(f);
    }
}

static void on_waiter_gone(void *data)
{
    likes_waiter *w = data;
    sc_redis_cancel(w->cmd);
    w->cmd = NULL;
    likes_flight *f = w->flight;
    if (!f)
        return;
    waiter_unlink(w);
    if (!f->waiters && !f->delivering)
        flight_end(f); /* nobody wants the answer any more */
}

static void on_cache_read(void *data, const char *err, redisReply *reply)
{
    likes_waiter *w = data;
    w->cmd = NULL;
    unsigned long long n;
    if (!err && cached_count(reply, &n)) {
        likes_result r = {.from_cache = true, .exists = true, .count = n};
        sc_req_finish(w->req, likes_answer(w, &r));
        return;
    }
    likes_flight *f = table_find(w->album_id);
    if (f) {
        waiter_link(f, w);
        return;
    }
    /* The first miss: with Redis answering, refill through the lock; without, straight to the database. */
    f = flight_start(sc_api_app(w->req), w->album_id, !err);
    waiter_link(f, w);
    if (f->use_cache)
        flight_probe(f);
    else
        flight_query(f);
}

int sc_api_album_likes(sc_req *req)
{
    const sc_api_principal *who = sc_api_who(req);
    const char *id = id_param(req);
    if (!id)
        return sc_res_error(req, 404, "album not found");
    likes_waiter *w = sc_api_state_new(req, sizeof(*w), on_waiter_gone);
    w->req = req;
    w->album_id = id;
    w->user_id = who ? sc_arena_strndup(req->arena, who->id, strlen(who->id)) : NULL;
    w->admin = sc_api_auth_is(who, "admin");
    char key[KEY_MAX];
    const char *argv[] = {"GET", key};
    size_t lens[] = {3, sc_api_key_album_likes(key, id)};
    w->cmd = sc_redis_command(sc_api_app(req)->redis, on_cache_read, w, 2, argv, lens);
    return SC_ASYNC;
}

/* ---- likes, unlikes and ratings ---------------------------------------------------------------------------- */

/* The album's likes changed (committed; its id is the request's state): misses from now on start a new flight,
 * and the cached count and lock go before the answer. */
static void album_likes_changed(sc_req *req, int status, const char *message)
{
    const char *id = req->state;
    flights_invalidate(id);
    sc_api_invalidate_album_likes_then_finish(req, id, sc_api_message(req, status, message));
}

/* Answers an insert (like, rating) that selects the target by id and visibility: no row is a 404. */
static int inserted_status(sc_req *req, const char *err, PGresult *res, const char *not_found, const char *twice)
{
    if (twice && sc_api_db_sqlstate(err, res, "23505"))
        return sc_res_error(req, 400, twice);
    if (sc_api_db_sqlstate(err, res, "23503")) /* the target (or the caller's account) was deleted meanwhile */
        return sc_res_error(req, 404, not_found);
    if (err)
        return sc_api_db_error(req, err, res);
    if (PQntuples(res) == 0)
        return sc_res_error(req, 404, not_found);
    return 0;
}

/* Answers a delete that reports (target visible, row removed). */
static int deleted_status(sc_req *req, const char *err, PGresult *res, const char *not_found, const char *absent)
{
    if (err)
        return sc_api_db_error(req, err, res);
    if (!sc_api_db_true(res, 0))
        return sc_res_error(req, 404, not_found);
    if (!sc_api_db_true(res, 1))
        return sc_res_error(req, 404, absent);
    return 0;
}

static void on_album_liked(sc_req *req, const char *err, PGresult *res)
{
    int st = inserted_status(req, err, res, "album not found", "album already liked");
    if (st)
        sc_req_finish(req, st);
    else
        album_likes_changed(req, 201, "album liked");
}

static void on_album_unliked(sc_req *req, const char *err, PGresult *res)
{
    int st = deleted_status(req, err, res, "album not found", "album not liked");
    if (st)
        sc_req_finish(req, st);
    else
        album_likes_changed(req, 200, "album unliked");
}

/* The authenticated writes on /{albums,songs}/{id}/...: 401, then 404 for an impossible id, then stmt with (id,
 * caller, admin flag). The id is the request's state, for the album's invalidation. */
static int target_write(sc_req *req, const char *not_found, int stmt, sc_api_db_cb cb)
{
    const sc_api_principal *who = sc_api_who(req);
    const char *id = id_param(req);
    if (!id)
        return sc_res_error(req, 404, not_found);
    req->state = (void *)id;
    SC_API_DB(req, stmt, cb, id, who->id, sc_api_auth_admin_flag(who));
    return SC_ASYNC;
}

int sc_api_album_like(sc_req *req)
{
    return target_write(req, "album not found", SC_STMT_LIKE_ALBUM_INSERT, on_album_liked);
}

int sc_api_album_unlike(sc_req *req)
{
    return target_write(req, "album not found", SC_STMT_LIKE_ALBUM_DELETE, on_album_unliked);
}

static void on_song_liked(sc_req *req, const char *err, PGresult *res)
{
    int st = inserted_status(req, err, res, "song not found", "song already liked");
    sc_req_finish(req, st ? st : sc_api_message(req, 201, "song liked"));
}

static void on_song_unliked(sc_req *req, const char *err, PGresult *res)
{
    int st = deleted_status(req, err, res, "song not found", "song not liked");
    sc_req_finish(req, st ? st : sc_api_message(req, 200, "song unliked"));
}

int sc_api_song_like(sc_req *req)
{
    return target_write(req, "song not found", SC_STMT_LIKE_SONG_INSERT, on_song_liked);
}

int sc_api_song_unlike(sc_req *req)
{
    return target_write(req, "song not found", SC_STMT_LIKE_SONG_DELETE, on_song_unliked);
}

static void on_song_likes(sc_req *req, const char *err, PGresult *res)
{
    if (err)
        sc_api_db_finish_error(req, err, res);
    else if (PQntuples(res) == 0)
        sc_api_finish_error(req, 404, "song not found");
    else
        sc_req_finish(req, likes_body(req, sc_api_db_count(res, 0)));
}

int sc_api_song_likes(sc_req *req)
{
    const sc_api_principal *who = sc_api_who(req);
    const char *id = id_param(req);
    if (!id)
        return sc_res_error(req, 404, "song not found");
    SC_API_DB(req, SC_STMT_LIKE_SONG_COUNT, on_song_likes, id, who ? who->id : NULL, sc_api_auth_admin_flag(who));
    return SC_ASYNC;
}

static void on_rated(sc_req *req, const char *err, PGresult *res)
{
    int st = inserted_status(req, err, res, "song not found", NULL);
    sc_req_finish(req, st ? st : sc_api_message(req, 200, "rating saved"));
}

static void on_unrated(sc_req *req, const char *err, PGresult *res)
{
    int st = deleted_status(req, err, res, "song not found", "rating not found");
    sc_req_finish(req, st ? st : sc_api_message(req, 200, "rating deleted"));
}

int sc_api_song_rate(sc_req *req)
{
    const sc_api_principal *who = sc_api_who(req);
    sc_jr jr = sc_api_json_begin(req);
    int64_t rating = sc_jr_int(&jr, "rating", SC_JR_REQUIRED, NULL);
    if (sc_jr_failed(&jr))
        return sc_api_json_error(req, &jr);
    if (rating < 1 || rating > 5)
        return sc_res_error(req, 400, "rating must be an integer from 1 to 5");
    const char *id = id_param(req);
    if (!id)
        return sc_res_error(req, 404, "song not found");
    char value[2] = {(char)('0' + rating), '\0'};
    SC_API_DB(req, SC_STMT_RATING_UPSERT, on_rated, id, who->id, sc_api_auth_admin_flag(who), value);
    return SC_ASYNC;
}

int sc_api_song_unrate(sc_req *req)
{
    return target_write(req, "song not found", SC_STMT_RATING_DELETE, on_unrated);
}
