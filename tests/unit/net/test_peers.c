/* The per-address connection counts: the cap, release, growth, and deletion inside probe runs (checked against a
 * plain array as the model, through many random opens and closes over few addresses). */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/random.h"
#include "net/peers.h"

static void addr_of(unsigned i, uint8_t out[16])
{
    memset(out, 0, 16);
    out[10] = out[11] = 0xff; /* IPv4-mapped 10.x.y.z */
    out[12] = 10;
    out[13] = (uint8_t)(i >> 16);
    out[14] = (uint8_t)(i >> 8);
    out[15] = (uint8_t)i;
}

static void test_cap_and_release(void)
{
    sc_peer_table t = {0};
    uint8_t a[16], b[16];
    addr_of(1, a);
    addr_of(2, b);
    CHECK_EQ_INT(sc_peer_table_count(&t, a), 0);
    CHECK(sc_peer_table_take(&t, a, 2));
    CHECK(sc_peer_table_take(&t, a, 2));
    CHECK(!sc_peer_table_take(&t, a, 2)); /* the third is refused and not counted */
    CHECK_EQ_INT(sc_peer_table_count(&t, a), 2);
    CHECK(sc_peer_table_take(&t, b, 2)); /* another address has its own count */
    sc_peer_table_release(&t, a);
    CHECK_EQ_INT(sc_peer_table_count(&t, a), 1);
    CHECK(sc_peer_table_take(&t, a, 2));
    sc_peer_table_release(&t, a);
    sc_peer_table_release(&t, a);
    sc_peer_table_release(&t, b);
    CHECK_EQ_INT(sc_peer_table_count(&t, a), 0);
    CHECK_EQ_INT((long long)t.used, 0);
    sc_peer_table_free(&t);
}

/* Random opens and closes over 3000 addresses (so that the table grows and probe runs form), against a model. */
static void test_model(void)
{
    enum { N = 3000, STEPS = 200000, CAP = 3 };
    static uint32_t model[N];
    sc_peer_table t = {0};
    uint8_t a[16];
    unsigned bad = 0;
    for (unsigned step = 0; step < STEPS; step++) {
        unsigned i = (unsigned)sc_random_below(step < STEPS / 2 ? N : N / 10);
        addr_of(i, a);
        if (sc_random_below(2) && model[i]) {
            sc_peer_table_release(&t, a);
            model[i]--;
        } else {
            bool took = sc_peer_table_take(&t, a, CAP);
            bad += took != (model[i] < CAP);
            model[i] += took;
        }
    }
    size_t live = 0;
    for (unsigned i = 0; i < N; i++) {
        addr_of(i, a);
        bad += sc_peer_table_count(&t, a) != model[i];
        live += model[i] > 0;
    }
    CHECK_EQ_INT(bad, 0);
    CHECK_EQ_INT((long long)t.used, (long long)live);
    for (unsigned i = 0; i < N; i++) {
        addr_of(i, a);
        while (model[i]) {
            sc_peer_table_release(&t, a);
            model[i]--;
        }
    }
    CHECK_EQ_INT((long long)t.used, 0);
    for (size_t k = 0; k < t.cap; k++)
        bad += t.slots[k].count != 0;
    CHECK_EQ_INT(bad, 0);
    sc_peer_table_free(&t);
}

int main(void)
{
    test_cap_and_release();
    test_model();
    return check_report();
}
