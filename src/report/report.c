/* The report document: opens the results file on rank 0, finds the dataset images through the
 * stored configuration, and writes report.html section by section: contents and absent parts,
 * the RDMs (continuous and binary heat maps with colour bars, block-averaged above
 * max_heatmap, and the value histogram with the threshold: the paper's Figure 1), the most
 * similar / dissimilar pairs with their images (Figure 2), example images of each colour
 * class (Figure 3), the inter-subject RSA and noise ceilings, the embeddings, the experiments
 * (report_exp.c) and the provenance (/meta: version, resolved configuration, ranks, threads,
 * timings). HTML is static: no JavaScript, no external URL; figures are PNG (shown) and SVG
 * (linked) beside it. Left out: recomputing anything (every number comes from the file; the
 * colour classes of Figure 3 are the paper's pixel rule applied to the images, as the SVM
 * stage does), and interactive zooming. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rdml/config.h"
#include "rdml/dataset.h"
#include "rdml/mpiutil.h"
#include "rdml/pairs.h"
#include "rdml/report.h"
#include "report/report_priv.h"

void rdml_report_params_defaults(rdml_report_params *p) {
    memset(p, 0, sizeof *p);
    p->max_heatmap = 1000;
    p->max_rdm_figures = 24;
    p->pair_examples = 3;
    p->max_scatter = 20000;
    p->color_scan = 400;
}

/* ---- small helpers ---- */

void rdml_html_escape(FILE *f, const char *s) {
    for (; s && *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        default: fputc(*s, f);
        }
    }
}

const char *rdml_html_esc(const char *s, char *buf, size_t len) {
    size_t k = 0;
    if (len == 0) return buf;
    for (; s && *s; s++) {
        const char *rep = *s == '&' ? "&amp;" : *s == '<' ? "&lt;" : *s == '>' ? "&gt;"
                        : *s == '"' ? "&quot;" : NULL;
        size_t n = rep ? strlen(rep) : 1;
        if (k + n + 1 > len) break;
        if (rep) memcpy(buf + k, rep, n);
        else buf[k] = *s;
        k += n;
    }
    buf[k] = '\0';
    return buf;
}

void rdml_report_safe_name(const char *s, char *out, size_t len) {
    size_t k = 0;
    for (; s && *s && k + 1 < len; s++) {
        char c = *s;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '-' || c == '_';
        out[k++] = ok ? c : '_';
    }
    out[k] = '\0';
}

static void push_msg(char **list, int *n, const char *fmt, va_list ap) {
    if (*n >= 64) return;
    char buf[1024];
    vsnprintf(buf, sizeof buf, fmt, ap);
    list[*n] = strdup(buf);
    if (list[*n]) (*n)++;
}

void rdml_rep_absent(rdml_rep *d, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    push_msg(d->absent, &d->nabsent, fmt, ap);
    va_end(ap);
}

void rdml_rep_note(rdml_rep *d, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    push_msg(d->notes, &d->nnotes, fmt, ap);
    va_end(ap);
}

void rdml_rep_num(FILE *f, double v) {
    if (isnan(v)) fputs("n/a", f);
    else if (v != 0 && (fabs(v) < 1e-3 || fabs(v) >= 1e6)) fprintf(f, "%.3g", v);
    else fprintf(f, "%.3f", v);
}

void rdml_rep_pm(FILE *f, double mean, double std) {
    rdml_rep_num(f, mean);
    if (!isnan(std)) {
        fputs(" &plusmn; ", f);
        rdml_rep_num(f, std);
    }
}

int rdml_rep_figure(rdml_rep *d, const char *name, int w, int h, rdml_plot_draw_fn draw,
                    void *user, const char *caption_html) {
    RDML_TRY(rdml_plot_save(d->ctx, d->dir, name, w, h, draw, user));
    d->nfig++;
    fprintf(d->html,
            "<figure id=\"%s\"><a href=\"%s.svg\"><img src=\"%s.png\" width=\"%d\" height=\"%d\" "
            "alt=\"Figure %d\"></a>\n<figcaption><b>Figure %d.</b> %s <a href=\"%s.svg\">SVG</a>"
            "</figcaption></figure>\n",
            name, name, name, w, h, d->nfig, d->nfig, caption_html, name);
    return RDML_OK;
}

int rdml_rep_table_open(rdml_rep *d, const char *caption_html) {
    d->ntab++;
    fprintf(d->html, "<table>\n<caption><b>Table %d.</b> %s</caption>\n", d->ntab, caption_html);
    return d->ntab;
}

void rdml_rep_table_close(rdml_rep *d) { fputs("</table>\n", d->html); }

static const char *metric_axis(const char *metric) {
    if (!metric) return "dissimilarity";
    if (!strcmp(metric, "correlation")) return "dissimilarity (1 - Pearson r)";
    if (!strcmp(metric, "spearman")) return "dissimilarity (1 - Spearman rho)";
    if (!strcmp(metric, "cosine")) return "dissimilarity (1 - cosine similarity)";
    if (!strcmp(metric, "euclidean")) return "Euclidean distance";
    if (!strcmp(metric, "sqeuclidean")) return "squared Euclidean distance";
    return "dissimilarity";
}

/* ---- the stored configuration: data.root and pairs.color_fraction ---- */

static int dir_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The directory of a path ("." when none) into out. */
static void dirname_of(const char *path, char *out, size_t len) {
    rdml_strlcpy(out, path, len);
    char *s = strrchr(out, '/');
    if (!s) rdml_strlcpy(out, ".", len);
    else if (s == out) out[1] = '\0';
    else *s = '\0';
}

static const char *const stage_order[] = {"rdm", "embed", "svm", "train", "run", NULL};

static void find_images(rdml_rep *d, const char *results_path) {
    char *root = d->p->image_root && d->p->image_root[0] ? strdup(d->p->image_root) : NULL;
    double frac = NAN;
    char **stages = NULL;
    int ns = 0;
    rdml_ctx tmp;
    rdml_ctx_init(&tmp);
    tmp.log_level = RDML_LOG_QUIET;
    rdml_rh5_list(&tmp, d->r, "/meta/stages", &stages, &ns);
    /* known stages first, then any other stage's configuration */
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < ns; i++) {
            int known = 0;
            for (int k = 0; stage_order[k]; k++) known |= !strcmp(stages[i], stage_order[k]);
            if (known != (pass == 0)) continue;
            char obj[512];
            snprintf(obj, sizeof obj, "/meta/stages/%s", stages[i]);
            char *text = rdml_rh5_str(d->r, obj, "config");
            rdml_config *cfg = NULL;
            /* the stage's resolved configuration; keys it does not hold fall through to the
             * next stage's */
            if (text && rdml_config_from_stored(&tmp, obj, text, &cfg, NULL) == RDML_OK) {
                const char *v;
                if (!root && rdml_config_is_set(cfg, "data", "root") &&
                    rdml_config_str(&tmp, cfg, "data", "root", &v) == RDML_OK)
                    root = strdup(v);
                if (isnan(frac) && rdml_config_is_set(cfg, "pairs", "color_fraction"))
                    rdml_config_real(&tmp, cfg, "pairs", "color_fraction", &frac);
            }
            rdml_config_destroy(&cfg);
            rdml_ctx_clear(&tmp);
            free(text);
        }
    }
    rdml_rh5_free_names(stages, ns);
    d->color_fraction = isnan(frac) ? 0.7 : frac;
    if (!(d->color_fraction > 0 && d->color_fraction <= 1)) d->color_fraction = 0.7;
    if (!root || !root[0]) {
        snprintf(d->image_note, sizeof d->image_note,
                 "the results file records no data.root (hint: rdmlearn report --set data.root=DIR)");
        free(root);
        return;
    }
    char cand[4096];
    rdml_strlcpy(cand, root, sizeof cand);
    if (!dir_exists(cand) && root[0] != '/') {
        /* a relative root was relative to the stage's working directory: try beside the file */
        char base[4096];
        dirname_of(results_path, base, sizeof base);
        snprintf(cand, sizeof cand, "%s/%s", base, root);
    }
    if (!dir_exists(cand)) {
        snprintf(d->image_note, sizeof d->image_note,
                 "the dataset images were not found at data.root = %s (hint: rdmlearn report "
                 "--set data.root=DIR)", root);
        free(root);
        return;
    }
    free(root);
    d->image_root = strdup(cand);
}

/* The images of a subject's rows: full paths of rows[0..k), checked against the names the
 * results file stores, or an error message in why. Returns 0 when all were found. */
