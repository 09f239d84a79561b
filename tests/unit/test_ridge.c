/* Ridge regression to many targets (rdml/ridge.h) against scikit-learn and a numpy reference:
 * tests/fixtures/ridge/ from tools/make_ridge_fixtures.py. Leave-one-out: the chosen alpha
 * of every target equals RidgeCV(alpha_per_target=True)'s, the LOO scores and the refit
 * Ridge(alpha) predictions, weights, intercepts, r and R^2 agree; inner k-fold: equals the
 * himalaya-semantics numpy reference on the same inner folds; with standardisation off and on;
 * D > N; blocks; constant test columns; bad inputs. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rdml/cv.h"
#include "rdml/npy.h"
#include "rdml/ridge.h"
#include "test.h"

static void *load(const char *name, int kind, int64_t *rows, int64_t *cols) {
    char rel[256];
    snprintf(rel, sizeof rel, "ridge/%s.npy", name);
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    rdml_npy f;
    if (rdml_npy_open(&ctx, test_fixture(rel), 0, &f)) {
        fprintf(stderr, "fixture: %s\n", ctx.msg);
        exit(1);
    }
    int64_t r = f.ndim >= 1 ? f.shape[0] : 1, c = f.ndim == 2 ? f.shape[1] : 1;
    void *out = malloc((size_t)(r * c + 1) * 8);
    int rc = kind == 0   ? rdml_npy_read_f64(&ctx, &f, 0, r, NULL, 0, out)
             : kind == 1 ? rdml_npy_read_i64(&ctx, &f, 0, r, NULL, 0, out)
                         : rdml_npy_read_f32(&ctx, &f, 0, r, NULL, 0, out);
    rdml_npy_close(&f);
    if (rc) {
        fprintf(stderr, "fixture: %s\n", ctx.msg);
        exit(1);
    }
    if (rows) *rows = r;
    if (cols) *cols = c;
    return out;
}

typedef struct fx {
    float *X, *Y;
    int64_t n, d, v, *train, ntrain, *test, ntest, *fold;
    double *alphas;
    int64_t nalphas;
} fx;

static fx fx_open(const char *c) {
    fx f;
    char b[128];
    snprintf(b, sizeof b, "%s_X", c);
    f.X = load(b, 2, &f.n, &f.d);
    snprintf(b, sizeof b, "%s_Y", c);
    f.Y = load(b, 2, NULL, &f.v);
    snprintf(b, sizeof b, "%s_train", c);
    f.train = load(b, 1, &f.ntrain, NULL);
    snprintf(b, sizeof b, "%s_test", c);
    f.test = load(b, 1, &f.ntest, NULL);
    snprintf(b, sizeof b, "%s_alphas", c);
    f.alphas = load(b, 0, &f.nalphas, NULL);
    snprintf(b, sizeof b, "%s_kf_fold", c);
    f.fold = load(b, 1, NULL, NULL);
    return f;
}

static void fx_close(fx *f) {
    free(f->X);
    free(f->Y);
    free(f->train);
    free(f->test);
    free(f->alphas);
    free(f->fold);
}

typedef struct res {
    int32_t *best;
    double *cvs, *cvb, *r, *r2;
    float *w, *b, *pred;
} res;

static res res_new(const fx *f) {
    res o;
    o.best = calloc((size_t)f->v, sizeof *o.best);
    o.cvs = calloc((size_t)(f->nalphas * f->v), sizeof *o.cvs);
    o.cvb = calloc((size_t)f->v, sizeof *o.cvb);
    o.r = calloc((size_t)f->v, sizeof *o.r);
    o.r2 = calloc((size_t)f->v, sizeof *o.r2);
    o.w = calloc((size_t)(f->d * f->v), sizeof *o.w);
    o.b = calloc((size_t)f->v, sizeof *o.b);
    o.pred = calloc((size_t)(f->ntest * f->v), sizeof *o.pred);
    return o;
}

static void res_free(res *o) {
    free(o->best);
    free(o->cvs);
    free(o->cvb);
    free(o->r);
    free(o->r2);
    free(o->w);
    free(o->b);
    free(o->pred);
}

/* Fit all targets of f in blocks of `blk` columns (internal sub-block `sub`). With scores = 0
 * cv_scores is not asked for (leave-one-out then prunes alphas; out->cvs is left alone) and
 * out->evals (if set) receives the number of exactly evaluated alphas per target. */
