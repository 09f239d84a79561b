/* Synthetic scenes: the pixels of NSD id `nsd` as a pure function of (seed, nsd,
 * color_fraction, image size), drawn with the counter-based RNG (stream
 * RDML_STREAM_SYNTH_IMAGE, sub-stream = NSD id), so every rank and every subject that shows
 * the same id produces the same bytes. A scene is a background (linear gradient, square-wave
 * stripes, checkerboard, smooth value noise, or a sky/ground horizon) and 1-4 objects from
 * seven categories (cartoon face, stick-figure body, house with a window grid, a plate of
 * letter-like glyph rows, and plain circles, rotated rectangles and triangles) with solid,
 * striped or dotted fills. A `color_fraction` share of ids is planted with a pure red, green
 * or blue background covering >= 75% of the pixels (object sizes are capped to guarantee it);
 * the others are re-coloured (at most 6 times, then a neutral fallback) until no pure colour
 * holds 68% of the classified pixels, so the paper's 0.7 rule separates them with a margin.
 * Also here: that colour rule (rdml_synth_color_class). Left out: anti-aliasing (edges are
 * hard; it keeps the pure-colour accounting exact), perspective, and natural-image
 * statistics beyond these few ingredients. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dataset/synth_internal.h"

#define PI 3.14159265358979323846

/* Counter ranges inside one image's sub-stream: geometry first, then the latent factors,
 * colours (one range per attempt), value-noise lattices (one range per attempt). */
#define RNG_LATENT (1ULL << 32)
#define RNG_COLOR(attempt) ((uint64_t)(2 + (attempt)) << 32)
#define RNG_LATTICE(attempt) ((uint64_t)(64 + (attempt)) << 32)
#define MAX_ATTEMPTS 6

/* ---- the paper's colour rule ---- */

static int pixel_class(const uint8_t *q) {
    /* Nearest of (255,0,0), (0,255,0), (0,0,255) in squared Euclidean distance:
     * d_R - d_G = 510 (g - r), so the nearest pure colour is the strictly largest channel. */
    if (q[0] > q[1] && q[0] > q[2]) return 1;
    if (q[1] > q[0] && q[1] > q[2]) return 2;
    if (q[2] > q[0] && q[2] > q[1]) return 3;
    return 0;
}

static void color_counts(const uint8_t *rgb, int64_t npix, int64_t cnt[4]) {
    cnt[0] = cnt[1] = cnt[2] = cnt[3] = 0;
    for (int64_t i = 0; i < npix; i++) cnt[pixel_class(rgb + 3 * i)]++;
}

int rdml_synth_color_class(const uint8_t *rgb, int64_t npix, double *fraction) {
    int64_t cnt[4];
    color_counts(rgb, npix, cnt);
    int best = 1;
    for (int c = 2; c <= 3; c++)
        if (cnt[c] > cnt[best]) best = c;
    double f = npix > 0 ? (double)cnt[best] / (double)npix : 0.0;
    if (fraction) *fraction = f;
    /* Integer comparison: exactly "count / npix >= 0.7" without rounding doubt. */
    return npix > 0 && 10 * cnt[best] >= 7 * npix ? best : 0;
}

/* ---- drawing ---- */

typedef struct canvas {
    uint8_t *px;   /* S * S * 3 */
    uint8_t *mask; /* S * S: 1 where an object was drawn */
    int64_t S;
} canvas;

typedef struct paint {
    uint8_t col[3], col2[3];
    int texture;         /* 0 solid, 1 stripes, 2 dots */
    double ox, oy, unit; /* texture origin and period (image fractions) */
    double ca, sa;       /* stripe direction */
} paint;

static paint paint_solid(const uint8_t c[3]) {
    paint p;
    memset(&p, 0, sizeof p);
    memcpy(p.col, c, 3);
    memcpy(p.col2, c, 3);
    p.unit = 1;
    p.ca = 1;
    return p;
}

static paint paint_object(const syn_object *o) {
    paint p = paint_solid(o->col);
    memcpy(p.col2, o->col2, 3);
    p.texture = o->texture;
    p.ox = o->cx;
    p.oy = o->cy;
    p.unit = 2 * o->r / o->tex_freq;
    p.ca = cos(o->tex_angle);
    p.sa = sin(o->tex_angle);
    return p;
}

