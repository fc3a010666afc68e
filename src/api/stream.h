/* Media streaming (api/stream.c): a song's audio, signed URLs for it, and album covers. HEAD comes with every
 * GET row.
 *
 * The reads give one row when the song or album exists and the caller may see it (the visibility rules of the
 * catalog, SC_CAT_*_VISIBLE), and NULL media columns when it has no audio or cover: "not found" and "nothing to
 * play" are told apart in one query. Columns: path (relative to STACCATO_MEDIA_DIR), mime, sha256 (the strong
 * ETag), created_at in whole Unix seconds (Last-Modified), and whether the resource is public (cacheable by shared
 * caches). */
#ifndef SC_API_STREAM_H
#define SC_API_STREAM_H

#include "api/visibility.h"
#include "http/request.h"

#define SC_ROUTES_STREAM(X)                                                                                       \
    X(SC_M_GET, "/songs/{id}/stream", SC_API_OPTIONAL, sc_api_song_stream)                                        \
    X(SC_M_GET, "/songs/{id}/stream-url", SC_API_USER, sc_api_song_stream_url)                                    \
    X(SC_M_GET, "/albums/{id}/cover", SC_API_OPTIONAL, sc_api_album_cover)

#define SC_STREAM_MEDIA_COLUMNS "m.path, m.mime, m.sha256, floor(extract(epoch FROM m.created_at))::bigint"

/* The stream endpoints ask for the caller-independent facts of the row (owner_id and whether it is public come
 * last) and decide visibility themselves, as SC_CAT_SONG_VISIBLE / SC_CAT_ALBUM_VISIBLE do, so that the answer
 * can be cached for every caller (src/api/media_cache.h). */
/* clang-format off */
#define SC_STMTS_STREAM(X)                                                                                        \
    /* $1 song id, $2 caller, $3 admin, $4 signed URL (true: visible whatever its visibility) */                  \
    X(STREAM_SONG,                                                                                                \
      "SELECT " SC_STREAM_MEDIA_COLUMNS ", NOT s.flagged AND s.visibility = 'public' FROM songs s "               \
      "LEFT JOIN media_files m ON m.id = s.audio_media_id WHERE s.id = $1 AND ($4::boolean OR "                   \
      SC_CAT_SONG_VISIBLE("$2", "$3") ")")                                                                         \
    /* $1 song id */                                                                                             \
    X(STREAM_SONG_FACTS,                                                                                          \
      "SELECT " SC_STREAM_MEDIA_COLUMNS ", NOT s.flagged AND s.visibility = 'public', s.owner_id FROM songs s "   \
      "LEFT JOIN media_files m ON m.id = s.audio_media_id WHERE s.id = $1")                                       \
    /* $1 album id */                                                                                            \
    X(STREAM_COVER_FACTS,                                                                                         \
      "SELECT " SC_STREAM_MEDIA_COLUMNS ", NOT a.flagged, a.owner_id FROM albums a "                              \
      "LEFT JOIN media_files m ON m.id = a.cover_media_id WHERE a.id = $1")
/* clang-format on */

/* GET|HEAD /songs/{id}/stream: the song's audio, with ranges and conditional requests. */
int sc_api_song_stream(sc_req *req);
/* GET /songs/{id}/stream-url: a signed, expiring URL of the song's stream for clients that cannot send headers. */
int sc_api_song_stream_url(sc_req *req);
/* GET|HEAD /albums/{id}/cover: the album's cover image, with ranges and conditional requests. */
int sc_api_album_cover(sc_req *req);

#endif