static int run_x(rdml_ctx *ctx, const fx *f, rdml_ridge_opts *o, int64_t blk, res *out, int scores,
                 int32_t *evals) {
    rdml_ridge_fact *fa = NULL;
    int rc = rdml_ridge_fact_new(ctx, f->X, f->n, f->d, f->d, f->train, f->ntrain, f->test,
                                 f->ntest, o, &fa);
    float *w = malloc((size_t)(f->d * blk) * sizeof *w), *p = malloc((size_t)(f->ntest * blk) * sizeof *p);
    double *cs = malloc((size_t)(f->nalphas * blk) * sizeof *cs);
    for (int64_t c0 = 0; c0 < f->v && !rc; c0 += blk) {
        int64_t vb = f->v - c0 < blk ? f->v - c0 : blk;
        rdml_ridge_out ro = {out->best + c0, out->cvb + c0, scores ? cs : NULL, w, out->b + c0, p, out->r + c0, out->r2 + c0, evals ? evals + c0 : NULL};
        rc = rdml_ridge_fit(ctx, fa, f->Y + c0, f->v, vb, c0, &ro);
        for (int64_t k = 0; k < f->d; k++) memcpy(out->w + k * f->v + c0, w + k * vb, (size_t)vb * sizeof *w);
        for (int64_t q = 0; q < f->ntest; q++) memcpy(out->pred + q * f->v + c0, p + q * vb, (size_t)vb * sizeof *p);
        if (scores)
            for (int64_t a = 0; a < f->nalphas; a++) memcpy(out->cvs + a * f->v + c0, cs + a * vb, (size_t)vb * sizeof *cs);
    }
    free(w);
    free(p);
    free(cs);
    rdml_ridge_fact_free(fa);
    return rc;
}

static int run(rdml_ctx *ctx, const fx *f, rdml_ridge_opts *o, int64_t blk, res *out) {
    return run_x(ctx, f, o, blk, out, 1, NULL);
}

/* max_q |a - ref| / max_q |ref| per column, the worst over columns */
static double col_rel(const float *a, const double *ref, int64_t rows, int64_t cols) {
    double worst = 0;
    for (int64_t t = 0; t < cols; t++) {
        double m = 0, e = 0;
        for (int64_t q = 0; q < rows; q++) {
            m = fmax(m, fabs(ref[q * cols + t]));
            e = fmax(e, fabs((double)a[q * cols + t] - ref[q * cols + t]));
        }
        worst = fmax(worst, e / (m > 0 ? m : 1));
    }
    return worst;
}

