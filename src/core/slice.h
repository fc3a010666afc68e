/* Slices: a pointer and a length, the one string type of the code base. */
#ifndef SC_CORE_SLICE_H
#define SC_CORE_SLICE_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>

typedef struct sc_slice {
    const char *ptr;
    size_t len;
} sc_slice;

#define SC_SLICE_LIT(s) ((sc_slice){(s), sizeof(s) - 1})
#define SC_SLICE_NULL ((sc_slice){NULL, 0})

/* Makes a slice of a NUL-terminated string (NULL gives the empty slice). */
static inline sc_slice sc_slice_cstr(const char *s) { return (sc_slice){s, s ? strlen(s) : 0}; }

/* True when both slices hold the same bytes. */
static inline bool sc_slice_eq(sc_slice a, sc_slice b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

/* True when both slices hold the same bytes, ASCII case folded. */
static inline bool sc_slice_eq_nocase(sc_slice a, sc_slice b)
{
    return a.len == b.len && (a.len == 0 || strncasecmp(a.ptr, b.ptr, a.len) == 0);
}

/* Parses an unsigned decimal integer that fills the whole slice, with an overflow check.
 * Returns 0 on success, -1 on an empty slice, a non-digit, or a value above max. */
int sc_slice_to_u64(sc_slice s, unsigned long long max, unsigned long long *out);

/* Removes leading and trailing spaces and tabs. */
sc_slice sc_slice_trim(sc_slice s);

/* Finds the first occurrence of c; returns its index or -1. */
static inline long sc_slice_find(sc_slice s, char c)
{
    const char *p = s.len ? memchr(s.ptr, c, s.len) : NULL;
    return p ? (long)(p - s.ptr) : -1;
}

/* Takes the next item of a list separated by sep off the front of *rest and returns it trimmed (maybe empty);
 * *rest becomes what follows the separator (empty after the last item). Loop: while (rest.len) { item = ...; }. */
static inline sc_slice sc_slice_next_item(sc_slice *rest, char sep)
{
    long at = sc_slice_find(*rest, sep);
    size_t n = at < 0 ? rest->len : (size_t)at;
    sc_slice item = sc_slice_trim((sc_slice){rest->ptr, n});
    *rest = at < 0 ? SC_SLICE_NULL : (sc_slice){rest->ptr + n + 1, rest->len - n - 1};
    return item;
}

#endif
