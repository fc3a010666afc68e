/* Media uploads: album covers (POST /albums/{id}/covers, multipart field `cover`) and song audio (PUT
 * /songs/{id}/audio with the raw file, or POST with multipart field `audio`); routes and SQL in api/uploads.h.
 *
 * An upload is decided before its body is read: the handler runs when the headers are in (a streaming route),
 * after the route's gate (audio: SC_API_USER; a cover, whose rule depends on the mode, authenticates itself and
 * counts as an anonymous write when it comes without a token in the OpenMusic mode), checks that the album or song
 * exists for the caller and that the caller may change it (a cover: api/catalog.h), and only then claims the
 * body (sc_req_stream_body; an Expect: 100-continue is answered only then). The bytes go straight to the store
 * (storage/store.h) as they arrive, hashed on the way; when the store has more than a small buffer waiting for the
 * disk the body is paused until it drains, so memory stays flat for any size. Limits are enforced as the bytes
 * come: 413 the moment the cover passes 512000 bytes or the audio STACCATO_MAX_AUDIO_BYTES. The type is taken from
 * the first bytes (storage/sniff.h): not an image is a 400, not a known audio format a 415, both as soon as enough
 * bytes are in.
 *
 * Then, off the loop: the store seals the temp file (fsync), audio is probed with ffprobe (storage/probe.h) for
 * duration, bitrate, sample rate, channels and tags (unreadable: 415), the store commits the file under its
 * sha256, and only then one statement records it (api/uploads.h). The media row a new upload replaces is deleted
 * in that statement when nothing else uses it, and its file released (deleted unless another row has the same
 * content).
 *
 * Failure at any step answers (507 when the disk is full, 500 for other storage errors) and aborts the store
 * upload, which removes whatever it wrote; a client that goes away does the same through the dispose hook.
 *
 * Lifetimes: an upload's state is heap-allocated and reference-counted, because work can outlive the request: the
 * database commit is not cancelled when the client leaves (its outcome decides whether the file stays), and the
 * timer handle closes asynchronously. References: the request (until its dispose hook), the timer (until closed),
 * a commit or release in flight. */
#include "api/uploads.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "api/api.h"
#include "api/auth.h"
#include "api/catalog.h"
#include "api/db.h"
#include "api/media_cache.h"
#include "api/ratelimit.h"
#include "api/respond.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/random.h"
#include "http/method.h"
#include "http/multipart.h"
#include "storage/local.h"
#include "storage/probe.h"
#include "storage/sniff.h"
#include "storage/store.h"

#define COVER_MAX_BYTES 512000
#define MULTIPART_SLACK (64 * 1024) /* other fields, part headers and boundaries around the file */
#define MAX_PARTS 16
#define MAX_PART_HEADER_BYTES 8192
#define PROBE_TIMEOUT_MS 30000
#define ORPHAN_GRACE_S 3600 /* files and rows younger than this are never swept: their upload may be in flight */
#define MAX_ID_LEN SC_API_MAX_ID_LEN

typedef enum { COVER, AUDIO } upload_kind;

typedef struct upload {
    int refs;
    sc_req *req; /* NULL once the request has ended */
    sc_app *app;
    upload_kind kind;
    bool admin; /* the caller is an admin */
    /* The caller (NULL: anonymous), in the request's arena: only read before the body is claimed. */
    const sc_api_principal *who;
    const char *field; /* the multipart field of the file */
    const char *noun;  /* "album" or "song" */
    char id[MAX_ID_LEN + 1];
    bool multipart;
    sc_multipart *mp;
    bool in_file, have_file;
    uint64_t limit, body_limit, body_bytes, file_bytes;
    unsigned char head[SC_SNIFF_BYTES];
    size_t head_len;
    bool sniffed;
    sc_sniffed type;
    sc_store_upload *obj; /* NULL before the file starts and once handed back to the store */
    bool paused;          /* the body waits for the store to drain */
    int fail_status;      /* an answer decided inside a body callback, sent from the timer */
    const char *fail_msg;
    uv_timer_t timer;
    sc_probe *probe;
    bool committing; /* the database commit is in flight: its outcome settles obj */
    char key[SC_STORE_KEY_LEN + 1];
    char path[8 + SC_STORE_KEY_LEN];
    char media_id[48];
    uint64_t size;
    long long duration_ms, bitrate, sample_rate, channels;
    char *tags;
} upload;