static void check_case(const char *c, rdml_ridge_cv cv, int std, const char *score, int64_t blk,
                       int64_t sub) {
    fx f = fx_open(c);
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    rdml_ridge_opts o;
    rdml_ridge_opts_default(&o);
    o.alphas = f.alphas;
    o.nalphas = f.nalphas;
    o.cv = cv;
    o.standardize = std;
    o.block = sub;
    char pre[128], b[160];
    if (cv == RDML_RIDGE_LOO) snprintf(pre, sizeof pre, "%s_loo%d", c, std);
    else {
        o.inner_k = 4;
        o.inner_fold = f.fold;
        o.score = strcmp(score, "r2") == 0 ? RDML_RIDGE_SCORE_R2 : RDML_RIDGE_SCORE_NEG_MSE;
        snprintf(pre, sizeof pre, "%s_kf%d_%s", c, std, score);
    }
    res out = res_new(&f);
    int rc = run(&ctx, &f, &o, blk, &out);
    if (rc) fprintf(stderr, "%s: %s\n", pre, ctx.msg);
    CHECK_EQ_I(rc, RDML_OK);
    snprintf(b, sizeof b, "%s_best", pre);
    int64_t *best = load(b, 1, NULL, NULL);
    int mism = 0;
    for (int64_t t = 0; t < f.v; t++) mism += out.best[t] != best[t];
    if (mism) {
        fprintf(stderr, "%s: %d of %lld chosen alphas differ:", pre, mism, (long long)f.v);
        for (int64_t t = 0; t < f.v; t++) fprintf(stderr, " %d/%lld", out.best[t], (long long)best[t]);
        fprintf(stderr, "\n");
    }
    CHECK_EQ_I(mism, 0);
    snprintf(b, sizeof b, "%s_score", pre);
    double *sc = load(b, 0, NULL, NULL);
    double worst = 0;
    /* relative for (minus) mean squared errors, absolute for R^2 scores */
    double floor_ = score && strcmp(score, "r2") == 0 ? 1.0 : 1e-3;
    for (int64_t i = 0; i < f.nalphas * f.v; i++)
        worst = fmax(worst, fabs(out.cvs[i] - sc[i]) / fmax(fabs(sc[i]), floor_));
    if (worst > 1e-5) fprintf(stderr, "%s: cv scores differ by %g relative\n", pre, worst);
    CHECK(worst <= 1e-5);
    for (int64_t t = 0; t < f.v; t++) CHECK_NEAR(out.cvb[t], sc[best[t] * f.v + t], 1e-5 * fmax(fabs(sc[best[t] * f.v + t]), floor_));
    if (cv == RDML_RIDGE_LOO) { /* without cv_scores: the pruned path, the same alphas as sklearn */
        res pr = res_new(&f);
        CHECK_EQ_I(run_x(&ctx, &f, &o, blk, &pr, 0, NULL), RDML_OK);
        int pm = 0;
        for (int64_t t = 0; t < f.v; t++) {
            pm += pr.best[t] != best[t];
            CHECK_NEAR(pr.cvb[t], sc[best[t] * f.v + t], 1e-5 * fmax(fabs(sc[best[t] * f.v + t]), floor_));
        }
        if (pm) fprintf(stderr, "%s (pruned): %d of %lld chosen alphas differ\n", pre, pm, (long long)f.v);
        CHECK_EQ_I(pm, 0);
        res_free(&pr);
    }
    snprintf(b, sizeof b, "%s_pred", pre);
    double *pred = load(b, 0, NULL, NULL);
    double pr = col_rel(out.pred, pred, f.ntest, f.v);
    if (pr > 1e-5) fprintf(stderr, "%s: predictions differ by %g relative\n", pre, pr);
    CHECK(pr <= 1e-5);
    if (cv == RDML_RIDGE_LOO) {
        snprintf(b, sizeof b, "%s_coef", pre);
        double *coef = load(b, 0, NULL, NULL);
        double cr = col_rel(out.w, coef, f.d, f.v);
        if (cr > 1e-4) fprintf(stderr, "%s: weights differ by %g relative\n", pre, cr);
        CHECK(cr <= 1e-4);
        snprintf(b, sizeof b, "%s_icpt", pre);
        double *icpt = load(b, 0, NULL, NULL), *r = NULL, *r2 = NULL;
        snprintf(b, sizeof b, "%s_r", pre);
        r = load(b, 0, NULL, NULL);
        snprintf(b, sizeof b, "%s_r2", pre);
        r2 = load(b, 0, NULL, NULL);
        for (int64_t t = 0; t < f.v; t++) {
            CHECK_NEAR(out.b[t], icpt[t], 1e-4 * fmax(1, fabs(icpt[t])));
            CHECK_NEAR(out.r[t], r[t], 1e-5);
            CHECK_NEAR(out.r2[t], r2[t], 1e-5 * fmax(1, fabs(r2[t])));
        }
        free(coef);
        free(icpt);
        free(r);
        free(r2);
    }
    free(best);
    free(sc);
    free(pred);
    res_free(&out);
    fx_close(&f);
}

static void test_loo_tall(void) {
    check_case("tall", RDML_RIDGE_LOO, 0, NULL, 25, 0);
    check_case("tall", RDML_RIDGE_LOO, 1, NULL, 25, 0);
}
static void test_loo_wide(void) { /* D > N: sklearn's "eigen" mode */
    check_case("wide", RDML_RIDGE_LOO, 0, NULL, 25, 0);
    check_case("wide", RDML_RIDGE_LOO, 1, NULL, 25, 0);
}
static void test_loo_blocks(void) { /* blocks of 7 columns, internal sub-blocks of 3 */
    check_case("tall", RDML_RIDGE_LOO, 1, NULL, 7, 3);
    check_case("wide", RDML_RIDGE_LOO, 0, NULL, 4, 16);
}
/* The results of a target do not depend on how the targets are cut into blocks beyond float32
 * rounding inside BLAS (which may sum in another order for another matrix width), and are
 * bit for bit the same for the same blocks (the encode stage cuts the vertices into fixed
 * blocks, so its results do not depend on the number of ranks). */
static double max_rel(const double *a, const double *b, int64_t n) {
    double m = 0;
    for (int64_t i = 0; i < n; i++) m = fmax(m, fabs(a[i] - b[i]) / fmax(fabs(b[i]), 1e-3));
    return m;
}

