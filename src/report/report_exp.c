/* The experiment sections of the report: the SVM metric table over every pair set (the paper's
 * Table 1) and the confusion matrices summed over folds (Figure 5), SVR and neural-model
 * predictions against the RDM values (Figure 7), per-fold R^2 and MSE bars with the
 * mean-predictor and shuffled-target levels (Figure 6) and the fold table with mean +- std
 * (Table 2), per-epoch loss curves, grid-search tables, and for sweeps a subjects x selections
 * heat map of the test score of each experiment and model, and the sweep engine's summary
 * tables (/sweep/<model>/summary; a /sweep/table dataset too). Everything is read from
 * /experiments and /sweep; nothing is refitted. Left out: training-set scatter plots (the
 * stages store training R^2 only, not the training predictions; the table shows that R^2),
 * ROC curves (decision values are stored; the AUC is in the table). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report/report_priv.h"
#include "rdml/report.h"

enum { MAXP = 8, MAXK = 64 };

/* ---- what a model group is ---- */

enum { KIND_NONE, KIND_SVC, KIND_SVR, KIND_NN };

static int group_kind(rdml_rep *d, const char *g) {
    char *type = rdml_rh5_str(d->r, g, "type");
    int k = KIND_NONE;
    if (type) k = !strcmp(type, "epsilon_svr") ? KIND_SVR : KIND_SVC;
    free(type);
    if (k == KIND_NONE) {
        char t[1024];
        snprintf(t, sizeof t, "%s/table", g);
        if (rdml_rh5_exists(d->r, t) || rdml_rh5_num(d->r, g, "n_folds_finished", NAN) >= 0)
            k = KIND_NN;
    }
    return k;
}

/* Every (subject, selection) group under /experiments/<exp>/<model>: paths into out (cap). */
typedef struct cell {
    char path[768];
    char subj[32], sel[256];
} cell;

/* One line naming the data of an experiment's cells: images and pairs of each subject x
 * selection (from /experiments/<exp>/pairs/<subj>/<sel>), so subsets (pairs.images) show. */
static void pairs_line(rdml_rep *d, const char *exp, const cell *cells, int nc) {
    fputs("<p class=\"note\">Data: ", d->html);
    int shown = 0;
    for (int i = 0; i < nc && shown < 8; i++) {
        char pg[1200];
        snprintf(pg, sizeof pg, "/experiments/%s/pairs/%s/%s", exp, cells[i].subj, cells[i].sel);
        if (!rdml_rh5_exists(d->r, pg)) continue;
        double ni = rdml_rh5_num(d->r, pg, "n_images", -1), np = rdml_rh5_num(d->r, pg, "n_pairs", -1);
        fprintf(d->html, "%s%s <code>", shown ? "; " : "", cells[i].subj);
        rdml_html_escape(d->html, cells[i].sel);
        fprintf(d->html, "</code>: the first %.0f images, %.0f pairs", ni, np);
        shown++;
    }
    if (nc > shown) fprintf(d->html, "%s%d more", shown ? "; " : "", nc - shown);
    fputs(".</p>\n", d->html);
}

static int list_cells(rdml_rep *d, const char *mg, cell *out, int cap, int *n) {
    *n = 0;
    char **subs = NULL;
    int ns = 0;
    RDML_TRY(rdml_rh5_list(d->ctx, d->r, mg, &subs, &ns));
    for (int s = 0; s < ns; s++) {
        char sg[700];
        snprintf(sg, sizeof sg, "%s/%s", mg, subs[s]);
        char **sels = NULL;
        int nsel = 0;
        int rc = rdml_rh5_list(d->ctx, d->r, sg, &sels, &nsel);
        if (rc) {
            rdml_rh5_free_names(subs, ns);
            return rc;
        }
        for (int k = 0; k < nsel && *n < cap; k++) {
            cell *c = &out[*n];
            snprintf(c->path, sizeof c->path, "%s/%s", sg, sels[k]);
            if (rdml_rh5_kind(d->r, c->path) != 0) continue;
            rdml_strlcpy(c->subj, subs[s], sizeof c->subj);
            rdml_strlcpy(c->sel, sels[k], sizeof c->sel);
            (*n)++;
        }
        rdml_rh5_free_names(sels, nsel);
    }
    rdml_rh5_free_names(subs, ns);
    return RDML_OK;
}

static int n_folds(rdml_rep *d, const char *g) {
    double k = rdml_rh5_num(d->r, g, "n_folds", NAN);
    if (!(k >= 1)) {
        char fm[1024];
        int nd;
        int64_t dims[8];
        rdml_ctx q;
        rdml_ctx_init(&q);
        snprintf(fm, sizeof fm, "%s/fold_metrics", g);
        if (rdml_rh5_exists(d->r, fm) && !rdml_rh5_dims(&q, d->r, fm, &nd, dims)) k = (double)dims[0];
    }
    if (!(k >= 1)) return 0;
    return k > MAXK ? MAXK : (int)k;
}

/* a fold dataset, or NULL with *n = 0 when absent */
static double *fold_vec(rdml_rep *d, const char *g, int f, const char *name, int64_t *n) {
    char o[1024];
    snprintf(o, sizeof o, "%s/fold_%d/%s", g, f, name);
    *n = 0;
    if (!rdml_rh5_exists(d->r, o)) return NULL;
    double *v = NULL;
    rdml_ctx q;
    rdml_ctx_init(&q);
    if (rdml_rh5_read_f64(&q, d->r, o, &v, n)) return NULL;
    return v;
}

static void cell_label(const cell *c, const char *exp, char *out, size_t len) {
    snprintf(out, len, "%s: %s %s", exp, c->subj, c->sel);
}

/* ---- Figure 5: confusion matrices ---- */

typedef struct conf_fig {
    int n;
    double cm[MAXP][4]; /* tn fp fn tp */
    char title[MAXP][160];
} conf_fig;

static void draw_conf(cairo_t *cr, void *user) {
    const conf_fig *g = user;
    static const char *const lab[2] = {"similar (0)", "dissimilar (1)"};
    for (int p = 0; p < g->n; p++) {
        double x0 = 150 + (p % 4) * 350, y0 = 60 + (p / 4) * 340, cs = 115;
        rdml_plot_text_bold(cr, x0 + cs, y0 - 12, g->title[p], 13, 0.5, 1, 0);
        for (int t = 0; t < 2; t++) {
            double rowsum = g->cm[p][2 * t] + g->cm[p][2 * t + 1];
            for (int q = 0; q < 2; q++) {
                double v = g->cm[p][2 * t + q], frac = rowsum > 0 ? v / rowsum : 0, rgb[3];
                rdml_plot_blues(frac, rgb);
                rdml_plot_set_rgb(cr, rgb);
                cairo_rectangle(cr, x0 + q * cs, y0 + t * cs, cs, cs);
                cairo_fill(cr);
                if (frac > 0.55) cairo_set_source_rgb(cr, 1, 1, 1);
                else cairo_set_source_rgb(cr, 0, 0, 0);
                char s[64];
                snprintf(s, sizeof s, "%.0f", v);
                rdml_plot_text_bold(cr, x0 + q * cs + cs / 2, y0 + t * cs + cs / 2 - 10, s, 16, 0.5, 0.5, 0);
                snprintf(s, sizeof s, "%.1f%% of true", 100 * frac);
                rdml_plot_text(cr, x0 + q * cs + cs / 2, y0 + t * cs + cs / 2 + 14, s, 11, 0.5, 0.5, 0);
            }
        }
        cairo_set_source_rgb(cr, 0.3, 0.3, 0.3);
        cairo_set_line_width(cr, 1);
        cairo_rectangle(cr, x0, y0, 2 * cs, 2 * cs);
        cairo_stroke(cr);
        cairo_set_source_rgb(cr, 0, 0, 0);
        for (int q = 0; q < 2; q++) {
            rdml_plot_text(cr, x0 + q * cs + cs / 2, y0 + 2 * cs + 6, lab[q], 12, 0.5, 0, 0);
            rdml_plot_text(cr, x0 - 6, y0 + q * cs + cs / 2, lab[q], 12, 0.5, 1, M_PI / 2);
        }
        rdml_plot_text(cr, x0 + cs, y0 + 2 * cs + 26, "predicted label", 13, 0.5, 0, 0);
        rdml_plot_text(cr, x0 - 28, y0 + cs, "true label", 13, 0.5, 1, M_PI / 2);
    }
    int cols = g->n < 4 ? g->n : 4;
    rdml_plot_colorbar(cr, 150 + cols * 350 - 90, 60, 16, 230, 0, 1, rdml_plot_blues,
                       "fraction of the true class");
}

