/* A minimal test harness for every C test (unit/, db/, outbound/): CHECK macros that count passes and failures and
 * print file:line for each failure, and check_report() for the last line of a test program ("N passed, N failed")
 * and its exit code.
 *
 *     int main(void)
 *     {
 *         CHECK_EQ_INT(1 + 1, 2);
 *         return check_report();
 *     }
 *
 * Every macro evaluates its arguments exactly once and returns whether the check passed, so a test can stop
 * early when later checks would only dereference garbage: `if (!CHECK(p != NULL)) return;`. */
#ifndef SC_TEST_CHECK_H
#define SC_TEST_CHECK_H

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static unsigned check_passed_, check_failed_;

static inline bool check_result_(bool ok, const char *file, int line, const char *expr)
{
    if (ok) {
        check_passed_++;
    } else {
        check_failed_++;
        fprintf(stderr, "%s:%d: FAILED: %s\n", file, line, expr);
    }
    return ok;
}

static inline bool check_int_(long long got, long long want, const char *file, int line, const char *expr)
{
    if (got == want) {
        check_passed_++;
        return true;
    }
    check_failed_++;
    fprintf(stderr, "%s:%d: FAILED: %s: got %lld, want %lld\n", file, line, expr, got, want);
    return false;
}

static inline bool check_uint_(unsigned long long got, unsigned long long want, const char *file, int line,
                               const char *expr)
{
    if (got == want) {
        check_passed_++;
        return true;
    }
    check_failed_++;
    fprintf(stderr, "%s:%d: FAILED: %s: got %llu, want %llu\n", file, line, expr, got, want);
    return false;
}

/* Compares n bytes; NULL equals only NULL. Failures print both sides (control bytes as \xNN). */
static inline void check_print_bytes_(const char *s, size_t n)
{
    if (!s) {
        fputs("NULL", stderr);
        return;
    }
    fputc('"', stderr);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\')
            fprintf(stderr, "\\x%02x", c);
        else
            fputc(c, stderr);
    }
    fputc('"', stderr);
}

static inline bool check_mem_(const char *got, size_t got_len, const char *want, size_t want_len, const char *file,
                              int line, const char *expr)
{
    bool ok = (!got && !want) ||
              (got && want && got_len == want_len && (got_len == 0 || memcmp(got, want, got_len) == 0));
    if (ok) {
        check_passed_++;
        return true;
    }
    check_failed_++;
    fprintf(stderr, "%s:%d: FAILED: %s:\n  got  ", file, line, expr);
    check_print_bytes_(got, got_len);
    fputs("\n  want ", stderr);
    check_print_bytes_(want, want_len);
    fputc('\n', stderr);
    return false;
}

static inline bool check_str_(const char *got, const char *want, const char *file, int line, const char *expr)
{
    return check_mem_(got, got ? strlen(got) : 0, want, want ? strlen(want) : 0, file, line, expr);
}

#define CHECK(cond) check_result_((cond) ? true : false, __FILE__, __LINE__, #cond)
#define CHECK_EQ_INT(got, want)                                                                                   \
    check_int_((long long)(got), (long long)(want), __FILE__, __LINE__, #got " == " #want)
#define CHECK_EQ_UINT(got, want)                                                                                  \
    check_uint_((unsigned long long)(got), (unsigned long long)(want), __FILE__, __LINE__, #got " == " #want)
#define CHECK_EQ_STR(got, want) check_str_((got), (want), __FILE__, __LINE__, #got " == " #want)
/* A buffer or slice (anything with .ptr and .len) against a C string. */
#define CHECK_EQ_SLICE(got, want)                                                                                 \
    check_str_slice_((got).ptr, (got).len, (want), __FILE__, __LINE__, #got " == " #want)
#define CHECK_EQ_MEM(got, got_len, want, want_len)                                                                \
    check_mem_((got), (got_len), (want), (want_len), __FILE__, __LINE__, #got " == " #want)

static inline bool check_str_slice_(const char *ptr, size_t len, const char *want, const char *file, int line,
                                    const char *expr)
{
    return check_mem_(ptr ? ptr : "", len, want, want ? strlen(want) : 0, file, line, expr);
}

/* Prints the summary line; returns the process exit code (1 when any check failed or none ran). */
static inline int check_report(void)
{
    printf("%u passed, %u failed\n", check_passed_, check_failed_);
    fflush(stdout);
    return check_failed_ || !check_passed_ ? 1 : 0;
}

#endif
