#include "core/random.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

void sc_random_bytes(void *buf, size_t n)
{
    unsigned char *p = buf;
    while (n) {
        ssize_t r = getrandom(p, n, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "fatal: getrandom: %s\n", strerror(errno));
            abort();
        }
        p += r;
        n -= (size_t)r;
    }
}

uint64_t sc_random_below(uint64_t n)
{
    if (n == 0)
        return 0;
    /* Rejection sampling: values from the incomplete last stretch of n would make small results likelier. */
    uint64_t limit = UINT64_MAX - UINT64_MAX % n, v;
    do
        sc_random_bytes(&v, sizeof(v));
    while (v >= limit);
    return v % n;
}

void sc_random_id(const char *prefix, char *out, size_t outlen)
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    unsigned char raw[16];
    char tail[17];
    sc_random_bytes(raw, sizeof(raw));
    for (int i = 0; i < 16; i++)
        tail[i] = alphabet[raw[i] & 63];
    tail[16] = '\0';
    snprintf(out, outlen, "%s-%s", prefix, tail);
}
