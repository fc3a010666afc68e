/* A growable byte buffer with an optional upper bound on its length.
 *
 * Internal writers use the plain appenders, which abort on out-of-memory; code that appends bytes whose amount a
 * client controls uses the try_ variants, which refuse to grow past `limit` and return -1 so that the caller can
 * answer 413 instead of buffering without bound. */
#ifndef SC_CORE_BUF_H
#define SC_CORE_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "core/slice.h"

typedef struct sc_buf {
    char *ptr;
    size_t len;
    size_t cap;
    size_t limit; /* 0: no limit */
} sc_buf;

/* Ensures room for `extra` more bytes (aborts on out-of-memory). Returns the write position. */
char *sc_buf_reserve(sc_buf *b, size_t extra);
/* Ensures room for `extra` more bytes unless that would pass the limit; returns NULL then. */
char *sc_buf_try_reserve(sc_buf *b, size_t extra);

void sc_buf_append(sc_buf *b, const void *p, size_t n);
int sc_buf_try_append(sc_buf *b, const void *p, size_t n);
void sc_buf_printf(sc_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sc_buf_vprintf(sc_buf *b, const char *fmt, va_list ap);
void sc_buf_append_u64(sc_buf *b, uint64_t v);
void sc_buf_append_i64(sc_buf *b, int64_t v);

static inline void sc_buf_append_str(sc_buf *b, const char *s) { sc_buf_append(b, s, strlen(s)); }
static inline void sc_buf_append_slice(sc_buf *b, sc_slice s) { sc_buf_append(b, s.ptr, s.len); }
static inline void sc_buf_append_char(sc_buf *b, char c)
{
    *sc_buf_reserve(b, 1) = c;
    b->len++;
}
static inline sc_slice sc_buf_slice(const sc_buf *b) { return (sc_slice){b->ptr, b->len}; }

/* Drops the first n bytes, moving the rest to the front. */
void sc_buf_consume(sc_buf *b, size_t n);
/* Frees the storage; the buffer is empty and reusable afterwards (the limit is kept). */
void sc_buf_free(sc_buf *b);

/* Writes the decimal form of v into out (at least 21 bytes); returns the length. */
size_t sc_u64_to_str(uint64_t v, char *out);

#endif
