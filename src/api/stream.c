/* Media streaming: a song's audio (GET|HEAD /songs/{id}/stream), signed URLs for it (GET /songs/{id}/stream-url)
 * and album covers (GET|HEAD /albums/{id}/cover); routes and SQL in api/stream.h.
 *
 * Who may stream. The catalog is public in the OpenMusic way: a public song (not flagged, visibility public) plays
 * for anyone, with or without credentials. Private and flagged songs play for their owner and admins, identified
 * by the bearer token or the access cookie, and for anyone holding a signed URL. Everyone else gets the 404 the
 * catalog gives for songs they cannot see. Covers follow the album: public unless the album is flagged.
 *
 * Signed URLs: /songs/{id}/stream?expires=<unix seconds>&sig=<base64url HMAC-SHA256 of "<id>:<expires>">, the key
 * derived from ACCESS_TOKEN_KEY (sc_api_auth_url_mac). GET /songs/{id}/stream-url issues one to a signed-in caller
 * who can see the song, valid for STACCATO_STREAM_URL_TTL_S. The URL is a capability for that one song until it
 * expires: it plays even if the song is made private or flagged in the meantime, which the short lifetime bounds.
 * A URL whose signature does not verify, or that has expired, is a 403 (not a 401: there is no authentication
 * scheme to challenge with, and retrying with a token would not make the URL valid), checked before the song is
 * looked up, like any bad credential.
 *
 * Caching: responses for public songs and covers say "public, max-age=3600": shared caches may keep them, but the
 * URL names the song, not the file, so a new upload, a flag or a change of visibility must show within the hour
 * (revalidation with the strong ETag is a cheap 304). Everything else is "private, max-age=0": only the client's
 * own cache keeps it and revalidates each time.
 *
 * Files. Media live under STACCATO_MEDIA_DIR at the path media_files.path names (<sha256[0:2]>/<sha256>); the
 * sha256 is the strong ETag and created_at the Last-Modified. What a request needs to know (owner, visibility, the
 * media row) comes from the process's media cache (src/api/media_cache.h), or from the database, which fills the
 * cache; visibility is decided here, for the caller at hand. The conditional headers that need no file (304, 412)
 * are answered from those facts alone. Otherwise the file is the one the cache holds open or is opened and
 * measured off the loop (uv_fs_open, uv_fs_fstat) and given to the cache; its descriptor backs every range of the
 * response (sc_file), so a file replaced or deleted while it streams keeps streaming the bytes it had when it was
 * opened. A cached range request therefore costs no system call but the sendfile(2) of its bytes. A request that
 * ends while the file is being opened cancels the open or, when it is too late for that, leaves the completion to
 * close what it opened. A file that is not there is looked up once more in the database (the media may have been
 * replaced in the meantime) before the answer is a 404.
 *
 * Range errors: a 416 carries an empty body (the client asked for media, not JSON) and a Content-Range of "bytes",
 * an asterisk, a slash and the length; a failed If-Match / If-Unmodified-Since is a 412 with the usual JSON error.
 */
#include "api/stream.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "api/api.h"
#include "api/auth.h"
#include "api/db.h"
#include "api/media_cache.h"
#include "api/respond.h"
#include "core/base64.h"
#include "core/log.h"
#include "core/mem.h"
#include "http/range.h"

#define MAX_ID_LEN SC_API_MAX_ID_LEN
#define PUBLIC_CACHE "public, max-age=3600"
#define PRIVATE_CACHE "private, max-age=0"
#define SIG_CHARS 43 /* base64url of 32 bytes, no padding */

typedef struct media_open media_open;

/* State of one media request across its asynchronous steps (req->state). */
typedef struct stream_ctx {
    sc_req *req;
    const char *noun;     /* "song" or "album" */
    const char *no_media; /* message of the 404 for a song without audio or an album without cover */
    sc_api_principal *who;
    const char *id;
    sc_range_request cond; /* the conditional and range headers */
    sc_media_kind kind;
    bool signed_url;
    bool is_public;
    const char *rel_path; /* of the file, relative to the media directory */
    const char *path;     /* of the file, as given to open(2) */
    const char *mime;
    char etag[70]; /* "<sha256>" with the quotes */
    char sha[65];
    int64_t last_modified;
    media_open *op;      /* the file being opened, NULL when nothing is pending */
    uint64_t generation; /* of the media cache when the facts were asked for */
    bool retried;
} stream_ctx;

