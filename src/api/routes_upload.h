/* Routes and handlers of the media upload endpoints. */
#ifndef SC_API_ROUTES_UPLOAD_H
#define SC_API_ROUTES_UPLOAD_H

#include "http/request.h"

#define SC_ROUTES_UPLOAD(X)

#endif
