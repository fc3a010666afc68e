/* The server's ECDSA key signing with Nettle (net/tls_key.c): every signature it makes verifies with mbedTLS
 * against the original public key, on P-256 and P-384, with SHA-256 and SHA-384 digests; the DER encoding's
 * edge cases (an integer with its top bit set gets a leading zero, a short integer has fewer bytes) are all met;
 * keys it does not take, or that do not match the certificate's key, are left as they were.
 *
 * The random generator is a fixed-seed ctr_drbg, so keys, digests and Nettle's nonces, and so the encodings met,
 * are the same on every run. */
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecp.h>
#include <mbedtls/pk.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "net/tls_key.h"

static mbedtls_ctr_drbg_context drbg;

static int fixed_entropy(void *p, unsigned char *out, size_t len)
{
    (void)p;
    for (size_t i = 0; i < len; i++)
        out[i] = (unsigned char)(i * 131 + 7);
    return 0;
}

static void gen_key(mbedtls_pk_context *pk, mbedtls_ecp_group_id curve)
{
    mbedtls_pk_init(pk);
    CHECK_EQ_INT(mbedtls_pk_setup(pk, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY)), 0);
    CHECK_EQ_INT(mbedtls_ecp_gen_key(curve, mbedtls_pk_ec(*pk), mbedtls_ctr_drbg_random, &drbg), 0);
}

/* A second, independent context holding the same private key (what loading the key file again gives). */
static void copy_key(mbedtls_pk_context *dst, mbedtls_pk_context *src)
{
    unsigned char der[512];
    int n = mbedtls_pk_write_key_der(src, der, sizeof(der));
    CHECK(n > 0);
    mbedtls_pk_init(dst);
    CHECK_EQ_INT(mbedtls_pk_parse_key(dst, der + sizeof(der) - n, (size_t)n, NULL, 0), 0);
}

typedef struct seen {
    unsigned padded, unpadded, short_int;
} seen;

/* Notes the encodings of the two INTEGERs of a DER ECDSA signature on a curve of `field` bytes. */
static void note_encoding(const unsigned char *sig, size_t len, size_t field, seen *s)
{
    if (!CHECK(len >= 8 && sig[0] == 0x30 && sig[1] == len - 2))
        return;
    size_t off = 2;
    for (int i = 0; i < 2; i++) {
        if (!CHECK(off + 2 <= len && sig[off] == 0x02))
            return;
        size_t n = sig[off + 1];
        const unsigned char *v = sig + off + 2;
        CHECK(n >= 1 && off + 2 + n <= len);
        CHECK(!(v[0] & 0x80));                            /* never negative */
        CHECK(n == 1 || v[0] != 0 || (v[1] & 0x80) != 0); /* minimal */
        if (n == field + 1)
            s->padded++;
        else if (n == field)
            s->unpadded++;
        else
            s->short_int++;
        off += 2 + n;
    }
    CHECK_EQ_INT(off, len);
}

/* count signatures; short_ints: whether the run must meet an integer shorter than the field (one in 128
 * signatures has one). */
