/* The API description (api/openapi.c): every route of the real tables (with and without the debug routes) is
 * described, no description is left without a route, every $ref resolves, operation ids are unique, the generated
 * parts are there (path parameters, security and the 401/403 of gated rows, 500/503 everywhere); a table with a
 * route nobody described, or without a route that is described, does not build and the error names it. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/auth.h"
#include "api/openapi.h"
#include "check.h"
#include "http/method.h"

static json_t *build(const sc_route *routes, size_t n, bool debug, char *err, size_t errlen)
{
    size_t len = 0;
    char *text = sc_api_openapi_build(routes, n, debug, &len, err, errlen);
    if (!text)
        return NULL;
    CHECK_EQ_UINT(strlen(text), len);
    json_t *doc = json_loads(text, 0, NULL);
    free(text);
    return doc;
}

/* Resolves a local reference "#/a/b/c" in doc (no escapes are used in ours). */
static json_t *resolve(json_t *doc, const char *ref)
{
    if (strncmp(ref, "#/", 2) != 0)
        return NULL;
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", ref + 2);
    json_t *at = doc;
    for (char *save = NULL, *tok = strtok_r(buf, "/", &save); tok && at; tok = strtok_r(NULL, "/", &save))
        at = json_object_get(at, tok);
    return at;
}

static int unresolved;

static void check_refs(json_t *doc, json_t *v)
{
    if (json_is_object(v)) {
        const char *key;
        json_t *child;
        json_object_foreach(v, key, child)
        {
            if (strcmp(key, "$ref") == 0 && json_is_string(child) && !resolve(doc, json_string_value(child))) {
                printf("unresolved $ref %s\n", json_string_value(child));
                unresolved++;
            }
            check_refs(doc, child);
        }
    } else if (json_is_array(v)) {
        size_t i;
        json_t *child;
        json_array_foreach(v, i, child) check_refs(doc, child);
    }
}

static void lower(const char *m, char *out, size_t outlen)
{
    size_t i = 0;
    for (; m[i] && i + 1 < outlen; i++)
        out[i] = (char)(m[i] | 0x20);
    out[i] = '\0';
}

/* The real table: each row's methods are operations of the document, with what the row implies. */
static void check_table(bool debug)
{
    sc_app app = {.debug_routes = debug};
    size_t n;
    const sc_route *routes = sc_api_routes(&app, &n);
    char err[8192];
    json_t *doc = build(routes, n, debug, err, sizeof(err));
    if (!CHECK(doc != NULL)) {
        printf("the description of the %s table does not build: %s\n", debug ? "debug" : "production", err);
        return;
    }
    CHECK_EQ_STR(json_string_value(json_object_get(doc, "openapi")), "3.1.0");
    CHECK_EQ_STR(json_string_value(json_object_get(json_object_get(doc, "info"), "version")), STACCATO_VERSION);
    unresolved = 0;
    check_refs(doc, doc);
    CHECK_EQ_INT(unresolved, 0);

    json_t *paths = json_object_get(doc, "paths"), *ids = json_object();
    size_t operations = 0;
    for (size_t i = 0; i < n; i++) {
        const sc_route *r = &routes[i];
        json_t *item = json_object_get(paths, r->pattern);
        CHECK(item != NULL);
        for (unsigned bit = 1; bit <= SC_M_OPTIONS; bit <<= 1) {
            if (!(r->methods & bit) || bit == SC_M_HEAD)
                continue;
            char m[16];
            lower(sc_method_name(bit), m, sizeof(m));
            json_t *op = json_object_get(item, m);
            if (!CHECK(op != NULL)) {
                printf("%s %s is not in the document\n", m, r->pattern);
                continue;
            }
            operations++;
            const char *id = json_string_value(json_object_get(op, "operationId"));
            CHECK(id && *id);
            if (id) {
                CHECK(json_object_get(ids, id) == NULL); /* unique */
                json_object_set_new(ids, id, json_true());
            }
            json_t *responses = json_object_get(op, "responses");
            CHECK(json_object_get(responses, "500") != NULL);
            CHECK(json_object_get(responses, "503") != NULL);
            CHECK(json_object_get(responses, "504") != NULL);
            for (const char *const *st = (const char *const[]){"400", "408", "413", "414", "431", "501", NULL};
                 *st; st++)
                CHECK(json_object_get(responses, *st) != NULL); /* the HTTP layer's, before routing */
            bool gated = r->gate == SC_API_OPTIONAL || r->gate == SC_API_USER || r->gate == SC_API_ADMIN;
            if (gated) {
                CHECK(json_object_get(responses, "401") != NULL);
                CHECK(json_array_size(json_object_get(op, "security")) >= 1);
            }
            CHECK(json_is_array(json_object_get(op, "security"))); /* public rows: [] unless they say more */
            if (r->gate == SC_API_ADMIN || (gated && bit != SC_M_GET))
                CHECK(json_object_get(responses, "403") != NULL);
            if (strchr(r->pattern, '{'))
                CHECK(json_object_get(responses, "404") != NULL);
            /* Each {name} of the pattern is a required path parameter. */
            for (const char *p = strchr(r->pattern, '{'); p; p = strchr(p + 1, '{')) {
                size_t len = (size_t)(strchr(p, '}') - p - 1);
                bool found = false;
                size_t k;
                json_t *param;
                json_array_foreach(json_object_get(op, "parameters"), k, param)
                {
                    const char *name = json_string_value(json_object_get(param, "name"));
                    found |= name && strlen(name) == len && memcmp(name, p + 1, len) == 0 &&
                             json_is_true(json_object_get(param, "required"));
                }
                CHECK(found);
            }
        }
    }
    /* Nothing else: every path of the document is a route's. */
    size_t documented = 0;
    const char *path;
    json_t *item;
    json_object_foreach(paths, path, item)
    {
        bool routed = false;
        for (size_t i = 0; i < n; i++)
            routed |= strcmp(routes[i].pattern, path) == 0;
        CHECK(routed);
        documented += json_object_size(item);
    }
    CHECK_EQ_UINT(documented, operations);
    CHECK(operations > 50);
    json_decref(ids);
    json_decref(doc);
}

