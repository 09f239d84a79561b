/* The report's model-comparison section, drawn from /evaluate (rdmlearn evaluate,
 * docs/evaluate.md): per selection a figure in the style of rsatoolbox's
 * plot_model_comparison (one bar per model: the mean score over subjects with its bootstrap
 * interval, each subject a dot, the noise ceiling as a grey band, a star over each model whose
 * score is significantly above 0 after correction, and a line over each pair of models whose
 * difference is significant after correction), a subjects x selections x models table with
 * score, interval, p and q, and per experiment the models on the same outer-fold test pairs
 * (a figure per selection and a table). Serial, rank 0 (the report module's rule). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rdml/report.h"
#include "report/report_priv.h"

#define EV_MAXM 16
#define EV_MAXS 16
#define EV_MAXF 32

typedef struct ev_fig {
    int M, S;
    char models[EV_MAXM][64];
    double subj[EV_MAXS][EV_MAXM];       /* dots */
    double bar[EV_MAXM], lo[EV_MAXM], hi[EV_MAXM];
    int star[EV_MAXM];                   /* significant > 0 after correction */
    int sig[EV_MAXM][EV_MAXM];           /* pair significantly different after correction */
    double nc_lo, nc_hi;
    char title[256], ylabel[96];
    char bar_label[64], dot_label[64];
} ev_fig;

/* The width of one model's column: wider for long names (embedding:gabor). */
static double ev_col(const ev_fig *g) {
    size_t n = 0;
    for (int k = 0; k < g->M; k++) n = strlen(g->models[k]) > n ? strlen(g->models[k]) : n;
    return n > 10 ? 30 + 7.0 * (double)n : 95;
}

static void ev_fig_size(const ev_fig *g, int *w, int *h) {
    *w = (int)(150 + g->M * ev_col(g) + 250);
    *h = 520;
}