/* ---- scatter of predictions against RDM values ---- */

typedef struct scatter_fig {
    int k;
    double *x[MAXK], *y[MAXK]; /* per fold: target, prediction */
    int64_t n[MAXK];
    int64_t stride;
    double lo, hi, r2;
    char title[256];
} scatter_fig;

static void draw_scatter(cairo_t *cr, void *user) {
    const scatter_fig *g = user;
    rdml_plot_axes a = {90, 60, 420, 420, g->lo, g->hi, g->lo, g->hi};
    rdml_plot_frame(cr, &a, "true RDM value", "predicted RDM value", g->title, 1);
    cairo_save(cr);
    cairo_rectangle(cr, a.x, a.y, a.w, a.h);
    cairo_clip(cr);
    for (int f = 0; f < g->k; f++) {
        double rgb[3];
        rdml_plot_series_color(f, rgb);
        cairo_set_source_rgba(cr, rgb[0], rgb[1], rgb[2], 0.45);
        for (int64_t i = 0; i < g->n[f]; i += g->stride) {
            cairo_arc(cr, rdml_plot_px(&a, g->x[f][i]), rdml_plot_py(&a, g->y[f][i]), 2.2, 0, 2 * M_PI);
            cairo_fill(cr);
        }
    }
    double dash[2] = {6, 4};
    cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
    cairo_set_line_width(cr, 1.5);
    cairo_set_dash(cr, dash, 2, 0);
    cairo_move_to(cr, rdml_plot_px(&a, g->lo), rdml_plot_py(&a, g->lo));
    cairo_line_to(cr, rdml_plot_px(&a, g->hi), rdml_plot_py(&a, g->hi));
    cairo_stroke(cr);
    cairo_restore(cr);
    rdml_plot_legend_item it[MAXK + 1];
    char labs[MAXK][32];
    int ni = 0;
    it[ni++] = (rdml_plot_legend_item){"perfect prediction", {0.2, 0.2, 0.2}, 2};
    for (int f = 0; f < g->k && f < 10; f++) {
        snprintf(labs[f], sizeof labs[f], "fold %d", f);
        it[ni] = (rdml_plot_legend_item){labs[f], {0}, 3};
        rdml_plot_series_color(f, it[ni].rgb);
        ni++;
    }
    rdml_plot_legend(cr, a.x + a.w + 12, a.y, it, ni);
}

static int scatter_figure(rdml_rep *d, const char *g, const char *label, const char *name,
                          const char *pred_name, const char *what) {
    scatter_fig *s = calloc(1, sizeof *s);
    if (!s) return RDML_FAIL(d->ctx, RDML_ENOMEM, "out of memory for a scatter plot");
    s->k = n_folds(d, g);
    int64_t total = 0;
    s->lo = INFINITY;
    s->hi = -INFINITY;
    for (int f = 0; f < s->k; f++) {
        int64_t nx, ny;
        s->x[f] = fold_vec(d, g, f, "target", &nx);
        s->y[f] = fold_vec(d, g, f, pred_name, &ny);
        s->n[f] = s->x[f] && s->y[f] ? (nx < ny ? nx : ny) : 0;
        total += s->n[f];
        for (int64_t i = 0; i < s->n[f]; i++) {
            if (isfinite(s->x[f][i])) s->lo = fmin(s->lo, s->x[f][i]), s->hi = fmax(s->hi, s->x[f][i]);
            if (isfinite(s->y[f][i])) s->lo = fmin(s->lo, s->y[f][i]), s->hi = fmax(s->hi, s->y[f][i]);
        }
    }
    int rc = RDML_OK;
    if (total == 0) {
        fprintf(d->html, "<p class=\"absent\">No stored test predictions under <code>%s</code>.</p>\n", g);
    } else {
        rdml_plot_nice_range(&s->lo, &s->hi);
        s->stride = total > d->p->max_scatter ? (total + d->p->max_scatter - 1) / d->p->max_scatter : 1;
        double r2 = rdml_rh5_num(d->r, g, "mean_r2", NAN);
        snprintf(s->title, sizeof s->title, "%s: test pairs, mean R^2 = %.3f", label, r2);
        char cap[2048], thin[256] = "";
        if (s->stride > 1)
            snprintf(thin, sizeof thin, " Every %lld-th pair of each fold is drawn (%lld pairs in all).",
                     (long long)s->stride, (long long)total);
        char e1[256], e2[2048];
        snprintf(cap, sizeof cap,
                 "%s predicted against true RDM values of the test pairs of every fold "
                 "(<code>%s/fold_*/{%s,target}</code>); the dashed diagonal is perfect prediction "
                 "(cf. the paper's Figure 7; the stages store the training R^2 but not the training "
                 "predictions, so only the test set is drawn).%s", rdml_html_esc(what, e1, sizeof e1),
                 rdml_html_esc(g, e2, sizeof e2), pred_name, thin);
        rc = rdml_rep_figure(d, name, 760, 540, draw_scatter, s, cap);
    }
    for (int f = 0; f < s->k; f++) {
        free(s->x[f]);
        free(s->y[f]);
    }
    free(s);
    return rc;
}

/* ---- Figure 6: per-fold R^2 and MSE ---- */

typedef struct fold_fig {
    int k;
    double v[2][MAXK];       /* r2, mse per fold */
    double nlo[MAXK], nhi[MAXK]; /* the fold's R^2 null: 2.5 and 97.5 percentiles (NaN: none) */
    double mean[2], mp[2], sh[2];
    char title[200];
} fold_fig;

static void draw_folds(cairo_t *cr, void *user) {
    const fold_fig *g = user;
    static const char *const ylab[2] = {"R^2 (test pairs)", "MSE (test pairs)"};
    for (int m = 0; m < 2; m++) {
        double lo = 0, hi = 0;
        for (int f = 0; f < g->k; f++)
            if (isfinite(g->v[m][f])) lo = fmin(lo, g->v[m][f]), hi = fmax(hi, g->v[m][f]);
        for (int f = 0; f < g->k && m == 0; f++)
            if (isfinite(g->nlo[f]) && isfinite(g->nhi[f]))
                lo = fmin(lo, g->nlo[f]), hi = fmax(hi, g->nhi[f]);
        double refs[3] = {g->mean[m], g->mp[m], g->sh[m]};
        for (int i = 0; i < 3; i++)
            if (isfinite(refs[i])) lo = fmin(lo, refs[i]), hi = fmax(hi, refs[i]);
        rdml_plot_nice_range(&lo, &hi);
        rdml_plot_axes a = {90 + m * 560, 60, 420, 330, -0.5, g->k - 0.5, lo, hi};
        char t[256];
        snprintf(t, sizeof t, "%s: %s", g->title, m ? "MSE" : "R^2");
        rdml_plot_frame(cr, &a, "fold", ylab[m], t, 0);
        double rgb[3];
        rdml_plot_series_color(0, rgb);
        double bw = a.w / g->k * 0.6;
        for (int f = 0; f < g->k; f++) {
            double px = rdml_plot_px(&a, f);
            char s[16];
            snprintf(s, sizeof s, "%d", f);
            cairo_set_source_rgb(cr, 0, 0, 0);
            rdml_plot_text(cr, px, a.y + a.h + 8, s, 12, 0.5, 0, 0);
            if (!isfinite(g->v[m][f])) {
                rdml_plot_text(cr, px, rdml_plot_py(&a, 0) - 4, "stopped", 11, 0.5, 1, 0);
                continue;
            }
            double y0 = rdml_plot_py(&a, 0), y1 = rdml_plot_py(&a, g->v[m][f]);
            rdml_plot_set_rgb(cr, rgb);
            cairo_rectangle(cr, px - bw / 2, fmin(y0, y1), bw, fabs(y1 - y0));
            cairo_fill(cr);
            if (m == 0 && isfinite(g->nlo[f]) && isfinite(g->nhi[f])) {
                /* the central 95% of the R^2 null (target shuffles): a grey band over the bar */
                double ya = rdml_plot_py(&a, g->nhi[f]), yb = rdml_plot_py(&a, g->nlo[f]);
                cairo_set_source_rgba(cr, 0.25, 0.25, 0.25, 0.55);
                cairo_rectangle(cr, px - bw * 0.7, ya, bw * 1.4, fmax(yb - ya, 1.5));
                cairo_fill(cr);
            }
        }
        cairo_set_source_rgb(cr, 0.3, 0.3, 0.3);
        cairo_set_line_width(cr, 1);
        cairo_move_to(cr, a.x, rdml_plot_py(&a, 0));
        cairo_line_to(cr, a.x + a.w, rdml_plot_py(&a, 0));
        cairo_stroke(cr);
        rdml_plot_legend_item it[3] = {{"model, mean over folds", {0.10, 0.25, 0.45}, 1},
                                       {"mean predictor", {0.95, 0.56, 0.17}, 2},
                                       {"shuffled targets", {0.84, 0.15, 0.16}, 2}};
        double dash[2] = {6, 4};
        cairo_set_line_width(cr, 2);
        for (int i = 0; i < 3; i++) {
            if (!isfinite(refs[i])) continue;
            rdml_plot_set_rgb(cr, it[i].rgb);
            cairo_set_dash(cr, dash, i ? 2 : 0, 0);
            cairo_move_to(cr, a.x, rdml_plot_py(&a, refs[i]));
            cairo_line_to(cr, a.x + a.w, rdml_plot_py(&a, refs[i]));
            cairo_stroke(cr);
        }
        cairo_set_dash(cr, NULL, 0, 0);
        if (m == 1) rdml_plot_legend(cr, a.x + a.w + 10, a.y, it, 3);
    }
}

