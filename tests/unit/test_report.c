/* Report drawing primitives: nice ticks cover the range with 1/2/2.5/5 x 10^k steps and
 * print exactly; the downsampling rule (block edge, block means and above-threshold shares)
 * agrees with a brute-force reference on a matrix whose size is not a multiple of the block;
 * viridis matches its published end and middle colours (#440154, #21918c, #fde725); a figure
 * saved with rdml_plot_save is a PNG and an SVG of exactly the requested size, and a heat map
 * of a 2 x 2 matrix paints each quadrant with the colour of its value; HTML escaping and
 * file-name sanitising; the blocks of a reordered RDM (b.pos) equal those of the permuted
 * matrix; the display order (average linkage) on a worked example with scipy's leaf order and
 * on planted clusters; the diverging colour map of correlations. */
#include <dlfcn.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rdml/png.h"
#include "report/report_priv.h"
#include "test.h"

static void test_ticks(void) {
    double t[64], step;
    int n = rdml_plot_ticks(0.3, 1.57, 6, t, 64, &step);
    CHECK_NEAR(step, 0.25, 1e-12);
    CHECK_EQ_I(n, 5); /* 0.5 0.75 1 1.25 1.5 */
    CHECK_NEAR(t[0], 0.5, 1e-12);
    CHECK_NEAR(t[n - 1], 1.5, 1e-12);
    /* reversed range (image rows top-down) gives the same ticks */
    double u[64], s2;
    CHECK_EQ_I(rdml_plot_ticks(120, 0, 7, u, 64, &s2), 7);
    CHECK_NEAR(s2, 20, 1e-12);
    CHECK_NEAR(u[0], 0, 1e-12);
    CHECK_NEAR(u[6], 120, 1e-12);
    /* random ranges: ticks inside, evenly spaced, nice mantissa, not too many */
    unsigned seed = 12345;
    for (int k = 0; k < 2000; k++) {
        seed = seed * 1103515245u + 12345u;
        double lo = ((seed >> 8) % 20001 - 10000) * pow(10, (int)(seed % 9) - 4) / 1000.0;
        seed = seed * 1103515245u + 12345u;
        double hi = lo + ((seed >> 8) % 10000 + 1) * pow(10, (int)(seed % 9) - 4) / 1000.0;
        int m = rdml_plot_ticks(lo, hi, 6, t, 64, &step);
        CHECK(m >= 2 && m <= 13);
        double mant = step / pow(10, floor(log10(step) + 1e-12));
        CHECK(fabs(mant - 1) < 1e-9 || fabs(mant - 2) < 1e-9 || fabs(mant - 2.5) < 1e-9 ||
              fabs(mant - 5) < 1e-9);
        for (int i = 0; i < m; i++) {
            CHECK(t[i] >= lo - 1e-9 * step && t[i] <= hi + 1e-9 * step);
            /* spacing exact up to the doubles' resolution at the ticks' magnitude */
            if (i) CHECK_NEAR(t[i] - t[i - 1], step, 1e-6 * step + 1e-14 * fabs(t[i]));
        }
        if (test_failed_checks_) break;
    }
    /* equal ends: one tick */
    CHECK_EQ_I(rdml_plot_ticks(2, 2, 6, t, 64, &step), 1);
}

static void test_tick_labels(void) {
    char b[64];
    rdml_plot_tick_label(0.75, 0.25, b, sizeof b);
    CHECK(strcmp(b, "0.75") == 0);
    rdml_plot_tick_label(1.0, 0.25, b, sizeof b);
    CHECK(strcmp(b, "1.00") == 0);
    rdml_plot_tick_label(40, 20, b, sizeof b);
    CHECK(strcmp(b, "40") == 0);
    rdml_plot_tick_label(-1e-17, 0.1, b, sizeof b);
    CHECK(strcmp(b, "0") == 0); /* never "-0.0" */
    rdml_plot_tick_label(0.015, 0.005, b, sizeof b);
    CHECK(strcmp(b, "0.015") == 0);
    rdml_plot_tick_label(3e7, 1e7, b, sizeof b);
    CHECK(strcmp(b, "3e+07") == 0);
    double lo = 0.013, hi = 0.047;
    rdml_plot_nice_range(&lo, &hi);
    CHECK_NEAR(lo, 0.01, 1e-12);
    CHECK_NEAR(hi, 0.05, 1e-12);
}

