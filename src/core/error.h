/* The one shape of error codes (docs/internals/errors.md, convention 1), after libuv's UV_ERRNO_MAP.
 *
 * A module lists its codes once, in an X-macro table of (name, code, message) rows with negative codes:
 *
 *     #define SC_JWT_ERRORS(X)                      \
 *         X(SC_JWT_E_MALFORMED, -1, "malformed token") \
 *         X(SC_JWT_E_EXPIRED, -4, "token expired")
 *
 *     enum { SC_JWT_ERRORS(SC_ERROR_ENUM) };           (in the header)
 *     SC_ERROR_STRERROR(sc_jwt_strerror, SC_JWT_ERRORS, "unknown token error")   (in the .c file)
 *
 * Its functions return 0 or one of those codes, and its strerror turns a code into the message. Because every
 * row becomes a case label, two rows with the same code do not compile. */
#ifndef SC_CORE_ERROR_H
#define SC_CORE_ERROR_H

/* An enumerator of the table. */
#define SC_ERROR_ENUM(name, code, msg) name = (code),
/* A case of the table's strerror. */
#define SC_ERROR_CASE(name, code, msg)                                                                            \
    case (code):                                                                                                  \
        return (msg);

/* Defines `const char *fn(int err)`: "ok" for 0, the table's message for one of its codes, else unknown. */
#define SC_ERROR_STRERROR(fn, table, unknown)                                                                     \
    const char *fn(int err)                                                                                       \
    {                                                                                                             \
        switch (err) {                                                                                            \
        case 0:                                                                                                   \
            return "ok";                                                                                          \
            table(SC_ERROR_CASE)                                                                                  \
        }                                                                                                         \
        return (unknown);                                                                                         \
    }

#endif
