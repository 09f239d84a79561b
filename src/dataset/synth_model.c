/* The generative fMRI model of the synthetic dataset (equations in docs/synth.md): image
 * features (Gabor quadrature energy at 6x6 receptive-field positions x 4 orientations x 2
 * spatial frequencies on a downsampled gray image, colour statistics including the paper's
 * nearest-pure-colour fractions, object-category presence from the renderer's truth, scene
 * layout, luminance/contrast, and 8 latent factors shared by every subject that sees the
 * image); a deterministic ROI layout per (seed, subject, hemisphere) with the release's class
 * and ROI names and roughly its proportions; per-vertex tuning (early visual cortex: energy at
 * a retinotopic position; hV4: colour; floc ROIs: their category; streams: coarser mixtures;
 * unlabelled vertices: weak mixed tuning and more noise); and the rows of the fMRI matrices,
 * with the per-vertex normalisation computed from the feature correlation matrix (a pure
 * function of all images' features, so it does not depend on how rows are split over ranks).
 * Left out: spatially correlated noise, haemodynamics, session effects beyond the per-vertex
 * z-scoring, and any claim that the tuning resembles real cortex beyond these coarse facts. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dataset/synth_internal.h"

#define PI 3.14159265358979323846

/* ---- features ---- */

int syn_fbank_make(rdml_ctx *ctx, int64_t image_size, syn_fbank *fb) {
    memset(fb, 0, sizeof *fb);
    fb->D = image_size < 48 ? image_size : 48;
    double D = (double)fb->D, sigma = D / (2.0 * SYN_GRID);
    fb->R = (int)ceil(2.5 * sigma);
    int W = 2 * fb->R + 1;
    size_t K = (size_t)W * (size_t)W;
    fb->env = rdml_malloc(ctx, K * sizeof(double), "Gabor envelope");
    fb->kc = rdml_malloc(ctx, SYN_NORI * SYN_NSF * K * sizeof(double), "Gabor kernels");
    fb->ks = rdml_malloc(ctx, SYN_NORI * SYN_NSF * K * sizeof(double), "Gabor kernels");
    if (!fb->env || !fb->kc || !fb->ks) {
        syn_fbank_free(fb);
        return ctx->code;
    }
    const double lambda[SYN_NSF] = {D / 4.0, D / 8.0};
    for (int dy = -fb->R; dy <= fb->R; dy++)
        for (int dx = -fb->R; dx <= fb->R; dx++) {
            size_t k = (size_t)(dy + fb->R) * (size_t)W + (size_t)(dx + fb->R);
            fb->env[k] = exp(-(dx * dx + dy * dy) / (2 * sigma * sigma));
            for (int o = 0; o < SYN_NORI; o++)
                for (int s = 0; s < SYN_NSF; s++) {
                    double th = PI * o / SYN_NORI;
                    double ph = 2 * PI * (dx * cos(th) + dy * sin(th)) / lambda[s];
                    fb->kc[(size_t)(o * SYN_NSF + s) * K + k] = fb->env[k] * cos(ph);
                    fb->ks[(size_t)(o * SYN_NSF + s) * K + k] = fb->env[k] * sin(ph);
                }
        }
    return RDML_OK;
}

void syn_fbank_free(syn_fbank *fb) {
    free(fb->env);
    free(fb->kc);
    free(fb->ks);
    memset(fb, 0, sizeof *fb);
}

