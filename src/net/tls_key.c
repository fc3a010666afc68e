#include "net/tls_key.h"

#include <gmp.h>
#include <mbedtls/ecdsa.h>
#include <mbedtls/ecp.h>
#include <mbedtls/hmac_drbg.h>
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

size_t sc_tls_ecdsa_der(const uint8_t *r, size_t rlen, const uint8_t *s, size_t slen, uint8_t *out, size_t cap)
{
    const uint8_t *v[2] = {r, s};
    size_t vlen[2] = {rlen, slen}, need = 2;
    for (int i = 0; i < 2; i++) {
        while (vlen[i] > 1 && v[i][0] == 0) { /* minimal: no leading zero bytes... */
            v[i]++;
            vlen[i]--;
        }
        if (vlen[i] == 0 || (vlen[i] == 1 && v[i][0] == 0))
            return 0;                                  /* zero is no valid r or s */
        need += 2 + vlen[i] + ((v[i][0] & 0x80) != 0); /* ...but one before a top bit, else it reads negative */
    }
    if (need - 2 > 127 || need > cap)
        return 0; /* one-byte lengths only: up to P-384 */
    size_t o = 0;
    out[o++] = 0x30; /* SEQUENCE */
    out[o++] = (uint8_t)(need - 2);
    for (int i = 0; i < 2; i++) {
        bool pad = (v[i][0] & 0x80) != 0;
        out[o++] = 0x02; /* INTEGER */
        out[o++] = (uint8_t)(vlen[i] + pad);
        if (pad)
            out[o++] = 0;
        memcpy(out + o, v[i], vlen[i]);
        o += vlen[i];
    }
    return o;
}

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
    uint8_t d_be[FIELD_MAX]; /* d big-endian, for the nonces */
    size_t d_len;
} nettle_key;

/* Nonces. A signature's nonce comes from an HMAC-DRBG seeded with the private key, the digest and fresh bytes of
 * the caller's generator (in the manner of RFC 6979 with additional data, section 3.6): two signatures of
 * different digests never share a nonce even if the generator repeats itself (as a generator state copied by
 * fork(2) would), and the fresh bytes keep equal digests from giving equal nonces. The stream cannot fail once
 * seeded, which matters because Nettle draws until the value is in range. */
typedef struct nonce_rng {
    mbedtls_hmac_drbg_context drbg;
    bool failed;
} nonce_rng;

static void nonce_fill(void *ctx, size_t len, uint8_t *dst)
{
    nonce_rng *r = ctx;
    while (len > 0) {
        size_t n = len < MBEDTLS_HMAC_DRBG_MAX_REQUEST ? len : MBEDTLS_HMAC_DRBG_MAX_REQUEST;
        if (mbedtls_hmac_drbg_random(&r->drbg, dst, n) != 0) {
            /* Not expected (no reseeding, requests within the limit). A value of 0x01 bytes is in range for
             * both curves, which ends Nettle's draw; the signature is then thrown away. */
            r->failed = true;
            memset(dst, 0x01, len);
            return;
        }
        dst += n;
        len -= n;
    }
}

/* The big-endian bytes of 0 < z < 2^384 into buf[FIELD_MAX]; returns their number (0 if out of range). */
static size_t export_mpz(const mpz_t z, uint8_t buf[FIELD_MAX])
{
    if (mpz_sgn(z) <= 0 || mpz_sizeinbase(z, 256) > FIELD_MAX)
        return 0;
    size_t n = 0;
    mpz_export(buf, &n, 1, 1, 1, 0, z);
    return n;
}

