/* Unit tests of the core module: error recording, RNG, partition arithmetic, string helpers. */
#include <stdint.h>

#include <math.h>
#include <stdlib.h>

#include "core/radix.h"
#include "rdml/core.h"
#include "test.h"

static void test_first_error_wins_and_prefix(void) {
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    CHECK_EQ_I(ctx.code, RDML_OK);
    int rc = RDML_FAIL(&ctx, RDML_EDATA, "value %d is bad", 7);
    CHECK_EQ_I(rc, RDML_EDATA);
    rc = RDML_FAIL(&ctx, RDML_EIO, "second");
    CHECK_EQ_I(rc, RDML_EDATA); /* first wins */
    CHECK_STR_HAS(ctx.msg, "value 7 is bad");
    rdml_ctx_prefix(&ctx, "reading %s", "subj01");
    CHECK(strcmp(ctx.msg, "reading subj01: value 7 is bad") == 0);
    rdml_ctx_clear(&ctx);
    CHECK_EQ_I(ctx.code, RDML_OK);
    CHECK_EQ_I(ctx.msg[0], 0);
}

static void test_status_names_and_exit_codes(void) {
    CHECK(strcmp(rdml_status_name(RDML_ECONFIG), "config") == 0);
    CHECK(strcmp(rdml_status_name(999), "unknown") == 0);
    CHECK_EQ_I(rdml_status_exit_code(RDML_OK), 0);
    for (int c = 1; c < RDML_NSTATUS; c++) {
        CHECK(rdml_status_exit_code(c) >= 2);
        CHECK(rdml_status_exit_code(c) < 126); /* below shell-reserved codes */
    }
}

static void test_calloc_overflow_is_reported(void) {
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    void *p = rdml_calloc(&ctx, SIZE_MAX / 2, 4, "huge table");
    CHECK(p == NULL);
    CHECK_EQ_I(ctx.code, RDML_ENOMEM);
    CHECK_STR_HAS(ctx.msg, "huge table");
}

static void test_rng_is_counter_based(void) {
    rdml_rng r = rdml_rng_make(42, 7, 0);
    for (uint64_t i = 0; i < 100; i++) CHECK(rdml_rng_next(&r) == rdml_rng_at(42, 7, i));
    /* starting mid-stream gives the same numbers as skipping ahead */
    rdml_rng s = rdml_rng_make(42, 7, 50);
    CHECK(rdml_rng_next(&s) == rdml_rng_at(42, 7, 50));
    /* streams and seeds differ */
    CHECK(rdml_rng_at(42, 7, 0) != rdml_rng_at(42, 8, 0));
    CHECK(rdml_rng_at(42, 7, 0) != rdml_rng_at(43, 7, 0));
    CHECK(rdml_rng_substream(7, 1) != rdml_rng_substream(7, 2));
    CHECK(rdml_rng_substream(7, 1) != rdml_rng_substream(8, 1));
    /* the block generator gives exactly the draws of rdml_rng_next, and advances the counter */
    uint64_t blk[37];
    rdml_rng b = rdml_rng_make(42, 7, 3);
    rdml_rng_fill_u64(&b, 37, blk);
    for (uint64_t i = 0; i < 37; i++) CHECK(blk[i] == rdml_rng_at(42, 7, 3 + i));
    CHECK(rdml_rng_next(&b) == rdml_rng_at(42, 7, 40));
    rdml_rng_fill_u64(&b, 0, blk);
    CHECK(b.counter == 41);
}

static void test_rng_distributions(void) {
    rdml_rng r = rdml_rng_make(1, 2, 0);
    const int n = 200000;
    double s = 0, s2 = 0, mn = 1, mx = 0;
    for (int i = 0; i < n; i++) {
        double u = rdml_rng_uniform(&r);
        s += u;
        if (u < mn) mn = u;
        if (u > mx) mx = u;
    }
    CHECK(mn >= 0 && mx < 1);
    CHECK_NEAR(s / n, 0.5, 0.005);
    s = 0;
    for (int i = 0; i < n; i++) {
        double z = rdml_rng_normal(&r);
        s += z;
        s2 += z * z;
    }
    CHECK_NEAR(s / n, 0.0, 0.01);
    CHECK_NEAR(s2 / n, 1.0, 0.02);
    int counts[7] = {0};
    for (int i = 0; i < 70000; i++) counts[rdml_rng_below(&r, 7)]++;
    for (int k = 0; k < 7; k++) CHECK(counts[k] > 9500 && counts[k] < 10500);
    CHECK_EQ_I(rdml_rng_below(&r, 1), 0);
}

