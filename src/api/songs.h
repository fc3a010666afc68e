/* Songs (api/songs.c): creation, the searchable list, reading with likes, rating, audio and cover, changes,
 * deletion and moderation. A song's likes, rating, audio and stream have their own resources (api/likes.h,
 * api/uploads.h, api/stream.h). */
#ifndef SC_API_SONGS_H
#define SC_API_SONGS_H

#include "api/catalog.h"
#include "http/request.h"

#define SC_ROUTES_SONGS(X)                                                                                        \
    X(SC_M_POST, "/songs", SC_API_PUBLIC, sc_api_songs_create)                                                    \
    X(SC_M_GET, "/songs", SC_API_OPTIONAL, sc_api_songs_list)                                                     \
    X(SC_M_GET, "/songs/{id}", SC_API_OPTIONAL, sc_api_songs_get)                                                 \
    X(SC_M_PUT, "/songs/{id}", SC_API_PUBLIC, sc_api_songs_update)                                                \
    X(SC_M_DELETE, "/songs/{id}", SC_API_PUBLIC, sc_api_songs_delete)                                             \
    X(SC_M_PUT, "/songs/{id}/flag", SC_API_ADMIN, sc_api_songs_flag)

/* GET /songs: one statement per combination of filters (bit 1 title, 2 performer, 4 genre, 8 albumId), so that
 * every plan fits its predicates. $1 caller, $2 admin, $3 limit, $4 offset, $5 the count's cap (api/list.h),
 * then the filters present, in that order. Title and performer are substrings (%, _ and \ escaped by the
 * handler), genre is case-insensitive equality. One row: the total count (at most the cap) and the page as a
 * JSON array. m is inlined in both places (NOT MATERIALIZED) so that the count stops at its cap, and the page,
 * whose offset is capped as well, is a bounded top-N sort rather than a sort of every matching row. */
/* clang-format off */
#define SC_CAT_F_TITLE(n) " AND lower(s.title) LIKE '%' || lower($" #n "::text) || '%' ESCAPE '\\'"
#define SC_CAT_F_PERFORMER(n) " AND lower(s.performer) LIKE '%' || lower($" #n "::text) || '%' ESCAPE '\\'"
#define SC_CAT_F_GENRE(n) " AND lower(s.genre) = lower($" #n "::text)"
#define SC_CAT_F_ALBUM(n) " AND s.album_id = $" #n "::text"
#define SC_CAT_SONG_LIST(filters)                                                                                 \
    "WITH m AS NOT MATERIALIZED (SELECT s.id, s.title, s.performer FROM songs s "                                 \
    "  WHERE " SC_CAT_SONG_VISIBLE("$1", "$2") filters ") "                                                       \
    "SELECT (SELECT count(*) FROM (SELECT 1 FROM m LIMIT $5::bigint) c), "                                        \
    "  coalesce((SELECT json_agg(json_build_object('id', p.id, 'title', p.title, 'performer', p.performer) "      \
    "    ORDER BY p.title, p.id) "                                                                                \
    "  FROM (SELECT * FROM m ORDER BY title, id LIMIT $3::bigint OFFSET $4::bigint) p), '[]'::json)"
/* clang-format on */

/* The genre row whose name matches a song's genre text (case-insensitively), or NULL. */
#define SC_CAT_GENRE_OF(name) "(SELECT g.id FROM genres g WHERE lower(g.name) = lower(" name "::text))"

