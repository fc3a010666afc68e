/* Accounts: registration, one's own profile, songs and likes (/users/me...), and user management for admins
 * (routes and SQL in api/users.h). */
#include "api/users.h"

#include <stdio.h>
#include <string.h>

#include "api/api.h"
#include "api/auth.h"
#include "api/db.h"
#include "api/export.h"
#include "api/list.h"
#include "api/media_cache.h"
#include "api/ratelimit.h"
#include "api/respond.h"
#include "api/token_versions.h"
#include "auth/password.h"
#include "core/random.h"
#include "json/read.h"

/* State of one account request across its asynchronous steps (req->state). */
typedef struct user_ctx {
    sc_req *req;
    sc_api_principal *who;
    sc_password_job *job;
    const char *id;
    const char *username;
    const char *password; /* the new password, when one is set */
    size_t password_len;
    const char *current; /* the current password, to change it */
    size_t current_len;
    const char *fullname;
    const char *role;
    const char *email; /* a new address, or NULL */
} user_ctx;

static void on_request_gone(void *data)
{
    user_ctx *ctx = data;
    sc_password_cancel(ctx->job);
    ctx->job = NULL;
}

static user_ctx *ctx_new(sc_req *req)
{
    user_ctx *ctx = sc_api_state_new(req, sizeof(*ctx), on_request_gone);
    ctx->req = req;
    return ctx;
}

static uv_loop_t *loop_of(sc_req *req) { return sc_api_app(req)->loop; }

static bool valid_username(sc_slice u)
{
    if (u.len < 3 || u.len > 50)
        return false;
    for (size_t i = 0; i < u.len; i++) {
        char c = u.ptr[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
              c == '-'))
            return false;
    }
    return true;
}

/* A new password: long enough, bounded, and without NUL (it is hashed as bytes). */
const char *sc_api_users_password_problem(const sc_req *req, sc_slice pw)
{
    const sc_app *app = sc_api_app(req);
    if (pw.len < app->settings->password_min_length)
        return "password is too short";
    if (pw.len > 1024)
        return "password is too long";
    if (memchr(pw.ptr, '\0', pw.len))
        return "password must not contain NUL characters";
    return NULL;
}

static const char *fullname_problem(sc_slice f)
{
    if (sc_slice_trim(f).len == 0)
        return "fullname must not be empty";
    if (f.len > 200)
        return "fullname is too long";
    return NULL;
}

static bool valid_role(sc_slice r)
{
    return sc_slice_eq(r, SC_SLICE_LIT("user")) || sc_slice_eq(r, SC_SLICE_LIT("artist")) ||
           sc_slice_eq(r, SC_SLICE_LIT("admin"));
}

/* Writes {id, username, fullname, role, createdAt, email, emailVerified} from a row of SC_USER_COLUMNS. */
static void write_user(sc_jw *w, PGresult *res, int row)
{
    static const char *const keys[] = {"id", "username", "fullname", "role", "createdAt"};
    sc_jw_obj_begin(w);
    for (int i = 0; i < 5; i++) {
        sc_jw_key(w, keys[i]);
        sc_jw_cstr(w, PQgetvalue(res, row, i));
    }
    sc_jw_key(w, "email");
    if (PQgetisnull(res, row, 5))
        sc_jw_null(w);
    else
        sc_jw_cstr(w, PQgetvalue(res, row, 5));
    sc_jw_key(w, "emailVerified");
    sc_jw_bool(w, PQgetvalue(res, row, 6)[0] == 't');
    sc_jw_obj_end(w);
}

/* The message of a unique violation of users: the address's index, or the username's. */
static const char *taken_message(PGresult *res)
{
    const char *c = res ? PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME) : NULL;
    return c && strcmp(c, "users_email_lower_idx") == 0 ? "email already taken" : "username already taken";
}

/* The max attempts of a new job, as text in the request's arena. */
static const char *job_attempts(sc_req *req)
{
    char *a = sc_arena_alloc(req->arena, 24);
    snprintf(a, 24, "%llu", sc_api_app(req)->settings->job_max_attempts);
    return a;
}

