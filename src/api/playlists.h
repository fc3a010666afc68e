/* Playlists (api/playlists.c): creation, listing and deletion, their songs and their activity log. Their
 * collaborators have a resource of their own (api/collaborations.h).
 *
 * Existence and permission come back from one query: a statement about a playlist answers whether the playlist
 * exists (a row, or a boolean), whether the caller may act on it, and what it did. Writes are single statements
 * with data-modifying CTEs, so that a change to playlist_songs and its playlist_activities row commit together or
 * not at all, and conflicts are ON CONFLICT DO NOTHING rather than errors (nothing here fails on ordinary input).
 *
 * Activity times are clock_timestamp() taken after the change itself (which may have waited for a concurrent
 * change of the same row to commit), so the log's time order is the order in which the changes took effect.
 *
 * Parameters: the caller's user id, and where songs are concerned whether the caller is an admin ('true'/'false'):
 * a song is visible to its owner, to admins, and to everyone else only while public and not flagged
 * (SC_PL_SONG_VISIBLE, api/visibility.h). */
#ifndef SC_API_PLAYLISTS_H
#define SC_API_PLAYLISTS_H

#include "api/visibility.h"
#include "db/pg.h"
#include "http/request.h"

#define SC_ROUTES_PLAYLISTS(X)                                                                                    \
    X(SC_M_POST, "/playlists", SC_API_USER, sc_api_playlists_create)                                              \
    X(SC_M_GET, "/playlists", SC_API_USER, sc_api_playlists_list)                                                 \
    X(SC_M_DELETE, "/playlists/{id}", SC_API_USER, sc_api_playlists_delete)                                       \
    X(SC_M_POST, "/playlists/{id}/songs", SC_API_USER, sc_api_playlist_songs_add)                                 \
    X(SC_M_GET, "/playlists/{id}/songs", SC_API_USER, sc_api_playlist_songs_list)                                 \
    X(SC_M_DELETE, "/playlists/{id}/songs", SC_API_USER, sc_api_playlist_songs_delete)                            \
    X(SC_M_GET, "/playlists/{id}/activities", SC_API_USER, sc_api_playlist_activities)

/* Whether the user U (a parameter such as "$2") owns or collaborates on the playlist aliased p. */
#define SC_PL_MEMBER(U)                                                                                           \
    "(p.owner_id = " U " OR EXISTS (SELECT 1 FROM collaborations c WHERE c.playlist_id = p.id AND c.user_id = " U \
    "))"