/* A file being opened and measured on the threadpool. Owned by its own callbacks: it outlives the request when
 * the request ends first (ctx NULL then), and is freed by the completion that finds that out. */
struct media_open {
    uv_fs_t fs;
    stream_ctx *ctx;
    int fd;
};

/* ---- helpers ---------------------------------------------------------------------------------------------- */

/* All values of a header, joined with ", " as a list header's lines may be (RFC 9110 section 5.3); ptr NULL when
 * absent. A singleton header sent twice becomes a list its parser rejects, which is the right outcome. */
static sc_slice header_joined(sc_req *req, const char *name)
{
    sc_slice n = sc_slice_cstr(name), first = SC_SLICE_NULL;
    size_t count = 0, total = 0;
    for (size_t i = 0; i < req->nheaders; i++) {
        if (!sc_slice_eq_nocase(req->headers[i].name, n))
            continue;
        if (count++ == 0)
            first = req->headers[i].value;
        total += req->headers[i].value.len + 2;
    }
    if (count <= 1)
        return first.ptr ? first : (count ? SC_SLICE_LIT("") : SC_SLICE_NULL);
    char *out = sc_arena_alloc(req->arena, total);
    size_t o = 0;
    for (size_t i = 0; i < req->nheaders; i++) {
        if (!sc_slice_eq_nocase(req->headers[i].name, n))
            continue;
        if (o) {
            memcpy(out + o, ", ", 2);
            o += 2;
        }
        memcpy(out + o, req->headers[i].value.ptr, req->headers[i].value.len);
        o += req->headers[i].value.len;
    }
    return (sc_slice){out, o};
}

/* The signature of "<id>:<expires>" as base64url (SIG_CHARS characters and a NUL). */
static void sign(sc_slice id, sc_slice expires, char out[SIG_CHARS + 1])
{
    char data[MAX_ID_LEN + 1 + 24];
    size_t n = 0;
    memcpy(data, id.ptr, id.len);
    n += id.len;
    data[n++] = ':';
    memcpy(data + n, expires.ptr, expires.len);
    n += expires.len;
    unsigned char mac[32];
    sc_api_auth_url_mac(data, n, mac);
    sc_buf b = {0};
    sc_base64url_encode(&b, mac, sizeof(mac));
    memcpy(out, b.ptr, SIG_CHARS);
    out[SIG_CHARS] = '\0';
    sc_buf_free(&b);
}

/* Checks ?expires=&sig= of a signed stream URL. Returns 0, or answers 403 and returns it. */
static int check_signed_url(sc_req *req, sc_slice id, bool has_expires, sc_slice expires, bool has_sig,
                            sc_slice sig)
{
    unsigned long long exp;
    if (!has_expires || !has_sig || !sc_api_plausible_id(id) || expires.len > 20 ||
        sc_slice_to_u64(expires, INT64_MAX, &exp) != 0 || sig.len != SIG_CHARS)
        return sc_api_auth_forbidden(req, "invalid stream URL signature");
    char want[SIG_CHARS + 1];
    sign(id, expires, want);
    unsigned char diff = 0;
    for (size_t i = 0; i < SIG_CHARS; i++)
        diff |= (unsigned char)(want[i] ^ sig.ptr[i]);
    if (diff)
        return sc_api_auth_forbidden(req, "invalid stream URL signature");
    if ((long long)exp < (long long)time(NULL))
        return sc_api_auth_forbidden(req, "the stream URL has expired");
    return 0;
}

/* A path from the database that stays inside the media directory: relative, without empty, "." or ".."
 * segments. */
static bool safe_relative_path(const char *p)
{
    if (!*p || *p == '/')
        return false;
    while (*p) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
            return false;
        p += n + (slash ? 1 : 0);
        if (slash && !*p)
            return false;
    }
    return true;
}

static bool is_hex64(const char *s)
{
    size_t n = strlen(s);
    if (n != 64)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f') || (s[i] >= 'A' && s[i] <= 'F')))
            return false;
    return true;
}

