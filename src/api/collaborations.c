/* Collaborations: the owner of a playlist adds and removes its collaborators (routes and SQL in
 * api/collaborations.h). Checks in order: authentication (401), the body (400), the playlist, then the user (404),
 * ownership (403), then the change itself (400 or 404 when there is nothing to change). */
#include "api/collaborations.h"

#include <string.h>

#include "api/api.h"
#include "api/auth.h"
#include "api/db.h"
#include "api/playlists.h"
#include "api/respond.h"
#include "core/random.h"
#include "json/read.h"

/* State of a collaboration request (req->state). */
typedef struct collab_ctx {
    const char *user_id;   /* the caller */
    const char *target_id; /* the user named in the body */
    const char *playlist_id;
    char collab_id[48];
} collab_ctx;

/* Reads {playlistId, userId} into a new context. Returns 0 to go on, or the status answered. */
static int collab_request(sc_req *req, collab_ctx **out)
{
    sc_jr jr = sc_api_json_begin(req);
    sc_slice playlist = sc_jr_str(&jr, "playlistId", SC_JR_REQUIRED);
    sc_slice user = sc_jr_str(&jr, "userId", SC_JR_REQUIRED);
    if (sc_jr_failed(&jr))
        return sc_api_json_error(req, &jr);
    collab_ctx *ctx = sc_api_state_new(req, sizeof(*ctx), NULL);
    ctx->user_id = sc_api_who(req)->id;
    ctx->target_id = sc_api_id_or_null(req, user);
    ctx->playlist_id = sc_api_id_or_null(req, playlist);
    *out = ctx;
    return 0;
}

/* The checks common to both, on the row (playlist exists, caller is the owner, user exists, rows changed):
 * returns 0 when they pass, else the status answered. A foreign key violation means that the playlist or the user
 * went away while the statement ran. */
static int collab_checks(sc_req *req, const char *err, PGresult *res)
{
    int st = sc_api_playlist_row_status(req, err, res, "playlist or user not found");
    if (st)
        return st;
    if (!sc_api_db_true(res, 2))
        return sc_res_error(req, 404, "user not found");
    if (!sc_api_db_true(res, 1))
        return sc_api_auth_forbidden(req, "only the owner may manage the collaborators of this playlist");
    return 0;
}

static void on_collab_inserted(sc_req *req, const char *err, PGresult *res)
{
    collab_ctx *ctx = req->state;
    int st = collab_checks(req, err, res);
    if (st)
        sc_req_finish(req, st);
    else if (sc_api_db_count(res, 3) == 0)
        sc_api_finish_error(req, 400,
                            strcmp(ctx->target_id, ctx->user_id) == 0
                                ? "the owner cannot be a collaborator of their own playlist"
                                : "the user is already a collaborator of this playlist");
    else
        sc_req_finish(req, sc_api_data_str(req, 201, "collaboration added", "collaborationId", ctx->collab_id));
}

int sc_api_collaborations_add(sc_req *req)
{
    collab_ctx *ctx;
    int st = collab_request(req, &ctx);
    if (st)
        return st;
    sc_random_id("collab", ctx->collab_id, sizeof(ctx->collab_id));
    SC_API_DB(req, SC_STMT_COLLAB_INSERT, on_collab_inserted, ctx->playlist_id, ctx->target_id, ctx->user_id,
              ctx->collab_id);
    return SC_ASYNC;
}

static void on_collab_deleted(sc_req *req, const char *err, PGresult *res)
{
    int st = collab_checks(req, err, res);
    if (st)
        sc_req_finish(req, st);
    else if (sc_api_db_count(res, 3) == 0)
        sc_api_finish_error(req, 404, "the user is not a collaborator of this playlist");
    else
        sc_req_finish(req, sc_api_message(req, 200, "collaboration deleted"));
}

int sc_api_collaborations_delete(sc_req *req)
{
    collab_ctx *ctx;
    int st = collab_request(req, &ctx);
    if (st)
        return st;
    SC_API_DB(req, SC_STMT_COLLAB_DELETE, on_collab_deleted, ctx->playlist_id, ctx->target_id, ctx->user_id);
    return SC_ASYNC;
}
