/* Routes and handlers of the catalog endpoints (src/api/catalog.c): albums, songs, genres and moderation. */
#ifndef SC_API_ROUTES_CATALOG_H
#define SC_API_ROUTES_CATALOG_H

#include "http/request.h"

#define SC_ROUTES_CATALOG(X)                                                                                      \
    X(SC_M_POST, "/albums", sc_api_albums_create)                                                                 \
    X(SC_M_GET, "/albums/{id}", sc_api_albums_get)                                                                \
    X(SC_M_PUT, "/albums/{id}", sc_api_albums_update)                                                             \
    X(SC_M_DELETE, "/albums/{id}", sc_api_albums_delete)                                                          \
    X(SC_M_PUT, "/albums/{id}/flag", sc_api_albums_flag)                                                          \
    X(SC_M_POST, "/songs", sc_api_songs_create)                                                                   \
    X(SC_M_GET, "/songs", sc_api_songs_list)                                                                      \
    X(SC_M_GET, "/songs/{id}", sc_api_songs_get)                                                                  \
    X(SC_M_PUT, "/songs/{id}", sc_api_songs_update)                                                               \
    X(SC_M_DELETE, "/songs/{id}", sc_api_songs_delete)                                                            \
    X(SC_M_PUT, "/songs/{id}/flag", sc_api_songs_flag)                                                            \
    X(SC_M_GET, "/genres", sc_api_genres_list)                                                                    \
    X(SC_M_POST, "/genres", sc_api_genres_create)                                                                 \
    X(SC_M_DELETE, "/genres/{id}", sc_api_genres_delete)

int sc_api_albums_create(sc_req *req);
int sc_api_albums_get(sc_req *req);
int sc_api_albums_update(sc_req *req);
int sc_api_albums_delete(sc_req *req);
int sc_api_albums_flag(sc_req *req);
int sc_api_songs_create(sc_req *req);
int sc_api_songs_list(sc_req *req);
int sc_api_songs_get(sc_req *req);
int sc_api_songs_update(sc_req *req);
int sc_api_songs_delete(sc_req *req);
int sc_api_songs_flag(sc_req *req);
int sc_api_genres_list(sc_req *req);
int sc_api_genres_create(sc_req *req);
int sc_api_genres_delete(sc_req *req);

#endif
