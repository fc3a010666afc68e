#include "auth/password.h"

#include <argon2.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/mem.h"
#include "core/random.h"

#define SALT_LEN 16
#define HASH_LEN 32

static sc_password_params params = {2, 19456, 1};
static char *dummy_hash;

struct sc_password_job {
    uv_work_t work;
    bool verify, cancelled, match;
    char *password;
    size_t len;
    char *encoded; /* input for verify, output for hash */
    sc_password_hash_cb hash_cb;
    sc_password_verify_cb verify_cb;
    void *data;
};

static char *hash_now(const char *password, size_t len)
{
    unsigned char salt[SALT_LEN];
    sc_random_bytes(salt, sizeof(salt));
    size_t enclen = argon2_encodedlen(params.t_cost, params.m_cost_kib, params.parallelism, SALT_LEN, HASH_LEN,
                                      Argon2_id);
    char *encoded = sc_alloc(enclen);
    int rc = argon2id_hash_encoded(params.t_cost, params.m_cost_kib, params.parallelism, password, len, salt,
                                   SALT_LEN, HASH_LEN, encoded, enclen);
    if (rc != ARGON2_OK) {
        sc_log_error("argon2: %s", argon2_error_message(rc));
        free(encoded);
        return NULL;
    }
    return encoded;
}

int sc_password_init(const sc_password_params *p)
{
    params = *p;
    char pw[32];
    sc_random_bytes(pw, sizeof(pw));
    free(dummy_hash);
    dummy_hash = hash_now(pw, sizeof(pw));
    return dummy_hash ? 0 : -1;
}

void sc_password_shutdown(void)
{
    free(dummy_hash);
    dummy_hash = NULL;
}

static void on_work(uv_work_t *w)
{
    sc_password_job *j = w->data;
    if (j->verify) {
        int rc = argon2id_verify(j->encoded ? j->encoded : dummy_hash, j->password, j->len);
        j->match = rc == ARGON2_OK && j->encoded != NULL;
    } else {
        j->encoded = hash_now(j->password, j->len);
    }
    /* The plaintext is not kept a moment longer than needed. */
    explicit_bzero(j->password, j->len);
}

static void job_free(sc_password_job *j)
{
    explicit_bzero(j->password, j->len);
    free(j->password);
    free(j->encoded);
    free(j);
}

static void on_after_work(uv_work_t *w, int status)
{
    sc_password_job *j = w->data;
    if (!j->cancelled) {
        if (j->verify)
            j->verify_cb(j->data, status == 0 && j->match);
        else
            j->hash_cb(j->data, status == 0 ? j->encoded : NULL);
    }
    job_free(j);
}

static sc_password_job *job_new(const char *password, size_t len, void *data)
{
    sc_password_job *j = sc_calloc(sizeof(*j));
    j->password = sc_alloc(len + 1);
    memcpy(j->password, password, len);
    j->password[len] = '\0';
    j->len = len;
    j->data = data;
    j->work.data = j;
    return j;
}

sc_password_job *sc_password_hash(uv_loop_t *loop, const char *password, size_t len, sc_password_hash_cb cb,
                                  void *data)
{
    sc_password_job *j = job_new(password, len, data);
    j->hash_cb = cb;
    uv_queue_work(loop, &j->work, on_work, on_after_work);
    return j;
}

sc_password_job *sc_password_verify(uv_loop_t *loop, const char *encoded, const char *password, size_t len,
                                    sc_password_verify_cb cb, void *data)
{
    sc_password_job *j = job_new(password, len, data);
    j->verify = true;
    j->verify_cb = cb;
    j->encoded = encoded ? sc_strdup(encoded) : NULL;
    uv_queue_work(loop, &j->work, on_work, on_after_work);
    return j;
}

void sc_password_cancel(sc_password_job *j)
{
    if (!j)
        return;
    j->cancelled = true;
    uv_cancel((uv_req_t *)&j->work);
}
