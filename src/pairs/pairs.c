/* Pair sets of the paper's protocol built from an RDM: all (i < j), extremes (per image its k
 * lowest then k highest partners, ordered pairs, repeats across images kept), balanced
 * (extremes plus a seeded sample of mid-band partners per image), colours (the paper's
 * nearest-pure-colour pixel rule and largest-share class, two colours cut to the smaller
 * count, all pairs of the list colour-a images then colour-b images, as the paper orders
 * them) and percentile bands; then the options (order-symmetric canonical pairs, dedup) and
 * the labels (binary by threshold, or the value). Partners are ranked by (value, index) so
 * the result is a pure function of the RDM and the seed. Left out: selecting images by
 * anything but colour, and pairs between two subjects. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "rdml/pairs.h"

void rdml_pairs_defaults(rdml_pairs_params *p) {
    memset(p, 0, sizeof *p);
    p->set = RDML_PAIRS_EXTREMES;
    p->k = 50;
    p->mid_lo = 0.85;
    p->mid_hi = 1.15;
    p->pct_lo = 10;
    p->pct_hi = 90;
    p->color_a = RDML_COLOR_RED;
    p->color_b = RDML_COLOR_BLUE;
    p->threshold = 1.0;
    p->seed = 42;
}

static const char *const set_names[] = {"all", "extremes", "balanced", "colors", "percentile"};
static const char *const color_names[] = {"red", "green", "blue"};

int rdml_pairs_set_parse(const char *name) {
    for (int i = 0; i < 5; i++)
        if (name && strcasecmp(name, set_names[i]) == 0) return i;
    return -1;
}
const char *rdml_pairs_set_name(rdml_pairs_set s) {
    return (int)s >= 0 && (int)s < 5 ? set_names[s] : "?";
}
int rdml_color_parse(const char *name) {
    for (int i = 0; i < RDML_NCOLORS; i++)
        if (name && strcasecmp(name, color_names[i]) == 0) return i;
    return -1;
}
const char *rdml_color_name(int c) { return c >= 0 && c < RDML_NCOLORS ? color_names[c] : "none"; }

int rdml_pairs_color_of(const uint8_t *rgb, int64_t npix, double fraction, double frac[3]) {
    static const int pure[3][3] = {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}};
    int64_t cnt[3] = {0, 0, 0};
    for (int64_t p = 0; p < npix; p++) {
        int64_t d[3];
        for (int c = 0; c < 3; c++) {
            int64_t s = 0;
            for (int k = 0; k < 3; k++) {
                int64_t e = (int64_t)rgb[3 * p + k] - pure[c][k];
                s += e * e;
            }
            d[c] = s;
        }
        int best = 0;
        for (int c = 1; c < 3; c++)
            if (d[c] < d[best]) best = c;
        int ties = 0;
        for (int c = 0; c < 3; c++) ties += d[c] == d[best];
        if (ties == 1) cnt[best]++;
    }
    double f[3];
    for (int c = 0; c < 3; c++) {
        f[c] = npix > 0 ? (double)cnt[c] / (double)npix : 0;
        if (frac) frac[c] = f[c];
    }
    return npix > 0 ? rdml_pairs_color_class(f, fraction) : RDML_COLOR_NONE;
}

int rdml_pairs_color_class(const double frac[3], double fraction) {
    int best = 0; /* the largest share; the first of red, green, blue on a tie (np.argmax) */
    for (int c = 1; c < 3; c++)
        if (frac[c] > frac[best]) best = c;
    return frac[best] >= fraction ? best : RDML_COLOR_NONE;
}

void rdml_pairs_free(rdml_pairs *p) {
    if (!p) return;
    free(p->ij);
    free(p->value);
    free(p->label);
    memset(p, 0, sizeof *p);
}

void rdml_pairs_count(const rdml_pairs *p, int64_t *n0, int64_t *n1) {
    *n0 = *n1 = 0;
    for (int64_t t = 0; t < p->n; t++) {
        int one = p->continuous ? 0 : p->label[t] > 0.5;
        if (one) (*n1)++;
        else (*n0)++;
    }
}

/* growable pair list */
typedef struct plist {
    int64_t n, cap, *ij;
} plist;

