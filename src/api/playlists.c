/* Playlists: creation, listing and deletion, their songs and activity log, and collaborations.
 *
 * Every endpoint needs an account. The order of checks is authentication (401), body validation (400),
 * existence (404: the playlist, then the song or user named in the body), permission (403: owner, or owner or
 * collaborator) and conflicts (400). Each endpoint is a single statement (sql_playlists.h) whose one row says
 * which of these hold, so the answer never depends on two reads that could disagree. */
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/auth.h"
#include "api/db.h"
#include "api/respond.h"
#include "api/routes_playlists.h"
#include "core/random.h"
#include "json/read.h"

typedef struct playlist_ctx {
    const char *user_id;   /* the caller */
    const char *target_id; /* POST/DELETE /collaborations: the user named in the body */
    char collab_id[48];
} playlist_ctx;

static playlist_ctx *ctx_new(sc_req *req, const sc_api_principal *who)
{
    playlist_ctx *ctx = sc_arena_alloc(req->arena, sizeof(*ctx));
    memset(ctx, 0, sizeof(*ctx));
    ctx->user_id = who->id;
    req->state = ctx;
    return ctx;
}

/* An id as a query parameter. Ids are printable ASCII without spaces; anything else (a NUL, which libpq would cut
 * the value at, bytes that are not valid UTF-8, which PostgreSQL would refuse with an error) cannot name a row, so
 * it becomes SQL NULL, which matches nothing: a 404 like any other unknown id. */
static const char *id_arg(sc_req *req, sc_slice s)
{
    if (!s.ptr)
        return NULL;
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        if (c <= 0x20 || c >= 0x7f)
            return NULL;
    }
    return sc_arena_strndup(req->arena, s.ptr, s.len);
}

static const char *admin_arg(const sc_api_principal *who) { return sc_api_auth_is(who, "admin") ? "true" : "false"; }

static bool col_bool(PGresult *res, int col) { return PQgetvalue(res, 0, col)[0] == 't'; }

static long long col_count(PGresult *res, int col) { return strtoll(PQgetvalue(res, 0, col), NULL, 10); }

static sc_slice col_slice(PGresult *res, int col)
{
    return (sc_slice){PQgetvalue(res, 0, col), (size_t)PQgetlength(res, 0, col)};
}

/* A database error of a write: a foreign key violation means that the playlist (or song, or user) went away
 * between the reads and the write of the statement, i.e. it is not found. */
static int write_error(sc_req *req, const char *err, PGresult *res, const char *not_found)
{
    if (err == SC_PG_ERR_QUERY && strcmp(sc_pg_sqlstate(res), "23503") == 0)
        return sc_res_error(req, 404, not_found);
    return sc_api_db_error(req, err, res);
}

/* Responds {"status":"success","data":<json>} or {"status":"success","data":{key:<json>}} (key non-NULL). */
static int respond_raw(sc_req *req, const char *key, sc_slice json)
{
    sc_jw *w = sc_api_begin(req);
    sc_jw_key(w, "data");
    if (key) {
        sc_jw_obj_begin(w);
        sc_jw_key(w, key);
    }
    sc_jw_raw(w, json);
    if (key)
        sc_jw_obj_end(w);
    return sc_api_end(w, 200);
}

/* ---- POST /playlists -------------------------------------------------------------------------------------- */

static void on_playlist_inserted(sc_req *req, const char *err, PGresult *res)
{
    if (err) {
        sc_req_finish(req, sc_api_db_error(req, err, res));
    } else if (PQntuples(res) == 0) {
        /* The token is valid but its account has been deleted since. */
        sc_res_header(req, "WWW-Authenticate", SC_SLICE_LIT("Bearer realm=\"staccato\""));
        sc_req_finish(req, sc_res_error(req, 401, "the account no longer exists"));
    } else {
        sc_req_finish(req, sc_api_data_str(req, 201, "playlist added", "playlistId", PQgetvalue(res, 0, 0)));
    }
}

