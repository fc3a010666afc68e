/* Sessions: login (POST), refresh with rotation (PUT) and logout (DELETE) of /authentications, with tokens in the
 * body or, with ?cookie=1, also in HttpOnly cookies (routes and SQL in api/authentications.h). */
#include "api/authentications.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "api/api.h"
#include "api/auth.h"
#include "api/db.h"
#include "api/export.h"
#include "api/ratelimit.h"
#include "api/respond.h"
#include "auth/jwt.h"
#include "auth/password.h"
#include "json/read.h"

typedef struct session_ctx {
    sc_req *req;
    sc_password_job *job;
    bool cookies;
    const char *username; /* the username, or the address of an e-mail login */
    bool by_email;
    const char *password;
    size_t password_len;
    char user_id[64];
    char role[16];
    int64_t version;    /* users.token_version, for the access token's ver */
    sc_slice old_token; /* the presented refresh token (in the request) */
    char old_hash[65];
    char new_hash[65];
    char family[64];
    sc_buf refresh;
    bool refresh_from_cookie;
} session_ctx;

static void on_request_gone(void *data)
{
    session_ctx *ctx = data;
    sc_password_cancel(ctx->job);
    ctx->job = NULL;
    sc_buf_free(&ctx->refresh);
}

/* Whether the caller asked for cookies (?cookie=1 or ?cookie=true). */
static bool wants_cookies(sc_req *req)
{
    sc_slice v;
    return sc_req_query(req, "cookie", &v) &&
           (sc_slice_eq(v, SC_SLICE_LIT("1")) || sc_slice_eq(v, SC_SLICE_LIT("true")));
}

static session_ctx *ctx_new(sc_req *req)
{
    session_ctx *ctx = sc_api_state_new(req, sizeof(*ctx), on_request_gone);
    ctx->req = req;
    ctx->cookies = wants_cookies(req);
    return ctx;
}

static void set_cookie(sc_req *req, const char *name, sc_slice value, const char *path, unsigned long long max_age)
{
    sc_buf b = {0};
    sc_buf_printf(&b, "%s=%.*s; Path=%s; Max-Age=%llu; HttpOnly; Secure; SameSite=%s", name, (int)value.len,
                  value.ptr, path, max_age, sc_api_cookie_samesite());
    sc_res_header(req, "Set-Cookie", sc_buf_slice(&b));
    sc_buf_free(&b);
}

/* The token version in column col of the first row (0 when it cannot be read). */
static int64_t version_of(PGresult *res, int col)
{
    unsigned long long v;
    return sc_slice_to_u64(sc_slice_cstr(PQgetvalue(res, 0, col)), (unsigned long long)INT64_MAX, &v) == 0
               ? (int64_t)v
               : 0;
}

/* Takes the account (id, role, token version) from columns col.. of the first row. */
static void take_account(session_ctx *ctx, PGresult *res, int col)
{
    snprintf(ctx->user_id, sizeof(ctx->user_id), "%s", PQgetvalue(res, 0, col));
    snprintf(ctx->role, sizeof(ctx->role), "%s", PQgetvalue(res, 0, col + 1));
    ctx->version = version_of(res, col + 2);
}

static int respond_tokens(session_ctx *ctx, int status, const char *message);

/* A refresh succeeded: the account is in res from column col on, the refresh token to hand out in ctx->refresh. */
static void refreshed(session_ctx *ctx, PGresult *res, int col)
{
    take_account(ctx, res, col);
    sc_req_finish(ctx->req, respond_tokens(ctx, 200, "access token refreshed"));
}

/* Answers with a new access token and the refresh token in ctx->refresh. */
static int respond_tokens(session_ctx *ctx, int status, const char *message)
{
    sc_req *req = ctx->req;
    const sc_app *app = sc_api_app(req);
    sc_buf access = {0};
    sc_api_auth_access_token(app, ctx->user_id, ctx->role, ctx->version, &access);
    sc_jw *w = sc_api_begin(req);
    sc_jw_key(w, "message");
    sc_jw_cstr(w, message);
    sc_jw_key(w, "data");
    sc_jw_obj_begin(w);
    sc_jw_key(w, "accessToken");
    sc_jw_str(w, sc_buf_slice(&access));
    sc_jw_key(w, "refreshToken");
    sc_jw_str(w, sc_buf_slice(&ctx->refresh));
    sc_jw_obj_end(w);
    sc_api_end(w, status);
    if (ctx->cookies || ctx->refresh_from_cookie) {
        set_cookie(req, SC_API_ACCESS_COOKIE, sc_buf_slice(&access), "/", app->settings->access_token_age);
        set_cookie(req, SC_API_REFRESH_COOKIE, sc_buf_slice(&ctx->refresh), "/authentications",
                   app->settings->refresh_token_age);
    }
    sc_buf_free(&access);
    return status;
}

