/* Authentication for handlers (api/auth.h): the signing keys, reading and checking the caller's token, and
 * issuing access and refresh tokens. */
#include "api/auth.h"

#include "api/token_versions.h"

#include <mbedtls/gcm.h>
#include <mbedtls/md.h>
#include <mbedtls/sha256.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/jwt.h"
#include "core/base64.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/random.h"
#include "http/method.h"

static char *access_key, *refresh_key;
static size_t access_key_len, refresh_key_len;
/* Origins whose cookie-authenticated unsafe requests pass (STACCATO_COOKIE_ORIGINS and the explicit
 * STACCATO_CORS_ORIGINS), and the CORS policy. */
static sc_origin_list trusted_origins;
static sc_cors_policy cors;
static bool samesite_none;

/* Request headers a page on another origin may send: credentials, JSON bodies and uploads, ranges of a stream,
 * revalidation. */
static const char cors_allow_headers[] = "Authorization, Content-Type, Range, If-Range, If-None-Match";
/* Response headers such a page may read beyond the always readable ones: paging totals, where an answer came from,
 * when to retry, what a range answer holds and validators. */
static const char cors_expose_headers[] =
    "X-Total-Count, X-Data-Source, Retry-After, Content-Range, Accept-Ranges, ETag, Content-Length";

/* Parses the CORS and trusted origins of the settings. */
static int origins_init(const sc_settings *st, char *err, size_t errlen)
{
    bool own = *st->cors_origins != '\0';
    const char *text = own ? st->cors_origins : st->backend_cors_origins;
    if (sc_origin_list_parse(text, true, own ? "STACCATO_CORS_ORIGINS" : "BACKEND_CORS_ORIGINS", &cors.origins,
                             err, errlen) != 0)
        return -1;
    cors.max_age = st->cors_max_age;
    cors.allow_headers = cors_allow_headers;
    cors.expose_headers = cors_expose_headers;
    sc_buf both = {0};
    sc_buf_printf(&both, "%s,%s", st->cookie_origins, cors.origins.any ? "" : text);
    int rc = sc_origin_list_parse(both.ptr, false, "STACCATO_COOKIE_ORIGINS", &trusted_origins, err, errlen);
    sc_buf_free(&both);
    if (rc != 0)
        return -1;
    samesite_none = strcmp(st->cookie_samesite, "none") == 0;
    if (samesite_none && cors.origins.n == 0) {
        snprintf(err, errlen,
                 "STACCATO_COOKIE_SAMESITE=none needs STACCATO_CORS_ORIGINS (explicit origins, not '*')");
        return -1;
    }
    return 0;
}

const sc_cors_policy *sc_api_cors_policy(void) { return &cors; }
const char *sc_api_cookie_samesite(void) { return samesite_none ? "None" : "Lax"; }

static char *make_key(const char *configured, const char *name, size_t *len)
{
    if (*configured) {
        *len = strlen(configured);
        return sc_strdup(configured);
    }
    sc_log_warn("%s is not set: using a random key, so tokens will not survive a restart", name);
    unsigned char raw[32];
    sc_random_bytes(raw, sizeof(raw));
    sc_buf b = {0};
    sc_base64url_encode(&b, raw, sizeof(raw));
    sc_buf_append_char(&b, '\0');
    *len = b.len - 1;
    return b.ptr;
}

int sc_api_auth_init(const sc_settings *st, char *err, size_t errlen)
{
    if (*st->access_token_key && strcmp(st->access_token_key, st->refresh_token_key) == 0) {
        snprintf(err, errlen, "ACCESS_TOKEN_KEY and REFRESH_TOKEN_KEY must differ");
        return -1;
    }
    /* HS256 with a key shorter than its 32-byte output can be brute-forced offline from one token: refused. */
    if (*st->access_token_key && strlen(st->access_token_key) < 32) {
        snprintf(err, errlen, "ACCESS_TOKEN_KEY must be at least 32 bytes (it is %zu)",
                 strlen(st->access_token_key));
        return -1;
    }
    if (*st->refresh_token_key && strlen(st->refresh_token_key) < 32) {
        snprintf(err, errlen, "REFRESH_TOKEN_KEY must be at least 32 bytes (it is %zu)",
                 strlen(st->refresh_token_key));
        return -1;
    }
    sc_api_auth_shutdown();
    if (origins_init(st, err, errlen) != 0) {
        sc_api_auth_shutdown();
        return -1;
    }
    access_key = make_key(st->access_token_key, "ACCESS_TOKEN_KEY", &access_key_len);
    refresh_key = make_key(st->refresh_token_key, "REFRESH_TOKEN_KEY", &refresh_key_len);
    return 0;
}

