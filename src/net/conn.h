/* A client connection as the network layer sees it: a non-blocking socket watched by a uv_poll_t, a transport
 * (net/transport.h) that moves its bytes, a reference count, and the output queue of bytes with file ranges
 * spliced in at given positions. The protocol on top (HTTP, src/http/http1.c) embeds an sc_conn as the first
 * member `super` of its own connection and gets it back with SC_CONTAINER_OF.
 *
 * Socket I/O is done here rather than through uv_tcp_t: read(2), send(2) and sendfile(2) on the socket, driven
 * by its readiness. That is what lets a response body come straight from a file with no copy through user space;
 * a slow reader costs its socket buffer and nothing more.
 *
 * Lifetimes: the connection holds one reference per open handle (its poll handle, and whatever handles the
 * protocol adds and counts with sc_conn_ref) and one per operation in flight off the loop (a handshake step, a
 * file read) or place on the pending queue. It is freed when the last one goes, which happens in a uv_close or
 * completion callback, never inside the connection's own I/O callbacks. */
#ifndef SC_NET_CONN_H
#define SC_NET_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "core/buf.h"
#include "net/file.h"
#include "net/tls.h"
#include "net/transport.h"

/* Counters of the connections of one group, rendered by the HTTP layer's metrics. */
typedef struct sc_conn_stats {
    uint64_t bytes_sent;             /* written to client sockets (ciphertext on TLS) */
    uint64_t tls_handshakes;         /* completed */
    uint64_t tls_handshake_offloads; /* handshake steps run on the threadpool (public-key work) */
} sc_conn_stats;

/* What the connections of one server share: the loop, the counters, and the queue of connections whose
 * transport holds input that no socket event will announce. Those are read from an idle handle, which also
 * keeps the loop from sleeping meanwhile. */
typedef struct sc_conn_group {
    uv_loop_t *loop;
    sc_conn_stats stats;
    sc_conn *pending;
    uv_idle_t pending_idle;
    bool pending_closed;
    void (*on_closed)(void *data);
    void *on_closed_data;
} sc_conn_group;

/* How the transport, working off the socket's events, hands a connection back to the protocol on top. These run
 * rarely (a handshake step done, a staged file read done, bytes read ahead); socket events go straight to the
 * protocol's uv_poll_cb. */
typedef struct sc_conn_handler {
    /* Input may be there without a socket event (bytes inside the transport, a finished handshake step). */
    void (*on_readable)(sc_conn *c);
    /* Output may go on without a socket event (a staged file range is ready). */
    void (*on_writable)(sc_conn *c);
    /* The transport failed off the socket's events: the protocol closes the connection. */
    void (*on_error)(sc_conn *c);
    /* The last reference went: the protocol frees its own state and the memory of the connection. */
    void (*on_free)(sc_conn *c);
} sc_conn_handler;

/* A file range of the output, sent once the output before it (up to `at`) is written. */
typedef struct sc_out_file {
    struct sc_out_file *next;
    size_t at;
    sc_file *file;
    uint64_t offset, remaining;
} sc_out_file;

struct sc_conn {
    uv_poll_t poll; /* first member: the handle's address is the connection's */
    int fd;
    int events; /* UV_READABLE | UV_WRITABLE being watched */
    int refs;
    bool closing; /* sc_conn_close called */
    bool reading; /* read interest */
    bool writing; /* output waits for the socket to become writable */
    bool ready;   /* the transport is established (at once on plaintext; after the TLS handshake) */
    bool shut;    /* the sending half is shut */
    /* The transport's state is in use off the loop (a handshake step): no socket reads into it. */
    bool hold_reads;
    /* Output waits for the transport rather than the socket (a handshake step, a file read): no writable
     * interest meanwhile; the transport resumes the output through on_writable or on_readable. */
    bool hold_writes;
    bool pending_queued; /* on the group's pending queue */
    sc_conn *pending_next;
    const sc_transport *transport;
    void *tp; /* the transport's own state; NULL on plaintext */
    sc_conn_group *group;
    const sc_conn_handler *handler;
    uv_poll_cb on_io;
    uint64_t write_since; /* loop time of the last write progress */

    sc_buf out; /* output bytes; out_off of them are written */
    size_t out_off;
    sc_out_file *files, *files_tail; /* file ranges spliced into the output */

    uint8_t peer_addr[16];
    char peer[48];
};

