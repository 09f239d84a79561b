/* Tests of rdml/zoo.h without weights: the torchvision layer lists and shapes (as
 * torchvision 0.14 prints them for a 224 x 224 input), pooling, the random projection's
 * scaling and its streamed form (a matrix too large to keep, drawn per call in blocks) equal
 * to the stored one, and the catalogue text. The numerical comparison with torchvision is
 * tests/cli/test_embed_zoo.sh, which also calls this binary as
 *   test_zoo --preprocess OUT.npy PNG...
 * to write rdmlearn's preprocessed images (N x 3 x 224 x 224 float32) for a grey-level check
 * against torchvision's transform. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rdml/core.h"
#include "rdml/npy.h"
#include "rdml/png.h"
#include "rdml/pth.h"
#include "rdml/zoo.h"
#include "test.h"

static const rdml_zoo_layer *layer(const rdml_convnet *m, const char *name) {
    int64_t i = rdml_convnet_find(m, name);
    return i >= 0 ? rdml_convnet_layer(m, i) : NULL;
}

static void check_shape(const rdml_convnet *m, const char *name, int64_t c, int64_t h, int64_t w) {
    const rdml_zoo_layer *L = layer(m, name);
    CHECK(L != NULL);
    if (!L) {
        fprintf(stderr, "  no layer %s\n", name);
        return;
    }
    if (L->c != c || L->h != h || L->w != w)
        fprintf(stderr, "  %s: %lld x %lld x %lld, expected %lld x %lld x %lld\n", name,
                (long long)L->c, (long long)L->h, (long long)L->w, (long long)c, (long long)h,
                (long long)w);
    CHECK(L->c == c && L->h == h && L->w == w);
}

static void test_layers(void) {
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    rdml_convnet *m = NULL;
    CHECK(rdml_convnet_create(&ctx, RDML_ZOO_RESNET50, 1000, &m) == RDML_OK);
    check_shape(m, "bn1", 64, 112, 112);
    check_shape(m, "maxpool", 64, 56, 56);
    check_shape(m, "layer1", 256, 56, 56);
    check_shape(m, "layer2.0", 512, 28, 28);
    check_shape(m, "layer3.5", 1024, 14, 14);
    check_shape(m, "layer4", 2048, 7, 7);
    check_shape(m, "avgpool", 2048, 1, 1);
    check_shape(m, "fc", 1000, 1, 1);
    CHECK(layer(m, "fc")->vec && !layer(m, "layer4")->vec);
    CHECK(rdml_convnet_find(m, "layer3.6") < 0 && rdml_convnet_find(m, "conv1") < 0);
    CHECK(layer(m, "layer1")->depth < layer(m, "layer2")->depth);
    char list[4096];
    rdml_convnet_layer_list(m, list, sizeof list);
    CHECK_STR_HAS(list, "bn1, relu, maxpool, layer1.0, layer1.1, layer1.2, layer1, layer2.0");
    CHECK_STR_HAS(list, "layer4.2, layer4, avgpool, fc");
    rdml_convnet_layer_list(m, list, 40); /* truncated, terminated */
    CHECK(strlen(list) < 40 && strstr(list, "..."));
    rdml_convnet_free(&m);

    CHECK(rdml_convnet_create(&ctx, RDML_ZOO_RESNET18, 10, &m) == RDML_OK);
    check_shape(m, "layer1.1", 64, 56, 56);
    check_shape(m, "layer4.1", 512, 7, 7);
    check_shape(m, "fc", 10, 1, 1);
    CHECK(rdml_convnet_find(m, "layer1.2") < 0);
    rdml_convnet_free(&m);

    CHECK(rdml_convnet_create(&ctx, RDML_ZOO_ALEXNET, 1000, &m) == RDML_OK);
    check_shape(m, "features.0", 64, 55, 55);
    check_shape(m, "features.2", 64, 27, 27);
    check_shape(m, "features.12", 256, 6, 6);
    check_shape(m, "avgpool", 256, 6, 6);
    check_shape(m, "classifier.0", 9216, 1, 1);
    check_shape(m, "classifier", 1000, 1, 1);
    rdml_convnet_free(&m);

    CHECK(rdml_convnet_create(&ctx, RDML_ZOO_VGG16, 1000, &m) == RDML_OK);
    check_shape(m, "features.29", 512, 14, 14);
    check_shape(m, "features.30", 512, 7, 7);
    check_shape(m, "classifier.0", 4096, 1, 1);
    CHECK(rdml_convnet_nlayers(m) == 31 + 1 + 1 + 7 + 1);
    rdml_convnet_free(&m);

    rdml_zoo_arch a;
    CHECK(rdml_zoo_arch_parse(&ctx, "resnet34", &a) == RDML_ECONFIG);
    CHECK_STR_HAS(ctx.msg, "alexnet, vgg16, resnet18, resnet50");
}