static int key_sign(void *ctx, mbedtls_md_type_t md_alg, const unsigned char *hash, size_t hash_len,
                    unsigned char *sig, size_t *sig_len, int (*f_rng)(void *, unsigned char *, size_t),
                    void *p_rng)
{
    (void)md_alg; /* the digest is given; ECDSA takes its leftmost bits whatever the hash */
    nettle_key *k = ctx;
    uint8_t fresh[32];
    if (hash_len == 0 || hash_len > MBEDTLS_MD_MAX_SIZE || !f_rng || f_rng(p_rng, fresh, sizeof(fresh)) != 0)
        return MBEDTLS_ERR_ECP_RANDOM_FAILED;
    uint8_t extra[MBEDTLS_MD_MAX_SIZE + sizeof(fresh)];
    memcpy(extra, hash, hash_len);
    memcpy(extra + hash_len, fresh, sizeof(fresh));
    nonce_rng nr = {.failed = false};
    mbedtls_hmac_drbg_init(&nr.drbg);
    int rc = mbedtls_hmac_drbg_seed_buf(&nr.drbg, mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), k->d_be, k->d_len);
    if (rc == 0)
        rc = mbedtls_hmac_drbg_update_ret(&nr.drbg, extra, hash_len + sizeof(fresh));
    if (rc != 0) {
        mbedtls_hmac_drbg_free(&nr.drbg);
        return MBEDTLS_ERR_ECP_RANDOM_FAILED;
    }
    struct dsa_signature s;
    dsa_signature_init(&s);
    ecdsa_sign(&k->d, &nr, nonce_fill, hash_len, hash, &s);
    mbedtls_hmac_drbg_free(&nr.drbg); /* wipes its state */
    mbedtls_platform_zeroize(fresh, sizeof(fresh));
    mbedtls_platform_zeroize(extra, sizeof(extra));
    uint8_t r[FIELD_MAX], sv[FIELD_MAX];
    size_t rlen = export_mpz(s.r, r), slen = export_mpz(s.s, sv);
    dsa_signature_clear(&s);
    if (nr.failed || rlen == 0 || slen == 0)
        return MBEDTLS_ERR_ECP_RANDOM_FAILED;
    /* mbedTLS 2.28 passes no size: its callers' buffers hold MBEDTLS_PK_SIGNATURE_MAX_SIZE bytes. */
    size_t n = sc_tls_ecdsa_der(r, rlen, sv, slen, sig, MBEDTLS_PK_SIGNATURE_MAX_SIZE);
    if (n == 0)
        return MBEDTLS_ERR_ECP_BAD_INPUT_DATA;
    *sig_len = n;
    return 0;
}

static int key_verify(void *ctx, mbedtls_md_type_t md_alg, const unsigned char *hash, size_t hash_len,
                      const unsigned char *sig, size_t sig_len)
{
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

static int key_check_pair(const void *pub, const void *prv)
{
    return mbedtls_ecp_check_pub_priv(pub, prv); /* both start with their mbedtls_ecp_keypair */
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
    mbedtls_platform_zeroize(k->d_be, sizeof(k->d_be));
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
    .check_pair_func = key_check_pair,
    .ctx_alloc_func = key_alloc,
    .ctx_free_func = key_free,
};

/* Sets the Nettle scalar (and d_be) from mbedTLS's private value, through a limb buffer wiped afterwards. */
static bool set_scalar(nettle_key *k)
{
    mp_limb_t limbs[LIMBS_MAX] = {0};
    size_t n = mbedtls_mpi_size(&k->ec.d);
    bool ok = false;
    if (n == 0 || n > sizeof(k->d_be) || mbedtls_mpi_write_binary(&k->ec.d, k->d_be, n) != 0)
        goto out;
    k->d_len = n;
    for (size_t i = 0; i < n; i++)
        limbs[i / sizeof(mp_limb_t)] |= (mp_limb_t)k->d_be[n - 1 - i] << (8 * (i % sizeof(mp_limb_t)));
    mpz_t z;
    mpz_roinit_n(z, limbs, (mp_size_t)LIMBS_MAX);
    ecc_scalar_init(&k->d, k->curve);
    k->d_set = true;
    ok = ecc_scalar_set(&k->d, z) == 1;
out:
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
         mbedtls_pk_verify((mbedtls_pk_context *)pub, MBEDTLS_MD_SHA256, digest, sizeof(digest), sig, sig_len) ==
             0;
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
