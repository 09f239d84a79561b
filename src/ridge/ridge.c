/* ridge.c — ridge regression to many targets with a per-target alpha (rdml/ridge.h).
 *
 * Layout: every matrix is row-major. The feature-side work (centring, scaling, the Gram
 * matrix, its eigendecomposition, U, V, the leverages) is done once per fact, in double; the
 * target-side work (per block of targets) is float32 SGEMMs on OpenBLAS plus fused
 * element-wise reductions that accumulate in double.
 */
#include "rdml/ridge.h"

#include <cblas.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rdml/cv.h"

/* LAPACK (OpenBLAS exports it); the trailing lengths are the hidden Fortran string lengths. */
void dsyevd_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda,
             double *w, double *work, const int *lwork, int *iwork, const int *liwork, int *info,
             size_t ljobz, size_t luplo);

/* Rows of the reduction panel (LOO) and of the test panel; see docs/encode.md. */
#ifndef RIDGE_PANEL
#define RIDGE_PANEL 256
#endif

void rdml_ridge_opts_default(rdml_ridge_opts *o) {
    memset(o, 0, sizeof *o);
    o->cv = RDML_RIDGE_LOO;
    o->inner_k = 5;
    o->score = RDML_RIDGE_SCORE_NEG_MSE;
}

/* One factorisation: m rows of centred (scaled) features Xc = U diag(s) V'. */
typedef struct rfac {
    int64_t m, r; /* rows, kept rank */
    float *U;     /* m x r */
    double *lam;  /* r eigenvalues s^2, descending */
    float *V;     /* d x r (full fact only) */
    float *T;     /* nt x r: the held-out (test) rows, centred like Xc, times V */
    int64_t nt;
} rfac;

typedef struct rinner {
    int64_t ntr, nte;
    int64_t *tr, *te; /* positions in the fact's train order */
    rfac F;
} rinner;

struct rdml_ridge_fact {
    int64_t n, d, ntrain, ntest, nalphas;
    rdml_ridge_cv cv;
    rdml_ridge_score score;
    int64_t block;
    double *alphas;
    int64_t *train, *test;
    double *mean, *scale; /* d: training mean and scale of the raw features */
    rfac F;               /* all training rows; F.T = the test rows */
    float *inv1mh;        /* LOO: nalphas x ntrain, 1 / (1 - h_i(a)) */
    /* LOO pruning (see loo_pruned): d_ai = inv1mh[a][i], m_a = the mean of d_a.^2 */
    int exhaustive;
    float *dd;            /* 2 nalphas x ntrain: d_ai^2, then (d_ai^2 - m_a)^2 */
    double *dstat;        /* 4 x nalphas: min d^2, max d^2, m_a, mean d^2 (m_a = the mean) */
    double *cc;           /* 2 nalphas x r: c_aj = lam_j / (lam_j + a), then c_aj^2 */
    int64_t K;            /* k-fold: inner folds */
    rinner *inner;
};

static void rfac_free(rfac *F) {
    free(F->U);
    free(F->lam);
    free(F->V);
    free(F->T);
    memset(F, 0, sizeof *F);
}

void rdml_ridge_fact_free(rdml_ridge_fact *f) {
    if (!f) return;
    free(f->alphas);
    free(f->train);
    free(f->test);
    free(f->mean);
    free(f->scale);
    rfac_free(&f->F);
    free(f->inv1mh);
    free(f->dd);
    free(f->dstat);
    free(f->cc);
    if (f->inner)
        for (int64_t k = 0; k < f->K; k++) {
            free(f->inner[k].tr);
            free(f->inner[k].te);
            rfac_free(&f->inner[k].F);
        }
    free(f->inner);
    free(f);
}

int64_t rdml_ridge_fact_dim(const rdml_ridge_fact *f, char which) {
    switch (which) {
    case 'd': return f->d;
    case 'n': return f->ntrain;
    case 't': return f->ntest;
    case 'a': return f->nalphas;
    case 'r': return f->F.r;
    default: return -1;
    }
}

/* Symmetric eigendecomposition of the m x m matrix G (row-major = column-major, symmetric):
 * on return G holds the eigenvectors as COLUMNS of a column-major matrix, i.e. row q of G is
 * eigenvector q; w the eigenvalues ascending. */
static int eig_sym(rdml_ctx *ctx, int64_t m, double *G, double *w) {
    if (m > 46340) return RDML_FAIL(ctx, RDML_EDATA, "ridge: Gram matrix of size %lld is too large for LAPACK", (long long)m);
    int n = (int)m, lwork = -1, liwork = -1, info = 0, iwq = 0;
    double wq = 0;
    dsyevd_("V", "U", &n, G, &n, w, &wq, &lwork, &iwq, &liwork, &info, 1, 1);
    if (info != 0) return RDML_FAIL(ctx, RDML_EINTERNAL, "ridge: dsyevd workspace query failed (info %d)", info);
    lwork = (int)wq + 1;
    liwork = iwq + 1;
    double *work = rdml_malloc(ctx, (size_t)lwork * sizeof *work, "eigendecomposition workspace");
    int *iwork = work ? rdml_malloc(ctx, (size_t)liwork * sizeof *iwork, "eigendecomposition workspace") : NULL;
    if (!work || !iwork) {
        free(work);
        return ctx->code;
    }
    dsyevd_("V", "U", &n, G, &n, w, work, &lwork, iwork, &liwork, &info, 1, 1);
    free(work);
    free(iwork);
    if (info != 0)
        return RDML_FAIL(ctx, RDML_EINTERNAL, "ridge: the eigendecomposition of the %lld x %lld Gram matrix did not converge (LAPACK dsyevd info %d)", (long long)m, (long long)m, info);
    return RDML_OK;
}

/* Factor Xc (m x d, double, centred). Xt (nt x d, double, centred the same way) gives F->T.
 * want_V: keep V (d x r). ulev (optional, m x r double out) receives U in double. */