void syn_features(const syn_fbank *fb, const rdml_image *im, const syn_scene *sc, double *work,
                  double *f) {
    int64_t S = im->w, D = fb->D, npix = S * S;
    double *g = work, *cnt = work + D * D;
    memset(f, 0, SYN_NFEAT * sizeof *f);
    memset(work, 0, (size_t)(2 * D * D) * sizeof *work);
    /* Colour statistics at full resolution; gray box-averaged down to D x D. */
    double sr = 0, sg = 0, sb = 0, ssat = 0;
    for (int64_t y = 0; y < S; y++) {
        int64_t cy = y * D / S;
        for (int64_t x = 0; x < S; x++) {
            const uint8_t *q = im->px + 3 * (y * S + x);
            int mx = q[0] > q[1] ? q[0] : q[1], mn = q[0] < q[1] ? q[0] : q[1];
            if (q[2] > mx) mx = q[2];
            if (q[2] < mn) mn = q[2];
            sr += q[0];
            sg += q[1];
            sb += q[2];
            ssat += mx > 0 ? (double)(mx - mn) / mx : 0.0;
            int64_t c = cy * D + x * D / S;
            g[c] += (0.299 * q[0] + 0.587 * q[1] + 0.114 * q[2]) / 255.0;
            cnt[c] += 1;
        }
    }
    for (int64_t i = 0; i < D * D; i++) g[i] /= cnt[i];
    double mr = sr / npix / 255, mg = sg / npix / 255, mb = sb / npix / 255, tot = mr + mg + mb;
    double *fc = f + SYN_F_COLOR;
    fc[0] = mr;
    fc[1] = mg;
    fc[2] = mb;
    fc[3] = tot > 0 ? mr / tot : 1.0 / 3;
    fc[4] = tot > 0 ? mg / tot : 1.0 / 3;
    fc[5] = ssat / npix;
    for (int c = 0; c < 3; c++) fc[6 + c] = (double)sc->color_count[1 + c] / npix;
    if (sc->color_class) fc[9 + sc->color_class - 1] = 1;

    for (int i = 0; i < sc->nobj; i++) f[SYN_F_CAT + sc->obj[i].category] += sc->obj[i].r;
    f[SYN_F_LAYOUT + 0] = sc->bg_type == SYN_BG_HORIZON ? 1 - sc->horizon : 0;
    f[SYN_F_LAYOUT + 1] = 1 - sc->cover;
    f[SYN_F_LAYOUT + 2] = sc->nobj / (double)SYN_MAXOBJ;

    double m = 0, v = 0, grad = 0;
    for (int64_t i = 0; i < D * D; i++) m += g[i];
    m /= (double)(D * D);
    for (int64_t i = 0; i < D * D; i++) v += (g[i] - m) * (g[i] - m);
    for (int64_t y = 0; y + 1 < D; y++)
        for (int64_t x = 0; x + 1 < D; x++) {
            double gx = g[y * D + x + 1] - g[y * D + x], gy = g[(y + 1) * D + x] - g[y * D + x];
            grad += sqrt(gx * gx + gy * gy);
        }
    f[SYN_F_LUM + 0] = m;
    f[SYN_F_LUM + 1] = sqrt(v / (double)(D * D));
    f[SYN_F_LUM + 2] = grad / (double)((D - 1) * (D - 1));
    for (int k = 0; k < SYN_NLATENT; k++) f[SYN_F_LATENT + k] = sc->latent[k];

    /* Quadrature energy: sqrt(even^2 + odd^2) of the locally mean-removed image, per unit
     * envelope mass; pixels outside the image are left out. */
    int R = fb->R, W = 2 * R + 1;
    size_t K = (size_t)W * (size_t)W;
    double esum = 0;
    for (size_t k = 0; k < K; k++) esum += fb->env[k];
    for (int gy = 0; gy < SYN_GRID; gy++)
        for (int gx = 0; gx < SYN_GRID; gx++) {
            int64_t cx = (int64_t)floor((gx + 0.5) * D / SYN_GRID);
            int64_t cy = (int64_t)floor((gy + 0.5) * D / SYN_GRID);
            double wm = 0, ws = 0;
            for (int dy = -R; dy <= R; dy++) {
                int64_t y = cy + dy;
                if (y < 0 || y >= D) continue;
                for (int dx = -R; dx <= R; dx++) {
                    int64_t x = cx + dx;
                    if (x < 0 || x >= D) continue;
                    double e = fb->env[(size_t)(dy + R) * (size_t)W + (size_t)(dx + R)];
                    wm += e * g[y * D + x];
                    ws += e;
                }
            }
            double lm = wm / ws;
            for (int b = 0; b < SYN_NORI * SYN_NSF; b++) {
                const double *kc = fb->kc + (size_t)b * K, *ks = fb->ks + (size_t)b * K;
                double c = 0, s = 0;
                for (int dy = -R; dy <= R; dy++) {
                    int64_t y = cy + dy;
                    if (y < 0 || y >= D) continue;
                    for (int dx = -R; dx <= R; dx++) {
                        int64_t x = cx + dx;
                        if (x < 0 || x >= D) continue;
                        size_t k = (size_t)(dy + R) * (size_t)W + (size_t)(dx + R);
                        double val = g[y * D + x] - lm;
                        c += kc[k] * val;
                        s += ks[k] * val;
                    }
                }
                double E = sqrt(c * c + s * s) / esum;
                f[syn_energy_index(gy, gx, b / SYN_NSF, b % SYN_NSF)] = log1p(20 * E);
            }
        }
}

