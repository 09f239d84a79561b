/* SVM bench driver: trains the paper's SVC (poly, degree 2, C = 1, gamma 'scale') with
 * rdml_svm_train on the pairs written by anchor.py prepare, times fit (including the Gram
 * matrix, or for lowrank the image factor) and decision, and writes dec_<tag>.npy and
 * times_<tag>.npy [fit s, predict s, dual objective, n_SV] for anchor.py to compare (tag rdml
 * for SMO, lowrank<K> for svm.solver = lowrank). Prints the test accuracy (test_y.npy) and
 * the process's peak resident memory.
 * usage: svm_bench DIR [cache_mb] [smo | lowrank K [eigen|nystrom]] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "../common/blas_kernel.h"
#include "rdml/npy.h"
#include "rdml/svm.h"

static void *load(rdml_ctx *ctx, const char *dir, const char *name, int f32, int64_t *r, int64_t *c) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.npy", dir, name);
    rdml_npy f;
    if (rdml_npy_open(ctx, path, 0, &f)) return NULL;
    *r = f.shape[0];
    *c = f.ndim == 2 ? f.shape[1] : 1;
    void *out = malloc((size_t)(*r * *c) * 8);
    int rc = f32 ? rdml_npy_read_f32(ctx, &f, 0, *r, NULL, 0, out) : rdml_npy_read_i64(ctx, &f, 0, *r, NULL, 0, out);
    rdml_npy_close(&f);
    return rc ? NULL : out;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: svm_bench DIR [cache_mb] [smo | lowrank K [eigen|nystrom]]\n");
        return 2;
    }
    bench_print_blas("rdmlearn");
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    int64_t n, d, ntr, nte, c;
    float *E = load(&ctx, argv[1], "emb", 1, &n, &d);
    int64_t *trij = load(&ctx, argv[1], "train_ij", 0, &ntr, &c), *ytr = load(&ctx, argv[1], "train_y", 0, &ntr, &c);
    int64_t *teij = load(&ctx, argv[1], "test_ij", 0, &nte, &c), *yte = load(&ctx, argv[1], "test_y", 0, &nte, &c);
    if (!E || !trij || !ytr || !teij || !yte) {
        fprintf(stderr, "svm_bench: %s\n", ctx.msg);
        return 1;
    }
    int8_t *y = malloc((size_t)ntr);
    for (int64_t i = 0; i < ntr; i++) y[i] = (int8_t)ytr[i];
    rdml_svm_params p;
    rdml_svm_defaults(&p);
    p.kernel = RDML_SVM_POLY;
    p.degree = 2;
    if (argc > 2) p.cache_mb = atof(argv[2]);
    char tag[64] = "rdml";
    if (argc > 3 && strcmp(argv[3], "lowrank") == 0) {
        p.solver = RDML_SVM_LOWRANK;
        p.rank = argc > 4 ? atoi(argv[4]) : 50;
        if (argc > 5) p.factor = (rdml_svm_factor)rdml_svm_factor_parse(argv[5]);
        p.seed = 42;
        snprintf(tag, sizeof tag, "lowrank%d%s", p.rank, p.factor == RDML_SVM_FACTOR_NYSTROM ? "n" : "");
    }
    double t0 = rdml_now();
    rdml_svm_images im;
    rdml_svm_model *m = NULL;
    int rc = rdml_svm_images_make_ex(&ctx, n, d, E, rdml_svm_images_needs(&p), &im);
    if (!rc) rc = rdml_svm_train(&ctx, &p, &im, ntr, trij, y, &m);
    double tf = rdml_now() - t0;
    double *dec = malloc((size_t)nte * sizeof *dec);
    t0 = rdml_now();
    if (!rc) rc = rdml_svm_decision(&ctx, m, &im, nte, teij, dec);
    double tp = rdml_now() - t0;
    if (rc) {
        fprintf(stderr, "svm_bench: %s\n", ctx.msg);
        return 1;
    }
    rdml_svm_info info;
    rdml_svm_get_info(m, &info);
    int64_t right = 0;
    for (int64_t i = 0; i < nte; i++) right += (dec[i] > 0) == (yte[i] > 0);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("rdmlearn %-12s: %lld train pairs, fit %.2f s (%lld %s), predict %.2f s, nSV %lld, "
           "acc %.4f, peak RSS %.0f MB\n", tag, (long long)ntr, tf, (long long)info.iterations,
           p.solver == RDML_SVM_LOWRANK ? "epochs" : "iterations", tp, (long long)info.n_sv,
           (double)right / (double)nte, (double)ru.ru_maxrss / 1024.0);
    char path[4096];
    snprintf(path, sizeof path, "%s/runs.tsv", argv[1]);
    FILE *runs = fopen(path, "a");
    if (runs) {
        fprintf(runs, "%s\t%lld\t%.6f\t%.6f\t%.6f\t%.1f\t%.9g\n", tag, (long long)ntr, tf, tp,
                (double)right / (double)nte, (double)ru.ru_maxrss / 1024.0, info.objective);
        fclose(runs);
    }
    snprintf(path, sizeof path, "%s/dec_%s.npy", argv[1], tag);
    int64_t shape[1] = {nte}, four[1] = {4};
    double t[4] = {tf, tp, info.objective, (double)info.n_sv};
    rc = rdml_npy_save(&ctx, path, RDML_DT_F8, 0, 1, shape, dec);
    snprintf(path, sizeof path, "%s/times_%s.npy", argv[1], tag);
    if (!rc) rc = rdml_npy_save(&ctx, path, RDML_DT_F8, 0, 1, four, t);
    if (rc) fprintf(stderr, "svm_bench: %s\n", ctx.msg);
    rdml_svm_free(&m);
    rdml_svm_images_free(&im);
    free(E); free(trij); free(ytr); free(teij); free(yte); free(y); free(dec);
    return rc ? 1 : 0;
}
