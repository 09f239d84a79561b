/* Internals of the report module: a serial read-only view of a results file (rank 0 reads,
 * nothing is collective), the plotting primitives drawn with cairo (one drawing function
 * renders both the SVG and the PNG of a figure, at the same size), and the RDM downsampling
 * rule. Tests include this header directly. */
#ifndef RDML_REPORT_PRIV_H
#define RDML_REPORT_PRIV_H

#include <cairo.h>
#include <stdint.h>
#include <stdio.h>

#include "rdml/core.h"
#include "rdml/png.h"

/* ---- read-only results file (serial HDF5, no MPI) ---- */
typedef struct rdml_rh5 rdml_rh5;

/* Open read-only. Errors name the file: missing (RDML_EIO), not HDF5 or truncated
 * (RDML_EFORMAT). */
int rdml_rh5_open(rdml_ctx *ctx, const char *path, rdml_rh5 **out);
void rdml_rh5_close(rdml_rh5 **r);
const char *rdml_rh5_path(const rdml_rh5 *r);
/* 1 when every component of `obj` exists (group or dataset), else 0. Never fails. */
int rdml_rh5_exists(const rdml_rh5 *r, const char *obj);
/* Names of the links in a group, sorted by name; free with rdml_rh5_free_names. A missing
 * group gives n = 0 and no error. */
int rdml_rh5_list(rdml_ctx *ctx, const rdml_rh5 *r, const char *group, char ***names, int *n);
void rdml_rh5_free_names(char **names, int n);
/* Is the object a dataset (1), a group (0), or absent / other (-1)? */
int rdml_rh5_kind(const rdml_rh5 *r, const char *obj);
/* Rank and dims (room for 8). */
int rdml_rh5_dims(rdml_ctx *ctx, const rdml_rh5 *r, const char *dset, int *ndim, int64_t *dims);
/* Whole numeric dataset converted to double / int64; *out malloc'd (at least 1 element),
 * *count = number of values. */
int rdml_rh5_read_f64(rdml_ctx *ctx, const rdml_rh5 *r, const char *dset, double **out,
                      int64_t *count);
int rdml_rh5_read_i64(rdml_ctx *ctx, const rdml_rh5 *r, const char *dset, int64_t **out,
                      int64_t *count);
/* Rows [row_lo, row_lo + nrows) of a 2-D numeric dataset with `cols` columns, as float. */
int rdml_rh5_read_rows_f32(rdml_ctx *ctx, const rdml_rh5 *r, const char *dset, int64_t row_lo,
                           int64_t nrows, int64_t cols, float *out);
/* 1-D string dataset; free with rdml_rh5_free_names((char **)*strs, (int)*n). */
int rdml_rh5_read_strings(rdml_ctx *ctx, const rdml_rh5 *r, const char *dset, char ***strs,
                          int64_t *n);
/* Attribute helpers that never fail: the first value of a numeric attribute or `dflt` when
 * it is absent or not numeric; a malloc'd copy of a string attribute (numbers are formatted)
 * or NULL. */
double rdml_rh5_num(const rdml_rh5 *r, const char *obj, const char *name, double dflt);
char *rdml_rh5_str(const rdml_rh5 *r, const char *obj, const char *name);
/* Names of the attributes of an object, in name order (free with rdml_rh5_free_names). */
int rdml_rh5_attr_names(rdml_ctx *ctx, const rdml_rh5 *r, const char *obj, char ***names,
                        int *n);

/* ---- RDM downsampling ----
 * The rule: an n x n RDM with n > maxdim is shown as m x m blocks of f x f entries, with
 * f = ceil(n / maxdim) and m = ceil(n / f) (the last block row/column holds the remaining
 * n - (m - 1) f entries); each block shows the mean of its entries (continuous panel) and
 * the share of its entries above the threshold (binary panel). With n <= maxdim, f = 1 and
 * the blocks are the entries themselves (the binary share is then 0 or 1). */
typedef struct rdml_blocks {
    int64_t n, f, m;  /* input size, block edge, output size */
    double threshold; /* entries > threshold count as dissimilar */
    double *sum;      /* m x m: sums of block entries */
    double *above;    /* m x m: counts of entries > threshold */
    double *count;    /* m x m: entries seen */
    const int64_t *pos; /* display position of each row / column (n), or NULL: file order */
} rdml_blocks;

int64_t rdml_report_block_edge(int64_t n, int64_t maxdim);
int rdml_blocks_init(rdml_ctx *ctx, rdml_blocks *b, int64_t n, int64_t maxdim, double threshold);
/* Add rows [row_lo, row_lo + nrows) of the RDM (nrows x n, row-major). Non-finite entries
 * are skipped (not counted). With b->pos set, entry (i, j) falls into the block of the
 * positions (pos[i], pos[j]): the blocks are those of the reordered matrix. */
