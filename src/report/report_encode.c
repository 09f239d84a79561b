/* The report's encoding-model section (/encode, written by `rdmlearn encode`; docs/encode.md):
 * per embedding x subject x selection the per-ROI accuracy table, a figure of the test r by
 * ROI (boxes from the stored percentiles, the r that the noise ceiling allows marked where
 * the dataset has one), and the histogram of the chosen penalties over vertices and folds.
 * The encoding model's predicted-RDM score beside the pair models is the evaluate stage's.
 * Nothing is written when the file has no /encode. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report/report_priv.h"

#define MAXROI 48

typedef struct box_fig {
    int n;
    char name[MAXROI][40];
    double q[MAXROI][5];  /* 5, 25, 50, 75, 95 percentiles of r */
    double ceil_r[MAXROI]; /* sqrt(median noise ceiling / 100), NaN without */
    char title[300];
} box_fig;

static void draw_boxes(cairo_t *cr, void *user) {
    const box_fig *g = user;
    double lo = 0, hi = 0.1;
    for (int k = 0; k < g->n; k++) {
        for (int t = 0; t < 5; t++)
            if (isfinite(g->q[k][t])) {
                lo = g->q[k][t] < lo ? g->q[k][t] : lo;
                hi = g->q[k][t] > hi ? g->q[k][t] : hi;
            }
        if (isfinite(g->ceil_r[k]) && g->ceil_r[k] > hi) hi = g->ceil_r[k];
    }
    rdml_plot_nice_range(&lo, &hi);
    double W = 90 + 46.0 * (g->n < 6 ? 6 : g->n);
    rdml_plot_axes a = {80, 50, W - 100, 330, 0, g->n, lo, hi};
    rdml_plot_frame(cr, &a, "", "test Pearson r (fold mean)", g->title, 0);
    double rgb[3];
    rdml_plot_series_color(0, rgb);
    for (int k = 0; k < g->n; k++) {
        double xc = rdml_plot_px(&a, k + 0.5), bw = 0.32 * a.w / g->n;
        const double *q = g->q[k];
        if (isfinite(q[2])) {
            cairo_set_line_width(cr, 1.2);
            cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
            cairo_move_to(cr, xc, rdml_plot_py(&a, q[0]));
            cairo_line_to(cr, xc, rdml_plot_py(&a, q[1]));
            cairo_move_to(cr, xc, rdml_plot_py(&a, q[3]));
            cairo_line_to(cr, xc, rdml_plot_py(&a, q[4]));
            cairo_move_to(cr, xc - bw / 2, rdml_plot_py(&a, q[0]));
            cairo_line_to(cr, xc + bw / 2, rdml_plot_py(&a, q[0]));
            cairo_move_to(cr, xc - bw / 2, rdml_plot_py(&a, q[4]));
            cairo_line_to(cr, xc + bw / 2, rdml_plot_py(&a, q[4]));
            cairo_stroke(cr);
            cairo_set_source_rgba(cr, rgb[0], rgb[1], rgb[2], 0.55);
            cairo_rectangle(cr, xc - bw, rdml_plot_py(&a, q[3]), 2 * bw,
                            rdml_plot_py(&a, q[1]) - rdml_plot_py(&a, q[3]));
            cairo_fill_preserve(cr);
            cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
            cairo_stroke(cr);
            cairo_set_line_width(cr, 2.5);
            cairo_move_to(cr, xc - bw, rdml_plot_py(&a, q[2]));
            cairo_line_to(cr, xc + bw, rdml_plot_py(&a, q[2]));
            cairo_stroke(cr);
        }
        if (isfinite(g->ceil_r[k])) {
            cairo_set_source_rgb(cr, 0.84, 0.15, 0.16);
            cairo_set_line_width(cr, 2);
            double y = rdml_plot_py(&a, g->ceil_r[k]);
            cairo_move_to(cr, xc - bw * 1.3, y);
            cairo_line_to(cr, xc + bw * 1.3, y);
            cairo_stroke(cr);
        }
        cairo_set_source_rgb(cr, 0, 0, 0);
        rdml_plot_text(cr, xc, a.y + a.h + 8, g->name[k], 11, 1, 0.5, M_PI / 4);
    }
    rdml_plot_legend_item it[2] = {{"r over the ROI's vertices: 5-25-50-75-95th percentiles", {0}, 0},
                                   {"r allowed by the median noise ceiling, sqrt(NC / 100)", {0.84, 0.15, 0.16}, 1}};
    memcpy(it[0].rgb, rgb, sizeof rgb);
    int has_ceil = 0;
    for (int k = 0; k < g->n; k++) has_ceil |= isfinite(g->ceil_r[k]);
    rdml_plot_legend(cr, a.x + 10, a.y + 8, it, has_ceil ? 2 : 1);
}

