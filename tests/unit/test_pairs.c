/* Pair sets and splits: extremes equal the paper's numpy construction and percentile bands
 * equal np.percentile's (fixtures from tools/make_svm_fixtures.py); balanced adds per image at
 * most floor(k / 0.3) band partners, all inside the band, the same for the same seed and
 * different for another; all = n(n-1)/2; symmetric and dedup options; labels by threshold
 * and continuous; the colour pixel rule (nearest pure colour, ties unclassified, fraction
 * 0.7) and the colour set (equalised counts, all pairs, an absent colour is an error with the
 * counts); classes and colour pairs equal to the paper's (port in tools/paper_colors.py) at
 * fraction 0.4, where the largest share and the order of the pairs matter; image-disjoint K-fold and holdout (sklearn's sizes, no image on both sides, every
 * image tested once, deterministic), the pair-level split refused without its flag, fewer
 * images than folds and empty folds as errors naming the numbers. */
#include "rdml/pairs.h"
#include "svm_fixture.h"

static float *g_R;
static int64_t g_n;

static void test_extremes_match_numpy(void) {
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    rdml_pairs_params p;
    rdml_pairs_defaults(&p);
    p.k = 8;
    rdml_pairs P;
    CHECK_EQ_I(rdml_pairs_build(&ctx, &p, g_n, g_R, NULL, &P), RDML_OK);
    int64_t m;
    int64_t *ref = FX_I64("extremes_k8", &m, NULL);
    CHECK(ref != NULL);
    CHECK_EQ_I(P.n, m);
    CHECK_EQ_I(P.n, g_n * 16);
    int64_t same = 0;
    for (int64_t t = 0; ref && t < m && t < P.n; t++) same += P.ij[2 * t] == ref[2 * t] && P.ij[2 * t + 1] == ref[2 * t + 1];
    CHECK_EQ_I(same, m);
    for (int64_t t = 0; t < P.n; t++) {
        CHECK(P.value[t] == g_R[P.ij[2 * t] * g_n + P.ij[2 * t + 1]]);
        CHECK(P.label[t] == (P.value[t] > 1.0 ? 1.0 : 0.0));
    }
    rdml_pairs_free(&P);
    free(ref);
    /* continuous labels are the values */
    p.continuous = 1;
    CHECK_EQ_I(rdml_pairs_build(&ctx, &p, g_n, g_R, NULL, &P), RDML_OK);
    CHECK(P.label[5] == P.value[5]);
    rdml_pairs_free(&P);
    p.k = g_n; /* more partners than exist */
    CHECK_EQ_I(rdml_pairs_build(&ctx, &p, g_n, g_R, NULL, &P), RDML_EDATA);
    CHECK_STR_HAS(ctx.msg, "pairs.k = 40");
    CHECK_STR_HAS(ctx.msg, "only 39 partners");
}

static void test_percentile_matches_numpy(void) {
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    rdml_pairs_params p;
    rdml_pairs_defaults(&p);
    p.set = RDML_PAIRS_PERCENTILE;
    p.pct_lo = 10;
    p.pct_hi = 85;
    rdml_pairs P;
    CHECK_EQ_I(rdml_pairs_build(&ctx, &p, g_n, g_R, NULL, &P), RDML_OK);
    int64_t m;
    int64_t *ref = FX_I64("percentile_10_85", &m, NULL);
    CHECK(ref && P.n == m);
    int64_t same = 0;
    for (int64_t t = 0; ref && t < m && t < P.n; t++) same += P.ij[2 * t] == ref[2 * t] && P.ij[2 * t + 1] == ref[2 * t + 1];
    CHECK_EQ_I(same, m);
    rdml_pairs_free(&P);
    free(ref);
}

