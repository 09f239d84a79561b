/* Correlations between two vectors (Pearson, Spearman, Kendall tau-a) and the comparison of
 * two RDMs on their strict upper triangles. Pearson is two-pass in double with blocked sums.
 * Both rank methods first map every value to an order-preserving 32-bit key: the float's own
 * bit pattern (made monotone) when all values are floats, as RDM entries are, else the dense
 * rank from a radix sort of 64-bit keys. Spearman then radix-sorts (key << 32 | index) words
 * and gives tied values their average rank (scipy.stats.rankdata "average") before Pearson.
 * Kendall tau-a follows Knight (1966): one radix sort of (key a << 32 | key b) words gives
 * the order by (a, b) and, from runs of equal words, the pairs tied in a (n1) and in both
 * (n3); the discordant pairs n_d are the strict inversions of b's keys in that order (a
 * counting merge sort, which leaves them sorted for the pairs tied in b, n2); then
 * n_c - n_d = n0 - n1 - n2 + n3 - 2 n_d over n0 = P(P-1)/2. O(P log P) time, 16 bytes (Kendall)
 * or 36 bytes (Spearman) of workspace per value. Left out: NaN handling (a NaN is an error
 * naming its index, where scipy returns nan), tau-b/tau-c, p-values, weights, and more than
 * 2^32 - 1 values (n > 92681 images). rdml_rsa_rank exposes Spearman's average ranks (for the
 * noise ceiling's rank pooling). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/radix.h"
#include "rdml/rsa.h"

static const char *const method_names[] = {"spearman", "pearson", "kendall_tau_a"};

const char *rdml_rsa_method_name(rdml_rsa_method m) {
    if ((int)m < 0 || (int)m > 2) return "unknown";
    return method_names[m];
}

int rdml_rsa_method_parse(rdml_ctx *ctx, const char *name, rdml_rsa_method *out) {
    if (!name) name = "(null)";
    for (int i = 0; i < 3; i++)
        if (strcmp(name, method_names[i]) == 0) {
            *out = (rdml_rsa_method)i;
            return RDML_OK;
        }
    /* common spellings from scipy / rsatoolbox */
    if (strcmp(name, "kendall") == 0 || strcmp(name, "tau-a") == 0 || strcmp(name, "tau_a") == 0) {
        *out = RDML_RSA_KENDALL_A;
        return RDML_OK;
    }
    if (strcmp(name, "corr") == 0 || strcmp(name, "correlation") == 0) {
        *out = RDML_RSA_PEARSON;
        return RDML_OK;
    }
    int near = rdml_nearest(name, method_names, 3);
    return RDML_FAIL(ctx, RDML_ECONFIG,
                     "unknown RDM comparison method '%s' (valid: spearman, pearson, "
                     "kendall_tau_a)%s%s%s",
                     name, near >= 0 ? "; did you mean '" : "",
                     near >= 0 ? method_names[near] : "", near >= 0 ? "'?" : "");
}

int64_t rdml_rsa_ntri(int64_t n) { return n < 2 ? 0 : n * (n - 1) / 2; }

void rdml_rsa_upper(const float *rdm, int64_t n, double *out) {
    int64_t t = 0;
    for (int64_t i = 0; i < n; i++) {
        const float *row = rdm + i * n;
        for (int64_t j = i + 1; j < n; j++) out[t++] = row[j];
    }
}

/* ---- inputs: double vectors (public API) or float vectors (RDM upper triangles) ---- */

/* Exactly one of d / f is set. compare() passes the float upper triangles straight through,
 * which halves the memory and page-fault cost of a 48-million-pair comparison. */
typedef struct vec {
    const double *d;
    const float *f;
} vec;

static inline double at(vec v, int64_t i) { return v.d ? v.d[i] : (double)v.f[i]; }