/* Upload requests that have not ended. While there is one, its connection is open, so the server has not finished
 * draining and the database pool is still there: reference checks that start later answer "unknown" instead of
 * touching a pool that may be closing. */
static unsigned live_requests;
/* This worker's store (one loop per process). */
static sc_store *store;

/* ---- the store and its reference check ---------------------------------------------------------------- */

typedef struct refcheck_call {
    sc_store_ref_cb cb;
    void *token;
} refcheck_call;

static void on_key_used(void *data, const char *err, PGresult *res)
{
    refcheck_call *call = data;
    sc_store_ref_cb cb = call->cb;
    void *token = call->token;
    free(call);
    cb(token, err ? -1 : PQgetvalue(res, 0, 0)[0] == 't');
}

static void refcheck(void *data, const char *key, sc_store_ref_cb cb, void *token)
{
    sc_app *app = data;
    if (live_requests == 0) {
        cb(token, -1); /* the pool may be closing: keep the file, the startup sweep will decide */
        return;
    }
    refcheck_call *call = sc_alloc(sizeof(*call));
    call->cb = cb;
    call->token = token;
    SC_API_PG_EXEC(app->pg, SC_STMT_MEDIA_KEY_USED, on_key_used, call, key);
}

static sc_store *store_of(sc_app *app)
{
    if (!store) {
        /* sc_api_upload_start was not called: set up now (a mkdir on the loop, once). */
        char err[512];
        if (sc_store_local_prepare(app->settings->media_dir, err, sizeof(err)) != 0) {
            sc_log_error("%s", err);
            return NULL;
        }
        store = sc_store_local_new(app->loop, app->settings->media_dir, refcheck, app);
    }
    return store;
}

/* ---- the startup sweep (thread pool, own database connection) ----------------------------------------- */

typedef struct sweep_job {
    uv_work_t work;
    char *dir, *conninfo;
    struct timespec started;
    sc_store_sweep_stats stats;
    long long rows;
    char err[256];
    PGconn *pg;
} sweep_job;

static int sweep_refs(void *data, const char *const *keys, size_t n, bool *referenced)
{
    sweep_job *job = data;
    sc_buf arr = {0};
    sc_buf_append_char(&arr, '{');
    for (size_t i = 0; i < n; i++) {
        if (i)
            sc_buf_append_char(&arr, ',');
        sc_buf_append_str(&arr, keys[i]); /* hex digits: nothing to quote */
        referenced[i] = false;
    }
    sc_buf_append(&arr, "}", 2);
    PGresult *r = SC_API_PQ_EXEC(job->pg, SC_UPLOAD_SQL_KEYS_USED, arr.ptr);
    sc_buf_free(&arr);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        snprintf(job->err, sizeof(job->err), "%s", PQresultErrorMessage(r));
        PQclear(r);
        return -1;
    }
    for (int row = 0; row < PQntuples(r); row++)
        for (size_t i = 0; i < n; i++)
            if (strcmp(PQgetvalue(r, row, 0), keys[i]) == 0)
                referenced[i] = true;
    PQclear(r);
    return 0;
}

static void sweep_work(uv_work_t *w)
{
    sweep_job *job = w->data;
    const char *keys[] = {"dbname", "connect_timeout", NULL};
    const char *values[] = {job->conninfo, "5", NULL};
    job->pg = PQconnectdbParams(keys, values, 1);
    bool db = PQstatus(job->pg) == CONNECTION_OK;
    job->rows = -1;
    if (db) {
        char grace[24];
        snprintf(grace, sizeof(grace), "%d", ORPHAN_GRACE_S);
        PGresult *r = SC_API_PQ_EXEC(job->pg, SC_UPLOAD_SQL_SWEEP_ROWS, grace);
        if (PQresultStatus(r) == PGRES_COMMAND_OK)
            job->rows = strtoll(PQcmdTuples(r), NULL, 10);
        else
            snprintf(job->err, sizeof(job->err), "%s", PQresultErrorMessage(r));
        PQclear(r);
    } else {
        snprintf(job->err, sizeof(job->err), "database unavailable: %s", PQerrorMessage(job->pg));
    }
    sc_store_local_sweep(job->dir, ORPHAN_GRACE_S, &job->started, db ? sweep_refs : NULL, job, &job->stats);
    PQfinish(job->pg);
}

