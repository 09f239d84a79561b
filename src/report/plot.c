/* Plotting primitives for the report on cairo: a figure is one drawing function rendered twice,
 * onto an SVG surface (px units) and onto a PNG image surface of the same w x h pixels, so the
 * two files always match. Provided: nice ticks and their labels, anchored/rotated text with
 * cairo's toy font API (DejaVu Sans, which Debian installs with fontconfig), axes frames with
 * grid lines, matrix heat maps drawn as one image (so a 1000 x 1000 matrix costs one pattern,
 * not a million rectangles), colour bars, legends, embedded photographs, and the viridis /
 * blues / Tableau-10 colour maps. Left out: log axes, text shaping beyond what the toy API does
 * (no pango: labels are short ASCII), automatic layout; callers place things in pixels. */
#include <cairo-svg.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report/report_priv.h"

#define FONT "DejaVu Sans"

static double clamp01(double t) { return t < 0 ? 0 : t > 1 ? 1 : t; }

static void lerp_table(const double (*tab)[3], int n, double t, double rgb[3]) {
    t = clamp01(t) * (n - 1);
    int i = (int)floor(t);
    if (i >= n - 1) i = n - 2;
    double u = t - i;
    for (int c = 0; c < 3; c++) rgb[c] = tab[i][c] * (1 - u) + tab[i + 1][c] * u;
}

void rdml_plot_viridis(double t, double rgb[3]) {
    /* matplotlib's viridis sampled at 0, 0.1, ..., 1 */
    static const double tab[11][3] = {
        {0.267004, 0.004874, 0.329415}, {0.282623, 0.140926, 0.457517},
        {0.253935, 0.265254, 0.529983}, {0.206756, 0.371758, 0.553117},
        {0.163625, 0.471133, 0.558148}, {0.127568, 0.566949, 0.550556},
        {0.134692, 0.658636, 0.517649}, {0.266941, 0.748751, 0.440573},
        {0.477504, 0.821444, 0.318195}, {0.741388, 0.873449, 0.149561},
        {0.993248, 0.906157, 0.143936}};
    lerp_table(tab, 11, t, rgb);
}

void rdml_plot_rdbu(double t, double rgb[3]) {
    /* ColorBrewer RdBu (11 classes), reversed: dark blue at 0, #f7f7f7 at 0.5, dark red at 1 */
    static const double tab[11][3] = {
        {0.020, 0.188, 0.380}, {0.129, 0.400, 0.675}, {0.263, 0.576, 0.765},
        {0.573, 0.773, 0.871}, {0.820, 0.898, 0.941}, {0.969, 0.969, 0.969},
        {0.992, 0.859, 0.780}, {0.957, 0.647, 0.510}, {0.839, 0.376, 0.302},
        {0.698, 0.094, 0.169}, {0.404, 0.000, 0.122}};
    lerp_table(tab, 11, t, rgb);
}

void rdml_plot_blues(double t, double rgb[3]) {
    static const double tab[5][3] = {{0.969, 0.984, 1.000}, {0.776, 0.859, 0.937},
                                     {0.420, 0.682, 0.839}, {0.129, 0.443, 0.710},
                                     {0.031, 0.188, 0.420}};
    lerp_table(tab, 5, t, rgb);
}

void rdml_plot_series_color(int k, double rgb[3]) {
    static const unsigned hex[10] = {0x4e79a7, 0xf28e2b, 0xe15759, 0x76b7b2, 0x59a14f,
                                     0xedc948, 0xb07aa1, 0xff9da7, 0x9c755f, 0xbab0ac};
    unsigned h = hex[((k % 10) + 10) % 10];
    rgb[0] = ((h >> 16) & 255) / 255.0;
    rgb[1] = ((h >> 8) & 255) / 255.0;
    rgb[2] = (h & 255) / 255.0;
}

void rdml_plot_set_rgb(cairo_t *cr, const double rgb[3]) {
    cairo_set_source_rgb(cr, rgb[0], rgb[1], rgb[2]);
}

/* ---- ticks ---- */

