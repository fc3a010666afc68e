/* ffprobe as a child process (see probe.h).
 *
 * Three handles: the process, the pipe of its standard output, and the timeout timer. The result is known once
 * the process has exited and the pipe has reached its end (either may come first); then the callback runs and
 * the handles are closed. The probe frees itself when the last one is closed, so cancelling it is only a flag
 * (and a kill). */
#include "storage/probe.h"

#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/mem.h"

/* ffprobe prints a few KiB; anything much larger is not an answer we want to read. */
#define MAX_OUTPUT (1024 * 1024)
#define MAX_TAG_CHARS 1000

struct sc_probe {
    uv_process_t proc;
    uv_pipe_t out;
    uv_timer_t timer;
    int open_handles;
    bool exited, eof, cancelled, timed_out, reported;
    int64_t exit_status;
    int term_signal;
    sc_buf buf;
    sc_probe_cb cb;
    void *data;
};

/* ---- parsing ---------------------------------------------------------------------------------------------- */

SC_ERROR_STRERROR(sc_probe_strerror, SC_PROBE_ERRORS, "unknown probe error")

static long long number(json_t *v, double scale, double max)
{
    double d;
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        char *end;
        d = strtod(s, &end);
        if (end == s || *end)
            return -1; /* "N/A" and the like */
    } else if (json_is_number(v)) {
        d = json_number_value(v);
    } else {
        return -1;
    }
    d *= scale;
    if (!isfinite(d) || d < 0 || d > max)
        return -1;
    return llround(d);
}

static void copy_str(json_t *v, char *out, size_t outlen)
{
    const char *s = json_string_value(v);
    snprintf(out, outlen, "%s", s ? s : "");
}

/* Picks the common tags from a tags object (keys in any case), without overwriting ones already found. */
static void pick_tags(json_t *tags, json_t *into)
{
    static const char *const wanted[] = {"title", "artist", "album", "genre", "date", "track"};
    const char *key;
    json_t *value;
    json_object_foreach(tags, key, value)
    {
        if (!json_is_string(value))
            continue;
        for (size_t i = 0; i < sizeof(wanted) / sizeof(wanted[0]); i++) {
            if (strcasecmp(key, wanted[i]) != 0 || json_object_get(into, wanted[i]))
                continue;
            const char *s = json_string_value(value);
            size_t n = json_string_length(value), chars = 0, cut = n;
            for (size_t k = 0; k < n; k++) /* at most MAX_TAG_CHARS characters, cut on a character boundary */
                if (((unsigned char)s[k] & 0xC0) != 0x80 && chars++ == MAX_TAG_CHARS) {
                    cut = k;
                    break;
                }
            json_object_set_new(into, wanted[i], json_stringn(s, cut));
        }
    }
}

void sc_probe_parse(const char *text, size_t len, sc_probe_result *r)
{
    memset(r, 0, sizeof(*r));
    r->err = SC_PROBE_E_UNREADABLE;
    r->duration_ms = r->bitrate = r->sample_rate = r->channels = -1;
    json_error_t jerr;
    json_t *doc = json_loadb(text, len, 0, &jerr);
    if (!doc)
        return;
    json_t *format = json_object_get(doc, "format");
    json_t *streams = json_object_get(doc, "streams");
    json_t *audio = NULL, *s;
    size_t i;
    json_array_foreach(streams, i, s)
    {
        const char *type = json_string_value(json_object_get(s, "codec_type"));
        if (type && strcmp(type, "audio") == 0) {
            audio = s;
            break;
        }
    }
    if (!json_is_object(format) || !audio) {
        json_decref(doc);
        return;
    }
    r->err = 0;
    copy_str(json_object_get(format, "format_name"), r->format, sizeof(r->format));
    copy_str(json_object_get(audio, "codec_name"), r->codec, sizeof(r->codec));
    r->duration_ms = number(json_object_get(format, "duration"), 1000, 2147483647.0);
    if (r->duration_ms < 0)
        r->duration_ms = number(json_object_get(audio, "duration"), 1000, 2147483647.0);
    r->bitrate = number(json_object_get(format, "bit_rate"), 1, 2147483647.0);
    if (r->bitrate < 0)
        r->bitrate = number(json_object_get(audio, "bit_rate"), 1, 2147483647.0);
    r->sample_rate = number(json_object_get(audio, "sample_rate"), 1, 2147483647.0);
    r->channels = number(json_object_get(audio, "channels"), 1, 32767.0);
    json_t *tags = json_object();
    if (json_is_object(json_object_get(format, "tags")))
        pick_tags(json_object_get(format, "tags"), tags);
    if (json_is_object(json_object_get(audio, "tags")))
        pick_tags(json_object_get(audio, "tags"), tags); /* Ogg keeps its comments on the stream */
    r->tags = json_dumps(tags, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_SORT_KEYS);
    json_decref(tags);
    json_decref(doc);
}

void sc_probe_result_free(sc_probe_result *r)
{
    free(r->tags);
    r->tags = NULL;
}

/* ---- the child process ------------------------------------------------------------------------------------ */

static void on_closed(uv_handle_t *h)
{
    sc_probe *p = h->data;
    if (--p->open_handles == 0) {
        sc_buf_free(&p->buf);
        free(p);
    }
}

