/* E-mail addresses of accounts: verification links, password resets and the jobs that mail them (routes and SQL
 * in api/user_email.h). */
#include "api/user_email.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/api.h"
#include "api/auth.h"
#include "api/db.h"
#include "api/export.h"
#include "api/jobs.h"
#include "api/ratelimit.h"
#include "api/respond.h"
#include "api/token_versions.h"
#include "api/users.h"
#include "auth/password.h"
#include "core/buf.h"
#include "json/read.h"

#define PURPOSE_VERIFY "staccato-verify-email"
#define PURPOSE_RESET "staccato-password-reset"
#define NONCE_LEN 36     /* a random UUID as text, made by the database */
#define MAX_DATA_HEX 512 /* an address of 254 bytes, as hex */

static const char bad_verify[] = "verification link is not valid or has expired";
static const char bad_reset[] = "reset link is not valid or has expired";

/* ---- tokens ------------------------------------------------------------------------------------------------ */

static void hex_append(sc_buf *out, const void *data, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        sc_buf_append_char(out, digits[p[i] >> 4]);
        sc_buf_append_char(out, digits[p[i] & 15]);
    }
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* The MAC of a token's first three parts for purpose, as 64 hex digits appended to out. */
static void token_mac(const char *purpose, sc_slice id, sc_slice exp, sc_slice data, sc_buf *out)
{
    sc_buf msg = {0};
    sc_buf_printf(&msg, "%s\n%.*s\n%.*s\n%.*s", purpose, (int)id.len, id.ptr, (int)exp.len, exp.ptr, (int)data.len,
                  data.ptr);
    unsigned char mac[32];
    sc_api_auth_url_mac(msg.ptr, msg.len, mac);
    sc_buf_free(&msg);
    hex_append(out, mac, sizeof(mac));
}

/* Appends a token for purpose: the account id, an expiry ttl_s seconds from now and data (bytes, written as hex).
 */
static void token_make(const char *purpose, const char *id, uint64_t ttl_s, const void *data, size_t len,
                       sc_buf *out)
{
    char exp[24];
    snprintf(exp, sizeof(exp), "%" PRIu64, (uint64_t)time(NULL) + ttl_s);
    sc_buf hex = {0};
    hex_append(&hex, data, len);
    sc_buf_printf(out, "%s.%s.%.*s.", id, exp, (int)hex.len, hex.ptr);
    token_mac(purpose, sc_slice_cstr(id), sc_slice_cstr(exp), sc_buf_slice(&hex), out);
    sc_buf_free(&hex);
}

/* A token read back: the account id (NUL-terminated) and the data decoded (NUL-terminated). */
typedef struct token {
    char id[SC_API_MAX_ID_LEN + 1];
    char data[MAX_DATA_HEX / 2 + 1];
    size_t data_len;
} token;

