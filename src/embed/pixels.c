/* The pixels backend and the grayscale conversion: Pillow's convert('L') (integer luma
 * weights, rounded), a Pillow-exact BILINEAR (antialiased) resize to size x size ignoring the
 * aspect ratio, and per-image min-max normalisation to [0, 1] — the input of the paper's
 * siamese CNN, flattened row-major. Left out: keeping the aspect ratio or cropping (NSD
 * images are square), and any standardisation across images. */
#include <stdlib.h>

#include "embed/embed_priv.h"

void rdml_embed_gray(const rdml_image *im, uint8_t *out) {
    int64_t n = im->w * im->h;
    int c = im->channels;
    for (int64_t i = 0; i < n; i++) {
        const uint8_t *p = im->px + i * c;
        out[i] = c >= 3 ? (uint8_t)(((uint32_t)p[0] * 19595u + (uint32_t)p[1] * 38470u +
                                     (uint32_t)p[2] * 7471u + 0x8000u) >> 16)
                        : p[0];
    }
}

int rdml_embed_pixels(rdml_ctx *ctx, const rdml_image *im, int64_t size, float *out) {
    uint8_t *g = rdml_malloc(ctx, (size_t)(im->w * im->h), "grayscale image");
    uint8_t *r = rdml_malloc(ctx, (size_t)(size * size), "resized image");
    int rc = g && r ? RDML_OK : ctx->code;
    if (!rc) {
        rdml_embed_gray(im, g);
        rc = rdml_embed_resize_u8(ctx, g, im->w, im->h, 1, r, size, size, RDML_RESAMPLE_BILINEAR);
    }
    if (!rc) {
        int lo = 255, hi = 0;
        for (int64_t i = 0; i < size * size; i++) {
            if (r[i] < lo) lo = r[i];
            if (r[i] > hi) hi = r[i];
        }
        float scale = hi > lo ? 1.0f / (float)(hi - lo) : 0.0f;
        for (int64_t i = 0; i < size * size; i++) out[i] = (float)(r[i] - lo) * scale;
    }
    free(g);
    free(r);
    return rc;
}