/* ---- loss curves ---- */

typedef struct loss_fig {
    int k;
    double *tr[MAXK], *te[MAXK];
    int64_t ntr[MAXK], nte[MAXK];
    char title[200];
} loss_fig;

static void draw_loss(cairo_t *cr, void *user) {
    const loss_fig *g = user;
    double lo = INFINITY, hi = -INFINITY;
    int64_t ep = 1;
    for (int f = 0; f < g->k; f++) {
        for (int64_t i = 0; i < g->ntr[f]; i++)
            if (isfinite(g->tr[f][i])) lo = fmin(lo, g->tr[f][i]), hi = fmax(hi, g->tr[f][i]);
        for (int64_t i = 0; i < g->nte[f]; i++)
            if (isfinite(g->te[f][i])) lo = fmin(lo, g->te[f][i]), hi = fmax(hi, g->te[f][i]);
        if (g->ntr[f] > ep) ep = g->ntr[f];
    }
    if (lo > 0) lo = 0;
    rdml_plot_nice_range(&lo, &hi);
    rdml_plot_axes a = {90, 60, 480, 360, 1, (double)(ep > 1 ? ep : 2), lo, hi};
    rdml_plot_frame(cr, &a, "epoch", "loss (MSE)", g->title, 1);
    double dash[2] = {6, 4};
    cairo_set_line_width(cr, 2);
    for (int f = 0; f < g->k; f++) {
        double rgb[3];
        rdml_plot_series_color(f, rgb);
        rdml_plot_set_rgb(cr, rgb);
        for (int s = 0; s < 2; s++) {
            const double *v = s ? g->te[f] : g->tr[f];
            int64_t n = s ? g->nte[f] : g->ntr[f];
            cairo_set_dash(cr, dash, s ? 2 : 0, 0);
            int pen = 0;
            for (int64_t i = 0; i < n; i++) {
                if (!isfinite(v[i])) {
                    pen = 0;
                    continue;
                }
                double px = rdml_plot_px(&a, (double)(i + 1)), py = rdml_plot_py(&a, v[i]);
                if (pen) cairo_line_to(cr, px, py);
                else cairo_move_to(cr, px, py);
                pen = 1;
            }
            cairo_stroke(cr);
        }
    }
    cairo_set_dash(cr, NULL, 0, 0);
    rdml_plot_legend_item it[MAXK + 2];
    char labs[MAXK][32];
    int ni = 0;
    it[ni++] = (rdml_plot_legend_item){"training loss", {0.3, 0.3, 0.3}, 1};
    it[ni++] = (rdml_plot_legend_item){"test MSE", {0.3, 0.3, 0.3}, 2};
    for (int f = 0; f < g->k && f < 10; f++) {
        snprintf(labs[f], sizeof labs[f], "fold %d", f);
        it[ni] = (rdml_plot_legend_item){labs[f], {0}, 0};
        rdml_plot_series_color(f, it[ni].rgb);
        ni++;
    }
    rdml_plot_legend(cr, a.x + a.w + 12, a.y, it, ni);
}

/* ---- sweep heat map ---- */

/* extra room between the matrix and its colour bar for the labels of reference values */
enum { REF_GAP = 120 };

/* colour bar height: the rows, at least 150 px and room for the rotated label (13 px text,
 * about 7.5 px a character) */
static double bar_height(const rdml_matrix_fig *g) {
    return fmax(fmax(g->nr * 36.0, 150), 7.5 * (double)strlen(g->metric) + 24);
}

void rdml_rep_matrix_size(const rdml_matrix_fig *g, int *w, int *h) {
    size_t len = 0;
    for (int j = 0; j < g->nc; j++) len = strlen(g->cols[j]) > len ? strlen(g->cols[j]) : len;
    /* column labels at 60 degrees: about 7.5 px per character at 12 px */
    double below = 18 + 7.5 * (double)len * sin(M_PI / 3) + 30;
    *w = (int)(110 + g->nc * 80 + 190 + (g->nref > 0 ? REF_GAP : 0));
    *h = (int)(60 + fmax(bar_height(g), g->nr * 36 + below) + 10);
}

void rdml_rep_draw_matrix(cairo_t *cr, void *user) {
    const rdml_matrix_fig *g = user;
    double cw = 80, ch = 36, x0 = 110, y0 = 60;
    rdml_plot_cmap_fn cmap = g->cmap ? g->cmap : rdml_plot_viridis;
    rdml_plot_text_bold(cr, x0, 14, g->title, 14, 0, 0, 0);
    rdml_plot_heat(cr, x0, y0, g->nc * cw, g->nr * ch, g->v, g->nr, g->nc, g->vmin, g->vmax,
                   cmap);
    for (int i = 0; i < g->nr; i++) {
        cairo_set_source_rgb(cr, 0, 0, 0);
        rdml_plot_text(cr, x0 - 8, y0 + (i + 0.5) * ch, g->rows[i], 12, 1, 0.5, 0);
        for (int j = 0; j < g->nc; j++) {
            double v = g->v[i * g->nc + j];
            char s[32];
            if (isfinite(v)) snprintf(s, sizeof s, "%.3f", v);
            else snprintf(s, sizeof s, "n/a");
            double t = g->vmax > g->vmin ? (v - g->vmin) / (g->vmax - g->vmin) : 0.5, rgb[3];
            cmap(t, rgb); /* white text on dark cells */
            if (isfinite(v) && 0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2] < 0.45)
                cairo_set_source_rgb(cr, 1, 1, 1);
            else cairo_set_source_rgb(cr, 0, 0, 0);
            rdml_plot_text(cr, x0 + (j + 0.5) * cw, y0 + (i + 0.5) * ch, s, 12, 0.5, 0.5, 0);
        }
    }
    cairo_set_source_rgb(cr, 0, 0, 0);
    for (int j = 0; j < g->nc; j++)
        rdml_plot_text(cr, x0 + (j + 0.5) * cw, y0 + g->nr * ch + 8, g->cols[j], 12, 1, 0.5, M_PI / 3);
    rdml_plot_text(cr, 40, y0 + g->nr * ch / 2, g->ylabel, 13, 0.5, 1, M_PI / 2);
    double lw = 0;
    for (int j = 0; j < g->nc; j++) lw = fmax(lw, rdml_plot_text_width(cr, g->cols[j], 12));
    rdml_plot_text(cr, x0 + g->nc * cw / 2, y0 + g->nr * ch + 18 + lw * sin(M_PI / 3), g->xlabel, 13,
                   0.5, 0, 0);
    double bx = x0 + g->nc * cw + 20 + (g->nref > 0 ? REF_GAP : 0), bh = bar_height(g);
    rdml_plot_colorbar(cr, bx, y0, 16, bh, g->vmin, g->vmax, cmap, g->metric);
    /* reference values: a black line across the bar, labelled on its left (labels pushed
     * apart when values are close) */
    double ly[4], last = -1e9;
    int idx[4];
    for (int r = 0; r < g->nref && r < 4; r++) idx[r] = r;
    for (int a = 1; a < g->nref && a < 4; a++) /* by value, highest (top) first */
        for (int b = a; b > 0 && g->ref[idx[b]] > g->ref[idx[b - 1]]; b--) {
            int t = idx[b];
            idx[b] = idx[b - 1];
            idx[b - 1] = t;
        }
    for (int q = 0; q < g->nref && q < 4; q++) {
        int r = idx[q];
        double v = g->ref[r];
        if (!isfinite(v)) continue;
        double t = (v - g->vmin) / (g->vmax - g->vmin);
        double py = y0 + bh - (t < 0 ? 0 : t > 1 ? 1 : t) * bh;
        ly[q] = fmax(py, last + 15);
        last = ly[q];
        cairo_set_source_rgb(cr, 0, 0, 0);
        cairo_set_line_width(cr, 2);
        cairo_move_to(cr, bx - 3, py);
        cairo_line_to(cr, bx + 16 + 3, py);
        cairo_stroke(cr);
        cairo_set_line_width(cr, 1);
        cairo_move_to(cr, bx - 3, py);
        cairo_line_to(cr, bx - 12, ly[q]);
        cairo_stroke(cr);
        char lab[80];
        snprintf(lab, sizeof lab, "%s %.3f", g->reflabel[r], v);
        rdml_plot_text(cr, bx - 14, ly[q], lab, 11, 1, 0.5, 0);
    }
}

