/* The local-disk store (see local.h and store.h).
 *
 * An upload is a chain of file operations, one in flight at a time on one uv_fs_t:
 *
 *     open tmp/<pid>-<rand>.part (O_CREAT|O_EXCL) -> write* -> fsync -> close            (seal)
 *     mkdir <key[0:2]> [-> fsync the store dir if it was new] -> link tmp to <key[0:2]>/<key>
 *         -> fsync <key[0:2]>                                                         (commit)
 *     stat <key[0:2]>/<key> [-> link again and fsync if it vanished] -> unlink tmp       (keep)
 *
 * Writes are double-buffered: bytes are hashed and appended to `pending` as they arrive, and whenever no write is
 * in flight `pending` becomes `writing` and goes to the disk at its offset. write() asks the caller to wait once
 * more than HIGH_WATER bytes are buffered, so an upload holds at most about two buffers however large it is.
 *
 * Commit links instead of renaming: the temp name stays until keep, as the private copy that keep restores from
 * should a concurrent release have removed the object between commit and the caller's database commit. When the
 * key exists already, the link fails with EEXIST: the content is the same (same hash), and keep just drops the
 * temp file.
 *
 * Lifetimes: an upload belongs to its caller until keep or abort, then to itself; it frees itself when its last
 * operation completes. Events are emitted as the last thing a completion does, so a caller may abort from inside
 * any event. */
#include "storage/local.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <mbedtls/sha256.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/random.h"

#define HIGH_WATER (512 * 1024)

typedef struct local_store {
    sc_store super;
    uv_loop_t *loop;
    char *dir;
    sc_store_refcheck check;
    void *check_data;
} local_store;

static bool is_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

const char *sc_store_strerror(int err)
{
    if (err == -EDQUOT)
        return "disk quota exceeded"; /* libuv's table has no name for it (its strerror would allocate) */
    return uv_strerror(err);
}

bool sc_store_valid_key(const char *s, size_t len)
{
    if (len != SC_STORE_KEY_LEN)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!is_hex(s[i]))
            return false;
    return true;
}

static char *path_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *path_printf(const char *fmt, ...)
{
    sc_buf b = {0};
    va_list ap;
    va_start(ap, fmt);
    sc_buf_vprintf(&b, fmt, ap);
    va_end(ap);
    sc_buf_append_char(&b, '\0');
    return b.ptr;
}

/* "<pid>-<16 hex>" */
static void temp_stem(char out[48])
{
    unsigned char r[8];
    sc_random_bytes(r, sizeof(r));
    int n = snprintf(out, 48, "%ld-", (long)getpid());
    for (size_t i = 0; i < sizeof(r); i++)
        n += snprintf(out + n, (size_t)(48 - n), "%02x", r[i]);
}

static void hex_digest(const unsigned char d[32], char out[SC_STORE_KEY_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        out[2 * i] = hex[d[i] >> 4];
        out[2 * i + 1] = hex[d[i] & 15];
    }
    out[SC_STORE_KEY_LEN] = '\0';
}

/* ---- release: move out of sight, ask, then delete or put back ------------------------------------------- */

typedef struct local_release {
    local_store *st;
    uv_fs_t fs;
    int phase;
    int dirfd;
    char key[SC_STORE_KEY_LEN + 1];
    char *final, *hidden, *subdir;
    void (*done)(void *data);
    void *data;
} local_release;

enum { R_HIDE, R_UNLINK, R_RESTORE, R_DIR_OPEN, R_DIR_FSYNC, R_DIR_CLOSE };

static void on_release_fs(uv_fs_t *req);

static void release_finish(local_release *r)
{
    void (*done)(void *) = r->done;
    void *data = r->data;
    free(r->final);
    free(r->hidden);
    free(r->subdir);
    free(r);
    if (done)
        done(data);
}

static void on_release_checked(void *token, sc_store_ref answer)
{
    local_release *r = token;
    if (answer == SC_STORE_REF_NONE) {
        r->phase = R_UNLINK;
        uv_fs_unlink(r->st->loop, &r->fs, r->hidden, on_release_fs);
    } else {
        r->phase = R_RESTORE;
        uv_fs_rename(r->st->loop, &r->fs, r->hidden, r->final, on_release_fs);
    }
}

