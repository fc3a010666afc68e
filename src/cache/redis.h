/* An asynchronous Redis client on the event loop (hiredis), built for a cache that may go away.
 *
 * One connection, reconnected with exponential backoff whenever it drops. Each command has its own deadline
 * (hiredis 0.14 has none). When Redis is unreachable, commands fail at once with SC_REDIS_ERR_UNAVAILABLE, so a
 * cache read becomes a miss and a cache write is skipped, and requests go on from the database.
 *
 * Callbacks are never called from inside the submitting call, and never after sc_redis_cancel. */
#ifndef SC_CACHE_REDIS_H
#define SC_CACHE_REDIS_H

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

extern const char SC_REDIS_ERR_UNAVAILABLE[];
extern const char SC_REDIS_ERR_TIMEOUT[];
extern const char SC_REDIS_ERR_REPLY[]; /* Redis answered with an error reply */
extern const char SC_REDIS_ERR_SHUTDOWN[];

typedef struct sc_redis sc_redis;
typedef struct sc_redis_cmd sc_redis_cmd;

/* reply is valid during the call only; NULL unless err is NULL or SC_REDIS_ERR_REPLY. */
typedef void (*sc_redis_cb)(void *data, const char *err, redisReply *reply);

typedef struct sc_redis_config {
    const char *host; /* numeric address: the connect must not wait for DNS */
    int port;
    uint64_t command_timeout_ms;
    uint64_t connect_timeout_ms;
} sc_redis_config;

/* Parses redis://[:password@]host[:port][/db] into host and port (password and db are not supported and give an
 * error). Returns 0 or -1 with a message in err. */
int sc_redis_parse_url(const char *url, char *host, size_t hostlen, int *port, char *err, size_t errlen);

sc_redis *sc_redis_new(uv_loop_t *loop, const sc_redis_config *cfg);
/* Sends a command given as an argument vector (binary safe). */
sc_redis_cmd *sc_redis_command(sc_redis *r, sc_redis_cb cb, void *data, int argc, const char **argv,
                               const size_t *lens);
void sc_redis_cancel(sc_redis_cmd *cmd);
bool sc_redis_connected(const sc_redis *r);
/* Fails pending commands with SC_REDIS_ERR_SHUTDOWN, disconnects, and calls on_closed once every handle is
 * closed; r is freed then. */
void sc_redis_close(sc_redis *r, void (*on_closed)(void *data), void *data);

#endif