int rdml_plot_ticks(double lo, double hi, int maxn, double *ticks, int cap, double *step) {
    *step = 1;
    if (!isfinite(lo) || !isfinite(hi) || cap < 1) return 0;
    if (hi < lo) {
        double t = lo;
        lo = hi;
        hi = t;
    }
    if (maxn < 1) maxn = 1;
    double span = hi - lo;
    if (span <= 0) {
        ticks[0] = lo;
        return 1;
    }
    double raw = span / maxn, mag = pow(10, floor(log10(raw))), norm = raw / mag;
    static const double nice[] = {1, 2, 2.5, 5, 10};
    double s = 10 * mag;
    for (int i = 0; i < 5; i++)
        if (nice[i] * mag >= raw * (1 - 1e-9)) {
            s = nice[i] * mag;
            break;
        }
    (void)norm;
    *step = s;
    int n = 0;
    double first = ceil(lo / s - 1e-9) * s;
    for (int k = 0; n < cap; k++) {
        double v = first + k * s;
        if (v > hi + s * 1e-9) break;
        if (fabs(v) < s * 1e-9) v = 0; /* avoid -0 and 1e-17 */
        ticks[n++] = v;
    }
    return n;
}

void rdml_plot_tick_label(double v, double step, char *buf, size_t len) {
    if (!isfinite(v)) {
        snprintf(buf, len, "%g", v);
        return;
    }
    if (v == 0 || fabs(v) < step * 1e-9) {
        snprintf(buf, len, "0");
        return;
    }
    double av = fabs(v);
    if (av >= 1e6 || (step > 0 && step < 1e-4)) {
        snprintf(buf, len, "%.3g", v);
        return;
    }
    int dec = 0;
    if (step > 0) {
        /* decimals so that every multiple of the step prints exactly (2.5e-k needs one more) */
        double s = step;
        while (dec < 8 && fabs(s - round(s)) > 1e-9 * (1 + fabs(s))) {
            s *= 10;
            dec++;
        }
    }
    snprintf(buf, len, "%.*f", dec, v);
}

void rdml_plot_nice_range(double *lo, double *hi) {
    if (!isfinite(*lo) || !isfinite(*hi)) {
        *lo = 0;
        *hi = 1;
        return;
    }
    if (*hi < *lo) {
        double t = *lo;
        *lo = *hi;
        *hi = t;
    }
    if (*hi - *lo <= 1e-12 * (1 + fabs(*lo))) {
        double d = fabs(*lo) > 0 ? 0.1 * fabs(*lo) : 1;
        *lo -= d;
        *hi += d;
    }
    double t[64], step;
    rdml_plot_ticks(*lo, *hi, 6, t, 64, &step);
    *lo = floor(*lo / step + 1e-9) * step;
    *hi = ceil(*hi / step - 1e-9) * step;
}

/* ---- text ---- */

static void text_impl(cairo_t *cr, double x, double y, const char *s, double size, double ax,
                      double ay, double angle, int bold) {
    if (!s || !s[0]) return;
    cairo_save(cr);
    cairo_select_font_face(cr, FONT, CAIRO_FONT_SLANT_NORMAL,
                           bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, size);
    cairo_text_extents_t te;
    cairo_font_extents_t fe;
    cairo_text_extents(cr, s, &te);
    cairo_font_extents(cr, &fe);
    double h = fe.ascent + fe.descent;
    cairo_translate(cr, x, y);
    cairo_rotate(cr, -angle);
    cairo_move_to(cr, -ax * te.x_advance, -ay * h + fe.ascent);
    cairo_show_text(cr, s);
    cairo_restore(cr);
}

void rdml_plot_text(cairo_t *cr, double x, double y, const char *s, double size, double ax,
                    double ay, double angle) {
    text_impl(cr, x, y, s, size, ax, ay, angle, 0);
}

void rdml_plot_text_bold(cairo_t *cr, double x, double y, const char *s, double size,
                         double ax, double ay, double angle) {
    text_impl(cr, x, y, s, size, ax, ay, angle, 1);
}

double rdml_plot_text_width(cairo_t *cr, const char *s, double size) {
    cairo_save(cr);
    cairo_select_font_face(cr, FONT, CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, size);
    cairo_text_extents_t te;
    cairo_text_extents(cr, s, &te);
    cairo_restore(cr);
    return te.x_advance;
}

/* ---- axes ---- */

double rdml_plot_px(const rdml_plot_axes *a, double x) {
    double d = a->xmax - a->xmin;
    return a->x + (d != 0 ? (x - a->xmin) / d : 0.5) * a->w;
}

double rdml_plot_py(const rdml_plot_axes *a, double y) {
    double d = a->ymax - a->ymin;
    return a->y + a->h - (d != 0 ? (y - a->ymin) / d : 0.5) * a->h;
}

