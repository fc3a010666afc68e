/* The API's description of itself: an OpenAPI 3.1 document generated from the route table.
 *
 * One source of truth. A route row (api/routes.c) gives the path, the methods, the access level and, through its
 * handler's name, the key of its operation in api/<resource>.openapi.json: an OpenAPI Operation Object with the
 * summary, description, tags, query parameters, request body and the responses only that operation gives (keys
 * "<name>.<method>", e.g. "song_audio_upload.put", describe one method of a row that has several). Everything the
 * row itself says is generated, so that it cannot drift from what the server does:
 *   - operationId (the name in camelCase, with the method appended for rows of several methods);
 *   - a required string path parameter for each {name} of the pattern the description does not list itself;
 *   - security from the access level: an empty list for public rows (no credentials), the bearer token or the
 *     access cookie for the others (optional for SC_API_OPTIONAL), with the 401 and 403 its gate answers;
 *   - 404 for a pattern with parameters; 400 and 415 for rows whose JSON body is read whole and that take a body;
 *     everywhere what the HTTP layer answers before routing (400, 408, 413, 414, 417, 431, 501, 505), 500, 503
 *     (the database unavailable, the server's memory budget spent) and 504 (a database query past its deadline).
 * The shared parts (info, tags, security schemes, the Error and Message schemas, the responses, headers and
 * parameters operations refer to) are in api/openapi.base.json; a resource's own schemas (Album, Song, ...) are in
 * the "components" of its file, merged into the document's. Every part is embedded in the binary at build time
 * (deps/embed_openapi.cmake).
 *
 * Building fails, naming each, for a route with no description and for a description no route has: the server
 * refuses to start then, and the unit test tests/unit/api/test_openapi.c fails. */
#ifndef SC_API_OPENAPI_H
#define SC_API_OPENAPI_H

#include <stdbool.h>
#include <stddef.h>

#include "http/request.h"
#include "http/router.h"

typedef struct sc_openapi_part {
    const char *file; /* "albums.openapi.json" */
    const char *json;
} sc_openapi_part;

/* The embedded parts (generated at build time). */
extern const char sc_openapi_base[];
extern const sc_openapi_part sc_openapi_parts[];
extern const size_t sc_openapi_parts_count;

/* The document for a route table, as compact JSON (malloc'd, NUL-terminated; *len its length). NULL when a part
 * does not parse, a route has no description or a description no route (with_debug false: the table has no debug
 * routes, so descriptions tagged "debug" may go unused): err says which (all of them, as far as errlen allows). */
char *sc_api_openapi_build(const sc_route *routes, size_t n, bool with_debug, size_t *len, char *err,
                           size_t errlen);

/* GET /openapi.json: the document built for this server's table (sc_app.openapi), with an ETag. */
int sc_api_openapi_json(sc_req *req);

#define SC_ROUTES_OPENAPI(X) X(SC_M_GET, "/openapi.json", SC_API_PUBLIC, sc_api_openapi_json)

#endif