static void draw_ev(cairo_t *cr, void *user) {
    const ev_fig *g = user;
    double lo = 0, hi = 0;
    for (int k = 0; k < g->M; k++) {
        double v[3] = {g->bar[k], g->lo[k], g->hi[k]};
        for (int i = 0; i < 3; i++)
            if (isfinite(v[i])) lo = fmin(lo, v[i]), hi = fmax(hi, v[i]);
        for (int s = 0; s < g->S; s++)
            if (isfinite(g->subj[s][k])) lo = fmin(lo, g->subj[s][k]), hi = fmax(hi, g->subj[s][k]);
    }
    if (isfinite(g->nc_hi)) hi = fmax(hi, g->nc_hi);
    if (isfinite(g->nc_lo)) lo = fmin(lo, g->nc_lo);
    /* room above for the pairwise lines */
    int npairs = 0;
    for (int a = 0; a < g->M; a++)
        for (int b = a + 1; b < g->M; b++) npairs += g->sig[a][b];
    rdml_plot_nice_range(&lo, &hi);
    double span = hi - lo;
    const double top = hi + span * (0.08 + 0.06 * (npairs < 8 ? npairs : 8));
    const double col = ev_col(g);
    rdml_plot_axes a = {90, 60, g->M * col, 380, -0.5, g->M - 0.5, lo, top};
    rdml_plot_frame(cr, &a, NULL, g->ylabel, g->title, 0);
    /* the noise ceiling: a grey band from the lower to the upper bound */
    if (isfinite(g->nc_lo) && isfinite(g->nc_hi)) {
        cairo_set_source_rgba(cr, 0.5, 0.5, 0.5, 0.35);
        double y0 = rdml_plot_py(&a, g->nc_hi), y1 = rdml_plot_py(&a, g->nc_lo);
        cairo_rectangle(cr, a.x, y0, a.w, y1 - y0);
        cairo_fill(cr);
    }
    cairo_set_source_rgb(cr, 0.3, 0.3, 0.3);
    cairo_set_line_width(cr, 1);
    cairo_move_to(cr, a.x, rdml_plot_py(&a, 0));
    cairo_line_to(cr, a.x + a.w, rdml_plot_py(&a, 0));
    cairo_stroke(cr);
    const double bw = fmin(col, 95) * 0.6;
    for (int k = 0; k < g->M; k++) {
        double px = rdml_plot_px(&a, k), rgb[3];
        rdml_plot_series_color(k, rgb);
        cairo_set_source_rgb(cr, 0, 0, 0);
        rdml_plot_text(cr, px, a.y + a.h + 8, g->models[k], 11, 0.5, 0, 0);
        if (!isfinite(g->bar[k])) {
            rdml_plot_text(cr, px, rdml_plot_py(&a, 0) - 4, "n/a", 11, 0.5, 1, 0);
            continue;
        }
        double y0 = rdml_plot_py(&a, 0), y1 = rdml_plot_py(&a, g->bar[k]);
        rdml_plot_set_rgb(cr, rgb);
        cairo_rectangle(cr, px - bw / 2, fmin(y0, y1), bw, fabs(y1 - y0));
        cairo_fill(cr);
        /* the interval */
        if (isfinite(g->lo[k]) && isfinite(g->hi[k])) {
            cairo_set_source_rgb(cr, 0, 0, 0);
            cairo_set_line_width(cr, 1.5);
            double ya = rdml_plot_py(&a, g->lo[k]), yb = rdml_plot_py(&a, g->hi[k]);
            cairo_move_to(cr, px, ya);
            cairo_line_to(cr, px, yb);
            cairo_move_to(cr, px - 6, ya);
            cairo_line_to(cr, px + 6, ya);
            cairo_move_to(cr, px - 6, yb);
            cairo_line_to(cr, px + 6, yb);
            cairo_stroke(cr);
        }
        /* the subjects */
        for (int s = 0; s < g->S; s++) {
            if (!isfinite(g->subj[s][k])) continue;
            double dx = g->S > 1 ? (s - (g->S - 1) / 2.0) * (bw * 0.6 / (g->S - 1)) : 0;
            cairo_set_source_rgb(cr, 1, 1, 1);
            cairo_arc(cr, px + dx, rdml_plot_py(&a, g->subj[s][k]), 3.5, 0, 2 * M_PI);
            cairo_fill_preserve(cr);
            cairo_set_source_rgb(cr, 0, 0, 0);
            cairo_set_line_width(cr, 1);
            cairo_stroke(cr);
        }
        if (g->star[k]) {
            double yt = rdml_plot_py(&a, fmax(g->bar[k], isfinite(g->hi[k]) ? g->hi[k] : g->bar[k]));
            cairo_set_source_rgb(cr, 0, 0, 0);
            rdml_plot_text_bold(cr, px, yt - 4, "*", 18, 0.5, 1, 0);
        }
    }
    /* significant pairwise differences: a line from model a to model b, stacked */
    int level = 0;
    cairo_set_source_rgb(cr, 0.15, 0.15, 0.15);
    cairo_set_line_width(cr, 1.5);
    for (int x = 0; x < g->M; x++)
        for (int y = x + 1; y < g->M; y++) {
            if (!g->sig[x][y] || level >= 8) continue;
            double yy = rdml_plot_py(&a, hi + span * (0.05 + 0.06 * level));
            cairo_move_to(cr, rdml_plot_px(&a, x), yy);
            cairo_line_to(cr, rdml_plot_px(&a, y), yy);
            cairo_stroke(cr);
            cairo_arc(cr, rdml_plot_px(&a, x), yy, 2.5, 0, 2 * M_PI);
            cairo_fill(cr);
            cairo_arc(cr, rdml_plot_px(&a, y), yy, 2.5, 0, 2 * M_PI);
            cairo_fill(cr);
            level++;
        }
    rdml_plot_legend_item it[4] = {{g->bar_label, {0.12, 0.47, 0.71}, 0},
                                   {g->dot_label, {0, 0, 0}, 3},
                                   {"noise ceiling (lower to upper)", {0.7, 0.7, 0.7}, 0},
                                   {"* / line: q < alpha", {0.15, 0.15, 0.15}, 1}};
    rdml_plot_legend(cr, a.x + a.w + 15, a.y, it, 4);
}

/* ---- reading helpers (never fail: missing parts read as NaN) ---- */

static int read_vec(rdml_rep *d, const char *path, double *out, int64_t n) {
    double *v = NULL;
    int64_t c = 0;
    rdml_ctx q;
    rdml_ctx_init(&q);
    for (int64_t i = 0; i < n; i++) out[i] = NAN;
    if (!rdml_rh5_exists(d->r, path) || rdml_rh5_read_f64(&q, d->r, path, &v, &c)) return 0;
    for (int64_t i = 0; i < n && i < c; i++) out[i] = v[i];
    free(v);
    return (int)c;
}