void rdml_plot_frame(cairo_t *cr, const rdml_plot_axes *a, const char *xlabel,
                     const char *ylabel, const char *title, int xticks) {
    double t[64], step;
    char lab[64];
    cairo_save(cr);
    cairo_set_line_width(cr, 1);
    /* y grid and tick labels */
    int n = rdml_plot_ticks(a->ymin, a->ymax, 6, t, 64, &step);
    double maxw = 0;
    for (int i = 0; i < n; i++) {
        double py = rdml_plot_py(a, t[i]);
        cairo_set_source_rgb(cr, 0.9, 0.9, 0.9);
        cairo_move_to(cr, a->x, py);
        cairo_line_to(cr, a->x + a->w, py);
        cairo_stroke(cr);
        cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
        cairo_move_to(cr, a->x - 5, py);
        cairo_line_to(cr, a->x, py);
        cairo_stroke(cr);
        rdml_plot_tick_label(t[i], step, lab, sizeof lab);
        rdml_plot_text(cr, a->x - 8, py, lab, 12, 1, 0.5, 0);
        double w = rdml_plot_text_width(cr, lab, 12);
        if (w > maxw) maxw = w;
    }
    if (xticks) {
        n = rdml_plot_ticks(a->xmin, a->xmax, 7, t, 64, &step);
        for (int i = 0; i < n; i++) {
            double px = rdml_plot_px(a, t[i]);
            cairo_set_source_rgb(cr, 0.9, 0.9, 0.9);
            cairo_move_to(cr, px, a->y);
            cairo_line_to(cr, px, a->y + a->h);
            cairo_stroke(cr);
            cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
            cairo_move_to(cr, px, a->y + a->h);
            cairo_line_to(cr, px, a->y + a->h + 5);
            cairo_stroke(cr);
            rdml_plot_tick_label(t[i], step, lab, sizeof lab);
            rdml_plot_text(cr, px, a->y + a->h + 8, lab, 12, 0.5, 0, 0);
        }
    }
    cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
    cairo_rectangle(cr, a->x, a->y, a->w, a->h);
    cairo_stroke(cr);
    cairo_set_source_rgb(cr, 0, 0, 0);
    if (xlabel) rdml_plot_text(cr, a->x + a->w / 2, a->y + a->h + 30, xlabel, 13, 0.5, 0, 0);
    if (ylabel) rdml_plot_text(cr, a->x - maxw - 16, a->y + a->h / 2, ylabel, 13, 0.5, 1, M_PI / 2);
    if (title) rdml_plot_text_bold(cr, a->x + a->w / 2, a->y - 10, title, 14, 0.5, 1, 0);
    cairo_restore(cr);
}

/* ---- images ---- */

void rdml_plot_heat(cairo_t *cr, double x, double y, double w, double h, const float *m,
                    int64_t rows, int64_t cols, double vmin, double vmax, rdml_plot_cmap_fn cmap) {
    if (rows < 1 || cols < 1 || rows > 32767 || cols > 32767 || !(w > 0) || !(h > 0)) return;
    /* An upscaled matrix is expanded to the target pixels here (nearest cell), so that the
     * SVG's embedded image is shown 1:1 and viewers do not blur the cells; a downscaled one is
     * embedded at full resolution and averaged by cairo for the PNG. */
    int up = w >= (double)cols && h >= (double)rows && w <= 8192 && h <= 8192;
    int iw = up ? (int)ceil(w) : (int)cols, ih = up ? (int)ceil(h) : (int)rows;
    cairo_surface_t *img = cairo_image_surface_create(CAIRO_FORMAT_RGB24, iw, ih);
    if (cairo_surface_status(img) != CAIRO_STATUS_SUCCESS) {
        cairo_surface_destroy(img);
        return;
    }
    cairo_surface_flush(img);
    unsigned char *data = cairo_image_surface_get_data(img);
    int stride = cairo_image_surface_get_stride(img);
    double span = vmax - vmin;
    uint32_t *rowpx = malloc((size_t)cols * sizeof *rowpx);
    if (!rowpx) {
        cairo_surface_destroy(img);
        return;
    }
    int64_t last = -1;
    for (int py = 0; py < ih; py++) {
        int64_t i = up ? (int64_t)((py + 0.5) / ih * rows) : py;
        if (i >= rows) i = rows - 1;
        if (i != last) { /* colours of matrix row i */
            for (int64_t j = 0; j < cols; j++) {
                double v = m[i * cols + j], rgb[3] = {0.75, 0.75, 0.75};
                if (isfinite(v)) cmap(span > 0 ? (v - vmin) / span : 0.5, rgb);
                uint32_t r = (uint32_t)lround(rgb[0] * 255), g = (uint32_t)lround(rgb[1] * 255),
                         b = (uint32_t)lround(rgb[2] * 255);
                rowpx[j] = (r << 16) | (g << 8) | b;
            }
            last = i;
        }
        uint32_t *row = (uint32_t *)(data + (size_t)py * stride);
        for (int px = 0; px < iw; px++) {
            int64_t j = up ? (int64_t)((px + 0.5) / iw * cols) : px;
            row[px] = rowpx[j < cols ? j : cols - 1];
        }
    }
    free(rowpx);
    cairo_surface_mark_dirty(img);
    cairo_save(cr);
    cairo_rectangle(cr, x, y, w, h);
    cairo_clip(cr);
    cairo_translate(cr, x, y);
    cairo_scale(cr, w / (double)iw, h / (double)ih);
    cairo_set_source_surface(cr, img, 0, 0);
    cairo_pattern_set_filter(cairo_get_source(cr), up ? CAIRO_FILTER_NEAREST : CAIRO_FILTER_GOOD);
    cairo_paint(cr);
    cairo_restore(cr);
    cairo_surface_destroy(img);
}

