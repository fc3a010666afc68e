/* Songs: creation, the searchable list, reading, changes, deletion and moderation (routes and SQL in
 * api/songs.h; what songs share with albums in api/catalog.h). A change or deletion makes the media cache forget
 * the song before the answer. */
#include "api/songs.h"

#include <stdio.h>
#include <string.h>

#include "api/api.h"
#include "api/db.h"
#include "api/list.h"
#include "api/media_cache.h"
#include "api/respond.h"
#include "json/read.h"

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
        if ((n == 2 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
            (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)))
            return false;
        i += n + 1;
    }
    return true;
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

/* {title, year, performer, genre, duration?, albumId?} */
static int read_song(sc_req *req, sc_api_catalog_ctx *ctx)
{
    sc_jr jr = sc_api_json_begin(req);
    sc_slice title = sc_jr_str(&jr, "title", SC_JR_REQUIRED);
    int64_t year = sc_jr_int(&jr, "year", SC_JR_REQUIRED, NULL);
    sc_slice performer = sc_jr_str(&jr, "performer", SC_JR_REQUIRED);
    sc_slice genre = sc_jr_str(&jr, "genre", SC_JR_REQUIRED);
    bool has_duration;
    int64_t duration = sc_jr_int(&jr, "duration", SC_JR_OPTIONAL, &has_duration);
    sc_slice album = sc_jr_str(&jr, "albumId", SC_JR_OPTIONAL);
    if (sc_jr_failed(&jr))
        return sc_api_json_error(req, &jr);
    const char *problem = sc_api_catalog_text_problem(req, "title", title);
    if (!problem)
        problem = sc_api_catalog_text_problem(req, "performer", performer);
    if (!problem)
        problem = sc_api_catalog_text_problem(req, "genre", genre);
    if (problem)
        return sc_res_error(req, 400, problem);
    if (has_duration && (duration < 0 || duration > 2147483647))
        return sc_res_error(req, 400, "duration must be a whole number of seconds, at least 0");
    ctx->name = sc_api_dup(req, title);
    ctx->performer = sc_api_dup(req, performer);
    ctx->genre = sc_api_dup(req, genre);
    ctx->duration = has_duration ? sc_api_catalog_int(req, duration) : NULL;
    ctx->album_id = sc_api_dup(req, album);
    return sc_api_catalog_year(req, ctx, year);
}

static void on_song_created(sc_req *req, const char *err, PGresult *res)
{
    sc_api_catalog_ctx *ctx = req->state;
    if (sc_api_db_sqlstate(err, res, "23503") || (!err && ctx->album_id && PQntuples(res) == 0))
        sc_api_finish_error(req, 404, "album not found");
    else
        sc_api_catalog_on_created(req, err, res);
}

static void on_song_album(sc_req *req, const char *err, PGresult *res)
{
    sc_api_catalog_ctx *ctx = req->state;
    if (sc_api_db_failed(req, err, res))
        return;
    if (PQntuples(res) == 0) {
        sc_api_finish_error(req, 404, "album not found");
        return;
    }
    int st = sc_api_catalog_may_write(req, ctx->who, sc_api_db_true(res, 0), sc_api_db_true(res, 1), true,
                                      "only the album's owner or an admin may add songs to it");
    if (st) {
        sc_req_finish(req, st);
        return;
    }
    SC_API_DB(req, SC_STMT_SONG_INSERT_ALBUM, on_song_created, ctx->id, ctx->name, ctx->year, ctx->performer,
              ctx->genre, ctx->duration, ctx->viewer, ctx->album_id, ctx->admin);
}

static int song_insert(sc_req *req, sc_api_catalog_ctx *ctx)
{
    if (!ctx->album_id) {
        SC_API_DB(req, SC_STMT_SONG_INSERT, on_song_created, ctx->id, ctx->name, ctx->year, ctx->performer,
                  ctx->genre, ctx->duration, ctx->viewer);
        return SC_ASYNC;
    }
    if (!sc_api_plausible_id(sc_slice_cstr(ctx->album_id)))
        return sc_res_error(req, 404, "album not found");
    SC_API_DB(req, SC_STMT_ALBUM_ACCESS, on_song_album, ctx->album_id, ctx->viewer, ctx->admin);
    return SC_ASYNC;
}

int sc_api_songs_create(sc_req *req) { return sc_api_catalog_create(req, "song", read_song, song_insert); }

int sc_api_songs_get(sc_req *req) { return sc_api_catalog_get(req, "song", SC_STMT_SONG_GET); }