static char **read_strs(rdml_rep *d, const char *path, int64_t *n) {
    char **s = NULL;
    rdml_ctx q;
    rdml_ctx_init(&q);
    *n = 0;
    if (!rdml_rh5_exists(d->r, path) || rdml_rh5_read_strings(&q, d->r, path, &s, n)) return NULL;
    return s;
}

static const char *method_title(const char *m) {
    return !strcmp(m, "spearman") ? "Spearman rho" : !strcmp(m, "pearson") ? "Pearson r" : "Kendall tau-a";
}

/* The figure and table rows of /evaluate/rdm/<sel> for a method. */
static int rdm_selection(rdml_rep *d, const char *sel, const char *method, double alpha) {
    char g[600], mg[700], p[900];
    snprintf(g, sizeof g, "/evaluate/rdm/%s", sel);
    snprintf(mg, sizeof mg, "%s/%s", g, method);
    if (!rdml_rh5_exists(d->r, mg)) return RDML_OK;
    int64_t nm = 0, ns = 0;
    snprintf(p, sizeof p, "%s/models", g);
    char **models = read_strs(d, p, &nm);
    int64_t *subj = NULL;
    rdml_ctx q;
    rdml_ctx_init(&q);
    snprintf(p, sizeof p, "%s/subjects", g);
    if (rdml_rh5_read_i64(&q, d->r, p, &subj, &ns)) ns = 0;
    const int64_t M = nm, S = ns;
    double *tab[5] = {0};
    static const char *const names[5] = {"score", "ci_low", "ci_high", "p", "q"};
    int rc = RDML_OK;
    for (int k = 0; k < 5 && !rc; k++) {
        tab[k] = calloc((size_t)(S * M) + 1, sizeof(double));
        if (!tab[k]) rc = RDML_FAIL(d->ctx, RDML_ENOMEM, "out of memory");
        snprintf(p, sizeof p, "%s/%s", mg, names[k]);
        if (!rc) read_vec(d, p, tab[k], S * M);
    }
    double nc[2];
    snprintf(p, sizeof p, "%s/noise_ceiling", mg);
    read_vec(d, p, nc, 2);
    char gg[800];
    snprintf(gg, sizeof gg, "%s/group", mg);
    const int has_group = rdml_rh5_exists(d->r, gg) && rdml_rh5_kind(d->r, gg) == 0 &&
                          (snprintf(p, sizeof p, "%s/score", gg), rdml_rh5_exists(d->r, p));
    double gv[5][EV_MAXM];
    double *gdq = calloc((size_t)(M * M) + 1, sizeof *gdq);
    if (!rc && !gdq) rc = RDML_FAIL(d->ctx, RDML_ENOMEM, "out of memory");
    for (int k = 0; k < 5 && !rc && has_group; k++) {
        snprintf(p, sizeof p, "%s/%s", gg, names[k]);
        read_vec(d, p, gv[k], M < EV_MAXM ? M : EV_MAXM);
    }
    if (!rc && has_group) {
        snprintf(p, sizeof p, "%s/diff_q", gg);
        read_vec(d, p, gdq, M * M);
    } else if (!rc && S == 1) {
        snprintf(p, sizeof p, "%s/subj%02lld/%s/diff_q", g, (long long)subj[0], method);
        read_vec(d, p, gdq, M * M);
    } else if (gdq) {
        for (int64_t i = 0; i < M * M; i++) gdq[i] = NAN;
    }
    /* the table rows */
    char e1[700], e2[200];
    for (int64_t s = 0; s < S && !rc; s++)
        for (int64_t k = 0; k < M; k++) {
            fprintf(d->html, "<tr><td>%s</td><td>subj%02lld</td><td>%s</td><td>%s</td><td>",
                    rdml_html_esc(sel, e1, sizeof e1), (long long)subj[s], rdml_html_esc(models[k], e2, sizeof e2), method);
            rdml_rep_num(d->html, tab[0][s * M + k]);
            fputs("</td><td>[", d->html);
            rdml_rep_num(d->html, tab[1][s * M + k]);
            fputs(", ", d->html);
            rdml_rep_num(d->html, tab[2][s * M + k]);
            fputs("]</td><td>", d->html);
            rdml_rep_num(d->html, tab[3][s * M + k]);
            fputs("</td><td>", d->html);
            rdml_rep_num(d->html, tab[4][s * M + k]);
            fprintf(d->html, "%s</td><td>", tab[4][s * M + k] < alpha ? " *" : "");
            rdml_rep_num(d->html, nc[0]);
            fputs(" &ndash; ", d->html);
            rdml_rep_num(d->html, nc[1]);
            fputs("</td></tr>\n", d->html);
        }
    for (int64_t k = 0; k < M && !rc && has_group && k < EV_MAXM; k++) {
        fprintf(d->html, "<tr><td>%s</td><td>all (shared images)</td><td>%s</td><td>%s</td><td>",
                rdml_html_esc(sel, e1, sizeof e1), rdml_html_esc(models[k], e2, sizeof e2), method);
        rdml_rep_num(d->html, gv[0][k]);
        fputs("</td><td>[", d->html);
        rdml_rep_num(d->html, gv[1][k]);
        fputs(", ", d->html);
        rdml_rep_num(d->html, gv[2][k]);
        fputs("]</td><td>", d->html);
        rdml_rep_num(d->html, gv[3][k]);
        fputs("</td><td>", d->html);
        rdml_rep_num(d->html, gv[4][k]);
        fprintf(d->html, "%s</td><td>", gv[4][k] < alpha ? " *" : "");
        rdml_rep_num(d->html, nc[0]);
        fputs(" &ndash; ", d->html);
        rdml_rep_num(d->html, nc[1]);
        fputs("</td></tr>\n", d->html);
    }
    for (int k = 0; k < 5; k++) free(tab[k]);
    free(gdq);
    free(subj);
    rdml_rh5_free_names(models, (int)nm);
    return rc;
}