void rdml_plot_colorbar(cairo_t *cr, double x, double y, double w, double h, double vmin,
                        double vmax, rdml_plot_cmap_fn cmap, const char *label) {
    enum { NB = 256 };
    float ramp[NB];
    for (int i = 0; i < NB; i++) ramp[i] = (float)(vmax - (vmax - vmin) * (i + 0.5) / NB);
    rdml_plot_heat(cr, x, y, w, h, ramp, NB, 1, vmin, vmax, cmap);
    cairo_save(cr);
    cairo_set_line_width(cr, 1);
    cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
    cairo_rectangle(cr, x, y, w, h);
    cairo_stroke(cr);
    double t[64], step;
    char lab[64];
    int n = rdml_plot_ticks(vmin, vmax, 6, t, 64, &step);
    double maxw = 0;
    for (int i = 0; i < n; i++) {
        double py = y + h - (vmax > vmin ? (t[i] - vmin) / (vmax - vmin) : 0.5) * h;
        cairo_move_to(cr, x + w, py);
        cairo_line_to(cr, x + w + 5, py);
        cairo_stroke(cr);
        rdml_plot_tick_label(t[i], step, lab, sizeof lab);
        rdml_plot_text(cr, x + w + 8, py, lab, 12, 0, 0.5, 0);
        double tw = rdml_plot_text_width(cr, lab, 12);
        if (tw > maxw) maxw = tw;
    }
    if (label) rdml_plot_text(cr, x + w + 14 + maxw, y + h / 2, label, 13, 0.5, 1, -M_PI / 2);
    cairo_restore(cr);
}

void rdml_plot_legend(cairo_t *cr, double x, double y, const rdml_plot_legend_item *items, int n) {
    cairo_save(cr);
    double maxw = 0;
    for (int i = 0; i < n; i++) {
        double tw = rdml_plot_text_width(cr, items[i].label, 12);
        if (tw > maxw) maxw = tw;
    }
    /* white box behind so that a legend over data stays readable */
    cairo_set_source_rgba(cr, 1, 1, 1, 0.85);
    cairo_rectangle(cr, x, y, maxw + 44, n * 18 + 8);
    cairo_fill_preserve(cr);
    cairo_set_source_rgb(cr, 0.7, 0.7, 0.7);
    cairo_set_line_width(cr, 1);
    cairo_stroke(cr);
    for (int i = 0; i < n; i++) {
        double cy = y + 4 + i * 18 + 9;
        rdml_plot_set_rgb(cr, items[i].rgb);
        cairo_set_line_width(cr, 2);
        switch (items[i].style) {
        case 0:
            cairo_rectangle(cr, x + 8, cy - 6, 22, 12);
            cairo_fill(cr);
            break;
        case 3:
            cairo_arc(cr, x + 19, cy, 3.5, 0, 2 * M_PI);
            cairo_fill(cr);
            break;
        default: {
            double dash[2] = {6, 4};
            cairo_set_dash(cr, dash, items[i].style == 2 ? 2 : 0, 0);
            cairo_move_to(cr, x + 6, cy);
            cairo_line_to(cr, x + 32, cy);
            cairo_stroke(cr);
            cairo_set_dash(cr, NULL, 0, 0);
        }
        }
        cairo_set_source_rgb(cr, 0, 0, 0);
        rdml_plot_text(cr, x + 38, cy, items[i].label, 12, 0, 0.5, 0);
    }
    cairo_restore(cr);
}

