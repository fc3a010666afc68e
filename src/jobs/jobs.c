/* The job runtime: claiming, running, leases, outcomes, shutdown, and the scheduler (see jobs.h).
 *
 * What wakes the workers to claim (one claim statement in flight at a time; a wake during it claims again after):
 *   - a notification on the LISTEN connection, or that connection coming (back) up;
 *   - the wake timer, set after each claim that left slots free to when the next queued job is due or the next
 *     lease expires (JOB_NEXT_DUE), but never later than poll_ms, and sooner after a failed claim;
 *   - a job finishing (its slot is free again).
 *
 * A claimed job is a `run` in the list of runs: RUNNING while its handler works (the heartbeat extends its
 * lease), SETTLING while the statement that records its outcome (done, failed, or given back) is in flight.
 * Stopping waits until the list is empty and no claim is in flight. */
#include "jobs/jobs.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/random.h"
#include "db/listen.h"
#include "jobs/sql.h"

#define CLAIM_RETRY_MIN_MS 250
#define NEXT_DUE_MIN_MS 50
#define SCHEDULE_RETRY_MS 10000
#define SCHEDULE_MAX_SLEEP_S 3600

typedef enum { RUN_RUNNING, RUN_SETTLING } run_phase;
typedef enum { OUTCOME_DONE, OUTCOME_FAILED, OUTCOME_RELEASED } run_outcome;

typedef struct run {
    sc_job super;
    sc_jobs *jobs;
    struct run *prev, *next;
    const sc_job_kind *kind;
    char kind_name[64];
    run_phase phase;
    run_outcome outcome; /* while SETTLING */
    uint64_t started_ms;
    sc_pg_query *query; /* the outcome statement in flight */
} run;

typedef struct schedule_entry {
    sc_jobs *jobs;
    sc_job_schedule s;
    char done_key[24]; /* the period already enqueued (or found enqueued) */
    char key[24];      /* the period of the statement in flight */
    sc_pg_query *query;
} schedule_entry;

struct sc_jobs {
    uv_loop_t *loop;
    sc_jobs_config cfg;
    char *kinds_param; /* {kind,kind} */
    char lease_param[24];
    char max_attempts_param[16];
    sc_pg_listener *listener;
    uv_timer_t wake, heartbeat, grace, schedule;
    sc_pg_query *claim_q, *next_q, *extend_q;
    unsigned claim_limit; /* how many the claim in flight asked for */
    bool claim_again;
    uint64_t claim_backoff_ms;
    run *runs;
    unsigned nrunning; /* runs in RUNNING */
    schedule_entry schedules[SC_JOBS_MAX_SCHEDULES];
    size_t nschedules;
    bool stopping, closing;
    unsigned open_handles;
    void (*on_stopped)(void *data);
    void *stopped_data;
};

static void claim(sc_jobs *j);
static void maybe_stopped(sc_jobs *j);

static run *run_of(sc_job *job) { return (run *)job; }

static void run_unlink_free(run *r)
{
    sc_jobs *j = r->jobs;
    if (r->prev)
        r->prev->next = r->next;
    else
        j->runs = r->next;
    if (r->next)
        r->next->prev = r->prev;
    json_decref(r->super.payload);
    free(r);
}

static void format_i64(char *out, size_t len, int64_t v) { snprintf(out, len, "%" PRId64, v); }

/* ---- outcomes --------------------------------------------------------------------------------------------- */