static int plist_push(rdml_ctx *ctx, plist *l, int64_t a, int64_t b) {
    if (l->n == l->cap) {
        int64_t cap = l->cap ? 2 * l->cap : 1024;
        int64_t *q = rdml_realloc(ctx, l->ij, (size_t)cap * 2 * sizeof *q, "pair list");
        if (!q) return ctx->code;
        l->ij = q;
        l->cap = cap;
    }
    l->ij[2 * l->n] = a;
    l->ij[2 * l->n + 1] = b;
    l->n++;
    return RDML_OK;
}

typedef struct partner {
    double v;
    int64_t j;
} partner;

static int cmp_partner_asc(const void *pa, const void *pb) {
    const partner *a = pa, *b = pb;
    if (a->v != b->v) return a->v < b->v ? -1 : 1;
    return (a->j > b->j) - (a->j < b->j);
}
/* descending value; ties: larger index first (numpy argsort reversed) */
static int cmp_partner_desc(const void *pa, const void *pb) { return cmp_partner_asc(pb, pa); }

static int cmp_double(const void *pa, const void *pb) {
    double a = *(const double *)pa, b = *(const double *)pb;
    return (a > b) - (a < b);
}

static double percentile_sorted(const double *v, int64_t m, double pct) {
    double pos = pct / 100.0 * (double)(m - 1);
    int64_t lo = (int64_t)floor(pos);
    if (lo >= m - 1) return v[m - 1];
    double f = pos - (double)lo;
    return v[lo] + f * (v[lo + 1] - v[lo]);
}

static int build_extremes(rdml_ctx *ctx, const rdml_pairs_params *p, int64_t n, const float *rdm,
                          plist *l) {
    partner *row = rdml_malloc(ctx, (size_t)n * sizeof *row, "partner row");
    int64_t *band = rdml_malloc(ctx, (size_t)n * sizeof *band, "band partners");
    int rc = row && band ? RDML_OK : ctx->code;
    int64_t mid = p->mid_count > 0 ? p->mid_count : (int64_t)floor((double)p->k / 0.3);
    for (int64_t i = 0; i < n && !rc; i++) {
        int64_t m = 0;
        for (int64_t j = 0; j < n; j++)
            if (j != i) row[m++] = (partner){rdm[i * n + j], j};
        qsort(row, (size_t)m, sizeof *row, cmp_partner_asc);
        for (int64_t t = 0; t < p->k && !rc; t++) rc = plist_push(ctx, l, i, row[t].j);
        qsort(row, (size_t)m, sizeof *row, cmp_partner_desc);
        for (int64_t t = 0; t < p->k && !rc; t++) rc = plist_push(ctx, l, i, row[t].j);
        if (p->set != RDML_PAIRS_BALANCED || rc) continue;
        int64_t nb = 0;
        for (int64_t j = 0; j < n; j++)
            if (j != i && rdm[i * n + j] >= p->mid_lo && rdm[i * n + j] <= p->mid_hi) band[nb++] = j;
        if (nb > mid) {
            /* seeded partial Fisher-Yates on image i's own sub-stream, then index order */
            rdml_rng r = rdml_rng_make(p->seed, rdml_rng_substream(RDML_STREAM_PAIRS, (uint64_t)i), 0);
            for (int64_t t = 0; t < mid; t++) {
                int64_t u = t + (int64_t)rdml_rng_below(&r, (uint64_t)(nb - t));
                int64_t x = band[t];
                band[t] = band[u];
                band[u] = x;
            }
            nb = mid;
            for (int64_t t = 1; t < nb; t++) { /* insertion sort: nb is small */
                int64_t x = band[t], s = t;
                while (s > 0 && band[s - 1] > x) {
                    band[s] = band[s - 1];
                    s--;
                }
                band[s] = x;
            }
        }
        for (int64_t t = 0; t < nb && !rc; t++) rc = plist_push(ctx, l, i, band[t]);
    }
    free(row);
    free(band);
    return rc;
}

