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
static sc_password_limits limits = {1, 64};
static char *dummy_hash;

struct sc_password_job {
    uv_work_t work;
    uv_loop_t *loop;
    sc_password_job *next; /* in the wait queue */
    bool verify, cancelled, match, queued;
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

/* The jobs waiting for a place on the threadpool, oldest first. One loop per process uses them. */
static struct {
    sc_password_job *head, *tail;
    uint32_t waiting, running;
} q;

int sc_password_init(const sc_password_params *p, const sc_password_limits *l)
{
    params = *p;
    limits = *l;
    if (limits.max_running == 0)
        limits.max_running = 1;
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

static void start_waiting(void);

static void on_after_work(uv_work_t *w, int status)
{
    sc_password_job *j = w->data;
    q.running--;
    if (!j->cancelled) {
        if (j->verify)
            j->verify_cb(j->data, status == 0 && j->match);
        else
            j->hash_cb(j->data, status == 0 ? j->encoded : NULL);
    }
    job_free(j);
    start_waiting();
}

static void start(sc_password_job *j)
{
    q.running++;
    uv_queue_work(j->loop, &j->work, on_work, on_after_work);
}

/* Moves waiting jobs to the threadpool while places are free. */
static void start_waiting(void)
{
    while (q.head && q.running < limits.max_running) {
        sc_password_job *j = q.head;
        q.head = j->next;
        if (!q.head)
            q.tail = NULL;
        q.waiting--;
        j->queued = false;
        start(j);
    }
}

static sc_password_job *job_new(uv_loop_t *loop, const char *password, size_t len, void *data)
{
    if (q.running >= limits.max_running && q.waiting >= limits.max_queued)
        return NULL;
    sc_password_job *j = sc_calloc(sizeof(*j));
    j->loop = loop;
    j->password = sc_alloc(len + 1);
    memcpy(j->password, password, len);
    j->password[len] = '\0';
    j->len = len;
    j->data = data;
    j->work.data = j;
    return j;
}

/* Starts the job now when a place is free, else puts it at the end of the wait queue. */
static sc_password_job *submit(sc_password_job *j)
{
    if (q.running < limits.max_running) {
        start(j);
        return j;
    }
    j->queued = true;
    if (q.tail)
        q.tail->next = j;
    else
        q.head = j;
    q.tail = j;
    q.waiting++;
    return j;
}

sc_password_job *sc_password_hash(uv_loop_t *loop, const char *password, size_t len, sc_password_hash_cb cb,
                                  void *data)
{
    sc_password_job *j = job_new(loop, password, len, data);
    if (!j)
        return NULL;
    j->hash_cb = cb;
    return submit(j);
}

sc_password_job *sc_password_verify(uv_loop_t *loop, const char *encoded, const char *password, size_t len,
                                    sc_password_verify_cb cb, void *data)
{
    sc_password_job *j = job_new(loop, password, len, data);
    if (!j)
        return NULL;
    j->verify = true;
    j->verify_cb = cb;
    j->encoded = encoded ? sc_strdup(encoded) : NULL;
    return submit(j);
}

void sc_password_cancel(sc_password_job *j)
{
    if (!j)
        return;
    if (j->queued) {
        sc_password_job **p = &q.head, *prev = NULL;
        while (*p != j) {
            prev = *p;
            p = &(*p)->next;
        }
        *p = j->next;
        if (q.tail == j)
            q.tail = prev;
        q.waiting--;
        job_free(j);
        return;
    }
    /* A job the threadpool has not started yet is cancelled there; its completion still runs (with
     * UV_ECANCELED) and frees it. */
    j->cancelled = true;
    uv_cancel((uv_req_t *)&j->work);
}

uint32_t sc_password_running(void) { return q.running; }

uint32_t sc_password_waiting(void) { return q.waiting; }
