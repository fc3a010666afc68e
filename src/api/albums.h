/* Albums (api/albums.c): creation, reading with its songs, changes, deletion and moderation. The album's cover,
 * likes and cover upload have their own resources (api/stream.h, api/likes.h, api/uploads.h). */
#ifndef SC_API_ALBUMS_H
#define SC_API_ALBUMS_H

#include "api/catalog.h"
#include "http/request.h"

#define SC_ROUTES_ALBUMS(X)                                                                                       \
    X(SC_M_POST, "/albums", SC_API_PUBLIC, sc_api_albums_create)                                                  \
    X(SC_M_GET, "/albums/{id}", SC_API_OPTIONAL, sc_api_albums_get)                                               \
    X(SC_M_PUT, "/albums/{id}", SC_API_PUBLIC, sc_api_albums_update)                                              \
    X(SC_M_DELETE, "/albums/{id}", SC_API_PUBLIC, sc_api_albums_delete)                                           \
    X(SC_M_PUT, "/albums/{id}/flag", SC_API_ADMIN, sc_api_albums_flag)

/* Reads take the caller as two parameters: the user id (NULL for anonymous callers) and the admin flag. Responses
 * are built as JSON by the database (one row, one value) with the contract's keys. */
/* clang-format off */
#define SC_STMTS_ALBUMS(X)                                                                                        \
    X(ALBUM_INSERT, "INSERT INTO albums (id, name, year, owner_id) VALUES ($1, $2, $3::int, $4)")                 \
    /* $1 id, $2 caller, $3 admin, $4 base URL */                                                                \
    X(ALBUM_GET,                                                                                                  \
      "SELECT json_build_object('id', a.id, 'name', a.name, 'year', a.year, 'coverUrl', " SC_CAT_COVER_URL("$4")  \
      ", 'songs', coalesce((SELECT json_agg(json_build_object('id', s.id, 'title', s.title, 'performer', "         \
      "s.performer) ORDER BY s.title, s.id) FROM songs s WHERE s.album_id = a.id AND "                             \
      SC_CAT_SONG_VISIBLE("$2", "$3") "), '[]'::json)) FROM albums a WHERE a.id = $1 AND "                        \
      SC_CAT_ALBUM_VISIBLE("$2", "$3"))                                                                            \
    /* Existence (no row: 404) of an album the caller can see, whether the caller owns it and whether anyone   \
     * does; $1 id, $2 caller, $3 admin. Also the check of the album a new song names. */                        \
    X(ALBUM_ACCESS,                                                                                               \
      "SELECT coalesce(a.owner_id = $2::text, false), a.owner_id IS NOT NULL FROM albums a WHERE a.id = $1 AND "  \
      SC_CAT_ALBUM_VISIBLE("$2", "$3"))                                                                            \
    X(ALBUM_UPDATE, "UPDATE albums SET name = $2, year = $3::int, updated_at = now() WHERE id = $1")             \
    X(ALBUM_DELETE, "DELETE FROM albums WHERE id = $1")                                                          \
    X(ALBUM_FLAG,                                                                                                 \
      "UPDATE albums SET flagged = $2::boolean, flag_reason = CASE WHEN $2::boolean THEN $3::text END, "          \
      "updated_at = now() WHERE id = $1")
/* clang-format on */

/* POST /albums {name, year}: 201 with data.albumId. */
int sc_api_albums_create(sc_req *req);
/* GET /albums/{id}: the album with coverUrl and the songs the caller sees. */
int sc_api_albums_get(sc_req *req);
/* PUT /albums/{id} {name, year} (owner or admin). */
int sc_api_albums_update(sc_req *req);
/* DELETE /albums/{id} (owner or admin). */
int sc_api_albums_delete(sc_req *req);
/* PUT /albums/{id}/flag {flagged, reason?} (admins). */
int sc_api_albums_flag(sc_req *req);

#endif