static int sweep_figure(rdml_rep *d, const char *exp, const char *model, const cell *cells,
                        int nc, int kind) {
    rdml_matrix_fig *s = calloc(1, sizeof *s);
    if (!s) return RDML_FAIL(d->ctx, RDML_ENOMEM, "out of memory for the sweep heat map");
    for (int i = 0; i < nc; i++) {
        int r = -1, c = -1;
        for (int k = 0; k < s->nr; k++)
            if (!strcmp(s->rows[k], cells[i].subj)) r = k;
        for (int k = 0; k < s->nc; k++)
            if (!strcmp(s->cols[k], cells[i].sel)) c = k;
        if (r < 0 && s->nr < 32) rdml_strlcpy(s->rows[r = s->nr++], cells[i].subj, 32);
        if (c < 0 && s->nc < 32) rdml_strlcpy(s->cols[c = s->nc++], cells[i].sel, 64);
    }
    int rc = RDML_OK;
    if (s->nr * s->nc <= 1) goto done;
    const char *attr = kind == KIND_SVC ? "mean_accuracy" : "mean_r2";
    snprintf(s->metric, sizeof s->metric, kind == KIND_SVC ? "mean test accuracy" : "mean test R^2");
    for (int k = 0; k < s->nr * s->nc; k++) s->v[k] = NAN;
    s->vmin = INFINITY;
    s->vmax = -INFINITY;
    for (int i = 0; i < nc; i++) {
        int r = -1, c = -1;
        for (int k = 0; k < s->nr; k++)
            if (!strcmp(s->rows[k], cells[i].subj)) r = k;
        for (int k = 0; k < s->nc; k++)
            if (!strcmp(s->cols[k], cells[i].sel)) c = k;
        if (r < 0 || c < 0) continue;
        double v = rdml_rh5_num(d->r, cells[i].path, attr, NAN);
        s->v[r * s->nc + c] = (float)v;
        if (isfinite(v)) s->vmin = fmin(s->vmin, v), s->vmax = fmax(s->vmax, v);
    }
    /* a colour range that does not stretch small differences over the whole map: accuracy on
     * [0, 1]; R^2 from min(0, lowest) to max(1, highest), so 0 (the mean predictor) and 1 are
     * on the bar */
    if (!isfinite(s->vmin)) s->vmin = 0, s->vmax = 1;
    s->vmin = fmin(s->vmin, 0);
    s->vmax = fmax(s->vmax, 1);
    snprintf(s->title, sizeof s->title, "%s / %s: %s", exp, model, s->metric);
    char name[300], se[128], sm[128], cap[1024];
    rdml_report_safe_name(exp, se, sizeof se);
    rdml_report_safe_name(model, sm, sizeof sm);
    snprintf(name, sizeof name, "fig_sweep_%s_%s", se, sm);
    snprintf(cap, sizeof cap,
             "Sweep: <code>%s</code> (attribute of <code>/experiments/%s/%s/subjNN/&lt;selection&gt;</code>) "
             "for every subject (rows) and selection (columns); n/a where that combination was not run. "
             "Colour range %.3g to %.3g (%s).", attr, rdml_html_esc(exp, se, sizeof se), rdml_html_esc(model, sm, sizeof sm), s->vmin, s->vmax,
             kind == KIND_SVC ? "fixed: accuracy runs from 0 to 1"
                              : "from 0 or the lowest value to 1 or the highest");
    rdml_strlcpy(s->ylabel, "subject", sizeof s->ylabel);
    rdml_strlcpy(s->xlabel, "selection", sizeof s->xlabel);
    int w, h;
    rdml_rep_matrix_size(s, &w, &h);
    rc = rdml_rep_figure(d, name, w, h, rdml_rep_draw_matrix, s, cap);
done:
    free(s);
    return rc;
}

/* ---- tables ---- */

static const char *const svc_m[5] = {"accuracy", "precision", "recall", "f1", "roc_auc"};
static const char *const reg_m[4] = {"r2", "mse", "pearson", "spearman"};

static void pair_set(rdml_rep *d, const char *cellpath, char *out, size_t len) {
    char *pp = rdml_rh5_str(d->r, cellpath, "pairs");
    char *set = pp ? rdml_rh5_str(d->r, pp, "set") : NULL;
    snprintf(out, len, "%s", set ? set : "?");
    free(pp);
    free(set);
}

static int grid_table(rdml_rep *d, const char *g, const char *label) {
    char gg[1024];
    snprintf(gg, sizeof gg, "%s/grid", g);
    if (!rdml_rh5_exists(d->r, gg)) return RDML_OK;
    rdml_ctx q;
    rdml_ctx_init(&q);
    char o[1100];
    double *C = NULL, *mis = NULL;
    int64_t *deg = NULL, *chosen = NULL, nC = 0, nmis = 0, ndeg = 0, nch = 0;
    char **kern = NULL, **gam = NULL;
    int64_t nk = 0, ng = 0;
    snprintf(o, sizeof o, "%s/C", gg);
    rdml_rh5_read_f64(&q, d->r, o, &C, &nC);
    snprintf(o, sizeof o, "%s/degree", gg);
    rdml_rh5_read_i64(&q, d->r, o, &deg, &ndeg);
    snprintf(o, sizeof o, "%s/chosen", gg);
    rdml_rh5_read_i64(&q, d->r, o, &chosen, &nch);
    snprintf(o, sizeof o, "%s/mean_inner_score", gg);
    rdml_rh5_read_f64(&q, d->r, o, &mis, &nmis);
    snprintf(o, sizeof o, "%s/kernel", gg);
    if (rdml_rh5_exists(d->r, o)) rdml_rh5_read_strings(&q, d->r, o, &kern, &nk);
    snprintf(o, sizeof o, "%s/gamma", gg);
    if (rdml_rh5_exists(d->r, o)) rdml_rh5_read_strings(&q, d->r, o, &gam, &ng);
    int64_t S = (int64_t)rdml_rh5_num(d->r, gg, "n_settings", (double)nC);
    char *scoring = rdml_rh5_str(d->r, gg, "scoring"), *axes = rdml_rh5_str(d->r, gg, "axes");
    char cap[2048], e1[600], e2[256], e3[128];
    snprintf(cap, sizeof cap,
             "Grid search of %s (nested cross-validation; searched: %s): mean inner %s of each "
             "setting in each outer fold; the setting each outer fold chose is highlighted.",
             rdml_html_esc(label, e1, sizeof e1), rdml_html_esc(axes ? axes : "?", e2, sizeof e2),
             rdml_html_esc(scoring ? scoring : "score", e3, sizeof e3));
    rdml_rep_table_open(d, cap);
    fputs("<tr><th>setting</th><th>kernel</th><th>C</th><th>degree</th><th>gamma</th>", d->html);
    for (int64_t f = 0; f < nch; f++) fprintf(d->html, "<th>fold %lld</th>", (long long)f);
    fputs("<th>chosen in folds</th></tr>\n", d->html);
    for (int64_t s = 0; s < S; s++) {
        fprintf(d->html, "<tr><td>%lld</td><td>%s</td><td>", (long long)s, s < nk ? kern[s] : "?");
        rdml_rep_num(d->html, s < nC ? C[s] : NAN);
        fprintf(d->html, "</td><td>%lld</td><td>%s</td>", s < ndeg ? (long long)deg[s] : -1LL,
                s < ng ? gam[s] : "?");
        int nchosen = 0;
        for (int64_t f = 0; f < nch; f++) {
            int ch = chosen[f] == s;
            nchosen += ch;
            fprintf(d->html, "<td%s>", ch ? " class=\"chosen\"" : "");
            rdml_rep_num(d->html, f * S + s < nmis ? mis[f * S + s] : NAN);
            fputs("</td>", d->html);
        }
        fprintf(d->html, "<td>%d</td></tr>\n", nchosen);
    }
    rdml_rep_table_close(d);
    free(C);
    free(mis);
    free(deg);
    free(chosen);
    free(scoring);
    free(axes);
    rdml_rh5_free_names(kern, (int)nk);
    rdml_rh5_free_names(gam, (int)ng);
    return RDML_OK;
}