static int factor(rdml_ctx *ctx, const double *Xc, int64_t m, int64_t d, const double *Xt,
                  int64_t nt, int want_V, rfac *F, double **Ud_out) {
    memset(F, 0, sizeof *F);
    F->m = m;
    F->nt = nt;
    int primal = m > d; /* sklearn: "svd" mode when n_samples > n_features */
    int64_t g = primal ? d : m;
    double *G = rdml_malloc(ctx, (size_t)g * (size_t)g * sizeof *G, "ridge Gram matrix");
    double *w = rdml_malloc(ctx, (size_t)g * sizeof *w, "ridge eigenvalues");
    double *Ud = NULL, *Vd = NULL;
    int rc = G && w ? RDML_OK : ctx->code;
    if (!rc) {
        if (primal) /* G = Xc' Xc */
            cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)d, (int)m, 1.0, Xc, (int)d, 0.0, G, (int)d);
        else /* G = Xc Xc' */
            cblas_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, (int)m, (int)d, 1.0, Xc, (int)d, 0.0, G, (int)m);
        /* row-major upper = column-major lower: fill the whole matrix for LAPACK's "U" */
        for (int64_t i = 0; i < g; i++)
            for (int64_t j = 0; j < i; j++) G[i * g + j] = G[j * g + i];
        rc = eig_sym(ctx, g, G, w);
    }
    int64_t r = 0;
    if (!rc) {
        double lmax = w[g - 1] > 0 ? w[g - 1] : 0;
        double tol = lmax * (double)(m > d ? m : d) * DBL_EPSILON;
        for (int64_t q = g - 1; q >= 0 && w[q] > tol; q--) r++;
        F->r = r;
        F->lam = rdml_malloc(ctx, (size_t)(r ? r : 1) * sizeof *F->lam, "ridge eigenvalues");
        Ud = rdml_malloc(ctx, (size_t)m * (size_t)(r ? r : 1) * sizeof *Ud, "ridge U");
        Vd = rdml_malloc(ctx, (size_t)d * (size_t)(r ? r : 1) * sizeof *Vd, "ridge V");
        rc = F->lam && Ud && Vd ? RDML_OK : ctx->code;
    }
    if (!rc && r > 0) {
        /* eigenvector q is row q of G (column-major columns); keep the r largest, descending */
        double *E = primal ? Vd : Ud;
        int64_t ld = primal ? d : m;
        for (int64_t c = 0; c < r; c++) {
            int64_t q = g - 1 - c;
            F->lam[c] = w[q];
            for (int64_t i = 0; i < ld; i++) E[i * r + c] = G[q * g + i];
        }
        if (primal) { /* U = Xc V diag(1/s) */
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)m, (int)r, (int)d, 1.0, Xc, (int)d, Vd, (int)r, 0.0, Ud, (int)r);
            for (int64_t c = 0; c < r; c++) {
                double is = 1.0 / sqrt(F->lam[c]);
                for (int64_t i = 0; i < m; i++) Ud[i * r + c] *= is;
            }
        } else { /* V = Xc' U diag(1/s) */
            cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)d, (int)r, (int)m, 1.0, Xc, (int)d, Ud, (int)r, 0.0, Vd, (int)r);
            for (int64_t c = 0; c < r; c++) {
                double is = 1.0 / sqrt(F->lam[c]);
                for (int64_t k = 0; k < d; k++) Vd[k * r + c] *= is;
            }
        }
    }
    free(G);
    free(w);
    G = NULL;
    if (!rc) {
        int64_t rr = r ? r : 1;
        F->U = rdml_malloc(ctx, (size_t)m * (size_t)rr * sizeof *F->U, "ridge U (float)");
        F->T = rdml_malloc(ctx, (size_t)(nt ? nt : 1) * (size_t)rr * sizeof *F->T, "ridge test projection");
        if (want_V) F->V = rdml_malloc(ctx, (size_t)d * (size_t)rr * sizeof *F->V, "ridge V (float)");
        rc = F->U && F->T && (!want_V || F->V) ? RDML_OK : ctx->code;
    }
    if (!rc) {
        for (int64_t i = 0; i < m * r; i++) F->U[i] = (float)Ud[i];
        if (want_V)
            for (int64_t i = 0; i < d * r; i++) F->V[i] = (float)Vd[i];
        if (nt > 0 && r > 0) {
            double *Td = rdml_malloc(ctx, (size_t)nt * (size_t)r * sizeof *Td, "ridge test projection");
            if (!Td) rc = ctx->code;
            else {
                cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nt, (int)r, (int)d, 1.0, Xt, (int)d, Vd, (int)r, 0.0, Td, (int)r);
                for (int64_t i = 0; i < nt * r; i++) F->T[i] = (float)Td[i];
                free(Td);
            }
        }
    }
    free(Vd);
    if (!rc && Ud_out) *Ud_out = Ud;
    else free(Ud);
    if (rc) rfac_free(F);
    return rc;
}

static int check_rows(rdml_ctx *ctx, const char *what, const int64_t *rows, int64_t nr, int64_t n) {
    for (int64_t i = 0; i < nr; i++)
        if (rows[i] < 0 || rows[i] >= n)
            return RDML_FAIL(ctx, RDML_EDATA, "ridge: %s row %lld is image %lld, outside [0, %lld) (hint: the row lists must index the rows of the feature matrix)", what, (long long)i, (long long)rows[i], (long long)n);
    return RDML_OK;
}

