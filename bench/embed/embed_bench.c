/* CLIP ViT throughput driver for bench/embed/run.sh.
 *
 *   embed_bench forward WEIGHTS PIXELS.npy REPS OUT.npy
 *       loads the model, reads B preprocessed images (PIXELS.npy: float32 B x 3*S*S, made by
 *       run.sh with tools/clip_reference.py's preprocess), warms up on 2 images (as the
 *       PyTorch anchor does), then times REPS forwards of the whole batch (get_image_features)
 *       and writes the last result to OUT.npy. Prints one "rdml batch=B seconds=..." line per
 *       repetition, and the per-phase times of the last one (rdml_clip_forward_profile).
 *   embed_bench peak REPS
 *       OpenBLAS SGEMM microbenchmark with the same threads: the shapes of ViT-B/32 at batch
 *       32 (1600 x 3072 x 768, 1600 x 768 x 3072, 1600 x 2304 x 768) and a square 2048^3;
 *       prints the best GFLOP/s of REPS calls of each.
 *   embed_bench convnet ARCH WEIGHTS PIXELS.npy REPS OUT.npy
 *       the same for a network of the zoo (rdml/zoo.h; bench/embed/run_resnet50.sh, run_vit.sh):
 *       PIXELS.npy is B x 3*224*224 (the architecture's transform), the output is the
 *       last module (fc / classifier.6 / heads; DINOv2's norm: all tokens, B x T*D).
 * Threads: OPENBLAS_NUM_THREADS (run.sh sets it). No MPI: one process. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/blas_kernel.h"
#include "rdml/embed.h"
#include "rdml/npy.h"
#include "rdml/zoo.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int peak(int reps) {
    static const int shapes[][3] = {{1600, 3072, 768}, {1600, 768, 3072}, {1600, 2304, 768},
                                    {2048, 2048, 2048}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int m = shapes[s][0], n = shapes[s][1], k = shapes[s][2];
        float *a = malloc((size_t)m * k * sizeof *a), *b = malloc((size_t)n * k * sizeof *b),
              *c = malloc((size_t)m * n * sizeof *c);
        if (!a || !b || !c) return 1;
        for (long i = 0; i < (long)m * k; i++) a[i] = (float)((i * 7 % 13) - 6) * 0.01f;
        for (long i = 0; i < (long)n * k; i++) b[i] = (float)((i * 5 % 11) - 5) * 0.01f;
        double best = 1e30;
        for (int r = 0; r < reps; r++) {
            double t = now_s();
            /* x W^T, as clip.c's linear() */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1.0f, a, k, b, k, 0.0f,
                        c, n);
            t = now_s() - t;
            best = t < best ? t : best;
        }
        printf("sgemm %dx%dx%d (NT): best of %d %.4f s = %.1f GFLOP/s\n", m, n, k, reps, best,
               2.0 * m * n * k / best / 1e9);
        free(a);
        free(b);
        free(c);
    }
    return 0;
}

typedef struct sink {
    float *out;
} sink;

static int keep(void *arg, int64_t k, int64_t B, const rdml_zoo_layer *L, const float *x) {
    (void)k;
    memcpy(((sink *)arg)->out, x, (size_t)(B * L->c * L->h * L->w) * sizeof *x);
    return RDML_OK;
}

static int convnet(char **argv) {
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    rdml_zoo_arch arch;
    rdml_convnet *m = NULL;
    double t0 = now_s();
    if (rdml_zoo_arch_parse(&ctx, argv[2], &arch) || rdml_convnet_load(&ctx, arch, argv[3], &m)) {
        fprintf(stderr, "%s\n", ctx.msg);
        return 1;
    }
    double tl = now_s() - t0;
    int64_t last = rdml_convnet_nlayers(m) - 1, per = 3 * RDML_ZOO_IMAGE * RDML_ZOO_IMAGE;
    const rdml_zoo_layer *L = rdml_convnet_layer(m, last);
    rdml_npy f;
    if (rdml_npy_open(&ctx, argv[4], 0, &f)) {
        fprintf(stderr, "%s\n", ctx.msg);
        return 1;
    }
    int64_t B = f.shape[0];
    if (f.ndim != 2 || f.shape[1] != per) {
        fprintf(stderr, "%s: expected B x %lld float32\n", argv[4], (long long)per);
        return 1;
    }
    const int64_t dims = L->c * L->h * L->w; /* ViT tokens: T x D */
    float *px = malloc((size_t)(B * per) * sizeof *px), *out = malloc((size_t)(B * dims) * sizeof *out);
    if (!px || !out || rdml_npy_read_f32(&ctx, &f, 0, B, NULL, per, px)) {
        fprintf(stderr, "%s\n", ctx.msg);
        return 1;
    }
    rdml_npy_close(&f);
    printf("rdml model: %s, output %s (%lld); load %.2f s\n", argv[2], L->name, (long long)dims, tl);
    sink s = {out};
    if (rdml_convnet_forward(&ctx, m, 2 < B ? 2 : B, px, 1, &last, keep, &s)) { /* warm-up */
        fprintf(stderr, "%s\n", ctx.msg);
        return 1;
    }
    int reps = atoi(argv[5]);
    for (int r = 0; r < reps; r++) {
        double t = now_s();
        if (rdml_convnet_forward(&ctx, m, B, px, 1, &last, keep, &s)) {
            fprintf(stderr, "%s\n", ctx.msg);
            return 1;
        }
        t = now_s() - t;
        printf("rdml batch=%lld seconds=%.4f images/s=%.2f\n", (long long)B, t, (double)B / t);
    }
    int64_t shape[2] = {B, dims};
    if (rdml_npy_save(&ctx, argv[6], RDML_DT_F4, 0, 2, shape, out)) {
        fprintf(stderr, "%s\n", ctx.msg);
        return 1;
    }
    free(px);
    free(out);
    rdml_convnet_free(&m);
    return 0;
}