static void put(canvas *cv, const paint *pt, int64_t ix, int64_t iy, double x, double y) {
    const uint8_t *c = pt->col;
    if (pt->texture == 1) {
        double t = ((x - pt->ox) * pt->ca + (y - pt->oy) * pt->sa) / pt->unit;
        if (t - floor(t) >= 0.5) c = pt->col2;
    } else if (pt->texture == 2) {
        double u = (x - pt->ox) / pt->unit, v = (y - pt->oy) / pt->unit;
        u -= floor(u) + 0.5;
        v -= floor(v) + 0.5;
        if (u * u + v * v < 0.09) c = pt->col2;
    }
    uint8_t *q = cv->px + 3 * (iy * cv->S + ix);
    q[0] = c[0];
    q[1] = c[1];
    q[2] = c[2];
    cv->mask[iy * cv->S + ix] = 1;
}

/* Pixel range [*a, *b) whose centres can fall in [lo, hi] (image fractions). */
static void span(const canvas *cv, double lo, double hi, int64_t *a, int64_t *b) {
    double S = (double)cv->S;
    double fa = floor(lo * S - 0.5), fb = ceil(hi * S + 0.5);
    if (fa < 0) fa = 0;
    if (fb > S) fb = S;
    if (fb < fa) fb = fa;
    *a = (int64_t)fa;
    *b = (int64_t)fb;
}

static void fill_disk(canvas *cv, const paint *pt, double cx, double cy, double r) {
    int64_t x0, x1, y0, y1;
    span(cv, cx - r, cx + r, &x0, &x1);
    span(cv, cy - r, cy + r, &y0, &y1);
    double S = (double)cv->S;
    for (int64_t iy = y0; iy < y1; iy++) {
        double y = (iy + 0.5) / S;
        for (int64_t ix = x0; ix < x1; ix++) {
            double x = (ix + 0.5) / S;
            if ((x - cx) * (x - cx) + (y - cy) * (y - cy) <= r * r) put(cv, pt, ix, iy, x, y);
        }
    }
}

/* Rectangle of half sizes (hw, hh) rotated by `angle` about its centre. */
static void fill_rect(canvas *cv, const paint *pt, double cx, double cy, double hw, double hh,
                      double angle) {
    double ca = cos(angle), sa = sin(angle);
    double ex = fabs(hw * ca) + fabs(hh * sa), ey = fabs(hw * sa) + fabs(hh * ca);
    int64_t x0, x1, y0, y1;
    span(cv, cx - ex, cx + ex, &x0, &x1);
    span(cv, cy - ey, cy + ey, &y0, &y1);
    double S = (double)cv->S;
    for (int64_t iy = y0; iy < y1; iy++) {
        double y = (iy + 0.5) / S;
        for (int64_t ix = x0; ix < x1; ix++) {
            double x = (ix + 0.5) / S;
            double u = (x - cx) * ca + (y - cy) * sa, v = -(x - cx) * sa + (y - cy) * ca;
            if (fabs(u) <= hw && fabs(v) <= hh) put(cv, pt, ix, iy, x, y);
        }
    }
}

static double edge(double ax, double ay, double bx, double by, double x, double y) {
    return (bx - ax) * (y - ay) - (by - ay) * (x - ax);
}

static void fill_tri(canvas *cv, const paint *pt, const double v[6]) {
    double xmin = fmin(v[0], fmin(v[2], v[4])), xmax = fmax(v[0], fmax(v[2], v[4]));
    double ymin = fmin(v[1], fmin(v[3], v[5])), ymax = fmax(v[1], fmax(v[3], v[5]));
    int64_t x0, x1, y0, y1;
    span(cv, xmin, xmax, &x0, &x1);
    span(cv, ymin, ymax, &y0, &y1);
    double S = (double)cv->S;
    for (int64_t iy = y0; iy < y1; iy++) {
        double y = (iy + 0.5) / S;
        for (int64_t ix = x0; ix < x1; ix++) {
            double x = (ix + 0.5) / S;
            double e0 = edge(v[0], v[1], v[2], v[3], x, y);
            double e1 = edge(v[2], v[3], v[4], v[5], x, y);
            double e2 = edge(v[4], v[5], v[0], v[1], x, y);
            if ((e0 >= 0 && e1 >= 0 && e2 >= 0) || (e0 <= 0 && e1 <= 0 && e2 <= 0))
                put(cv, pt, ix, iy, x, y);
        }
    }
}

