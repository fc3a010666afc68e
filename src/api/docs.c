/* The API's pages about itself: Swagger UI at GET /docs and Redoc at GET /redoc, both reading GET /openapi.json,
 * and their assets at GET /docs/assets/{name} (routes in api/docs.h).
 *
 * Assets. The pages' scripts, styles and icon are the prebuilt bundles of two npm packages, swagger-ui-dist and
 * redoc, at the versions deps/install.sh pins. It unpacks them under STACCATO_DOCS_ASSETS the way npm lays out a
 * node_modules directory (<dir>/swagger-ui-dist/..., <dir>/redoc/bundles/...); they are never part of the source
 * tree or the binary. /docs/assets/{name} serves a name of the fixed table below and nothing else, so no request
 * ever names a path: anything else ("..", a percent-encoded slash, a file of the packages not listed) is a 404.
 * When the files are not there, the pages and their assets answer 503 with a message that says how to install
 * them; /openapi.json does not depend on them.
 *
 * Versions and caching. A file's validator is its size and modification time in nanoseconds (as nginx makes its
 * ETags): the ETag, in quotes, and the version ?v= with which the pages link it. The pages look at their files
 * each time they are asked for, so that a missing install is a 503 at once and a new one shows without a restart,
 * and link the versions they found. A request whose ?v= is the file's current version may be kept for a year
 * ("immutable"): a changed file has another URL. Any other request for an asset (a page from before an update, a
 * hand-made URL) may be kept for an hour, and revalidates with If-None-Match or If-Modified-Since (304). A new
 * install gets new modification times: deps/install.sh unpacks without the tarballs' fixed timestamps. The pages
 * themselves are "no-cache", since they carry the versions.
 *
 * Security. The pages run under their own Content-Security-Policy: scripts, styles, connections and images from
 * this origin, plus what the two packages need, inline styles (Redoc's styled-components inject <style>
 * elements), data: images (Swagger UI's icons in its stylesheet) and a blob: worker (Redoc's search index). No
 * inline script: Redoc starts by itself from its <redoc> element, and Swagger UI's few lines of setup are the one
 * asset built in here. "Try it out" calls this origin, so connect-src 'self' is all it needs. The one thing the
 * policy stops is Redoc's "API docs by Redocly" logo, an image from its vendor's site, which Redoc then hides: the
 * pages make no request to a third party.
 *
 * Files are opened and measured off the loop, in one threadpool job (open and fstat for an asset, stat of each
 * file for a page), which owns what it opened: when the request ends first, its completion closes and frees. */
#include "api/docs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "api/api.h"
#include "api/respond.h"
#include "core/log.h"
#include "core/mem.h"
#include "http/range.h"

#define JS_TYPE "text/javascript; charset=utf-8"
#define CSS_TYPE "text/css; charset=utf-8"
#define MAP_TYPE "application/json; charset=utf-8"
#define PNG_TYPE "image/png"
#define HTML_TYPE "text/html; charset=utf-8"

#define VERSIONED_CACHE "public, max-age=31536000, immutable"
#define UNVERSIONED_CACHE "public, max-age=3600"
#define PAGE_CACHE "no-cache"

#define PAGE_CSP                                                                                                  \
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "             \
    "font-src 'self' data:; connect-src 'self'; worker-src blob:; base-uri 'none'; form-action 'none'; "          \
    "frame-ancestors 'none'"

#define NOT_INSTALLED                                                                                             \
    "the API documentation assets (npm packages swagger-ui-dist and redoc) are not installed: install them with " \
    "deps/install.sh docs, into the directory STACCATO_DOCS_ASSETS names"

/* The most files one job looks at (a page's assets). */
#define JOB_MAX_FILES 3
/* "<size>-<mtime ns>" in hexadecimal, and a NUL. */
#define VERSION_LEN 40

/* The assets, by their name in /docs/assets/{name}. Keep the enum of the path parameter in docs.openapi.json
 * (docs_asset) the same as this list. */
