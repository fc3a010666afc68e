#include "core/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"

static void grow(sc_buf *b, size_t need)
{
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap = cap * 2 > cap ? cap * 2 : need;
    b->ptr = sc_realloc(b->ptr, cap);
    b->cap = cap;
}

/* Always returns a valid pointer, also for extra 0 on a buffer never written (no arithmetic on NULL). */
char *sc_buf_reserve(sc_buf *b, size_t extra)
{
    if (b->cap - b->len < extra || !b->ptr)
        grow(b, b->len + extra);
    return b->ptr + b->len;
}

char *sc_buf_try_reserve(sc_buf *b, size_t extra)
{
    if (extra > SIZE_MAX - b->len || (b->limit && b->len + extra > b->limit))
        return NULL;
    return sc_buf_reserve(b, extra);
}

void sc_buf_append(sc_buf *b, const void *p, size_t n)
{
    if (n == 0)
        return;
    memcpy(sc_buf_reserve(b, n), p, n);
    b->len += n;
}

int sc_buf_try_append(sc_buf *b, const void *p, size_t n)
{
    char *dst = sc_buf_try_reserve(b, n);
    if (!dst)
        return -1;
    if (n)
        memcpy(dst, p, n);
    b->len += n;
    return 0;
}

void sc_buf_vprintf(sc_buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    char *dst = sc_buf_reserve(b, 128);
    int n = vsnprintf(dst, b->cap - b->len, fmt, ap);
    if (n >= 0 && (size_t)n >= b->cap - b->len) {
        dst = sc_buf_reserve(b, (size_t)n + 1);
        n = vsnprintf(dst, b->cap - b->len, fmt, ap2);
    }
    va_end(ap2);
    if (n > 0)
        b->len += (size_t)n;
}

void sc_buf_printf(sc_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sc_buf_vprintf(b, fmt, ap);
    va_end(ap);
}

size_t sc_u64_to_str(uint64_t v, char *out)
{
    char tmp[21];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    return n;
}

void sc_buf_append_u64(sc_buf *b, uint64_t v)
{
    char *dst = sc_buf_reserve(b, 21);
    b->len += sc_u64_to_str(v, dst);
}

void sc_buf_append_i64(sc_buf *b, int64_t v)
{
    if (v < 0) {
        sc_buf_append_char(b, '-');
        sc_buf_append_u64(b, (uint64_t)0 - (uint64_t)v);
    } else {
        sc_buf_append_u64(b, (uint64_t)v);
    }
}

void sc_buf_consume(sc_buf *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove(b->ptr, b->ptr + n, b->len - n);
    b->len -= n;
}

void sc_buf_free(sc_buf *b)
{
    free(b->ptr);
    b->ptr = NULL;
    b->len = b->cap = 0;
}