int rdml_ridge_fact_new(rdml_ctx *ctx, const float *X, int64_t n, int64_t d, int64_t ldx,
                        const int64_t *train, int64_t ntrain, const int64_t *test,
                        int64_t ntest, const rdml_ridge_opts *opts, rdml_ridge_fact **out) {
    *out = NULL;
    if (!X || !train || !opts || n < 1 || d < 1 || ldx < d || ntest < 0 || (ntest > 0 && !test))
        return RDML_FAIL(ctx, RDML_EINTERNAL, "ridge: bad arguments (n %lld, d %lld, ldx %lld, ntest %lld)", (long long)n, (long long)d, (long long)ldx, (long long)ntest);
    if (ntrain < 2)
        return RDML_FAIL(ctx, RDML_EDATA, "ridge: %lld training image(s); need at least 2 (hint: use more images or fewer outer folds)", (long long)ntrain);
    if (opts->nalphas < 1 || !opts->alphas)
        return RDML_FAIL(ctx, RDML_ECONFIG, "ridge: empty alpha grid (hint: give at least one alpha > 0)");
    for (int64_t a = 0; a < opts->nalphas; a++)
        if (!(opts->alphas[a] > 0) || !isfinite(opts->alphas[a]))
            return RDML_FAIL(ctx, RDML_ECONFIG, "ridge: alpha %lld of the grid is %g; every alpha must be a finite number > 0 (hint: a log-spaced grid such as 1e-2 ... 1e6)", (long long)a, opts->alphas[a]);
    if (opts->cv != RDML_RIDGE_LOO && opts->cv != RDML_RIDGE_KFOLD)
        return RDML_FAIL(ctx, RDML_ECONFIG, "ridge: unknown alpha selection %d (RDML_RIDGE_LOO or RDML_RIDGE_KFOLD)", (int)opts->cv);
    if (opts->cv == RDML_RIDGE_KFOLD && opts->score != RDML_RIDGE_SCORE_NEG_MSE && opts->score != RDML_RIDGE_SCORE_R2)
        return RDML_FAIL(ctx, RDML_ECONFIG, "ridge: unknown k-fold score %d", (int)opts->score);
    RDML_TRY(check_rows(ctx, "training", train, ntrain, n));
    if (ntest) RDML_TRY(check_rows(ctx, "test", test, ntest, n));
    {   /* repeated training rows would make the leave-one-out wrong */
        int8_t *seen = rdml_calloc(ctx, (size_t)n, 1, "ridge row check");
        if (!seen) return ctx->code;
        int rc = RDML_OK;
        for (int64_t i = 0; i < ntrain && !rc; i++) {
            if (seen[train[i]]) rc = RDML_FAIL(ctx, RDML_EDATA, "ridge: image %lld appears twice among the training rows (hint: training rows must be distinct)", (long long)train[i]);
            seen[train[i]] = 1;
        }
        free(seen);
        RDML_TRY(rc);
    }
    /* NaN / Inf in the rows used */
    for (int pass = 0; pass < 2; pass++) {
        const int64_t *rows = pass ? test : train;
        int64_t nr = pass ? ntest : ntrain;
        for (int64_t i = 0; i < nr; i++) {
            const float *x = X + rows[i] * ldx;
            for (int64_t k = 0; k < d; k++)
                if (!isfinite(x[k]))
                    return RDML_FAIL(ctx, RDML_EDATA, "ridge: the feature matrix has %s at image %lld (row), feature %lld (column) (hint: recompute the embeddings; NaN features cannot be regressed)", isnan(x[k]) ? "NaN" : "Inf", (long long)rows[i], (long long)k);
        }
    }
    int64_t K = 0;
    int64_t *fold = NULL;
    if (opts->cv == RDML_RIDGE_KFOLD) {
        K = opts->inner_k;
        if (K < 2 || K > ntrain)
            return RDML_FAIL(ctx, RDML_ECONFIG, "ridge: %lld inner folds for %lld training images; need 2 <= folds <= images (hint: lower the number of inner folds)", (long long)K, (long long)ntrain);
        fold = rdml_malloc(ctx, (size_t)(n > ntrain ? n : ntrain) * sizeof *fold, "ridge inner folds");
        if (!fold) return ctx->code;
        if (opts->inner_fold) {
            for (int64_t i = 0; i < ntrain; i++) {
                fold[i] = opts->inner_fold[i];
                if (fold[i] < 0 || fold[i] >= K) {
                    free(fold);
                    return RDML_FAIL(ctx, RDML_EDATA, "ridge: inner fold of training row %lld is %lld, outside [0, %lld)", (long long)i, (long long)opts->inner_fold[i], (long long)K);
                }
            }
        } else {
            int8_t *use = rdml_calloc(ctx, (size_t)n, 1, "ridge inner fold mask");
            int rc = use ? RDML_OK : ctx->code;
            for (int64_t i = 0; i < ntrain && !rc; i++) use[train[i]] = 1;
            if (!rc) rc = rdml_cv_inner_folds(ctx, n, use, K, opts->seed, opts->outer_fold, fold);
            free(use);
            if (rc) {
                free(fold);
                return rc;
            }
            /* per image -> per training row (the ascending use order is independent of train's) */
            int64_t *tmp = rdml_malloc(ctx, (size_t)ntrain * sizeof *tmp, "ridge inner folds");
            if (!tmp) {
                free(fold);
                return ctx->code;
            }
            for (int64_t i = 0; i < ntrain; i++) tmp[i] = fold[train[i]];
            memcpy(fold, tmp, (size_t)ntrain * sizeof *tmp);
            free(tmp);
        }
        for (int64_t k = 0; k < K; k++) {
            int64_t c = 0;
            for (int64_t i = 0; i < ntrain; i++) c += fold[i] == k;
            if (c == 0 || ntrain - c < 2) {
                free(fold);
                return RDML_FAIL(ctx, RDML_EDATA, "ridge: inner fold %lld holds %lld of %lld training images; every inner fold needs at least 1 held-out and 2 training images (hint: fewer inner folds or more images)", (long long)k, (long long)c, (long long)ntrain);
            }
        }
    }

    rdml_ridge_fact *f = rdml_calloc(ctx, 1, sizeof *f, "ridge factorisation");
    if (!f) {
        free(fold);
        return ctx->code;
    }
    f->n = n;
    f->d = d;
    f->ntrain = ntrain;
    f->ntest = ntest;
    f->nalphas = opts->nalphas;
    f->cv = opts->cv;
    f->score = opts->score;
    f->block = opts->block;
    f->exhaustive = opts->loo_exhaustive != 0;
    f->K = K;
    f->alphas = rdml_malloc(ctx, (size_t)f->nalphas * sizeof *f->alphas, "ridge alphas");
    f->train = rdml_malloc(ctx, (size_t)ntrain * sizeof *f->train, "ridge rows");
    f->test = rdml_malloc(ctx, (size_t)(ntest ? ntest : 1) * sizeof *f->test, "ridge rows");
    f->mean = rdml_malloc(ctx, (size_t)d * sizeof *f->mean, "ridge feature means");
    f->scale = rdml_malloc(ctx, (size_t)d * sizeof *f->scale, "ridge feature scales");
    double *Xc = rdml_malloc(ctx, (size_t)ntrain * (size_t)d * sizeof *Xc, "ridge centred features");
    double *Xt = rdml_malloc(ctx, (size_t)(ntest ? ntest : 1) * (size_t)d * sizeof *Xt, "ridge test features");
    double *Ud = NULL;
    int rc = f->alphas && f->train && f->test && f->mean && f->scale && Xc && Xt ? RDML_OK : ctx->code;
    if (!rc) {
        memcpy(f->alphas, opts->alphas, (size_t)f->nalphas * sizeof *f->alphas);
        memcpy(f->train, train, (size_t)ntrain * sizeof *train);
        if (ntest) memcpy(f->test, test, (size_t)ntest * sizeof *test);
        /* mean and (population) std over the training rows, two passes in double */
        for (int64_t k = 0; k < d; k++) f->mean[k] = 0;
        for (int64_t i = 0; i < ntrain; i++) {
            const float *x = X + train[i] * ldx;
            for (int64_t k = 0; k < d; k++) f->mean[k] += x[k];
        }
        for (int64_t k = 0; k < d; k++) f->mean[k] /= (double)ntrain;
        for (int64_t i = 0; i < ntrain; i++) {
            const float *x = X + train[i] * ldx;
            double *xc = Xc + i * d;
            for (int64_t k = 0; k < d; k++) xc[k] = (double)x[k] - f->mean[k];
        }
        for (int64_t k = 0; k < d; k++) f->scale[k] = 1.0;
        if (opts->standardize) {
            double *var = f->scale;
            for (int64_t k = 0; k < d; k++) var[k] = 0;
            for (int64_t i = 0; i < ntrain; i++)
                for (int64_t k = 0; k < d; k++) var[k] += Xc[i * d + k] * Xc[i * d + k];
            for (int64_t k = 0; k < d; k++) {
                double v = var[k] / (double)ntrain, nm = (double)ntrain * f->mean[k] * DBL_EPSILON;
                /* sklearn's _is_constant_feature: such a feature keeps scale 1 */
                f->scale[k] = v <= (double)ntrain * DBL_EPSILON * v + nm * nm ? 1.0 : sqrt(v);
            }
            for (int64_t i = 0; i < ntrain; i++)
                for (int64_t k = 0; k < d; k++) Xc[i * d + k] /= f->scale[k];
        }
        for (int64_t i = 0; i < ntest; i++) {
            const float *x = X + test[i] * ldx;
            for (int64_t k = 0; k < d; k++) Xt[i * d + k] = ((double)x[k] - f->mean[k]) / f->scale[k];
        }
        rc = factor(ctx, Xc, ntrain, d, Xt, ntest, 1, &f->F, f->cv == RDML_RIDGE_LOO ? &Ud : NULL);
    }
    if (!rc && f->cv == RDML_RIDGE_LOO) {
        /* leverages h_i(a) = 1/n + sum_j U_ij^2 lam_j / (lam_j + a): the 1/n is sklearn's
         * unpenalised intercept column */
        int64_t A = f->nalphas, r = f->F.r;
        f->inv1mh = rdml_malloc(ctx, (size_t)A * (size_t)ntrain * sizeof *f->inv1mh, "ridge leverages");
        double *dj = rdml_malloc(ctx, (size_t)(r ? r : 1) * sizeof *dj, "ridge leverages");
        rc = f->inv1mh && dj ? RDML_OK : ctx->code;
        for (int64_t a = 0; a < A && !rc; a++) {
            for (int64_t j = 0; j < r; j++) dj[j] = f->F.lam[j] / (f->F.lam[j] + f->alphas[a]);
            for (int64_t i = 0; i < ntrain; i++) {
                double h = 1.0 / (double)ntrain;
                const double *u = Ud + i * r;
                for (int64_t j = 0; j < r; j++) h += u[j] * u[j] * dj[j];
                f->inv1mh[a * ntrain + i] = (float)(1.0 / (1.0 - h));
            }
        }
        free(dj);
        /* what the pruning bounds need (from the float weights the exact sums use) */
        f->dd = rc ? NULL : rdml_malloc(ctx, (size_t)(2 * A) * (size_t)ntrain * sizeof *f->dd, "ridge LOO bounds");
        f->dstat = rc ? NULL : rdml_malloc(ctx, (size_t)(4 * A) * sizeof *f->dstat, "ridge LOO bounds");
        f->cc = rc ? NULL : rdml_malloc(ctx, (size_t)(2 * A) * (size_t)(r ? r : 1) * sizeof *f->cc, "ridge LOO bounds");
        if (!rc && !(f->dd && f->dstat && f->cc)) rc = ctx->code;
        for (int64_t a = 0; a < A && !rc; a++) {
            double lo = INFINITY, hi = 0, mean = 0;
            for (int64_t i = 0; i < ntrain; i++) {
                double v = (double)f->inv1mh[a * ntrain + i];
                v *= v;
                lo = v < lo ? v : lo;
                hi = v > hi ? v : hi;
                mean += v;
            }
            double mid = mean / (double)ntrain;
            for (int64_t i = 0; i < ntrain; i++) {
                double v = (double)f->inv1mh[a * ntrain + i];
                v *= v;
                f->dd[a * ntrain + i] = (float)v;
                f->dd[(A + a) * ntrain + i] = (float)((v - mid) * (v - mid));
            }
            f->dstat[a] = lo;
            f->dstat[A + a] = hi;
            f->dstat[2 * A + a] = mid;
            f->dstat[3 * A + a] = mean / (double)ntrain;
            for (int64_t j = 0; j < r; j++) {
                double c = f->F.lam[j] / (f->F.lam[j] + f->alphas[a]);
                f->cc[a * r + j] = c;
                f->cc[(A + a) * r + j] = c * c;
            }
        }
    }
    free(Ud);
    if (!rc && K > 0) {
        /* inner folds: rows of Xc (standardised with the outer training statistics, centred),
         * re-centred on each inner training side */
        f->inner = rdml_calloc(ctx, (size_t)K, sizeof *f->inner, "ridge inner folds");
        rc = f->inner ? RDML_OK : ctx->code;
        for (int64_t k = 0; k < K && !rc; k++) {
            rinner *in = &f->inner[k];
            int64_t nte = 0;
            for (int64_t i = 0; i < ntrain; i++) nte += fold[i] == k;
            in->nte = nte;
            in->ntr = ntrain - nte;
            in->tr = rdml_malloc(ctx, (size_t)in->ntr * sizeof *in->tr, "ridge inner rows");
            in->te = rdml_malloc(ctx, (size_t)nte * sizeof *in->te, "ridge inner rows");
            double *A = rdml_malloc(ctx, (size_t)in->ntr * (size_t)d * sizeof *A, "ridge inner features");
            double *B = rdml_malloc(ctx, (size_t)nte * (size_t)d * sizeof *B, "ridge inner features");
            double *mu = rdml_calloc(ctx, (size_t)d, sizeof *mu, "ridge inner means");
            rc = in->tr && in->te && A && B && mu ? RDML_OK : ctx->code;
            if (!rc) {
                for (int64_t i = 0, a = 0, b = 0; i < ntrain; i++) {
                    if (fold[i] == k) in->te[b++] = i;
                    else in->tr[a++] = i;
                }
                for (int64_t q = 0; q < in->ntr; q++)
                    for (int64_t c = 0; c < d; c++) mu[c] += Xc[in->tr[q] * d + c];
                for (int64_t c = 0; c < d; c++) mu[c] /= (double)in->ntr;
                for (int64_t q = 0; q < in->ntr; q++)
                    for (int64_t c = 0; c < d; c++) A[q * d + c] = Xc[in->tr[q] * d + c] - mu[c];
                for (int64_t q = 0; q < nte; q++)
                    for (int64_t c = 0; c < d; c++) B[q * d + c] = Xc[in->te[q] * d + c] - mu[c];
                rc = factor(ctx, A, in->ntr, d, B, nte, 0, &in->F, NULL);
                if (rc) rdml_ctx_prefix(ctx, "inner fold %lld: ", (long long)k);
            }
            free(A);
            free(B);
            free(mu);
        }
    }
    free(Xc);
    free(Xt);
    free(fold);
    if (rc) {
        rdml_ridge_fact_free(f);
        return rc;
    }
    *out = f;
    return RDML_OK;
}

