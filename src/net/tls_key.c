#include "net/tls_key.h"

#include <gmp.h>
#include <mbedtls/ecdsa.h>
#include <mbedtls/ecp.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/version.h>
#include <nettle/dsa.h>
#include <nettle/ecc-curve.h>
#include <nettle/ecc.h>
#include <nettle/ecdsa.h>
#include <stdint.h>
#include <string.h>

#include "core/mem.h"

/* The function table's layout is mbedTLS 2.x's, without MBEDTLS_ECP_RESTARTABLE (Debian 12's build). */
#if MBEDTLS_VERSION_MAJOR == 2 && !defined(MBEDTLS_ECP_RESTARTABLE)
#include <mbedtls/pk_internal.h>
#define SC_NETTLE_SIGN 1
#endif

#ifdef SC_NETTLE_SIGN

/* Field bytes of the largest curve taken (P-384), and of a DER signature on it: SEQUENCE of two INTEGERs of up to
 * 49 bytes each (a leading zero when the top bit is set), so every length fits in one byte. */
#define FIELD_MAX 48
#define LIMBS_MAX ((FIELD_MAX + sizeof(mp_limb_t) - 1) / sizeof(mp_limb_t))

typedef struct nettle_key {
    mbedtls_ecp_keypair ec; /* first: mbedtls_pk_ec() of the wrapped key sees mbedTLS's own keypair */
    const struct ecc_curve *curve;
    struct ecc_scalar d;
    bool d_set;
} nettle_key;

typedef struct rng {
    int (*f_rng)(void *, unsigned char *, size_t);
    void *p_rng;
    bool failed;
} rng;

static void rng_fill(void *ctx, size_t len, uint8_t *dst)
{
    rng *r = ctx;
    if (r->f_rng(r->p_rng, dst, len) != 0) {
        r->failed = true; /* the signature is thrown away */
        memset(dst, 0, len);
    }
}

/* Writes INTEGER z (0 < z < 2^384) in DER; returns its length. */
static size_t der_integer(uint8_t *out, const mpz_t z)
{
    uint8_t bytes[FIELD_MAX + 1];
    size_t n = 0;
    bytes[0] = 0;
    mpz_export(bytes + 1, &n, 1, 1, 1, 0, z);
    const uint8_t *p = bytes + 1;
    if (n == 0 || (p[0] & 0x80)) { /* zero, or a top bit that would make it negative */
        p--;
        n++;
    }
    out[0] = 0x02;
    out[1] = (uint8_t)n;
    memcpy(out + 2, p, n);
    return n + 2;
}

static int key_sign(void *ctx, mbedtls_md_type_t md_alg, const unsigned char *hash, size_t hash_len,
                    unsigned char *sig, size_t *sig_len, int (*f_rng)(void *, unsigned char *, size_t), void *p_rng)
{
    (void)md_alg; /* the digest is given; ECDSA takes its leftmost bits whatever the hash */
    nettle_key *k = ctx;
    if (hash_len == 0 || !f_rng)
        return MBEDTLS_ERR_ECP_BAD_INPUT_DATA;
    rng r = {f_rng, p_rng, false};
    struct dsa_signature s;
    dsa_signature_init(&s);
    ecdsa_sign(&k->d, &r, rng_fill, hash_len, hash, &s);
    int rc = MBEDTLS_ERR_ECP_RANDOM_FAILED;
    if (!r.failed && mpz_sizeinbase(s.r, 256) <= FIELD_MAX && mpz_sizeinbase(s.s, 256) <= FIELD_MAX) {
        size_t n = der_integer(sig + 2, s.r);
        n += der_integer(sig + 2 + n, s.s);
        sig[0] = 0x30; /* SEQUENCE */
        sig[1] = (unsigned char)n;
        *sig_len = n + 2;
        rc = 0;
    }
    dsa_signature_clear(&s);
    return rc;
}

static int key_verify(void *ctx, mbedtls_md_type_t md_alg, const unsigned char *hash, size_t hash_len,
                      const unsigned char *sig, size_t sig_len)
{
    (void)md_alg;
    nettle_key *k = ctx;
    mbedtls_ecdsa_context e;
    mbedtls_ecdsa_init(&e);
    int rc = mbedtls_ecdsa_from_keypair(&e, &k->ec);
    if (rc == 0)
        rc = mbedtls_ecdsa_read_signature(&e, hash, hash_len, sig, sig_len);
    mbedtls_ecdsa_free(&e);
    return rc;
}

static size_t key_bitlen(const void *ctx) { return ((const nettle_key *)ctx)->ec.grp.pbits; }

