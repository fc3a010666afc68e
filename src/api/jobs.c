/* The background jobs the API runs (api/jobs.h): mail plumbing, scheduled reports, debug-sleep, and the runtime.
 */
#include "api/jobs.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/db.h"
#include "api/export.h"
#include "api/user_email.h"
#include "core/log.h"
#include "core/mem.h"
#include "outbound/mail.h"

/* ---- jobs that send mail ----------------------------------------------------------------------------------- */

sc_api_mail_job *sc_api_mail_job_new(sc_job *job)
{
    sc_api_mail_job *m = sc_calloc(sizeof(*m));
    m->job = job;
    job->data = m;
    return m;
}

void sc_api_mail_job_cancel(sc_job *job)
{
    sc_api_mail_job *m = job->data;
    if (m->query)
        sc_pg_cancel(m->query);
    sc_outbound_cancel(m->send);
    free(m);
    job->data = NULL;
}

void sc_api_mail_job_done(sc_api_mail_job *m)
{
    sc_job *job = m->job;
    free(m);
    job->data = NULL;
    sc_jobs_done(job);
}

void sc_api_mail_job_fail(sc_api_mail_job *m, const char *error, bool permanent)
{
    sc_job *job = m->job;
    free(m);
    job->data = NULL;
    sc_jobs_fail(job, error, permanent);
}

void sc_api_mail_job_db_fail(sc_api_mail_job *m, const char *err, PGresult *res)
{
    char msg[512];
    snprintf(msg, sizeof(msg), "database: %s", err == SC_PG_ERR_QUERY && res ? PQresultErrorMessage(res) : err);
    msg[strcspn(msg, "\n")] = '\0';
    sc_api_mail_job_fail(m, msg, false);
}

static void on_mail_sent(void *data, const char *err)
{
    sc_api_mail_job *m = data;
    m->send = NULL;
    if (!err) {
        sc_api_mail_job_done(m);
        return;
    }
    const sc_settings *st = ((sc_app *)m->job->app)->settings;
    char msg[512];
    snprintf(msg, sizeof(msg), "SMTP %s:%llu: %s", st->smtp_host, st->smtp_port, err);
    /* An address or host the client refuses to use, or a message the SMTP server refused for good (5xx), will not
     * get better by retrying; a 4xx, a timeout or a broken connection may. */
    sc_api_mail_job_fail(m, msg, err == SC_OUT_ERR_INVALID || err == SC_OUT_ERR_REFUSED);
}

