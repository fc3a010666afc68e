/* Media uploads (api/uploads.c): album covers and song audio, streamed to the store as they arrive.
 *
 * An upload is recorded in one statement once its file is in place: the media_files row is inserted, the song or
 * album is pointed at it (and, for audio, the audio_* columns set), and the row it replaces is deleted unless
 * something else still uses it. The statement answers with the number of songs/albums updated (0: it was deleted
 * meanwhile) and the sha256 of the deleted row, whose file may then be released. Rows are per upload; files are
 * per content (sha256), so a file may outlive the row that brought it. */
#ifndef SC_API_UPLOADS_H
#define SC_API_UPLOADS_H

#include "api/visibility.h"
#include "http/request.h"

/* Uploads are streaming routes (SC_ROUTE_STREAM_BODY): the handler runs at headers time and takes the body as a
 * stream. */
#define SC_ROUTES_UPLOADS_STREAM(X)                                                                               \
    X(SC_M_POST, "/albums/{id}/covers", SC_API_PUBLIC, sc_api_album_cover_upload)                                 \
    X(SC_M_PUT | SC_M_POST, "/songs/{id}/audio", SC_API_USER, sc_api_song_audio_upload)

/* Whether any row still names a file. */
#define SC_UPLOAD_KEY_USED "SELECT EXISTS (SELECT 1 FROM media_files WHERE sha256 = $1::text)"

/* For the startup sweep, on a connection of its own: the keys of a batch that rows still name ($1: text[]). */
/* clang-format off */
#define SC_UPLOAD_SQL_KEYS_USED "SELECT DISTINCT sha256 FROM media_files WHERE sha256 = ANY ($1::text[])"
/* clang-format on */
/* Rows that nothing points at any more (their song or album was deleted), older than $1 seconds. */
/* clang-format off */
#define SC_UPLOAD_SQL_SWEEP_ROWS                                                                                  \
    "DELETE FROM media_files f WHERE f.created_at < now() - make_interval(secs => $1::int) "                      \
    "AND NOT EXISTS (SELECT 1 FROM songs s WHERE s.audio_media_id = f.id) "                                        \
    "AND NOT EXISTS (SELECT 1 FROM albums a WHERE a.cover_media_id = f.id)"
/* clang-format on */

/* clang-format off */
#define SC_STMTS_UPLOADS(X)                                                                                       \
    /* Existence (no row: 404) and ownership of a song / an album the caller can see (of an album also whether   \
     * anyone owns it); $1 id, $2 caller, $3 admin. */                                                            \
    X(MEDIA_SONG_ACCESS,                                                                                          \
      "SELECT coalesce(s.owner_id = $2::text, false) FROM songs s WHERE s.id = $1 AND "                           \
      SC_CAT_SONG_VISIBLE("$2", "$3"))                                                                             \
    X(MEDIA_ALBUM_ACCESS,                                                                                         \
      "SELECT coalesce(a.owner_id = $2::text, false), a.owner_id IS NOT NULL FROM albums a WHERE a.id = $1 AND "  \
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
    X(MEDIA_KEY_USED, SC_UPLOAD_KEY_USED)
/* clang-format on */

/* POST /albums/{id}/covers, multipart field cover (owner or admin): the image, at most 512000 bytes. */
int sc_api_album_cover_upload(sc_req *req);
/* PUT /songs/{id}/audio (the raw file) or POST (multipart field audio) (owner or admin): the audio, probed. */
int sc_api_song_audio_upload(sc_req *req);

typedef struct sc_app sc_app;
/* Sets up media storage for a worker before its loop runs: creates STACCATO_MEDIA_DIR (and tmp/) when missing
 * and starts the startup sweep on the thread pool (leftover temp files, interrupted releases, and files no row
 * references any more). Problems are logged; uploads then fail with 500 while everything else keeps working. */
void sc_api_upload_start(sc_app *app);

#endif
