/* Routes and handlers of the media upload endpoints (src/api/upload.c). */
#ifndef SC_API_ROUTES_UPLOAD_H
#define SC_API_ROUTES_UPLOAD_H

#include "http/request.h"

/* Uploads: routes.c makes these streaming routes (the handler runs at headers time and takes the body as a
 * stream). */
#define SC_ROUTES_UPLOAD(X)                                                                                       \
    X(SC_M_POST, "/albums/{id}/covers", sc_api_album_cover_upload)                                                \
    X(SC_M_PUT | SC_M_POST, "/songs/{id}/audio", sc_api_song_audio_upload)

/* The module's ordinary routes (buffered bodies): rows for routes.c's ROUTES table. */
#define SC_ROUTES_UPLOAD_PLAIN(X) X(SC_M_GET, "/users/me/songs", sc_api_users_me_songs)

int sc_api_album_cover_upload(sc_req *req);
int sc_api_song_audio_upload(sc_req *req);
int sc_api_users_me_songs(sc_req *req);

typedef struct sc_app sc_app;
/* Sets up media storage for a worker before its loop runs: creates STACCATO_MEDIA_DIR (and tmp/) when missing
 * and starts the startup sweep on the thread pool (leftover temp files, interrupted releases, and files no row
 * references any more). Problems are logged; uploads then fail with 500 while everything else keeps working. */
void sc_api_upload_start(sc_app *app);

#endif
