/* LISTEN on a dedicated PostgreSQL connection.
 *
 * The pool cannot carry LISTEN: its connections are shared and in pipeline mode, and a notification arrives on the
 * connection that listens, whenever it likes. A listener is one connection of its own, non-blocking from the
 * connect on (PQconnectStart/PQconnectPoll), driven by a uv_poll, that reconnects with exponential backoff when it
 * drops. Notifications sent while it was down are lost; the owner hears of every (re)connect so that it can start
 * over (the job runtime looks at the queue again, a cache drops what it holds).
 *
 * A connection can also die without a word (a failover, a NAT or firewall forgetting an idle flow): nothing would
 * ever arrive on it again, notifications included. So once listening, the listener asks `SELECT 1` every
 * heartbeat_ms; an answer that does not come within connect_timeout_ms counts as a lost connection. */
#ifndef SC_DB_LISTEN_H
#define SC_DB_LISTEN_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

typedef struct sc_pg_listener sc_pg_listener;

typedef struct sc_pg_listener_config {
    const char *conninfo;
    const char *channel;  /* an identifier, not quoted */
    const char *what;     /* names the connection in log lines ("job", "media cache"); default the channel */
    const char *app_name; /* fallback_application_name; default "staccato" */
    uint64_t connect_timeout_ms; /* default 3000; also the deadline of a heartbeat's answer */
    uint64_t heartbeat_ms;       /* default 10000 */
} sc_pg_listener_config;

/* A notification on the channel (payload "" when none was given), or, with channel and payload NULL, the LISTEN
 * (re)established: whatever was sent before may have been missed. Runs from the loop, never from inside a call of
 * this module's API; it may close the listener. */
typedef void (*sc_pg_listener_fn)(void *data, const char *channel, const char *payload);

sc_pg_listener *sc_pg_listener_new(uv_loop_t *loop, const sc_pg_listener_config *cfg, sc_pg_listener_fn on_event,
                                   void *data);
/* Whether the LISTEN is in effect now. */
bool sc_pg_listener_ready(const sc_pg_listener *l);
/* Disconnects; on_closed runs once every handle is closed, and the listener is freed then. on_event is not
 * called any more. */
void sc_pg_listener_close(sc_pg_listener *l, void (*on_closed)(void *data), void *data);

#endif
