/* Which access tokens are still good: per process, the current token version of every account whose earlier
 * access tokens were made invalid within the last access-token lifetime (a role lowered, a new password, the
 * account deleted; migration 0005), so that the gates can refuse such tokens synchronously, without a query.
 *
 * Access tokens carry the account's token_version as their claim "ver" (absent: 0). A token is current unless
 * the table holds a higher version for its subject, or the subject's account is gone. An account absent from the
 * table has had no such change for longer than any access token lives (ACCESS_TOKEN_AGE plus the leeway), so
 * every token of it that is still unexpired is current.
 *
 * Staying correct. The table is loaded once before the process serves (blocking, at start), so a process started
 * after a change knows of it from its first request. PostgreSQL announces every bump and every deleted account on
 * channel "staccato_tokens" (from triggers, at commit) to every process, which updates its table; the process that
 * made the change (PUT and DELETE of /users/{id}, a password change) updates its own table before it answers, so
 * its next request is refused deterministically. When the notification connection (re)connects, the changes of the
 * last access-token lifetime are loaded again from the database (those announced while it was down were missed),
 * and merged: versions only grow, so a load and notifications may arrive in any order. While the connection is
 * down the table keeps what it knew: the gates never wait for the database, so a change made by another process in
 * that time reaches this one when it reconnects (within the listener's heartbeat and backoff, db/listen.h).
 * Entries are dropped once they are older than an access token can be. */
#ifndef SC_API_TOKEN_VERSIONS_H
#define SC_API_TOKEN_VERSIONS_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "db/pg.h"

#define SC_TOKEN_CHANNEL "staccato_tokens"

typedef struct sc_token_versions sc_token_versions;

/* A table loaded at once from conninfo (blocking: at start only), then from pool, that listens on its own
 * connection to conninfo (connect timeout and heartbeat as in db/listen.h) and keeps changes for window_s seconds
 * (ACCESS_TOKEN_AGE plus the leeway). */
sc_token_versions *sc_token_versions_new(uv_loop_t *loop, sc_pg_pool *pool, const char *conninfo,
                                         uint64_t window_s, uint64_t connect_timeout_ms, uint64_t heartbeat_ms);

/* Whether an access token of user_id with version ver is still good (true for a NULL table). */
bool sc_token_versions_current(const sc_token_versions *t, const char *user_id, int64_t ver);
/* The account's tokens are now at version (a lower version than known is ignored); after a change this process
 * made, before it answers. */
void sc_token_versions_note(sc_token_versions *t, const char *user_id, int64_t version);
/* The account is gone: none of its tokens is good any more. */
void sc_token_versions_note_deleted(sc_token_versions *t, const char *user_id);

/* Closes the connection and frees the table; on_closed runs when its handles are closed (at once for NULL). */
void sc_token_versions_close(sc_token_versions *t, void (*on_closed)(void *data), void *data);

#endif
