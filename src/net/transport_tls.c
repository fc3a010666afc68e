/* The TLS transport: an mbedTLS session (net/tls.h) between the socket and the application. It reads ciphertext
 * from the socket into the session and plaintext out of it, encrypts what the application writes, and sends the
 * session's ciphertext, all on the loop; the steps of a handshake that do public-key work run on the threadpool.
 *
 * File ranges cannot go through sendfile(2) (the kernel would send them unencrypted), so they are staged: what
 * the page cache holds is read at once, the rest off the loop with uv_fs_read, and the staged bytes are then
 * encrypted like any other.
 *
 * The session can hold plaintext already decrypted, or ciphertext already received, that no socket event will
 * announce: such a connection says so through has_pending and is read again from its group's pending queue
 * (net/conn.c). */
#define _GNU_SOURCE /* preadv2, RWF_NOWAIT */
#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/log.h"
#include "core/mem.h"
#include "net/conn.h"
#include "net/tls.h"

#define STAGE_SIZE (64 * 1024)
/* A client that drains as fast as we encrypt must not keep the loop to itself: after this many bytes of files
 * the connection waits for its next writable event (level-triggered, so at once) like everybody else. */
#define WRITE_BUDGET (256 * 1024)
#define TLS_READS_PER_CALL 4

typedef struct tls_state {
    sc_tls_conn *tls;
    /* A handshake step with public-key work runs on the threadpool; the session is its meanwhile: no reads from
     * the socket into it, no sends out of it. */
    uv_work_t hswork;
    bool hs_pending;
    int hs_result;
    /* File ranges are read into fbuf (off the loop when not cached), then encrypted. */
    uv_fs_t fsreq;
    bool fs_pending;
    char *fbuf;
    size_t fbuf_len, fbuf_off;
    size_t budget; /* file bytes this write may still encrypt before yielding */
} tls_state;

/* Whether preadv2(RWF_NOWAIT) works here (until it says otherwise). */
static bool nowait_reads = true;

/* What the connection may do while work is off the loop (see sc_conn.hold_reads and hold_writes). */
static void set_holds(sc_conn *c)
{
    tls_state *t = c->tp;
    c->hold_reads = t->hs_pending;
    c->hold_writes = t->hs_pending || t->fs_pending;
}

/* Sends queued TLS ciphertext; false when the connection died. */
static bool tls_send(sc_conn *c)
{
    tls_state *t = c->tp;
    if (t->hs_pending)
        return true;
    size_t len;
    const char *p = sc_tls_out(t->tls, &len);
    while (len) {
        ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errno == EAGAIN || errno == EWOULDBLOCK;
        }
        c->group->stats.bytes_sent += (uint64_t)n;
        c->write_since = sc_conn_now(c);
        sc_tls_out_consume(t->tls, (size_t)n);
        p = sc_tls_out(t->tls, &len);
    }
    return true;
}

/* ---- the handshake ---------------------------------------------------------------------------------------- */

static void handshake_done(sc_conn *c)
{
    tls_state *t = c->tp;
    c->ready = true;
    c->group->stats.tls_handshakes++;
    if (sc_log_enabled(SC_LOG_DEBUG)) {
        char d[128];
        sc_log_debug("TLS from %s: %s", c->peer, sc_tls_describe(t->tls, d, sizeof(d)));
    }
}

static void on_handshake_work(uv_work_t *w)
{
    sc_conn *c = w->data;
    tls_state *t = c->tp;
    t->hs_result = sc_tls_handshake(t->tls, true);
}

static void on_handshake_worked(uv_work_t *w, int status)
{
    sc_conn *c = w->data;
    tls_state *t = c->tp;
    t->hs_pending = false;
    set_holds(c);
    if (c->closing || status != 0 || t->hs_result < 0 || !tls_send(c)) {
        if (!c->closing)
            c->handler->on_error(c);
        sc_conn_unref(c);
        return;
    }
    if (t->hs_result > 0)
        handshake_done(c);
    /* What arrived meanwhile, and the HTTP bytes the session may already hold; the protocol's read also flushes
     * and brings the watched events up to date, as after any read on a transport that speaks by itself. */
    c->handler->on_readable(c);
    sc_conn_unref(c);
}

/* Runs the rest of the handshake up to its next wait for input on the threadpool: the public-key operations of
 * mbedTLS take milliseconds, which the loop must not spend. False when it cannot be queued. */