static int check_inputs(rdml_ctx *ctx, const char *what, vec a, vec b, int64_t p) {
    if (p < 2)
        return RDML_FAIL(ctx, RDML_EDATA,
                         "%s: need at least 2 values to correlate, got %lld (an RDM needs at "
                         "least 3 images)",
                         what, (long long)p);
    if ((!a.d && !a.f) || (!b.d && !b.f))
        return RDML_FAIL(ctx, RDML_EINTERNAL, "%s: NULL input vector", what);
    if ((uint64_t)p > UINT32_MAX)
        return RDML_FAIL(ctx, RDML_EDATA,
                         "%s: %lld values exceed the supported maximum of %llu (about 92681 "
                         "images); compare a subset of images",
                         what, (long long)p, (unsigned long long)UINT32_MAX);
    return RDML_OK;
}

static int fail_constant(rdml_ctx *ctx, const char *what, int ca, int cb, vec a, vec b,
                         int64_t p) {
    if (ca && cb)
        return RDML_FAIL(ctx, RDML_EDATA,
                         "%s: both inputs are constant (a = %.9g, b = %.9g for all %lld "
                         "values): the correlation is undefined",
                         what, at(a, 0), at(b, 0), (long long)p);
    return RDML_FAIL(ctx, RDML_EDATA,
                     "%s: input %s is constant (all %lld values equal %.9g): the correlation "
                     "is undefined (hint: an RDM with a single distinct value carries no "
                     "structure)",
                     what, ca ? "a (first)" : "b (second)", (long long)p, ca ? at(a, 0) : at(b, 0));
}

static int fail_nan(rdml_ctx *ctx, const char *what, const char *which, int64_t i) {
    return RDML_FAIL(ctx, RDML_EDATA,
                     "%s: input %s has a NaN at index %lld (hint: check the RDM for undefined "
                     "distances)",
                     what, which, (long long)i);
}

/* ---- Pearson ---- */

/* Blocked sums: partial sums of 256 values keep the rounding error ~ sqrt(P/256) smaller than
 * a single running sum for 48-million-value vectors. One instance per input type, so the
 * inner loops carry no type test. */
enum { BLOCK = 256 };

#define DEFINE_PEARSON_SUMS(name, T)                                                         \
    static void name(const T *a, const T *b, int64_t p, double *sa_, double *sb_, int *ca_, \
                     int *cb_) {                                                             \
        double sa = 0, sb = 0;                                                               \
        int ca = 1, cb = 1;                                                                  \
        for (int64_t s = 0; s < p; s += BLOCK) {                                             \
            int64_t e = s + BLOCK < p ? s + BLOCK : p;                                       \
            double pa = 0, pb = 0;                                                           \
            for (int64_t i = s; i < e; i++) {                                                \
                pa += a[i];                                                                  \
                pb += b[i];                                                                  \
                ca &= a[i] == a[0];                                                          \
                cb &= b[i] == b[0];                                                          \
            }                                                                                \
            sa += pa;                                                                        \
            sb += pb;                                                                        \
        }                                                                                    \
        *sa_ = sa, *sb_ = sb, *ca_ = ca, *cb_ = cb;                                          \
    }
#define DEFINE_PEARSON_MOMENTS(name, T)                                                      \
    static void name(const T *a, const T *b, int64_t p, double ma, double mb, double *out) { \
        double sab = 0, saa = 0, sbb = 0;                                                    \
        for (int64_t s = 0; s < p; s += BLOCK) {                                             \
            int64_t e = s + BLOCK < p ? s + BLOCK : p;                                       \
            double pab = 0, paa = 0, pbb = 0;                                                \
            for (int64_t i = s; i < e; i++) {                                                \
                double da = a[i] - ma, db = b[i] - mb;                                       \
                pab += da * db;                                                              \
                paa += da * da;                                                              \
                pbb += db * db;                                                              \
            }                                                                                \
            sab += pab;                                                                      \
            saa += paa;                                                                      \
            sbb += pbb;                                                                      \
        }                                                                                    \
        out[0] = sab, out[1] = saa, out[2] = sbb;                                            \
    }
DEFINE_PEARSON_SUMS(sums_f64, double)
DEFINE_PEARSON_SUMS(sums_f32, float)
DEFINE_PEARSON_MOMENTS(moments_f64, double)
DEFINE_PEARSON_MOMENTS(moments_f32, float)