void sc_api_auth_shutdown(void)
{
    free(access_key);
    free(refresh_key);
    access_key = refresh_key = NULL;
    sc_origin_list_free(&cors.origins);
    sc_origin_list_free(&trusted_origins);
    samesite_none = false;
}

const char *sc_api_auth_refresh_key(size_t *len)
{
    *len = refresh_key_len;
    return refresh_key;
}

void sc_api_auth_url_mac(const void *data, size_t len, unsigned char mac[32])
{
    static const char label[] = "staccato signed URL v1";
    const mbedtls_md_info_t *sha256 = mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);
    unsigned char key[32];
    mbedtls_md_hmac(sha256, (const unsigned char *)access_key, access_key_len, (const unsigned char *)label,
                    sizeof(label) - 1, key);
    mbedtls_md_hmac(sha256, key, sizeof(key), data, len, mac);
}

sc_slice sc_api_auth_cookie(const sc_req *req, const char *name)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i < req->nheaders; i++) {
        if (!sc_slice_eq_nocase(req->headers[i].name, SC_SLICE_LIT("cookie")))
            continue;
        sc_slice rest = req->headers[i].value;
        while (rest.len) {
            long semi = sc_slice_find(rest, ';');
            sc_slice pair = sc_slice_trim((sc_slice){rest.ptr, semi < 0 ? rest.len : (size_t)semi});
            rest = semi < 0 ? SC_SLICE_NULL : (sc_slice){rest.ptr + semi + 1, rest.len - (size_t)semi - 1};
            if (pair.len > nl && pair.ptr[nl] == '=' && memcmp(pair.ptr, name, nl) == 0)
                return (sc_slice){pair.ptr + nl + 1, pair.len - nl - 1};
        }
    }
    return SC_SLICE_NULL;
}

static int unauthorized(sc_req *req, const char *message)
{
    sc_res_header(req, "WWW-Authenticate", SC_SLICE_LIT("Bearer realm=\"staccato\""));
    return sc_res_error(req, 401, message);
}

int sc_api_auth_forbidden(sc_req *req, const char *message)
{
    return sc_res_error(req, 403, message ? message : "you are not allowed to do this");
}

/* The host part of an origin or a Host header: "https://a.example:8443" and "a.example:8443" both give
 * "a.example:8443". */
static sc_slice origin_host(sc_slice s)
{
    static const char sep[] = "://";
    for (size_t i = 0; i + 3 <= s.len; i++)
        if (memcmp(s.ptr + i, sep, 3) == 0)
            return (sc_slice){s.ptr + i + 3, s.len - i - 3};
    return s;
}

/* Cookies ride along on cross-site requests, so a cookie-authenticated request that changes something must come
 * from our own origin (or one configured as trusted). SameSite=Lax stops most of it; this stops the rest, and with
 * SameSite=None (STACCATO_COOKIE_SAMESITE) it is what stops all of it. */
bool sc_api_auth_same_origin(sc_req *req)
{
    unsigned unsafe = SC_M_POST | SC_M_PUT | SC_M_PATCH | SC_M_DELETE;
    if (!(req->method & unsafe))
        return true;
    sc_slice origin = sc_req_header(req, "origin");
    if (!origin.ptr) {
        sc_slice site = sc_req_header(req, "sec-fetch-site");
        return site.ptr &&
               (sc_slice_eq(site, SC_SLICE_LIT("same-origin")) || sc_slice_eq(site, SC_SLICE_LIT("none")));
    }
    sc_slice host = sc_req_header(req, "host");
    if (host.ptr && sc_slice_eq_nocase(origin_host(origin), host))
        return true;
    return sc_origin_list_contains(&trusted_origins, origin);
}