static void sweep_done(uv_work_t *w, int status)
{
    sweep_job *job = w->data;
    sc_store_sweep_stats *s = &job->stats;
    if (job->err[0]) {
        size_t n = strlen(job->err);
        while (n && (job->err[n - 1] == '\n' || job->err[n - 1] == ' '))
            job->err[--n] = '\0';
        sc_log_warn("media sweep: unreferenced files not checked (%s)", job->err);
    }
    if (status == 0 && (s->temp_removed || s->restored || s->orphans_removed || s->errors || job->rows > 0))
        sc_log_info("media sweep of %s: %u temp files removed, %u files restored, %u unreferenced files removed, "
                    "%lld unreferenced rows removed, %u errors",
                    job->dir, s->temp_removed, s->restored, s->orphans_removed, job->rows > 0 ? job->rows : 0,
                    s->errors);
    free(job->dir);
    free(job->conninfo);
    free(job);
}

void sc_api_upload_start(sc_app *app)
{
    const sc_settings *st = app->settings;
    char err[512];
    if (sc_store_local_prepare(st->media_dir, err, sizeof(err)) != 0) {
        sc_log_error("%s: uploads will fail until it is fixed", err);
        return;
    }
    if (!store)
        store = sc_store_local_new(app->loop, st->media_dir, refcheck, app);
    sweep_job *job = sc_calloc(sizeof(*job));
    job->work.data = job;
    job->dir = sc_strdup(st->media_dir);
    job->conninfo = sc_strdup(st->database_url ? st->database_url : "");
    clock_gettime(CLOCK_REALTIME, &job->started);
    uv_queue_work(app->loop, &job->work, sweep_work, sweep_done);
}

/* ---- upload state ------------------------------------------------------------------------------------- */

static void upload_unref(upload *u)
{
    if (--u->refs > 0)
        return;
    free(u->mp);
    free(u->tags);
    free(u);
}

static void on_timer_closed(uv_handle_t *h) { upload_unref(h->data); }

static void on_request_gone(void *data)
{
    upload *u = data;
    u->req = NULL;
    live_requests--;
    if (u->probe) {
        sc_probe_cancel(u->probe);
        u->probe = NULL;
    }
    if (u->obj && !u->committing) {
        sc_store_abort(u->obj); /* removes the temp file (or releases what was committed) */
        u->obj = NULL;
    }
    uv_close((uv_handle_t *)&u->timer, on_timer_closed);
    upload_unref(u);
}

static upload *upload_new(sc_req *req, upload_kind kind, sc_slice id)
{
    upload *u = sc_calloc(sizeof(*u));
    u->refs = 2; /* the request and the timer */
    u->req = req;
    u->app = sc_api_app(req);
    u->kind = kind;
    u->field = kind == COVER ? "cover" : "audio";
    u->noun = kind == COVER ? "album" : "song";
    memcpy(u->id, id.ptr, id.len);
    u->duration_ms = u->bitrate = u->sample_rate = u->channels = -1;
    uv_timer_init(u->app->loop, &u->timer);
    u->timer.data = u;
    live_requests++;
    req->state = u;
    sc_req_on_dispose(req, on_request_gone, u);
    return u;
}

/* Answers at once (from a store, probe or database event: not inside the HTTP parser). */
static void answer_error(upload *u, int status, const char *msg)
{
    if (u->req)
        sc_req_finish(u->req, sc_res_error(u->req, status, msg));
}

static void on_fail_timer(uv_timer_t *t)
{
    upload *u = t->data;
    answer_error(u, u->fail_status, u->fail_msg);
}

/* Inside a body callback the request cannot be finished (the parser is running): stop reading now and answer
 * from the next loop iteration. Returns what on_data returns to stop. */
static int fail_in_body(upload *u, int status, const char *msg)
{
    if (!u->fail_status) {
        u->fail_status = status;
        u->fail_msg = msg;
        uv_timer_start(&u->timer, on_fail_timer, 0, 0);
    }
    return SC_BODY_PAUSE;
}