/* clang-format off */
#define SC_STMTS_SONGS(X)                                                                                        \
    /* $1 id, $2 title, $3 year, $4 performer, $5 genre, $6 duration, $7 owner */                                \
    X(SONG_INSERT,                                                                                                \
      "INSERT INTO songs (id, title, year, performer, genre, genre_id, duration, owner_id) "                      \
      "VALUES ($1, $2, $3::int, $4, $5::text, " SC_CAT_GENRE_OF("$5") ", $6::int, $7::text)")                     \
    /* ... and $8 album (checked first with ALBUM_ACCESS; must still exist and be visible to the caller: no     \
     * row is a 404), $9 admin */                                                                                \
    X(SONG_INSERT_ALBUM,                                                                                          \
      "INSERT INTO songs (id, title, year, performer, genre, genre_id, duration, album_id, owner_id) "            \
      "SELECT $1, $2, $3::int, $4, $5::text, " SC_CAT_GENRE_OF("$5") ", $6::int, a.id, $7::text "                  \
      "FROM albums a WHERE a.id = $8::text AND " SC_CAT_ALBUM_VISIBLE("$7", "$9") " RETURNING id")                \
    /* $1 id, $2 caller, $3 admin, $4 base URL */                                                                \
    X(SONG_GET,                                                                                                   \
      "SELECT json_build_object('id', s.id, 'title', s.title, 'year', s.year, 'performer', s.performer, "         \
      "'genre', s.genre, 'duration', s.duration, 'albumId', s.album_id, "                                          \
      "'likes', (SELECT count(*) FROM song_likes l WHERE l.song_id = s.id), "                                     \
      "'rating', (SELECT json_build_object('average', round(avg(r.rating), 2)::float8, 'count', count(*)) "       \
      "  FROM ratings r WHERE r.song_id = s.id), "                                                                \
      "'audio', CASE WHEN s.audio_media_id IS NULL THEN NULL ELSE json_build_object('mime', s.audio_mime, "       \
      "  'size', s.audio_size, 'durationMs', s.duration_ms, 'bitrate', s.bitrate, 'sampleRate', s.sample_rate, "  \
      "  'channels', s.channels) END, "                                                                           \
      "'coverUrl', (SELECT " SC_CAT_COVER_URL("$4") " FROM albums a WHERE a.id = s.album_id AND "                \
      SC_CAT_ALBUM_VISIBLE("$2", "$3") "), "                   \
      "'visibility', s.visibility) FROM songs s WHERE s.id = $1 AND " SC_CAT_SONG_VISIBLE("$2", "$3"))            \
    /* A song the caller can see (no row: 404): whether the caller owns it and whether anyone does; whether     \
     * album $4 (may be NULL) exists for the caller, whether the caller owns it and whether anyone does; and     \
     * whether the song is in that album already. $1 id, $2 caller, $3 admin. */                                 \
    X(SONG_ACCESS,                                                                                                \
      "SELECT coalesce(s.owner_id = $2::text, false), s.owner_id IS NOT NULL, x.id IS NOT NULL, "                 \
      "coalesce(x.owner_id = $2::text, false), x.owner_id IS NOT NULL, coalesce(s.album_id = $4::text, false) "    \
      "FROM songs s LEFT JOIN (SELECT a.id, a.owner_id FROM albums a WHERE a.id = $4::text AND "                   \
      SC_CAT_ALBUM_VISIBLE("$2", "$3") ") x ON true WHERE s.id = $1 AND " SC_CAT_SONG_VISIBLE("$2", "$3"))         \
    /* $1 id, $2 title, $3 year, $4 performer, $5 genre, $6 duration, $7 album (PUT replaces every field) */      \
    X(SONG_UPDATE,                                                                                                \
      "UPDATE songs SET title = $2, year = $3::int, performer = $4, genre = $5::text, genre_id = "                \
      SC_CAT_GENRE_OF("$5") ", duration = $6::int, album_id = $7::text, updated_at = now() WHERE id = $1")       \
    X(SONG_DELETE, "DELETE FROM songs WHERE id = $1")                                                            \
    X(SONG_FLAG,                                                                                                  \
      "UPDATE songs SET flagged = $2::boolean, flag_reason = CASE WHEN $2::boolean THEN $3::text END, "           \
      "updated_at = now() WHERE id = $1")                                                                          \
    X(SONG_LIST_0, SC_CAT_SONG_LIST(""))                                                                         \
    X(SONG_LIST_1, SC_CAT_SONG_LIST(SC_CAT_F_TITLE(6)))                                                          \
    X(SONG_LIST_2, SC_CAT_SONG_LIST(SC_CAT_F_PERFORMER(6)))                                                      \
    X(SONG_LIST_3, SC_CAT_SONG_LIST(SC_CAT_F_TITLE(6) SC_CAT_F_PERFORMER(7)))                                    \
    X(SONG_LIST_4, SC_CAT_SONG_LIST(SC_CAT_F_GENRE(6)))                                                          \
    X(SONG_LIST_5, SC_CAT_SONG_LIST(SC_CAT_F_TITLE(6) SC_CAT_F_GENRE(7)))                                        \
    X(SONG_LIST_6, SC_CAT_SONG_LIST(SC_CAT_F_PERFORMER(6) SC_CAT_F_GENRE(7)))                                    \
    X(SONG_LIST_7, SC_CAT_SONG_LIST(SC_CAT_F_TITLE(6) SC_CAT_F_PERFORMER(7) SC_CAT_F_GENRE(8)))                  \
    X(SONG_LIST_8, SC_CAT_SONG_LIST(SC_CAT_F_ALBUM(6)))                                                          \
    X(SONG_LIST_9, SC_CAT_SONG_LIST(SC_CAT_F_TITLE(6) SC_CAT_F_ALBUM(7)))                                        \
    X(SONG_LIST_10, SC_CAT_SONG_LIST(SC_CAT_F_PERFORMER(6) SC_CAT_F_ALBUM(7)))                                   \
    X(SONG_LIST_11, SC_CAT_SONG_LIST(SC_CAT_F_TITLE(6) SC_CAT_F_PERFORMER(7) SC_CAT_F_ALBUM(8)))                 \
    X(SONG_LIST_12, SC_CAT_SONG_LIST(SC_CAT_F_GENRE(6) SC_CAT_F_ALBUM(7)))                                       \
    X(SONG_LIST_13, SC_CAT_SONG_LIST(SC_CAT_F_TITLE(6) SC_CAT_F_GENRE(7) SC_CAT_F_ALBUM(8)))                     \
    X(SONG_LIST_14, SC_CAT_SONG_LIST(SC_CAT_F_PERFORMER(6) SC_CAT_F_GENRE(7) SC_CAT_F_ALBUM(8)))                 \
    X(SONG_LIST_15,                                                                                               \
      SC_CAT_SONG_LIST(SC_CAT_F_TITLE(6) SC_CAT_F_PERFORMER(7) SC_CAT_F_GENRE(8) SC_CAT_F_ALBUM(9)))
/* clang-format on */

/* POST /songs {title, year, performer, genre, duration?, albumId?}: 201 with data.songId. The album must be one
 * the caller may change (api/catalog.h): 404 when the caller cannot see it, 403 (401 anonymous) when it is
 * someone else's. */
int sc_api_songs_create(sc_req *req);
/* GET /songs?title=&performer=&genre=&albumId=&page=&limit=: the songs the caller sees, paged. */
int sc_api_songs_list(sc_req *req);
/* GET /songs/{id}: the song with likes, rating, audio and coverUrl. */
int sc_api_songs_get(sc_req *req);
/* PUT /songs/{id} (owner or admin): replaces every field; a new albumId must name an album the caller may
 * change, as for POST /songs. */
int sc_api_songs_update(sc_req *req);
/* DELETE /songs/{id} (owner or admin). */
int sc_api_songs_delete(sc_req *req);
/* PUT /songs/{id}/flag {flagged, reason?} (admins). */
int sc_api_songs_flag(sc_req *req);

#endif