/* ---- ROI layout ---- */

static const char *const class_tags[SYN_NCLASS] = {"prf-visualrois", "floc-bodies", "floc-faces",
                                                  "floc-places", "floc-words", "streams"};
static const char *const roi_names[SYN_NCLASS][8] = {
    {"Unknown", "V1v", "V1d", "V2v", "V2d", "V3v", "V3d", "hV4"},
    {"Unknown", "EBA", "FBA-1", "FBA-2", "mTL-bodies"},
    {"Unknown", "OFA", "FFA-1", "FFA-2", "mTL-faces", "aTL-faces"},
    {"Unknown", "OPA", "PPA", "RSC"},
    {"Unknown", "OWFA", "VWFA-1", "VWFA-2", "mfs-words", "mTL-words"},
    {"Unknown", "early", "midventral", "midlateral", "midparietal", "ventral", "lateral",
     "parietal"}};
static const int class_nroi[SYN_NCLASS] = {7, 4, 5, 3, 5, 7};

const char *syn_class_tag(int cls) { return class_tags[cls]; }
int syn_class_nroi(int cls) { return class_nroi[cls]; }
const char *syn_roi_name(int cls, int code) { return roi_names[cls][code]; }

/* Each ROI is an interval of a 1-D "cortical position" in [0, 1); vertex j sits at a position
 * given by a per-(subject, hemi) permutation, so ROI members are scattered over the vertex
 * index like fsaverage-ordered labels. Sizes are fractions of the hemisphere. */
typedef struct roi_span {
    int cls, code;
    double start, size;
} roi_span;
static const roi_span spans[] = {
    {0, 1, 0.000, 0.045}, {0, 2, 0.045, 0.045}, {0, 3, 0.090, 0.040}, {0, 4, 0.130, 0.040},
    {0, 5, 0.170, 0.035}, {0, 6, 0.205, 0.035}, {0, 7, 0.240, 0.030},
    {1, 1, 0.620, 0.080}, {1, 2, 0.395, 0.010}, {1, 3, 0.700, 0.015}, {1, 4, 0.545, 0.005},
    {2, 1, 0.300, 0.020}, {2, 2, 0.400, 0.020}, {2, 3, 0.420, 0.015}, {2, 4, 0.480, 0.005},
    {2, 5, 0.490, 0.005},
    {3, 1, 0.800, 0.050}, {3, 2, 0.500, 0.030}, {3, 3, 0.530, 0.015},
    {4, 1, 0.320, 0.015}, {4, 2, 0.430, 0.025}, {4, 3, 0.455, 0.015}, {4, 4, 0.470, 0.010},
    {4, 5, 0.495, 0.005},
    {5, 1, 0.000, 0.240}, {5, 2, 0.240, 0.050}, {5, 3, 0.290, 0.050}, {5, 4, 0.340, 0.050},
    {5, 5, 0.390, 0.170}, {5, 6, 0.560, 0.200}, {5, 7, 0.760, 0.180}};
#define NSPANS ((int)(sizeof spans / sizeof spans[0]))

void syn_empty_roi(int subject, int *hemi, int *cls, int *code) {
    /* One small medial-temporal ROI is empty in one hemisphere of every subject, as some are
     * in the release; never an early visual ROI. */
    static const int pick[4][2] = {{1, 4}, {2, 4}, {2, 5}, {4, 5}};
    int k = (subject - 1) % 4;
    *hemi = subject % 2;
    *cls = pick[k][0];
    *code = pick[k][1];
}

