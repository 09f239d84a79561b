/* Unit tests of the synthetic dataset generator: renders are pure functions of (seed, NSD
 * id), colour planting obeys the paper's 0.7 rule in both directions, parameter checks give
 * readable messages, the NSD-id plan has the promised sharing and no collisions, the ROI
 * layout has the release's names and an empty ROI but never an empty V1, the collective
 * writer (on MPI_COMM_SELF) produces the layout, is byte-reproducible, standardises each
 * vertex exactly when noise = 0, refuses to overwrite and leaves no temporary folder. */
#include <mpi.h>
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test.h"
#include "dataset/synth_internal.h"
#include "rdml/config.h"
#include "rdml/npy.h"
#include "rdml/pymap.h"
#include "rdml/synth.h"

static char tmpdir[256];

static void test_render_deterministic(void) {
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    for (int64_t nsd = 0; nsd < 12; nsd++) {
        rdml_image a, b, c;
        syn_scene sa, sb, sc;
        CHECK_EQ_I(syn_render(&ctx, 7, 0.3, nsd * 997, 64, &a, &sa), RDML_OK);
        CHECK_EQ_I(syn_render(&ctx, 7, 0.3, nsd * 997, 64, &b, &sb), RDML_OK);
        CHECK_EQ_I(syn_render(&ctx, 8, 0.3, nsd * 997, 64, &c, &sc), RDML_OK);
        CHECK(a.w == 64 && a.h == 64 && a.channels == 3);
        CHECK(memcmp(a.px, b.px, 64 * 64 * 3) == 0);
        CHECK(memcmp(a.px, c.px, 64 * 64 * 3) != 0);
        CHECK_EQ_I(sa.obj[0].category, sb.obj[0].category);
        CHECK(sa.nobj >= 1 && sa.nobj <= SYN_MAXOBJ);
        rdml_image_free(&a);
        rdml_image_free(&b);
        rdml_image_free(&c);
    }
    /* Different ids differ; the scene (not the pixels) does not depend on the size. */
    rdml_image a, b;
    syn_scene sa, sb;
    CHECK_EQ_I(syn_render(&ctx, 7, 0.3, 5, 48, &a, &sa), RDML_OK);
    CHECK_EQ_I(syn_render(&ctx, 7, 0.3, 6, 48, &b, &sb), RDML_OK);
    CHECK(memcmp(a.px, b.px, 48 * 48 * 3) != 0);
    rdml_image_free(&b);
    CHECK_EQ_I(syn_render(&ctx, 7, 0.3, 5, 200, &b, &sb), RDML_OK);
    CHECK_EQ_I(sa.nobj, sb.nobj);
    CHECK_NEAR(sa.obj[0].r, sb.obj[0].r, 0);
    CHECK_EQ_I(sa.planted_color, sb.planted_color);
    rdml_image_free(&a);
    rdml_image_free(&b);
}

static void test_color_rule(void) {
    /* Hand-made pixels: 70 of 100 red-nearest passes, 69 does not; ties are unclassified. */
    uint8_t px[300];
    for (int i = 0; i < 100; i++) {
        uint8_t *q = px + 3 * i;
        q[0] = i < 70 ? 200 : 90;
        q[1] = i < 70 ? 199 : 90; /* (200,199,0) is still nearest to red */
        q[2] = i < 70 ? 0 : 90;   /* gray: a three-way tie */
    }
    double f = 0;
    CHECK_EQ_I(rdml_synth_color_class(px, 100, &f), 1);
    CHECK_NEAR(f, 0.70, 1e-12);
    px[0] = 199; /* (199,199,0): tie between red and green */
    CHECK_EQ_I(rdml_synth_color_class(px, 100, &f), 0);
    CHECK_NEAR(f, 0.69, 1e-12);
    for (int i = 0; i < 100; i++) {
        px[3 * i] = 0;
        px[3 * i + 1] = 10;
        px[3 * i + 2] = (uint8_t)(i < 80 ? 11 : 0);
    }
    CHECK_EQ_I(rdml_synth_color_class(px, 100, &f), 3);
    CHECK_NEAR(f, 0.80, 1e-12);

    /* Planted images pass with a margin, unplanted ones never do. */
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    int seen[4] = {0};
    for (int64_t nsd = 0; nsd < 60; nsd++) {
        rdml_image im;
        syn_scene sc;
        CHECK_EQ_I(syn_render(&ctx, 3, 1.0, nsd, 32, &im, &sc), RDML_OK);
        CHECK(sc.planted_color >= 1 && sc.planted_color <= 3);
        CHECK_EQ_I(rdml_synth_color_class(im.px, 32 * 32, &f), sc.planted_color);
        CHECK(f >= 0.72);
        seen[sc.planted_color]++;
        rdml_image_free(&im);
        CHECK_EQ_I(syn_render(&ctx, 3, 0.0, nsd, 32, &im, &sc), RDML_OK);
        CHECK_EQ_I(sc.planted_color, 0);
        CHECK_EQ_I(rdml_synth_color_class(im.px, 32 * 32, &f), 0);
        CHECK(f < 0.68);
        rdml_image_free(&im);
    }
    CHECK(seen[1] > 0 && seen[2] > 0 && seen[3] > 0);
}