static int pearson_impl(rdml_ctx *ctx, const char *what, vec a, vec b, int64_t p, double *r) {
    double sa, sb, mom[3];
    int ca, cb;
    if (a.d) sums_f64(a.d, b.d, p, &sa, &sb, &ca, &cb);
    else sums_f32(a.f, b.f, p, &sa, &sb, &ca, &cb);
    if (isnan(sa) || isnan(sb)) {
        vec x = isnan(sa) ? a : b;
        for (int64_t i = 0; i < p; i++)
            if (isnan(at(x, i))) return fail_nan(ctx, what, isnan(sa) ? "a" : "b", i);
    }
    if (ca || cb) return fail_constant(ctx, what, ca, cb, a, b, p);
    const double ma = sa / (double)p, mb = sb / (double)p;
    if (a.d) moments_f64(a.d, b.d, p, ma, mb, mom);
    else moments_f32(a.f, b.f, p, ma, mb, mom);
    double v = mom[0] / (sqrt(mom[1]) * sqrt(mom[2]));
    *r = v > 1.0 ? 1.0 : (v < -1.0 ? -1.0 : v);
    return RDML_OK;
}

static int pearson_vec(rdml_ctx *ctx, vec a, vec b, int64_t p, double *r) {
    RDML_TRY(check_inputs(ctx, "pearson", a, b, p));
    return pearson_impl(ctx, "pearson", a, b, p, r);
}

int rdml_rsa_pearson(rdml_ctx *ctx, const double *a, const double *b, int64_t p, double *r) {
    return pearson_vec(ctx, (vec){a, NULL}, (vec){b, NULL}, p, r);
}

/* ---- order-preserving 32-bit keys (core/radix.h; the callers have excluded NaN) ---- */

/* keys[i]: a 32-bit key whose order is the order of x (ties equal). When every value is a
 * float (RDM entries always are) that is the float's key, with no sorting; otherwise the
 * dense rank of x[i], from a radix sort of 64-bit keys that carries the indices alongside. */
static int dense_keys(rdml_ctx *ctx, const char *what, const char *which, vec x, int64_t p,
                      uint32_t *keys) {
    if (x.f) {
        for (int64_t i = 0; i < p; i++) {
            if (isnan(x.f[i])) return fail_nan(ctx, what, which, i);
            keys[i] = rdml_radix_key_float(x.f[i]);
        }
        return RDML_OK;
    }
    int is_float = 1;
    for (int64_t i = 0; i < p; i++) {
        if (isnan(x.d[i])) return fail_nan(ctx, what, which, i);
        is_float &= (double)(float)x.d[i] == x.d[i];
    }
    if (is_float) {
        for (int64_t i = 0; i < p; i++) keys[i] = rdml_radix_key_float((float)x.d[i]);
        return RDML_OK;
    }
    /* general doubles: sort (key, index) with the index carried in a second array */
    uint64_t *k = rdml_malloc(ctx, (size_t)p * sizeof *k, "sort keys");
    uint64_t *kb = k ? rdml_malloc(ctx, (size_t)p * sizeof *kb, "sort key buffer") : NULL;
    uint32_t *ix = kb ? rdml_malloc(ctx, (size_t)p * sizeof *ix, "sort indices") : NULL;
    uint32_t *ib = ix ? rdml_malloc(ctx, (size_t)p * sizeof *ib, "sort index buffer") : NULL;
    if (!ib) {
        free(k);
        free(kb);
        free(ix);
        return ctx->code;
    }
    for (int64_t i = 0; i < p; i++) {
        k[i] = rdml_radix_key_double(x.d[i]);
        ix[i] = (uint32_t)i;
    }
    uint64_t *k0 = k, *kb0 = kb;
    uint32_t *ix0 = ix, *ib0 = ib;
    rdml_radix_sort_u64(&k, &kb, &ix, &ib, p, 0);
    uint32_t r = 0;
    for (int64_t t = 0; t < p; t++) {
        if (t > 0 && k[t] != k[t - 1]) r++;
        keys[ix[t]] = r;
    }
    free(k0);
    free(kb0);
    free(ix0);
    free(ib0);
    return RDML_OK;
}