enum {
    SWAGGER_BUNDLE,
    SWAGGER_BUNDLE_MAP,
    SWAGGER_CSS,
    SWAGGER_CSS_MAP,
    SWAGGER_ICON_16,
    SWAGGER_ICON_32,
    SWAGGER_INIT,
    REDOC_BUNDLE,
    REDOC_BUNDLE_MAP,
    ASSET_COUNT
};

typedef struct docs_asset {
    const char *name;
    const char *path; /* under STACCATO_DOCS_ASSETS; NULL for the one built in */
    const char *type;
} docs_asset;

static const docs_asset assets[ASSET_COUNT] = {
    [SWAGGER_BUNDLE] = {"swagger-ui-bundle.js", "swagger-ui-dist/swagger-ui-bundle.js", JS_TYPE},
    [SWAGGER_BUNDLE_MAP] = {"swagger-ui-bundle.js.map", "swagger-ui-dist/swagger-ui-bundle.js.map", MAP_TYPE},
    [SWAGGER_CSS] = {"swagger-ui.css", "swagger-ui-dist/swagger-ui.css", CSS_TYPE},
    [SWAGGER_CSS_MAP] = {"swagger-ui.css.map", "swagger-ui-dist/swagger-ui.css.map", MAP_TYPE},
    [SWAGGER_ICON_16] = {"favicon-16x16.png", "swagger-ui-dist/favicon-16x16.png", PNG_TYPE},
    [SWAGGER_ICON_32] = {"favicon-32x32.png", "swagger-ui-dist/favicon-32x32.png", PNG_TYPE},
    [SWAGGER_INIT] = {"swagger-init.js", NULL, JS_TYPE},
    [REDOC_BUNDLE] = {"redoc.standalone.js", "redoc/bundles/redoc.standalone.js", JS_TYPE},
    [REDOC_BUNDLE_MAP] = {"redoc.standalone.js.map", "redoc/bundles/redoc.standalone.js.map", MAP_TYPE},
};

/* Swagger UI's setup, loaded after its bundle. The document's URL is relative to the page, so that the pages work
 * behind a proxy that adds a path prefix; no validator badge (it would send the document to a third party). */
static const char swagger_init[] = "\"use strict\";\n"
                                   "window.ui = SwaggerUIBundle({\n"
                                   "  url: \"openapi.json\",\n"
                                   "  dom_id: \"#swagger-ui\",\n"
                                   "  deepLinking: true,\n"
                                   "  validatorUrl: null,\n"
                                   "  presets: [SwaggerUIBundle.presets.apis],\n"
                                   "  layout: \"BaseLayout\"\n"
                                   "});\n";

/* The pages link their assets relative to themselves (/docs and /redoc are both at the root). The versions go in
 * the order of the %s. */
static const int swagger_files[] = {SWAGGER_CSS, SWAGGER_ICON_32, SWAGGER_BUNDLE};
static const char swagger_page[] =
    "<!doctype html>\n"
    "<html lang=\"en\">\n"
    "<head>\n"
    "<meta charset=\"utf-8\">\n"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
    "<title>Staccato API</title>\n"
    "<link rel=\"stylesheet\" href=\"docs/assets/swagger-ui.css?v=%s\">\n"
    "<link rel=\"icon\" type=\"image/png\" sizes=\"32x32\" href=\"docs/assets/favicon-32x32.png?v=%s\">\n"
    "</head>\n"
    "<body>\n"
    "<div id=\"swagger-ui\"></div>\n"
    "<script src=\"docs/assets/swagger-ui-bundle.js?v=%s\"></script>\n"
    "<script src=\"docs/assets/swagger-init.js?v=%s\"></script>\n"
    "</body>\n"
    "</html>\n";

