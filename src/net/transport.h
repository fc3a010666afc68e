/* The transport seam: how a connection moves bytes, whatever carries them. A plaintext socket reads and writes
 * the kernel's bytes directly and sends file ranges with sendfile(2); a TLS session (net/transport_tls.c) decrypts
 * what it reads, encrypts what it writes, stages file ranges through a buffer, and has bytes of its own to send
 * (handshake records, alerts) and to deliver (records already decrypted) that no socket event announces. The code
 * above (HTTP) calls through this table and never asks which one it has; what it may ask is a property: whether
 * the bytes are protected (`secure`), whether the transport speaks by itself (`flush`), whether it is established
 * (sc_conn.ready).
 *
 * The shape follows redis's ConnectionType (src/connection.h), with its has_pending_data for bytes a transport
 * holds. Return values of the I/O calls: a byte count (>= 0), or one of the negative SC_NET_* codes below. */
#ifndef SC_NET_TRANSPORT_H
#define SC_NET_TRANSPORT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

typedef struct sc_conn sc_conn;

/* The connection is dead: close it. */
#define SC_NET_ERROR (-1)
/* The socket has no bytes to read, or no room to write: wait for its event. (A TLS read also says it when the
 * read budget of one call is spent; the socket then still signals.) */
#define SC_NET_AGAIN (-2)
/* The transport works off the loop for this connection (a handshake step or a file read on the threadpool) and
 * resumes it by itself through its sc_conn_handler: wait for nothing. */
#define SC_NET_BUSY (-3)
/* From flush: the transport takes no application bytes yet (its handshake is not done); what it had to send is
 * out. The output counts as written for now. */
#define SC_NET_HOLD (-4)

typedef struct sc_transport {
    const char *name; /* for logs: "tcp", "tls" */
    bool secure;      /* the bytes are protected on the wire (HSTS, https:// links, no redirect to HTTPS) */

    /* Reads up to cap bytes for the application: > 0 bytes, 0 at the end of input, SC_NET_AGAIN, or SC_NET_ERROR.
     * A TLS transport drives its handshake from here. */
    ssize_t (*read)(sc_conn *c, char *buf, size_t cap);
    /* Takes application bytes from iov for sending and returns how many it took (it may take fewer than given),
     * or a negative code. `more`: a file range follows at once, so the bytes may wait for it (MSG_MORE). */
    ssize_t (*writev)(sc_conn *c, const struct iovec *iov, int iovcnt, bool more);
    /* Sends up to len bytes of the file fd from offset and returns how many, 0 when the file ends before (its
     * response promised more), or a negative code. Zero-copy where the kernel can (plaintext, sendfile(2)); a
     * transport that cannot hand a file to the kernel stages it through a buffer of its own (TLS), reading what
     * the page cache holds at once and the rest on the threadpool (SC_NET_BUSY). */
    ssize_t (*send_file)(sc_conn *c, int fd, uint64_t offset, uint64_t len);
    /* Sends bytes the transport holds (ciphertext), before any more application bytes: 0 when everything is out
     * and more may be written, else a negative code (SC_NET_AGAIN also when the transport wants the connection
     * to yield to others). NULL for transports that hold no bytes; such a transport never writes unless asked. */
    int (*flush)(sc_conn *c);
    /* The connection's output queue is empty: staging buffers may go. NULL: nothing to do. */
    void (*drained)(sc_conn *c);
    /* Ends the sending half (a close notify first, on TLS, then shutdown(2)); 0 or SC_NET_ERROR. */
    int (*shutdown)(sc_conn *c);
    /* Whether bytes wait inside the transport that the socket will not announce (TLS records read ahead).
     * NULL: never. Such connections go on their group's pending queue (sc_conn_check_pending). */
    bool (*has_pending)(const sc_conn *c);
    /* The connection is being closed: a last word to the peer unless the sending half was shut already (best
     * effort), and work queued off the loop cancelled. NULL: nothing to do. */
    void (*close)(sc_conn *c);
    /* Frees the transport's state, when the connection itself is freed. NULL: none. */
    void (*free)(sc_conn *c);
} sc_transport;

/* The plaintext transport: read(2), send(2), sendfile(2) on the connection's socket. */
extern const sc_transport sc_transport_plain;
/* The TLS transport (mbedTLS behind a memory BIO, records sent by Nettle; see net/tls.h). A connection is put on
 * it by sc_conn_init with a TLS configuration. */
extern const sc_transport sc_transport_tls;

typedef struct sc_tls_config sc_tls_config;

/* Puts c, being set up by sc_conn_init, on the TLS transport: a server-side session on cfg (which takes a
 * reference). Returns 0 or -1. */
int sc_transport_tls_open(sc_conn *c, sc_tls_config *cfg);

#endif
