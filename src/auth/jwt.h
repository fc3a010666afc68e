/* JSON Web Tokens signed with HMAC-SHA256 (RFC 7519, RFC 7515), on mbedTLS's HMAC.
 *
 * Only HS256 is accepted: a token whose header names any other algorithm (including "none") is rejected before
 * its signature is looked at, and the signature is compared in constant time. The claims this server uses are
 * parsed into a fixed struct; `typ` tells access and refresh tokens apart, so a token of one kind can never pass
 * for the other even if the two keys were configured alike.
 *
 * Wire format: base64url(header) "." base64url(payload) "." base64url(HMAC-SHA256(key, first two parts)). */
#ifndef SC_AUTH_JWT_H
#define SC_AUTH_JWT_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/error.h"

/* Why a token was refused: sc_jwt_verify returns 0 or one of these (docs/internals/errors.md, convention 1). */
#define SC_JWT_ERRORS(X)                                                                                          \
    X(SC_JWT_E_MALFORMED, -1, "malformed token")                                                                  \
    X(SC_JWT_E_BAD_ALG, -2, "unsupported token algorithm")                                                        \
    X(SC_JWT_E_BAD_SIGNATURE, -3, "invalid token signature")                                                      \
    X(SC_JWT_E_EXPIRED, -4, "token expired")                                                                      \
    X(SC_JWT_E_NOT_YET_VALID, -5, "token not yet valid")                                                          \
    X(SC_JWT_E_WRONG_TYPE, -6, "wrong kind of token")

enum { SC_JWT_ERRORS(SC_ERROR_ENUM) };

/* The message of an SC_JWT_E_* code ("ok" for 0). */
const char *sc_jwt_strerror(int err);

typedef struct sc_jwt_claims {
    char sub[64];          /* user id */
    char role[16];         /* access tokens */
    char typ[16];          /* "access" or "refresh" */
    char fam[64];          /* refresh tokens: the rotation family */
    char jti[64];          /* token id */
    int64_t iat, exp, nbf; /* nbf 0: absent */
    int64_t ver;           /* access tokens: the account's token version when issued (absent: 0) */
} sc_jwt_claims;

#define SC_JWT_MAX_LEN 4096

/* Appends a signed token for the claims (empty strings and a zero nbf are left out; ver is written for access
 * tokens only). */
void sc_jwt_sign(const sc_jwt_claims *claims, const void *key, size_t keylen, sc_buf *out);

/* Verifies token (len bytes, not NUL-terminated) and fills *out. Checks algorithm, signature, exp and nbf/iat
 * against now (Unix seconds) with leeway seconds of clock skew, and that typ equals want_typ (when not NULL).
 * Returns 0 or a negative SC_JWT_E_* code. */
int sc_jwt_verify(const char *token, size_t len, const void *key, size_t keylen, int64_t now, int64_t leeway,
                  const char *want_typ, sc_jwt_claims *out);

#endif