static int storage_status(int err) { return err == UV_ENOSPC || err == -EDQUOT ? 507 : 500; }

static void storage_error(upload *u, int err)
{
    int status = storage_status(err);
    if (status == 507) {
        answer_error(u, 507, "not enough storage space for this upload");
        return;
    }
    sc_log_error("media upload for %s %s: %s", u->noun, u->id, sc_store_strerror(err));
    answer_error(u, 500, NULL);
}

static const char *too_large(const upload *u)
{
    return u->kind == COVER ? "a cover may be at most 512000 bytes" : "the audio file is larger than allowed";
}

/* ---- the store's events ------------------------------------------------------------------------------- */

static void db_commit(upload *u);
static void on_probed(void *data, const sc_probe_result *r);

static void on_store_drain(void *data)
{
    upload *u = data;
    if (u->paused && u->req) {
        u->paused = false;
        sc_req_resume_body(u->req);
    }
}

static void on_store_error(void *data, int err) { storage_error(data, err); }

static void on_store_sealed(void *data, int err, const sc_store_info *info)
{
    upload *u = data;
    if (err) {
        storage_error(u, err);
        return;
    }
    memcpy(u->key, info->key, sizeof(u->key));
    snprintf(u->path, sizeof(u->path), "%s", info->path);
    u->size = info->size;
    if (u->kind == AUDIO) {
        const sc_settings *st = u->app->settings;
        u->probe = sc_probe_start(u->app->loop, st->ffprobe, info->local, u->type.demuxer, PROBE_TIMEOUT_MS,
                                  on_probed, u);
        return;
    }
    sc_store_commit(u->obj);
}

static void on_store_committed(void *data, int err)
{
    upload *u = data;
    if (err) {
        storage_error(u, err);
        return;
    }
    db_commit(u);
}

static const sc_store_events store_events = {on_store_drain, on_store_error, on_store_sealed, on_store_committed};

static void on_probed(void *data, const sc_probe_result *r)
{
    upload *u = data;
    u->probe = NULL;
    switch (r->err) {
    case 0:
        break;
    case SC_PROBE_E_UNREADABLE:
        answer_error(u, 415, "the audio file could not be read");
        return;
    case SC_PROBE_E_TIMEOUT:
        answer_error(u, 415, "the audio file could not be read in time");
        return;
    case SC_PROBE_E_SPAWN:
        sc_log_error("cannot run ffprobe (%s): %s", u->app->settings->ffprobe, uv_strerror(r->spawn_error));
        answer_error(u, 500, NULL);
        return;
    }
    u->duration_ms = r->duration_ms;
    u->bitrate = r->bitrate;
    u->sample_rate = r->sample_rate;
    u->channels = r->channels;
    u->tags = r->tags ? sc_strdup(r->tags) : NULL;
    sc_store_commit(u->obj);
}

/* ---- the body ----------------------------------------------------------------------------------------- */

static bool sniff(upload *u)
{
    u->sniffed = true;
    if (u->kind == COVER) {
        if (sc_sniff_image(u->head, u->head_len, &u->type) == 0)
            return true;
        fail_in_body(u, 400, "the cover must be a JPEG, PNG, GIF or WebP image");
        return false;
    }
    if (sc_sniff_audio(u->head, u->head_len, &u->type) == 0)
        return true;
    fail_in_body(u, 415, "the audio must be MP3, AAC/M4A, FLAC, Ogg/Opus or WAV");
    return false;
}

/* Bytes of the file. Returns 0, or a positive value (stop) once an answer is decided. */
static int file_data(upload *u, const char *p, size_t n)
{
    u->file_bytes += n;
    if (u->file_bytes > u->limit)
        return fail_in_body(u, 413, too_large(u));
    if (!u->sniffed) {
        size_t take = n < SC_SNIFF_BYTES - u->head_len ? n : SC_SNIFF_BYTES - u->head_len;
        memcpy(u->head + u->head_len, p, take);
        u->head_len += take;
        if (u->head_len == SC_SNIFF_BYTES && !sniff(u))
            return SC_BODY_PAUSE;
    }
    int rc = sc_store_write(u->obj, p, n);
    if (rc == SC_STORE_WAIT)
        u->paused = true;
    else if (rc < 0)
        return fail_in_body(u, storage_status(rc), NULL);
    return 0;
}

