/* What streaming needs to know about a song's audio or an album's cover, kept per process so that a range request
 * needs neither a database round trip nor an open(2).
 *
 * An entry holds the caller-independent facts of one song or album (who owns it, whether it is public, which media
 * file it points at) and, once a request has opened that file, the open file itself: media files are named by
 * their content's hash and never change in place, so a descriptor stays right for as long as the entry names that
 * hash.
 *
 * Staying correct. Every change to songs or albums that touches what an entry holds (owner, visibility, flag,
 * media file; a delete; the owner's account going away) makes PostgreSQL send a notification on the channel
 * "staccato_media" from a trigger (migrations 0003, 0004), at commit, to every process; each drops the entry
 * named. The process that made the change also drops it itself before it answers, so its own next request never
 * sees the old state. While the notification connection is down, nothing is cached, and everything is dropped
 * whenever it (re)connects, since what was sent in between is lost (a connection that dies silently is found by
 * the listener's heartbeat, db/listen.h). A fill started before a drop is not stored (a generation counter): its
 * row may be older than the change. Entries also expire after STACCATO_MEDIA_CACHE_TTL_S and the least recently
 * used goes when the cache is full. Open files are kept for at most a quarter of the process's open-file limit
 * (RLIMIT_NOFILE) of entries; the others are opened per request. */
#ifndef SC_API_MEDIA_CACHE_H
#define SC_API_MEDIA_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "core/slice.h"
#include "http/request.h"

#define SC_MEDIA_CHANNEL "staccato_media"

/* What an entry is about: a song's audio or an album's cover. */
typedef enum { SC_MEDIA_SONG = 's', SC_MEDIA_COVER = 'a' } sc_media_kind;

/* The caller-independent facts of one song's audio or one album's cover. */
typedef struct sc_media_facts {
    bool has_media;       /* false: the song has no audio, the album no cover (the rest but owner/public unset) */
    bool is_public;       /* a song: not flagged and public; an album: not flagged */
    const char *owner_id; /* NULL when nobody owns it (any more) */
    const char *path;     /* relative to the media directory */
    const char *mime;
    char sha256[65];       /* lowercase hex; the strong ETag */
    int64_t last_modified; /* Unix seconds */
    sc_file *file;         /* the open media file, or NULL until a request has opened it */
    uint64_t size;         /* of file */
} sc_media_facts;

typedef struct sc_media_cache sc_media_cache;

/* A cache of at most max_entries entries (NULL, which every function accepts as "no cache", when 0) that listens
 * for changes on its own connection to conninfo (connect timeout and heartbeat as in db/listen.h). */
sc_media_cache *sc_media_cache_new(uv_loop_t *loop, const char *conninfo, size_t max_entries, uint64_t ttl_ms,
                                   uint64_t connect_timeout_ms, uint64_t heartbeat_ms);

/* The live entry of (kind, id), or NULL. Valid until the next call into the cache. */
const sc_media_facts *sc_media_cache_get(sc_media_cache *c, sc_media_kind kind, sc_slice id);
/* Read before asking the database for facts; handed back to sc_media_cache_put. */
uint64_t sc_media_cache_generation(const sc_media_cache *c);
/* Stores facts (copied; file ignored) unless something was dropped since generation was read. */
void sc_media_cache_put(sc_media_cache *c, uint64_t generation, sc_media_kind kind, sc_slice id,
                        const sc_media_facts *facts);
/* Gives the entry of (kind, id) the open file f (a reference is taken) if the entry still names sha256 and has
 * none yet. */
void sc_media_cache_attach(sc_media_cache *c, sc_media_kind kind, sc_slice id, const char *sha256, sc_file *f,
                           uint64_t size);
/* Drops the entry of (kind, id); after a change this process made. */
void sc_media_cache_forget(sc_media_cache *c, sc_media_kind kind, sc_slice id);
/* Drops every entry (a change whose reach is not known, such as an account deleted). */
void sc_media_cache_clear(sc_media_cache *c);

/* What /metrics reports of the cache. */
typedef struct sc_media_cache_stats {
    uint64_t hits, misses, entries, files;
    uint64_t notifications; /* of changes, received */
} sc_media_cache_stats;
/* The cache's counters (all 0 without a cache). */
sc_media_cache_stats sc_media_cache_get_stats(const sc_media_cache *c);

/* Drops everything and closes the connection; on_closed runs when its handles are closed (at once for NULL). */
void sc_media_cache_close(sc_media_cache *c, void (*on_closed)(void *data), void *data);

#endif