/* The model-comparison figure of a selection for a method. */
static int rdm_figure(rdml_rep *d, const char *sel, const char *method, double alpha) {
    char g[600], mg[700], p[900];
    snprintf(g, sizeof g, "/evaluate/rdm/%s", sel);
    snprintf(mg, sizeof mg, "%s/%s", g, method);
    if (!rdml_rh5_exists(d->r, mg)) return RDML_OK;
    ev_fig *f = calloc(1, sizeof *f);
    if (!f) return RDML_FAIL(d->ctx, RDML_ENOMEM, "out of memory for the comparison figure");
    int64_t nm = 0, ns = 0;
    snprintf(p, sizeof p, "%s/models", g);
    char **models = read_strs(d, p, &nm);
    int64_t *subj = NULL;
    rdml_ctx q;
    rdml_ctx_init(&q);
    snprintf(p, sizeof p, "%s/subjects", g);
    if (rdml_rh5_read_i64(&q, d->r, p, &subj, &ns)) ns = 0;
    int rc = RDML_OK;
    const int64_t M = nm, S = ns;
    double *sc = calloc((size_t)(S * M) + 1, sizeof *sc), *qq = calloc((size_t)(S * M) + 1, sizeof *qq);
    double *lo = calloc((size_t)(S * M) + 1, sizeof *lo), *hi = calloc((size_t)(S * M) + 1, sizeof *hi);
    double *dq = calloc((size_t)(M * M) + 1, sizeof *dq);
    if (!sc || !qq || !lo || !hi || !dq) rc = RDML_FAIL(d->ctx, RDML_ENOMEM, "out of memory");
    if (!rc && M > 0 && S > 0) {
        snprintf(p, sizeof p, "%s/score", mg);
        read_vec(d, p, sc, S * M);
        snprintf(p, sizeof p, "%s/q", mg);
        read_vec(d, p, qq, S * M);
        snprintf(p, sizeof p, "%s/ci_low", mg);
        read_vec(d, p, lo, S * M);
        snprintf(p, sizeof p, "%s/ci_high", mg);
        read_vec(d, p, hi, S * M);
        f->M = (int)(M < EV_MAXM ? M : EV_MAXM);
        f->S = (int)(S < EV_MAXS ? S : EV_MAXS);
        for (int k = 0; k < f->M; k++) rdml_strlcpy(f->models[k], models[k], sizeof f->models[k]);
        for (int s = 0; s < f->S; s++)
            for (int k = 0; k < f->M; k++) f->subj[s][k] = sc[s * M + k];
        char gg[800];
        snprintf(gg, sizeof gg, "%s/group/score", mg);
        const int has_group = rdml_rh5_exists(d->r, gg);
        const char *src;
        if (has_group) {
            /* the subjects together on the images they all saw */
            double gv[4][EV_MAXM];
            static const char *const nn[4] = {"score", "ci_low", "ci_high", "q"};
            for (int x = 0; x < 4; x++) {
                snprintf(p, sizeof p, "%s/group/%s", mg, nn[x]);
                read_vec(d, p, gv[x], f->M);
            }
            for (int k = 0; k < f->M; k++) {
                f->bar[k] = gv[0][k];
                f->lo[k] = gv[1][k];
                f->hi[k] = gv[2][k];
                f->star[k] = gv[3][k] < alpha;
            }
            snprintf(p, sizeof p, "%s/group/diff_q", mg);
            read_vec(d, p, dq, M * M);
            src = "the subjects together on the images they all saw (bars: mean score, interval from "
                  "the bootstrap of that analysis; stars and lines from its q values)";
        } else {
            /* one subject (or no shared images): the mean of the subjects, the first's interval */
            for (int k = 0; k < f->M; k++) {
                double s = 0;
                int n = 0, all = 1;
                for (int x = 0; x < S; x++) {
                    if (isfinite(sc[x * M + k])) s += sc[x * M + k], n++;
                    all &= qq[x * M + k] < alpha;
                }
                f->bar[k] = n ? s / n : NAN;
                f->lo[k] = S == 1 ? lo[k] : NAN;
                f->hi[k] = S == 1 ? hi[k] : NAN;
                f->star[k] = S > 0 && all;
            }
            snprintf(p, sizeof p, "%s/subj%02lld/%s/diff_q", g, (long long)subj[0], method);
            if (S == 1) read_vec(d, p, dq, M * M);
            else
                for (int64_t i = 0; i < M * M; i++) dq[i] = NAN;
            src = S == 1 ? "one subject (bar: its score and bootstrap interval)"
                         : "the mean of the subjects' scores (no group analysis: see the table; a star "
                           "when every subject's q < alpha)";
        }
        for (int a = 0; a < f->M; a++)
            for (int b = 0; b < f->M; b++) f->sig[a][b] = dq[a * M + b] < alpha;
        double nc[2];
        snprintf(p, sizeof p, "%s/noise_ceiling", mg);
        read_vec(d, p, nc, 2);
        f->nc_lo = nc[0];
        f->nc_hi = nc[1];
        char *why = rdml_rh5_str(d->r, p, "reason");
        snprintf(f->title, sizeof f->title, "%s: embedding model RDMs vs the brain RDM", sel);
        rdml_strlcpy(f->bar_label, has_group ? "all subjects (shared images), interval"
                                             : S == 1 ? "score, interval" : "mean over subjects",
                     sizeof f->bar_label);
        rdml_strlcpy(f->dot_label, "one subject (all its images)", sizeof f->dot_label);
        snprintf(f->ylabel, sizeof f->ylabel, "%s (model RDM vs brain RDM)", method_title(method));
        char name[400], safe[200], cap[3000], e1[700], ncs[800];
        rdml_report_safe_name(sel, safe, sizeof safe);
        snprintf(name, sizeof name, "fig_eval_%s_%s", safe, method);
        if (isfinite(nc[0]))
            snprintf(ncs, sizeof ncs, "the grey band is the noise ceiling (%.3f to %.3f, leave one subject "
                     "out on the %.0f images every subject saw)", nc[0], nc[1],
                     rdml_rh5_num(d->r, p, "n_images", NAN));
        else
            snprintf(ncs, sizeof ncs, "no noise ceiling: %s", why && *why ? rdml_html_esc(why, e1, sizeof e1) : "unavailable");
        char esel[700];
        char *metric = rdml_rh5_str(d->r, "/evaluate", "metric");
        snprintf(cap, sizeof cap,
                 "Model comparison for selection <code>%s</code> (%s, after rsatoolbox's "
                 "plot_model_comparison): each embedding's model RDM (%s distance) compared with the "
                 "brain RDM. Bars: %s. Dots: each subject's score on all its images. %s. A star marks a "
                 "model whose score is above 0 after correction (q &lt; %.3g, %s); a line joins two "
                 "models whose difference is significant after correction.",
                 rdml_html_esc(sel, esel, sizeof esel), method_title(method),
                 metric ? metric : "correlation", src, ncs, alpha, "permutation test, evaluate.correction");
        free(metric);
        free(why);
        int w, h;
        ev_fig_size(f, &w, &h);
        rc = rdml_rep_figure(d, name, w, h, draw_ev, f, cap);
    }
    free(sc);
    free(qq);
    free(lo);
    free(hi);
    free(dq);
    free(subj);
    rdml_rh5_free_names(models, (int)nm);
    free(f);
    return rc;
}