/* ---- per block ---- */

static int64_t sub_block(const rdml_ridge_fact *f, int64_t vb) {
    int64_t w = f->block;
    if (w <= 0) {
        /* A * w columns of residuals per row panel: about 1024, a multiple of 16 targets */
        w = 1024 / f->nalphas;
        w = w < 16 ? 16 : (w / 16) * 16;
    }
    return w < vb ? w : vb;
}

static int64_t max_rank(const rdml_ridge_fact *f) {
    int64_t r = f->F.r;
    for (int64_t k = 0; k < f->K; k++) r = f->inner[k].F.r > r ? f->inner[k].F.r : r;
    return r ? r : 1;
}

static int64_t max_inner_te(const rdml_ridge_fact *f) {
    int64_t m = 1;
    for (int64_t k = 0; k < f->K; k++) m = f->inner[k].nte > m ? f->inner[k].nte : m;
    return m;
}

static int64_t prune_block(const rdml_ridge_fact *f, int64_t vb);
static int64_t pwork_floats(const rdml_ridge_fact *f, int64_t w);

int64_t rdml_ridge_fit_bytes(const rdml_ridge_fact *f, int64_t vb) {
    int64_t w = sub_block(f, vb), A = f->nalphas, r = max_rank(f), n = f->ntrain, d = f->d;
    int64_t P = f->cv == RDML_RIDGE_LOO ? (n < RIDGE_PANEL ? n : RIDGE_PANEL) : max_inner_te(f);
    int64_t fl = n * w * (f->K ? 2 : 1) + r * w * (A + 1) + P * A * w + (f->ntest ? f->ntest : 1) * w +
                 (d > r ? d : r) * w;
    int64_t ex = 4 * fl + 8 * (2 * A * w + 9 * w) + 4 * w;
    if (f->cv != RDML_RIDGE_LOO || f->exhaustive || A < 2 || f->F.r == 0) return ex;
    /* pruned LOO (rdml_ridge_fit without cv_scores): its own sub-block */
    w = prune_block(f, vb);
    fl = n * w + r * w + (f->ntest ? f->ntest : 1) * w + (d > r ? d : r) * w + 1 * A * w + r * w;
    int64_t pr = 4 * fl + 8 * (2 * A * w + 9 * w) + 4 * w + 4 * pwork_floats(f, w);
    return ex > pr ? ex : pr;
}

/* Work buffers of one call. */
typedef struct rwork {
    float *Y;     /* ntrain x w: centred training targets */
    float *Yk;    /* ntrain x w: inner-fold training targets (k-fold) */
    float *Z;     /* r x w */
    float *DZ;    /* r x A w */
    float *P;     /* panel x A w */
    float *Pt;    /* ntest x w */
    double *acc;  /* A x w */
    double *score;/* A x w */
    double *ym;   /* w */
    double *ym2;  /* w */
    int32_t *best;/* w */
    double *bsc;  /* w */
    double *macc; /* 6 w: test metrics */
} rwork;

/* Centre the w columns [c0, c0+w) of the rows `rows` (positions into f->train) of Y into dst
 * (nr x w); means into ym. */
static void gather_centre(const rdml_ridge_fact *f, const float *Y, int64_t ldy, int64_t c0,
                          int64_t w, const int64_t *pos, int64_t nr, float *dst, double *ym) {
    for (int64_t t = 0; t < w; t++) ym[t] = 0;
    for (int64_t q = 0; q < nr; q++) {
        const float *y = Y + f->train[pos ? pos[q] : q] * ldy + c0;
        float *o = dst + q * w;
        for (int64_t t = 0; t < w; t++) {
            o[t] = y[t];
            ym[t] += y[t];
        }
    }
    for (int64_t t = 0; t < w; t++) ym[t] /= (double)nr;
    for (int64_t q = 0; q < nr; q++) {
        float *o = dst + q * w;
        for (int64_t t = 0; t < w; t++) o[t] = (float)((double)o[t] - ym[t]);
    }
}

/* LOO: acc[a][t] = sum_i ((y_it - yhat_it(a)) / (1 - h_i(a)))^2 over all training rows.
 * The residual is y - U diag(lam / (lam + alpha)) Z (Z = U'y), or, when U and the constant
 * vector span all n rows (r = n - 1: d >= n - 1 at full rank), U diag(alpha / (lam + alpha)) Z
 * exactly (y lies in that span): no cancellation between y and a prediction equal to it up to
 * rounding. Either way one GEMM U x [c_1 Z ... c_A Z] per row panel, the residual is
 * y_base + panel (y_base = y or 0). On return W->Z holds Z; W->Y may be zeroed. */
