/* The report's layer curves (issue 17: models and layers as a sweep axis). Per selection (ROI),
 * a figure of score against layer depth, one line per network (the embeddings' `architecture`
 * attribute), in one panel per source that scores embeddings:
 *   - each pair model's sweep table with an embedding column (pairs.embeddings; /sweep/<exp>/
 *     <model>/tasks: the first metric, accuracy or R^2, mean +- std over subjects x folds);
 *   - the evaluate stage's embedding RDMs against the brain RDM (/evaluate/rdm/<selection>/
 *     <first method>: the subjects' group score with its bootstrap interval, or one subject's);
 *   - the encode stage's median test r over the selection's vertices (/encode/<embedding>/
 *     subjNN/<selection>/roi_summary, the selection row; mean over subjects).
 * x is the layer's relative depth (the embedding's relative_depth attribute: depth / (modules
 * - 1); for files without it, depth / the largest depth of that network's embeddings), and the
 * layer names are the tick labels where they fit. A table per selection gives the numbers.
 * Nothing is written when no source scores two or more embeddings with a depth. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report/report_priv.h"

#define LMAX 128 /* embeddings */
#define PMAX 6   /* panels per figure */
#define SMAX 16  /* selections */

typedef struct lemb {
    char name[160], arch[64], layer[64];
    double depth, rel, x;
} lemb;

typedef struct lpanel {
    char title[200], ylabel[80];
    double y[LMAX], lo[LMAX], hi[LMAX];
} lpanel;

typedef struct lfig {
    const lemb *E;
    int ne;
    int np;
    lpanel p[PMAX];
    char sel[128];
} lfig;

typedef struct lstate {
    lemb E[LMAX];
    int ne;
    char sel[SMAX][128];
    int nsel;
} lstate;

static int emb_index(lstate *s, const char *name, int add) {
    for (int i = 0; i < s->ne; i++)
        if (!strcmp(s->E[i].name, name)) return i;
    if (!add || s->ne >= LMAX || !*name) return -1;
    lemb *e = &s->E[s->ne];
    memset(e, 0, sizeof *e);
    rdml_strlcpy(e->name, name, sizeof e->name);
    e->depth = e->rel = e->x = NAN;
    return s->ne++;
}

static int sel_index(lstate *s, const char *sel, int add) {
    for (int i = 0; i < s->nsel; i++)
        if (!strcmp(s->sel[i], sel)) return i;
    if (!add || s->nsel >= SMAX) return -1;
    rdml_strlcpy(s->sel[s->nsel], sel, sizeof s->sel[0]);
    return s->nsel++;
}

/* The embeddings' attributes from the first subject that has them. */
static void describe(rdml_rep *d, lstate *s) {
    rdml_ctx q;
    rdml_ctx_init(&q);
    char **subs = NULL;
    int ns = 0;
    if (rdml_rh5_list(&q, d->r, "/subjects", &subs, &ns)) return;
    for (int i = 0; i < s->ne; i++) {
        lemb *e = &s->E[i];
        for (int k = 0; k < ns; k++) {
            char p[600];
            snprintf(p, sizeof p, "/subjects/%s/embeddings/%s", subs[k], e->name);
            if (!rdml_rh5_exists(d->r, p)) continue;
            char *a = rdml_rh5_str(d->r, p, "architecture"), *l = rdml_rh5_str(d->r, p, "layer");
            rdml_strlcpy(e->arch, a && *a ? a : e->name, sizeof e->arch);
            rdml_strlcpy(e->layer, l && *l ? l : e->name, sizeof e->layer);
            free(a);
            free(l);
            e->depth = rdml_rh5_num(d->r, p, "depth", NAN);
            e->rel = rdml_rh5_num(d->r, p, "relative_depth", NAN);
            break;
        }
        if (!e->arch[0]) rdml_strlcpy(e->arch, e->name, sizeof e->arch);
        if (!e->layer[0]) rdml_strlcpy(e->layer, e->name, sizeof e->layer);
    }
    rdml_rh5_free_names(subs, ns);
    /* x: the relative depth, else depth / the network's largest depth here */
    for (int i = 0; i < s->ne; i++) {
        lemb *e = &s->E[i];
        if (isfinite(e->rel)) {
            e->x = e->rel;
            continue;
        }
        double mx = 0;
        for (int j = 0; j < s->ne; j++)
            if (!strcmp(s->E[j].arch, e->arch) && isfinite(s->E[j].depth) && s->E[j].depth > mx)
                mx = s->E[j].depth;
        if (isfinite(e->depth)) e->x = mx > 0 ? e->depth / mx : 0;
    }
}

