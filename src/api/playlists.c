/* Playlists: creation, listing and deletion, their songs and activity log (routes and SQL in api/playlists.h).
 *
 * Every endpoint needs an account (its route is SC_API_USER). The order of checks is authentication (401), body
 * validation (400), existence (404: the playlist, then the song named in the body), permission (403: owner, or
 * owner or collaborator) and conflicts (400). Each endpoint is a single statement whose one row says which of
 * these hold, so the answer never depends on two reads that could disagree. A foreign key violation of a write
 * means that the playlist or song went away between the reads and the write of its statement: it is not found. */
#include "api/playlists.h"

#include <string.h>

#include "api/api.h"
#include "api/auth.h"
#include "api/db.h"
#include "api/list.h"
#include "api/respond.h"
#include "core/random.h"
#include "json/read.h"

#define NOT_A_MEMBER "you are not the owner or a collaborator of this playlist"

/* ---- POST /playlists -------------------------------------------------------------------------------------- */

static void on_playlist_inserted(sc_req *req, const char *err, PGresult *res)
{
    if (err) {
        sc_api_db_finish_error(req, err, res);
    } else if (PQntuples(res) == 0) {
        /* The token is valid but its account has been deleted since. */
        sc_res_header(req, "WWW-Authenticate", SC_SLICE_LIT("Bearer realm=\"staccato\""));
        sc_api_finish_error(req, 401, "the account no longer exists");
    } else {
        sc_req_finish(req, sc_api_data_str(req, 201, "playlist added", "playlistId", PQgetvalue(res, 0, 0)));
    }
}

int sc_api_playlists_create(sc_req *req)
{
    const sc_api_principal *who = sc_api_who(req);
    sc_jr jr = sc_api_json_begin(req);
    sc_slice name = sc_jr_str(&jr, "name", SC_JR_REQUIRED);
    if (sc_jr_failed(&jr))
        return sc_api_json_error(req, &jr);
    if (sc_slice_trim(name).len == 0)
        return sc_res_error(req, 400, "name must not be empty");
    if (memchr(name.ptr, '\0', name.len))
        return sc_res_error(req, 400, "name must not contain NUL characters");
    char id[48];
    sc_random_id("playlist", id, sizeof(id));
    SC_API_DB(req, SC_STMT_PLAYLIST_INSERT, on_playlist_inserted, id, sc_api_dup(req, name), who->id);
    return SC_ASYNC;
}

/* ---- GET /playlists --------------------------------------------------------------------------------------- */

static const sc_api_list playlists = {"playlists", SC_STMT_PLAYLIST_LIST, SC_API_LIST_CALLER};

int sc_api_playlists_list(sc_req *req) { return sc_api_list_page(req, &playlists); }

/* ---- DELETE /playlists/{id} ------------------------------------------------------------------------------- */

static void on_playlist_deleted(sc_req *req, const char *err, PGresult *res)
{
    if (sc_api_db_sqlstate(err, res, "23503"))
        sc_api_finish_error(req, 404, "playlist not found");
    else if (err)
        sc_api_db_finish_error(req, err, res);
    else if (PQntuples(res) == 0)
        sc_api_finish_error(req, 404, "playlist not found");
    else if (!sc_api_db_true(res, 0))
        sc_req_finish(req, sc_api_auth_forbidden(req, "only the owner may delete this playlist"));
    else if (sc_api_db_count(res, 1) == 0) /* deleted by a concurrent request */
        sc_api_finish_error(req, 404, "playlist not found");
    else
        sc_req_finish(req, sc_api_message(req, 200, "playlist deleted"));
}

/* Runs stmt with the playlist of the path and the caller (and, with admin, the caller's admin flag). */
static int playlist_call(sc_req *req, int stmt, bool admin, sc_api_db_cb cb)
{
    const sc_api_principal *who = sc_api_who(req);
    const char *id = sc_api_id_or_null(req, sc_req_param(req, "id"));
    if (admin)
        SC_API_DB(req, stmt, cb, id, who->id, sc_api_auth_admin_flag(who));
    else
        SC_API_DB(req, stmt, cb, id, who->id);
    return SC_ASYNC;
}

int sc_api_playlists_delete(sc_req *req)
{
    return playlist_call(req, SC_STMT_PLAYLIST_DELETE, false, on_playlist_deleted);
}

/* ---- GET /playlists/{id}/songs, GET /playlists/{id}/activities -------------------------------------------- */

