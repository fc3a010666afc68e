/* IP addresses and CIDR lists, for trusted-proxy checks. */
#ifndef SC_NET_ADDR_H
#define SC_NET_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/slice.h"

typedef struct sc_cidr {
    uint8_t addr[16]; /* IPv4 as an IPv4-mapped IPv6 address */
    unsigned prefix;  /* 0..128 */
} sc_cidr;

typedef struct sc_cidr_list {
    sc_cidr *items;
    size_t n;
} sc_cidr_list;

/* Parses "10.0.0.0/8, 127.0.0.1, ::1" (empty: an empty list). Returns 0 or -1 with a message in err. */
int sc_cidr_list_parse(const char *s, sc_cidr_list *out, char *err, size_t errlen);
void sc_cidr_list_free(sc_cidr_list *l);
/* Parses an IPv4 or IPv6 address text into 16 bytes (IPv4-mapped for IPv4). Returns 0 or -1. */
int sc_addr_parse(sc_slice text, uint8_t out[16]);
bool sc_cidr_list_contains(const sc_cidr_list *l, const uint8_t addr[16]);
/* Formats a socket address (IPv4, IPv6, IPv4-mapped shown as IPv4) into out; returns the length. */
size_t sc_addr_format(const struct sockaddr *sa, char *out, size_t outlen);

#endif
