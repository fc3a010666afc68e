/* The plaintext transport: the socket's bytes as they are. Reads with read(2), writes with send(2), and sends
 * file ranges with sendfile(2), so a response body goes from the page cache to the socket with no copy through
 * user space, paced by the socket's writability. */
#define _GNU_SOURCE /* MSG_MORE */
#include <errno.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/conn.h"

static ssize_t plain_read(sc_conn *c, char *buf, size_t cap)
{
    for (;;) {
        ssize_t n = read(c->fd, buf, cap);
        if (n >= 0)
            return n;
        if (errno == EINTR)
            continue;
        return errno == EAGAIN || errno == EWOULDBLOCK ? SC_NET_AGAIN : SC_NET_ERROR;
    }
}

static ssize_t plain_writev(sc_conn *c, const struct iovec *iov, int iovcnt, bool more)
{
    /* Bytes that a file range follows (headers, a multipart boundary) wait in the kernel for it (MSG_MORE): the
     * peer gets them in the same segments as the file's first bytes, not in a small packet and a wake-up of
     * their own. */
    int flags = MSG_NOSIGNAL | (more ? MSG_MORE : 0);
    for (;;) {
        ssize_t n;
        if (iovcnt == 1) {
            n = send(c->fd, iov->iov_base, iov->iov_len, flags);
        } else {
            struct msghdr msg = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)iovcnt};
            n = sendmsg(c->fd, &msg, flags);
        }
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errno == EAGAIN || errno == EWOULDBLOCK ? SC_NET_AGAIN : SC_NET_ERROR;
        }
        c->group->stats.bytes_sent += (uint64_t)n;
        c->write_since = sc_conn_now(c);
        return n;
    }
}

static ssize_t plain_send_file(sc_conn *c, int fd, uint64_t offset, uint64_t len)
{
    off_t off = (off_t)offset;
    size_t chunk = len > (1u << 30) ? (1u << 30) : (size_t)len;
    for (;;) {
        ssize_t n = sendfile(c->fd, fd, &off, chunk);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errno == EAGAIN || errno == EWOULDBLOCK ? SC_NET_AGAIN : SC_NET_ERROR;
        }
        if (n > 0) {
            c->group->stats.bytes_sent += (uint64_t)n;
            c->write_since = sc_conn_now(c);
        }
        return n;
    }
}

static int plain_shutdown(sc_conn *c) { return shutdown(c->fd, SHUT_WR) == 0 ? 0 : SC_NET_ERROR; }

const sc_transport sc_transport_plain = {
    .name = "tcp",
    .secure = false,
    .read = plain_read,
    .writev = plain_writev,
    .send_file = plain_send_file,
    .shutdown = plain_shutdown,
};