static void test_shuffle_is_a_permutation(void) {
    int64_t a[50], seen[50] = {0};
    for (int i = 0; i < 50; i++) a[i] = i;
    rdml_rng r = rdml_rng_make(3, 4, 0);
    rdml_rng_shuffle(&r, a, 50);
    int moved = 0;
    for (int i = 0; i < 50; i++) {
        CHECK(a[i] >= 0 && a[i] < 50);
        if (a[i] >= 0 && a[i] < 50) seen[a[i]]++;
        moved += a[i] != i;
    }
    for (int i = 0; i < 50; i++) CHECK_EQ_I(seen[i], 1);
    CHECK(moved > 25);
    /* same key, same permutation */
    int64_t b[50];
    for (int i = 0; i < 50; i++) b[i] = i;
    rdml_rng r2 = rdml_rng_make(3, 4, 0);
    rdml_rng_shuffle(&r2, b, 50);
    CHECK(memcmp(a, b, sizeof a) == 0);
}

static void test_block_partition(void) {
    for (int64_t n = 0; n < 40; n++) {
        for (int p = 1; p <= 9; p++) {
            int64_t expect_lo = 0;
            for (int k = 0; k < p; k++) {
                int64_t lo, hi;
                rdml_part_block(n, k, p, &lo, &hi);
                CHECK_EQ_I(lo, expect_lo);
                CHECK(hi - lo == n / p || hi - lo == n / p + 1);
                for (int64_t i = lo; i < hi; i++) CHECK_EQ_I(rdml_part_owner(n, p, i), k);
                expect_lo = hi;
            }
            CHECK_EQ_I(expect_lo, n);
        }
    }
    int64_t lo, hi;
    rdml_part_block(((int64_t)1 << 40) + 3, 3, 4, &lo, &hi); /* 64-bit sizes */
    CHECK_EQ_I(hi - lo, ((int64_t)1 << 38));
}

static void test_block_cyclic_maps(void) {
    for (int64_t n = 1; n < 60; n += 7) {
        for (int64_t nb = 1; nb <= 8; nb++) {
            for (int np = 1; np <= 5; np++) {
                int64_t total = 0;
                for (int p = 0; p < np; p++) {
                    int64_t loc = rdml_part_numroc(n, nb, p, 0, np);
                    total += loc;
                    for (int64_t il = 0; il < loc; il++) {
                        int64_t ig = rdml_part_l2g(il, nb, p, np);
                        CHECK(ig < n);
                        CHECK_EQ_I(rdml_part_g2p(ig, nb, np), p);
                        CHECK_EQ_I(rdml_part_g2l(ig, nb, np), il);
                    }
                }
                CHECK_EQ_I(total, n);
            }
        }
    }
}

static void test_grid(void) {
    int pr, pc;
    int cases[][3] = {{1, 1, 1}, {2, 2, 1}, {3, 3, 1}, {4, 2, 2}, {6, 3, 2}, {12, 4, 3}, {7, 7, 1}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        rdml_part_grid(cases[i][0], &pr, &pc);
        CHECK_EQ_I(pr, cases[i][1]);
        CHECK_EQ_I(pc, cases[i][2]);
    }
}