static void on_settled(void *data, const char *err, PGresult *res)
{
    run *r = data;
    sc_jobs *j = r->jobs;
    r->query = NULL;
    /* JOB_DONE and JOB_FAIL return a row, JOB_RELEASE a count, only when the job was still ours. */
    bool ours = !err && PQntuples(res) == 1 &&
                (r->outcome != OUTCOME_RELEASED || strcmp(PQgetvalue(res, 0, 0), "0") != 0);
    if (err) {
        sc_log_warn("job %" PRId64 " (%s): could not record its outcome: %s%s%s; it runs again once its lease "
                    "expires",
                    r->super.id, r->kind_name, err, res ? ": " : "", res ? PQresultErrorMessage(res) : "");
    } else if (!ours) {
        sc_log_warn("job %" PRId64 " (%s): its lease had expired and another worker took it over", r->super.id,
                    r->kind_name);
    } else if (r->outcome == OUTCOME_FAILED && strcmp(PQgetvalue(res, 0, 0), "dead") == 0) {
        sc_log_error("job %" PRId64 " (%s) is dead after attempt %d of %d", r->super.id, r->kind_name,
                     r->super.attempt, r->super.max_attempts);
    }
    run_unlink_free(r);
    if (j->stopping)
        maybe_stopped(j);
    else
        claim(j);
}

/* The delay before attempt `attempt + 1`: retry_base_ms doubled per attempt made, capped, plus up to a fifth of
 * jitter so that jobs failing together do not retry together. */
static uint64_t backoff_ms(const sc_jobs *j, int attempt)
{
    uint64_t d = j->cfg.retry_base_ms ? j->cfg.retry_base_ms : 1;
    for (int i = 1; i < attempt && d < j->cfg.retry_max_ms; i++)
        d *= 2;
    if (d > j->cfg.retry_max_ms)
        d = j->cfg.retry_max_ms;
    return d + sc_random_below(d / 5 + 1);
}

/* Ends a run's RUNNING phase and sends the statement that records how it ended. */
static void settle(run *r, run_outcome outcome, int stmt, int nparams, const char *const *params)
{
    sc_jobs *j = r->jobs;
    r->phase = RUN_SETTLING;
    r->outcome = outcome;
    j->nrunning--;
    r->query = sc_pg_exec(j->cfg.pg, stmt, nparams, params, on_settled, r);
}

void sc_jobs_done(sc_job *job)
{
    run *r = run_of(job);
    sc_jobs *j = r->jobs;
    char id[24], attempt[16];
    format_i64(id, sizeof(id), job->id);
    snprintf(attempt, sizeof(attempt), "%d", job->attempt);
    sc_log_info("job %" PRId64 " (%s) done (attempt %d, %" PRIu64 " ms)", job->id, r->kind_name, job->attempt,
                uv_now(j->loop) - r->started_ms);
    const char *params[] = {id, attempt};
    settle(r, OUTCOME_DONE, j->cfg.stmts.done, 2, params);
}

void sc_jobs_fail(sc_job *job, const char *error, bool permanent)
{
    run *r = run_of(job);
    sc_jobs *j = r->jobs;
    char id[24], attempt[16], delay[24];
    format_i64(id, sizeof(id), job->id);
    snprintf(attempt, sizeof(attempt), "%d", job->attempt);
    uint64_t ms = backoff_ms(j, job->attempt);
    snprintf(delay, sizeof(delay), "%" PRIu64, ms);
    bool last = permanent || job->attempt >= job->max_attempts;
    if (last)
        sc_log_warn("job %" PRId64 " (%s) failed (attempt %d of %d%s): %s", job->id, r->kind_name, job->attempt,
                    job->max_attempts, permanent ? ", permanent" : "", error);
    else
        sc_log_warn("job %" PRId64 " (%s) failed (attempt %d of %d): %s; next attempt in %" PRIu64 " ms", job->id,
                    r->kind_name, job->attempt, job->max_attempts, error, ms);
    const char *params[] = {id, attempt, error ? error : "failed", delay, permanent ? "true" : "false"};
    settle(r, OUTCOME_FAILED, j->cfg.stmts.fail, 5, params);
}

/* Gives a job back untried: it was claimed while stopping, or its handler was cancelled. */
static void release(run *r)
{
    sc_jobs *j = r->jobs;
    char id[24], attempt[16];
    format_i64(id, sizeof(id), r->super.id);
    snprintf(attempt, sizeof(attempt), "%d", r->super.attempt);
    sc_log_info("job %" PRId64 " (%s) given back to the queue: the worker is stopping", r->super.id, r->kind_name);
    const char *params[] = {id, attempt};
    settle(r, OUTCOME_RELEASED, j->cfg.stmts.release, 2, params);
}

