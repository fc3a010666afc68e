/* Durable background jobs: a queue in PostgreSQL, workers on the event loop, and a cron-like scheduler.
 *
 * Jobs are rows of the `jobs` table, inserted by the application in the same statement or transaction as the
 * writes that ask for them (so a job exists exactly when its request committed) and announced with
 * pg_notify('staccato_jobs'). A runtime in each process that runs workers:
 *
 *   - LISTENs on a dedicated connection of its own and claims work when notified; a fallback timer (poll_ms)
 *     and a timer set to the next due job or expiring lease catch what notifications cannot tell;
 *   - claims up to `concurrency` jobs at once through the shared pool (FOR UPDATE SKIP LOCKED), each with a lease
 *     (locked_until) that a heartbeat extends while the job runs. A job whose worker died is claimed again once
 *     its lease expires;
 *   - records the outcome: done; or queued again with exponential backoff, or dead after max_attempts (or a
 *     permanent failure), with last_error;
 *   - enqueues scheduled jobs once per period (INSERT ... ON CONFLICT (dedupe_key) DO NOTHING), however many
 *     processes run the same schedule.
 *
 * Delivery is at least once: a worker that dies after its job's effect (an e-mail sent) but before recording it
 * leaves the job to be run again. Handlers must be idempotent or make repeats recognisable.
 *
 * Handlers run on the loop and must never block; they finish with sc_jobs_done or sc_jobs_fail, now or later. */
#ifndef SC_JOBS_JOBS_H
#define SC_JOBS_JOBS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "db/pg.h"

typedef struct sc_jobs sc_jobs;

/* One claimed job as its handler sees it. Valid from the kind's run until sc_jobs_done/sc_jobs_fail or the
 * kind's cancel returns. */
typedef struct sc_job {
    int64_t id;
    const char *kind;
    json_t *payload; /* the payload object (borrowed) */
    int attempt;     /* 1 on the first run */
    int max_attempts;
    void *app; /* sc_jobs_config.app */
    uv_loop_t *loop;
    void *data; /* the handler's own state */
} sc_job;

/* A kind of job: its name (the `kind` column) and its handler. */
typedef struct sc_job_kind {
    const char *name;
    /* Starts the job; it ends with sc_jobs_done or sc_jobs_fail (from run itself or any later callback). */
    void (*run)(sc_job *job);
    /* The runtime is stopping and will not wait any longer: stop every pending operation and free job->data.
     * Neither sc_jobs_done nor sc_jobs_fail may be called afterwards; the job is given back to the queue. */
    void (*cancel)(sc_job *job);
    /* Whether STACCATO_SCHEDULES may name this kind (its payload is then sc_jobs_period's, see below). */
    bool schedulable;
} sc_job_kind;

/* The job succeeded. */
void sc_jobs_done(sc_job *job);
/* The job failed with a message (kept as last_error). It runs again after a backoff unless this was its last
 * attempt or the failure is permanent (nothing a retry could change), in which case it is dead. */
void sc_jobs_fail(sc_job *job, const char *error, bool permanent);

/* The queue's prepared statements (jobs/sql.h), as indices into the pool's statement table. */
typedef struct sc_jobs_stmts {
    int claim, next_due, extend, done, fail, release, enqueue_once;
} sc_jobs_stmts;

typedef struct sc_jobs_config {
    sc_pg_pool *pg;       /* the shared pool: claims and updates */
    const char *conninfo; /* for the LISTEN connection of the runtime's own */
    uint64_t connect_timeout_ms;
    uint64_t listen_heartbeat_ms; /* of the LISTEN connection (db/listen.h) */
    sc_jobs_stmts stmts;
    const sc_job_kind *kinds; /* borrowed; the kinds this process runs */
    size_t nkinds;
    void *app;                /* handed to handlers as job->app */
    unsigned concurrency;     /* jobs running at once */
    uint64_t lease_ms;        /* a claim's lease; the heartbeat renews it every third of it */
    uint64_t poll_ms;         /* fallback look at the queue when nothing else wakes the workers */
    uint64_t retry_base_ms;   /* delay before the second attempt; doubles with each further one */
    uint64_t retry_max_ms;    /* longest delay between attempts */
    uint64_t stop_timeout_ms; /* on stop, time running jobs get to finish before they are given back */
    const char *schedules;    /* STACCATO_SCHEDULES, checked beforehand with sc_jobs_check_schedules */
    unsigned scheduled_max_attempts;
} sc_jobs_config;

/* Starts the workers (and the scheduler) on the loop. The configuration is copied; kinds, pg and app are
 * borrowed and must outlive the runtime. */
sc_jobs *sc_jobs_new(uv_loop_t *loop, const sc_jobs_config *cfg);
/* Stops claiming, waits up to stop_timeout_ms for running jobs, cancels and gives back those still running, and
 * calls on_stopped (never from inside this call) once every handle is closed and every update is recorded; the
 * runtime is freed then. The pool must stay open until on_stopped. */
void sc_jobs_stop(sc_jobs *j, void (*on_stopped)(void *data), void *data);

/* ---- schedules -------------------------------------------------------------------------------------------- */

typedef enum { SC_EVERY_HOUR, SC_EVERY_DAY, SC_EVERY_WEEK, SC_EVERY_MONTH } sc_job_every;

/* One entry of STACCATO_SCHEDULES: `name@hourly|daily|weekly|monthly`. */
typedef struct sc_job_schedule {
    char name[48];
    sc_job_every every;
} sc_job_schedule;

#define SC_JOBS_MAX_SCHEDULES 16

/* Parses a comma-separated list of schedules (empty: none) into out (at most max). Returns the count, or -1 with
 * a message in err. */
int sc_jobs_parse_schedules(const char *spec, sc_job_schedule *out, size_t max, char *err, size_t errlen);
/* Parses spec and checks that every name is a schedulable kind of the table. Returns 0 or -1 with a message. */
int sc_jobs_check_schedules(const char *spec, const sc_job_kind *kinds, size_t nkinds, char *err, size_t errlen);

/* A period of a schedule, in UTC. A scheduled job is enqueued once per period (its dedupe key is
 * "<name>:<key>") and reports on the period before it, [from, to). */
typedef struct sc_job_period {
    char key[24];   /* the current period: 2026-11-22T10, 2026-11-22, 2026-W47, 2026-11 */
    char label[24]; /* the previous period, written the same way */
    char from[24];  /* start of the previous period, 2026-10-01T00:00:00Z */
    char to[24];    /* start of the current period */
    int64_t next;   /* start of the next period, in seconds since the epoch */
} sc_job_period;

/* The period of `every` that contains `now` (seconds since the epoch). */
void sc_jobs_period(sc_job_every every, int64_t now, sc_job_period *out);

#endif