void rdml_plot_image(cairo_t *cr, const rdml_image *im, double x, double y, double w, double h) {
    if (!im || !im->px || im->w < 1 || im->h < 1 || im->w > 32767 || im->h > 32767) return;
    cairo_surface_t *img =
        cairo_image_surface_create(CAIRO_FORMAT_RGB24, (int)im->w, (int)im->h);
    if (cairo_surface_status(img) != CAIRO_STATUS_SUCCESS) {
        cairo_surface_destroy(img);
        return;
    }
    cairo_surface_flush(img);
    unsigned char *data = cairo_image_surface_get_data(img);
    int stride = cairo_image_surface_get_stride(img), ch = im->channels;
    for (int64_t i = 0; i < im->h; i++) {
        uint32_t *row = (uint32_t *)(data + i * stride);
        for (int64_t j = 0; j < im->w; j++) {
            const uint8_t *p = im->px + (i * im->w + j) * ch;
            uint32_t r = p[0], g = ch >= 3 ? p[1] : p[0], b = ch >= 3 ? p[2] : p[0];
            row[j] = (r << 16) | (g << 8) | b;
        }
    }
    cairo_surface_mark_dirty(img);
    double s = fmin(w / (double)im->w, h / (double)im->h);
    double dw = im->w * s, dh = im->h * s, ox = x + (w - dw) / 2, oy = y + (h - dh) / 2;
    cairo_save(cr);
    cairo_translate(cr, ox, oy);
    cairo_scale(cr, s, s);
    cairo_set_source_surface(cr, img, 0, 0);
    cairo_pattern_set_filter(cairo_get_source(cr), CAIRO_FILTER_GOOD);
    cairo_paint(cr);
    cairo_restore(cr);
    cairo_save(cr);
    cairo_set_source_rgb(cr, 0.3, 0.3, 0.3);
    cairo_set_line_width(cr, 1);
    cairo_rectangle(cr, ox, oy, dw, dh);
    cairo_stroke(cr);
    cairo_restore(cr);
    cairo_surface_destroy(img);
}

/* ---- output ---- */

static void render(cairo_surface_t *s, int w, int h, rdml_plot_draw_fn draw, void *user,
                   cairo_status_t *st) {
    cairo_t *cr = cairo_create(s);
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_rectangle(cr, 0, 0, w, h);
    cairo_fill(cr);
    cairo_set_source_rgb(cr, 0, 0, 0);
    draw(cr, user);
    *st = cairo_status(cr);
    cairo_destroy(cr);
}

int rdml_plot_save(rdml_ctx *ctx, const char *dir, const char *name, int w, int h,
                   rdml_plot_draw_fn draw, void *user) {
    char path[4096];
    cairo_status_t st;
    snprintf(path, sizeof path, "%s/%s.svg", dir, name);
    cairo_surface_t *s = cairo_svg_surface_create(path, w, h);
    cairo_svg_surface_set_document_unit(s, CAIRO_SVG_UNIT_PX);
    st = cairo_surface_status(s);
    if (st == CAIRO_STATUS_SUCCESS) render(s, w, h, draw, user, &st);
    cairo_surface_finish(s);
    if (st == CAIRO_STATUS_SUCCESS) st = cairo_surface_status(s);
    cairo_surface_destroy(s);
    if (st != CAIRO_STATUS_SUCCESS)
        return RDML_FAIL(ctx, RDML_EIO, "%s: cannot write the figure: %s (hint: is the report "
                         "directory writable?)", path, cairo_status_to_string(st));
    snprintf(path, sizeof path, "%s/%s.png", dir, name);
    s = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, w, h);
    st = cairo_surface_status(s);
    if (st == CAIRO_STATUS_SUCCESS) render(s, w, h, draw, user, &st);
    if (st == CAIRO_STATUS_SUCCESS) st = cairo_surface_write_to_png(s, path);
    cairo_surface_destroy(s);
    if (st != CAIRO_STATUS_SUCCESS)
        return RDML_FAIL(ctx, RDML_EIO, "%s: cannot write the figure: %s (hint: is the report "
                         "directory writable?)", path, cairo_status_to_string(st));
    return RDML_OK;
}