/* ---- claiming ------------------------------------------------------------------------------------------------
 */

static void on_wake_timer(uv_timer_t *t) { claim(t->data); }

static void on_notified(void *data, const char *channel, const char *payload) { claim(data); }

static void on_next_due(void *data, const char *err, PGresult *res)
{
    sc_jobs *j = data;
    j->next_q = NULL;
    uint64_t ms = j->cfg.poll_ms;
    if (!err && PQntuples(res) == 1 && !PQgetisnull(res, 0, 0)) {
        unsigned long long due = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
        if (due < ms)
            ms = due;
    }
    if (ms < NEXT_DUE_MIN_MS)
        ms = NEXT_DUE_MIN_MS; /* due but locked by another worker's claim: look again shortly */
    if (!j->stopping)
        uv_timer_start(&j->wake, on_wake_timer, ms, 0);
}

static run *start_run(sc_jobs *j, PGresult *res, int row)
{
    run *r = sc_calloc(sizeof(*r));
    r->jobs = j;
    r->super.id = strtoll(PQgetvalue(res, row, 0), NULL, 10);
    snprintf(r->kind_name, sizeof(r->kind_name), "%s", PQgetvalue(res, row, 1));
    r->super.kind = r->kind_name;
    r->super.attempt = (int)strtol(PQgetvalue(res, row, 3), NULL, 10);
    r->super.max_attempts = (int)strtol(PQgetvalue(res, row, 4), NULL, 10);
    r->super.app = j->cfg.app;
    r->super.loop = j->loop;
    r->started_ms = uv_now(j->loop);
    r->phase = RUN_RUNNING;
    r->next = j->runs;
    if (j->runs)
        j->runs->prev = r;
    j->runs = r;
    j->nrunning++;
    for (size_t k = 0; k < j->cfg.nkinds; k++)
        if (strcmp(j->cfg.kinds[k].name, r->kind_name) == 0)
            r->kind = &j->cfg.kinds[k];
    json_error_t jerr;
    r->super.payload = json_loads(PQgetvalue(res, row, 2), JSON_REJECT_DUPLICATES, &jerr);
    return r;
}

static void on_claimed(void *data, const char *err, PGresult *res)
{
    sc_jobs *j = data;
    j->claim_q = NULL;
    if (err) {
        if (j->stopping) {
            maybe_stopped(j);
            return;
        }
        j->claim_backoff_ms = j->claim_backoff_ms ? j->claim_backoff_ms * 2 : CLAIM_RETRY_MIN_MS;
        if (j->claim_backoff_ms > j->cfg.poll_ms)
            j->claim_backoff_ms = j->cfg.poll_ms;
        if (err == SC_PG_ERR_QUERY)
            sc_log_error("claiming jobs failed: %s", PQresultErrorMessage(res));
        else
            sc_log_debug("claiming jobs failed: %s; again in %" PRIu64 " ms", err, j->claim_backoff_ms);
        uv_timer_start(&j->wake, on_wake_timer, j->claim_backoff_ms, 0);
        return;
    }
    j->claim_backoff_ms = 0;
    int n = PQntuples(res);
    for (int i = 0; i < n; i++) {
        run *r = start_run(j, res, i);
        if (j->stopping) {
            release(r);
        } else if (!r->kind) {
            sc_jobs_fail(&r->super, "no handler for this kind of job", true);
        } else if (!json_is_object(r->super.payload)) {
            sc_jobs_fail(&r->super, "the payload is not a JSON object", true);
        } else {
            sc_log_debug("job %" PRId64 " (%s) started (attempt %d of %d)", r->super.id, r->kind_name,
                         r->super.attempt, r->super.max_attempts);
            r->kind->run(&r->super);
        }
    }
    if (j->stopping) {
        maybe_stopped(j);
        return;
    }
    if ((unsigned)n >= j->claim_limit || j->claim_again) {
        /* There may be more. When every slot is taken, this claims nothing: a finishing job claims again. */
        j->claim_again = false;
        claim(j);
        return;
    }
    if (!j->next_q) {
        const char *params[] = {j->kinds_param};
        j->next_q = sc_pg_exec(j->cfg.pg, j->cfg.stmts.next_due, 1, params, on_next_due, j);
    }
}