void rdml_blocks_add_rows(rdml_blocks *b, const float *rows, int64_t row_lo, int64_t nrows);
/* Means and above-threshold shares, m x m float (NaN for a block with no finite entry). */
int rdml_blocks_finish(rdml_ctx *ctx, const rdml_blocks *b, float **mean, float **share);
void rdml_blocks_free(rdml_blocks *b);

/* ---- the order of an RDM's images ----
 * Leaves of the average-linkage (UPGMA) clustering of the RDM, exactly as
 * scipy.cluster.hierarchy.leaves_list(linkage(squareform(R), 'average')) orders them.
 * D: the condensed upper triangle (n (n - 1) / 2 doubles, scipy's order: (0,1), (0,2), ...,
 * (1,2), ...), all finite; it is overwritten. order[p] = the file row shown at position p. */
int rdml_report_cluster_order(rdml_ctx *ctx, double *D, int64_t n, int64_t *order);
/* RDMs up to this many images are ordered by clustering (the condensed matrix is held in
 * memory: 387 MB for 9841 images); larger ones are drawn in file order, as the caption says. */
#define RDML_REPORT_MAX_ORDER 12000

/* ---- plotting on cairo ---- */

/* Draw one figure on a w x h pixel canvas (origin top left). Called twice per figure. */
typedef void (*rdml_plot_draw_fn)(cairo_t *cr, void *user);
/* Render DIR/NAME.svg and DIR/NAME.png (w x h px each; the SVG in px units) with the same
 * drawing function. Errors name the file and cairo's status. */
int rdml_plot_save(rdml_ctx *ctx, const char *dir, const char *name, int w, int h,
                   rdml_plot_draw_fn draw, void *user);

typedef void (*rdml_plot_cmap_fn)(double t, double rgb[3]);
/* viridis (perceptually uniform, colour-blind safe), t in [0, 1] clamped. */
void rdml_plot_viridis(double t, double rgb[3]);
/* diverging blue -> white -> red (ColorBrewer RdBu reversed), t = 0.5 white: signed values
 * such as correlations on a range symmetric about 0. */
void rdml_plot_rdbu(double t, double rgb[3]);
/* white -> dark blue, for count matrices (confusion). */
void rdml_plot_blues(double t, double rgb[3]);
/* A qualitative colour (Tableau 10) for series k. */
void rdml_plot_series_color(int k, double rgb[3]);

/* "Nice" tick values covering [lo, hi]: steps 1, 2, 2.5 or 5 x 10^k, at most maxn ticks
 * inside the range. Returns the count (<= cap); *step gets the spacing. */
int rdml_plot_ticks(double lo, double hi, int maxn, double *ticks, int cap, double *step);
/* Tick label for v at spacing step: as many decimals as the step needs, "-0" avoided;
 * scientific notation for very large / small magnitudes. */
void rdml_plot_tick_label(double v, double step, char *buf, size_t len);
/* Round a data range outwards to nice ticks; equal ends become a small range. */
void rdml_plot_nice_range(double *lo, double *hi);

/* Text anchored at (x, y): ax, ay in [0, 1] select the anchor within the text box (0, 0 top
 * left, 0.5, 0.5 centre); angle in radians (counter-clockwise, e.g. M_PI/2 for a y label). */
void rdml_plot_text(cairo_t *cr, double x, double y, const char *s, double size, double ax,
                    double ay, double angle);
void rdml_plot_text_bold(cairo_t *cr, double x, double y, const char *s, double size,
                         double ax, double ay, double angle);
/* Width of a text at a size, in px. */
double rdml_plot_text_width(cairo_t *cr, const char *s, double size);

/* A plot area in pixels and the data range it shows. */
typedef struct rdml_plot_axes {
    double x, y, w, h;            /* pixel rectangle */
    double xmin, xmax, ymin, ymax; /* data range */
} rdml_plot_axes;
double rdml_plot_px(const rdml_plot_axes *a, double x);
double rdml_plot_py(const rdml_plot_axes *a, double y);
/* Frame, ticks with labels, grid lines (light), axis labels and a title above. xticks = 0
 * draws no x ticks (categorical axes label themselves). */
void rdml_plot_frame(cairo_t *cr, const rdml_plot_axes *a, const char *xlabel,
                     const char *ylabel, const char *title, int xticks);
/* Matrix (rows x cols, row-major, NaN drawn grey) as an image filling the rectangle; row 0 at
 * the top. Values map linearly [vmin, vmax] -> cmap [0, 1]. */