/* A thick segment (capsule) of half width hw. */
static void fill_seg(canvas *cv, const paint *pt, double ax, double ay, double bx, double by,
                     double hw) {
    int64_t x0, x1, y0, y1;
    span(cv, fmin(ax, bx) - hw, fmax(ax, bx) + hw, &x0, &x1);
    span(cv, fmin(ay, by) - hw, fmax(ay, by) + hw, &y0, &y1);
    double dx = bx - ax, dy = by - ay, L2 = dx * dx + dy * dy;
    double S = (double)cv->S;
    for (int64_t iy = y0; iy < y1; iy++) {
        double y = (iy + 0.5) / S;
        for (int64_t ix = x0; ix < x1; ix++) {
            double x = (ix + 0.5) / S;
            double t = L2 > 0 ? ((x - ax) * dx + (y - ay) * dy) / L2 : 0;
            if (t < 0) t = 0;
            if (t > 1) t = 1;
            double ex = x - (ax + t * dx), ey = y - (ay + t * dy);
            if (ex * ex + ey * ey <= hw * hw) put(cv, pt, ix, iy, x, y);
        }
    }
}

/* ---- objects ---- */

static const uint8_t DARK[3] = {25, 25, 25}, WHITE[3] = {245, 245, 245},
                     MOUTH[3] = {150, 30, 40}, WINDOW[3] = {230, 230, 170};

static void draw_face(canvas *cv, const syn_object *o) {
    paint skin = paint_object(o), dark = paint_solid(DARK), white = paint_solid(WHITE),
          mouth = paint_solid(MOUTH);
    double cx = o->cx, cy = o->cy, r = o->r;
    fill_disk(cv, &skin, cx, cy, r);
    for (int s = -1; s <= 1; s += 2) {
        fill_disk(cv, &white, cx + s * 0.36 * r, cy - 0.2 * r, 0.16 * r);
        fill_disk(cv, &dark, cx + s * 0.36 * r, cy - 0.2 * r, 0.08 * r);
    }
    fill_seg(cv, &dark, cx, cy - 0.05 * r, cx, cy + 0.18 * r, 0.04 * r);
    fill_rect(cv, &mouth, cx, cy + 0.45 * r, 0.38 * r, 0.07 * r, 0);
}

static void draw_body(canvas *cv, const syn_object *o) {
    paint pt = paint_object(o);
    double cx = o->cx, cy = o->cy, r = o->r, hw = 0.07 * r;
    rdml_rng d = rdml_rng_make(o->detail, 0, 0);
    double arm_l = (rdml_rng_uniform(&d) - 0.6) * r, arm_r = (rdml_rng_uniform(&d) - 0.6) * r;
    double leg = 0.2 + 0.25 * rdml_rng_uniform(&d);
    fill_disk(cv, &pt, cx, cy - 0.72 * r, 0.18 * r);
    fill_seg(cv, &pt, cx, cy - 0.54 * r, cx, cy + 0.15 * r, hw);
    fill_seg(cv, &pt, cx, cy - 0.4 * r, cx - 0.55 * r, cy - 0.4 * r + arm_l, hw);
    fill_seg(cv, &pt, cx, cy - 0.4 * r, cx + 0.55 * r, cy - 0.4 * r + arm_r, hw);
    fill_seg(cv, &pt, cx, cy + 0.15 * r, cx - leg * r, cy + 0.9 * r, hw);
    fill_seg(cv, &pt, cx, cy + 0.15 * r, cx + leg * r, cy + 0.9 * r, hw);
}

static void draw_house(canvas *cv, const syn_object *o) {
    paint wall = paint_object(o), roof = paint_solid(o->col2), win = paint_solid(WINDOW),
          dark = paint_solid(DARK);
    double cx = o->cx, cy = o->cy, r = o->r;
    fill_rect(cv, &wall, cx, cy + 0.3 * r, 0.8 * r, 0.5 * r, 0);
    double tri[6] = {cx - 0.95 * r, cy - 0.2 * r, cx + 0.95 * r, cy - 0.2 * r, cx, cy - 0.85 * r};
    fill_tri(cv, &roof, tri);
    int nx = 3 + (int)(o->detail % 2);
    for (int row = 0; row < 2; row++)
        for (int i = 0; i < nx; i++) {
            double x = cx - 0.8 * r + (i + 0.5) * 1.6 * r / nx, y = cy + (0.02 + 0.3 * row) * r;
            if (row == 1 && i == nx / 2) continue; /* the door goes there */
            fill_rect(cv, &win, x, y, 0.09 * r, 0.08 * r, 0);
        }
    fill_rect(cv, &dark, cx - (nx % 2 ? 0 : 0.8 * r / nx), cy + 0.62 * r, 0.12 * r, 0.18 * r, 0);
}

