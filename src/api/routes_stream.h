/* Routes and handlers of the media stream endpoints. */
#ifndef SC_API_ROUTES_STREAM_H
#define SC_API_ROUTES_STREAM_H

#include "http/request.h"

#define SC_ROUTES_STREAM(X)

#endif
