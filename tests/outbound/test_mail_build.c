/* The e-mail message builder on its own (no peers): base64 vectors and line lengths, the fixed headers, subject
 * encoding within the line limit and without cutting UTF-8 characters, line-break normalisation, and the checks
 * that keep caller strings from adding header lines. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "outbound/mail.h"

static char *build(const sc_mail *m)
{
    sc_buf b = {0};
    sc_outbound_mail_build(&b, m, 0, "id1@example.org", "BOUNDARY_0123456789");
    sc_buf_append_char(&b, '\0');
    return b.ptr;
}

static size_t max_line(const char *s)
{
    size_t max = 0;
    while (*s) {
        const char *e = strstr(s, "\r\n");
        size_t n = e ? (size_t)(e - s) : strlen(s);
        if (n > max)
            max = n;
        s += n + (e ? 2 : 0);
    }
    return max;
}

static bool bare_lf(const char *s)
{
    for (const char *p = s; *p; p++)
        if (*p == '\n' && (p == s || p[-1] != '\r'))
            return true;
    return false;
}

static void test_base64(void)
{
    const char *in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    const char *out[] = {"", "Zg==\r\n", "Zm8=\r\n", "Zm9v\r\n", "Zm9vYg==\r\n", "Zm9vYmE=\r\n", "Zm9vYmFy\r\n"};
    for (int i = 0; i < 7; i++) {
        sc_buf b = {0};
        sc_outbound_base64_lines(&b, in[i], strlen(in[i]));
        sc_buf_append_char(&b, '\0');
        CHECK(strcmp(b.ptr, out[i]) == 0);
        sc_buf_free(&b);
    }
    unsigned char data[1000];
    for (int i = 0; i < 1000; i++)
        data[i] = (unsigned char)(i * 7);
    sc_buf b = {0};
    sc_outbound_base64_lines(&b, data, sizeof(data));
    sc_buf_append_char(&b, '\0');
    CHECK(max_line(b.ptr) == 76);
    CHECK(strlen(b.ptr) == 1336 + 18 * 2); /* 1000 bytes: 1336 characters in 18 lines */
    sc_buf_free(&b);
}

static void test_headers_and_parts(void)
{
    sc_mail m = {"Staccato <noreply@example.org>",
                 "a@example.org",
                 "Short subject",
                 "one\ntwo\r\nthree\rfour",
                 NULL,
                 NULL,
                 NULL,
                 0,
                 NULL};
    char *msg = build(&m);
    CHECK(strncmp(msg, "Date: Thu, 1 Jan 1970 00:00:00 +0000\r\n", 38) == 0);
    CHECK(strstr(msg, "\r\nFrom: Staccato <noreply@example.org>\r\n") != NULL);
    CHECK(strstr(msg, "\r\nTo: a@example.org\r\n") != NULL);
    CHECK(strstr(msg, "\r\nSubject: Short subject\r\n") != NULL);
    CHECK(strstr(msg, "\r\nMessage-ID: <id1@example.org>\r\n") != NULL);
    CHECK(strstr(msg, "\r\nMIME-Version: 1.0\r\n") != NULL);
    CHECK(strstr(msg, "Content-Transfer-Encoding: 7bit\r\n\r\none\r\ntwo\r\nthree\r\nfour\r\n") != NULL);
    CHECK(!strstr(msg, "multipart"));
    CHECK(!bare_lf(msg));
    free(msg);

    m.attachment_name = "r\xc3\xa9sum\xc3\xa9 \"x\".json";
    m.attachment_type = "application/json";
    m.attachment = "{\"a\":1}";
    m.attachment_len = 7;
    m.text = "caf\xc3\xa9";
    msg = build(&m);
    CHECK(strstr(msg, "Content-Type: multipart/mixed; boundary=\"BOUNDARY_0123456789\"\r\n") != NULL);
    CHECK(strstr(msg, "Content-Transfer-Encoding: base64\r\n\r\nY2Fmw6k=\r\n") != NULL); /* non-ASCII text */
    CHECK(strstr(msg, "filename*=UTF-8''r%C3%A9sum%C3%A9%20%22x%22.json") != NULL);
    CHECK(strstr(msg, "\r\n\r\neyJhIjoxfQ==\r\n\r\n--BOUNDARY_0123456789--\r\n") != NULL);
    CHECK(max_line(msg) <= 78 && !bare_lf(msg));
    free(msg);
}