static void finish_user(sc_req *req, const char *err, PGresult *res)
{
    if (sc_api_db_failed(req, err, res))
        return;
    if (PQntuples(res) == 0) {
        sc_api_finish_error(req, 404, "user not found");
        return;
    }
    sc_jw *w = sc_api_begin(req);
    sc_jw_key(w, "data");
    sc_jw_obj_begin(w);
    sc_jw_key(w, "user");
    write_user(w, res, 0);
    sc_jw_obj_end(w);
    sc_req_finish(req, sc_api_end(w, 200));
}

/* ---- POST /users ------------------------------------------------------------------------------------------ */

static void on_user_inserted(sc_req *req, const char *err, PGresult *res)
{
    user_ctx *ctx = req->state;
    if (sc_api_db_sqlstate(err, res, "23505"))
        sc_api_finish_error(req, 400, taken_message(res));
    else if (err)
        sc_api_db_finish_error(req, err, res);
    else
        sc_req_finish(req, sc_api_data_str(req, 201, "user added", "userId", ctx->id));
}

static void on_new_hash(void *data, const char *encoded)
{
    user_ctx *ctx = data;
    sc_req *req = ctx->req;
    ctx->job = NULL;
    if (!encoded) {
        sc_api_finish_error(req, 500, NULL);
        return;
    }
    char id[40];
    sc_random_id("user", id, sizeof(id));
    ctx->id = sc_arena_strndup(req->arena, id, strlen(id));
    SC_API_DB(req, SC_STMT_USER_INSERT, on_user_inserted, ctx->id, ctx->username, encoded, ctx->fullname,
              ctx->role ? ctx->role : "user", ctx->email, sc_api_base_url(req), job_attempts(req));
}

static void on_name_checked(sc_req *req, const char *err, PGresult *res)
{
    user_ctx *ctx = req->state;
    if (err)
        sc_api_db_finish_error(req, err, res);
    else if (PQntuples(res) > 0)
        sc_api_finish_error(req, 400, sc_api_db_true(res, 0) ? "username already taken" : "email already taken");
    else if (!(ctx->job = sc_password_hash(loop_of(req), ctx->password, ctx->password_len, on_new_hash, ctx)))
        sc_api_finish_password_busy(req); /* the hash is the expensive part: only for names that are free */
}

static void on_register_allowed(sc_req *req, bool allowed, uint64_t retry_after_s)
{
    user_ctx *ctx = req->state;
    if (!allowed)
        sc_req_finish(req, sc_api_retry_later(req, 429, retry_after_s, "too many registrations; try again later"));
    else
        SC_API_DB(req, SC_STMT_USER_NAME_TAKEN, on_name_checked, ctx->username, ctx->email);
}

int sc_api_users_create(sc_req *req)
{
    sc_jr jr = sc_api_json_begin(req);
    sc_slice username = sc_jr_str(&jr, "username", SC_JR_REQUIRED);
    sc_slice password = sc_jr_str(&jr, "password", SC_JR_REQUIRED);
    sc_slice fullname = sc_jr_str(&jr, "fullname", SC_JR_REQUIRED);
    sc_slice email = sc_jr_str(&jr, "email", SC_JR_OPTIONAL);
    if (sc_jr_failed(&jr))
        return sc_api_json_error(req, &jr);
    if (email.ptr && !sc_api_email_valid(email))
        return sc_res_error(req, 400, "email must be a valid e-mail address");
    if (!valid_username(username))
        return sc_res_error(req, 400, "username must be 3 to 50 characters of letters, digits, _ . -");
    const char *problem = sc_api_users_password_problem(req, password);
    if (!problem)
        problem = fullname_problem(fullname);
    if (problem)
        return sc_res_error(req, 400, problem);
    user_ctx *ctx = ctx_new(req);
    ctx->username = sc_api_dup(req, username);
    ctx->password = password.ptr;
    ctx->password_len = password.len;
    ctx->fullname = sc_api_dup(req, fullname);
    ctx->email = sc_api_dup(req, email);
    sc_ratelimit_register(req, on_register_allowed);
    return SC_ASYNC;
}