static void test_all_balanced_options(void) {
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    rdml_pairs_params p;
    rdml_pairs_defaults(&p);
    p.set = RDML_PAIRS_ALL;
    rdml_pairs P, Q;
    CHECK_EQ_I(rdml_pairs_build(&ctx, &p, g_n, g_R, NULL, &P), RDML_OK);
    CHECK_EQ_I(P.n, g_n * (g_n - 1) / 2);
    rdml_pairs_free(&P);

    p.set = RDML_PAIRS_BALANCED;
    p.k = 3;
    p.mid_lo = 0.9;
    p.mid_hi = 1.1;
    p.mid_count = 5;
    CHECK_EQ_I(rdml_pairs_build(&ctx, &p, g_n, g_R, NULL, &P), RDML_OK);
    int64_t t = 0, banded = 0;
    for (int64_t i = 0; i < g_n; i++) {
        int64_t avail = 0;
        for (int64_t j = 0; j < g_n; j++)
            avail += j != i && g_R[i * g_n + j] >= 0.9 && g_R[i * g_n + j] <= 1.1;
        t += 6; /* extremes */
        int64_t got = 0;
        while (t < P.n && P.ij[2 * t] == i) {
            CHECK(P.value[t] >= 0.9 && P.value[t] <= 1.1);
            got++, t++;
        }
        CHECK_EQ_I(got, avail < 5 ? avail : 5);
        banded += got;
    }
    CHECK_EQ_I(t, P.n);
    CHECK(banded > 0);
    CHECK_EQ_I(rdml_pairs_build(&ctx, &p, g_n, g_R, NULL, &Q), RDML_OK);
    CHECK(P.n == Q.n && memcmp(P.ij, Q.ij, (size_t)P.n * 16) == 0);
    rdml_pairs_free(&Q);
    p.seed = 43;
    CHECK_EQ_I(rdml_pairs_build(&ctx, &p, g_n, g_R, NULL, &Q), RDML_OK);
    CHECK(P.n == Q.n && memcmp(P.ij, Q.ij, (size_t)P.n * 16) != 0);
    rdml_pairs_free(&Q);
    rdml_pairs_free(&P);
    /* default band count is floor(k / 0.3) */
    p.mid_count = 0;
    p.k = 3;
    p.mid_lo = -10;
    p.mid_hi = 10;
    CHECK_EQ_I(rdml_pairs_build(&ctx, &p, g_n, g_R, NULL, &P), RDML_OK);
    CHECK_EQ_I(P.n, g_n * (6 + 10));
    rdml_pairs_free(&P);

    /* extremes with k > n/2 repeat (i, j) across the low and high lists; dedup drops them;
     * symmetric folds (i, j) and (j, i) together */
    rdml_pairs_defaults(&p);
    p.k = 30;
    CHECK_EQ_I(rdml_pairs_build(&ctx, &p, g_n, g_R, NULL, &P), RDML_OK);
    CHECK_EQ_I(P.n, g_n * 60);
    p.dedup = 1;
    CHECK_EQ_I(rdml_pairs_build(&ctx, &p, g_n, g_R, NULL, &Q), RDML_OK);
    CHECK_EQ_I(Q.n, g_n * 39); /* every partner once */
    rdml_pairs_free(&Q);
    p.dedup = 0;
    p.symmetric = 1;
    CHECK_EQ_I(rdml_pairs_build(&ctx, &p, g_n, g_R, NULL, &Q), RDML_OK);
    CHECK_EQ_I(Q.n, g_n * (g_n - 1) / 2);
    for (int64_t u = 0; u < Q.n; u++) CHECK(Q.ij[2 * u] < Q.ij[2 * u + 1]);
    rdml_pairs_free(&Q);
    rdml_pairs_free(&P);
}

static void test_color_rule(void) {
    /* 10 pixels: 7 nearly red, 1 tie red/green (128,128,0), 2 blue -> red at 0.7 */
    uint8_t px[30] = {250, 5, 5, 200, 40, 30, 255, 0, 0, 180, 90, 60, 255, 0, 0, 255, 0, 0,
                      130, 10, 120, 128, 128, 0, 0, 0, 255, 10, 20, 200};
    double f[3];
    /* pixel 6 (130,10,120): red 125^2+10^2+120^2 = 30125, blue 130^2+10^2+135^2 = 35225 -> red */
    CHECK_EQ_I(rdml_pairs_color_of(px, 10, 0.7, f), RDML_COLOR_RED);
    CHECK_NEAR(f[0], 0.7, 1e-15);
    CHECK_NEAR(f[1], 0.0, 1e-15);
    CHECK_NEAR(f[2], 0.2, 1e-15);
    CHECK_EQ_I(rdml_pairs_color_of(px, 10, 0.71, NULL), RDML_COLOR_NONE);
    uint8_t gray[3] = {100, 100, 100}; /* equidistant from all three */
    CHECK_EQ_I(rdml_pairs_color_of(gray, 1, 0.5, f), RDML_COLOR_NONE);
    CHECK(f[0] == 0 && f[1] == 0 && f[2] == 0);
    CHECK_EQ_I(rdml_color_parse("Blue"), RDML_COLOR_BLUE);
    CHECK_EQ_I(rdml_color_parse("cyan"), -1);
}

