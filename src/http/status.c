#include "http/status.h"

const char *sc_http_reason(int status)
{
    switch (status) {
#define X(code, reason, msg)                                                                                      \
    case code:                                                                                                    \
        return reason;
        SC_HTTP_STATUS_MAP(X)
#undef X
    }
    return "Unknown";
}

const char *sc_http_default_message(int status)
{
    switch (status) {
#define X(code, reason, msg)                                                                                      \
    case code:                                                                                                    \
        return msg;
        SC_HTTP_STATUS_MAP(X)
#undef X
    }
    return status >= 500 ? "internal server error" : "request failed";
}