static int image_paths(rdml_rep *d, int subj, const int64_t *rows, int k, char (*paths)[4096],
                       char *why, size_t wlen) {
    if (!d->image_root) {
        snprintf(why, wlen, "%s", d->image_note);
        return -1;
    }
    rdml_ctx tmp;
    rdml_ctx_init(&tmp);
    tmp.log_level = RDML_LOG_QUIET;
    char obj[256];
    snprintf(obj, sizeof obj, "/subjects/subj%02d/images/names", subj);
    char **names = NULL;
    int64_t nn = 0;
    rdml_dataset *ds = NULL;
    rdml_subject *s = NULL;
    int rc = rdml_rh5_read_strings(&tmp, d->r, obj, &names, &nn);
    if (rc) {
        snprintf(why, wlen, "%s", tmp.msg);
        return -1;
    }
    rc = rdml_dataset_open(&tmp, d->image_root, &ds);
    if (!rc) rc = rdml_subject_open(&tmp, ds, subj, &s);
    if (rc) snprintf(why, wlen, "dataset at %s: %s", d->image_root, tmp.msg);
    for (int i = 0; i < k && !rc; i++) {
        int64_t row = rows[i];
        if (row < 0 || row >= nn || row >= rdml_subject_nimages(s)) {
            snprintf(why, wlen, "image row %lld is outside subj%02d's %lld images", (long long)row,
                     subj, (long long)nn);
            rc = -1;
            break;
        }
        const char *p = rdml_subject_image_path(s, row), *slash = strrchr(p, '/');
        if (strcmp(slash ? slash + 1 : p, names[row]) != 0) {
            snprintf(why, wlen, "image row %lld of subj%02d is %s in the results file but %s in "
                     "the dataset at %s (a different dataset?)", (long long)row, subj,
                     names[row], slash ? slash + 1 : p, d->image_root);
            rc = -1;
            break;
        }
        rdml_strlcpy(paths[i], p, 4096);
    }
    rdml_subject_close(&s);
    rdml_dataset_close(&ds);
    rdml_rh5_free_names(names, (int)nn);
    return rc ? -1 : 0;
}

/* ---- Figure 1: RDM heat maps ---- */

/* The NSD ids of a subject's rows (/subjects/subjNN/images/nsd_id), or NULL with *count = 0
 * when the file has none. */
static int64_t *read_nsd_ids(rdml_rep *d, int subj, int64_t *count) {
    char o[256];
    snprintf(o, sizeof o, "/subjects/subj%02d/images/nsd_id", subj);
    *count = 0;
    if (!rdml_rh5_exists(d->r, o)) return NULL;
    rdml_ctx q;
    rdml_ctx_init(&q);
    int64_t *v = NULL;
    if (rdml_rh5_read_i64(&q, d->r, o, &v, count)) {
        *count = 0;
        return NULL;
    }
    return v;
}

/* Rows of the RDM in slabs of about 4 MB (whole block rows of edge f), handed to `fn`. */
typedef void (*rows_fn)(void *user, const float *rows, int64_t lo, int64_t cnt);
static int read_rdm_rows(rdml_rep *d, const char *obj, int64_t n, int64_t f, rows_fn fn,
                         void *user) {
    int64_t slab = f;
    while (slab * n < (1 << 20) && slab < n) slab += f;
    if (slab > n) slab = n;
    float *buf = rdml_malloc(d->ctx, (size_t)(slab * n) * sizeof *buf, "RDM rows");
    int rc = buf ? RDML_OK : d->ctx->code;
    for (int64_t lo = 0; lo < n && !rc; lo += slab) {
        int64_t cnt = lo + slab <= n ? slab : n - lo;
        rc = rdml_rh5_read_rows_f32(d->ctx, d->r, obj, lo, cnt, n, buf);
        if (!rc) fn(user, buf, lo, cnt);
    }
    free(buf);
    return rc;
}

typedef struct condensed {
    double *D;
    int64_t n, bad; /* non-finite off-diagonal values seen */
} condensed;

static void to_condensed(void *user, const float *rows, int64_t lo, int64_t cnt) {
    condensed *c = user;
    const int64_t n = c->n;
    for (int64_t r = 0; r < cnt; r++) {
        int64_t i = lo + r;
        double *dst = c->D + (n * i - i * (i + 1) / 2);
        for (int64_t j = i + 1; j < n; j++) {
            double v = rows[r * n + j];
            c->bad += !isfinite(v);
            dst[j - i - 1] = v;
        }
    }
}

static void to_blocks(void *user, const float *rows, int64_t lo, int64_t cnt) {
    rdml_blocks_add_rows(user, rows, lo, cnt);
}

/* The display order of an RDM: average-linkage clustering of the RDM itself (rows and
 * columns alike). *order NULL (file order) with the reason in why when it cannot be
 * clustered (too big, non-finite values). */
static int rdm_order(rdml_rep *d, const char *obj, int64_t n, int64_t **order, char *why,
                     size_t wlen) {
    *order = NULL;
    if (n > RDML_REPORT_MAX_ORDER) {
        snprintf(why, wlen, "more than %d images: drawn in file order", RDML_REPORT_MAX_ORDER);
        return RDML_OK;
    }
    condensed c = {NULL, n, 0};
    c.D = rdml_malloc(d->ctx, (size_t)(n * (n - 1) / 2 + 1) * sizeof *c.D, "RDM for clustering");
    int64_t *o = c.D ? rdml_malloc(d->ctx, (size_t)n * sizeof *o, "RDM order") : NULL;
    int rc = o ? RDML_OK : d->ctx->code;
    if (!rc) rc = read_rdm_rows(d, obj, n, 1, to_condensed, &c);
    if (!rc && c.bad) {
        snprintf(why, wlen, "%lld non-finite values: drawn in file order", (long long)c.bad);
    } else if (!rc) {
        rc = rdml_report_cluster_order(d->ctx, c.D, n, o);
        if (!rc) {
            *order = o;
            o = NULL;
        }
    }
    free(c.D);
    free(o);
    return rc;
}

/* fig_<...>_order.csv beside the figure: position, file row and NSD id of each image. */
static int write_order_csv(rdml_rep *d, const char *name, const int64_t *order, int64_t n,
                           const int64_t *nsd, int64_t nnsd) {
    char path[4400];
    snprintf(path, sizeof path, "%s/%s_order.csv", d->dir, name);
    FILE *f = fopen(path, "w");
    if (!f) return RDML_FAIL(d->ctx, RDML_EIO, "%s: cannot write: %s", path, strerror(errno));
    fputs("position,row,nsd_id\n", f);
    for (int64_t p = 0; p < n; p++)
        fprintf(f, "%lld,%lld,%lld\n", (long long)p, (long long)order[p],
                (long long)(order[p] < nnsd ? nsd[order[p]] : -1));
    if (fclose(f) != 0) return RDML_FAIL(d->ctx, RDML_EIO, "%s: cannot write: %s", path, strerror(errno));
    return RDML_OK;
}

typedef struct rdm_fig {
    const float *mean, *share;
    int64_t m, n, f;
    double vmin, vmax, threshold, median;
    const char *label, *metric;
    const double *hist, *edges;
    int64_t nbins;
    const char *axis; /* "image (clustered order)" or "image (row)" */
} rdm_fig;

static void draw_rdm(cairo_t *cr, void *user) {
    const rdm_fig *g = user;
    char title[256];
    rdml_plot_axes a = {80, 70, 400, 400, 0, (double)g->n, (double)g->n, 0};
    snprintf(title, sizeof title, "%s: continuous RDM", g->label);
    rdml_plot_frame(cr, &a, g->axis, g->axis, title, 1);
    rdml_plot_heat(cr, a.x, a.y, a.w, a.h, g->mean, g->m, g->m, g->vmin, g->vmax,
                   rdml_plot_viridis);
    rdml_plot_colorbar(cr, a.x + a.w + 15, a.y, 18, a.h, g->vmin, g->vmax, rdml_plot_viridis,
                       metric_axis(g->metric));
    rdml_plot_axes b = {680, 70, 400, 400, 0, (double)g->n, (double)g->n, 0};
    snprintf(title, sizeof title, "binary: value > %.3g", g->threshold);
    rdml_plot_frame(cr, &b, g->axis, g->axis, title, 1);
    rdml_plot_heat(cr, b.x, b.y, b.w, b.h, g->share, g->m, g->m, 0, 1, rdml_plot_viridis);
    if (g->f > 1) {
        rdml_plot_colorbar(cr, b.x + b.w + 15, b.y, 18, b.h, 0, 1, rdml_plot_viridis,
                           "share of pairs > threshold in block");
    } else {
        rdml_plot_legend_item it[2] = {{"dissimilar (1)", {0}, 0}, {"similar (0)", {0}, 0}};
        rdml_plot_viridis(1, it[0].rgb);
        rdml_plot_viridis(0, it[1].rgb);
        rdml_plot_legend(cr, b.x + b.w + 12, b.y, it, 2);
    }
    if (g->hist && g->nbins > 0) {
        double ymax = 0;
        for (int64_t k = 0; k < g->nbins; k++) ymax = fmax(ymax, g->hist[k]);
        double xlo = g->edges[0], xhi = g->edges[g->nbins];
        if (isfinite(g->threshold)) {
            xlo = fmin(xlo, g->threshold);
            xhi = fmax(xhi, g->threshold);
        }
        double ylo = 0, yhi = ymax > 0 ? ymax * 1.08 : 1;
        rdml_plot_nice_range(&ylo, &yhi);
        rdml_plot_axes c = {1340, 70, 360, 400, xlo, xhi, 0, yhi};
        rdml_plot_frame(cr, &c, metric_axis(g->metric), "pairs (i < j)", "distribution", 1);
        double rgb[3];
        rdml_plot_series_color(0, rgb);
        rdml_plot_set_rgb(cr, rgb);
        for (int64_t k = 0; k < g->nbins; k++) {
            double x0 = rdml_plot_px(&c, g->edges[k]), x1 = rdml_plot_px(&c, g->edges[k + 1]);
            double y0 = rdml_plot_py(&c, 0), y1 = rdml_plot_py(&c, g->hist[k]);
            cairo_rectangle(cr, x0, y1, fmax(x1 - x0, 0.5), y0 - y1);
        }
        cairo_fill(cr);
        rdml_plot_legend_item it[2] = {{"threshold", {0.84, 0.15, 0.16}, 2},
                                       {"median", {0.1, 0.1, 0.1}, 1}};
        double dash[2] = {6, 4};
        cairo_set_line_width(cr, 2);
        if (isfinite(g->threshold)) {
            rdml_plot_set_rgb(cr, it[0].rgb);
            cairo_set_dash(cr, dash, 2, 0);
            cairo_move_to(cr, rdml_plot_px(&c, g->threshold), c.y);
            cairo_line_to(cr, rdml_plot_px(&c, g->threshold), c.y + c.h);
            cairo_stroke(cr);
            cairo_set_dash(cr, NULL, 0, 0);
        }
        if (isfinite(g->median)) {
            rdml_plot_set_rgb(cr, it[1].rgb);
            cairo_move_to(cr, rdml_plot_px(&c, g->median), c.y);
            cairo_line_to(cr, rdml_plot_px(&c, g->median), c.y + c.h);
            cairo_stroke(cr);
        }
        rdml_plot_legend(cr, c.x + 8, c.y + 8, it, 2);
    } else {
        rdml_plot_text(cr, 1520, 270, "no value histogram stored", 13, 0.5, 0.5, 0);
        rdml_plot_text(cr, 1520, 292, "(rdm_summary absent)", 12, 0.5, 0.5, 0);
    }
}

