/* Everything the server sends by e-mail: the playlist export (endpoint and job) and the scheduled reports, plus the
 * wiring of the job runtime (jobs/jobs.h) into the application.
 *
 * POST /export/playlists/{playlistId} answers 201 once its job is committed; the job builds the attachment when it
 * runs, so the e-mail has the playlist as it is then. Checks: authentication (401), targetEmail (400), the playlist
 * (404), ownership (403), then the per-user limit of exports per hour (429 with Retry-After).
 *
 * Jobs are delivered at least once. A worker that dies after the SMTP server accepted a message and before the job
 * was marked done sends it again on the retry; every message names its job ("staccato-job-<id>" in its text, and
 * as its Message-ID on every attempt) so that a recipient can tell such a repeat from a new export. An SMTP 5xx is
 * final (the job is dead at once), a 4xx is retried like any transient failure. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/auth.h"
#include "api/db.h"
#include "api/respond.h"
#include "api/routes_jobs.h"
#include "core/log.h"
#include "core/mem.h"
#include "outbound/mail.h"
#include "json/read.h"

/* ---- addresses ---------------------------------------------------------------------------------------------- */

/* local-part characters besides letters, digits and dots (RFC 5322 atext) */
static bool atext(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-/=?^_`{|}~", c));
}

bool sc_api_email_valid(sc_slice s)
{
    if (s.len < 3 || s.len > 254)
        return false;
    long at = -1;
    for (size_t i = 0; i < s.len; i++)
        if (s.ptr[i] == '@')
            at = (long)i; /* the last one; any other '@' fails the local-part check */
    if (at < 1 || (size_t)at > 64 || (size_t)at == s.len - 1)
        return false;
    /* local-part: dot-atoms only (no quoted strings), no leading, trailing or doubled dot */
    for (long i = 0; i < at; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        if (c == '.') {
            if (i == 0 || i == at - 1 || s.ptr[i - 1] == '.')
                return false;
        } else if (!atext(c)) {
            return false;
        }
    }
    /* domain: at least two labels of letters, digits and inner hyphens, a top-level label of letters */
    size_t labels = 0, label_len = 0;
    bool alpha_only = true;
    for (size_t i = (size_t)at + 1; i <= s.len; i++) {
        char c = i < s.len ? s.ptr[i] : '.';
        if (c == '.') {
            if (label_len == 0 || label_len > 63 || s.ptr[i - 1] == '-')
                return false;
            labels++;
            if (i == s.len && (!alpha_only || label_len < 2))
                return false;
            label_len = 0;
            alpha_only = true;
            continue;
        }
        bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
        if (!letter && !(c >= '0' && c <= '9') && !(c == '-' && label_len > 0))
            return false;
        alpha_only = alpha_only && letter;
        label_len++;
    }
    return labels >= 2;
}

/* ---- POST /export/playlists/{playlistId} ------------------------------------------------------------------- */

/* The request's transaction: BEGIN, EXPORT_LOCK, EXPORT_ENQUEUE, COMMIT. The context is on the heap because the
 * COMMIT cannot be cancelled: if the client goes away meanwhile, its callback finds req NULL and frees it. */
typedef struct export_ctx {
    sc_req *req;           /* NULL once the request has ended */
    sc_pg_query *pending;  /* BEGIN or EXPORT_ENQUEUE in flight */
    sc_pg_tx *tx;
    bool committing;
    const char *params[5]; /* in the request's arena: only sent while the request lives */
} export_ctx;

static void on_export_gone(void *data)
{
    export_ctx *ctx = data;
    ctx->req = NULL;
    if (ctx->pending) {
        sc_pg_cancel(ctx->pending);
        ctx->pending = NULL;
    }
    if (ctx->tx) {
        sc_pg_tx_end(ctx->tx, false, NULL, NULL);
        ctx->tx = NULL;
    }
    if (!ctx->committing)
        free(ctx);
}

static void on_export_committed(void *data, const char *err, PGresult *res)
{
    export_ctx *ctx = data;
    ctx->committing = false;
    sc_req *req = ctx->req;
    if (!req) {
        free(ctx);
        return;
    }
    /* Finishing the request runs on_export_gone, which frees ctx. */
    if (err)
        sc_req_finish(req, sc_api_db_error(req, err, res));
    else
        sc_req_finish(req, sc_api_message(req, 201, "Permintaan Anda sedang kami proses"));
}

static bool col_true(PGresult *res, int col) { return PQgetvalue(res, 0, col)[0] == 't'; }

/* Row: (playlist exists, owner, job id or NULL, Retry-After seconds or NULL, notified). */
static void on_export_enqueued(void *data, const char *err, PGresult *res)
{
    export_ctx *ctx = data;
    sc_req *req = ctx->req;
    ctx->pending = NULL;
    int status = 0;
    if (err) {
        status = sc_api_db_error(req, err, res);
    } else if (PQntuples(res) != 1) {
        status = sc_res_error(req, 500, NULL);
    } else if (!col_true(res, 0)) {
        status = sc_res_error(req, 404, "playlist not found");
    } else if (!col_true(res, 1)) {
        status = sc_api_auth_forbidden(req, "only the owner may export this playlist");
    } else if (PQgetisnull(res, 0, 2)) {
        sc_res_header(req, "Retry-After", sc_slice_cstr(PQgetisnull(res, 0, 3) ? "3600" : PQgetvalue(res, 0, 3)));
        status = sc_res_error(req, 429, "too many exports in the last hour; try again later");
    }
    sc_pg_tx *tx = ctx->tx;
    ctx->tx = NULL;
    if (status) {
        sc_pg_tx_end(tx, false, NULL, NULL);
        sc_req_finish(req, status);
        return;
    }
    ctx->committing = true;
    sc_pg_tx_end(tx, true, on_export_committed, ctx);
}

static void on_export_begun(void *data, const char *err, sc_pg_tx *tx)
{
    export_ctx *ctx = data;
    ctx->pending = NULL;
    if (err) {
        sc_req_finish(ctx->req, sc_api_db_error(ctx->req, err, NULL));
        return;
    }
    ctx->tx = tx;
    /* Sent together: the lock's failure aborts the transaction, so the second statement reports it. */
    sc_pg_tx_exec(tx, SC_STMT_EXPORT_LOCK, 1, &ctx->params[1], NULL, NULL);
    ctx->pending = sc_pg_tx_exec(tx, SC_STMT_EXPORT_ENQUEUE, 5, ctx->params, on_export_enqueued, ctx);
}

/* An id from the path as a query parameter: anything that cannot be an id (control or non-ASCII bytes, which
 * PostgreSQL could refuse as text) becomes SQL NULL, which matches no row: a 404. */
static const char *id_arg(sc_req *req, sc_slice s)
{
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        if (c <= 0x20 || c >= 0x7f)
            return NULL;
    }
    return s.ptr ? sc_arena_strndup(req->arena, s.ptr, s.len) : NULL;
}

int sc_api_export_playlist(sc_req *req)
{
    sc_app *app = req->app;
    const sc_settings *st = app->settings;
    sc_api_principal *who;
    int status = sc_api_auth_require(req, &who);
    if (status)
        return status;
    sc_jr jr;
    sc_api_json_begin(&jr, req);
    sc_slice email = sc_jr_str(&jr, "targetEmail", SC_JR_REQUIRED);
    if (sc_jr_failed(&jr))
        return sc_api_json_error(req, &jr);
    if (!sc_api_email_valid(email))
        return sc_res_error(req, 400, "targetEmail must be a valid e-mail address");
    char *limit = sc_arena_alloc(req->arena, 24), *attempts = sc_arena_alloc(req->arena, 24);
    snprintf(limit, 24, "%llu", st->export_max_per_hour);
    snprintf(attempts, 24, "%llu", st->job_max_attempts);
    export_ctx *ctx = sc_calloc(sizeof(*ctx));
    ctx->req = req;
    ctx->params[0] = id_arg(req, sc_req_param(req, "playlistId"));
    ctx->params[1] = sc_arena_strndup(req->arena, who->id, strlen(who->id));
    ctx->params[2] = sc_arena_strndup(req->arena, email.ptr, email.len);
    ctx->params[3] = limit;
    ctx->params[4] = attempts;
    sc_req_on_dispose(req, on_export_gone, ctx);
    ctx->pending = sc_pg_tx_begin(app->pg, on_export_begun, ctx);
    return SC_ASYNC;
}

/* ---- jobs that send mail ----------------------------------------------------------------------------------- */

/* The state of a job between its query and its message. */
typedef struct mail_job {
    sc_job *job;
    sc_pg_query *query;
    sc_out_req *send;
    const char *to;
} mail_job;

static mail_job *mail_job_new(sc_job *job)
{
    mail_job *m = sc_calloc(sizeof(*m));
    m->job = job;
    job->data = m;
    return m;
}

static void mail_job_cancel(sc_job *job)
{
    mail_job *m = job->data;
    if (m->query)
        sc_pg_cancel(m->query);
    sc_outbound_cancel(m->send);
    free(m);
    job->data = NULL;
}

static void mail_job_done(mail_job *m)
{
    sc_job *job = m->job;
    free(m);
    job->data = NULL;
    sc_jobs_done(job);
}

static void mail_job_fail(mail_job *m, const char *error, bool permanent)
{
    sc_job *job = m->job;
    free(m);
    job->data = NULL;
    sc_jobs_fail(job, error, permanent);
}

/* A failed query of a job: the database's message, or the pool's sentinel. */
static void mail_job_db_fail(mail_job *m, const char *err, PGresult *res)
{
    char msg[512];
    snprintf(msg, sizeof(msg), "database: %s", err == SC_PG_ERR_QUERY && res ? PQresultErrorMessage(res) : err);
    msg[strcspn(msg, "\n")] = '\0';
    mail_job_fail(m, msg, false);
}

static void on_mail_sent(void *data, const char *err)
{
    mail_job *m = data;
    m->send = NULL;
    if (!err) {
        mail_job_done(m);
        return;
    }
    const sc_settings *st = ((sc_app *)m->job->app)->settings;
    char msg[512];
    snprintf(msg, sizeof(msg), "SMTP %s:%llu: %s", st->smtp_host, st->smtp_port, err);
    /* An address or host the client refuses to use, or a message the SMTP server refused for good (5xx), will not
     * get better by retrying; a 4xx, a timeout or a broken connection may. */
    mail_job_fail(m, msg, err == SC_OUT_ERR_INVALID || err == SC_OUT_ERR_REFUSED);
}

/* Sends the message; the job ends when the SMTP server has accepted it (or refused it). */
static void mail_job_send(mail_job *m, const char *to, const char *subject, const char *text, const char *name,
                          const char *type, const char *attachment, size_t len)
{
    sc_app *app = m->job->app;
    const sc_settings *st = app->settings;
    if (!*st->smtp_host) {
        mail_job_fail(m, "SMTP_HOST is not set", false);
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

/* A string field of the payload, or NULL. */
static const char *payload_str(sc_job *job, const char *key)
{
    return json_string_value(json_object_get(job->payload, key));
}

/* ---- export-playlist: {playlistId, userId, targetEmail} ---------------------------------------------------- */

static void on_export_rows(void *data, const char *err, PGresult *res)
{
    mail_job *m = data;
    m->query = NULL;
    if (err) {
        mail_job_db_fail(m, err, res);
        return;
    }
    if (PQntuples(res) == 0) {
        mail_job_fail(m, "the playlist no longer exists", true);
        return;
    }
    char text[512];
    snprintf(text, sizeof(text),
             "Terlampir hasil dari ekspor playlist %s.\r\n\r\nReferensi: staccato-job-%" PRId64 "\r\n",
             PQgetvalue(res, 0, 1), m->job->id);
    mail_job_send(m, m->to, "Ekspor Playlist", text, "playlist.json", "application/json", PQgetvalue(res, 0, 0),
                  (size_t)PQgetlength(res, 0, 0));
}

static void export_run(sc_job *job)
{
    sc_app *app = job->app;
    mail_job *m = mail_job_new(job);
    const char *playlist = payload_str(job, "playlistId"), *user = payload_str(job, "userId");
    m->to = payload_str(job, "targetEmail");
    if (!playlist || !user || !m->to || !sc_api_email_valid(sc_slice_cstr(m->to))) {
        mail_job_fail(m, "the payload needs playlistId, userId and a valid targetEmail", true);
        return;
    }
    const char *params[] = {playlist, user};
    m->query = sc_pg_exec(app->pg, SC_STMT_EXPORT_PLAYLIST, 2, params, on_export_rows, m);
}

/* ---- scheduled reports: {schedule, period, label, from, to} ------------------------------------------------ */

/* Runs a report statement over [from, to) of the payload and mails its CSV (column 0) to STACCATO_REPORT_EMAIL. */
static void report_run(sc_job *job, int stmt, sc_pg_cb on_rows)
{
    sc_app *app = job->app;
    mail_job *m = mail_job_new(job);
    const char *from = payload_str(job, "from"), *to = payload_str(job, "to");
    if (!from || !to || !payload_str(job, "label")) {
        mail_job_fail(m, "the payload needs from, to and label", true);
        return;
    }
    if (!*app->settings->report_email) {
        mail_job_fail(m, "STACCATO_REPORT_EMAIL is not set", false);
        return;
    }
    m->to = app->settings->report_email;
    const char *params[] = {from, to};
    m->query = sc_pg_exec(app->pg, stmt, 2, params, on_rows, m);
}

static void on_artist_rows(void *data, const char *err, PGresult *res)
{
    mail_job *m = data;
    m->query = NULL;
    if (err) {
        mail_job_db_fail(m, err, res);
        return;
    }
    const char *label = payload_str(m->job, "label");
    char subject[128], name[96], text[512];
    snprintf(subject, sizeof(subject), "Staccato artist report %s", label);
    snprintf(name, sizeof(name), "artist-report-%s.csv", label);
    snprintf(text, sizeof(text),
             "Plays, likes and ratings of every artist's songs in %s (UTC), one row per song: %s songs.\r\n\r\n"
             "Reference: staccato-job-%" PRId64 "\r\n",
             label, PQgetvalue(res, 0, 1), m->job->id);
    mail_job_send(m, m->to, subject, text, name, "text/csv", PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0));
}

static void artist_report_run(sc_job *job) { report_run(job, SC_STMT_REPORT_ARTISTS, on_artist_rows); }

static void on_digest_rows(void *data, const char *err, PGresult *res)
{
    mail_job *m = data;
    m->query = NULL;
    if (err) {
        mail_job_db_fail(m, err, res);
        return;
    }
    const char *label = payload_str(m->job, "label");
    char subject[128], name[96], text[512];
    snprintf(subject, sizeof(subject), "Staccato daily digest %s", label);
    snprintf(name, sizeof(name), "daily-digest-%s.csv", label);
    snprintf(text, sizeof(text),
             "New songs and the most liked songs of %s (UTC): %s new, %s most liked.\r\n\r\n"
             "Reference: staccato-job-%" PRId64 "\r\n",
             label, PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 2), m->job->id);
    mail_job_send(m, m->to, subject, text, name, "text/csv", PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0));
}

static void digest_run(sc_job *job) { report_run(job, SC_STMT_REPORT_DIGEST, on_digest_rows); }

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
    const char *fail = payload_str(job, "fail");
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
    {SC_JOB_EXPORT_PLAYLIST, export_run, mail_job_cancel, false},
    {"monthly-artist-report", artist_report_run, mail_job_cancel, true},
    {"daily-digest", digest_run, mail_job_cancel, true},
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
    return sc_jobs_new(app->loop, &cfg);
}
