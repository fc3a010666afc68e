/* The signed tokens of verification and password-reset links (api/user_email.c): a token made for a purpose
 * checks for that purpose only, gives back its account and data, and is refused when expired, when any byte of it
 * changes, or when its shape is wrong (parts, id, expiry, hex). The MAC key is whatever sc_api_auth_url_mac holds
 * without sc_api_auth_init: the checks compare tokens of one key. */
#include "api/user_email.c"

#include "check.h"

static sc_buf make(const char *purpose, const char *id, uint64_t ttl_s, const char *data)
{
    sc_buf b = {0};
    token_make(purpose, id, ttl_s, data, strlen(data), &b);
    sc_buf_append_char(&b, '\0');
    b.len--;
    return b;
}

static int check_token(const char *purpose, const char *t, token *out)
{
    return token_check(purpose, sc_slice_cstr(t), out);
}

static void test_round_trip(void)
{
    sc_buf t = make(PURPOSE_VERIFY, "user-Qbax5Oy7L8WKf74l", 60, "someone@example.com");
    token tok;
    CHECK_EQ_INT(check_token(PURPOSE_VERIFY, t.ptr, &tok), 0);
    CHECK_EQ_STR(tok.id, "user-Qbax5Oy7L8WKf74l");
    CHECK_EQ_MEM(tok.data, tok.data_len, "someone@example.com", strlen("someone@example.com"));
    /* A token of one purpose is not one of the other. */
    CHECK_EQ_INT(check_token(PURPOSE_RESET, t.ptr, &tok), -1);
    /* A lifetime of 0 is good until the second ends. */
    sc_buf z = make(PURPOSE_RESET, "user-a", 0, "nonce");
    CHECK_EQ_INT(check_token(PURPOSE_RESET, z.ptr, &tok), 0);
    sc_buf_free(&t);
    sc_buf_free(&z);
}

static void test_every_changed_byte_is_refused(void)
{
    sc_buf t = make(PURPOSE_RESET, "user-b", 600, "0f1e2d3c-aaaa-bbbb-cccc-000000000000");
    token tok;
    for (size_t i = 0; i < t.len; i++) {
        char saved = t.ptr[i];
        t.ptr[i] = saved == '1' ? '2' : '1';
        if (!CHECK_EQ_INT(check_token(PURPOSE_RESET, t.ptr, &tok), -1))
            fprintf(stderr, "  byte %zu changed\n", i);
        t.ptr[i] = saved;
    }
    CHECK_EQ_INT(check_token(PURPOSE_RESET, t.ptr, &tok), 0);
    sc_buf_free(&t);
}

static void test_expired(void)
{
    sc_buf t = {0};
    sc_buf_append_str(&t, "user-c.1.6162.");
    token_mac(PURPOSE_VERIFY, SC_SLICE_LIT("user-c"), SC_SLICE_LIT("1"), SC_SLICE_LIT("6162"), &t);
    sc_buf_append_char(&t, '\0');
    token tok;
    CHECK_EQ_INT(check_token(PURPOSE_VERIFY, t.ptr, &tok), -1);
    sc_buf_free(&t);
}

static void test_shapes(void)
{
    static const char *const bad[] = {
        "",
        "...",
        "user-d.99999999999.6162",
        "user-d.99999999999.6162.00.x",
        "user d.99999999999.6162.0000000000000000000000000000000000000000000000000000000000000000",
        "user-d.-1.6162.0000000000000000000000000000000000000000000000000000000000000000",
        "user-d.99999999999.616.0000000000000000000000000000000000000000000000000000000000000000",
        "user-d.99999999999.zz.0000000000000000000000000000000000000000000000000000000000000000",
    };
    token tok;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (!CHECK_EQ_INT(check_token(PURPOSE_VERIFY, bad[i], &tok), -1))
            fprintf(stderr, "  accepted: %s\n", bad[i]);
    /* Upper-case hex is not what the server writes: the MAC compares as text. */
    sc_buf t = make(PURPOSE_VERIFY, "user-e", 60, "x@example.com");
    for (size_t i = t.len - 64; i < t.len; i++)
        if (t.ptr[i] >= 'a' && t.ptr[i] <= 'f')
            t.ptr[i] = (char)(t.ptr[i] - 'a' + 'A');
    CHECK_EQ_INT(check_token(PURPOSE_VERIFY, t.ptr, &tok), -1);
    sc_buf_free(&t);
}

int main(void)
{
    test_round_trip();
    test_every_changed_byte_is_refused();
    test_expired();
    test_shapes();
    return check_report();
}