/* ---- GET/PUT /users/me ------------------------------------------------------------------------------------ */

int sc_api_users_me(sc_req *req)
{
    SC_API_DB(req, SC_STMT_USER_GET, finish_user, sc_api_who(req)->id);
    return SC_ASYNC;
}

/* An update may have lowered the role or set a new password, which bumps the account's token version (migration
 * 0005): this process knows of it before it answers, so that the next request with an earlier token is refused
 * here at once; the other processes hear of it by notification. */
static void on_user_updated(sc_req *req, const char *err, PGresult *res)
{
    if (sc_api_db_sqlstate(err, res, "23505")) {
        sc_api_finish_error(req, 400, taken_message(res));
        return;
    }
    if (!err && PQntuples(res) > 0 && PQnfields(res) > 7) {
        unsigned long long v;
        if (sc_slice_to_u64(sc_slice_cstr(PQgetvalue(res, 0, 7)), (unsigned long long)INT64_MAX, &v) == 0)
            sc_token_versions_note(sc_api_app(req)->tokens, PQgetvalue(res, 0, 0), (int64_t)v);
    }
    finish_user(req, err, res);
}

/* The update in one statement, after every check: a new address that another account has (400) changes nothing. */
static void update_user(user_ctx *ctx, const char *hash)
{
    sc_req *req = ctx->req;
    SC_API_DB(req, SC_STMT_USER_UPDATE, on_user_updated, ctx->id, ctx->fullname, ctx->role, hash, ctx->email,
              ctx->email ? sc_api_base_url(req) : NULL, job_attempts(req));
}

static void on_changed_hash(void *data, const char *encoded)
{
    user_ctx *ctx = data;
    ctx->job = NULL;
    if (!encoded)
        sc_api_finish_error(ctx->req, 500, NULL);
    else
        update_user(ctx, encoded);
}

static void on_current_verified(void *data, bool match)
{
    user_ctx *ctx = data;
    ctx->job = NULL;
    if (!match)
        sc_api_finish_error(ctx->req, 400, "currentPassword is not correct");
    else if (!(ctx->job = sc_password_hash(loop_of(ctx->req), ctx->password, ctx->password_len, on_changed_hash,
                                           ctx)))
        sc_api_finish_password_busy(ctx->req);
}

static void on_current_hash(sc_req *req, const char *err, PGresult *res)
{
    user_ctx *ctx = req->state;
    if (err)
        sc_api_db_finish_error(req, err, res);
    else if (PQntuples(res) == 0)
        sc_api_finish_error(req, 404, "user not found");
    else if (!(ctx->job = sc_password_verify(loop_of(req), PQgetvalue(res, 0, 0), ctx->current, ctx->current_len,
                                             on_current_verified, ctx)))
        sc_api_finish_password_busy(req);
}

int sc_api_users_me_update(sc_req *req)
{
    const sc_api_principal *who = sc_api_who(req);
    sc_jr jr = sc_api_json_begin(req);
    sc_slice fullname = sc_jr_str(&jr, "fullname", SC_JR_OPTIONAL);
    sc_slice password = sc_jr_str(&jr, "password", SC_JR_OPTIONAL);
    sc_slice current = sc_jr_str(&jr, "currentPassword", password.ptr ? SC_JR_REQUIRED : SC_JR_OPTIONAL);
    sc_slice email = sc_jr_str(&jr, "email", SC_JR_OPTIONAL);
    if (sc_jr_failed(&jr))
        return sc_api_json_error(req, &jr);
    const char *problem = fullname.ptr ? fullname_problem(fullname) : NULL;
    if (!problem && password.ptr)
        problem = sc_api_users_password_problem(req, password);
    if (!problem && email.ptr && !sc_api_email_valid(email))
        problem = "email must be a valid e-mail address";
    if (problem)
        return sc_res_error(req, 400, problem);
    user_ctx *ctx = ctx_new(req);
    ctx->id = who->id;
    ctx->fullname = sc_api_dup(req, fullname);
    if (password.ptr) {
        ctx->password = password.ptr;
        ctx->password_len = password.len;
        ctx->current = current.ptr;
        ctx->current_len = current.len;
    }
    ctx->email = sc_api_dup(req, email);
    if (!password.ptr)
        update_user(ctx, NULL);
    else
        SC_API_DB(req, SC_STMT_USER_HASH, on_current_hash, who->id);
    return SC_ASYNC;
}

