/* The scalable pair SVM (svm.solver = lowrank): a rank-K factor of the image Gram matrix, the
 * explicit feature map of the pair kernel in that factor's space, and LIBLINEAR's dual
 * coordinate descent for the hinge loss (Hsieh, Chang, Lin, Keerthi, Sundararajan 2008).
 *
 * The factor. F = E P (n x K) with P (D x K) made from the images of the training pairs only
 * (the test images are projected, never looked at): `eigen` takes the top K right singular
 * vectors of E_train (the eigenvectors of E_train^T E_train, or, when there are fewer
 * training images than dimensions, of E_train E_train^T mapped back), so that F F^T is the
 * best rank-K approximation of the training images' Gram matrix; `nystrom` takes K landmark
 * training images drawn with the counter RNG (run.seed) and P = E_L^T U S^-1/2 from the
 * eigendecomposition U S U^T of their K x K Gram matrix. A pair (a, b) becomes z = [f_a; f_b]
 * in R^2K, and <z_ab, z_cd> = f_a.f_c + f_b.f_d approximates G_ac + G_bd.
 *
 * The feature map. k(t) = s2^2 t^2 + s1^2 t + s0^2 of t = <z, z'> is the inner product of
 * phi(z) = [s2 z (x) z, s1 z, s0]: linear s1 = 1; poly degree 2 (gamma t + coef0)^2: s2 =
 * gamma, s1 = sqrt(2 gamma coef0), s0 = coef0; degree 1: s1 = sqrt(gamma), s0 = sqrt(coef0);
 * degree 0: s0 = 1 (coef0 >= 0 for all: the map needs real square roots). A constant feature
 * 1 is appended for the bias (LIBLINEAR's -B 1: the bias is regularised with weight 1/2 b^2).
 * The weight vector w = sum_i d_i phi(z_i) (d_i = y_i alpha_i) is kept as M = sum d_i z_i z_i^T
 * (2K x 2K symmetric), v = sum d_i z_i and w0 = sum d_i, so w.phi(z) = s2^2 z^T M z +
 * s1^2 v.z + (s0^2 + 1) w0 = s2^2 (f_a'A f_a + 2 f_a'B f_b + f_b'C f_b) + ...: O(K^2) per
 * coordinate step (pairs visited in chunks sharing f_a, so A and B are touched once per chunk
 * and a step is one K x K DSYMV and DSYR on C), and the ~2K^2 pair features are never built.
 *
 * The solver: LIBLINEAR's solve_l2r_l1l2_svc for the L1 loss: upper bound C_i = C weight[y_i]
 * per pair, a random order of the active pairs per epoch, shrinking by the previous epoch's
 * projected-gradient extremes, stop when max - min projected gradient <= lr_tol on the whole
 * set (after unshrinking), at most max_epochs epochs. Everything is deterministic given
 * (seed, data): no rank enters. */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "svm/svm_priv.h"

/* LAPACK (OpenBLAS exports it) */
void dsyevr_(const char *jobz, const char *range, const char *uplo, const int *n, double *a,
             const int *lda, const double *vl, const double *vu, const int *il, const int *iu,
             const double *abstol, int *m, double *w, double *z, const int *ldz, int *isuppz,
             double *work, const int *lwork, int *iwork, const int *liwork, int *info);

struct svm_lowrank {
    int64_t K, D;
    double *P;        /* D x K: F = E P */
    double *M;        /* 2K x 2K, symmetric (full) */
    double *v;        /* 2K */
    double w0;        /* bias weight (the constant feature's weight over its value) */
    double s2, s1, c2; /* feature scales; c2 = s0^2 + 1 */
};

void svm_lowrank_free(struct svm_lowrank *lr) {
    if (!lr) return;
    free(lr->P);
    free(lr->M);
    free(lr->v);
    free(lr);
}

