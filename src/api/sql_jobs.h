/* SQL of background jobs: the queue's own statements (jobs/sql.h), the playlist export (request and job), and the
 * scheduled reports.
 *
 * An export request is a transaction of two statements: an advisory lock on the caller's exports, then one
 * statement that checks the playlist, counts the caller's exports of the last hour (the rate limit lives in the
 * jobs table itself), enqueues the job and notifies the workers. The lock makes the count exact when one user
 * sends many requests at once: the second statement of each waits for the previous transaction and, reading
 * committed data afresh, sees its job.
 *
 * Reports are built by the database as the CSV text itself (one row, no re-parsing): text fields are always
 * quoted (SC_CSV), and a field a spreadsheet would take for a formula gets a leading apostrophe. */
#ifndef SC_API_SQL_JOBS_H
#define SC_API_SQL_JOBS_H

#include "api/sql_playlists.h"
#include "jobs/sql.h"

/* The kind of a playlist export job. */
#define SC_JOB_EXPORT_PLAYLIST "export-playlist"

/* A text expression as one quoted CSV field. */
#define SC_CSV(E)                                                                                                 \
    "('\"' || replace(CASE WHEN (" E ") ~ '^[=+@\\t\\r-]' THEN '''' || (" E ") ELSE (" E ") END, '\"', '\"\"') "  \
    "|| '\"')"

#define SC_STMTS_JOBS(X)                                                                                          \
    SC_JOBS_STMTS(X)                                                                                              \
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
      "FROM playlists p JOIN users u ON u.id = p.owner_id WHERE p.id = $1::text AND p.owner_id = $2::text")       \
    /* $1 from, $2 to (timestamps) -> one row: (CSV, data rows). Every song that has an owner (its artist):     \
     * plays, likes given and ratings given or changed in [from, to). */                                        \
    X(REPORT_ARTISTS,                                                                                             \
      "WITH pl AS (SELECT song_id, count(*) AS n FROM plays "                                                     \
      "  WHERE played_at >= $1::timestamptz AND played_at < $2::timestamptz GROUP BY song_id), "                  \
      "lk AS (SELECT song_id, count(*) AS n FROM song_likes "                                                     \
      "  WHERE created_at >= $1::timestamptz AND created_at < $2::timestamptz GROUP BY song_id), "                \
      "rt AS (SELECT song_id, count(*) AS n, round(avg(rating), 2) AS average FROM ratings "                      \
      "  WHERE updated_at >= $1::timestamptz AND updated_at < $2::timestamptz GROUP BY song_id), "                \
      "r AS (SELECT u.id AS artist_id, u.username, s.id AS song_id, s.title, coalesce(pl.n, 0) AS plays, "        \
      "  coalesce(lk.n, 0) AS likes, coalesce(rt.n, 0) AS ratings, rt.average "                                   \
      "  FROM songs s JOIN users u ON u.id = s.owner_id LEFT JOIN pl ON pl.song_id = s.id "                       \
      "  LEFT JOIN lk ON lk.song_id = s.id LEFT JOIN rt ON rt.song_id = s.id) "                                   \
      "SELECT 'artist_id,artist,song_id,title,plays,likes,ratings,average_rating' || E'\\r\\n' || "               \
      "  coalesce(string_agg(" SC_CSV("artist_id") " || ',' || " SC_CSV("username") " || ',' || "                 \
      "  " SC_CSV("song_id") " || ',' || " SC_CSV("title") " || ',' || plays || ',' || likes || ',' || "          \
      "  ratings || ',' || coalesce(average::text, ''), E'\\r\\n' ORDER BY lower(username), username, "           \
      "  lower(title), song_id) || E'\\r\\n', ''), count(*) FROM r")                                              \
    /* $1 from, $2 to -> one row: (CSV, new songs, top liked songs). Public, unflagged songs only: new ones      \
     * (created in [from, to)) and the ten most liked in [from, to). */                                          \
    X(REPORT_DIGEST,                                                                                              \
      "WITH n AS (SELECT row_number() OVER (ORDER BY s.created_at, s.id) AS rank, s.id, s.title, s.performer, "   \
      "  (SELECT count(*) FROM song_likes l WHERE l.song_id = s.id AND l.created_at >= $1::timestamptz "          \
      "  AND l.created_at < $2::timestamptz) AS likes FROM songs s WHERE s.created_at >= $1::timestamptz "        \
      "  AND s.created_at < $2::timestamptz AND s.visibility = 'public' AND NOT s.flagged), "                     \
      "t AS (SELECT row_number() OVER (ORDER BY count(*) DESC, s.id) AS rank, s.id, s.title, s.performer, "       \
      "  count(*) AS likes FROM song_likes l JOIN songs s ON s.id = l.song_id "                                   \
      "  WHERE l.created_at >= $1::timestamptz AND l.created_at < $2::timestamptz AND s.visibility = 'public' "    \
      "  AND NOT s.flagged GROUP BY s.id ORDER BY count(*) DESC, s.id LIMIT 10), "                                \
      "r AS (SELECT 1 AS part, 'new' AS list, * FROM n UNION ALL SELECT 2, 'top_liked', * FROM t) "               \
      "SELECT 'list,rank,song_id,title,performer,likes' || E'\\r\\n' || coalesce(string_agg(list || ',' || "      \
      "  rank || ',' || " SC_CSV("id") " || ',' || " SC_CSV("title") " || ',' || " SC_CSV("performer") " || ',' " \
      "  || likes, E'\\r\\n' ORDER BY part, rank) || E'\\r\\n', ''), (SELECT count(*) FROM n), "                  \
      "  (SELECT count(*) FROM t) FROM r")

#endif
