/* Collaborations (api/collaborations.c): the owner of a playlist names the users who may change its songs. Each
 * endpoint is one statement whose one row says whether the playlist and the user exist, whether the caller owns
 * the playlist, and what changed. */
#ifndef SC_API_COLLABORATIONS_H
#define SC_API_COLLABORATIONS_H

#include "http/request.h"

#define SC_ROUTES_COLLABORATIONS(X)                                                                               \
    X(SC_M_POST, "/collaborations", SC_API_USER, sc_api_collaborations_add)                                       \
    X(SC_M_DELETE, "/collaborations", SC_API_USER, sc_api_collaborations_delete)

/* clang-format off */
#define SC_STMTS_COLLABORATIONS(X)                                                                                \
    /* $1 playlist, $2 user to add, $3 caller, $4 new id -> one row: (playlist exists, caller is the owner,     \
     * user exists, rows added). The owner is never made a collaborator of their own playlist. */                \
    X(COLLAB_INSERT,                                                                                              \
      "WITH p AS (SELECT id, owner_id, owner_id = $3 AS owner FROM playlists WHERE id = $1), "                    \
      "u AS (SELECT id FROM users WHERE id = $2), "                                                               \
      "ins AS (INSERT INTO collaborations (id, playlist_id, user_id) SELECT $4, p.id, u.id FROM p, u "            \
      "  WHERE p.owner AND u.id <> p.owner_id ON CONFLICT DO NOTHING RETURNING id) "                              \
      "SELECT EXISTS (SELECT 1 FROM p), coalesce((SELECT owner FROM p), false), EXISTS (SELECT 1 FROM u), "       \
      "  (SELECT count(*) FROM ins)")                                                                             \
    /* $1 playlist, $2 user to remove, $3 caller -> one row: (playlist exists, caller is the owner, user        \
     * exists, rows removed). */                                                                                 \
    X(COLLAB_DELETE,                                                                                              \
      "WITH p AS (SELECT id, owner_id = $3 AS owner FROM playlists WHERE id = $1), "                              \
      "u AS (SELECT id FROM users WHERE id = $2), "                                                               \
      "del AS (DELETE FROM collaborations c USING p WHERE c.playlist_id = p.id AND c.user_id = $2 AND p.owner "   \
      "  RETURNING c.id) "                                                                                        \
      "SELECT EXISTS (SELECT 1 FROM p), coalesce((SELECT owner FROM p), false), EXISTS (SELECT 1 FROM u), "       \
      "  (SELECT count(*) FROM del)")
/* clang-format on */

/* POST /collaborations {playlistId, userId} (the playlist's owner): 201 with data.collaborationId. */
int sc_api_collaborations_add(sc_req *req);
/* DELETE /collaborations {playlistId, userId} (the playlist's owner). */
int sc_api_collaborations_delete(sc_req *req);

#endif
