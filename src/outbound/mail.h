/* Internal to the outbound module: turns an sc_mail into the RFC 5322 / MIME message that SMTP DATA carries.
 *
 * Without an attachment the message is a single text/plain part; with one it is multipart/mixed with the text
 * first and the attachment base64-encoded in 76-character lines. Lines end in CRLF. The SMTP layer (curl) does
 * the dot-stuffing and the final "." line. */
#ifndef SC_OUTBOUND_MAIL_H
#define SC_OUTBOUND_MAIL_H

#include <stddef.h>
#include <time.h>

#include "core/buf.h"
#include "outbound/outbound.h"

/* Checks what becomes a header line or an envelope address: from and to present, printable ASCII, and
 * with at most one "<address>" each; subject, attachment name and type without control characters; a type of
 * the form "type/subtype"; an attachment pointer when the length is not 0. Returns 0 or -1. */
int sc_outbound_mail_check(const sc_mail *m);

/* Writes the bare address of a From or To value ("Name <a@b>" gives "a@b") into out (NUL-terminated). Returns 0,
 * or -1 when it does not fit or is empty. */
int sc_outbound_mail_address(const char *value, char *out, size_t outlen);

/* Appends the whole message for a mail that passed sc_outbound_mail_check. message_id is the bare id
 * ("abc@example.org"), boundary a string of at least 16 characters from [A-Za-z0-9_], both supplied by the caller
 * so that tests can fix them. */
void sc_outbound_mail_build(sc_buf *out, const sc_mail *m, time_t now, const char *message_id,
                            const char *boundary);

/* Appends the standard base64 (RFC 4648 section 4, with padding) of n bytes, in lines of at most 76 characters
 * each ended by CRLF. */
void sc_outbound_base64_lines(sc_buf *out, const void *data, size_t n);

#endif