static void test_blocks(void) {
    const char *cases[] = {"tall", "wide"};
    for (int c = 0; c < 2; c++)
        for (int cv = 0; cv < 2; cv++) {
            fx f = fx_open(cases[c]);
            rdml_ctx ctx;
            rdml_ctx_init(&ctx);
            rdml_ridge_opts o;
            rdml_ridge_opts_default(&o);
            o.alphas = f.alphas;
            o.nalphas = f.nalphas;
            o.cv = cv ? RDML_RIDGE_KFOLD : RDML_RIDGE_LOO;
            o.inner_k = 4;
            o.inner_fold = f.fold;
            o.standardize = 1;
            res a = res_new(&f), b = res_new(&f);
            CHECK_EQ_I(run(&ctx, &f, &o, f.v, &a), RDML_OK);
            int64_t widths[4][2] = {{25, 0}, {7, 0}, {1, 0}, {25, 3}};
            for (int k = 0; k < 4; k++) {
                o.block = widths[k][1];
                CHECK_EQ_I(run(&ctx, &f, &o, widths[k][0], &b), RDML_OK);
                int diff = 0, alpha_diff = 0;
                for (int64_t t = 0; t < f.v; t++) {
                    alpha_diff += a.best[t] != b.best[t];
                    diff += memcmp(&a.r[t], &b.r[t], sizeof(double)) != 0;
                }
                for (int64_t i = 0; i < f.ntest * f.v; i++) diff += a.pred[i] != b.pred[i];
                for (int64_t i = 0; i < f.nalphas * f.v; i++) diff += a.cvs[i] != b.cvs[i];
                CHECK_EQ_I(alpha_diff, 0);
                if (k == 0) CHECK_EQ_I(diff, 0); /* the same blocks: bit for bit */
                double e = fmax(max_rel(a.cvs, b.cvs, f.nalphas * f.v), max_rel(a.r, b.r, f.v));
                double pmax = 0, pe = 0;
                for (int64_t i = 0; i < f.ntest * f.v; i++) {
                    pmax = fmax(pmax, fabs(a.pred[i]));
                    pe = fmax(pe, fabs(a.pred[i] - b.pred[i]));
                }
                if (e > 1e-5 || pe > 1e-6 * pmax)
                    fprintf(stderr, "%s cv %d blocks of %lld (sub %lld): scores/r differ by %g, predictions by %g\n", cases[c], cv, (long long)widths[k][0], (long long)widths[k][1], e, pe / pmax);
                CHECK(e <= 1e-5);
                CHECK(pe <= 1e-6 * pmax);
            }
            res_free(&a);
            res_free(&b);
            fx_close(&f);
        }
}


/* ---- leave-one-out pruning: the same chosen alphas and LOO errors as the exhaustive path ----
 * Synthetic data from the counter-based RNG: features with a decaying spectrum and a few
 * high-leverage rows; targets of 8 kinds: pure noise, strong / weak / tiny-variance-direction
 * signal, a near-perfect fit (float cancellation), a rescaled and shifted target, the sum of a
 * strong and a weak direction (LOO curves with two dips), constant columns. The check asserts
 * that the data has near-ties (best and second best within 1e-4 relative) and non-monotone
 * LOO curves, and that the pruning pruned. */
static void gen_case(uint64_t seed, int64_t n, int64_t d, int64_t v, float **Xo, float **Yo) {
    float *X = malloc((size_t)(n * d) * sizeof *X), *Y = malloc((size_t)(n * v) * sizeof *Y);
    for (int64_t i = 0; i < n; i++) {
        rdml_rng g = rdml_rng_make(seed, rdml_rng_substream(RDML_STREAM_USER, (uint64_t)i), 0);
        double big = i < 3 ? 4.0 : 1.0; /* high-leverage rows */
        for (int64_t k = 0; k < d; k++) X[i * d + k] = (float)(big * rdml_rng_normal(&g) * (0.2 + 3.0 * exp(-(double)k / 5.0)));
    }
    for (int64_t t = 0; t < v; t++) {
        rdml_rng g = rdml_rng_make(seed + 1, rdml_rng_substream(RDML_STREAM_USER, (uint64_t)t), 0);
        double b[8];
        for (int k = 0; k < 8; k++) b[k] = rdml_rng_normal(&g);
        int kind = (int)(t % 8);
        double noise = 0.5 + (double)(t % 5) * 0.5;
        for (int64_t i = 0; i < n; i++) {
            const float *x = X + i * d;
            double e = rdml_rng_normal(&g), y = 0;
            switch (kind) {
            case 0: y = e; break;
            case 1: for (int k = 0; k < 8; k++) y += b[k] * x[k]; y += noise * e; break;
            case 2: for (int k = 0; k < 8; k++) y += 0.05 * b[k] * x[k]; y += noise * e; break;
            case 3: y = 2.0 * x[d - 1] + 2.0 * x[d - 2] + 0.3 * e; break;
            case 4: for (int k = 0; k < 8; k++) y += b[k] * x[k]; y += 1e-4 * e; break;
            case 5: for (int k = 0; k < 8; k++) y += b[k] * x[k]; y = 100.0 + 1e-3 * (y + noise * e); break;
            case 6: y = 1.5 * x[0] + 0.8 * (x[d - 1] + x[d - 3]) + noise * e; break;
            default: y = t % 16 == 7 ? 3.0 : 0.2 * x[1] + e; break;
            }
            Y[i * v + t] = (float)y;
        }
    }
    *Xo = X;
    *Yo = Y;
}

