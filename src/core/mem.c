#include "core/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void die(size_t n, const char *file, int line)
{
    fprintf(stderr, "fatal: out of memory allocating %zu bytes at %s:%d\n", n, file, line);
    abort();
}

void *sc_mem_alloc_(size_t n, const char *file, int line)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        die(n, file, line);
    return p;
}

void *sc_mem_calloc_(size_t n, const char *file, int line)
{
    void *p = calloc(1, n ? n : 1);
    if (!p)
        die(n, file, line);
    return p;
}

void *sc_mem_realloc_(void *p, size_t n, const char *file, int line)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        die(n, file, line);
    return q;
}

char *sc_mem_strdup_(const char *s, const char *file, int line)
{
    size_t n = strlen(s) + 1;
    char *p = sc_mem_alloc_(n, file, line);
    memcpy(p, s, n);
    return p;
}
