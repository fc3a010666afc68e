/* The HTTP status table: code, reason phrase, and the message used in JSON error bodies. One place for each fact.
 */
#ifndef SC_HTTP_STATUS_H
#define SC_HTTP_STATUS_H

#define SC_HTTP_STATUS_MAP(X)                                                                                     \
    X(100, "Continue", "continue")                                                                                \
    X(200, "OK", "ok")                                                                                            \
    X(201, "Created", "created")                                                                                  \
    X(204, "No Content", "no content")                                                                            \
    X(206, "Partial Content", "partial content")                                                                  \
    X(304, "Not Modified", "not modified")                                                                        \
    X(308, "Permanent Redirect", "moved permanently")                                                             \
    X(400, "Bad Request", "malformed request")                                                                    \
    X(401, "Unauthorized", "authentication required")                                                             \
    X(403, "Forbidden", "forbidden")                                                                              \
    X(404, "Not Found", "resource not found")                                                                     \
    X(405, "Method Not Allowed", "method not allowed")                                                            \
    X(408, "Request Timeout", "request timed out")                                                                \
    X(409, "Conflict", "conflict")                                                                                \
    X(412, "Precondition Failed", "precondition failed")                                                          \
    X(411, "Length Required", "length required")                                                                  \
    X(413, "Content Too Large", "request body too large")                                                         \
    X(414, "URI Too Long", "request target too long")                                                             \
    X(415, "Unsupported Media Type", "unsupported media type")                                                    \
    X(416, "Range Not Satisfiable", "range not satisfiable")                                                      \
    X(417, "Expectation Failed", "expectation not supported")                                                     \
    X(429, "Too Many Requests", "too many requests")                                                              \
    X(431, "Request Header Fields Too Large", "request header fields too large")                                  \
    X(500, "Internal Server Error", "internal server error")                                                      \
    X(501, "Not Implemented", "not implemented")                                                                  \
    X(503, "Service Unavailable", "service unavailable")                                                          \
    X(504, "Gateway Timeout", "upstream timed out")                                                               \
    X(505, "HTTP Version Not Supported", "HTTP version not supported")                                            \
    X(507, "Insufficient Storage", "insufficient storage")

/* Reason phrase for a status code ("Unknown" for codes outside the table). */
const char *sc_http_reason(int status);
/* Default JSON error message for a status code. */
const char *sc_http_default_message(int status);

#endif