static void test_edit_distance_and_nearest(void) {
    CHECK_EQ_I(rdml_edit_distance("kitten", "sitting"), 3);
    CHECK_EQ_I(rdml_edit_distance("", "abc"), 3);
    CHECK_EQ_I(rdml_edit_distance("Images", "images"), 0);
    const char *keys[] = {"root", "subjects", "rois", "images", "standardize"};
    CHECK_EQ_I(rdml_nearest("subjcts", keys, 5), 1);
    CHECK_EQ_I(rdml_nearest("imgs", keys, 5), 3);
    CHECK_EQ_I(rdml_nearest("zzzzzzzz", keys, 5), -1);
    char buf[4];
    CHECK_EQ_I(rdml_strlcpy(buf, "abcdef", sizeof buf), 6);
    CHECK(strcmp(buf, "abc") == 0);
}

/* The shared radix sort (core/radix.h) against a stable insertion sort: random keys with few
 * and many distinct values, every lo_bit the callers use and others (ties on the low bits
 * keep input order), with and without a payload; the double keys order like the values. */
static void test_radix_sort(void) {
    enum { P = 3000 };
    uint64_t *k = malloc(P * sizeof *k), *kb = malloc(P * sizeof *kb), *ref = malloc(P * sizeof *ref);
    uint32_t *ix = malloc(P * sizeof *ix), *ib = malloc(P * sizeof *ib), *rix = malloc(P * sizeof *rix);
    uint64_t *k0 = k, *kb0 = kb;
    uint32_t *ix0 = ix, *ib0 = ib;
    rdml_rng r = rdml_rng_make(5, 1, 0);
    const int lo_bits[] = {0, 1, 11, 32, 40, 63};
    for (int trial = 0; trial < 24; trial++) {
        const int64_t p = trial % 4 == 0 ? trial : P;
        const int lo = lo_bits[trial % 6];
        const uint64_t distinct = trial % 3 == 0 ? 5 : trial % 3 == 1 ? 1 : 0; /* 0: any */
        for (int64_t i = 0; i < p; i++) {
            uint64_t v = rdml_rng_next(&r);
            if (distinct) v = (v % distinct) << 50 | (v & 0xffff);
            ref[i] = k[i] = v;
            rix[i] = ix[i] = (uint32_t)i;
        }
        const uint64_t m = lo ? ~(((uint64_t)1 << lo) - 1) : ~(uint64_t)0;
        for (int64_t i = 1; i < p; i++) /* stable insertion sort on the masked keys */
            for (int64_t j = i; j > 0 && (ref[j - 1] & m) > (ref[j] & m); j--) {
                uint64_t t = ref[j]; ref[j] = ref[j - 1]; ref[j - 1] = t;
                uint32_t u = rix[j]; rix[j] = rix[j - 1]; rix[j - 1] = u;
            }
        const int with_payload = trial % 2;
        rdml_radix_sort_u64(&k, &kb, with_payload ? &ix : NULL, with_payload ? &ib : NULL, p, lo);
        int same = 1;
        for (int64_t i = 0; i < p; i++) same &= k[i] == ref[i] && (!with_payload || ix[i] == rix[i]);
        CHECK(same);
        CHECK((k == k0 && kb == kb0) || (k == kb0 && kb == k0));
        CHECK((ix == ix0 && ib == ib0) || (ix == ib0 && ib == ix0));
    }
    const double v[] = {-INFINITY, -1e300, -2.5, -1e-310, -0.0, 0.0, 1e-310, 3.0, 1e300, INFINITY};
    for (int i = 0; i + 1 < 10; i++)
        CHECK(rdml_radix_key_double(v[i]) < rdml_radix_key_double(v[i + 1]) || (v[i] == v[i + 1] &&
              rdml_radix_key_double(v[i]) == rdml_radix_key_double(v[i + 1])));
    free(k0); free(kb0); free(ref); free(ix0); free(ib0); free(rix);
}

int main(void) {
    RUN(test_radix_sort);
    RUN(test_first_error_wins_and_prefix);
    RUN(test_status_names_and_exit_codes);
    RUN(test_calloc_overflow_is_reported);
    RUN(test_rng_is_counter_based);
    RUN(test_rng_distributions);
    RUN(test_shuffle_is_a_permutation);
    RUN(test_block_partition);
    RUN(test_block_cyclic_maps);
    RUN(test_grid);
    RUN(test_edit_distance_and_nearest);
    return test_summary();
}