typedef struct hist_fig {
    int n;
    double alpha[64];
    double count[64];
    char title[300];
} hist_fig;

static void draw_hist(cairo_t *cr, void *user) {
    const hist_fig *g = user;
    double hi = 1;
    for (int k = 0; k < g->n; k++) hi = g->count[k] > hi ? g->count[k] : hi;
    double lo = 0;
    rdml_plot_nice_range(&lo, &hi);
    lo = 0;
    rdml_plot_axes a = {80, 50, 560, 270, 0, g->n, lo, hi};
    rdml_plot_frame(cr, &a, "chosen penalty alpha", "vertices x folds", g->title, 0);
    double rgb[3];
    rdml_plot_series_color(1, rgb);
    for (int k = 0; k < g->n; k++) {
        double x0 = rdml_plot_px(&a, k + 0.1), x1 = rdml_plot_px(&a, k + 0.9);
        rdml_plot_set_rgb(cr, rgb);
        cairo_rectangle(cr, x0, rdml_plot_py(&a, g->count[k]), x1 - x0,
                        rdml_plot_py(&a, 0) - rdml_plot_py(&a, g->count[k]));
        cairo_fill(cr);
        char s[32];
        snprintf(s, sizeof s, "%.3g", g->alpha[k]);
        cairo_set_source_rgb(cr, 0, 0, 0);
        rdml_plot_text(cr, (x0 + x1) / 2, a.y + a.h + 8, s, 10, 1, 0.5, M_PI / 4);
    }
}

/* Read a whole 1-D float dataset; NULL when absent. */
static double *read_vec(rdml_rep *d, const char *path, int64_t *n) {
    double *v = NULL;
    rdml_ctx q;
    rdml_ctx_init(&q);
    *n = 0;
    if (!rdml_rh5_exists(d->r, path) || rdml_rh5_read_f64(&q, d->r, path, &v, n)) return NULL;
    return v;
}

