/* Genres (api/genres.c): the list, cached in Redis, and its management by admins. */
#ifndef SC_API_GENRES_H
#define SC_API_GENRES_H

#include "http/request.h"

#define SC_ROUTES_GENRES(X)                                                                                       \
    X(SC_M_GET, "/genres", SC_API_PUBLIC, sc_api_genres_list)                                                     \
    X(SC_M_POST, "/genres", SC_API_ADMIN, sc_api_genres_create)                                                   \
    X(SC_M_DELETE, "/genres/{id}", SC_API_ADMIN, sc_api_genres_delete)

/* clang-format off */
#define SC_STMTS_GENRES(X)                                                                                        \
    X(GENRE_LIST,                                                                                                 \
      "SELECT coalesce(json_agg(json_build_object('id', id, 'name', name) ORDER BY name, id), '[]'::json) "       \
      "FROM genres")                                                                                               \
    /* A new genre also links the songs that already name it. */                                                 \
    X(GENRE_INSERT,                                                                                               \
      "WITH g AS (INSERT INTO genres (id, name) VALUES ($1, $2) RETURNING id, name), "                            \
      "u AS (UPDATE songs SET genre_id = g.id FROM g WHERE lower(songs.genre) = lower(g.name) RETURNING 1) "      \
      "SELECT id FROM g")                                                                                          \
    X(GENRE_DELETE, "DELETE FROM genres WHERE id = $1")
/* clang-format on */

/* GET /genres: every genre, from the cache when it has them (X-Data-Source: cache). */
int sc_api_genres_list(sc_req *req);
/* POST /genres {name} (admins): 201 with data.genreId; a name taken already is a 400. */
int sc_api_genres_create(sc_req *req);
/* DELETE /genres/{id} (admins). */
int sc_api_genres_delete(sc_req *req);

#endif
