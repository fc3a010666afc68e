#include "net/tls.h"

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/pk.h>
#include <mbedtls/ssl.h>
#include <mbedtls/ssl_ticket.h>
#include <mbedtls/x509_crt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/mem.h"

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

/* One random generator and one ticket key set per process, seeded once. */
static mbedtls_entropy_context entropy;
static mbedtls_ctr_drbg_context drbg;
static mbedtls_ssl_ticket_context tickets;
static bool initialized;

struct sc_tls_config {
    mbedtls_ssl_config conf;
    mbedtls_x509_crt cert;
    mbedtls_pk_context key;
    int refs;
};

struct sc_tls_conn {
    mbedtls_ssl_context ssl;
    sc_tls_config *cfg;
    sc_buf in;  /* ciphertext received; in_off of it consumed */
    size_t in_off;
    sc_buf out; /* ciphertext to send; out_off of it sent */
    size_t out_off;
};

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
    mbedtls_ssl_ticket_init(&tickets);
    rc = mbedtls_ssl_ticket_setup(&tickets, mbedtls_ctr_drbg_random, &drbg, MBEDTLS_CIPHER_AES_256_GCM, 86400);
    if (rc != 0) {
        errstr(rc, err, errlen, "setting up session tickets");
        return -1;
    }
    initialized = true;
    return 0;
}

void sc_tls_global_cleanup(void)
{
    if (!initialized)
        return;
    mbedtls_ssl_ticket_free(&tickets);
    mbedtls_ctr_drbg_free(&drbg);
    mbedtls_entropy_free(&entropy);
    initialized = false;
}

sc_tls_config *sc_tls_config_load(const char *cert_file, const char *key_file, const char *chain_file, char *err,
                                  size_t errlen)
{
    sc_tls_config *c = sc_calloc(sizeof(*c));
    c->refs = 1;
    mbedtls_ssl_config_init(&c->conf);
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
    mbedtls_ssl_conf_session_tickets_cb(&c->conf, mbedtls_ssl_ticket_write, mbedtls_ssl_ticket_parse, &tickets);
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
    mbedtls_x509_crt_free(&c->cert);
    mbedtls_pk_free(&c->key);
    free(c);
}

/* The memory transport: mbedTLS reads ciphertext from `in` and writes to `out`, never blocking. */
static int bio_send(void *ctx, const unsigned char *buf, size_t len)
{
    sc_tls_conn *t = ctx;
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

int sc_tls_handshake(sc_tls_conn *t)
{
    int rc = mbedtls_ssl_handshake(&t->ssl);
    if (rc == 0)
        return 1;
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
    int rc = mbedtls_ssl_read(&t->ssl, (unsigned char *)buf, cap);
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
    return mbedtls_ssl_get_bytes_avail(&t->ssl) > 0 || mbedtls_ssl_check_pending(&t->ssl) ||
           t->in.len > t->in_off;
}

ssize_t sc_tls_write(sc_tls_conn *t, const char *data, size_t len)
{
    /* The transport never says WANT_WRITE (ciphertext is buffered), so a write either takes bytes or fails. */
    int rc = mbedtls_ssl_write(&t->ssl, (const unsigned char *)data, len);
    return rc >= 0 ? rc : -1;
}

void sc_tls_close_notify(sc_tls_conn *t) { mbedtls_ssl_close_notify(&t->ssl); }

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
