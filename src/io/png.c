/* PNG reading and writing through libpng (rdml/png.h). Reading expands everything to 8-bit
 * samples (palette to RGB, tRNS to alpha, 1/2/4-bit gray scaled to 0..255, 16-bit rounded
 * with png_set_scale_16, Adam7 de-interlaced by libpng) and then converts to the requested
 * channel count; gray from colour uses Pillow's convert('L') integer weights so that
 * embeddings computed here match the Python reference byte for byte. libpng reports errors
 * by longjmp: the error callback copies its message (with the file name) into the rdml_ctx
 * and every local that changes after setjmp is volatile, so the error path frees all it
 * allocated. Writing produces 8-bit, non-interlaced gray/gray+alpha/RGB/RGBA under a
 * temporary name that is renamed into place. Left out: gamma/colour-space handling (gAMA,
 * iCCP, sRGB are ignored: pixels are returned as stored), text chunks, 16-bit output, and
 * APNG. */
#include <errno.h>
#include <fcntl.h>
#include <png.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "rdml/png.h"

/* What the libpng callbacks need: the ctx to fill and the file to name. */
typedef struct png_io {
    rdml_ctx *ctx;
    const char *path;
    FILE *fp;
    int64_t nread; /* bytes delivered to libpng so far */
    int writing;
} png_io;

static void png_io_error(png_structp png, png_const_charp msg) {
    png_io *io = png_get_error_ptr(png);
    int code = RDML_EFORMAT;
    const char *hint = "the file is damaged; re-export or re-download it";
    if (io->writing) {
        code = RDML_EIO;
        hint = "check disk space and permissions";
    }
    RDML_FAIL(io->ctx, code, "%s: %s PNG: %s (hint: %s)", io->path,
              io->writing ? "cannot write" : "corrupt", msg, hint);
    png_longjmp(png, 1);
}

static void png_io_warning(png_structp png, png_const_charp msg) {
    png_io *io = png_get_error_ptr(png);
    /* Warnings (bad ancillary chunk CRC, odd sRGB profiles) do not stop reading; they only go
     * to the debug log, since thousands of images may carry the same harmless one. */
    rdml_debug(io->ctx, "%s: libpng warning: %s", io->path, msg);
}

/* Own read callback: a short read means a truncated file, which we can name precisely
 * (libpng's stdio reader would only say "Read Error"). */
static void png_io_read(png_structp png, png_bytep data, size_t len) {
    png_io *io = png_get_io_ptr(png);
    size_t got = fread(data, 1, len, io->fp);
    io->nread += (int64_t)got;
    if (got != len) {
        if (ferror(io->fp))
            RDML_FAIL(io->ctx, RDML_EIO, "%s: read error after %lld bytes: %s", io->path,
                      (long long)io->nread, strerror(errno));
        else
            RDML_FAIL(io->ctx, RDML_EFORMAT,
                      "%s: truncated PNG: the file ends after %lld bytes, before the image "
                      "is complete (hint: the copy or download was incomplete)",
                      io->path, (long long)io->nread);
        png_longjmp(png, 1);
    }
}

int rdml_image_alloc(rdml_ctx *ctx, rdml_image *im, int64_t w, int64_t h, int channels) {
    memset(im, 0, sizeof *im);
    if (w <= 0 || h <= 0 || channels < 1 || channels > 4)
        return RDML_FAIL(ctx, RDML_EINTERNAL, "rdml_image_alloc: bad size %lld x %lld x %d",
                         (long long)w, (long long)h, channels);
    if (w > INT64_MAX / h || w * h > INT64_MAX / channels || (uint64_t)(w * h * channels) > SIZE_MAX)
        return RDML_FAIL(ctx, RDML_ENOMEM, "image of %lld x %lld x %d pixels is too large",
                         (long long)w, (long long)h, channels);
    im->px = rdml_calloc(ctx, (size_t)(w * h), (size_t)channels, "image pixels");
    if (!im->px) return ctx->code;
    im->w = w;
    im->h = h;
    im->channels = channels;
    return RDML_OK;
}

void rdml_image_free(rdml_image *im) {
    if (!im) return;
    free(im->px);
    im->px = NULL;
    im->w = im->h = 0;
    im->channels = 0;
}

/* Pillow's convert('L'): ITU-R 601-2 luma in 16-bit fixed point, rounded. */
static uint8_t luma(const uint8_t *p) {
    return (uint8_t)(((uint32_t)p[0] * 19595u + (uint32_t)p[1] * 38470u + (uint32_t)p[2] * 7471u +
                      0x8000u) >> 16);
}