static void test_color_set(void) {
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    int colors[40];
    for (int i = 0; i < 40; i++) colors[i] = i % 5 == 0 ? RDML_COLOR_RED : i % 7 == 0 ? RDML_COLOR_BLUE : RDML_COLOR_NONE;
    /* red: 0,5,...,35 (8); blue: 7,14,21,28 (4; 35 is red) */
    rdml_pairs_params p;
    rdml_pairs_defaults(&p);
    p.set = RDML_PAIRS_COLORS;
    rdml_pairs P;
    CHECK_EQ_I(rdml_pairs_build(&ctx, &p, g_n, g_R, colors, &P), RDML_OK);
    CHECK_EQ_I(P.n_images_used, 4);
    CHECK_EQ_I(P.n, 8 * 7 / 2);
    int used[40] = {0};
    for (int64_t t = 0; t < P.n; t++) used[P.ij[2 * t]] = used[P.ij[2 * t + 1]] = 1;
    int reds = 0, blues = 0;
    for (int i = 0; i < 40; i++) reds += used[i] && colors[i] == RDML_COLOR_RED, blues += used[i] && colors[i] == RDML_COLOR_BLUE;
    CHECK(reds == 4 && blues == 4);
    CHECK(used[0] && used[15] && !used[20]); /* the first four reds */
    rdml_pairs_free(&P);
    p.color_b = RDML_COLOR_GREEN;
    CHECK_EQ_I(rdml_pairs_build(&ctx, &p, g_n, g_R, colors, &P), RDML_EDATA);
    CHECK_STR_HAS(ctx.msg, "8 of the 40 images are red and 0 are green");
}

/* The paper's classify_images_rgb and colour pair list (tools/paper_colors.py, fixtures
 * written by its --fixtures mode) at color_fraction 0.4: every image's shares and class (the
 * LARGEST share, not the last one reaching the fraction), and the pairs in the paper's order
 * (colour-a images first) for (red, blue) and (green, blue). */
static void test_color_paper_port(void) {
    int64_t np, nc, n;
    int64_t *px = FX_I64("color_px", &np, &nc);
    double *share = FX_F64("color_share", &n, NULL);
    int64_t *cls = FX_I64("color_class_040", &n, NULL);
    CHECK(px && share && cls && nc == 3 && n == 40 && np == 40 * 24);
    if (!px || !share || !cls || n != g_n) {
        free(px), free(share), free(cls);
        return;
    }
    int colors[40], bad_class = 0, bad_share = 0, differs_from_last = 0;
    for (int64_t i = 0; i < n; i++) {
        uint8_t rgb[24 * 3];
        for (int k = 0; k < 24 * 3; k++) rgb[k] = (uint8_t)px[i * 24 * 3 + k];
        double f[3];
        colors[i] = rdml_pairs_color_of(rgb, 24, 0.4, f);
        bad_class += colors[i] != cls[i];
        for (int c = 0; c < 3; c++) bad_share += f[c] != share[i * 3 + c];
        int last = RDML_COLOR_NONE;
        for (int c = 0; c < 3; c++) last = f[c] >= 0.4 ? c : last;
        differs_from_last += last != colors[i];
        CHECK_EQ_I(rdml_pairs_color_class(f, 0.4), colors[i]);
    }
    CHECK_EQ_I(bad_class, 0);
    CHECK_EQ_I(bad_share, 0);
    CHECK(differs_from_last >= 5); /* the fixture exercises the rule */
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    rdml_pairs_params p;
    rdml_pairs_defaults(&p);
    p.set = RDML_PAIRS_COLORS;
    const char *fx[2] = {"color_pairs_040_rb", "color_pairs_040_gb"};
    const int ca[2] = {RDML_COLOR_RED, RDML_COLOR_GREEN};
    for (int k = 0; k < 2; k++) {
        p.color_a = ca[k];
        p.color_b = RDML_COLOR_BLUE;
        int64_t m;
        int64_t *ref = FX_I64(fx[k], &m, NULL);
        rdml_pairs P;
        CHECK_EQ_I(rdml_pairs_build(&ctx, &p, g_n, g_R, colors, &P), RDML_OK);
        CHECK(ref && P.n == m);
        int64_t same = 0, ab = 0;
        for (int64_t t = 0; ref && t < m && t < P.n; t++) {
            same += P.ij[2 * t] == ref[2 * t] && P.ij[2 * t + 1] == ref[2 * t + 1];
            ab += colors[P.ij[2 * t]] == ca[k] && colors[P.ij[2 * t + 1]] == RDML_COLOR_BLUE;
        }
        CHECK_EQ_I(same, m);
        CHECK_EQ_I(ab, P.n_images_used * P.n_images_used); /* every a-b pair has a first */
        rdml_pairs_free(&P);
        free(ref);
    }
    free(px);
    free(share);
    free(cls);
}

