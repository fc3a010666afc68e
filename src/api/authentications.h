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
    X(USER_LOGIN, "SELECT id, password_hash, role, token_version FROM users WHERE lower(username) = lower($1)")   \
    /* Only a verified address signs in: an unverified one finds no account, as an unknown one. */              \
    X(USER_LOGIN_EMAIL,                                                                                           \
      "SELECT id, password_hash, role, token_version FROM users WHERE lower(email) = lower($1) AND email_verified") \
    X(REFRESH_INSERT,                                                                                             \
      "INSERT INTO refresh_tokens (token_hash, user_id, family_id, expires_at) "                                  \
      "VALUES ($1, $2, $3, now() + $4::int * interval '1 second')")                                               \
    /* Rotation in one statement: revoke the presented token ($1), keeping its successor sealed ($4) for the     \
     * grace window, insert the successor ($2) in the same family, and drop the seal of the token the presented  \
     * one succeeded, whose grace ends now that its successor is used. */                                       \
    X(REFRESH_ROTATE,                                                                                             \
      "WITH old AS (UPDATE refresh_tokens SET revoked_at = now(), replaced_by = $2, successor_sealed = $4 "       \
      "  WHERE token_hash = $1 AND revoked_at IS NULL AND expires_at > now() RETURNING user_id, family_id), "     \
      "ins AS (INSERT INTO refresh_tokens (token_hash, user_id, family_id, expires_at) "                          \
      "  SELECT $2, user_id, family_id, now() + $3::int * interval '1 second' FROM old RETURNING user_id), "      \
      "prev AS (UPDATE refresh_tokens SET successor_sealed = NULL "                                              \
      "  WHERE replaced_by = $1 AND successor_sealed IS NOT NULL) "                                              \
      "SELECT u.id, u.role, u.token_version FROM ins JOIN users u ON u.id = ins.user_id")                        \
    /* The presented token ($1) was rotated less than $2 seconds ago and its successor is still unused and      \
     * valid: the sealed successor, its hash, and the account. */                                                \
    X(REFRESH_GRACE,                                                                                              \
      "SELECT o.successor_sealed, o.replaced_by, u.id, u.role, u.token_version FROM refresh_tokens o "            \
      "JOIN refresh_tokens s ON s.token_hash = o.replaced_by JOIN users u ON u.id = o.user_id "                   \
      "WHERE o.token_hash = $1 AND o.successor_sealed IS NOT NULL "                                               \
      "AND o.revoked_at > now() - $2::int * interval '1 second' "                                                \
      "AND s.revoked_at IS NULL AND s.expires_at > now()")                                                        \
    /* A revoked token presented again: someone holds a stolen copy, so the whole family goes. */               \
    X(REFRESH_REUSE,                                                                                              \
      "UPDATE refresh_tokens SET revoked_at = coalesce(revoked_at, now()) WHERE family_id = "                     \
      "(SELECT family_id FROM refresh_tokens WHERE token_hash = $1 AND revoked_at IS NOT NULL)")                  \
    /* STACCATO_COMPAT=openmusic: a refresh that leaves the token valid. */                                     \
    X(REFRESH_CHECK,                                                                                              \
      "SELECT u.id, u.role, u.token_version FROM refresh_tokens t JOIN users u ON u.id = t.user_id "              \
      "WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND t.expires_at > now()")                                \
    X(REFRESH_REVOKE,                                                                                             \
      "UPDATE refresh_tokens SET revoked_at = now() WHERE token_hash = $1 AND revoked_at IS NULL RETURNING 1")
/* clang-format on */

/* POST /authentications[?cookie=1] {username, password} or {email, password}: 201 with an access and a refresh
 * token; wrong credentials 401 (an unknown or unverified address as a wrong password, after a password check
 * against a dummy hash), too many attempts 429 with Retry-After. The rate limits count the address as they count
 * a username. */
int sc_api_auth_login(sc_req *req);
/* PUT /authentications {refreshToken} (or the cookie): a new access token and refresh token; the old one is used
 * up, except that within STACCATO_REFRESH_GRACE_S of its rotation, while its successor is unused, it gets that
 * same successor again (two tabs refreshing at once). With STACCATO_COMPAT=openmusic the refresh token stays valid
 * and comes back as it was (OpenMusic clients keep their first one). */
int sc_api_auth_refresh(sc_req *req);
/* DELETE /authentications {refreshToken} (or the cookie): revokes the refresh token. */
int sc_api_auth_logout(sc_req *req);

#endif
