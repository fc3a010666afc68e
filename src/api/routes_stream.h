/* Routes and handlers of the media stream endpoints (src/api/stream.c). HEAD comes with every GET row. */
#ifndef SC_API_ROUTES_STREAM_H
#define SC_API_ROUTES_STREAM_H

#include "http/request.h"

#define SC_ROUTES_STREAM(X)                                                                                       \
    X(SC_M_GET, "/songs/{id}/stream", sc_api_song_stream)                                                         \
    X(SC_M_GET, "/songs/{id}/stream-url", sc_api_song_stream_url)                                                 \
    X(SC_M_GET, "/albums/{id}/cover", sc_api_album_cover)

/* GET|HEAD /songs/{id}/stream: the song's audio, with ranges and conditional requests. */
int sc_api_song_stream(sc_req *req);
/* GET /songs/{id}/stream-url: a signed, expiring URL of the song's stream for clients that cannot send headers. */
int sc_api_song_stream_url(sc_req *req);
/* GET|HEAD /albums/{id}/cover: the album's cover image, with ranges and conditional requests. */
int sc_api_album_cover(sc_req *req);

#endif
