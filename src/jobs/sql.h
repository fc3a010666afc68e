/* The SQL of the durable job queue (the `jobs` table of db/migrations/0001_init.sql).
 *
 * The application prepares these with its own statements (api/jobs.h lists them in its table) and hands their
 * indices to the runtime in sc_jobs_stmts, so that the queue runs on the shared pool with prepared statements.
 *
 * A job's attempt number doubles as a fencing token: every statement that changes a running job names the attempt
 * it claimed (`attempts = $2`). A worker whose lease expired while it was still busy, and whose job another worker
 * has claimed since, therefore changes nothing when it finishes; it only learns that it lost the job.
 *
 * Times are computed by the database (now() plus a number of milliseconds), so the workers' clocks never matter.
 * Each statement wakes the other workers itself where that is useful (pg_notify in the same statement, delivered
 * when its transaction commits). */
#ifndef SC_JOBS_SQL_H
/* clang-format off */
#define SC_JOBS_SQL_H
/* clang-format on */

/* The channel every enqueue notifies and every worker LISTENs on. */
#define SC_JOBS_CHANNEL "staccato_jobs"

/* Whether the claimed row j is a running job whose lease expired on its last allowed attempt. */
#define SC_JOBS_EXPIRED_LAST "(j.state = 'running' AND j.attempts >= j.max_attempts)"

#define SC_JOBS_STMTS(X)                                                                                          \
    /* $1 how many, $2 lease in ms, $3 kinds (text[]) -> the claimed jobs: (id, kind, payload, attempt,           \
     * max_attempts). Due queued jobs and running jobs whose lease expired (their worker died) are claimable;     \
     * an expired job that was on its last attempt becomes dead instead of being claimed. */                      \
    X(JOB_CLAIM,                                                                                                  \
      "WITH c AS (SELECT id FROM jobs WHERE kind = ANY ($3::text[]) AND ((state = 'queued' AND run_at <= now()) " \
      "  OR (state = 'running' AND locked_until < now())) ORDER BY run_at, id LIMIT $1::int FOR UPDATE SKIP "     \
      "LOCKED), "                                                                                                 \
      "u AS (UPDATE jobs j SET "                                                                                  \
      "  state = CASE WHEN " SC_JOBS_EXPIRED_LAST " THEN 'dead' ELSE 'running' END, "                             \
      "  attempts = CASE WHEN " SC_JOBS_EXPIRED_LAST " THEN j.attempts ELSE j.attempts + 1 END, "                 \
      "  locked_until = CASE WHEN " SC_JOBS_EXPIRED_LAST " THEN NULL "                                            \
      "    ELSE now() + $2::bigint * interval '1 millisecond' END, "                                              \
      "  last_error = CASE WHEN j.state = 'running' THEN 'lease expired: the worker of attempt ' || j.attempts "  \
      "    || ' stopped without finishing' ELSE j.last_error END, "                                               \
      "  updated_at = now() "                                                                                     \
      "  FROM c WHERE j.id = c.id RETURNING j.id, j.kind, j.payload, j.attempts, j.max_attempts, j.state) "       \
      "SELECT id, kind, payload::text, attempts, max_attempts FROM u WHERE state = 'running' ORDER BY id")        \
    /* $1 kinds (text[]) -> one row: milliseconds until the next queued job is due or the next lease expires      \
     * (0 when overdue), or NULL when there is neither. */                                                        \
    X(JOB_NEXT_DUE,                                                                                               \
      "SELECT greatest(0, ceil(extract(epoch FROM least("                                                         \
      "  (SELECT min(run_at) FROM jobs WHERE state = 'queued' AND kind = ANY ($1::text[])), "                     \
      "  (SELECT min(locked_until) FROM jobs WHERE state = 'running' AND kind = ANY ($1::text[]))) - now()) "     \
      "  * 1000))::bigint")                                                                                       \
    /* $1 ids (bigint[]), $2 their attempts (int[]), $3 lease in ms -> the ids still held. The heartbeat of       \
     * running jobs. */                                                                                           \
    X(JOB_EXTEND, "UPDATE jobs j SET locked_until = now() + $3::bigint * interval '1 millisecond' "               \
                  "FROM unnest($1::bigint[], $2::int[]) AS t(id, attempts) "                                      \
                  "WHERE j.id = t.id AND j.attempts = t.attempts AND j.state = 'running' RETURNING j.id")         \
    /* $1 id, $2 attempt -> a row when the job was still ours and is now done. */                                 \
    X(JOB_DONE, "UPDATE jobs SET state = 'done', locked_until = NULL, updated_at = now() "                        \
                "WHERE id = $1::bigint AND attempts = $2::int AND state = 'running' RETURNING id")                \
    /* $1 id, $2 attempt, $3 error, $4 retry delay in ms, $5 permanent ('true'/'false') -> (state) when the job   \
     * was still ours: queued again for later, or dead after its last attempt or a permanent failure. */          \
    X(JOB_FAIL,                                                                                                   \
      "UPDATE jobs SET state = CASE WHEN $5::boolean OR attempts >= max_attempts THEN 'dead' ELSE 'queued' END, " \
      "  run_at = now() + $4::bigint * interval '1 millisecond', locked_until = NULL, last_error = $3::text, "    \
      "  updated_at = now() "                                                                                     \
      "WHERE id = $1::bigint AND attempts = $2::int AND state = 'running' RETURNING state")                       \
    /* $1 id, $2 attempt -> (rows released). Gives a job back untried (the worker is stopping): the attempt does  \
     * not count, and another worker is woken for it. */                                                          \
    X(JOB_RELEASE,                                                                                                \
      "WITH u AS (UPDATE jobs SET state = 'queued', attempts = attempts - 1, locked_until = NULL, run_at = "      \
      "now(), "                                                                                                   \
      "  updated_at = now() WHERE id = $1::bigint AND attempts = $2::int AND state = 'running' RETURNING id), "   \
      "n AS (SELECT pg_notify('" SC_JOBS_CHANNEL "', id::text) FROM u) "                                          \
      "SELECT (SELECT count(*) FROM u), (SELECT count(*) FROM n)")                                                \
    /* $1 kind, $2 payload (JSON), $3 dedupe key, $4 max attempts -> (new id or NULL when that key exists).       \
     * Exactly once per key however many processes try at once. */                                                \
    X(JOB_ENQUEUE_ONCE,                                                                                           \
      "WITH ins AS (INSERT INTO jobs (kind, payload, dedupe_key, max_attempts) "                                  \
      "  VALUES ($1::text, $2::jsonb, $3::text, $4::int) ON CONFLICT (dedupe_key) DO NOTHING RETURNING id), "     \
      "n AS (SELECT pg_notify('" SC_JOBS_CHANNEL "', id::text) FROM ins) "                                        \
      "SELECT (SELECT id FROM ins), (SELECT count(*) FROM n)")

#endif
