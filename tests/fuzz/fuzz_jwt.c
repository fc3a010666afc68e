/* libFuzzer driver: token verification, the parser of Authorization headers and refresh tokens. Also checks that
 * only a token that verifies under the key can carry claims. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/jwt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char key[] = "fuzz-key-fuzz-key-fuzz-key-fuzz!";
    sc_jwt_claims c;
    int rc = sc_jwt_verify((const char *)data, size, key, sizeof(key) - 1, 1700000000, 30, NULL, &c);
    if (rc == 0 && (!c.sub[0] || memchr(c.sub, '\0', sizeof(c.sub)) == NULL))
        abort();
    /* Re-signing the claims must give a token that verifies. */
    if (rc == 0) {
        sc_buf b = {0};
        sc_jwt_sign(&c, key, sizeof(key) - 1, &b);
        sc_jwt_claims again;
        if (sc_jwt_verify(b.ptr, b.len, key, sizeof(key) - 1, 1700000000, 30, NULL, &again) != 0)
            abort();
        free(b.ptr);
    }
    return 0;
}