static void signatures(mbedtls_ecp_group_id curve, const char *name, size_t field, int count, bool short_ints)
{
    mbedtls_pk_context orig, key;
    gen_key(&orig, curve);
    copy_key(&key, &orig);
    const char *what = NULL;
    if (!CHECK(sc_tls_key_use_nettle(&key, &orig, mbedtls_ctr_drbg_random, &drbg, &what)))
        goto out;
    CHECK_EQ_STR(what, name);
    CHECK_EQ_INT(mbedtls_pk_get_bitlen(&key), field * 8);
    CHECK(mbedtls_pk_can_do(&key, MBEDTLS_PK_ECDSA));
    CHECK(!mbedtls_pk_can_do(&key, MBEDTLS_PK_RSA));
    /* What mbedtls_pk_ec() gives is the same key. */
    CHECK_EQ_INT(mbedtls_ecp_check_pub_priv(mbedtls_pk_ec(orig), mbedtls_pk_ec(key)), 0);

    seen s = {0};
    int bad = 0;
    for (int i = 0; i < count; i++) {
        bool sha384 = i % 2;
        mbedtls_md_type_t md = sha384 ? MBEDTLS_MD_SHA384 : MBEDTLS_MD_SHA256;
        size_t hlen = sha384 ? 48 : 32;
        unsigned char hash[48], sig[MBEDTLS_PK_SIGNATURE_MAX_SIZE];
        size_t len = 0;
        mbedtls_ctr_drbg_random(&drbg, hash, hlen);
        if (!CHECK_EQ_INT(mbedtls_pk_sign(&key, md, hash, hlen, sig, &len, mbedtls_ctr_drbg_random, &drbg), 0))
            break;
        note_encoding(sig, len, field, &s);
        if (mbedtls_pk_verify(&orig, md, hash, hlen, sig, len) != 0 ||
            mbedtls_pk_verify(&key, md, hash, hlen, sig, len) != 0)
            bad++;
        hash[0] ^= 1; /* and it is a signature of that digest only */
        if (mbedtls_pk_verify(&orig, md, hash, hlen, sig, len) == 0)
            bad++;
    }
    if (!CHECK_EQ_INT(bad, 0))
        fprintf(stderr, "  %s: %d of %d signatures wrong\n", name, bad, count);
    CHECK(s.padded > 0);
    CHECK(s.unpadded > 0);
    if (short_ints)
        CHECK(s.short_int > 0);
    /* The signing function fails without a random generator rather than signing with a predictable nonce. */
    unsigned char hash[32] = {1}, sig[MBEDTLS_PK_SIGNATURE_MAX_SIZE];
    size_t len = 0;
    CHECK(mbedtls_pk_sign(&key, MBEDTLS_MD_SHA256, hash, 32, sig, &len, NULL, NULL) != 0);
out:
    mbedtls_pk_free(&orig);
    mbedtls_pk_free(&key);
}

/* A key that is not the certificate's, or on a curve Nettle does not sign for here, stays mbedTLS's. */
static void left_alone(void)
{
    mbedtls_pk_context a, b, p521;
    gen_key(&a, MBEDTLS_ECP_DP_SECP256R1);
    gen_key(&b, MBEDTLS_ECP_DP_SECP256R1);
    const mbedtls_pk_info_t *before = a.pk_info;
    CHECK(!sc_tls_key_use_nettle(&a, &b, mbedtls_ctr_drbg_random, &drbg, NULL));
    CHECK(a.pk_info == before);

    gen_key(&p521, MBEDTLS_ECP_DP_SECP521R1);
    before = p521.pk_info;
    CHECK(!sc_tls_key_use_nettle(&p521, &p521, mbedtls_ctr_drbg_random, &drbg, NULL));
    CHECK(p521.pk_info == before);
    unsigned char hash[32] = {2}, sig[MBEDTLS_PK_SIGNATURE_MAX_SIZE];
    size_t len = 0;
    CHECK_EQ_INT(mbedtls_pk_sign(&a, MBEDTLS_MD_SHA256, hash, 32, sig, &len, mbedtls_ctr_drbg_random, &drbg), 0);
    CHECK_EQ_INT(mbedtls_pk_verify(&a, MBEDTLS_MD_SHA256, hash, 32, sig, len), 0);
    mbedtls_pk_free(&a);
    mbedtls_pk_free(&b);
    mbedtls_pk_free(&p521);
}

int main(void)
{
    mbedtls_ctr_drbg_init(&drbg);
    CHECK_EQ_INT(mbedtls_ctr_drbg_seed(&drbg, fixed_entropy, NULL, NULL, 0), 0);
    signatures(MBEDTLS_ECP_DP_SECP256R1, "P-256", 32, 400, true);
    signatures(MBEDTLS_ECP_DP_SECP384R1, "P-384", 48, 100, false);
    left_alone();
    mbedtls_ctr_drbg_free(&drbg);
    return check_report();
}