/* Table 1 over every c_svc and epsilon_svr group of every experiment. */
static int svm_tables(rdml_rep *d, char **exps, int ne, int *any) {
    cell *cells = malloc(sizeof(cell) * 512);
    if (!cells) return RDML_FAIL(d->ctx, RDML_ENOMEM, "out of memory listing experiments");
    int rc = RDML_OK;
    for (int kind = KIND_SVC; kind <= KIND_SVR && !rc; kind++) {
        int rows = 0;
        for (int e = 0; e < ne && !rc; e++) {
            char mg[512];
            snprintf(mg, sizeof mg, "/experiments/%s/svm", exps[e]);
            int nc = 0;
            rc = list_cells(d, mg, cells, 512, &nc);
            for (int i = 0; i < nc && !rc; i++) {
                if (group_kind(d, cells[i].path) != kind) continue;
                if (rows++ == 0) {
                    rdml_rep_table_open(d, kind == KIND_SVC
                        ? "Pair SVM (classification of similar vs dissimilar pairs): test metrics, "
                          "mean &plusmn; population std over folds (cf. the paper's Table 1)."
                        : "Pair SVR (regression of RDM values): test metrics, mean &plusmn; "
                          "population std over folds.");
                    fputs("<tr><th>experiment</th><th>subject</th><th>selection</th><th>pair set</th>"
                          "<th>kernel</th><th>C</th><th>folds</th>", d->html);
                    const char *const *m = kind == KIND_SVC ? svc_m : reg_m;
                    for (int k = 0; k < (kind == KIND_SVC ? 5 : 4); k++)
                        fprintf(d->html, "<th>%s</th>", m[k]);
                    fputs("</tr>\n", d->html);
                }
                char set[64];
                pair_set(d, cells[i].path, set, sizeof set);
                char *kern = rdml_rh5_str(d->r, cells[i].path, "kernel");
                fputs("<tr><td>", d->html);
                rdml_html_escape(d->html, exps[e]);
                fprintf(d->html, "</td><td>%s</td><td>", cells[i].subj);
                rdml_html_escape(d->html, cells[i].sel);
                char deg[48] = "";
                if (kern && !strcmp(kern, "poly"))
                    snprintf(deg, sizeof deg, " (degree %.0f)", rdml_rh5_num(d->r, cells[i].path, "degree", NAN));
                fprintf(d->html, "</td><td>%s</td><td>%s%s%s</td><td>", set, kern ? kern : "?", deg,
                        rdml_rh5_num(d->r, cells[i].path, "grid_settings", 0) > 0 ? " (grid)" : "");
                rdml_rep_num(d->html, rdml_rh5_num(d->r, cells[i].path, "C", NAN));
                fprintf(d->html, "</td><td>%d</td>", n_folds(d, cells[i].path));
                const char *const *m = kind == KIND_SVC ? svc_m : reg_m;
                for (int k = 0; k < (kind == KIND_SVC ? 5 : 4); k++) {
                    char a[64], b[64];
                    snprintf(a, sizeof a, "mean_%s", m[k]);
                    snprintf(b, sizeof b, "std_%s", m[k]);
                    fputs("<td>", d->html);
                    rdml_rep_pm(d->html, rdml_rh5_num(d->r, cells[i].path, a, NAN),
                                rdml_rh5_num(d->r, cells[i].path, b, NAN));
                    fputs("</td>", d->html);
                }
                fputs("</tr>\n", d->html);
                free(kern);
            }
        }
        if (rows) rdml_rep_table_close(d);
        *any += rows;
    }
    free(cells);
    return rc;
}

static int svc_figures(rdml_rep *d, const char *exp, const cell *cells, int nc) {
    conf_fig *g = calloc(1, sizeof *g);
    if (!g) return RDML_FAIL(d->ctx, RDML_ENOMEM, "out of memory for confusion matrices");
    int total = 0;
    for (int i = 0; i < nc; i++) {
        if (group_kind(d, cells[i].path) != KIND_SVC) continue;
        total++;
        if (g->n >= MAXP) continue;
        int k = n_folds(d, cells[i].path), got = 0;
        double cm[4] = {0, 0, 0, 0};
        for (int f = 0; f < k; f++) {
            int64_t n;
            double *v = fold_vec(d, cells[i].path, f, "confusion", &n);
            if (v && n == 4) {
                for (int c = 0; c < 4; c++) cm[c] += v[c];
                got++;
            }
            free(v);
        }
        if (!got) continue;
        memcpy(g->cm[g->n], cm, sizeof cm);
        snprintf(g->title[g->n], sizeof g->title[g->n], "%s %s (acc %.3f)", cells[i].subj,
                 cells[i].sel, (cm[0] + cm[3]) / fmax(cm[0] + cm[1] + cm[2] + cm[3], 1));
        g->n++;
    }
    int rc = RDML_OK;
    if (g->n > 0) {
        char name[300], se[128], cap[1024];
        rdml_report_safe_name(exp, se, sizeof se);
        snprintf(name, sizeof name, "fig_confusion_%s", se);
        char more[200] = "";
        if (total > g->n) snprintf(more, sizeof more, " The first %d of %d are shown.", g->n, total);
        char set[64];
        pair_set(d, cells[0].path, set, sizeof set);
        snprintf(cap, sizeof cap,
                 "Confusion matrices of the pair SVM of experiment <code>%s</code> (pair set %s), "
                 "summed over the test folds: rows true label, columns predicted; counts of test "
                 "pairs and the share of each true class (cf. the paper's Figure 5).%s",
                 rdml_html_esc(exp, se, sizeof se), set, more);
        int cols = g->n < 4 ? g->n : 4, rows = (g->n + 3) / 4;
        rc = rdml_rep_figure(d, name, 150 + cols * 350 + 80, 50 + rows * 340, draw_conf, g, cap);
    }
    free(g);
    return rc;
}