/* Off-diagonal range of the shown cells (diagonal blocks hold the zero self-dissimilarity). */
static void heat_range(const float *m, int64_t k, double *lo, double *hi) {
    *lo = INFINITY;
    *hi = -INFINITY;
    for (int64_t i = 0; i < k; i++)
        for (int64_t j = 0; j < k; j++) {
            double v = m[i * k + j];
            if (i == j || !isfinite(v)) continue;
            *lo = fmin(*lo, v);
            *hi = fmax(*hi, v);
        }
    if (!isfinite(*lo)) {
        *lo = 0;
        *hi = 1;
    }
    if (*hi <= *lo) *hi = *lo + 1e-6;
}

static int rdm_figure(rdml_rep *d, int subj, const char *sel) {
    rdml_ctx *ctx = d->ctx;
    char obj[512], sobj[512], name[256], safe[128];
    snprintf(obj, sizeof obj, "/subjects/subj%02d/rdm/%s", subj, sel);
    snprintf(sobj, sizeof sobj, "/subjects/subj%02d/rdm_summary/%s", subj, sel);
    int nd;
    int64_t dims[8];
    RDML_TRY(rdml_rh5_dims(ctx, d->r, obj, &nd, dims));
    if (nd != 2 || dims[0] != dims[1] || dims[0] < 2) {
        rdml_rep_note(d, "%s is not a square matrix; not drawn", obj);
        return RDML_OK;
    }
    int64_t n = dims[0];
    double t0 = rdml_now();
    double thr = rdml_rh5_num(d->r, obj, "threshold", NAN);
    int64_t *order = NULL, *pos = NULL;
    char why[256] = "";
    int rc = rdm_order(d, obj, n, &order, why, sizeof why);
    if (rc) return rc;
    if (!order) rdml_rep_note(d, "%s: %s", obj, why);
    double t_order = rdml_now() - t0;
    rdml_blocks b;
    rc = rdml_blocks_init(ctx, &b, n, d->p->max_heatmap, isfinite(thr) ? thr : INFINITY);
    if (rc) {
        free(order);
        return rc;
    }
    if (order) {
        pos = rdml_malloc(ctx, (size_t)n * sizeof *pos, "RDM positions");
        if (!pos) rc = ctx->code;
        for (int64_t p = 0; p < n && pos; p++) pos[order[p]] = p;
        b.pos = pos;
    }
    if (!rc) rc = read_rdm_rows(d, obj, n, b.f, to_blocks, &b);
    float *mean = NULL, *share = NULL;
    if (!rc) rc = rdml_blocks_finish(ctx, &b, &mean, &share);
    rdml_blocks_free(&b);
    double *hist = NULL, *edges = NULL;
    int64_t nh = 0, ne = 0;
    rdml_ctx q;
    rdml_ctx_init(&q);
    if (!rc && rdml_rh5_exists(d->r, sobj)) {
        char hp[600], ep[600];
        snprintf(hp, sizeof hp, "%s/hist", sobj);
        snprintf(ep, sizeof ep, "%s/edges", sobj);
        if (rdml_rh5_exists(d->r, hp) && rdml_rh5_exists(d->r, ep)) {
            if (rdml_rh5_read_f64(&q, d->r, hp, &hist, &nh) ||
                rdml_rh5_read_f64(&q, d->r, ep, &edges, &ne) || ne != nh + 1) {
                free(hist);
                free(edges);
                hist = edges = NULL;
                nh = 0;
            }
        }
    }
    if (!rc) {
        char *metric = rdml_rh5_str(d->r, obj, "metric");
        char *rule = rdml_rh5_str(d->r, obj, "threshold_rule");
        char label[200];
        snprintf(label, sizeof label, "subj%02d %s", subj, sel);
        rdm_fig g = {mean, share, b.m, n, b.f, 0, 1, thr,
                     rdml_rh5_num(d->r, sobj, "median", NAN), label, metric, hist, edges, nh,
                     order ? "image (clustered order)" : "image (row)"};
        heat_range(mean, b.m, &g.vmin, &g.vmax);
        rdml_report_safe_name(sel, safe, sizeof safe);
        snprintf(name, sizeof name, "fig_rdm_subj%02d_%s", subj, safe);
        char cap[6144], e1[600], e2[128], e3[600], ord[1400];
        if (order) {
            int64_t nnsd = 0;
            int64_t *nsd = read_nsd_ids(d, subj, &nnsd);
            rc = write_order_csv(d, name, order, n, nsd, nnsd);
            free(nsd);
            snprintf(ord, sizeof ord,
                     " Rows and columns are <b>ordered by average-linkage hierarchical clustering of "
                     "this RDM</b> (UPGMA on its own values, each RDM separately; the leaf order of "
                     "scipy's <code>leaves_list(linkage(squareform(R), 'average'))</code>), so "
                     "images it finds similar are neighbours; position, file row and NSD id of "
                     "each image: <a href=\"%s_order.csv\">%s_order.csv</a>.", name, name);
        } else {
            snprintf(ord, sizeof ord, " Rows and columns are in file order (<code>/subjects/subj%02d/"
                     "images</code>): %s.", subj, why);
        }
        char down[512] = "";
        if (b.f > 1)
            snprintf(down, sizeof down,
                     " <b>Downsampled</b>: the %lld x %lld RDM is shown as %lld x %lld blocks of %lld x "
                     "%lld entries (block means; binary panel: share of the block's pairs above the "
                     "threshold).", (long long)n, (long long)n, (long long)b.m, (long long)b.m,
                     (long long)b.f, (long long)b.f);
        snprintf(cap, sizeof cap,
                 "RDM of subj%02d, selection <code>%s</code> (%lld images, metric %s). Left: "
                 "continuous values; middle: binary labels (dissimilar = value &gt; threshold %.4g, "
                 "rule %s); right: histogram of the upper-triangle values with the threshold and "
                 "median (cf. the paper's Figure 1).%s%s", subj, rdml_html_esc(sel, e1, sizeof e1),
                 (long long)n, rdml_html_esc(metric ? metric : "?", e2, sizeof e2), thr,
                 rdml_html_esc(rule ? rule : "n/a", e3, sizeof e3), ord, down);
        if (!rc) rc = rdml_rep_figure(d, name, 1760, 520, draw_rdm, &g, cap);
        free(metric);
        free(rule);
        rdml_debug(ctx, "report: RDM subj%02d %s (%lld images) drawn in %.2f s (ordering %.2f s)",
                   subj, sel, (long long)n, rdml_now() - t0, t_order);
    }
    free(order);
    free(pos);
    free(mean);
    free(share);
    free(hist);
    free(edges);
    return rc;
}

/* ---- Figure 2: most similar / dissimilar pairs ---- */

typedef struct pair_fig {
    int k;
    rdml_image im[2][8][2];
    int64_t rows[2][8][2];
    int64_t nsd[2][8][2]; /* NSD ids of the rows (-1: not stored) */
    double val[2][8];
    const char *label;
} pair_fig;

