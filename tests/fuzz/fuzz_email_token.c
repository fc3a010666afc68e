/* libFuzzer driver: the signed tokens of e-mail verification and password-reset links (api/user_email.c), which
 * arrive from outside in GET /users/verify-email?token= and POST /users/password-reset/confirm.
 *
 * The first byte chooses how the rest is used:
 * - even: the rest is a token as a client sends it, checked for both purposes (shape, hex, expiry, MAC);
 * - odd: the rest is "<account id>\0<data>"; the driver makes a token of them (a fuzzer cannot forge the MAC), so
 *   the checks behind the MAC are reached too.
 * Invariants beyond memory safety: a token the driver made checks for its purpose exactly when its id is a
 * plausible one and its data fits, and gives back that id and data; it never checks for the other purpose, nor
 * with a byte changed. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/user_email.c"

static void check_made(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, '\0', size);
    if (!nul)
        return;
    size_t idn = (size_t)(nul - data), dn = size - idn - 1;
    char id[80];
    if (idn >= sizeof(id))
        return;
    memcpy(id, data, idn);
    id[idn] = '\0';
    sc_buf t = {0};
    token_make(PURPOSE_VERIFY, id, 3600, nul + 1, dn, &t);
    token got;
    int rc = token_check(PURPOSE_VERIFY, sc_buf_slice(&t), &got);
    bool fits = sc_api_plausible_id((sc_slice){id, idn}) && dn * 2 <= MAX_DATA_HEX;
    if ((rc == 0) != fits)
        abort();
    if (rc == 0) {
        if (strcmp(got.id, id) != 0 || got.data_len != dn || memcmp(got.data, nul + 1, dn) != 0)
            abort();
        if (token_check(PURPOSE_RESET, sc_buf_slice(&t), &got) == 0)
            abort();
        /* Some bytes of every part (a MAC per flip is slow), the last one included. */
        size_t step = t.len / 24 + 1;
        for (size_t i = t.len - 1; i < t.len; i = i >= step ? i - step : (size_t)-1) {
            char was = t.ptr[i];
            t.ptr[i] = was == 'a' ? 'b' : 'a';
            if (token_check(PURPOSE_VERIFY, sc_buf_slice(&t), &got) == 0)
                abort();
            t.ptr[i] = was;
        }
    }
    sc_buf_free(&t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    if (data[0] & 1) {
        check_made(data + 1, size - 1);
        return 0;
    }
    token got;
    sc_slice t = {(const char *)data + 1, size - 1};
    if (token_check(PURPOSE_VERIFY, t, &got) == 0 || token_check(PURPOSE_RESET, t, &got) == 0)
        abort(); /* nobody but the server has the key */
    return 0;
}
