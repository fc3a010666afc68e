#include "net/tls.h"

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/pk.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/ssl.h>
#include <mbedtls/ssl_ticket.h>
#include <mbedtls/x509_crt.h>
#include <nettle/gcm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/mem.h"
#include "net/tls_key.h"

/* ECDHE with AEAD only: forward secrecy and no CBC-mode padding oracles. */
static const int suites[] = {
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    MBEDTLS_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    MBEDTLS_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    MBEDTLS_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    0,
};

static const char *alpn[] = {"http/1.1", NULL};

/* Fast curves first: mbedTLS's default order starts at P-521, several times the handshake cost of these. */
static const mbedtls_ecp_group_id curves[] = {MBEDTLS_ECP_DP_CURVE25519, MBEDTLS_ECP_DP_SECP256R1,
                                              MBEDTLS_ECP_DP_SECP384R1, MBEDTLS_ECP_DP_NONE};

/* One random generator per process, seeded once (reseeded after fork). */
static mbedtls_entropy_context entropy;
static mbedtls_ctr_drbg_context drbg;
static bool initialized;

struct sc_tls_config {
    mbedtls_ssl_config conf;
    mbedtls_x509_crt cert;
    mbedtls_pk_context key;
    /* Each configuration has ticket keys of its own, so a reload (SIGHUP) also rotates them: tickets issued
     * before it no longer resume on connections accepted after it. */
    mbedtls_ssl_ticket_context tickets;
    int refs;
};

/* The sending half of an AES-GCM session after the handshake (see "Sending" in the header). */
typedef struct tx_gcm {
    size_t keylen; /* 16 or 32 */
    union {
        struct gcm_aes128_ctx k128;
        struct gcm_aes256_ctx k256;
    } aes;
    unsigned char salt[4]; /* the server write IV: the implicit part of every nonce */
    uint64_t seq;          /* of the next record */
    size_t record_max;     /* plaintext bytes per record: 16384, or the client's max_fragment_length (RFC 6066) */
} tx_gcm;

struct sc_tls_conn {
    mbedtls_ssl_context ssl;
    sc_tls_config *cfg;
    sc_buf in; /* ciphertext received; in_off of it consumed */
    size_t in_off;
    sc_buf out; /* ciphertext to send; out_off of it sent */
    size_t out_off;
    tx_gcm *tx; /* keys of the sending half, from the handshake; in use once tx_on */
    bool tx_on;
    bool tx_spoiled; /* mbedTLS tried to send after we took over: the session cannot go on */
};

#define RECORD_MAX 16384          /* plaintext bytes per record at most */
#define GCM_OVERHEAD (5 + 8 + 16) /* header, explicit nonce, tag */

/* The connection whose handshake step runs on this thread (the key export callback of mbedTLS 2.28 is per
 * configuration). */
static _Thread_local sc_tls_conn *handshaking;

/* Called by mbedTLS while it derives a session's keys. An AES-GCM session (no MAC key, a 4-byte implicit IV) gets
 * its sending half set up here, to be used once the handshake is over; other suites stay with mbedTLS. The key
 * block is client write key, server write key, client write IV, server write IV (RFC 5246 section 6.3). */
static int on_keys(void *p, const unsigned char *ms, const unsigned char *kb, size_t maclen, size_t keylen,
                   size_t ivlen, const unsigned char client_random[32], const unsigned char server_random[32],
                   mbedtls_tls_prf_types prf)
{
    (void)p, (void)ms, (void)client_random, (void)server_random, (void)prf;
    sc_tls_conn *t = handshaking;
    if (!t || maclen != 0 || ivlen != 4 || (keylen != 16 && keylen != 32))
        return 0;
    if (!t->tx)
        t->tx = sc_alloc(sizeof(*t->tx));
    tx_gcm *tx = t->tx;
    tx->keylen = keylen;
    if (keylen == 16)
        gcm_aes128_set_key(&tx->aes.k128, kb + keylen);
    else
        gcm_aes256_set_key(&tx->aes.k256, kb + keylen);
    memcpy(tx->salt, kb + 2 * keylen + ivlen, 4);
    return 0;
}

static void errstr(int rc, char *err, size_t errlen, const char *what)
{
    char buf[128];
    mbedtls_strerror(rc, buf, sizeof(buf));
    snprintf(err, errlen, "%s: %s", what, buf);
}

int sc_tls_global_init(char *err, size_t errlen)
{
    if (initialized)
        return 0;
    mbedtls_entropy_init(&entropy);
    mbedtls_ctr_drbg_init(&drbg);
    static const char personal[] = "staccato";
    int rc = mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &entropy, (const unsigned char *)personal,
                                   sizeof(personal) - 1);
    if (rc != 0) {
        errstr(rc, err, errlen, "seeding the TLS random generator");
        return -1;
    }
    initialized = true;
    return 0;
}

