/* Allocation of internal sizes: failure aborts with file and line, because the server cannot continue
 * meaningfully without memory for its own bookkeeping. Sizes a client controls use bounded try_ calls instead. */
#ifndef SC_CORE_MEM_H
#define SC_CORE_MEM_H

#include <stddef.h>

void *sc_mem_alloc_(size_t n, const char *file, int line);
void *sc_mem_calloc_(size_t n, const char *file, int line);
void *sc_mem_realloc_(void *p, size_t n, const char *file, int line);
char *sc_mem_strdup_(const char *s, const char *file, int line);

#define sc_alloc(n) sc_mem_alloc_((n), __FILE__, __LINE__)
#define sc_calloc(n) sc_mem_calloc_((n), __FILE__, __LINE__)
#define sc_realloc(p, n) sc_mem_realloc_((p), (n), __FILE__, __LINE__)
#define sc_strdup(s) sc_mem_strdup_((s), __FILE__, __LINE__)

#endif