/* ---- POST /authentications -------------------------------------------------------------------------------- */

static void on_refresh_stored(sc_req *req, const char *err, PGresult *res)
{
    session_ctx *ctx = req->state;
    if (err)
        sc_api_db_finish_error(req, err, res);
    else
        sc_req_finish(req, respond_tokens(ctx, 201, "authentication added"));
}

static void on_verified(void *data, bool match)
{
    session_ctx *ctx = data;
    sc_req *req = ctx->req;
    ctx->job = NULL;
    if (!match) {
        /* One message for an unknown user (or an unknown or unverified address) and a wrong password alike. */
        sc_api_finish_error(req, 401,
                            ctx->by_email ? "invalid email or password" : "invalid username or password");
        return;
    }
    sc_ratelimit_login_succeeded(req, sc_slice_cstr(ctx->username));
    const sc_app *app = sc_api_app(req);
    sc_api_auth_refresh_token(app, ctx->user_id, NULL, &ctx->refresh, ctx->new_hash, ctx->family);
    char age[24];
    snprintf(age, sizeof(age), "%llu", (unsigned long long)app->settings->refresh_token_age);
    SC_API_DB(req, SC_STMT_REFRESH_INSERT, on_refresh_stored, ctx->new_hash, ctx->user_id, ctx->family, age);
}

static void on_user_found(sc_req *req, const char *err, PGresult *res)
{
    session_ctx *ctx = req->state;
    if (sc_api_db_failed(req, err, res))
        return;
    const char *hash = NULL;
    if (PQntuples(res) > 0) {
        snprintf(ctx->user_id, sizeof(ctx->user_id), "%s", PQgetvalue(res, 0, 0));
        hash = PQgetvalue(res, 0, 1);
        snprintf(ctx->role, sizeof(ctx->role), "%s", PQgetvalue(res, 0, 2));
        ctx->version = version_of(res, 3);
    }
    /* An unknown user is verified against a dummy hash: the answer takes as long as for a wrong password. */
    ctx->job = sc_password_verify(sc_api_app(req)->loop, hash, ctx->password, ctx->password_len, on_verified, ctx);
    if (!ctx->job)
        sc_api_finish_password_busy(req);
}

static void on_rate_checked(sc_req *req, bool allowed, uint64_t retry_after)
{
    session_ctx *ctx = req->state;
    if (!allowed) {
        sc_req_finish(req, sc_api_retry_later(req, 429, retry_after ? retry_after : 1,
                                              "too many login attempts; try again later"));
        return;
    }
    SC_API_DB(req, ctx->by_email ? SC_STMT_USER_LOGIN_EMAIL : SC_STMT_USER_LOGIN, on_user_found, ctx->username);
}

int sc_api_auth_login(sc_req *req)
{
    /* A login that sets cookies changes the browser's state as much as a cookie-authenticated write: a foreign
     * page must not sign its visitor in to an account of the attacker's choosing (login CSRF). */
    if (wants_cookies(req) && !sc_api_auth_same_origin(req))
        return sc_api_auth_forbidden(req, "cross-origin login with cookies");
    sc_jr jr = sc_api_json_begin(req);
    sc_slice email = sc_jr_str(&jr, "email", SC_JR_OPTIONAL);
    sc_slice username = sc_jr_str(&jr, "username", email.ptr ? SC_JR_OPTIONAL : SC_JR_REQUIRED);
    sc_slice password = sc_jr_str(&jr, "password", SC_JR_REQUIRED);
    if (sc_jr_failed(&jr))
        return sc_api_json_error(req, &jr);
    if (email.ptr && username.ptr)
        return sc_res_error(req, 400, "give username or email, not both");
    bool by_email = email.ptr != NULL;
    if (by_email) {
        /* An address no account can have is a 401 at once, as a username too long to exist is: nothing is
         * learned from it. The rate limits count the address as they count a username. */
        username = email;
        if (!sc_api_email_valid(email) || password.len > 1024)
            return sc_res_error(req, 401, "invalid email or password");
    } else if (username.len > 50 || password.len > 1024) {
        return sc_res_error(req, 401, "invalid username or password");
    }
    session_ctx *ctx = ctx_new(req);
    ctx->by_email = by_email;
    ctx->username = sc_arena_strndup(req->arena, username.ptr, username.len);
    ctx->password = password.ptr;
    ctx->password_len = password.len;
    sc_ratelimit_login(req, username, on_rate_checked);
    return SC_ASYNC;
}