/* A media type fit for a header (printable ASCII), else application/octet-stream. */
static const char *header_mime(sc_req *req, const char *mime)
{
    size_t n = strlen(mime);
    bool ok = n > 0 && n <= 200;
    for (size_t i = 0; ok && i < n; i++)
        ok = mime[i] >= 0x20 && mime[i] < 0x7f;
    return ok ? sc_arena_strndup(req->arena, mime, n) : "application/octet-stream";
}

static void on_request_gone(void *data)
{
    stream_ctx *ctx = data;
    if (ctx->op) {
        ctx->op->ctx = NULL; /* the completion closes and frees */
        uv_cancel((uv_req_t *)&ctx->op->fs);
        ctx->op = NULL;
    }
}

static stream_ctx *ctx_new(sc_req *req, sc_api_principal *who, const char *noun, const char *no_media)
{
    stream_ctx *ctx = sc_api_state_new(req, sizeof(*ctx), on_request_gone);
    ctx->req = req;
    ctx->who = who;
    ctx->noun = noun;
    ctx->no_media = no_media;
    ctx->cond.if_match = header_joined(req, "if-match");
    ctx->cond.if_none_match = header_joined(req, "if-none-match");
    ctx->cond.if_modified_since = header_joined(req, "if-modified-since");
    ctx->cond.if_unmodified_since = header_joined(req, "if-unmodified-since");
    ctx->cond.if_range = header_joined(req, "if-range");
    ctx->cond.range = header_joined(req, "range");
    return ctx;
}

/* ---- the response ----------------------------------------------------------------------------------------- */

/* The headers every media answer carries (304 included): validators and caching. */
static void validator_headers(stream_ctx *ctx)
{
    sc_req *req = ctx->req;
    char date[SC_HTTP_DATE_LEN + 1];
    sc_http_date_format(ctx->last_modified, date);
    sc_res_header(req, "ETag", sc_slice_cstr(ctx->etag));
    sc_res_header(req, "Last-Modified", sc_slice_cstr(date));
    sc_res_header(req, "Cache-Control", ctx->is_public ? SC_SLICE_LIT(PUBLIC_CACHE) : SC_SLICE_LIT(PRIVATE_CACHE));
}

/* "bytes FIRST-LAST/SIZE" */
static const char *content_range(char out[72], sc_range r, uint64_t size)
{
    snprintf(out, 72, "bytes %llu-%llu/%llu", (unsigned long long)r.first, (unsigned long long)r.last,
             (unsigned long long)size);
    return out;
}

/* Answers from the open file f of size bytes: 200, 206 (one range, or multipart/byteranges) or 416. */
static int respond_file(stream_ctx *ctx, sc_file *f, uint64_t size)
{
    sc_req *req = ctx->req;
    sc_range ranges[SC_RANGE_MAX];
    size_t n;
    sc_range_outcome r = sc_range_select(&ctx->cond, sc_slice_cstr(ctx->etag), ctx->last_modified, size, ranges,
                                         &n);
    sc_res_header(req, "Accept-Ranges", SC_SLICE_LIT("bytes"));
    validator_headers(ctx);
    sc_res_header(req, "X-Content-Type-Options", SC_SLICE_LIT("nosniff"));
    char cr[72];
    if (r == SC_RANGE_UNSATISFIABLE) {
        snprintf(cr, sizeof(cr), "bytes */%llu", (unsigned long long)size);
        sc_res_header(req, "Content-Range", sc_slice_cstr(cr));
        return 416;
    }
    if (r == SC_RANGE_IGNORE) {
        req->res.content_type = ctx->mime;
        sc_res_body_file(req, f, 0, size);
        return 200;
    }
    if (n == 1) {
        sc_res_header(req, "Content-Range", sc_slice_cstr(content_range(cr, ranges[0], size)));
        req->res.content_type = ctx->mime;
        sc_res_body_file(req, f, ranges[0].first, ranges[0].last - ranges[0].first + 1);
        return 206;
    }
    /* The boundary comes from the content's hash: the same for HEAD and GET, and a file cannot contain it
     * (that would need a SHA-256 preimage of its own bytes). */
    char boundary[48];
    snprintf(boundary, sizeof(boundary), "staccato-%.32s", ctx->sha);
    size_t ctl = strlen("multipart/byteranges; boundary=") + strlen(boundary) + 1;
    char *ct = sc_arena_alloc(req->arena, ctl);
    snprintf(ct, ctl, "multipart/byteranges; boundary=%s", boundary);
    req->res.content_type = ct;
    sc_buf *body = req->res.body;
    for (size_t i = 0; i < n; i++) {
        sc_buf_printf(body, "%s--%s\r\nContent-Type: %s\r\nContent-Range: %s\r\n\r\n", i ? "\r\n" : "", boundary,
                      ctx->mime, content_range(cr, ranges[i], size));
        sc_res_body_file(req, f, ranges[i].first, ranges[i].last - ranges[i].first + 1);
    }
    sc_buf_printf(body, "\r\n--%s--\r\n", boundary);
    return 206;
}