static int build_colors(rdml_ctx *ctx, const rdml_pairs_params *p, int64_t n, const int *colors,
                        plist *l, int64_t *used) {
    if (!colors)
        return RDML_FAIL(ctx, RDML_EINTERNAL, "pairs.set = colors needs the images' colour classes");
    if (p->color_a == p->color_b || p->color_a < 0 || p->color_b < 0 || p->color_a >= RDML_NCOLORS ||
        p->color_b >= RDML_NCOLORS)
        return RDML_FAIL(ctx, RDML_ECONFIG, "pairs.colors must name two different colours of red, "
                         "green, blue (got %s and %s)", rdml_color_name(p->color_a),
                         rdml_color_name(p->color_b));
    int64_t na = 0, nb = 0, cnt[RDML_NCOLORS] = {0, 0, 0};
    for (int64_t i = 0; i < n; i++) {
        na += colors[i] == p->color_a;
        nb += colors[i] == p->color_b;
        if (colors[i] >= 0 && colors[i] < RDML_NCOLORS) cnt[colors[i]]++;
    }
    if (na == 0 || nb == 0)
        return RDML_FAIL(ctx, RDML_EDATA,
                         "colour pairs: %lld of the %lld images are %s and %lld are %s (red %lld, "
                         "green %lld, blue %lld; the rest have no colour holding the fraction); "
                         "both colours need images (hint: choose other pairs.colors, lower "
                         "pairs.color_fraction, or use more images)",
                         (long long)na, (long long)n, rdml_color_name(p->color_a), (long long)nb,
                         rdml_color_name(p->color_b), (long long)cnt[0], (long long)cnt[1],
                         (long long)cnt[2]);
    int64_t m = na < nb ? na : nb, ta = 0, tb = 0;
    int64_t *keep = rdml_malloc(ctx, (size_t)(2 * m) * sizeof *keep, "colour images");
    if (!keep) return ctx->code;
    /* the first m of each colour in image order, the colour-a images first (the paper's
     * list), then every pair (s < t) of that list: an a-b pair has its a image first */
    for (int64_t i = 0; i < n; i++) {
        if (colors[i] == p->color_a && ta < m) keep[ta++] = i;
        else if (colors[i] == p->color_b && tb < m) keep[m + tb++] = i;
    }
    const int64_t nk = 2 * m;
    int rc = RDML_OK;
    for (int64_t s = 0; s < nk && !rc; s++)
        for (int64_t t = s + 1; t < nk && !rc; t++) rc = plist_push(ctx, l, keep[s], keep[t]);
    free(keep);
    *used = m;
    return rc;
}

static int build_percentile(rdml_ctx *ctx, const rdml_pairs_params *p, int64_t n, const float *rdm,
                            plist *l) {
    if (!(p->pct_lo >= 0 && p->pct_lo <= p->pct_hi && p->pct_hi <= 100))
        return RDML_FAIL(ctx, RDML_ECONFIG, "pairs.percentiles = %g,%g: need 0 <= low <= high <= 100",
                         p->pct_lo, p->pct_hi);
    int64_t m = n * (n - 1) / 2, q = 0;
    double *v = rdml_malloc(ctx, (size_t)m * sizeof *v, "RDM triangle");
    if (!v) return ctx->code;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = i + 1; j < n; j++) v[q++] = rdm[i * n + j];
    qsort(v, (size_t)m, sizeof *v, cmp_double);
    double lo = percentile_sorted(v, m, p->pct_lo), hi = percentile_sorted(v, m, p->pct_hi);
    free(v);
    int rc = RDML_OK;
    for (int64_t i = 0; i < n && !rc; i++)
        for (int64_t j = i + 1; j < n && !rc; j++) {
            double x = rdm[i * n + j];
            if (x <= lo || x >= hi) rc = plist_push(ctx, l, i, j);
        }
    return rc;
}

static int cmp3(const void *pa, const void *pb) {
    const int64_t *a = pa, *b = pb;
    for (int k = 0; k < 3; k++)
        if (a[k] != b[k]) return a[k] < b[k] ? -1 : 1;
    return 0;
}