static void check_prune(const char *name, uint64_t seed, int64_t n, int64_t d, int64_t v, double a0,
                        double a1, int64_t na, int std, int64_t sub, int *ties, int *nonmono,
                        int64_t *evals, int64_t *cells) {
    fx f;
    memset(&f, 0, sizeof f);
    gen_case(seed, n, d, v, &f.X, &f.Y);
    f.n = n;
    f.d = d;
    f.v = v;
    f.ntrain = n - n / 5;
    f.ntest = n / 5;
    f.train = malloc((size_t)f.ntrain * sizeof *f.train);
    f.test = malloc((size_t)f.ntest * sizeof *f.test);
    for (int64_t i = 0; i < n; i++) {
        if (i % 5 == 4) f.test[i / 5] = i;
        else f.train[i - i / 5] = i;
    }
    f.nalphas = na;
    f.alphas = malloc((size_t)na * sizeof *f.alphas);
    for (int64_t a = 0; a < na; a++) f.alphas[a] = a0 * pow(a1 / a0, (double)a / (double)(na - 1));
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    rdml_ridge_opts o;
    rdml_ridge_opts_default(&o);
    o.alphas = f.alphas;
    o.nalphas = na;
    o.standardize = std;
    o.block = sub;
    res ex = res_new(&f), ex2 = res_new(&f), pr = res_new(&f);
    int32_t *ev = calloc((size_t)v, sizeof *ev), *ev2 = calloc((size_t)v, sizeof *ev2);
    o.loo_exhaustive = 1;
    CHECK_EQ_I(run_x(&ctx, &f, &o, v, &ex, 1, NULL), RDML_OK);    /* with every alpha's score */
    CHECK_EQ_I(run_x(&ctx, &f, &o, v, &ex2, 0, ev2), RDML_OK);    /* the flag alone */
    o.loo_exhaustive = 0;
    CHECK_EQ_I(run_x(&ctx, &f, &o, v, &pr, 0, ev), RDML_OK);
    /* The exact LOO errors of the two paths come from differently shaped SGEMMs, so they agree
     * to float32 rounding, not bit for bit (as for two block widths, test_blocks): two alphas
     * whose exhaustive errors are within that rounding are a float tie either path may break
     * either way. tol: the float32 rounding of a mean squared LOO error s for a target of mean
     * square yy (relative, plus the residuals' rounding, ~eps ||y||, against sqrt(s)). */
    int mism = 0, lmism = 0, nev = 0, ftie = 0;
    for (int64_t t = 0; t < v; t++) {
        double my = 0, yy = 0;
        for (int64_t q = 0; q < f.ntrain; q++) my += f.Y[f.train[q] * v + t];
        my /= (double)f.ntrain;
        for (int64_t q = 0; q < f.ntrain; q++) yy += (f.Y[f.train[q] * v + t] - my) * (f.Y[f.train[q] * v + t] - my);
        yy /= (double)f.ntrain;
        double se = -ex.cvb[t], tol = 2e-6 * se + 4e-6 * sqrt(se * yy);
        int tie = fabs(ex.cvs[pr.best[t] * v + t] - ex.cvb[t]) <= tol;
        ftie += ex.best[t] != pr.best[t] && tie;
        mism += (ex.best[t] != pr.best[t] && !tie) || ex2.best[t] != ex.best[t];
        lmism += fabs(pr.cvb[t] - ex.cvb[t]) > tol || ex2.cvb[t] != ex.cvb[t];
        nev += ev[t];
        CHECK_EQ_I(ev2[t], (int)na);
        CHECK(ev[t] >= 1 && ev[t] <= na);
        if (ex.best[t] != pr.best[t])
            fprintf(stderr, "%s: target %lld: exhaustive alpha %d, pruned %d (%d evaluated); exhaustive scores %.9g %.9g, pruned %.9g (%s)\n", name, (long long)t, ex.best[t], pr.best[t], ev[t], ex.cvs[ex.best[t] * v + t], ex.cvs[pr.best[t] * v + t], pr.cvb[t], tie ? "a float32 tie" : "NOT a tie");
        /* near-ties and non-monotone curves (minus the mean squared LOO error) */
        double b1 = -INFINITY, b2 = -INFINITY;
        int peaks = 0;
        for (int64_t a = 0; a < na; a++) {
            double sc = ex.cvs[a * v + t];
            if (sc > b1) {
                b2 = b1;
                b1 = sc;
            } else if (sc > b2) b2 = sc;
            double lft = a > 0 ? ex.cvs[(a - 1) * v + t] : -INFINITY, rgt = a + 1 < na ? ex.cvs[(a + 1) * v + t] : -INFINITY;
            peaks += sc > lft && sc > rgt;
        }
        *ties += b1 != 0 && (b1 - b2) < 1e-4 * fabs(b1);
        *nonmono += peaks > 1;
    }
    fprintf(stderr, "%s: %lld targets x %lld alphas: %.2f alphas evaluated per target on average (%d chosen alphas differ beyond float32 ties, %d float32 ties broken the other way, %d LOO errors differ)\n",
            name, (long long)v, (long long)na, (double)nev / (double)v, mism, ftie, lmism);
    CHECK_EQ_I(mism, 0);
    CHECK_EQ_I(lmism, 0);
    CHECK(ftie <= 2);
    *evals += nev;
    *cells += v * na;
    free(ev);
    free(ev2);
    res_free(&ex);
    res_free(&ex2);
    res_free(&pr);
    fx_close(&f);
}