int main(int argc, char **argv) {
    bench_print_blas("rdmlearn");
    if (argc == 3 && strcmp(argv[1], "peak") == 0) return peak(atoi(argv[2]));
    if (argc == 7 && strcmp(argv[1], "convnet") == 0) return convnet(argv);
    if (argc != 6 || strcmp(argv[1], "forward") != 0) {
        fprintf(stderr, "usage: %s forward WEIGHTS PIXELS.npy REPS OUT.npy | peak REPS\n", argv[0]);
        return 2;
    }
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    rdml_clip *m = NULL;
    double t0 = now_s();
    if (rdml_clip_load(&ctx, argv[2], 0, RDML_ACT_AUTO, &m)) {
        fprintf(stderr, "%s\n", ctx.msg);
        return 1;
    }
    double tl = now_s() - t0;
    const rdml_clip_arch *a = rdml_clip_get_arch(m);
    rdml_npy f;
    if (rdml_npy_open(&ctx, argv[3], 0, &f)) {
        fprintf(stderr, "%s\n", ctx.msg);
        return 1;
    }
    int64_t B = f.shape[0], per = 3 * a->image * a->image;
    if (f.ndim != 2 || f.shape[1] != per) {
        fprintf(stderr, "%s: expected B x %lld float32\n", argv[3], (long long)per);
        return 1;
    }
    float *px = malloc((size_t)(B * per) * sizeof *px), *out = malloc((size_t)(B * a->proj) * sizeof *out);
    if (!px || !out || rdml_npy_read_f32(&ctx, &f, 0, B, NULL, per, px)) {
        fprintf(stderr, "%s\n", ctx.msg);
        return 1;
    }
    rdml_npy_close(&f);
    printf("rdml model: width %lld, layers %lld, heads %lld, patch %lld, image %lld, proj %lld; "
           "load %.2f s\n", (long long)a->width, (long long)a->layers, (long long)a->heads,
           (long long)a->patch, (long long)a->image, (long long)a->proj, tl);
    if (rdml_clip_forward(&ctx, m, 2 < B ? 2 : B, px, -1, 0, out)) { /* warm-up */
        fprintf(stderr, "%s\n", ctx.msg);
        return 1;
    }
    int reps = atoi(argv[4]);
    double prof[RDML_CLIP_NPHASE];
    for (int r = 0; r < reps; r++) {
        memset(prof, 0, sizeof prof);
        rdml_clip_forward_profile(prof);
        double t = now_s();
        if (rdml_clip_forward(&ctx, m, B, px, -1, 0, out)) {
            fprintf(stderr, "%s\n", ctx.msg);
            return 1;
        }
        t = now_s() - t;
        rdml_clip_forward_profile(NULL);
        printf("rdml batch=%lld seconds=%.4f images/s=%.2f\n", (long long)B, t, (double)B / t);
    }
    printf("rdml phases of the last repetition:");
    for (int p = 0; p < RDML_CLIP_NPHASE; p++)
        printf(" %s %.3f s%s", rdml_clip_phase_name(p), prof[p], p + 1 < RDML_CLIP_NPHASE ? "," : "\n");
    int64_t shape[2] = {B, a->proj};
    if (rdml_npy_save(&ctx, argv[5], RDML_DT_F4, 0, 2, shape, out)) {
        fprintf(stderr, "%s\n", ctx.msg);
        return 1;
    }
    free(px);
    free(out);
    rdml_clip_free(&m);
    return 0;
}