static const int redoc_files[] = {REDOC_BUNDLE};
static const char redoc_page[] = "<!doctype html>\n"
                                 "<html lang=\"en\">\n"
                                 "<head>\n"
                                 "<meta charset=\"utf-8\">\n"
                                 "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
                                 "<title>Staccato API</title>\n"
                                 "</head>\n"
                                 "<body>\n"
                                 "<redoc spec-url=\"openapi.json\"></redoc>\n"
                                 "<script src=\"docs/assets/redoc.standalone.js?v=%s\"></script>\n"
                                 "</body>\n"
                                 "</html>\n";

typedef struct docs_ctx docs_ctx;

/* Files looked at on the threadpool. Owned by its completion; ctx is NULL once the request has ended. */
typedef struct docs_job {
    uv_work_t work;
    docs_ctx *ctx;
    bool open; /* open the one file and keep it (an asset), else stat each (a page) */
    size_t n;
    char *paths[JOB_MAX_FILES];
    struct stat st[JOB_MAX_FILES];
    int err[JOB_MAX_FILES]; /* 0, or the errno of the file */
    int fd;                 /* the asset opened, or -1 */
} docs_job;

/* The state of one request (req->state). */
struct docs_ctx {
    sc_req *req;
    docs_job *job;           /* while the job runs */
    const char *page;        /* the page's format, or NULL for an asset */
    const docs_asset *asset; /* the asset asked for */
    const char *version;     /* an asset's ?v=, or NULL */
};

/* ---- helpers ---------------------------------------------------------------------------------------------- */

/* A file's version: its size and modification time (ns), "<size>-<mtime>" in hexadecimal. */
static void file_version(const struct stat *st, char out[VERSION_LEN])
{
    unsigned long long ns = (unsigned long long)st->st_mtim.tv_sec * 1000000000ull +
                            (unsigned long long)st->st_mtim.tv_nsec;
    snprintf(out, VERSION_LEN, "%llx-%llx", (unsigned long long)st->st_size, ns);
}

/* The version of the built-in script (FNV-1a of its bytes), and the time this process first served it, its
 * Last-Modified: it cannot change while the process runs. */
static const char *builtin_version(int64_t *since)
{
    static char version[VERSION_LEN];
    static int64_t first_served;
    if (!version[0]) {
        unsigned long long h = 14695981039346656037ull;
        for (size_t i = 0; i < sizeof(swagger_init) - 1; i++)
            h = (h ^ (unsigned char)swagger_init[i]) * 1099511628211ull;
        snprintf(version, sizeof(version), "%llx-%llx", (unsigned long long)(sizeof(swagger_init) - 1), h);
        first_served = (int64_t)time(NULL);
    }
    *since = first_served;
    return version;
}

/* The validators and caching headers of an asset of version v modified at mtime; returns what the conditional
 * headers make of them: 0 to send the asset, 304 or 412. */
static int asset_headers(docs_ctx *ctx, const char *v, int64_t mtime)
{
    sc_req *req = ctx->req;
    char etag[VERSION_LEN + 2], date[SC_HTTP_DATE_LEN + 1];
    snprintf(etag, sizeof(etag), "\"%s\"", v);
    sc_http_date_format(mtime, date);
    bool current = ctx->version && strcmp(ctx->version, v) == 0;
    sc_res_header(req, "ETag", sc_slice_cstr(etag));
    sc_res_header(req, "Last-Modified", sc_slice_cstr(date));
    sc_res_header(req, "Cache-Control", current ? SC_SLICE_LIT(VERSIONED_CACHE) : SC_SLICE_LIT(UNVERSIONED_CACHE));
    sc_res_header(req, "X-Content-Type-Options", SC_SLICE_LIT("nosniff"));
    sc_range_request cond = {0};
    cond.if_match = sc_req_header(req, "if-match");
    cond.if_none_match = sc_req_header(req, "if-none-match");
    cond.if_modified_since = sc_req_header(req, "if-modified-since");
    cond.if_unmodified_since = sc_req_header(req, "if-unmodified-since");
    return (int)sc_range_preconditions(&cond, sc_slice_cstr(etag), mtime, (int64_t)time(NULL));
}

