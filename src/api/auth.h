/* Authentication for routes and handlers: who is calling (bearer token or access cookie), the access levels route
 * rows declare (their gates), role checks, and issuing tokens.
 *
 * Access tokens carry sub, role, typ "access", iat, exp and ver, the account's token version; they are checked
 * without touching the database, against the process's table of current token versions (api/token_versions.h),
 * so that a lowered role, a new password or a deleted account refuses earlier tokens (401 "token revoked") at
 * once. Refresh tokens carry sub, fam (their rotation family) and a random jti; the database keeps only their
 * SHA-256. */
#ifndef SC_API_AUTH_H
#define SC_API_AUTH_H

#include <stdbool.h>
#include <stdint.h>

#include "api/api.h"
#include "core/buf.h"
#include "http/cors.h"
#include "http/request.h"

/* The cookies tokens travel in with ?cookie=1 (HttpOnly, Secure, SameSite=Lax). */
#define SC_API_ACCESS_COOKIE "staccato_access"
#define SC_API_REFRESH_COOKIE "staccato_refresh"

/* Who is calling: the access token's subject and role, and whether it came in a cookie. */
typedef struct sc_api_principal {
    char id[64];
    char role[16];
    bool via_cookie;
} sc_api_principal;

/* Authenticates the request. Returns 0 and sets *out, or answers 401 (with WWW-Authenticate: Bearer; "token
 * revoked" for a token of an earlier token version or of a deleted account) or, for a
 * cookie-authenticated unsafe request from a foreign origin, 403, and returns that status. */
int sc_api_auth_require(sc_req *req, sc_api_principal **out);
/* Like sc_api_auth_require, but a request without credentials is fine (*out NULL); bad credentials still fail. */
int sc_api_auth_optional(sc_req *req, sc_api_principal **out);
/* Like sc_api_auth_require, then 403 "admins only" for anyone but an admin: checked before anything about the
 * target is looked up, so that other callers learn nothing (not even whether an id exists). */
int sc_api_auth_admin(sc_req *req, sc_api_principal **out);
/* The access a route row declares (its sc_route.gate, run by the server once the headers are in, before the body
 * is read and the handler runs; api/routes.c):
 *
 *   SC_API_PUBLIC    no gate: the handler runs for anyone (and authenticates itself where its rules need to)
 *   SC_API_OPTIONAL  sc_api_auth_optional: anonymous callers are fine, bad credentials are not (401, 403)
 *   SC_API_USER      sc_api_auth_require: any signed-in caller (401, 403)
 *   SC_API_ADMIN     sc_api_auth_admin: admins only (401, 403)
 *
 * A gate answers exactly as the call it names and leaves the caller for the handler in sc_api_who. */
#define SC_API_PUBLIC NULL
#define SC_API_OPTIONAL sc_api_gate_optional
#define SC_API_USER sc_api_gate_user
#define SC_API_ADMIN sc_api_gate_admin

/* The gates behind SC_API_OPTIONAL, SC_API_USER and SC_API_ADMIN: 0 with the caller in req->principal, or the
 * status answered. */
int sc_api_gate_optional(sc_req *req);
int sc_api_gate_user(sc_req *req);
int sc_api_gate_admin(sc_req *req);

/* The caller the route's gate found: never NULL behind SC_API_USER or SC_API_ADMIN, NULL for an anonymous caller
 * behind SC_API_OPTIONAL and always NULL behind SC_API_PUBLIC. */
static inline sc_api_principal *sc_api_who(const sc_req *req) { return req->principal; }

/* Whether the principal has the role (admins have every role). */
bool sc_api_auth_is(const sc_api_principal *p, const char *role);
/* "true" when the principal (NULL: anonymous) is an admin, else "false": the admin parameter of the statements
 * whose visibility rules depend on the caller. */
const char *sc_api_auth_admin_flag(const sc_api_principal *p);
/* Answers 403 and returns it. */
int sc_api_auth_forbidden(sc_req *req, const char *message);

/* Whether an unsafe request comes from the server's own origin (Origin matching Host, Sec-Fetch-Site
 * same-origin) or one in STACCATO_COOKIE_ORIGINS or STACCATO_CORS_ORIGINS (explicit ones: '*' trusts no one);
 * safe methods always pass. Cookie-authenticated requests must. */
bool sc_api_auth_same_origin(sc_req *req);

/* The value of a cookie from the Cookie header(s), or a slice with ptr NULL. */
sc_slice sc_api_auth_cookie(const sc_req *req, const char *name);

/* Appends a signed access token of the account at token version version (users.token_version). */
void sc_api_auth_access_token(const sc_app *app, const char *user_id, const char *role, int64_t version,
                              sc_buf *out);
/* Appends a signed refresh token for the user in family fam (NULL: a new family) and writes its hash (64 hex
 * digits and NUL) and family id. */
void sc_api_auth_refresh_token(const sc_app *app, const char *user_id, const char *fam, sc_buf *out, char hash[65],
                               char family[64]);
/* Seals successor (a refresh token just issued in place of old) for the refresh grace window: AES-256-GCM under a
 * key derived from REFRESH_TOKEN_KEY and the old token, appended to out as base64url(nonce, ciphertext, tag). The
 * database stores the result; without the old token and the key it reveals nothing. */
void sc_api_auth_seal_successor(sc_slice old, sc_slice successor, sc_buf *out);
/* Opens what sc_api_auth_seal_successor sealed for old, appending the successor to out. Returns 0, or -1 when
 * sealed is not a seal of this old token. */
int sc_api_auth_open_successor(sc_slice old, sc_slice sealed, sc_buf *out);

/* SHA-256 of a token as 64 hex digits. */
void sc_api_auth_token_hash(sc_slice token, char hash[65]);

/* Sets up the signing keys from settings (random ones when unset), the trusted origins and the CORS policy;
 * returns 0 or -1 with a one-line message (a bad origin, STACCATO_COOKIE_SAMESITE=none without CORS origins). */
int sc_api_auth_init(const sc_settings *st, char *err, size_t errlen);
/* The CORS policy for the server (sc_server_config.cors), from STACCATO_CORS_ORIGINS (or BACKEND_CORS_ORIGINS)
 * and STACCATO_CORS_MAX_AGE, with the request headers the API reads and the response headers it sets for pages:
 * valid from sc_api_auth_init to sc_api_auth_shutdown. */
const sc_cors_policy *sc_api_cors_policy(void);
/* The SameSite attribute of session cookies: "Lax", or "None" (STACCATO_COOKIE_SAMESITE=none). */
const char *sc_api_cookie_samesite(void);
/* Frees the signing keys. */
void sc_api_auth_shutdown(void);
/* The key refresh tokens are signed with, and its length. */
const char *sc_api_auth_refresh_key(size_t *len);

/* HMAC-SHA256 of data for URLs the server signs (signed stream URLs), under a key derived from ACCESS_TOKEN_KEY
 * (HMAC of a fixed label), so that a URL signature is never also a valid token signature and the other way round.
 */
void sc_api_auth_url_mac(const void *data, size_t len, unsigned char mac[32]);

#endif