static void loo_errors(const rdml_ridge_fact *f, rwork *W, int64_t w) {
    int64_t n = f->ntrain, r = f->F.r, A = f->nalphas, Aw = A * w;
    const rfac *F = &f->F;
    for (int64_t i = 0; i < Aw; i++) W->acc[i] = 0;
    if (r > 0) {
        /* Z = U' Y */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)r, (int)w, (int)n, 1.0f, F->U, (int)r, W->Y, (int)w, 0.0f, W->Z, (int)w);
        int span = r >= n - 1;
        if (span) memset(W->Y, 0, (size_t)(n * w) * sizeof *W->Y);
        for (int64_t j = 0; j < r; j++) {
            for (int64_t a = 0; a < A; a++) {
                double l = F->lam[j], al = f->alphas[a];
                float cj = (float)(span ? al / (l + al) : -l / (l + al));
                float *o = W->DZ + j * Aw + a * w;
                const float *z = W->Z + j * w;
                for (int64_t t = 0; t < w; t++) o[t] = cj * z[t];
            }
        }
    }
    for (int64_t i0 = 0; i0 < n; i0 += RIDGE_PANEL) {
        int64_t np = n - i0 < RIDGE_PANEL ? n - i0 : RIDGE_PANEL;
        if (r > 0)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)np, (int)Aw, (int)r, 1.0f, F->U + i0 * r, (int)r, W->DZ, (int)Aw, 0.0f, W->P, (int)Aw);
        else
            memset(W->P, 0, (size_t)(np * Aw) * sizeof *W->P);
        for (int64_t a = 0; a < A; a++) {
            double *acc = W->acc + a * w;
            const float *sc = f->inv1mh + a * n + i0;
            /* float partial sums over the panel's rows, then into double */
            float part[64];
            for (int64_t t0 = 0; t0 < w; t0 += 64) {
                int64_t tw = w - t0 < 64 ? w - t0 : 64;
                for (int64_t t = 0; t < tw; t++) part[t] = 0;
                for (int64_t i = 0; i < np; i++) {
                    const float *y = W->Y + (i0 + i) * w + t0;
                    const float *p = W->P + i * Aw + a * w + t0;
                    float s = sc[i];
                    for (int64_t t = 0; t < tw; t++) {
                        float e = (y[t] + p[t]) * s;
                        part[t] += e * e;
                    }
                }
                for (int64_t t = 0; t < tw; t++) acc[t0 + t] += part[t];
            }
        }
    }
}

/* ---- LOO with pruning ----
 *
 * For target y (centred), z = U'y, c_a = lam / (lam + a), the residual of alpha a is
 * e_a = y - U (c_a o z) and its LOO error L_a = ||D_a e_a||^2 with D_a = diag(d_a),
 * d_ai = 1 / (1 - h_i(a)). Once the residual e_b of one alpha b is computed exactly (an
 * "anchor"), every other alpha's residual is e_a = e_b + U delta, delta = (c_b - c_a) o z, so
 * with D_a^2 = m_a I + R_a (m_a the mean of d_a^2) and U'e_b = (1 - c_b) o z:
 *     L_a = ||D_a e_b||^2 + 2 m_a ((1 - c_b) o z)'delta + 2 e_b' R_a U delta + ||D_a U delta||^2
 * where |e_b' R_a U delta| <= ||R_a e_b|| ||delta|| (Cauchy-Schwarz, U has orthonormal
 * columns) and min d_a^2 ||delta||^2 <= ||D_a U delta||^2 <= max d_a^2 ||delta||^2. The two
 * norms ||D_a e_b||^2 and ||R_a e_b||^2 of every alpha are one small GEMM of the fact's
 * [d^2; (d^2 - m)^2] (2A x n) with e_b o e_b; ||delta||^2 and the cross term are r-space sums
 * (one A x r GEMM per round). Before any anchor, L_a lies in [min d_a^2, max d_a^2] ||e_a||^2
 * with ||e_a||^2 = ||y_perp||^2 + ||(1 - c_a) o z||^2.
 * Per target: evaluate exactly the alpha with the best estimate, tighten every alpha's bounds
 * with the new anchor, and repeat with the best remaining candidate (the smallest midpoint of
 * its bounds) while some unevaluated alpha's lower bound is <= the smallest upper bound plus a
 * rounding allowance. An alpha not evaluated can then neither beat nor tie the minimum. The
 * exact evaluations are the exhaustive path's own sums (the same float products and panel
 * reduction order) in SGEMMs of another width, so the chosen alpha and its LOO error are the
 * exhaustive path's up to float32 rounding, as for another block width (OpenBLAS may sum in
 * another order): only two alphas within rounding of each other may swap. */

/* Rounding allowances (docs/encode.md): relative, for the float32 sums of the exact errors and
 * of the bound GEMM; and the error of float32 residuals relative to ||y||. */
#define PRUNE_REL 1e-4
#define PRUNE_GEMM 2e-5
#define PRUNE_RES 3e-5

typedef struct pwork {
    float *P;       /* n x w: the round's residuals, then their squares */
    float *DZ;      /* r x w: the round's columns c_a o z (the exhaustive path's floats) */
    float *cf;      /* A x r: the exhaustive path's float coefficients */
    float *SB;      /* 2A x w: ||D_a e_b||^2, ||R_a e_b||^2 */
    float *part;    /* w */
    double *ZZ;     /* r x w: z o z per target */
    double *ZB;     /* r x w: c_b o z o z per round column */
    double *Q0;     /* 2A x w: C zz, C^2 zz per target */
    double *H;      /* A x w: C (c_b o zz) per round column */
    double *lo, *up, *acc; /* A x w */
    double *yy, *accm;     /* w */
    uint8_t *done;  /* A x w */
    int32_t *next, *ct, *ca; /* w */
} pwork;

static int64_t prune_block(const rdml_ridge_fact *f, int64_t vb) {
    int64_t w = f->block > 0 ? f->block : 512;
    return w < vb ? w : vb;
}

static int64_t pwork_floats(const rdml_ridge_fact *f, int64_t w) {
    int64_t n = f->ntrain, r = f->F.r ? f->F.r : 1, A = f->nalphas;
    /* floats + doubles (x2) + bytes/ints rounded up */
    return n * w + r * w + A * r + 2 * A * w + w + 2 * (2 * r * w + 2 * A * w + A * w + 3 * A * w + 2 * w) +
           (A * w + 3) / 4 + 3 * w;
}

static void pwork_free(pwork *p) {
    free(p->P);
    free(p->DZ);
    free(p->cf);
    free(p->SB);
    free(p->part);
    free(p->ZZ);
    free(p->ZB);
    free(p->Q0);
    free(p->H);
    free(p->lo);
    free(p->up);
    free(p->acc);
    free(p->yy);
    free(p->accm);
    free(p->done);
    free(p->next);
    free(p->ct);
    free(p->ca);
}

static int pwork_new(rdml_ctx *ctx, const rdml_ridge_fact *f, int64_t w, pwork *p) {
    int64_t n = f->ntrain, r = f->F.r ? f->F.r : 1, A = f->nalphas;
    memset(p, 0, sizeof *p);
    p->P = rdml_malloc(ctx, (size_t)(n * w) * sizeof(float), "ridge LOO residuals");
    p->DZ = rdml_malloc(ctx, (size_t)(r * w) * sizeof(float), "ridge LOO columns");
    p->cf = rdml_malloc(ctx, (size_t)(A * r) * sizeof(float), "ridge LOO coefficients");
    p->SB = rdml_malloc(ctx, (size_t)(2 * A * w) * sizeof(float), "ridge LOO bounds");
    p->part = rdml_malloc(ctx, (size_t)w * sizeof(float), "ridge LOO sums");
    p->ZZ = rdml_malloc(ctx, (size_t)(r * w) * sizeof(double), "ridge LOO bounds");
    p->ZB = rdml_malloc(ctx, (size_t)(r * w) * sizeof(double), "ridge LOO bounds");
    p->Q0 = rdml_malloc(ctx, (size_t)(2 * A * w) * sizeof(double), "ridge LOO bounds");
    p->H = rdml_malloc(ctx, (size_t)(A * w) * sizeof(double), "ridge LOO bounds");
    p->lo = rdml_malloc(ctx, (size_t)(A * w) * sizeof(double), "ridge LOO bounds");
    p->up = rdml_malloc(ctx, (size_t)(A * w) * sizeof(double), "ridge LOO bounds");
    p->acc = rdml_malloc(ctx, (size_t)(A * w) * sizeof(double), "ridge LOO errors");
    p->yy = rdml_malloc(ctx, (size_t)w * sizeof(double), "ridge LOO bounds");
    p->accm = rdml_malloc(ctx, (size_t)w * sizeof(double), "ridge LOO errors");
    p->done = rdml_malloc(ctx, (size_t)(A * w), "ridge LOO flags");
    p->next = rdml_malloc(ctx, (size_t)w * sizeof(int32_t), "ridge LOO flags");
    p->ct = rdml_malloc(ctx, (size_t)w * sizeof(int32_t), "ridge LOO flags");
    p->ca = rdml_malloc(ctx, (size_t)w * sizeof(int32_t), "ridge LOO flags");
    if (!(p->P && p->DZ && p->cf && p->SB && p->part && p->ZZ && p->ZB && p->Q0 && p->H && p->lo &&
          p->up && p->acc && p->yy && p->accm && p->done && p->next && p->ct && p->ca)) {
        pwork_free(p);
        return ctx->code;
    }
    int span = f->F.r >= n - 1;
    for (int64_t a = 0; a < A; a++)
        for (int64_t j = 0; j < f->F.r; j++) {
            double l = f->F.lam[j], al = f->alphas[a];
            p->cf[a * r + j] = (float)(span ? al / (l + al) : -l / (l + al));
        }
    return RDML_OK;
}

