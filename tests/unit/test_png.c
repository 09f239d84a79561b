/* Tests of rdml/png.h: every fixture of tests/fixtures/png (made by tools/make_png_fixtures.py
 * with Pillow as the reference) decodes to Pillow's pixels for want_channels 0..4; missing,
 * non-PNG, truncated, CRC-corrupted and zlib-corrupted files give errors naming the file; written PNGs of 1..4
 * channels read back identically with the expected libpng header fields, and no temporary file
 * is left behind.
 *
 *   test_png                 run the tests (CTest, working dir = build/tests)
 *   test_png --export DIR    also write DIR/roundtrip_cK.png and the raw pixels DIR/roundtrip_cK.bin
 *                            (K = 1..4) for tests/cli/test_png_pillow.sh to open with Pillow */
#include <dirent.h>
#include <png.h>
#include <stdint.h>
#include <unistd.h>

#include "rdml/png.h"
#include "test.h"

static const char *export_dir = NULL;

static int64_t read_file(const char *path, uint8_t **out) {
    FILE *f = fopen(path, "rb");
    *out = NULL;
    if (!f) return -1;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    *out = malloc(n > 0 ? (size_t)n : 1);
    if (fread(*out, 1, (size_t)n, f) != (size_t)n) n = -1;
    fclose(f);
    return n;
}

/* Any file in `dir` whose name starts with `prefix`? */
static int dir_has_prefix(const char *dir, const char *prefix) {
    DIR *d = opendir(dir);
    int found = 0;
    if (!d) return 0;
    for (struct dirent *e; (e = readdir(d));)
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0) found = 1;
    closedir(d);
    return found;
}

static void test_fixtures_match_pillow(void) {
    char mpath[4096];
    snprintf(mpath, sizeof mpath, "%s", test_fixture("png/manifest.txt"));
    FILE *mf = fopen(mpath, "r");
    CHECK(mf != NULL);
    if (!mf) return;
    char name[256];
    int w, h, native, nfix = 0;
    while (fscanf(mf, "%255s %d %d %d", name, &w, &h, &native) == 4) {
        char png_path[4096], bin_path[4096];
        snprintf(png_path, sizeof png_path, "%s", test_fixture("png/"));
        strncat(png_path, name, sizeof png_path - strlen(png_path) - 6);
        snprintf(bin_path, sizeof bin_path, "%s", png_path);
        strcat(png_path, ".png");
        strcat(bin_path, ".bin");
        uint8_t *expect;
        int64_t n = read_file(bin_path, &expect);
        int64_t npx = (int64_t)w * h;
        CHECK_EQ_I(n, npx * (1 + 2 + 3 + 4));
        if (n != npx * 10) {
            free(expect);
            continue;
        }
        /* expected block for c channels starts after the blocks of 1 .. c-1 channels */
        for (int want = 0; want <= 4; want++) {
            int c = want ? want : native;
            const uint8_t *ref = expect + npx * (c * (c - 1) / 2);
            rdml_ctx ctx;
            rdml_ctx_init(&ctx);
            rdml_image im;
            int rc = rdml_png_read(&ctx, png_path, want, &im);
            if (rc) fprintf(stderr, "%s want %d: %s\n", name, want, ctx.msg);
            CHECK_EQ_I(rc, RDML_OK);
            if (rc) continue;
            CHECK_EQ_I(im.w, w);
            CHECK_EQ_I(im.h, h);
            CHECK_EQ_I(im.channels, c);
            int64_t bad = 0;
            for (int64_t i = 0; i < npx * c; i++) bad += im.px[i] != ref[i];
            if (bad) fprintf(stderr, "%s want %d: %lld bytes differ from Pillow\n", name, want,
                             (long long)bad);
            CHECK_EQ_I(bad, 0);
            rdml_image_free(&im);
            CHECK(im.px == NULL);
        }
        free(expect);
        nfix++;
    }
    fclose(mf);
    CHECK(nfix >= 13); /* every kind listed in the manifest was exercised */
}

static void expect_error(const char *fixture, int code, const char *what) {
    char path[4096];
    snprintf(path, sizeof path, "%s", test_fixture(fixture));
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    rdml_image im = {1, 1, 1, (uint8_t *)&ctx};
    int rc = rdml_png_read(&ctx, path, 3, &im);
    CHECK_EQ_I(rc, code);
    CHECK_EQ_I(ctx.code, code);
    CHECK_STR_HAS(ctx.msg, path); /* names the file */
    CHECK_STR_HAS(ctx.msg, what);
    CHECK(im.px == NULL);
    CHECK_EQ_I(im.w, 0);
    if (getenv("RDML_TEST_VERBOSE")) fprintf(stderr, "  error: %s\n", ctx.msg);
}

static void test_errors_name_the_file(void) {
    expect_error("png/does_not_exist.png", RDML_EIO, "No such file");
    expect_error("png/notpng.txt.png", RDML_EFORMAT, "not a PNG");
    expect_error("png/truncated.png", RDML_EFORMAT, "truncated");
    expect_error("png/crc.png", RDML_EFORMAT, "CRC error");
    expect_error("png/corrupt_idat.png", RDML_EFORMAT, "corrupt PNG");
}

static void test_bad_want_channels(void) {
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    rdml_image im;
    CHECK(rdml_png_read(&ctx, test_fixture("png/rgb8.png"), 5, &im) != RDML_OK);
    CHECK_STR_HAS(ctx.msg, "want_channels");
}