/* ---- GET /users/me/songs, GET /users/me/likes ----------------------------------------------------------- */

static const sc_api_list my_songs = {"songs", SC_STMT_MEDIA_MY_SONGS, SC_API_LIST_CALLER};
static const sc_api_list my_likes = {"songs", SC_STMT_LIKE_SONG_LIST, SC_API_LIST_CALLER_ADMIN};

int sc_api_users_me_songs(sc_req *req) { return sc_api_list_page(req, &my_songs); }
int sc_api_users_me_likes(sc_req *req) { return sc_api_list_page(req, &my_likes); }

/* ---- admin: /users, /users/{id} (SC_API_ADMIN, so that others learn nothing) ------------------------------ */

static const sc_api_list all_users = {"users", SC_STMT_USER_LIST, SC_API_LIST_NO_CALLER};

int sc_api_users_list(sc_req *req)
{
    sc_slice email;
    if (!sc_req_query(req, "email", &email))
        return sc_api_list_page(req, &all_users);
    sc_api_list_call call;
    int st = sc_api_list_begin(req, &all_users, &call);
    if (st)
        return st;
    sc_api_list_param(&call, sc_api_id_or_null(req, email)); /* an address is printable ASCII */
    return sc_api_list_run(req, &all_users, &call, SC_STMT_USER_LIST_BY_EMAIL);
}

int sc_api_users_get(sc_req *req)
{
    SC_API_DB(req, SC_STMT_USER_GET, finish_user, sc_api_dup(req, sc_req_param(req, "id")));
    return SC_ASYNC;
}

int sc_api_users_update(sc_req *req)
{
    sc_jr jr = sc_api_json_begin(req);
    sc_slice fullname = sc_jr_str(&jr, "fullname", SC_JR_OPTIONAL);
    sc_slice role = sc_jr_str(&jr, "role", SC_JR_OPTIONAL);
    if (sc_jr_failed(&jr))
        return sc_api_json_error(req, &jr);
    if (role.ptr && !valid_role(role))
        return sc_res_error(req, 400, "role must be user, artist or admin");
    const char *problem = fullname.ptr ? fullname_problem(fullname) : NULL;
    if (problem)
        return sc_res_error(req, 400, problem);
    user_ctx *ctx = ctx_new(req);
    ctx->id = sc_api_dup(req, sc_req_param(req, "id"));
    ctx->fullname = sc_api_dup(req, fullname);
    ctx->role = sc_api_dup(req, role);
    update_user(ctx, NULL);
    return SC_ASYNC;
}

static void on_user_deleted(sc_req *req, const char *err, PGresult *res)
{
    sc_media_cache_clear(sc_api_app(req)->media); /* the account's songs and albums lost their owner */
    int st = sc_api_db_changed(req, err, res, "user not found");
    if (!st) /* its tokens stop working here before the answer, elsewhere on the notification */
        sc_token_versions_note_deleted(sc_api_app(req)->tokens, ((user_ctx *)req->state)->id);
    sc_req_finish(req, st ? st : sc_api_message(req, 200, "user deleted"));
}

int sc_api_users_delete(sc_req *req)
{
    user_ctx *ctx = ctx_new(req);
    ctx->id = sc_api_dup(req, sc_req_param(req, "id"));
    SC_API_DB(req, SC_STMT_USER_DELETE, on_user_deleted, ctx->id);
    return SC_ASYNC;
}
