/* The Host header and the client's locality (http/host.h). */
#include "http/host.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/http1.h"
#include "net/addr.h"

static bool name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
}

static bool v6_char(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == ':' || c == '.';
}

/* "[" IPv6address "]": only hex digits, ':' and '.' inside, and an address inet_pton reads (so "[:]" or "[1]"
 * are not literals). */
static bool ipv6_literal(sc_slice s)
{
    char text[INET6_ADDRSTRLEN];
    struct in6_addr addr;
    if (s.len < 4 || s.ptr[0] != '[' || s.ptr[s.len - 1] != ']' || s.len - 2 >= sizeof(text))
        return false;
    for (size_t i = 1; i + 1 < s.len; i++)
        if (!v6_char(s.ptr[i]))
            return false;
    memcpy(text, s.ptr + 1, s.len - 2);
    text[s.len - 2] = '\0';
    return inet_pton(AF_INET6, text, &addr) == 1;
}

int sc_host_parse(sc_slice v, sc_host *out)
{
    size_t end; /* of the host, where the port's ':' (or the end) is */
    if (v.len && v.ptr[0] == '[') {
        long close_br = sc_slice_find(v, ']');
        if (close_br < 0)
            return -1;
        end = (size_t)close_br + 1;
        if (!ipv6_literal((sc_slice){v.ptr, end}))
            return -1;
    } else {
        end = 0;
        while (end < v.len && name_char(v.ptr[end]))
            end++;
        if (end == 0 || end > SC_HOST_MAX_NAME)
            return -1;
    }
    sc_slice port = SC_SLICE_NULL;
    int port_num = -1;
    if (end < v.len) {
        if (v.ptr[end] != ':')
            return -1;
        port = (sc_slice){v.ptr + end + 1, v.len - end - 1};
        if (port.len == 0 || port.len > 5)
            return -1;
        port_num = 0;
        for (size_t i = 0; i < port.len; i++) {
            if (port.ptr[i] < '0' || port.ptr[i] > '9')
                return -1;
            port_num = port_num * 10 + (port.ptr[i] - '0');
        }
        if (port_num > 65535)
            return -1;
    }
    out->name = (sc_slice){v.ptr, end};
    out->port = port;
    out->port_num = port_num;
    return 0;
}

int sc_host_list_parse(const char *s, sc_host_list *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    size_t len = strlen(s), n = 1;
    for (size_t i = 0; i < len; i++)
        n += s[i] == ',';
    out->text = malloc(len + 1);
    out->items = calloc(n, sizeof(*out->items));
    if (!out->text || !out->items)
        abort();
    memcpy(out->text, s, len + 1);
    sc_slice rest = {out->text, len};
    while (rest.len) {
        sc_slice item = sc_slice_next_item(&rest, ',');
        if (item.len == 0)
            continue;
        if (sc_host_parse(item, &out->items[out->n]) != 0) {
            snprintf(err, errlen,
                     "STACCATO_ALLOWED_HOSTS: '%.*s' is not a host name, IPv4 address or bracketed "
                     "IPv6 address with an optional :port",
                     (int)(item.len > 300 ? 300 : item.len), item.ptr);
            sc_host_list_free(out);
            return -1;
        }
        out->n++;
    }
    return 0;
}

void sc_host_list_free(sc_host_list *l)
{
    free(l->text);
    free(l->items);
    memset(l, 0, sizeof(*l));
}

bool sc_host_list_allows(const sc_host_list *l, const sc_host *host)
{
    if (!l || l->n == 0)
        return true;
    for (size_t i = 0; i < l->n; i++) {
        const sc_host *a = &l->items[i];
        if (sc_slice_eq_nocase(a->name, host->name) && (a->port_num < 0 || a->port_num == host->port_num))
            return true;
    }
    return false;
}

bool sc_req_host(const sc_req *req, sc_host *out)
{
    sc_slice value = sc_slice_trim(sc_req_header(req, "host"));
    return sc_host_parse(value, out) == 0 &&
           sc_host_list_allows(sc_http_conn_of(req)->server->cfg.allowed_hosts, out);
}

const sc_host *sc_req_first_allowed_host(const sc_req *req)
{
    const sc_host_list *l = sc_http_conn_of(req)->server->cfg.allowed_hosts;
    return l && l->n ? &l->items[0] : NULL;
}

static bool loopback(const uint8_t a[16])
{
    static const uint8_t v6[16] = {[15] = 1};
    static const uint8_t mapped[12] = {[10] = 0xff, [11] = 0xff};
    return memcmp(a, v6, 16) == 0 || (memcmp(a, mapped, 12) == 0 && a[12] == 127);
}

bool sc_req_client_local(sc_req *req)
{
    sc_http_conn *c = sc_http_conn_of(req);
    const sc_cidr_list *trusted = c->server->cfg.trusted_proxies;
    bool peer_trusted = trusted && trusted->n && sc_cidr_list_contains(trusted, c->super.peer_addr);
    /* A proxy nobody declared in front of the server (nginx on the same host, say) makes every stranger look
     * like a loopback peer; the fields it adds give it away. */
    if (!peer_trusted && (sc_req_header(req, "x-forwarded-for").ptr || sc_req_header(req, "forwarded").ptr ||
                          sc_req_header(req, "x-real-ip").ptr))
        return false;
    uint8_t addr[16];
    if (sc_addr_parse(sc_req_client(req), addr) != 0)
        return false;
    return loopback(addr) || (trusted && sc_cidr_list_contains(trusted, addr));
}
