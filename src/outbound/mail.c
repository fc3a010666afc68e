/* The message builder for outbound e-mail. What it writes, for a mail with an attachment:
 *
 *   Date: Sat, 22 Nov 2025 10:00:00 +0000
 *   From: Staccato <noreply@example.org>
 *   To: someone@example.org
 *   Subject: =?UTF-8?B?...?=                        (plain when short printable ASCII; else RFC 2047 words)
 *   Message-ID: <id@example.org>
 *   MIME-Version: 1.0
 *   Content-Type: multipart/mixed; boundary="B"
 *
 *   --B
 *   Content-Type: text/plain; charset=utf-8
 *   Content-Transfer-Encoding: 7bit               (base64 when the text is not short-lined ASCII)
 *
 *   text, with every line break made CRLF
 *   --B
 *   Content-Type: application/json;
 *    name="report.json"                            (name*=UTF-8''... (RFC 2231) when not plain ASCII)
 *   Content-Disposition: attachment;
 *    filename="report.json"
 *   Content-Transfer-Encoding: base64
 *
 *   base64 in 76-character lines
 *   --B--
 *
 * Nothing a caller passes reaches a header unchecked: sc_outbound_mail_check refuses control characters, so a
 * value cannot end its header line and start another. */
#include "outbound/mail.h"

#include <stdbool.h>
#include <string.h>

#define MAX_LINE 998 /* RFC 5322 section 2.1.1 */
#define MAX_NAME_BYTES 255
#define SUBJECT_PLAIN_MAX 69 /* "Subject: " plus this stays within 78 characters */

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void base64(sc_buf *out, const unsigned char *p, size_t n)
{
    char *w = sc_buf_reserve(out, (n + 2) / 3 * 4);
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8 | p[i + 2];
        *w++ = B64[v >> 18];
        *w++ = B64[(v >> 12) & 63];
        *w++ = B64[(v >> 6) & 63];
        *w++ = B64[v & 63];
    }
    if (i < n) {
        unsigned v = (unsigned)p[i] << 16 | (i + 1 < n ? (unsigned)p[i + 1] << 8 : 0);
        *w++ = B64[v >> 18];
        *w++ = B64[(v >> 12) & 63];
        *w++ = i + 1 < n ? B64[(v >> 6) & 63] : '=';
        *w++ = '=';
    }
    out->len = (size_t)(w - out->ptr);
}

void sc_outbound_base64_lines(sc_buf *out, const void *data, size_t n)
{
    const unsigned char *p = data;
    for (size_t off = 0; off < n; off += 57) { /* 57 bytes make 76 characters */
        base64(out, p + off, n - off < 57 ? n - off : 57);
        sc_buf_append(out, "\r\n", 2);
    }
}

/* ---- checks ------------------------------------------------------------------------------------------------ */

static bool has_control(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return true;
    return false;
}

static bool printable_ascii(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
            return false;
    return true;
}

int sc_outbound_mail_address(const char *value, char *out, size_t outlen)
{
    const char *lt = strchr(value, '<');
    const char *start = value, *end = value + strlen(value);
    if (lt) {
        const char *gt = strchr(lt, '>');
        if (!gt || strchr(lt + 1, '<') || strchr(gt + 1, '>') || strchr(gt + 1, '<') ||
            gt[strspn(gt + 1, " ") + 1])
            return -1;
        start = lt + 1;
        end = gt;
    } else if (strchr(value, '>')) {
        return -1;
    }
    while (start < end && *start == ' ')
        start++;
    while (end > start && end[-1] == ' ')
        end--;
    size_t n = (size_t)(end - start);
    if (n == 0 || n >= outlen)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (start[i] == ' ' || start[i] == ',' || start[i] == '"' || start[i] == '\\')
            return -1;
    const char *at = memchr(start, '@', n);
    if (!at || at == start || at == end - 1)
        return -1;
    memcpy(out, start, n);
    out[n] = '\0';
    return 0;
}

static bool token_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strchr("!#$&-^_.+", c);
}

static bool valid_media_type(const char *t)
{
    const char *slash = strchr(t, '/');
    if (!slash || slash == t || !slash[1])
        return false;
    for (const char *p = t; *p; p++)
        if (p != slash && !token_char(*p))
            return false;
    return true;
}

/* "left@right" of RFC 5322's msg-id with dot-atom sides: atext and dots, one "@", nothing that could end the
 * header or the angle brackets around it. */
static bool valid_message_id(const char *id)
{
    size_t n = strlen(id), ats = 0;
    const char *at = strchr(id, '@');
    if (n == 0 || n > 250 || !at || at == id || !at[1])
        return false;
    for (const char *p = id; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '@')
            ats++;
        else if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                   strchr(".!#$%&'*+/=?^_`{|}~-", c)))
            return false;
    }
    return ats == 1;
}

int sc_outbound_mail_check(const sc_mail *m)
{
    char addr[320];
    if (!m->from || !m->to || !printable_ascii(m->from) || !printable_ascii(m->to) || strlen(m->from) > 500 ||
        strlen(m->to) > 500)
        return -1;
    if (sc_outbound_mail_address(m->from, addr, sizeof(addr)) != 0 ||
        sc_outbound_mail_address(m->to, addr, sizeof(addr)) != 0)
        return -1;
    if (m->subject && has_control(m->subject))
        return -1;
    if (m->message_id && !valid_message_id(m->message_id))
        return -1;
    if (m->attachment_name) {
        if (!*m->attachment_name || has_control(m->attachment_name) || strlen(m->attachment_name) > MAX_NAME_BYTES)
            return -1;
        if (m->attachment_type && !valid_media_type(m->attachment_type))
            return -1;
        if (m->attachment_len && !m->attachment)
            return -1;
    }
    return 0;
}