static int one_group(rdml_rep *d, const char *emb, const char *subj, const char *sel) {
    char g[700], p[900], cap[2400], e1[200], e2[200], e3[300], e4[900];
    snprintf(g, sizeof g, "/encode/%s/%s/%s", emb, subj, sel);
    int64_t nr = 0, nq = 0, nnv = 0;
    char **roi = NULL, **cls = NULL;
    int64_t nroi = 0, ncls = 0;
    rdml_ctx q;
    rdml_ctx_init(&q);
    snprintf(p, sizeof p, "%s/roi_summary/roi", g);
    if (rdml_rh5_read_strings(&q, d->r, p, &roi, &nroi)) return RDML_OK; /* not a model group */
    snprintf(p, sizeof p, "%s/roi_summary/roi_class", g);
    rdml_rh5_read_strings(&q, d->r, p, &cls, &ncls);
    static const char *const cn[8] = {"n_vertices", "median_r", "mean_r", "share_positive",
                                      "median_r2", "median_noise_ceiling",
                                      "median_noise_normalized", "mean_noise_normalized"};
    double *col[8];
    for (int c = 0; c < 8; c++) {
        snprintf(p, sizeof p, "%s/roi_summary/%s", g, cn[c]);
        col[c] = read_vec(d, p, &nr);
    }
    snprintf(p, sizeof p, "%s/roi_summary/r_quantiles", g);
    double *quant = read_vec(d, p, &nq);
    int have_nc = col[5] != NULL && nroi > 0 && isfinite(col[5][nroi - 1]);
    char *mode = rdml_rh5_str(d->r, g, "mode"), *scheme = rdml_rh5_str(d->r, g, "scheme");
    double nimg = rdml_rh5_num(d->r, g, "n_images", NAN), nfeat = rdml_rh5_num(d->r, g, "n_features", NAN),
           nf = rdml_rh5_num(d->r, g, "n_folds", NAN);
    (void)nnv;
    fprintf(d->html, "<h3>%s &middot; %s &middot; %s</h3>\n", rdml_html_esc(subj, e1, sizeof e1),
            rdml_html_esc(sel, e2, sizeof e2), rdml_html_esc(emb, e3, sizeof e3));
    snprintf(cap, sizeof cap,
             "Encoding model accuracy per ROI, %s, selection %s, embedding %s (%g images, %g "
             "features, %g %s folds, alpha by %s): statistics over each ROI's vertices of the test "
             "Pearson r and R<sup>2</sup> averaged over the folds; the noise-normalised accuracy is "
             "100 max(r, 0)<sup>2</sup> / (NC / 100) in percent (<code>%s/roi_summary</code>).",
             e1, e2, e3, nimg, nfeat, nf, scheme ? scheme : "?",
             mode && !strcmp(mode, "kfold") ? "inner k-fold" : "leave-one-out", rdml_html_esc(g, e4, sizeof e4));
    rdml_rep_table_open(d, cap);
    fputs("<tr><th>ROI</th><th>class</th><th>vertices</th><th>median r</th><th>mean r</th>"
          "<th>share r &gt; 0</th><th>median R<sup>2</sup></th>", d->html);
    if (have_nc) fputs("<th>median noise ceiling (%)</th><th>median noise-normalised (%)</th>", d->html);
    fputs("</tr>\n", d->html);
    for (int64_t k = 0; k < nroi; k++) {
        int whole = cls && k < ncls && !strcmp(cls[k], "selection");
        fprintf(d->html, "<tr%s><td>", whole ? " class=\"total\"" : "");
        rdml_html_escape(d->html, roi[k]);
        fputs("</td><td>", d->html);
        rdml_html_escape(d->html, cls && k < ncls ? cls[k] : "");
        fprintf(d->html, "</td><td>%lld</td>", col[0] ? (long long)col[0][k] : 0LL);
        for (int c = 1; c <= (have_nc ? 6 : 4); c++) {
            fputs("<td>", d->html);
            rdml_rep_num(d->html, col[c] && k < nr ? col[c][k] : NAN);
            fputs("</td>", d->html);
        }
        fputs("</tr>\n", d->html);
    }
    rdml_rep_table_close(d);
    int rc = RDML_OK;
    if (quant && nq == 5 * nroi) {
        box_fig *b = calloc(1, sizeof *b);
        if (!b) rc = RDML_FAIL(d->ctx, RDML_ENOMEM, "out of memory for a figure");
        for (int64_t k = 0; b && k < nroi && b->n < MAXROI; k++) {
            rdml_strlcpy(b->name[b->n], roi[k], sizeof b->name[b->n]);
            memcpy(b->q[b->n], quant + 5 * k, sizeof b->q[b->n]);
            b->ceil_r[b->n] = have_nc && col[5] && isfinite(col[5][k]) ? sqrt(col[5][k] / 100.0) : NAN;
            b->n++;
        }
        if (b) {
            snprintf(b->title, sizeof b->title, "%s %s: %s encoding model, test r by ROI", subj, sel, emb);
            char name[600], safe[500];
            snprintf(name, sizeof name, "%s_%s_%s", emb, subj, sel);
            rdml_report_safe_name(name, safe, sizeof safe);
            snprintf(name, sizeof name, "encode_r_%s", safe);
            snprintf(cap, sizeof cap,
                     "Test Pearson r (mean over the folds) of the %s encoding model by ROI, %s, "
                     "selection %s: boxes span the 25th-75th percentile over the ROI's vertices with "
                     "the median, whiskers the 5th and 95th.%s%s", e3, e1, e2,
                     have_nc ? " Red: the r a perfect model would reach at the ROI's median noise "
                               "ceiling, sqrt(NC / 100)." : "",
                     nroi > MAXROI ? " Only the first ROIs are shown; the table lists all." : "");
            int w = (int)(90 + 46.0 * (b->n < 6 ? 6 : b->n)), h = 450;
            rc = rdml_rep_figure(d, name, w, h, draw_boxes, b, cap);
            free(b);
        }
    }
    /* chosen alphas over vertices and folds */
    int64_t na = 0;
    snprintf(p, sizeof p, "%s/alphas", g);
    double *grid = read_vec(d, p, &na);
    if (!rc && grid && na > 0 && na <= 64) {
        hist_fig *hf = calloc(1, sizeof *hf);
        if (!hf) rc = RDML_FAIL(d->ctx, RDML_ENOMEM, "out of memory for a figure");
        for (int64_t a = 0; hf && a < na; a++) hf->alpha[a] = grid[a];
        if (hf) hf->n = (int)na;
        for (int f = 0; hf && f < 1000; f++) {
            int any = 0;
            for (int hemi = 0; hemi < 2; hemi++) {
                int64_t n = 0;
                snprintf(p, sizeof p, "%s/fold_%d/alpha_%s", g, f, hemi ? "rh" : "lh");
                double *v = read_vec(d, p, &n);
                any |= v != NULL;
                for (int64_t t = 0; v && t < n; t++) {
                    if (!isfinite(v[t])) continue;
                    int best = 0;
                    for (int a = 1; a < na; a++)
                        if (fabs(log(v[t] / grid[a])) < fabs(log(v[t] / grid[best]))) best = a;
                    hf->count[best]++;
                }
                free(v);
            }
            if (!any) break;
        }
        if (hf) {
            snprintf(hf->title, sizeof hf->title, "%s %s: %s, chosen alphas", subj, sel, emb);
            char name[600], safe[500];
            snprintf(name, sizeof name, "%s_%s_%s", emb, subj, sel);
            rdml_report_safe_name(name, safe, sizeof safe);
            snprintf(name, sizeof name, "encode_alpha_%s", safe);
            snprintf(cap, sizeof cap,
                     "The penalty chosen per vertex and outer fold (counts over the grid <code>%s/"
                     "alphas</code>), %s, selection %s, embedding %s. Many choices at an end of the "
                     "grid mean the grid should be extended (encode.alpha_min, encode.alpha_max).",
                     rdml_html_esc(g, e4, sizeof e4), e1, e2, e3);
            rc = rdml_rep_figure(d, name, 680, 420, draw_hist, hf, cap);
            free(hf);
        }
    }
    free(grid);
    free(quant);
    for (int c = 0; c < 8; c++) free(col[c]);
    rdml_rh5_free_names(roi, (int)nroi);
    rdml_rh5_free_names(cls, (int)ncls);
    free(mode);
    free(scheme);
    return rc;
}