static void on_release_fs(uv_fs_t *req)
{
    local_release *r = req->data;
    ssize_t res = req->result;
    uv_fs_req_cleanup(req);
    uv_loop_t *loop = r->st->loop;
    switch (r->phase) {
    case R_HIDE:
        if (res < 0) {
            if (res != UV_ENOENT)
                sc_log_warn("media: cannot release %s: %s", r->final, uv_strerror((int)res));
            release_finish(r);
            return;
        }
        r->st->check(r->st->check_data, r->key, on_release_checked, r);
        return;
    case R_UNLINK:
        if (res < 0)
            sc_log_warn("media: cannot remove %s: %s", r->hidden, uv_strerror((int)res));
        release_finish(r);
        return;
    case R_RESTORE:
        if (res < 0) {
            sc_log_error("media: cannot put %s back to %s: %s", r->hidden, r->final, uv_strerror((int)res));
            release_finish(r);
            return;
        }
        r->phase = R_DIR_OPEN;
        uv_fs_open(loop, &r->fs, r->subdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0, on_release_fs);
        return;
    case R_DIR_OPEN:
        if (res < 0) {
            release_finish(r);
            return;
        }
        r->dirfd = (int)res;
        r->phase = R_DIR_FSYNC;
        uv_fs_fsync(loop, &r->fs, r->dirfd, on_release_fs);
        return;
    case R_DIR_FSYNC:
        r->phase = R_DIR_CLOSE;
        uv_fs_close(loop, &r->fs, r->dirfd, on_release_fs);
        return;
    case R_DIR_CLOSE:
        release_finish(r);
        return;
    }
}

static void l_release(sc_store *s, const char *key, void (*done)(void *data), void *data)
{
    local_store *st = (local_store *)s;
    local_release *r = sc_calloc(sizeof(*r));
    r->st = st;
    r->done = done;
    r->data = data;
    r->dirfd = -1;
    r->fs.data = r;
    snprintf(r->key, sizeof(r->key), "%s", key);
    char stem[48];
    temp_stem(stem);
    r->final = path_printf("%s/%.2s/%s", st->dir, key, key);
    r->subdir = path_printf("%s/%.2s", st->dir, key);
    r->hidden = path_printf("%s/tmp/%s.%s", st->dir, stem, key);
    if (!st->check || !sc_store_valid_key(key, strlen(key))) {
        release_finish(r);
        return;
    }
    r->phase = R_HIDE;
    uv_fs_rename(st->loop, &r->fs, r->final, r->hidden, on_release_fs);
}

/* ---- uploads -------------------------------------------------------------------------------------------- */

typedef enum {
    P_OPEN,
    P_WRITE,
    P_FSYNC,
    P_CLOSE,
    P_MKDIR,
    P_LINK,
    P_DIR_OPEN,
    P_DIR_FSYNC,
    P_DIR_CLOSE,
    P_KEEP_STAT,
    P_KEEP_LINK,
    P_KEEP_UNLINK,
    P_CLEANUP,
    P_COMMITTED, /* never started: marks the end of commit's directory fsync */
} phase;

typedef struct local_upload {
    sc_store_upload super;
    local_store *st;
    const sc_store_events *ev;
    void *data;
    uv_fs_t fs;
    phase phase;
    bool busy;     /* fs has an operation in flight */
    int fd, dirfd; /* -1 when closed */
    bool created;  /* the temp file exists */
    bool linked;   /* commit put the key in place (or found it there) */
    bool sealing, sealed, committing;
    bool dead; /* keep or abort was called: no more events */
    bool keeping;
    bool want_drain; /* write returned SC_STORE_WAIT */
    int err;
    phase dir_next; /* what follows a directory fsync */
    const char *dir_path;
    char *tmp, *final, *subdir, *rel;
    sc_buf pending, writing;
    size_t written;  /* bytes of `writing` already on disk */
    uint64_t offset; /* file offset of writing[0] */
    uint64_t size;
    mbedtls_sha256_context sha;
    char key[SC_STORE_KEY_LEN + 1];
} local_upload;

static void on_upload_fs(uv_fs_t *req);

static void upload_free(local_upload *u)
{
    mbedtls_sha256_free(&u->sha);
    sc_buf_free(&u->pending);
    sc_buf_free(&u->writing);
    free(u->tmp);
    free(u->final);
    free(u->subdir);
    free(u->rel);
    free(u);
}