int syn_hemi_make(rdml_ctx *ctx, uint64_t seed, int subject, int hemi, int64_t nv, syn_hemi *h) {
    memset(h, 0, sizeof *h);
    h->nv = nv;
    int64_t *pos = rdml_malloc(ctx, (size_t)nv * sizeof *pos, "synthetic ROI layout");
    h->fsavg = rdml_malloc(ctx, (size_t)nv * sizeof *h->fsavg, "synthetic fsaverage positions");
    for (int c = 0; c < SYN_NCLASS; c++)
        h->label[c] = rdml_calloc(ctx, (size_t)nv, sizeof(int64_t), "synthetic ROI labels");
    int ok = pos && h->fsavg;
    for (int c = 0; c < SYN_NCLASS; c++) ok = ok && h->label[c];
    if (!ok) {
        free(pos);
        syn_hemi_free(h);
        return ctx->code;
    }
    uint64_t key = (uint64_t)subject * 2 + (uint64_t)hemi;
    rdml_rng r = rdml_rng_make(seed, rdml_rng_substream(RDML_STREAM_SYNTH_LAYOUT, 100 + key), 0);
    for (int64_t j = 0; j < nv; j++) pos[j] = j;
    rdml_rng_shuffle(&r, pos, nv);
    int e_hemi, e_cls, e_code;
    syn_empty_roi(subject, &e_hemi, &e_cls, &e_code);
    rdml_rng jr = rdml_rng_make(seed, rdml_rng_substream(RDML_STREAM_SYNTH_LAYOUT, 200 + key), 0);
    int64_t range[NSPANS][2];
    double size[NSPANS];
    for (int i = 0; i < NSPANS; i++) size[i] = spans[i].size * (0.85 + 0.3 * rdml_rng_uniform(&jr));
    /* Within a class, ROIs are laid out in order of position and never overlap, and every ROI
     * keeps at least one vertex (however small nv is) except the one forced empty. */
    for (int c = 0; c < SYN_NCLASS; c++) {
        int64_t prev = 0;
        double last = -1;
        for (;;) {
            int i = -1; /* next span of class c by start */
            for (int k = 0; k < NSPANS; k++)
                if (spans[k].cls == c && spans[k].start > last &&
                    (i < 0 || spans[k].start < spans[i].start))
                    i = k;
            if (i < 0) break;
            last = spans[i].start;
            int64_t a = (int64_t)floor(spans[i].start * (double)nv);
            int64_t b = (int64_t)floor((spans[i].start + size[i]) * (double)nv);
            if (a < prev) a = prev;
            if (b <= a) b = a + 1;
            if (b > nv) b = nv;
            if (a > b) a = b;
            if (spans[i].cls == e_cls && spans[i].code == e_code && hemi == e_hemi) b = a;
            range[i][0] = a;
            range[i][1] = b;
            prev = b;
        }
    }
    for (int64_t j = 0; j < nv; j++)
        for (int i = 0; i < NSPANS; i++)
            if (pos[j] >= range[i][0] && pos[j] < range[i][1])
                h->label[spans[i].cls][j] = spans[i].code;
    /* fsaverage positions: vertex j gets an index in [ceil(jW), ceil((j+1)W)), W = 163842/nv,
     * so the indices are distinct and ascending (challenge order = fsaverage order). */
    rdml_rng fr = rdml_rng_make(seed, rdml_rng_substream(RDML_STREAM_SYNTH_LAYOUT, 300 + key), 0);
    for (int64_t j = 0; j < nv; j++) {
        int64_t a = (int64_t)((j * (int64_t)SYN_FSAVERAGE + nv - 1) / nv);
        int64_t b = (int64_t)(((j + 1) * (int64_t)SYN_FSAVERAGE + nv - 1) / nv);
        h->fsavg[j] = a + (int64_t)rdml_rng_below(&fr, (uint64_t)(b - a));
    }
    free(pos);
    return RDML_OK;
}

void syn_hemi_free(syn_hemi *h) {
    for (int c = 0; c < SYN_NCLASS; c++) free(h->label[c]);
    free(h->fsavg);
    memset(h, 0, sizeof *h);
}