static void claim(sc_jobs *j)
{
    if (j->stopping)
        return;
    if (j->claim_q) {
        j->claim_again = true;
        return;
    }
    if (j->nrunning >= j->cfg.concurrency)
        return;
    uv_timer_stop(&j->wake);
    if (j->next_q) {
        sc_pg_cancel(j->next_q);
        j->next_q = NULL;
    }
    char limit[16];
    j->claim_limit = j->cfg.concurrency - j->nrunning;
    snprintf(limit, sizeof(limit), "%u", j->claim_limit);
    const char *params[] = {limit, j->lease_param, j->kinds_param};
    j->claim_q = sc_pg_exec(j->cfg.pg, j->cfg.stmts.claim, 3, params, on_claimed, j);
}

/* ---- heartbeat -------------------------------------------------------------------------------------------- */

static void on_extended(void *data, const char *err, PGresult *res)
{
    sc_jobs *j = data;
    j->extend_q = NULL;
    if (err)
        sc_log_warn("could not extend the leases of running jobs: %s",
                    err == SC_PG_ERR_QUERY ? PQresultErrorMessage(res) : err);
    if (j->stopping)
        maybe_stopped(j);
}

static void on_heartbeat(uv_timer_t *t)
{
    sc_jobs *j = t->data;
    if (j->extend_q || j->nrunning == 0)
        return;
    sc_buf ids = {0}, attempts = {0};
    sc_buf_append_char(&ids, '{');
    sc_buf_append_char(&attempts, '{');
    for (run *r = j->runs; r; r = r->next) {
        if (r->phase != RUN_RUNNING)
            continue;
        if (ids.len > 1) {
            sc_buf_append_char(&ids, ',');
            sc_buf_append_char(&attempts, ',');
        }
        sc_buf_append_i64(&ids, r->super.id);
        sc_buf_append_i64(&attempts, r->super.attempt);
    }
    sc_buf_append(&ids, "}", 2);
    sc_buf_append(&attempts, "}", 2);
    const char *params[] = {ids.ptr, attempts.ptr, j->lease_param};
    j->extend_q = sc_pg_exec(j->cfg.pg, j->cfg.stmts.extend, 3, params, on_extended, j);
    sc_buf_free(&ids);
    sc_buf_free(&attempts);
}

/* ---- scheduler -------------------------------------------------------------------------------------------- */

static void schedule_tick(sc_jobs *j);

static void on_schedule_timer(uv_timer_t *t) { schedule_tick(t->data); }

static void on_enqueued_once(void *data, const char *err, PGresult *res)
{
    schedule_entry *e = data;
    sc_jobs *j = e->jobs;
    e->query = NULL;
    if (err) {
        sc_log_warn("could not enqueue scheduled job %s for %s: %s; trying again in %d s", e->s.name, e->key,
                    err == SC_PG_ERR_QUERY ? PQresultErrorMessage(res) : err, SCHEDULE_RETRY_MS / 1000);
        if (!j->stopping)
            uv_timer_start(&j->schedule, on_schedule_timer, SCHEDULE_RETRY_MS, 0);
        return;
    }
    memcpy(e->done_key, e->key, sizeof(e->done_key));
    if (PQntuples(res) == 1 && !PQgetisnull(res, 0, 0))
        sc_log_info("scheduled %s for period %s (job %s)", e->s.name, e->key, PQgetvalue(res, 0, 0));
    else
        sc_log_debug("scheduled job %s for period %s was already enqueued", e->s.name, e->key);
}