/* ---- Spearman ---- */

/* Sort (key << 32 | index) words of x; w0 / w1 are the sort arrays, w1 also holds the keys
 * first. Returns the sorted array in *sorted. */
static int sort_with_index(rdml_ctx *ctx, const char *what, const char *which, vec x, int64_t p,
                           uint64_t *w0, uint64_t *w1, uint64_t **sorted) {
    uint32_t *keys = (uint32_t *)w1;
    RDML_TRY(dense_keys(ctx, what, which, x, p, keys));
    for (int64_t i = 0; i < p; i++) w0[i] = ((uint64_t)keys[i] << 32) | (uint64_t)i;
    uint64_t *s = w0, *buf = w1;
    rdml_radix_sort_u64(&s, &buf, NULL, NULL, p, 32);
    *sorted = s;
    return RDML_OK;
}

/* Pearson of the average ranks (1-based, tied values share the mean of their positions, as
 * scipy.stats.rankdata). The mean rank is exactly (P + 1) / 2, so the moments come straight
 * from the group walks: a's ranks are stored, b's are streamed against them. */
static int spearman_vec(rdml_ctx *ctx, vec a, vec b, int64_t p, double *rho) {
    const char *what = "spearman";
    RDML_TRY(check_inputs(ctx, what, a, b, p));
    uint64_t *w0 = rdml_malloc(ctx, (size_t)p * sizeof *w0, "rank sort words");
    uint64_t *w1 = w0 ? rdml_malloc(ctx, (size_t)p * sizeof *w1, "rank sort buffer") : NULL;
    double *ra = w1 ? rdml_malloc(ctx, (size_t)p * sizeof *ra, "ranks of a") : NULL;
    int rc = ra ? RDML_OK : ctx->code;
    const double mean = 0.5 * ((double)p + 1.0);
    double vaa = 0, vbb = 0, cov = 0;
    int64_t da = 0, db = 0;
    uint64_t *s = NULL;
    if (rc == RDML_OK) rc = sort_with_index(ctx, what, "a", a, p, w0, w1, &s);
    if (rc == RDML_OK) {
        for (int64_t g = 0; g < p;) {
            const uint32_t key = (uint32_t)(s[g] >> 32);
            int64_t e = g + 1;
            while (e < p && (uint32_t)(s[e] >> 32) == key) e++;
            const double d = 0.5 * (double)(g + e - 1) + 1.0 - mean;
            for (int64_t t = g; t < e; t++) ra[(uint32_t)s[t]] = d;
            vaa += (double)(e - g) * d * d;
            da++;
            g = e;
        }
        rc = sort_with_index(ctx, what, "b", b, p, w0, w1, &s);
    }
    if (rc == RDML_OK) {
        double part = 0;
        int64_t inpart = 0;
        for (int64_t g = 0; g < p;) {
            const uint32_t key = (uint32_t)(s[g] >> 32);
            int64_t e = g + 1;
            while (e < p && (uint32_t)(s[e] >> 32) == key) e++;
            const double d = 0.5 * (double)(g + e - 1) + 1.0 - mean;
            double sa = 0; /* sum of a's centred ranks over this tie group of b */
            for (int64_t t = g; t < e; t++) sa += ra[(uint32_t)s[t]];
            part += sa * d;
            vbb += (double)(e - g) * d * d;
            inpart += e - g;
            if (inpart >= BLOCK) { /* blocked sum, as in Pearson */
                cov += part;
                part = 0;
                inpart = 0;
            }
            db++;
            g = e;
        }
        cov += part;
    }
    free(w0);
    free(w1);
    free(ra);
    if (rc == RDML_OK && (da == 1 || db == 1)) rc = fail_constant(ctx, what, da == 1, db == 1, a, b, p);
    if (rc == RDML_OK) {
        double v = cov / (sqrt(vaa) * sqrt(vbb));
        *rho = v > 1.0 ? 1.0 : (v < -1.0 ? -1.0 : v);
    }
    return rc;
}