static void draw_layers(cairo_t *cr, void *user) {
    const lfig *f = user;
    const int ph = 280, top = 20;
    /* series: the distinct architectures, in order of appearance */
    const char *arch[LMAX];
    int na = 0;
    for (int i = 0; i < f->ne; i++) {
        int k = 0;
        while (k < na && strcmp(arch[k], f->E[i].arch)) k++;
        if (k == na) arch[na++] = f->E[i].arch;
    }
    for (int p = 0; p < f->np; p++) {
        const lpanel *P = &f->p[p];
        double lo = INFINITY, hi = -INFINITY;
        for (int i = 0; i < f->ne; i++) {
            double v[3] = {P->y[i], P->lo[i], P->hi[i]};
            for (int t = 0; t < 3; t++)
                if (isfinite(v[t]) && isfinite(f->E[i].x)) {
                    lo = v[t] < lo ? v[t] : lo;
                    hi = v[t] > hi ? v[t] : hi;
                }
        }
        if (!isfinite(lo)) lo = 0, hi = 1;
        rdml_plot_nice_range(&lo, &hi);
        rdml_plot_axes a = {80, top + p * (ph + 110) + 30, 560, ph, -0.05, 1.05, lo, hi};
        rdml_plot_frame(cr, &a, "", P->ylabel, P->title, 0);
        if (p == f->np - 1) { /* below the rotated layer names */
            cairo_set_source_rgb(cr, 0, 0, 0);
            rdml_plot_text(cr, a.x + a.w / 2, a.y + a.h + 78, "relative layer depth (0 = first "
                           "module, 1 = last); layer names in their network's colour", 12, 0.5, 0, 0);
        }
        double lastx = -1e9;
        /* tick labels: every point's layer name in its network's colour, where it fits */
        int order[LMAX], n = 0;
        for (int i = 0; i < f->ne; i++)
            if (isfinite(f->E[i].x) && isfinite(P->y[i])) order[n++] = i;
        for (int i = 1; i < n; i++) /* by x (insertion sort: few points) */
            for (int j = i; j > 0 && f->E[order[j]].x < f->E[order[j - 1]].x; j--) {
                int t = order[j];
                order[j] = order[j - 1];
                order[j - 1] = t;
            }
        for (int i = 0; i < n; i++) {
            const lemb *e = &f->E[order[i]];
            double px = rdml_plot_px(&a, e->x);
            if (px - lastx < 12) continue;
            int k = 0;
            while (k < na && strcmp(arch[k], e->arch)) k++;
            double rgb[3];
            rdml_plot_series_color(k, rgb);
            rdml_plot_set_rgb(cr, rgb);
            rdml_plot_text(cr, px, a.y + a.h + 6, e->layer, 9.5, 1, 0.5, M_PI / 4);
            cairo_set_source_rgba(cr, 0.5, 0.5, 0.5, 0.6);
            cairo_set_line_width(cr, 0.8);
            cairo_move_to(cr, px, a.y + a.h);
            cairo_line_to(cr, px, a.y + a.h + 4);
            cairo_stroke(cr);
            lastx = px;
        }
        rdml_plot_legend_item it[16];
        int nit = 0;
        for (int k = 0; k < na; k++) {
            double rgb[3];
            rdml_plot_series_color(k, rgb);
            int m = 0, idx[LMAX];
            for (int t = 0; t < n; t++)
                if (!strcmp(f->E[order[t]].arch, arch[k])) idx[m++] = order[t];
            if (!m) continue;
            rdml_plot_set_rgb(cr, rgb);
            cairo_set_line_width(cr, 2);
            for (int t = 0; t < m; t++) {
                double px = rdml_plot_px(&a, f->E[idx[t]].x), py = rdml_plot_py(&a, P->y[idx[t]]);
                if (t == 0) cairo_move_to(cr, px, py);
                else cairo_line_to(cr, px, py);
            }
            cairo_stroke(cr);
            for (int t = 0; t < m; t++) {
                const int i = idx[t];
                double px = rdml_plot_px(&a, f->E[i].x), py = rdml_plot_py(&a, P->y[i]);
                if (isfinite(P->lo[i]) && isfinite(P->hi[i])) {
                    cairo_set_line_width(cr, 1.2);
                    cairo_move_to(cr, px, rdml_plot_py(&a, P->lo[i]));
                    cairo_line_to(cr, px, rdml_plot_py(&a, P->hi[i]));
                    cairo_move_to(cr, px - 3, rdml_plot_py(&a, P->lo[i]));
                    cairo_line_to(cr, px + 3, rdml_plot_py(&a, P->lo[i]));
                    cairo_move_to(cr, px - 3, rdml_plot_py(&a, P->hi[i]));
                    cairo_line_to(cr, px + 3, rdml_plot_py(&a, P->hi[i]));
                    cairo_stroke(cr);
                }
                cairo_arc(cr, px, py, 3.5, 0, 2 * M_PI);
                cairo_fill(cr);
            }
            if (nit < 16) {
                it[nit].label = arch[k];
                memcpy(it[nit].rgb, rgb, sizeof rgb);
                it[nit].style = 1;
                nit++;
            }
        }
        rdml_plot_legend(cr, a.x + a.w + 12, a.y + 4, it, nit);
    }
}