int rdml_rep_encode(rdml_rep *d) {
    if (!rdml_rh5_exists(d->r, "/encode")) return RDML_OK;
    fputs("<section id=\"encode\"><h2>Encoding models</h2>\n"
          "<p>Ridge regressions from each embedding to every vertex of a selection, the penalty "
          "chosen per vertex, over the pair models' image folds (<code>rdmlearn encode</code>, "
          "docs/encode.md). Per-vertex maps are in the results file as full-length lh/rh vectors "
          "(<code>Results.encoding_map</code> in Python).</p>\n", d->html);
    char **embs = NULL;
    int ne = 0, rc = RDML_OK;
    RDML_TRY(rdml_rh5_list(d->ctx, d->r, "/encode", &embs, &ne));
    for (int e = 0; e < ne && !rc; e++) {
        char g[400];
        snprintf(g, sizeof g, "/encode/%s", embs[e]);
        char **subs = NULL;
        int ns = 0;
        rc = rdml_rh5_list(d->ctx, d->r, g, &subs, &ns);
        for (int s = 0; s < ns && !rc; s++) {
            char gs[600];
            snprintf(gs, sizeof gs, "%s/%s", g, subs[s]);
            char **sels = NULL;
            int nsel = 0;
            rc = rdml_rh5_list(d->ctx, d->r, gs, &sels, &nsel);
            for (int k = 0; k < nsel && !rc; k++) rc = one_group(d, embs[e], subs[s], sels[k]);
            rdml_rh5_free_names(sels, nsel);
        }
        rdml_rh5_free_names(subs, ns);
    }
    rdml_rh5_free_names(embs, ne);
    fputs("</section>\n", d->html);
    return rc;
}
