/* The media cache: a chained hash table of entries on an LRU list, emptied by notifications (see the header). */
#include "api/media_cache.h"

#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "core/log.h"
#include "core/mem.h"
#include "db/listen.h"

typedef struct entry entry;
struct entry {
    entry *hnext;       /* in its bucket */
    entry *prev, *next; /* the LRU list, most recently used first */
    uint32_t hash;
    sc_media_kind kind;
    uint64_t expires_ms;
    sc_media_facts facts; /* owns owner_id, path, mime and a reference to file */
    size_t idlen;
    char id[];
};

struct sc_media_cache {
    uv_loop_t *loop;
    sc_pg_listener *listener;
    entry **buckets;
    size_t nbuckets; /* a power of two */
    size_t count, max_entries, files, max_files;
    entry *lru_head, *lru_tail;
    uint64_t ttl_ms;
    uint64_t generation;
    uint64_t hits, misses, notifications;
    void (*on_closed)(void *data);
    void *closed_data;
};

static uint32_t hash_key(sc_media_kind kind, sc_slice id)
{
    uint32_t h = 2166136261u ^ (uint32_t)kind; /* FNV-1a */
    h *= 16777619u;
    for (size_t i = 0; i < id.len; i++) {
        h ^= (unsigned char)id.ptr[i];
        h *= 16777619u;
    }
    return h;
}

static entry **slot_of(sc_media_cache *c, sc_media_kind kind, sc_slice id, uint32_t h)
{
    entry **p = &c->buckets[h & (c->nbuckets - 1)];
    while (*p && !((*p)->hash == h && (*p)->kind == kind && (*p)->idlen == id.len &&
                   memcmp((*p)->id, id.ptr, id.len) == 0))
        p = &(*p)->hnext;
    return p;
}

static void lru_unlink(sc_media_cache *c, entry *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        c->lru_head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        c->lru_tail = e->prev;
    e->prev = e->next = NULL;
}

static void lru_push(sc_media_cache *c, entry *e)
{
    e->prev = NULL;
    e->next = c->lru_head;
    if (c->lru_head)
        c->lru_head->prev = e;
    c->lru_head = e;
    if (!c->lru_tail)
        c->lru_tail = e;
}

static void entry_free(sc_media_cache *c, entry *e)
{
    if (e->facts.file) {
        sc_file_unref(e->facts.file);
        c->files--;
    }
    free((char *)e->facts.owner_id);
    free((char *)e->facts.path);
    free((char *)e->facts.mime);
    free(e);
}

/* Unlinks the entry at *slot and frees it. */
static void drop_at(sc_media_cache *c, entry **slot)
{
    entry *e = *slot;
    *slot = e->hnext;
    lru_unlink(c, e);
    c->count--;
    entry_free(c, e);
}

static void drop(sc_media_cache *c, entry *e)
{
    sc_slice id = {e->id, e->idlen};
    drop_at(c, slot_of(c, e->kind, id, e->hash));
}

void sc_media_cache_clear(sc_media_cache *c)
{
    if (!c)
        return;
    c->generation++;
    while (c->lru_head)
        drop(c, c->lru_head);
}

void sc_media_cache_forget(sc_media_cache *c, sc_media_kind kind, sc_slice id)
{
    if (!c)
        return;
    c->generation++;
    uint32_t h = hash_key(kind, id);
    entry **slot = slot_of(c, kind, id, h);
    if (*slot)
        drop_at(c, slot);
}

/* A notification: "s:<song id>", "a:<album id>", or anything else (or a reconnect): everything goes. */
static void on_event(void *data, const char *channel, const char *payload)
{
    sc_media_cache *c = data;
    if (channel)
        c->notifications++;
    size_t n = payload ? strlen(payload) : 0;
    if (n > 2 && payload[1] == ':' && (payload[0] == SC_MEDIA_SONG || payload[0] == SC_MEDIA_COVER))
        sc_media_cache_forget(c, (sc_media_kind)payload[0], (sc_slice){payload + 2, n - 2});
    else
        sc_media_cache_clear(c);
}

