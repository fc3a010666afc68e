/* Sessions (api/authentications.c): login, refresh with rotation and logout on /authentications, with tokens in
 * the body or, with ?cookie=1, also in HttpOnly cookies. */
#ifndef SC_API_AUTHENTICATIONS_H
#define SC_API_AUTHENTICATIONS_H

#include "http/request.h"

#define SC_ROUTES_AUTHENTICATIONS(X)                                                                              \
    X(SC_M_POST, "/authentications", SC_API_PUBLIC, sc_api_auth_login)                                            \
    X(SC_M_PUT, "/authentications", SC_API_PUBLIC, sc_api_auth_refresh)                                           \
    X(SC_M_DELETE, "/authentications", SC_API_PUBLIC, sc_api_auth_logout)

/* clang-format off */
#define SC_STMTS_AUTHENTICATIONS(X)                                                                               \
    X(USER_LOGIN, "SELECT id, password_hash, role FROM users WHERE lower(username) = lower($1)")                  \
    X(REFRESH_INSERT,                                                                                             \
      "INSERT INTO refresh_tokens (token_hash, user_id, family_id, expires_at) "                                  \
      "VALUES ($1, $2, $3, now() + $4::int * interval '1 second')")                                               \
    /* Rotation in one statement: revoke the presented token and insert its successor in the same family. */     \
    X(REFRESH_ROTATE,                                                                                             \
      "WITH old AS (UPDATE refresh_tokens SET revoked_at = now(), replaced_by = $2 "                              \
      "  WHERE token_hash = $1 AND revoked_at IS NULL AND expires_at > now() RETURNING user_id, family_id), "     \
      "ins AS (INSERT INTO refresh_tokens (token_hash, user_id, family_id, expires_at) "                          \
      "  SELECT $2, user_id, family_id, now() + $3::int * interval '1 second' FROM old RETURNING user_id) "        \
      "SELECT u.id, u.role FROM ins JOIN users u ON u.id = ins.user_id")                                          \
    /* A revoked token presented again: someone holds a stolen copy, so the whole family goes. */               \
    X(REFRESH_REUSE,                                                                                              \
      "UPDATE refresh_tokens SET revoked_at = coalesce(revoked_at, now()) WHERE family_id = "                     \
      "(SELECT family_id FROM refresh_tokens WHERE token_hash = $1 AND revoked_at IS NOT NULL)")                  \
    X(REFRESH_REVOKE,                                                                                             \
      "UPDATE refresh_tokens SET revoked_at = now() WHERE token_hash = $1 AND revoked_at IS NULL RETURNING 1")
/* clang-format on */

/* POST /authentications[?cookie=1] {username, password}: 201 with an access and a refresh token; wrong
 * credentials 401, too many attempts 429 with Retry-After. */
int sc_api_auth_login(sc_req *req);
/* PUT /authentications {refreshToken} (or the cookie): a new access and refresh token; the old one is used up. */
int sc_api_auth_refresh(sc_req *req);
/* DELETE /authentications {refreshToken} (or the cookie): revokes the refresh token. */
int sc_api_auth_logout(sc_req *req);

#endif
