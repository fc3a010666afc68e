/* The Redis keys of the API and the invalidations that precede an answer (api/cache_keys.h). */
#include "api/cache_keys.h"

#include <stdio.h>
#include <string.h>

#include "api/api.h"
#include "core/log.h"

#define ALBUM_LIKES_PREFIX "staccato:album-likes:"
#define ALBUM_LIKES_LOCK_PREFIX "staccato:album-likes-lock:"

/* KEYS[1] the list, KEYS[2] its generation. */
static const char genres_invalidate_script[] = "redis.call('INCR', KEYS[2]) redis.call('DEL', KEYS[1]) return 0";

size_t sc_api_key_album_likes(char out[SC_API_KEY_MAX], const char *album_id)
{
    return (size_t)snprintf(out, SC_API_KEY_MAX, "%s%s", ALBUM_LIKES_PREFIX, album_id);
}

size_t sc_api_key_album_likes_lock(char out[SC_API_KEY_MAX], const char *album_id)
{
    return (size_t)snprintf(out, SC_API_KEY_MAX, "%s%s", ALBUM_LIKES_LOCK_PREFIX, album_id);
}

/* A request waiting for its invalidation (in its arena). */
typedef struct invalidation {
    sc_req *req;
    sc_redis_cmd *cmd; /* NULL once answered */
    int status;
    const char *album_id; /* for the log; NULL: the genres */
} invalidation;

static void on_request_gone(void *data)
{
    invalidation *inv = data;
    sc_redis_cancel(inv->cmd);
    inv->cmd = NULL;
}

static void on_invalidated(void *data, const char *err, redisReply *reply)
{
    invalidation *inv = data;
    inv->cmd = NULL;
    if (err && inv->album_id)
        sc_log_warn("album likes: could not drop the cached count of %s: %s", inv->album_id, err);
    sc_req_finish(inv->req, inv->status);
}

static void invalidate_then_finish(sc_req *req, int status, const char *album_id, int argc, const char **argv,
                                   const size_t *lens)
{
    invalidation *inv = sc_arena_alloc(req->arena, sizeof(*inv));
    inv->req = req;
    inv->status = status;
    inv->album_id = album_id;
    sc_req_on_dispose(req, on_request_gone, inv); /* not the request's state: the handler's stays */
    inv->cmd = sc_redis_command(sc_api_app(req)->redis, on_invalidated, inv, argc, argv, lens);
}

void sc_api_invalidate_album_likes_then_finish(sc_req *req, const char *album_id, int status)
{
    char key[SC_API_KEY_MAX], lock[SC_API_KEY_MAX];
    const char *argv[] = {"DEL", key, lock};
    size_t lens[] = {3, sc_api_key_album_likes(key, album_id), sc_api_key_album_likes_lock(lock, album_id)};
    invalidate_then_finish(req, status, album_id, 3, argv, lens);
}

void sc_api_invalidate_genres_then_finish(sc_req *req, int status)
{
    const char *argv[] = {"EVAL", genres_invalidate_script, "2", SC_API_KEY_GENRES, SC_API_KEY_GENRES_GEN};
    size_t lens[] = {4, sizeof(genres_invalidate_script) - 1, 1, sizeof(SC_API_KEY_GENRES) - 1,
                     sizeof(SC_API_KEY_GENRES_GEN) - 1};
    invalidate_then_finish(req, status, NULL, 5, argv, lens);
}