void sc_api_mail_job_send(sc_api_mail_job *m, const char *to, const char *subject, const char *text,
                          const char *name, const char *type, const char *attachment, size_t len)
{
    sc_app *app = m->job->app;
    const sc_settings *st = app->settings;
    if (!*st->smtp_host) {
        sc_api_mail_job_fail(m, "SMTP_HOST is not set", false);
        return;
    }
    sc_smtp_config smtp = {st->smtp_host, (unsigned)st->smtp_port, st->smtp_user, st->smtp_password,
                           st->smtp_require_tls};
    /* One Message-ID per job, whatever the attempt: a repeat after a crash is recognisably the same message. */
    char from[320], mid[400];
    const char *domain = "staccato.invalid";
    if (sc_outbound_mail_address(st->mail_from, from, sizeof(from)) == 0 && strrchr(from, '@') &&
        strspn(strrchr(from, '@') + 1, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") ==
            strlen(strrchr(from, '@') + 1))
        domain = strrchr(from, '@') + 1; /* a domain name; an address literal would not fit a msg-id */
    snprintf(mid, sizeof(mid), "staccato-job-%" PRId64 "@%s", m->job->id, domain);
    sc_mail mail = {st->mail_from, to, subject, text, name, type, attachment, len, mid};
    m->send = sc_outbound_smtp(app->outbound, &smtp, &mail, st->smtp_timeout_ms, on_mail_sent, m);
}

const char *sc_api_job_payload_str(sc_job *job, const char *key)
{
    return json_string_value(json_object_get(job->payload, key));
}

/* ---- scheduled reports: {schedule, period, label, from, to} ------------------------------------------------ */

/* A scheduled report: its statement, the start of its subject and file name, and the sentence of its message
 * (label and the row's columns 1 and 2 fill it, in that order). */
typedef struct report {
    int stmt;
    const char *subject; /* "<subject> <label>" */
    const char *file;    /* "<file>-<label>.csv" */
    const char *summary; /* a format taking label, column 1 and column 2 (which it may leave unused) */
} report;

static const report artist_report =
    {SC_STMT_REPORT_ARTISTS, "Staccato artist report", "artist-report",
     "Plays, likes and ratings of every artist's songs in %s (UTC), one row per song: %s songs.%.0s"};
static const report digest_report = {SC_STMT_REPORT_DIGEST, "Staccato daily digest", "daily-digest",
                                     "New songs and the most liked songs of %s (UTC): %s new, %s most liked."};

static void on_report_rows(void *data, const char *err, PGresult *res)
{
    sc_api_mail_job *m = data;
    const report *r = m->kind;
    m->query = NULL;
    if (err) {
        sc_api_mail_job_db_fail(m, err, res);
        return;
    }
    const char *label = sc_api_job_payload_str(m->job, "label");
    char subject[128], name[96], summary[400], text[512];
    snprintf(subject, sizeof(subject), "%s %s", r->subject, label);
    snprintf(name, sizeof(name), "%s-%s.csv", r->file, label);
    const char *third = PQnfields(res) > 2 ? PQgetvalue(res, 0, 2) : "";
    snprintf(summary, sizeof(summary), r->summary, label, PQgetvalue(res, 0, 1), third);
    snprintf(text, sizeof(text), "%s\r\n\r\nReference: staccato-job-%" PRId64 "\r\n", summary, m->job->id);
    sc_api_mail_job_send(m, m->to, subject, text, name, "text/csv", PQgetvalue(res, 0, 0),
                         (size_t)PQgetlength(res, 0, 0));
}

/* Runs a report's statement over [from, to) of the payload and mails its CSV (column 0) to STACCATO_REPORT_EMAIL.
 */
static void report_run(sc_job *job, const report *r)
{
    sc_app *app = job->app;
    sc_api_mail_job *m = sc_api_mail_job_new(job);
    m->kind = r;
    const char *from = sc_api_job_payload_str(job, "from"), *to = sc_api_job_payload_str(job, "to");
    if (!from || !to || !sc_api_job_payload_str(job, "label")) {
        sc_api_mail_job_fail(m, "the payload needs from, to and label", true);
        return;
    }
    if (!*app->settings->report_email) {
        sc_api_mail_job_fail(m, "STACCATO_REPORT_EMAIL is not set", false);
        return;
    }
    m->to = app->settings->report_email;
    m->query = SC_API_PG_EXEC(app->pg, r->stmt, on_report_rows, m, from, to);
}

static void artist_report_run(sc_job *job) { report_run(job, &artist_report); }
static void digest_run(sc_job *job) { report_run(job, &digest_report); }

/* ---- debug-sleep: {ms, fail?} (only with STACCATO_DEBUG_ROUTES) -------------------------------------------- */

/* Sleeps ms milliseconds, then succeeds, or fails with the message `fail`: a slow or failing job for tests. */
typedef struct sleep_job {
    uv_timer_t timer;
    sc_job *job; /* NULL once cancelled */
} sleep_job;

static void on_sleep_closed(uv_handle_t *h) { free(h->data); }

static void on_slept(uv_timer_t *t)
{
    sleep_job *s = t->data;
    sc_job *job = s->job;
    uv_close((uv_handle_t *)&s->timer, on_sleep_closed);
    job->data = NULL;
    const char *fail = sc_api_job_payload_str(job, "fail");
    if (fail)
        sc_jobs_fail(job, fail, false);
    else
        sc_jobs_done(job);
}

static void sleep_run(sc_job *job)
{
    json_int_t ms = json_integer_value(json_object_get(job->payload, "ms"));
    sleep_job *s = sc_calloc(sizeof(*s));
    s->job = job;
    job->data = s;
    uv_timer_init(job->loop, &s->timer);
    s->timer.data = s;
    uv_timer_start(&s->timer, on_slept, ms > 0 ? (uint64_t)ms : 0, 0);
}

static void sleep_cancel(sc_job *job)
{
    sleep_job *s = job->data;
    s->job = NULL;
    uv_close((uv_handle_t *)&s->timer, on_sleep_closed);
    job->data = NULL;
}

/* ---- the runtime -------------------------------------------------------------------------------------------- */

static const sc_job_kind kinds[] = {
    {SC_JOB_EXPORT_PLAYLIST, sc_api_export_job_run, sc_api_mail_job_cancel, false},
    {SC_JOB_VERIFY_EMAIL, sc_api_verify_email_job_run, sc_api_mail_job_cancel, false},
    {SC_JOB_PASSWORD_RESET, sc_api_password_reset_job_run, sc_api_mail_job_cancel, false},
    {"monthly-artist-report", artist_report_run, sc_api_mail_job_cancel, true},
    {"daily-digest", digest_run, sc_api_mail_job_cancel, true},
    {"debug-sleep", sleep_run, sleep_cancel, false}, /* last: only with debug routes */
};

const sc_job_kind *sc_api_job_kinds(bool debug, size_t *n)
{
    *n = sizeof(kinds) / sizeof(kinds[0]) - (debug ? 0 : 1);
    return kinds;
}

int sc_api_jobs_check(const sc_settings *st, char *err, size_t errlen)
{
    size_t n;
    const sc_job_kind *k = sc_api_job_kinds(st->debug_routes, &n);
    if (sc_jobs_check_schedules(st->schedules, k, n, err, errlen) != 0)
        return -1;
    if (*st->schedules && !*st->report_email) {
        snprintf(err, errlen, "STACCATO_SCHEDULES needs STACCATO_REPORT_EMAIL, where the reports go");
        return -1;
    }
    if (*st->report_email && !sc_api_email_valid(sc_slice_cstr(st->report_email))) {
        snprintf(err, errlen, "STACCATO_REPORT_EMAIL: '%s' is not an e-mail address", st->report_email);
        return -1;
    }
    return 0;
}

sc_jobs *sc_api_jobs_new(sc_app *app)
{
    const sc_settings *st = app->settings;
    sc_jobs_config cfg = {
        .pg = app->pg,
        .conninfo = st->database_url,
        .connect_timeout_ms = st->db_connect_timeout_ms,
        .listen_heartbeat_ms = st->db_listen_heartbeat_ms,
        .stmts =
            {
                .claim = SC_STMT_JOB_CLAIM,
                .next_due = SC_STMT_JOB_NEXT_DUE,
                .extend = SC_STMT_JOB_EXTEND,
                .done = SC_STMT_JOB_DONE,
                .fail = SC_STMT_JOB_FAIL,
                .release = SC_STMT_JOB_RELEASE,
                .enqueue_once = SC_STMT_JOB_ENQUEUE_ONCE,
            },
        .app = app,
        .concurrency = (unsigned)st->job_concurrency,
        .lease_ms = st->job_lease_ms,
        .poll_ms = st->job_poll_ms,
        .retry_base_ms = st->job_retry_base_ms,
        .retry_max_ms = st->job_retry_max_ms,
        .stop_timeout_ms = st->drain_timeout_ms,
        .schedules = st->schedules,
        .scheduled_max_attempts = (unsigned)st->job_max_attempts,
    };
    cfg.kinds = sc_api_job_kinds(st->debug_routes, &cfg.nkinds);
    if (!*st->smtp_host)
        sc_log_warn("SMTP_HOST is not set: jobs that send e-mail will fail until it is");
    else if (!*st->public_url && !*st->allowed_hosts)
        sc_log_warn("neither STACCATO_PUBLIC_URL nor STACCATO_ALLOWED_HOSTS is set: links in verification and "
                    "password-reset mails are built from the Host header of the request that asked for them");
    return sc_jobs_new(app->loop, &cfg);
}