/* Letter-like glyphs: each is 2-3 strokes from a 4x2-cell alphabet of bars and diagonals. */
static void draw_words(canvas *cv, const syn_object *o) {
    uint8_t plate[3];
    for (int c = 0; c < 3; c++) plate[c] = (uint8_t)(200 + o->col[c] / 5);
    paint bg = paint_solid(plate), ink = paint_solid(o->col2);
    double cx = o->cx, cy = o->cy, r = o->r;
    fill_rect(cv, &bg, cx, cy, r, 0.6 * r, 0);
    rdml_rng d = rdml_rng_make(o->detail, 1, 0);
    int rows = 2 + (int)rdml_rng_below(&d, 2), cols = 3 + (int)rdml_rng_below(&d, 4);
    double cw = 1.8 * r / cols, ch = 1.0 * r / rows;
    double hw = fmax(0.09 * ch, 0.6 / (double)cv->S);
    static const double strokes[8][4] = {
        {0.2, 0.1, 0.2, 0.9}, {0.8, 0.1, 0.8, 0.9}, {0.5, 0.1, 0.5, 0.9}, {0.2, 0.1, 0.8, 0.1},
        {0.2, 0.5, 0.8, 0.5}, {0.2, 0.9, 0.8, 0.9}, {0.2, 0.9, 0.8, 0.1}, {0.2, 0.1, 0.8, 0.9}};
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++) {
            double x0 = cx - 0.9 * r + j * cw, y0 = cy - 0.5 * r + i * ch;
            int n = 2 + (int)rdml_rng_below(&d, 2);
            for (int k = 0; k < n; k++) {
                const double *s = strokes[rdml_rng_below(&d, 8)];
                fill_seg(cv, &ink, x0 + s[0] * cw, y0 + s[1] * ch, x0 + s[2] * cw,
                         y0 + s[3] * ch, hw);
            }
        }
}

static void draw_object(canvas *cv, const syn_object *o) {
    paint pt = paint_object(o);
    switch (o->category) {
    case SYN_CAT_FACE: draw_face(cv, o); break;
    case SYN_CAT_BODY: draw_body(cv, o); break;
    case SYN_CAT_PLACE: draw_house(cv, o); break;
    case SYN_CAT_WORD: draw_words(cv, o); break;
    case SYN_CAT_CIRCLE: fill_disk(cv, &pt, o->cx, o->cy, o->r); break;
    case SYN_CAT_RECT:
        fill_rect(cv, &pt, o->cx, o->cy, 0.9 * o->r, 0.9 * o->r * o->aspect, o->angle);
        break;
    default: {
        double v[6];
        for (int k = 0; k < 3; k++) {
            v[2 * k] = o->cx + o->r * cos(o->angle + 2 * PI * k / 3);
            v[2 * k + 1] = o->cy + o->r * sin(o->angle + 2 * PI * k / 3);
        }
        fill_tri(cv, &pt, v);
    }
    }
}

/* ---- the scene ---- */

static double ext_of(const syn_object *o) {
    switch (o->category) {
    case SYN_CAT_PLACE: return 1.3 * o->r;
    case SYN_CAT_WORD: return 1.2 * o->r;
    case SYN_CAT_RECT: return 0.9 * o->r * sqrt(1 + o->aspect * o->aspect);
    default: return o->r;
    }
}