static void test_loo_prune(void) {
    int ties = 0, nonmono = 0;
    int64_t ev = 0, cells = 0, ev_w = 0, cells_w = 0;
    check_prune("tall", 11, 400, 60, 240, 1e-2, 1e5, 20, 0, 0, &ties, &nonmono, &ev, &cells);
    check_prune("tall std, sub-blocks of 7", 12, 400, 60, 240, 1e-2, 1e5, 20, 1, 7, &ties, &nonmono, &ev, &cells);
    check_prune("dense grid", 13, 300, 40, 240, 1e-3, 1e5, 60, 0, 0, &ties, &nonmono, &ev, &cells);
    check_prune("wide (D > N)", 14, 60, 90, 240, 1e-2, 1e4, 13, 1, 0, &ties, &nonmono, &ev_w, &cells_w);
    fprintf(stderr, "prune: %d near-ties, %d non-monotone LOO curves; %.0f%% of the (target, alpha) pairs evaluated (D > N: %.0f%%)\n",
            ties, nonmono, 100.0 * (double)ev / (double)cells, 100.0 * (double)ev_w / (double)cells_w);
    CHECK(ties > 0);
    CHECK(nonmono > 0);
    CHECK(2 * ev < cells); /* it did prune */
}

static void test_kfold(void) {
    const char *cases[] = {"tall", "wide"}, *scores[] = {"mse", "r2"};
    for (int c = 0; c < 2; c++)
        for (int std = 0; std < 2; std++)
            for (int s = 0; s < 2; s++) check_case(cases[c], RDML_RIDGE_KFOLD, std, scores[s], c ? 25 : 9, c ? 0 : 5);
}

/* Seeded inner folds: the same as rdml_cv_inner_folds gives the pair models. */
static void test_kfold_seeded(void) {
    fx f = fx_open("tall");
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    int8_t *use = calloc((size_t)f.n, 1);
    int64_t *img = malloc((size_t)f.n * sizeof *img), *fold = malloc((size_t)f.ntrain * sizeof *fold);
    for (int64_t i = 0; i < f.ntrain; i++) use[f.train[i]] = 1;
    CHECK_EQ_I(rdml_cv_inner_folds(&ctx, f.n, use, 3, 99, 2, img), RDML_OK);
    for (int64_t i = 0; i < f.ntrain; i++) fold[i] = img[f.train[i]];
    rdml_ridge_opts o;
    rdml_ridge_opts_default(&o);
    o.alphas = f.alphas;
    o.nalphas = f.nalphas;
    o.cv = RDML_RIDGE_KFOLD;
    o.inner_k = 3;
    o.seed = 99;
    o.outer_fold = 2;
    res a = res_new(&f), b = res_new(&f);
    CHECK_EQ_I(run(&ctx, &f, &o, f.v, &a), RDML_OK);
    o.inner_fold = fold;
    CHECK_EQ_I(run(&ctx, &f, &o, f.v, &b), RDML_OK);
    for (int64_t i = 0; i < f.nalphas * f.v; i++) CHECK(a.cvs[i] == b.cvs[i]);
    o.outer_fold = 3; /* another outer fold: other inner folds, other scores */
    o.inner_fold = NULL;
    CHECK_EQ_I(run(&ctx, &f, &o, f.v, &b), RDML_OK);
    int differ = 0;
    for (int64_t i = 0; i < f.nalphas * f.v; i++) differ += a.cvs[i] != b.cvs[i];
    CHECK(differ > 0);
    res_free(&a);
    res_free(&b);
    free(use);
    free(img);
    free(fold);
    fx_close(&f);
}

