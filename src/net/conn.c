/* Client connections below the protocol: setup and close, references, read and write interest, the output queue
 * and its writing through the transport, the pending queue of connections with input inside their transport, and
 * the shared open files the output queue sends from. */
#include "net/conn.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/log.h"
#include "core/mem.h"
#include "net/addr.h"

/* ---- files ------------------------------------------------------------------------------------------------ */

sc_file *sc_file_new(int fd)
{
    sc_file *f = sc_alloc(sizeof(*f));
    f->fd = fd;
    f->refs = 1;
    return f;
}

void sc_file_ref(sc_file *f) { f->refs++; }

void sc_file_unref(sc_file *f)
{
    if (f && --f->refs == 0) {
        close(f->fd);
        free(f);
    }
}

/* ---- the pending queue ------------------------------------------------------------------------------------ */

/* Plaintext or ciphertext already inside a TLS session raises no socket event, so such connections are read
 * from an idle handle instead (which also keeps the loop from sleeping meanwhile). */
static void on_pending(uv_idle_t *h)
{
    sc_conn_group *g = h->data;
    sc_conn *list = g->pending;
    g->pending = NULL;
    uv_idle_stop(&g->pending_idle);
    while (list) {
        sc_conn *c = list;
        list = c->pending_next;
        c->pending_queued = false;
        if (!c->closing && c->reading)
            c->handler->on_readable(c);
        sc_conn_unref(c);
    }
}

void sc_conn_queue_pending(sc_conn *c)
{
    sc_conn_group *g = c->group;
    if (c->pending_queued || g->pending_closed)
        return;
    c->pending_queued = true;
    c->refs++;
    c->pending_next = g->pending;
    g->pending = c;
    uv_idle_start(&g->pending_idle, on_pending);
}

void sc_conn_group_init(sc_conn_group *g, uv_loop_t *loop)
{
    *g = (sc_conn_group){.loop = loop};
    uv_idle_init(loop, &g->pending_idle);
    g->pending_idle.data = g;
}

static void on_pending_idle_closed(uv_handle_t *h)
{
    sc_conn_group *g = h->data;
    g->pending_closed = true;
    if (g->on_closed)
        g->on_closed(g->on_closed_data);
}

void sc_conn_group_close(sc_conn_group *g, void (*on_closed)(void *data), void *data)
{
    while (g->pending) { /* every connection is closed: drop their places in the read queue */
        sc_conn *c = g->pending;
        g->pending = c->pending_next;
        c->pending_queued = false;
        sc_conn_unref(c);
    }
    g->on_closed = on_closed;
    g->on_closed_data = data;
    uv_close((uv_handle_t *)&g->pending_idle, on_pending_idle_closed);
}

/* ---- open and close --------------------------------------------------------------------------------------- */

int sc_conn_init(sc_conn *c, sc_conn_group *g, int fd, const struct sockaddr *peer, bool secure,
                 sc_tls_config *tls_cfg, const sc_conn_handler *handler, uv_poll_cb on_io)
{
    c->group = g;
    c->fd = fd;
    c->handler = handler;
    c->on_io = on_io;
    c->transport = &sc_transport_plain;
    c->ready = true;
    if (secure && (!tls_cfg || sc_transport_tls_open(c, tls_cfg) != 0))
        return -1;
    if (uv_poll_init_socket(g->loop, &c->poll, fd) != 0) {
        if (c->transport->free)
            c->transport->free(c);
        return -1;
    }
    c->poll.data = c;
    c->refs = 1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (peer) {
        sc_addr_format(peer, c->peer, sizeof(c->peer));
        sc_addr_parse(sc_slice_cstr(c->peer), c->peer_addr);
    }
    c->write_since = uv_now(g->loop);
    return 0;
}

void sc_conn_ref(sc_conn *c) { c->refs++; }

void sc_conn_unref(sc_conn *c)
{
    if (--c->refs > 0)
        return;
    while (c->files) {
        sc_out_file *f = c->files;
        c->files = f->next;
        sc_file_unref(f->file);
        free(f);
    }
    if (c->transport->free)
        c->transport->free(c);
    sc_buf_free(&c->out);
    c->handler->on_free(c);
}

static void on_poll_closed(uv_handle_t *h) { sc_conn_unref(h->data); }

void sc_conn_close(sc_conn *c)
{
    if (c->closing)
        return;
    if (c->transport->close)
        c->transport->close(c);
    c->closing = true;
    /* uv_close stops the poll at once, so the descriptor can be closed right after. */
    uv_close((uv_handle_t *)&c->poll, on_poll_closed);
    close(c->fd);
    c->fd = -1;
}

/* ---- output ----------------------------------------------------------------------------------------------- */

void sc_conn_queue_file(sc_conn *c, size_t at, sc_file *file, uint64_t offset, uint64_t len)
{
    sc_out_file *f = sc_alloc(sizeof(*f));
    f->next = NULL;
    f->at = at;
    f->file = file;
    f->offset = offset;
    f->remaining = len;
    if (c->files_tail)
        c->files_tail->next = f;
    else
        c->files = f;
    c->files_tail = f;
}

static void shrink(sc_buf *b)
{
    if (b->cap > 64 * 1024)
        sc_buf_free(b);
    else
        b->len = 0;
}

/* What sc_conn_write_out returns for a transport's code. */
static int stopped(ssize_t code)
{
    if (code == SC_NET_HOLD)
        return 1;
    return code == SC_NET_AGAIN || code == SC_NET_BUSY ? 0 : -1;
}

int sc_conn_write_out(sc_conn *c)
{
    const sc_transport *t = c->transport;
    for (;;) {
        if (t->flush) {
            int rc = t->flush(c);
            if (rc != 0)
                return stopped(rc);
        }
        size_t until = c->files ? c->files->at : c->out.len;
        if (c->out_off < until) {
            struct iovec iov = {c->out.ptr + c->out_off, until - c->out_off};
            ssize_t n = t->writev(c, &iov, 1, c->files != NULL);
            if (n < 0)
                return stopped(n);
            c->out_off += (size_t)n;
            continue;
        }
        if (c->files) {
            sc_out_file *f = c->files;
            ssize_t n = t->send_file(c, f->file->fd, f->offset, f->remaining);
            if (n < 0)
                return stopped(n);
            if (n == 0) {
                sc_log_warn("file shorter than its response (%llu bytes missing): closing %s",
                            (unsigned long long)f->remaining, c->peer);
                return -1; /* the Content-Length promised more: only closing keeps the stream honest */
            }
            f->offset += (uint64_t)n;
            f->remaining -= (uint64_t)n;
            if (f->remaining == 0) {
                c->files = f->next;
                if (!c->files)
                    c->files_tail = NULL;
                sc_file_unref(f->file);
                free(f);
            }
            continue;
        }
        /* Everything is out: the buffer starts over. */
        c->out_off = 0;
        shrink(&c->out);
        if (t->drained)
            t->drained(c);
        return 1;
    }
}

int sc_conn_shutdown(sc_conn *c)
{
    c->shut = true;
    return c->transport->shutdown(c);
}
