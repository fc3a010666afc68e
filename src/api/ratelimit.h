/* Rate limits of logins, registrations and anonymous catalog writes: fixed windows counted in Redis (shared by
 * every worker and server), or in this process while Redis is unreachable, so that a Redis outage never opens the
 * door to unlimited password guessing or writes.
 *
 * A login counts against three limits: the account from this client address (STACCATO_LOGIN_MAX_PER_ACCOUNT per
 * STACCATO_LOGIN_WINDOW_S), the account from addresses that never signed in to it
 * (STACCATO_LOGIN_MAX_PER_ACCOUNT_GLOBAL per STACCATO_LOGIN_GLOBAL_WINDOW_S), and this address on any account
 * (STACCATO_LOGIN_MAX_PER_ADDRESS). A successful login takes its attempt back and makes its address known to the
 * account for 30 days, so strangers guessing from elsewhere cannot lock the owner out of their usual address. */
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

/* Takes back the attempt a successful login counted, so that only failures use up the allowance, and records the
 * address as one the account signs in from. */
void sc_ratelimit_login_succeeded(sc_req *req, sc_slice username);

/* Counts one registration from the request's client address (STACCATO_REGISTER_MAX_PER_ADDRESS per
 * STACCATO_REGISTER_WINDOW_S). */
void sc_ratelimit_register(sc_req *req, sc_ratelimit_cb cb);

/* Counts one password-reset request from the request's client address and one for the e-mail address asked for
 * (each STACCATO_PASSWORD_RESET_MAX_PER_ADDRESS per STACCATO_PASSWORD_RESET_WINDOW_S), whether or not an account
 * has that address. */
void sc_ratelimit_password_reset(sc_req *req, sc_slice email, sc_ratelimit_cb cb);

/* Counts one anonymous catalog write (an album, a song or a cover in STACCATO_COMPAT=openmusic) from the request's
 * client address (STACCATO_ANON_WRITES_PER_ADDRESS per STACCATO_ANON_WRITE_WINDOW_S), so that one address cannot
 * flood the open catalog; callers skip it when the limit is 0. */
void sc_ratelimit_anon_write(sc_req *req, sc_ratelimit_cb cb);

/* The local table of login counters, used while Redis is unreachable (one per worker, app->local_limits). */
sc_ratelimit *sc_ratelimit_new(void);
/* Frees the local table. */
void sc_ratelimit_free(sc_ratelimit *rl);
/* Counts a hit on key in the local table; returns the count in the current window and its seconds left. */
uint64_t sc_ratelimit_local_hit(sc_ratelimit *rl, const char *key, uint64_t window_s, uint64_t now_s,
                                uint64_t *left_s);
/* The count of key in its current window, without counting a hit (0 when absent or expired). */
uint64_t sc_ratelimit_local_peek(sc_ratelimit *rl, const char *key, uint64_t now_s);
/* Takes one hit back from key in the local table. */
void sc_ratelimit_local_undo(sc_ratelimit *rl, const char *key);

#endif
