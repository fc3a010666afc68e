/* Routes and handlers of the playlists endpoints: playlists, their songs and activity log, and collaborations. */
#ifndef SC_API_ROUTES_PLAYLISTS_H
#define SC_API_ROUTES_PLAYLISTS_H

#include "http/request.h"

#define SC_ROUTES_PLAYLISTS(X)                                                                                    \
    X(SC_M_POST, "/playlists", sc_api_playlists_create)                                                           \
    X(SC_M_GET, "/playlists", sc_api_playlists_list)                                                              \
    X(SC_M_DELETE, "/playlists/{id}", sc_api_playlists_delete)                                                    \
    X(SC_M_POST, "/playlists/{id}/songs", sc_api_playlist_songs_add)                                              \
    X(SC_M_GET, "/playlists/{id}/songs", sc_api_playlist_songs_list)                                              \
    X(SC_M_DELETE, "/playlists/{id}/songs", sc_api_playlist_songs_delete)                                         \
    X(SC_M_GET, "/playlists/{id}/activities", sc_api_playlist_activities)                                         \
    X(SC_M_POST, "/collaborations", sc_api_collaborations_add)                                                    \
    X(SC_M_DELETE, "/collaborations", sc_api_collaborations_delete)

int sc_api_playlists_create(sc_req *req);
int sc_api_playlists_list(sc_req *req);
int sc_api_playlists_delete(sc_req *req);
int sc_api_playlist_songs_add(sc_req *req);
int sc_api_playlist_songs_list(sc_req *req);
int sc_api_playlist_songs_delete(sc_req *req);
int sc_api_playlist_activities(sc_req *req);
int sc_api_collaborations_add(sc_req *req);
int sc_api_collaborations_delete(sc_req *req);

#endif
