/* Timing driver for bench/rsa/bench_rsa.py: reads two float64 vectors (raw little-endian,
 * P values each) and prints the seconds and values of rdmlearn's Spearman, Kendall tau-a and
 * Pearson as "name seconds value" lines. Not a test; built by the script. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "rdml/rsa.h"

static double *load(const char *path, int64_t p) {
    double *v = malloc((size_t)p * sizeof *v);
    FILE *f = fopen(path, "rb");
    if (!v || !f || fread(v, sizeof *v, (size_t)p, f) != (size_t)p) {
        fprintf(stderr, "bench_rsa: cannot read %lld doubles from %s\n", (long long)p, path);
        exit(1);
    }
    fclose(f);
    return v;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: bench_rsa A.f64 B.f64 P\n");
        return 2;
    }
    const int64_t p = strtoll(argv[3], NULL, 10);
    double *a = load(argv[1], p), *b = load(argv[2], p);
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    const char *names[3] = {"spearman", "kendall_tau_a", "pearson"};
    for (int m = 0; m < 3; m++) {
        double v = 0, t0 = rdml_now();
        int rc = m == 0   ? rdml_rsa_spearman(&ctx, a, b, p, &v)
                 : m == 1 ? rdml_rsa_kendall_tau_a(&ctx, a, b, p, &v)
                          : rdml_rsa_pearson(&ctx, a, b, p, &v);
        double t = rdml_now() - t0;
        if (rc) {
            fprintf(stderr, "bench_rsa: %s\n", ctx.msg);
            return 1;
        }
        printf("%s %.3f %.17g\n", names[m], t, v);
        fflush(stdout);
    }
    free(a);
    free(b);
    return 0;
}