/* Geometry: everything but colours. */
static void plan_geometry(uint64_t seed, double color_fraction, int64_t nsd, syn_scene *sc) {
    rdml_rng g = rdml_rng_make(seed, rdml_rng_substream(RDML_STREAM_SYNTH_IMAGE, (uint64_t)nsd), 0);
    memset(sc, 0, sizeof *sc);
    sc->nsd = nsd;
    double u = rdml_rng_uniform(&g), v = rdml_rng_uniform(&g);
    if (u < color_fraction) sc->planted_color = v < 0.45 ? 1 : v < 0.8 ? 3 : 2;
    sc->bg_type = (int)rdml_rng_below(&g, SYN_NBG);
    sc->bg_angle = PI * rdml_rng_uniform(&g);
    sc->bg_freq = 2 + (double)rdml_rng_below(&g, 10);
    sc->horizon = 0.35 + 0.3 * rdml_rng_uniform(&g);
    sc->nobj = 1 + (int)rdml_rng_below(&g, SYN_MAXOBJ);
    for (int i = 0; i < sc->nobj; i++) {
        syn_object *o = &sc->obj[i];
        o->category = (int)rdml_rng_below(&g, SYN_NCAT);
        o->r = i == 0 ? 0.2 + 0.12 * rdml_rng_uniform(&g) : 0.08 + 0.12 * rdml_rng_uniform(&g);
        o->cx = 0.15 + 0.7 * rdml_rng_uniform(&g);
        o->cy = 0.15 + 0.7 * rdml_rng_uniform(&g);
        o->angle = 2 * PI * rdml_rng_uniform(&g);
        o->aspect = 0.4 + 0.6 * rdml_rng_uniform(&g);
        o->texture = (int)rdml_rng_below(&g, 3);
        o->tex_angle = PI * rdml_rng_uniform(&g);
        o->tex_freq = 3 + (double)rdml_rng_below(&g, 6);
        o->detail = rdml_rng_next(&g);
    }
    if (sc->planted_color) {
        /* Objects may cover at most 25% of the image (their bounding squares), so the pure
         * background keeps >= 75% of the pixels. */
        double area = 0;
        for (int i = 0; i < sc->nobj; i++) area += 4 * ext_of(&sc->obj[i]) * ext_of(&sc->obj[i]);
        if (area > 0.25) {
            double k = sqrt(0.25 / area) * 0.999;
            for (int i = 0; i < sc->nobj; i++) sc->obj[i].r *= k;
        }
    }
    for (int i = 0; i < sc->nobj; i++) sc->obj[i].ext = ext_of(&sc->obj[i]);
    rdml_rng l = rdml_rng_make(g.seed, g.stream, RNG_LATENT);
    for (int k = 0; k < SYN_NLATENT; k++) sc->latent[k] = rdml_rng_normal(&l);
}

static int argmax3(const uint8_t c[3]) {
    return pixel_class(c);
}

static void random_color(rdml_rng *r, uint8_t c[3], int lo, int hi) {
    for (int k = 0; k < 3; k++) c[k] = (uint8_t)(lo + (int)rdml_rng_below(r, (uint64_t)(hi - lo + 1)));
}

/* Colours for attempt `a`; attempt MAX_ATTEMPTS is the neutral fallback. */
static void plan_colors(uint64_t seed, syn_scene *sc, int a) {
    rdml_rng r = rdml_rng_make(seed, rdml_rng_substream(RDML_STREAM_SYNTH_IMAGE, (uint64_t)sc->nsd),
                               RNG_COLOR(a));
    sc->attempt = a;
    int pc = sc->planted_color;
    if (pc) {
        int ch = pc - 1;
        memset(sc->bg_a, 0, 3);
        sc->bg_a[ch] = 255;
        int hi = 150 + (int)rdml_rng_below(&r, 106);
        for (int k = 0; k < 3; k++) sc->bg_b[k] = (uint8_t)rdml_rng_below(&r, 90);
        sc->bg_b[ch] = (uint8_t)hi;
    } else if (a >= MAX_ATTEMPTS) {
        /* Fallback: red-ish / green-ish stripes, objects in grays (unclassified). */
        sc->bg_type = SYN_BG_STRIPES;
        sc->bg_freq = 4;
        const uint8_t A[3] = {190, 90, 80}, B[3] = {80, 170, 90};
        memcpy(sc->bg_a, A, 3);
        memcpy(sc->bg_b, B, 3);
    } else if (sc->bg_type == SYN_BG_HORIZON) {
        sc->bg_a[0] = (uint8_t)(80 + rdml_rng_below(&r, 90)); /* sky */
        sc->bg_a[1] = (uint8_t)(130 + rdml_rng_below(&r, 80));
        sc->bg_a[2] = (uint8_t)(215 + rdml_rng_below(&r, 41));
        if (rdml_rng_below(&r, 2)) { /* grass */
            sc->bg_b[0] = (uint8_t)(50 + rdml_rng_below(&r, 60));
            sc->bg_b[1] = (uint8_t)(120 + rdml_rng_below(&r, 70));
            sc->bg_b[2] = (uint8_t)(30 + rdml_rng_below(&r, 60));
        } else { /* earth */
            sc->bg_b[0] = (uint8_t)(130 + rdml_rng_below(&r, 50));
            sc->bg_b[1] = (uint8_t)(85 + rdml_rng_below(&r, 35));
            sc->bg_b[2] = (uint8_t)(40 + rdml_rng_below(&r, 40));
        }
    } else {
        random_color(&r, sc->bg_a, 20, 235);
        for (int t = 0; t < 32; t++) {
            random_color(&r, sc->bg_b, 20, 235);
            if (argmax3(sc->bg_b) != argmax3(sc->bg_a)) break;
        }
    }
    for (int i = 0; i < sc->nobj; i++) {
        syn_object *o = &sc->obj[i];
        random_color(&r, o->col, 0, 255);
        random_color(&r, o->col2, 0, 255);
        if (!pc && a >= MAX_ATTEMPTS) {
            uint8_t g1 = (uint8_t)(40 + 20 * i), g2 = (uint8_t)(200 - 20 * i);
            memset(o->col, g1, 3);
            memset(o->col2, g2, 3);
        }
    }
}

