/* Base64url without padding (core/base64.c): the RFC 4648 section 10 vectors, the URL-safe alphabet of section 5,
 * every length around a group of three, binary round trips, and the inputs the decoder refuses (characters of
 * other alphabets, padding, impossible lengths, non-canonical trailing bits). */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "core/base64.h"
#include "core/buf.h"

/* The encoding of n bytes as a C string (in a static buffer). */
static const char *encode(const void *data, size_t n)
{
    static char out[256];
    sc_buf b = {0};
    sc_base64url_encode(&b, data, n);
    snprintf(out, sizeof(out), "%.*s", (int)b.len, b.ptr ? b.ptr : "");
    sc_buf_free(&b);
    return out;
}

/* Decodes text; returns the length (or -1) and leaves the bytes in out. */
static long decode(const char *text, unsigned char *out) { return sc_base64url_decode(text, strlen(text), out); }

static void test_rfc4648_vectors(void)
{
    /* Section 10, without the padding that the URL form leaves out. */
    static const struct {
        const char *plain, *encoded;
    } vectors[] = {
        {"", ""},           {"f", "Zg"},          {"fo", "Zm8"},          {"foo", "Zm9v"},
        {"foob", "Zm9vYg"}, {"fooba", "Zm9vYmE"}, {"foobar", "Zm9vYmFy"},
    };
    for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
        CHECK_EQ_STR(encode(vectors[i].plain, strlen(vectors[i].plain)), vectors[i].encoded);
        unsigned char out[16];
        long n = decode(vectors[i].encoded, out);
        CHECK_EQ_INT(n, (long)strlen(vectors[i].plain));
        if (n >= 0)
            CHECK_EQ_MEM((const char *)out, (size_t)n, vectors[i].plain, strlen(vectors[i].plain));
    }
}

static void test_url_safe_alphabet(void)
{
    /* 0xfb 0xff: "+/8=" in the standard alphabet, "-_8" here. */
    static const unsigned char high[] = {0xfb, 0xff};
    CHECK_EQ_STR(encode(high, sizeof(high)), "-_8");
    static const unsigned char ones[] = {0xff, 0xff, 0xff};
    CHECK_EQ_STR(encode(ones, sizeof(ones)), "____");
    static const unsigned char minus[] = {0xf8, 0x00, 0x00};
    CHECK_EQ_STR(encode(minus, sizeof(minus)), "-AAA");
    static const unsigned char zeros[] = {0, 0, 0};
    CHECK_EQ_STR(encode(zeros, sizeof(zeros)), "AAAA");

    /* Every 6-bit value once: the whole alphabet in order, and back. */
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    unsigned char bytes[48];
    long n = decode(alphabet, bytes);
    CHECK_EQ_INT(n, 48);
    CHECK_EQ_STR(encode(bytes, 48), alphabet);

    unsigned char out[4];
    CHECK_EQ_INT(decode("-_8", out), 2);
    CHECK(out[0] == 0xfb && out[1] == 0xff);
}

static void test_round_trips(void)
{
    unsigned char data[64], back[64];
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (unsigned char)(i * 37 + 11);
    for (size_t n = 0; n <= sizeof(data); n++) {
        const char *text = encode(data, n);
        /* 4 characters per 3 bytes, 2 or 3 for the last one or two. */
        CHECK_EQ_UINT(strlen(text), n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0));
        memset(back, 0xaa, sizeof(back));
        CHECK_EQ_INT(decode(text, back), (long)n);
        CHECK(memcmp(back, data, n) == 0);
    }
    /* Appending keeps what the buffer held. */
    sc_buf b = {0};
    sc_buf_append_str(&b, "x.");
    sc_base64url_encode(&b, "foo", 3);
    CHECK_EQ_SLICE(b, "x.Zm9v");
    sc_buf_free(&b);
}

static void test_invalid_input(void)
{
    static const char *const refused[] = {
        "Zg==",         /* padding */
        "Zm8=",         /* padding */
        "Zg=",          /* padding */
        "+/8",          /* the standard alphabet's 62 and 63 */
        "Zm9v/w",       /* ... inside otherwise valid text */
        "Z",            /* one character cannot end a group */
        "Zm9vY",        /* 4n + 1 characters */
        "Zh",           /* trailing bits that are not zero: no encoder writes this */
        "Zm9",          /* ... after two bytes */
        "Zm 9v",        /* whitespace */
        "Zm9v\n",       /* a line break */
        "Zm.v",         /* the JWT separator */
        "Zm9v\xc3\xa9", /* beyond ASCII */
    };
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        unsigned char out[16];
        if (CHECK_EQ_INT(decode(refused[i], out), -1) == false)
            fprintf(stderr, "  input %s\n", refused[i]);
    }
    /* A NUL inside the given length is a character outside the alphabet, not the end. */
    unsigned char out[8];
    CHECK_EQ_INT(sc_base64url_decode("Zm\0v", 4, out), -1);
    /* Only the given length is read. */
    CHECK_EQ_INT(sc_base64url_decode("Zm9v!!!!", 4, out), 3);
    CHECK_EQ_INT(sc_base64url_decode("Zm9vYmFy", 0, out), 0);
}

int main(void)
{
    test_rfc4648_vectors();
    test_url_safe_alphabet();
    test_round_trips();
    test_invalid_input();
    return check_report();
}