/* Mean and population std of the finite values. */
static void mean_std(const double *v, int n, double *m, double *sd) {
    double s = 0, ss = 0;
    int k = 0;
    for (int i = 0; i < n; i++)
        if (isfinite(v[i])) s += v[i], k++;
    *m = *sd = NAN;
    if (!k) return;
    *m = s / k;
    for (int i = 0; i < n; i++)
        if (isfinite(v[i])) ss += (v[i] - *m) * (v[i] - *m);
    *sd = sqrt(ss / k);
}

/* One source's values for every embedding and selection: val[sel][emb] (mean), lo/hi. */
typedef struct lsource {
    char title[200], ylabel[80], what[120];
    int band;  /* lo/hi are an interval (1) or mean +- std (0) */
    double val[SMAX][LMAX], lo[SMAX][LMAX], hi[SMAX][LMAX];
} lsource;

static void source_init(lsource *S) {
    for (int i = 0; i < SMAX; i++)
        for (int j = 0; j < LMAX; j++) S->val[i][j] = S->lo[i][j] = S->hi[i][j] = NAN;
}

/* A pair model's sweep table with an embedding column. Returns 1 when it gave any value. */
static int sweep_source(rdml_rep *d, lstate *st, const char *base, lsource *S) {
    rdml_ctx q;
    rdml_ctx_init(&q);
    char p[800];
    snprintf(p, sizeof p, "%s/tasks/embedding", base);
    if (!rdml_rh5_exists(d->r, p)) return 0;
    char **emb = NULL, **sel = NULL, *cols = NULL;
    int64_t ne = 0, nsl = 0, nv = 0;
    double *v = NULL;
    int nd = 0, got = 0;
    int64_t dims[8] = {0};
    if (rdml_rh5_read_strings(&q, d->r, p, &emb, &ne)) return 0;
    snprintf(p, sizeof p, "%s/tasks/selection", base);
    int bad = rdml_rh5_read_strings(&q, d->r, p, &sel, &nsl);
    snprintf(p, sizeof p, "%s/tasks/metrics", base);
    if (!bad) bad = rdml_rh5_dims(&q, d->r, p, &nd, dims) || rdml_rh5_read_f64(&q, d->r, p, &v, &nv);
    if (!bad) cols = rdml_rh5_str(d->r, p, "columns");
    const int64_t T = dims[0], M = nd == 2 ? dims[1] : 1;
    int distinct = 0;
    for (int64_t t = 0; !bad && t < ne; t++) {
        int seen = 0;
        for (int64_t u = 0; u < t && !seen; u++) seen = !strcmp(emb[u], emb[t]);
        distinct += !seen && *emb[t];
    }
    if (!bad && ne == T && nsl == T && distinct >= 2) {
        char metric[64] = "score";
        if (cols) {
            char *c = strchr(cols, ',');
            if (c) *c = 0;
            rdml_strlcpy(metric, cols, sizeof metric);
        }
        snprintf(S->title, sizeof S->title, "pair model %s: test %s", base + strlen("/sweep/"), metric);
        snprintf(S->ylabel, sizeof S->ylabel, "test %s", metric);
        snprintf(S->what, sizeof S->what, "%s (mean &plusmn; std over subjects x folds)", metric);
        double *buf = malloc((size_t)(T + 1) * sizeof *buf);
        char *vis = calloc(SMAX * LMAX, 1);
        for (int64_t t = 0; buf && vis && t < T; t++) {
            int e = emb_index(st, emb[t], 1), s = sel_index(st, sel[t], 1);
            if (e < 0 || s < 0 || vis[s * LMAX + e]) continue;
            vis[s * LMAX + e] = 1;
            int k = 0;
            for (int64_t u = t; u < T; u++)
                if (!strcmp(emb[u], emb[t]) && !strcmp(sel[u], sel[t])) buf[k++] = v[u * M];
            double m, sd;
            mean_std(buf, k, &m, &sd);
            S->val[s][e] = m;
            S->lo[s][e] = m - sd;
            S->hi[s][e] = m + sd;
            got = 1;
        }
        free(buf);
        free(vis);
    }
    rdml_rh5_free_names(emb, (int)ne);
    rdml_rh5_free_names(sel, (int)nsl);
    free(v);
    free(cols);
    return got;
}

