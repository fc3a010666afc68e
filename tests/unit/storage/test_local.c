/* The local-disk store on a real loop in a temp directory (write with backpressure, seal, commit, keep, abort,
 * release and its reference check, restore after a concurrent release, the startup sweep), the magic-number
 * sniffers, and the reading of ffprobe's JSON. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <mbedtls/sha256.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <utime.h>
#include <uv.h>

#include "check.h"
#include "storage/local.h"
#include "storage/probe.h"
#include "storage/sniff.h"
#include "storage/store.h"

static char root[256];
static uv_loop_t *loop;
static sc_store *store;
static int refcheck_answer; /* what the reference check says */
static unsigned refchecks;

static void refcheck(void *data, const char *key, sc_store_ref_cb cb, void *token)
{
    refchecks++;
    cb(token, refcheck_answer);
}

typedef struct events {
    unsigned drains, errors, sealed, committed;
    int err;
    sc_store_info info;
    char path[128];
    char local[512];
} events;

static void on_drain(void *d) { ((events *)d)->drains++; }
static void on_error(void *d, int err)
{
    ((events *)d)->errors++;
    ((events *)d)->err = err;
}
static void on_sealed(void *d, int err, const sc_store_info *info)
{
    events *e = d;
    e->sealed++;
    e->err = err;
    if (info) {
        e->info = *info;
        snprintf(e->path, sizeof(e->path), "%s", info->path);
        snprintf(e->local, sizeof(e->local), "%s", info->local);
    }
}
static void on_committed(void *d, int err)
{
    ((events *)d)->committed++;
    ((events *)d)->err = err;
}
static const sc_store_events EV = {on_drain, on_error, on_sealed, on_committed};

static void run(void) { uv_run(loop, UV_RUN_DEFAULT); }

static bool exists(const char *rel)
{
    char p[512];
    snprintf(p, sizeof(p), "%s/%s", root, rel);
    struct stat sb;
    return stat(p, &sb) == 0;
}

static unsigned count_tmp(void)
{
    char p[512];
    snprintf(p, sizeof(p), "%s/tmp", root);
    DIR *d = opendir(p);
    unsigned n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    if (d)
        closedir(d);
    return n;
}

