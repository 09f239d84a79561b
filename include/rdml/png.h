/* rdml/png.h — PNG images through libpng.
 *
 * Example:
 *
 *   int mean_red(rdml_ctx *ctx, const char *path, double *mean) {  // "train-0001_nsd-00013.png"
 *       rdml_image im;
 *       RDML_TRY(rdml_png_read(ctx, path, 3, &im));  // force RGB
 *       double sum = 0;
 *       for (int64_t y = 0; y < im.h; y++)
 *           for (int64_t x = 0; x < im.w; x++) sum += im.px[(y * im.w + x) * 3 + 0];
 *       *mean = sum / (double)(im.w * im.h);
 *       rdml_image_free(&im);
 *       return RDML_OK;
 *   }
 *
 * Reads 8-bit gray, gray+alpha, RGB, RGBA and palette images (palette expanded, tRNS
 * honoured), 1/2/4-bit gray expanded, 16-bit reduced to 8 bits with rounding (libpng's
 * png_set_scale_16). Interlaced images are read too. Not collective.
 */
#ifndef RDML_PNG_H
#define RDML_PNG_H

#include <stdint.h>

#include "rdml/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rdml_image {
    int64_t w, h;
    int channels; /* 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA */
    uint8_t *px;  /* h rows of w * channels bytes, top row first */
} rdml_image;

/* want_channels: 0 keeps what the file holds (after palette expansion: 1, 2, 3 or 4);
 * 1 = gray (RGB converted with Pillow's convert('L') integer weights, alpha dropped);
 * 2 = gray+alpha (as 1, alpha kept or 255 added: Pillow's convert('LA'));
 * 3 = RGB (gray replicated, alpha dropped); 4 = RGBA (opaque alpha added).
 * Colour values are returned as stored (alpha is not composited; gAMA/iCCP ignored).
 * Errors name the file: missing (RDML_EIO), not a PNG, truncated, or corrupt (RDML_EFORMAT,
 * with libpng's message). On error *out is zeroed and nothing is leaked. */
int rdml_png_read(rdml_ctx *ctx, const char *path, int want_channels, rdml_image *out);
/* Write 8-bit gray (1), gray+alpha (2), RGB (3) or RGBA (4); under a temporary name, renamed. */
int rdml_png_write(rdml_ctx *ctx, const char *path, const rdml_image *im);
/* Allocate w x h x channels zeroed pixels. */
int rdml_image_alloc(rdml_ctx *ctx, rdml_image *im, int64_t w, int64_t h, int channels);
void rdml_image_free(rdml_image *im);

#ifdef __cplusplus
}
#endif
#endif