static void test_splits(void) {
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    rdml_pairs_params pp;
    rdml_pairs_defaults(&pp);
    pp.set = RDML_PAIRS_ALL;
    rdml_pairs P;
    CHECK_EQ_I(rdml_pairs_build(&ctx, &pp, g_n, g_R, NULL, &P), RDML_OK);
    rdml_split_params sp;
    rdml_split_defaults(&sp);
    rdml_split S, S2;
    CHECK_EQ_I(rdml_split_make(&ctx, &sp, g_n, &P, &S), RDML_OK);
    CHECK_EQ_I(S.nfolds, 5);
    int64_t per[5] = {0};
    for (int64_t i = 0; i < g_n; i++) per[S.fold[i]]++;
    for (int f = 0; f < 5; f++) CHECK_EQ_I(per[f], 8);
    CHECK_EQ_I(rdml_split_make(&ctx, &sp, g_n, &P, &S2), RDML_OK);
    CHECK(memcmp(S.fold, S2.fold, (size_t)g_n * 8) == 0);
    rdml_split_free(&S2);
    int64_t tested = 0;
    for (int64_t f = 0; f < 5; f++) {
        int64_t *tr, ntr, *te, nte;
        CHECK_EQ_I(rdml_split_fold(&ctx, &S, &P, f, &tr, &ntr, &te, &nte), RDML_OK);
        CHECK_EQ_I(nte, 8 * 7 / 2);
        CHECK_EQ_I(ntr, 32 * 31 / 2);
        char side[40] = {0};
        for (int64_t t = 0; t < nte; t++) side[P.ij[2 * te[t]]] |= 1, side[P.ij[2 * te[t] + 1]] |= 1;
        for (int64_t t = 0; t < ntr; t++) side[P.ij[2 * tr[t]]] |= 2, side[P.ij[2 * tr[t] + 1]] |= 2;
        for (int i = 0; i < 40; i++) {
            CHECK(side[i] != 3);
            tested += side[i] == 1;
        }
        free(tr);
        free(te);
    }
    CHECK_EQ_I(tested, 40);
    rdml_split_free(&S);

    sp.scheme = RDML_SPLIT_HOLDOUT; /* ceil(0.36 * 40) = 15 test images */
    CHECK_EQ_I(rdml_split_make(&ctx, &sp, g_n, &P, &S), RDML_OK);
    int64_t nt = 0;
    for (int64_t i = 0; i < g_n; i++) nt += S.fold[i] == 0;
    CHECK_EQ_I(nt, 15);
    CHECK_EQ_I(S.nfolds, 1);
    rdml_split_free(&S);

    sp.scheme = RDML_SPLIT_PAIRS;
    CHECK_EQ_I(rdml_split_make(&ctx, &sp, g_n, &P, &S), RDML_ECONFIG);
    CHECK_STR_HAS(ctx.msg, "allow_pair_leakage");
    rdml_ctx_clear(&ctx);
    sp.allow_leakage = 1;
    CHECK_EQ_I(rdml_split_make(&ctx, &sp, g_n, &P, &S), RDML_OK);
    CHECK_EQ_I(S.nunits, P.n);
    rdml_split_free(&S);

    sp.scheme = RDML_SPLIT_KFOLD;
    sp.folds = 41;
    CHECK_EQ_I(rdml_split_make(&ctx, &sp, g_n, &P, &S), RDML_EDATA);
    CHECK_STR_HAS(ctx.msg, "41-fold split over 40 images");
    rdml_ctx_clear(&ctx);
    /* 20 folds of 2 images: a test side with one pair, fine; 40 folds: no test pair */
    sp.folds = 40;
    CHECK_EQ_I(rdml_split_make(&ctx, &sp, g_n, &P, &S), RDML_OK);
    int64_t *tr, ntr, *te, nte;
    CHECK_EQ_I(rdml_split_fold(&ctx, &S, &P, 3, &tr, &ntr, &te, &nte), RDML_EDATA);
    CHECK_STR_HAS(ctx.msg, "fold 3 of 40 has 741 training and 0 test pairs");
    rdml_split_free(&S);
    rdml_pairs_free(&P);
}

int main(void) {
    g_R = FX_F32("rdm", &g_n, NULL);
    if (!g_R) {
        printf("0 passed, 1 failed (fixtures)\n");
        return 1;
    }
    RUN(test_extremes_match_numpy);
    RUN(test_percentile_matches_numpy);
    RUN(test_all_balanced_options);
    RUN(test_color_rule);
    RUN(test_color_set);
    RUN(test_color_paper_port);
    RUN(test_splits);
    free(g_R);
    return test_summary();
}
