/* SQL of the social endpoints: album and song likes, ratings.
 *
 * Visibility: flagged albums and songs are hidden from everyone but admins and their owner, private songs from
 * everyone but admins and their owner. The statements take the caller's user id (NULL when anonymous) and whether
 * the caller is an admin ("true"/"false") and treat a hidden item exactly like a missing one, so that the handler
 * answers 404 for both. */
#ifndef SC_API_SQL_SOCIAL_H
#define SC_API_SQL_SOCIAL_H

/* Album a (by alias) visible to user $2, admin $3. */
#define SC_SOCIAL_ALBUM_VISIBLE(a) "(NOT " a ".flagged OR " a ".owner_id = $2 OR $3::bool)"
/* Song s visible to user $U, admin $A. */
#define SC_SOCIAL_SONG_VISIBLE(s, u, a)                                                                           \
    "((NOT " s ".flagged AND " s ".visibility = 'public') OR " s ".owner_id = " u " OR " a "::bool)"

#define SC_STMTS_SOCIAL(X)                                                                                        \
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
    /* $1 user, $2 admin, $3 limit, $4 offset. One row: (total, JSON array of {id, title, performer}), the       \
     * newest like first. */                                                                                      \
    X(LIKE_SONG_LIST,                                                                                             \
      "WITH liked AS (SELECT s.id, s.title, s.performer, l.created_at FROM song_likes l "                         \
      "  JOIN songs s ON s.id = l.song_id WHERE l.user_id = $1 AND " SC_SOCIAL_SONG_VISIBLE("s", "$1", "$2") ") " \
      "SELECT (SELECT count(*) FROM liked), coalesce((SELECT json_agg(json_build_object('id', p.id, "             \
      "  'title', p.title, 'performer', p.performer) ORDER BY p.created_at DESC, p.id DESC) "                    \
      "  FROM (SELECT * FROM liked ORDER BY created_at DESC, id DESC LIMIT $3::bigint OFFSET $4::bigint) p), "    \
      "  '[]'::json)")                                                                                            \
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

#endif