static void test_pooling(void) {
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    rdml_zoo_layer L = {"x", 2, 2, 3, 0, 0, 0, 0};
    float x[2 * 12], out[2 * 12];
    for (int i = 0; i < 24; i++) x[i] = (float)i;
    CHECK(rdml_pool_resolve(RDML_POOL_AUTO, &L) == RDML_POOL_GAP);
    CHECK_EQ_I(rdml_pool_dims(RDML_POOL_FLATTEN, &L, 0), 12);
    CHECK_EQ_I(rdml_pool_dims(RDML_POOL_CLS, &L, 0), -1);
    CHECK(rdml_zoo_pool(&ctx, RDML_POOL_GAP, &L, 2, x, NULL, 0, out) == RDML_OK);
    CHECK_NEAR(out[0], 2.5, 1e-6); /* mean of 0..5 */
    CHECK_NEAR(out[3], 20.5, 1e-6); /* item 1, channel 1: mean of 18..23 */
    CHECK(rdml_zoo_pool(&ctx, RDML_POOL_MEAN, &L, 2, x, NULL, 0, out) == RDML_ECONFIG);
    CHECK_STR_HAS(ctx.msg, "pooling = mean does not apply to layer x");
    rdml_ctx_clear(&ctx);
    rdml_pool p;
    CHECK(rdml_pool_parse(&ctx, "avg", &p) == RDML_ECONFIG);
    CHECK_STR_HAS(ctx.msg, "[embed] pooling = avg is not one of auto, cls, mean, gap, flatten, project");
}

/* The projection: entries N(0, 1/dims) (so E[sum_i R_ij^2] = 1: norms are kept), the same
 * for the same seed and key, different for another key; the streamed form equals the stored
 * one. */
static void test_projection(void) {
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    const int64_t D = 2500, O = 300, B = 3;
    rdml_projection a, b, c;
    CHECK(rdml_projection_make(&ctx, 42, "layer3", D, O, &a) == RDML_OK);
    CHECK(rdml_projection_make(&ctx, 42, "layer3", D, O, &b) == RDML_OK);
    CHECK(rdml_projection_make(&ctx, 42, "layer4", D, O, &c) == RDML_OK);
    CHECK(a.r && b.r && c.r);
    CHECK(memcmp(a.r, b.r, (size_t)(D * O) * sizeof *a.r) == 0);
    CHECK(memcmp(a.r, c.r, (size_t)(D * O) * sizeof *a.r) != 0);
    double ss = 0;
    for (int64_t i = 0; i < D * O; i++) ss += (double)a.r[i] * a.r[i];
    CHECK_NEAR(ss / (double)D, 1.0, 0.01); /* column norms^2 average 1 */
    rdml_zoo_layer L = {"layer3", 25, 10, 10, 0, 0, 0, 0};
    float *x = malloc((size_t)(B * D) * sizeof *x), *y1 = malloc((size_t)(B * O) * sizeof *y1),
          *y2 = malloc((size_t)(B * O) * sizeof *y2);
    for (int64_t i = 0; i < B * D; i++) x[i] = (float)((i * 37 % 101) - 50) / 50.0f;
    CHECK(rdml_zoo_pool(&ctx, RDML_POOL_PROJECT, &L, B, x, &a, O, y1) == RDML_OK);
    free(b.r);
    b.r = NULL; /* the streamed form */
    CHECK(rdml_zoo_pool(&ctx, RDML_POOL_PROJECT, &L, B, x, &b, O, y2) == RDML_OK);
    double worst = 0, big = 0;
    for (int64_t i = 0; i < B * O; i++) {
        double d = y1[i] - y2[i];
        worst = d < 0 ? -d > worst ? -d : worst : d > worst ? d : worst;
        big = y1[i] > big ? y1[i] : -y1[i] > big ? -y1[i] : big;
    }
    CHECK(big > 0.1 && worst <= 1e-5 * big);
    CHECK(rdml_zoo_pool(&ctx, RDML_POOL_PROJECT, &L, B, x, &a, O + 1, y1) == RDML_EINTERNAL);
    free(x);
    free(y1);
    free(y2);
    rdml_projection_free(&a);
    rdml_projection_free(&b);
    rdml_projection_free(&c);
}