int sc_api_playlists_create(sc_req *req)
{
    sc_api_principal *who;
    int st = sc_api_auth_require(req, &who);
    if (st)
        return st;
    sc_jr jr;
    sc_api_json_begin(&jr, req);
    sc_slice name = sc_jr_str(&jr, "name", SC_JR_REQUIRED);
    if (sc_jr_failed(&jr))
        return sc_api_json_error(req, &jr);
    if (sc_slice_trim(name).len == 0)
        return sc_res_error(req, 400, "name must not be empty");
    if (memchr(name.ptr, '\0', name.len))
        return sc_res_error(req, 400, "name must not contain NUL characters");
    char id[48];
    sc_random_id("playlist", id, sizeof(id));
    const char *params[] = {id, sc_arena_strndup(req->arena, name.ptr, name.len), who->id};
    sc_api_db(req, SC_STMT_PLAYLIST_INSERT, 3, params, on_playlist_inserted);
    return SC_ASYNC;
}

/* ---- GET /playlists --------------------------------------------------------------------------------------- */

static void on_playlist_list(sc_req *req, const char *err, PGresult *res)
{
    if (err) {
        sc_req_finish(req, sc_api_db_error(req, err, res));
        return;
    }
    if (PQntuples(res) != 1) {
        sc_req_finish(req, sc_res_error(req, 500, NULL));
        return;
    }
    unsigned long long total = 0;
    sc_slice_to_u64(col_slice(res, 0), UINT64_MAX, &total);
    respond_raw(req, "playlists", col_slice(res, 1));
    sc_api_total(req, total);
    sc_req_finish(req, 200);
}

int sc_api_playlists_list(sc_req *req)
{
    sc_api_principal *who;
    sc_page page;
    int st = sc_api_auth_require(req, &who);
    if (!st)
        st = sc_api_page(req, &page);
    if (st)
        return st;
    const char *params[] = {who->id, page.limit_str, page.offset_str};
    sc_api_db(req, SC_STMT_PLAYLIST_LIST, 3, params, on_playlist_list);
    return SC_ASYNC;
}

/* ---- DELETE /playlists/{id} ------------------------------------------------------------------------------- */

static void on_playlist_deleted(sc_req *req, const char *err, PGresult *res)
{
    if (err)
        sc_req_finish(req, write_error(req, err, res, "playlist not found"));
    else if (PQntuples(res) == 0)
        sc_req_finish(req, sc_res_error(req, 404, "playlist not found"));
    else if (!col_bool(res, 0))
        sc_req_finish(req, sc_api_auth_forbidden(req, "only the owner may delete this playlist"));
    else if (col_count(res, 1) == 0) /* deleted by a concurrent request */
        sc_req_finish(req, sc_res_error(req, 404, "playlist not found"));
    else
        sc_req_finish(req, sc_api_message(req, 200, "playlist deleted"));
}

int sc_api_playlists_delete(sc_req *req)
{
    sc_api_principal *who;
    int st = sc_api_auth_require(req, &who);
    if (st)
        return st;
    const char *params[] = {id_arg(req, sc_req_param(req, "id")), who->id};
    sc_api_db(req, SC_STMT_PLAYLIST_DELETE, 2, params, on_playlist_deleted);
    return SC_ASYNC;
}

/* ---- GET /playlists/{id}/songs, GET /playlists/{id}/activities -------------------------------------------- */

/* A row (member, json) of a read that members may make. */
static int member_read(sc_req *req, const char *err, PGresult *res, const char *key)
{
    if (err)
        return sc_api_db_error(req, err, res);
    if (PQntuples(res) == 0)
        return sc_res_error(req, 404, "playlist not found");
    if (!col_bool(res, 0))
        return sc_api_auth_forbidden(req, "you are not the owner or a collaborator of this playlist");
    return respond_raw(req, key, col_slice(res, 1));
}