/* Sets up a group on the loop (its idle handle is closed by sc_conn_group_close). */
void sc_conn_group_init(sc_conn_group *g, uv_loop_t *loop);
/* Once every connection of the group is closed: drops their places on the pending queue and closes the idle
 * handle; on_closed runs from its close callback. */
void sc_conn_group_close(sc_conn_group *g, void (*on_closed)(void *data), void *data);

/* Makes c (zeroed memory, usually inside the protocol's connection) a connection on the open, non-blocking client
 * socket fd: plaintext, or TLS on tls_cfg when secure (a secure connection without a configuration fails). peer
 * may be NULL (a socketpair). The socket's readiness is delivered to on_io with the poll handle, whose address is
 * c's. One reference, for the poll handle. Returns 0, or -1 with nothing set up (the caller still owns fd). */
int sc_conn_init(sc_conn *c, sc_conn_group *g, int fd, const struct sockaddr *peer, bool secure,
                 sc_tls_config *tls_cfg, const sc_conn_handler *handler, uv_poll_cb on_io);
/* Takes a reference (one per handle the protocol adds, or operation in flight). */
void sc_conn_ref(sc_conn *c);
/* Drops a reference; the last frees the transport, the output queue, and then, through on_free, the protocol's
 * connection. Call it only from close or completion callbacks. */
void sc_conn_unref(sc_conn *c);
/* Closing: the transport's last word (unless the sending half was shut), work queued off the loop cancelled,
 * the poll handle closed and the socket with it. Later I/O calls do nothing; memory goes with the last
 * reference. */
void sc_conn_close(sc_conn *c);

/* Puts c on its group's pending queue (once), to be read from the idle handle. */
void sc_conn_queue_pending(sc_conn *c);

/* Appends a file range to the output, sent when the output bytes before position at are written. Takes over one
 * reference to f. */
void sc_conn_queue_file(sc_conn *c, size_t at, sc_file *f, uint64_t offset, uint64_t len);
/* Writes as much of the output as the transport and socket take. Returns 1 when everything is written (or, while
 * a handshake runs, all that can be), 0 when waiting (for the socket, or for the transport when hold_writes), -1
 * on a dead connection. */
int sc_conn_write_out(sc_conn *c);
/* Shuts the sending half (after a TLS close notify); 0, or -1 when the connection died. */
int sc_conn_shutdown(sc_conn *c);

/* Reads up to cap bytes for the application through the transport (see sc_transport.read). */
static inline ssize_t sc_conn_read(sc_conn *c, char *buf, size_t cap) { return c->transport->read(c, buf, cap); }

/* Whether the connection's bytes are protected on the wire. */
static inline bool sc_conn_secure(const sc_conn *c) { return c->transport->secure; }

/* Whether the transport sends bytes of its own (handshake records, alerts), so that reading may leave output
 * waiting for writability. */
static inline bool sc_conn_speaks(const sc_conn *c) { return c->transport->flush != NULL; }

/* Whether input waits inside the transport (see sc_transport.has_pending). */
static inline bool sc_conn_has_pending(const sc_conn *c)
{
    return c->transport->has_pending && c->transport->has_pending(c);
}

/* Brings the watched events in line with want_read and the state of the output. */
static inline void sc_conn_watch(sc_conn *c, bool want_read)
{
    c->reading = want_read;
    bool socket_full = c->writing && !c->hold_writes;
    int events = (want_read ? UV_READABLE | UV_DISCONNECT : 0) | (socket_full ? UV_WRITABLE : 0);
    if (events != c->events) {
        c->events = events;
        if (events)
            uv_poll_start(&c->poll, events, c->on_io);
        else
            uv_poll_stop(&c->poll);
    }
}

/* Queues c for reading from the group's idle handle when its transport holds input that no socket event will
 * announce (and no handshake step has its state). */
static inline void sc_conn_check_pending(sc_conn *c)
{
    if (!c->hold_reads && sc_conn_has_pending(c))
        sc_conn_queue_pending(c);
}

/* Output bytes not yet written; file ranges count as their length. */
static inline size_t sc_conn_pending_output(const sc_conn *c)
{
    size_t n = c->out.len - c->out_off;
    for (const sc_out_file *f = c->files; f; f = f->next)
        n += f->remaining;
    return n;
}

/* The loop time in milliseconds. */
static inline uint64_t sc_conn_now(const sc_conn *c) { return uv_now(c->group->loop); }

#endif