/* A constant test column: r is NaN (scipy's nan), R^2 follows sklearn's force_finite. */
static void test_constant_columns(void) {
    fx f = fx_open("tall");
    for (int64_t i = 0; i < f.n; i++) {
        f.Y[i * f.v + 0] = 2.5f;                                   /* constant everywhere */
        f.Y[i * f.v + 1] = f.Y[i * f.v + 1];                       /* varies in training ... */
    }
    for (int64_t q = 0; q < f.ntest; q++) f.Y[f.test[q] * f.v + 1] = 1.0f; /* ... constant in test */
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    rdml_ridge_opts o;
    rdml_ridge_opts_default(&o);
    o.alphas = f.alphas;
    o.nalphas = f.nalphas;
    res a = res_new(&f);
    CHECK_EQ_I(run(&ctx, &f, &o, f.v, &a), RDML_OK);
    CHECK(isnan(a.r[0]));
    CHECK(a.r2[0] == 1.0);             /* predictions equal the constant exactly */
    CHECK(a.best[0] == 0);             /* all alphas tie: the first one, as sklearn */
    for (int64_t q = 0; q < f.ntest; q++) CHECK(a.pred[q * f.v] == 2.5f);
    for (int64_t k = 0; k < f.d; k++) CHECK(a.w[k * f.v] == 0.0f);
    CHECK(isnan(a.r[1]));
    CHECK(a.r2[1] == 0.0);
    CHECK(isfinite(a.r[2]));
    res_free(&a);
    fx_close(&f);
}

/* Constant features (rank 0): every alpha ties (LOO: the first wins, as in sklearn; k-fold:
 * the largest, himalaya's 1e-10 ln(alpha) tie-break), the weights are 0 and the predictions
 * are the training mean. */
static void test_constant_features(void) {
    fx f = fx_open("tall");
    for (int64_t i = 0; i < f.n * f.d; i++) f.X[i] = 3.0f;
    for (int cv = 0; cv < 2; cv++) {
        rdml_ctx ctx;
        rdml_ctx_init(&ctx);
        rdml_ridge_opts o;
        rdml_ridge_opts_default(&o);
        o.alphas = f.alphas;
        o.nalphas = f.nalphas;
        o.standardize = 1;
        o.cv = cv ? RDML_RIDGE_KFOLD : RDML_RIDGE_LOO;
        o.inner_k = 4;
        o.inner_fold = f.fold;
        res a = res_new(&f);
        CHECK_EQ_I(run(&ctx, &f, &o, f.v, &a), RDML_OK);
        for (int64_t t = 0; t < f.v; t++) {
            double m = 0;
            for (int64_t i = 0; i < f.ntrain; i++) m += f.Y[f.train[i] * f.v + t];
            m /= (double)f.ntrain;
            CHECK_EQ_I(a.best[t], cv ? f.nalphas - 1 : 0);
            CHECK(isnan(a.r[t]));
            CHECK_NEAR(a.pred[t], m, 1e-5 * fmax(1, fabs(m)));
            CHECK_NEAR(a.b[t], m, 1e-5 * fmax(1, fabs(m)));
            for (int64_t k = 0; k < f.d; k++) CHECK(a.w[k * f.v + t] == 0.0f);
        }
        res_free(&a);
    }
    fx_close(&f);
}

