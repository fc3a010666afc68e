/* Playlist exports (api/export.c): POST /export/playlists/{playlistId} enqueues a job that e-mails the playlist as
 * JSON, and the job itself (kind export-playlist).
 *
 * An export request is a transaction of two statements: an advisory lock on the caller's exports, then one
 * statement that checks the playlist, counts the caller's exports of the last hour (the rate limit lives in the
 * jobs table itself), enqueues the job and notifies the workers. The lock makes the count exact when one user
 * sends many requests at once: the second statement of each waits for the previous transaction and, reading
 * committed data afresh, sees its job. */
#ifndef SC_API_EXPORT_H
#define SC_API_EXPORT_H

#include <stdbool.h>

#include "api/visibility.h"
#include "core/slice.h"
#include "http/request.h"
#include "jobs/jobs.h"
#include "jobs/sql.h"

#define SC_ROUTES_EXPORT(X) X(SC_M_POST, "/export/playlists/{playlistId}", SC_API_USER, sc_api_export_playlist)

/* The kind of a playlist export job. */
#define SC_JOB_EXPORT_PLAYLIST "export-playlist"

/* clang-format off */
#define SC_STMTS_EXPORT(X)                                                                                        \
    /* $1 user. Serialises the export requests of one user (until the transaction ends). */                     \
    X(EXPORT_LOCK, "SELECT pg_advisory_xact_lock(1702, hashtext($1::text))")                                      \
    /* $1 playlist, $2 user, $3 target address, $4 exports allowed per hour, $5 max attempts -> one row:        \
     * (playlist exists, caller is the owner, new job id or NULL, seconds until the oldest export of the last   \
     * hour leaves the window or NULL, notified). The job is enqueued only for the owner under the limit. */     \
    X(EXPORT_ENQUEUE,                                                                                             \
      "WITH p AS (SELECT id, owner_id = $2::text AS owner FROM playlists WHERE id = $1::text), "                  \
      "recent AS (SELECT count(*) AS n, min(created_at) AS oldest FROM jobs "                                     \
      "  WHERE kind = '" SC_JOB_EXPORT_PLAYLIST "' AND payload->>'userId' = $2::text "                            \
      "  AND created_at > now() - interval '1 hour'), "                                                           \
      "ins AS (INSERT INTO jobs (kind, payload, max_attempts) "                                                   \
      "  SELECT '" SC_JOB_EXPORT_PLAYLIST "', jsonb_build_object('playlistId', p.id, 'userId', $2::text, "        \
      "  'targetEmail', $3::text), $5::int FROM p, recent WHERE p.owner AND recent.n < $4::bigint RETURNING id), " \
      "n AS (SELECT pg_notify('" SC_JOBS_CHANNEL "', id::text) FROM ins) "                                        \
      "SELECT EXISTS (SELECT 1 FROM p), coalesce((SELECT owner FROM p), false), (SELECT id FROM ins), "           \
      "  (SELECT greatest(1, ceil(extract(epoch FROM oldest + interval '1 hour' - now())))::bigint FROM recent "  \
      "   WHERE n > 0), (SELECT count(*) FROM n)")                                                                \
    /* $1 playlist, $2 owner -> no row: the playlist is gone; else the attachment                               \
     * {"playlist": {id, name, songs: [{id, title, performer}]}} with the songs its owner can see. */            \
    X(EXPORT_PLAYLIST,                                                                                            \
      "SELECT json_build_object('playlist', json_build_object('id', p.id, 'name', p.name, 'songs', "              \
      "  coalesce((SELECT json_agg(json_build_object('id', s.id, 'title', s.title, 'performer', s.performer) "    \
      "  ORDER BY ps.added_at, ps.song_id) FROM playlist_songs ps JOIN songs s ON s.id = ps.song_id "             \
      "  WHERE ps.playlist_id = p.id AND " SC_PL_SONG_VISIBLE("$2::text", "(u.role = 'admin')") "), "             \
      "  '[]'::json)))::text, p.name "                                                                            \
      "FROM playlists p JOIN users u ON u.id = p.owner_id WHERE p.id = $1::text AND p.owner_id = $2::text")
/* clang-format on */

/* POST /export/playlists/{playlistId} {targetEmail}: enqueues a job that e-mails the playlist as JSON. */
int sc_api_export_playlist(sc_req *req);

/* Runs an export-playlist job ({playlistId, userId, targetEmail}): the playlist as its owner sees it now, mailed
 * as playlist.json. */
void sc_api_export_job_run(sc_job *job);

/* Whether s is an e-mail address we send to: a dot-atom local part (RFC 5322, no quoted strings) and a domain of
 * at least two labels whose last is alphabetic, ASCII only, 254 characters at most. Nothing that could break out
 * of a header line or an SMTP command passes. */
bool sc_api_email_valid(sc_slice s);

#endif