void rdml_plot_heat(cairo_t *cr, double x, double y, double w, double h, const float *m,
                    int64_t rows, int64_t cols, double vmin, double vmax, rdml_plot_cmap_fn cmap);
/* A vertical colour bar with ticks on the right and a rotated label. */
void rdml_plot_colorbar(cairo_t *cr, double x, double y, double w, double h, double vmin,
                        double vmax, rdml_plot_cmap_fn cmap, const char *label);
/* Legend entries: style 0 filled box, 1 solid line, 2 dashed line, 3 dot. */
typedef struct rdml_plot_legend_item {
    const char *label;
    double rgb[3];
    int style;
} rdml_plot_legend_item;
void rdml_plot_legend(cairo_t *cr, double x, double y, const rdml_plot_legend_item *items, int n);
/* An RGB/gray image scaled to fit the box, aspect kept, centred, with a thin frame. */
void rdml_plot_image(cairo_t *cr, const rdml_image *im, double x, double y, double w, double h);
void rdml_plot_set_rgb(cairo_t *cr, const double rgb[3]);

/* ---- HTML helpers ---- */
/* Write s with &, <, >, " escaped. */
void rdml_html_escape(FILE *f, const char *s);
/* The same into buf (truncated to len); returns buf, for use in format arguments. */
const char *rdml_html_esc(const char *s, char *buf, size_t len);
/* A file-name-safe version of s (letters, digits, '-', '_' kept; others become '_'). */
void rdml_report_safe_name(const char *s, char *out, size_t len);

/* ---- the document being written (report.c, report_exp.c) ---- */
struct rdml_report_params;
typedef struct rdml_rep {
    rdml_ctx *ctx;
    rdml_rh5 *r;
    const struct rdml_report_params *p;
    char dir[4096];      /* output directory */
    FILE *html;          /* report.html (under a temporary name until done) */
    int nfig, ntab;      /* figure and table counters */
    int nrdmfig;         /* RDM figures drawn */
    char *absent[64];    /* what the file does not hold (one sentence each) */
    int nabsent;
    char *notes[64];     /* other limitations met while rendering */
    int nnotes;
    char *image_root;    /* resolved dataset root, or NULL when the images are unavailable */
    char image_note[1024]; /* why not */
    double color_fraction; /* pairs.color_fraction of the stored configuration */
} rdml_rep;

void rdml_rep_absent(rdml_rep *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void rdml_rep_note(rdml_rep *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Render a figure (next number) and write <figure> with the PNG, a link to the SVG, and the
 * caption (HTML, already escaped by the caller). */
int rdml_rep_figure(rdml_rep *d, const char *name, int w, int h, rdml_plot_draw_fn draw,
                    void *user, const char *caption_html);
/* "Table N." caption; returns N. */
int rdml_rep_table_open(rdml_rep *d, const char *caption_html);
void rdml_rep_table_close(rdml_rep *d);
/* "%.3f" or "n/a" for NaN; mean +- std. */
void rdml_rep_num(FILE *f, double v);
void rdml_rep_pm(FILE *f, double mean, double std);

/* A labelled matrix of scores (sweeps, inter-subject correlations): cells coloured by value
 * (viridis) with the value printed, a colour bar; n/a for NaN. */
typedef struct rdml_matrix_fig {
    int nr, nc;
    char rows[32][32], cols[32][64];
    float v[32 * 32];
    double vmin, vmax;
    char title[256], metric[64], ylabel[32], xlabel[32];
    rdml_plot_cmap_fn cmap; /* NULL: viridis */
    int nref;               /* reference values marked on the colour bar (e.g. noise ceiling) */
    double ref[4];
    char reflabel[4][48];
} rdml_matrix_fig;
void rdml_rep_matrix_size(const rdml_matrix_fig *g, int *w, int *h);
void rdml_rep_draw_matrix(cairo_t *cr, void *user);

/* the experiment sections (report_exp.c) */
int rdml_rep_experiments(rdml_rep *d);
/* The model-score table at the top of the report; *rows = results listed (0: none). */
int rdml_rep_summary(rdml_rep *d, int *rows);
int rdml_rep_sweep(rdml_rep *d);
/* the encoding models (report_encode.c); nothing when the file has no /encode */
int rdml_rep_encode(rdml_rep *d);
/* the model comparison (report_eval.c, /evaluate) */
int rdml_rep_evaluate(rdml_rep *d);
/* the layer curves: score against layer depth per network and selection (report_layers.c);
 * nothing when no source scores two or more embeddings with a depth */
int rdml_rep_layers(rdml_rep *d);

#endif
