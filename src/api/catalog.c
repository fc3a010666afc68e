/* The steps and checks the album and song endpoints share (api/catalog.h). */
#include "api/catalog.h"

#include <stdio.h>
#include <string.h>

#include "api/api.h"
#include "api/cache_keys.h"
#include "api/db.h"
#include "api/media_cache.h"
#include "api/ratelimit.h"
#include "api/respond.h"
#include "core/random.h"
#include "json/read.h"

#define MAX_TEXT_CHARS 255
#define MAX_REASON_CHARS 1000

static sc_api_catalog_ctx *ctx_new(sc_req *req, sc_api_principal *who, const char *noun)
{
    sc_api_catalog_ctx *ctx = sc_api_state_new(req, sizeof(*ctx), NULL);
    ctx->who = who;
    ctx->viewer = who ? who->id : NULL;
    ctx->admin = sc_api_auth_admin_flag(who);
    ctx->noun = noun;
    return ctx;
}

static bool compat(sc_req *req) { return sc_api_app(req)->compat_openmusic; }

const char *sc_api_catalog_int(sc_req *req, long long v)
{
    char b[24];
    int n = snprintf(b, sizeof(b), "%lld", v);
    return sc_arena_strndup(req->arena, b, (size_t)n);
}

const char *sc_api_catalog_msg(sc_req *req, const char *fmt, const char *field)
{
    char b[160];
    int n = snprintf(b, sizeof(b), fmt, field);
    return sc_arena_strndup(req->arena, b, (size_t)n < sizeof(b) ? (size_t)n : sizeof(b) - 1);
}

size_t sc_api_catalog_text_chars(sc_slice s)
{
    size_t n = 0;
    for (size_t i = 0; i < s.len; i++)
        n += ((unsigned char)s.ptr[i] & 0xC0) != 0x80;
    return n;
}

const char *sc_api_catalog_text_problem(sc_req *req, const char *field, sc_slice v)
{
    if (sc_slice_trim(v).len == 0)
        return sc_api_catalog_msg(req, "%s must not be empty", field);
    if (sc_api_catalog_text_chars(v) > MAX_TEXT_CHARS)
        return sc_api_catalog_msg(req, "%s must be at most 255 characters", field);
    return NULL;
}

int sc_api_catalog_year(sc_req *req, sc_api_catalog_ctx *ctx, int64_t year)
{
    if (year < 0 || year > 9999)
        return sc_res_error(req, 400, "year must be an integer from 0 to 9999");
    ctx->year = sc_api_catalog_int(req, year);
    return 0;
}

int sc_api_catalog_empty_body(sc_req *req)
{
    sc_jr jr = sc_api_json_begin(req);
    return sc_jr_failed(&jr) ? sc_api_json_error(req, &jr) : 0;
}

/* ---- permissions ------------------------------------------------------------------------------------------ */

/* Who writes: required in strict mode, optional (but checked when given) in OpenMusic mode. The rule depends on
 * the mode, so the write routes have no gate (SC_API_PUBLIC) and authenticate here, as their first step. */
static int auth_writer(sc_req *req, sc_api_principal **who)
{
    return compat(req) ? sc_api_auth_optional(req, who) : sc_api_auth_require(req, who);
}

int sc_api_catalog_may_write(sc_req *req, const sc_api_principal *who, bool own, bool owned, bool artist_only,
                             const char *forbidden)
{
    if (sc_api_auth_is(who, "admin"))
        return 0;
    if (compat(req) ? !owned || own : own && (!artist_only || sc_api_auth_is(who, "artist")))
        return 0;
    if (!who) {
        sc_res_header(req, "WWW-Authenticate", SC_SLICE_LIT("Bearer realm=\"staccato\""));
        return sc_res_error(req, 401, forbidden);
    }
    return sc_api_auth_forbidden(req, forbidden);
}

bool sc_api_catalog_anon_counted(sc_req *req, const sc_api_principal *who)
{
    return !who && compat(req) && sc_api_app(req)->settings->anon_writes_per_address > 0;
}

int sc_api_catalog_anon_refuse(sc_req *req, uint64_t retry_after_s)
{
    return sc_api_retry_later(req, 429, retry_after_s ? retry_after_s : 1,
                              "too many changes without signing in; try again later");
}

static void on_anon_counted(sc_req *req, bool allowed, uint64_t retry_after_s)
{
    sc_api_catalog_ctx *ctx = req->state;
    int st = allowed ? ctx->next(req, ctx) : sc_api_catalog_anon_refuse(req, retry_after_s);
    if (st != SC_ASYNC)
        sc_req_finish(req, st);
}

/* next, after the count of an anonymous write where there is one. */
static int then(sc_req *req, sc_api_catalog_ctx *ctx, sc_api_catalog_step next)
{
    if (!sc_api_catalog_anon_counted(req, ctx->who))
        return next(req, ctx);
    ctx->next = next;
    sc_ratelimit_anon_write(req, on_anon_counted);
    return SC_ASYNC;
}

/* ---- the steps -------------------------------------------------------------------------------------------- */

