/* Cross-origin resource sharing (the Fetch standard's CORS protocol): which other origins' pages may read the
 * server's answers, and the preflight a browser sends before a request it may not make on its own.
 *
 * An origin, as browsers send it in the Origin header and as lists of them are configured:
 *
 *     origin = scheme "://" host [ ":" port ]       no path, no query, no userinfo, no trailing slash
 *     scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
 *     host   = what http/host.h accepts in a Host header
 *
 * The HTTP layer applies a policy it is given (sc_server_config.cors): the origins, and the request and response
 * header names the application wants named. It knows the methods of each path from the route table, and nothing
 * else about the application. */
#ifndef SC_HTTP_CORS_H
#define SC_HTTP_CORS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/slice.h"
#include "http/request.h"

/* A list of exact origins, or "*" (any origin). */
typedef struct sc_origin_list {
    char *text;      /* the items point into this copy */
    sc_slice *items; /* each a valid origin */
    size_t n;
    bool any; /* the list was "*" */
} sc_origin_list;

/* Parses "https://app.example, http://127.0.0.1:3000" (empty: an empty list). With allow_any, "*" alone is a
 * list that matches every origin; "*" beside other items, or without allow_any, is an error. name is the
 * setting's name, for the message. Returns 0, or -1 with a one-line message in err. */
int sc_origin_list_parse(const char *s, bool allow_any, const char *name, sc_origin_list *out, char *err,
                         size_t errlen);
void sc_origin_list_free(sc_origin_list *l);
/* Whether origin (an Origin header's value) is in the list, compared without regard to case; always true for
 * "*". */
bool sc_origin_list_contains(const sc_origin_list *l, sc_slice origin);

/* What the server tells browsers about other origins. With no origins, it tells them nothing (no CORS header on
 * any response). With explicit origins an allowed Origin is echoed and credentials (cookies, Authorization) are
 * allowed; with "*" any origin may read answers, without credentials. */
typedef struct sc_cors_policy {
    sc_origin_list origins;
    uint64_t max_age;           /* Access-Control-Max-Age of preflight answers, seconds */
    const char *allow_headers;  /* request headers a preflight may ask for: "Authorization, Content-Type" */
    const char *expose_headers; /* response headers pages may read: "X-Total-Count, ETag" */
} sc_cors_policy;

/* Appends the CORS header lines of a response to req (each ending in CRLF) to out: Vary: Origin whenever the
 * policy names origins, and for an Origin it allows Access-Control-Allow-Origin, -Allow-Credentials (not with
 * "*") and -Expose-Headers. Nothing for a NULL or empty policy. */
void sc_cors_response_headers(const sc_cors_policy *p, const sc_req *req, sc_buf *out);

/* For an OPTIONS request to a path whose routes allow methods (SC_M_* bits, HEAD included with GET): when it is a
 * preflight (Origin and Access-Control-Request-Method) from an allowed origin, adds Access-Control-Allow-Methods
 * (exactly those methods), Access-Control-Allow-Headers (the requested headers the policy allows, in its
 * spelling) and Access-Control-Max-Age to the response. Otherwise adds nothing: the answer is then a plain
 * OPTIONS answer, which a browser takes as a refused preflight. */
void sc_cors_preflight(const sc_cors_policy *p, sc_req *req, unsigned methods);

#endif