sc_media_cache *sc_media_cache_new(uv_loop_t *loop, const char *conninfo, size_t max_entries, uint64_t ttl_ms,
                                   uint64_t connect_timeout_ms, uint64_t heartbeat_ms)
{
    if (max_entries == 0)
        return NULL;
    sc_media_cache *c = sc_calloc(sizeof(*c));
    c->loop = loop;
    c->max_entries = max_entries;
    c->ttl_ms = ttl_ms;
    /* Kept descriptors take at most a quarter of the process's open-file limit: connections, uploads and the
     * database need the rest. */
    struct rlimit rl;
    c->max_files = max_entries;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur / 4 < c->max_files)
        c->max_files = rl.rlim_cur / 4;
    c->nbuckets = 16;
    while (c->nbuckets < max_entries + max_entries / 2)
        c->nbuckets *= 2;
    c->buckets = sc_calloc(c->nbuckets * sizeof(*c->buckets));
    sc_pg_listener_config lc = {.conninfo = conninfo,
                                .channel = SC_MEDIA_CHANNEL,
                                .what = "media cache",
                                .app_name = "staccato-media-cache",
                                .connect_timeout_ms = connect_timeout_ms,
                                .heartbeat_ms = heartbeat_ms};
    c->listener = sc_pg_listener_new(loop, &lc, on_event, c);
    return c;
}

/* Whether entries may be used and stored: only while changes are heard of. */
static bool trusted(sc_media_cache *c)
{
    if (sc_pg_listener_ready(c->listener))
        return true;
    if (c->count)
        sc_media_cache_clear(c);
    return false;
}

const sc_media_facts *sc_media_cache_get(sc_media_cache *c, sc_media_kind kind, sc_slice id)
{
    if (!c || !trusted(c))
        return NULL;
    uint32_t h = hash_key(kind, id);
    entry **slot = slot_of(c, kind, id, h);
    entry *e = *slot;
    if (e && e->expires_ms <= uv_now(c->loop)) {
        drop_at(c, slot);
        e = NULL;
    }
    if (!e) {
        c->misses++;
        return NULL;
    }
    c->hits++;
    if (c->lru_head != e) {
        lru_unlink(c, e);
        lru_push(c, e);
    }
    return &e->facts;
}

uint64_t sc_media_cache_generation(const sc_media_cache *c) { return c ? c->generation : 0; }

static char *dup_or_null(const char *s) { return s ? sc_strdup(s) : NULL; }

void sc_media_cache_put(sc_media_cache *c, uint64_t generation, sc_media_kind kind, sc_slice id,
                        const sc_media_facts *facts)
{
    if (!c || generation != c->generation || !trusted(c) || id.len == 0)
        return;
    uint32_t h = hash_key(kind, id);
    entry **slot = slot_of(c, kind, id, h);
    if (*slot)
        drop_at(c, slot);
    if (c->count >= c->max_entries)
        drop(c, c->lru_tail);
    entry *e = sc_calloc(sizeof(*e) + id.len + 1);
    e->hash = h;
    e->kind = kind;
    e->expires_ms = uv_now(c->loop) + c->ttl_ms;
    e->idlen = id.len;
    memcpy(e->id, id.ptr, id.len);
    e->facts = *facts;
    e->facts.owner_id = dup_or_null(facts->owner_id);
    e->facts.path = dup_or_null(facts->path);
    e->facts.mime = dup_or_null(facts->mime);
    e->facts.file = NULL;
    e->facts.size = 0;
    /* The bucket chain was walked to its end above (no entry of this key is left): append there. */
    *slot_of(c, kind, id, h) = e;
    lru_push(c, e);
    c->count++;
}

void sc_media_cache_attach(sc_media_cache *c, sc_media_kind kind, sc_slice id, const char *sha256, sc_file *f,
                           uint64_t size)
{
    if (!c)
        return;
    entry *e = *slot_of(c, kind, id, hash_key(kind, id));
    if (!e || e->facts.file || !e->facts.has_media || strcmp(e->facts.sha256, sha256) != 0 ||
        c->files >= c->max_files)
        return;
    sc_file_ref(f);
    e->facts.file = f;
    e->facts.size = size;
    c->files++;
}

sc_media_cache_stats sc_media_cache_get_stats(const sc_media_cache *c)
{
    sc_media_cache_stats s = {0};
    if (c) {
        s.hits = c->hits;
        s.misses = c->misses;
        s.notifications = c->notifications;
        s.entries = c->count;
        s.files = c->files;
    }
    return s;
}

static void on_listener_closed(void *data)
{
    sc_media_cache *c = data;
    void (*cb)(void *) = c->on_closed;
    void *cb_data = c->closed_data;
    free(c->buckets);
    free(c);
    if (cb)
        cb(cb_data);
}

void sc_media_cache_close(sc_media_cache *c, void (*on_closed)(void *data), void *data)
{
    if (!c) {
        if (on_closed)
            on_closed(data);
        return;
    }
    sc_media_cache_clear(c);
    c->on_closed = on_closed;
    c->closed_data = data;
    sc_pg_listener_close(c->listener, on_listener_closed, c);
}
