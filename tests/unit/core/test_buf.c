/* Growable buffers: append, printf, limits, consume, integer output. */
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>

#include "check.h"
#include "core/buf.h"
#include "core/slice.h"

static void test_buf_append(void)
{
    sc_buf b = {0};
    sc_buf_append_str(&b, "hello");
    sc_buf_append_char(&b, ' ');
    sc_buf_append_slice(&b, SC_SLICE_LIT("world"));
    sc_buf_append(&b, "ignored", 0);
    CHECK_EQ_MEM(b.ptr, b.len, "hello world", (size_t)11);
    CHECK(b.cap >= b.len);

    /* Growth across many reallocations keeps every byte. */
    sc_buf big = {0};
    for (int i = 0; i < 10000; i++) {
        char ch = (char)('a' + i % 26);
        sc_buf_append(&big, &ch, 1);
    }
    CHECK_EQ_UINT(big.len, 10000);
    CHECK(big.cap >= 10000);
    int bad = 0;
    for (int i = 0; i < 10000; i++)
        bad += big.ptr[i] != (char)('a' + i % 26);
    CHECK_EQ_INT(bad, 0);

    /* One append much larger than the current capacity. */
    char *chunk = malloc(100000);
    memset(chunk, 'z', 100000);
    sc_buf_append(&big, chunk, 100000);
    CHECK_EQ_UINT(big.len, 110000);
    CHECK(big.ptr[9999] == 'a' + 9999 % 26 && big.ptr[10000] == 'z' && big.ptr[109999] == 'z');
    free(chunk);

    /* reserve returns the write position and leaves len alone. */
    char *w = sc_buf_reserve(&b, 1000);
    CHECK(w == b.ptr + b.len);
    CHECK(b.cap - b.len >= 1000);
    CHECK_EQ_UINT(b.len, 11);

    sc_buf_free(&big);
    CHECK(big.ptr == NULL && big.len == 0 && big.cap == 0);
    sc_buf_append_str(&big, "again"); /* reusable after free */
    CHECK_EQ_MEM(big.ptr, big.len, "again", (size_t)5);
    sc_buf_free(&big);
    sc_buf_free(&b);
}

static void test_buf_printf(void)
{
    sc_buf b = {0};
    sc_buf_printf(&b, "%d-%s", 42, "x");
    CHECK_EQ_MEM(b.ptr, b.len, "42-x", (size_t)4);
    sc_buf_printf(&b, "%s", "");
    CHECK_EQ_UINT(b.len, 4);

    /* Output longer than the first reservation (128 bytes) and than the initial capacity (256 bytes). */
    char longstr[1001];
    memset(longstr, 'q', 1000);
    longstr[1000] = '\0';
    sc_buf_printf(&b, "[%s]", longstr);
    CHECK_EQ_UINT(b.len, 4 + 1002);
    CHECK(b.ptr[4] == '[' && b.ptr[5] == 'q' && b.ptr[1004] == 'q' && b.ptr[1005] == ']');
    CHECK(memcmp(b.ptr, "42-x", 4) == 0);

    /* Exactly filling the remaining room (n == room would need the NUL too). */
    sc_buf e = {0};
    sc_buf_reserve(&e, 1);
    size_t room = e.cap - e.len;
    char *fill = malloc(room + 1);
    memset(fill, 'f', room);
    fill[room] = '\0';
    sc_buf_printf(&e, "%s", fill);
    CHECK_EQ_UINT(e.len, room);
    CHECK(e.ptr[room - 1] == 'f');
    free(fill);
    sc_buf_free(&e);

    /* Many small printfs in a row. */
    sc_buf many = {0};
    for (int i = 0; i < 1000; i++)
        sc_buf_printf(&many, "%03d,", i);
    CHECK_EQ_UINT(many.len, 4000);
    CHECK(memcmp(many.ptr + 3996, "999,", 4) == 0);
    CHECK(memcmp(many.ptr + 2000, "500,", 4) == 0);
    sc_buf_free(&many);
    sc_buf_free(&b);
}