/* /evaluate/rdm/<selection>/<method>: the group score (or the subjects' mean). */
static int evaluate_source(rdml_rep *d, lstate *st, lsource *S) {
    rdml_ctx q;
    rdml_ctx_init(&q);
    if (!rdml_rh5_exists(d->r, "/evaluate/rdm")) return 0;
    char *methods = rdml_rh5_str(d->r, "/evaluate", "methods");
    char method[64] = "spearman";
    if (methods) {
        char *c = strchr(methods, ',');
        if (c) *c = 0;
        rdml_strlcpy(method, methods, sizeof method);
    }
    free(methods);
    char **sels = NULL;
    int ns = 0, got = 0;
    if (rdml_rh5_list(&q, d->r, "/evaluate/rdm", &sels, &ns)) return 0;
    for (int k = 0; k < ns; k++) {
        char g[600], p[800];
        snprintf(g, sizeof g, "/evaluate/rdm/%s", sels[k]);
        char **models = NULL;
        int64_t nm = 0;
        snprintf(p, sizeof p, "%s/models", g);
        if (rdml_rh5_read_strings(&q, d->r, p, &models, &nm)) continue;
        double *sc = NULL, *lo = NULL, *hi = NULL;
        int64_t n1 = 0, n2 = 0, n3 = 0;
        const char *part = "group/";
        snprintf(p, sizeof p, "%s/%s/group/score", g, method);
        if (!rdml_rh5_exists(d->r, p)) part = "";
        snprintf(p, sizeof p, "%s/%s/%sscore", g, method, part);
        int bad = rdml_rh5_read_f64(&q, d->r, p, &sc, &n1);
        snprintf(p, sizeof p, "%s/%s/%sci_low", g, method, part);
        if (!bad) bad = rdml_rh5_read_f64(&q, d->r, p, &lo, &n2);
        snprintf(p, sizeof p, "%s/%s/%sci_high", g, method, part);
        if (!bad) bad = rdml_rh5_read_f64(&q, d->r, p, &hi, &n3);
        if (!bad && nm > 0 && n1 % nm == 0 && n1 == n2 && n1 == n3) {
            const int64_t S_ = n1 / nm;
            int s = sel_index(st, sels[k], 1);
            for (int64_t m = 0; s >= 0 && m < nm; m++) {
                int e = emb_index(st, models[m], 1);
                if (e < 0) continue;
                double a = 0, b = 0, c = 0;
                for (int64_t r = 0; r < S_; r++) a += sc[r * nm + m], b += lo[r * nm + m], c += hi[r * nm + m];
                S->val[s][e] = a / (double)S_;
                S->lo[s][e] = S_ == 1 ? b : NAN; /* an interval of one subject or the group */
                S->hi[s][e] = S_ == 1 ? c : NAN;
                got = 1;
            }
            snprintf(S->title, sizeof S->title, "embedding RDM vs brain RDM (evaluate, %s)", method);
            snprintf(S->ylabel, sizeof S->ylabel, "RDM %s", method);
            snprintf(S->what, sizeof S->what, "RDM %s, %s", method,
                     *part ? "the subjects together (bootstrap interval)"
                     : S_ == 1 ? "one subject (bootstrap interval)" : "the subjects' mean");
            S->band = 1;
        }
        free(sc);
        free(lo);
        free(hi);
        rdml_rh5_free_names(models, (int)nm);
    }
    rdml_rh5_free_names(sels, ns);
    return got;
}

