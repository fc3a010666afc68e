/* The job runtime's own PostgreSQL connection, which LISTENs for new jobs (internal to src/jobs).
 *
 * The pool cannot carry LISTEN: its connections are shared and in pipeline mode, and a notification arrives on the
 * connection that listens, whenever it likes. This one connection is non-blocking from the connect on
 * (PQconnectStart/PQconnectPoll), driven by a uv_poll, and reconnects with exponential backoff when it drops.
 * Every notification, and every (re)connect (notifications sent while it was down are lost), wakes the workers. */
#ifndef SC_JOBS_NOTIFY_H
#define SC_JOBS_NOTIFY_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

typedef struct sc_jobs_listener sc_jobs_listener;

/* Connects and LISTENs on channel (an identifier, not quoted). on_wake runs from the loop, never from inside a
 * call of this module's API. */
sc_jobs_listener *sc_jobs_listener_new(uv_loop_t *loop, const char *conninfo, const char *channel,
                                       uint64_t connect_timeout_ms, void (*on_wake)(void *data), void *data);
/* Whether the LISTEN is in effect now. */
bool sc_jobs_listener_ready(const sc_jobs_listener *l);
/* Disconnects; on_closed runs once every handle is closed, and the listener is freed then. on_wake is not
 * called any more. */
void sc_jobs_listener_close(sc_jobs_listener *l, void (*on_closed)(void *data), void *data);

#endif