static void sha_hex(const void *p, size_t n, char out[65])
{
    unsigned char d[32];
    mbedtls_sha256_ret(p, n, d, 0);
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

/* Writes data in pieces, waiting for on_drain whenever asked; seals; returns with the seal done. */
static sc_store_upload *write_all(const char *data, size_t n, events *e)
{
    sc_store_upload *u = sc_store_begin(store, &EV, e);
    size_t at = 0, waits = 0;
    while (at < n) {
        size_t k = n - at < 70000 ? n - at : 70000;
        int rc = sc_store_write(u, data + at, k);
        at += k;
        if (rc == SC_STORE_WAIT) {
            unsigned before = e->drains;
            waits++;
            while (e->drains == before)
                uv_run(loop, UV_RUN_ONCE);
        } else {
            CHECK_EQ_INT(rc, 0);
        }
    }
    sc_store_seal(u);
    while (!e->sealed)
        uv_run(loop, UV_RUN_ONCE);
    return u;
}

static void test_upload_keep(void)
{
    size_t n = 3 * 1024 * 1024 + 17;
    char *data = malloc(n);
    for (size_t i = 0; i < n; i++)
        data[i] = (char)(i * 7 + i / 1000);
    char key[65], rel[80];
    sha_hex(data, n, key);
    snprintf(rel, sizeof(rel), "%.2s/%s", key, key);
    events e = {0};
    sc_store_upload *u = write_all(data, n, &e);
    CHECK(e.drains > 0); /* 3 MiB cannot be buffered at once */
    CHECK_EQ_INT(e.err, 0);
    CHECK_EQ_STR(e.info.key, key);
    CHECK_EQ_UINT(e.info.size, n);
    CHECK_EQ_STR(e.path, rel);
    CHECK(access(e.local, R_OK) == 0);
    CHECK(!exists(rel));
    sc_store_commit(u);
    while (!e.committed)
        uv_run(loop, UV_RUN_ONCE);
    CHECK_EQ_INT(e.err, 0);
    CHECK(exists(rel));
    CHECK_EQ_UINT(count_tmp(), 1); /* the private copy stays until keep */
    sc_store_keep(u);
    run();
    CHECK_EQ_UINT(count_tmp(), 0);
    char p[512];
    snprintf(p, sizeof(p), "%s/%s", root, rel);
    FILE *f = fopen(p, "rb");
    char *back = malloc(n + 1);
    CHECK(f && fread(back, 1, n + 1, f) == n && memcmp(back, data, n) == 0);
    if (f)
        fclose(f);

    /* The same content again: the object exists already, the temp file goes. */
    events e2 = {0};
    u = write_all(data, n, &e2);
    sc_store_commit(u);
    while (!e2.committed)
        uv_run(loop, UV_RUN_ONCE);
    CHECK_EQ_INT(e2.err, 0);
    /* A concurrent release removed the object before our row was recorded: keep puts it back. */
    unlink(p);
    sc_store_keep(u);
    run();
    CHECK(exists(rel));
    CHECK_EQ_UINT(count_tmp(), 0);

    /* Release: referenced (or unknown) stays, unreferenced goes. */
    refcheck_answer = 1;
    sc_store_release(store, key, NULL, NULL);
    run();
    CHECK(exists(rel));
    refcheck_answer = -1;
    sc_store_release(store, key, NULL, NULL);
    run();
    CHECK(exists(rel));
    refcheck_answer = 0;
    unsigned before = refchecks;
    sc_store_release(store, key, NULL, NULL);
    run();
    CHECK(!exists(rel));
    CHECK_EQ_UINT(refchecks, before + 1);
    CHECK_EQ_UINT(count_tmp(), 0);
    /* Releasing what is not there asks nobody. */
    sc_store_release(store, key, NULL, NULL);
    run();
    CHECK_EQ_UINT(refchecks, before + 1);
    free(back);
    free(data);
}

static void test_abort(void)
{
    static const char data[] = "some bytes that will not stay";
    char key[65], rel[80];
    sha_hex(data, sizeof(data), key);
    snprintf(rel, sizeof(rel), "%.2s/%s", key, key);
    /* Right after begin (open in flight), after writes, after seal. */
    for (int when = 0; when < 3; when++) {
        events e = {0};
        sc_store_upload *u = sc_store_begin(store, &EV, &e);
        if (when >= 1)
            sc_store_write(u, data, sizeof(data));
        if (when == 2) {
            sc_store_seal(u);
            while (!e.sealed)
                uv_run(loop, UV_RUN_ONCE);
        }
        sc_store_abort(u);
        run();
        CHECK_EQ_UINT(count_tmp(), 0);
        CHECK(!exists(rel));
        CHECK_EQ_UINT(e.errors + e.committed, 0);
    }
    /* After commit: the object is released (the check says nobody uses it). */
    refcheck_answer = 0;
    events e = {0};
    sc_store_upload *u = write_all(data, sizeof(data), &e);
    sc_store_commit(u);
    while (!e.committed)
        uv_run(loop, UV_RUN_ONCE);
    CHECK(exists(rel));
    sc_store_abort(u);
    run();
    CHECK(!exists(rel));
    CHECK_EQ_UINT(count_tmp(), 0);
    /* ... unless it is used (another row has the same content). */
    refcheck_answer = 1;
    events e2 = {0};
    u = write_all(data, sizeof(data), &e2);
    sc_store_commit(u);
    while (!e2.committed)
        uv_run(loop, UV_RUN_ONCE);
    sc_store_abort(u);
    run();
    CHECK(exists(rel));
    CHECK_EQ_UINT(count_tmp(), 0);
}

static void test_write_error(void)
{
    /* A store whose directory has no tmp/: opening the temp file fails, reported as on_error. */
    char dir[300];
    snprintf(dir, sizeof(dir), "%s/missing", root);
    sc_store *bad = sc_store_local_new(loop, dir, refcheck, NULL);
    events e = {0};
    sc_store_upload *u = sc_store_begin(bad, &EV, &e);
    sc_store_write(u, "x", 1);
    while (!e.errors)
        uv_run(loop, UV_RUN_ONCE);
    CHECK_EQ_INT(e.err, UV_ENOENT);
    CHECK_EQ_INT(sc_store_write(u, "y", 1), UV_ENOENT);
    sc_store_abort(u);
    run();
    sc_store_free(bad);
}

static int sweep_refs(void *data, const char *const *keys, size_t n, bool *referenced)
{
    const char *used = data;
    for (size_t i = 0; i < n; i++)
        referenced[i] = strcmp(keys[i], used) == 0;
    return 0;
}

static void put_file(const char *rel, const char *content, time_t mtime)
{
    char p[512];
    snprintf(p, sizeof(p), "%s/%s", root, rel);
    char d[512];
    snprintf(d, sizeof(d), "%s", p);
    *strrchr(d, '/') = '\0';
    mkdir(d, 0755);
    FILE *f = fopen(p, "wb");
    fputs(content, f);
    fclose(f);
    if (mtime) {
        struct utimbuf t = {mtime, mtime};
        utime(p, &t);
    }
}

static void test_sweep(void)
{
    time_t old = time(NULL) - 7200;
    char k1[65], k2[65], k3[65], k4[65], rel[200];
    sha_hex("orphan", 6, k1);
    sha_hex("used", 4, k2);
    sha_hex("fresh", 5, k3);
    sha_hex("hidden", 6, k4);
    snprintf(rel, sizeof(rel), "%.2s/%s", k1, k1);
    put_file(rel, "orphan", old);
    snprintf(rel, sizeof(rel), "%.2s/%s", k2, k2);
    put_file(rel, "used", old);
    snprintf(rel, sizeof(rel), "%.2s/%s", k3, k3);
    put_file(rel, "fresh", 0);
    put_file("tmp/1-0000000000000000.part", "dead or not ours", 0); /* pid 1 may live: old enough? no */
    put_file("tmp/999999999-0000000000000000.part", "dead", 0);
    char own[64];
    snprintf(own, sizeof(own), "tmp/%ld-0000000000000000.part", (long)getpid());
    put_file(own, "ours, from before the start", old);
    snprintf(rel, sizeof(rel), "tmp/999999999-1111111111111111.%s", k4);
    put_file(rel, "hidden", 0);
    struct timespec started;
    clock_gettime(CLOCK_REALTIME, &started);
    char own_new[64];
    snprintf(own_new, sizeof(own_new), "tmp/%ld-2222222222222222.part", (long)getpid());
    put_file(own_new, "ours, in flight", 0);
    sc_store_sweep_stats st;
    sc_store_local_sweep(root, 3600, &started, sweep_refs, k2, &st);
    snprintf(rel, sizeof(rel), "%.2s/%s", k1, k1);
    CHECK(!exists(rel));
    snprintf(rel, sizeof(rel), "%.2s/%s", k2, k2);
    CHECK(exists(rel));
    snprintf(rel, sizeof(rel), "%.2s/%s", k3, k3);
    CHECK(exists(rel));
    snprintf(rel, sizeof(rel), "%.2s/%s", k4, k4);
    CHECK(exists(rel)); /* restored, and fresh: kept */
    CHECK(!exists("tmp/999999999-0000000000000000.part"));
    CHECK(!exists(own));
    CHECK(exists(own_new));
    CHECK(exists("tmp/1-0000000000000000.part")); /* pid 1 is alive */
    CHECK_EQ_UINT(st.orphans_removed, 1);
    CHECK_EQ_UINT(st.restored, 1);
    CHECK_EQ_UINT(st.temp_removed, 2);
    CHECK_EQ_UINT(st.errors, 0);
    /* Without a reference check only temp files are looked at. */
    snprintf(rel, sizeof(rel), "%.2s/%s", k4, k4);
    char p[512];
    snprintf(p, sizeof(p), "%s/%s", root, rel);
    struct utimbuf t = {old, old};
    utime(p, &t);
    sc_store_local_sweep(root, 3600, &started, NULL, NULL, &st);
    CHECK(exists(rel));
    CHECK_EQ_UINT(st.orphans_removed, 0);
    unlink(p);
    snprintf(p, sizeof(p), "%s/tmp/1-0000000000000000.part", root);
    unlink(p);
    snprintf(p, sizeof(p), "%s/%s", root, own_new);
    unlink(p);
}

static void test_sniff(void)
{
    sc_sniffed t;
    CHECK(sc_sniff_image((const unsigned char *)"\xff\xd8\xff\xe0", 4, &t) == 0 && !strcmp(t.mime, "image/jpeg"));
    CHECK(sc_sniff_image((const unsigned char *)"\x89PNG\r\n\x1a\n", 8, &t) == 0 && !strcmp(t.mime, "image/png"));
    CHECK(sc_sniff_image((const unsigned char *)"GIF87a", 6, &t) == 0 && !strcmp(t.mime, "image/gif"));
    CHECK(sc_sniff_image((const unsigned char *)"RIFF\0\0\0\0WEBP", 12, &t) == 0 && !strcmp(t.mime, "image/webp"));
    CHECK(sc_sniff_image((const unsigned char *)"\x89PNG\r\n\x1a", 7, &t) != 0);
    CHECK(sc_sniff_image((const unsigned char *)"RIFF\0\0\0\0WAVE", 12, &t) != 0);
    CHECK(sc_sniff_image((const unsigned char *)"", 0, &t) != 0);

    CHECK(sc_sniff_audio((const unsigned char *)"ID3\x04\0\0\0\0\0\0", 10, &t) == 0 && !strcmp(t.demuxer, "mp3"));
    CHECK(sc_sniff_audio((const unsigned char *)"\xff\xfb\x90\x64", 4, &t) == 0 && !strcmp(t.mime, "audio/mpeg"));
    CHECK(sc_sniff_audio((const unsigned char *)"\xff\xf1\x50\x80", 4, &t) == 0 && !strcmp(t.mime, "audio/aac"));
    CHECK(sc_sniff_audio((const unsigned char *)"\xff\xfb\xf0\x64", 4, &t) != 0); /* bad bitrate index */
    CHECK(sc_sniff_audio((const unsigned char *)"\xff\xeb\x90\x64", 4, &t) != 0); /* reserved version */
    CHECK(sc_sniff_audio((const unsigned char *)"fLaC\0\0\0\x22", 8, &t) == 0 && !strcmp(t.mime, "audio/flac"));
    unsigned char ogg[64] = "OggS";
    ogg[26] = 1;
    memcpy(ogg + 28, "OpusHead", 8);
    CHECK(sc_sniff_audio(ogg, sizeof(ogg), &t) == 0 && !strcmp(t.mime, "audio/ogg; codecs=opus"));
    memcpy(ogg + 28, "\x01vorbis\0", 8);
    CHECK(sc_sniff_audio(ogg, sizeof(ogg), &t) == 0 && !strcmp(t.mime, "audio/ogg") && !strcmp(t.demuxer, "ogg"));
    CHECK(sc_sniff_audio((const unsigned char *)"\0\0\0\x1c"
                                                "ftypM4A \0\0\0\0",
                         16, &t) == 0 &&
          !strcmp(t.mime, "audio/mp4"));
    CHECK(sc_sniff_audio((const unsigned char *)"\0\0\0\x1c"
                                                "ftypheic\0\0\0\0",
                         16, &t) != 0);
    CHECK(sc_sniff_audio((const unsigned char *)"RIFF\0\0\0\0WAVEfmt ", 16, &t) == 0 &&
          !strcmp(t.mime, "audio/wav"));
    CHECK(sc_sniff_audio((const unsigned char *)"RF64\0\0\0\0WAVEds64", 16, &t) == 0);
    CHECK(sc_sniff_audio((const unsigned char *)"#EXTM3U\n", 8, &t) != 0);
    CHECK(sc_sniff_audio((const unsigned char *)"", 0, &t) != 0);
}

static void test_probe_parse(void)
{
    static const char json[] =
        "{\"streams\":[{\"codec_type\":\"video\",\"codec_name\":\"mjpeg\"},{\"codec_type\":\"audio\",\"codec_"
        "name\":"
        "\"opus\",\"sample_rate\":\"48000\",\"channels\":2,\"tags\":{\"TITLE\":\"T\\u00e9\",\"ARTIST\":\"A\","
        "\"comment\":\"x\"}}],\"format\":{\"format_name\":\"ogg\",\"duration\":\"2.0065\",\"bit_rate\":\"72093\","
        "\"tags\":{\"title\":\"From format\"}}}";
    sc_probe_result r;
    sc_probe_parse(json, sizeof(json) - 1, &r);
    CHECK_EQ_INT(r.err, 0);
    CHECK_EQ_STR(r.format, "ogg");
    CHECK_EQ_STR(r.codec, "opus");
    CHECK_EQ_INT(r.duration_ms, 2007);
    CHECK_EQ_INT(r.bitrate, 72093);
    CHECK_EQ_INT(r.sample_rate, 48000);
    CHECK_EQ_INT(r.channels, 2);
    CHECK_EQ_STR(r.tags, "{\"artist\":\"A\",\"title\":\"From format\"}");
    sc_probe_result_free(&r);
    static const char no_audio[] = "{\"streams\":[{\"codec_type\":\"video\"}],\"format\":{}}";
    sc_probe_parse(no_audio, sizeof(no_audio) - 1, &r);
    CHECK_EQ_INT(r.err, SC_PROBE_E_UNREADABLE);
    sc_probe_result_free(&r);
    sc_probe_parse("not json", 8, &r);
    CHECK_EQ_INT(r.err, SC_PROBE_E_UNREADABLE);
    static const char odd[] = "{\"streams\":[{\"codec_type\":\"audio\",\"sample_rate\":\"N/A\",\"channels\":-1}],"
                              "\"format\":{\"duration\":\"1e300\",\"bit_rate\":7}}";
    sc_probe_parse(odd, sizeof(odd) - 1, &r);
    CHECK_EQ_INT(r.err, 0);
    CHECK_EQ_INT(r.duration_ms, -1);
    CHECK_EQ_INT(r.bitrate, 7);
    CHECK_EQ_INT(r.sample_rate, -1);
    CHECK_EQ_INT(r.channels, -1);
    CHECK_EQ_STR(r.tags, "{}");
    sc_probe_result_free(&r);
}

static void rm_rf(const char *path)
{
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", path);
}

int main(void)
{
    snprintf(root, sizeof(root), "/tmp/staccato-store-XXXXXX");
    if (!mkdtemp(root))
        return 1;
    char err[256];
    CHECK_EQ_INT(sc_store_local_prepare(root, err, sizeof(err)), 0);
    loop = uv_default_loop();
    store = sc_store_local_new(loop, root, refcheck, NULL);
    test_upload_keep();
    test_abort();
    test_write_error();
    test_sweep();
    test_sniff();
    test_probe_parse();
    sc_store_free(store);
    CHECK_EQ_INT(uv_loop_close(loop), 0);
    rm_rf(root);
    return check_report();
}