static bool handshake_off_loop(sc_conn *c)
{
    tls_state *t = c->tp;
    t->hswork.data = c;
    if (uv_queue_work(c->group->loop, &t->hswork, on_handshake_work, on_handshake_worked) != 0)
        return false;
    t->hs_pending = true;
    set_holds(c);
    c->refs++;
    c->group->stats.tls_handshake_offloads++;
    return true;
}

/* ---- reading ---------------------------------------------------------------------------------------------- */

/* Reads plaintext, driving the handshake and decryption. */
static ssize_t tls_read(sc_conn *c, char *buf, size_t cap)
{
    tls_state *t = c->tp;
    /* Socket reads per call: records that yield nothing (warning alerts, which mbedTLS skips, or handshake
     * messages in pieces) must not keep the loop on one client while its socket has more. Whenever the session
     * asks for input it holds no unread record, so stopping there loses nothing: the socket stays readable. */
    int reads = 0;
    for (;;) {
        if (c->ready) {
            ssize_t n = sc_tls_read(t->tls, buf, cap);
            if (n != SC_TLS_WANT_INPUT) {
                if (!tls_send(c)) /* reading may have produced alerts or ticket records */
                    return SC_NET_ERROR;
                return n < 0 ? SC_NET_ERROR : n;
            }
        } else {
            if (t->hs_pending)
                return SC_NET_AGAIN;
            int hs = sc_tls_handshake(t->tls, false);
            if (hs == SC_TLS_HANDSHAKE_HEAVY) {
                if (!tls_send(c) || !handshake_off_loop(c))
                    return SC_NET_ERROR;
                return SC_NET_AGAIN;
            }
            if (!tls_send(c) || hs < 0)
                return SC_NET_ERROR;
            if (hs > 0) {
                handshake_done(c);
                continue;
            }
        }
        /* The session wants ciphertext: read some from the socket. */
        if (reads++ == TLS_READS_PER_CALL)
            return SC_NET_AGAIN;
        char cipher[16 * 1024 + 512];
        ssize_t n = read(c->fd, cipher, sizeof(cipher));
        if (n > 0) {
            sc_tls_feed(t->tls, cipher, (size_t)n);
            continue;
        }
        if (n == 0)
            return 0;
        if (errno == EINTR)
            continue;
        return errno == EAGAIN || errno == EWOULDBLOCK ? SC_NET_AGAIN : SC_NET_ERROR;
    }
}

static bool tls_has_pending(const sc_conn *c)
{
    const tls_state *t = c->tp;
    return sc_tls_pending(t->tls);
}

/* ---- writing ---------------------------------------------------------------------------------------------- */

/* Every way out of one sc_conn_write_out but "go on" gives the next one a full budget. */
static int yield(tls_state *t, int code)
{
    t->budget = WRITE_BUDGET;
    return code;
}

/* Sends the ciphertext the session holds before anything else is encrypted: plaintext is encrypted a record at a
 * time as the socket drains. */
static int tls_flush(sc_conn *c)
{
    tls_state *t = c->tp;
    if (t->hs_pending)
        return yield(t, SC_NET_BUSY); /* the session is busy on the threadpool; its completion flushes */
    if (!tls_send(c))
        return SC_NET_ERROR;
    size_t queued;
    sc_tls_out(t->tls, &queued);
    if (queued)
        return yield(t, SC_NET_AGAIN); /* the socket is full */
    if (!c->ready)
        return yield(t, SC_NET_HOLD); /* handshake bytes are out; HTTP output only comes after the handshake */
    if (t->budget == 0)
        return yield(t, SC_NET_AGAIN);
    return 0;
}

static ssize_t tls_writev(sc_conn *c, const struct iovec *iov, int iovcnt, bool more)
{
    tls_state *t = c->tp;
    (void)iovcnt, (void)more; /* one record batch at a time; the caller comes back for the rest */
    ssize_t n = sc_tls_write(t->tls, iov->iov_base, iov->iov_len);
    return n < 0 ? SC_NET_ERROR : n;
}

static void on_file_read(uv_fs_t *req)
{
    sc_conn *c = req->data;
    tls_state *t = c->tp;
    ssize_t n = req->result;
    uv_fs_req_cleanup(req);
    t->fs_pending = false;
    set_holds(c);
    if (c->closing) {
        sc_conn_unref(c);
        return;
    }
    if (n <= 0) {
        sc_log_warn("reading a file for %s failed or ended early: closing", c->peer);
        c->handler->on_error(c);
    } else {
        t->fbuf_len = (size_t)n;
        t->fbuf_off = 0;
        c->handler->on_writable(c);
    }
    sc_conn_unref(c);
}