static void test_catalogue(void) {
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    char *t = NULL;
    CHECK(rdml_zoo_catalogue(&ctx, "vgg16", &t) == RDML_OK);
    CHECK_STR_HAS(t, "features.30    512 x 7 x 7");
    CHECK_STR_HAS(t, "vgg16-397923af.pth");
    CHECK(!strstr(t, "resnet50"));
    free(t);
    CHECK(rdml_zoo_catalogue(&ctx, "resnet", &t) == RDML_EUSAGE && !t);
}

static uint8_t *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)sz + 1);
    *n = b ? fread(b, 1, (size_t)sz, f) : 0;
    fclose(f);
    return b;
}

/* The state-dict pickle machine on torch.save's own data.pkl (protocols 2 and 4: the fuzz
 * seeds, 4 tensors), every truncation of it (refused with a message, never a crash), and
 * hand-made hostile pickles. */
static void test_pth_pickle(void) {
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    ctx.log_level = RDML_LOG_QUIET;
    const char *src = getenv("RDML_SRC");
    const char *seeds[] = {"state_dict_p2.pkl", "state_dict_p4.pkl"};
    for (int s = 0; s < 2; s++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/tests/fuzz/corpus/pth/%s", src ? src : "../..", seeds[s]);
        size_t n = 0;
        uint8_t *b = slurp(path, &n);
        CHECK(b && n > 100);
        if (!b) continue;
        int64_t nt = -1;
        CHECK(rdml_pth_parse_pickle(&ctx, seeds[s], b, n, &nt) == RDML_OK);
        CHECK_EQ_I(nt, 4);
        int refused = 0;
        for (size_t k = 0; k < n; k++) {
            rdml_ctx_clear(&ctx);
            refused += rdml_pth_parse_pickle(&ctx, seeds[s], b, k, &nt) != RDML_OK && ctx.msg[0] && nt == 0;
        }
        CHECK_EQ_I(refused, (long long)n);
        free(b);
    }
#define PK(lit) lit, sizeof lit - 1
    static const struct { const char *pkl; size_t len; const char *msg; } bad[] = {
        {PK("\x80\x02" "cos\nsystem\nX\x02\x00\x00\x00ls\x85R."), "the global os.system (GLOBAL at byte 2"},
        {PK("\x80\x02" "cbuiltins\neval\n)R."), "the global builtins.eval"},
        {PK("\x80\x02" "ccollections\nOrderedDict\nK\x01\x85R."), "OrderedDict is called with arguments"},
        {PK("\x80\x02" "ctorch\nFloatStorage\n)R."), "REDUCE calls a storage type"},
        {PK("\x80\x02}X\x01\x00\x00\x00" "aK\x01s."), "entry 'a' is not a tensor"},
        {PK("\x80\x02}\xff."), "pickle opcode '\\xff' (unknown opcode) at byte 3"},
        {PK("\x80\x02](K\x01" "e."), "the pickle does not hold a dict of tensors"},
    };
#undef PK

    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        rdml_ctx_clear(&ctx);
        int64_t nt = -1;
        CHECK(rdml_pth_parse_pickle(&ctx, "crafted", (const uint8_t *)bad[i].pkl, bad[i].len, &nt) == RDML_EFORMAT);
        CHECK_STR_HAS(ctx.msg, bad[i].msg);
        CHECK_STR_HAS(ctx.msg, "nothing was");
    }
}

/* ViT token sequences (B x T x D): cls is token 0, mean skips the class token and registers,
 * gap does not apply, auto is cls; the ViT layer lists name the publishers' modules. */
