/* The request arena: alignment, large allocations, reuse after reset. Under AddressSanitizer, touching memory
 * after a reset would abort the test, so these tests only touch live allocations. */
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "core/arena.h"

static void test_alignment(void)
{
    sc_arena a = {0};
    static const size_t sizes[] = {1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 33, 100, 1000, 4095, 4097, 0};
    int misaligned = 0;
    char *prev = NULL;
    size_t prev_n = 0;
    int overlaps = 0;
    for (int round = 0; round < 50; round++) {
        for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
            char *p = sc_arena_alloc(&a, sizes[i]);
            misaligned += ((uintptr_t)p % 16) != 0;
            misaligned += ((uintptr_t)p % _Alignof(max_align_t)) != 0;
            /* Consecutive allocations from one block do not overlap. */
            if (prev && p > prev && p < prev + prev_n)
                overlaps++;
            memset(p, 0xab, sizes[i]);
            prev = p;
            prev_n = sizes[i];
        }
    }
    CHECK_EQ_INT(misaligned, 0);
    CHECK_EQ_INT(overlaps, 0);

    /* A zero-byte allocation still returns a distinct usable pointer. */
    char *z1 = sc_arena_alloc(&a, 0);
    char *z2 = sc_arena_alloc(&a, 0);
    CHECK(z1 != NULL && z2 != NULL && z1 != z2);
    sc_arena_reset(&a);
    CHECK(a.head == NULL && a.pos == NULL && a.end == NULL);
}

static void test_values_survive(void)
{
    /* Fill several blocks with distinct values and read them all back. */
    sc_arena a = {0};
    enum { N = 5000 };
    uint64_t *ptrs[N];
    for (int i = 0; i < N; i++) {
        ptrs[i] = sc_arena_alloc(&a, sizeof(uint64_t) * 3);
        ptrs[i][0] = (uint64_t)i;
        ptrs[i][1] = (uint64_t)i * 7;
        ptrs[i][2] = ~(uint64_t)i;
    }
    int bad = 0;
    for (int i = 0; i < N; i++)
        bad += ptrs[i][0] != (uint64_t)i || ptrs[i][1] != (uint64_t)i * 7 || ptrs[i][2] != ~(uint64_t)i;
    CHECK_EQ_INT(bad, 0);
    sc_arena_reset(&a);
}

static void test_strndup(void)
{
    sc_arena a = {0};
    char *s = sc_arena_strndup(&a, "hello world", 5);
    CHECK_EQ_STR(s, "hello");
    char *e = sc_arena_strndup(&a, NULL, 0);
    CHECK_EQ_STR(e, "");
    char *bin = sc_arena_strndup(&a, "a\0b", 3);
    CHECK(bin[0] == 'a' && bin[1] == '\0' && bin[2] == 'b' && bin[3] == '\0');
    sc_slice d = sc_arena_dup_slice(&a, SC_SLICE_LIT("slice"));
    CHECK_EQ_SLICE(d, "slice");
    CHECK(d.ptr[5] == '\0');
    sc_arena_reset(&a);
}

