/* Where uploaded media goes: a content-addressed object store behind a small interface, so that an object-store
 * backend can be added beside the local-disk one (storage/local.c) without touching the handlers.
 *
 * Objects are named by their key, the lowercase hex SHA-256 of their bytes, so identical uploads share one
 * object. An upload runs in steps, each answered by an event on the loop (never from inside the call that asked
 * for it):
 *
 *     begin -> write* -> seal -> commit -> (the caller records the key in the database) -> keep
 *                                       \-> abort at any point: nothing stays behind
 *
 * write copies the bytes and hashes them as they come; it returns SC_STORE_WAIT when more than a small buffer is
 * waiting for the disk, and on_drain says when to go on, so memory stays flat however large the upload. seal
 * flushes and fsyncs and reports the key and size, and a local file holding the bytes (to be probed before they
 * are committed). commit makes the object durable under its key; until keep, the store still holds a private copy
 * so that a concurrent release of the same key (the last row that used it went away just now) cannot leave the
 * new row pointing at nothing: keep puts the object back if it vanished.
 *
 * Deleting an object that may be shared goes through release, which asks the caller's reference check (the
 * database: does any row still name this key?) only after the object has been moved out of sight, and puts it
 * back when the answer is yes or unknown. An object is thus deleted only once nothing referenced it at a moment
 * when no new reference could still be relying on it. */
#ifndef SC_STORAGE_STORE_H
#define SC_STORAGE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Errors (docs/internals/errors.md, convention 1 with the system's table): every `err` and negative return of the
 * store is a negative errno value, as the file system reported it. On Linux libuv's UV_E* codes are these same
 * values, so compare with UV_ENOSPC, UV_EIO...; the one the handlers also look for that libuv has no name for is
 * -EDQUOT (a quota is full). sc_store_strerror gives the message of any of them. */
const char *sc_store_strerror(int err);

/* write: accepted, but the caller should stop until on_drain. A positive outcome, never an error. */
#define SC_STORE_WAIT 1

#define SC_STORE_KEY_LEN 64

typedef struct sc_store sc_store;
typedef struct sc_store_upload sc_store_upload;

/* What seal learned about the bytes. Valid during the event only (copy what you keep). */
typedef struct sc_store_info {
    char key[SC_STORE_KEY_LEN + 1]; /* lowercase hex SHA-256 */
    uint64_t size;
    const char *path; /* where the object will live, relative to the store (what the database records) */
    const char
        *local; /* a local file with the bytes, readable until the upload ends (NULL if the backend has none) */
} sc_store_info;

/* The answer of a reference check: three answers, each named. The values are fixed (a caller may still pass
 * 1, 0 or -1). */
typedef enum sc_store_ref {
    SC_STORE_REF_UNKNOWN = -1, /* the check could not be made: treated as referenced */
    SC_STORE_REF_NONE = 0,     /* nothing references the key: the object may go */
    SC_STORE_REF_USED = 1,     /* something references the key */
} sc_store_ref;
typedef void (*sc_store_ref_cb)(void *token, sc_store_ref answer);
/* Asks asynchronously (or at once) whether anything still references key; answers through cb(token, ...). */
typedef void (*sc_store_refcheck)(void *data, const char *key, sc_store_ref_cb cb, void *token);

/* Events of one upload, on the loop; err is 0 or a negative errno code (UV_ENOSPC, -EDQUOT..., see above). No
 * event comes after keep or abort. These callbacks carry a code, not a sentinel string (convention 2), because
 * the caller must tell a full disk (507) from the rest (500) and the code already says which. */
typedef struct sc_store_events {
    void (*on_drain)(void *data);          /* after write returned SC_STORE_WAIT: feed more */
    void (*on_error)(void *data, int err); /* a write failed before seal: abort the upload */
    void (*on_sealed)(void *data, int err, const sc_store_info *info);
    void (*on_committed)(void *data, int err);
} sc_store_events;

typedef struct sc_store_ops {
    sc_store_upload *(*begin)(sc_store *s, const sc_store_events *ev, void *data);
    int (*write)(sc_store_upload *u, const char *p, size_t n);
    void (*seal)(sc_store_upload *u);
    void (*commit)(sc_store_upload *u);
    void (*keep)(sc_store_upload *u);
    void (*abort)(sc_store_upload *u);
    void (*release)(sc_store *s, const char *key, void (*done)(void *data), void *data);
    void (*free)(sc_store *s);
} sc_store_ops;

struct sc_store {
    const sc_store_ops *ops;
};

struct sc_store_upload {
    sc_store *store;
};

/* Starts an upload; events go to ev with data. Never NULL (a failure to start shows up as on_error). */
static inline sc_store_upload *sc_store_begin(sc_store *s, const sc_store_events *ev, void *data)
{
    return s->ops->begin(s, ev, data);
}
/* Takes n bytes (copied). Returns 0, SC_STORE_WAIT, or a negative error already hit (the upload is dead). */
static inline int sc_store_write(sc_store_upload *u, const char *p, size_t n)
{
    return u->store->ops->write(u, p, n);
}
/* No more bytes: flush, fsync; then on_sealed. */
static inline void sc_store_seal(sc_store_upload *u) { u->store->ops->seal(u); }
/* After on_sealed: make the object durable under its key; then on_committed. */
static inline void sc_store_commit(sc_store_upload *u) { u->store->ops->commit(u); }
/* The key is recorded (the database committed): finish up. u is gone after this call. */
static inline void sc_store_keep(sc_store_upload *u) { u->store->ops->keep(u); }
/* Gives up at any step: whatever was written goes away (a committed object through release). u is gone after
 * this call; work in flight finishes in the background. */
static inline void sc_store_abort(sc_store_upload *u) { u->store->ops->abort(u); }
/* Deletes the object of key unless the reference check says it is (or may be) still used; done (may be NULL)
 * runs when that is settled. */
static inline void sc_store_release(sc_store *s, const char *key, void (*done)(void *data), void *data)
{
    s->ops->release(s, key, done, data);
}
static inline void sc_store_free(sc_store *s) { s->ops->free(s); }

/* Whether s is 64 lowercase hex digits. */
bool sc_store_valid_key(const char *s, size_t len);

#endif