/* /encode/<embedding>/subjNN/<selection>/roi_summary: the selection row's median r. */
static int encode_source(rdml_rep *d, lstate *st, lsource *S) {
    rdml_ctx q;
    rdml_ctx_init(&q);
    char **embs = NULL;
    int ne = 0, got = 0;
    if (!rdml_rh5_exists(d->r, "/encode") || rdml_rh5_list(&q, d->r, "/encode", &embs, &ne)) return 0;
    static double acc[SMAX][LMAX], cnt[SMAX][LMAX], acc2[SMAX][LMAX];
    memset(acc, 0, sizeof acc);
    memset(cnt, 0, sizeof cnt);
    memset(acc2, 0, sizeof acc2);
    for (int i = 0; i < ne; i++) {
        char g[600];
        snprintf(g, sizeof g, "/encode/%s", embs[i]);
        char **subs = NULL;
        int ns = 0;
        if (rdml_rh5_list(&q, d->r, g, &subs, &ns)) continue;
        for (int j = 0; j < ns; j++) {
            char gs[800];
            snprintf(gs, sizeof gs, "%s/%s", g, subs[j]);
            char **sels = NULL;
            int nl = 0;
            if (rdml_rh5_list(&q, d->r, gs, &sels, &nl)) continue;
            for (int k = 0; k < nl; k++) {
                char p[1200];
                double *mr = NULL;
                int64_t n = 0;
                snprintf(p, sizeof p, "%s/%s/roi_summary/median_r", gs, sels[k]);
                if (!rdml_rh5_exists(d->r, p) || rdml_rh5_read_f64(&q, d->r, p, &mr, &n) || n < 1) {
                    free(mr);
                    continue;
                }
                int e = emb_index(st, embs[i], 1), s = sel_index(st, sels[k], 1);
                if (e >= 0 && s >= 0 && isfinite(mr[n - 1])) {
                    acc[s][e] += mr[n - 1];
                    acc2[s][e] += mr[n - 1] * mr[n - 1];
                    cnt[s][e]++;
                }
                free(mr);
            }
            rdml_rh5_free_names(sels, nl);
        }
        rdml_rh5_free_names(subs, ns);
    }
    rdml_rh5_free_names(embs, ne);
    for (int s = 0; s < SMAX; s++)
        for (int e = 0; e < LMAX; e++)
            if (cnt[s][e] > 0) {
                double m = acc[s][e] / cnt[s][e], var = acc2[s][e] / cnt[s][e] - m * m;
                double sd = cnt[s][e] > 1 && var > 0 ? sqrt(var) : NAN;
                S->val[s][e] = m;
                S->lo[s][e] = m - sd;
                S->hi[s][e] = m + sd;
                got = 1;
            }
    snprintf(S->title, sizeof S->title, "encoding models (encode): median test r over the vertices");
    snprintf(S->ylabel, sizeof S->ylabel, "median test r");
    snprintf(S->what, sizeof S->what, "encoding median r (mean &plusmn; std over subjects)");
    return got;
}

