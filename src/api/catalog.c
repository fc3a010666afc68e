/* The catalog: albums, songs, genres and their moderation.
 *
 * Permissions (docs/api.md, "Compatibility mode"): by default album and song writes need the artist or admin role,
 * artists change only what they own and admins anything. With STACCATO_COMPAT=openmusic writes are open as in
 * OpenMusic: no token needed, a valid token makes its user the owner of what it creates, a bad token is still a
 * 401. Flagged songs and albums, and private songs, exist only for admins and their owner: everyone else gets a 404
 * and does not see them in lists.
 *
 * GET /genres is cached in Redis (cache-aside, 10 minutes). A generation counter closes the race between a reader
 * that filled the cache from the database and a writer that committed and invalidated in between: the reader
 * notes the generation before it reads the database and stores its result only if the generation is unchanged,
 * and writers bump the generation when they delete the cached copy. Without Redis every read goes to the database. */
#include <stdio.h>
#include <string.h>

#include "api/api.h"
#include "api/auth.h"
#include "api/db.h"
#include "api/media_cache.h"
#include "api/respond.h"
#include "api/routes_catalog.h"
#include "cache/redis.h"
#include "core/random.h"
#include "json/read.h"

#define MAX_TEXT_CHARS 255
#define MAX_REASON_CHARS 1000
#define MAX_ID_LEN SC_API_MAX_ID_LEN

#define GENRES_KEY "staccato:genres"
#define GENRES_GEN_KEY "staccato:genres:gen"
#define GENRES_TTL_S "600"

/* KEYS[1] cache, KEYS[2] generation; ARGV[1] value, ARGV[2] generation seen before the read, ARGV[3] ttl. */
static const char genres_fill_script[] = "if (redis.call('GET', KEYS[2]) or '') == ARGV[2] then "
                                         "redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[3]) end return 0";
static const char genres_invalidate_script[] = "redis.call('INCR', KEYS[2]) redis.call('DEL', KEYS[1]) return 0";

/* State of one catalog request across its asynchronous steps (req->state). */
typedef struct cat_ctx {
    sc_req *req;
    sc_api_principal *who;    /* NULL for anonymous callers */
    const char *viewer;   /* the caller's user id, or NULL */
    const char *admin;    /* "true" or "false" */
    const char *id;       /* the target (from the path) or the new row's id */
    const char *name;     /* album name, song title or genre name */
    const char *year;
    const char *performer;
    const char *genre;
    const char *duration; /* NULL when not given */
    const char *album_id; /* NULL when not given */
    const char *flagged;  /* "true" or "false" */
    const char *reason;
    const char *noun;     /* "album" or "song", for messages */
    bool deleting;
    sc_redis_cmd *cmd;      /* a Redis command whose reply will come back to this request */
    const char *generation; /* genres cache generation seen before reading the database; NULL: do not fill */
    int status;             /* the answer, held while the cache is invalidated */
} cat_ctx;

/* ---- helpers ---------------------------------------------------------------------------------------------- */

static void on_request_gone(void *data)
{
    cat_ctx *ctx = data;
    sc_redis_cancel(ctx->cmd);
    ctx->cmd = NULL;
}

static cat_ctx *ctx_new(sc_req *req, sc_api_principal *who)
{
    cat_ctx *ctx = sc_arena_alloc(req->arena, sizeof(*ctx));
    memset(ctx, 0, sizeof(*ctx));
    ctx->req = req;
    ctx->who = who;
    ctx->viewer = who ? who->id : NULL;
    ctx->admin = sc_api_auth_is(who, "admin") ? "true" : "false";
    req->state = ctx;
    sc_req_on_dispose(req, on_request_gone, ctx);
    return ctx;
}

static sc_app *app_of(sc_req *req) { return req->app; }

static bool compat(sc_req *req) { return app_of(req)->compat_openmusic; }

static const char *dup(sc_req *req, sc_slice s) { return s.ptr ? sc_arena_strndup(req->arena, s.ptr, s.len) : NULL; }

static const char *fmt_int(sc_req *req, long long v)
{
    char b[24];
    int n = snprintf(b, sizeof(b), "%lld", v);
    return sc_arena_strndup(req->arena, b, (size_t)n);
}