/* ---- tuning ---- */

typedef struct tadd {
    int n;
    int32_t *idx;
    double *w;
} tadd;

static void add(tadd *a, int idx, double w) {
    if (a->n < SYN_KMAX) {
        a->idx[a->n] = idx;
        a->w[a->n] = w;
        a->n++;
    }
}

/* Early visual cortex: a receptive field in the contralateral hemifield, upper field for the
 * ventral (v) parts, lower for the dorsal (d); larger pooling from V1 to V3. */
static void tune_early(tadd *a, rdml_rng *r, int hemi, int area, int ventral) {
    int gx = (hemi == 0 ? SYN_GRID / 2 : 0) + (int)rdml_rng_below(r, SYN_GRID / 2);
    int gy = (ventral ? 0 : SYN_GRID / 2) + (int)rdml_rng_below(r, SYN_GRID / 2);
    int o = (int)rdml_rng_below(r, SYN_NORI);
    const double phigh[3] = {0.7, 0.5, 0.3};
    int sf = rdml_rng_uniform(r) < phigh[area] ? 1 : 0;
    int x0 = hemi == 0 ? SYN_GRID / 2 : 0, y0 = ventral ? 0 : SYN_GRID / 2;
    int gx2 = gx + 1 < x0 + SYN_GRID / 2 ? gx + 1 : gx - 1;
    int gy2 = gy + 1 < y0 + SYN_GRID / 2 ? gy + 1 : gy - 1;
    if (area == 0) {
        add(a, syn_energy_index(gy, gx, o, sf), 1.0);
        add(a, syn_energy_index(gy, gx, (o + 1) % SYN_NORI, sf), 0.25);
        add(a, syn_energy_index(gy, gx, (o + SYN_NORI - 1) % SYN_NORI, sf), 0.25);
    } else if (area == 1) {
        add(a, syn_energy_index(gy, gx, o, sf), 0.7);
        add(a, syn_energy_index(gy, gx2, o, sf), 0.5);
        add(a, syn_energy_index(gy, gx, o, 1 - sf), 0.3);
    } else {
        add(a, syn_energy_index(gy, gx, o, sf), 0.45);
        add(a, syn_energy_index(gy, gx2, o, sf), 0.45);
        add(a, syn_energy_index(gy2, gx, o, sf), 0.45);
        add(a, syn_energy_index(gy2, gx2, o, sf), 0.45);
        add(a, syn_energy_index(gy, gx, o, 1 - sf), 0.25);
    }
    add(a, SYN_F_LUM + 1, 0.2);
}

static int random_energy(rdml_rng *r, int hemi, int sf) {
    int gx = (hemi == 0 ? SYN_GRID / 2 : 0) + (int)rdml_rng_below(r, SYN_GRID / 2);
    int gy = (int)rdml_rng_below(r, SYN_GRID);
    return syn_energy_index(gy, gx, (int)rdml_rng_below(r, SYN_NORI), sf);
}

static int central_energy(rdml_rng *r, int sf) {
    int gx = SYN_GRID / 2 - 1 + (int)rdml_rng_below(r, 2), gy = SYN_GRID / 2 - 1 + (int)rdml_rng_below(r, 2);
    return syn_energy_index(gy, gx, (int)rdml_rng_below(r, SYN_NORI), sf);
}