static void expect_check_error(rdml_synth_params p, const char *needle) {
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    CHECK_EQ_I(rdml_synth_check(&ctx, &p), RDML_ECONFIG);
    CHECK_STR_HAS(ctx.msg, needle);
}

static void test_param_checks(void) {
    rdml_synth_params d, p;
    rdml_synth_defaults(&d);
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    CHECK_EQ_I(rdml_synth_check(&ctx, &d), RDML_OK);
    p = d; p.subjects = 9; expect_check_error(p, "synth.subjects = 9");
    p = d; p.images = 5; expect_check_error(p, "synth.images = 5");
    p = d; p.images = 12000; expect_check_error(p, "4-digit");
    p = d; p.image_size = 8; expect_check_error(p, "synth.image_size = 8");
    p = d; p.rh_vertices = 200000; expect_check_error(p, "synth.rh_vertices = 200000");
    p = d; p.noise = -0.5; expect_check_error(p, "synth.noise = -0.5");
    p = d; p.color_fraction = 1.5; expect_check_error(p, "synth.color_fraction = 1.5");
    p = d; p.shared_fraction = 0.0 / 0.0; expect_check_error(p, "synth.shared_fraction");
    p = d; p.subjects = 8; p.images = 9841; p.shared_fraction = 0;
    expect_check_error(p, "distinct NSD ids");
    p.shared_fraction = 0.2; /* enough sharing: fits in 73000 ids */
    CHECK_EQ_I(rdml_synth_check(&ctx, &p), RDML_OK);
}

static void test_plan(void) {
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    rdml_synth_params p;
    rdml_synth_defaults(&p);
    p.subjects = 4;
    p.images = 500;
    p.shared_fraction = 0.2;
    syn_plan plan;
    CHECK_EQ_I(syn_plan_make(&ctx, &p, &plan), RDML_OK);
    CHECK_EQ_I(plan.nshared, 100);
    CHECK_EQ_I(plan.sub[0].n, 500);
    CHECK_EQ_I(plan.sub[2].n, 461); /* 500 * 9082 / 9841 */
    CHECK_EQ_I(plan.sub[3].n, 446); /* 500 * 8779 / 9841 */
    CHECK_EQ_I(plan.sub[3].ntest, 50); /* 20 * 395 / 159 */
    static unsigned char owner[73000];
    memset(owner, 0, sizeof owner);
    int64_t in_all = 0;
    for (int s = 0; s < 4; s++) {
        const syn_subject_plan *sp = &plan.sub[s];
        for (int64_t i = 0; i < sp->n; i++) {
            CHECK(sp->nsd[i] >= 0 && sp->nsd[i] < 73000);
            if (i) CHECK(sp->nsd[i] > sp->nsd[i - 1]); /* ascending, no repeats */
            owner[sp->nsd[i]] |= (unsigned char)(1 << s);
        }
        for (int64_t i = 0; i < sp->ntest; i++) CHECK(owner[sp->test_nsd[i]] == 0);
    }
    for (int64_t i = 0; i < 73000; i++) {
        if (owner[i] == 15) in_all++;
        /* Every id is either in all subjects or in exactly one. */
        CHECK(owner[i] == 0 || owner[i] == 15 || (owner[i] & (owner[i] - 1)) == 0);
    }
    CHECK_EQ_I(in_all, 100);
    /* Shared ids sit at different rows in different subjects. */
    int64_t same_row = 0;
    for (int64_t i = 0; i < plan.sub[3].n; i++)
        if (plan.sub[0].nsd[i] == plan.sub[3].nsd[i]) same_row++;
    CHECK(same_row < 10);
    syn_plan_free(&plan);
}

