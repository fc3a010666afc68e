/* Base64url without padding (RFC 4648 section 5), as JWTs use it. */
#ifndef SC_CORE_BASE64_H
#define SC_CORE_BASE64_H

#include <stddef.h>

#include "core/buf.h"

/* Appends the encoding of n bytes. */
void sc_base64url_encode(sc_buf *out, const void *data, size_t n);
/* Decodes into out (at least n * 3 / 4 + 1 bytes); returns the decoded length, or -1 on a character outside the
 * alphabet, padding, or an impossible length. */
long sc_base64url_decode(const char *in, size_t n, unsigned char *out);

#endif