int svm_lowrank_check(rdml_ctx *ctx, const rdml_svm_params *p) {
    if (p->type != RDML_SVM_C_SVC)
        return RDML_FAIL(ctx, RDML_ECONFIG, "svm.solver = lowrank is a classifier (c_svc); svm.type "
                         "= %s is not supported (hint: svm.solver = smo for epsilon_svr)",
                         rdml_svm_type_name(p->type));
    int ok = p->kernel == RDML_SVM_LINEAR ||
             (p->kernel == RDML_SVM_POLY && p->degree >= 0 && p->degree <= 2 && p->coef0 >= 0);
    if (!ok)
        return RDML_FAIL(ctx, RDML_ECONFIG, "svm.kernel = %s (degree %d, coef0 %g) is not supported "
                         "by svm.solver = lowrank; supported kernels: linear, and poly with degree "
                         "0, 1 or 2 and coef0 >= 0 (hint: svm.kernel = poly with svm.degree = 2, "
                         "or svm.solver = smo)", rdml_svm_kernel_name(p->kernel), p->degree, p->coef0);
    if (p->symmetric)
        return RDML_FAIL(ctx, RDML_ECONFIG, "svm.symmetric_kernel = true is not supported by "
                         "svm.solver = lowrank (hint: svm.solver = smo, or symmetric_kernel = false)");
    if (p->rank < 1)
        return RDML_FAIL(ctx, RDML_ECONFIG, "svm.rank = %d must be >= 1 (the factor's columns; "
                         "hint: 50)", p->rank);
    if ((int)p->factor < 0 || (int)p->factor > 1)
        return RDML_FAIL(ctx, RDML_ECONFIG, "svm.factor %d is not eigen or nystrom", (int)p->factor);
    if (!(p->lr_tol > 0) || !isfinite(p->lr_tol))
        return RDML_FAIL(ctx, RDML_ECONFIG, "svm.lowrank_tol = %g must be > 0", p->lr_tol);
    if (p->max_epochs < 1)
        return RDML_FAIL(ctx, RDML_ECONFIG, "svm.max_epochs = %lld must be >= 1",
                         (long long)p->max_epochs);
    return RDML_OK;
}

/* The top k eigenpairs of the symmetric n x n matrix a (destroyed), largest first: vals[k],
 * vecs n x k row-major (column j = eigenvector j). */
static int top_eig(rdml_ctx *ctx, int n, int k, double *a, double *vals, double *vecs) {
    int il = n - k + 1, iu = n, m = 0, info = 0, lwork = -1, liwork = -1, iw;
    double vl = 0, vu = 0, abstol = 0, wq;
    double *w = malloc((size_t)n * sizeof *w), *z = malloc((size_t)n * (size_t)k * sizeof *z);
    int *isuppz = malloc((size_t)(2 * k) * sizeof *isuppz);
    if (!w || !z || !isuppz) {
        free(w), free(z), free(isuppz);
        return RDML_FAIL(ctx, RDML_ENOMEM, "out of memory for an eigendecomposition of %d x %d", n, n);
    }
    dsyevr_("V", "I", "U", &n, a, &n, &vl, &vu, &il, &iu, &abstol, &m, w, z, &n, isuppz, &wq,
            &lwork, &iw, &liwork, &info);
    lwork = (int)wq + 1;
    liwork = iw + 1;
    double *work = malloc((size_t)lwork * sizeof *work);
    int *iwork = malloc((size_t)liwork * sizeof *iwork);
    int rc = RDML_OK;
    if (!work || !iwork) rc = RDML_FAIL(ctx, RDML_ENOMEM, "out of memory for dsyevr");
    if (!rc) {
        dsyevr_("V", "I", "U", &n, a, &n, &vl, &vu, &il, &iu, &abstol, &m, w, z, &n, isuppz, work,
                &lwork, iwork, &liwork, &info);
        if (info != 0 || m != k)
            rc = RDML_FAIL(ctx, RDML_EINTERNAL, "dsyevr failed (info %d, %d of %d eigenvalues)", info, m, k);
    }
    /* z is column-major n x k, ascending: column k-1-j is the j-th largest */
    for (int j = 0; j < k && !rc; j++) {
        vals[j] = w[k - 1 - j];
        for (int r = 0; r < n; r++) vecs[(size_t)r * (size_t)k + (size_t)j] = z[(size_t)(k - 1 - j) * (size_t)n + (size_t)r];
    }
    free(w), free(z), free(isuppz), free(work), free(iwork);
    return rc;
}

