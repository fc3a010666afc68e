/* Randomness from the kernel (getrandom), for identifiers, salts and token ids. */
#ifndef SC_CORE_RANDOM_H
#define SC_CORE_RANDOM_H

#include <stddef.h>
#include <stdint.h>

/* Fills buf with n random bytes; aborts if the kernel cannot supply them (it always can after early boot). */
void sc_random_bytes(void *buf, size_t n);

/* A uniformly distributed number in [0, n) (0 when n is 0), for the jitter of retry delays: unlike rand(), it
 * differs between the forked workers of one server, so their reconnects do not fall into step. */
uint64_t sc_random_below(uint64_t n);

/* Writes "<prefix>-<16 url-safe characters>" (NUL-terminated) into out, which needs strlen(prefix) + 18 bytes. */
void sc_random_id(const char *prefix, char *out, size_t outlen);

#endif
