/* The gabor backend: a fixed Gabor filter-bank energy model of early visual cortex (complex
 * cells), 512 features per image. The image is converted to Pillow 'L' and, for each of 4
 * scales, resized (Pillow BILINEAR, antialiased) to M x M with M = 128, 64, 32, 16, scaled
 * to [0, 1] and made zero-mean. At every scale the same complex Gabor filter (wavelength 4 px,
 * Gaussian sigma 0.56 x wavelength = 2.24 px, i.e. about one octave of bandwidth, truncated at
 * +-7 px, Gaussian normalised to sum 1) is applied at 8 orientations theta = k pi / 8 — so the
 * spatial frequencies are 32, 16, 8 and 4 cycles per image. The filter is
 * G(dx) G(dy) exp(i (kx dx + ky dy)) with (kx, ky) = 2 pi / 4 (cos theta, sin theta), x to the
 * right and y down; it is separable as a product of two complex 1-D filters, which is how it
 * is computed (correlation, zeros outside the image). The quadrature-pair energy is the
 * modulus of the complex response; it is averaged over a 4 x 4 grid of equal cells. Feature
 * index ((scale * 8 + orientation) * 4 + cell_row) * 4 + cell_col. Left out: the residual DC
 * response of the even filter (exp(-(2 pi 0.56)^2 / 2) ~ 0.2% of its peak gain, reduced
 * further by the mean subtraction), divisive normalisation, colour channels. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "embed/embed_priv.h"

#define GB_SCALES 4
#define GB_ORIENT 8
#define GB_GRID 4
#define GB_R 7
#define GB_TAPS (2 * GB_R + 1)
#define GB_LAMBDA 4.0
#define GB_SIGMA (0.56 * GB_LAMBDA)
#define GB_SIZE0 128

int rdml_embed_gabor(rdml_ctx *ctx, const rdml_image *im, float *out) {
    const int64_t M0 = GB_SIZE0;
    uint8_t *g = rdml_malloc(ctx, (size_t)(im->w * im->h), "grayscale image");
    uint8_t *r8 = rdml_malloc(ctx, (size_t)(M0 * M0), "resized image");
    float *x = rdml_malloc(ctx, (size_t)(M0 * M0) * sizeof *x, "gabor image");
    float *tr = rdml_malloc(ctx, (size_t)(M0 * M0) * sizeof *tr, "gabor buffer");
    float *ti = rdml_malloc(ctx, (size_t)(M0 * M0) * sizeof *ti, "gabor buffer");
    int rc = g && r8 && x && tr && ti ? RDML_OK : ctx->code;
    double G[GB_TAPS], gs = 0;
    for (int t = 0; t < GB_TAPS; t++) gs += G[t] = exp(-(double)((t - GB_R) * (t - GB_R)) / (2 * GB_SIGMA * GB_SIGMA));
    for (int t = 0; t < GB_TAPS; t++) G[t] /= gs;
    if (!rc) rdml_embed_gray(im, g);
    for (int s = 0; s < GB_SCALES && !rc; s++) {
        int64_t M = M0 >> s, cell = M / GB_GRID;
        rc = rdml_embed_resize_u8(ctx, g, im->w, im->h, 1, r8, M, M, RDML_RESAMPLE_BILINEAR);
        if (rc) break;
        double mean = 0;
        for (int64_t i = 0; i < M * M; i++) mean += r8[i];
        mean /= (double)(M * M) * 255.0;
        for (int64_t i = 0; i < M * M; i++) x[i] = (float)(r8[i] / 255.0 - mean);
        for (int o = 0; o < GB_ORIENT; o++) {
            double th = o * M_PI / GB_ORIENT, kx = 2 * M_PI / GB_LAMBDA * cos(th),
                   ky = 2 * M_PI / GB_LAMBDA * sin(th);
            float hr[GB_TAPS], hi[GB_TAPS], vr[GB_TAPS], vi[GB_TAPS];
            for (int t = 0; t < GB_TAPS; t++) {
                hr[t] = (float)(G[t] * cos(kx * (t - GB_R)));
                hi[t] = (float)(G[t] * sin(kx * (t - GB_R)));
                vr[t] = (float)(G[t] * cos(ky * (t - GB_R)));
                vi[t] = (float)(G[t] * sin(ky * (t - GB_R)));
            }
            for (int64_t y = 0; y < M; y++) {
                const float *row = x + y * M;
                for (int64_t c = 0; c < M; c++) {
                    float sr = 0, si = 0;
                    int t0 = c - GB_R < 0 ? (int)(GB_R - c) : 0;
                    int t1 = c + GB_R >= M ? (int)(GB_R + M - 1 - c) : GB_TAPS - 1;
                    for (int t = t0; t <= t1; t++) {
                        float v = row[c + t - GB_R];
                        sr += v * hr[t];
                        si += v * hi[t];
                    }
                    tr[y * M + c] = sr;
                    ti[y * M + c] = si;
                }
            }
            float *dst = out + (s * GB_ORIENT + o) * GB_GRID * GB_GRID;
            double pool[GB_GRID * GB_GRID] = {0};
            for (int64_t y = 0; y < M; y++) {
                int t0 = y - GB_R < 0 ? (int)(GB_R - y) : 0;
                int t1 = y + GB_R >= M ? (int)(GB_R + M - 1 - y) : GB_TAPS - 1;
                for (int64_t c = 0; c < M; c++) {
                    float re = 0, imv = 0;
                    for (int t = t0; t <= t1; t++) {
                        int64_t q = (y + t - GB_R) * M + c;
                        re += tr[q] * vr[t] - ti[q] * vi[t];
                        imv += tr[q] * vi[t] + ti[q] * vr[t];
                    }
                    pool[(y / cell) * GB_GRID + c / cell] += sqrtf(re * re + imv * imv);
                }
            }
            for (int k = 0; k < GB_GRID * GB_GRID; k++) dst[k] = (float)(pool[k] / (double)(cell * cell));
        }
    }
    free(g);
    free(r8);
    free(x);
    free(tr);
    free(ti);
    return rc;
}
