/* What the album and song endpoints share (api/catalog.c): the state of a request, who may write, the checks of
 * names and years, and the steps every read, write and moderation flag of either takes.
 *
 * Permissions (docs/api.md, "Compatibility mode"): by default album and song writes need the artist or admin role,
 * artists change only what they own, and put songs only into albums they own; admins do anything. With
 * STACCATO_COMPAT=openmusic writes are open as in OpenMusic for rows nobody owns: no token needed, a valid token
 * makes its user the owner of what it creates, a bad token is still a 401. A row with an owner stays its owner's
 * and the admins' in that mode too (401 for anonymous callers, 403 for others), and anonymous writes are counted
 * per client address (STACCATO_ANON_WRITES_PER_ADDRESS, 429 beyond). Flagged songs and albums, and private songs,
 * exist only for admins and their owner: everyone else gets a 404 and does not see them in lists
 * (api/visibility.h). */
#ifndef SC_API_CATALOG_H
#define SC_API_CATALOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api/auth.h"
#include "api/visibility.h"
#include "core/slice.h"
#include "db/pg.h"
#include "http/request.h"

/* The absolute URL of album a's cover, or NULL without one ($base: scheme://host[:port] without a slash). */
#define SC_CAT_COVER_URL(base)                                                                                    \
    "CASE WHEN a.cover_media_id IS NULL THEN NULL ELSE " base "::text || '/albums/' || a.id || '/cover' END"

/* State of one album or song request across its asynchronous steps (req->state). */
typedef struct sc_api_catalog_ctx {
    sc_api_principal *who; /* NULL for anonymous callers */
    const char *viewer;    /* the caller's user id, or NULL */
    const char *admin;     /* "true" or "false" */
    const char *noun;      /* "album" or "song": messages, and the key of a read's data */
    const char *id;        /* the target (from the path) or the new row's id */
    const char *name;      /* album name or song title */
    const char *year;
    const char *performer;
    const char *genre;
    const char *duration; /* NULL when not given */
    const char *album_id; /* NULL when not given */
    const char *flagged;  /* "true" or "false" */
    bool deleting;
    /* What follows the count of an anonymous write (an sc_api_catalog_step). */
    int (*next)(sc_req *req, struct sc_api_catalog_ctx *ctx);
} sc_api_catalog_ctx;

/* Reads the body of a create or an update into ctx; returns 0, or answers 400 and returns it. */
typedef int (*sc_api_catalog_reader)(sc_req *req, sc_api_catalog_ctx *ctx);

/* A required name-like field: a non-blank string of at most 255 characters. Returns NULL or the problem (in the
 * arena). */
const char *sc_api_catalog_text_problem(sc_req *req, const char *field, sc_slice value);
/* Characters (code points) of valid UTF-8. */
size_t sc_api_catalog_text_chars(sc_slice s);
/* A year from 0 to 9999 into ctx->year; returns 0, or answers 400 and returns it. */
int sc_api_catalog_year(sc_req *req, sc_api_catalog_ctx *ctx, int64_t year);
/* A whole number as text in the request's arena. */
const char *sc_api_catalog_int(sc_req *req, long long v);
/* fmt (one %s, at most 160 bytes in all) with field, in the request's arena. */
const char *sc_api_catalog_msg(sc_req *req, const char *fmt, const char *field);
/* A body that carries nothing we need must still be a JSON object (or empty): returns 0, or answers 400. */
int sc_api_catalog_empty_body(sc_req *req);

/* The step that follows the checks of a create or a change: starts the insert or the access query and returns
 * SC_ASYNC, or answers and returns the status. */
typedef int (*sc_api_catalog_step)(sc_req *req, sc_api_catalog_ctx *ctx);

/* POST /albums, POST /songs: the writer (401), the body (400), the right to create (403) and a new id with prefix
 * noun in ctx->id, then next. An anonymous writer of the OpenMusic mode is counted first
 * (sc_api_catalog_anon_counted). Returns a status or SC_ASYNC. */
int sc_api_catalog_create(sc_req *req, const char *noun, sc_api_catalog_reader read, sc_api_catalog_step next);
/* The insert of a create has run: answers 201 {"message": "<noun> added", "data": {"<noun>Id": ctx->id}}, or the
 * database error. */
void sc_api_catalog_on_created(sc_req *req, const char *err, PGresult *res);
/* PUT and DELETE of /albums/{id} and /songs/{id}: the writer (401), the body (400: read, or empty for a delete)
 * and an id that can exist (404) into ctx->id, then (after the count of an anonymous writer) next, which looks
 * the target up. Returns a status or SC_ASYNC. */
int sc_api_catalog_write(sc_req *req, const char *noun, bool deleting, sc_api_catalog_reader read,
                         sc_api_catalog_step next);
/* The answer of an access query (ALBUM_ACCESS, SONG_ACCESS): finishes the request with the database error or 404
 * (no row: the target is not there for the caller) and returns false, or returns true to go on. */
bool sc_api_catalog_found(sc_req *req, const char *err, PGresult *res);

/* Who may change a row (an album, a song, an album's cover, a song's place in an album), given whether the caller
 * owns it (own) and whether anyone does (owned): admins always; in strict mode its owner, who must be an artist
 * when artist_only; in the OpenMusic mode anyone while the row has no owner, and once it has one its owner of any
 * role (OpenMusic clients write with a user's token). Returns 0, or answers 401 (an anonymous caller: signing in
 * as the owner would help) or 403 with the message forbidden and returns the status. */
int sc_api_catalog_may_write(sc_req *req, const sc_api_principal *who, bool own, bool owned, bool artist_only,
                             const char *forbidden);
/* Whether a write by who counts against the anonymous write limit: in the OpenMusic mode, without a token, while
 * STACCATO_ANON_WRITES_PER_ADDRESS is not 0. Such a write is counted (sc_ratelimit_anon_write) after its body
 * was read and before the target is looked up. */
bool sc_api_catalog_anon_counted(sc_req *req, const sc_api_principal *who);
/* Answers 429 with Retry-After for an anonymous writer over the limit and returns it. */
int sc_api_catalog_anon_refuse(sc_req *req, uint64_t retry_after_s);

/* GET /albums/{id}, GET /songs/{id}: stmt with (id, caller, admin, base URL) and its JSON as data.<noun>. Returns
 * a status or SC_ASYNC. */
int sc_api_catalog_get(sc_req *req, const char *noun, int stmt);
/* PUT /{albums|songs}/{id}/flag {flagged: bool, reason?: string} (admins): stmt with (id, flagged, reason). The
 * media cache forgets the target, and an album's cached like count goes before the answer, so that no cached
 * answer outlives its visibility. Returns a status or SC_ASYNC. */
int sc_api_catalog_flag(sc_req *req, const char *noun, int stmt);

#endif