void sc_tls_after_fork(void)
{
    if (!initialized)
        return;
    /* Fresh entropy, and the pid as additional input: no two processes go on from the same generator state. */
    pid_t pid = getpid();
    if (mbedtls_ctr_drbg_reseed(&drbg, (const unsigned char *)&pid, sizeof(pid)) != 0) {
        sc_log_error("TLS: reseeding the random generator after fork failed");
        _exit(1);
    }
}

void sc_tls_global_cleanup(void)
{
    if (!initialized)
        return;
    mbedtls_ctr_drbg_free(&drbg);
    mbedtls_entropy_free(&entropy);
    initialized = false;
}

sc_tls_config *sc_tls_config_load(const char *cert_file, const char *key_file, const char *chain_file,
                                  uint32_t ticket_lifetime_s, char *err, size_t errlen)
{
    sc_tls_config *c = sc_calloc(sizeof(*c));
    c->refs = 1;
    mbedtls_ssl_config_init(&c->conf);
    mbedtls_ssl_ticket_init(&c->tickets);
    mbedtls_x509_crt_init(&c->cert);
    mbedtls_pk_init(&c->key);
    int rc = mbedtls_x509_crt_parse_file(&c->cert, cert_file);
    if (rc != 0) {
        errstr(rc, err, errlen, cert_file);
        goto fail;
    }
    if (chain_file && *chain_file && (rc = mbedtls_x509_crt_parse_file(&c->cert, chain_file)) != 0) {
        errstr(rc, err, errlen, chain_file);
        goto fail;
    }
    if ((rc = mbedtls_pk_parse_keyfile(&c->key, key_file, NULL)) != 0) {
        errstr(rc, err, errlen, key_file);
        goto fail;
    }
    if ((rc = mbedtls_pk_check_pair(&c->cert.pk, &c->key)) != 0) {
        snprintf(err, errlen, "%s is not the key of %s", key_file, cert_file);
        goto fail;
    }
    const char *curve;
    if (sc_tls_key_use_nettle(&c->key, &c->cert.pk, mbedtls_ctr_drbg_random, &drbg, &curve))
        sc_log_info("TLS key %s: ECDSA %s, signatures by Nettle", key_file, curve);
    if ((rc = mbedtls_ssl_config_defaults(&c->conf, MBEDTLS_SSL_IS_SERVER, MBEDTLS_SSL_TRANSPORT_STREAM,
                                          MBEDTLS_SSL_PRESET_DEFAULT)) != 0) {
        errstr(rc, err, errlen, "TLS defaults");
        goto fail;
    }
    mbedtls_ssl_conf_rng(&c->conf, mbedtls_ctr_drbg_random, &drbg);
    mbedtls_ssl_conf_min_version(&c->conf, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
    mbedtls_ssl_conf_ciphersuites(&c->conf, suites);
    mbedtls_ssl_conf_curves(&c->conf, curves);
    if ((rc = mbedtls_ssl_conf_alpn_protocols(&c->conf, alpn)) != 0 ||
        (rc = mbedtls_ssl_conf_own_cert(&c->conf, &c->cert, &c->key)) != 0) {
        errstr(rc, err, errlen, "TLS configuration");
        goto fail;
    }
    /* mbedTLS keeps two keys and makes a new one every lifetime: a ticket resumes for at most twice that. */
    if ((rc = mbedtls_ssl_ticket_setup(&c->tickets, mbedtls_ctr_drbg_random, &drbg, MBEDTLS_CIPHER_AES_256_GCM,
                                       ticket_lifetime_s)) != 0) {
        errstr(rc, err, errlen, "setting up session tickets");
        goto fail;
    }
    mbedtls_ssl_conf_session_tickets_cb(&c->conf, mbedtls_ssl_ticket_write, mbedtls_ssl_ticket_parse, &c->tickets);
    mbedtls_ssl_conf_export_keys_ext_cb(&c->conf, on_keys, NULL);
    return c;
fail:
    sc_tls_config_unref(c);
    return NULL;
}

void sc_tls_config_ref(sc_tls_config *c) { c->refs++; }

void sc_tls_config_unref(sc_tls_config *c)
{
    if (!c || --c->refs > 0)
        return;
    mbedtls_ssl_config_free(&c->conf);
    mbedtls_ssl_ticket_free(&c->tickets);
    mbedtls_x509_crt_free(&c->cert);
    mbedtls_pk_free(&c->key);
    free(c);
}

/* The memory transport: mbedTLS reads ciphertext from `in` and writes to `out`, never blocking. */
static int bio_send(void *ctx, const unsigned char *buf, size_t len)
{
    sc_tls_conn *t = ctx;
    if (t->tx_on) {
        /* Only an alert can come from mbedTLS now (a refused renegotiation, a failed record), with a sequence
         * number that is no longer the session's: it is not sent, and the session ends. */
        t->tx_spoiled = true;
        return (int)len;
    }
    sc_buf_append(&t->out, buf, len);
    return (int)len;
}

static int bio_recv(void *ctx, unsigned char *buf, size_t len)
{
    sc_tls_conn *t = ctx;
    size_t avail = t->in.len - t->in_off;
    if (avail == 0)
        return MBEDTLS_ERR_SSL_WANT_READ;
    size_t n = avail < len ? avail : len;
    memcpy(buf, t->in.ptr + t->in_off, n);
    t->in_off += n;
    if (t->in_off == t->in.len)
        t->in.len = t->in_off = 0;
    return (int)n;
}

sc_tls_conn *sc_tls_conn_new(sc_tls_config *cfg)
{
    sc_tls_conn *t = sc_calloc(sizeof(*t));
    mbedtls_ssl_init(&t->ssl);
    if (mbedtls_ssl_setup(&t->ssl, &cfg->conf) != 0) {
        mbedtls_ssl_free(&t->ssl);
        free(t);
        return NULL;
    }
    t->cfg = cfg;
    sc_tls_config_ref(cfg);
    mbedtls_ssl_set_bio(&t->ssl, t, bio_send, bio_recv, NULL);
    return t;
}

void sc_tls_conn_free(sc_tls_conn *t)
{
    if (!t)
        return;
    mbedtls_ssl_free(&t->ssl);
    sc_tls_config_unref(t->cfg);
    if (t->tx)
        mbedtls_platform_zeroize(t->tx, sizeof(*t->tx));
    free(t->tx);
    sc_buf_free(&t->in);
    sc_buf_free(&t->out);
    free(t);
}

void sc_tls_feed(sc_tls_conn *t, const char *data, size_t len)
{
    if (t->in_off && t->in_off == t->in.len)
        t->in.len = t->in_off = 0;
    sc_buf_append(&t->in, data, len);
}

/* Whether the next step does public-key work: the server key exchange (ECDHE key generation and the signature),
 * or the client key exchange (ECDH with the client's share) once its bytes have begun to arrive. A resumed
 * session passes through neither. */
static bool heavy_step(sc_tls_conn *t)
{
    if (t->ssl.state == MBEDTLS_SSL_SERVER_KEY_EXCHANGE)
        return true;
    return t->ssl.state == MBEDTLS_SSL_CLIENT_KEY_EXCHANGE && sc_tls_pending(t);
}

int sc_tls_handshake(sc_tls_conn *t, bool heavy)
{
    int rc = 0;
    handshaking = t;
    while (t->ssl.state != MBEDTLS_SSL_HANDSHAKE_OVER) {
        if (!heavy && heavy_step(t)) {
            handshaking = NULL;
            return SC_TLS_HANDSHAKE_HEAVY;
        }
        if ((rc = mbedtls_ssl_handshake_step(&t->ssl)) != 0)
            break;
    }
    handshaking = NULL;
    if (rc == 0) {
        if (t->tx && !t->tx_on) {
            /* Everything mbedTLS had to send is in `out` (the transport takes all); the next record's sequence
             * number is where its counter stands. */
            uint64_t seq = 0;
            for (int i = 0; i < 8; i++)
                seq = seq << 8 | t->ssl.cur_out_ctr[i];
            t->tx->seq = seq;
            t->tx->record_max = mbedtls_ssl_get_output_max_frag_len(&t->ssl);
            if (t->tx->record_max == 0 || t->tx->record_max > RECORD_MAX)
                t->tx->record_max = RECORD_MAX;
            t->tx_on = true;
        }
        return 1;
    }
    if (rc == MBEDTLS_ERR_SSL_WANT_READ || rc == MBEDTLS_ERR_SSL_WANT_WRITE)
        return 0;
    if (sc_log_enabled(SC_LOG_DEBUG)) {
        char buf[128];
        mbedtls_strerror(rc, buf, sizeof(buf));
        sc_log_debug("TLS handshake failed: %s", buf);
    }
    return -1;
}

ssize_t sc_tls_read(sc_tls_conn *t, char *buf, size_t cap)
{
    if (t->tx_spoiled)
        return -1;
    int rc = mbedtls_ssl_read(&t->ssl, (unsigned char *)buf, cap);
    if (t->tx_spoiled)
        return -1;
    if (rc > 0)
        return rc;
    if (rc == MBEDTLS_ERR_SSL_WANT_READ || rc == MBEDTLS_ERR_SSL_WANT_WRITE)
        return SC_TLS_WANT_INPUT;
    if (rc == 0 || rc == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY)
        return 0;
    return -1;
}

bool sc_tls_pending(const sc_tls_conn *t)
{
    return mbedtls_ssl_get_bytes_avail(&t->ssl) > 0 || mbedtls_ssl_check_pending(&t->ssl) || t->in.len > t->in_off;
}

/* Appends one AES-GCM record of type `type` holding len (<= record_max) bytes to `out` (RFC 5288): the nonce is
 * the salt and the 8-byte explicit part, which is the record's sequence number, as mbedTLS does; the additional
 * data is sequence number, type, version and length. */
static void seal(sc_tls_conn *t, unsigned char type, const unsigned char *data, size_t len)
{
    tx_gcm *tx = t->tx;
    sc_buf_reserve(&t->out, len + GCM_OVERHEAD);
    unsigned char *r = (unsigned char *)t->out.ptr + t->out.len;
    size_t body = 8 + len + 16;
    r[0] = type;
    r[1] = 3;
    r[2] = 3;
    r[3] = (unsigned char)(body >> 8);
    r[4] = (unsigned char)body;
    unsigned char nonce[12], aad[13];
    memcpy(nonce, tx->salt, 4);
    for (int i = 0; i < 8; i++)
        nonce[4 + i] = aad[i] = (unsigned char)(tx->seq >> (56 - 8 * i));
    memcpy(r + 5, nonce + 4, 8);
    aad[8] = type;
    aad[9] = 3;
    aad[10] = 3;
    aad[11] = (unsigned char)(len >> 8);
    aad[12] = (unsigned char)len;
    unsigned char *ct = r + 13;
    if (tx->keylen == 16) {
        gcm_aes128_set_iv(&tx->aes.k128, sizeof(nonce), nonce);
        gcm_aes128_update(&tx->aes.k128, sizeof(aad), aad);
        gcm_aes128_encrypt(&tx->aes.k128, len, ct, data);
        gcm_aes128_digest(&tx->aes.k128, 16, ct + len);
    } else {
        gcm_aes256_set_iv(&tx->aes.k256, sizeof(nonce), nonce);
        gcm_aes256_update(&tx->aes.k256, sizeof(aad), aad);
        gcm_aes256_encrypt(&tx->aes.k256, len, ct, data);
        gcm_aes256_digest(&tx->aes.k256, 16, ct + len);
    }
    t->out.len += len + GCM_OVERHEAD;
    tx->seq++;
}

ssize_t sc_tls_write(sc_tls_conn *t, const char *data, size_t len)
{
    if (t->tx_on) {
        if (t->tx_spoiled)
            return -1;
        size_t done = 0;
        while (done < len && done < SC_TLS_WRITE_MAX) {
            size_t n = len - done < t->tx->record_max ? len - done : t->tx->record_max;
            seal(t, MBEDTLS_SSL_MSG_APPLICATION_DATA, (const unsigned char *)data + done, n);
            done += n;
        }
        return (ssize_t)done;
    }
    /* The transport never says WANT_WRITE (ciphertext is buffered), so a write either takes bytes or fails. */
    int rc = mbedtls_ssl_write(&t->ssl, (const unsigned char *)data, len);
    return rc >= 0 ? rc : -1;
}

void sc_tls_close_notify(sc_tls_conn *t)
{
    if (t->tx_on) {
        if (!t->tx_spoiled) {
            static const unsigned char alert[2] = {MBEDTLS_SSL_ALERT_LEVEL_WARNING,
                                                   MBEDTLS_SSL_ALERT_MSG_CLOSE_NOTIFY};
            seal(t, MBEDTLS_SSL_MSG_ALERT, alert, sizeof(alert));
        }
        return;
    }
    mbedtls_ssl_close_notify(&t->ssl);
}

const char *sc_tls_out(const sc_tls_conn *t, size_t *len)
{
    *len = t->out.len - t->out_off;
    return *len ? t->out.ptr + t->out_off : "";
}

void sc_tls_out_consume(sc_tls_conn *t, size_t n)
{
    t->out_off += n;
    if (t->out_off >= t->out.len) {
        t->out_off = 0;
        t->out.len = 0;
        if (t->out.cap > 256 * 1024)
            sc_buf_free(&t->out);
    }
}

const char *sc_tls_describe(sc_tls_conn *t, char *buf, size_t len)
{
    const char *proto = mbedtls_ssl_get_alpn_protocol(&t->ssl);
    snprintf(buf, len, "%s %s alpn=%s", mbedtls_ssl_get_version(&t->ssl), mbedtls_ssl_get_ciphersuite(&t->ssl),
             proto ? proto : "-");
    return buf;
}