static void test_token_pooling(void) {
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    rdml_zoo_layer L = {"blocks.3", 2, 4, 1, 0, 3, 1, 2}; /* D 2, T 4: cls, 1 register, 2 patches */
    const float x[2 * 4 * 2] = {1, 2, 100, 200, 3, 5, 7, 9, /* image 0 */
                                -1, 0, 50, 50, 2, 2, 4, 0};
    float out[4];
    CHECK(rdml_pool_resolve(RDML_POOL_AUTO, &L) == RDML_POOL_CLS);
    CHECK_EQ_I(rdml_pool_dims(RDML_POOL_MEAN, &L, 0), 2);
    CHECK_EQ_I(rdml_pool_dims(RDML_POOL_FLATTEN, &L, 0), 8);
    CHECK_EQ_I(rdml_pool_dims(RDML_POOL_GAP, &L, 0), -1);
    CHECK(rdml_zoo_pool(&ctx, RDML_POOL_CLS, &L, 2, x, NULL, 0, out) == RDML_OK);
    CHECK(out[0] == 1 && out[1] == 2 && out[2] == -1 && out[3] == 0);
    CHECK(rdml_zoo_pool(&ctx, RDML_POOL_MEAN, &L, 2, x, NULL, 0, out) == RDML_OK);
    CHECK(out[0] == 5 && out[1] == 7 && out[2] == 3 && out[3] == 1);
    CHECK(rdml_zoo_pool(&ctx, RDML_POOL_GAP, &L, 2, x, NULL, 0, out) == RDML_ECONFIG);
    CHECK_STR_HAS(ctx.msg, "hint: cls, mean, flatten or project");
    rdml_convnet *m = NULL;
    CHECK(rdml_convnet_create(&ctx, RDML_ZOO_VIT_B_16, 1000, &m) == RDML_OK);
    CHECK_EQ_I(rdml_convnet_nlayers(m), 14);
    CHECK_EQ_I(rdml_convnet_find(m, "encoder.layers.encoder_layer_11"), 11);
    CHECK_EQ_I(rdml_convnet_find(m, "heads"), 13);
    CHECK_EQ_I(rdml_convnet_layer(m, 12)->h, 197);
    rdml_convnet_free(&m);
    CHECK(rdml_convnet_create(&ctx, RDML_ZOO_DINOV2, 1000, &m) == RDML_OK);
    CHECK_EQ_I(rdml_convnet_find(m, "norm"), 12);
    CHECK_EQ_I(rdml_convnet_layer(m, 12)->h, 257);
    rdml_convnet_free(&m);
}

/* rdmlearn's torchvision (or, with --preprocess-dinov2, DINOv2) preprocessing of PNGs into
 * OUT.npy (N x 3 x 224 x 224). */
static int preprocess(int argc, char **argv) {
    const rdml_zoo_arch arch = strcmp(argv[1], "--preprocess-dinov2") == 0 ? RDML_ZOO_DINOV2
                                                                           : RDML_ZOO_RESNET50;
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    const int64_t n = argc - 3, per = 3 * RDML_ZOO_IMAGE * RDML_ZOO_IMAGE;
    float *px = malloc((size_t)(n * per) * sizeof *px);
    int rc = px ? RDML_OK : 1;
    for (int64_t i = 0; i < n && !rc; i++) {
        rdml_image im = {0};
        rc = rdml_png_read(&ctx, argv[3 + i], 3, &im);
        if (!rc) rc = rdml_zoo_preprocess(&ctx, arch, &im, px + i * per);
        rdml_image_free(&im);
    }
    int64_t shape[4] = {n, 3, RDML_ZOO_IMAGE, RDML_ZOO_IMAGE};
    if (!rc) rc = rdml_npy_save(&ctx, argv[2], RDML_DT_F4, 0, 4, shape, px);
    if (rc) fprintf(stderr, "%s\n", ctx.msg);
    free(px);
    return rc ? 1 : 0;
}

int main(int argc, char **argv) {
    if (argc >= 4 && strncmp(argv[1], "--preprocess", 12) == 0) return preprocess(argc, argv);
    RUN(test_token_pooling);
    RUN(test_layers);
    RUN(test_pooling);
    RUN(test_projection);
    RUN(test_catalogue);
    RUN(test_pth_pickle);
    return test_summary();
}