static void test_block_rule(void) {
    CHECK_EQ_I(rdml_report_block_edge(9841, 1000), 10);
    CHECK_EQ_I(rdml_report_block_edge(1000, 1000), 1);
    CHECK_EQ_I(rdml_report_block_edge(1001, 1000), 2);
    CHECK_EQ_I(rdml_report_block_edge(100, 1000), 1);
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    rdml_blocks b;
    CHECK_EQ_I(rdml_blocks_init(&ctx, &b, 9841, 1000, 1.0), RDML_OK);
    CHECK_EQ_I(b.f, 10);
    CHECK_EQ_I(b.m, 985); /* 984 full blocks + one of 1 entry */
    rdml_blocks_free(&b);
}

/* Brute force: mean and share of every block straight from the definition. */
static void test_blocks_match_reference(void) {
    enum { N = 23, MAXD = 5 };
    float R[N * N];
    unsigned seed = 7;
    for (int i = 0; i < N; i++)
        for (int j = 0; j <= i; j++) {
            seed = seed * 1664525u + 1013904223u;
            float v = i == j ? 0.0f : (float)((seed >> 9) % 20000) / 10000.0f;
            R[i * N + j] = R[j * N + i] = v;
        }
    R[3 * N + 17] = NAN; /* skipped, not counted */
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    rdml_blocks b;
    CHECK_EQ_I(rdml_blocks_init(&ctx, &b, N, MAXD, 1.0), RDML_OK);
    CHECK_EQ_I(b.f, 5);
    CHECK_EQ_I(b.m, 5);
    /* rows in uneven slabs: the result must not depend on them */
    int cuts[] = {0, 1, 7, 8, 19, N};
    for (int k = 0; k + 1 < (int)(sizeof cuts / sizeof cuts[0]); k++)
        rdml_blocks_add_rows(&b, R + cuts[k] * N, cuts[k], cuts[k + 1] - cuts[k]);
    float *mean, *share;
    CHECK_EQ_I(rdml_blocks_finish(&ctx, &b, &mean, &share), RDML_OK);
    for (int bi = 0; bi < 5; bi++)
        for (int bj = 0; bj < 5; bj++) {
            double s = 0, a = 0, c = 0;
            for (int i = bi * 5; i < N && i < bi * 5 + 5; i++)
                for (int j = bj * 5; j < N && j < bj * 5 + 5; j++) {
                    double v = R[i * N + j];
                    if (isnan(v)) continue;
                    s += v;
                    a += v > 1.0;
                    c++;
                }
            CHECK_NEAR(mean[bi * 5 + bj], s / c, 1e-6);
            CHECK_NEAR(share[bi * 5 + bj], a / c, 1e-6);
        }
    /* the last block row holds 23 - 20 = 3 rows: its corner block has 3 x 3 entries */
    CHECK_NEAR(b.count[24], 9, 0);
    CHECK_NEAR(b.count[3 * 5 + 0], 25, 0);
    CHECK_NEAR(b.count[0 * 5 + 3], 24, 0); /* the NaN at (3, 17) */
    free(mean);
    free(share);
    rdml_blocks_free(&b);
}

/* Blocks of a reordered RDM: with b.pos set, the block means are those of the permuted matrix
 * R[order][:, order], computed by brute force. */
static void test_blocks_permuted(void) {
    enum { N = 13, MAXD = 4 };
    float R[N * N], P[N * N];
    int64_t order[N], pos[N];
    unsigned seed = 99;
    for (int i = 0; i < N; i++)
        for (int j = 0; j <= i; j++) {
            seed = seed * 1664525u + 1013904223u;
            float v = i == j ? 0.0f : (float)((seed >> 9) % 20000) / 10000.0f;
            R[i * N + j] = R[j * N + i] = v;
        }
    for (int p = 0; p < N; p++) order[p] = (p * 5 + 3) % N; /* a permutation (5 coprime to 13) */
    for (int p = 0; p < N; p++) pos[order[p]] = p;
    for (int p = 0; p < N; p++)
        for (int q = 0; q < N; q++) P[p * N + q] = R[order[p] * N + order[q]];
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    rdml_blocks b, ref;
    CHECK_EQ_I(rdml_blocks_init(&ctx, &b, N, MAXD, 1.0), RDML_OK);
    CHECK_EQ_I(rdml_blocks_init(&ctx, &ref, N, MAXD, 1.0), RDML_OK);
    b.pos = pos;
    rdml_blocks_add_rows(&b, R, 0, 6); /* file rows, in two slabs */
    rdml_blocks_add_rows(&b, R + 6 * N, 6, N - 6);
    rdml_blocks_add_rows(&ref, P, 0, N);
    float *m1, *s1, *m2, *s2;
    CHECK_EQ_I(rdml_blocks_finish(&ctx, &b, &m1, &s1), RDML_OK);
    CHECK_EQ_I(rdml_blocks_finish(&ctx, &ref, &m2, &s2), RDML_OK);
    for (int k = 0; k < (int)(b.m * b.m); k++) {
        CHECK_NEAR(m1[k], m2[k], 1e-6);
        CHECK_NEAR(s1[k], s2[k], 1e-6);
        CHECK_NEAR(b.count[k], ref.count[k], 0);
    }
    free(m1);
    free(s1);
    free(m2);
    free(s2);
    rdml_blocks_free(&b);
    rdml_blocks_free(&ref);
}