/* "NSD 2950" or, when the file stores no NSD id for the row, "row 248" */
static void image_id(char *buf, size_t len, int64_t nsd, int64_t row) {
    if (nsd >= 0) snprintf(buf, len, "NSD %lld", (long long)nsd);
    else snprintf(buf, len, "row %lld", (long long)row);
}

static void draw_pairs(cairo_t *cr, void *user) {
    const pair_fig *g = user;
    static const char *const head[2] = {"most similar (lowest RDM values)",
                                        "most dissimilar (highest RDM values)"};
    char lab[200];
    snprintf(lab, sizeof lab, "%s: extreme image pairs", g->label);
    rdml_plot_text_bold(cr, 560, 12, lab, 15, 0.5, 0, 0);
    for (int side = 0; side < 2; side++) {
        double x0 = 40 + side * 560;
        rdml_plot_text_bold(cr, x0 + 240, 42, head[side], 13, 0.5, 0, 0);
        for (int p = 0; p < g->k; p++) {
            double y0 = 70 + p * 200;
            rdml_plot_image(cr, &g->im[side][p][0], x0, y0, 170, 170);
            rdml_plot_image(cr, &g->im[side][p][1], x0 + 180, y0, 170, 170);
            snprintf(lab, sizeof lab, "RDM value = %.3f", g->val[side][p]);
            rdml_plot_text_bold(cr, x0 + 365, y0 + 70, lab, 13, 0, 0.5, 0);
            char a[48], b[48];
            image_id(a, sizeof a, g->nsd[side][p][0], g->rows[side][p][0]);
            image_id(b, sizeof b, g->nsd[side][p][1], g->rows[side][p][1]);
            snprintf(lab, sizeof lab, "left: %s", a);
            rdml_plot_text(cr, x0 + 365, y0 + 95, lab, 12, 0, 0.5, 0);
            snprintf(lab, sizeof lab, "right: %s", b);
            rdml_plot_text(cr, x0 + 365, y0 + 113, lab, 12, 0, 0.5, 0);
        }
    }
}

static int pairs_figure(rdml_rep *d, int subj, const char *sel) {
    char sobj[512], obj[600], why[2048];
    snprintf(sobj, sizeof sobj, "/subjects/subj%02d/rdm_summary/%s", subj, sel);
    rdml_ctx q;
    rdml_ctx_init(&q);
    int64_t *lp = NULL, *hp = NULL;
    double *lv = NULL, *hv = NULL;
    int64_t nlp = 0, nhp = 0, nlv = 0, nhv = 0;
    int bad = 0;
    snprintf(obj, sizeof obj, "%s/low_pairs", sobj);
    bad |= rdml_rh5_read_i64(&q, d->r, obj, &lp, &nlp);
    snprintf(obj, sizeof obj, "%s/high_pairs", sobj);
    bad |= !bad && rdml_rh5_read_i64(&q, d->r, obj, &hp, &nhp);
    snprintf(obj, sizeof obj, "%s/low_values", sobj);
    bad |= !bad && rdml_rh5_read_f64(&q, d->r, obj, &lv, &nlv);
    snprintf(obj, sizeof obj, "%s/high_values", sobj);
    bad |= !bad && rdml_rh5_read_f64(&q, d->r, obj, &hv, &nhv);
    int k = d->p->pair_examples < 8 ? d->p->pair_examples : 8;
    if (!bad) {
        if (nlv < k) k = (int)nlv;
        if (nhv < k) k = (int)nhv;
        if (nlp < 2 * k || nhp < 2 * k) bad = 1;
    }
    int rc = RDML_OK;
    if (bad || k < 1) {
        fprintf(d->html, "<p class=\"absent\">Most similar / dissimilar pairs of subj%02d: <code>", subj);
        rdml_html_escape(d->html, sobj);
        fputs("</code> has no pair lists (rerun <code>rdmlearn rdm</code>).</p>\n", d->html);
        goto done;
    }
    pair_fig *g = calloc(1, sizeof *g);
    if (!g) {
        rc = RDML_FAIL(d->ctx, RDML_ENOMEM, "out of memory for the pair figure");
        goto done;
    }
    int64_t rows[32];
    for (int p = 0; p < k; p++) {
        /* high_pairs/values are sorted ascending: the most dissimilar last */
        int64_t hi = nhv - 1 - p;
        g->rows[0][p][0] = lp[2 * p];
        g->rows[0][p][1] = lp[2 * p + 1];
        g->val[0][p] = lv[p];
        g->rows[1][p][0] = hp[2 * hi];
        g->rows[1][p][1] = hp[2 * hi + 1];
        g->val[1][p] = hv[hi];
        rows[4 * p] = g->rows[0][p][0];
        rows[4 * p + 1] = g->rows[0][p][1];
        rows[4 * p + 2] = g->rows[1][p][0];
        rows[4 * p + 3] = g->rows[1][p][1];
    }
    /* high values may be stored descending: take whichever end is larger */
    if (nhv > 1 && hv[0] > hv[nhv - 1])
        for (int p = 0; p < k; p++) {
            g->rows[1][p][0] = hp[2 * p];
            g->rows[1][p][1] = hp[2 * p + 1];
            g->val[1][p] = hv[p];
            rows[4 * p + 2] = g->rows[1][p][0];
            rows[4 * p + 3] = g->rows[1][p][1];
        }
    int64_t nnsd = 0;
    int64_t *nsd = read_nsd_ids(d, subj, &nnsd);
    for (int p = 0; p < k; p++)
        for (int side = 0; side < 2; side++)
            for (int w = 0; w < 2; w++) {
                int64_t row = g->rows[side][p][w];
                g->nsd[side][p][w] = row >= 0 && row < nnsd ? nsd[row] : -1;
            }
    free(nsd);
    char(*paths)[4096] = malloc(sizeof(char[4096]) * (size_t)(4 * k));
    int found = paths && image_paths(d, subj, rows, 4 * k, paths, why, sizeof why) == 0;
    for (int i = 0; i < 4 * k && found; i++) {
        int p = i / 4, side = (i % 4) / 2, w = i % 2;
        if (rdml_png_read(&q, paths[i], 3, &g->im[side][p][w])) {
            snprintf(why, sizeof why, "%s", q.msg);
            found = 0;
        }
    }
    char label[200], name[256], safe[128], cap[8192], e1[600], e2[1200], e3[2048];
    snprintf(label, sizeof label, "subj%02d %s", subj, sel);
    g->label = label;
    g->k = k;
    if (found) {
        rdml_report_safe_name(sel, safe, sizeof safe);
        snprintf(name, sizeof name, "fig_pairs_subj%02d_%s", subj, safe);
        snprintf(cap, sizeof cap,
                 "The %d most similar (left) and most dissimilar (right) image pairs of subj%02d, "
                 "selection <code>%s</code>, with their RDM values and NSD image ids (from "
                 "<code>%s</code> and <code>images/nsd_id</code>; images from %s; cf. the paper's "
                 "Figure 2).", k, subj, rdml_html_esc(sel, e1, sizeof e1),
                 rdml_html_esc(sobj, e2, sizeof e2), rdml_html_esc(d->image_root, e3, sizeof e3));
        rc = rdml_rep_figure(d, name, 1120, 70 + 200 * k, draw_pairs, g, cap);
    } else {
        fprintf(d->html, "<p class=\"absent\">Images of the extreme pairs of subj%02d ", subj);
        rdml_html_escape(d->html, sel);
        fputs(" not shown: ", d->html);
        rdml_html_escape(d->html, why);
        fputs(". Their images and values:</p>\n", d->html);
        rdml_rep_note(d, "extreme-pair images of subj%02d %s: %s", subj, sel, why);
    }
    /* the values as a table in either case */
    fputs("<table><tr><th>rank</th><th>most similar: images</th><th>RDM value</th>"
          "<th>most dissimilar: images</th><th>RDM value</th></tr>\n", d->html);
    for (int p = 0; p < k; p++) {
        fprintf(d->html, "<tr><td>%d</td>", p + 1);
        for (int side = 0; side < 2; side++) {
            char a[48], b[48];
            image_id(a, sizeof a, g->nsd[side][p][0], g->rows[side][p][0]);
            image_id(b, sizeof b, g->nsd[side][p][1], g->rows[side][p][1]);
            fprintf(d->html, "<td>%s, %s <span class=\"note\">(rows %lld, %lld)</span></td>"
                    "<td>%.4f</td>", a, b, (long long)g->rows[side][p][0],
                    (long long)g->rows[side][p][1], g->val[side][p]);
        }
        fputs("</tr>\n", d->html);
    }
    fputs("</table>\n", d->html);
    for (int s = 0; s < 2; s++)
        for (int p = 0; p < 8; p++)
            for (int w = 0; w < 2; w++) rdml_image_free(&g->im[s][p][w]);
    free(paths);
    free(g);
done:
    free(lp);
    free(hp);
    free(lv);
    free(hv);
    return rc;
}

/* ---- Figure 3: examples of each colour class ---- */

