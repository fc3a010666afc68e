/* The local-disk store: objects are files under one directory (STACCATO_MEDIA_DIR), at <key[0:2]>/<key>, written
 * through temp files in <dir>/tmp/. Every file operation on the loop goes through uv_fs_* (the thread pool), so a
 * slow or full disk never blocks the loop.
 *
 * Temp files are named <pid>-<random>.part (an upload) or <pid>-<random>.<key> (an object being released, moved
 * out of sight while its references are checked); the pid tells the startup sweep whether their owner is gone. */
#ifndef SC_STORAGE_LOCAL_H
#define SC_STORAGE_LOCAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <uv.h>

#include "storage/store.h"

/* Creates dir and dir/tmp when missing (blocking; for use before the loop runs). Returns 0, or -1 with a
 * message in err. */
int sc_store_local_prepare(const char *dir, char *err, size_t errlen);

/* A store in dir on loop. check answers whether a key is still referenced (see sc_store_release); it may be
 * NULL, and then nothing is ever deleted by release. */
sc_store *sc_store_local_new(uv_loop_t *loop, const char *dir, sc_store_refcheck check, void *check_data);

/* Reference check for the sweep, blocking: sets referenced[i] for each of the n keys. Returns 0, or -1 when the
 * answer is unknown (the sweep then deletes nothing more). */
typedef int (*sc_store_sweep_refs)(void *data, const char *const *keys, size_t n, bool *referenced);

typedef struct sc_store_sweep_stats {
    unsigned temp_removed;    /* temp files of uploads whose process is gone */
    unsigned restored;        /* objects put back from an interrupted release */
    unsigned orphans_removed; /* objects no row references, older than the grace period */
    unsigned errors;          /* operations that failed (the files stay) */
} sc_store_sweep_stats;

/* The startup sweep, blocking (run it on a worker thread or before the loop): removes temp files whose owner
 * process is gone (this one counts as gone for files older than `started`, its start time) or that are older than
 * grace_s, finishes interrupted releases, and, when refs is given, releases objects older than grace_s that no row
 * references (a crash between writing an object and committing its row leaves such objects). Safe beside live
 * uploads of other processes and of this one. */
void sc_store_local_sweep(const char *dir, uint64_t grace_s, const struct timespec *started,
                          sc_store_sweep_refs refs, void *data, sc_store_sweep_stats *stats);

#endif