int rdml_rep_layers(rdml_rep *d) {
    lstate *st = calloc(1, sizeof *st);
    lsource *src = calloc(PMAX, sizeof *src);
    lfig *fig = calloc(1, sizeof *fig);
    if (!st || !src || !fig) {
        free(st);
        free(src);
        free(fig);
        return RDML_FAIL(d->ctx, RDML_ENOMEM, "out of memory for the layer curves");
    }
    int nsrc = 0, rc = RDML_OK;
    rdml_ctx q;
    rdml_ctx_init(&q);
    /* the pair models' sweep tables */
    char **exps = NULL;
    int nx = 0;
    if (!rdml_rh5_list(&q, d->r, "/sweep", &exps, &nx)) {
        for (int i = 0; i < nx && nsrc < PMAX - 2; i++) {
            char g[600];
            snprintf(g, sizeof g, "/sweep/%s", exps[i]);
            char **mods = NULL;
            int nm = 0;
            if (rdml_rh5_list(&q, d->r, g, &mods, &nm)) continue;
            for (int k = 0; k < nm && nsrc < PMAX - 2; k++) {
                char base[800];
                snprintf(base, sizeof base, "%s/%s", g, mods[k]);
                source_init(&src[nsrc]);
                if (sweep_source(d, st, base, &src[nsrc])) nsrc++;
            }
            rdml_rh5_free_names(mods, nm);
        }
        rdml_rh5_free_names(exps, nx);
    }
    source_init(&src[nsrc]);
    if (evaluate_source(d, st, &src[nsrc])) nsrc++;
    source_init(&src[nsrc]);
    if (encode_source(d, st, &src[nsrc])) nsrc++;
    describe(d, st);
    /* shown when a source scores two or more embeddings with a depth in some selection */
    int show = 0;
    for (int k = 0; k < nsrc && !show; k++)
        for (int s = 0; s < st->nsel && !show; s++) {
            int n = 0;
            for (int e = 0; e < st->ne; e++) n += isfinite(st->E[e].x) && isfinite(src[k].val[s][e]);
            show = n >= 2;
        }
    if (show) {
        fputs("<section id=\"layers\"><h2>Layer curves: score against layer depth</h2>\n"
              "<p>Every embedding with a layer (the <code>architecture</code>, <code>layer</code> "
              "and <code>depth</code> attributes the embed stage writes for each of "
              "<code>embed.layers</code>), scored by each source in the file, per selection: the "
              "pair models fitted per embedding (<code>pairs.embeddings</code>, docs/run.md), "
              "the embedding RDMs against the brain RDMs (evaluate) and the encoding models "
              "(encode). One line per network; x is the layer's relative depth in its network "
              "(0 = first module, 1 = last), the layer names below in the network's colour "
              "where they fit.</p>\n", d->html);
        int order[LMAX];
        for (int e = 0; e < st->ne; e++) order[e] = e;
        for (int i = 1; i < st->ne; i++) /* network, then depth */
            for (int j = i; j > 0; j--) {
                const lemb *a = &st->E[order[j - 1]], *b = &st->E[order[j]];
                int c = strcmp(a->arch, b->arch);
                if (c < 0 || (c == 0 && !(b->x < a->x))) break;
                int t = order[j];
                order[j] = order[j - 1];
                order[j - 1] = t;
            }
        for (int s = 0; s < st->nsel && !rc; s++) {
            char e1[300], name[300], safe[200], cap[2400];
            fprintf(d->html, "<h3>Selection %s</h3>\n", rdml_html_esc(st->sel[s], e1, sizeof e1));
            memset(fig, 0, sizeof *fig);
            fig->E = st->E;
            fig->ne = st->ne;
            rdml_strlcpy(fig->sel, st->sel[s], sizeof fig->sel);
            for (int k = 0; k < nsrc; k++) {
                int n = 0;
                for (int e = 0; e < st->ne; e++) n += isfinite(st->E[e].x) && isfinite(src[k].val[s][e]);
                if (n < 1) continue;
                lpanel *P = &fig->p[fig->np++];
                snprintf(P->title, sizeof P->title, "%s: %s", st->sel[s], src[k].title);
                rdml_strlcpy(P->ylabel, src[k].ylabel, sizeof P->ylabel);
                memcpy(P->y, src[k].val[s], sizeof P->y);
                memcpy(P->lo, src[k].lo[s], sizeof P->lo);
                memcpy(P->hi, src[k].hi[s], sizeof P->hi);
            }
            if (fig->np == 0) continue;
            rdml_report_safe_name(st->sel[s], safe, sizeof safe);
            snprintf(name, sizeof name, "layers_%s", safe);
            snprintf(cap, sizeof cap,
                     "Score against layer depth, selection %s: one line per network, one panel "
                     "per source (pair models: mean &plusmn; std over subjects x folds of the "
                     "first metric of the sweep table; evaluate: the embedding RDM's correlation "
                     "with the brain RDM and its bootstrap interval; encode: the median test r "
                     "over the selection's vertices). Table %d lists the values.",
                     e1, d->ntab + 1);
            rc = rdml_rep_figure(d, name, 800, 60 + fig->np * 390, draw_layers, fig, cap);
            if (rc) break;
            snprintf(cap, sizeof cap, "Layer scores, selection %s (NaN: the source did not score "
                     "that embedding).", e1);
            rdml_rep_table_open(d, cap);
            fputs("<tr><th>network</th><th>layer</th><th>embedding</th><th>depth</th>"
                  "<th>relative depth</th>", d->html);
            for (int k = 0; k < nsrc; k++) fprintf(d->html, "<th>%s</th>", src[k].what);
            fputs("</tr>\n", d->html);
            for (int t = 0; t < st->ne; t++) {
                const lemb *e = &st->E[order[t]];
                int any = 0;
                for (int k = 0; k < nsrc; k++) any |= isfinite(src[k].val[s][order[t]]);
                if (!any) continue;
                fputs("<tr><td>", d->html);
                rdml_html_escape(d->html, e->arch);
                fputs("</td><td>", d->html);
                rdml_html_escape(d->html, e->layer);
                fputs("</td><td><code>", d->html);
                rdml_html_escape(d->html, e->name);
                fputs("</code></td><td>", d->html);
                if (isfinite(e->depth)) fprintf(d->html, "%.0f", e->depth);
                else fputs("n/a", d->html);
                fputs("</td><td>", d->html);
                rdml_rep_num(d->html, e->x);
                fputs("</td>", d->html);
                for (int k = 0; k < nsrc; k++) {
                    const double v = src[k].val[s][order[t]], lo = src[k].lo[s][order[t]],
                                 hi = src[k].hi[s][order[t]];
                    fputs("<td>", d->html);
                    if (src[k].band) {
                        rdml_rep_num(d->html, v);
                        if (isfinite(lo) && isfinite(hi)) {
                            fputs(" [", d->html);
                            rdml_rep_num(d->html, lo);
                            fputs(", ", d->html);
                            rdml_rep_num(d->html, hi);
                            fputs("]", d->html);
                        }
                    } else {
                        rdml_rep_pm(d->html, v, isfinite(hi) ? (hi - lo) / 2 : NAN);
                    }
                    fputs("</td>", d->html);
                }
                fputs("</tr>\n", d->html);
            }
            rdml_rep_table_close(d);
        }
        fputs("</section>\n", d->html);
    }
    free(st);
    free(src);
    free(fig);
    return rc;
}