static double *condensed_of(const double *x, int n, int dim) {
    double *D = malloc(sizeof *D * (size_t)(n * (n - 1) / 2 + 1));
    int k = 0;
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++) {
            double s = 0;
            for (int c = 0; c < dim; c++) s += (x[i * dim + c] - x[j * dim + c]) * (x[i * dim + c] - x[j * dim + c]);
            D[k++] = sqrt(s);
        }
    return D;
}

/* The display order of an RDM: average linkage as scipy computes it. Points 0, 3, 1, 10 on a
 * line: merges {0,2} at 1, {1,{0,2}} at 2.5, {3,{0,1,2}} at 26/3; scipy's leaves_list (the
 * smaller cluster label on the left) gives 3, 1, 0, 2. Then planted clusters in shuffled rows
 * come out contiguous, and 1 or 2 images are trivial. */
static void test_cluster_order(void) {
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    double line[4] = {0, 3, 1, 10};
    double *D = condensed_of(line, 4, 1);
    int64_t o[64];
    CHECK_EQ_I(rdml_report_cluster_order(&ctx, D, 4, o), RDML_OK);
    CHECK(o[0] == 3 && o[1] == 1 && o[2] == 0 && o[3] == 2);
    free(D);
    /* 4 clusters of 10 points in 3-D, rows shuffled */
    enum { K = 4, M = 10, NP = K * M };
    double x[NP * 3];
    int cl[NP] = {0};
    unsigned seed = 2024;
    for (int i = 0; i < NP; i++) {
        seed = seed * 1664525u + 1013904223u;
        int r = (int)((seed >> 8) % (unsigned)(i + 1)); /* Fisher-Yates insertion */
        cl[i] = cl[r];
        cl[r] = i / M;
    }
    for (int i = 0; i < NP; i++)
        for (int c = 0; c < 3; c++) {
            seed = seed * 1664525u + 1013904223u;
            x[i * 3 + c] = (c == cl[i] % 3 ? 20.0 * (1 + cl[i] / 3) : 0) + ((seed >> 9) % 1000) / 1000.0;
        }
    D = condensed_of(x, NP, 3);
    CHECK_EQ_I(rdml_report_cluster_order(&ctx, D, NP, o), RDML_OK);
    int seen[NP] = {0}, changes = 0;
    for (int p = 0; p < NP; p++) {
        CHECK(o[p] >= 0 && o[p] < NP && !seen[o[p]]);
        if (o[p] >= 0 && o[p] < NP) seen[o[p]] = 1;
        if (p && cl[o[p]] != cl[o[p - 1]]) changes++;
    }
    CHECK_EQ_I(changes, K - 1); /* each cluster in one run */
    free(D);
    double one = 0;
    CHECK_EQ_I(rdml_report_cluster_order(&ctx, &one, 1, o), RDML_OK);
    CHECK_EQ_I(o[0], 0);
    double two = 0.5;
    CHECK_EQ_I(rdml_report_cluster_order(&ctx, &two, 2, o), RDML_OK);
    CHECK(o[0] == 0 && o[1] == 1);
}

/* The diverging map of signed correlations: dark blue, near-white in the middle, dark red. */
static void test_rdbu(void) {
    double c[3];
    rdml_plot_rdbu(0, c);
    CHECK(c[2] > c[0] + 0.3);
    rdml_plot_rdbu(0.5, c);
    CHECK(c[0] > 0.95 && c[1] > 0.95 && c[2] > 0.95);
    rdml_plot_rdbu(1, c);
    CHECK(c[0] > c[2] + 0.2);
}

static void test_viridis(void) {
    double c[3];
    rdml_plot_viridis(0, c);
    CHECK_NEAR(c[0] * 255, 0x44, 0.6);
    CHECK_NEAR(c[1] * 255, 0x01, 0.6);
    CHECK_NEAR(c[2] * 255, 0x54, 0.6);
    rdml_plot_viridis(0.5, c);
    CHECK_NEAR(c[0] * 255, 0x21, 0.6);
    CHECK_NEAR(c[1] * 255, 0x91, 0.6);
    CHECK_NEAR(c[2] * 255, 0x8c, 0.6);
    rdml_plot_viridis(1, c);
    CHECK_NEAR(c[0] * 255, 0xfd, 0.6);
    CHECK_NEAR(c[1] * 255, 0xe7, 0.6);
    CHECK_NEAR(c[2] * 255, 0x25, 0.6);
    /* green rises monotonically: the report's tests read values back from it */
    double prev = -1;
    for (int i = 0; i <= 100; i++) {
        rdml_plot_viridis(i / 100.0, c);
        CHECK(c[1] > prev);
        prev = c[1];
    }
}