int syn_tuning_make(rdml_ctx *ctx, uint64_t seed, int subject, int hemi, const syn_hemi *h,
                    double noise, syn_tuning *t) {
    memset(t, 0, sizeof *t);
    int64_t nv = h->nv;
    t->nv = nv;
    t->idx = rdml_calloc(ctx, (size_t)nv * SYN_KMAX, sizeof *t->idx, "synthetic tuning");
    t->w = rdml_calloc(ctx, (size_t)nv * SYN_KMAX, sizeof *t->w, "synthetic tuning");
    t->noise_sd = rdml_calloc(ctx, (size_t)nv, sizeof *t->noise_sd, "synthetic tuning");
    t->sig_inv = rdml_calloc(ctx, (size_t)nv, sizeof *t->sig_inv, "synthetic tuning");
    t->noise_load = rdml_calloc(ctx, (size_t)nv * SYN_NNOISE, sizeof *t->noise_load, "synthetic tuning");
    if (!t->idx || !t->w || !t->noise_sd || !t->sig_inv || !t->noise_load) {
        syn_tuning_free(t);
        return ctx->code;
    }
    uint64_t stream =
        rdml_rng_substream(RDML_STREAM_SYNTH_TUNING, (uint64_t)subject * 2 + (uint64_t)hemi);
    for (int64_t v = 0; v < nv; v++) {
        rdml_rng r = rdml_rng_make(seed, stream, (uint64_t)v * 64);
        tadd a = {0, t->idx + v * SYN_KMAX, t->w + v * SYN_KMAX};
        int64_t prf = h->label[0][v], bodies = h->label[1][v], faces = h->label[2][v],
                places = h->label[3][v], words = h->label[4][v], stream5 = h->label[5][v];
        int floc = bodies || faces || places || words, unknown = 0;
        if (prf >= 1 && prf <= 6) {
            tune_early(&a, &r, hemi, (int)(prf - 1) / 2, prf % 2 == 1);
        } else if (prf == 7) { /* hV4: colour */
            int c = (int)rdml_rng_below(&r, 3);
            add(&a, SYN_F_COLOR + 6 + c, 0.8);
            add(&a, SYN_F_COLOR + 9 + c, 0.5);
            add(&a, SYN_F_COLOR + 5, 0.3);
            add(&a, random_energy(&r, hemi, 0), 0.3);
        }
        if (faces) {
            add(&a, SYN_F_CAT + SYN_CAT_FACE, faces == 2 || faces == 3 ? 1.2 : faces == 1 ? 0.8 : 0.9);
            if (faces == 1) add(&a, central_energy(&r, 1), 0.3);
            if (faces == 2 || faces == 3) add(&a, SYN_F_CAT + SYN_CAT_BODY, 0.2);
        }
        if (bodies) {
            add(&a, SYN_F_CAT + SYN_CAT_BODY, bodies == 4 ? 0.8 : 1.0);
            if (bodies == 1) add(&a, SYN_F_LAYOUT + 2, 0.2);
            if (bodies == 2 || bodies == 3) add(&a, SYN_F_CAT + SYN_CAT_FACE, 0.3);
        }
        if (places) {
            add(&a, SYN_F_CAT + SYN_CAT_PLACE, places == 2 ? 1.0 : places == 1 ? 0.8 : 0.7);
            add(&a, SYN_F_LAYOUT + 0, places == 3 ? 0.6 : places == 1 ? 0.5 : 0.4);
            if (places == 2) add(&a, SYN_F_LAYOUT + 1, 0.5);
        }
        if (words) {
            add(&a, SYN_F_CAT + SYN_CAT_WORD, words == 2 || words == 3 ? 1.2 : 1.0);
            if (words == 1) add(&a, central_energy(&r, 1), 0.3);
        }
        if (!prf && !floc) {
            switch (stream5) {
            case 1: tune_early(&a, &r, hemi, 2, (int)rdml_rng_below(&r, 2)); break;
            case 2:
            case 5:
                add(&a, SYN_F_CAT + (int)rdml_rng_below(&r, SYN_NCAT), 0.5);
                add(&a, SYN_F_CAT + (int)rdml_rng_below(&r, SYN_NCAT), 0.5);
                add(&a, SYN_F_COLOR + 6 + (int)rdml_rng_below(&r, 3), 0.3);
                break;
            case 3:
            case 6:
                add(&a, SYN_F_CAT + SYN_CAT_BODY, 0.6);
                add(&a, SYN_F_LAYOUT + 2, 0.3);
                add(&a, SYN_F_CAT + (int)rdml_rng_below(&r, SYN_NCAT), 0.3);
                break;
            case 4:
            case 7:
                add(&a, SYN_F_LAYOUT + 0, 0.5);
                add(&a, SYN_F_LAYOUT + 1, 0.4);
                add(&a, random_energy(&r, hemi, 0), 0.3);
                break;
            default:
                unknown = 1;
                add(&a, (int)rdml_rng_below(&r, SYN_F_LATENT), 0.3);
                add(&a, (int)rdml_rng_below(&r, SYN_F_LATENT), 0.3);
            }
        }
        /* The shared latent factors: what every subject's cortex responds to but the image
         * features above do not capture. */
        int nl = 1 + (int)rdml_rng_below(&r, 2);
        for (int k = 0; k < nl; k++) {
            double w = 0.35 + 0.15 * rdml_rng_uniform(&r);
            add(&a, SYN_F_LATENT + (int)rdml_rng_below(&r, SYN_NLATENT),
                rdml_rng_below(&r, 2) ? w : -w);
        }
        t->noise_sd[v] = noise * exp(0.25 * rdml_rng_normal(&r)) * (unknown ? 1.5 : 1.0);
        double *u = t->noise_load + v * SYN_NNOISE, n2 = 0;
        for (int k = 0; k < SYN_NNOISE; k++) {
            u[k] = rdml_rng_normal(&r);
            n2 += u[k] * u[k];
        }
        for (int k = 0; k < SYN_NNOISE; k++) u[k] /= sqrt(n2);
    }
    return RDML_OK;
}

