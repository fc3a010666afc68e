/* Routes and handlers of the catalog endpoints. */
#ifndef SC_API_ROUTES_CATALOG_H
#define SC_API_ROUTES_CATALOG_H

#include "http/request.h"

#define SC_ROUTES_CATALOG(X)

#endif