static int on_part_begin(void *ctx, const sc_mp_part *part)
{
    upload *u = ctx;
    if (!sc_slice_eq(part->name, sc_slice_cstr(u->field)))
        return 0; /* other fields are read past */
    if (u->have_file)
        return fail_in_body(u, 400,
                            u->kind == COVER ? "only one cover may be sent" : "only one audio file may be sent");
    u->have_file = u->in_file = true;
    u->obj = sc_store_begin(store, &store_events, u);
    return 0;
}

static int on_part_data(void *ctx, const char *data, size_t len)
{
    upload *u = ctx;
    return u->in_file ? file_data(u, data, len) : 0;
}

static int on_part_end(void *ctx, const sc_mp_part *part)
{
    upload *u = ctx;
    if (!u->in_file)
        return 0;
    u->in_file = false;
    return u->sniffed || sniff(u) ? 0 : SC_BODY_PAUSE;
}

static const sc_mp_callbacks part_callbacks = {on_part_begin, on_part_data, on_part_end};

static int on_body_data(void *ctx, const char *data, size_t len)
{
    upload *u = ctx;
    if (u->fail_status)
        return SC_BODY_PAUSE;
    u->body_bytes += len;
    if (u->body_bytes > u->body_limit)
        return fail_in_body(u, 413, too_large(u));
    if (u->multipart) {
        int rc = sc_multipart_feed(u->mp, data, len);
        if (rc < 0)
            return fail_in_body(u, 400, sc_multipart_strerror(rc));
    } else {
        file_data(u, data, len);
    }
    return u->fail_status || u->paused ? SC_BODY_PAUSE : 0;
}

static void on_body_end(void *ctx)
{
    upload *u = ctx;
    if (u->fail_status)
        return;
    if (u->multipart) {
        int rc = sc_multipart_finish(u->mp);
        if (rc < 0) {
            fail_in_body(u, 400, sc_multipart_strerror(rc));
            return;
        }
        if (u->fail_status)
            return;
        if (!u->have_file) {
            fail_in_body(u, 400,
                         u->kind == COVER ? "the multipart field cover (the image) is missing"
                                          : "the multipart field audio (the file) is missing");
            return;
        }
    } else if (!u->sniffed && !sniff(u)) {
        return;
    }
    sc_store_seal(u->obj);
}

static const sc_body_sink body_sink = {on_body_data, on_body_end};

/* ---- recording it ------------------------------------------------------------------------------------- */

static void json_int_or_null(sc_jw *w, const char *key, long long v)
{
    sc_jw_key(w, key);
    if (v < 0)
        sc_jw_null(w);
    else
        sc_jw_int(w, v);
}

static void answer_created(upload *u)
{
    sc_req *req = u->req;
    if (!req)
        return;
    sc_jw *w = sc_api_begin(req);
    sc_jw_key(w, "message");
    sc_jw_cstr(w, u->kind == COVER ? "cover uploaded" : "audio uploaded");
    sc_jw_key(w, "data");
    sc_jw_obj_begin(w);
    if (u->kind == COVER) {
        sc_buf url = {0};
        sc_buf_append_str(&url, sc_api_base_url(req));
        sc_buf_printf(&url, "/albums/%s/cover", u->id);
        sc_jw_key(w, "coverUrl");
        sc_jw_str(w, sc_buf_slice(&url));
        sc_buf_free(&url);
    } else {
        sc_jw_key(w, "songId");
        sc_jw_cstr(w, u->id);
        sc_jw_key(w, "audio");
        sc_jw_obj_begin(w);
        sc_jw_key(w, "mime");
        sc_jw_cstr(w, u->type.mime);
        sc_jw_key(w, "size");
        sc_jw_uint(w, u->size);
        json_int_or_null(w, "durationMs", u->duration_ms);
        json_int_or_null(w, "bitrate", u->bitrate);
        json_int_or_null(w, "sampleRate", u->sample_rate);
        json_int_or_null(w, "channels", u->channels);
        sc_jw_obj_end(w);
        sc_jw_key(w, "tags");
        sc_jw_raw(w, sc_slice_cstr(u->tags ? u->tags : "{}"));
    }
    sc_jw_obj_end(w);
    sc_req_finish(req, sc_api_end(w, 201));
}