/* ---- PUT and DELETE /authentications ---------------------------------------------------------------------- */

/* Reads and verifies the presented refresh token (body, else cookie). Returns 0 or answers 400. */
static int presented_refresh(sc_req *req, session_ctx *ctx, sc_jwt_claims *claims)
{
    sc_jr jr = sc_api_json_begin(req);
    sc_slice token = sc_jr_str(&jr, "refreshToken", SC_JR_OPTIONAL);
    if (sc_jr_failed(&jr))
        return sc_api_json_error(req, &jr);
    if (!token.ptr) {
        token = sc_api_auth_cookie(req, SC_API_REFRESH_COOKIE);
        ctx->refresh_from_cookie = token.ptr != NULL;
        if (token.ptr && !sc_api_auth_same_origin(req))
            return sc_api_auth_forbidden(req, "cross-origin request with cookie credentials");
    }
    if (!token.ptr)
        return sc_res_error(req, 400, "refreshToken is required");
    const sc_app *app = sc_api_app(req);
    size_t keylen;
    const char *key = sc_api_auth_refresh_key(&keylen);
    int rc = sc_jwt_verify(token.ptr, token.len, key, keylen, (int64_t)time(NULL),
                           (int64_t)app->settings->token_leeway_s, "refresh", claims);
    if (rc != 0 || !claims->fam[0])
        return sc_res_error(req, 400, "refresh token is not valid");
    sc_api_auth_token_hash(token, ctx->old_hash);
    ctx->old_token = token;
    return 0;
}

static void on_family_revoked(sc_req *req, const char *err, PGresult *res)
{
    sc_api_finish_error(req, 400, "refresh token is not valid");
}

static void revoke_family(sc_req *req, session_ctx *ctx)
{
    SC_API_DB(req, SC_STMT_REFRESH_REUSE, on_family_revoked, ctx->old_hash);
}

/* The grace window, and why it hands out the successor already issued rather than a new pair: the family stays
 * one chain, so reuse detection keeps its meaning. A second pair would fork the family, and a thief replaying a
 * stolen token within the window would get a branch of their own that nothing ever notices; given the same
 * successor, the thief and the owner hold one token, and whichever uses it second is caught as reuse. The
 * database keeps only hashes of live tokens, so the successor is kept sealed (AES-GCM) under a key derived from
 * REFRESH_TOKEN_KEY and the rotated token, in the rotated token's row, written by the rotation itself: a second
 * request that lost the race to rotate finds it as soon as its own UPDATE returns (it waited on the row lock
 * until the winner committed), so the answer never depends on timing. Redis would have been written after the
 * rotation, leaving a window in which the loser finds nothing, and it may be away. */
static void on_grace(sc_req *req, const char *err, PGresult *res)
{
    session_ctx *ctx = req->state;
    if (sc_api_db_failed(req, err, res))
        return;
    if (PQntuples(res) == 0) {
        revoke_family(req, ctx);
        return;
    }
    ctx->refresh.len = 0;
    sc_slice sealed = sc_slice_cstr(PQgetvalue(res, 0, 0));
    char hash[65] = "";
    if (sc_api_auth_open_successor(ctx->old_token, sealed, &ctx->refresh) == 0)
        sc_api_auth_token_hash(sc_buf_slice(&ctx->refresh), hash);
    if (strcmp(hash, PQgetvalue(res, 0, 1)) != 0) {
        revoke_family(req, ctx); /* not sealed by this server for this token: as if there were no grace */
        return;
    }
    refreshed(ctx, res, 2);
}