static void lerp3(const uint8_t a[3], const uint8_t b[3], double t, uint8_t *out) {
    if (t < 0) t = 0;
    if (t > 1) t = 1;
    /* The value lies in [0, 255]: adding 0.5 and truncating rounds half up. */
    for (int k = 0; k < 3; k++) out[k] = (uint8_t)(a[k] + t * (b[k] - a[k]) + 0.5);
}

static double smooth(double t) { return t * t * (3 - 2 * t); }

static int draw_background(rdml_ctx *ctx, uint64_t seed, const syn_scene *sc, canvas *cv) {
    int64_t S = cv->S;
    double ca = cos(sc->bg_angle), sa = sin(sc->bg_angle), f = sc->bg_freq;
    double *lat = NULL;
    int G = (int)f + 2;
    if (sc->bg_type == SYN_BG_NOISE) {
        lat = rdml_malloc(ctx, (size_t)(G * G) * sizeof *lat, "synthetic noise lattice");
        if (!lat) return ctx->code;
        rdml_rng r = rdml_rng_make(seed, rdml_rng_substream(RDML_STREAM_SYNTH_IMAGE, (uint64_t)sc->nsd),
                                   RNG_LATTICE(sc->attempt));
        for (int k = 0; k < G * G; k++) lat[k] = rdml_rng_uniform(&r);
    }
    uint8_t white[3] = {250, 250, 250}, sky_lo[3], c[3];
    lerp3(sc->bg_a, white, 0.45, sky_lo);
    if (sc->planted_color) memcpy(sky_lo, sc->bg_a, 3);
    for (int64_t iy = 0; iy < S; iy++) {
        double y = (iy + 0.5) / (double)S;
        for (int64_t ix = 0; ix < S; ix++) {
            double x = (ix + 0.5) / (double)S;
            uint8_t *q = cv->px + 3 * (iy * S + ix);
            switch (sc->bg_type) {
            case SYN_BG_GRADIENT:
                lerp3(sc->bg_a, sc->bg_b, 0.5 + ((x - 0.5) * ca + (y - 0.5) * sa) / 1.4142, c);
                break;
            case SYN_BG_STRIPES: {
                double t = (x * ca + y * sa) * f;
                memcpy(c, t - floor(t) < 0.5 ? sc->bg_a : sc->bg_b, 3);
                break;
            }
            case SYN_BG_CHECKER: {
                double u = (x * ca + y * sa) * f, v = (-x * sa + y * ca) * f;
                memcpy(c, (((int64_t)floor(u) + (int64_t)floor(v)) & 1) ? sc->bg_b : sc->bg_a, 3);
                break;
            }
            case SYN_BG_NOISE: {
                double gx = x * (G - 1), gy = y * (G - 1);
                int i0 = (int)gx, j0 = (int)gy;
                if (i0 > G - 2) i0 = G - 2;
                if (j0 > G - 2) j0 = G - 2;
                double tx = smooth(gx - i0), ty = smooth(gy - j0);
                double v0 = lat[j0 * G + i0] + tx * (lat[j0 * G + i0 + 1] - lat[j0 * G + i0]);
                double v1 = lat[(j0 + 1) * G + i0] +
                            tx * (lat[(j0 + 1) * G + i0 + 1] - lat[(j0 + 1) * G + i0]);
                lerp3(sc->bg_a, sc->bg_b, smooth(v0 + ty * (v1 - v0)), c);
                break;
            }
            default: /* horizon: sky brightening towards the horizon, darker ground below */
                if (y < sc->horizon) {
                    lerp3(sc->bg_a, sky_lo, y / sc->horizon, c);
                } else {
                    uint8_t dark[3];
                    for (int k = 0; k < 3; k++) dark[k] = (uint8_t)(sc->bg_b[k] * 0.6);
                    if (sc->planted_color) memcpy(dark, sc->bg_b, 3);
                    lerp3(sc->bg_b, dark, (y - sc->horizon) / (1 - sc->horizon), c);
                }
            }
            memcpy(q, c, 3);
        }
    }
    free(lat);
    return RDML_OK;
}

