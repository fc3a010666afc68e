/* Password hashing with Argon2id (libargon2), always on the libuv threadpool so the loop never waits for it.
 *
 * Hashing is bounded so that it cannot take the threadpool from the I/O that shares it (TLS handshake steps, file
 * opens, upload writes): at most max_running hashes or verifications are on the pool at once, at most max_queued
 * more wait on the loop in arrival order, and beyond that a new one is refused at once (the caller answers 503
 * with Retry-After). Each Argon2id run takes tens of milliseconds of one CPU and m_cost_kib of memory, so the
 * bound is also what keeps a flood of registrations or logins from holding hundreds of megabytes.
 *
 * Hashes are stored in PHC string form ($argon2id$v=19$m=...,t=...,p=...$salt$hash), so parameters can be raised
 * later without invalidating stored hashes. Verification compares in constant time (libargon2), and verifying
 * for an unknown user runs against a dummy hash of the same cost, so a login reveals nothing by its timing. */
#ifndef SC_AUTH_PASSWORD_H
#define SC_AUTH_PASSWORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct sc_password_params {
    uint32_t t_cost;     /* iterations */
    uint32_t m_cost_kib; /* memory */
    uint32_t parallelism;
} sc_password_params;

typedef struct sc_password_limits {
    uint32_t max_running; /* jobs on the threadpool at once (at least 1) */
    uint32_t max_queued;  /* jobs waiting on the loop for one of those places */
} sc_password_limits;

typedef struct sc_password_job sc_password_job;

/* encoded is the PHC string (valid during the call), or NULL when hashing failed. */
typedef void (*sc_password_hash_cb)(void *data, const char *encoded);
typedef void (*sc_password_verify_cb)(void *data, bool match);

/* Sets the parameters and limits and computes the dummy hash (blocking: call once at startup, before the loop
 * runs). Returns 0 or -1 when the parameters are unusable. */
int sc_password_init(const sc_password_params *params, const sc_password_limits *limits);
void sc_password_shutdown(void);

/* Both return the job, or NULL when max_queued jobs already wait: then nothing was started and the callback will
 * not be called. All jobs of a process run on one loop. */
sc_password_job *sc_password_hash(uv_loop_t *loop, const char *password, size_t len, sc_password_hash_cb cb,
                                  void *data);
/* encoded NULL verifies against the dummy hash (and reports no match). */
sc_password_job *sc_password_verify(uv_loop_t *loop, const char *encoded, const char *password, size_t len,
                                    sc_password_verify_cb cb, void *data);
/* The callback will not be called; a waiting job is freed at once, a running one once the threadpool lets go of
 * it. job may be NULL. */
void sc_password_cancel(sc_password_job *job);

/* Jobs on the threadpool now, and waiting for a place. */
uint32_t sc_password_running(void);
uint32_t sc_password_waiting(void);

#endif