static void on_rotated(sc_req *req, const char *err, PGresult *res)
{
    session_ctx *ctx = req->state;
    if (sc_api_db_failed(req, err, res))
        return;
    if (PQntuples(res) == 0) {
        /* Unknown, expired or already used: just rotated (another tab), it gets the same successor; used before,
         * its whole family is compromised. */
        const sc_app *app = sc_api_app(req);
        if (app->settings->refresh_grace_s == 0) {
            revoke_family(req, ctx);
            return;
        }
        char grace[24];
        snprintf(grace, sizeof(grace), "%llu", (unsigned long long)app->settings->refresh_grace_s);
        SC_API_DB(req, SC_STMT_REFRESH_GRACE, on_grace, ctx->old_hash, grace);
        return;
    }
    refreshed(ctx, res, 0);
}

/* A query about the presented refresh token failed, or found no live token (400): answered, returns true. */
static bool answered_unknown_token(sc_req *req, const char *err, PGresult *res)
{
    if (sc_api_db_failed(req, err, res))
        return true;
    if (PQntuples(res) > 0)
        return false;
    sc_api_finish_error(req, 400, "refresh token is not valid");
    return true;
}

/* STACCATO_COMPAT=openmusic: the token is still good, and it is handed back unchanged. */
static void on_checked(sc_req *req, const char *err, PGresult *res)
{
    session_ctx *ctx = req->state;
    if (answered_unknown_token(req, err, res))
        return;
    sc_buf_append(&ctx->refresh, ctx->old_token.ptr, ctx->old_token.len);
    refreshed(ctx, res, 0);
}

static void clear_cookies(sc_req *req)
{
    set_cookie(req, SC_API_ACCESS_COOKIE, SC_SLICE_LIT(""), "/", 0);
    set_cookie(req, SC_API_REFRESH_COOKIE, SC_SLICE_LIT(""), "/authentications", 0);
}

/* A sign-out clears the cookies also when their refresh token was no longer good (400): the browser is signed out
 * either way. Not when the database failed: the token may still be live, and the client may try again. */
static void on_revoked(sc_req *req, const char *err, PGresult *res)
{
    session_ctx *ctx = req->state;
    if (sc_api_db_failed(req, err, res))
        return;
    if (ctx->refresh_from_cookie || ctx->cookies)
        clear_cookies(req);
    if (answered_unknown_token(req, err, res))
        return;
    sc_req_finish(req, sc_api_message(req, 200, "refresh token deleted"));
}

/* PUT (rotate) and DELETE of /authentications: the presented refresh token, then its rotation or revocation. */
static int presented_token_call(sc_req *req, bool rotate)
{
    session_ctx *ctx = ctx_new(req);
    sc_jwt_claims claims;
    int st = presented_refresh(req, ctx, &claims);
    if (st == 400 && !rotate && ctx->refresh_from_cookie)
        clear_cookies(req);
    if (st)
        return st;
    if (!rotate) {
        SC_API_DB(req, SC_STMT_REFRESH_REVOKE, on_revoked, ctx->old_hash);
        return SC_ASYNC;
    }
    const sc_app *app = sc_api_app(req);
    /* OpenMusic clients keep their first refresh token for every later refresh and for the logout: rotating it
     * would log them out at their second refresh. Rotation and reuse detection are strict mode's. */
    if (app->compat_openmusic) {
        SC_API_DB(req, SC_STMT_REFRESH_CHECK, on_checked, ctx->old_hash);
        return SC_ASYNC;
    }
    sc_api_auth_refresh_token(app, claims.sub, claims.fam, &ctx->refresh, ctx->new_hash, ctx->family);
    sc_buf sealed = {0};
    sc_api_auth_seal_successor(ctx->old_token, sc_buf_slice(&ctx->refresh), &sealed);
    sc_buf_append_char(&sealed, '\0');
    char age[24];
    snprintf(age, sizeof(age), "%llu", (unsigned long long)app->settings->refresh_token_age);
    SC_API_DB(req, SC_STMT_REFRESH_ROTATE, on_rotated, ctx->old_hash, ctx->new_hash, age, sealed.ptr);
    sc_buf_free(&sealed);
    return SC_ASYNC;
}

int sc_api_auth_refresh(sc_req *req) { return presented_token_call(req, true); }
int sc_api_auth_logout(sc_req *req) { return presented_token_call(req, false); }