/* Answers that the assets are missing: 503, never cached. Returns 503. */
static int not_installed(sc_req *req)
{
    sc_res_header(req, "Cache-Control", SC_SLICE_LIT("no-store"));
    return sc_res_error(req, 503, NOT_INSTALLED);
}

/* ---- the threadpool job ----------------------------------------------------------------------------------- */

static void job_free(docs_job *job)
{
    if (job->fd >= 0)
        close(job->fd);
    for (size_t i = 0; i < job->n; i++)
        free(job->paths[i]);
    free(job);
}

static void on_work(uv_work_t *w)
{
    docs_job *job = w->data;
    if (job->open) {
        /* O_NONBLOCK: a FIFO put there must not hold a thread in open(2); it fails the S_ISREG check. */
        job->fd = open(job->paths[0], O_RDONLY | O_CLOEXEC | O_NONBLOCK);
        if (job->fd < 0 || fstat(job->fd, &job->st[0]) != 0)
            job->err[0] = errno;
        else if (!S_ISREG(job->st[0].st_mode))
            job->err[0] = EINVAL;
        return;
    }
    for (size_t i = 0; i < job->n; i++) {
        if (stat(job->paths[i], &job->st[i]) != 0)
            job->err[i] = errno;
        else if (!S_ISREG(job->st[i].st_mode))
            job->err[i] = EINVAL;
    }
}

/* A page: the HTML with the versions of its files, or 503 when one is missing. */
static int answer_page(docs_ctx *ctx, docs_job *job)
{
    sc_req *req = ctx->req;
    char v[JOB_MAX_FILES + 1][VERSION_LEN] = {{0}};
    for (size_t i = 0; i < job->n; i++) {
        if (job->err[i]) {
            sc_log_warn("API documentation asset %s: %s", job->paths[i], strerror(job->err[i]));
            return not_installed(req);
        }
        file_version(&job->st[i], v[i]);
    }
    int64_t since;
    snprintf(v[job->n], VERSION_LEN, "%s", builtin_version(&since));
    sc_res_header(req, "Cache-Control", SC_SLICE_LIT(PAGE_CACHE));
    sc_res_header(req, "Content-Security-Policy", SC_SLICE_LIT(PAGE_CSP));
    sc_res_header(req, "X-Content-Type-Options", SC_SLICE_LIT("nosniff"));
    sc_res_header(req, "Referrer-Policy", SC_SLICE_LIT("no-referrer"));
    req->res.content_type = HTML_TYPE;
    /* The formats take as many versions as they have %s: the swagger page its three files and the built-in
     * script, the Redoc page its one file (the rest are ignored). */
    sc_buf_printf(req->res.body, ctx->page, v[0], v[1], v[2], v[3]);
    return 200;
}

/* An asset from its open file: 200 with the file, 304 or 412. */
static int answer_asset(docs_ctx *ctx, docs_job *job)
{
    sc_req *req = ctx->req;
    if (job->err[0]) {
        if (job->err[0] == ENOENT || job->err[0] == ENOTDIR) {
            sc_log_warn("API documentation asset %s: %s", job->paths[0], strerror(job->err[0]));
            return not_installed(req);
        }
        sc_log_error("API documentation asset %s: %s", job->paths[0], strerror(job->err[0]));
        return sc_res_error(req, 500, NULL);
    }
    char v[VERSION_LEN];
    file_version(&job->st[0], v);
    int status = asset_headers(ctx, v, (int64_t)job->st[0].st_mtim.tv_sec);
    if (status == 304)
        return 304;
    if (status == 412)
        return sc_res_error(req, 412, "precondition failed");
    req->res.content_type = ctx->asset->type;
    sc_file *f = sc_file_new(job->fd);
    job->fd = -1;
    sc_res_body_file(req, f, 0, (uint64_t)job->st[0].st_size);
    sc_file_unref(f); /* the response holds its own reference */
    return 200;
}