/* P (D x K) from the images of the l training pairs. */
static int make_factor(rdml_ctx *ctx, const rdml_svm_params *p, const rdml_svm_images *im, int64_t l,
                       const int64_t *ij, double **out) {
    const int64_t n = im->n, D = im->d, K = p->rank;
    *out = NULL;
    char *used = calloc((size_t)n, 1);
    int64_t *img = malloc((size_t)n * sizeof *img);
    if (!used || !img) {
        free(used), free(img);
        return RDML_FAIL(ctx, RDML_ENOMEM, "out of memory for the image factor");
    }
    for (int64_t t = 0; t < 2 * l; t++) used[ij[t]] = 1;
    int64_t nt = 0;
    for (int64_t i = 0; i < n; i++)
        if (used[i]) img[nt++] = i;
    free(used);
    int rc = RDML_OK;
    if (K > nt)
        rc = RDML_FAIL(ctx, RDML_ECONFIG, "svm.rank = %lld is larger than the %lld images of the "
                       "training pairs (of %lld images): the factor has at most that many columns "
                       "(hint: svm.rank <= %lld)", (long long)K, (long long)nt, (long long)n, (long long)nt);
    if (!rc && p->factor == RDML_SVM_FACTOR_EIGEN && K > D)
        rc = RDML_FAIL(ctx, RDML_ECONFIG, "svm.rank = %lld is larger than the embedding width %lld: "
                       "the eigen factor has at most that many columns (hint: svm.rank <= %lld, "
                       "or svm.factor = nystrom)", (long long)K, (long long)D, (long long)D);
    if (rc) {
        free(img);
        return rc;
    }
    int64_t nl = nt; /* rows used: the training images, or the landmarks */
    if (p->factor == RDML_SVM_FACTOR_NYSTROM) {
        rdml_rng r = rdml_rng_make(p->seed, rdml_rng_substream(RDML_STREAM_SHUFFLE, 0x4e7953ULL), 0);
        rdml_rng_shuffle(&r, img, nt);
        nl = K;
        /* landmarks in image order, so the factor does not depend on the draw order */
        for (int64_t a = 1; a < nl; a++)
            for (int64_t b = a; b > 0 && img[b - 1] > img[b]; b--) {
                int64_t t = img[b];
                img[b] = img[b - 1];
                img[b - 1] = t;
            }
    }
    double *Et = malloc((size_t)(nl * D) * sizeof *Et);
    double *P = calloc((size_t)(D * K), sizeof *P);
    int small = p->factor == RDML_SVM_FACTOR_EIGEN && D <= nl; /* eigen of the D x D covariance */
    int64_t ne = small ? D : nl;
    double *S = malloc((size_t)(ne * ne) * sizeof *S);
    double *val = malloc((size_t)K * sizeof *val), *vec = malloc((size_t)(ne * K) * sizeof *vec);
    if (!Et || !P || !S || !val || !vec) rc = RDML_FAIL(ctx, RDML_ENOMEM, "out of memory for the image factor");
    if (!rc && ne > 2147483647 / 2) rc = RDML_FAIL(ctx, RDML_EDATA, "eigenproblem of size %lld is too large", (long long)ne);
    for (int64_t r = 0; r < nl && !rc; r++)
        for (int64_t c = 0; c < D; c++) Et[r * D + c] = im->emb[img[r] * D + c];
    if (!rc && small) {
        /* S = Et^T Et (D x D): row-major Et is column-major Et^T (D x nl) */
        cblas_dsyrk(CblasColMajor, CblasUpper, CblasNoTrans, (int)D, (int)nl, 1.0, Et, (int)D, 0.0, S, (int)D);
        rc = top_eig(ctx, (int)D, (int)K, S, val, vec);
        if (!rc) memcpy(P, vec, (size_t)(D * K) * sizeof *P); /* right singular vectors */
    } else if (!rc) {
        /* S = Et Et^T (nl x nl); P = Et^T U S^-1/2 */
        cblas_dsyrk(CblasColMajor, CblasUpper, CblasTrans, (int)nl, (int)D, 1.0, Et, (int)D, 0.0, S, (int)nl);
        rc = top_eig(ctx, (int)nl, (int)K, S, val, vec);
        if (!rc) {
            double vmax = val[0] > 0 ? val[0] : 0;
            for (int64_t j = 0; j < K; j++) {
                double sc = val[j] > 1e-12 * vmax && val[j] > 0 ? 1.0 / sqrt(val[j]) : 0.0;
                for (int64_t r = 0; r < nl; r++) vec[r * K + j] *= sc;
            }
            /* P (D x K) = Et^T (D x nl) vec (nl x K) */
            cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)D, (int)K, (int)nl, 1.0, Et,
                        (int)D, vec, (int)K, 0.0, P, (int)K);
        }
    }
    free(img), free(Et), free(S), free(val), free(vec);
    if (rc) free(P);
    else *out = P;
    return rc;
}

