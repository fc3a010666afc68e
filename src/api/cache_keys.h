/* The Redis keys of the API, in one place, and "invalidate, then finish": the answer to a write goes out only
 * once the cached copies it makes stale are gone, so that the caller's next read, through any worker, sees the
 * change.
 *
 * Keys: staccato:genres (GET /genres, with its generation counter staccato:genres:gen, see api/genres.c) and, per
 * album, staccato:album-likes:<albumId> (the cached like count) with staccato:album-likes-lock:<albumId> (the
 * refill lock, see api/likes.c). Whoever flags, unflags or deletes an album, or changes its likes, drops both
 * album keys. The login rate limits keep their own keys (api/ratelimit.c). */
#ifndef SC_API_CACHE_KEYS_H
#define SC_API_CACHE_KEYS_H

#include <stddef.h>

#include "http/request.h"

#define SC_API_KEY_GENRES "staccato:genres"
#define SC_API_KEY_GENRES_GEN "staccato:genres:gen"

/* The longest album id that reaches a key, and the size of a buffer for either album key with its NUL. */
#define SC_API_KEY_ALBUM_ID_MAX 200
#define SC_API_KEY_MAX (sizeof("staccato:album-likes-lock:") + SC_API_KEY_ALBUM_ID_MAX + 1)

/* Writes staccato:album-likes:<album_id> into out; returns its length. */
size_t sc_api_key_album_likes(char out[SC_API_KEY_MAX], const char *album_id);
/* Writes staccato:album-likes-lock:<album_id> into out; returns its length. */
size_t sc_api_key_album_likes_lock(char out[SC_API_KEY_MAX], const char *album_id);

/* Finishes req with status (its answer already built) once the album's cached like count and refill lock are
 * deleted. A Redis failure is logged and the answer goes out all the same; without Redis there is nothing to
 * delete. A request that ends meanwhile cancels the command. */
void sc_api_invalidate_album_likes_then_finish(sc_req *req, const char *album_id, int status);
/* The same for the cached genre list: the generation is bumped and the list deleted in one script, so that a
 * reader that filled the cache from an older read does not store it (api/genres.c). */
void sc_api_invalidate_genres_then_finish(sc_req *req, int status);

#endif