static int authenticate(sc_req *req, sc_api_principal **out, bool required)
{
    const sc_app *app = sc_api_app(req);
    *out = NULL;
    sc_slice token = SC_SLICE_NULL;
    bool cookie = false;
    sc_slice authz = sc_req_header(req, "authorization");
    if (authz.ptr) {
        if (authz.len < 7 || strncasecmp(authz.ptr, "Bearer ", 7) != 0)
            return unauthorized(req, "use a bearer token");
        token = sc_slice_trim((sc_slice){authz.ptr + 7, authz.len - 7});
    } else {
        token = sc_api_auth_cookie(req, SC_API_ACCESS_COOKIE);
        cookie = token.ptr != NULL;
    }
    if (!token.ptr)
        return required ? unauthorized(req, "missing authentication") : 0;
    sc_jwt_claims claims;
    int rc = sc_jwt_verify(token.ptr, token.len, access_key, access_key_len, (int64_t)time(NULL),
                           (int64_t)app->settings->token_leeway_s, "access", &claims);
    if (rc != 0)
        return unauthorized(req, sc_jwt_strerror(rc));
    /* Signature and expiry say the token was issued; the table says whether the account has since lost rights
     * (a lower role, a new password) or gone. Every gate and every handler that authenticates itself comes here,
     * so no route trusts a role the account no longer has. */
    if (!sc_token_versions_current(app->tokens, claims.sub, claims.ver))
        return unauthorized(req, "token revoked");
    if (cookie && !sc_api_auth_same_origin(req))
        return sc_api_auth_forbidden(req, "cross-origin request with cookie credentials");
    sc_api_principal *p = sc_arena_alloc(req->arena, sizeof(*p));
    snprintf(p->id, sizeof(p->id), "%s", claims.sub);
    snprintf(p->role, sizeof(p->role), "%s", claims.role[0] ? claims.role : "user");
    p->via_cookie = cookie;
    *out = p;
    return 0;
}

int sc_api_auth_require(sc_req *req, sc_api_principal **out) { return authenticate(req, out, true); }
int sc_api_auth_optional(sc_req *req, sc_api_principal **out) { return authenticate(req, out, false); }

int sc_api_auth_admin(sc_req *req, sc_api_principal **out)
{
    int st = sc_api_auth_require(req, out);
    if (st)
        return st;
    return sc_api_auth_is(*out, "admin") ? 0 : sc_api_auth_forbidden(req, "admins only");
}

/* A gate: the authentication call, and on success its principal (NULL: anonymous) left for the handler. */
static int gate(sc_req *req, int (*authenticate_as)(sc_req *req, sc_api_principal **out))
{
    sc_api_principal *who;
    int st = authenticate_as(req, &who);
    if (!st)
        req->principal = who;
    return st;
}

int sc_api_gate_optional(sc_req *req) { return gate(req, sc_api_auth_optional); }
int sc_api_gate_user(sc_req *req) { return gate(req, sc_api_auth_require); }
int sc_api_gate_admin(sc_req *req) { return gate(req, sc_api_auth_admin); }

const char *sc_api_auth_admin_flag(const sc_api_principal *p)
{
    return sc_api_auth_is(p, "admin") ? "true" : "false";
}

bool sc_api_auth_is(const sc_api_principal *p, const char *role)
{
    return p && (strcmp(p->role, "admin") == 0 || strcmp(p->role, role) == 0);
}

void sc_api_auth_access_token(const sc_app *app, const char *user_id, const char *role, int64_t version,
                              sc_buf *out)
{
    sc_jwt_claims c = {0};
    snprintf(c.sub, sizeof(c.sub), "%s", user_id);
    snprintf(c.role, sizeof(c.role), "%s", role);
    snprintf(c.typ, sizeof(c.typ), "access");
    c.ver = version;
    c.iat = (int64_t)time(NULL);
    c.exp = c.iat + (int64_t)app->settings->access_token_age;
    sc_jwt_sign(&c, access_key, access_key_len, out);
}

void sc_api_auth_token_hash(sc_slice token, char hash[65])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char d[32];
    mbedtls_sha256_ret((const unsigned char *)token.ptr, token.len, d, 0);
    for (int i = 0; i < 32; i++) {
        hash[2 * i] = hex[d[i] >> 4];
        hash[2 * i + 1] = hex[d[i] & 15];
    }
    hash[64] = '\0';
}

