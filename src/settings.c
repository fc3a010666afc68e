#include "settings.h"

#include <stddef.h>

#define F(field) offsetof(sc_settings, field)
#define U(env, field, def, min, max, help) {env, SC_SET_UINT, F(field), def, help, min, max, NULL}

const sc_setting sc_settings_table[] = {
    {"HOST", SC_SET_STRING, F(host), "0.0.0.0", "Address to listen on (IPv4 or IPv6, or a host name).", 0, 0, NULL},
    U("PORT", port, "5000", 0, 65535, "TCP port to listen on; 0 picks a free port (logged at start)."),
    U("STACCATO_WORKERS", workers, "1", 1, 256,
      "Worker processes sharing the port through SO_REUSEPORT, each with its own event loop."),
    U("STACCATO_MAX_CONNECTIONS", max_connections, "16384", 1, 10000000,
      "Open client connections per worker; above it new connections get 503 and are closed."),
    U("STACCATO_MAX_HEADER_BYTES", max_header_bytes, "16384", 256, 1048576,
      "Total bytes of request header names and values (431 beyond)."),
    U("STACCATO_MAX_HEADERS", max_headers, "100", 1, 10000, "Request header fields per request (431 beyond)."),
    U("STACCATO_MAX_URL_BYTES", max_url_bytes, "8192", 16, 1048576, "Length of the request target (414 beyond)."),
    U("STACCATO_MAX_BODY_BYTES", max_body_bytes, "1048576", 0, 1ULL << 40,
      "Request body size for routes without a limit of their own (413 beyond, sent before the body is read)."),
    U("STACCATO_HEADER_TIMEOUT_MS", header_timeout_ms, "10000", 10, 3600000,
      "Time allowed from the first byte of a request to the end of its headers (408 beyond)."),
    U("STACCATO_BODY_TIMEOUT_MS", body_timeout_ms, "30000", 10, 3600000,
      "Time allowed without receiving body bytes while a body is being read (408 beyond)."),
    U("STACCATO_KEEPALIVE_TIMEOUT_MS", keepalive_timeout_ms, "60000", 10, 86400000,
      "Idle time after which a keep-alive connection is closed."),
    U("STACCATO_SEND_TIMEOUT_MS", send_timeout_ms, "30000", 10, 3600000,
      "Time allowed without write progress before a client that stopped reading is disconnected."),
    U("STACCATO_MAX_WRITE_BUFFER", max_write_buffer, "1048576", 1024, 1ULL << 32,
      "Unsent response bytes per connection above which the server stops reading that client."),
    U("STACCATO_DRAIN_TIMEOUT_MS", drain_timeout_ms, "10000", 0, 3600000,
      "On SIGTERM/SIGINT, time allowed for in-flight requests before connections are closed."),
    U("STACCATO_BACKLOG", backlog, "4096", 1, 65535, "Listen backlog (the kernel caps it at net.core.somaxconn)."),
    {"STACCATO_LOG_LEVEL", SC_SET_ENUM, F(log_level), "info", "Error log level.", 0, 0, "debug|info|warn|error"},
    {"STACCATO_LOG_FORMAT", SC_SET_ENUM, F(log_format), "text", "Format of the error and access logs.", 0, 0,
     "text|json"},
    {"STACCATO_ACCESS_LOG", SC_SET_BOOL, F(access_log), "on", "One line per request on standard output.", 0, 0, NULL},
    {"STACCATO_TRUSTED_PROXIES", SC_SET_STRING, F(trusted_proxies), "",
     "Comma-separated addresses or CIDRs of reverse proxies whose X-Forwarded-For names the client in logs.", 0, 0,
     NULL},
    {"STACCATO_DEBUG_ROUTES", SC_SET_BOOL, F(debug_routes), "off",
     "Enable /_debug/echo and /_debug/sleep (for tests; never in production).", 0, 0, NULL},
    {"STACCATO_ENV_FILE", SC_SET_STRING, F(env_file), ".env",
     "Settings file of KEY=VALUE lines read before the environment (skipped when the default is absent).", 0, 0,
     NULL},
    {"DATABASE_URL", SC_SET_STRING, F(database_url), "",
     "PostgreSQL connection string or URL; empty: libpq's PGHOST, PGPORT, PGUSER... variables. Use a numeric "
     "address or a socket directory: the connect must not wait for DNS.",
     0, 0, NULL},
    U("STACCATO_DB_POOL_SIZE", db_pool_size, "4", 1, 1000, "PostgreSQL connections per worker."),
    U("STACCATO_DB_QUEUE_MAX", db_queue_max, "4096", 0, 10000000,
      "Queries waiting for a connection; beyond it requests get 503 at once."),
    U("STACCATO_DB_PIPELINE_DEPTH", db_pipeline_depth, "64", 1, 100000,
      "Queries in flight per connection (pipeline mode)."),
    U("STACCATO_DB_QUERY_TIMEOUT_MS", db_query_timeout_ms, "5000", 10, 3600000,
      "Deadline of a query (504 beyond); also the server-side statement_timeout."),
    U("STACCATO_DB_CONNECT_TIMEOUT_MS", db_connect_timeout_ms, "3000", 10, 600000,
      "Deadline of a connection attempt, setup included."),
    {"REDIS_URL", SC_SET_STRING, F(redis_url), "", "Redis address as redis://HOST:PORT; empty: REDIS_HOST and REDIS_PORT.",
     0, 0, NULL},
    {"REDIS_HOST", SC_SET_STRING, F(redis_host), "127.0.0.1", "Redis host (numeric address) when REDIS_URL is empty.",
     0, 0, NULL},
    U("REDIS_PORT", redis_port, "6379", 1, 65535, "Redis port when REDIS_URL is empty."),
    U("STACCATO_REDIS_TIMEOUT_MS", redis_timeout_ms, "250", 1, 600000,
      "Deadline of a Redis command; beyond it a cache read is a miss."),
    {"ACCESS_TOKEN_KEY", SC_SET_STRING, F(access_token_key), "",
     "Secret for signing access tokens (HS256); at least 32 bytes. Empty: a random key per start (tokens do not "
     "survive a restart).",
     0, 0, NULL},
    {"REFRESH_TOKEN_KEY", SC_SET_STRING, F(refresh_token_key), "",
     "Secret for signing refresh tokens; must differ from ACCESS_TOKEN_KEY. Empty: a random key per start.", 0, 0,
     NULL},
    U("ACCESS_TOKEN_AGE", access_token_age, "1800", 10, 86400 * 7, "Access token lifetime in seconds."),
    U("STACCATO_REFRESH_TOKEN_AGE", refresh_token_age, "2592000", 60, 86400 * 365,
      "Refresh token lifetime in seconds."),
    U("STACCATO_TOKEN_LEEWAY_S", token_leeway_s, "30", 0, 600, "Clock skew allowed when checking exp, nbf and iat."),
    U("STACCATO_ARGON2_T", argon2_t, "2", 1, 100, "Argon2id iterations for password hashes."),
    U("STACCATO_ARGON2_M_KIB", argon2_m_kib, "19456", 8, 4194304, "Argon2id memory per hash in KiB."),
    U("STACCATO_ARGON2_P", argon2_p, "1", 1, 16, "Argon2id lanes per hash."),
    U("STACCATO_PASSWORD_MIN_LENGTH", password_min_length, "6", 1, 128,
      "Shortest password accepted at registration (OpenMusic clients use 6)."),
    U("STACCATO_LOGIN_MAX_PER_ACCOUNT", login_max_per_account, "10", 1, 1000000,
      "Login attempts per account per window (429 beyond)."),
    U("STACCATO_LOGIN_MAX_PER_ADDRESS", login_max_per_address, "50", 1, 1000000,
      "Login attempts per client address per window (429 beyond)."),
    U("STACCATO_LOGIN_WINDOW_S", login_window_s, "60", 1, 86400, "Length of the login rate-limit window in seconds."),
    {"STACCATO_COOKIE_ORIGINS", SC_SET_STRING, F(cookie_origins), "",
     "Comma-separated origins (https://app.example) allowed to send cookie-authenticated unsafe requests, besides "
     "the server's own host.",
     0, 0, NULL},
    {"STACCATO_COMPAT", SC_SET_ENUM, F(compat), "strict",
     "openmusic: anyone signed in (or not, as OpenMusic) may write albums and songs; strict: artists and admins, "
     "owners only.",
     0, 0, "strict|openmusic"},
    {"STACCATO_PUBLIC_URL", SC_SET_STRING, F(public_url), "",
     "Absolute base URL of the server for links it returns (coverUrl); empty: derived from the Host header.", 0, 0,
     NULL},
    {"STACCATO_ADMIN_USERNAME", SC_SET_STRING, F(admin_username), "",
     "With STACCATO_ADMIN_PASSWORD: at start, create this admin account (or make the existing one an admin).", 0, 0,
     NULL},
    {"STACCATO_ADMIN_PASSWORD", SC_SET_STRING, F(admin_password), "", "Password for STACCATO_ADMIN_USERNAME's account.",
     0, 0, NULL},
};

const size_t sc_settings_count = sizeof(sc_settings_table) / sizeof(sc_settings_table[0]);

int sc_settings_load(sc_settings *s, int argc, char **argv, int *argi, char *err, size_t errlen)
{
    return sc_config_load(sc_settings_table, sc_settings_count, s, argc, argv, argi, "STACCATO_ENV_FILE", err,
                          errlen);
}

void sc_settings_free(sc_settings *s) { sc_config_free(sc_settings_table, sc_settings_count, s); }