static void ask(stream_ctx *ctx);

static void drop_open(media_open *op)
{
    if (op->fd >= 0)
        close(op->fd);
    free(op);
}

static void on_fstat(uv_fs_t *fs)
{
    media_open *op = fs->data;
    stream_ctx *ctx = op->ctx;
    ssize_t result = fs->result;
    uv_stat_t st = fs->statbuf;
    uv_fs_req_cleanup(fs);
    if (!ctx) {
        drop_open(op);
        return;
    }
    ctx->op = NULL;
    if (result < 0 || !S_ISREG(st.st_mode)) {
        sc_log_error("media file %s: %s", ctx->path, result < 0 ? uv_strerror((int)result) : "not a regular file");
        drop_open(op);
        sc_api_finish_error(ctx->req, 500, NULL);
        return;
    }
    sc_file *f = sc_file_new(op->fd);
    free(op);
    sc_media_cache_attach(sc_api_app(ctx->req)->media, ctx->kind, sc_slice_cstr(ctx->id), ctx->sha, f, st.st_size);
    int status = respond_file(ctx, f, st.st_size);
    sc_file_unref(f); /* the response's ranges hold their own references */
    sc_req_finish(ctx->req, status);
}

static void on_open(uv_fs_t *fs)
{
    media_open *op = fs->data;
    stream_ctx *ctx = op->ctx;
    ssize_t result = fs->result;
    uv_fs_req_cleanup(fs);
    if (result >= 0)
        op->fd = (int)result;
    if (!ctx) {
        drop_open(op);
        return;
    }
    if (result < 0) {
        ctx->op = NULL;
        drop_open(op);
        if (result == UV_ENOENT && !ctx->retried) {
            /* The media changed between the query and the open (a new upload replaced the file, or a release
             * had it out of sight for a moment): ask once more. */
            ctx->retried = true;
            sc_media_cache_forget(sc_api_app(ctx->req)->media, ctx->kind, sc_slice_cstr(ctx->id));
            ask(ctx);
        } else if (result == UV_ENOENT) {
            sc_log_warn("media file %s is missing", ctx->path);
            sc_api_finish_error(ctx->req, 404, ctx->no_media);
        } else {
            sc_log_error("media file %s: %s", ctx->path, uv_strerror((int)result));
            sc_api_finish_error(ctx->req, 500, NULL);
        }
        return;
    }
    int rc = uv_fs_fstat(sc_api_app(ctx->req)->loop, &op->fs, op->fd, on_fstat);
    if (rc < 0) {
        ctx->op = NULL;
        drop_open(op);
        sc_log_error("fstat of %s: %s", ctx->path, uv_strerror(rc));
        sc_api_finish_error(ctx->req, 500, NULL);
    }
}

/* Fills ctx's media fields from facts; false (logged) when they are unusable. */
static bool media_of(stream_ctx *ctx, const sc_media_facts *facts)
{
    if (!safe_relative_path(facts->path) || !is_hex64(facts->sha256)) {
        sc_log_error("media of %s %s: unusable path %s or sha256 %s", ctx->noun, ctx->id, facts->path,
                     facts->sha256);
        return false;
    }
    /* Copies: the facts belong to a cache entry or a database result, which may go before the request does. */
    ctx->rel_path = sc_arena_strndup(ctx->req->arena, facts->path, strlen(facts->path));
    ctx->mime = sc_arena_strndup(ctx->req->arena, facts->mime, strlen(facts->mime));
    memcpy(ctx->sha, facts->sha256, sizeof(ctx->sha));
    snprintf(ctx->etag, sizeof(ctx->etag), "\"%s\"", ctx->sha);
    ctx->last_modified = facts->last_modified;
    ctx->is_public = facts->is_public;
    return true;
}