void sc_api_auth_refresh_token(const sc_app *app, const char *user_id, const char *fam, sc_buf *out, char hash[65],
                               char family[64])
{
    sc_jwt_claims c = {0};
    snprintf(c.sub, sizeof(c.sub), "%s", user_id);
    snprintf(c.typ, sizeof(c.typ), "refresh");
    if (fam)
        snprintf(c.fam, sizeof(c.fam), "%s", fam);
    else
        sc_random_id("fam", c.fam, sizeof(c.fam));
    sc_random_id("rt", c.jti, sizeof(c.jti));
    c.iat = (int64_t)time(NULL);
    c.exp = c.iat + (int64_t)app->settings->refresh_token_age;
    size_t start = out->len;
    sc_jwt_sign(&c, refresh_key, refresh_key_len, out);
    sc_api_auth_token_hash((sc_slice){out->ptr + start, out->len - start}, hash);
    memcpy(family, c.fam, 64);
}

/* The sealing key of one rotated token: HMAC-SHA256 under REFRESH_TOKEN_KEY of a label and the token. */
static void successor_key(sc_slice old, unsigned char key[32])
{
    static const char label[] = "staccato refresh successor v1:";
    const mbedtls_md_info_t *sha256 = mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);
    mbedtls_md_context_t md;
    mbedtls_md_init(&md);
    mbedtls_md_setup(&md, sha256, 1);
    mbedtls_md_hmac_starts(&md, (const unsigned char *)refresh_key, refresh_key_len);
    mbedtls_md_hmac_update(&md, (const unsigned char *)label, sizeof(label) - 1);
    mbedtls_md_hmac_update(&md, (const unsigned char *)old.ptr, old.len);
    mbedtls_md_hmac_finish(&md, key);
    mbedtls_md_free(&md);
}

#define SEAL_NONCE 12
#define SEAL_TAG 16

void sc_api_auth_seal_successor(sc_slice old, sc_slice successor, sc_buf *out)
{
    unsigned char key[32];
    successor_key(old, key);
    size_t n = SEAL_NONCE + successor.len + SEAL_TAG;
    unsigned char *raw = sc_alloc(n);
    sc_random_bytes(raw, SEAL_NONCE);
    mbedtls_gcm_context gcm;
    mbedtls_gcm_init(&gcm);
    if (mbedtls_gcm_setkey(&gcm, MBEDTLS_CIPHER_ID_AES, key, 256) != 0 ||
        mbedtls_gcm_crypt_and_tag(&gcm, MBEDTLS_GCM_ENCRYPT, successor.len, raw, SEAL_NONCE, NULL, 0,
                                  (const unsigned char *)successor.ptr, raw + SEAL_NONCE, SEAL_TAG,
                                  raw + SEAL_NONCE + successor.len) != 0)
        sc_log_error("sealing a refresh token failed");
    else
        sc_base64url_encode(out, raw, n);
    mbedtls_gcm_free(&gcm);
    free(raw);
}

int sc_api_auth_open_successor(sc_slice old, sc_slice sealed, sc_buf *out)
{
    unsigned char raw[SEAL_NONCE + SC_JWT_MAX_LEN + SEAL_TAG + 3];
    if (sealed.len > (sizeof(raw) - 3) / 3 * 4)
        return -1;
    long n = sc_base64url_decode(sealed.ptr, sealed.len, raw);
    if (n <= SEAL_NONCE + SEAL_TAG)
        return -1;
    size_t len = (size_t)n - SEAL_NONCE - SEAL_TAG;
    unsigned char key[32];
    successor_key(old, key);
    unsigned char *plain = sc_alloc(len);
    mbedtls_gcm_context gcm;
    mbedtls_gcm_init(&gcm);
    int rc = mbedtls_gcm_setkey(&gcm, MBEDTLS_CIPHER_ID_AES, key, 256) != 0 ||
                     mbedtls_gcm_auth_decrypt(&gcm, len, raw, SEAL_NONCE, NULL, 0, raw + SEAL_NONCE + len,
                                              SEAL_TAG, raw + SEAL_NONCE, plain) != 0
                 ? -1
                 : 0;
    mbedtls_gcm_free(&gcm);
    if (rc == 0)
        sc_buf_append(out, plain, len);
    free(plain);
    return rc;
}
