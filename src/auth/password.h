/* Password hashing with Argon2id (libargon2), always on the libuv threadpool so the loop never waits for it.
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

typedef struct sc_password_job sc_password_job;

/* encoded is the PHC string (valid during the call), or NULL when hashing failed. */
typedef void (*sc_password_hash_cb)(void *data, const char *encoded);
typedef void (*sc_password_verify_cb)(void *data, bool match);

/* Sets the parameters and computes the dummy hash (blocking: call once at startup, before the loop runs).
 * Returns 0 or -1 when the parameters are unusable. */
int sc_password_init(const sc_password_params *params);
void sc_password_shutdown(void);

sc_password_job *sc_password_hash(uv_loop_t *loop, const char *password, size_t len, sc_password_hash_cb cb,
                                  void *data);
/* encoded NULL verifies against the dummy hash (and reports no match). */
sc_password_job *sc_password_verify(uv_loop_t *loop, const char *encoded, const char *password, size_t len,
                                    sc_password_verify_cb cb, void *data);
/* The callback will not be called; the job frees itself once the threadpool lets go of it. */
void sc_password_cancel(sc_password_job *job);

#endif