/* Keep the first occurrence of each (a, b); stable. O(P log P). */
static int dedup_pairs(rdml_ctx *ctx, plist *l) {
    int64_t n = l->n;
    uint8_t *drop = rdml_calloc(ctx, (size_t)(n ? n : 1), 1, "dedup flags");
    if (!drop) return ctx->code;
    /* key sort of (a, b, position) via a packed 3-tuple array */
    int64_t *key = rdml_malloc(ctx, (size_t)(n ? n : 1) * 3 * sizeof *key, "dedup keys");
    if (!key) {
        free(drop);
        return ctx->code;
    }
    for (int64_t t = 0; t < n; t++) {
        key[3 * t] = l->ij[2 * t];
        key[3 * t + 1] = l->ij[2 * t + 1];
        key[3 * t + 2] = t;
    }
    qsort(key, (size_t)n, 3 * sizeof *key, cmp3);
    for (int64_t t = 1; t < n; t++)
        if (key[3 * t] == key[3 * t - 3] && key[3 * t + 1] == key[3 * t - 2]) drop[key[3 * t + 2]] = 1;
    int64_t w = 0;
    for (int64_t t = 0; t < n; t++) {
        if (drop[t]) continue;
        l->ij[2 * w] = l->ij[2 * t];
        l->ij[2 * w + 1] = l->ij[2 * t + 1];
        w++;
    }
    l->n = w;
    free(drop);
    free(key);
    return RDML_OK;
}

int rdml_pairs_build(rdml_ctx *ctx, const rdml_pairs_params *p, int64_t n, const float *rdm,
                     const int *colors, rdml_pairs *out) {
    memset(out, 0, sizeof *out);
    if (n < 2) return RDML_FAIL(ctx, RDML_EDATA, "pairs need at least 2 images (got %lld)", (long long)n);
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++)
            if (!isfinite(rdm[i * n + j]))
                return RDML_FAIL(ctx, RDML_EDATA, "RDM value (%lld, %lld) is not finite",
                                 (long long)i, (long long)j);
    if ((p->set == RDML_PAIRS_EXTREMES || p->set == RDML_PAIRS_BALANCED) && (p->k < 1 || p->k > n - 1))
        return RDML_FAIL(ctx, RDML_EDATA,
                         "pairs.k = %lld partners per side, but each of the %lld images has only "
                         "%lld partners (hint: lower pairs.k or use more images)",
                         (long long)p->k, (long long)n, (long long)(n - 1));
    plist l = {0, 0, NULL};
    int rc = RDML_OK;
    int64_t used = 0;
    switch (p->set) {
    case RDML_PAIRS_ALL:
        for (int64_t i = 0; i < n && !rc; i++)
            for (int64_t j = i + 1; j < n && !rc; j++) rc = plist_push(ctx, &l, i, j);
        break;
    case RDML_PAIRS_EXTREMES:
    case RDML_PAIRS_BALANCED: rc = build_extremes(ctx, p, n, rdm, &l); break;
    case RDML_PAIRS_COLORS: rc = build_colors(ctx, p, n, colors, &l, &used); break;
    case RDML_PAIRS_PERCENTILE: rc = build_percentile(ctx, p, n, rdm, &l); break;
    default: rc = RDML_FAIL(ctx, RDML_EINTERNAL, "unknown pair set %d", (int)p->set);
    }
    if (!rc && p->symmetric)
        for (int64_t t = 0; t < l.n; t++)
            if (l.ij[2 * t] > l.ij[2 * t + 1]) {
                int64_t x = l.ij[2 * t];
                l.ij[2 * t] = l.ij[2 * t + 1];
                l.ij[2 * t + 1] = x;
            }
    if (!rc && (p->dedup || p->symmetric)) rc = dedup_pairs(ctx, &l);
    if (!rc && l.n == 0)
        rc = RDML_FAIL(ctx, RDML_EDATA, "the %s pair set of %lld images is empty",
                       rdml_pairs_set_name(p->set), (long long)n);
    if (rc) {
        free(l.ij);
        return rc;
    }
    out->n = l.n;
    out->ij = l.ij;
    out->continuous = p->continuous;
    out->n_images_used = used;
    out->value = rdml_malloc(ctx, (size_t)l.n * sizeof *out->value, "pair values");
    out->label = rdml_malloc(ctx, (size_t)l.n * sizeof *out->label, "pair labels");
    if (!out->value || !out->label) {
        rdml_pairs_free(out);
        return ctx->code;
    }
    for (int64_t t = 0; t < l.n; t++) {
        double v = rdm[l.ij[2 * t] * n + l.ij[2 * t + 1]];
        out->value[t] = v;
        out->label[t] = p->continuous ? v : (v > p->threshold ? 1.0 : 0.0);
    }
    return RDML_OK;
}
