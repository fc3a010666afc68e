/* The request methods the server implements, as bits so a route can name several. */
#ifndef SC_HTTP_METHOD_H
#define SC_HTTP_METHOD_H

#define SC_METHOD_MAP(X)                                                                                          \
    X(GET, 0)                                                                                                     \
    X(HEAD, 1)                                                                                                    \
    X(POST, 2)                                                                                                    \
    X(PUT, 3)                                                                                                     \
    X(PATCH, 4)                                                                                                   \
    X(DELETE, 5)                                                                                                  \
    X(OPTIONS, 6)

enum {
#define X(name, bit) SC_M_##name = 1u << bit,
    SC_METHOD_MAP(X)
#undef X
};

/* Name of a single method bit ("GET"); NULL for anything else. */
const char *sc_method_name(unsigned method);

#endif
