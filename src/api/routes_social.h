/* Routes and handlers of the social endpoints. */
#ifndef SC_API_ROUTES_SOCIAL_H
#define SC_API_ROUTES_SOCIAL_H

#include "http/request.h"

#define SC_ROUTES_SOCIAL(X)

#endif