/* Header fields as libpng sees them in a file we wrote. */
static int read_ihdr(const char *path, png_uint_32 *w, png_uint_32 *h, int *depth, int *ctype,
                     int *interlace) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, NULL);
        fclose(f);
        return -1;
    }
    png_init_io(png, f);
    png_read_info(png, info);
    png_get_IHDR(png, info, w, h, depth, ctype, interlace, NULL, NULL);
    png_destroy_read_struct(&png, &info, NULL);
    fclose(f);
    return 0;
}

static void test_write_read_roundtrip(void) {
    static const int ctypes[5] = {0, PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_GRAY_ALPHA,
                                  PNG_COLOR_TYPE_RGB, PNG_COLOR_TYPE_RGB_ALPHA};
    for (int c = 1; c <= 4; c++) {
        rdml_ctx ctx;
        rdml_ctx_init(&ctx);
        rdml_image im, back;
        int64_t w = 13 + c, h = 6 + 2 * c;
        CHECK_EQ_I(rdml_image_alloc(&ctx, &im, w, h, c), RDML_OK);
        if (!im.px) continue;
        rdml_rng r = rdml_rng_make(7, RDML_STREAM_USER, (uint64_t)c);
        for (int64_t i = 0; i < w * h * c; i++) im.px[i] = (uint8_t)(rdml_rng_next(&r) >> 56);
        im.px[0] = 0;
        im.px[1] = 255;
        char path[64], prefix[80];
        snprintf(path, sizeof path, "png_roundtrip_c%d.png", c);
        snprintf(prefix, sizeof prefix, "%s.tmp-", path);
        unlink(path);
        CHECK_EQ_I(rdml_png_write(&ctx, path, &im), RDML_OK);
        CHECK(access(path, F_OK) == 0);
        CHECK(!dir_has_prefix(".", prefix));
        png_uint_32 fw = 0, fh = 0;
        int depth = 0, ctype = -1, interlace = -1;
        CHECK_EQ_I(read_ihdr(path, &fw, &fh, &depth, &ctype, &interlace), 0);
        CHECK_EQ_I(fw, w);
        CHECK_EQ_I(fh, h);
        CHECK_EQ_I(depth, 8);
        CHECK_EQ_I(ctype, ctypes[c]);
        CHECK_EQ_I(interlace, PNG_INTERLACE_NONE);
        CHECK_EQ_I(rdml_png_read(&ctx, path, 0, &back), RDML_OK);
        CHECK_EQ_I(back.channels, c);
        CHECK_EQ_I(back.w, w);
        CHECK_EQ_I(back.h, h);
        if (back.px) CHECK(memcmp(back.px, im.px, (size_t)(w * h * c)) == 0);
        rdml_image_free(&back);
        /* overwriting an existing file replaces it */
        for (int64_t i = 0; i < w * h * c; i++) im.px[i] ^= 0x5a;
        CHECK_EQ_I(rdml_png_write(&ctx, path, &im), RDML_OK);
        CHECK_EQ_I(rdml_png_read(&ctx, path, 0, &back), RDML_OK);
        if (back.px) CHECK(memcmp(back.px, im.px, (size_t)(w * h * c)) == 0);
        rdml_image_free(&back);
        if (export_dir) {
            char epath[4096];
            snprintf(epath, sizeof epath, "%s/roundtrip_c%d.png", export_dir, c);
            CHECK_EQ_I(rdml_png_write(&ctx, epath, &im), RDML_OK);
            snprintf(epath, sizeof epath, "%s/roundtrip_c%d.bin", export_dir, c);
            FILE *f = fopen(epath, "wb");
            CHECK(f != NULL);
            if (f) {
                int32_t dims[3] = {(int32_t)w, (int32_t)h, c};
                CHECK_EQ_I(fwrite(dims, sizeof dims, 1, f), 1);
                CHECK_EQ_I(fwrite(im.px, 1, (size_t)(w * h * c), f), (size_t)(w * h * c));
                fclose(f);
            }
        }
        rdml_image_free(&im);
        unlink(path);
    }
}

static void test_write_errors(void) {
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    rdml_image im;
    CHECK_EQ_I(rdml_image_alloc(&ctx, &im, 3, 2, 3), RDML_OK);
    const char *path = "no_such_dir_for_png_test/x.png";
    CHECK_EQ_I(rdml_png_write(&ctx, path, &im), RDML_EIO);
    CHECK_STR_HAS(ctx.msg, path);
    rdml_ctx_clear(&ctx);
    im.channels = 5;
    CHECK(rdml_png_write(&ctx, "bad_channels.png", &im) != RDML_OK);
    CHECK(access("bad_channels.png", F_OK) != 0);
    im.channels = 3;
    rdml_image_free(&im);
    rdml_ctx_clear(&ctx);
    CHECK(rdml_image_alloc(&ctx, &im, 0, 2, 3) != RDML_OK);
    CHECK(im.px == NULL);
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "--export") == 0) export_dir = argv[2];
    RUN(test_fixtures_match_pillow);
    RUN(test_errors_name_the_file);
    RUN(test_bad_want_channels);
    RUN(test_write_read_roundtrip);
    RUN(test_write_errors);
    return test_summary();
}