static void test_layout(void) {
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    CHECK(strcmp(syn_roi_name(0, 7), "hV4") == 0);
    CHECK(strcmp(syn_roi_name(2, 5), "aTL-faces") == 0);
    CHECK(strcmp(syn_class_tag(5), "streams") == 0);
    for (int s = 1; s <= 8; s++) {
        int eh, ec, ecode;
        syn_empty_roi(s, &eh, &ec, &ecode);
        CHECK(ec != 0);
        for (int h = 0; h < 4; h++) {
            syn_hemi hm;
            /* hemi h % 2, at the smallest allowed size and a typical one */
            CHECK_EQ_I(syn_hemi_make(&ctx, 11, s, h % 2, h < 2 ? 300 : 50, &hm), RDML_OK);
            for (int c = 0; c < SYN_NCLASS; c++)
                for (int code = 1; code <= syn_class_nroi(c); code++) {
                    int64_t n = 0;
                    for (int64_t j = 0; j < hm.nv; j++) n += hm.label[c][j] == code;
                    if (c == ec && code == ecode && h % 2 == eh)
                        CHECK_EQ_I(n, 0);
                    else
                        CHECK(n > 0);
                }
            for (int64_t j = 0; j < hm.nv; j++) {
                CHECK(hm.fsavg[j] >= 0 && hm.fsavg[j] < SYN_FSAVERAGE);
                if (j) CHECK(hm.fsavg[j] > hm.fsavg[j - 1]);
            }
            syn_hemi_free(&hm);
        }
    }
}

static int read_file(const char *path, unsigned char **buf, long *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    fseek(f, 0, SEEK_END);
    *len = ftell(f);
    fseek(f, 0, SEEK_SET);
    *buf = malloc((size_t)*len + 1);
    size_t got = fread(*buf, 1, (size_t)*len, f);
    fclose(f);
    return got == (size_t)*len ? 0 : -1;
}

static int same_file(const char *a, const char *b) {
    unsigned char *x = NULL, *y = NULL;
    long lx = 0, ly = 0;
    int ok = read_file(a, &x, &lx) == 0 && read_file(b, &y, &ly) == 0 && lx == ly &&
             memcmp(x, y, (size_t)lx) == 0;
    free(x);
    free(y);
    return ok;
}

static int count_entries(const char *dir, const char *prefix) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0) n++;
    closedir(d);
    return n;
}