static const char *fmt_msg(sc_req *req, const char *fmt, const char *field)
{
    char b[160];
    int n = snprintf(b, sizeof(b), fmt, field);
    return sc_arena_strndup(req->arena, b, (size_t)n);
}

/* Well-formed UTF-8 without NUL (what PostgreSQL accepts as text). */
static bool valid_text(sc_slice s)
{
    const unsigned char *p = (const unsigned char *)s.ptr;
    size_t i = 0;
    while (i < s.len) {
        unsigned c = p[i];
        size_t n;
        unsigned cp;
        if (c == 0)
            return false;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xC2 && c <= 0xDF) {
            n = 1;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            n = 2;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            n = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (i + n >= s.len)
            return false;
        for (size_t k = 1; k <= n; k++) {
            if ((p[i + k] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (p[i + k] & 0x3F);
        }
        if ((n == 2 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) || (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)))
            return false;
        i += n + 1;
    }
    return true;
}

/* Characters (code points) of valid UTF-8. */
static size_t text_chars(sc_slice s)
{
    size_t n = 0;
    for (size_t i = 0; i < s.len; i++)
        n += ((unsigned char)s.ptr[i] & 0xC0) != 0x80;
    return n;
}

/* A required name-like field: a non-blank string of at most 255 characters. */
static const char *text_problem(sc_req *req, const char *field, sc_slice v)
{
    if (sc_slice_trim(v).len == 0)
        return fmt_msg(req, "%s must not be empty", field);
    if (text_chars(v) > MAX_TEXT_CHARS)
        return fmt_msg(req, "%s must be at most 255 characters", field);
    return NULL;
}

/* ?title= and ?performer= are substrings: %, _ and the escape character itself match literally. */
static const char *like_escape(sc_req *req, sc_slice s)
{
    char *out = sc_arena_alloc(req->arena, 2 * s.len + 1);
    size_t o = 0;
    for (size_t i = 0; i < s.len; i++) {
        if (s.ptr[i] == '%' || s.ptr[i] == '_' || s.ptr[i] == '\\')
            out[o++] = '\\';
        out[o++] = s.ptr[i];
    }
    out[o] = '\0';
    return out;
}

static bool affected_none(PGresult *res) { return strcmp(PQcmdTuples(res), "0") == 0; }

static bool is_sqlstate(const char *err, PGresult *res, const char *state)
{
    return err == SC_PG_ERR_QUERY && strcmp(sc_pg_sqlstate(res), state) == 0;
}

static void finish_error(sc_req *req, int status, const char *msg) { sc_req_finish(req, sc_res_error(req, status, msg)); }

/* {"status":"success","data":{key: <json>}} */
static int data_raw(sc_req *req, int status, const char *key, sc_slice json)
{
    sc_jw *w = sc_api_begin(req);
    sc_jw_key(w, "data");
    sc_jw_obj_begin(w);
    sc_jw_key(w, key);
    sc_jw_raw(w, json);
    sc_jw_obj_end(w);
    return sc_api_end(w, status);
}

/* ---- permissions ------------------------------------------------------------------------------------------ */

/* Who writes: required in strict mode, optional (but checked when given) in OpenMusic mode. */
static int auth_writer(sc_req *req, sc_api_principal **who)
{
    return compat(req) ? sc_api_auth_optional(req, who) : sc_api_auth_require(req, who);
}

static bool may_create(sc_req *req, const sc_api_principal *who) { return compat(req) || sc_api_auth_is(who, "artist"); }

static bool may_change(sc_req *req, const sc_api_principal *who, bool own)
{
    return compat(req) || sc_api_auth_is(who, "admin") || (sc_api_auth_is(who, "artist") && own);
}

static int forbid_create(sc_req *req) { return sc_api_auth_forbidden(req, "only artists and admins may add to the catalog"); }

/* Moderation and genre management: admins only, checked before anything about the target is looked up. */
static int require_admin(sc_req *req, sc_api_principal **who)
{
    int st = sc_api_auth_require(req, who);
    if (st)
        return st;
    return sc_api_auth_is(*who, "admin") ? 0 : sc_api_auth_forbidden(req, "admins only");
}

/* A body that carries nothing we need must still be a JSON object (or empty). */
static int check_empty_body(sc_req *req)
{
    sc_jr jr;
    sc_api_json_begin(&jr, req);
    return sc_jr_failed(&jr) ? sc_api_json_error(req, &jr) : 0;
}

static int read_year(sc_req *req, cat_ctx *ctx, int64_t year)
{
    if (year < 0 || year > 9999)
        return sc_res_error(req, 400, "year must be an integer from 0 to 9999");
    ctx->year = fmt_int(req, year);
    return 0;
}

/* ---- albums ----------------------------------------------------------------------------------------------- */

/* {name: string, year: integer} */
static int read_album(sc_req *req, cat_ctx *ctx)
{
    sc_jr jr;
    sc_api_json_begin(&jr, req);
    sc_slice name = sc_jr_str(&jr, "name", SC_JR_REQUIRED);
    int64_t year = sc_jr_int(&jr, "year", SC_JR_REQUIRED, NULL);
    if (sc_jr_failed(&jr))
        return sc_api_json_error(req, &jr);
    const char *problem = text_problem(req, "name", name);
    if (problem)
        return sc_res_error(req, 400, problem);
    ctx->name = dup(req, name);
    return read_year(req, ctx, year);
}

static void on_album_created(sc_req *req, const char *err, PGresult *res)
{
    cat_ctx *ctx = req->state;
    if (err)
        sc_req_finish(req, sc_api_db_error(req, err, res));
    else
        sc_req_finish(req, sc_api_data_str(req, 201, "album added", "albumId", ctx->id));
}

int sc_api_albums_create(sc_req *req)
{
    sc_api_principal *who;
    int st = auth_writer(req, &who);
    if (st)
        return st;
    cat_ctx *ctx = ctx_new(req, who);
    if ((st = read_album(req, ctx)))
        return st;
    if (!may_create(req, who))
        return forbid_create(req);
    char id[48];
    sc_random_id("album", id, sizeof(id));
    ctx->id = sc_arena_strndup(req->arena, id, strlen(id));
    const char *params[] = {ctx->id, ctx->name, ctx->year, ctx->viewer};
    sc_api_db(req, SC_STMT_ALBUM_INSERT, 4, params, on_album_created);
    return SC_ASYNC;
}

static void on_album(sc_req *req, const char *err, PGresult *res)
{
    if (err)
        sc_req_finish(req, sc_api_db_error(req, err, res));
    else if (PQntuples(res) == 0)
        finish_error(req, 404, "album not found");
    else
        sc_req_finish(req, data_raw(req, 200, "album", sc_slice_cstr(PQgetvalue(res, 0, 0))));
}

int sc_api_albums_get(sc_req *req)
{
    sc_api_principal *who;
    int st = sc_api_auth_optional(req, &who);
    if (st)
        return st;
    cat_ctx *ctx = ctx_new(req, who);
    sc_slice id = sc_req_param(req, "id");
    if (!sc_api_plausible_id(id))
        return sc_res_error(req, 404, "album not found");
    const char *params[] = {dup(req, id), ctx->viewer, ctx->admin, sc_api_base_url(req)};
    sc_api_db(req, SC_STMT_ALBUM_GET, 4, params, on_album);
    return SC_ASYNC;
}

static void invalidate_album_likes_then_finish(cat_ctx *ctx, int status);

static void on_album_written(sc_req *req, const char *err, PGresult *res)
{
    cat_ctx *ctx = req->state;
    sc_media_cache_forget(app_of(req)->media, SC_MEDIA_COVER, sc_slice_cstr(ctx->id)); /* before anyone hears */
    if (err)
        sc_req_finish(req, sc_api_db_error(req, err, res));
    else if (affected_none(res))
        finish_error(req, 404, "album not found");
    else if (ctx->deleting)
        invalidate_album_likes_then_finish(ctx, sc_api_message(req, 200, "album deleted"));
    else
        sc_req_finish(req, sc_api_message(req, 200, "album updated"));
}

static void on_album_access(sc_req *req, const char *err, PGresult *res)
{
    cat_ctx *ctx = req->state;
    if (err) {
        sc_req_finish(req, sc_api_db_error(req, err, res));
        return;
    }
    if (PQntuples(res) == 0) {
        finish_error(req, 404, "album not found");
        return;
    }
    bool own = PQgetvalue(res, 0, 0)[0] == 't';
    if (!may_change(req, ctx->who, own)) {
        sc_req_finish(req, sc_api_auth_forbidden(req, "only the album's owner or an admin may change it"));
        return;
    }
    if (ctx->deleting) {
        const char *params[] = {ctx->id};
        sc_api_db(req, SC_STMT_ALBUM_DELETE, 1, params, on_album_written);
    } else {
        const char *params[] = {ctx->id, ctx->name, ctx->year};
        sc_api_db(req, SC_STMT_ALBUM_UPDATE, 3, params, on_album_written);
    }
}

static int album_write(sc_req *req, bool deleting)
{
    sc_api_principal *who;
    int st = auth_writer(req, &who);
    if (st)
        return st;
    cat_ctx *ctx = ctx_new(req, who);
    ctx->deleting = deleting;
    if ((st = deleting ? check_empty_body(req) : read_album(req, ctx)))
        return st;
    sc_slice id = sc_req_param(req, "id");
    if (!sc_api_plausible_id(id))
        return sc_res_error(req, 404, "album not found");
    ctx->id = dup(req, id);
    const char *params[] = {ctx->id, ctx->viewer, ctx->admin};
    sc_api_db(req, SC_STMT_ALBUM_ACCESS, 3, params, on_album_access);
    return SC_ASYNC;
}

int sc_api_albums_update(sc_req *req) { return album_write(req, false); }
int sc_api_albums_delete(sc_req *req) { return album_write(req, true); }

/* ---- moderation ------------------------------------------------------------------------------------------- */

static void on_flagged(sc_req *req, const char *err, PGresult *res)
{
    cat_ctx *ctx = req->state;
    sc_media_cache_forget(app_of(req)->media, strcmp(ctx->noun, "album") == 0 ? SC_MEDIA_COVER : SC_MEDIA_SONG,
                          sc_slice_cstr(ctx->id));
    char msg[64];
    if (err) {
        sc_req_finish(req, sc_api_db_error(req, err, res));
    } else if (affected_none(res)) {
        snprintf(msg, sizeof(msg), "%s not found", ctx->noun);
        finish_error(req, 404, fmt_msg(req, "%s", msg));
    } else {
        snprintf(msg, sizeof(msg), "%s %s", ctx->noun, ctx->flagged[0] == 't' ? "flagged" : "unflagged");
        int status = sc_api_message(req, 200, fmt_msg(req, "%s", msg));
        if (strcmp(ctx->noun, "album") == 0)
            invalidate_album_likes_then_finish(ctx, status); /* a cached count must not outlive visibility */
        else
            sc_req_finish(req, status);
    }
}

/* PUT /{albums|songs}/{id}/flag {flagged: bool, reason?: string} */
static int flag(sc_req *req, const char *noun, int stmt)
{
    sc_api_principal *who;
    int st = require_admin(req, &who);
    if (st)
        return st;
    cat_ctx *ctx = ctx_new(req, who);
    ctx->noun = noun;
    sc_jr jr;
    sc_api_json_begin(&jr, req);
    bool flagged = sc_jr_bool(&jr, "flagged", SC_JR_REQUIRED, NULL);
    sc_slice reason = sc_jr_str(&jr, "reason", SC_JR_OPTIONAL);
    if (sc_jr_failed(&jr))
        return sc_api_json_error(req, &jr);
    if (reason.ptr && text_chars(reason) > MAX_REASON_CHARS)
        return sc_res_error(req, 400, "reason must be at most 1000 characters");
    sc_slice id = sc_req_param(req, "id");
    if (!sc_api_plausible_id(id))
        return sc_res_error(req, 404, fmt_msg(req, "%s not found", noun));
    ctx->flagged = flagged ? "true" : "false";
    ctx->id = dup(req, id);
    const char *params[] = {ctx->id, ctx->flagged, dup(req, reason)};
    sc_api_db(req, stmt, 3, params, on_flagged);
    return SC_ASYNC;
}

int sc_api_albums_flag(sc_req *req) { return flag(req, "album", SC_STMT_ALBUM_FLAG); }
int sc_api_songs_flag(sc_req *req) { return flag(req, "song", SC_STMT_SONG_FLAG); }

/* ---- songs ------------------------------------------------------------------------------------------------ */

/* {title, year, performer, genre, duration?, albumId?} */
static int read_song(sc_req *req, cat_ctx *ctx)
{
    sc_jr jr;
    sc_api_json_begin(&jr, req);
    sc_slice title = sc_jr_str(&jr, "title", SC_JR_REQUIRED);
    int64_t year = sc_jr_int(&jr, "year", SC_JR_REQUIRED, NULL);
    sc_slice performer = sc_jr_str(&jr, "performer", SC_JR_REQUIRED);
    sc_slice genre = sc_jr_str(&jr, "genre", SC_JR_REQUIRED);
    bool has_duration;
    int64_t duration = sc_jr_int(&jr, "duration", SC_JR_OPTIONAL, &has_duration);
    sc_slice album = sc_jr_str(&jr, "albumId", SC_JR_OPTIONAL);
    if (sc_jr_failed(&jr))
        return sc_api_json_error(req, &jr);
    const char *problem = text_problem(req, "title", title);
    if (!problem)
        problem = text_problem(req, "performer", performer);
    if (!problem)
        problem = text_problem(req, "genre", genre);
    if (problem)
        return sc_res_error(req, 400, problem);
    if (has_duration && (duration < 0 || duration > 2147483647))
        return sc_res_error(req, 400, "duration must be a whole number of seconds, at least 0");
    ctx->name = dup(req, title);
    ctx->performer = dup(req, performer);
    ctx->genre = dup(req, genre);
    ctx->duration = has_duration ? fmt_int(req, duration) : NULL;
    ctx->album_id = dup(req, album);
    return read_year(req, ctx, year);
}

static void on_song_created(sc_req *req, const char *err, PGresult *res)
{
    cat_ctx *ctx = req->state;
    if (is_sqlstate(err, res, "23503") || (!err && ctx->album_id && PQntuples(res) == 0))
        finish_error(req, 404, "album not found");
    else if (err)
        sc_req_finish(req, sc_api_db_error(req, err, res));
    else
        sc_req_finish(req, sc_api_data_str(req, 201, "song added", "songId", ctx->id));
}

int sc_api_songs_create(sc_req *req)
{
    sc_api_principal *who;
    int st = auth_writer(req, &who);
    if (st)
        return st;
    cat_ctx *ctx = ctx_new(req, who);
    if ((st = read_song(req, ctx)))
        return st;
    if (!may_create(req, who))
        return forbid_create(req);
    char id[48];
    sc_random_id("song", id, sizeof(id));
    ctx->id = sc_arena_strndup(req->arena, id, strlen(id));
    if (!ctx->album_id) {
        const char *params[] = {ctx->id, ctx->name, ctx->year, ctx->performer, ctx->genre, ctx->duration, ctx->viewer};
        sc_api_db(req, SC_STMT_SONG_INSERT, 7, params, on_song_created);
        return SC_ASYNC;
    }
    if (!sc_api_plausible_id(sc_slice_cstr(ctx->album_id)))
        return sc_res_error(req, 404, "album not found");
    const char *params[] = {ctx->id,       ctx->name,   ctx->year,     ctx->performer, ctx->genre,
                            ctx->duration, ctx->viewer, ctx->album_id, ctx->admin};
    sc_api_db(req, SC_STMT_SONG_INSERT_ALBUM, 9, params, on_song_created);
    return SC_ASYNC;
}

static void on_song(sc_req *req, const char *err, PGresult *res)
{
    if (err)
        sc_req_finish(req, sc_api_db_error(req, err, res));
    else if (PQntuples(res) == 0)
        finish_error(req, 404, "song not found");
    else
        sc_req_finish(req, data_raw(req, 200, "song", sc_slice_cstr(PQgetvalue(res, 0, 0))));
}

int sc_api_songs_get(sc_req *req)
{
    sc_api_principal *who;
    int st = sc_api_auth_optional(req, &who);
    if (st)
        return st;
    cat_ctx *ctx = ctx_new(req, who);
    sc_slice id = sc_req_param(req, "id");
    if (!sc_api_plausible_id(id))
        return sc_res_error(req, 404, "song not found");
    const char *params[] = {dup(req, id), ctx->viewer, ctx->admin, sc_api_base_url(req)};
    sc_api_db(req, SC_STMT_SONG_GET, 4, params, on_song);
    return SC_ASYNC;
}

static void on_song_written(sc_req *req, const char *err, PGresult *res)
{
    cat_ctx *ctx = req->state;
    sc_media_cache_forget(app_of(req)->media, SC_MEDIA_SONG, sc_slice_cstr(ctx->id));
    if (is_sqlstate(err, res, "23503"))
        finish_error(req, 404, "album not found"); /* the album went away since it was checked */
    else if (err)
        sc_req_finish(req, sc_api_db_error(req, err, res));
    else if (affected_none(res))
        finish_error(req, 404, "song not found");
    else
        sc_req_finish(req, sc_api_message(req, 200, ctx->deleting ? "song deleted" : "song updated"));
}

static void on_song_access(sc_req *req, const char *err, PGresult *res)
{
    cat_ctx *ctx = req->state;
    if (err) {
        sc_req_finish(req, sc_api_db_error(req, err, res));
        return;
    }
    if (PQntuples(res) == 0) {
        finish_error(req, 404, "song not found");
        return;
    }
    if (!ctx->deleting && ctx->album_id && PQgetvalue(res, 0, 1)[0] != 't') {
        finish_error(req, 404, "album not found");
        return;
    }
    bool own = PQgetvalue(res, 0, 0)[0] == 't';
    if (!may_change(req, ctx->who, own)) {
        sc_req_finish(req, sc_api_auth_forbidden(req, "only the song's owner or an admin may change it"));
        return;
    }
    if (ctx->deleting) {
        const char *params[] = {ctx->id};
        sc_api_db(req, SC_STMT_SONG_DELETE, 1, params, on_song_written);
    } else {
        const char *params[] = {ctx->id, ctx->name, ctx->year, ctx->performer, ctx->genre, ctx->duration,
                                ctx->album_id};
        sc_api_db(req, SC_STMT_SONG_UPDATE, 7, params, on_song_written);
    }
}

static int song_write(sc_req *req, bool deleting)
{
    sc_api_principal *who;
    int st = auth_writer(req, &who);
    if (st)
        return st;
    cat_ctx *ctx = ctx_new(req, who);
    ctx->deleting = deleting;
    if ((st = deleting ? check_empty_body(req) : read_song(req, ctx)))
        return st;
    sc_slice id = sc_req_param(req, "id");
    if (!sc_api_plausible_id(id))
        return sc_res_error(req, 404, "song not found");
    ctx->id = dup(req, id);
    /* An album id that cannot exist is looked up as NULL, which finds nothing: "album not found" after the song. */
    const char *album = ctx->album_id && sc_api_plausible_id(sc_slice_cstr(ctx->album_id)) ? ctx->album_id : NULL;
    const char *params[] = {ctx->id, ctx->viewer, ctx->admin, album};
    sc_api_db(req, SC_STMT_SONG_ACCESS, 4, params, on_song_access);
    return SC_ASYNC;
}

int sc_api_songs_update(sc_req *req) { return song_write(req, false); }
int sc_api_songs_delete(sc_req *req) { return song_write(req, true); }

static void on_song_list(sc_req *req, const char *err, PGresult *res)
{
    if (err) {
        sc_req_finish(req, sc_api_db_error(req, err, res));
        return;
    }
    unsigned long long total = 0;
    sc_slice_to_u64(sc_slice_cstr(PQgetvalue(res, 0, 0)), UINT64_MAX, &total);
    data_raw(req, 200, "songs", sc_slice_cstr(PQgetvalue(res, 0, 1)));
    sc_api_total(req, total);
    sc_req_finish(req, 200);
}

/* GET /songs?title=&performer=&genre=&albumId=&page=&limit= */
int sc_api_songs_list(sc_req *req)
{
    static const int stmts[16] = {
        SC_STMT_SONG_LIST_0,  SC_STMT_SONG_LIST_1,  SC_STMT_SONG_LIST_2,  SC_STMT_SONG_LIST_3,
        SC_STMT_SONG_LIST_4,  SC_STMT_SONG_LIST_5,  SC_STMT_SONG_LIST_6,  SC_STMT_SONG_LIST_7,
        SC_STMT_SONG_LIST_8,  SC_STMT_SONG_LIST_9,  SC_STMT_SONG_LIST_10, SC_STMT_SONG_LIST_11,
        SC_STMT_SONG_LIST_12, SC_STMT_SONG_LIST_13, SC_STMT_SONG_LIST_14, SC_STMT_SONG_LIST_15,
    };
    static const char *const filters[] = {"title", "performer", "genre", "albumId"};
    sc_api_principal *who;
    sc_page page;
    int st = sc_api_auth_optional(req, &who);
    if (!st)
        st = sc_api_page(req, &page);
    if (st)
        return st;
    cat_ctx *ctx = ctx_new(req, who);
    const char *params[8] = {ctx->viewer, ctx->admin, page.limit_str, page.offset_str};
    int n = 4, mask = 0;
    for (int i = 0; i < 4; i++) {
        sc_slice v;
        if (!sc_req_query(req, filters[i], &v) || v.len == 0) /* an empty filter filters nothing */
            continue;
        if (!valid_text(v))
            return sc_res_error(req, 400, fmt_msg(req, "%s must be UTF-8 text", filters[i]));
        mask |= 1 << i;
        params[n++] = i < 2 ? like_escape(req, v) : v.ptr; /* query values are NUL-terminated in the arena */
    }
    sc_api_db(req, stmts[mask], n, params, on_song_list);
    return SC_ASYNC;
}

/* ---- genres ----------------------------------------------------------------------------------------------- */

static void on_genres_read(sc_req *req, const char *err, PGresult *res)
{
    cat_ctx *ctx = req->state;
    if (err) {
        sc_req_finish(req, sc_api_db_error(req, err, res));
        return;
    }
    const char *json = PQgetvalue(res, 0, 0);
    if (ctx->generation) {
        const char *argv[] = {"EVAL", genres_fill_script, "2", GENRES_KEY, GENRES_GEN_KEY, json, ctx->generation,
                              GENRES_TTL_S};
        size_t lens[8];
        for (int i = 0; i < 8; i++)
            lens[i] = strlen(argv[i]);
        sc_redis_command(app_of(req)->redis, NULL, NULL, 8, argv, lens); /* best effort */
    }
    sc_req_finish(req, data_raw(req, 200, "genres", sc_slice_cstr(json)));
}

static void on_genres_cached(void *data, const char *err, redisReply *r)
{
    cat_ctx *ctx = data;
    sc_req *req = ctx->req;
    ctx->cmd = NULL;
    if (!err && r->type == REDIS_REPLY_ARRAY && r->elements == 2) {
        redisReply *v = r->element[0], *gen = r->element[1];
        if (v->type == REDIS_REPLY_STRING && v->len > 0 && v->str[0] == '[') {
            sc_res_header(req, "X-Data-Source", SC_SLICE_LIT("cache"));
            sc_req_finish(req, data_raw(req, 200, "genres", (sc_slice){v->str, v->len}));
            return;
        }
        ctx->generation = gen->type == REDIS_REPLY_STRING ? dup(req, (sc_slice){gen->str, gen->len}) : "";
    }
    sc_api_db(req, SC_STMT_GENRE_LIST, 0, NULL, on_genres_read);
}

int sc_api_genres_list(sc_req *req)
{
    cat_ctx *ctx = ctx_new(req, NULL);
    const char *argv[] = {"MGET", GENRES_KEY, GENRES_GEN_KEY};
    size_t lens[] = {4, sizeof(GENRES_KEY) - 1, sizeof(GENRES_GEN_KEY) - 1};
    ctx->cmd = sc_redis_command(app_of(req)->redis, on_genres_cached, ctx, 3, argv, lens);
    return SC_ASYNC;
}

static void on_invalidated(void *data, const char *err, redisReply *r)
{
    (void)err;
    (void)r;
    cat_ctx *ctx = data;
    ctx->cmd = NULL;
    sc_req_finish(ctx->req, ctx->status);
}

/* Answers with the response already built (status) once the cached list is gone, so that the caller's next read,
 * through any worker, sees the change. Without Redis there is nothing to invalidate. */
static void invalidate_genres_then_finish(cat_ctx *ctx, int status)
{
    ctx->status = status;
    const char *argv[] = {"EVAL", genres_invalidate_script, "2", GENRES_KEY, GENRES_GEN_KEY};
    size_t lens[] = {4, sizeof(genres_invalidate_script) - 1, 1, sizeof(GENRES_KEY) - 1, sizeof(GENRES_GEN_KEY) - 1};
    ctx->cmd = sc_redis_command(app_of(ctx->req)->redis, on_invalidated, ctx, 5, argv, lens);
}

/* Deleting or flagging an album drops its cached like count (see social.c), so that no cached answer outlives the
 * album or its visibility. */
static void invalidate_album_likes_then_finish(cat_ctx *ctx, int status)
{
    ctx->status = status;
    char key[160], lock[160];
    snprintf(key, sizeof(key), "staccato:album-likes:%s", ctx->id);
    snprintf(lock, sizeof(lock), "staccato:album-likes-lock:%s", ctx->id);
    const char *argv[] = {"DEL", key, lock};
    size_t lens[] = {3, strlen(key), strlen(lock)};
    ctx->cmd = sc_redis_command(app_of(ctx->req)->redis, on_invalidated, ctx, 3, argv, lens);
}

static void on_genre_inserted(sc_req *req, const char *err, PGresult *res)
{
    cat_ctx *ctx = req->state;
    if (is_sqlstate(err, res, "23505"))
        finish_error(req, 400, "a genre with this name already exists");
    else if (err)
        sc_req_finish(req, sc_api_db_error(req, err, res));
    else
        invalidate_genres_then_finish(ctx, sc_api_data_str(req, 201, "genre added", "genreId", ctx->id));
}

int sc_api_genres_create(sc_req *req)
{
    sc_api_principal *who;
    int st = require_admin(req, &who);
    if (st)
        return st;
    cat_ctx *ctx = ctx_new(req, who);
    sc_jr jr;
    sc_api_json_begin(&jr, req);
    sc_slice name = sc_jr_str(&jr, "name", SC_JR_REQUIRED);
    if (sc_jr_failed(&jr))
        return sc_api_json_error(req, &jr);
    const char *problem = text_problem(req, "name", name);
    if (problem)
        return sc_res_error(req, 400, problem);
    char id[48];
    sc_random_id("genre", id, sizeof(id));
    ctx->id = sc_arena_strndup(req->arena, id, strlen(id));
    ctx->name = dup(req, name);
    const char *params[] = {ctx->id, ctx->name};
    sc_api_db(req, SC_STMT_GENRE_INSERT, 2, params, on_genre_inserted);
    return SC_ASYNC;
}

static void on_genre_deleted(sc_req *req, const char *err, PGresult *res)
{
    cat_ctx *ctx = req->state;
    if (err)
        sc_req_finish(req, sc_api_db_error(req, err, res));
    else if (affected_none(res))
        finish_error(req, 404, "genre not found");
    else
        invalidate_genres_then_finish(ctx, sc_api_message(req, 200, "genre deleted"));
}

int sc_api_genres_delete(sc_req *req)
{
    sc_api_principal *who;
    int st = require_admin(req, &who);
    if (st)
        return st;
    ctx_new(req, who);
    if ((st = check_empty_body(req)))
        return st;
    sc_slice id = sc_req_param(req, "id");
    if (!sc_api_plausible_id(id))
        return sc_res_error(req, 404, "genre not found");
    const char *params[] = {dup(req, id)};
    sc_api_db(req, SC_STMT_GENRE_DELETE, 1, params, on_genre_deleted);
    return SC_ASYNC;
}
