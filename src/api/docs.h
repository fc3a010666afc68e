/* The API's pages about itself (api/docs.c): Swagger UI at /docs and Redoc at /redoc, both over GET /openapi.json,
 * and the assets they load, from the npm packages swagger-ui-dist and redoc under STACCATO_DOCS_ASSETS. */
#ifndef SC_API_DOCS_H
#define SC_API_DOCS_H

#include "http/request.h"

#define SC_ROUTES_DOCS(X)                                                                                         \
    X(SC_M_GET, "/docs", SC_API_PUBLIC, sc_api_docs_swagger)                                                      \
    X(SC_M_GET, "/docs/assets/{name}", SC_API_PUBLIC, sc_api_docs_asset)                                          \
    X(SC_M_GET, "/redoc", SC_API_PUBLIC, sc_api_docs_redoc)

/* GET /docs: the Swagger UI page over /openapi.json, with "Try it out" against this server; 503 (JSON, saying how
 * to install them) when its assets are not under STACCATO_DOCS_ASSETS. */
int sc_api_docs_swagger(sc_req *req);
/* GET /redoc: the Redoc page over /openapi.json; 503 like /docs when its asset is missing. */
int sc_api_docs_redoc(sc_req *req);
/* GET /docs/assets/{name}: one of a fixed list of files (the pages' scripts, styles, source maps and icon), sent
 * from the file with ETag and Last-Modified (304 to a matching If-None-Match or If-Modified-Since). A request
 * whose ?v= is the file's current version, as the pages link them, may be cached for a year; others for an hour.
 * Any other name is a 404; a listed file that is missing a 503. */
int sc_api_docs_asset(sc_req *req);

#endif