static int nn_cell(rdml_rep *d, const char *exp, const char *model, const cell *c) {
    const char *g = c->path;
    char label[400], se[128], sm[128], ss[128], base[400], name[500], cap[2048];
    snprintf(label, sizeof label, "%s %s %s", model, c->subj, c->sel);
    char elabel[1200], emodel[400], eemb[600];
    rdml_html_esc(label, elabel, sizeof elabel);
    rdml_html_esc(model, emodel, sizeof emodel);
    rdml_report_safe_name(exp, se, sizeof se);
    rdml_report_safe_name(model, sm, sizeof sm);
    rdml_report_safe_name(c->sel, ss, sizeof ss);
    snprintf(base, sizeof base, "%s_%s_%s_%s", se, sm, c->subj, ss);
    fputs("<h4>", d->html);
    rdml_html_escape(d->html, exp);
    fputs(" / ", d->html);
    rdml_html_escape(d->html, model);
    fprintf(d->html, ": %s ", c->subj);
    rdml_html_escape(d->html, c->sel);
    fputs("</h4>\n", d->html);
    int k = n_folds(d, g);
    double ncol = rdml_rh5_num(d->r, g, "n_folds_collapsed", 0);
    if (ncol > 0) /* a fit that died: say so before its numbers */
        fprintf(d->html, "<p class=\"note\"><strong>Warning:</strong> %.0f of the %d folds collapsed to a "
                "constant prediction (status in the per-fold table); they count in the means below "
                "(mean test R^2 without them: %.3f).</p>\n", ncol, k,
                rdml_rh5_num(d->r, g, "mean_r2_not_collapsed", NAN));
    /* Table 2: test, train, chance levels */
    char *emb = rdml_rh5_str(d->r, g, "embedding");
    snprintf(cap, sizeof cap,
             "%s on %s, %d folds (%.0f finished): mean &plusmn; population std over folds of the "
             "test pairs' metrics, the training R^2, and the two chance levels (cf. the paper's "
             "Table 2).", emodel, rdml_html_esc(emb ? emb : "?", eemb, sizeof eemb), k, rdml_rh5_num(d->r, g, "n_folds_finished", NAN));
    free(emb);
    rdml_rep_table_open(d, cap);
    fputs("<tr><th>set</th><th>R^2</th><th>MSE</th><th>Pearson r</th><th>Spearman rho</th></tr>\n",
          d->html);
    const char *rowname[3] = {"test (model)", "mean predictor", "shuffled targets"};
    const char *prefix[3] = {"", "mean_predictor_", "shuffled_"};
    double tr[MAXK];
    int ntr = 0;
    for (int f = 0; f < k; f++) {
        char fg[1024];
        snprintf(fg, sizeof fg, "%s/fold_%d", g, f);
        double v = rdml_rh5_num(d->r, fg, "train_r2", NAN);
        if (isfinite(v)) tr[ntr++] = v;
    }
    for (int r = 0; r < 3; r++) {
        fprintf(d->html, "<tr><td>%s</td>", rowname[r]);
        for (int m = 0; m < 4; m++) {
            char a[128], b[128];
            snprintf(a, sizeof a, "%smean_%s", prefix[r], reg_m[m]);
            snprintf(b, sizeof b, "%sstd_%s", prefix[r], reg_m[m]);
            fputs("<td>", d->html);
            rdml_rep_pm(d->html, rdml_rh5_num(d->r, g, a, NAN), rdml_rh5_num(d->r, g, b, NAN));
            fputs("</td>", d->html);
        }
        fputs("</tr>\n", d->html);
        if (r == 0 && ntr > 0) {
            double mu = 0, var = 0;
            for (int i = 0; i < ntr; i++) mu += tr[i] / ntr;
            for (int i = 0; i < ntr; i++) var += (tr[i] - mu) * (tr[i] - mu) / ntr;
            fputs("<tr><td>training pairs</td><td>", d->html);
            rdml_rep_pm(d->html, mu, sqrt(var));
            fputs("</td><td>n/a</td><td>n/a</td><td>n/a</td></tr>\n", d->html);
        }
    }
    rdml_rep_table_close(d);
    /* per-fold table */
    fold_fig *ff = calloc(1, sizeof *ff);
    if (!ff) return RDML_FAIL(d->ctx, RDML_ENOMEM, "out of memory for the fold figure");
    ff->k = k;
    rdml_rep_table_open(d, "Per fold: test metrics, chance levels, training R^2 and status.");
    fputs("<tr><th>fold</th><th>R^2</th><th>MSE</th><th>Pearson</th><th>Spearman</th><th>mean-"
          "predictor R^2</th><th>shuffled R^2</th><th>p (R^2 null)</th><th>train R^2</th><th>train / test pairs</th>"
          "<th>fit s</th><th>status</th></tr>\n", d->html);
    for (int f = 0; f < k; f++) {
        char fg[1024];
        snprintf(fg, sizeof fg, "%s/fold_%d", g, f);
        fprintf(d->html, "<tr><td>%d</td>", f);
        const char *cols[8] = {"r2",          "mse",  "pearson", "spearman", "mean_predictor_r2",
                               "shuffled_r2", "p_r2", "train_r2"};
        for (int m = 0; m < 8; m++) {
            fputs("<td>", d->html);
            rdml_rep_num(d->html, rdml_rh5_num(d->r, fg, cols[m], NAN));
            fputs("</td>", d->html);
        }
        char *st = rdml_rh5_str(d->r, fg, "status");
        fprintf(d->html, "<td>%.0f / %.0f</td><td>", rdml_rh5_num(d->r, fg, "n_train", NAN),
                rdml_rh5_num(d->r, fg, "n_test", NAN));
        rdml_rep_num(d->html, rdml_rh5_num(d->r, fg, "fit_seconds", NAN));
        fputs("</td><td>", d->html);
        rdml_html_escape(d->html, st ? st : "?");
        fputs("</td></tr>\n", d->html);
        free(st);
        /* a stopped fold has NaN metrics: drawn as "stopped" */
        ff->v[0][f] = rdml_rh5_num(d->r, fg, "r2", NAN);
        ff->v[1][f] = rdml_rh5_num(d->r, fg, "mse", NAN);
        ff->nlo[f] = rdml_rh5_num(d->r, fg, "null_r2_q025", NAN);
        ff->nhi[f] = rdml_rh5_num(d->r, fg, "null_r2_q975", NAN);
    }
    rdml_rep_table_close(d);
    ff->mean[0] = rdml_rh5_num(d->r, g, "mean_r2", NAN);
    ff->mean[1] = rdml_rh5_num(d->r, g, "mean_mse", NAN);
    ff->mp[0] = rdml_rh5_num(d->r, g, "mean_predictor_mean_r2", NAN);
    ff->mp[1] = rdml_rh5_num(d->r, g, "mean_predictor_mean_mse", NAN);
    ff->sh[0] = rdml_rh5_num(d->r, g, "shuffled_mean_r2", NAN);
    ff->sh[1] = rdml_rh5_num(d->r, g, "shuffled_mean_mse", NAN);
    snprintf(ff->title, sizeof ff->title, "%s %s", c->subj, c->sel);
    int rc = RDML_OK;
    if (k > 0) {
        snprintf(name, sizeof name, "fig_folds_%s", base);
        snprintf(cap, sizeof cap,
                 "%s: test R^2 (left) and MSE (right) of each fold (bars), their mean (solid line), "
                 "and the chance levels averaged over folds: predicting the training targets' mean "
                 "(orange dashed) and scoring the predictions against shuffled targets (red dashed) "
                 "(cf. the paper's Figure 6); grey band over a bar: the central 95%% of that fold's "
                 "R^2 null distribution (train.null_shuffles target shuffles; p in the table).",
                 elabel);
        rc = rdml_rep_figure(d, name, 1330, 450, draw_folds, ff, cap);
    }
    free(ff);
    if (!rc) {
        snprintf(name, sizeof name, "fig_scatter_%s", base);
        rc = scatter_figure(d, g, label, name, "pred", model);
    }
    if (!rc) {
        loss_fig *lf = calloc(1, sizeof *lf);
        if (!lf) return RDML_FAIL(d->ctx, RDML_ENOMEM, "out of memory for the loss figure");
        lf->k = k;
        int any = 0;
        for (int f = 0; f < k; f++) {
            lf->tr[f] = fold_vec(d, g, f, "train_loss", &lf->ntr[f]);
            lf->te[f] = fold_vec(d, g, f, "test_loss", &lf->nte[f]);
            any |= lf->ntr[f] > 0 || lf->nte[f] > 0;
        }
        snprintf(lf->title, sizeof lf->title, "%s: loss per epoch", label);
        if (any) {
            snprintf(name, sizeof name, "fig_loss_%s", base);
            snprintf(cap, sizeof cap,
                     "%s: mean training loss of each epoch (solid) and the test MSE after it "
                     "(dashed), one colour per fold (<code>fold_*/train_loss</code>, "
                     "<code>test_loss</code>; a gap marks a stopped fold).", elabel);
            rc = rdml_rep_figure(d, name, 760, 480, draw_loss, lf, cap);
        } else {
            fputs("<p class=\"absent\">No per-epoch losses stored.</p>\n", d->html);
        }
        for (int f = 0; f < k; f++) {
            free(lf->tr[f]);
            free(lf->te[f]);
        }
        free(lf);
    }
    return rc;
}

/* For every experiment of exps and model group under it (the pairs group aside): fn with the
 * group's subject x selection cells (nc may be 0). Stops at the first error. */
typedef int (*model_fn)(rdml_rep *d, const char *exp, const char *model, cell *cells, int nc,
                        void *user);
static int each_model(rdml_rep *d, char **exps, int ne, model_fn fn, void *user) {
    cell *cells = malloc(sizeof(cell) * 512);
    int rc = cells ? RDML_OK : RDML_FAIL(d->ctx, RDML_ENOMEM, "out of memory listing experiments");
    for (int e = 0; e < ne && !rc; e++) {
        char eg[512];
        snprintf(eg, sizeof eg, "/experiments/%s", exps[e]);
        char **models = NULL;
        int nm = 0;
        rc = rdml_rh5_list(d->ctx, d->r, eg, &models, &nm);
        for (int m = 0; m < nm && !rc; m++) {
            if (!strcmp(models[m], "pairs")) continue;
            char mg[700];
            snprintf(mg, sizeof mg, "%s/%s", eg, models[m]);
            int nc = 0;
            rc = list_cells(d, mg, cells, 512, &nc);
            if (!rc) rc = fn(d, exps[e], models[m], cells, nc, user);
        }
        rdml_rh5_free_names(models, nm);
    }
    free(cells);
    return rc;
}

/* One experiment x model of the file for rdml_rep_experiments: its heading, pairs line and
 * figures. */