void syn_tuning_free(syn_tuning *t) {
    free(t->idx);
    free(t->w);
    free(t->noise_sd);
    free(t->sig_inv);
    free(t->noise_load);
    memset(t, 0, sizeof *t);
}

void syn_tuning_scale(syn_tuning *t, const syn_fstats *st) {
    for (int64_t v = 0; v < t->nv; v++) {
        const int32_t *idx = t->idx + v * SYN_KMAX;
        const double *w = t->w + v * SYN_KMAX;
        /* Signal variance over the subject's images: w' C w (C = feature correlations). */
        double var = 0;
        for (int a = 0; a < SYN_KMAX; a++) {
            if (w[a] == 0) continue;
            const double *crow = st->corr + (size_t)idx[a] * SYN_NFEAT;
            for (int b = 0; b < SYN_KMAX; b++) var += w[a] * w[b] * crow[idx[b]];
        }
        t->sig_inv[v] = var > 1e-12 ? 1.0 / sqrt(var) : 0.0;
    }
}

/* ---- standardisation and the fMRI rows ---- */

int syn_fstats_make(rdml_ctx *ctx, const double *feat, int64_t n, syn_fstats *st) {
    memset(st, 0, sizeof *st);
    st->corr = rdml_calloc(ctx, (size_t)SYN_NFEAT * SYN_NFEAT, sizeof *st->corr, "feature correlations");
    double *z = rdml_malloc(ctx, SYN_NFEAT * sizeof *z, "feature row");
    if (!st->corr || !z) {
        free(z);
        syn_fstats_free(st);
        return ctx->code;
    }
    for (int64_t i = 0; i < n; i++)
        for (int k = 0; k < SYN_NFEAT; k++) st->mean[k] += feat[i * SYN_NFEAT + k];
    for (int k = 0; k < SYN_NFEAT; k++) st->mean[k] /= (double)n;
    for (int64_t i = 0; i < n; i++)
        for (int k = 0; k < SYN_NFEAT; k++) {
            double d = feat[i * SYN_NFEAT + k] - st->mean[k];
            st->sd[k] += d * d;
        }
    for (int k = 0; k < SYN_NFEAT; k++) {
        st->sd[k] = sqrt(st->sd[k] / (double)n);
        if (st->sd[k] < 1e-12) st->sd[k] = 0; /* constant feature: standardised to 0 */
    }
    for (int64_t i = 0; i < n; i++) {
        for (int k = 0; k < SYN_NFEAT; k++)
            z[k] = st->sd[k] > 0 ? (feat[i * SYN_NFEAT + k] - st->mean[k]) / st->sd[k] : 0;
        for (int a = 0; a < SYN_NFEAT; a++) {
            if (z[a] == 0) continue;
            double *row = st->corr + (size_t)a * SYN_NFEAT;
            for (int b = a; b < SYN_NFEAT; b++) row[b] += z[a] * z[b];
        }
    }
    for (int a = 0; a < SYN_NFEAT; a++)
        for (int b = a; b < SYN_NFEAT; b++) {
            double c = st->corr[(size_t)a * SYN_NFEAT + b] / (double)n;
            st->corr[(size_t)a * SYN_NFEAT + b] = c;
            st->corr[(size_t)b * SYN_NFEAT + a] = c;
        }
    free(z);
    return RDML_OK;
}