/* A row (member, json) of a read that members may make; the data is the JSON under key, or itself (key NULL). */
static void member_read(sc_req *req, const char *err, PGresult *res, const char *key)
{
    if (err)
        sc_api_db_finish_error(req, err, res);
    else if (PQntuples(res) == 0)
        sc_api_finish_error(req, 404, "playlist not found");
    else if (!sc_api_db_true(res, 0))
        sc_req_finish(req, sc_api_auth_forbidden(req, NOT_A_MEMBER));
    else
        sc_req_finish(req, sc_api_data_raw(req, 200, key, sc_api_db_col(res, 1)));
}

static void on_playlist_songs(sc_req *req, const char *err, PGresult *res)
{
    member_read(req, err, res, "playlist");
}

int sc_api_playlist_songs_list(sc_req *req)
{
    return playlist_call(req, SC_STMT_PLAYLIST_SONGS, true, on_playlist_songs);
}

static void on_playlist_activities(sc_req *req, const char *err, PGresult *res)
{
    member_read(req, err, res, NULL);
}

int sc_api_playlist_activities(sc_req *req)
{
    return playlist_call(req, SC_STMT_PLAYLIST_ACTIVITIES, false, on_playlist_activities);
}

/* ---- POST/DELETE /playlists/{id}/songs -------------------------------------------------------------------- */

/* Reads {songId} and runs stmt with (playlist, song, caller, admin). */
static int song_write(sc_req *req, int stmt, sc_api_db_cb cb)
{
    const sc_api_principal *who = sc_api_who(req);
    sc_jr jr = sc_api_json_begin(req);
    sc_slice song = sc_jr_str(&jr, "songId", SC_JR_REQUIRED);
    if (sc_jr_failed(&jr))
        return sc_api_json_error(req, &jr);
    SC_API_DB(req, stmt, cb, sc_api_id_or_null(req, sc_req_param(req, "id")), sc_api_id_or_null(req, song),
              who->id, sc_api_auth_admin_flag(who));
    return SC_ASYNC;
}

int sc_api_playlist_row_status(sc_req *req, const char *err, PGresult *res, const char *not_found)
{
    if (sc_api_db_sqlstate(err, res, "23503"))
        return sc_res_error(req, 404, not_found);
    if (err)
        return sc_api_db_error(req, err, res);
    if (PQntuples(res) != 1)
        return sc_res_error(req, 500, NULL);
    if (!sc_api_db_true(res, 0))
        return sc_res_error(req, 404, "playlist not found");
    return 0;
}

/* Row: (playlist exists, member, song visible, rows added, activities added). */
static void on_song_added(sc_req *req, const char *err, PGresult *res)
{
    int st = sc_api_playlist_row_status(req, err, res, "playlist or song not found");
    if (st)
        sc_req_finish(req, st);
    else if (!sc_api_db_true(res, 2))
        sc_api_finish_error(req, 404, "song not found");
    else if (!sc_api_db_true(res, 1))
        sc_req_finish(req, sc_api_auth_forbidden(req, NOT_A_MEMBER));
    else if (sc_api_db_count(res, 3) == 0)
        sc_api_finish_error(req, 400, "the song is already in the playlist");
    else
        sc_req_finish(req, sc_api_message(req, 201, "song added to the playlist"));
}

int sc_api_playlist_songs_add(sc_req *req) { return song_write(req, SC_STMT_PLAYLIST_SONG_ADD, on_song_added); }

/* Row: (playlist exists, member, song visible, rows removed, activities added). A non-member learns only whether
 * the song exists (404) or not (403), never whether it is in the playlist. */
static void on_song_removed(sc_req *req, const char *err, PGresult *res)
{
    int st = sc_api_playlist_row_status(req, err, res, "playlist not found");
    if (st)
        sc_req_finish(req, st);
    else if (!sc_api_db_true(res, 1))
        sc_req_finish(req, sc_api_db_true(res, 2) ? sc_api_auth_forbidden(req, NOT_A_MEMBER)
                                                  : sc_res_error(req, 404, "song not found"));
    else if (sc_api_db_count(res, 3) == 0)
        sc_api_finish_error(req, 404, "the song is not in the playlist");
    else
        sc_req_finish(req, sc_api_message(req, 200, "song removed from the playlist"));
}

int sc_api_playlist_songs_delete(sc_req *req)
{
    return song_write(req, SC_STMT_PLAYLIST_SONG_DELETE, on_song_removed);
}
