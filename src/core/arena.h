/* A bump allocator that owns everything a request allocates, released at once by sc_arena_reset().
 *
 * Blocks of the standard size come from a process-wide free list so that a busy connection does not call malloc
 * per request and an idle connection holds no blocks at all. Allocations larger than a block get a block of their
 * own. Under AddressSanitizer, memory handed back by reset is poisoned so that use after the request ends is
 * caught. */
#ifndef SC_CORE_ARENA_H
#define SC_CORE_ARENA_H

#include <stddef.h>

#include "core/slice.h"

typedef struct sc_arena_block sc_arena_block;
typedef struct sc_arena_deferred sc_arena_deferred;

typedef struct sc_arena {
    sc_arena_block *head;
    char *pos;
    char *end;
    sc_arena_deferred *defers; /* run by reset, newest first */
} sc_arena;

#define SC_ARENA_BLOCK_SIZE 8192

/* Returns n bytes aligned for any type; aborts on out-of-memory. */
void *sc_arena_alloc(sc_arena *a, size_t n);
/* Returns a NUL-terminated copy of the slice. */
char *sc_arena_strndup(sc_arena *a, const char *s, size_t n);
static inline sc_slice sc_arena_dup_slice(sc_arena *a, sc_slice s)
{
    return (sc_slice){sc_arena_strndup(a, s.ptr, s.len), s.len};
}
/* Registers fn(data) to run when the arena is reset, before its memory goes: for objects the arena's memory points
 * to but that other allocators own (a parsed JSON document). Callbacks run newest first. */
void sc_arena_defer(sc_arena *a, void (*fn)(void *data), void *data);
/* Runs the deferred callbacks, then releases every allocation; blocks go back to the free list. */
void sc_arena_reset(sc_arena *a);
/* Frees the free list (at shutdown, so that leak checkers see a clean heap). */
void sc_arena_pool_drain(void);

#endif
