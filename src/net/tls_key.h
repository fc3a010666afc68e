/* The server's ECDSA signatures by Nettle.
 *
 * A full TLS 1.2 handshake with an ECDSA certificate costs the server one signature (ServerKeyExchange). mbedTLS
 * 2.28 takes about 0.7 ms for it on P-256 (generic bignum code, and its pk layer rebuilds the base point's
 * precomputed table for every signature); Nettle's P-256 and P-384 code (hogweed: assembly for the field
 * arithmetic, side-channel silent scalar multiplication) takes about 0.05 ms. mbedTLS's public-key layer
 * dispatches through a table of functions per key type (mbedtls_pk_info_t, pk_internal.h in 2.x): a key wrapped
 * here is such a table whose sign function is Nettle's; everything else (verify, bit length, what it can do, the
 * mbedtls_ecp_keypair behind mbedtls_pk_ec()) stays mbedTLS's.
 *
 * The wrapped key is only put in service after one of its signatures verified with the certificate's public key;
 * otherwise, and for RSA keys, other curves or another mbedTLS version, the key stays as it was.
 *
 * Nonces come from an HMAC-DRBG keyed by the private key and seeded with the digest and fresh random bytes, so
 * that a random generator that repeats itself (a state copied by fork(2)) cannot make two signatures share a
 * nonce. */
#ifndef SC_NET_TLS_KEY_H
#define SC_NET_TLS_KEY_H

#include <mbedtls/pk.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Replaces *key (a parsed private key) by one whose signatures are made by Nettle, if it is an EC key on P-256 or
 * P-384 and a signature made that way verifies with pub. f_rng/p_rng: for the check. Returns whether it did;
 * `what` then names the curve ("P-256"). */
bool sc_tls_key_use_nettle(mbedtls_pk_context *key, const mbedtls_pk_context *pub,
                           int (*f_rng)(void *, unsigned char *, size_t), void *p_rng, const char **what);

/* The DER encoding of an ECDSA signature, SEQUENCE { INTEGER r, INTEGER s }, from big-endian r and s (leading
 * zero bytes allowed; a zero value is refused). Returns its length, or 0 when a value is zero, the encoding needs
 * more than one-byte lengths (beyond P-384) or more than cap bytes. */
size_t sc_tls_ecdsa_der(const uint8_t *r, size_t rlen, const uint8_t *s, size_t slen, uint8_t *out, size_t cap);

#endif