enum { NCLS = 4, NEX = 6 };
typedef struct color_fig {
    rdml_image im[NCLS][NEX];
    int nex[NCLS];
    int64_t count[NCLS], scanned;
    double fraction;
    int subj;
} color_fig;

static void draw_colors(cairo_t *cr, void *user) {
    const color_fig *g = user;
    static const char *const names[NCLS] = {"red", "green", "blue", "unclassified"};
    char lab[200];
    snprintf(lab, sizeof lab, "subj%02d: colour classes (dominant colour >= %.0f%% of pixels)",
             g->subj, 100 * g->fraction);
    rdml_plot_text_bold(cr, 20, 12, lab, 15, 0, 0, 0);
    for (int c = 0; c < NCLS; c++) {
        double y0 = 50 + c * 150;
        rdml_plot_text_bold(cr, 20, y0 + 55, names[c], 14, 0, 0.5, 0);
        snprintf(lab, sizeof lab, "%lld of %lld", (long long)g->count[c], (long long)g->scanned);
        rdml_plot_text(cr, 20, y0 + 80, lab, 12, 0, 0.5, 0);
        if (g->nex[c] == 0) rdml_plot_text(cr, 180, y0 + 65, "(no image of this class)", 12, 0, 0.5, 0);
        for (int e = 0; e < g->nex[c]; e++)
            rdml_plot_image(cr, &g->im[c][e], 180 + e * 145, y0, 135, 135);
    }
}

static int colors_figure(rdml_rep *d, int subj) {
    char obj[256], why[2048];
    snprintf(obj, sizeof obj, "/subjects/subj%02d/images/names", subj);
    int nd;
    int64_t dims[8];
    rdml_ctx q;
    rdml_ctx_init(&q);
    if (rdml_rh5_dims(&q, d->r, obj, &nd, dims) || nd != 1) return RDML_OK;
    int64_t n = dims[0] < d->p->color_scan ? dims[0] : d->p->color_scan;
    if (n < 1) return RDML_OK;
    int64_t *rows = malloc((size_t)n * sizeof *rows);
    char(*paths)[4096] = malloc(sizeof(char[4096]) * (size_t)n);
    color_fig *g = calloc(1, sizeof *g);
    int rc = RDML_OK;
    if (!rows || !paths || !g) {
        rc = RDML_FAIL(d->ctx, RDML_ENOMEM, "out of memory for the colour figure");
        goto done;
    }
    for (int64_t i = 0; i < n; i++) rows[i] = i;
    if (image_paths(d, subj, rows, (int)n, paths, why, sizeof why) != 0) {
        fprintf(d->html, "<p class=\"absent\">Colour-class examples not shown: ");
        rdml_html_escape(d->html, why);
        fputs(".</p>\n", d->html);
        rdml_rep_note(d, "colour-class examples: %s", why);
        goto done;
    }
    g->fraction = d->color_fraction;
    g->subj = subj;
    for (int64_t i = 0; i < n; i++) {
        rdml_image im;
        if (rdml_png_read(&q, paths[i], 3, &im)) {
            fprintf(d->html, "<p class=\"absent\">Colour-class examples not shown: ");
            rdml_html_escape(d->html, q.msg);
            fputs(".</p>\n", d->html);
            rdml_rep_note(d, "colour-class examples: %s", q.msg);
            goto done;
        }
        int c = rdml_pairs_color_of(im.px, im.w * im.h, d->color_fraction, NULL);
        int cls = c == RDML_COLOR_RED ? 0 : c == RDML_COLOR_GREEN ? 1 : c == RDML_COLOR_BLUE ? 2 : 3;
        g->count[cls]++;
        g->scanned++;
        if (g->nex[cls] < NEX) g->im[cls][g->nex[cls]++] = im;
        else rdml_image_free(&im);
    }
    char cap[2048];
    snprintf(cap, sizeof cap,
             "Example images of each colour class among the first %lld images of subj%02d: an "
             "image belongs to a colour when at least %.0f%% of its pixels are nearest to that "
             "pure colour (the paper's rule, <code>pairs.color_fraction</code> of the stored "
             "configuration), else it is unclassified (cf. the paper's Figure 3). Counts are of "
             "the scanned images.", (long long)g->scanned, subj, 100 * d->color_fraction);
    snprintf(obj, sizeof obj, "fig_colors_subj%02d", subj);
    rc = rdml_rep_figure(d, obj, 1080, 50 + NCLS * 150, draw_colors, g, cap);
done:
    if (g)
        for (int c = 0; c < NCLS; c++)
            for (int e = 0; e < NEX; e++) rdml_image_free(&g->im[c][e]);
    free(g);
    free(rows);
    free(paths);
    return rc;
}

/* ---- sections ---- */

static int subject_id(const char *name) {
    if (strncmp(name, "subj", 4) != 0) return -1;
    char *end;
    long v = strtol(name + 4, &end, 10);
    return *end == '\0' && v > 0 && v < 100 ? (int)v : -1;
}

static int section_rdms(rdml_rep *d) {
    rdml_ctx *ctx = d->ctx;
    char **subs = NULL;
    int ns = 0, rc = RDML_OK, drawn = 0, total = 0, first_subj = -1;
    RDML_TRY(rdml_rh5_list(ctx, d->r, "/subjects", &subs, &ns));
    fputs("<section id=\"rdm\"><h2>Representational dissimilarity matrices</h2>\n", d->html);
    /* table of every RDM first */
    for (int s = 0; s < ns && !rc; s++) {
        int id = subject_id(subs[s]);
        if (id < 0) continue;
        char g[256];
        snprintf(g, sizeof g, "/subjects/%s/rdm", subs[s]);
        char **sels = NULL;
        int nsel = 0;
        rc = rdml_rh5_list(ctx, d->r, g, &sels, &nsel);
        if (!rc && nsel > 0) {
            if (total == 0) {
                rdml_rep_table_open(d, "The RDMs in the results file (attributes of "
                                    "<code>/subjects/subjNN/rdm/&lt;selection&gt;</code> and its summary).");
                fputs("<tr><th>subject</th><th>selection</th><th>images</th><th>vertices</th>"
                      "<th>metric</th><th>threshold (rule)</th><th>dissimilar share</th>"
                      "<th>mean</th><th>median</th><th>min</th><th>max</th><th>seconds</th></tr>\n",
                      d->html);
            }
            for (int k = 0; k < nsel; k++) {
                char o[512], so[512];
                snprintf(o, sizeof o, "%s/%s", g, sels[k]);
                snprintf(so, sizeof so, "/subjects/%s/rdm_summary/%s", subs[s], sels[k]);
                char *metric = rdml_rh5_str(d->r, o, "metric"), *rule = rdml_rh5_str(d->r, o, "threshold_rule");
                fprintf(d->html, "<tr><td>%s</td><td>", subs[s]);
                rdml_html_escape(d->html, sels[k]);
                fprintf(d->html, "</td><td>%.0f</td><td>%.0f</td><td>%s</td><td>",
                        rdml_rh5_num(d->r, o, "n_images", NAN), rdml_rh5_num(d->r, o, "n_vertices", NAN),
                        metric ? metric : "?");
                rdml_rep_num(d->html, rdml_rh5_num(d->r, o, "threshold", NAN));
                fprintf(d->html, " (%s)</td><td>", rule ? rule : "?");
                rdml_rep_num(d->html, rdml_rh5_num(d->r, o, "dissimilar_fraction", NAN));
                const char *cols[4] = {"mean", "median", "min", "max"};
                for (int c = 0; c < 4; c++) {
                    fputs("</td><td>", d->html);
                    rdml_rep_num(d->html, rdml_rh5_num(d->r, so, cols[c], NAN));
                }
                fputs("</td><td>", d->html);
                rdml_rep_num(d->html, rdml_rh5_num(d->r, o, "seconds", NAN));
                fputs("</td></tr>\n", d->html);
                free(metric);
                free(rule);
                total++;
            }
        }
        rdml_rh5_free_names(sels, nsel);
    }
    if (total > 0) rdml_rep_table_close(d);
    for (int s = 0; s < ns && !rc; s++) {
        int id = subject_id(subs[s]);
        if (id < 0) continue;
        char g[256];
        snprintf(g, sizeof g, "/subjects/%s/rdm", subs[s]);
        char **sels = NULL;
        int nsel = 0;
        rc = rdml_rh5_list(ctx, d->r, g, &sels, &nsel);
        for (int k = 0; k < nsel && !rc; k++) {
            if (drawn >= d->p->max_rdm_figures) break;
            fprintf(d->html, "<h3>%s, ", subs[s]);
            rdml_html_escape(d->html, sels[k]);
            fputs("</h3>\n", d->html);
            rc = rdm_figure(d, id, sels[k]);
            if (!rc) rc = pairs_figure(d, id, sels[k]);
            drawn++;
            d->nrdmfig++;
            if (first_subj < 0) first_subj = id;
        }
        rdml_rh5_free_names(sels, nsel);
    }
    if (total > drawn)
        fprintf(d->html, "<p class=\"note\">%d of the %d RDMs are drawn (the report draws at most "
                "%d; all are in the table above).</p>\n", drawn, total, d->p->max_rdm_figures);
    if (total == 0) {
        fputs("<p class=\"absent\">No RDMs in this file.</p>\n", d->html);
        rdml_rep_absent(d, "RDMs (/subjects/subjNN/rdm): run <code>rdmlearn rdm</code>");
    }
    /* colour classes from the first subject that has image names */
    if (!rc) {
        int cs = first_subj;
        for (int s = 0; s < ns && cs < 0; s++) {
            char o[256];
            snprintf(o, sizeof o, "/subjects/%s/images/names", subs[s]);
            if (subject_id(subs[s]) > 0 && rdml_rh5_exists(d->r, o)) cs = subject_id(subs[s]);
        }
        if (cs > 0) {
            fputs("<h3>Colour classes</h3>\n", d->html);
            rc = colors_figure(d, cs);
        } else {
            rdml_rep_absent(d, "image names (/subjects/subjNN/images/names), needed for the image "
                            "figures: run <code>rdmlearn rdm</code> or <code>rdmlearn embed</code>");
        }
    }
    fputs("</section>\n", d->html);
    rdml_rh5_free_names(subs, ns);
    return rc;
}