/* F = E P for every image (n x K). */
static int project(rdml_ctx *ctx, const rdml_svm_images *im, const double *P, int64_t K, double **out) {
    const int64_t n = im->n, D = im->d;
    double *F = malloc((size_t)(n * K) * sizeof *F);
    double *e = malloc((size_t)(256 * D) * sizeof *e);
    if (!F || !e) {
        free(F), free(e);
        return RDML_FAIL(ctx, RDML_ENOMEM, "out of memory for the factor of %lld images", (long long)n);
    }
    for (int64_t i0 = 0; i0 < n; i0 += 256) {
        int64_t nb = n - i0 < 256 ? n - i0 : 256;
        for (int64_t t = 0; t < nb * D; t++) e[t] = im->emb[i0 * D + t];
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nb, (int)K, (int)D, 1.0, e, (int)D,
                    P, (int)K, 0.0, F + i0 * K, (int)K);
    }
    free(e);
    *out = F;
    return RDML_OK;
}

static void scales(const rdml_svm_params *p, double gamma, double *s2, double *s1, double *c2) {
    double s0 = 0;
    *s2 = *s1 = 0;
    if (p->kernel == RDML_SVM_LINEAR) *s1 = 1;
    else if (p->degree == 2) *s2 = gamma, *s1 = sqrt(2 * gamma * p->coef0), s0 = p->coef0;
    else if (p->degree == 1) *s1 = sqrt(gamma), s0 = sqrt(p->coef0);
    else s0 = 1;
    *c2 = s0 * s0 + 1.0;
}