/* clang-format off */
#define SC_STMTS_PLAYLISTS(X)                                                                                     \
    /* $1 id, $2 name, $3 owner. No row: the caller's account no longer exists. */                               \
    X(PLAYLIST_INSERT, "INSERT INTO playlists (id, name, owner_id) SELECT $1, $2, id FROM users WHERE id = $3 "   \
                       "RETURNING id")                                                                            \
    /* $1 user, $2 limit, $3 offset, $4 the count's cap (api/list.h) -> one row: total, JSON array of {id, name,  \
     * username (the owner's)}. */                                                                               \
    X(PLAYLIST_LIST,                                                                                              \
      "WITH mine AS ("                                                                                            \
      "  SELECT id, name, owner_id, created_at FROM playlists WHERE owner_id = $1 "                               \
      "  UNION "                                                                                                  \
      "  SELECT p.id, p.name, p.owner_id, p.created_at FROM collaborations c "                                    \
      "  JOIN playlists p ON p.id = c.playlist_id WHERE c.user_id = $1), "                                        \
      "page AS (SELECT * FROM mine ORDER BY created_at, id LIMIT $2::bigint OFFSET $3::bigint) "                  \
      "SELECT (SELECT count(*) FROM (SELECT 1 FROM mine LIMIT $4::bigint) c), "                                                                      \
      "  coalesce((SELECT json_agg(json_build_object('id', pg.id, 'name', pg.name, 'username', u.username) "      \
      "    ORDER BY pg.created_at, pg.id) FROM page pg JOIN users u ON u.id = pg.owner_id), '[]'::json)")         \
    /* $1 id, $2 user -> no row: unknown; else (caller is the owner, rows deleted). */                           \
    X(PLAYLIST_DELETE,                                                                                            \
      "WITH p AS (SELECT owner_id = $2 AS owner FROM playlists WHERE id = $1), "                                  \
      "d AS (DELETE FROM playlists WHERE id = $1 AND owner_id = $2 RETURNING 1) "                                 \
      "SELECT owner, (SELECT count(*) FROM d) FROM p")                                                            \
    /* $1 id, $2 user, $3 admin -> no row: unknown; else (member, JSON {id, name, username, songs} when member). */ \
    X(PLAYLIST_SONGS,                                                                                             \
      "SELECT m.member, CASE WHEN m.member THEN json_build_object('id', p.id, 'name', p.name, "                   \
      "  'username', u.username, 'songs', coalesce((SELECT json_agg(json_build_object('id', s.id, "                \
      "  'title', s.title, 'performer', s.performer) ORDER BY ps.added_at, ps.song_id) "                          \
      "  FROM playlist_songs ps JOIN songs s ON s.id = ps.song_id "                                               \
      "  WHERE ps.playlist_id = p.id AND " SC_PL_SONG_VISIBLE("$2", "$3") "), '[]'::json)) END "                  \
      "FROM playlists p JOIN users u ON u.id = p.owner_id "                                                       \
      "CROSS JOIN LATERAL (SELECT " SC_PL_MEMBER("$2") " AS member) m WHERE p.id = $1")                           \
    /* $1 playlist, $2 song, $3 user, $4 admin -> one row: (playlist exists, caller is a member, song exists and \
     * is visible to the caller, rows added). The song and its 'add' activity go in together or not at all. */   \
    X(PLAYLIST_SONG_ADD,                                                                                          \
      "WITH p AS (SELECT p.id, " SC_PL_MEMBER("$3") " AS member FROM playlists p WHERE p.id = $1), "              \
      "s AS (SELECT s.id, s.title FROM songs s WHERE s.id = $2 AND " SC_PL_SONG_VISIBLE("$3", "$4") "), "         \
      "u AS (SELECT id, username FROM users WHERE id = $3), "                                                     \
      "ins AS (INSERT INTO playlist_songs (playlist_id, song_id, added_by, added_at) "                            \
      "  SELECT p.id, s.id, u.id, clock_timestamp() FROM p, s, u WHERE p.member "                                 \
      "  ON CONFLICT DO NOTHING RETURNING playlist_id, song_id), "                                      \
      "act AS (INSERT INTO playlist_activities (playlist_id, song_id, song_title, user_id, username, action, time) " \
      "  SELECT ins.playlist_id, ins.song_id, s.title, u.id, u.username, 'add', clock_timestamp() FROM ins, s, u " \
      "  RETURNING id) "                                                                                          \
      "SELECT EXISTS (SELECT 1 FROM p), coalesce((SELECT member FROM p), false), EXISTS (SELECT 1 FROM s), "      \
      "  (SELECT count(*) FROM ins), (SELECT count(*) FROM act)")                                                 \
    /* $1 playlist, $2 song, $3 user, $4 admin -> one row: (playlist exists, caller is a member, song exists and \
     * is visible to the caller, rows removed). Removal and its 'delete' activity go together. */                \
    X(PLAYLIST_SONG_DELETE,                                                                                       \
      "WITH p AS (SELECT p.id, " SC_PL_MEMBER("$3") " AS member FROM playlists p WHERE p.id = $1), "              \
      "u AS (SELECT id, username FROM users WHERE id = $3), "                                                     \
      "del AS (DELETE FROM playlist_songs ps USING p, u "                                                         \
      "  WHERE ps.playlist_id = p.id AND ps.song_id = $2 AND p.member RETURNING ps.playlist_id, ps.song_id), "    \
      "act AS (INSERT INTO playlist_activities (playlist_id, song_id, song_title, user_id, username, action, time) " \
      "  SELECT del.playlist_id, del.song_id, coalesce((SELECT title FROM songs WHERE id = del.song_id), ''), "   \
      "  u.id, u.username, 'delete', clock_timestamp() FROM del, u RETURNING id) "                                \
      "SELECT EXISTS (SELECT 1 FROM p), coalesce((SELECT member FROM p), false), "                                \
      "  EXISTS (SELECT 1 FROM songs s WHERE s.id = $2 AND " SC_PL_SONG_VISIBLE("$3", "$4") "), "                 \
      "  (SELECT count(*) FROM del), (SELECT count(*) FROM act)")                                                 \
    /* $1 id, $2 user -> no row: unknown; else (member, JSON {playlistId, activities} when member). */           \
    X(PLAYLIST_ACTIVITIES,                                                                                        \
      "SELECT m.member, CASE WHEN m.member THEN json_build_object('playlistId', p.id, 'activities', "             \
      "  coalesce((SELECT json_agg(json_build_object('username', a.username, 'title', a.song_title, "              \
      "  'action', a.action, 'time', to_char(a.time AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')) "   \
      "  ORDER BY a.time, a.id) FROM playlist_activities a WHERE a.playlist_id = p.id), '[]'::json)) END "        \
      "FROM playlists p CROSS JOIN LATERAL (SELECT " SC_PL_MEMBER("$2") " AS member) m WHERE p.id = $1")
/* clang-format on */

/* The checks a write's one row of facts about a playlist begins with (column 0: the playlist exists), for the
 * song writes and the collaborations: returns 0 when they pass, else the status answered (404 not_found for a
 * foreign key violation: what the write refers to went away meanwhile). */
int sc_api_playlist_row_status(sc_req *req, const char *err, PGresult *res, const char *not_found);

/* POST /playlists {name}: 201 with data.playlistId. */
int sc_api_playlists_create(sc_req *req);
/* GET /playlists?page=&limit=: the playlists the caller owns or collaborates on, with the owner's username. */
int sc_api_playlists_list(sc_req *req);
/* DELETE /playlists/{id} (owner). */
int sc_api_playlists_delete(sc_req *req);
/* POST /playlists/{id}/songs {songId} (owner or collaborator): the song and its 'add' activity. */
int sc_api_playlist_songs_add(sc_req *req);
/* GET /playlists/{id}/songs (owner or collaborator): the playlist with the songs the caller sees. */
int sc_api_playlist_songs_list(sc_req *req);
/* DELETE /playlists/{id}/songs {songId} (owner or collaborator): the removal and its 'delete' activity. */
int sc_api_playlist_songs_delete(sc_req *req);
/* GET /playlists/{id}/activities (owner or collaborator): every add and delete, oldest first. */
int sc_api_playlist_activities(sc_req *req);

#endif
