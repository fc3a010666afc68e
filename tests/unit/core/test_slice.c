/* Slices: integer parsing with a maximum, trim, find, and comparison. */
#include <limits.h>

#include "check.h"
#include "core/slice.h"

/* Parses text with the given max; returns the result code and stores the value (or a sentinel) in *out. */
static int to_u64(const char *text, unsigned long long max, unsigned long long *out)
{
    *out = 777;
    return sc_slice_to_u64(sc_slice_cstr(text), max, out);
}

static void test_to_u64(void)
{
    unsigned long long v;

    CHECK_EQ_INT(to_u64("0", ULLONG_MAX, &v), 0);
    CHECK_EQ_UINT(v, 0);
    CHECK_EQ_INT(to_u64("42", ULLONG_MAX, &v), 0);
    CHECK_EQ_UINT(v, 42);
    CHECK_EQ_INT(to_u64("000123", ULLONG_MAX, &v), 0);
    CHECK_EQ_UINT(v, 123);

    /* The largest value that fits, and one past it. */
    CHECK_EQ_INT(to_u64("18446744073709551615", ULLONG_MAX, &v), 0);
    CHECK_EQ_UINT(v, 18446744073709551615ULL);
    CHECK_EQ_INT(to_u64("18446744073709551616", ULLONG_MAX, &v), -1);
    CHECK_EQ_UINT(v, 777); /* untouched on failure */
    CHECK_EQ_INT(to_u64("18446744073709551620", ULLONG_MAX, &v), -1);
    CHECK_EQ_INT(to_u64("99999999999999999999", ULLONG_MAX, &v), -1);
    CHECK_EQ_INT(to_u64("184467440737095516150", ULLONG_MAX, &v), -1);
    CHECK_EQ_INT(to_u64("0000000000000000000018446744073709551615", ULLONG_MAX, &v), 0);
    CHECK_EQ_UINT(v, ULLONG_MAX);

    /* A caller-given max: inclusive, and exceeded by one. */
    CHECK_EQ_INT(to_u64("65535", 65535, &v), 0);
    CHECK_EQ_UINT(v, 65535);
    CHECK_EQ_INT(to_u64("65536", 65535, &v), -1);
    CHECK_EQ_INT(to_u64("655350", 65535, &v), -1);
    CHECK_EQ_INT(to_u64("32", 32, &v), 0);
    CHECK_EQ_INT(to_u64("33", 32, &v), -1);
    CHECK_EQ_INT(to_u64("10", 9, &v), -1);
    CHECK_EQ_INT(to_u64("9", 9, &v), 0);
    CHECK_EQ_UINT(v, 9);
    CHECK_EQ_INT(to_u64("0", 0, &v), 0);
    CHECK_EQ_UINT(v, 0);

    /* A single digit above a max below 10: max - digit must not wrap around. */
    CHECK_EQ_INT(to_u64("7", 5, &v), -1);
    CHECK_EQ_INT(to_u64("1", 0, &v), -1);
    CHECK_EQ_INT(to_u64("007", 5, &v), -1);

    /* Not a whole unsigned decimal number. */
    CHECK_EQ_INT(to_u64("", ULLONG_MAX, &v), -1);
    CHECK_EQ_INT(to_u64("-1", ULLONG_MAX, &v), -1);
    CHECK_EQ_INT(to_u64("+1", ULLONG_MAX, &v), -1);
    CHECK_EQ_INT(to_u64(" 1", ULLONG_MAX, &v), -1);
    CHECK_EQ_INT(to_u64("1 ", ULLONG_MAX, &v), -1);
    CHECK_EQ_INT(to_u64("12a", ULLONG_MAX, &v), -1);
    CHECK_EQ_INT(to_u64("0x10", ULLONG_MAX, &v), -1);
    CHECK_EQ_INT(to_u64("1.5", ULLONG_MAX, &v), -1);
    CHECK_EQ_INT(to_u64("/", ULLONG_MAX, &v), -1); /* '0' - 1 */
    CHECK_EQ_INT(to_u64(":", ULLONG_MAX, &v), -1); /* '9' + 1 */
    CHECK_EQ_INT(to_u64("\xb0", ULLONG_MAX, &v), -1);

    /* Only the slice's bytes count, not what follows them. */
    const char *text = "12345";
    CHECK_EQ_INT(sc_slice_to_u64((sc_slice){text, 3}, ULLONG_MAX, &v), 0);
    CHECK_EQ_UINT(v, 123);
    CHECK_EQ_INT(sc_slice_to_u64(SC_SLICE_NULL, ULLONG_MAX, &v), -1);
}