/* /evaluate/folds/<exp>/<sel>/<subj>: a figure of the models on the folds' test pairs (bars:
 * mean over subjects of the mean over folds; dots: every fold) and table rows. */
static int folds_selection(rdml_rep *d, const char *exp, const char *sel, const char *method,
                           double alpha, int draw) {
    char g[900], p[1400];
    snprintf(g, sizeof g, "/evaluate/folds/%s/%s", exp, sel);
    char **subs = NULL;
    int ns = 0;
    RDML_TRY(rdml_rh5_list(d->ctx, d->r, g, &subs, &ns));
    ev_fig *f = calloc(1, sizeof *f);
    int rc = f ? RDML_OK : RDML_FAIL(d->ctx, RDML_ENOMEM, "out of memory");
    int nsum[EV_MAXM] = {0};
    double ncs[2] = {0, 0};
    int nnc = 0, nfolds_all = 0;
    for (int i = 0; i < ns && !rc; i++) {
        char sg[1200];
        snprintf(sg, sizeof sg, "%s/%s", g, subs[i]);
        int64_t nm = 0;
        snprintf(p, sizeof p, "%s/models", sg);
        char **models = read_strs(d, p, &nm);
        snprintf(p, sizeof p, "%s/%s/score", sg, method);
        int nd = 0;
        int64_t dims[8] = {0};
        rdml_ctx q;
        rdml_ctx_init(&q);
        if (!models || !rdml_rh5_exists(d->r, p) || rdml_rh5_dims(&q, d->r, p, &nd, dims) || nd != 2) {
            rdml_rh5_free_names(models, (int)nm);
            continue;
        }
        const int64_t F = dims[0], C = dims[1];
        double *sc = calloc((size_t)(F * C) + 1, sizeof *sc), *qv = calloc((size_t)(F * C) + 1, sizeof *qv);
        double *nc = calloc((size_t)(2 * F) + 1, sizeof *nc), *mean = calloc((size_t)C + 1, sizeof *mean);
        double *sd = calloc((size_t)C + 1, sizeof *sd);
        if (!sc || !qv || !nc || !mean || !sd) rc = RDML_FAIL(d->ctx, RDML_ENOMEM, "out of memory");
        if (!rc) {
            read_vec(d, p, sc, F * C);
            snprintf(p, sizeof p, "%s/%s/q", sg, method);
            read_vec(d, p, qv, F * C);
            snprintf(p, sizeof p, "%s/%s/noise_ceiling", sg, method);
            read_vec(d, p, nc, 2 * F);
            snprintf(p, sizeof p, "%s/%s/mean", sg, method);
            read_vec(d, p, mean, C);
            snprintf(p, sizeof p, "%s/%s/std", sg, method);
            read_vec(d, p, sd, C);
        }
        if (!rc && f->M == 0) {
            f->M = (int)(C < EV_MAXM ? C : EV_MAXM);
            for (int k = 0; k < f->M; k++) rdml_strlcpy(f->models[k], models[k], sizeof f->models[k]);
        }
        for (int64_t fo = 0; fo < F && !rc; fo++)
            if (isfinite(nc[2 * fo]) && isfinite(nc[2 * fo + 1])) {
                ncs[0] += nc[2 * fo];
                ncs[1] += nc[2 * fo + 1];
                nnc++;
            }
        nfolds_all += (int)F;
        for (int64_t k = 0; k < C && !rc && !draw; k++) {
            char e1[700], e2[300];
            int nsig = 0, nf = 0;
            for (int64_t fo = 0; fo < F; fo++) {
                nsig += qv[fo * C + k] < alpha;
                nf += isfinite(sc[fo * C + k]);
            }
            fprintf(d->html, "<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>",
                    rdml_html_esc(exp, e2, sizeof e2), rdml_html_esc(sel, e1, sizeof e1), subs[i],
                    models[k], method);
            rdml_rep_pm(d->html, mean[k], sd[k]);
            fprintf(d->html, "</td><td>%d of %d</td><td>%d</td></tr>\n", nsig, nf, (int)F);
        }
        /* the figure: the subjects' fold scores as dots (at most EV_MAXS rows of dots) */
        for (int64_t fo = 0; fo < F && !rc && draw; fo++) {
            int row = f->S;
            if (row >= EV_MAXS) break;
            for (int k = 0; k < f->M; k++) f->subj[row][k] = k < C ? sc[fo * C + k] : NAN;
            f->S++;
        }
        for (int k = 0; k < f->M && k < C && !rc; k++)
            if (isfinite(mean[k])) {
                f->bar[k] += mean[k];
                nsum[k]++;
            }
        free(sc);
        free(qv);
        free(nc);
        free(mean);
        free(sd);
        rdml_rh5_free_names(models, (int)nm);
    }
    if (!rc && draw && f->M > 0) {
        for (int k = 0; k < f->M; k++) {
            f->bar[k] = nsum[k] ? f->bar[k] / nsum[k] : NAN;
            f->lo[k] = f->hi[k] = NAN;
        }
        f->nc_lo = nnc ? ncs[0] / nnc : NAN;
        f->nc_hi = nnc ? ncs[1] / nnc : NAN;
        snprintf(f->title, sizeof f->title, "%s, %s: every model on the outer folds' test pairs", exp, sel);
        rdml_strlcpy(f->bar_label, "mean over subjects and folds", sizeof f->bar_label);
        rdml_strlcpy(f->dot_label, "one fold of one subject", sizeof f->dot_label);
        snprintf(f->ylabel, sizeof f->ylabel, "%s (test pairs)", method_title(method));
        char name[600], s1[200], s2[200], cap[2400], e1[700], e2[300];
        rdml_report_safe_name(exp, s1, sizeof s1);
        rdml_report_safe_name(sel, s2, sizeof s2);
        snprintf(name, sizeof name, "fig_evalfolds_%s_%s_%s", s1, s2, method);
        snprintf(cap, sizeof cap,
                 "Experiment <code>%s</code>, selection <code>%s</code>: every model scored on the same "
                 "outer-fold test pairs against the brain RDM's values (%s): the experiment's pair "
                 "models (their test predictions), each embedding's model RDM (embedding:) and the "
                 "encoding model's predicted RDM (encode:). Bars: mean over subjects of the mean over "
                 "folds; dots: every fold of every subject (%d in all); grey band: the mean of the "
                 "folds' noise ceilings on their shared test images (%d folds have one). Per-fold "
                 "intervals, p and q: /evaluate/folds and the table.",
                 rdml_html_esc(exp, e2, sizeof e2), rdml_html_esc(sel, e1, sizeof e1), method_title(method),
                 nfolds_all, nnc);
        int w, h;
        ev_fig_size(f, &w, &h);
        rc = rdml_rep_figure(d, name, w, h, draw_ev, f, cap);
    }
    free(f);
    rdml_rh5_free_names(subs, ns);
    return rc;
}