int rdml_svm_train_lowrank(rdml_ctx *ctx, const rdml_svm_params *p, const rdml_svm_images *im,
                           int64_t l, const int64_t *ij, const int8_t *y, rdml_svm_model **out) {
    *out = NULL;
    RDML_TRY(rdml_svm_check(ctx, p));
    if (p->solver != RDML_SVM_LOWRANK || p->type != RDML_SVM_C_SVC)
        return RDML_FAIL(ctx, RDML_EINTERNAL, "rdml_svm_train_lowrank needs svm.solver = lowrank, c_svc");
    if (!im->emb)
        return RDML_FAIL(ctx, RDML_EINTERNAL, "svm.solver = lowrank needs the embeddings (hint: "
                         "rdml_svm_images_make_ex with RDML_SVM_IMAGES_EMB)");
    RDML_TRY(svm_check_pairs(ctx, im, l, ij));
    int64_t cnt[2];
    RDML_TRY(svm_check_labels(ctx, l, y, cnt));
    double t0 = rdml_now();
    double wt0 = p->weight[0], wt1 = p->weight[1];
    if (p->balanced) {
        wt0 = (double)l / (2.0 * (double)cnt[0]);
        wt1 = (double)l / (2.0 * (double)cnt[1]);
    }
    const double Cp = p->C * wt1, Cn = p->C * wt0;
    const int64_t K = p->rank, m = 2 * K, n = im->n;
    const double gamma = svm_gamma_of(p, im, l, ij);
    struct svm_lowrank *lr = calloc(1, sizeof *lr);
    if (!lr) return RDML_FAIL(ctx, RDML_ENOMEM, "out of memory for a lowrank SVM");
    lr->K = K;
    lr->D = im->d;
    scales(p, gamma, &lr->s2, &lr->s1, &lr->c2);
    double *F = NULL;
    int rc = make_factor(ctx, p, im, l, ij, &lr->P);
    if (!rc) rc = project(ctx, im, lr->P, K, &F);
    lr->M = calloc((size_t)(m * m), sizeof *lr->M);
    lr->v = calloc((size_t)m, sizeof *lr->v);
    double *alpha = calloc((size_t)l, sizeof *alpha), *QD = malloc((size_t)l * sizeof *QD);
    double *bound = malloc((size_t)l * sizeof *bound);
    double *A = calloc((size_t)(K * K), sizeof *A), *B = calloc((size_t)(K * K), sizeof *B);
    double *Cm = calloc((size_t)(K * K), sizeof *Cm), *wk = malloc((size_t)(3 * K) * sizeof *wk);
    int64_t *index = malloc((size_t)l * sizeof *index), *tmp = malloc((size_t)l * sizeof *tmp);
    int64_t *key = malloc((size_t)n * sizeof *key), *gcnt = malloc((size_t)(n + 1) * sizeof *gcnt);
    char *gone = calloc((size_t)l, 1);
    int64_t *chs = malloc((size_t)(l + 1) * sizeof *chs), *cord = malloc((size_t)(l + 1) * sizeof *cord);
    const int64_t chunk = 8; /* 8: measured ~10% more steps than a free order, 4x cheaper ones */
    if (!rc && (!lr->M || !lr->v || !alpha || !QD || !bound || !A || !B || !Cm || !wk || !index ||
                !tmp || !key || !gcnt || !gone || !chs || !cord))
        rc = RDML_FAIL(ctx, RDML_ENOMEM, "out of memory for a lowrank SVM of %lld training pairs", (long long)l);
    int64_t epoch = 0;
    int conv = 0;
    if (!rc) {
        const double s22 = lr->s2 * lr->s2, s12 = lr->s1 * lr->s1, c2 = lr->c2;
        double *M = lr->M, *v = lr->v, *ua = wk, *g = wk + K, *Cf = wk + 2 * K;
        for (int64_t t = 0; t < l; t++) {
            const double *fa = F + ij[2 * t] * K, *fb = F + ij[2 * t + 1] * K;
            double q = cblas_ddot((int)K, fa, 1, fa, 1) + cblas_ddot((int)K, fb, 1, fb, 1);
            QD[t] = s22 * q * q + s12 * q + c2;
            bound[t] = y[t] ? Cp : Cn;
            index[t] = t;
        }
        rdml_rng r = rdml_rng_make(p->seed, rdml_rng_substream(RDML_STREAM_SHUFFLE, 0x4c52ULL), 0);
        int64_t active = l;
        const int shrink = p->shrinking;
        double PGmax_old = INFINITY, PGmin_old = -INFINITY;
        while (epoch < p->max_epochs) {
            double PGmax_new = -INFINITY, PGmin_new = INFINITY;
            /* a random order of the active pairs in chunks of up to 8 pairs with the same first
             * image (chunks in a random order): within a chunk the A and B blocks of M change
             * only along f_a, so their part of z^T M z is kept in O(K) per step and written
             * back once per chunk; a step costs one K x K DSYMV and DSYR (the C block) instead
             * of 2K x 2K ones. (Whole per-image groups need ~1.6x the steps of a free order,
             * chunks of 8 ~1.1x.) */
            rdml_rng_shuffle(&r, index, active);
            for (int64_t i = 0; i < n; i++) key[i] = i;
            rdml_rng_shuffle(&r, key, n);
            memset(gcnt, 0, (size_t)(n + 1) * sizeof *gcnt);
            for (int64_t s = 0; s < active; s++) gcnt[key[ij[2 * index[s]]] + 1]++;
            for (int64_t i = 0; i < n; i++) gcnt[i + 1] += gcnt[i];
            for (int64_t s = 0; s < active; s++) tmp[gcnt[key[ij[2 * index[s]]]]++] = index[s];
            /* chunks of at most `chunk` pairs of one image, in a random order */
            int64_t nch = 0;
            for (int64_t s = 0; s < active; s++)
                if (s == 0 || ij[2 * tmp[s]] != ij[2 * tmp[s - 1]] || s - chs[nch - 1] >= chunk) chs[nch++] = s;
            chs[nch] = active;
            for (int64_t c = 0; c < nch; c++) cord[c] = c;
            rdml_rng_shuffle(&r, cord, nch);
            for (int64_t c = 0, o = 0; c < nch; c++)
                for (int64_t s = chs[cord[c]]; s < chs[cord[c] + 1]; s++) index[o++] = tmp[s];
            int64_t cur = -1;
            const double *fa = NULL;
            double na = 0, ra = 0, Da = 0;
            for (int64_t s = 0; s <= active; s++) {
                const int64_t i = s < active ? index[s] : -1;
                const int64_t a = i >= 0 ? ij[2 * i] : -1;
                if (a != cur) {
                    if (cur >= 0 && s22 != 0 && Da != 0) { /* write the group's A, B back */
                        cblas_dsyr(CblasRowMajor, CblasUpper, (int)K, Da, fa, 1, A, (int)K);
                        cblas_dger(CblasRowMajor, (int)K, (int)K, 1.0, fa, 1, g, 1, B, (int)K);
                    }
                    if (i < 0) break;
                    cur = a;
                    fa = F + a * K;
                    na = cblas_ddot((int)K, fa, 1, fa, 1);
                    Da = 0;
                    memset(g, 0, (size_t)K * sizeof *g);
                    if (s22 != 0) {
                        cblas_dsymv(CblasRowMajor, CblasUpper, (int)K, 1.0, A, (int)K, fa, 1, 0.0, ua, 1);
                        ra = cblas_ddot((int)K, fa, 1, ua, 1);
                        cblas_dgemv(CblasRowMajor, CblasTrans, (int)K, (int)K, 1.0, B, (int)K, fa, 1, 0.0, ua, 1);
                    }
                }
                const double yi = y[i] ? 1.0 : -1.0;
                const double *fb = F + ij[2 * i + 1] * K;
                double wx = c2 * lr->w0;
                if (s22 != 0) {
                    /* z^T M z = f_a'A f_a + 2 f_a'B f_b + f_b'C f_b, A and B as of the group
                     * start plus the group's own updates Da f_a f_a' and f_a g' */
                    cblas_dsymv(CblasRowMajor, CblasUpper, (int)K, 1.0, Cm, (int)K, fb, 1, 0.0, Cf, 1);
                    double q = ra + Da * na * na + 2 * cblas_ddot((int)K, ua, 1, fb, 1) +
                               2 * na * cblas_ddot((int)K, g, 1, fb, 1) + cblas_ddot((int)K, fb, 1, Cf, 1);
                    wx += s22 * q;
                }
                if (s12 != 0) wx += s12 * (cblas_ddot((int)K, v, 1, fa, 1) + cblas_ddot((int)K, v + K, 1, fb, 1));
                const double G = yi * wx - 1.0, Ci = bound[i];
                double PG = 0;
                if (alpha[i] == 0) {
                    if (shrink && G > PGmax_old) {
                        gone[i] = 1;
                        continue;
                    } else if (G < 0) PG = G;
                } else if (alpha[i] == Ci) {
                    if (shrink && G < PGmin_old) {
                        gone[i] = 1;
                        continue;
                    } else if (G > 0) PG = G;
                } else PG = G;
                if (PG > PGmax_new) PGmax_new = PG;
                if (PG < PGmin_new) PGmin_new = PG;
                if (fabs(PG) > 1e-12) {
                    const double old = alpha[i];
                    double na_ = old - G / QD[i];
                    alpha[i] = na_ < 0 ? 0 : na_ > Ci ? Ci : na_;
                    const double d = (alpha[i] - old) * yi;
                    if (d != 0) {
                        if (s22 != 0) {
                            Da += d;
                            cblas_daxpy((int)K, d, fb, 1, g, 1);
                            cblas_dsyr(CblasRowMajor, CblasUpper, (int)K, d, fb, 1, Cm, (int)K);
                        }
                        if (s12 != 0) {
                            cblas_daxpy((int)K, d, fa, 1, v, 1);
                            cblas_daxpy((int)K, d, fb, 1, v + K, 1);
                        }
                        lr->w0 += d;
                    }
                }
            }
            /* drop the shrunk pairs, keeping the order */
            int64_t kept = 0;
            for (int64_t s = 0; s < active; s++) {
                if (!gone[index[s]]) index[kept++] = index[s];
                else tmp[s - kept] = index[s];
            }
            for (int64_t s = kept; s < active; s++) {
                index[s] = tmp[s - kept];
                gone[index[s]] = 0;
            }
            active = kept;
            epoch++;
            if (PGmax_new - PGmin_new <= p->lr_tol) {
                if (active == l) {
                    conv = 1;
                    break;
                }
                active = l;
                PGmax_old = INFINITY;
                PGmin_old = -INFINITY;
                continue;
            }
            PGmax_old = PGmax_new <= 0 ? INFINITY : PGmax_new;
            PGmin_old = PGmin_new >= 0 ? -INFINITY : PGmin_new;
        }
        if (!conv)
            rdml_warn(ctx, "lowrank SVM: %lld epochs (svm.max_epochs) without reaching svm.lowrank_tol "
                      "= %g on %lld pairs", (long long)epoch, p->lr_tol, (long long)l);
        /* M = [A B; B' C] full; the dual objective 1/2 |w|^2 - sum alpha */
        for (int64_t a = 0; a < K; a++)
            for (int64_t b = 0; b < K; b++) {
                M[a * m + b] = a <= b ? A[a * K + b] : A[b * K + a];
                M[(K + a) * m + K + b] = a <= b ? Cm[a * K + b] : Cm[b * K + a];
                M[a * m + K + b] = M[(K + b) * m + a] = B[a * K + b];
            }
        double ww = c2 * lr->w0 * lr->w0 + s12 * cblas_ddot((int)m, v, 1, v, 1), sa = 0;
        if (s22 != 0) ww += s22 * cblas_ddot((int)(m * m), M, 1, M, 1);
        for (int64_t t = 0; t < l; t++) {
            sa += alpha[t];
            alpha[t] = alpha[t] > 0 ? (y[t] ? alpha[t] : -alpha[t]) : 0;
        }
        svm_kern k = {p->kernel, p->degree, 0, gamma, p->coef0, im->n, NULL, NULL};
        rc = svm_make_model(ctx, &k, im->n, l, ij, alpha, bound, 0.5 * ww - sa, -lr->w0, epoch,
                            conv, t0, out);
    }
    free(A), free(B), free(Cm), free(wk), free(tmp), free(key), free(gcnt), free(gone), free(chs), free(cord);
    if (!rc) {
        (*out)->lr = lr;
        (*out)->info.seconds = rdml_now() - t0;
    } else svm_lowrank_free(lr);
    free(F), free(alpha), free(QD), free(bound), free(index);
    return rc;
}

