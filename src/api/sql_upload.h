/* SQL of the media upload endpoints (src/api/upload.c).
 *
 * An upload is recorded in one statement once its file is in place: the media_files row is inserted, the song or
 * album is pointed at it (and, for audio, the audio_* columns set), and the row it replaces is deleted unless
 * something else still uses it. The statement answers with the number of songs/albums updated (0: it was deleted
 * meanwhile) and the sha256 of the deleted row, whose file may then be released. Rows are per upload; files are
 * per content (sha256), so a file may outlive the row that brought it. */
#ifndef SC_API_SQL_UPLOAD_H
#define SC_API_SQL_UPLOAD_H

#include "api/sql_catalog.h"

/* Whether any row still names a file. */
#define SC_UPLOAD_KEY_USED "SELECT EXISTS (SELECT 1 FROM media_files WHERE sha256 = $1::text)"

/* For the startup sweep, on a connection of its own: the keys of a batch that rows still name ($1: text[]). */
#define SC_UPLOAD_SQL_KEYS_USED "SELECT DISTINCT sha256 FROM media_files WHERE sha256 = ANY ($1::text[])"
/* Rows that nothing points at any more (their song or album was deleted), older than $1 seconds. */
#define SC_UPLOAD_SQL_SWEEP_ROWS                                                                                  \
    "DELETE FROM media_files f WHERE f.created_at < now() - make_interval(secs => $1::int) "                      \
    "AND NOT EXISTS (SELECT 1 FROM songs s WHERE s.audio_media_id = f.id) "                                        \
    "AND NOT EXISTS (SELECT 1 FROM albums a WHERE a.cover_media_id = f.id)"

#define SC_STMTS_UPLOAD(X)                                                                                        \
    /* Existence (no row: 404) and ownership of a song / an album the caller can see; $1 id, $2 caller, $3 admin. \
     */                                                                                                            \
    X(MEDIA_SONG_ACCESS,                                                                                          \
      "SELECT coalesce(s.owner_id = $2::text, false) FROM songs s WHERE s.id = $1 AND "                           \
      SC_CAT_SONG_VISIBLE("$2", "$3"))                                                                             \
    X(MEDIA_ALBUM_ACCESS,                                                                                         \
      "SELECT coalesce(a.owner_id = $2::text, false) FROM albums a WHERE a.id = $1 AND "                          \
      SC_CAT_ALBUM_VISIBLE("$2", "$3"))                                                                            \
    /* $1 song, $2 media id, $3 sha256, $4 path, $5 mime, $6 size, $7 duration ms, $8 bitrate, $9 sample rate,   \
     * $10 channels (7-10 may be NULL). A song without a duration of its own gets the audio's, in seconds. */     \
    X(MEDIA_SONG_AUDIO_SET,                                                                                       \
      "WITH s AS (SELECT id, audio_media_id AS old FROM songs WHERE id = $1 FOR UPDATE), "                        \
      "m AS (INSERT INTO media_files (id, kind, sha256, path, mime, size) "                                       \
      "  SELECT $2, 'audio', $3, $4, $5, $6::bigint FROM s RETURNING id), "                                        \
      "u AS (UPDATE songs SET audio_media_id = m.id, audio_mime = $5, audio_size = $6::bigint, "                   \
      "  duration_ms = $7::int, bitrate = $8::int, sample_rate = $9::int, channels = $10::smallint, "              \
      "  duration = coalesce(songs.duration, round($7::int / 1000.0)::int), updated_at = now() "                   \
      "  FROM m WHERE songs.id = $1 RETURNING songs.id), "                                                         \
      "d AS (DELETE FROM media_files f USING s WHERE f.id = s.old "                                               \
      "  AND NOT EXISTS (SELECT 1 FROM songs o WHERE o.audio_media_id = f.id AND o.id <> $1) "                     \
      "  AND NOT EXISTS (SELECT 1 FROM albums a WHERE a.cover_media_id = f.id) RETURNING f.sha256) "              \
      "SELECT (SELECT count(*) FROM u), (SELECT sha256 FROM d)")                                                   \
    /* $1 album, $2 media id, $3 sha256, $4 path, $5 mime, $6 size */                                            \
    X(MEDIA_ALBUM_COVER_SET,                                                                                      \
      "WITH a AS (SELECT id, cover_media_id AS old FROM albums WHERE id = $1 FOR UPDATE), "                       \
      "m AS (INSERT INTO media_files (id, kind, sha256, path, mime, size) "                                       \
      "  SELECT $2, 'cover', $3, $4, $5, $6::bigint FROM a RETURNING id), "                                        \
      "u AS (UPDATE albums SET cover_media_id = m.id, updated_at = now() FROM m WHERE albums.id = $1 "            \
      "  RETURNING albums.id), "                                                                                   \
      "d AS (DELETE FROM media_files f USING a WHERE f.id = a.old "                                               \
      "  AND NOT EXISTS (SELECT 1 FROM albums o WHERE o.cover_media_id = f.id AND o.id <> $1) "                    \
      "  AND NOT EXISTS (SELECT 1 FROM songs s WHERE s.audio_media_id = f.id) RETURNING f.sha256) "                \
      "SELECT (SELECT count(*) FROM u), (SELECT sha256 FROM d)")                                                   \
    /* $1 sha256 */                                                                                              \
    X(MEDIA_KEY_USED, SC_UPLOAD_KEY_USED)                                                                         \
    /* GET /users/me/songs: $1 caller, $2 limit, $3 offset; one row: the total and the page. */                  \
    X(MEDIA_MY_SONGS,                                                                                             \
      "WITH m AS (SELECT id, title, performer, visibility, created_at FROM songs WHERE owner_id = $1::text) "     \
      "SELECT (SELECT count(*) FROM m), coalesce((SELECT json_agg(json_build_object('id', p.id, 'title', "        \
      "p.title, 'performer', p.performer, 'visibility', p.visibility) ORDER BY p.created_at, p.id) FROM "         \
      "(SELECT * FROM m ORDER BY created_at, id LIMIT $2::bigint OFFSET $3::bigint) p), '[]'::json)")

#endif