static size_t buffered(const local_upload *u) { return u->pending.len + (u->writing.len - u->written); }

static void start(local_upload *u, phase p)
{
    u->phase = p;
    u->busy = true;
    uv_loop_t *loop = u->st->loop;
    int rc = 0;
    switch (p) {
    case P_OPEN:
        rc = uv_fs_open(loop, &u->fs, u->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644, on_upload_fs);
        break;
    case P_WRITE: {
        uv_buf_t b = uv_buf_init(u->writing.ptr + u->written, (unsigned)(u->writing.len - u->written));
        rc = uv_fs_write(loop, &u->fs, u->fd, &b, 1, (int64_t)(u->offset + u->written), on_upload_fs);
        break;
    }
    case P_FSYNC:
        rc = uv_fs_fsync(loop, &u->fs, u->fd, on_upload_fs);
        break;
    case P_CLOSE:
    case P_CLEANUP:
        if (u->dirfd >= 0 && p == P_CLEANUP) {
            rc = uv_fs_close(loop, &u->fs, u->dirfd, on_upload_fs);
            u->dirfd = -1;
        } else {
            rc = uv_fs_close(loop, &u->fs, u->fd, on_upload_fs);
            u->fd = -1;
        }
        break;
    case P_MKDIR:
        rc = uv_fs_mkdir(loop, &u->fs, u->subdir, 0755, on_upload_fs);
        break;
    case P_LINK:
    case P_KEEP_LINK:
        rc = uv_fs_link(loop, &u->fs, u->tmp, u->final, on_upload_fs);
        break;
    case P_DIR_OPEN:
        rc = uv_fs_open(loop, &u->fs, u->dir_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0, on_upload_fs);
        break;
    case P_DIR_FSYNC:
        rc = uv_fs_fsync(loop, &u->fs, u->dirfd, on_upload_fs);
        break;
    case P_DIR_CLOSE:
        rc = uv_fs_close(loop, &u->fs, u->dirfd, on_upload_fs);
        u->dirfd = -1;
        break;
    case P_KEEP_STAT:
        rc = uv_fs_stat(loop, &u->fs, u->final, on_upload_fs);
        break;
    case P_KEEP_UNLINK:
        rc = uv_fs_unlink(loop, &u->fs, u->tmp, on_upload_fs);
        break;
    case P_COMMITTED:
        break;
    }
    if (rc != 0) {
        /* Submitting fails only on invalid arguments: a bug, not a condition of the disk. */
        sc_log_error("media: cannot submit a file operation: %s", uv_strerror(rc));
        abort();
    }
}

static void fsync_dir(local_upload *u, const char *path, phase next)
{
    u->dir_path = path;
    u->dir_next = next;
    start(u, P_DIR_OPEN);
}

/* After keep or abort, with nothing in flight: the next cleanup step, or the end. */
static void wind_down(local_upload *u)
{
    if (u->dirfd >= 0 || u->fd >= 0) {
        start(u, P_CLEANUP);
        return;
    }
    if (u->created) {
        u->created = false;
        start(u, P_KEEP_UNLINK);
        return;
    }
    if (u->linked && !u->keeping) {
        u->linked = false;
        sc_store_release(&u->st->super, u->key, NULL, NULL);
    }
    upload_free(u);
}

/* With nothing in flight: starts the next write, or the fsync once sealing and everything is written. */
static void pump(local_upload *u)
{
    if (u->busy || u->err || u->fd < 0)
        return;
    if (u->written == u->writing.len && u->pending.len) {
        u->offset += u->writing.len;
        sc_buf tmp = u->writing;
        u->writing = u->pending;
        u->pending = tmp;
        u->pending.len = 0;
        u->written = 0;
    }
    if (u->written < u->writing.len)
        start(u, P_WRITE);
    else if (u->sealing && !u->sealed)
        start(u, P_FSYNC);
}

static void fail(local_upload *u, int err)
{
    u->err = err;
    if (u->sealing && !u->sealed)
        u->ev->on_sealed(u->data, err, NULL);
    else if (u->committing)
        u->ev->on_committed(u->data, err);
    else
        u->ev->on_error(u->data, err);
}