int rdml_rsa_spearman(rdml_ctx *ctx, const double *a, const double *b, int64_t p,
                      double *rho) {
    return spearman_vec(ctx, (vec){a, NULL}, (vec){b, NULL}, p, rho);
}

/* Average ranks by the same sort as Spearman, written out in input order. */
int rdml_rsa_rank(rdml_ctx *ctx, const double *x, int64_t p, double *ranks) {
    const char *what = "ranking values";
    if (p < 1 || !x || !ranks)
        return RDML_FAIL(ctx, RDML_EINTERNAL, "%s: need at least 1 value and non-NULL "
                         "arrays (got %lld values)", what, (long long)p);
    if ((uint64_t)p > UINT32_MAX)
        return RDML_FAIL(ctx, RDML_EDATA,
                         "%s: %lld values exceed the supported maximum of %llu (about 92681 "
                         "images)",
                         what, (long long)p, (unsigned long long)UINT32_MAX);
    uint64_t *w0 = rdml_malloc(ctx, (size_t)p * sizeof *w0, "rank sort words");
    uint64_t *w1 = w0 ? rdml_malloc(ctx, (size_t)p * sizeof *w1, "rank sort buffer") : NULL;
    int rc = w1 ? RDML_OK : ctx->code;
    uint64_t *s = NULL;
    if (rc == RDML_OK) rc = sort_with_index(ctx, what, "x", (vec){x, NULL}, p, w0, w1, &s);
    for (int64_t g = 0; rc == RDML_OK && g < p;) {
        const uint32_t key = (uint32_t)(s[g] >> 32);
        int64_t e = g + 1;
        while (e < p && (uint32_t)(s[e] >> 32) == key) e++;
        const double r = 0.5 * (double)(g + e - 1) + 1.0;
        for (int64_t t = g; t < e; t++) ranks[(uint32_t)s[t]] = r;
        g = e;
    }
    free(w0);
    free(w1);
    return rc;
}

/* ---- Kendall tau-a ---- */

/* One merge of src[lo, mid) and src[mid, hi) into dst, counting pairs (left > right).
 * Branch-free step: the merge is bound by the compare -> index dependency, not by memory. */
static inline int64_t merge_count(const uint32_t *src, uint32_t *dst, int64_t i, int64_t mid,
                                  int64_t j, int64_t hi, int64_t o) {
    int64_t inv = 0;
    while (i < mid && j < hi) {
        uint32_t x = src[i], y = src[j];
        uint32_t r = y < x, m = 0u - r;
        dst[o++] = (y & m) | (x & ~m);
        inv += (mid - i) & -(int64_t)r; /* y jumps over every remaining left value */
        j += r;
        i += 1 - r;
    }
    while (i < mid) dst[o++] = src[i++];
    while (j < hi) dst[o++] = src[j++];
    return inv;
}

/* Strict inversions (i < j with x[i] > x[j]) of x. x and buf (p entries each) are scratch;
 * the sorted values end up in *sorted (one of the two). Insertion sort on runs of 16, then
 * bottom-up merges, two merges interleaved so their dependency chains overlap. */