static void test_large(void)
{
    sc_arena a = {0};
    /* A large allocation as the very first one. */
    char *big0 = sc_arena_alloc(&a, SC_ARENA_BLOCK_SIZE * 4);
    memset(big0, 1, SC_ARENA_BLOCK_SIZE * 4);
    CHECK_EQ_INT((uintptr_t)big0 % 16, 0);

    char *small1 = sc_arena_alloc(&a, 64);
    memset(small1, 2, 64);

    /* A large allocation with a current block: it gets its own block and the current block keeps serving. */
    char *big1 = sc_arena_alloc(&a, SC_ARENA_BLOCK_SIZE * 3 + 5);
    memset(big1, 3, SC_ARENA_BLOCK_SIZE * 3 + 5);
    char *small2 = sc_arena_alloc(&a, 64);
    memset(small2, 4, 64);
    CHECK_EQ_INT((uintptr_t)big1 % 16, 0);
    CHECK(small2 < big1 || small2 >= big1 + SC_ARENA_BLOCK_SIZE * 3 + 5);

    /* Just above half a block (own block) and exactly one block. */
    char *half = sc_arena_alloc(&a, SC_ARENA_BLOCK_SIZE / 2 + 16);
    memset(half, 5, SC_ARENA_BLOCK_SIZE / 2 + 16);
    char *whole = sc_arena_alloc(&a, SC_ARENA_BLOCK_SIZE);
    memset(whole, 6, SC_ARENA_BLOCK_SIZE);
    char *small3 = sc_arena_alloc(&a, 16);
    memset(small3, 7, 16);

    /* Nothing overwrote anything. */
    int bad = 0;
    for (size_t i = 0; i < SC_ARENA_BLOCK_SIZE * 4; i++)
        bad += big0[i] != 1;
    for (size_t i = 0; i < 64; i++)
        bad += small1[i] != 2 || small2[i] != 4;
    for (size_t i = 0; i < SC_ARENA_BLOCK_SIZE * 3 + 5; i++)
        bad += big1[i] != 3;
    for (size_t i = 0; i < SC_ARENA_BLOCK_SIZE / 2 + 16; i++)
        bad += half[i] != 5;
    for (size_t i = 0; i < SC_ARENA_BLOCK_SIZE; i++)
        bad += whole[i] != 6;
    for (size_t i = 0; i < 16; i++)
        bad += small3[i] != 7;
    CHECK_EQ_INT(bad, 0);

    /* Many large allocations. */
    char *bigs[20];
    for (int i = 0; i < 20; i++) {
        bigs[i] = sc_arena_alloc(&a, 100000 + (size_t)i);
        memset(bigs[i], 'a' + i, 100000 + (size_t)i);
    }
    bad = 0;
    for (int i = 0; i < 20; i++)
        bad += bigs[i][0] != 'a' + i || bigs[i][99999 + i] != 'a' + i;
    CHECK_EQ_INT(bad, 0);
    sc_arena_reset(&a);
    CHECK(a.head == NULL);
}

static void test_reset_reuse(void)
{
    sc_arena a = {0};
    char *first = sc_arena_alloc(&a, 100);
    memset(first, 'x', 100);
    sc_arena_reset(&a);
    /* The block went back to the free list and is the one handed out next. */
    char *again = sc_arena_alloc(&a, 100);
    CHECK(again == first);
    memset(again, 'y', 100);
    CHECK(again[99] == 'y');
    sc_arena_reset(&a);

    /* Two arenas share the pool: what one returns, the other gets. */
    sc_arena b = {0};
    char *pb = sc_arena_alloc(&b, 10);
    CHECK(pb == first);
    sc_arena c = {0};
    char *pc = sc_arena_alloc(&c, 10);
    CHECK(pc != pb); /* a block is never handed to two arenas */
    memset(pb, 1, 10);
    memset(pc, 2, 10);
    CHECK(pb[9] == 1 && pc[9] == 2);
    sc_arena_reset(&b);
    sc_arena_reset(&c);

    /* Reset of an empty arena, twice. */
    sc_arena e = {0};
    sc_arena_reset(&e);
    sc_arena_reset(&e);
    CHECK(e.head == NULL);
}

static void test_many_resets(void)
{
    sc_arena a = {0};
    int bad = 0;
    for (int round = 0; round < 2000; round++) {
        size_t n = 1 + (size_t)(round % 40);
        char *ptrs[40];
        for (size_t i = 0; i < n; i++) {
            size_t sz = (i % 5 == 4) ? SC_ARENA_BLOCK_SIZE + 100 : 200 + i * 37;
            ptrs[i] = sc_arena_alloc(&a, sz);
            memset(ptrs[i], (int)(round + i) & 0xff, sz);
            bad += ((uintptr_t)ptrs[i] % 16) != 0;
        }
        for (size_t i = 0; i < n; i++)
            bad += (unsigned char)ptrs[i][0] != ((round + i) & 0xff);
        sc_arena_reset(&a);
        bad += a.head != NULL;
    }
    CHECK_EQ_INT(bad, 0);
    sc_arena_pool_drain();
    /* The arena still works after the pool is drained. */
    char *p = sc_arena_alloc(&a, 32);
    memset(p, 0, 32);
    CHECK(p != NULL);
    sc_arena_reset(&a);
}

int main(void)
{
    test_alignment();
    test_values_survive();
    test_strndup();
    test_large();
    test_reset_reuse();
    test_many_resets();
    sc_arena_pool_drain();
    return check_report();
}
