#include "auth/jwt.h"

#include <jansson.h>
#include <mbedtls/md.h>
#include <string.h>

#include "core/base64.h"
#include "json/write.h"

/* base64url of {"alg":"HS256","typ":"JWT"} */
static const char header_b64[] = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";

SC_ERROR_STRERROR(sc_jwt_strerror, SC_JWT_ERRORS, "unknown token error")

static void hmac(const void *key, size_t keylen, const char *data, size_t n, unsigned char mac[32])
{
    mbedtls_md_hmac(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), key, keylen, (const unsigned char *)data, n,
                    mac);
}

static void claim_str(sc_jw *w, const char *key, const char *value)
{
    if (*value) {
        sc_jw_key(w, key);
        sc_jw_cstr(w, value);
    }
}

void sc_jwt_sign(const sc_jwt_claims *c, const void *key, size_t keylen, sc_buf *out)
{
    sc_buf payload = {0};
    sc_jw w;
    sc_jw_init(&w, &payload);
    sc_jw_obj_begin(&w);
    claim_str(&w, "sub", c->sub);
    claim_str(&w, "role", c->role);
    claim_str(&w, "typ", c->typ);
    claim_str(&w, "fam", c->fam);
    claim_str(&w, "jti", c->jti);
    sc_jw_key(&w, "iat");
    sc_jw_int(&w, c->iat);
    sc_jw_key(&w, "exp");
    sc_jw_int(&w, c->exp);
    if (c->nbf) {
        sc_jw_key(&w, "nbf");
        sc_jw_int(&w, c->nbf);
    }
    if (strcmp(c->typ, "access") == 0) {
        sc_jw_key(&w, "ver");
        sc_jw_int(&w, c->ver);
    }
    sc_jw_obj_end(&w);
    size_t start = out->len;
    sc_buf_append(out, header_b64, sizeof(header_b64) - 1);
    sc_buf_append_char(out, '.');
    sc_base64url_encode(out, payload.ptr, payload.len);
    sc_buf_free(&payload);
    unsigned char mac[32];
    hmac(key, keylen, out->ptr + start, out->len - start, mac);
    sc_buf_append_char(out, '.');
    sc_base64url_encode(out, mac, sizeof(mac));
}

/* Decodes one base64url part and parses it as a JSON object. */
static json_t *decode_json(const char *p, size_t n)
{
    unsigned char buf[SC_JWT_MAX_LEN];
    long len = sc_base64url_decode(p, n, buf);
    if (len <= 0)
        return NULL;
    json_t *j = json_loadb((const char *)buf, (size_t)len, JSON_REJECT_DUPLICATES, NULL);
    if (j && !json_is_object(j)) {
        json_decref(j);
        return NULL;
    }
    return j;
}

/* Copies a string claim; absent is fine (empty), a wrong type or an oversized value is not. */
static int get_str(json_t *obj, const char *key, char *out, size_t outlen)
{
    json_t *v = json_object_get(obj, key);
    out[0] = '\0';
    if (!v)
        return 0;
    if (!json_is_string(v) || json_string_length(v) >= outlen ||
        strlen(json_string_value(v)) != json_string_length(v))
        return -1;
    memcpy(out, json_string_value(v), json_string_length(v) + 1);
    return 0;
}

static int get_int(json_t *obj, const char *key, int64_t *out, int required)
{
    json_t *v = json_object_get(obj, key);
    *out = 0;
    if (!v)
        return required ? -1 : 0;
    if (!json_is_integer(v))
        return -1;
    *out = (int64_t)json_integer_value(v);
    return 0;
}

static int constant_time_differs(const unsigned char *a, const unsigned char *b, size_t n)
{
    unsigned char diff = 0;
    for (size_t i = 0; i < n; i++)
        diff |= a[i] ^ b[i];
    return diff != 0;
}

int sc_jwt_verify(const char *token, size_t len, const void *key, size_t keylen, int64_t now, int64_t leeway,
                  const char *want_typ, sc_jwt_claims *out)
{
    memset(out, 0, sizeof(*out));
    if (len == 0 || len > SC_JWT_MAX_LEN)
        return SC_JWT_E_MALFORMED;
    const char *dot1 = memchr(token, '.', len);
    if (!dot1)
        return SC_JWT_E_MALFORMED;
    const char *dot2 = memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token));
    if (!dot2 || memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token)))
        return SC_JWT_E_MALFORMED;
    size_t hlen = (size_t)(dot1 - token), plen = (size_t)(dot2 - dot1 - 1),
           slen = len - (size_t)(dot2 + 1 - token);
    if (hlen == 0 || plen == 0)
        return SC_JWT_E_MALFORMED;

    json_t *header = decode_json(token, hlen);
    if (!header)
        return SC_JWT_E_MALFORMED;
    json_t *alg = json_object_get(header, "alg"), *typ = json_object_get(header, "typ");
    int alg_ok = json_is_string(alg) && strcmp(json_string_value(alg), "HS256") == 0 &&
                 (!typ || (json_is_string(typ) && strcmp(json_string_value(typ), "JWT") == 0)) &&
                 !json_object_get(header, "crit");
    json_decref(header);
    if (!alg_ok)
        return SC_JWT_E_BAD_ALG;

    unsigned char sig[64], mac[32];
    if (slen != 43 || sc_base64url_decode(dot2 + 1, slen, sig) != 32)
        return SC_JWT_E_BAD_SIGNATURE;
    hmac(key, keylen, token, (size_t)(dot2 - token), mac);
    if (constant_time_differs(sig, mac, sizeof(mac)))
        return SC_JWT_E_BAD_SIGNATURE;

    json_t *payload = decode_json(dot1 + 1, plen);
    if (!payload)
        return SC_JWT_E_MALFORMED;
    int bad = get_str(payload, "sub", out->sub, sizeof(out->sub)) |
              get_str(payload, "role", out->role, sizeof(out->role)) |
              get_str(payload, "typ", out->typ, sizeof(out->typ)) |
              get_str(payload, "fam", out->fam, sizeof(out->fam)) |
              get_str(payload, "jti", out->jti, sizeof(out->jti)) | get_int(payload, "exp", &out->exp, 1) |
              get_int(payload, "iat", &out->iat, 0) | get_int(payload, "nbf", &out->nbf, 0) |
              get_int(payload, "ver", &out->ver, 0);
    json_decref(payload);
    if (bad || !out->sub[0])
        return SC_JWT_E_MALFORMED;
    if (want_typ && strcmp(out->typ, want_typ) != 0)
        return SC_JWT_E_WRONG_TYPE;
    if (now > out->exp + leeway)
        return SC_JWT_E_EXPIRED;
    if ((out->nbf && now + leeway < out->nbf) || (out->iat && now + leeway < out->iat))
        return SC_JWT_E_NOT_YET_VALID;
    return 0;
}