static int model_section(rdml_rep *d, const char *exp, const char *model, cell *cells, int nc,
                         void *user) {
    int *nnn = user, rc = RDML_OK;
    if (nc == 0) return RDML_OK;
    int kind = group_kind(d, cells[0].path);
    if (kind == KIND_NONE) return RDML_OK;
    char ase[128], asm_[128];
    rdml_report_safe_name(exp, ase, sizeof ase);
    rdml_report_safe_name(model, asm_, sizeof asm_);
    fprintf(d->html, "<h3 id=\"exp-%s-%s\">Experiment <code>", ase, asm_);
    rdml_html_escape(d->html, exp);
    fputs("</code>, model <code>", d->html);
    rdml_html_escape(d->html, model);
    fputs("</code></h3>\n", d->html);
    pairs_line(d, exp, cells, nc);
    if (kind == KIND_SVC) {
        rc = svc_figures(d, exp, cells, nc);
        for (int i = 0; i < nc && !rc; i++) {
            char label[600];
            cell_label(&cells[i], exp, label, sizeof label);
            rc = grid_table(d, cells[i].path, label);
        }
    } else if (kind == KIND_SVR) {
        for (int i = 0; i < nc && i < MAXP && !rc; i++) {
            char label[600], name[700], se[128], ss[128];
            cell_label(&cells[i], exp, label, sizeof label);
            rdml_report_safe_name(exp, se, sizeof se);
            rdml_report_safe_name(cells[i].sel, ss, sizeof ss);
            snprintf(name, sizeof name, "fig_svr_%s_%s_%s", se, cells[i].subj, ss);
            rc = scatter_figure(d, cells[i].path, label, name, "prediction", "SVR");
            if (!rc) rc = grid_table(d, cells[i].path, label);
        }
    } else {
        *nnn += nc;
        for (int i = 0; i < nc && i < MAXP && !rc; i++) rc = nn_cell(d, exp, model, &cells[i]);
        if (nc > MAXP)
            fprintf(d->html, "<p class=\"note\">The first %d of %d subject x selection "
                    "results are drawn.</p>\n", MAXP, nc);
    }
    if (!rc && nc > 1) rc = sweep_figure(d, exp, model, cells, nc, kind);
    return rc;
}

int rdml_rep_experiments(rdml_rep *d) {
    char **exps = NULL;
    int ne = 0, rc;
    RDML_TRY(rdml_rh5_list(d->ctx, d->r, "/experiments", &exps, &ne));
    fputs("<section id=\"experiments\"><h2>Experiments</h2>\n", d->html);
    if (ne == 0) {
        fputs("<p class=\"absent\">No experiments in this file.</p>\n", d->html);
        rdml_rep_absent(d, "SVM results (/experiments/*/svm): run <code>rdmlearn svm</code>");
        rdml_rep_absent(d, "neural pair models (/experiments/*/siamese, mlp, ...): run "
                        "<code>rdmlearn train</code>");
        fputs("</section>\n", d->html);
        return RDML_OK;
    }
    int nsvm = 0, nnn = 0;
    fputs("<h3>Pair SVM</h3>\n", d->html);
    rc = svm_tables(d, exps, ne, &nsvm);
    if (!rc) rc = each_model(d, exps, ne, model_section, &nnn);
    if (!rc && nsvm == 0) {
        fputs("<p class=\"absent\">No SVM results in this file.</p>\n", d->html);
        rdml_rep_absent(d, "SVM results (/experiments/*/svm): run <code>rdmlearn svm</code>");
    }
    if (!rc && nnn == 0) {
        fputs("<p class=\"absent\">No neural pair models in this file.</p>\n", d->html);
        rdml_rep_absent(d, "neural pair models (/experiments/*/siamese, mlp, ...): run "
                        "<code>rdmlearn train</code>");
    }
    fputs("</section>\n", d->html);
    rdml_rh5_free_names(exps, ne);
    return rc;
}

/* n header cells named by the comma-separated list cols (an attribute "columns"; cut by
 * strtok_r), "<prefix><j>" past its end. */
static void header_cells(rdml_rep *d, char *cols, int64_t n, const char *prefix) {
    char *save = NULL, *tok = cols ? strtok_r(cols, ",", &save) : NULL;
    for (int64_t j = 0; j < n; j++) {
        fputs("<th>", d->html);
        if (tok) rdml_html_escape(d->html, tok);
        else fprintf(d->html, "%s%lld", prefix, (long long)j);
        fputs("</th>", d->html);
        tok = tok ? strtok_r(NULL, ",", &save) : NULL;
    }
}

/* One model's sweep summary, /sweep/<experiment>/<model>/summary/{subject,selection,mean,std}
 * (model = "<experiment>/<model>"; written by
 * the sweep engine of the svm and train stages): a table of mean +- std per group. */
static int sweep_summary_table(rdml_rep *d, const char *model) {
    char g[700], o[800];
    snprintf(g, sizeof g, "/sweep/%s/summary", model);
    rdml_ctx q;
    rdml_ctx_init(&q);
    int64_t *subj = NULL, ns = 0, nm = 0, nsd = 0, nsel = 0;
    double *mean = NULL, *sd = NULL;
    char **sel = NULL, *cols = NULL;
    int nd = 0;
    int64_t dims[8] = {0, 0};
    snprintf(o, sizeof o, "%s/mean", g);
    int bad = rdml_rh5_dims(&q, d->r, o, &nd, dims) || nd != 2;
    if (!bad) bad = rdml_rh5_read_f64(&q, d->r, o, &mean, &nm);
    if (!bad) cols = rdml_rh5_str(d->r, o, "columns");
    snprintf(o, sizeof o, "%s/std", g);
    if (!bad && rdml_rh5_exists(d->r, o)) bad = rdml_rh5_read_f64(&q, d->r, o, &sd, &nsd);
    snprintf(o, sizeof o, "%s/subject", g);
    if (!bad) bad = rdml_rh5_read_i64(&q, d->r, o, &subj, &ns);
    snprintf(o, sizeof o, "%s/selection", g);
    if (!bad) bad = rdml_rh5_read_strings(&q, d->r, o, &sel, &nsel);
    /* one model per embedding (pairs.embeddings): a column naming it */
    char **emb = NULL;
    int64_t nemb = 0;
    snprintf(o, sizeof o, "%s/embedding", g);
    if (!bad && rdml_rh5_exists(d->r, o) && rdml_rh5_read_strings(&q, d->r, o, &emb, &nemb)) nemb = 0;
    int64_t G = dims[0], M = dims[1];
    int embcol = 0;
    for (int64_t i = 1; i < nemb && nemb == G; i++) embcol |= strcmp(emb[i], emb[0]) != 0;
    if (bad || ns != G || nsel != G || (sd && nsd != nm)) {
        fprintf(d->html, "<p class=\"note\"><code>%s</code> has a layout this report does not "
                "know; not shown.</p>\n", g);
    } else {
        char cap[1024], e1[300];
        snprintf(cap, sizeof cap, "Sweep summary of <code>%s</code> (<code>%s</code>): test "
                 "metrics per subject and selection, mean &plusmn; population std over the "
                 "finished folds.", rdml_html_esc(model, e1, sizeof e1), g);
        rdml_rep_table_open(d, cap);
        fputs(embcol ? "<tr><th>subject</th><th>selection</th><th>embedding</th>"
                     : "<tr><th>subject</th><th>selection</th>", d->html);
        header_cells(d, cols, M, "metric ");
        fputs("</tr>\n", d->html);
        for (int64_t i = 0; i < G; i++) {
            fprintf(d->html, "<tr><td>subj%02lld</td><td>", (long long)subj[i]);
            rdml_html_escape(d->html, sel[i]);
            fputs("</td>", d->html);
            if (embcol) {
                fputs("<td>", d->html);
                rdml_html_escape(d->html, emb[i]);
                fputs("</td>", d->html);
            }
            for (int64_t j = 0; j < M; j++) {
                fputs("<td>", d->html);
                rdml_rep_pm(d->html, mean[i * M + j], sd ? sd[i * M + j] : NAN);
                fputs("</td>", d->html);
            }
            fputs("</tr>\n", d->html);
        }
        rdml_rep_table_close(d);
    }
    free(subj);
    free(mean);
    free(sd);
    free(cols);
    rdml_rh5_free_names(sel, (int)nsel);
    rdml_rh5_free_names(emb, (int)nemb);
    return RDML_OK;
}

/* /sweep: per model the summary above; a /sweep/table dataset (2-D numbers with optional
 * comma-separated `rows` / `columns` attributes, or lines of text) as a plain table. */