/* ---- headers ----------------------------------------------------------------------------------------------- */

static void append_date(sc_buf *out, time_t now)
{
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    struct tm tm;
    gmtime_r(&now, &tm);
    /* Names from tables rather than strftime, which would follow the locale. */
    sc_buf_printf(out, "Date: %s, %d %s %04d %02d:%02d:%02d +0000\r\n", days[tm.tm_wday], tm.tm_mday,
                  months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* A short printable-ASCII subject goes as it is. Anything else becomes RFC 2047 encoded words ("=?UTF-8?B?...?="),
 * one per line, each at most 75 characters and cut between UTF-8 characters, which keeps every byte (including
 * runs of spaces) exact and every line short. */
static void append_subject(sc_buf *out, const char *subject)
{
    size_t n = strlen(subject);
    sc_buf_append_str(out, "Subject:");
    if (n <= SUBJECT_PLAIN_MAX && printable_ascii(subject) && !strstr(subject, "=?")) {
        if (n)
            sc_buf_printf(out, " %s", subject);
        sc_buf_append(out, "\r\n", 2);
        return;
    }
    const unsigned char *p = (const unsigned char *)subject;
    size_t off = 0;
    size_t budget = 39; /* bytes: "Subject: " + 12 + 52 characters of base64 on the first line */
    while (off < n) {
        size_t take = n - off < budget ? n - off : budget;
        if (off + take < n) {
            size_t back = take;
            while (back > 0 && (p[off + back] & 0xC0) == 0x80)
                back--;
            if (back > 0)
                take = back;
        }
        sc_buf_append_str(out, off ? "\r\n =?UTF-8?B?" : " =?UTF-8?B?");
        base64(out, p + off, take);
        sc_buf_append(out, "?=", 2);
        off += take;
        budget = 45; /* continuation lines: " " + 12 + 60 characters */
    }
    sc_buf_append(out, "\r\n", 2);
}

static bool attr_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$&+-.^_`|~", c));
}

/* A parameter on a continuation line: quoted when printable ASCII, else RFC 2231 with the UTF-8 bytes
 * percent-encoded. Names are at most 255 bytes, so the line stays under 998 characters. */
static void append_param(sc_buf *out, const char *name, const char *value)
{
    bool plain = printable_ascii(value) && !strchr(value, '"') && !strchr(value, '\\');
    if (plain) {
        sc_buf_printf(out, ";\r\n %s=\"%s\"", name, value);
        return;
    }
    sc_buf_printf(out, ";\r\n %s*=UTF-8''", name);
    for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
        if (attr_char(*p))
            sc_buf_append_char(out, (char)*p);
        else
            sc_buf_printf(out, "%%%02X", *p);
    }
}

/* ---- body -------------------------------------------------------------------------------------------------- */

/* Copies text with every line break (CRLF, LF or a lone CR) made CRLF; says whether the result may be sent as
 * 7bit: ASCII only, no line longer than 998 characters. */
static bool normalize_text(sc_buf *out, const char *text)
{
    bool seven_bit = true;
    size_t line = 0;
    for (const char *p = text; *p; p++) {
        if (*p == '\r' || *p == '\n') {
            if (*p == '\r' && p[1] == '\n')
                p++;
            sc_buf_append(out, "\r\n", 2);
            line = 0;
            continue;
        }
        if ((unsigned char)*p >= 0x80 || ++line > MAX_LINE)
            seven_bit = false;
        sc_buf_append_char(out, *p);
    }
    return seven_bit;
}

static void append_text_part(sc_buf *out, const char *text, bool final_crlf)
{
    sc_buf norm = {0};
    bool seven_bit = normalize_text(&norm, text ? text : "");
    sc_buf_printf(out, "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: %s\r\n\r\n",
                  seven_bit ? "7bit" : "base64");
    if (seven_bit) {
        sc_buf_append(out, norm.ptr, norm.len);
        if (final_crlf && (norm.len < 2 || memcmp(norm.ptr + norm.len - 2, "\r\n", 2) != 0))
            sc_buf_append(out, "\r\n", 2);
    } else {
        sc_outbound_base64_lines(out, norm.ptr, norm.len);
    }
    sc_buf_free(&norm);
}

void sc_outbound_mail_build(sc_buf *out, const sc_mail *m, time_t now, const char *message_id,
                            const char *boundary)
{
    append_date(out, now);
    sc_buf_printf(out, "From: %s\r\nTo: %s\r\n", m->from, m->to);
    append_subject(out, m->subject ? m->subject : "");
    sc_buf_printf(out, "Message-ID: <%s>\r\nMIME-Version: 1.0\r\n", message_id);
    if (!m->attachment_name) {
        append_text_part(out, m->text, true);
        return;
    }
    sc_buf_printf(out, "Content-Type: multipart/mixed; boundary=\"%s\"\r\n\r\n", boundary);
    sc_buf_printf(out, "This is a multi-part message in MIME format.\r\n\r\n--%s\r\n", boundary);
    /* The CRLF before each delimiter belongs to the delimiter, so the text keeps its exact ending. */
    append_text_part(out, m->text, false);
    sc_buf_printf(out, "\r\n--%s\r\nContent-Type: %s", boundary,
                  m->attachment_type ? m->attachment_type : "application/octet-stream");
    append_param(out, "name", m->attachment_name);
    sc_buf_append_str(out, "\r\nContent-Disposition: attachment");
    append_param(out, "filename", m->attachment_name);
    sc_buf_append_str(out, "\r\nContent-Transfer-Encoding: base64\r\n\r\n");
    sc_outbound_base64_lines(out, m->attachment, m->attachment_len);
    sc_buf_printf(out, "\r\n--%s--\r\n", boundary);
}