void syn_fstats_free(syn_fstats *st) {
    free(st->corr);
    st->corr = NULL;
}

int syn_repeats(uint64_t seed, int subject, int64_t nsd) {
    uint64_t x = rdml_rng_at(seed, rdml_rng_substream(RDML_STREAM_SYNTH_LAYOUT, 400 + (uint64_t)subject),
                             (uint64_t)nsd);
    double u = (double)(x >> 11) * 0x1.0p-53;
    return u < 0.75 ? 3 : u < 0.9 ? 2 : 1;
}

/* Unit-variance noise from one 64-bit draw: the sum of its four 16-bit lanes as uniforms
 * (Irwin-Hall, n = 4), centred and scaled; excess kurtosis -0.3, range +-3.46. Cheap enough
 * for 10^9 draws at full scale. */
static double unit_noise(uint64_t x) {
    double s = (double)(x & 0xffff) + (double)((x >> 16) & 0xffff) + (double)((x >> 32) & 0xffff) +
               (double)(x >> 48) + 2.0;
    return (s / 65536.0 - 2.0) * 1.7320508075688772;
}

void syn_fmri_rows(uint64_t seed, int subject, int hemi, const syn_tuning *t,
                   const syn_fstats *st, const double *feat, const int64_t *nsd, int64_t nrows,
                   float *out) {
    int64_t nv = t->nv;
    uint64_t nstream =
        rdml_rng_substream(RDML_STREAM_SYNTH_NOISE, (uint64_t)subject * 2 + (uint64_t)hemi);
    uint64_t sstream = rdml_rng_substream(RDML_STREAM_SYNTH_NOISE, 1000 + (uint64_t)subject);
    const double a_ind = sqrt(1 - SYN_NOISE_SHARED), a_sh = sqrt(SYN_NOISE_SHARED);
    double z[SYN_NFEAT];
    for (int64_t i = 0; i < nrows; i++) {
        const double *f = feat + i * SYN_NFEAT;
        for (int k = 0; k < SYN_NFEAT; k++)
            z[k] = st->sd[k] > 0 ? (f[k] - st->mean[k]) / st->sd[k] : 0;
        int R = syn_repeats(seed, subject, nsd[i]);
        /* Structured noise scores of this image's trials (shared by both hemispheres),
         * averaged over the repeats. */
        double eta[SYN_NNOISE] = {0};
        for (int r = 0; r < R; r++) {
            rdml_rng g = rdml_rng_make(seed, sstream, ((uint64_t)nsd[i] * 3 + (uint64_t)r) * 2 * SYN_NNOISE);
            for (int k = 0; k < SYN_NNOISE; k++) eta[k] += rdml_rng_normal(&g) / R;
        }
        for (int64_t v = 0; v < nv; v++) {
            const int32_t *idx = t->idx + v * SYN_KMAX;
            const double *w = t->w + v * SYN_KMAX;
            double s = 0;
            for (int a = 0; a < SYN_KMAX; a++) s += w[a] * z[idx[a]];
            double sig = s * t->sig_inv[v];
            double sd = t->noise_sd[v], e = 0;
            uint64_t base = ((uint64_t)nsd[i] * (uint64_t)nv + (uint64_t)v) * 3;
            for (int r = 0; r < R; r++) e += unit_noise(rdml_rng_at(seed, nstream, base + (uint64_t)r));
            e /= R;
            const double *u = t->noise_load + v * SYN_NNOISE;
            double es = 0;
            for (int k = 0; k < SYN_NNOISE; k++) es += u[k] * eta[k];
            e = a_ind * e + a_sh * es;
            out[i * nv + v] = (float)((sig + sd * e) / sqrt(1 + sd * sd));
        }
    }
}
