/* JWT (HS256): a vector made by another implementation, round trips, and every way a token must be refused. */
#include <mbedtls/md.h>
#include <string.h>

#include "auth/jwt.h"
#include "check.h"
#include "core/base64.h"

static const char key[] = "0123456789abcdef0123456789abcdef";
/* Made with Python's hmac/hashlib:
 * {"sub":"user-abc","role":"artist","typ":"access","iat":1700000000,"exp":1700003600}. */
static const char vector[] = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
                             "eyJzdWIiOiJ1c2VyLWFiYyIsInJvbGUiOiJhcnRpc3QiLCJ0eXAiOiJhY2Nlc3MiLCJpYXQiOjE3"
                             "MDAwMDAwMDAsImV4cCI6MTcwMDAwMzYwMH0.7Xlerd24Plkgp-TuwVurYSLToGZSEWn_XPeFMce__vY";

static int verify(const char *tok, int64_t now, const char *typ, sc_jwt_claims *c)
{
    return sc_jwt_verify(tok, strlen(tok), key, strlen(key), now, 30, typ, c);
}

/* Builds header.payload.signature from JSON texts, signing with k (NULL: signature "sig" left as given). */
static void forge(sc_buf *out, const char *header, const char *payload, const char *sig_b64)
{
    out->len = 0;
    sc_base64url_encode(out, header, strlen(header));
    sc_buf_append_char(out, '.');
    sc_base64url_encode(out, payload, strlen(payload));
    sc_buf_append_char(out, '.');
    sc_buf_append_str(out, sig_b64);
    sc_buf_append_char(out, '\0');
}

