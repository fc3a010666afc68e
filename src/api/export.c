/* Playlist exports: POST /export/playlists/{playlistId} and the job that mails the playlist (routes and SQL in
 * api/export.h).
 *
 * The request answers 201 once its job is committed; the job builds the attachment when it runs, so the e-mail
 * has the playlist as it is then. Checks: authentication (401), targetEmail (400), the playlist (404), ownership
 * (403), then the per-user limit of exports per hour (429 with Retry-After). */
#include "api/export.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/auth.h"
#include "api/db.h"
#include "api/jobs.h"
#include "api/respond.h"
#include "core/mem.h"
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
    sc_req *req;          /* NULL once the request has ended */
    sc_pg_query *pending; /* BEGIN or EXPORT_ENQUEUE in flight */
    sc_pg_tx *tx;
    bool committing;
    /* The parameters, in the request's arena: only sent while the request lives. */
    const char *playlist_id, *user_id, *target, *limit, *attempts;
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
        sc_api_db_finish_error(req, err, res);
    else
        sc_req_finish(req, sc_api_message(req, 201, "Permintaan Anda sedang kami proses"));
}

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
    } else if (!sc_api_db_true(res, 0)) {
        status = sc_res_error(req, 404, "playlist not found");
    } else if (!sc_api_db_true(res, 1)) {
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
    SC_API_TX_EXEC(tx, SC_STMT_EXPORT_LOCK, NULL, NULL, ctx->user_id);
    ctx->pending = SC_API_TX_EXEC(tx, SC_STMT_EXPORT_ENQUEUE, on_export_enqueued, ctx, ctx->playlist_id,
                                  ctx->user_id, ctx->target, ctx->limit, ctx->attempts);
}

int sc_api_export_playlist(sc_req *req)
{
    sc_app *app = sc_api_app(req);
    const sc_settings *st = app->settings;
    const sc_api_principal *who = sc_api_who(req);
    sc_jr jr = sc_api_json_begin(req);
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
    ctx->playlist_id = sc_api_id_or_null(req, sc_req_param(req, "playlistId"));
    ctx->user_id = sc_arena_strndup(req->arena, who->id, strlen(who->id));
    ctx->target = sc_api_dup(req, email);
    ctx->limit = limit;
    ctx->attempts = attempts;
    sc_req_on_dispose(req, on_export_gone, ctx);
    ctx->pending = sc_pg_tx_begin(app->pg, on_export_begun, ctx);
    return SC_ASYNC;
}

/* ---- export-playlist: {playlistId, userId, targetEmail} ---------------------------------------------------- */

static void on_export_rows(void *data, const char *err, PGresult *res)
{
    sc_api_mail_job *m = data;
    m->query = NULL;
    if (err) {
        sc_api_mail_job_db_fail(m, err, res);
        return;
    }
    if (PQntuples(res) == 0) {
        sc_api_mail_job_fail(m, "the playlist no longer exists", true);
        return;
    }
    char text[512];
    snprintf(text, sizeof(text),
             "Terlampir hasil dari ekspor playlist %s.\r\n\r\nReferensi: staccato-job-%" PRId64 "\r\n",
             PQgetvalue(res, 0, 1), m->job->id);
    sc_api_mail_job_send(m, m->to, "Ekspor Playlist", text, "playlist.json", "application/json",
                         PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0));
}

void sc_api_export_job_run(sc_job *job)
{
    sc_app *app = job->app;
    sc_api_mail_job *m = sc_api_mail_job_new(job);
    const char *playlist = sc_api_job_payload_str(job, "playlistId"),
               *user = sc_api_job_payload_str(job, "userId");
    m->to = sc_api_job_payload_str(job, "targetEmail");
    if (!playlist || !user || !m->to || !sc_api_email_valid(sc_slice_cstr(m->to))) {
        sc_api_mail_job_fail(m, "the payload needs playlistId, userId and a valid targetEmail", true);
        return;
    }
    m->query = SC_API_PG_EXEC(app->pg, SC_STMT_EXPORT_PLAYLIST, on_export_rows, m, playlist, user);
}
