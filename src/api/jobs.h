/* The background jobs the API runs (api/jobs.c): the job runtime wired into the application, the plumbing of jobs
 * that send mail, the scheduled reports and a job for tests (debug-sleep). The playlist export's job is the
 * export resource's (api/export.h), the mails of address verification and password resets api/user_email.h's.
 *
 * Reports are built by the database as the CSV text itself (one row, no re-parsing): text fields are always
 * quoted (SC_CSV), and a field a spreadsheet would take for a formula gets a leading apostrophe.
 *
 * Jobs are delivered at least once. A worker that dies after the SMTP server accepted a message and before the job
 * was marked done sends it again on the retry; every message names its job ("staccato-job-<id>" in its text, and
 * as its Message-ID on every attempt) so that a recipient can tell such a repeat from a new one. An SMTP 5xx is
 * final (the job is dead at once), a 4xx is retried like any transient failure. */
#ifndef SC_API_JOBS_H
#define SC_API_JOBS_H

#include <stdbool.h>
#include <stddef.h>

#include "db/pg.h"
#include "jobs/jobs.h"
#include "jobs/sql.h"
#include "outbound/outbound.h"
#include "settings.h"

/* A text expression as one quoted CSV field. */
#define SC_CSV(E)                                                                                                 \
    "('\"' || replace(CASE WHEN (" E ") ~ '^[=+@\\t\\r-]' THEN '''' || (" E ") ELSE (" E ") END, '\"', '\"\"') "  \
    "|| '\"')"

/* The queue's own statements (jobs/sql.h), then the reports'. */
/* clang-format off */
#define SC_STMTS_JOBS(X)                                                                                          \
    SC_JOBS_STMTS(X)                                                                                              \
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
/* clang-format on */

/* The state of a job that sends mail, between its query and its message (job->data). */
typedef struct sc_api_mail_job {
    sc_job *job;
    sc_pg_query *query; /* the job's query in flight, or NULL */
    sc_out_req *send;   /* the message being sent, or NULL */
    const char *to;
    const void *kind; /* what the job's own code needs to know about its kind */
} sc_api_mail_job;

/* Starts the mail state of job (job->data). */
sc_api_mail_job *sc_api_mail_job_new(sc_job *job);
/* The cancel function of a mail job's kind: stops its query or message and frees the state. */
void sc_api_mail_job_cancel(sc_job *job);
/* Ends the job as done without sending anything (nothing was left to send), freeing the state. */
void sc_api_mail_job_done(sc_api_mail_job *m);
/* Ends the job as failed (permanent: no retry) with error, freeing the state. */
void sc_api_mail_job_fail(sc_api_mail_job *m, const char *error, bool permanent);
/* Ends the job as failed after its query failed: the database's message, or the pool's sentinel. */
void sc_api_mail_job_db_fail(sc_api_mail_job *m, const char *err, PGresult *res);
/* Sends the message with one attachment (none when name is NULL); the job ends when the SMTP server has accepted
 * it (or refused it). */
void sc_api_mail_job_send(sc_api_mail_job *m, const char *to, const char *subject, const char *text,
                          const char *name, const char *type, const char *attachment, size_t len);
/* A string field of the job's payload, or NULL. */
const char *sc_api_job_payload_str(sc_job *job, const char *key);

/* The kinds of jobs the API runs (debug-sleep only when debug is set); *n is their count. The table is static. */
const sc_job_kind *sc_api_job_kinds(bool debug, size_t *n);

/* Checks the job settings at startup: STACCATO_SCHEDULES names known scheduled jobs, and reports have an address
 * to go to. Returns 0 or -1 with a one-line message. */
int sc_api_jobs_check(const sc_settings *st, char *err, size_t errlen);

typedef struct sc_app sc_app;
/* Starts the job runtime of this process from the settings, on app's loop, pool and outbound client. */
sc_jobs *sc_api_jobs_new(sc_app *app);

#endif