/* The next alpha to evaluate for target t (-1: none can still win). */
static int32_t prune_next(const rdml_ridge_fact *f, const pwork *p, int64_t w, int64_t t) {
    int64_t A = f->nalphas;
    double ustar = INFINITY, dtop = 0;
    for (int64_t a = 0; a < A; a++) {
        ustar = p->up[a * w + t] < ustar ? p->up[a * w + t] : ustar;
        dtop = f->dstat[A + a] > dtop ? f->dstat[A + a] : dtop;
    }
    double ee = PRUNE_RES * sqrt(p->yy[t] * dtop);
    double lim = ustar + PRUNE_REL * ustar + 2 * sqrt(ustar) * ee + ee * ee;
    int32_t nx = -1;
    double bm = INFINITY;
    for (int64_t a = 0; a < A; a++) {
        if (p->done[a * w + t] || !(p->lo[a * w + t] <= lim)) continue;
        double mid = 0.5 * (p->lo[a * w + t] + p->up[a * w + t]);
        if (nx < 0 || mid < bm) {
            nx = (int32_t)a;
            bm = mid;
        }
    }
    return nx;
}

/* W->Y: the centred targets (n x w). Fills acc (W->acc, A x w: exact where evaluated),
 * best (w) and evals (w). W->Z receives Z = U'Y. */
static void loo_pruned(const rdml_ridge_fact *f, rwork *W, pwork *p, int64_t w, int32_t *best,
                       int32_t *evals) {
    int64_t n = f->ntrain, r = f->F.r, A = f->nalphas;
    const rfac *F = &f->F;
    const double *dmin2 = f->dstat, *dmax2 = f->dstat + A, *dmid = f->dstat + 2 * A, *dmean = f->dstat + 3 * A;
    int span = r >= n - 1;
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)r, (int)w, (int)n, 1.0f, F->U, (int)r, W->Y, (int)w, 0.0f, W->Z, (int)w);
    for (int64_t t = 0; t < w; t++) p->yy[t] = 0;
    for (int64_t i = 0; i < n; i++)
        for (int64_t t = 0; t < w; t++) p->yy[t] += (double)W->Y[i * w + t] * (double)W->Y[i * w + t];
    for (int64_t j = 0; j < r * w; j++) p->ZZ[j] = (double)W->Z[j] * (double)W->Z[j];
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)(2 * A), (int)w, (int)r, 1.0, f->cc, (int)r, p->ZZ, (int)w, 0.0, p->Q0, (int)w);
    /* before any anchor: L_a in [min d^2, max d^2] ||e_a||^2 */
    for (int64_t t = 0; t < w; t++) {
        double szz = 0;
        for (int64_t j = 0; j < r; j++) szz += p->ZZ[j * w + t];
        double yp = span ? 0 : (p->yy[t] - szz > 0 ? p->yy[t] - szz : 0), slack = 1e-5 * p->yy[t];
        double be = INFINITY;
        p->next[t] = 0;
        for (int64_t a = 0; a < A; a++) {
            double e2 = yp + szz - 2 * p->Q0[a * w + t] + p->Q0[(A + a) * w + t];
            e2 = e2 > 0 ? e2 : 0;
            p->lo[a * w + t] = dmin2[a] * (e2 > slack ? e2 - slack : 0);
            p->up[a * w + t] = dmax2[a] * (e2 + slack);
            p->done[a * w + t] = 0;
            double est = dmean[a] * e2;
            if (est < be) {
                be = est;
                p->next[t] = (int32_t)a;
            }
        }
    }
    for (;;) {
        int64_t m = 0;
        for (int64_t t = 0; t < w; t++)
            if (p->next[t] >= 0) {
                p->ct[m] = (int32_t)t;
                p->ca[m++] = p->next[t];
            }
        if (m == 0) break;
        /* exact: the exhaustive path's columns, dot products and panel sums */
        for (int64_t j = 0; j < r; j++)
            for (int64_t k = 0; k < m; k++) p->DZ[j * m + k] = p->cf[p->ca[k] * r + j] * W->Z[j * w + p->ct[k]];
        for (int64_t k = 0; k < m; k++) p->accm[k] = 0;
        for (int64_t i0 = 0; i0 < n; i0 += RIDGE_PANEL) {
            int64_t np = n - i0 < RIDGE_PANEL ? n - i0 : RIDGE_PANEL;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)np, (int)m, (int)r, 1.0f, F->U + i0 * r, (int)r, p->DZ, (int)m, 0.0f, p->P + i0 * m, (int)m);
            for (int64_t k = 0; k < m; k++) p->part[k] = 0;
            for (int64_t i = i0; i < i0 + np; i++) {
                float *pr = p->P + i * m;
                const float *y = W->Y + i * w;
                for (int64_t k = 0; k < m; k++) {
                    float v = (span ? 0.0f : y[p->ct[k]]) + pr[k];
                    float e = v * f->inv1mh[p->ca[k] * n + i];
                    p->part[k] += e * e;
                    pr[k] = v * v;
                }
            }
            for (int64_t k = 0; k < m; k++) p->accm[k] += p->part[k];
        }
        /* the anchors' bounds on every alpha */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)(2 * A), (int)m, (int)n, 1.0f, f->dd, (int)n, p->P, (int)m, 0.0f, p->SB, (int)m);
        for (int64_t j = 0; j < r; j++)
            for (int64_t k = 0; k < m; k++) p->ZB[j * m + k] = f->cc[p->ca[k] * r + j] * p->ZZ[j * w + p->ct[k]];
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)A, (int)m, (int)r, 1.0, f->cc, (int)r, p->ZB, (int)m, 0.0, p->H, (int)m);
        for (int64_t k = 0; k < m; k++) {
            int64_t t = p->ct[k], b = p->ca[k];
            p->acc[b * w + t] = p->accm[k];
            p->lo[b * w + t] = p->up[b * w + t] = p->accm[k];
            p->done[b * w + t] = 1;
            double cb = p->Q0[b * w + t], cbb = p->Q0[(A + b) * w + t];
            double ee = PRUNE_RES * sqrt(p->yy[t]);
            for (int64_t a = 0; a < A; a++) {
                if (p->done[a * w + t]) continue;
                double h = p->H[a * m + k];
                double d2 = cbb - 2 * h + p->Q0[(A + a) * w + t];
                d2 = d2 > 0 ? d2 : 0;
                double dn = sqrt(d2), gd = cb - cbb - p->Q0[a * w + t] + h;
                double S = p->SB[a * m + k], T = p->SB[(A + a) * m + k];
                double cross = 2 * dmid[a] * gd, Q = S + cross;
                double X = 2 * sqrt(T > 0 ? T : 0) * dn + 2 * dmid[a] * ee * dn + PRUNE_GEMM * (S + fabs(cross));
                double lo = Q - X + dmin2[a] * d2, up = Q + X + dmax2[a] * d2;
                if (lo > p->lo[a * w + t]) p->lo[a * w + t] = lo;
                if (up < p->up[a * w + t]) p->up[a * w + t] = up;
            }
        }
        for (int64_t k = 0; k < m; k++) p->next[p->ct[k]] = prune_next(f, p, w, p->ct[k]);
    }
    /* the exhaustive rule over the evaluated alphas: first maximum of -acc/n */
    for (int64_t t = 0; t < w; t++) {
        int32_t b = -1, ne = 0;
        double bs = 0;
        for (int64_t a = 0; a < A; a++) {
            if (!p->done[a * w + t]) continue;
            ne++;
            double s = -p->acc[a * w + t] / (double)n;
            if (b < 0 || s > bs) {
                bs = s;
                b = (int32_t)a;
            }
        }
        best[t] = b;
        if (evals) evals[t] = ne;
    }
}