int main(void)
{
    sc_jwt_claims c;
    CHECK_EQ_INT(verify(vector, 1700000100, "access", &c), 0);
    CHECK_EQ_STR(c.sub, "user-abc");
    CHECK_EQ_STR(c.role, "artist");
    CHECK(c.exp == 1700003600 && c.iat == 1700000000);
    CHECK_EQ_INT(verify(vector, 1700000100, "refresh", &c), SC_JWT_E_WRONG_TYPE);
    CHECK_EQ_INT(verify(vector, 1700003600 + 31, "access", &c), SC_JWT_E_EXPIRED);
    CHECK_EQ_INT(verify(vector, 1700003600 + 30, "access", &c), 0); /* within the leeway */
    CHECK_EQ_INT(verify(vector, 1700000000 - 31, "access", &c), SC_JWT_E_NOT_YET_VALID);

    /* Our own tokens verify, and the same bytes with another key do not. */
    sc_jwt_claims in = {.iat = 1000, .exp = 2000, .nbf = 1500};
    snprintf(in.sub, sizeof(in.sub), "user-1");
    snprintf(in.typ, sizeof(in.typ), "refresh");
    snprintf(in.fam, sizeof(in.fam), "fam-x");
    snprintf(in.jti, sizeof(in.jti), "rt-y");
    sc_buf tok = {0};
    sc_jwt_sign(&in, key, strlen(key), &tok);
    sc_buf_append_char(&tok, '\0');
    CHECK_EQ_INT(verify(tok.ptr, 1600, "refresh", &c), 0);
    CHECK_EQ_STR(c.fam, "fam-x");
    CHECK_EQ_STR(c.jti, "rt-y");
    CHECK_EQ_INT(verify(tok.ptr, 1400, "refresh", &c), SC_JWT_E_NOT_YET_VALID);
    CHECK_EQ_INT(sc_jwt_verify(tok.ptr, tok.len - 1, "other-key", 9, 1600, 0, NULL, &c), SC_JWT_E_BAD_SIGNATURE);

    /* Access tokens carry ver, also 0; refresh tokens do not; absent is 0 and a non-integer is malformed. */
    CHECK(c.ver == 0 && !strstr(tok.ptr, "ver"));
    sc_jwt_claims acc = {.iat = 1000, .exp = 2000, .ver = 7};
    snprintf(acc.sub, sizeof(acc.sub), "user-1");
    snprintf(acc.typ, sizeof(acc.typ), "access");
    tok.len = 0;
    sc_jwt_sign(&acc, key, strlen(key), &tok);
    sc_buf_append_char(&tok, '\0');
    CHECK_EQ_INT(verify(tok.ptr, 1600, "access", &c), 0);
    CHECK(c.ver == 7);
    CHECK_EQ_INT(verify(vector, 1700000100, "access", &c), 0);
    CHECK(c.ver == 0);

    /* Every single-byte change anywhere is refused. */
    size_t n = strlen(vector);
    char copy[1024];
    int accepted = 0;
    for (size_t i = 0; i < n; i++) {
        memcpy(copy, vector, n + 1);
        copy[i] = copy[i] == 'A' ? 'B' : 'A';
        accepted += verify(copy, 1700000100, "access", &c) == 0;
    }
    CHECK_EQ_INT(accepted, 0);

    /* Algorithms other than HS256 never reach the signature check. */
    sc_buf f = {0};
    const char *payload = "{\"sub\":\"u\",\"typ\":\"access\",\"exp\":9999999999}";
    forge(&f, "{\"alg\":\"none\",\"typ\":\"JWT\"}", payload, "");
    CHECK_EQ_INT(verify(f.ptr, 1, "access", &c), SC_JWT_E_BAD_ALG);
    forge(&f, "{\"alg\":\"HS512\"}", payload, "AAAA");
    CHECK_EQ_INT(verify(f.ptr, 1, "access", &c), SC_JWT_E_BAD_ALG);
    forge(&f, "{\"alg\":\"HS256\",\"crit\":[\"x\"]}", payload, "AAAA");
    CHECK_EQ_INT(verify(f.ptr, 1, "access", &c), SC_JWT_E_BAD_ALG);
    forge(&f, "{\"typ\":\"JWT\"}", payload, "AAAA");
    CHECK_EQ_INT(verify(f.ptr, 1, "access", &c), SC_JWT_E_BAD_ALG);
    forge(&f, "{\"alg\":\"HS256\",\"alg\":\"none\"}", payload, "AAAA");
    CHECK_EQ_INT(verify(f.ptr, 1, "access", &c), SC_JWT_E_MALFORMED); /* duplicate keys */
    static const char ver_text[] = "{\"sub\":\"u\",\"typ\":\"access\",\"exp\":9999999999,\"ver\":\"1\"}";
    unsigned char mac[32];
    sc_buf signing = {0};
    forge(&signing, "{\"alg\":\"HS256\"}", ver_text, "");
    mbedtls_md_hmac(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), (const unsigned char *)key, strlen(key),
                    (const unsigned char *)signing.ptr, signing.len - 2, mac);
    signing.len--; /* the NUL */
    sc_base64url_encode(&signing, mac, sizeof(mac));
    sc_buf_append_char(&signing, '\0');
    CHECK_EQ_INT(verify(signing.ptr, 1, "access", &c), SC_JWT_E_MALFORMED); /* ver as a string */
    sc_buf_free(&signing);

    /* Shapes that are not tokens. */
    const char *bad[] = {"", ".", "..", "a.b", "a.b.c.d", "eyJ9.e30.", "!!!.e30.AAAA", vector + 1};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CHECK(verify(bad[i], 1700000100, "access", &c) != 0);
    char big[SC_JWT_MAX_LEN + 2];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    CHECK_EQ_INT(verify(big, 1, NULL, &c), SC_JWT_E_MALFORMED);

    /* base64url: canonical only. */
    unsigned char out[8];
    CHECK_EQ_INT((int)sc_base64url_decode("QQ", 2, out), 1);
    CHECK_EQ_INT((int)sc_base64url_decode("QR", 2, out), -1); /* leftover bits set */
    CHECK_EQ_INT((int)sc_base64url_decode("Q", 1, out), -1);
    CHECK_EQ_INT((int)sc_base64url_decode("QQ==", 4, out), -1);

    sc_buf_free(&tok);
    sc_buf_free(&f);
    return check_report();
}