/* Convert n pixels from `from` to `to` channels (both in 1..4). */
static void convert_pixels(uint8_t *dst, int to, const uint8_t *src, int from, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        const uint8_t *s = src + i * from;
        uint8_t *d = dst + i * to;
        uint8_t g, r, gg, b, a;
        if (from <= 2) {
            r = gg = b = g = s[0];
            a = from == 2 ? s[1] : 255;
        } else {
            r = s[0];
            gg = s[1];
            b = s[2];
            g = luma(s);
            a = from == 4 ? s[3] : 255;
        }
        switch (to) {
        case 1: d[0] = g; break;
        case 2: d[0] = g; d[1] = a; break;
        case 3: d[0] = r; d[1] = gg; d[2] = b; break;
        default: d[0] = r; d[1] = gg; d[2] = b; d[3] = a; break;
        }
    }
}

int rdml_png_read(rdml_ctx *ctx, const char *path, int want_channels, rdml_image *out) {
    memset(out, 0, sizeof *out);
    if (want_channels < 0 || want_channels > 4)
        return RDML_FAIL(ctx, RDML_EINTERNAL, "rdml_png_read(%s): want_channels %d is not 0..4",
                         path, want_channels);
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return RDML_FAIL(ctx, RDML_EIO, "%s: cannot open PNG image: %s%s", path, strerror(errno),
                         errno == ENOENT ? " (hint: check the image folder in [data] root)" : "");
    uint8_t sig[8];
    size_t got = fread(sig, 1, sizeof sig, fp);
    if (got < sizeof sig || png_sig_cmp(sig, 0, sizeof sig) != 0) {
        fclose(fp);
        return RDML_FAIL(ctx, RDML_EFORMAT,
                         "%s: not a PNG file (the first bytes are not the PNG signature%s)", path,
                         got < sizeof sig ? "; the file is shorter than 8 bytes" : "");
    }

    png_io io = {ctx, path, fp, (int64_t)sizeof sig, 0};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &io, png_io_error,
                                             png_io_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_read_struct(png ? &png : NULL, NULL, NULL);
        fclose(fp);
        return RDML_FAIL(ctx, RDML_ENOMEM, "%s: out of memory creating the libpng reader", path);
    }
    /* Changed after setjmp and needed on the error path: volatile, so longjmp keeps them. */
    uint8_t *volatile px = NULL;     /* decoded pixels, file channels */
    png_bytep *volatile rows = NULL; /* row pointers into px */
    uint8_t *volatile conv = NULL;   /* converted pixels */
    if (setjmp(png_jmpbuf(png))) {
        free(rows);
        free(px);
        free(conv);
        png_destroy_read_struct(&png, &info, NULL);
        fclose(fp);
        if (ctx->code == RDML_OK) RDML_FAIL(ctx, RDML_EFORMAT, "%s: cannot decode PNG", path);
        return ctx->code;
    }
    png_set_read_fn(png, &io, png_io_read);
    png_set_sig_bytes(png, (int)sizeof sig);
    png_read_info(png, info);

    png_uint_32 w32, h32;
    int bit_depth, color_type, interlace;
    png_get_IHDR(png, info, &w32, &h32, &bit_depth, &color_type, &interlace, NULL, NULL);
    /* Everything to 8 bits per sample: palette -> RGB, tRNS -> alpha, low-bit gray scaled. */
    png_set_expand(png);
    if (bit_depth == 16) png_set_scale_16(png);
    (void)png_set_interlace_handling(png);
    png_read_update_info(png, info);

    int64_t w = w32, h = h32;
    int ch = png_get_channels(png, info);
    size_t rowbytes = png_get_rowbytes(png, info);
    if (png_get_bit_depth(png, info) != 8 || ch < 1 || ch > 4 || rowbytes != (size_t)(w * ch))
        png_error(png, "unsupported pixel layout after expansion to 8 bits");
    if ((uint64_t)h > SIZE_MAX / rowbytes) png_error(png, "image too large for memory");
    px = malloc(rowbytes * (size_t)h);
    rows = malloc(sizeof(png_bytep) * (size_t)h);
    if (!px || !rows) {
        RDML_FAIL(ctx, RDML_ENOMEM, "%s: out of memory for %lld x %lld x %d pixels", path,
                  (long long)w, (long long)h, ch);
        png_longjmp(png, 1);
    }
    for (int64_t y = 0; y < h; y++) rows[y] = px + (size_t)y * rowbytes;
    png_read_image(png, rows);
    png_read_end(png, NULL);

    int to = want_channels ? want_channels : ch;
    if (to != ch) {
        conv = malloc((size_t)(w * h) * (size_t)to);
        if (!conv) {
            RDML_FAIL(ctx, RDML_ENOMEM, "%s: out of memory converting %lld x %lld pixels", path,
                      (long long)w, (long long)h);
            png_longjmp(png, 1);
        }
        convert_pixels(conv, to, px, ch, w * h);
        free(px);
        px = conv;
        conv = NULL;
    }
    free(rows);
    png_destroy_read_struct(&png, &info, NULL);
    fclose(fp);
    out->w = w;
    out->h = h;
    out->channels = to;
    out->px = px;
    return RDML_OK;
}

