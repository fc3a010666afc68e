/* Routes and handlers of the social endpoints: album and song likes, one's liked songs, ratings. */
#ifndef SC_API_ROUTES_SOCIAL_H
#define SC_API_ROUTES_SOCIAL_H

#include "http/request.h"

#define SC_ROUTES_SOCIAL(X)                                                                                       \
    X(SC_M_POST, "/albums/{id}/likes", sc_api_album_like)                                                         \
    X(SC_M_DELETE, "/albums/{id}/likes", sc_api_album_unlike)                                                     \
    X(SC_M_GET, "/albums/{id}/likes", sc_api_album_likes)                                                         \
    X(SC_M_POST, "/songs/{id}/likes", sc_api_song_like)                                                           \
    X(SC_M_DELETE, "/songs/{id}/likes", sc_api_song_unlike)                                                       \
    X(SC_M_GET, "/songs/{id}/likes", sc_api_song_likes)                                                           \
    X(SC_M_GET, "/users/me/likes", sc_api_users_me_likes)                                                         \
    X(SC_M_PUT, "/songs/{id}/rating", sc_api_song_rate)                                                           \
    X(SC_M_DELETE, "/songs/{id}/rating", sc_api_song_unrate)

int sc_api_album_like(sc_req *req);
int sc_api_album_unlike(sc_req *req);
int sc_api_album_likes(sc_req *req);
int sc_api_song_like(sc_req *req);
int sc_api_song_unlike(sc_req *req);
int sc_api_song_likes(sc_req *req);
int sc_api_users_me_likes(sc_req *req);
int sc_api_song_rate(sc_req *req);
int sc_api_song_unrate(sc_req *req);

#endif