/* K-fold: score[a][t] = mean over inner folds of the held-out score. */
static void kfold_scores(const rdml_ridge_fact *f, const float *Y, int64_t ldy, int64_t c0,
                         rwork *W, int64_t w) {
    int64_t A = f->nalphas, Aw = A * w;
    for (int64_t i = 0; i < Aw; i++) W->score[i] = 0;
    for (int64_t k = 0; k < f->K; k++) {
        const rinner *in = &f->inner[k];
        int64_t r = in->F.r, nte = in->nte;
        gather_centre(f, Y, ldy, c0, w, in->tr, in->ntr, W->Yk, W->ym);
        if (r > 0) {
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)r, (int)w, (int)in->ntr, 1.0f, in->F.U, (int)r, W->Yk, (int)w, 0.0f, W->Z, (int)w);
            for (int64_t j = 0; j < r; j++) {
                double lam = in->F.lam[j], s = sqrt(lam);
                for (int64_t a = 0; a < A; a++) {
                    float g = (float)(s / (lam + f->alphas[a]));
                    float *o = W->DZ + j * Aw + a * w;
                    const float *z = W->Z + j * w;
                    for (int64_t t = 0; t < w; t++) o[t] = g * z[t];
                }
            }
            /* predictions of the held-out rows for every alpha: T (nte x r) x DZ */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nte, (int)Aw, (int)r, 1.0f, in->F.T, (int)r, W->DZ, (int)Aw, 0.0f, W->P, (int)Aw);
        } else {
            for (int64_t i = 0; i < nte * Aw; i++) W->P[i] = 0;
        }
        /* held-out targets minus the inner training mean */
        double *tm = W->ym2; /* held-out mean (for R^2) */
        for (int64_t t = 0; t < w; t++) tm[t] = 0;
        for (int64_t q = 0; q < nte; q++) {
            const float *y = Y + f->train[in->te[q]] * ldy + c0;
            for (int64_t t = 0; t < w; t++) tm[t] += y[t];
        }
        for (int64_t t = 0; t < w; t++) tm[t] /= (double)nte;
        double *sse = W->acc;
        for (int64_t i = 0; i < Aw; i++) sse[i] = 0;
        for (int64_t q = 0; q < nte; q++) {
            const float *y = Y + f->train[in->te[q]] * ldy + c0;
            for (int64_t a = 0; a < A; a++) {
                const float *p = W->P + q * Aw + a * w;
                double *s = sse + a * w;
                for (int64_t t = 0; t < w; t++) {
                    double e = ((double)y[t] - W->ym[t]) - (double)p[t];
                    s[t] += e * e;
                }
            }
        }
        if (f->score == RDML_RIDGE_SCORE_R2) {
            double *sst = W->bsc;
            for (int64_t t = 0; t < w; t++) sst[t] = 0;
            for (int64_t q = 0; q < nte; q++) {
                const float *y = Y + f->train[in->te[q]] * ldy + c0;
                for (int64_t t = 0; t < w; t++) sst[t] += ((double)y[t] - tm[t]) * ((double)y[t] - tm[t]);
            }
            for (int64_t a = 0; a < A; a++)
                for (int64_t t = 0; t < w; t++)
                    W->score[a * w + t] += (sst[t] == 0 ? 0.0 : 1.0 - sse[a * w + t] / sst[t]) / (double)f->K;
        } else {
            for (int64_t i = 0; i < Aw; i++) W->score[i] += -sse[i] / (double)nte / (double)f->K;
        }
    }
}

/* r and R^2 of the w targets on the test rows: P holds the predictions without the intercept
 * (training means ym), so r is computed without the rounding of adding it. Row by row over
 * all targets (contiguous reads); per target the sums run over the rows in order. acc: 6 w
 * doubles of scratch. */
static void test_metrics(int64_t nt, const float *Y, int64_t ldy, const int64_t *rows, int64_t c0,
                         const float *P, int64_t ldp, const double *ym, double *r, double *r2,
                         int64_t w, double *acc) {
    double *my = acc, *mp = acc + w, *syy = acc + 2 * w, *spp = acc + 3 * w, *syp = acc + 4 * w, *sse = acc + 5 * w;
    for (int64_t i = 0; i < 6 * w; i++) acc[i] = 0;
    for (int64_t q = 0; q < nt; q++) {
        const float *y = Y + rows[q] * ldy + c0, *p = P + q * ldp;
        for (int64_t t = 0; t < w; t++) {
            my[t] += y[t];
            mp[t] += p[t];
        }
    }
    for (int64_t t = 0; t < w; t++) {
        my[t] /= (double)nt;
        mp[t] /= (double)nt;
    }
    for (int64_t q = 0; q < nt; q++) {
        const float *yr = Y + rows[q] * ldy + c0, *pr = P + q * ldp;
        for (int64_t t = 0; t < w; t++) {
            double y = yr[t], p = pr[t];
            double e = (y - ym[t]) - p;
            syy[t] += (y - my[t]) * (y - my[t]);
            spp[t] += (p - mp[t]) * (p - mp[t]);
            syp[t] += (y - my[t]) * (p - mp[t]);
            sse[t] += e * e;
        }
    }
    for (int64_t t = 0; t < w; t++) {
        if (r) {
            if (syy[t] == 0 || spp[t] == 0) r[t] = NAN;
            else {
                double v = syp[t] / sqrt(syy[t] * spp[t]);
                r[t] = v > 1 ? 1 : (v < -1 ? -1 : v);
            }
        }
        if (r2) r2[t] = syy[t] == 0 ? (sse[t] == 0 ? 1.0 : 0.0) : 1.0 - sse[t] / syy[t];
    }
}