typedef struct heat_case {
    float m[4];
} heat_case;

static void draw_heat(cairo_t *cr, void *user) {
    heat_case *h = user;
    rdml_plot_heat(cr, 10, 20, 40, 40, h->m, 2, 2, 0, 1, rdml_plot_viridis);
    rdml_plot_text(cr, 60, 5, "label", 12, 0, 0, 0);
}

static void test_save_and_heat(void) {
    char dir[] = "/tmp/rdml_test_report_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    heat_case h = {{0.0f, 1.0f, 0.5f, NAN}};
    CHECK_EQ_I(rdml_plot_save(&ctx, dir, "heat", 123, 77, draw_heat, &h), RDML_OK);
    char path[256];
    snprintf(path, sizeof path, "%s/heat.png", dir);
    rdml_image im;
    CHECK_EQ_I(rdml_png_read(&ctx, path, 3, &im), RDML_OK);
    CHECK_EQ_I(im.w, 123);
    CHECK_EQ_I(im.h, 77);
    /* quadrant centres: (0,0) value 0, (0,1) value 1, (1,0) value 0.5, (1,1) NaN grey */
    struct {
        int x, y;
        double t;
    } q[3] = {{20, 30, 0}, {40, 30, 1}, {20, 50, 0.5}};
    for (int k = 0; k < 3 && im.px; k++) {
        double c[3];
        rdml_plot_viridis(q[k].t, c);
        const uint8_t *p = im.px + (q[k].y * im.w + q[k].x) * 3;
        for (int ch = 0; ch < 3; ch++) CHECK_NEAR(p[ch], c[ch] * 255, 1.01);
    }
    if (im.px) {
        const uint8_t *p = im.px + (50 * im.w + 40) * 3;
        CHECK_NEAR(p[0], 191, 1.01);
        CHECK(p[0] == p[1] && p[1] == p[2]);
        /* the background outside the heat map stays white */
        p = im.px + (70 * im.w + 5) * 3;
        CHECK(p[0] == 255 && p[1] == 255 && p[2] == 255);
    }
    rdml_image_free(&im);
    snprintf(path, sizeof path, "%s/heat.svg", dir);
    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    char buf[4096] = "";
    if (f) {
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        buf[n] = '\0';
        fclose(f);
    }
    CHECK_STR_HAS(buf, "<svg");
    CHECK_STR_HAS(buf, "width=\"123px\"");
    CHECK_STR_HAS(buf, "height=\"77px\"");
    unlink(path);
    snprintf(path, sizeof path, "%s/heat.png", dir);
    unlink(path);
    /* an unwritable directory is an error naming the file */
    rdml_ctx_init(&ctx);
    CHECK(rdml_plot_save(&ctx, "/nonexistent/dir", "x", 10, 10, draw_heat, &h) == RDML_EIO);
    CHECK_STR_HAS(ctx.msg, "/nonexistent/dir/x.svg");
    rmdir(dir);
}

static void test_html_helpers(void) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    rdml_html_escape(f, "a<b & \"c\">");
    fclose(f);
    CHECK(strcmp(buf, "a&lt;b &amp; &quot;c&quot;&gt;") == 0);
    free(buf);
    char s[64];
    rdml_report_safe_name("V1v+V1d", s, sizeof s);
    CHECK(strcmp(s, "V1v_V1d") == 0);
    rdml_report_safe_name("class:Faces/../x", s, sizeof s);
    CHECK(strcmp(s, "class_Faces____x") == 0);
}

int main(void) {
    RUN(test_ticks);
    RUN(test_tick_labels);
    RUN(test_block_rule);
    RUN(test_blocks_match_reference);
    RUN(test_blocks_permuted);
    RUN(test_cluster_order);
    RUN(test_rdbu);
    RUN(test_viridis);
    RUN(test_save_and_heat);
    RUN(test_html_helpers);
    /* release cairo's and fontconfig's caches so that leak checkers (tools/test.sh runs this
     * test under LeakSanitizer and valgrind) see only this test's allocations; fontconfig is
     * loaded as cairo's dependency, so its FcFini is looked up rather than linked */
    cairo_debug_reset_static_data();
    void *fc = dlopen("libfontconfig.so.1", RTLD_LAZY);
    if (fc) {
        void (*fc_fini)(void);
        *(void **)&fc_fini = dlsym(fc, "FcFini");
        if (fc_fini) fc_fini();
        dlclose(fc);
    }
    return test_summary();
}
