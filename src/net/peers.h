/* Open connections counted per peer address, for the per-address connection cap: a hash table of the server
 * keyed by the 16-byte address (IPv4 as IPv4-mapped IPv6), touched once when a connection opens and once when it
 * closes, never per request.
 *
 * Open addressing with linear probing and backward-shift deletion (no tombstones), a power-of-two size kept at
 * most half full, and a hash keyed by a random seed per table, so that a client choosing its addresses (an IPv6
 * /64 holds many) cannot line them up on one probe run. Addresses whose count falls to zero leave the table. */
#ifndef SC_NET_PEERS_H
#define SC_NET_PEERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct sc_peer_slot {
    uint8_t addr[16];
    uint32_t count; /* 0: the slot is free */
} sc_peer_slot;

typedef struct sc_peer_table {
    sc_peer_slot *slots;
    size_t cap, used; /* cap is 0 or a power of two */
    uint64_t seed[2];
} sc_peer_table;

/* Counts one more connection from addr unless it already has cap of them; returns whether it was counted. */
bool sc_peer_table_take(sc_peer_table *t, const uint8_t addr[16], uint32_t cap);
/* Counts one connection from addr less (one that sc_peer_table_take counted). */
void sc_peer_table_release(sc_peer_table *t, const uint8_t addr[16]);
/* The connections counted for addr. */
uint32_t sc_peer_table_count(const sc_peer_table *t, const uint8_t addr[16]);
/* Frees the table's memory (it may be used again afterwards, empty). */
void sc_peer_table_free(sc_peer_table *t);

#endif