static void on_upload_fs(uv_fs_t *req)
{
    local_upload *u = req->data;
    ssize_t res = req->result;
    bool exists = true;
    if (u->phase == P_KEEP_STAT)
        exists = res == 0;
    uv_fs_req_cleanup(req);
    u->busy = false;
    phase p = u->phase;

    if (p == P_OPEN && res >= 0) {
        u->fd = (int)res;
        u->created = true;
    }
    if (p == P_DIR_OPEN && res >= 0)
        u->dirfd = (int)res;
    if (p == P_LINK && (res == 0 || res == UV_EEXIST))
        u->linked = true; /* also when aborted meanwhile: the abort must release what is in place */
    if (p == P_WRITE && res == 0)
        res = UV_EIO; /* a regular file that takes no bytes */

    if (u->dead && !u->keeping) {
        wind_down(u);
        return;
    }

    if (u->keeping) {
        /* keep: put the object back if it vanished, then drop the temp name. */
        switch (p) {
        case P_KEEP_STAT:
            if (!exists) {
                start(u, P_KEEP_LINK);
                return;
            }
            break;
        case P_KEEP_LINK:
            if (res < 0 && res != UV_EEXIST)
                sc_log_error("media: cannot restore %s: %s", u->final, uv_strerror((int)res));
            fsync_dir(u, u->subdir, P_KEEP_UNLINK);
            return;
        case P_DIR_OPEN:
            if (res >= 0) {
                start(u, P_DIR_FSYNC);
                return;
            }
            break;
        case P_DIR_FSYNC:
            start(u, P_DIR_CLOSE);
            return;
        default:
            break;
        }
        wind_down(u);
        return;
    }

    switch (p) {
    case P_OPEN:
    case P_WRITE:
        if (res < 0) {
            fail(u, (int)res);
            return;
        }
        if (p == P_WRITE)
            u->written += (size_t)res;
        pump(u);
        if (u->want_drain && buffered(u) < HIGH_WATER) {
            u->want_drain = false;
            u->ev->on_drain(u->data);
        }
        return;
    case P_FSYNC:
        if (res < 0) {
            fail(u, (int)res);
            return;
        }
        start(u, P_CLOSE);
        return;
    case P_CLOSE: {
        if (res < 0) {
            fail(u, (int)res);
            return;
        }
        unsigned char digest[32];
        mbedtls_sha256_finish_ret(&u->sha, digest);
        hex_digest(digest, u->key);
        u->final = path_printf("%s/%.2s/%s", u->st->dir, u->key, u->key);
        u->subdir = path_printf("%s/%.2s", u->st->dir, u->key);
        u->rel = path_printf("%.2s/%s", u->key, u->key);
        u->sealed = true;
        sc_buf_free(&u->pending);
        sc_buf_free(&u->writing);
        sc_store_info info;
        memcpy(info.key, u->key, sizeof(info.key));
        info.size = u->size;
        info.path = u->rel;
        info.local = u->tmp;
        u->ev->on_sealed(u->data, 0, &info);
        return;
    }
    case P_MKDIR:
        if (res < 0 && res != UV_EEXIST) {
            fail(u, (int)res);
            return;
        }
        if (res == 0) {
            fsync_dir(u, u->st->dir, P_LINK); /* the new subdirectory's entry must be durable too */
            return;
        }
        start(u, P_LINK);
        return;
    case P_LINK:
        if (res < 0 && res != UV_EEXIST) {
            fail(u, (int)res);
            return;
        }
        fsync_dir(u, u->subdir, P_COMMITTED);
        return;
    case P_DIR_OPEN:
        if (res < 0) {
            fail(u, (int)res);
            return;
        }
        start(u, P_DIR_FSYNC);
        return;
    case P_DIR_FSYNC:
        if (res < 0) {
            u->err = (int)res; /* reported once the directory is closed */
        }
        start(u, P_DIR_CLOSE);
        return;
    case P_DIR_CLOSE:
        if (u->err) {
            fail(u, u->err);
            return;
        }
        if (u->dir_next == P_LINK) {
            start(u, P_LINK); /* the store dir is synced: now the object itself */
            return;
        }
        u->committing = false;
        u->ev->on_committed(u->data, 0);
        return;
    default:
        return;
    }
}