/* Starts opening the file on the threadpool. Returns SC_ASYNC, or 500 answered. */
static int open_file(stream_ctx *ctx)
{
    sc_req *req = ctx->req;
    const char *dir = sc_api_app(req)->settings->media_dir;
    size_t dl = dir ? strlen(dir) : 0, rl = strlen(ctx->rel_path);
    char *path = sc_arena_alloc(req->arena, dl + rl + 2);
    if (dl) {
        memcpy(path, dir, dl);
        path[dl++] = '/';
    }
    memcpy(path + dl, ctx->rel_path, rl + 1);
    ctx->path = path;
    media_open *op = sc_alloc(sizeof(*op));
    op->ctx = ctx;
    op->fd = -1;
    op->fs.data = op;
    /* O_NONBLOCK: something other than a regular file (a FIFO) must not hold a threadpool thread in open(2);
     * it is refused after fstat. Reads of regular files ignore the flag. */
    int rc = uv_fs_open(sc_api_app(req)->loop, &op->fs, path, O_RDONLY | O_CLOEXEC | O_NONBLOCK, 0, on_open);
    if (rc < 0) {
        free(op);
        sc_log_error("open of %s: %s", path, uv_strerror(rc));
        return sc_res_error(req, 500, NULL);
    }
    ctx->op = op;
    return SC_ASYNC;
}

/* Answers from the facts of the song or album: who may see it, then validators, then the file (the cached open
 * one, or opened now). Visibility is the catalog's (SC_CAT_SONG_VISIBLE, SC_CAT_ALBUM_VISIBLE): admins, the owner,
 * and for public (unflagged) ones everybody; a signed URL stands for all of them. Returns a status or SC_ASYNC. */
static int answer(stream_ctx *ctx, const sc_media_facts *facts)
{
    sc_req *req = ctx->req;
    bool visible = ctx->signed_url || facts->is_public || sc_api_auth_is(ctx->who, "admin") ||
                   (ctx->who && facts->owner_id && strcmp(facts->owner_id, ctx->who->id) == 0);
    if (!visible) {
        char msg[32];
        snprintf(msg, sizeof(msg), "%s not found", ctx->noun);
        return sc_res_error(req, 404, msg);
    }
    if (!facts->has_media)
        return sc_res_error(req, 404, ctx->no_media);
    if (!media_of(ctx, facts))
        return sc_res_error(req, 500, NULL);
    int status = sc_range_preconditions(&ctx->cond, sc_slice_cstr(ctx->etag), ctx->last_modified,
                                        (int64_t)time(NULL));
    if (status == 304) {
        validator_headers(ctx);
        return 304;
    }
    if (status == 412)
        return sc_res_error(req, 412, "precondition failed");
    if (facts->file)
        return respond_file(ctx, facts->file, facts->size);
    return open_file(ctx);
}

static void on_facts(sc_req *req, const char *err, PGresult *res)
{
    stream_ctx *ctx = req->state;
    if (sc_api_db_failed(req, err, res))
        return;
    if (PQntuples(res) == 0) {
        char msg[32];
        snprintf(msg, sizeof(msg), "%s not found", ctx->noun);
        sc_api_finish_error(req, 404, msg);
        return;
    }
    /* Columns: path, mime, sha256, created_at, public, owner_id (SC_STMTS_STREAM). */
    sc_media_facts facts = {0};
    facts.has_media = !PQgetisnull(res, 0, 0);
    facts.is_public = PQgetvalue(res, 0, 4)[0] == 't';
    facts.owner_id = PQgetisnull(res, 0, 5) ? NULL : PQgetvalue(res, 0, 5);
    if (facts.has_media) {
        facts.path = PQgetvalue(res, 0, 0);
        facts.mime = header_mime(req, PQgetvalue(res, 0, 1));
        snprintf(facts.sha256, sizeof(facts.sha256), "%s", PQgetvalue(res, 0, 2));
        facts.last_modified = strtoll(PQgetvalue(res, 0, 3), NULL, 10);
    }
    sc_media_cache_put(sc_api_app(req)->media, ctx->generation, ctx->kind, sc_slice_cstr(ctx->id), &facts);
    int status = answer(ctx, &facts);
    if (status != SC_ASYNC)
        sc_req_finish(req, status);
}

