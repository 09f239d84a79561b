/* Serial pieces of the RDM module: the average-rank transform against scipy.stats.rankdata
 * (fixture from tools/make_rdm_fixtures.py: ties, -0.0 / +0.0, extreme values, a constant
 * vector), metric names and parsing with suggestions, the grid / block resolution, and the
 * memory plan (monotone in the sizes, and at the full subject size on 2 ranks within the
 * 1.3 x (input + output share) budget the design promises). */
#include "rdm/rdm_priv.h"
#include "rdml/npy.h"
#include "test.h"

static void test_rank_vs_scipy(void) {
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    rdml_npy fi, fo;
    int rc = rdml_npy_open(&ctx, test_fixture("rdm/rank_in.npy"), 0, &fi);
    if (rc == RDML_OK) rc = rdml_npy_open(&ctx, test_fixture("rdm/rank_out.npy"), 0, &fo);
    CHECK_EQ_I(rc, RDML_OK);
    if (rc != RDML_OK) return;
    int64_t r = fi.shape[0], c = fi.shape[1];
    float *x = malloc((size_t)(r * c) * sizeof *x), *want = malloc((size_t)(r * c) * sizeof *want);
    float *got = malloc((size_t)c * sizeof *got);
    uint32_t *scr = malloc((size_t)(4 * c) * sizeof *scr);
    CHECK_EQ_I(rdml_npy_read_f32(&ctx, &fi, 0, r, NULL, 0, x), RDML_OK);
    CHECK_EQ_I(rdml_npy_read_f32(&ctx, &fo, 0, r, NULL, 0, want), RDML_OK);
    for (int64_t i = 0; i < r; i++) {
        rdm_rank_avg(x + i * c, c, got, scr);
        int same = 1;
        for (int64_t j = 0; j < c; j++)
            if (got[j] != want[i * c + j]) same = 0;
        CHECK(same);
        /* in place gives the same */
        rdm_rank_avg(x + i * c, c, x + i * c, scr);
        CHECK(memcmp(x + i * c, got, (size_t)c * sizeof *got) == 0);
    }
    free(x);
    free(want);
    free(got);
    free(scr);
    rdml_npy_close(&fi);
    rdml_npy_close(&fo);
}

static void test_metric_names(void) {
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    const char *names[] = {"correlation", "euclidean", "cosine", "sqeuclidean", "spearman"};
    for (int i = 0; i < 5; i++) {
        rdml_rdm_metric m = RDML_RDM_CORRELATION;
        CHECK_EQ_I(rdml_rdm_metric_parse(&ctx, names[i], &m), RDML_OK);
        CHECK_EQ_I(m, i);
        CHECK(strcmp(rdml_rdm_metric_name(m), names[i]) == 0);
    }
    rdml_rdm_metric m;
    CHECK_EQ_I(rdml_rdm_metric_parse(&ctx, "corelation", &m), RDML_ECONFIG);
    CHECK_STR_HAS(ctx.msg, "did you mean 'correlation'");
    CHECK_STR_HAS(ctx.msg, "valid: correlation, euclidean");
}

static void test_resolve(void) {
    rdml_rdm_params p;
    rdml_rdm_defaults(&p);
    CHECK_EQ_I(p.metric, RDML_RDM_CORRELATION);
    CHECK_EQ_I(p.zero_variance_error, 1);
    int pr, pc;
    int64_t b;
    CHECK(rdm_resolve(100, 1000, 4, &p, &pr, &pc, &b));
    CHECK_EQ_I(pr, 1); /* auto: all images on every rank */
    CHECK_EQ_I(pc, 4);
    /* one contiguous run of whole vertex chunks per rank: max(12, ceil(V / 2048)) chunks of
     * nearly equal width (multiples of 8, at least 256): 1000 vertices are 4 chunks of 256,
     * one per rank; 39548 are 20 of 1984; 20000 are 12 of 1672, 4 per rank on 3 ranks */
    CHECK_EQ_I(rdm_chunk_width(1000), 256);
    CHECK_EQ_I(b, 256);
    CHECK(rdm_resolve(100, 39548, 2, &p, &pr, &pc, &b));
    CHECK_EQ_I(rdm_chunk_width(39548), 1984);
    CHECK_EQ_I(rdm_nchunks(39548), 20);
    CHECK_EQ_I(b, 10 * 1984);
    CHECK(rdm_resolve(100, 20000, 3, &p, &pr, &pc, &b));
    CHECK_EQ_I(rdm_chunk_width(20000), 1672);
    CHECK_EQ_I(rdm_nchunks(20000), 12);
    CHECK_EQ_I(b, 4 * 1672);
    CHECK_EQ_I(rdm_chunk_width(100000), 2048); /* at most RDM_KCHUNK */
    p.block = 7; /* rdm.block applies to the ScaLAPACK grids only */
    CHECK(rdm_resolve(100, 20000, 3, &p, &pr, &pc, &b));
    CHECK_EQ_I(b, 4 * 1672);
    p.block = 0;
    p.grid_rows = 2;
    CHECK(rdm_resolve(100, 1000, 4, &p, &pr, &pc, &b));
    CHECK_EQ_I(pc, 2);
    CHECK_EQ_I(b, 64);
    p.grid_rows = 3;
    CHECK(!rdm_resolve(100, 1000, 4, &p, &pr, &pc, &b));
    p.grid_rows = 2;
    p.grid_cols = 3;
    CHECK(!rdm_resolve(100, 1000, 4, &p, &pr, &pc, &b));
}

static void test_plan(void) {
    rdml_rdm_params p;
    rdml_rdm_defaults(&p);
    const int64_t n = 9841, v = 39548;
    int64_t plan = rdml_rdm_plan_bytes(n, v, 2, &p);
    double share = ((double)n * v * 4 + (double)n * n * 4) / 2;
    CHECK(plan >= share);      /* holds at least its input and output */
    CHECK(plan <= 1.3 * share); /* the budget of the design */
    CHECK(rdml_rdm_plan_bytes(n, v, 4, &p) < plan);
    CHECK(rdml_rdm_plan_bytes(n, 2 * v, 2, &p) > plan);
    CHECK(rdml_rdm_plan_bytes(2 * n, v, 2, &p) > plan);
    CHECK_EQ_I(rdml_rdm_plan_bytes(0, v, 2, &p), 0);
    p.grid_rows = 2; /* ScaLAPACK path: holds a block-cyclic copy of the result too */
    CHECK(rdml_rdm_plan_bytes(n, v, 2, &p) > plan);
    char buf[32];
    rdm_fmt_bytes(buf, sizeof buf, 1.9e9);
    CHECK(strcmp(buf, "1.9 GB") == 0);
    rdm_fmt_bytes(buf, sizeof buf, 310e6);
    CHECK(strcmp(buf, "310 MB") == 0);
}

int main(void) {
    RUN(test_rank_vs_scipy);
    RUN(test_metric_names);
    RUN(test_resolve);
    RUN(test_plan);
    return test_summary();
}
