/* Login rate limiting: fixed windows counted per account and per client address in Redis (shared by every
 * worker and server), or in this process while Redis is unreachable, so that a Redis outage never opens the door
 * to unlimited password guessing. */
#ifndef SC_API_RATELIMIT_H
#define SC_API_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

#include "api/api.h"
#include "http/request.h"

/* Called with the request (never after it ended): allowed, or the seconds until the window resets. */
typedef void (*sc_ratelimit_cb)(sc_req *req, bool allowed, uint64_t retry_after_s);

/* Counts one login attempt for the account and the request's client address. */
void sc_ratelimit_login(sc_req *req, sc_slice username, sc_ratelimit_cb cb);

/* Takes back the attempt a successful login counted, so that only failures use up the allowance. */
void sc_ratelimit_login_succeeded(sc_req *req, sc_slice username);

/* The local table of login counters, used while Redis is unreachable (one per worker, app->local_limits). */
sc_ratelimit *sc_ratelimit_new(void);
/* Frees the local table. */
void sc_ratelimit_free(sc_ratelimit *rl);
/* Counts a hit on key in the local table; returns the count in the current window and its seconds left. */
uint64_t sc_ratelimit_local_hit(sc_ratelimit *rl, const char *key, uint64_t window_s, uint64_t now_s,
                                uint64_t *left_s);
/* Takes one hit back from key in the local table. */
void sc_ratelimit_local_undo(sc_ratelimit *rl, const char *key);

#endif
