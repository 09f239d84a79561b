/* Pillow's Image.resize on 8-bit images, reproduced bit for bit (libImaging/Resample.c):
 * per output pixel a window of the filter scaled by the reduction factor (antialiasing when
 * shrinking), weights normalised to sum 1 and rounded to 22-bit fixed point, accumulation
 * from 1 << 21, clipping to 0..255; the horizontal pass runs first (only over the rows the
 * vertical pass needs) into an 8-bit intermediate, then the vertical pass. Box, bilinear and
 * bicubic (a = -0.5) filters. Left out: Pillow's reducing_gap pre-reduction (off by default
 * in Image.resize), the box argument, 16-bit / float images, and Lanczos/Hamming. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rdml/embed.h"

#define PRECISION_BITS (32 - 8 - 2)

static double box_filter(double x) { return x > -0.5 && x <= 0.5 ? 1.0 : 0.0; }
static double bilinear_filter(double x) {
    if (x < 0.0) x = -x;
    return x < 1.0 ? 1.0 - x : 0.0;
}
static double bicubic_filter(double x) {
    const double a = -0.5;
    if (x < 0.0) x = -x;
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}

/* Pillow's precompute_coeffs followed by normalize_coeffs_8bpc. */
static int precompute(int64_t in_size, int64_t out_size, rdml_resample f, int64_t **boundsp,
                      int32_t **kkp, int *ksizep) {
    double (*filter)(double) = f == RDML_RESAMPLE_BOX ? box_filter
                               : f == RDML_RESAMPLE_BILINEAR ? bilinear_filter : bicubic_filter;
    double fsupport = f == RDML_RESAMPLE_BOX ? 0.5 : f == RDML_RESAMPLE_BILINEAR ? 1.0 : 2.0;
    double scale = (double)((float)in_size - 0.0f) / (double)out_size, filterscale = scale;
    if (filterscale < 1.0) filterscale = 1.0;
    double support = fsupport * filterscale;
    int ksize = (int)ceil(support) * 2 + 1;
    int64_t *bounds = malloc((size_t)out_size * 2 * sizeof *bounds);
    double *kk = malloc((size_t)out_size * (size_t)ksize * sizeof *kk);
    int32_t *ik = malloc((size_t)out_size * (size_t)ksize * sizeof *ik);
    if (!bounds || !kk || !ik) {
        free(bounds);
        free(kk);
        free(ik);
        return -1;
    }
    for (int64_t xx = 0; xx < out_size; xx++) {
        double center = 0.0 + ((double)xx + 0.5) * scale, ww = 0.0, ss = 1.0 / filterscale;
        int64_t xmin = (int64_t)(center - support + 0.5), xmax = (int64_t)(center + support + 0.5);
        if (xmin < 0) xmin = 0;
        if (xmax > in_size) xmax = in_size;
        xmax -= xmin;
        double *k = &kk[xx * ksize];
        int64_t x;
        for (x = 0; x < xmax; x++) {
            double w = filter(((double)(x + xmin) - center + 0.5) * ss);
            k[x] = w;
            ww += w;
        }
        for (x = 0; x < xmax; x++)
            if (ww != 0.0) k[x] /= ww;
        for (; x < ksize; x++) k[x] = 0;
        bounds[xx * 2] = xmin;
        bounds[xx * 2 + 1] = xmax;
    }
    for (int64_t i = 0; i < out_size * ksize; i++)
        ik[i] = kk[i] < 0 ? (int32_t)(-0.5 + kk[i] * (1 << PRECISION_BITS))
                          : (int32_t)(0.5 + kk[i] * (1 << PRECISION_BITS));
    free(kk);
    *boundsp = bounds;
    *kkp = ik;
    *ksizep = ksize;
    return 0;
}

static uint8_t clip8(int64_t v) {
    if (v >= ((int64_t)1 << PRECISION_BITS << 8)) return 255;
    if (v <= 0) return 0;
    return (uint8_t)(v >> PRECISION_BITS);
}

int rdml_embed_resize_u8(rdml_ctx *ctx, const uint8_t *in, int64_t w, int64_t h, int c,
                         uint8_t *out, int64_t ow, int64_t oh, rdml_resample filter) {
    int need_h = ow != w, need_v = oh != h;
    if (!need_h && !need_v) {
        memcpy(out, in, (size_t)(w * h * c));
        return RDML_OK;
    }
    int64_t *bh = NULL, *bv = NULL;
    int32_t *kh = NULL, *kv = NULL;
    int ksh = 0, ksv = 0;
    uint8_t *tmp = NULL;
    int rc = RDML_OK;
    if (precompute(w, ow, filter, &bh, &kh, &ksh) || precompute(h, oh, filter, &bv, &kv, &ksv)) {
        rc = RDML_FAIL(ctx, RDML_ENOMEM, "out of memory resizing a %lld x %lld image",
                       (long long)w, (long long)h);
        goto done;
    }
    int64_t yfirst = bv[0], ylast = bv[oh * 2 - 2] + bv[oh * 2 - 1];
    const uint8_t *src = in;
    int64_t src_w = w;
    if (need_h) {
        int64_t rows = need_v ? ylast - yfirst : h, off = need_v ? yfirst : 0;
        if (need_v)
            for (int64_t i = 0; i < oh; i++) bv[i * 2] -= yfirst;
        uint8_t *dst = need_v ? (tmp = malloc((size_t)(rows * ow * c))) : out;
        if (!dst) {
            rc = RDML_FAIL(ctx, RDML_ENOMEM, "out of memory resizing an image");
            goto done;
        }
        for (int64_t y = 0; y < rows; y++) {
            const uint8_t *row = in + (y + off) * w * c;
            for (int64_t xx = 0; xx < ow; xx++) {
                int64_t xmin = bh[xx * 2], xmax = bh[xx * 2 + 1];
                const int32_t *k = &kh[xx * ksh];
                for (int ch = 0; ch < c; ch++) {
                    int64_t ss = 1 << (PRECISION_BITS - 1);
                    for (int64_t x = 0; x < xmax; x++) ss += (int64_t)row[(x + xmin) * c + ch] * k[x];
                    dst[(y * ow + xx) * c + ch] = clip8(ss);
                }
            }
        }
        src = dst;
        src_w = ow;
    }
    if (need_v) {
        for (int64_t yy = 0; yy < oh; yy++) {
            int64_t ymin = bv[yy * 2], ymax = bv[yy * 2 + 1];
            const int32_t *k = &kv[yy * ksv];
            for (int64_t xx = 0; xx < src_w * c; xx++) {
                int64_t ss = 1 << (PRECISION_BITS - 1);
                for (int64_t y = 0; y < ymax; y++) ss += (int64_t)src[(y + ymin) * src_w * c + xx] * k[y];
                out[yy * src_w * c + xx] = clip8(ss);
            }
        }
    }
done:
    free(bh);
    free(bv);
    free(kh);
    free(kv);
    free(tmp);
    return rc;
}
