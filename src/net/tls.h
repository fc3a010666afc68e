/* TLS 1.2 with mbedTLS (Debian's 2.28) behind a memory transport: the connection code reads ciphertext from the
 * socket and feeds it in, and takes the ciphertext to send out of a buffer, so that the HTTP code works on
 * plaintext whatever the listener.
 *
 * Only ECDHE key exchange with AEAD ciphers (AES-GCM, ChaCha20-Poly1305) is offered; ALPN says http/1.1; session
 * tickets (keys rotated by mbedTLS) let clients resume without a full handshake. A configuration is refcounted:
 * reloading certificates (SIGHUP) makes a new one for new connections while established ones keep theirs.
 *
 * Sending. mbedTLS does the handshake and reads records, but its AES-GCM runs at about a tenth of the speed of an
 * AES-NI and carry-less-multiply implementation, which makes it the bottleneck of every large response. So once
 * an AES-GCM session is established, the records the server sends are sealed here with Nettle's AES-GCM (the
 * session's server write key and IV come from mbedTLS's key export callback, the sequence number from where
 * mbedTLS left it), the way kernel TLS takes over the sending half of a session. ChaCha20-Poly1305 sessions stay
 * with mbedTLS. Should mbedTLS still want to send something afterwards (only alerts can remain, on a refused
 * renegotiation or a broken record) the session ends instead.
 *
 * Signing. With an ECDSA key on P-256 or P-384 the ServerKeyExchange signature of a full handshake is made by
 * Nettle too (net/tls_key.h); the ECDHE computations stay with mbedTLS, which has no hook for them. */
#ifndef SC_NET_TLS_H
#define SC_NET_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct sc_tls_config sc_tls_config;
typedef struct sc_tls_conn sc_tls_conn;

/* Seeds the process's random generator; once per process, before any config.
 * Returns 0 or -1 with a message. */
int sc_tls_global_init(char *err, size_t errlen);
void sc_tls_global_cleanup(void);
/* In a child process after fork(2), before any TLS use: reseeds the random generator, which the child would
 * otherwise share, state and all, with its parent and its siblings (the same ECDHE keys, ticket nonces and
 * server randoms). Exits the process if that fails. */
void sc_tls_after_fork(void);

/* Loads a certificate (PEM; the file may hold the chain after the leaf), an optional extra chain file, and the
 * private key, and makes fresh session-ticket keys, rotated every ticket_lifetime_s (a ticket resumes for at most
 * twice that; a new config, as on reload, starts with new keys). Returns a config with one reference, or NULL
 * with a message. */
sc_tls_config *sc_tls_config_load(const char *cert_file, const char *key_file, const char *chain_file,
                                  uint32_t ticket_lifetime_s, char *err, size_t errlen);
void sc_tls_config_ref(sc_tls_config *cfg);
void sc_tls_config_unref(sc_tls_config *cfg);

/* A server-side session on cfg (takes a reference). */
sc_tls_conn *sc_tls_conn_new(sc_tls_config *cfg);
void sc_tls_conn_free(sc_tls_conn *t);

/* Ciphertext received from the peer. */
void sc_tls_feed(sc_tls_conn *t, const char *data, size_t len);
/* Advances the handshake: 1 done, 0 needs more input, -1 failed. With heavy false it stops before a step that
 * does public-key work (milliseconds of CPU with mbedTLS's bignum code) and returns SC_TLS_HANDSHAKE_HEAVY, for
 * the caller to go on with heavy true on another thread; a session is used by one thread at a time, and the random
 * generator and ticket keys shared by all are locked by mbedTLS (MBEDTLS_THREADING_C). */
#define SC_TLS_HANDSHAKE_HEAVY 2
int sc_tls_handshake(sc_tls_conn *t, bool heavy);
/* Plaintext: > 0 bytes read, SC_TLS_WANT_INPUT when more ciphertext is needed, 0 when the peer closed (close
 * notify), -1 on a fatal error. */
#define SC_TLS_WANT_INPUT (-2)
ssize_t sc_tls_read(sc_tls_conn *t, char *buf, size_t cap);
/* Whether decrypted or received bytes wait inside the session (the socket will not signal them). */
bool sc_tls_pending(const sc_tls_conn *t);
/* Encrypts up to len bytes (one record with mbedTLS, up to SC_TLS_WRITE_MAX bytes in full-size records once the
 * sending half is ours); returns the bytes taken, or -1. */
#define SC_TLS_WRITE_MAX (64 * 1024)
ssize_t sc_tls_write(sc_tls_conn *t, const char *data, size_t len);
/* Queues a close notify alert. */
void sc_tls_close_notify(sc_tls_conn *t);
/* Ciphertext waiting to be sent: pointer and length; consume what the socket took. */
const char *sc_tls_out(const sc_tls_conn *t, size_t *len);
void sc_tls_out_consume(sc_tls_conn *t, size_t n);
/* Protocol, cipher suite and ALPN of an established session (for logs). */
const char *sc_tls_describe(sc_tls_conn *t, char *buf, size_t len);

#endif