int rdml_ridge_fit(rdml_ctx *ctx, const rdml_ridge_fact *f, const float *Y, int64_t ldy,
                   int64_t vb, int64_t col0, rdml_ridge_out *out) {
    if (!f || !Y || !out)
        return RDML_FAIL(ctx, RDML_EINTERNAL, "ridge: NULL argument to rdml_ridge_fit");
    if (vb < 1)
        return RDML_FAIL(ctx, RDML_EDATA, "ridge: a block of %lld targets (vertices %lld..): need at least 1 (hint: a selection with zero vertices cannot be encoded)", (long long)vb, (long long)col0);
    if (ldy < vb)
        return RDML_FAIL(ctx, RDML_EINTERNAL, "ridge: leading dimension %lld < block width %lld", (long long)ldy, (long long)vb);
    /* NaN / Inf in the rows used */
    for (int pass = 0; pass < 2; pass++) {
        const int64_t *rows = pass ? f->test : f->train;
        int64_t nr = pass ? f->ntest : f->ntrain;
        for (int64_t i = 0; i < nr; i++) {
            const float *y = Y + rows[i] * ldy;
            for (int64_t t = 0; t < vb; t++)
                if (!isfinite(y[t]))
                    return RDML_FAIL(ctx, RDML_EDATA, "ridge: the responses have %s at image %lld (row), vertex %lld (column) (hint: drop or impute that vertex before encoding)", isnan(y[t]) ? "NaN" : "Inf", (long long)rows[i], (long long)(col0 + t));
        }
    }
    /* pruned LOO unless asked for every alpha's score (or nothing to prune) */
    int prune = f->cv == RDML_RIDGE_LOO && !f->exhaustive && !out->cv_scores && f->nalphas > 1 && f->F.r > 0;
    int64_t A = f->nalphas, wmax = prune ? prune_block(f, vb) : sub_block(f, vb), r = max_rank(f), n = f->ntrain, d = f->d;
    int64_t P = prune ? 1 : f->cv == RDML_RIDGE_LOO ? (n < RIDGE_PANEL ? n : RIDGE_PANEL) : max_inner_te(f);
    int64_t AD = prune ? 1 : A; /* columns of W.DZ per target */
    int64_t nt = f->ntest ? f->ntest : 1;
    rwork W = {0};
    W.Y = rdml_malloc(ctx, (size_t)(n * wmax) * sizeof(float), "ridge targets");
    W.Yk = f->K ? rdml_malloc(ctx, (size_t)(n * wmax) * sizeof(float), "ridge inner targets") : NULL;
    W.Z = rdml_malloc(ctx, (size_t)(r * wmax) * sizeof(float), "ridge U'Y");
    W.DZ = rdml_malloc(ctx, (size_t)(r * AD * wmax) * sizeof(float), "ridge scaled U'Y");
    W.P = rdml_malloc(ctx, (size_t)(P * A * wmax) * sizeof(float), "ridge prediction panel");
    W.Pt = rdml_malloc(ctx, (size_t)(nt * wmax) * sizeof(float), "ridge test predictions");
    W.acc = rdml_malloc(ctx, (size_t)(A * wmax) * sizeof(double), "ridge LOO errors");
    W.score = rdml_malloc(ctx, (size_t)(A * wmax) * sizeof(double), "ridge scores");
    W.ym = rdml_malloc(ctx, (size_t)wmax * sizeof(double), "ridge means");
    W.ym2 = rdml_malloc(ctx, (size_t)wmax * sizeof(double), "ridge means");
    W.bsc = rdml_malloc(ctx, (size_t)wmax * sizeof(double), "ridge scores");
    W.best = rdml_malloc(ctx, (size_t)wmax * sizeof(int32_t), "ridge chosen alphas");
    W.macc = rdml_malloc(ctx, (size_t)(6 * wmax) * sizeof(double), "ridge test metrics");
    float *Bw = rdml_malloc(ctx, (size_t)(d > r ? d : r) * (size_t)wmax * sizeof(float), "ridge weights");
    int rc = W.Y && (!f->K || W.Yk) && W.Z && W.DZ && W.P && W.Pt && W.acc && W.score && W.ym &&
                     W.ym2 && W.bsc && W.best && W.macc && Bw
                 ? RDML_OK
                 : ctx->code;
    pwork PW;
    memset(&PW, 0, sizeof PW);
    if (!rc && prune) rc = pwork_new(ctx, f, wmax, &PW);
    const rfac *F = &f->F;
    for (int64_t c0 = 0; c0 < vb && !rc; c0 += wmax) {
        int64_t w = vb - c0 < wmax ? vb - c0 : wmax;
        /* 1. the score of every alpha, larger is better */
        if (prune) {
            gather_centre(f, Y, ldy, c0, w, NULL, n, W.Y, W.ym);
            loo_pruned(f, &W, &PW, w, W.best, out->loo_evals ? out->loo_evals + c0 : NULL);
            for (int64_t t = 0; t < w; t++) {
                if (out->alpha_index) out->alpha_index[c0 + t] = W.best[t];
                if (out->cv_best) out->cv_best[c0 + t] = -PW.acc[W.best[t] * w + t] / (double)n;
            }
        } else if (f->cv == RDML_RIDGE_LOO) {
            gather_centre(f, Y, ldy, c0, w, NULL, n, W.Y, W.ym);
            loo_errors(f, &W, w);
            for (int64_t i = 0; i < A * w; i++) W.score[i] = -W.acc[i] / (double)n;
        } else {
            kfold_scores(f, Y, ldy, c0, &W, w);
            gather_centre(f, Y, ldy, c0, w, NULL, n, W.Y, W.ym);
        }
        /* 2. the chosen alpha: sklearn keeps the first of equal scores; himalaya adds
         * 1e-10 ln(alpha) to the mean score and takes the first maximum */
        if (out->loo_evals && !prune)
            for (int64_t t = 0; t < w; t++) out->loo_evals[c0 + t] = (int32_t)A;
        for (int64_t t = 0; t < w && !prune; t++) {
            int32_t b = 0;
            double bs = W.score[t] + (f->cv == RDML_RIDGE_KFOLD ? 1e-10 * log(f->alphas[0]) : 0);
            for (int64_t a = 1; a < A; a++) {
                double s = W.score[a * w + t] + (f->cv == RDML_RIDGE_KFOLD ? 1e-10 * log(f->alphas[a]) : 0);
                if (s > bs) {
                    bs = s;
                    b = (int32_t)a;
                }
            }
            W.best[t] = b;
            if (out->alpha_index) out->alpha_index[c0 + t] = b;
            if (out->cv_best) out->cv_best[c0 + t] = W.score[b * w + t];
        }
        if (out->cv_scores)
            for (int64_t a = 0; a < A; a++)
                for (int64_t t = 0; t < w; t++) out->cv_scores[a * vb + c0 + t] = W.score[a * w + t];
        /* 3. refit on all training rows: B = diag(s / (lam + alpha_t)) U'y_t */
        int64_t rf = F->r;
        if (rf > 0 && (out->weights || out->intercept || out->pred || out->r || out->r2)) {
            if (f->cv == RDML_RIDGE_KFOLD)
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)rf, (int)w, (int)n, 1.0f, F->U, (int)rf, W.Y, (int)w, 0.0f, W.Z, (int)w);
            for (int64_t j = 0; j < rf; j++) {
                double lam = F->lam[j], s = sqrt(lam);
                for (int64_t t = 0; t < w; t++)
                    W.DZ[j * w + t] = (float)(s / (lam + f->alphas[W.best[t]])) * W.Z[j * w + t];
            }
        }
        if (out->weights || out->intercept) {
            if (rf > 0)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)d, (int)w, (int)rf, 1.0f, F->V, (int)rf, W.DZ, (int)w, 0.0f, Bw, (int)w);
            else
                memset(Bw, 0, (size_t)(d * w) * sizeof *Bw);
            for (int64_t t = 0; t < w; t++) W.bsc[t] = W.ym[t];
            for (int64_t k = 0; k < d; k++)
                for (int64_t t = 0; t < w; t++) {
                    float wr = (float)((double)Bw[k * w + t] / f->scale[k]);
                    Bw[k * w + t] = wr;
                    W.bsc[t] -= f->mean[k] * (double)wr;
                }
            if (out->weights)
                for (int64_t k = 0; k < d; k++) memcpy(out->weights + k * vb + c0, Bw + k * w, (size_t)w * sizeof(float));
            if (out->intercept)
                for (int64_t t = 0; t < w; t++) out->intercept[c0 + t] = (float)W.bsc[t];
        }
        if (f->ntest > 0 && (out->pred || out->r || out->r2)) {
            if (rf > 0)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)f->ntest, (int)w, (int)rf, 1.0f, F->T, (int)rf, W.DZ, (int)w, 0.0f, W.Pt, (int)w);
            else
                memset(W.Pt, 0, (size_t)(f->ntest * w) * sizeof *W.Pt);
            test_metrics(f->ntest, Y, ldy, f->test, c0, W.Pt, w, W.ym, out->r ? out->r + c0 : NULL, out->r2 ? out->r2 + c0 : NULL, w, W.macc);
            if (out->pred)
                for (int64_t q = 0; q < f->ntest; q++)
                    for (int64_t t = 0; t < w; t++) out->pred[q * vb + c0 + t] = (float)((double)W.Pt[q * w + t] + W.ym[t]);
        } else if (f->ntest == 0) {
            for (int64_t t = 0; t < w; t++) {
                if (out->r) out->r[c0 + t] = NAN;
                if (out->r2) out->r2[c0 + t] = NAN;
            }
        }
    }
    free(W.Y);
    free(W.Yk);
    free(W.Z);
    free(W.DZ);
    free(W.P);
    free(W.Pt);
    free(W.acc);
    free(W.score);
    free(W.ym);
    free(W.ym2);
    free(W.bsc);
    free(W.best);
    free(W.macc);
    free(Bw);
    pwork_free(&PW);
    return rc;
}
