#include "net/addr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"

int sc_addr_parse(sc_slice text, uint8_t out[16])
{
    char tmp[INET6_ADDRSTRLEN + 1];
    if (text.len == 0 || text.len >= sizeof(tmp))
        return -1;
    memcpy(tmp, text.ptr, text.len);
    tmp[text.len] = '\0';
    struct in_addr v4;
    if (inet_pton(AF_INET, tmp, &v4) == 1) {
        memset(out, 0, 10);
        out[10] = out[11] = 0xff;
        memcpy(out + 12, &v4, 4);
        return 0;
    }
    return inet_pton(AF_INET6, tmp, out) == 1 ? 0 : -1;
}

static bool is_v4_mapped(const uint8_t a[16])
{
    static const uint8_t prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    return memcmp(a, prefix, 12) == 0;
}

int sc_cidr_list_parse(const char *s, sc_cidr_list *out, char *err, size_t errlen)
{
    out->items = NULL;
    out->n = 0;
    sc_slice rest = sc_slice_cstr(s);
    while (rest.len) {
        sc_slice item = sc_slice_next_item(&rest, ',');
        if (item.len == 0)
            continue;
        sc_cidr c;
        long slash = sc_slice_find(item, '/');
        sc_slice ip = slash < 0 ? item : (sc_slice){item.ptr, (size_t)slash};
        if (sc_addr_parse(ip, c.addr) != 0) {
            snprintf(err, errlen, "invalid address '%.*s' in trusted proxies", (int)item.len, item.ptr);
            sc_cidr_list_free(out);
            return -1;
        }
        unsigned long long prefix = 128;
        if (slash >= 0) {
            unsigned long long max = is_v4_mapped(c.addr) ? 32 : 128;
            if (sc_slice_to_u64((sc_slice){item.ptr + slash + 1, item.len - (size_t)slash - 1}, max, &prefix)) {
                snprintf(err, errlen, "invalid prefix in '%.*s' in trusted proxies", (int)item.len, item.ptr);
                sc_cidr_list_free(out);
                return -1;
            }
            if (is_v4_mapped(c.addr))
                prefix += 96;
        }
        c.prefix = (unsigned)prefix;
        out->items = sc_realloc(out->items, sizeof(sc_cidr) * (out->n + 1));
        out->items[out->n++] = c;
    }
    return 0;
}

void sc_cidr_list_free(sc_cidr_list *l)
{
    free(l->items);
    l->items = NULL;
    l->n = 0;
}

bool sc_cidr_list_contains(const sc_cidr_list *l, const uint8_t addr[16])
{
    for (size_t i = 0; i < l->n; i++) {
        const sc_cidr *c = &l->items[i];
        unsigned full = c->prefix / 8, bits = c->prefix % 8;
        if (memcmp(c->addr, addr, full) != 0)
            continue;
        if (bits) {
            uint8_t mask = (uint8_t)(0xff << (8 - bits));
            if ((c->addr[full] & mask) != (addr[full] & mask))
                continue;
        }
        return true;
    }
    return false;
}

size_t sc_addr_format(const struct sockaddr *sa, char *out, size_t outlen)
{
    out[0] = '\0';
    if (sa->sa_family == AF_INET) {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, (socklen_t)outlen);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        if (is_v4_mapped(s6->sin6_addr.s6_addr))
            inet_ntop(AF_INET, s6->sin6_addr.s6_addr + 12, out, (socklen_t)outlen);
        else
            inet_ntop(AF_INET6, &s6->sin6_addr, out, (socklen_t)outlen);
    }
    return strlen(out);
}