/* Enqueues each schedule's current period unless done already, and sleeps until the next period begins (at most
 * an hour, so that a wall clock that jumps is noticed). */
static void schedule_tick(sc_jobs *j)
{
    if (j->stopping || j->nschedules == 0)
        return;
    int64_t now = (int64_t)time(NULL);
    int64_t next = now + SCHEDULE_MAX_SLEEP_S;
    for (size_t i = 0; i < j->nschedules; i++) {
        schedule_entry *e = &j->schedules[i];
        sc_job_period p;
        sc_jobs_period(e->s.every, now, &p);
        if (p.next < next)
            next = p.next;
        if (e->query || strcmp(e->done_key, p.key) == 0)
            continue;
        memcpy(e->key, p.key, sizeof(e->key));
        char dedupe[sizeof(e->s.name) + sizeof(p.key) + 2];
        snprintf(dedupe, sizeof(dedupe), "%s:%s", e->s.name, p.key);
        json_t *payload = json_pack("{s:s, s:s, s:s, s:s, s:s}", "schedule", e->s.name, "period", p.key, "label",
                                    p.label, "from", p.from, "to", p.to);
        char *text = json_dumps(payload, JSON_COMPACT);
        const char *params[] = {e->s.name, text, dedupe, j->max_attempts_param};
        e->query = sc_pg_exec(j->cfg.pg, j->cfg.stmts.enqueue_once, 4, params, on_enqueued_once, e);
        free(text);
        json_decref(payload);
    }
    /* A second past the boundary, so that the new period's key is what the clock says then. */
    uint64_t ms = (uint64_t)(next - now) * 1000 + 1000;
    uv_timer_start(&j->schedule, on_schedule_timer, ms, 0);
}

/* ---- lifecycle -------------------------------------------------------------------------------------------- */

sc_jobs *sc_jobs_new(uv_loop_t *loop, const sc_jobs_config *cfg)
{
    sc_jobs *j = sc_calloc(sizeof(*j));
    j->loop = loop;
    j->cfg = *cfg;
    if (j->cfg.concurrency == 0)
        j->cfg.concurrency = 1;
    if (j->cfg.lease_ms < 100)
        j->cfg.lease_ms = 100;
    if (j->cfg.poll_ms == 0)
        j->cfg.poll_ms = 30000;
    if (j->cfg.retry_max_ms < j->cfg.retry_base_ms)
        j->cfg.retry_max_ms = j->cfg.retry_base_ms;
    j->cfg.schedules = NULL; /* parsed below; the string is not kept */
    snprintf(j->lease_param, sizeof(j->lease_param), "%" PRIu64, j->cfg.lease_ms);
    snprintf(j->max_attempts_param, sizeof(j->max_attempts_param), "%u",
             cfg->scheduled_max_attempts ? cfg->scheduled_max_attempts : 5);
    sc_buf kinds = {0};
    sc_buf_append_char(&kinds, '{');
    for (size_t k = 0; k < cfg->nkinds; k++) {
        if (k)
            sc_buf_append_char(&kinds, ',');
        sc_buf_append_str(&kinds, cfg->kinds[k].name); /* names are [a-z0-9-]: nothing to quote */
    }
    sc_buf_append(&kinds, "}", 2);
    j->kinds_param = kinds.ptr;

    sc_job_schedule parsed[SC_JOBS_MAX_SCHEDULES];
    char err[256];
    int n = sc_jobs_parse_schedules(cfg->schedules, parsed, SC_JOBS_MAX_SCHEDULES, err, sizeof(err));
    if (n < 0) {
        sc_log_error("%s", err); /* checked at startup; unreachable */
        n = 0;
    }
    for (int i = 0; i < n; i++) {
        j->schedules[i].jobs = j;
        j->schedules[i].s = parsed[i];
    }
    j->nschedules = (size_t)n;

    uv_timer_t *timers[] = {&j->wake, &j->heartbeat, &j->grace, &j->schedule};
    for (size_t i = 0; i < sizeof(timers) / sizeof(timers[0]); i++) {
        uv_timer_init(loop, timers[i]);
        timers[i]->data = j;
    }
    j->open_handles = 4;
    uint64_t beat = j->cfg.lease_ms / 3 ? j->cfg.lease_ms / 3 : 1;
    uv_timer_start(&j->heartbeat, on_heartbeat, beat, beat);
    sc_pg_listener_config lc = {.conninfo = cfg->conninfo,
                                .channel = SC_JOBS_CHANNEL,
                                .what = "job",
                                .app_name = "staccato-jobs",
                                .connect_timeout_ms = cfg->connect_timeout_ms,
                                .heartbeat_ms = cfg->listen_heartbeat_ms};
    j->listener = sc_pg_listener_new(loop, &lc, on_notified, j);
    sc_log_info("job workers started: %u at once, kinds %s%s%s", j->cfg.concurrency, j->kinds_param,
                j->nschedules ? ", schedules " : "", j->nschedules ? cfg->schedules : "");
    claim(j);
    schedule_tick(j);
    return j;
}