int rdml_rep_evaluate(rdml_rep *d) {
    fputs("<section id=\"evaluate\"><h2>Model comparison (evaluate)</h2>\n", d->html);
    if (!rdml_rh5_exists(d->r, "/evaluate")) {
        fputs("<p class=\"absent\">No model comparison in this file (<code>rdmlearn evaluate</code>, "
              "docs/evaluate.md).</p>\n</section>\n", d->html);
        rdml_rep_absent(d, "the model comparison (/evaluate): run <code>rdmlearn evaluate</code>");
        return RDML_OK;
    }
    char *methods = rdml_rh5_str(d->r, "/evaluate", "methods");
    char *corr = rdml_rh5_str(d->r, "/evaluate", "correction");
    double alpha = rdml_rh5_num(d->r, "/evaluate", "alpha", 0.05);
    char *metric = rdml_rh5_str(d->r, "/evaluate", "metric");
    char method[32] = "spearman";
    if (methods) {
        size_t n = strcspn(methods, ",");
        snprintf(method, sizeof method, "%.*s", (int)(n < 31 ? n : 31), methods);
    }
    fprintf(d->html, "<p>Each embedding's model RDM (%s distance) against each subject's brain RDM "
            "by %s; intervals are percentile bootstrap intervals over images (%.0f samples, "
            "%.0f%%), p is the permutation test of score &gt; 0 (%.0f permutations), q the p-values "
            "corrected by %s across subjects x selections x models. The figures show the first method "
            "(%s); the tables hold every method of <code>evaluate.methods</code>.</p>\n",
            metric ? metric : "correlation",
            methods ? methods : "spearman", rdml_rh5_num(d->r, "/evaluate", "n_bootstrap", NAN),
            100 * rdml_rh5_num(d->r, "/evaluate", "ci", NAN),
            rdml_rh5_num(d->r, "/evaluate", "n_permutations", NAN), corr ? corr : "bh", method);
    char **sels = NULL;
    int nsel = 0, rc = rdml_rh5_list(d->ctx, d->r, "/evaluate/rdm", &sels, &nsel);
    for (int k = 0; k < nsel && !rc && k < d->p->max_rdm_figures; k++) rc = rdm_figure(d, sels[k], method, alpha);
    if (!rc && nsel) {
        rdml_rep_table_open(d, "Embedding model RDMs against the brain RDMs: score, percentile bootstrap "
                               "interval, permutation p and corrected q (a star: q &lt; alpha) per "
                               "subject, selection, model and method; rows \"all (shared images)\": the "
                               "subjects together on the images they all saw. Noise ceiling: lower "
                               "&ndash; upper.");
        fputs("<tr><th>selection</th><th>subject</th><th>model</th><th>method</th><th>score</th>"
              "<th>interval</th><th>p</th><th>q</th><th>noise ceiling</th></tr>\n", d->html);
        for (int k = 0; k < nsel && !rc; k++) {
            static const char *const ms[3] = {"spearman", "pearson", "kendall_tau_a"};
            for (int m = 0; m < 3 && !rc; m++) rc = rdm_selection(d, sels[k], ms[m], alpha);
        }
        rdml_rep_table_close(d);
    }
    rdml_rh5_free_names(sels, nsel);
    /* the folds */
    char **exps = NULL;
    int nexp = 0;
    if (!rc) rc = rdml_rh5_list(d->ctx, d->r, "/evaluate/folds", &exps, &nexp);
    int nfig = 0;
    for (int x = 0; x < nexp && !rc; x++) {
        char g[600];
        snprintf(g, sizeof g, "/evaluate/folds/%s", exps[x]);
        char **ss = NULL;
        int nss = 0;
        rc = rdml_rh5_list(d->ctx, d->r, g, &ss, &nss);
        for (int k = 0; k < nss && !rc && nfig < d->p->max_rdm_figures; k++, nfig++)
            rc = folds_selection(d, exps[x], ss[k], method, alpha, 1);
        rdml_rh5_free_names(ss, nss);
    }
    if (!rc && nexp) {
        rdml_rep_table_open(d, "Every model on the same outer-fold test pairs: mean &plusmn; std over "
                               "the folds of the score against the brain RDM's values of the test "
                               "pairs, and in how many folds the score is above 0 after correction "
                               "(q &lt; alpha).");
        fputs("<tr><th>experiment</th><th>selection</th><th>subject</th><th>model</th><th>method</th>"
              "<th>score (mean &plusmn; std over folds)</th><th>folds with q &lt; alpha</th><th>folds</th></tr>\n",
              d->html);
        for (int x = 0; x < nexp && !rc; x++) {
            char g[600];
            snprintf(g, sizeof g, "/evaluate/folds/%s", exps[x]);
            char **ss = NULL;
            int nss = 0;
            rc = rdml_rh5_list(d->ctx, d->r, g, &ss, &nss);
            static const char *const ms[3] = {"spearman", "pearson", "kendall_tau_a"};
            for (int k = 0; k < nss && !rc; k++)
                for (int m = 0; m < 3 && !rc; m++) rc = folds_selection(d, exps[x], ss[k], ms[m], alpha, 0);
            rdml_rh5_free_names(ss, nss);
        }
        rdml_rep_table_close(d);
    }
    rdml_rh5_free_names(exps, nexp);
    free(methods);
    free(corr);
    free(metric);
    fputs("</section>\n", d->html);
    return rc;
}