static void test_trim_find(void)
{
    CHECK_EQ_SLICE(sc_slice_trim(SC_SLICE_LIT("  a b \t")), "a b");
    CHECK_EQ_SLICE(sc_slice_trim(SC_SLICE_LIT("\t\tx")), "x");
    CHECK_EQ_SLICE(sc_slice_trim(SC_SLICE_LIT("x  ")), "x");
    CHECK_EQ_SLICE(sc_slice_trim(SC_SLICE_LIT("   ")), "");
    CHECK_EQ_INT(sc_slice_trim(SC_SLICE_LIT(" \t ")).len, 0);
    CHECK_EQ_INT(sc_slice_trim(SC_SLICE_NULL).len, 0);
    /* Only spaces and tabs are trimmed. */
    CHECK_EQ_SLICE(sc_slice_trim(SC_SLICE_LIT("\r\nx\n")), "\r\nx\n");
    sc_slice s = SC_SLICE_LIT("  mid  ");
    CHECK(sc_slice_trim(s).ptr == s.ptr + 2);

    CHECK_EQ_INT(sc_slice_find(SC_SLICE_LIT("a=b=c"), '='), 1);
    CHECK_EQ_INT(sc_slice_find(SC_SLICE_LIT("abc"), 'a'), 0);
    CHECK_EQ_INT(sc_slice_find(SC_SLICE_LIT("abc"), 'c'), 2);
    CHECK_EQ_INT(sc_slice_find(SC_SLICE_LIT("abc"), 'x'), -1);
    CHECK_EQ_INT(sc_slice_find(SC_SLICE_NULL, 'x'), -1);
    CHECK_EQ_INT(sc_slice_find((sc_slice){"abc", 2}, 'c'), -1); /* beyond the slice */
    CHECK_EQ_INT(sc_slice_find((sc_slice){"a\0b", 3}, 'b'), 2);

    CHECK(sc_slice_eq(SC_SLICE_LIT("abc"), sc_slice_cstr("abc")));
    CHECK(!sc_slice_eq(SC_SLICE_LIT("abc"), SC_SLICE_LIT("abd")));
    CHECK(!sc_slice_eq(SC_SLICE_LIT("abc"), SC_SLICE_LIT("ab")));
    CHECK(sc_slice_eq(SC_SLICE_NULL, SC_SLICE_LIT("")));
    CHECK(sc_slice_eq_nocase(SC_SLICE_LIT("Content-Length"), SC_SLICE_LIT("content-LENGTH")));
    CHECK(!sc_slice_eq_nocase(SC_SLICE_LIT("Content-Length"), SC_SLICE_LIT("content-lengthx")));
    CHECK_EQ_INT(sc_slice_cstr(NULL).len, 0);
}

/* A comma list: items trimmed, empty ones kept as empty, nothing after the last separator. */
static void test_next_item(void)
{
    sc_slice rest = sc_slice_cstr(" a , b,,c ,");
    const char *want[] = {"a", "b", "", "c"};
    size_t n = 0;
    while (rest.len) {
        sc_slice item = sc_slice_next_item(&rest, ',');
        if (CHECK(n < 4))
            CHECK_EQ_SLICE(item, want[n]);
        n++;
    }
    CHECK_EQ_UINT(n, 4);
    rest = sc_slice_cstr("only");
    sc_slice only = sc_slice_next_item(&rest, ',');
    CHECK_EQ_SLICE(only, "only");
    CHECK_EQ_UINT(rest.len, 0);
}

int main(void)
{
    test_to_u64();
    test_trim_find();
    test_next_item();
    return check_report();
}