static void handle_gone(sc_jobs *j)
{
    if (--j->open_handles > 0)
        return;
    void (*cb)(void *) = j->on_stopped;
    void *data = j->stopped_data;
    free(j->kinds_param);
    free(j);
    sc_log_info("job workers stopped");
    if (cb)
        cb(data);
}

static void on_handle_closed(uv_handle_t *h) { handle_gone(h->data); }

static void on_listener_closed(void *data) { handle_gone(data); }

/* Closes everything once no run, claim or outcome statement is left. */
static void maybe_stopped(sc_jobs *j)
{
    if (!j->stopping || j->closing || j->runs || j->claim_q || j->extend_q)
        return;
    j->closing = true;
    uv_close((uv_handle_t *)&j->wake, on_handle_closed);
    uv_close((uv_handle_t *)&j->heartbeat, on_handle_closed);
    uv_close((uv_handle_t *)&j->grace, on_handle_closed);
    uv_close((uv_handle_t *)&j->schedule, on_handle_closed);
}

/* The grace period is over: cancel what still runs and give it back. */
static void on_grace(uv_timer_t *t)
{
    sc_jobs *j = t->data;
    run *r = j->runs;
    while (r) {
        run *next = r->next;
        if (r->phase == RUN_RUNNING) {
            if (r->kind && r->kind->cancel)
                r->kind->cancel(&r->super);
            release(r);
        }
        r = next;
    }
    maybe_stopped(j);
}

void sc_jobs_stop(sc_jobs *j, void (*on_stopped)(void *data), void *data)
{
    j->stopping = true;
    j->on_stopped = on_stopped;
    j->stopped_data = data;
    uv_timer_stop(&j->wake);
    uv_timer_stop(&j->schedule);
    if (j->next_q) {
        sc_pg_cancel(j->next_q);
        j->next_q = NULL;
    }
    /* An enqueue in flight commits or not on its own; its dedupe key makes the next start's try harmless. */
    for (size_t i = 0; i < j->nschedules; i++) {
        sc_pg_cancel(j->schedules[i].query);
        j->schedules[i].query = NULL;
    }
    /* The listener closes on its own; it is one more handle to wait for. */
    j->open_handles++;
    sc_pg_listener_close(j->listener, on_listener_closed, j);
    j->listener = NULL;
    if (j->nrunning) {
        sc_log_info("stopping job workers: %u running job%s get%s %" PRIu64 " ms to finish", j->nrunning,
                    j->nrunning == 1 ? "" : "s", j->nrunning == 1 ? "s" : "", j->cfg.stop_timeout_ms);
        uv_timer_start(&j->grace, on_grace, j->cfg.stop_timeout_ms, 0);
    }
    maybe_stopped(j);
}