static void close_all(sc_probe *p)
{
    uv_handle_t *hs[] = {(uv_handle_t *)&p->proc, (uv_handle_t *)&p->out, (uv_handle_t *)&p->timer};
    for (size_t i = 0; i < 3; i++)
        if (!uv_is_closing(hs[i]))
            uv_close(hs[i], on_closed);
}

static void report(sc_probe *p)
{
    if (p->reported || !p->exited || !p->eof)
        return;
    p->reported = true;
    uv_timer_stop(&p->timer);
    if (!p->cancelled) {
        sc_probe_result r;
        if (p->timed_out) {
            memset(&r, 0, sizeof(r));
            r.err = SC_PROBE_E_TIMEOUT;
            r.duration_ms = r.bitrate = r.sample_rate = r.channels = -1;
        } else if (p->exit_status != 0 || p->term_signal != 0 || p->buf.len >= MAX_OUTPUT) {
            memset(&r, 0, sizeof(r));
            r.err = SC_PROBE_E_UNREADABLE;
            r.duration_ms = r.bitrate = r.sample_rate = r.channels = -1;
        } else {
            sc_probe_parse(p->buf.ptr ? p->buf.ptr : "", p->buf.len, &r);
        }
        p->cb(p->data, &r);
        sc_probe_result_free(&r);
    }
    close_all(p);
}

static void on_exit_cb(uv_process_t *proc, int64_t exit_status, int term_signal)
{
    sc_probe *p = proc->data;
    p->exited = true;
    p->exit_status = exit_status;
    p->term_signal = term_signal;
    report(p);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    sc_probe *p = h->data;
    char *at = sc_buf_reserve(&p->buf, 16 * 1024);
    *buf = uv_buf_init(at, (unsigned)(p->buf.cap - p->buf.len));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    sc_probe *p = s->data;
    if (n > 0) {
        p->buf.len += (size_t)n;
        if (p->buf.len < MAX_OUTPUT)
            return;
        /* Too much output: stop listening and stop the process; the result is "unreadable". */
        if (!p->exited)
            uv_process_kill(&p->proc, SIGKILL);
    } else if (n == 0) {
        return;
    }
    uv_read_stop(s);
    p->eof = true;
    report(p);
}

static void on_timeout(uv_timer_t *t)
{
    sc_probe *p = t->data;
    p->timed_out = true;
    if (!p->exited)
        uv_process_kill(&p->proc, SIGKILL);
}

/* uv_spawn failed: the result is reported from the next loop iteration, not from inside sc_probe_start. */
static void on_spawn_failed(uv_timer_t *t)
{
    sc_probe *p = t->data;
    if (!p->cancelled) {
        sc_probe_result r;
        memset(&r, 0, sizeof(r));
        r.err = SC_PROBE_E_SPAWN;
        r.spawn_error = (int)p->exit_status;
        r.duration_ms = r.bitrate = r.sample_rate = r.channels = -1;
        p->cb(p->data, &r);
    }
    close_all(p);
}

sc_probe *sc_probe_start(uv_loop_t *loop, const char *ffprobe, const char *file, const char *demuxer,
                         uint64_t timeout_ms, sc_probe_cb cb, void *data)
{
    sc_probe *p = sc_calloc(sizeof(*p));
    p->cb = cb;
    p->data = data;
    p->proc.data = p->out.data = p->timer.data = p;
    uv_pipe_init(loop, &p->out, 0);
    uv_timer_init(loop, &p->timer);
    p->open_handles = 3;

    sc_buf target = {0};
    sc_buf_printf(&target, "file:%s", file);
    sc_buf_append_char(&target, '\0');
    char *args[] =
        {(char *)ffprobe, "-v",   "error",        "-protocol_whitelist", "file",     "-f", (char *)demuxer,
         "-print_format", "json", "-show_format", "-show_streams",       target.ptr, NULL};
    uv_stdio_container_t stdio[3];
    stdio[0].flags = UV_IGNORE;
    stdio[1].flags = (uv_stdio_flags)(UV_CREATE_PIPE | UV_WRITABLE_PIPE);
    stdio[1].data.stream = (uv_stream_t *)&p->out;
    stdio[2].flags = UV_IGNORE;
    uv_process_options_t opt;
    memset(&opt, 0, sizeof(opt));
    opt.file = ffprobe;
    opt.args = args;
    opt.exit_cb = on_exit_cb;
    opt.stdio_count = 3;
    opt.stdio = stdio;
    int rc = uv_spawn(loop, &p->proc, &opt);
    sc_buf_free(&target);
    if (rc != 0) {
        p->exit_status = rc;
        p->reported = true;
        uv_timer_start(&p->timer, on_spawn_failed, 0, 0);
        return p;
    }
    uv_read_start((uv_stream_t *)&p->out, on_alloc, on_read);
    uv_timer_start(&p->timer, on_timeout, timeout_ms, 0);
    return p;
}

void sc_probe_cancel(sc_probe *p)
{
    p->cancelled = true;
    if (!p->reported && !p->exited)
        uv_process_kill(&p->proc, SIGKILL);
}