static void on_playlist_songs(sc_req *req, const char *err, PGresult *res)
{
    sc_req_finish(req, member_read(req, err, res, "playlist"));
}

int sc_api_playlist_songs_list(sc_req *req)
{
    sc_api_principal *who;
    int st = sc_api_auth_require(req, &who);
    if (st)
        return st;
    const char *params[] = {id_arg(req, sc_req_param(req, "id")), who->id, admin_arg(who)};
    sc_api_db(req, SC_STMT_PLAYLIST_SONGS, 3, params, on_playlist_songs);
    return SC_ASYNC;
}

static void on_playlist_activities(sc_req *req, const char *err, PGresult *res)
{
    sc_req_finish(req, member_read(req, err, res, NULL));
}

int sc_api_playlist_activities(sc_req *req)
{
    sc_api_principal *who;
    int st = sc_api_auth_require(req, &who);
    if (st)
        return st;
    const char *params[] = {id_arg(req, sc_req_param(req, "id")), who->id};
    sc_api_db(req, SC_STMT_PLAYLIST_ACTIVITIES, 2, params, on_playlist_activities);
    return SC_ASYNC;
}

/* ---- POST/DELETE /playlists/{id}/songs -------------------------------------------------------------------- */

/* Reads {songId} and runs stmt with (playlist, song, caller, admin). */
static int song_write(sc_req *req, int stmt, sc_api_db_cb cb)
{
    sc_api_principal *who;
    int st = sc_api_auth_require(req, &who);
    if (st)
        return st;
    sc_jr jr;
    sc_api_json_begin(&jr, req);
    sc_slice song = sc_jr_str(&jr, "songId", SC_JR_REQUIRED);
    if (sc_jr_failed(&jr))
        return sc_api_json_error(req, &jr);
    const char *params[] = {id_arg(req, sc_req_param(req, "id")), id_arg(req, song), who->id, admin_arg(who)};
    sc_api_db(req, stmt, 4, params, cb);
    return SC_ASYNC;
}

/* Row: (playlist exists, member, song visible, rows added, activities added). */
static void on_song_added(sc_req *req, const char *err, PGresult *res)
{
    if (err)
        sc_req_finish(req, write_error(req, err, res, "playlist or song not found"));
    else if (PQntuples(res) != 1)
        sc_req_finish(req, sc_res_error(req, 500, NULL));
    else if (!col_bool(res, 0))
        sc_req_finish(req, sc_res_error(req, 404, "playlist not found"));
    else if (!col_bool(res, 2))
        sc_req_finish(req, sc_res_error(req, 404, "song not found"));
    else if (!col_bool(res, 1))
        sc_req_finish(req, sc_api_auth_forbidden(req, "you are not the owner or a collaborator of this playlist"));
    else if (col_count(res, 3) == 0)
        sc_req_finish(req, sc_res_error(req, 400, "the song is already in the playlist"));
    else
        sc_req_finish(req, sc_api_message(req, 201, "song added to the playlist"));
}

int sc_api_playlist_songs_add(sc_req *req) { return song_write(req, SC_STMT_PLAYLIST_SONG_ADD, on_song_added); }

/* Row: (playlist exists, member, song visible, rows removed, activities added). A non-member learns only whether
 * the song exists (404) or not (403), never whether it is in the playlist. */
static void on_song_removed(sc_req *req, const char *err, PGresult *res)
{
    if (err)
        sc_req_finish(req, write_error(req, err, res, "playlist not found"));
    else if (PQntuples(res) != 1)
        sc_req_finish(req, sc_res_error(req, 500, NULL));
    else if (!col_bool(res, 0))
        sc_req_finish(req, sc_res_error(req, 404, "playlist not found"));
    else if (!col_bool(res, 1))
        sc_req_finish(req, col_bool(res, 2) ? sc_api_auth_forbidden(req, "you are not the owner or a collaborator of "
                                                                     "this playlist")
                                            : sc_res_error(req, 404, "song not found"));
    else if (col_count(res, 3) == 0)
        sc_req_finish(req, sc_res_error(req, 404, "the song is not in the playlist"));
    else
        sc_req_finish(req, sc_api_message(req, 200, "song removed from the playlist"));
}