static void on_after_work(uv_work_t *w, int status)
{
    docs_job *job = w->data;
    docs_ctx *ctx = job->ctx;
    if (ctx) {
        ctx->job = NULL;
        if (status != 0)
            sc_req_finish(ctx->req, sc_res_error(ctx->req, 500, NULL));
        else
            sc_req_finish(ctx->req, ctx->page ? answer_page(ctx, job) : answer_asset(ctx, job));
    }
    job_free(job);
}

static void on_request_gone(void *data)
{
    docs_ctx *ctx = data;
    if (ctx->job) {
        ctx->job->ctx = NULL; /* the completion closes and frees */
        uv_cancel((uv_req_t *)&ctx->job->work);
        ctx->job = NULL;
    }
}

/* "<STACCATO_DOCS_ASSETS>/<rel>", allocated. */
static char *asset_path(const sc_settings *st, const char *rel)
{
    const char *dir = st->docs_assets;
    size_t dl = strlen(dir), rl = strlen(rel);
    while (dl > 1 && dir[dl - 1] == '/')
        dl--;
    char *p = sc_alloc(dl + rl + 2);
    memcpy(p, dir, dl);
    size_t at = dl;
    if (dl)
        p[at++] = '/';
    memcpy(p + at, rel, rl + 1);
    return p;
}

/* Queues a job on the files; returns SC_ASYNC, or 500 answered. */
static int start_job(docs_ctx *ctx, bool open_one, const int *files, size_t n)
{
    sc_req *req = ctx->req;
    const sc_settings *st = sc_api_app(req)->settings;
    docs_job *job = sc_calloc(sizeof(*job));
    job->work.data = job;
    job->ctx = ctx;
    job->open = open_one;
    job->fd = -1;
    job->n = n;
    for (size_t i = 0; i < n; i++)
        job->paths[i] = asset_path(st, assets[files[i]].path);
    int rc = uv_queue_work(sc_api_app(req)->loop, &job->work, on_work, on_after_work);
    if (rc != 0) {
        sc_log_error("API documentation assets: %s", uv_strerror(rc));
        job_free(job);
        return sc_res_error(req, 500, NULL);
    }
    ctx->job = job;
    return SC_ASYNC;
}

/* ---- handlers --------------------------------------------------------------------------------------------- */

static int page(sc_req *req, const char *format, const int *files, size_t n)
{
    docs_ctx *ctx = sc_api_state_new(req, sizeof(*ctx), on_request_gone);
    ctx->req = req;
    ctx->page = format;
    return start_job(ctx, false, files, n);
}

int sc_api_docs_swagger(sc_req *req)
{
    return page(req, swagger_page, swagger_files, sizeof(swagger_files) / sizeof(swagger_files[0]));
}

int sc_api_docs_redoc(sc_req *req)
{
    return page(req, redoc_page, redoc_files, sizeof(redoc_files) / sizeof(redoc_files[0]));
}

int sc_api_docs_asset(sc_req *req)
{
    sc_slice name = sc_req_param(req, "name");
    int which = -1;
    for (int i = 0; i < ASSET_COUNT && which < 0; i++)
        if (sc_slice_eq(name, sc_slice_cstr(assets[i].name)))
            which = i;
    if (which < 0)
        return sc_res_error(req, 404, "asset not found");
    docs_ctx *ctx = sc_api_state_new(req, sizeof(*ctx), on_request_gone);
    ctx->req = req;
    ctx->asset = &assets[which];
    sc_slice v;
    if (sc_req_query(req, "v", &v))
        ctx->version = sc_api_dup(req, v);
    if (which != SWAGGER_INIT)
        return start_job(ctx, true, &which, 1);
    int64_t since;
    const char *version = builtin_version(&since);
    int status = asset_headers(ctx, version, since);
    if (status == 304)
        return 304;
    if (status == 412)
        return sc_res_error(req, 412, "precondition failed");
    req->res.content_type = JS_TYPE;
    sc_buf_append(req->res.body, swagger_init, sizeof(swagger_init) - 1);
    return 200;
}