int svm_lowrank_decision(rdml_ctx *ctx, const rdml_svm_model *m, const rdml_svm_images *im,
                         int64_t n, const int64_t *ij, double *out) {
    const struct svm_lowrank *lr = m->lr;
    const int64_t N = im->n, K = lr->K, mm = 2 * K;
    if (!im->emb || im->d != lr->D)
        return RDML_FAIL(ctx, RDML_EINTERNAL, "lowrank SVM decision needs the %lld-d embeddings "
                         "(rdml_svm_images_make_ex with RDML_SVM_IMAGES_EMB)", (long long)lr->D);
    for (int64_t t = 0; t < n; t++)
        if (ij[2 * t] < 0 || ij[2 * t] >= N || ij[2 * t + 1] < 0 || ij[2 * t + 1] >= N)
            return RDML_FAIL(ctx, RDML_EDATA, "pair %lld = (%lld, %lld) is outside the %lld images",
                             (long long)t, (long long)ij[2 * t], (long long)ij[2 * t + 1], (long long)N);
    double *F = NULL;
    RDML_TRY(project(ctx, im, lr->P, K, &F));
    /* per image: qa = f^T A f, qc = f^T C f, U = F B^T (u_b = B f_b), la = v_a.f, lb = v_b.f */
    double *T = malloc((size_t)(N * mm) * sizeof *T), *U = malloc((size_t)(N * K) * sizeof *U);
    double *qa = malloc((size_t)N * sizeof *qa), *qc = malloc((size_t)N * sizeof *qc);
    if (!T || !U || !qa || !qc) {
        free(F), free(T), free(U), free(qa), free(qc);
        return RDML_FAIL(ctx, RDML_ENOMEM, "out of memory for lowrank decision values");
    }
    const double *M = lr->M;
    /* T[:, 0:K] = F A, T[:, K:2K] = F C (A, C symmetric blocks of M) */
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)N, (int)K, (int)K, 1.0, F, (int)K, M,
                (int)mm, 0.0, T, (int)mm);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)N, (int)K, (int)K, 1.0, F, (int)K,
                M + K * mm + K, (int)mm, 0.0, T + K, (int)mm);
    /* U = F B^T, B = M[0:K, K:2K] */
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)N, (int)K, (int)K, 1.0, F, (int)K, M + K,
                (int)mm, 0.0, U, (int)K);
    for (int64_t i = 0; i < N; i++) {
        const double *f = F + i * K;
        double a = 0, c = 0;
        for (int64_t j = 0; j < K; j++) {
            a += f[j] * T[i * mm + j];
            c += f[j] * T[i * mm + K + j];
        }
        qa[i] = a;
        qc[i] = c;
    }
    const double s22 = lr->s2 * lr->s2, s12 = lr->s1 * lr->s1;
    for (int64_t t = 0; t < n; t++) {
        const int64_t a = ij[2 * t], b = ij[2 * t + 1];
        const double *fa = F + a * K, *fb = F + b * K, *ub = U + b * K;
        double cross = 0, lin = 0;
        for (int64_t j = 0; j < K; j++) {
            cross += fa[j] * ub[j];
            lin += lr->v[j] * fa[j] + lr->v[K + j] * fb[j];
        }
        out[t] = s22 * (qa[a] + 2 * cross + qc[b]) + s12 * lin + lr->c2 * lr->w0;
    }
    free(F), free(T), free(U), free(qa), free(qc);
    return RDML_OK;
}