static int render_attempt(rdml_ctx *ctx, uint64_t seed, syn_scene *sc, canvas *cv) {
    memset(cv->mask, 0, (size_t)(cv->S * cv->S));
    RDML_TRY(draw_background(ctx, seed, sc, cv));
    /* Smaller objects first, the primary object (index 0) last, on top. */
    for (int i = sc->nobj - 1; i >= 0; i--) draw_object(cv, &sc->obj[i]);
    return RDML_OK;
}

int syn_render(rdml_ctx *ctx, uint64_t seed, double color_fraction, int64_t nsd, int64_t size,
               rdml_image *im, syn_scene *sc) {
    memset(im, 0, sizeof *im);
    plan_geometry(seed, color_fraction, nsd, sc);
    RDML_TRY(rdml_image_alloc(ctx, im, size, size, 3));
    canvas cv = {im->px, NULL, size};
    cv.mask = rdml_malloc(ctx, (size_t)(size * size), "synthetic object mask");
    if (!cv.mask) {
        rdml_image_free(im);
        return ctx->code;
    }
    int64_t npix = size * size;
    int rc = RDML_OK;
    for (int a = 0; a <= MAX_ATTEMPTS; a++) {
        plan_colors(seed, sc, a);
        rc = render_attempt(ctx, seed, sc, &cv);
        if (rc) break;
        color_counts(im->px, npix, sc->color_count);
        int64_t classified = npix - sc->color_count[0], dom = 0;
        for (int c = 1; c <= 3; c++)
            if (sc->color_count[c] > dom) dom = sc->color_count[c];
        if (sc->planted_color) {
            /* Guaranteed by the object-size cap; checked anyway. */
            if (100 * sc->color_count[sc->planted_color] < 72 * npix)
                rc = RDML_FAIL(ctx, RDML_EINTERNAL,
                               "synthetic image nsd-%05lld: planted colour covers only %.3f of "
                               "the pixels (a bug in the renderer)",
                               (long long)nsd, (double)sc->color_count[sc->planted_color] / npix);
            break;
        }
        if (100 * dom < 68 * classified) break;
        if (a == MAX_ATTEMPTS)
            rc = RDML_FAIL(ctx, RDML_EINTERNAL,
                           "synthetic image nsd-%05lld: the neutral fallback is still dominated "
                           "by one colour (a bug in the renderer)", (long long)nsd);
    }
    if (!rc) {
        sc->color_class = rdml_synth_color_class(im->px, npix, NULL);
        int64_t covered = 0;
        for (int64_t i = 0; i < npix; i++) covered += cv.mask[i];
        sc->cover = (double)covered / (double)npix;
        if (sc->color_class != sc->planted_color)
            rc = RDML_FAIL(ctx, RDML_EINTERNAL,
                           "synthetic image nsd-%05lld: colour class %d but planted %d",
                           (long long)nsd, sc->color_class, sc->planted_color);
    }
    free(cv.mask);
    if (rc) rdml_image_free(im);
    return rc;
}