int rdml_rep_sweep(rdml_rep *d) {
    fputs("<section id=\"sweep\"><h2>Sweep tables</h2>\n", d->html);
    char **models = NULL;
    int nmod = 0, shown = 0;
    RDML_TRY(rdml_rh5_list(d->ctx, d->r, "/sweep", &models, &nmod));
    /* /sweep/<experiment>/<model>/summary (and a flat /sweep/<model>/summary) */
    for (int i = 0; i < nmod; i++) {
        char o[600];
        snprintf(o, sizeof o, "/sweep/%s/summary", models[i]);
        if (rdml_rh5_kind(d->r, o) == 0) {
            sweep_summary_table(d, models[i]);
            shown++;
            continue;
        }
        char **sub = NULL;
        int nsub = 0;
        snprintf(o, sizeof o, "/sweep/%s", models[i]);
        if (rdml_rh5_kind(d->r, o) != 0 || rdml_rh5_list(d->ctx, d->r, o, &sub, &nsub)) continue;
        for (int j = 0; j < nsub; j++) {
            char name[600], o2[700];
            snprintf(name, sizeof name, "%s/%s", models[i], sub[j]);
            snprintf(o2, sizeof o2, "/sweep/%s/summary", name);
            if (rdml_rh5_kind(d->r, o2) != 0) continue;
            sweep_summary_table(d, name);
            shown++;
        }
        rdml_rh5_free_names(sub, nsub);
    }
    rdml_rh5_free_names(models, nmod);
    const char *o = "/sweep/table";
    if (rdml_rh5_kind(d->r, o) != 1) {
        if (!shown)
            fputs("<p class=\"note\">No sweep tables (<code>/sweep</code>) in this file; the "
                  "per-experiment heat maps above cover subjects x selections.</p>\n", d->html);
        fputs("</section>\n", d->html);
        return RDML_OK;
    }
    rdml_ctx q;
    rdml_ctx_init(&q);
    int nd;
    int64_t dims[8];
    double *v = NULL;
    int64_t n = 0;
    if (rdml_rh5_dims(&q, d->r, o, &nd, dims) || nd < 1 || nd > 2 ||
        rdml_rh5_read_f64(&q, d->r, o, &v, &n)) {
        char **lines = NULL;
        int64_t nl = 0;
        if (!rdml_rh5_read_strings(&q, d->r, o, &lines, &nl)) {
            fputs("<pre>", d->html);
            for (int64_t i = 0; i < nl; i++) {
                rdml_html_escape(d->html, lines[i]);
                fputc('\n', d->html);
            }
            fputs("</pre>\n", d->html);
            rdml_rh5_free_names(lines, (int)nl);
        } else {
            fputs("<p class=\"note\"><code>/sweep/table</code> has a layout this report does not "
                  "know; not shown.</p>\n", d->html);
        }
        fputs("</section>\n", d->html);
        return RDML_OK;
    }
    int64_t nr = dims[0], nc = nd == 2 ? dims[1] : 1;
    char *rows = rdml_rh5_str(d->r, o, "rows"), *cols = rdml_rh5_str(d->r, o, "columns");
    rdml_rep_table_open(d, "The sweep's summary table (<code>/sweep/table</code>).");
    fputs("<tr><th></th>", d->html);
    header_cells(d, cols, nc, "");
    fputs("</tr>\n", d->html);
    char *rsave = NULL, *rtok = rows ? strtok_r(rows, ",", &rsave) : NULL;
    for (int64_t i = 0; i < nr; i++) {
        fputs("<tr><td>", d->html);
        if (rtok) rdml_html_escape(d->html, rtok);
        else fprintf(d->html, "%lld", (long long)i);
        fputs("</td>", d->html);
        for (int64_t j = 0; j < nc; j++) {
            fputs("<td>", d->html);
            rdml_rep_num(d->html, v[i * nc + j]);
            fputs("</td>", d->html);
        }
        fputs("</tr>\n", d->html);
        rtok = rtok ? strtok_r(NULL, ",", &rsave) : NULL;
    }
    rdml_rep_table_close(d);
    free(rows);
    free(cols);
    free(v);
    fputs("</section>\n", d->html);
    return RDML_OK;
}

/* The summary table's rows of one experiment x model (rdml_rep_summary); *user counts the
 * rows and the first one opens the table. */
static int summary_rows(rdml_rep *d, const char *exp, const char *model, cell *cells, int nc,
                        void *user) {
    int *rows = user;
    for (int i = 0; i < nc; i++) {
        int kind = group_kind(d, cells[i].path);
        if (kind == KIND_NONE) continue;
        if ((*rows)++ == 0) {
            rdml_rep_table_open(d, "Model scores: the test score of every model, subject and "
                                "selection in this file, mean &plusmn; population std over "
                                "the test folds (SVM classifier: accuracy and ROC AUC of "
                                "similar vs dissimilar pairs; SVR and neural networks: R^2 "
                                "and Spearman rho of the predicted RDM values). Chance: R^2 "
                                "of the same network trained on shuffled targets, where "
                                "stored. Details in the linked sections.");
            fputs("<tr><th>experiment</th><th>model</th><th>subject</th><th>selection</th>"
                  "<th>pairs</th><th>folds</th><th>score</th><th>mean &plusmn; std</th>"
                  "<th>second score</th><th>mean &plusmn; std</th><th>chance</th></tr>\n",
                  d->html);
        }
        char set[64] = "?", ase[128], asm_[128];
        pair_set(d, cells[i].path, set, sizeof set);
        if (!strcmp(set, "?")) {
            char pg[1200];
            snprintf(pg, sizeof pg, "/experiments/%s/pairs/%s/%s", exp, cells[i].subj,
                     cells[i].sel);
            char *ps = rdml_rh5_str(d->r, pg, "set");
            snprintf(set, sizeof set, "%s", ps ? ps : "?");
            free(ps);
        }
        rdml_report_safe_name(exp, ase, sizeof ase);
        rdml_report_safe_name(model, asm_, sizeof asm_);
        fputs("<tr><td>", d->html);
        rdml_html_escape(d->html, exp);
        fprintf(d->html, "</td><td><a href=\"#exp-%s-%s\">", ase, asm_);
        rdml_html_escape(d->html, model);
        fputs(kind == KIND_SVC ? " (classifier)" : kind == KIND_SVR ? " (SVR)" : "", d->html);
        fprintf(d->html, "</a></td><td>%s</td><td>", cells[i].subj);
        rdml_html_escape(d->html, cells[i].sel);
        fputs("</td><td>", d->html);
        rdml_html_escape(d->html, set);
        fprintf(d->html, "</td><td>%d</td>", n_folds(d, cells[i].path));
        const char *m1 = kind == KIND_SVC ? "accuracy" : "r2",
                   *m2 = kind == KIND_SVC ? "roc_auc" : "spearman";
        const char *n1 = kind == KIND_SVC ? "accuracy" : "R^2",
                   *n2 = kind == KIND_SVC ? "ROC AUC" : "Spearman rho";
        const char *mm[2] = {m1, m2}, *nn[2] = {n1, n2};
        for (int k = 0; k < 2; k++) {
            char a[64], b[64];
            snprintf(a, sizeof a, "mean_%s", mm[k]);
            snprintf(b, sizeof b, "std_%s", mm[k]);
            fprintf(d->html, "<td>%s</td><td><b>", nn[k]);
            rdml_rep_pm(d->html, rdml_rh5_num(d->r, cells[i].path, a, NAN),
                        rdml_rh5_num(d->r, cells[i].path, b, NAN));
            fputs("</b></td>", d->html);
        }
        fputs("<td>", d->html);
        double ch = rdml_rh5_num(d->r, cells[i].path, "shuffled_mean_r2", NAN);
        if (kind == KIND_NN && isfinite(ch)) {
            fputs("R^2 ", d->html);
            rdml_rep_num(d->html, ch);
        } else {
            fputs("&ndash;", d->html);
        }
        fputs("</td></tr>\n", d->html);
    }
    return RDML_OK;
}

/* The first table of the report: every model result of the file in one row (experiment,
 * model, subject x selection), its headline test score (SVM classifier: accuracy and ROC AUC;
 * SVR and networks: R^2 and Spearman rho) as mean +- population std over folds, and the
 * chance level the stage stored (networks: R^2 with shuffled targets), linked to the
 * experiment's detailed section. */
int rdml_rep_summary(rdml_rep *d, int *rows_out) {
    char **exps = NULL;
    int ne = 0, rows = 0;
    *rows_out = 0;
    RDML_TRY(rdml_rh5_list(d->ctx, d->r, "/experiments", &exps, &ne));
    int rc = each_model(d, exps, ne, summary_rows, &rows);
    if (rows) rdml_rep_table_close(d);
    rdml_rh5_free_names(exps, ne);
    *rows_out = rows;
    return rc;
}