static int handler(sc_req *req)
{
    (void)req;
    return 200;
}

/* A route nobody described, and (in a table without /health) a description no route has: both are named. */
static void test_missing_and_stale(void)
{
    sc_app app = {.debug_routes = true};
    size_t n;
    const sc_route *real = sc_api_routes(&app, &n);
    sc_route *routes = calloc(n + 1, sizeof(*routes));
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (strcmp(real[i].pattern, "/health") != 0)
            routes[k++] = real[i];
    CHECK_EQ_UINT(k, n - 1);
    routes[k++] = (sc_route){.methods = SC_M_GET | SC_M_POST,
                             .pattern = "/nobody/{x}",
                             .handler = handler,
                             .name = "nobody_described"};
    char err[8192];
    CHECK(build(routes, k, true, err, sizeof(err)) == NULL);
    CHECK(strstr(err, "route GET /nobody/{x} has no description (nobody_described") != NULL);
    CHECK(strstr(err, "route POST /nobody/{x} has no description") != NULL);
    CHECK(strstr(err, "health is described but no route has it") != NULL);

    /* A row without a name cannot be described either. */
    routes[k - 1].name = NULL;
    CHECK(build(routes, k, true, err, sizeof(err)) == NULL);
    CHECK(strstr(err, "route /nobody/{x} has no name") != NULL);

    /* A short error buffer is still a terminated string. */
    char tiny[8];
    CHECK(build(routes, k, true, tiny, sizeof(tiny)) == NULL);
    CHECK(strlen(tiny) < sizeof(tiny));
    free(routes);
}

/* The rows of several methods get one operation each, with the method in the id. */
static void test_several_methods(void)
{
    sc_app app = {.debug_routes = true};
    size_t n;
    const sc_route *routes = sc_api_routes(&app, &n);
    char err[4096];
    json_t *doc = build(routes, n, true, err, sizeof(err));
    json_t *echo = json_object_get(json_object_get(doc, "paths"), "/_debug/echo");
    CHECK_EQ_STR(json_string_value(json_object_get(json_object_get(echo, "post"), "operationId")),
                 "debugEchoPost");
    CHECK_EQ_STR(json_string_value(json_object_get(json_object_get(echo, "put"), "operationId")), "debugEchoPut");
    json_t *health = json_object_get(json_object_get(doc, "paths"), "/health");
    CHECK_EQ_STR(json_string_value(json_object_get(json_object_get(health, "get"), "operationId")), "health");
    CHECK(json_object_get(health, "head") == NULL); /* HEAD is implied by GET */
    json_decref(doc);
}

int main(void)
{
    check_table(false);
    check_table(true);
    test_missing_and_stale();
    test_several_methods();
    return check_report();
}