static int64_t count_inversions(uint32_t *x, uint32_t *buf, int64_t p, uint32_t **sorted) {
    enum { RUN = 16 };
    int64_t inv = 0;
    for (int64_t s = 0; s < p; s += RUN) {
        int64_t e = s + RUN < p ? s + RUN : p;
        for (int64_t i = s + 1; i < e; i++) {
            uint32_t v = x[i];
            int64_t j = i;
            while (j > s && x[j - 1] > v) {
                x[j] = x[j - 1];
                j--;
            }
            inv += i - j;
            x[j] = v;
        }
    }
    uint32_t *src = x, *dst = buf;
    for (int64_t width = RUN; width < p; width *= 2) {
        int64_t lo = 0;
        /* two full-width merges side by side */
        for (; lo + 4 * width <= p; lo += 4 * width) {
            int64_t i0 = lo, m0 = lo + width, j0 = m0, h0 = lo + 2 * width, o0 = lo;
            int64_t i1 = h0, m1 = h0 + width, j1 = m1, h1 = lo + 4 * width, o1 = h0;
            int64_t v0 = 0, v1 = 0;
            while (i0 < m0 && j0 < h0 && i1 < m1 && j1 < h1) {
                uint32_t x0 = src[i0], y0 = src[j0], x1 = src[i1], y1 = src[j1];
                uint32_t r0 = y0 < x0, k0 = 0u - r0, r1 = y1 < x1, k1 = 0u - r1;
                dst[o0++] = (y0 & k0) | (x0 & ~k0);
                dst[o1++] = (y1 & k1) | (x1 & ~k1);
                v0 += (m0 - i0) & -(int64_t)r0;
                v1 += (m1 - i1) & -(int64_t)r1;
                j0 += r0;
                i0 += 1 - r0;
                j1 += r1;
                i1 += 1 - r1;
            }
            inv += v0 + v1;
            inv += merge_count(src, dst, i0, m0, j0, h0, o0);
            inv += merge_count(src, dst, i1, m1, j1, h1, o1);
        }
        for (; lo < p; lo += 2 * width) {
            int64_t mid = lo + width < p ? lo + width : p;
            int64_t hi = lo + 2 * width < p ? lo + 2 * width : p;
            inv += merge_count(src, dst, lo, mid, mid, hi, lo);
        }
        uint32_t *t = src;
        src = dst;
        dst = t;
    }
    *sorted = src;
    return inv;
}

static int64_t tied_pairs_sorted(const uint32_t *v, int64_t p, int64_t *distinct) {
    int64_t ties = 0, nd = 0;
    for (int64_t s = 0; s < p;) {
        int64_t e = s + 1;
        while (e < p && v[e] == v[s]) e++;
        ties += (e - s) * (e - s - 1) / 2;
        nd++;
        s = e;
    }
    *distinct = nd;
    return ties;
}

static int kendall_vec(rdml_ctx *ctx, vec a, vec b, int64_t p, double *tau) {
    const char *what = "kendall tau-a";
    RDML_TRY(check_inputs(ctx, what, a, b, p));
    /* w0 / w1 first hold the keys of a and b, then the (key a << 32 | key b) words and their
     * sort buffer, then b's keys in (a, b) order and the merge buffer */
    uint64_t *w0 = rdml_malloc(ctx, (size_t)p * sizeof *w0, "kendall sort words");
    uint64_t *w1 = w0 ? rdml_malloc(ctx, (size_t)p * sizeof *w1, "kendall sort buffer") : NULL;
    int rc = w1 ? RDML_OK : ctx->code;
    uint32_t *ka = w1 ? (uint32_t *)w1 : NULL, *kb = w1 ? (uint32_t *)w1 + p : NULL;
    if (rc == RDML_OK) rc = dense_keys(ctx, what, "a", a, p, ka);
    if (rc == RDML_OK) rc = dense_keys(ctx, what, "b", b, p, kb);
    if (rc == RDML_OK) {
        for (int64_t i = 0; i < p; i++) w0[i] = ((uint64_t)ka[i] << 32) | kb[i];
        rdml_radix_sort_u64(&w0, &w1, NULL, NULL, p, 0);
    }
    if (rc == RDML_OK) {
        /* sorted by (a, b): pairs tied in a (n1) and in both (n3); b's keys in that order */
        int64_t n1 = 0, n3 = 0, na = 0, nb = 0, n2;
        uint32_t *seq = (uint32_t *)w1, *mbuf = (uint32_t *)w1 + p, *sorted = NULL;
        for (int64_t s = 0; s < p;) {
            const uint32_t ha = (uint32_t)(w0[s] >> 32);
            int64_t e = s + 1;
            while (e < p && (uint32_t)(w0[e] >> 32) == ha) e++;
            n1 += (e - s) * (e - s - 1) / 2;
            na++;
            for (int64_t u = s; u < e;) {
                int64_t f = u + 1;
                while (f < e && w0[f] == w0[u]) f++;
                n3 += (f - u) * (f - u - 1) / 2;
                u = f;
            }
            s = e;
        }
        for (int64_t t = 0; t < p; t++) seq[t] = (uint32_t)w0[t];
        /* ties in a come out ascending in b, so every strict inversion is a pair with a_i < a_j
         * and b_i > b_j: a discordant pair */
        const int64_t nd = count_inversions(seq, mbuf, p, &sorted);
        n2 = tied_pairs_sorted(sorted, p, &nb);
        if (na == 1 || nb == 1) {
            rc = fail_constant(ctx, what, na == 1, nb == 1, a, b, p);
        } else {
            const int64_t n0 = p * (p - 1) / 2;
            const int64_t num = n0 - n1 - n2 + n3 - 2 * nd;
            *tau = (double)num / (double)n0;
        }
    }
    free(w0); /* the two arrays may have swapped roles; both are still the two allocations */
    free(w1);
    return rc;
}