static sc_store_upload *l_begin(sc_store *s, const sc_store_events *ev, void *data)
{
    local_store *st = (local_store *)s;
    local_upload *u = sc_calloc(sizeof(*u));
    u->super.store = s;
    u->st = st;
    u->ev = ev;
    u->data = data;
    u->fd = u->dirfd = -1;
    u->fs.data = u;
    mbedtls_sha256_init(&u->sha);
    mbedtls_sha256_starts_ret(&u->sha, 0);
    char stem[48];
    temp_stem(stem);
    u->tmp = path_printf("%s/tmp/%s.part", st->dir, stem);
    start(u, P_OPEN);
    return &u->super;
}

static int l_write(sc_store_upload *su, const char *p, size_t n)
{
    local_upload *u = (local_upload *)su;
    if (u->err)
        return u->err;
    if (n == 0)
        return 0;
    mbedtls_sha256_update_ret(&u->sha, (const unsigned char *)p, n);
    sc_buf_append(&u->pending, p, n);
    u->size += n;
    pump(u);
    if (buffered(u) >= HIGH_WATER) {
        u->want_drain = true;
        return SC_STORE_WAIT;
    }
    return 0;
}

static void l_seal(sc_store_upload *su)
{
    local_upload *u = (local_upload *)su;
    u->sealing = true;
    u->want_drain = false;
    pump(u);
}

static void l_commit(sc_store_upload *su)
{
    local_upload *u = (local_upload *)su;
    u->committing = true;
    start(u, P_MKDIR);
}

static void l_keep(sc_store_upload *su)
{
    local_upload *u = (local_upload *)su;
    u->dead = u->keeping = true;
    if (!u->busy)
        start(u, P_KEEP_STAT);
}

static void l_abort(sc_store_upload *su)
{
    local_upload *u = (local_upload *)su;
    u->dead = true;
    if (!u->busy)
        wind_down(u);
}

static void l_free(sc_store *s)
{
    local_store *st = (local_store *)s;
    free(st->dir);
    free(st);
}

static const sc_store_ops local_ops = {l_begin, l_write, l_seal, l_commit, l_keep, l_abort, l_release, l_free};

sc_store *sc_store_local_new(uv_loop_t *loop, const char *dir, sc_store_refcheck check, void *check_data)
{
    local_store *st = sc_calloc(sizeof(*st));
    st->super.ops = &local_ops;
    st->loop = loop;
    st->dir = sc_strdup(dir);
    st->check = check;
    st->check_data = check_data;
    return &st->super;
}

int sc_store_local_prepare(const char *dir, char *err, size_t errlen)
{
    char *tmp = path_printf("%s/tmp", dir);
    int rc = 0;
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create media directory %s: %s", dir, strerror(errno));
        rc = -1;
    } else if (mkdir(tmp, 0755) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create %s: %s", tmp, strerror(errno));
        rc = -1;
    } else if (access(tmp, W_OK) != 0) {
        snprintf(err, errlen, "media directory %s is not writable: %s", tmp, strerror(errno));
        rc = -1;
    }
    free(tmp);
    return rc;
}

/* ---- the startup sweep (blocking) ----------------------------------------------------------------------- */

static bool before(const struct stat *sb, const struct timespec *t)
{
    return sb->st_mtim.tv_sec < t->tv_sec || (sb->st_mtim.tv_sec == t->tv_sec && sb->st_mtim.tv_nsec < t->tv_nsec);
}

/* Whether the process that named a temp file is gone. Our own pid counts as gone for files older than our start:
 * a previous process with the same pid (a restarted container's pid 1) left them. */
static bool owner_gone(long pid, const struct stat *sb, const struct timespec *started)
{
    if (pid <= 0)
        return true;
    if (pid == (long)getpid())
        return before(sb, started);
    return !(kill((pid_t)pid, 0) == 0 || errno == EPERM);
}

static bool older_than(const struct stat *sb, uint64_t grace_s)
{
    return (uint64_t)time(NULL) > (uint64_t)sb->st_mtime + grace_s;
}