/* The subjects x subjects correlation of their RDMs on the shared images (Spearman when
 * stored, else the first method). */
static int rsa_figure(rdml_rep *d, const char *sel) {
    char g[512], mg[700], o[800];
    snprintf(g, sizeof g, "/rsa/%s", sel);
    const char *methods[3] = {"spearman", "pearson", "kendall_tau_a"};
    const char *method = NULL;
    for (int m = 0; m < 3 && !method; m++) {
        snprintf(o, sizeof o, "%s/%s/subject_corr", g, methods[m]);
        if (rdml_rh5_exists(d->r, o)) method = methods[m];
    }
    if (!method) return RDML_OK;
    snprintf(mg, sizeof mg, "%s/%s", g, method);
    rdml_ctx q;
    rdml_ctx_init(&q);
    double *c = NULL;
    int64_t *subs = NULL, nc = 0, ns = 0;
    snprintf(o, sizeof o, "%s/subjects", g);
    int bad = rdml_rh5_read_i64(&q, d->r, o, &subs, &ns);
    snprintf(o, sizeof o, "%s/subject_corr", mg);
    if (!bad) bad = rdml_rh5_read_f64(&q, d->r, o, &c, &nc);
    int rc = RDML_OK;
    rdml_matrix_fig *f = NULL;
    if (bad || ns < 2 || ns > 32 || nc != ns * ns) goto done;
    f = calloc(1, sizeof *f);
    if (!f) {
        rc = RDML_FAIL(d->ctx, RDML_ENOMEM, "out of memory for the RSA figure");
        goto done;
    }
    f->nr = f->nc = (int)ns;
    /* a fixed range: correlations run from -1 to 1, and 0 (no shared structure) is the white
     * middle of a diverging map, so a 0.02 difference looks like one (a range fitted to the
     * off-diagonal values would stretch it over the whole map) */
    f->vmin = -1;
    f->vmax = 1;
    f->cmap = rdml_plot_rdbu;
    for (int64_t i = 0; i < ns; i++) {
        snprintf(f->rows[i], sizeof f->rows[i], "subj%02lld", (long long)subs[i]);
        snprintf(f->cols[i], sizeof f->cols[i], "subj%02lld", (long long)subs[i]);
        for (int64_t j = 0; j < ns; j++) f->v[i * ns + j] = (float)c[i * ns + j];
    }
    double ncl = rdml_rh5_num(d->r, mg, "noise_ceiling_lower", NAN),
           ncu = rdml_rh5_num(d->r, mg, "noise_ceiling_upper", NAN);
    f->nref = 2;
    f->ref[0] = ncu;
    f->ref[1] = ncl;
    rdml_strlcpy(f->reflabel[0], "ceiling upper", sizeof f->reflabel[0]);
    rdml_strlcpy(f->reflabel[1], "ceiling lower", sizeof f->reflabel[1]);
    const char *mname = !strcmp(method, "spearman") ? "Spearman rho"
                        : !strcmp(method, "pearson") ? "Pearson r" : "Kendall tau-a";
    snprintf(f->title, sizeof f->title, "%s: correlation of the subjects' RDMs", sel);
    snprintf(f->metric, sizeof f->metric, "%s between RDMs", mname);
    rdml_strlcpy(f->ylabel, "subject", sizeof f->ylabel);
    rdml_strlcpy(f->xlabel, "subject", sizeof f->xlabel);
    char name[300], safe[128], cap[2048], e1[600];
    rdml_report_safe_name(sel, safe, sizeof safe);
    snprintf(name, sizeof name, "fig_rsa_%s", safe);
    snprintf(cap, sizeof cap,
             "Inter-subject consistency of selection <code>%s</code>: %s between the subjects' RDMs "
             "on the %.0f images they all saw (upper triangles). Colour range fixed at -1 to 1 "
             "(white = 0, red = positive, blue = negative), the same for every figure of this "
             "kind; the black marks on the colour bar are the noise ceiling: lower %.3f, upper "
             "%.3f.", rdml_html_esc(sel, e1, sizeof e1), mname,
             rdml_rh5_num(d->r, g, "n_shared_images", NAN), ncl, ncu);
    int w, h;
    rdml_rep_matrix_size(f, &w, &h);
    rc = rdml_rep_figure(d, name, w, h, rdml_rep_draw_matrix, f, cap);
done:
    free(f);
    free(c);
    free(subs);
    return rc;
}

static int section_rsa(rdml_rep *d) {
    char **sels = NULL;
    int nsel = 0;
    RDML_TRY(rdml_rh5_list(d->ctx, d->r, "/rsa", &sels, &nsel));
    fputs("<section id=\"rsa\"><h2>Inter-subject consistency (RSA)</h2>\n", d->html);
    if (nsel == 0) {
        fputs("<p class=\"absent\">No inter-subject RSA in this file (it needs an "
              "<code>rdmlearn rdm</code> run over several subjects).</p>\n", d->html);
        rdml_rep_absent(d, "inter-subject RSA (/rsa): run <code>rdmlearn rdm</code> with several "
                        "subjects");
    } else {
        rdml_rep_table_open(d, "Noise ceilings on the images all subjects share (leave-one-subject-"
                            "out, Nili et al. 2014) and each subject's correlation with the mean "
                            "RDM of the others (lower) / of all (upper). Pooling: the plain mean of "
                            "the RDMs, or rsatoolbox's pool_rdm (z-scores for pearson, ranks for "
                            "spearman and tau-a; rdm.noise_ceiling).");
        fputs("<tr><th>selection</th><th>method</th><th>pooling</th><th>shared images</th><th>noise "
              "ceiling lower</th><th>noise ceiling upper</th><th>per subject (lower)</th></tr>\n", d->html);
        for (int k = 0; k < nsel; k++) {
            char g[512];
            snprintf(g, sizeof g, "/rsa/%s", sels[k]);
            char **ms = NULL;
            int nm = 0;
            rdml_rh5_list(d->ctx, d->r, g, &ms, &nm);
            for (int m = 0; m < nm; m++) {
                char o[700];
                snprintf(o, sizeof o, "%s/%s", g, ms[m]);
                if (rdml_rh5_kind(d->r, o) != 0) continue;
                fputs("<tr><td>", d->html);
                rdml_html_escape(d->html, sels[k]);
                /* how the mean RDM was pooled (rdm.noise_ceiling; files before it: the mean) */
                char *pool = rdml_rh5_str(d->r, o, "noise_ceiling_pool");
                fprintf(d->html, "</td><td>%s</td><td>", ms[m]);
                rdml_html_escape(d->html, pool ? pool : "mean");
                free(pool);
                fprintf(d->html, "</td><td>%.0f</td><td>", rdml_rh5_num(d->r, g, "n_shared_images", NAN));
                rdml_rep_num(d->html, rdml_rh5_num(d->r, o, "noise_ceiling_lower", NAN));
                fputs("</td><td>", d->html);
                rdml_rep_num(d->html, rdml_rh5_num(d->r, o, "noise_ceiling_upper", NAN));
                fputs("</td><td>", d->html);
                char po[800];
                snprintf(po, sizeof po, "%s/per_subject_lower", o);
                double *v = NULL;
                int64_t nv = 0;
                rdml_ctx q;
                rdml_ctx_init(&q);
                if (rdml_rh5_exists(d->r, po) && !rdml_rh5_read_f64(&q, d->r, po, &v, &nv))
                    for (int64_t i = 0; i < nv; i++) {
                        if (i) fputs(", ", d->html);
                        rdml_rep_num(d->html, v[i]);
                    }
                free(v);
                fputs("</td></tr>\n", d->html);
            }
            rdml_rh5_free_names(ms, nm);
        }
        rdml_rep_table_close(d);
        for (int k = 0; k < nsel && k < d->p->max_rdm_figures; k++) {
            int rc = rsa_figure(d, sels[k]);
            if (rc) {
                rdml_rh5_free_names(sels, nsel);
                return rc;
            }
        }
    }
    fputs("</section>\n", d->html);
    rdml_rh5_free_names(sels, nsel);
    return RDML_OK;
}

