/* Listening sockets. Created by hand rather than by uv_tcp_bind so that SO_REUSEPORT can be set before bind:
 * that is how several worker processes share one port, each with its own accept queue. */
#ifndef SC_NET_LISTENER_H
#define SC_NET_LISTENER_H

#include <stdbool.h>
#include <stddef.h>

/* Resolves host (numeric, or a name resolved once at startup) and binds a TCP socket to host:port; returns the
 * fd or -1 with a message in err. With listen_now, the socket also listens with the given backlog. The port that
 * was bound (useful with port 0) is stored in *bound_port. */
int sc_listener_open(const char *host, unsigned port, bool reuseport, bool listen_now, int backlog,
                     unsigned *bound_port, char *err, size_t errlen);

#endif