/* Checks a token of purpose: its shape, its MAC (in constant time) and its expiry. Returns 0, or -1. */
static int token_check(const char *purpose, sc_slice t, token *out)
{
    sc_slice part[4];
    size_t n = 0, start = 0;
    for (size_t i = 0; i <= t.len; i++) {
        if (i < t.len && t.ptr[i] != '.')
            continue;
        if (n == 4)
            return -1;
        part[n++] = (sc_slice){t.ptr + start, i - start};
        start = i + 1;
    }
    if (n != 4 || !sc_api_plausible_id(part[0]) || part[0].len > SC_API_MAX_ID_LEN || part[2].len > MAX_DATA_HEX ||
        part[2].len % 2 || part[3].len != 64)
        return -1;
    unsigned long long exp;
    if (sc_slice_to_u64(part[1], UINT64_MAX, &exp) != 0)
        return -1;
    sc_buf want = {0};
    token_mac(purpose, part[0], part[1], part[2], &want);
    unsigned diff = 0;
    for (size_t i = 0; i < 64; i++)
        diff |= (unsigned char)want.ptr[i] ^ (unsigned char)part[3].ptr[i];
    sc_buf_free(&want);
    if (diff || exp < (unsigned long long)time(NULL))
        return -1;
    for (size_t i = 0; i < part[2].len; i += 2) {
        int hi = hex_value(part[2].ptr[i]), lo = hex_value(part[2].ptr[i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out->data[i / 2] = (char)(hi << 4 | lo);
    }
    out->data_len = part[2].len / 2;
    out->data[out->data_len] = '\0';
    memcpy(out->id, part[0].ptr, part[0].len);
    out->id[part[0].len] = '\0';
    return 0;
}

/* ---- GET /users/verify-email ------------------------------------------------------------------------------- */

static void on_verified(sc_req *req, const char *err, PGresult *res)
{
    if (sc_api_db_failed(req, err, res))
        return;
    if (PQntuples(res) == 0)
        sc_api_finish_error(req, 400, bad_verify);
    else
        sc_req_finish(req, sc_api_message(req, 200, "email verified"));
}

int sc_api_users_verify_email(sc_req *req)
{
    sc_slice t;
    token tok;
    if (!sc_req_query(req, "token", &t) || token_check(PURPOSE_VERIFY, t, &tok) != 0 ||
        memchr(tok.data, '\0', tok.data_len))
        return sc_res_error(req, 400, bad_verify);
    SC_API_DB(req, SC_STMT_EMAIL_VERIFY, on_verified, sc_api_dup(req, sc_slice_cstr(tok.id)),
              sc_api_dup(req, (sc_slice){tok.data, tok.data_len}));
    return SC_ASYNC;
}

/* ---- POST /users/password-reset ---------------------------------------------------------------------------- */

typedef struct reset_ctx {
    sc_req *req;
    sc_password_job *job;
    const char *email;
    token tok;
    char nonce_hash[65];
} reset_ctx;

static void on_reset_gone(void *data)
{
    reset_ctx *ctx = data;
    sc_password_cancel(ctx->job);
    ctx->job = NULL;
}

static void on_reset_enqueued(sc_req *req, const char *err, PGresult *res)
{
    if (sc_api_db_failed(req, err, res))
        return;
    sc_req_finish(req, sc_api_message(req, 202,
                                      "if the address belongs to a verified account, a reset link is on its way"));
}

static void on_reset_allowed(sc_req *req, bool allowed, uint64_t retry_after_s)
{
    reset_ctx *ctx = req->state;
    if (!allowed) {
        sc_req_finish(req, sc_api_retry_later(req, 429, retry_after_s ? retry_after_s : 1,
                                              "too many password resets; try again later"));
        return;
    }
    char attempts[24];
    snprintf(attempts, sizeof(attempts), "%llu", sc_api_app(req)->settings->job_max_attempts);
    SC_API_DB(req, SC_STMT_PASSWORD_RESET_ENQUEUE, on_reset_enqueued, ctx->email, sc_api_base_url(req), attempts);
}

int sc_api_users_password_reset(sc_req *req)
{
    sc_jr jr = sc_api_json_begin(req);
    sc_slice email = sc_jr_str(&jr, "email", SC_JR_REQUIRED);
    if (sc_jr_failed(&jr))
        return sc_api_json_error(req, &jr);
    if (!sc_api_email_valid(email))
        return sc_res_error(req, 400, "email must be a valid e-mail address");
    reset_ctx *ctx = sc_api_state_new(req, sizeof(*ctx), on_reset_gone);
    ctx->req = req;
    ctx->email = sc_api_dup(req, email);
    sc_ratelimit_password_reset(req, email, on_reset_allowed);
    return SC_ASYNC;
}

/* ---- POST /users/password-reset/confirm -------------------------------------------------------------------- */

static void on_reset_applied(sc_req *req, const char *err, PGresult *res)
{
    if (sc_api_db_failed(req, err, res))
        return;
    if (PQntuples(res) == 0) {
        sc_api_finish_error(req, 400, bad_reset);
        return;
    }
    /* This process refuses the account's earlier access tokens before it answers; the others on notification. */
    unsigned long long v;
    if (sc_slice_to_u64(sc_slice_cstr(PQgetvalue(res, 0, 1)), (unsigned long long)INT64_MAX, &v) == 0)
        sc_token_versions_note(sc_api_app(req)->tokens, PQgetvalue(res, 0, 0), (int64_t)v);
    sc_req_finish(req, sc_api_message(req, 200, "password changed"));
}

static void on_reset_hash(void *data, const char *encoded)
{
    reset_ctx *ctx = data;
    ctx->job = NULL;
    if (!encoded) {
        sc_api_finish_error(ctx->req, 500, NULL);
        return;
    }
    SC_API_DB(ctx->req, SC_STMT_PASSWORD_RESET_APPLY, on_reset_applied, ctx->tok.id, ctx->nonce_hash, encoded);
}

int sc_api_users_password_reset_confirm(sc_req *req)
{
    sc_jr jr = sc_api_json_begin(req);
    sc_slice t = sc_jr_str(&jr, "token", SC_JR_REQUIRED);
    sc_slice password = sc_jr_str(&jr, "password", SC_JR_REQUIRED);
    if (sc_jr_failed(&jr))
        return sc_api_json_error(req, &jr);
    const char *problem = sc_api_users_password_problem(req, password);
    if (problem)
        return sc_res_error(req, 400, problem);
    reset_ctx *ctx = sc_api_state_new(req, sizeof(*ctx), on_reset_gone);
    ctx->req = req;
    if (token_check(PURPOSE_RESET, t, &ctx->tok) != 0 || ctx->tok.data_len != NONCE_LEN)
        return sc_res_error(req, 400, bad_reset);
    sc_api_auth_token_hash((sc_slice){ctx->tok.data, ctx->tok.data_len}, ctx->nonce_hash);
    /* Hashed before the nonce is looked at: only a link this server signed, still within its lifetime, gets here.
     */
    ctx->job = sc_password_hash(sc_api_app(req)->loop, password.ptr, password.len, on_reset_hash, ctx);
    if (!ctx->job)
        return sc_api_retry_later(req, 503, 1, "the server is busy checking passwords; try again shortly");
    return SC_ASYNC;
}

/* ---- the jobs ---------------------------------------------------------------------------------------------- */

/* The base URL of a job's links, from its payload: an absolute http(s) URL without control characters. */
static const char *payload_base(sc_job *job)
{
    const char *base = sc_api_job_payload_str(job, "baseUrl");
    if (!base || (strncmp(base, "http://", 7) != 0 && strncmp(base, "https://", 8) != 0))
        return NULL;
    for (const char *p = base; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f)
            return NULL;
    return base;
}

static void on_verify_target(void *data, const char *err, PGresult *res)
{
    sc_api_mail_job *m = data;
    m->query = NULL;
    if (err) {
        sc_api_mail_job_db_fail(m, err, res);
        return;
    }
    if (PQntuples(res) == 0) { /* verified meanwhile, or the address is gone: nothing to send */
        sc_api_mail_job_done(m);
        return;
    }
    sc_app *app = m->job->app;
    const char *id = sc_api_job_payload_str(m->job, "userId"), *email = PQgetvalue(res, 0, 0);
    char lower[256];
    size_t n = 0;
    for (; email[n] && n + 1 < sizeof(lower); n++)
        lower[n] = (char)tolower((unsigned char)email[n]);
    lower[n] = '\0';
    sc_buf tok = {0}, text = {0};
    token_make(PURPOSE_VERIFY, id, app->settings->email_verify_ttl_s, lower, n, &tok);
    sc_buf_printf(&text,
                  "Please confirm that this address belongs to your Staccato account by opening this link:\r\n\r\n"
                  "%s/users/verify-email?token=%.*s\r\n\r\nThe link is valid for %llu hours. If you did not ask "
                  "for it, ignore this message.\r\n\r\nReference: staccato-job-%" PRId64 "\r\n",
                  payload_base(m->job), (int)tok.len, tok.ptr, (app->settings->email_verify_ttl_s + 3599) / 3600,
                  m->job->id);
    sc_buf_append_char(&text, '\0');
    m->to = PQgetvalue(res, 0, 0);
    sc_api_mail_job_send(m, m->to, "Confirm your e-mail address", text.ptr, NULL, NULL, NULL, 0);
    sc_buf_free(&tok);
    sc_buf_free(&text);
}

void sc_api_verify_email_job_run(sc_job *job)
{
    sc_app *app = job->app;
    sc_api_mail_job *m = sc_api_mail_job_new(job);
    const char *id = sc_api_job_payload_str(job, "userId");
    if (!id || !sc_api_plausible_id(sc_slice_cstr(id)) || !payload_base(job)) {
        sc_api_mail_job_fail(m, "the payload needs userId and an absolute baseUrl", true);
        return;
    }
    m->query = SC_API_PG_EXEC(app->pg, SC_STMT_EMAIL_VERIFY_TARGET, on_verify_target, m, id);
}

static void on_reset_nonce(void *data, const char *err, PGresult *res)
{
    sc_api_mail_job *m = data;
    m->query = NULL;
    if (err) {
        sc_api_mail_job_db_fail(m, err, res);
        return;
    }
    if (PQntuples(res) == 0) { /* no verified account has the address: no mail, and nothing to tell anyone */
        sc_api_mail_job_done(m);
        return;
    }
    sc_app *app = m->job->app;
    sc_buf tok = {0}, text = {0};
    const char *nonce = PQgetvalue(res, 0, 2);
    token_make(PURPOSE_RESET, PQgetvalue(res, 0, 0), app->settings->password_reset_ttl_s, nonce, strlen(nonce),
               &tok);
    sc_buf_printf(&text,
                  "Someone asked to reset the password of the Staccato account of this address. To choose a new "
                  "password, send this token with it to %s/users/password-reset/confirm:\r\n\r\n"
                  "Token: %.*s\r\n\r\nThe token works once, for %llu minutes. If you did not ask for it, ignore "
                  "this message: your password stays as it is.\r\n\r\nReference: staccato-job-%" PRId64 "\r\n",
                  payload_base(m->job), (int)tok.len, tok.ptr, (app->settings->password_reset_ttl_s + 59) / 60,
                  m->job->id);
    sc_buf_append_char(&text, '\0');
    m->to = PQgetvalue(res, 0, 1);
    sc_api_mail_job_send(m, m->to, "Reset your password", text.ptr, NULL, NULL, NULL, 0);
    sc_buf_free(&tok);
    sc_buf_free(&text);
}

void sc_api_password_reset_job_run(sc_job *job)
{
    sc_app *app = job->app;
    sc_api_mail_job *m = sc_api_mail_job_new(job);
    const char *email = sc_api_job_payload_str(job, "email");
    if (!email || !sc_api_email_valid(sc_slice_cstr(email)) || !payload_base(job)) {
        sc_api_mail_job_fail(m, "the payload needs a valid email and an absolute baseUrl", true);
        return;
    }
    m->query = SC_API_PG_EXEC(app->pg, SC_STMT_PASSWORD_RESET_NONCE, on_reset_nonce, m, email);
}