static void fsync_path(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/* tmp/: upload leftovers go; objects hidden by an interrupted release go back to their place. */
static void sweep_temp(const char *dir, uint64_t grace_s, const struct timespec *started,
                       sc_store_sweep_stats *stats)
{
    char *tmpdir = path_printf("%s/tmp", dir);
    DIR *d = opendir(tmpdir);
    if (!d) {
        free(tmpdir);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        const char *name = e->d_name;
        if (name[0] == '.')
            continue;
        char *path = path_printf("%s/%s", tmpdir, name);
        struct stat sb;
        if (lstat(path, &sb) != 0 || !S_ISREG(sb.st_mode)) {
            free(path);
            continue;
        }
        char *end;
        long pid = strtol(name, &end, 10);
        bool named = end != name && *end == '-';
        if (!(named && owner_gone(pid, &sb, started)) && !older_than(&sb, grace_s)) {
            free(path); /* a live upload or release, or a fresh file we do not know: left alone */
            continue;
        }
        const char *dot = strrchr(name, '.');
        if (dot && sc_store_valid_key(dot + 1, strlen(dot + 1))) {
            const char *key = dot + 1;
            char *subdir = path_printf("%s/%.2s", dir, key);
            char *final = path_printf("%s/%s", subdir, key);
            struct stat fb;
            if (stat(final, &fb) == 0) {
                if (unlink(path) == 0)
                    stats->temp_removed++;
            } else if ((mkdir(subdir, 0755) == 0 || errno == EEXIST) && rename(path, final) == 0) {
                fsync_path(subdir);
                stats->restored++;
            } else {
                stats->errors++;
            }
            free(subdir);
            free(final);
        } else if (unlink(path) == 0) {
            stats->temp_removed++;
        } else {
            stats->errors++;
        }
        free(path);
    }
    closedir(d);
    free(tmpdir);
}

#define SWEEP_BATCH 256

/* Releases the unreferenced ones among keys (all in subdir): hide, check again, delete or put back. */
static int sweep_batch(const char *dir, char **keys, size_t n, sc_store_sweep_refs refs, void *data,
                       sc_store_sweep_stats *stats)
{
    bool used[SWEEP_BATCH];
    if (refs(data, (const char *const *)keys, n, used) != 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (used[i])
            continue;
        char stem[48];
        temp_stem(stem);
        char *final = path_printf("%s/%.2s/%s", dir, keys[i], keys[i]);
        char *hidden = path_printf("%s/tmp/%s.%s", dir, stem, keys[i]);
        if (rename(final, hidden) != 0) {
            free(final);
            free(hidden);
            continue;
        }
        bool again;
        if (refs(data, (const char *const *)&keys[i], 1, &again) != 0 || again) {
            if (rename(hidden, final) != 0)
                stats->errors++;
        } else if (unlink(hidden) == 0) {
            stats->orphans_removed++;
        } else {
            stats->errors++;
        }
        free(final);
        free(hidden);
    }
    return 0;
}

void sc_store_local_sweep(const char *dir, uint64_t grace_s, const struct timespec *started,
                          sc_store_sweep_refs refs, void *data, sc_store_sweep_stats *stats)
{
    memset(stats, 0, sizeof(*stats));
    sweep_temp(dir, grace_s, started, stats);
    if (!refs)
        return;
    DIR *top = opendir(dir);
    if (!top)
        return;
    struct dirent *e;
    char *keys[SWEEP_BATCH];
    bool failed = false;
    while (!failed && (e = readdir(top)) != NULL) {
        const char *sub = e->d_name;
        if (strlen(sub) != 2 || !is_hex(sub[0]) || !is_hex(sub[1]))
            continue;
        char *subdir = path_printf("%s/%s", dir, sub);
        DIR *d = opendir(subdir);
        if (!d) {
            free(subdir);
            continue;
        }
        size_t n = 0;
        struct dirent *f;
        while (!failed && (f = readdir(d)) != NULL) {
            const char *name = f->d_name;
            if (!sc_store_valid_key(name, strlen(name)) || memcmp(name, sub, 2) != 0)
                continue; /* not ours: left alone */
            char *path = path_printf("%s/%s", subdir, name);
            struct stat sb;
            bool candidate = lstat(path, &sb) == 0 && S_ISREG(sb.st_mode) && older_than(&sb, grace_s);
            free(path);
            if (!candidate)
                continue;
            keys[n++] = sc_strdup(name);
            if (n == SWEEP_BATCH) {
                failed = sweep_batch(dir, keys, n, refs, data, stats) != 0;
                for (size_t i = 0; i < n; i++)
                    free(keys[i]);
                n = 0;
            }
        }
        if (n && !failed)
            failed = sweep_batch(dir, keys, n, refs, data, stats) != 0;
        for (size_t i = 0; i < n; i++)
            free(keys[i]);
        closedir(d);
        free(subdir);
    }
    closedir(top);
}
