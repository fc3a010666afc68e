/* The server's ECDSA key signing with Nettle (net/tls_key.c): every signature it makes verifies with mbedTLS
 * against the original public key, on P-256 and P-384, with SHA-256 and SHA-384 digests, and is minimal DER; the
 * encoder on its edge cases (a leading zero before a top bit, short values, the largest P-384 signature, zeros);
 * nonces that differ even when the random generator repeats itself; keys it does not take, or that do not match
 * the certificate's key, are left as they were.
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

static int failing_rng(void *p, unsigned char *out, size_t len)
{
    (void)p, (void)out, (void)len;
    return MBEDTLS_ERR_CTR_DRBG_ENTROPY_SOURCE_FAILED;
}

/* Whether two DER signatures have the same r (their first INTEGER). */
static bool same_r(const unsigned char *a, size_t alen, const unsigned char *b, size_t blen)
{
    if (alen < 4 || blen < 4 || a[3] != b[3] || 4u + a[3] > alen || 4u + b[3] > blen)
        return false;
    return memcmp(a + 4, b + 4, a[3]) == 0;
}

/* Two processes that go on from one generator state (fork) sign different digests: the nonces still differ, as
 * they are derived from the digest too; so do those of one digest signed twice. Without a working generator
 * nothing is signed. */
static void nonces(mbedtls_pk_context *key, mbedtls_pk_context *pub)
{
    mbedtls_ctr_drbg_context a, b;
    mbedtls_ctr_drbg_init(&a);
    mbedtls_ctr_drbg_init(&b);
    CHECK_EQ_INT(mbedtls_ctr_drbg_seed(&a, fixed_entropy, NULL, (const unsigned char *)"fork", 4), 0);
    CHECK_EQ_INT(mbedtls_ctr_drbg_seed(&b, fixed_entropy, NULL, (const unsigned char *)"fork", 4), 0);
    unsigned char ha[32] = "digest of one client's handshake", hb[32] = "digest of another's handshake..";
    unsigned char sa[MBEDTLS_PK_SIGNATURE_MAX_SIZE], sb[MBEDTLS_PK_SIGNATURE_MAX_SIZE],
        sc[MBEDTLS_PK_SIGNATURE_MAX_SIZE];
    size_t la = 0, lb = 0, lc = 0;
    CHECK_EQ_INT(mbedtls_pk_sign(key, MBEDTLS_MD_SHA256, ha, 32, sa, &la, mbedtls_ctr_drbg_random, &a), 0);
    CHECK_EQ_INT(mbedtls_pk_sign(key, MBEDTLS_MD_SHA256, hb, 32, sb, &lb, mbedtls_ctr_drbg_random, &b), 0);
    CHECK_EQ_INT(mbedtls_pk_sign(key, MBEDTLS_MD_SHA256, ha, 32, sc, &lc, mbedtls_ctr_drbg_random, &a), 0);
    CHECK_EQ_INT(mbedtls_pk_verify(pub, MBEDTLS_MD_SHA256, ha, 32, sa, la), 0);
    CHECK_EQ_INT(mbedtls_pk_verify(pub, MBEDTLS_MD_SHA256, hb, 32, sb, lb), 0);
    CHECK_EQ_INT(mbedtls_pk_verify(pub, MBEDTLS_MD_SHA256, ha, 32, sc, lc), 0);
    CHECK(!same_r(sa, la, sb, lb));
    CHECK(!same_r(sa, la, sc, lc));
    mbedtls_ctr_drbg_free(&a);
    mbedtls_ctr_drbg_free(&b);

    la = 0;
    CHECK(mbedtls_pk_sign(key, MBEDTLS_MD_SHA256, ha, 32, sa, &la, failing_rng, NULL) != 0);
    CHECK(mbedtls_pk_sign(key, MBEDTLS_MD_SHA256, ha, 32, sa, &la, NULL, NULL) != 0);
    CHECK_EQ_INT(la, 0);
}

/* The encoding itself, on values picked for its edge cases. */
static void der(void)
{
    uint8_t out[160], big[48], top[48];
    memset(big, 0x7f, sizeof(big));
    memset(top, 0xff, sizeof(top));
    static const uint8_t one[] = {0x01}, high[] = {0x80}, lead0[] = {0x00, 0x00, 0x12, 0x34},
                         lead0hi[] = {0x00, 0x9a}, zero[] = {0x00, 0x00};
    /* short values; leading zero bytes dropped; a zero byte before a top bit */
    CHECK_EQ_INT(sc_tls_ecdsa_der(one, 1, high, 1, out, sizeof(out)), 9);
    CHECK(memcmp(out, "\x30\x07\x02\x01\x01\x02\x02\x00\x80", 9) == 0);
    CHECK_EQ_INT(sc_tls_ecdsa_der(lead0, sizeof(lead0), lead0hi, sizeof(lead0hi), out, sizeof(out)), 10);
    CHECK(memcmp(out, "\x30\x08\x02\x02\x12\x34\x02\x02\x00\x9a", 10) == 0);
    /* the largest P-384 signature: two 49-byte integers, 104 bytes */
    CHECK_EQ_INT(sc_tls_ecdsa_der(top, 48, top, 48, out, sizeof(out)), 104);
    CHECK(out[1] == 102 && out[3] == 49 && out[4] == 0 && out[5] == 0xff && out[53] == 0x02 && out[54] == 49 &&
          out[55] == 0);
    CHECK_EQ_INT(sc_tls_ecdsa_der(big, 48, top, 48, out, sizeof(out)), 103);
    CHECK(out[3] == 48 && out[4] == 0x7f);
    /* refused: a zero, no room, lengths beyond one byte */
    CHECK_EQ_INT(sc_tls_ecdsa_der(zero, sizeof(zero), one, 1, out, sizeof(out)), 0);
    CHECK_EQ_INT(sc_tls_ecdsa_der(one, 1, one, 0, out, sizeof(out)), 0);
    CHECK_EQ_INT(sc_tls_ecdsa_der(top, 48, top, 48, out, 103), 0);
    uint8_t huge[66];
    memset(huge, 0xff, sizeof(huge));
    CHECK_EQ_INT(sc_tls_ecdsa_der(huge, sizeof(huge), huge, sizeof(huge), out, sizeof(out)), 0);
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

static void signatures(mbedtls_ecp_group_id curve, const char *name, size_t field, int count)
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
    CHECK(s.padded > 0); /* each of these is met by half the integers */
    CHECK(s.unpadded > 0);
    nonces(&key, &orig);
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
    der();
    signatures(MBEDTLS_ECP_DP_SECP256R1, "P-256", 32, 300);
    signatures(MBEDTLS_ECP_DP_SECP384R1, "P-384", 48, 100);
    left_alone();
    mbedtls_ctr_drbg_free(&drbg);
    return check_report();
}