static void on_old_released(void *data)
{
    upload *u = data;
    answer_created(u);
    upload_unref(u);
}

static void on_db_committed(void *data, const char *err, PGresult *res)
{
    upload *u = data;
    sc_store_upload *obj = u->obj;
    u->obj = NULL;
    u->committing = false;
    sc_media_cache_forget(u->app->media, u->kind == COVER ? SC_MEDIA_COVER : SC_MEDIA_SONG, sc_slice_cstr(u->id));
    if (err) {
        /* A timeout or a shutdown leaves the outcome unknown: keep the file (a row may name it; if none does, the
         * startup sweep removes it). Otherwise nothing was recorded. */
        if (err == SC_PG_ERR_TIMEOUT || err == SC_PG_ERR_SHUTDOWN)
            sc_store_keep(obj);
        else
            sc_store_abort(obj);
        if (u->req)
            sc_req_finish(u->req, sc_api_db_error(u->req, err, res));
        upload_unref(u);
        return;
    }
    if (strcmp(PQgetvalue(res, 0, 0), "0") == 0) {
        sc_store_abort(obj); /* the album or song was deleted meanwhile */
        answer_error(u, 404, u->kind == COVER ? "album not found" : "song not found");
        upload_unref(u);
        return;
    }
    sc_store_keep(obj);
    const char *old = PQgetisnull(res, 0, 1) ? NULL : PQgetvalue(res, 0, 1);
    if (old && u->req && sc_store_valid_key(old, strlen(old)) && strcmp(old, u->key) != 0) {
        /* The replaced file goes unless another row has the same content; answer once that is settled, so that
         * the request (and with it the database pool) is alive for the reference check. */
        sc_store_release(store, old, on_old_released, u);
        return;
    }
    answer_created(u);
    upload_unref(u);
}

static void db_commit(upload *u)
{
    sc_random_id("media", u->media_id, sizeof(u->media_id));
    char size[24], dur[24], br[24], sr[24], ch[24];
    snprintf(size, sizeof(size), "%llu", (unsigned long long)u->size);
    snprintf(dur, sizeof(dur), "%lld", u->duration_ms);
    snprintf(br, sizeof(br), "%lld", u->bitrate);
    snprintf(sr, sizeof(sr), "%lld", u->sample_rate);
    snprintf(ch, sizeof(ch), "%lld", u->channels);
    u->committing = true;
    u->refs++;
    if (u->kind == COVER)
        SC_API_PG_EXEC(u->app->pg, SC_STMT_MEDIA_ALBUM_COVER_SET, on_db_committed, u, u->id, u->media_id, u->key,
                       u->path, u->type.mime, size);
    else
        SC_API_PG_EXEC(u->app->pg, SC_STMT_MEDIA_SONG_AUDIO_SET, on_db_committed, u, u->id, u->media_id, u->key,
                       u->path, u->type.mime, size, u->duration_ms < 0 ? NULL : dur, u->bitrate < 0 ? NULL : br,
                       u->sample_rate < 0 ? NULL : sr, u->channels < 0 ? NULL : ch);
}

/* ---- handlers ----------------------------------------------------------------------------------------- */

static void on_access(sc_req *req, const char *err, PGresult *res)
{
    upload *u = req->state;
    if (sc_api_db_failed(req, err, res))
        return;
    if (PQntuples(res) == 0) {
        sc_req_finish(req, sc_res_error(req, 404, u->kind == COVER ? "album not found" : "song not found"));
        return;
    }
    bool own = sc_api_db_true(res, 0);
    int st = 0;
    if (u->kind == COVER) /* the album's rule, which depends on the mode and on whether anyone owns it */
        st = sc_api_catalog_may_write(req, u->who, own, sc_api_db_true(res, 1), false,
                                      "only the album's owner or an admin may upload its cover");
    else if (!own && !u->admin)
        st = sc_api_auth_forbidden(req, "only the song's owner or an admin may upload its audio");
    if (st) {
        sc_req_finish(req, st);
        return;
    }
    sc_slice cl = sc_req_header(req, "content-length");
    unsigned long long declared;
    if (cl.ptr && sc_slice_to_u64(cl, UINT64_MAX, &declared) == 0 && declared > u->body_limit) {
        sc_req_finish(req, sc_res_error(req, 413, too_large(u)));
        return;
    }
    if (!u->multipart)
        u->obj = sc_store_begin(store, &store_events, u);
    sc_req_stream_body(req, &body_sink, u);
}