/* Encrypts staged bytes of the file, staging more first when none are left. */
static ssize_t tls_send_file(sc_conn *c, int fd, uint64_t offset, uint64_t len)
{
    tls_state *t = c->tp;
    for (;;) {
        if (t->fbuf_off < t->fbuf_len) {
            ssize_t n = sc_tls_write(t->tls, t->fbuf + t->fbuf_off, t->fbuf_len - t->fbuf_off);
            if (n < 0)
                return SC_NET_ERROR;
            t->budget = (size_t)n < t->budget ? t->budget - (size_t)n : 0;
            t->fbuf_off += (size_t)n;
            if ((uint64_t)n == len)
                t->fbuf_off = t->fbuf_len = 0; /* the range is done */
            return n;
        }
        if (t->fs_pending)
            return yield(t, SC_NET_BUSY);
        if (!t->fbuf)
            t->fbuf = sc_alloc(STAGE_SIZE);
        size_t want = len < STAGE_SIZE ? (size_t)len : STAGE_SIZE;
        /* What the page cache holds is read right here: with RWF_NOWAIT, preadv2 returns only data that needs
         * no disk I/O (EAGAIN when there is none), so the loop never waits for a disk; the rest, and files on
         * file systems without the flag, go through the threadpool. */
        if (nowait_reads) {
            struct iovec iov = {t->fbuf, want};
            ssize_t n = preadv2(fd, &iov, 1, (off_t)offset, RWF_NOWAIT);
            if (n > 0) {
                t->fbuf_len = (size_t)n;
                t->fbuf_off = 0;
                int rc = tls_flush(c); /* as after any progress: what was sealed before goes out first */
                if (rc != 0)
                    return rc;
                continue;
            }
            if (n < 0 && (errno == EOPNOTSUPP || errno == ENOSYS || errno == EINVAL))
                nowait_reads = false;
        }
        uv_buf_t b = uv_buf_init(t->fbuf, (unsigned)want);
        t->fsreq.data = c;
        if (uv_fs_read(c->group->loop, &t->fsreq, fd, &b, 1, (int64_t)offset, on_file_read) != 0)
            return SC_NET_ERROR;
        t->fs_pending = true;
        set_holds(c);
        c->refs++;
        return yield(t, SC_NET_BUSY);
    }
}

static void tls_drained(sc_conn *c)
{
    tls_state *t = c->tp;
    free(t->fbuf);
    t->fbuf = NULL;
    yield(t, 0);
}

static int tls_shutdown(sc_conn *c)
{
    tls_state *t = c->tp;
    sc_tls_close_notify(t->tls);
    if (!tls_send(c))
        return SC_NET_ERROR;
    return shutdown(c->fd, SHUT_WR) == 0 ? 0 : SC_NET_ERROR;
}

/* ---- open and close --------------------------------------------------------------------------------------- */

static void tls_close(sc_conn *c)
{
    tls_state *t = c->tp;
    /* A TLS peer learns that the end is deliberate (RFC 5246 7.2.1), best effort. */
    if (c->ready && !c->shut) {
        sc_tls_close_notify(t->tls);
        tls_send(c);
    }
    /* A handshake step still queued for the threadpool is dropped (one already running finishes): a client that
     * gave up, or was timed out, costs no more public-key work. */
    if (t->hs_pending)
        uv_cancel((uv_req_t *)&t->hswork);
}

static void tls_free(sc_conn *c)
{
    tls_state *t = c->tp;
    sc_tls_conn_free(t->tls);
    free(t->fbuf);
    free(t);
    c->tp = NULL;
}

const sc_transport sc_transport_tls = {
    .name = "tls",
    .secure = true,
    .read = tls_read,
    .writev = tls_writev,
    .send_file = tls_send_file,
    .flush = tls_flush,
    .drained = tls_drained,
    .shutdown = tls_shutdown,
    .has_pending = tls_has_pending,
    .close = tls_close,
    .free = tls_free,
};

int sc_transport_tls_open(sc_conn *c, sc_tls_config *cfg)
{
    tls_state *t = sc_calloc(sizeof(*t));
    t->tls = sc_tls_conn_new(cfg);
    if (!t->tls) {
        free(t);
        return -1;
    }
    t->budget = WRITE_BUDGET;
    c->tp = t;
    c->transport = &sc_transport_tls;
    c->ready = false;
    return 0;
}