/* Create a new file beside `path` under a unique temporary name (O_EXCL). */
static FILE *open_temp(rdml_ctx *ctx, const char *path, char *tmp, size_t tmpsize) {
    for (int attempt = 0; attempt < 16; attempt++) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        snprintf(tmp, tmpsize, "%s.tmp-%ld-%ld%02d", path, (long)getpid(), (long)ts.tv_nsec,
                 attempt);
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0666);
        if (fd >= 0) {
            FILE *fp = fdopen(fd, "wb");
            if (fp) return fp;
            close(fd);
            unlink(tmp);
            break;
        }
        if (errno != EEXIST) break;
    }
    RDML_FAIL(ctx, RDML_EIO, "%s: cannot create temporary file %s: %s (hint: does the folder "
              "exist and is it writable?)", path, tmp, strerror(errno));
    return NULL;
}

int rdml_png_write(rdml_ctx *ctx, const char *path, const rdml_image *im) {
    static const int color_types[5] = {0, PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_GRAY_ALPHA,
                                       PNG_COLOR_TYPE_RGB, PNG_COLOR_TYPE_RGB_ALPHA};
    if (!im || !im->px || im->w <= 0 || im->h <= 0 || im->channels < 1 || im->channels > 4 ||
        im->w > PNG_UINT_31_MAX || im->h > PNG_UINT_31_MAX)
        return RDML_FAIL(ctx, RDML_EINTERNAL,
                         "%s: cannot write an image of %lld x %lld x %d pixels as PNG", path,
                         im ? (long long)im->w : 0LL, im ? (long long)im->h : 0LL,
                         im ? im->channels : 0);
    size_t tmpsize = strlen(path) + 64;
    char *tmp = rdml_malloc(ctx, tmpsize, "temporary file name");
    if (!tmp) return ctx->code;
    FILE *fp = open_temp(ctx, path, tmp, tmpsize);
    if (!fp) {
        free(tmp);
        return ctx->code;
    }
    png_io io = {ctx, path, fp, 0, 1};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &io, png_io_error,
                                              png_io_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    png_bytep *volatile rows = NULL;
    if (!info) {
        png_destroy_write_struct(png ? &png : NULL, NULL);
        RDML_FAIL(ctx, RDML_ENOMEM, "%s: out of memory creating the libpng writer", path);
        goto fail;
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        goto fail;
    }
    rows = malloc(sizeof(png_bytep) * (size_t)im->h);
    if (!rows) {
        RDML_FAIL(ctx, RDML_ENOMEM, "%s: out of memory for row pointers", path);
        png_longjmp(png, 1);
    }
    size_t rowbytes = (size_t)im->w * (size_t)im->channels;
    for (int64_t y = 0; y < im->h; y++) rows[y] = im->px + (size_t)y * rowbytes;
    png_init_io(png, fp);
    png_set_IHDR(png, info, (png_uint_32)im->w, (png_uint_32)im->h, 8,
                 color_types[im->channels], PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    png_write_image(png, rows);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    free(rows);
    rows = NULL;
    {
        FILE *f = fp;
        fp = NULL;
        if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
            RDML_FAIL(ctx, RDML_EIO, "%s: cannot write %s: %s (hint: is the disk full?)", path,
                      tmp, strerror(errno));
            fclose(f);
            goto fail;
        }
        if (fclose(f) != 0) {
            RDML_FAIL(ctx, RDML_EIO, "%s: cannot close %s: %s", path, tmp, strerror(errno));
            goto fail;
        }
    }
    if (rename(tmp, path) != 0) {
        RDML_FAIL(ctx, RDML_EIO, "%s: cannot rename %s into place: %s", path, tmp,
                  strerror(errno));
        goto fail;
    }
    free(tmp);
    return RDML_OK;
fail:
    free(rows);
    if (fp) fclose(fp);
    unlink(tmp);
    free(tmp);
    if (ctx->code == RDML_OK) RDML_FAIL(ctx, RDML_EIO, "%s: cannot write PNG", path);
    return ctx->code;
}