static int section_embeddings(rdml_rep *d) {
    char **subs = NULL;
    int ns = 0, total = 0;
    RDML_TRY(rdml_rh5_list(d->ctx, d->r, "/subjects", &subs, &ns));
    fputs("<section id=\"embeddings\"><h2>Embeddings</h2>\n", d->html);
    for (int s = 0; s < ns; s++) {
        char g[256];
        snprintf(g, sizeof g, "/subjects/%s/embeddings", subs[s]);
        char **es = NULL;
        int ne = 0;
        rdml_rh5_list(d->ctx, d->r, g, &es, &ne);
        for (int k = 0; k < ne; k++) {
            char o[512];
            snprintf(o, sizeof o, "%s/%s", g, es[k]);
            int nd = 0;
            int64_t dims[8] = {0, 0};
            rdml_ctx q;
            rdml_ctx_init(&q);
            if (rdml_rh5_dims(&q, d->r, o, &nd, dims) || nd != 2) continue;
            if (total++ == 0) {
                rdml_rep_table_open(d, "Image embeddings (<code>/subjects/subjNN/embeddings</code>).");
                fputs("<tr><th>subject</th><th>name</th><th>images x dims</th><th>backend</th>"
                      "<th>model</th><th>preprocessing</th><th>seconds</th></tr>\n", d->html);
            }
            char *be = rdml_rh5_str(d->r, o, "backend"), *mo = rdml_rh5_str(d->r, o, "model"),
                 *pp = rdml_rh5_str(d->r, o, "preprocessing");
            fprintf(d->html, "<tr><td>%s</td><td>", subs[s]);
            rdml_html_escape(d->html, es[k]);
            fprintf(d->html, "</td><td>%lld x %lld</td><td>", (long long)dims[0], (long long)dims[1]);
            rdml_html_escape(d->html, be ? be : "?");
            fputs("</td><td>", d->html);
            rdml_html_escape(d->html, mo ? mo : "?");
            fputs("</td><td>", d->html);
            rdml_html_escape(d->html, pp ? pp : "?");
            fputs("</td><td>", d->html);
            rdml_rep_num(d->html, rdml_rh5_num(d->r, o, "seconds", NAN));
            fputs("</td></tr>\n", d->html);
            free(be);
            free(mo);
            free(pp);
        }
        rdml_rh5_free_names(es, ne);
    }
    if (total) rdml_rep_table_close(d);
    else {
        fputs("<p class=\"absent\">No embeddings in this file.</p>\n", d->html);
        rdml_rep_absent(d, "embeddings (/subjects/subjNN/embeddings): run <code>rdmlearn embed</code>");
    }
    fputs("</section>\n", d->html);
    rdml_rh5_free_names(subs, ns);
    return RDML_OK;
}

/* Sum of a numeric attribute over every object below a group whose name starts with
 * `prefix` (fold groups' fit_seconds). */
static double sum_attr(rdml_rep *d, const char *group, const char *prefix, const char *attr,
                       int depth) {
    char **names = NULL;
    int n = 0;
    double s = 0;
    rdml_ctx q;
    rdml_ctx_init(&q);
    if (rdml_rh5_list(&q, d->r, group, &names, &n)) return 0;
    for (int i = 0; i < n; i++) {
        char o[1024];
        snprintf(o, sizeof o, "%s/%s", group, names[i]);
        if (rdml_rh5_kind(d->r, o) != 0) continue;
        if (!strncmp(names[i], prefix, strlen(prefix))) {
            double v = rdml_rh5_num(d->r, o, attr, NAN);
            if (isfinite(v)) s += v;
        } else if (depth > 0) {
            s += sum_attr(d, o, prefix, attr, depth - 1);
        }
    }
    rdml_rh5_free_names(names, n);
    return s;
}

static int section_provenance(rdml_rep *d, double seconds_so_far) {
    fputs("<section id=\"provenance\"><h2>Provenance</h2>\n", d->html);
    char *ver = rdml_rh5_str(d->r, "/meta", "rdmlearn_version");
    fputs("<p>Written by rdmlearn ", d->html);
    rdml_html_escape(d->html, ver ? ver : "(version not recorded)");
    fprintf(d->html, "; this report by rdmlearn %s.</p>\n", RDML_VERSION);
    free(ver);
    char **st = NULL;
    int ns = 0;
    RDML_TRY(rdml_rh5_list(d->ctx, d->r, "/meta/stages", &st, &ns));
    if (ns == 0) {
        fputs("<p class=\"absent\">No stage provenance (/meta/stages) in this file.</p>\n", d->html);
        rdml_rep_absent(d, "provenance (/meta/stages): the file was not written by an rdmlearn stage");
    } else {
        rdml_rep_table_open(d, "Stages that wrote this file (<code>/meta/stages</code>): start time, "
                            "MPI ranks and BLAS threads per rank.");
        fputs("<tr><th>stage</th><th>started (UTC)</th><th>ranks</th><th>BLAS threads per rank</th></tr>\n",
              d->html);
        for (int i = 0; i < ns; i++) {
            char o[512];
            snprintf(o, sizeof o, "/meta/stages/%s", st[i]);
            char *when = rdml_rh5_str(d->r, o, "started");
            fprintf(d->html, "<tr><td>%s</td><td>%s</td><td>%.0f</td><td>%.0f</td></tr>\n", st[i],
                    when ? when : "?", rdml_rh5_num(d->r, o, "ranks", NAN),
                    rdml_rh5_num(d->r, o, "blas_threads_per_rank", NAN));
            free(when);
        }
        rdml_rep_table_close(d);
    }
    /* timings recorded by the stages */
    double rdm_s = 0, emb_s = 0;
    char **subs = NULL;
    int nsub = 0;
    rdml_rh5_list(d->ctx, d->r, "/subjects", &subs, &nsub);
    for (int s = 0; s < nsub; s++) {
        const char *kinds[2] = {"rdm", "embeddings"};
        for (int k = 0; k < 2; k++) {
            char g[256];
            snprintf(g, sizeof g, "/subjects/%s/%s", subs[s], kinds[k]);
            char **names = NULL;
            int n = 0;
            rdml_rh5_list(d->ctx, d->r, g, &names, &n);
            for (int i = 0; i < n; i++) {
                char o[512];
                snprintf(o, sizeof o, "%s/%s", g, names[i]);
                double v = rdml_rh5_num(d->r, o, "seconds", NAN);
                if (isfinite(v)) *(k ? &emb_s : &rdm_s) += v;
            }
            rdml_rh5_free_names(names, n);
        }
    }
    rdml_rh5_free_names(subs, nsub);
    double fit_s = sum_attr(d, "/experiments", "fold_", "fit_seconds", 4);
    rdml_rep_table_open(d, "Timings recorded in the file (wall-clock seconds; fits are summed over "
                        "folds, which run in parallel over ranks).");
    fputs("<tr><th>what</th><th>seconds</th></tr>\n<tr><td>RDMs (sum)</td><td>", d->html);
    rdml_rep_num(d->html, rdm_s);
    fputs("</td></tr>\n<tr><td>embeddings (sum)</td><td>", d->html);
    rdml_rep_num(d->html, emb_s);
    fputs("</td></tr>\n<tr><td>model fits, all folds (sum)</td><td>", d->html);
    rdml_rep_num(d->html, fit_s);
    fputs("</td></tr>\n<tr><td>this report</td><td>", d->html);
    rdml_rep_num(d->html, seconds_so_far);
    fputs("</td></tr>\n", d->html);
    rdml_rep_table_close(d);
    for (int i = 0; i < ns; i++) {
        char o[512];
        snprintf(o, sizeof o, "/meta/stages/%s", st[i]);
        char *cfg = rdml_rh5_str(d->r, o, "config");
        if (!cfg) continue;
        fprintf(d->html, "<details><summary>Resolved configuration of <code>%s</code></summary>"
                "<pre>", st[i]);
        rdml_html_escape(d->html, cfg);
        fputs("</pre></details>\n", d->html);
        free(cfg);
    }
    rdml_rh5_free_names(st, ns);
    fputs("</section>\n", d->html);
    return RDML_OK;
}

static const char css[] =
    "body{font-family:'DejaVu Sans',Verdana,sans-serif;max-width:1800px;margin:1em auto;"
    "padding:0 1em;color:#222}\n"
    "h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;margin-top:2em}\n"
    "figure{margin:1.2em 0}figure img{max-width:100%;height:auto;border:1px solid #eee}\n"
    "figcaption{max-width:1100px;font-size:0.92em;margin-top:0.3em}\n"
    "table{border-collapse:collapse;margin:1em 0;font-size:0.9em}\n"
    "caption{text-align:left;padding-bottom:0.3em;max-width:1100px}\n"
    "th,td{border:1px solid #ccc;padding:0.2em 0.6em;text-align:right}\n"
    "th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}\n"
    ".absent{color:#8a4b00}.note{color:#555}td.chosen{font-weight:bold;background:#eef5ff}\n"
    "pre{background:#f7f7f7;padding:0.6em;overflow-x:auto;font-size:0.85em}\n";