/* Asks the database for the facts (again). */
static void ask(stream_ctx *ctx)
{
    ctx->generation = sc_media_cache_generation(sc_api_app(ctx->req)->media);
    SC_API_DB(ctx->req, ctx->kind == SC_MEDIA_SONG ? SC_STMT_STREAM_SONG_FACTS : SC_STMT_STREAM_COVER_FACTS,
              on_facts, ctx->id);
}

/* Answers from the cache, or asks the database. Returns a status or SC_ASYNC. */
static int lookup(stream_ctx *ctx)
{
    const sc_media_facts *facts = sc_media_cache_get(sc_api_app(ctx->req)->media, ctx->kind,
                                                     sc_slice_cstr(ctx->id));
    if (facts)
        return answer(ctx, facts);
    ask(ctx);
    return SC_ASYNC;
}

/* ---- handlers --------------------------------------------------------------------------------------------- */

int sc_api_song_stream(sc_req *req)
{
    sc_slice id = sc_req_param(req, "id"), expires, sig;
    bool has_expires = sc_req_query(req, "expires", &expires), has_sig = sc_req_query(req, "sig", &sig);
    bool signed_url = has_expires || has_sig;
    int st = signed_url ? check_signed_url(req, id, has_expires, expires, has_sig, sig) : 0;
    if (st)
        return st;
    if (!sc_api_plausible_id(id))
        return sc_res_error(req, 404, "song not found");
    stream_ctx *ctx = ctx_new(req, sc_api_who(req), "song", "song has no audio");
    ctx->kind = SC_MEDIA_SONG;
    ctx->id = sc_api_dup(req, id);
    ctx->signed_url = signed_url;
    return lookup(ctx);
}

int sc_api_album_cover(sc_req *req)
{
    sc_slice id = sc_req_param(req, "id");
    if (!sc_api_plausible_id(id))
        return sc_res_error(req, 404, "album not found");
    stream_ctx *ctx = ctx_new(req, sc_api_who(req), "album", "album has no cover");
    ctx->kind = SC_MEDIA_COVER;
    ctx->id = sc_api_dup(req, id);
    return lookup(ctx);
}

static void on_url_row(sc_req *req, const char *err, PGresult *res)
{
    stream_ctx *ctx = req->state;
    if (sc_api_db_failed(req, err, res))
        return;
    if (PQntuples(res) == 0) {
        sc_api_finish_error(req, 404, "song not found");
        return;
    }
    if (PQgetisnull(res, 0, 0)) {
        sc_api_finish_error(req, 404, ctx->no_media);
        return;
    }
    int64_t expires = (int64_t)time(NULL) + (int64_t)sc_api_app(req)->settings->stream_url_ttl_s;
    char exp[24], sig[SIG_CHARS + 1], at[24];
    snprintf(exp, sizeof(exp), "%lld", (long long)expires);
    sign(sc_slice_cstr(ctx->id), sc_slice_cstr(exp), sig);
    time_t t = (time_t)expires;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(at, sizeof(at), "%Y-%m-%dT%H:%M:%SZ", &tm);
    sc_buf url = {0};
    sc_buf_printf(&url, "%s/songs/%s/stream?expires=%s&sig=%s", sc_api_base_url(req), ctx->id, exp, sig);
    sc_res_header(req, "Cache-Control", SC_SLICE_LIT("no-store")); /* the URL is a credential */
    sc_jw *w = sc_api_begin(req);
    sc_jw_key(w, "data");
    sc_jw_obj_begin(w);
    sc_jw_key(w, "url");
    sc_jw_str(w, sc_buf_slice(&url));
    sc_jw_key(w, "expiresAt");
    sc_jw_cstr(w, at);
    sc_jw_obj_end(w);
    sc_buf_free(&url);
    sc_req_finish(req, sc_api_end(w, 200));
}

int sc_api_song_stream_url(sc_req *req)
{
    sc_api_principal *who = sc_api_who(req);
    sc_slice id = sc_req_param(req, "id");
    if (!sc_api_plausible_id(id))
        return sc_res_error(req, 404, "song not found");
    stream_ctx *ctx = ctx_new(req, who, "song", "song has no audio");
    ctx->id = sc_api_dup(req, id);
    SC_API_DB(req, SC_STMT_STREAM_SONG, on_url_row, ctx->id, who->id, sc_api_auth_admin_flag(who), "false");
    return SC_ASYNC;
}