static bool is_audio_type(sc_slice ct)
{
    long semi = sc_slice_find(ct, ';');
    sc_slice t = sc_slice_trim(semi < 0 ? ct : (sc_slice){ct.ptr, (size_t)semi});
    if (sc_slice_eq_nocase(t, SC_SLICE_LIT("application/octet-stream")))
        return true;
    return t.len > 6 && strncasecmp(t.ptr, "audio/", 6) == 0;
}

static void look_up(upload *u)
{
    SC_API_DB(u->req, u->kind == COVER ? SC_STMT_MEDIA_ALBUM_ACCESS : SC_STMT_MEDIA_SONG_ACCESS, on_access, u->id,
              u->who ? u->who->id : NULL, sc_api_auth_admin_flag(u->who));
}

static void on_cover_counted(sc_req *req, bool allowed, uint64_t retry_after_s)
{
    if (allowed)
        look_up(req->state);
    else
        sc_req_finish(req, sc_api_catalog_anon_refuse(req, retry_after_s));
}

/* The upload of either kind once the caller is known (who; NULL only for a cover in the OpenMusic mode). An
 * anonymous cover is counted as an anonymous write (api/catalog.h) before the album is looked up. */
static int start_upload(sc_req *req, upload_kind kind, const sc_api_principal *who)
{
    sc_slice ct = sc_req_header(req, "content-type");
    sc_slice boundary = SC_SLICE_NULL;
    bool multipart = kind == COVER || req->method == SC_M_POST;
    if (multipart && sc_multipart_boundary(ct, &boundary) != 0)
        return sc_res_error(req, 415,
                            kind == COVER ? "send the cover as multipart/form-data (field cover)"
                                          : "send the audio as multipart/form-data (field audio)");
    if (!multipart && !is_audio_type(ct))
        return sc_res_error(req, 415, "send the audio with Content-Type audio/* or application/octet-stream");
    sc_slice id = sc_req_param(req, "id");
    if (!sc_api_plausible_id(id))
        return sc_res_error(req, 404, kind == COVER ? "album not found" : "song not found");
    if (!store_of(sc_api_app(req)))
        return sc_res_error(req, 500, NULL);
    upload *u = upload_new(req, kind, id);
    u->admin = sc_api_auth_is(who, "admin");
    u->who = who;
    u->limit = kind == COVER ? COVER_MAX_BYTES : sc_api_app(req)->settings->max_audio_bytes;
    u->body_limit = u->limit;
    if (multipart) {
        u->multipart = true;
        u->body_limit += MULTIPART_SLACK;
        u->mp = sc_alloc(sizeof(*u->mp));
        sc_mp_limits lim = {MAX_PART_HEADER_BYTES, MAX_PARTS};
        sc_multipart_init(u->mp, boundary, &lim, &part_callbacks, u);
    }
    if (kind == COVER && sc_api_catalog_anon_counted(req, who))
        sc_ratelimit_anon_write(req, on_cover_counted);
    else
        look_up(u);
    return SC_ASYNC;
}

/* Who may upload a cover depends on the mode (OpenMusic: anyone for an album nobody owns, else a signed-in
 * caller), so its route has no gate and the handler authenticates as the route would at the same moment. */
int sc_api_album_cover_upload(sc_req *req)
{
    bool open = sc_api_app(req)->compat_openmusic;
    sc_api_principal *who;
    int st = open ? sc_api_auth_optional(req, &who) : sc_api_auth_require(req, &who);
    if (st)
        return st;
    return start_upload(req, COVER, who);
}

int sc_api_song_audio_upload(sc_req *req) { return start_upload(req, AUDIO, sc_api_who(req)); }