static int key_can_do(mbedtls_pk_type_t type)
{
    return type == MBEDTLS_PK_ECKEY || type == MBEDTLS_PK_ECKEY_DH || type == MBEDTLS_PK_ECDSA;
}

static void *key_alloc(void)
{
    nettle_key *k = sc_calloc(sizeof(*k));
    mbedtls_ecp_keypair_init(&k->ec);
    return k;
}

static void key_free(void *ctx)
{
    nettle_key *k = ctx;
    if (k->d_set) {
        mbedtls_platform_zeroize(k->d.p, (size_t)ecc_size(k->curve) * sizeof(mp_limb_t));
        ecc_scalar_clear(&k->d);
    }
    mbedtls_ecp_keypair_free(&k->ec);
    free(k);
}

static const mbedtls_pk_info_t nettle_key_info = {
    .type = MBEDTLS_PK_ECKEY,
    .name = "EC (Nettle signatures)",
    .get_bitlen = key_bitlen,
    .can_do = key_can_do,
    .verify_func = key_verify,
    .sign_func = key_sign,
    .ctx_alloc_func = key_alloc,
    .ctx_free_func = key_free,
};

/* Sets the Nettle scalar from mbedTLS's private value, through a limb buffer that is wiped afterwards. */
static bool set_scalar(nettle_key *k)
{
    uint8_t be[FIELD_MAX];
    mp_limb_t limbs[LIMBS_MAX] = {0};
    size_t n = mbedtls_mpi_size(&k->ec.d);
    bool ok = false;
    if (n == 0 || n > sizeof(be) || mbedtls_mpi_write_binary(&k->ec.d, be, n) != 0)
        goto out;
    for (size_t i = 0; i < n; i++)
        limbs[i / sizeof(mp_limb_t)] |= (mp_limb_t)be[n - 1 - i] << (8 * (i % sizeof(mp_limb_t)));
    mpz_t z;
    mpz_roinit_n(z, limbs, (mp_size_t)LIMBS_MAX);
    ecc_scalar_init(&k->d, k->curve);
    k->d_set = true;
    ok = ecc_scalar_set(&k->d, z) == 1;
out:
    mbedtls_platform_zeroize(be, sizeof(be));
    mbedtls_platform_zeroize(limbs, sizeof(limbs));
    return ok;
}

bool sc_tls_key_use_nettle(mbedtls_pk_context *key, const mbedtls_pk_context *pub,
                           int (*f_rng)(void *, unsigned char *, size_t), void *p_rng, const char **what)
{
    if (mbedtls_pk_get_type(key) != MBEDTLS_PK_ECKEY)
        return false;
    const mbedtls_ecp_keypair *src = mbedtls_pk_ec(*key);
    const struct ecc_curve *curve;
    const char *name;
    switch (src->grp.id) {
    case MBEDTLS_ECP_DP_SECP256R1:
        curve = nettle_get_secp_256r1(), name = "P-256";
        break;
    case MBEDTLS_ECP_DP_SECP384R1:
        curve = nettle_get_secp_384r1(), name = "P-384";
        break;
    default:
        return false;
    }
    mbedtls_pk_context w;
    mbedtls_pk_init(&w);
    if (mbedtls_pk_setup(&w, &nettle_key_info) != 0)
        return false;
    nettle_key *k = w.pk_ctx;
    k->curve = curve;
    bool ok = mbedtls_ecp_group_load(&k->ec.grp, src->grp.id) == 0 && mbedtls_mpi_copy(&k->ec.d, &src->d) == 0 &&
              mbedtls_ecp_copy(&k->ec.Q, &src->Q) == 0 && set_scalar(k);
    /* One signature, checked with the certificate's key before any client sees one. */
    static const unsigned char digest[32] = "staccato: a check of the key...";
    unsigned char sig[MBEDTLS_PK_SIGNATURE_MAX_SIZE];
    size_t sig_len = 0;
    ok = ok && mbedtls_pk_sign(&w, MBEDTLS_MD_SHA256, digest, sizeof(digest), sig, &sig_len, f_rng, p_rng) == 0 &&
         mbedtls_pk_verify((mbedtls_pk_context *)pub, MBEDTLS_MD_SHA256, digest, sizeof(digest), sig, sig_len) == 0;
    if (!ok) {
        mbedtls_pk_free(&w);
        return false;
    }
    mbedtls_pk_free(key);
    *key = w;
    if (what)
        *what = name;
    return true;
}

#else

bool sc_tls_key_use_nettle(mbedtls_pk_context *key, const mbedtls_pk_context *pub,
                           int (*f_rng)(void *, unsigned char *, size_t), void *p_rng, const char **what)
{
    (void)key, (void)pub, (void)f_rng, (void)p_rng, (void)what;
    return false;
}

#endif