int rdml_rsa_kendall_tau_a(rdml_ctx *ctx, const double *a, const double *b, int64_t p,
                           double *tau) {
    return kendall_vec(ctx, (vec){a, NULL}, (vec){b, NULL}, p, tau);
}

/* ---- RDM comparison ---- */

int rdml_rsa_compare(rdml_ctx *ctx, const float *a, const float *b, int64_t n,
                     rdml_rsa_method m, double *out) {
    if (n < 3)
        return RDML_FAIL(ctx, RDML_EDATA,
                         "comparing RDMs: %lld images give %lld pairs; a correlation needs at "
                         "least 3 images",
                         (long long)n, (long long)rdml_rsa_ntri(n));
    if ((int)m < 0 || (int)m > 2)
        return RDML_FAIL(ctx, RDML_EINTERNAL, "comparing RDMs: unknown method %d", (int)m);
    const int64_t p = rdml_rsa_ntri(n);
    /* float upper triangles: the values are floats anyway, so nothing is lost */
    float *ua = rdml_malloc(ctx, (size_t)p * sizeof *ua, "upper triangle of RDM a");
    float *ub = ua ? rdml_malloc(ctx, (size_t)p * sizeof *ub, "upper triangle of RDM b") : NULL;
    int rc = ub ? RDML_OK : ctx->code;
    if (rc == RDML_OK) {
        int64_t t = 0, bad_i = -1, bad_j = -1;
        const char *bad = NULL;
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = i + 1; j < n; j++, t++) {
                ua[t] = a[i * n + j];
                ub[t] = b[i * n + j];
                if (!bad && (isnan(ua[t]) || isnan(ub[t]))) {
                    bad = isnan(ua[t]) ? "a (first)" : "b (second)";
                    bad_i = i;
                    bad_j = j;
                }
            }
        vec va = {NULL, ua}, vb = {NULL, ub};
        if (bad)
            rc = RDML_FAIL(ctx, RDML_EDATA,
                           "RDM %s has a NaN at (%lld, %lld) (hint: check for zero-variance "
                           "images)",
                           bad, (long long)bad_i, (long long)bad_j);
        else if (m == RDML_RSA_SPEARMAN)
            rc = spearman_vec(ctx, va, vb, p, out);
        else if (m == RDML_RSA_PEARSON)
            rc = pearson_vec(ctx, va, vb, p, out);
        else
            rc = kendall_vec(ctx, va, vb, p, out);
        if (rc) rdml_ctx_prefix(ctx, "comparing two %lld-image RDMs (%s)", (long long)n,
                                rdml_rsa_method_name(m));
    }
    free(ua);
    free(ub);
    return rc;
}

int rdml_rsa_correlate(rdml_ctx *ctx, rdml_rsa_method method, const double *a, const double *b,
                       int64_t p, double *out) {
    switch (method) {
    case RDML_RSA_SPEARMAN: return rdml_rsa_spearman(ctx, a, b, p, out);
    case RDML_RSA_PEARSON: return rdml_rsa_pearson(ctx, a, b, p, out);
    case RDML_RSA_KENDALL_A: return rdml_rsa_kendall_tau_a(ctx, a, b, p, out);
    }
    return RDML_FAIL(ctx, RDML_EINTERNAL, "unknown RDM comparison method %d", (int)method);
}
