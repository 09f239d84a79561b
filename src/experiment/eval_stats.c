/* The evaluate stage's statistics (eval_priv.h): bootstrap over images with rsatoolbox's
 * self-pair removal, permutation tests of score > 0, paired bootstrap differences, and the
 * multiple-comparison corrections. Resamples are spread over the ranks in contiguous blocks
 * (rdml_part_block of the sample index) and each sample's draws come from the counter RNG
 * keyed by (run.seed, comparison key, sample index), so every number is the same for any
 * number of ranks; each rank fills its own samples and an MPI_SUM over zero-initialised
 * arrays (x + 0 = x exactly) gives everyone all of them. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eval_priv.h"
#include "rdml/mpiutil.h"

enum { STREAM_BOOT = 0x45564231, STREAM_PERM = 0x45565031 }; /* sub-streams of SHUFFLE */

void eval_res_free(eval_res *r) {
    if (!r) return;
    free(r->score);
    free(r->ci_low);
    free(r->ci_high);
    free(r->p);
    free(r->diff);
    free(r->diff_low);
    free(r->diff_high);
    free(r->diff_p);
    free(r->boot);
    memset(r, 0, sizeof *r);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void eval_percentile_ci(const double *x, int64_t n, int64_t stride, double ci, double *lo,
                        double *hi) {
    *lo = *hi = NAN;
    double *v = malloc((size_t)(n + 1) * sizeof *v);
    if (!v) return;
    int64_t k = 0;
    for (int64_t i = 0; i < n; i++)
        if (isfinite(x[i * stride])) v[k++] = x[i * stride];
    if (k >= 2) {
        qsort(v, (size_t)k, sizeof *v, cmp_double);
        double qs[2] = {(1 - ci) / 2, 1 - (1 - ci) / 2}, out[2];
        for (int t = 0; t < 2; t++) {
            double pos = qs[t] * (double)(k - 1);
            int64_t i0 = (int64_t)floor(pos);
            int64_t i1 = i0 + 1 < k ? i0 + 1 : i0;
            out[t] = v[i0] + (pos - (double)i0) * (v[i1] - v[i0]);
        }
        *lo = out[0];
        *hi = out[1];
    }
    free(v);
}

/* One comparison of two vectors; NaN (and no error) when it is undefined. */
static double compare_vec(rdml_ctx *ctx, rdml_rsa_method m, const double *a, const double *b,
                          int64_t p) {
    double r = NAN;
    int rc = p < 2 ? RDML_EDATA
             : m == RDML_RSA_SPEARMAN ? rdml_rsa_spearman(ctx, a, b, p, &r)
             : m == RDML_RSA_PEARSON  ? rdml_rsa_pearson(ctx, a, b, p, &r)
                                      : rdml_rsa_kendall_tau_a(ctx, a, b, p, &r);
    if (rc) {
        rdml_ctx_clear(ctx);
        r = NAN;
    }
    return r;
}

/* The upper-triangle vector of the resampled matrix R[idx][idx], self-pairs (idx[s] ==
 * idx[t]) dropped; returns its length. idx NULL: the identity. */
static int64_t resampled(const float *R, int64_t m, const int64_t *idx, double *out) {
    int64_t k = 0;
    for (int64_t s = 0; s < m; s++) {
        int64_t a = idx ? idx[s] : s;
        for (int64_t t = s + 1; t < m; t++) {
            int64_t b = idx ? idx[t] : t;
            if (a == b) continue;
            out[k++] = R[a * m + b];
        }
    }
    return k;
}

/* Pearson r of a with b permuted by image labels (b's vector is taken at (pi[s], pi[t])). */
static double pearson_perm(const double *a, const double *Bfull, int64_t m, const int64_t *pi,
                           double ma, double sa) {
    double sb = 0, sbb = 0, sab = 0;
    int64_t k = 0;
    for (int64_t s = 0; s < m; s++) {
        const double *row = Bfull + pi[s] * m;
        for (int64_t t = s + 1; t < m; t++, k++) {
            double v = row[pi[t]];
            sb += v;
            sbb += v * v;
            sab += a[k] * v;
        }
    }
    double n = (double)k, mb = sb / n;
    double cov = sab / n - ma * mb, vb = sbb / n - mb * mb;
    if (!(vb > 0) || !(sa > 0)) return NAN;
    double r = cov / (sa * sqrt(vb));
    return r > 1 ? 1 : r < -1 ? -1 : r;
}

int eval_compare_models(rdml_ctx *ctx, MPI_Comm comm, const eval_cmp *c, int keep_boot,
                        eval_res *r) {
    memset(r, 0, sizeof *r);
    const int M = c->nmodels;
    const int64_t m = c->m, P = rdml_rsa_ntri(m), B = c->nboot, Q = c->nperm;
    r->nmodels = M;
    r->nboot = B;
    r->score = calloc((size_t)M + 1, sizeof(double));
    r->ci_low = calloc((size_t)M + 1, sizeof(double));
    r->ci_high = calloc((size_t)M + 1, sizeof(double));
    r->p = calloc((size_t)M + 1, sizeof(double));
    r->diff = calloc((size_t)(M * M) + 1, sizeof(double));
    r->diff_low = calloc((size_t)(M * M) + 1, sizeof(double));
    r->diff_high = calloc((size_t)(M * M) + 1, sizeof(double));
    r->diff_p = calloc((size_t)(M * M) + 1, sizeof(double));
    double *boot = calloc((size_t)(B * M) + 1, sizeof(double));
    double *null = calloc((size_t)(Q * M) + 1, sizeof(double));
    double *a = malloc((size_t)P * sizeof(double) + 8), *b = malloc((size_t)P * sizeof(double) + 8);
    int64_t *idx = malloc((size_t)m * sizeof(int64_t) + 8);
    int rc = r->score && r->ci_low && r->ci_high && r->p && r->diff && r->diff_low &&
                     r->diff_high && r->diff_p && boot && null && a && b && idx
                 ? RDML_OK
                 : RDML_FAIL(ctx, RDML_ENOMEM, "out of memory for the statistics of %lld images",
                             (long long)m);
    rc = rdml_agree(ctx, comm, rc);
    /* the observed scores (every rank: cheap next to the resamples) */
    for (int k = 0; k < M && !rc; k++) {
        resampled(c->brain, m, NULL, a);
        resampled(c->models[k], m, NULL, b);
        r->score[k] = compare_vec(ctx, c->method, a, b, P);
    }
    /* bootstrap: my block of samples */
    int64_t lo, hi;
    rdml_part_block(B, ctx->rank, ctx->nranks, &lo, &hi);
    for (int64_t s = lo; s < hi && !rc; s++) {
        rdml_rng g = rdml_rng_make(c->seed, rdml_rng_substream(rdml_rng_substream(RDML_STREAM_SHUFFLE, STREAM_BOOT), c->key),
                                   (uint64_t)s * (uint64_t)m * 4);
        for (int64_t i = 0; i < m; i++) idx[i] = (int64_t)rdml_rng_below(&g, (uint64_t)m);
        int64_t p = resampled(c->brain, m, idx, a);
        for (int k = 0; k < M; k++) {
            resampled(c->models[k], m, idx, b);
            boot[s * M + k] = compare_vec(ctx, c->method, a, b, p);
        }
    }
    /* permutations of the model RDM's image labels: spearman on ranks computed once
     * (the ranks of a permuted vector are the permuted ranks), pearson directly, tau-a by
     * its definition on each permuted vector */
    rdml_part_block(Q, ctx->rank, ctx->nranks, &lo, &hi);
    double *Bm = NULL;
    if (!rc && hi > lo && c->method != RDML_RSA_KENDALL_A) {
        Bm = malloc((size_t)(m * m) * sizeof *Bm);
        if (!Bm) rc = RDML_FAIL(ctx, RDML_ENOMEM, "out of memory for the permutations");
    }
    for (int k = 0; k < M && !rc && hi > lo; k++) {
        resampled(c->brain, m, NULL, a);
        double ma = 0, sa = 0;
        if (c->method == RDML_RSA_SPEARMAN) rc = rdml_rsa_rank(ctx, a, P, a);
        if (!rc && c->method != RDML_RSA_KENDALL_A) {
            for (int64_t i = 0; i < P; i++) ma += a[i];
            ma /= (double)P;
            for (int64_t i = 0; i < P; i++) sa += (a[i] - ma) * (a[i] - ma);
            sa = sqrt(sa / (double)P);
            resampled(c->models[k], m, NULL, b);
            if (c->method == RDML_RSA_SPEARMAN) rc = rdml_rsa_rank(ctx, b, P, b);
            /* the full symmetric matrix of (ranked) model values */
            int64_t q = 0;
            for (int64_t s = 0; s < m && !rc; s++) {
                Bm[s * m + s] = 0;
                for (int64_t t = s + 1; t < m; t++, q++) Bm[s * m + t] = Bm[t * m + s] = b[q];
            }
        }
        for (int64_t s = lo; s < hi && !rc; s++) {
            rdml_rng g = rdml_rng_make(c->seed, rdml_rng_substream(rdml_rng_substream(RDML_STREAM_SHUFFLE, STREAM_PERM), c->key),
                                       (uint64_t)s * (uint64_t)m * 4);
            for (int64_t i = 0; i < m; i++) idx[i] = i;
            rdml_rng_shuffle(&g, idx, m);
            if (c->method == RDML_RSA_KENDALL_A) {
                int64_t q = 0;
                for (int64_t u = 0; u < m; u++)
                    for (int64_t v = u + 1; v < m; v++, q++) {
                        int64_t x = idx[u], y = idx[v];
                        b[q] = c->models[k][x * m + y];
                    }
                resampled(c->brain, m, NULL, a);
                null[s * M + k] = compare_vec(ctx, c->method, a, b, P);
            } else {
                null[s * M + k] = pearson_perm(a, Bm, m, idx, ma, sa);
            }
        }
    }
    free(Bm);
    rc = rdml_agree(ctx, comm, rc);
    if (!rc) {
        MPI_Allreduce(MPI_IN_PLACE, boot, (int)(B * M), MPI_DOUBLE, MPI_SUM, comm);
        MPI_Allreduce(MPI_IN_PLACE, null, (int)(Q * M), MPI_DOUBLE, MPI_SUM, comm);
    }
    for (int k = 0; k < M && !rc; k++) {
        if (B > 0) eval_percentile_ci(boot + k, B, M, c->ci, &r->ci_low[k], &r->ci_high[k]);
        else r->ci_low[k] = r->ci_high[k] = NAN;
        if (Q > 0 && isfinite(r->score[k])) {
            int64_t ge = 0;
            for (int64_t s = 0; s < Q; s++) ge += !(null[s * M + k] < r->score[k]); /* NaN counts */
            r->p[k] = (double)(1 + ge) / (double)(1 + Q);
        } else {
            r->p[k] = NAN;
        }
        for (int j = 0; j < M; j++) {
            double *d = &r->diff[k * M + j];
            *d = r->score[k] - r->score[j];
            r->diff_low[k * M + j] = r->diff_high[k * M + j] = r->diff_p[k * M + j] = NAN;
            if (j == k || B == 0) continue;
            double *dv = malloc((size_t)B * sizeof *dv);
            if (!dv) {
                rc = RDML_FAIL(ctx, RDML_ENOMEM, "out of memory");
                break;
            }
            int64_t le = 0, ge = 0, nf = 0;
            for (int64_t s = 0; s < B; s++) {
                dv[s] = boot[s * M + k] - boot[s * M + j];
                if (!isfinite(dv[s])) continue;
                nf++;
                le += dv[s] <= 0;
                ge += dv[s] >= 0;
            }
            eval_percentile_ci(dv, B, 1, c->ci, &r->diff_low[k * M + j], &r->diff_high[k * M + j]);
            if (nf > 0) {
                double pp = 2.0 * (double)(1 + (le < ge ? le : ge)) / (double)(1 + nf);
                r->diff_p[k * M + j] = pp > 1 ? 1 : pp;
            }
            free(dv);
        }
    }
    if (!rc && keep_boot) {
        r->boot = boot;
        boot = NULL;
    }
    free(boot);
    free(null);
    free(a);
    free(b);
    free(idx);
    if (rc) eval_res_free(r);
    return rc;
}

int eval_noise_ceiling(rdml_ctx *ctx, MPI_Comm comm, const float *const *rdms, int s, int64_t m,
                       rdml_rsa_method method, rdml_rsa_pool pool, int64_t nboot, double ci,
                       uint64_t seed, uint64_t key, double out[6]) {
    for (int i = 0; i < 6; i++) out[i] = NAN;
    int rc = rdml_rsa_noise_ceiling(ctx, rdms, s, m, method, pool, &out[0], &out[1], NULL, NULL);
    rc = rdml_agree(ctx, comm, rc);
    if (rc || nboot <= 0) return rc;
    double *bl = calloc((size_t)(2 * nboot) + 1, sizeof *bl);
    float **sub = calloc((size_t)s, sizeof *sub);
    int64_t *idx = malloc((size_t)m * sizeof *idx + 8), *keep = malloc((size_t)m * sizeof *keep + 8);
    rc = bl && sub && idx && keep ? RDML_OK : RDML_FAIL(ctx, RDML_ENOMEM, "out of memory");
    for (int i = 0; i < s && !rc; i++)
        if (!(sub[i] = malloc((size_t)(m * m) * sizeof **sub + 8))) rc = RDML_FAIL(ctx, RDML_ENOMEM, "out of memory");
    rc = rdml_agree(ctx, comm, rc);
    int64_t lo, hi;
    rdml_part_block(nboot, ctx->rank, ctx->nranks, &lo, &hi);
    for (int64_t b = lo; b < hi && !rc; b++) {
        rdml_rng g = rdml_rng_make(seed, rdml_rng_substream(rdml_rng_substream(RDML_STREAM_SHUFFLE, STREAM_BOOT), key),
                                   (uint64_t)b * (uint64_t)m * 4);
        for (int64_t i = 0; i < m; i++) idx[i] = (int64_t)rdml_rng_below(&g, (uint64_t)m);
        /* rdml_rsa_noise_ceiling takes whole matrices, so a repeated image's pairs with
         * itself cannot be dropped as NaN: the sample's distinct images are used (each
         * once), which drops those self-pairs and the repeated copies' other pairs */
        int64_t k = 0;
        for (int64_t i = 0; i < m; i++) keep[i] = 0;
        for (int64_t i = 0; i < m; i++) keep[idx[i]] = 1;
        for (int64_t i = 0; i < m; i++)
            if (keep[i]) idx[k++] = i;
        for (int64_t i = 0; i < k; i++) keep[i] = idx[i];
        for (int i = 0; i < s; i++)
            for (int64_t u = 0; u < k; u++)
                for (int64_t v = 0; v < k; v++) sub[i][u * k + v] = rdms[i][keep[u] * m + keep[v]];
        double lw = NAN, up = NAN;
        if (rdml_rsa_noise_ceiling(ctx, (const float *const *)sub, s, k, method, pool, &lw, &up, NULL, NULL))
            rdml_ctx_clear(ctx);
        bl[2 * b] = lw;
        bl[2 * b + 1] = up;
    }
    rc = rdml_agree(ctx, comm, rc);
    if (!rc) {
        MPI_Allreduce(MPI_IN_PLACE, bl, (int)(2 * nboot), MPI_DOUBLE, MPI_SUM, comm);
        eval_percentile_ci(bl, nboot, 2, ci, &out[2], &out[3]);
        eval_percentile_ci(bl + 1, nboot, 2, ci, &out[4], &out[5]);
    }
    for (int i = 0; sub && i < s; i++) free(sub[i]);
    free(sub);
    free(bl);
    free(idx);
    free(keep);
    return rc;
}

typedef struct pv {
    double p;
    int64_t i;
} pv;

static int cmp_pv(const void *x, const void *y) {
    const pv *a = x, *b = y;
    if (a->p != b->p) return a->p < b->p ? -1 : 1;
    return (a->i > b->i) - (a->i < b->i);
}

int eval_correct(rdml_ctx *ctx, int how, const double *p, int64_t n, double *q) {
    pv *v = calloc((size_t)n + 1, sizeof *v);
    if (!v) return RDML_FAIL(ctx, RDML_ENOMEM, "out of memory for the correction");
    int64_t k = 0;
    for (int64_t i = 0; i < n; i++) {
        q[i] = NAN;
        if (isfinite(p[i])) v[k++] = (pv){p[i], i};
    }
    if (how == EVAL_NONE) {
        for (int64_t t = 0; t < k; t++) q[v[t].i] = v[t].p;
    } else if (how == EVAL_BONFERRONI) {
        for (int64_t t = 0; t < k; t++) q[v[t].i] = fmin(1.0, v[t].p * (double)k);
    } else {
        /* Benjamini-Hochberg step-up: q_(t) = min over u >= t of p_(u) k / u */
        qsort(v, (size_t)k, sizeof *v, cmp_pv);
        double run = 1.0;
        for (int64_t t = k - 1; t >= 0; t--) {
            double val = v[t].p * (double)k / (double)(t + 1);
            if (val < run) run = val;
            q[v[t].i] = run;
        }
    }
    free(v);
    return RDML_OK;
}
