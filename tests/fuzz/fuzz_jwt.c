/* libFuzzer driver: token verification.
 *
 * The first byte chooses how the rest is used:
 * - even: the rest is a token as a client would send it (signature, header and shape checks);
 * - odd: the rest is "<header JSON>\0<payload JSON>"; the driver encodes and signs both parts with the key, so the
 *   claims parser behind the signature check is reached too (a fuzzer cannot forge an HMAC).
 *
 * Invariants beyond memory safety: only a token that verifies carries claims (a non-empty, terminated sub); the
 * claims of a verified token, signed again, verify to the same claims; a verified token does not verify under
 * another key or with any byte of its signature changed. */
#include <mbedtls/md.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/jwt.h"
#include "core/base64.h"

static const char key[] = "fuzz-key-fuzz-key-fuzz-key-fuzz!";
static const int64_t now = 1700000000;

/* token = base64url(header) "." base64url(payload) "." base64url(HMAC-SHA256(key, the first two)). */
static void sign_parts(const uint8_t *h, size_t hn, const uint8_t *p, size_t pn, sc_buf *out)
{
    sc_base64url_encode(out, h, hn);
    sc_buf_append_char(out, '.');
    sc_base64url_encode(out, p, pn);
    unsigned char mac[32];
    mbedtls_md_hmac(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), (const unsigned char *)key, sizeof(key) - 1,
                    (const unsigned char *)out->ptr, out->len, mac);
    sc_buf_append_char(out, '.');
    sc_base64url_encode(out, mac, sizeof(mac));
}

static int same_claims(const sc_jwt_claims *a, const sc_jwt_claims *b)
{
    return !strcmp(a->sub, b->sub) && !strcmp(a->role, b->role) && !strcmp(a->typ, b->typ) &&
           !strcmp(a->fam, b->fam) && !strcmp(a->jti, b->jti) && a->iat == b->iat && a->exp == b->exp &&
           a->nbf == b->nbf && (a->ver == b->ver || strcmp(a->typ, "access") != 0);
}

static void check_verified(const char *tok, size_t n, const sc_jwt_claims *c)
{
    if (!c->sub[0] || memchr(c->sub, '\0', sizeof(c->sub)) == NULL)
        abort();
    sc_jwt_claims other;
    static const char key2[] = "fuzz-key-fuzz-key-fuzz-key-fuzz?";
    if (sc_jwt_verify(tok, n, key2, sizeof(key2) - 1, now, 30, NULL, &other) == 0)
        abort();
    char copy[SC_JWT_MAX_LEN];
    memcpy(copy, tok, n);
    copy[n - 1] = copy[n - 1] == 'A' ? 'B' : 'A';
    if (sc_jwt_verify(copy, n, key, sizeof(key) - 1, now, 30, NULL, &other) == 0)
        abort();

    /* Re-signing the claims must give a token that verifies to the same claims. */
    sc_buf b = {0};
    sc_jwt_sign(c, key, sizeof(key) - 1, &b);
    sc_jwt_claims again;
    if (sc_jwt_verify(b.ptr, b.len, key, sizeof(key) - 1, now, 30, NULL, &again) != 0 || !same_claims(c, &again))
        abort();
    free(b.ptr);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    uint8_t mode = data[0];
    data++, size--;
    sc_buf tok = {0};
    if (mode & 1) {
        const uint8_t *nul = memchr(data, '\0', size);
        if (!nul)
            return 0;
        size_t hn = (size_t)(nul - data);
        sign_parts(data, hn, nul + 1, size - hn - 1, &tok);
    } else {
        sc_buf_append(&tok, data, size);
    }
    sc_jwt_claims c;
    const char *want = (mode & 2) ? ((mode & 4) ? "refresh" : "access") : NULL;
    int rc = sc_jwt_verify(tok.ptr ? tok.ptr : "", tok.len, key, sizeof(key) - 1, now, 30, want, &c);
    if (rc > 0 || rc < SC_JWT_E_WRONG_TYPE)
        abort();
    if (rc == 0)
        check_verified(tok.ptr, tok.len, &c);
    free(tok.ptr);
    return 0;
}
