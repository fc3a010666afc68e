#include "net/peers.h"

#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "core/random.h"

#define MIN_CAP 64

/* A keyed mix of the two halves of the address (the finaliser of MurmurHash3 over each, seeded). */
static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

static size_t slot_of(const sc_peer_table *t, const uint8_t addr[16])
{
    uint64_t hi, lo;
    memcpy(&hi, addr, 8);
    memcpy(&lo, addr + 8, 8);
    return (size_t)(mix(mix(hi ^ t->seed[0]) ^ lo ^ t->seed[1]) & (t->cap - 1));
}

/* The slot holding addr, or the free slot where it would go. */
static sc_peer_slot *find(const sc_peer_table *t, const uint8_t addr[16])
{
    size_t i = slot_of(t, addr);
    for (;;) {
        sc_peer_slot *s = &t->slots[i];
        if (s->count == 0 || memcmp(s->addr, addr, 16) == 0)
            return s;
        i = (i + 1) & (t->cap - 1);
    }
}

static void grow(sc_peer_table *t)
{
    sc_peer_slot *old = t->slots;
    size_t old_cap = t->cap;
    if (old_cap == 0)
        sc_random_bytes(t->seed, sizeof(t->seed));
    t->cap = old_cap ? old_cap * 2 : MIN_CAP;
    t->slots = sc_calloc(t->cap * sizeof(*t->slots));
    for (size_t i = 0; i < old_cap; i++)
        if (old[i].count)
            *find(t, old[i].addr) = old[i];
    free(old);
}

bool sc_peer_table_take(sc_peer_table *t, const uint8_t addr[16], uint32_t cap)
{
    if ((t->used + 1) * 2 > t->cap)
        grow(t);
    sc_peer_slot *s = find(t, addr);
    if (s->count >= cap)
        return false;
    if (s->count == 0) {
        memcpy(s->addr, addr, 16);
        t->used++;
    }
    s->count++;
    return true;
}

uint32_t sc_peer_table_count(const sc_peer_table *t, const uint8_t addr[16])
{
    return t->cap ? find(t, addr)->count : 0;
}

void sc_peer_table_release(sc_peer_table *t, const uint8_t addr[16])
{
    if (!t->cap)
        return;
    sc_peer_slot *s = find(t, addr);
    if (s->count == 0 || --s->count > 0)
        return;
    t->used--;
    /* Backward-shift deletion: the entries after the hole that could live in it (their home slot is not between
     * the hole and them) move up, so that every lookup still finds its entry before a free slot. */
    size_t hole = (size_t)(s - t->slots);
    size_t i = hole;
    for (;;) {
        i = (i + 1) & (t->cap - 1);
        sc_peer_slot *next = &t->slots[i];
        if (next->count == 0)
            break;
        size_t home = slot_of(t, next->addr);
        bool stays = hole <= i ? (hole < home && home <= i) : (hole < home || home <= i);
        if (stays)
            continue;
        t->slots[hole] = *next;
        next->count = 0;
        hole = i;
    }
    t->slots[hole].count = 0;
}

void sc_peer_table_free(sc_peer_table *t)
{
    free(t->slots);
    t->slots = NULL;
    t->cap = t->used = 0;
}