static void on_song_written(sc_req *req, const char *err, PGresult *res)
{
    sc_api_catalog_ctx *ctx = req->state;
    sc_media_cache_forget(sc_api_app(req)->media, SC_MEDIA_SONG, sc_slice_cstr(ctx->id));
    int st = 0;
    if (sc_api_db_sqlstate(err, res, "23503"))
        sc_api_finish_error(req, 404, "album not found"); /* the album went away since it was checked */
    else if ((st = sc_api_db_changed(req, err, res, "song not found")))
        sc_req_finish(req, st);
    else
        sc_req_finish(req, sc_api_message(req, 200, ctx->deleting ? "song deleted" : "song updated"));
}

/* SONG_ACCESS: the song (404), the album it is to be in (404), the right to change the song (403), and the
 * right to put it into that album unless it is there already (403). */
static void on_song_access(sc_req *req, const char *err, PGresult *res)
{
    sc_api_catalog_ctx *ctx = req->state;
    if (!sc_api_catalog_found(req, err, res))
        return;
    bool album_named = !ctx->deleting && ctx->album_id;
    if (album_named && !sc_api_db_true(res, 2)) {
        sc_api_finish_error(req, 404, "album not found");
        return;
    }
    int st = sc_api_catalog_may_write(req, ctx->who, sc_api_db_true(res, 0), sc_api_db_true(res, 1), true,
                                      "only the song's owner or an admin may change it");
    if (!st && album_named && !sc_api_db_true(res, 5))
        st = sc_api_catalog_may_write(req, ctx->who, sc_api_db_true(res, 3), sc_api_db_true(res, 4), true,
                                      "only the album's owner or an admin may add songs to it");
    if (st)
        sc_req_finish(req, st);
    else if (ctx->deleting)
        SC_API_DB(req, SC_STMT_SONG_DELETE, on_song_written, ctx->id);
    else
        SC_API_DB(req, SC_STMT_SONG_UPDATE, on_song_written, ctx->id, ctx->name, ctx->year, ctx->performer,
                  ctx->genre, ctx->duration, ctx->album_id);
}

static int song_access(sc_req *req, sc_api_catalog_ctx *ctx)
{
    /* An album id that cannot exist is looked up as NULL, which finds nothing: "album not found" after the song.
     */
    const char *album = ctx->album_id && sc_api_plausible_id(sc_slice_cstr(ctx->album_id)) ? ctx->album_id : NULL;
    SC_API_DB(req, SC_STMT_SONG_ACCESS, on_song_access, ctx->id, ctx->viewer, ctx->admin, album);
    return SC_ASYNC;
}

int sc_api_songs_update(sc_req *req) { return sc_api_catalog_write(req, "song", false, read_song, song_access); }
int sc_api_songs_delete(sc_req *req) { return sc_api_catalog_write(req, "song", true, read_song, song_access); }

int sc_api_songs_flag(sc_req *req) { return sc_api_catalog_flag(req, "song", SC_STMT_SONG_FLAG); }

/* GET /songs?title=&performer=&genre=&albumId=&page=&limit=: SONG_LIST_<mask of the filters given>. */
static const sc_api_list song_list = {"songs", SC_STMT_SONG_LIST_0, SC_API_LIST_CALLER_ADMIN};

int sc_api_songs_list(sc_req *req)
{
    static const int stmts[16] = {
        SC_STMT_SONG_LIST_0,  SC_STMT_SONG_LIST_1,  SC_STMT_SONG_LIST_2,  SC_STMT_SONG_LIST_3,
        SC_STMT_SONG_LIST_4,  SC_STMT_SONG_LIST_5,  SC_STMT_SONG_LIST_6,  SC_STMT_SONG_LIST_7,
        SC_STMT_SONG_LIST_8,  SC_STMT_SONG_LIST_9,  SC_STMT_SONG_LIST_10, SC_STMT_SONG_LIST_11,
        SC_STMT_SONG_LIST_12, SC_STMT_SONG_LIST_13, SC_STMT_SONG_LIST_14, SC_STMT_SONG_LIST_15,
    };
    static const char *const filters[] = {"title", "performer", "genre", "albumId"};
    sc_api_list_call call;
    int st = sc_api_list_begin(req, &song_list, &call);
    if (st)
        return st;
    int mask = 0;
    for (int i = 0; i < 4; i++) {
        sc_slice v;
        if (!sc_req_query(req, filters[i], &v) || v.len == 0) /* an empty filter filters nothing */
            continue;
        if (!valid_text(v))
            return sc_res_error(req, 400, sc_api_catalog_msg(req, "%s must be UTF-8 text", filters[i]));
        mask |= 1 << i;
        sc_api_list_param(&call, i < 2 ? like_escape(req, v) : v.ptr); /* query values are NUL-terminated */
    }
    return sc_api_list_run(req, &song_list, &call, stmts[mask]);
}