static void test_buf_try_append(void)
{
    sc_buf b = {.limit = 10};
    CHECK_EQ_INT(sc_buf_try_append(&b, "12345", 5), 0);
    CHECK_EQ_INT(sc_buf_try_append(&b, "6789", 4), 0);
    CHECK_EQ_INT(sc_buf_try_append(&b, "ab", 2), -1); /* 11 > 10 */
    CHECK_EQ_MEM(b.ptr, b.len, "123456789", (size_t)9);
    CHECK_EQ_INT(sc_buf_try_append(&b, "a", 1), 0); /* exactly at the limit */
    CHECK_EQ_UINT(b.len, 10);
    CHECK_EQ_INT(sc_buf_try_append(&b, "b", 1), -1);
    CHECK_EQ_INT(sc_buf_try_append(&b, "", 0), 0);
    CHECK_EQ_MEM(b.ptr, b.len, "123456789a", (size_t)10);
    CHECK(sc_buf_try_reserve(&b, 1) == NULL);
    CHECK(sc_buf_try_reserve(&b, SIZE_MAX) == NULL);

    /* After consume there is room again; free keeps the limit. */
    sc_buf_consume(&b, 4);
    CHECK_EQ_INT(sc_buf_try_append(&b, "wxyz", 4), 0);
    CHECK_EQ_INT(sc_buf_try_append(&b, "!", 1), -1);
    CHECK_EQ_MEM(b.ptr, b.len, "56789awxyz", (size_t)10);
    sc_buf_free(&b);
    CHECK_EQ_UINT(b.limit, 10);
    CHECK_EQ_INT(sc_buf_try_append(&b, "12345678901", 11), -1);
    CHECK(b.len == 0);
    sc_buf_free(&b);

    /* No limit: only the size_t arithmetic bounds it. */
    sc_buf u = {0};
    CHECK_EQ_INT(sc_buf_try_append(&u, "abc", 3), 0);
    CHECK(sc_buf_try_reserve(&u, SIZE_MAX - 1) == NULL); /* len + extra would overflow */
    CHECK_EQ_MEM(u.ptr, u.len, "abc", (size_t)3);
    sc_buf_free(&u);

    /* Above the initial capacity, within the limit. */
    sc_buf l = {.limit = 5000};
    char big[5000];
    memset(big, 'k', sizeof(big));
    CHECK_EQ_INT(sc_buf_try_append(&l, big, 4999), 0);
    CHECK_EQ_INT(sc_buf_try_append(&l, big, 2), -1);
    CHECK_EQ_INT(sc_buf_try_append(&l, big, 1), 0);
    CHECK_EQ_UINT(l.len, 5000);
    sc_buf_free(&l);
}

static void test_buf_consume(void)
{
    sc_buf b = {0};
    sc_buf_append_str(&b, "abcdefgh");
    sc_buf_consume(&b, 0);
    CHECK_EQ_MEM(b.ptr, b.len, "abcdefgh", (size_t)8);
    sc_buf_consume(&b, 3);
    CHECK_EQ_MEM(b.ptr, b.len, "defgh", (size_t)5);
    sc_buf_consume(&b, 4);
    CHECK_EQ_MEM(b.ptr, b.len, "h", (size_t)1);
    sc_buf_consume(&b, 1);
    CHECK_EQ_UINT(b.len, 0);
    sc_buf_append_str(&b, "xyz");
    sc_buf_consume(&b, 100); /* more than there is */
    CHECK_EQ_UINT(b.len, 0);
    sc_buf empty = {0};
    sc_buf_consume(&empty, 5);
    CHECK_EQ_UINT(empty.len, 0);
    sc_buf_free(&b);
}

/* Formats v with the buffer function and returns a pointer into a static copy (NUL-terminated). */
static const char *fmt_u64(uint64_t v)
{
    static char out[64];
    sc_buf b = {0};
    sc_buf_append_str(&b, "<");
    sc_buf_append_u64(&b, v);
    sc_buf_append_str(&b, ">");
    snprintf(out, sizeof(out), "%.*s", (int)b.len, b.ptr);
    sc_buf_free(&b);
    return out;
}

static const char *fmt_i64(int64_t v)
{
    static char out[64];
    sc_buf b = {0};
    sc_buf_append_str(&b, "<");
    sc_buf_append_i64(&b, v);
    sc_buf_append_str(&b, ">");
    snprintf(out, sizeof(out), "%.*s", (int)b.len, b.ptr);
    sc_buf_free(&b);
    return out;
}

static void test_integers(void)
{
    CHECK_EQ_STR(fmt_u64(0), "<0>");
    CHECK_EQ_STR(fmt_u64(7), "<7>");
    CHECK_EQ_STR(fmt_u64(10), "<10>");
    CHECK_EQ_STR(fmt_u64(1234567890), "<1234567890>");
    CHECK_EQ_STR(fmt_u64(UINT64_MAX), "<18446744073709551615>");
    CHECK_EQ_STR(fmt_u64(10000000000000000000ULL), "<10000000000000000000>");

    CHECK_EQ_STR(fmt_i64(0), "<0>");
    CHECK_EQ_STR(fmt_i64(-1), "<-1>");
    CHECK_EQ_STR(fmt_i64(42), "<42>");
    CHECK_EQ_STR(fmt_i64(-42), "<-42>");
    CHECK_EQ_STR(fmt_i64(INT64_MAX), "<9223372036854775807>");
    CHECK_EQ_STR(fmt_i64(INT64_MIN), "<-9223372036854775808>");
    CHECK_EQ_STR(fmt_i64(INT64_MIN + 1), "<-9223372036854775807>");

    char out[21];
    CHECK_EQ_MEM(out, sc_u64_to_str(UINT64_MAX, out), "18446744073709551615", (size_t)20);
    CHECK_EQ_MEM(out, sc_u64_to_str(0, out), "0", (size_t)1);
    CHECK_EQ_MEM(out, sc_u64_to_str(100, out), "100", (size_t)3);

    /* Integers appended many times grow the buffer correctly (each append reserves 21 bytes). */
    sc_buf b = {0};
    for (int i = 0; i < 100; i++) {
        sc_buf_append_u64(&b, UINT64_MAX);
        sc_buf_append_char(&b, ',');
    }
    CHECK_EQ_UINT(b.len, 100 * 21);
    CHECK(memcmp(b.ptr + 99 * 21, "18446744073709551615,", 21) == 0);
    sc_buf_free(&b);
}

int main(void)
{
    test_buf_append();
    test_buf_printf();
    test_buf_try_append();
    test_buf_consume();
    test_integers();
    return check_report();
}
