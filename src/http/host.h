/* Where a request was addressed and where it comes from: the Host header, validated strictly and held to
 * STACCATO_ALLOWED_HOSTS, for everything that builds a URL from it (links in answers, the redirect to HTTPS); and
 * whether the client is local (loopback or a trusted proxy), for endpoints kept to operators.
 *
 * A Host value (RFC 9110 §7.2: uri-host [ ":" port ], RFC 3986 §3.2.2), of which only this subset passes:
 *
 *     host     = reg-name / "[" IPv6address "]"        IPv4 addresses are reg-names here
 *     reg-name = 1*255( ALPHA / DIGIT / "-" / "." )
 *     port     = 1*5DIGIT                                at most 65535
 *
 * No percent-encoding, userinfo, sub-delims, zone ids or IPvFuture: nothing a URL's authority could end at, and
 * nothing that differs between two readers of the same bytes. */
#ifndef SC_HTTP_HOST_H
#define SC_HTTP_HOST_H

#include <stdbool.h>
#include <stddef.h>

#include "core/slice.h"
#include "http/request.h"

#define SC_HOST_MAX_NAME 255 /* RFC 3986 §3.2.2: producers limit names to 255 characters */

/* A valid Host value, as slices of the text it was parsed from. */
typedef struct sc_host {
    sc_slice name; /* the reg-name, or the IPv6 literal with its brackets */
    sc_slice port; /* the port's digits as sent; empty when there is none */
    int port_num;  /* the port, or -1 when there is none */
} sc_host;

/* Parses a Host value (nothing around it: blanks make it invalid). Returns 0 with *out set, or -1. */
int sc_host_parse(sc_slice value, sc_host *out);

/* STACCATO_ALLOWED_HOSTS: host names, each optionally with a port. */
typedef struct sc_host_list {
    char *text; /* the hosts point into this copy */
    sc_host *items;
    size_t n;
} sc_host_list;

/* Parses "music.example.com, music.example.com:8443, [2001:db8::1]" (empty: an empty list, which allows every
 * valid host). Returns 0, or -1 with a message in err. */
int sc_host_list_parse(const char *s, sc_host_list *out, char *err, size_t errlen);
void sc_host_list_free(sc_host_list *l);
/* Whether host is allowed: the list is NULL or empty, or an entry has its name (in any case) and either no port
 * or the same port. */
bool sc_host_list_allows(const sc_host_list *l, const sc_host *host);

/* The request's Host header (blanks around it ignored) when it is valid and allowed by the server's
 * STACCATO_ALLOWED_HOSTS: true with *out set; else false. */
bool sc_req_host(const sc_req *req, sc_host *out);
/* The first of STACCATO_ALLOWED_HOSTS, or NULL when the list is empty. */
const sc_host *sc_req_first_allowed_host(const sc_req *req);

/* Whether the client (sc_req_client: X-Forwarded-For walked through trusted proxies) is a loopback address or
 * one of STACCATO_TRUSTED_PROXIES. A request from a peer that is not a trusted proxy and still carries
 * X-Forwarded-For, Forwarded or X-Real-IP is not local: an undeclared proxy forwarded it for someone. */
bool sc_req_client_local(sc_req *req);

#endif