int sc_api_catalog_create(sc_req *req, const char *noun, sc_api_catalog_reader read, sc_api_catalog_step next)
{
    sc_api_principal *who;
    int st = auth_writer(req, &who);
    if (st)
        return st;
    sc_api_catalog_ctx *ctx = ctx_new(req, who, noun);
    if ((st = read(req, ctx)))
        return st;
    if (!compat(req) && !sc_api_auth_is(who, "artist"))
        return sc_api_auth_forbidden(req, "only artists and admins may add to the catalog");
    char id[48];
    sc_random_id(noun, id, sizeof(id));
    ctx->id = sc_arena_strndup(req->arena, id, strlen(id));
    return then(req, ctx, next);
}

int sc_api_catalog_write(sc_req *req, const char *noun, bool deleting, sc_api_catalog_reader read,
                         sc_api_catalog_step next)
{
    sc_api_principal *who;
    int st = auth_writer(req, &who);
    if (st)
        return st;
    sc_api_catalog_ctx *ctx = ctx_new(req, who, noun);
    ctx->deleting = deleting;
    if ((st = deleting ? sc_api_catalog_empty_body(req) : read(req, ctx)))
        return st;
    sc_slice id = sc_req_param(req, "id");
    if (!sc_api_plausible_id(id))
        return sc_res_error(req, 404, sc_api_catalog_msg(req, "%s not found", noun));
    ctx->id = sc_api_dup(req, id);
    return then(req, ctx, next);
}

void sc_api_catalog_on_created(sc_req *req, const char *err, PGresult *res)
{
    sc_api_catalog_ctx *ctx = req->state;
    if (sc_api_db_failed(req, err, res))
        return;
    char message[16], key[16]; /* "album added", "albumId"; "song added", "songId" */
    snprintf(message, sizeof(message), "%s added", ctx->noun);
    snprintf(key, sizeof(key), "%sId", ctx->noun);
    sc_req_finish(req, sc_api_data_str(req, 201, message, key, ctx->id));
}

bool sc_api_catalog_found(sc_req *req, const char *err, PGresult *res)
{
    sc_api_catalog_ctx *ctx = req->state;
    if (err) {
        sc_api_db_finish_error(req, err, res);
        return false;
    }
    if (PQntuples(res) == 0) {
        sc_api_finish_error(req, 404, sc_api_catalog_msg(req, "%s not found", ctx->noun));
        return false;
    }
    return true;
}

/* ---- reads ------------------------------------------------------------------------------------------------ */

static void on_got(sc_req *req, const char *err, PGresult *res)
{
    sc_api_catalog_ctx *ctx = req->state;
    if (err)
        sc_api_db_finish_error(req, err, res);
    else if (PQntuples(res) == 0)
        sc_api_finish_error(req, 404, sc_api_catalog_msg(req, "%s not found", ctx->noun));
    else
        sc_req_finish(req, sc_api_data_raw(req, 200, ctx->noun, sc_api_db_col(res, 0)));
}

int sc_api_catalog_get(sc_req *req, const char *noun, int stmt)
{
    sc_api_catalog_ctx *ctx = ctx_new(req, sc_api_who(req), noun);
    sc_slice id = sc_req_param(req, "id");
    if (!sc_api_plausible_id(id))
        return sc_res_error(req, 404, sc_api_catalog_msg(req, "%s not found", noun));
    SC_API_DB(req, stmt, on_got, sc_api_dup(req, id), ctx->viewer, ctx->admin, sc_api_base_url(req));
    return SC_ASYNC;
}

/* ---- moderation ------------------------------------------------------------------------------------------- */

static void on_flagged(sc_req *req, const char *err, PGresult *res)
{
    sc_api_catalog_ctx *ctx = req->state;
    bool album = strcmp(ctx->noun, "album") == 0;
    sc_media_cache_forget(sc_api_app(req)->media, album ? SC_MEDIA_COVER : SC_MEDIA_SONG, sc_slice_cstr(ctx->id));
    int st = sc_api_db_changed(req, err, res, sc_api_catalog_msg(req, "%s not found", ctx->noun));
    if (st) {
        sc_req_finish(req, st);
    } else {
        const char *fmt = ctx->flagged[0] == 't' ? "%s flagged" : "%s unflagged";
        int status = sc_api_message(req, 200, sc_api_catalog_msg(req, fmt, ctx->noun));
        if (album)
            sc_api_invalidate_album_likes_then_finish(req, ctx->id, status);
        else
            sc_req_finish(req, status);
    }
}

int sc_api_catalog_flag(sc_req *req, const char *noun, int stmt)
{
    sc_api_catalog_ctx *ctx = ctx_new(req, sc_api_who(req), noun);
    sc_jr jr = sc_api_json_begin(req);
    bool flagged = sc_jr_bool(&jr, "flagged", SC_JR_REQUIRED, NULL);
    sc_slice reason = sc_jr_str(&jr, "reason", SC_JR_OPTIONAL);
    if (sc_jr_failed(&jr))
        return sc_api_json_error(req, &jr);
    if (reason.ptr && sc_api_catalog_text_chars(reason) > MAX_REASON_CHARS)
        return sc_res_error(req, 400, "reason must be at most 1000 characters");
    sc_slice id = sc_req_param(req, "id");
    if (!sc_api_plausible_id(id))
        return sc_res_error(req, 404, sc_api_catalog_msg(req, "%s not found", noun));
    ctx->flagged = flagged ? "true" : "false";
    ctx->id = sc_api_dup(req, id);
    SC_API_DB(req, stmt, on_flagged, ctx->id, ctx->flagged, sc_api_dup(req, reason));
    return SC_ASYNC;
}
