#include "core/arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SC_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define SC_ASAN 1
#endif
#ifdef SC_ASAN
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

struct sc_arena_block {
    sc_arena_block *next;
    size_t size; /* usable bytes after the header */
    _Alignas(16) char data[];
};

#define FREE_LIST_MAX 4096
static sc_arena_block *free_list;
static size_t free_count;

static sc_arena_block *block_get(size_t size)
{
    if (size <= SC_ARENA_BLOCK_SIZE && free_list) {
        sc_arena_block *b = free_list;
        free_list = b->next;
        free_count--;
        UNPOISON(b->data, b->size);
        return b;
    }
    if (size < SC_ARENA_BLOCK_SIZE)
        size = SC_ARENA_BLOCK_SIZE;
    sc_arena_block *b = sc_alloc(sizeof(*b) + size);
    b->size = size;
    return b;
}

static void block_put(sc_arena_block *b)
{
    if (b->size == SC_ARENA_BLOCK_SIZE && free_count < FREE_LIST_MAX) {
        POISON(b->data, b->size);
        b->next = free_list;
        free_list = b;
        free_count++;
    } else {
        free(b);
    }
}

void *sc_arena_alloc(sc_arena *a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    if (n == 0)
        n = 16;
    if ((size_t)(a->end - a->pos) < n) {
        sc_arena_block *b = block_get(n);
        if (a->head && n > SC_ARENA_BLOCK_SIZE / 2) {
            /* A large allocation gets its own block behind the current one, so the current block keeps serving. */
            b->next = a->head->next;
            a->head->next = b;
            return b->data;
        }
        b->next = a->head;
        a->head = b;
        a->pos = b->data;
        a->end = b->data + b->size;
    }
    void *p = a->pos;
    a->pos += n;
    return p;
}

char *sc_arena_strndup(sc_arena *a, const char *s, size_t n)
{
    char *p = sc_arena_alloc(a, n + 1);
    if (n)
        memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

struct sc_arena_deferred {
    sc_arena_deferred *next;
    void (*fn)(void *data);
    void *data;
};

void sc_arena_defer(sc_arena *a, void (*fn)(void *data), void *data)
{
    sc_arena_deferred *d = sc_arena_alloc(a, sizeof(*d));
    d->fn = fn;
    d->data = data;
    d->next = a->defers;
    a->defers = d;
}

void sc_arena_reset(sc_arena *a)
{
    /* A callback may allocate from the arena (nothing stops it); those callbacks are taken from the list first. */
    while (a->defers) {
        sc_arena_deferred *d = a->defers;
        a->defers = d->next;
        d->fn(d->data);
    }
    sc_arena_block *b = a->head;
    while (b) {
        sc_arena_block *next = b->next;
        block_put(b);
        b = next;
    }
    a->head = NULL;
    a->pos = a->end = NULL;
}

void sc_arena_pool_drain(void)
{
    while (free_list) {
        sc_arena_block *b = free_list;
        UNPOISON(b->data, b->size);
        free_list = b->next;
        free(b);
    }
    free_count = 0;
}