static void test_bad_input(void) {
    fx f = fx_open("tall");
    rdml_ctx ctx;
    rdml_ridge_opts o;
    rdml_ridge_opts_default(&o);
    double al[3] = {1, 10, 0};
    o.alphas = al;
    o.nalphas = 3;
    rdml_ridge_fact *fa = NULL;
    rdml_ctx_init(&ctx);
    CHECK_EQ_I(rdml_ridge_fact_new(&ctx, f.X, f.n, f.d, f.d, f.train, f.ntrain, f.test, f.ntest, &o, &fa), RDML_ECONFIG);
    CHECK_STR_HAS(ctx.msg, "alpha 2 of the grid is 0");
    CHECK(fa == NULL);
    al[2] = -1;
    rdml_ctx_init(&ctx);
    CHECK_EQ_I(rdml_ridge_fact_new(&ctx, f.X, f.n, f.d, f.d, f.train, f.ntrain, f.test, f.ntest, &o, &fa), RDML_ECONFIG);
    CHECK_STR_HAS(ctx.msg, "is -1");
    al[2] = 100;
    /* NaN feature */
    float keep = f.X[f.train[5] * f.d + 3];
    f.X[f.train[5] * f.d + 3] = NAN;
    rdml_ctx_init(&ctx);
    CHECK_EQ_I(rdml_ridge_fact_new(&ctx, f.X, f.n, f.d, f.d, f.train, f.ntrain, f.test, f.ntest, &o, &fa), RDML_EDATA);
    char want[128];
    snprintf(want, sizeof want, "NaN at image %lld (row), feature 3", (long long)f.train[5]);
    CHECK_STR_HAS(ctx.msg, want);
    f.X[f.train[5] * f.d + 3] = keep;
    /* too few training rows, rows out of range, repeated rows */
    rdml_ctx_init(&ctx);
    CHECK_EQ_I(rdml_ridge_fact_new(&ctx, f.X, f.n, f.d, f.d, f.train, 1, f.test, f.ntest, &o, &fa), RDML_EDATA);
    CHECK_STR_HAS(ctx.msg, "need at least 2");
    int64_t badrows[3] = {0, 1, 80};
    rdml_ctx_init(&ctx);
    CHECK_EQ_I(rdml_ridge_fact_new(&ctx, f.X, f.n, f.d, f.d, badrows, 3, NULL, 0, &o, &fa), RDML_EDATA);
    CHECK_STR_HAS(ctx.msg, "outside [0, 80)");
    badrows[2] = 1;
    rdml_ctx_init(&ctx);
    CHECK_EQ_I(rdml_ridge_fact_new(&ctx, f.X, f.n, f.d, f.d, badrows, 3, NULL, 0, &o, &fa), RDML_EDATA);
    CHECK_STR_HAS(ctx.msg, "image 1 appears twice");
    /* k-fold: too many folds; a fold id out of range */
    o.cv = RDML_RIDGE_KFOLD;
    o.inner_k = 61;
    rdml_ctx_init(&ctx);
    CHECK_EQ_I(rdml_ridge_fact_new(&ctx, f.X, f.n, f.d, f.d, f.train, f.ntrain, f.test, f.ntest, &o, &fa), RDML_ECONFIG);
    CHECK_STR_HAS(ctx.msg, "61 inner folds for 60 training images");
    o.inner_k = 4;
    f.fold[7] = 4;
    o.inner_fold = f.fold;
    rdml_ctx_init(&ctx);
    CHECK_EQ_I(rdml_ridge_fact_new(&ctx, f.X, f.n, f.d, f.d, f.train, f.ntrain, f.test, f.ntest, &o, &fa), RDML_EDATA);
    CHECK_STR_HAS(ctx.msg, "training row 7 is 4");
    /* NaN / Inf responses, zero targets */
    o.cv = RDML_RIDGE_LOO;
    rdml_ctx_init(&ctx);
    CHECK_EQ_I(rdml_ridge_fact_new(&ctx, f.X, f.n, f.d, f.d, f.train, f.ntrain, f.test, f.ntest, &o, &fa), RDML_OK);
    f.Y[f.test[2] * f.v + 6] = INFINITY;
    int32_t best[25];
    rdml_ridge_out ro = {0};
    ro.alpha_index = best;
    rdml_ctx_init(&ctx);
    CHECK_EQ_I(rdml_ridge_fit(&ctx, fa, f.Y + 4, f.v, 5, 1004, &ro), RDML_EDATA);
    snprintf(want, sizeof want, "Inf at image %lld (row), vertex 1006", (long long)f.test[2]);
    CHECK_STR_HAS(ctx.msg, want);
    rdml_ctx_init(&ctx);
    CHECK_EQ_I(rdml_ridge_fit(&ctx, fa, f.Y, f.v, 0, 0, &ro), RDML_EDATA);
    CHECK_STR_HAS(ctx.msg, "zero vertices");
    rdml_ridge_fact_free(fa);
    fx_close(&f);
}

int main(void) {
    RUN(test_loo_tall);
    RUN(test_loo_wide);
    RUN(test_loo_blocks);
    RUN(test_loo_prune);
    RUN(test_kfold);
    RUN(test_blocks);
    RUN(test_kfold_seeded);
    RUN(test_constant_columns);
    RUN(test_constant_features);
    RUN(test_bad_input);
    return test_summary();
}