static void test_subject_encoding(void)
{
    /* 40 three-byte characters: the words must hold whole characters, so each decodes on its own. */
    char subject[200] = "";
    for (int i = 0; i < 40; i++)
        memcpy(subject + 3 * i, "\xe6\x97\xa5", 4); /* each copy ends with the string's NUL */
    sc_mail m = {"a@example.org", "b@example.org", subject, "x", NULL, NULL, NULL, 0, NULL};
    char *msg = build(&m);
    CHECK(strstr(msg, "Subject: =?UTF-8?B?") != NULL);
    CHECK(max_line(msg) <= 78);
    /* 39 bytes on the first line means 13 characters: 52 base64 characters, no padding. */
    const char *w = strstr(msg, "Subject: =?UTF-8?B?") + 19;
    CHECK(strchr(w, '?') - w == 52);
    /* a continuation word: 45 bytes, 15 characters */
    const char *second = strstr(w, "\r\n =?UTF-8?B?");
    CHECK(second && strchr(second + 13, '?') - (second + 13) == 60);
    free(msg);

    /* ASCII that looks like an encoded word, or is long, is encoded too; so is an empty subject left alone. */
    m.subject = "=?UTF-8?B?abc?=";
    msg = build(&m);
    CHECK(strstr(msg, "Subject: =?UTF-8?B?PT9VVEYtOD9CP2FiYz89?=\r\n") != NULL);
    free(msg);
    m.subject = "";
    msg = build(&m);
    CHECK(strstr(msg, "\r\nSubject:\r\n") != NULL);
    free(msg);
}

static void test_checks(void)
{
    sc_mail ok = {"Name <a@example.org>", "b@example.org", "s", "t", "f.json", "application/json", "{}", 2, NULL};
    CHECK(sc_outbound_mail_check(&ok) == 0);
    sc_mail m = ok;
    m.subject = "a\r\nBcc: c@example.org";
    CHECK(sc_outbound_mail_check(&m) != 0);
    m = ok;
    m.to = "b@example.org\r\nBcc: c@example.org";
    CHECK(sc_outbound_mail_check(&m) != 0);
    m = ok;
    m.to = "b@example.org, c@example.org";
    CHECK(sc_outbound_mail_check(&m) != 0);
    m = ok;
    m.from = "<a@example.org> <c@example.org>";
    CHECK(sc_outbound_mail_check(&m) != 0);
    m = ok;
    m.from = "nobody";
    CHECK(sc_outbound_mail_check(&m) != 0);
    m = ok;
    m.to = "J\xc3\xb6rg <j@example.org>";
    CHECK(sc_outbound_mail_check(&m) != 0);
    m = ok;
    m.attachment_type = "application/json\r\nX: y";
    CHECK(sc_outbound_mail_check(&m) != 0);
    m = ok;
    m.attachment_type = "json";
    CHECK(sc_outbound_mail_check(&m) != 0);
    m = ok;
    m.attachment_name = "a\nb";
    CHECK(sc_outbound_mail_check(&m) != 0);
    m = ok;
    m.attachment = NULL;
    CHECK(sc_outbound_mail_check(&m) != 0);
    m = ok;
    m.from = NULL;
    CHECK(sc_outbound_mail_check(&m) != 0);
    /* A Message-ID of our own: left@right with atext and dots, nothing that ends the header or the brackets. */
    m = ok;
    m.message_id = "staccato-job-42@example.org";
    CHECK(sc_outbound_mail_check(&m) == 0);
    const char *bad_ids[] = {"",
                             "no-at-sign",
                             "@example.org",
                             "left@",
                             "a@b@c",
                             "a b@example.org",
                             "a>@example.org",
                             "a@example.org\r\nBcc: x@example.org",
                             "a@[127.0.0.1]"};
    for (size_t i = 0; i < sizeof(bad_ids) / sizeof(bad_ids[0]); i++) {
        m.message_id = bad_ids[i];
        CHECK(sc_outbound_mail_check(&m) != 0);
    }

    char addr[64];
    CHECK(sc_outbound_mail_address("Name <a@example.org>", addr, sizeof(addr)) == 0 &&
          strcmp(addr, "a@example.org") == 0);
    CHECK(sc_outbound_mail_address("  a@example.org ", addr, sizeof(addr)) == 0 &&
          strcmp(addr, "a@example.org") == 0);
    CHECK(sc_outbound_mail_address("<a@example.org> trailing", addr, sizeof(addr)) != 0);
    CHECK(sc_outbound_mail_address("<>", addr, sizeof(addr)) != 0);
    CHECK(sc_outbound_mail_address("a@example.org", addr, 5) != 0);
}

int main(void)
{
    test_base64();
    test_headers_and_parts();
    test_subject_encoding();
    test_checks();
    return check_report();
}