static void test_write(void) {
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    ctx.log_level = RDML_LOG_ERROR;
    rdml_synth_params p;
    rdml_synth_defaults(&p);
    p.subjects = 2;
    p.images = 24;
    p.test_images = 3;
    p.image_size = 24;
    p.lh_vertices = 60;
    p.rh_vertices = 70;
    p.noise = 0;
    p.seed = 5;
    char a[512], b[512], path[1024], path2[1024];
    snprintf(a, sizeof a, "%s/a", tmpdir);
    snprintf(b, sizeof b, "%s/deeper/b", tmpdir);
    CHECK_EQ_I(rdml_synth_write(&ctx, MPI_COMM_SELF, &p, a), RDML_OK);
    CHECK_EQ_I(rdml_synth_write(&ctx, MPI_COMM_SELF, &p, b), RDML_OK);
    CHECK_EQ_I(count_entries(tmpdir, "a.tmp"), 0);
    snprintf(path, sizeof path, "%s/subj01/training_split/training_images", a);
    CHECK_EQ_I(count_entries(path, "train-"), 24);
    snprintf(path, sizeof path, "%s/subj02/test_split/test_images", a);
    CHECK_EQ_I(count_entries(path, "test-"), 3);
    static const char *const rel[] = {
        "subj01/training_split/training_fmri/lh_training_fmri.npy",
        "subj02/training_split/training_fmri/rh_training_fmri.npy",
        "subj02/roi_masks/lh.floc-faces_challenge_space.npy",
        "subj01/roi_masks/mapping_streams.npy",
        "synth_truth/subj02_color.npy"};
    for (size_t i = 0; i < sizeof rel / sizeof rel[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", a, rel[i]);
        snprintf(path2, sizeof path2, "%s/%s", b, rel[i]);
        CHECK(same_file(path, path2));
    }
    /* noise = 0: every vertex is exactly standardised over the images. */
    rdml_npy f;
    snprintf(path, sizeof path, "%s/%s", a, rel[0]);
    CHECK_EQ_I(rdml_npy_open(&ctx, path, 0, &f), RDML_OK);
    CHECK_EQ_I(f.dtype, RDML_DT_F4);
    CHECK_EQ_I(f.shape[0], 24);
    CHECK_EQ_I(f.shape[1], 60);
    double *x = malloc(24 * 60 * sizeof *x);
    CHECK_EQ_I(rdml_npy_read_f64(&ctx, &f, 0, 24, NULL, 60, x), RDML_OK);
    rdml_npy_close(&f);
    double worst_mean = 0, worst_sd = 0;
    for (int v = 0; v < 60; v++) {
        double m = 0, s2 = 0;
        for (int i = 0; i < 24; i++) m += x[i * 60 + v] / 24;
        for (int i = 0; i < 24; i++) s2 += (x[i * 60 + v] - m) * (x[i * 60 + v] - m) / 24;
        if (fabs(m) > worst_mean) worst_mean = fabs(m);
        if (fabs(sqrt(s2) - 1) > worst_sd) worst_sd = fabs(sqrt(s2) - 1);
    }
    free(x);
    CHECK(worst_mean < 1e-5);
    CHECK(worst_sd < 1e-5);
    /* noise = 0: every vertex's noise ceiling is 100 % (all variance is signal); the true
     * features are the standardised ones: mean 0 and sd 1 (or a constant 0) per column. */
    snprintf(path, sizeof path, "%s/subj01/training_split/training_fmri/rh_noise_ceiling.npy", a);
    CHECK_EQ_I(rdml_npy_open(&ctx, path, 0, &f), RDML_OK);
    CHECK(f.ndim == 1 && f.shape[0] == 70 && f.dtype == RDML_DT_F4);
    float nc[70];
    CHECK_EQ_I(rdml_npy_read_f32(&ctx, &f, 0, 70, NULL, 1, nc), RDML_OK);
    rdml_npy_close(&f);
    int nc_ok = 1;
    for (int v = 0; v < 70; v++) nc_ok &= nc[v] == 100.0f;
    CHECK(nc_ok);
    snprintf(path, sizeof path, "%s/synth_truth/subj02_features.npy", a);
    CHECK_EQ_I(rdml_npy_open(&ctx, path, 0, &f), RDML_OK);
    CHECK(f.ndim == 2 && f.shape[0] == 24 && f.shape[1] == SYN_NFEAT);
    double *z = malloc(24 * SYN_NFEAT * sizeof *z);
    CHECK_EQ_I(rdml_npy_read_f64(&ctx, &f, 0, 24, NULL, SYN_NFEAT, z), RDML_OK);
    rdml_npy_close(&f);
    double zworst = 0;
    for (int k = 0; k < SYN_NFEAT; k++) {
        double m = 0, s2 = 0;
        for (int i = 0; i < 24; i++) m += z[i * SYN_NFEAT + k] / 24;
        for (int i = 0; i < 24; i++) s2 += (z[i * SYN_NFEAT + k] - m) * (z[i * SYN_NFEAT + k] - m) / 24;
        double e = fabs(m) + (s2 > 0 ? fabs(sqrt(s2) - 1) : 0);
        if (e > zworst) zworst = e;
    }
    free(z);
    CHECK(zworst < 1e-5);
    /* The mapping file reads back with the release's names. */
    rdml_pymap m;
    snprintf(path, sizeof path, "%s/subj01/roi_masks/mapping_prf-visualrois.npy", a);
    CHECK_EQ_I(rdml_pymap_read(&ctx, path, &m), RDML_OK);
    CHECK_EQ_I(m.n, 8);
    CHECK(m.n == 8 && strcmp(m.names[0], "Unknown") == 0 && strcmp(m.names[7], "hV4") == 0);
    rdml_pymap_free(&m);

    /* Refuses to overwrite, names the folder, and leaves the dataset untouched. */
    snprintf(path, sizeof path, "%s/%s", a, rel[0]);
    snprintf(path2, sizeof path2, "%s/%s", b, rel[0]);
    rdml_ctx_clear(&ctx);
    CHECK_EQ_I(rdml_synth_write(&ctx, MPI_COMM_SELF, &p, a), RDML_EIO);
    CHECK_STR_HAS(ctx.msg, "subj01 already exists");
    CHECK(same_file(path, path2));
    CHECK_EQ_I(count_entries(a, ".synth-tmp"), 0);
    /* An existing folder without subjects is filled in place. */
    snprintf(path, sizeof path, "%s/c", tmpdir);
    mkdir(path, 0777);
    rdml_ctx_clear(&ctx);
    p.subjects = 1;
    CHECK_EQ_I(rdml_synth_write(&ctx, MPI_COMM_SELF, &p, path), RDML_OK);
    CHECK_EQ_I(count_entries(path, "subj"), 1);
    CHECK_EQ_I(count_entries(path, ".synth-tmp"), 0);
    snprintf(path2, sizeof path2, "%s/synth_truth", path);
    CHECK_EQ_I(count_entries(path2, "subj01_"), 5); /* category, color, test_*, features */
    /* An output path under a regular file: a readable error, nothing left behind. */
    snprintf(path, sizeof path, "%s/plainfile", tmpdir);
    FILE *pf = fopen(path, "w");
    if (pf) fclose(pf);
    snprintf(path2, sizeof path2, "%s/plainfile/out", tmpdir);
    rdml_ctx_clear(&ctx);
    CHECK_EQ_I(rdml_synth_write(&ctx, MPI_COMM_SELF, &p, path2), RDML_EIO);
    CHECK_STR_HAS(ctx.msg, "plainfile");
    CHECK_STR_HAS(ctx.msg, "not a folder");
    CHECK_EQ_I(count_entries(tmpdir, "plainfile"), 1);
    /* A bad parameter fails before anything is created. */
    rdml_ctx_clear(&ctx);
    p.images = 3;
    snprintf(path, sizeof path, "%s/bad", tmpdir);
    CHECK_EQ_I(rdml_synth_write(&ctx, MPI_COMM_SELF, &p, path), RDML_ECONFIG);
    CHECK_EQ_I(count_entries(tmpdir, "bad"), 0);
}

static void test_from_config(void) {
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    rdml_config *cfg = NULL;
    CHECK_EQ_I(rdml_config_create(&ctx, &cfg), RDML_OK);
    if (!cfg) return;
    CHECK_EQ_I(rdml_config_set(&ctx, cfg, "synth.images=123"), RDML_OK);
    CHECK_EQ_I(rdml_config_set(&ctx, cfg, "synth.vary=false"), RDML_OK);
    CHECK_EQ_I(rdml_config_set(&ctx, cfg, "run.seed=7"), RDML_OK);
    rdml_synth_params p;
    CHECK_EQ_I(rdml_synth_from_config(&ctx, cfg, &p), RDML_OK);
    CHECK_EQ_I(p.images, 123);
    CHECK_EQ_I(p.vary, 0);
    CHECK_EQ_I(p.seed, 7);
    CHECK_EQ_I(rdml_synth_check(&ctx, &p), RDML_OK);
    rdml_config_destroy(&cfg);
}

static void rm_rf(const char *path) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", path);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/rdml_test_synth_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(test_render_deterministic);
    RUN(test_color_rule);
    RUN(test_param_checks);
    RUN(test_plan);
    RUN(test_layout);
    RUN(test_write);
    RUN(test_from_config);
    rm_rf(tmpdir);
    int rc = test_summary();
    MPI_Finalize();
    return rc;
}
