/* Reading an audio file's technical data and tags with ffprobe, off the loop: the tool runs as a child process
 * (uv_spawn), its JSON comes back through a pipe, and a timer kills it if it takes too long.
 *
 * The command is `ffprobe -v error -protocol_whitelist file -f <demuxer> -print_format json -show_format
 * -show_streams file:<path>`: the format is the one the upload's bytes were sniffed as, so ffprobe cannot be
 * steered into another demuxer (playlists and concat lists open other files or URLs), and only plain files may be
 * opened. */
#ifndef SC_STORAGE_PROBE_H
#define SC_STORAGE_PROBE_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "core/error.h"

/* Why a probe gave no facts: sc_probe_result.err is 0 or one of these (docs/internals/errors.md, convention 1). */
#define SC_PROBE_ERRORS(X)                                                                                        \
    X(SC_PROBE_E_UNREADABLE, -1, "ffprobe could not read the file as audio")                                      \
    X(SC_PROBE_E_TIMEOUT, -2, "ffprobe was stopped after the time limit")                                         \
    X(SC_PROBE_E_SPAWN, -3, "ffprobe could not be run")

enum { SC_PROBE_ERRORS(SC_ERROR_ENUM) };

/* The message of an SC_PROBE_E_* code ("ok" for 0). */
const char *sc_probe_strerror(int err);

typedef struct sc_probe_result {
    int err;         /* 0, or an SC_PROBE_E_* code: then only spawn_error below means anything */
    int spawn_error; /* with SC_PROBE_E_SPAWN: the libuv error of uv_spawn */
    char format[64]; /* ffprobe's format_name */
    char codec[32];  /* the first audio stream's codec_name */
    /* -1 where unknown */
    long long duration_ms, bitrate, sample_rate, channels;
    char *tags; /* {"title":..,"artist":..,"album":..,"genre":..,"date":..,"track":..} (present keys only) */
} sc_probe_result;

typedef void (*sc_probe_cb)(void *data, const sc_probe_result *r);
typedef struct sc_probe sc_probe;

/* Runs ffprobe (the program: a name looked up in PATH, or a path) on file, read as demuxer. cb runs once on the
 * loop (never from inside this call) unless the probe is cancelled first. */
sc_probe *sc_probe_start(uv_loop_t *loop, const char *ffprobe, const char *file, const char *demuxer,
                         uint64_t timeout_ms, sc_probe_cb cb, void *data);
/* cb will not run; a running ffprobe is killed. The probe frees itself once its handles are closed. */
void sc_probe_cancel(sc_probe *p);

/* Reads ffprobe's JSON output into r (err SC_PROBE_E_UNREADABLE when there is no audio stream or it is not JSON).
 * r->tags is malloc'd: free it with sc_probe_result_free. */
void sc_probe_parse(const char *json, size_t len, sc_probe_result *r);
void sc_probe_result_free(sc_probe_result *r);

#endif