int sc_api_playlist_songs_delete(sc_req *req)
{
    return song_write(req, SC_STMT_PLAYLIST_SONG_DELETE, on_song_removed);
}

/* ---- POST/DELETE /collaborations -------------------------------------------------------------------------- */

/* Reads {playlistId, userId}. Returns 0 and fills params[0..2] (playlist, user, caller), or a status. */
static int collab_request(sc_req *req, const char *params[3])
{
    sc_api_principal *who;
    int st = sc_api_auth_require(req, &who);
    if (st)
        return st;
    sc_jr jr;
    sc_api_json_begin(&jr, req);
    sc_slice playlist = sc_jr_str(&jr, "playlistId", SC_JR_REQUIRED);
    sc_slice user = sc_jr_str(&jr, "userId", SC_JR_REQUIRED);
    if (sc_jr_failed(&jr))
        return sc_api_json_error(req, &jr);
    playlist_ctx *ctx = ctx_new(req, who);
    ctx->target_id = id_arg(req, user);
    params[0] = id_arg(req, playlist);
    params[1] = ctx->target_id;
    params[2] = who->id;
    return 0;
}

/* The checks common to both, on the row (playlist exists, caller is the owner, user exists, rows changed):
 * returns 0 when they pass, else the status answered. */
static int collab_checks(sc_req *req, const char *err, PGresult *res)
{
    if (err)
        return write_error(req, err, res, "playlist or user not found");
    if (PQntuples(res) != 1)
        return sc_res_error(req, 500, NULL);
    if (!col_bool(res, 0))
        return sc_res_error(req, 404, "playlist not found");
    if (!col_bool(res, 2))
        return sc_res_error(req, 404, "user not found");
    if (!col_bool(res, 1))
        return sc_api_auth_forbidden(req, "only the owner may manage the collaborators of this playlist");
    return 0;
}

static void on_collab_inserted(sc_req *req, const char *err, PGresult *res)
{
    playlist_ctx *ctx = req->state;
    int st = collab_checks(req, err, res);
    if (st)
        sc_req_finish(req, st);
    else if (col_count(res, 3) == 0)
        sc_req_finish(req, sc_res_error(req, 400, strcmp(ctx->target_id, ctx->user_id) == 0
                                                      ? "the owner cannot be a collaborator of their own playlist"
                                                      : "the user is already a collaborator of this playlist"));
    else
        sc_req_finish(req, sc_api_data_str(req, 201, "collaboration added", "collaborationId", ctx->collab_id));
}

int sc_api_collaborations_add(sc_req *req)
{
    const char *params[4];
    int st = collab_request(req, params);
    if (st)
        return st;
    playlist_ctx *ctx = req->state;
    sc_random_id("collab", ctx->collab_id, sizeof(ctx->collab_id));
    params[3] = ctx->collab_id;
    sc_api_db(req, SC_STMT_COLLAB_INSERT, 4, params, on_collab_inserted);
    return SC_ASYNC;
}

static void on_collab_deleted(sc_req *req, const char *err, PGresult *res)
{
    int st = collab_checks(req, err, res);
    if (st)
        sc_req_finish(req, st);
    else if (col_count(res, 3) == 0)
        sc_req_finish(req, sc_res_error(req, 404, "the user is not a collaborator of this playlist"));
    else
        sc_req_finish(req, sc_api_message(req, 200, "collaboration deleted"));
}

int sc_api_collaborations_delete(sc_req *req)
{
    const char *params[3];
    int st = collab_request(req, params);
    if (st)
        return st;
    sc_api_db(req, SC_STMT_COLLAB_DELETE, 3, params, on_collab_deleted);
    return SC_ASYNC;
}
