/* Routes and handlers of the playlists endpoints. */
#ifndef SC_API_ROUTES_PLAYLISTS_H
#define SC_API_ROUTES_PLAYLISTS_H

#include "http/request.h"

#define SC_ROUTES_PLAYLISTS(X)

#endif
