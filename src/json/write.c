#include "json/write.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

void sc_jw_init(sc_jw *w, sc_buf *out)
{
    w->out = out;
    w->depth = 0;
    w->need_comma[0] = false;
    w->after_key = false;
}

/* Called before every value or key: writes the separating comma where one is due. */
static void before_value(sc_jw *w)
{
    if (w->after_key) {
        w->after_key = false;
        return;
    }
    if (w->need_comma[w->depth])
        sc_buf_append_char(w->out, ',');
    w->need_comma[w->depth] = true;
}

static void open(sc_jw *w, char ch)
{
    before_value(w);
    sc_buf_append_char(w->out, ch);
    if (w->depth + 1 >= SC_JW_MAX_DEPTH)
        abort(); /* nesting depth is fixed by our own code, never by input */
    w->need_comma[++w->depth] = false;
}

static void close_(sc_jw *w, char ch)
{
    sc_buf_append_char(w->out, ch);
    w->depth--;
}

void sc_jw_obj_begin(sc_jw *w) { open(w, '{'); }
void sc_jw_obj_end(sc_jw *w) { close_(w, '}'); }
void sc_jw_arr_begin(sc_jw *w) { open(w, '['); }
void sc_jw_arr_end(sc_jw *w) { close_(w, ']'); }

/* Length of the valid UTF-8 sequence at p (1..4), or 0 when the bytes there are not valid UTF-8. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
    unsigned char c = p[0];
    if (c < 0x80)
        return 1;
    size_t len;
    uint32_t cp;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return len;
}

void sc_json_escape(sc_buf *out, sc_slice s)
{
    static const char hex[] = "0123456789abcdef";
    if (s.len == 0)
        return;
    const unsigned char *p = (const unsigned char *)s.ptr;
    size_t i = 0, run = 0;
    while (i < s.len) {
        unsigned char c = p[i];
        if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
            i++;
            run++;
            continue;
        }
        sc_buf_append(out, p + i - run, run);
        run = 0;
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            sc_buf_append(out, e, 2);
            i++;
        } else if (c < 0x20) {
            const char *short_form = c == '\n' ? "\\n" : c == '\r' ? "\\r" : c == '\t' ? "\\t" : NULL;
            if (short_form) {
                sc_buf_append(out, short_form, 2);
            } else {
                char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
                sc_buf_append(out, e, 6);
            }
            i++;
        } else {
            size_t len = utf8_len(p + i, s.len - i);
            if (len) {
                sc_buf_append(out, p + i, len);
                i += len;
            } else {
                sc_buf_append(out, "\xef\xbf\xbd", 3);
                i++;
            }
        }
    }
    sc_buf_append(out, p + i - run, run);
}

void sc_jw_key(sc_jw *w, const char *key)
{
    before_value(w);
    sc_buf_append_char(w->out, '"');
    sc_json_escape(w->out, sc_slice_cstr(key));
    sc_buf_append(w->out, "\":", 2);
    w->after_key = true;
}

void sc_jw_str(sc_jw *w, sc_slice s)
{
    before_value(w);
    sc_buf_append_char(w->out, '"');
    sc_json_escape(w->out, s);
    sc_buf_append_char(w->out, '"');
}

void sc_jw_cstr(sc_jw *w, const char *s)
{
    if (!s) {
        sc_jw_null(w);
        return;
    }
    sc_jw_str(w, sc_slice_cstr(s));
}

void sc_jw_int(sc_jw *w, int64_t v)
{
    before_value(w);
    sc_buf_append_i64(w->out, v);
}

void sc_jw_uint(sc_jw *w, uint64_t v)
{
    before_value(w);
    sc_buf_append_u64(w->out, v);
}

void sc_jw_double(sc_jw *w, double v)
{
    before_value(w);
    if (!isfinite(v)) {
        sc_buf_append_str(w->out, "null");
        return;
    }
    sc_buf_printf(w->out, "%.17g", v);
}

void sc_jw_bool(sc_jw *w, bool v)
{
    before_value(w);
    sc_buf_append_str(w->out, v ? "true" : "false");
}

void sc_jw_null(sc_jw *w)
{
    before_value(w);
    sc_buf_append_str(w->out, "null");
}

void sc_jw_raw(sc_jw *w, sc_slice json)
{
    before_value(w);
    sc_buf_append_slice(w->out, json);
}