/* The model-score summary (the first thing a reader wants) */
static int section_summary(rdml_rep *d) {
    fputs("<section id=\"summary\"><h2>Summary: model scores</h2>\n", d->html);
    int rows = 0;
    int rc = rdml_rep_summary(d, &rows);
    if (!rc && rows == 0)
        fputs("<p class=\"absent\">No model results in this file (<code>rdmlearn svm</code>, "
              "<code>rdmlearn train</code>).</p>\n", d->html);
    fputs("</section>\n", d->html);
    return rc;
}

static int write_report(rdml_rep *d, const char *results_path) {
    double t0 = rdml_now();
    find_images(d, results_path);
    FILE *h = d->html;
    /* The sections are rendered into two buffers, in the order they appear (figure and table
     * numbers follow it): the results a reader looks for first (model scores, RSA), then,
     * after the list of absent parts (known only once everything was rendered), the details:
     * experiments, sweep tables, the RDMs with their figures, embeddings and provenance. */
    char *top = NULL, *body = NULL;
    size_t tlen = 0, blen = 0;
    FILE *mt = open_memstream(&top, &tlen);
    FILE *mb = mt ? open_memstream(&body, &blen) : NULL;
    if (!mb) {
        if (mt) fclose(mt);
        free(top);
        return RDML_FAIL(d->ctx, RDML_ENOMEM, "out of memory for the report body");
    }
    d->html = mt;
    int rc = section_summary(d);
    if (!rc) rc = rdml_rep_evaluate(d);
    long layers_at = ftell(mt);
    if (!rc) rc = rdml_rep_layers(d);
    int have_layers = ftell(mt) > layers_at;
    if (!rc) rc = section_rsa(d);
    d->html = mb;
    if (!rc) rc = rdml_rep_experiments(d);
    if (!rc) rc = rdml_rep_sweep(d);
    if (!rc) rc = rdml_rep_encode(d);
    if (!rc) rc = section_rdms(d);
    if (!rc) rc = section_embeddings(d);
    if (!rc) rc = section_provenance(d, rdml_now() - t0);
    fclose(mt);
    fclose(mb);
    d->html = h;
    if (!rc) {
        fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>rdmlearn "
              "report: ", h);
        rdml_html_escape(h, results_path);
        fprintf(h, "</title>\n<style>\n%s</style>\n</head>\n<body>\n<h1>rdmlearn report</h1>\n", css);
        fputs("<p>Results file: <code>", h);
        rdml_html_escape(h, results_path);
        fputs("</code>. Every figure and table is drawn from this file alone (nothing is recomputed); "
              "click a figure for its SVG.</p>\n", h);
        fprintf(h, "<nav id=\"contents\"><b>Contents</b>\n<ol>\n"
              "<li><a href=\"#summary\">Summary: model scores</a></li>\n"
              "<li><a href=\"#evaluate\">Model comparison (evaluate)</a></li>\n"
              "%s"
              "<li><a href=\"#rsa\">Inter-subject consistency (RSA) and noise ceilings</a></li>\n"
              "<li><a href=\"#absent\">Absent parts</a></li>\n"
              "<li><a href=\"#experiments\">Experiments: tables and figures per model</a></li>\n"
              "<li><a href=\"#sweep\">Sweep tables</a></li>\n",
                have_layers ? "<li><a href=\"#layers\">Layer curves: score against layer depth</a></li>\n" : "");
        if (rdml_rh5_exists(d->r, "/encode"))
            fputs("<li><a href=\"#encode\">Encoding models: accuracy by ROI, chosen "
                  "alphas</a></li>\n", h);
        fprintf(h, "<li><a href=\"#rdm\">RDMs: table, %d figure(s), extreme pairs, colour "
                "classes</a></li>\n", d->nrdmfig);
        fputs("<li><a href=\"#embeddings\">Embeddings</a></li>\n"
              "<li><a href=\"#provenance\">Provenance</a></li>\n</ol>\n</nav>\n", h);
        fwrite(top, 1, tlen, h);
        fputs("<section id=\"absent\"><h2>Absent parts</h2>\n", h);
        if (d->nabsent == 0) {
            fputs("<p>None: the file holds every part the report draws.</p>\n", h);
        } else {
            fputs("<p class=\"absent\">This results file does not hold the following; the rest is "
                  "rendered:</p>\n<ul>\n", h);
            for (int i = 0; i < d->nabsent; i++) fprintf(h, "<li>%s</li>\n", d->absent[i]);
            fputs("</ul>\n", h);
        }
        if (d->nnotes > 0) {
            fputs("<p class=\"note\">Notes:</p>\n<ul>\n", h);
            for (int i = 0; i < d->nnotes; i++) {
                fputs("<li>", h);
                rdml_html_escape(h, d->notes[i]);
                fputs("</li>\n", h);
            }
            fputs("</ul>\n", h);
        }
        fputs("</section>\n", h);
        fwrite(body, 1, blen, h);
        fputs("</body>\n</html>\n", h);
    }
    free(top);
    free(body);
    return rc;
}

static int mkdir_p(rdml_ctx *ctx, const char *dir) {
    char buf[4096];
    if (rdml_strlcpy(buf, dir, sizeof buf) >= sizeof buf)
        return RDML_FAIL(ctx, RDML_EUSAGE, "report directory name too long: %s", dir);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(buf, 0777) != 0 && errno != EEXIST)
            return RDML_FAIL(ctx, RDML_EIO, "%s: cannot create directory: %s", buf, strerror(errno));
        *p = '/';
    }
    if (mkdir(buf, 0777) != 0 && errno != EEXIST)
        return RDML_FAIL(ctx, RDML_EIO, "%s: cannot create the report directory: %s", buf,
                         strerror(errno));
    if (!dir_exists(buf))
        return RDML_FAIL(ctx, RDML_EIO, "%s: exists and is not a directory (hint: choose another "
                         "-o DIR)", buf);
    return RDML_OK;
}

static int report_serial(rdml_ctx *ctx, const char *results_path, const char *out_dir,
                         const rdml_report_params *p) {
    rdml_rep d;
    memset(&d, 0, sizeof d);
    d.ctx = ctx;
    d.p = p;
    if (!results_path || !results_path[0])
        return RDML_FAIL(ctx, RDML_EUSAGE, "report: no results file given");
    if (out_dir && out_dir[0]) {
        rdml_strlcpy(d.dir, out_dir, sizeof d.dir);
    } else {
        char base[4096];
        dirname_of(results_path, base, sizeof base);
        snprintf(d.dir, sizeof d.dir, "%s/report", base);
    }
    RDML_TRY(rdml_rh5_open(ctx, results_path, &d.r));
    int rc = mkdir_p(ctx, d.dir);
    char path[4200], tmp[4300];
    snprintf(path, sizeof path, "%s/report.html", d.dir);
    snprintf(tmp, sizeof tmp, "%s.tmp-%ld", path, (long)getpid());
    if (!rc) {
        d.html = fopen(tmp, "w");
        if (!d.html) rc = RDML_FAIL(ctx, RDML_EIO, "%s: cannot write: %s", tmp, strerror(errno));
    }
    double t0 = rdml_now();
    if (!rc) rc = write_report(&d, results_path);
    if (d.html) {
        if (fclose(d.html) != 0 && !rc)
            rc = RDML_FAIL(ctx, RDML_EIO, "%s: cannot write: %s", tmp, strerror(errno));
        if (!rc && rename(tmp, path) != 0)
            rc = RDML_FAIL(ctx, RDML_EIO, "%s: cannot rename to %s: %s", tmp, path, strerror(errno));
        if (rc) unlink(tmp);
    }
    if (rc) rdml_ctx_prefix(ctx, "report of %s", results_path);
    else
        rdml_info(ctx, "report: %d figures, %d tables, %d absent part(s) -> %s (%.1f s)", d.nfig,
                  d.ntab, d.nabsent, path, rdml_now() - t0);
    for (int i = 0; i < d.nabsent; i++) free(d.absent[i]);
    for (int i = 0; i < d.nnotes; i++) free(d.notes[i]);
    free(d.image_root);
    rdml_rh5_close(&d.r);
    return rc;
}

int rdml_report_write_params(rdml_ctx *ctx, MPI_Comm comm, const char *results_path,
                             const char *out_dir, const rdml_report_params *p) {
    int rank = 0;
    MPI_Comm_rank(comm, &rank);
    rdml_report_params def;
    if (!p) {
        rdml_report_params_defaults(&def);
        p = &def;
    }
    int rc = rank == 0 ? report_serial(ctx, results_path, out_dir, p) : RDML_OK;
    return rdml_agree(ctx, comm, rc);
}

int rdml_report_write(rdml_ctx *ctx, MPI_Comm comm, const char *results_path,
                      const char *out_dir) {
    return rdml_report_write_params(ctx, comm, results_path, out_dir, NULL);
}
