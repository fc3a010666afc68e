/* Likes and ratings (api/likes.c): album likes with a cached count, song likes, and song ratings. One's own liked
 * songs are a list of the account (GET /users/me/likes, api/users.h). */
#ifndef SC_API_LIKES_H
#define SC_API_LIKES_H

#include "api/visibility.h"
#include "http/request.h"

#define SC_ROUTES_LIKES(X)                                                                                        \
    X(SC_M_POST, "/albums/{id}/likes", SC_API_USER, sc_api_album_like)                                            \
    X(SC_M_DELETE, "/albums/{id}/likes", SC_API_USER, sc_api_album_unlike)                                        \
    X(SC_M_GET, "/albums/{id}/likes", SC_API_OPTIONAL, sc_api_album_likes)                                        \
    X(SC_M_POST, "/songs/{id}/likes", SC_API_USER, sc_api_song_like)                                              \
    X(SC_M_DELETE, "/songs/{id}/likes", SC_API_USER, sc_api_song_unlike)                                          \
    X(SC_M_GET, "/songs/{id}/likes", SC_API_OPTIONAL, sc_api_song_likes)                                          \
    X(SC_M_PUT, "/songs/{id}/rating", SC_API_USER, sc_api_song_rate)                                              \
    X(SC_M_DELETE, "/songs/{id}/rating", SC_API_USER, sc_api_song_unrate)

/* The statements take the caller's user id (NULL when anonymous) and admin flag, and treat a hidden album or song
 * exactly like a missing one (api/visibility.h). */
/* clang-format off */
#define SC_STMTS_LIKES(X)                                                                                         \
    /* $1 album, $2 user, $3 admin. No row: no such album (or hidden); 23505: liked already. */                  \
    X(LIKE_ALBUM_INSERT,                                                                                          \
      "INSERT INTO album_likes (user_id, album_id) SELECT $2, a.id FROM albums a "                                \
      "WHERE a.id = $1 AND " SC_SOCIAL_ALBUM_VISIBLE("a") " RETURNING 1")                                         \
    /* One row: (album visible, like removed). */                                                                \
    X(LIKE_ALBUM_DELETE,                                                                                          \
      "WITH a AS (SELECT a.id FROM albums a WHERE a.id = $1 AND " SC_SOCIAL_ALBUM_VISIBLE("a") "), "              \
      "d AS (DELETE FROM album_likes l USING a WHERE l.album_id = a.id AND l.user_id = $2 RETURNING 1) "          \
      "SELECT EXISTS (SELECT 1 FROM a), EXISTS (SELECT 1 FROM d)")                                                \
    /* The cache refill: existence, moderation and the count in one go (visibility is decided per caller). */   \
    X(LIKE_ALBUM_COUNT,                                                                                           \
      "SELECT a.flagged, a.owner_id, (SELECT count(*) FROM album_likes l WHERE l.album_id = a.id) "               \
      "FROM albums a WHERE a.id = $1")                                                                            \
    /* $1 song, $2 user, $3 admin. */                                                                            \
    X(LIKE_SONG_INSERT,                                                                                           \
      "INSERT INTO song_likes (user_id, song_id) SELECT $2, s.id FROM songs s "                                   \
      "WHERE s.id = $1 AND " SC_SOCIAL_SONG_VISIBLE("s", "$2", "$3") " RETURNING 1")                              \
    X(LIKE_SONG_DELETE,                                                                                           \
      "WITH s AS (SELECT s.id FROM songs s WHERE s.id = $1 AND " SC_SOCIAL_SONG_VISIBLE("s", "$2", "$3") "), "    \
      "d AS (DELETE FROM song_likes l USING s WHERE l.song_id = s.id AND l.user_id = $2 RETURNING 1) "            \
      "SELECT EXISTS (SELECT 1 FROM s), EXISTS (SELECT 1 FROM d)")                                                \
    /* No row: no such song (or hidden). */                                                                      \
    X(LIKE_SONG_COUNT,                                                                                            \
      "SELECT (SELECT count(*) FROM song_likes l WHERE l.song_id = s.id) FROM songs s "                           \
      "WHERE s.id = $1 AND " SC_SOCIAL_SONG_VISIBLE("s", "$2", "$3"))                                             \
    /* $1 song, $2 user, $3 admin, $4 rating (1..5). No row: no such song (or hidden). */                       \
    X(RATING_UPSERT,                                                                                              \
      "INSERT INTO ratings (user_id, song_id, rating) SELECT $2, s.id, $4::smallint FROM songs s "                \
      "WHERE s.id = $1 AND " SC_SOCIAL_SONG_VISIBLE("s", "$2", "$3") " "                                          \
      "ON CONFLICT (user_id, song_id) DO UPDATE SET rating = EXCLUDED.rating, updated_at = now() RETURNING 1")    \
    /* One row: (song visible, rating removed). */                                                               \
    X(RATING_DELETE,                                                                                              \
      "WITH s AS (SELECT s.id FROM songs s WHERE s.id = $1 AND " SC_SOCIAL_SONG_VISIBLE("s", "$2", "$3") "), "    \
      "d AS (DELETE FROM ratings r USING s WHERE r.song_id = s.id AND r.user_id = $2 RETURNING 1) "               \
      "SELECT EXISTS (SELECT 1 FROM s), EXISTS (SELECT 1 FROM d)")
/* clang-format on */

/* POST /albums/{id}/likes: 201; liked already is a 400. */
int sc_api_album_like(sc_req *req);
/* DELETE /albums/{id}/likes: 200; not liked is a 404. */
int sc_api_album_unlike(sc_req *req);
/* GET /albums/{id}/likes: data.likes, from the cache when it has it (X-Data-Source: cache). */
int sc_api_album_likes(sc_req *req);
/* POST /songs/{id}/likes: 201; liked already is a 400. */
int sc_api_song_like(sc_req *req);
/* DELETE /songs/{id}/likes: 200; not liked is a 404. */
int sc_api_song_unlike(sc_req *req);
/* GET /songs/{id}/likes: data.likes. */
int sc_api_song_likes(sc_req *req);
/* PUT /songs/{id}/rating {rating: 1..5}: the caller's one rating of the song, made or changed. */
int sc_api_song_rate(sc_req *req);
/* DELETE /songs/{id}/rating: removes the caller's rating; none is a 404. */
int sc_api_song_unrate(sc_req *req);

#endif
