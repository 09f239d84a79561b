/* Timing of one training step of the siamese CNN (src/nn/cnn.c): N distinct S x S images, B
 * pairs among them, C1/C2 channels, single-threaded BLAS unless OPENBLAS_NUM_THREADS says
 * otherwise. Prints seconds per step, the conv GFLOP/s of the step (2 * MACs of conv forward,
 * dW and dX, counted once per distinct image as the decomposed step computes them; conv1 has
 * no dX) and the GFLOP/s of a 1024^3 cblas_sgemm on the same thread for comparison. Not a
 * test; build by hand from the repository root after building librdml in build-cnn:
 *
 *   gcc -O2 -std=c11 -D_POSIX_C_SOURCE=200809L -Iinclude bench/cnn/cnn_step.c \
 *       build-cnn/librdml.a $(pkg-config --libs openblas) -lm -o /tmp/cnn_step
 *   OPENBLAS_NUM_THREADS=1 /tmp/cnn_step [N=64] [B=2016] [S=128] [C1=32] [C2=64] [reps=3]
 *
 * B = 0 means all N (N - 1) / 2 pairs i < j. Prints the OpenBLAS kernel it runs first
 * (OPENBLAS_CORETYPE as the environment sets it; bench/common/blas_kernel.h). */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "../common/blas_kernel.h"
#include "rdml/nn.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static double sgemm_peak(void) {
    int n = 1024;
    float *a = malloc((size_t)n * n * 4), *b = malloc((size_t)n * n * 4), *c = malloc((size_t)n * n * 4);
    for (long i = 0; i < (long)n * n; i++) a[i] = b[i] = c[i] = (float)(i % 7) * 0.1f;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a, n, b, n, 0, c, n);
    double t = now();
    for (int r = 0; r < 3; r++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a, n, b, n, 0, c, n);
    t = (now() - t) / 3;
    free(a); free(b); free(c);
    return 2.0 * n * n * n / t / 1e9;
}

int main(int argc, char **argv) {
    bench_print_blas("rdmlearn cnn_step");
    int64_t N = argc > 1 ? atoll(argv[1]) : 64, B = argc > 2 ? atoll(argv[2]) : 0;
    rdml_cnn_params cp;
    rdml_cnn_defaults(&cp);
    if (argc > 3) cp.size = atoll(argv[3]);
    if (argc > 4) cp.c1 = atoll(argv[4]);
    if (argc > 5) cp.c2 = atoll(argv[5]);
    int reps = argc > 6 ? atoi(argv[6]) : 3;
    if (B <= 0) B = N * (N - 1) / 2;
    int64_t S = cp.size, O1 = S - 2, P1 = O1 / 2, O2 = P1 - 2;
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    rdml_rng r = rdml_rng_make(1, RDML_STREAM_USER, 0);
    float *img = malloc((size_t)(N * S * S) * sizeof *img), *y = malloc((size_t)B * sizeof *y);
    int64_t *ij = malloc((size_t)(2 * B) * sizeof *ij);
    for (int64_t i = 0; i < N * S * S; i++) img[i] = (float)rdml_rng_uniform(&r);
    int64_t q = 0;
    for (int64_t i = 0; i < N && q < B; i++)
        for (int64_t j = i + 1; j < N && q < B; j++, q++) {
            ij[2 * q] = i;
            ij[2 * q + 1] = j;
            y[q] = (float)(2 * rdml_rng_uniform(&r));
        }
    for (; q < B; q++) { /* more pairs than i < j: wrap around */
        ij[2 * q] = q % N;
        ij[2 * q + 1] = (q * 7 + 3) % N;
        y[q] = (float)(2 * rdml_rng_uniform(&r));
    }
    int64_t distinct = 0;
    char *seen = calloc((size_t)N, 1);
    for (int64_t k = 0; k < 2 * B; k++)
        if (!seen[ij[k]]) { seen[ij[k]] = 1; distinct++; }
    free(seen);
    rdml_cnn *net = NULL;
    if (rdml_cnn_create(&ctx, &cp, 1, 0, &net)) { fprintf(stderr, "%s\n", ctx.msg); return 1; }
    rdml_optim opt;
    rdml_optim_defaults(&opt);
    opt.lr = 1e-4;
    double loss = 0, best = 1e30;
    for (int rep = 0; rep <= reps; rep++) { /* rep 0 warms up (allocates the workspace) */
        double t = now();
        if (rdml_cnn_step(&ctx, net, &opt, img, B, ij, y, &loss)) { fprintf(stderr, "%s\n", ctx.msg); return 1; }
        t = now() - t;
        if (rep > 0 && t < best) best = t;
    }
    double m1 = (double)cp.c1 * 9 * O1 * O1, m2 = (double)cp.c2 * cp.c1 * 9 * O2 * O2;
    double flop_img = 2.0 * (2 * m1 + 3 * m2);
    double peak = sgemm_peak();
    /* the per-pair step of old computed 2B towers: report the work it would have done too */
    printf("S %lld c1 %lld c2 %lld: %lld pairs over %lld distinct images: %.3f s per step (loss %.4f)\n",
           (long long)S, (long long)cp.c1, (long long)cp.c2, (long long)B, (long long)distinct, best, loss);
    printf("conv work %.1f MFLOP per image, %.2f GFLOP per step -> %.1f GFLOP/s if one tower per distinct "
           "image, %.1f GFLOP/s if one per pair side; sgemm 1024^3 %.1f GFLOP/s\n",
           flop_img / 1e6, flop_img * distinct / 1e9, flop_img * distinct / best / 1e9,
           flop_img * 2 * B / best / 1e9, peak);
    rdml_cnn_free(&net);
    free(img); free(y); free(ij);
    return 0;
}
