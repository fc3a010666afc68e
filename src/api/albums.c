/* Albums: creation, reading, changes, deletion and moderation (routes and SQL in api/albums.h; what albums share
 * with songs in api/catalog.h). A change or deletion makes the media cache forget the album's cover, and a
 * deletion drops its cached like count before the answer (api/cache_keys.h). */
#include "api/albums.h"

#include "api/api.h"
#include "api/cache_keys.h"
#include "api/db.h"
#include "api/media_cache.h"
#include "api/respond.h"
#include "json/read.h"

/* {name: string, year: integer} */
static int read_album(sc_req *req, sc_api_catalog_ctx *ctx)
{
    sc_jr jr = sc_api_json_begin(req);
    sc_slice name = sc_jr_str(&jr, "name", SC_JR_REQUIRED);
    int64_t year = sc_jr_int(&jr, "year", SC_JR_REQUIRED, NULL);
    if (sc_jr_failed(&jr))
        return sc_api_json_error(req, &jr);
    const char *problem = sc_api_catalog_text_problem(req, "name", name);
    if (problem)
        return sc_res_error(req, 400, problem);
    ctx->name = sc_api_dup(req, name);
    return sc_api_catalog_year(req, ctx, year);
}

static int album_insert(sc_req *req, sc_api_catalog_ctx *ctx)
{
    SC_API_DB(req, SC_STMT_ALBUM_INSERT, sc_api_catalog_on_created, ctx->id, ctx->name, ctx->year, ctx->viewer);
    return SC_ASYNC;
}

int sc_api_albums_create(sc_req *req) { return sc_api_catalog_create(req, "album", read_album, album_insert); }

int sc_api_albums_get(sc_req *req) { return sc_api_catalog_get(req, "album", SC_STMT_ALBUM_GET); }

static void on_album_written(sc_req *req, const char *err, PGresult *res)
{
    sc_api_catalog_ctx *ctx = req->state;
    sc_media_cache_forget(sc_api_app(req)->media, SC_MEDIA_COVER,
                          sc_slice_cstr(ctx->id)); /* before anyone hears */
    int st = sc_api_db_changed(req, err, res, "album not found");
    if (st)
        sc_req_finish(req, st);
    else if (ctx->deleting)
        sc_api_invalidate_album_likes_then_finish(req, ctx->id, sc_api_message(req, 200, "album deleted"));
    else
        sc_req_finish(req, sc_api_message(req, 200, "album updated"));
}

static void on_album_access(sc_req *req, const char *err, PGresult *res)
{
    sc_api_catalog_ctx *ctx = req->state;
    if (!sc_api_catalog_found(req, err, res))
        return;
    int st = sc_api_catalog_may_write(req, ctx->who, sc_api_db_true(res, 0), sc_api_db_true(res, 1), true,
                                      "only the album's owner or an admin may change it");
    if (st)
        sc_req_finish(req, st);
    else if (ctx->deleting)
        SC_API_DB(req, SC_STMT_ALBUM_DELETE, on_album_written, ctx->id);
    else
        SC_API_DB(req, SC_STMT_ALBUM_UPDATE, on_album_written, ctx->id, ctx->name, ctx->year);
}

static int album_access(sc_req *req, sc_api_catalog_ctx *ctx)
{
    SC_API_DB(req, SC_STMT_ALBUM_ACCESS, on_album_access, ctx->id, ctx->viewer, ctx->admin);
    return SC_ASYNC;
}

int sc_api_albums_update(sc_req *req)
{
    return sc_api_catalog_write(req, "album", false, read_album, album_access);
}
int sc_api_albums_delete(sc_req *req)
{
    return sc_api_catalog_write(req, "album", true, read_album, album_access);
}

int sc_api_albums_flag(sc_req *req) { return sc_api_catalog_flag(req, "album", SC_STMT_ALBUM_FLAG); }
