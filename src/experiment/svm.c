/* `rdmlearn svm`: the paper's pair classification (C-SVC) or regression of the RDM value
 * (epsilon-SVR) for subjects x vertex selections. For each subject and selection it reads the
 * RDM (/subjects/subjNN/rdm/<selection>, with its threshold attribute) and the embeddings
 * (/subjects/subjNN/embeddings/<embed.name>) from run.output, builds the pair set and the
 * folds ([pairs], [split]; every rank builds the same ones from run.seed), checks every fold
 * before any training, computes the image Gram matrix, and trains one SVM per fold ([svm]).
 * An outer fold is a task of the sweep engine's dynamic task farm (sweep.c): with a [grid]
 * it first runs the nested grid search over its own training units (rdml_cv_grid_search:
 * an inner k-fold seeded by (run.seed, outer fold), every setting on every inner fold, the
 * best mean inner score), then trains the chosen setting on its training pairs and scores
 * its test pairs. The records are gathered and written by all ranks under
 * /experiments/<pairs.experiment>/. A result never depends on where it ran. With pairs.set =
 * colors the PNGs are classified by the paper's pixel rule, each rank a block of images. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exp_priv.h"
#include "rdml/dataset.h"
#include "rdml/h5.h"
#include "rdml/metrics.h"
#include "rdml/mpiutil.h"
#include "rdml/pairs.h"
#include "rdml/png.h"
#include "rdml/sched.h"
#include "rdml/svm.h"

typedef struct svm_opts {
    rdml_pairs_params pp;
    rdml_split_params sp;
    rdml_svm_params svm;
    const char *experiment;
    char embedding[256];
    char resname[320]; /* the results group: svm, or svm@<embedding> (pairs.embeddings) */
    int variant;       /* the embedding's index: only the first writes the shared pairs */
    const struct rdml_pair_embs *embs; /* every embedding of the run (stale groups are removed) */
    double color_fraction;
    int64_t nimages;
    int64_t pair_images; /* pairs.images: 0 = all */
    uint64_t seed;
    int64_t null_shuffles; /* epsilon_svr: svm.null_shuffles target shuffles of the R^2 null */
    /* [grid]: settings (1 = no grid), the inner folds and score */
    int grid;
    rdml_svm_params *set;
    int64_t nset;
    int64_t inner_folds;
    rdml_cv_scoring scoring;
    char axes[128]; /* the searched parameters, e.g. "C,kernel" */
} svm_opts;

static void opts_free(svm_opts *o) {
    free(o->set);
    o->set = NULL;
}

/* [grid] svm_<key>: the values, or n = 0 when off. kind: 0 real, 1 int, 2 gamma, 3 kernel. */
static int grid_axis(rdml_ctx *ctx, const rdml_config *cfg, const char *key, int kind, int *n,
                     double **vals, int **ivals) {
    char **items;
    int ni;
    *n = 0;
    RDML_TRY(rdml_config_list(ctx, cfg, "grid", key, &items, &ni));
    if (ni == 1 && strcmp(items[0], "off") == 0) {
        free(items);
        return RDML_OK;
    }
    *vals = calloc((size_t)ni, sizeof **vals);
    *ivals = calloc((size_t)ni, sizeof **ivals);
    if (!*vals || !*ivals) {
        free(items);
        return RDML_FAIL(ctx, RDML_ENOMEM, "out of memory");
    }
    for (int i = 0; i < ni; i++) {
        if (kind == 3) (*ivals)[i] = rdml_svm_kernel_parse(items[i]);
        else if (kind == 2 && strcmp(items[i], "scale") == 0) (*ivals)[i] = RDML_GAMMA_SCALE;
        else if (kind == 2 && strcmp(items[i], "auto") == 0) (*ivals)[i] = RDML_GAMMA_AUTO;
        else {
            (*vals)[i] = strtod(items[i], NULL); /* validated by the schema */
            (*ivals)[i] = kind == 1 ? (int)(*vals)[i] : RDML_GAMMA_VALUE;
        }
    }
    free(items);
    *n = ni;
    return RDML_OK;
}

static int read_grid(rdml_ctx *ctx, const rdml_config *cfg, svm_opts *o) {
    const char *keys[6] = {"svm_c", "svm_coef0", "svm_degree", "svm_epsilon", "svm_gamma", "svm_kernel"};
    const char *names[6] = {"C", "coef0", "degree", "epsilon", "gamma", "kernel"};
    const int kinds[6] = {0, 0, 1, 0, 2, 3};
    double *v[6] = {0};
    int *iv[6] = {0}, n[6] = {0};
    int rc = RDML_OK;
    for (int a = 0; a < 6 && !rc; a++) rc = grid_axis(ctx, cfg, keys[a], kinds[a], &n[a], &v[a], &iv[a]);
    rdml_svm_grid_axes ax;
    memset(&ax, 0, sizeof ax);
    ax.nC = n[0], ax.C = v[0];
    ax.ncoef0 = n[1], ax.coef0 = v[1];
    ax.ndegree = n[2], ax.degree = iv[2];
    ax.nepsilon = n[3], ax.epsilon = v[3];
    ax.ngamma = n[4], ax.gamma_mode = iv[4], ax.gamma = v[4];
    ax.nkernel = n[5], ax.kernel = (const rdml_svm_kernel *)iv[5];
    o->axes[0] = '\0';
    for (int a = 0; a < 6; a++)
        if (n[a]) {
            size_t l = strlen(o->axes);
            snprintf(o->axes + l, sizeof o->axes - l, "%s%s", l ? "," : "", names[a]);
            o->grid = 1;
        }
    if (!rc && n[3] && o->svm.type != RDML_SVM_EPSILON_SVR)
        rc = RDML_FAIL(ctx, RDML_ECONFIG, "[grid] svm_epsilon is set but svm.type = c_svc has no "
                       "epsilon (hint: svm.type = epsilon_svr, or svm_epsilon = off)");
    if (!rc) rc = rdml_svm_grid_make(ctx, &o->svm, &ax, &o->set, &o->nset);
    for (int a = 0; a < 6; a++) {
        free(v[a]);
        free(iv[a]);
    }
    if (rc) return rc;
    const char *sc;
    RDML_TRY(rdml_config_int(ctx, cfg, "grid", "inner_folds", &o->inner_folds));
    RDML_TRY(rdml_config_str(ctx, cfg, "grid", "scoring", &sc));
    if (strcmp(sc, "auto") == 0)
        o->scoring = o->svm.type == RDML_SVM_C_SVC ? RDML_SCORE_ACCURACY : RDML_SCORE_R2;
    else
        o->scoring = (rdml_cv_scoring)rdml_cv_scoring_parse(sc);
    if (!rdml_svm_scoring_fits(o->scoring, o->svm.type))
        return RDML_FAIL(ctx, RDML_ECONFIG, "[grid] scoring = %s does not fit svm.type = %s (hint: "
                         "accuracy, f1, roc_auc for c_svc; r2, neg_mse, pearson, spearman for "
                         "epsilon_svr; or auto)", sc, rdml_svm_type_name(o->svm.type));
    return RDML_OK;
}

static int read_opts(rdml_exp *ex, svm_opts *o) {
    rdml_ctx *ctx = ex->ctx;
    const rdml_config *cfg = ex->cfg;
    const char *s;
    int64_t v, seed;
    int b;
    RDML_TRY(rdml_config_int(ctx, cfg, "run", "seed", &seed));
    o->seed = (uint64_t)seed;
    RDML_TRY(rdml_config_int(ctx, cfg, "svm", "null_shuffles", &o->null_shuffles));
    RDML_TRY(rdml_config_int(ctx, cfg, "data", "images", &o->nimages));
    RDML_TRY(rdml_exp_pairs_opts(ctx, cfg, (uint64_t)seed, &o->experiment, &o->pp, &o->pair_images,
                                 &o->color_fraction, &o->sp));

    rdml_svm_defaults(&o->svm);
    RDML_TRY(rdml_config_str(ctx, cfg, "svm", "type", &s));
    o->svm.type = (rdml_svm_type)rdml_svm_type_parse(s);
    RDML_TRY(rdml_config_real(ctx, cfg, "svm", "epsilon", &o->svm.epsilon));
    if (o->pp.continuous && o->svm.type == RDML_SVM_C_SVC)
        return RDML_FAIL(ctx, RDML_ECONFIG, "[pairs] labels = continuous with svm.type = c_svc: a "
                         "classifier needs binary labels (hint: svm.type = epsilon_svr regresses "
                         "the RDM value, or pairs.labels = binary)");
    if (!o->pp.continuous && o->svm.type == RDML_SVM_EPSILON_SVR)
        return RDML_FAIL(ctx, RDML_ECONFIG, "svm.type = epsilon_svr with [pairs] labels = binary: "
                         "the SVR regresses the RDM value (hint: pairs.labels = continuous, or "
                         "svm.type = c_svc)");
    RDML_TRY(rdml_config_str(ctx, cfg, "svm", "kernel", &s));
    o->svm.kernel = (rdml_svm_kernel)rdml_svm_kernel_parse(s);
    RDML_TRY(rdml_config_int(ctx, cfg, "svm", "degree", &v));
    o->svm.degree = (int)v;
    RDML_TRY(rdml_config_real(ctx, cfg, "svm", "c", &o->svm.C));
    RDML_TRY(rdml_config_str(ctx, cfg, "svm", "gamma", &s));
    if (strcmp(s, "scale") == 0) o->svm.gamma_mode = RDML_GAMMA_SCALE;
    else if (strcmp(s, "auto") == 0) o->svm.gamma_mode = RDML_GAMMA_AUTO;
    else {
        o->svm.gamma_mode = RDML_GAMMA_VALUE;
        o->svm.gamma = strtod(s, NULL);
    }
    RDML_TRY(rdml_config_real(ctx, cfg, "svm", "coef0", &o->svm.coef0));
    RDML_TRY(rdml_config_str(ctx, cfg, "svm", "class_weight", &s));
    o->svm.balanced = strcmp(s, "balanced") == 0;
    RDML_TRY(rdml_config_real(ctx, cfg, "svm", "tol", &o->svm.tol));
    RDML_TRY(rdml_config_bool(ctx, cfg, "svm", "shrinking", &b));
    o->svm.shrinking = b;
    RDML_TRY(rdml_config_real(ctx, cfg, "svm", "cache_mb", &o->svm.cache_mb));
    RDML_TRY(rdml_config_int(ctx, cfg, "svm", "max_iter", &o->svm.max_iter));
    RDML_TRY(rdml_config_bool(ctx, cfg, "svm", "symmetric_kernel", &b));
    o->svm.symmetric = b;
    RDML_TRY(rdml_config_str(ctx, cfg, "svm", "solver", &s));
    o->svm.solver = (rdml_svm_solver)rdml_svm_solver_parse(s);
    RDML_TRY(rdml_config_int(ctx, cfg, "svm", "rank", &v));
    o->svm.rank = (int)v;
    RDML_TRY(rdml_config_str(ctx, cfg, "svm", "factor", &s));
    o->svm.factor = (rdml_svm_factor)rdml_svm_factor_parse(s);
    RDML_TRY(rdml_config_real(ctx, cfg, "svm", "lowrank_tol", &o->svm.lr_tol));
    RDML_TRY(rdml_config_int(ctx, cfg, "svm", "max_epochs", &o->svm.max_epochs));
    o->svm.seed = (uint64_t)seed;
    RDML_TRY(rdml_svm_check(ctx, &o->svm));
    RDML_TRY(read_grid(ctx, cfg, o));

    RDML_TRY(rdml_config_str(ctx, cfg, "embed", "name", &s));
    if (!*s) RDML_TRY(rdml_config_str(ctx, cfg, "embed", "backend", &s));
    rdml_strlcpy(o->embedding, s, sizeof o->embedding);
    rdml_strlcpy(o->resname, "svm", sizeof o->resname);
    return RDML_OK;
}

/* Colour shares (n x 3) and class of each of the first n images: each rank decodes a block,
 * the shares are allgathered, and every rank derives the same classes from them. */
static int classify_colors(rdml_ctx *ctx, MPI_Comm comm, const rdml_subject *s, int64_t n,
                           double fraction, double *share, int *colors) {
    int rank, nranks;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &nranks);
    int64_t lo, hi;
    rdml_part_block(n, rank, nranks, &lo, &hi);
    int rc = RDML_OK;
    for (int64_t i = lo; i < hi && !rc; i++) {
        rdml_image im;
        rc = rdml_png_read(ctx, rdml_subject_image_path(s, i), 3, &im);
        if (!rc) rdml_pairs_color_of(im.px, im.w * im.h, fraction, share + 3 * i);
        rdml_image_free(&im);
    }
    RDML_TRY(rdml_agree(ctx, comm, rc));
    int *counts = calloc((size_t)nranks, sizeof *counts);
    int *displs = calloc((size_t)nranks, sizeof *displs);
    double *mine = malloc((size_t)(3 * (hi - lo) + 1) * sizeof *mine);
    rc = counts && displs && mine ? RDML_OK : RDML_FAIL(ctx, RDML_ENOMEM, "out of memory");
    if (rc) {
        free(counts);
        free(displs);
        free(mine);
    }
    RDML_TRY(rdml_agree(ctx, comm, rc));
    for (int r = 0; r < nranks; r++) {
        int64_t a, b;
        rdml_part_block(n, r, nranks, &a, &b);
        counts[r] = (int)(3 * (b - a));
        displs[r] = (int)(3 * a);
    }
    memcpy(mine, share + 3 * lo, (size_t)(3 * (hi - lo)) * sizeof *mine);
    MPI_Allgatherv(mine, (int)(3 * (hi - lo)), MPI_DOUBLE, share, counts, displs, MPI_DOUBLE, comm);
    for (int64_t i = 0; i < n; i++) colors[i] = rdml_pairs_color_class(share + 3 * i, fraction);
    free(counts);
    free(displs);
    free(mine);
    return RDML_OK;
}

enum { ST_M0 = 0, ST_TN = 5, ST_FP, ST_FN, ST_TP, ST_OBJ, ST_RHO, ST_GAMMA, ST_NSV, ST_NBSV,
       ST_ITER, ST_CONV, ST_SECONDS, ST_N };
static const char *const class_metrics[5] = {"accuracy", "precision", "recall", "f1", "roc_auc"};
static const char *const reg_metrics[4] = {"r2", "mse", "pearson", "spearman"};

static int is_svr(const svm_opts *o) { return o->svm.type == RDML_SVM_EPSILON_SVR; }
static int n_metrics(const svm_opts *o) { return is_svr(o) ? 4 : 5; }
static const char *metric_name(const svm_opts *o, int i) {
    return is_svr(o) ? reg_metrics[i] : class_metrics[i];
}

/* Decision values of the n pairs ij, split over the ranks of comm (contiguous blocks, each
 * value computed whole by one rank, allgathered): the same values for any size of comm. */
static int decision_comm(rdml_ctx *ctx, MPI_Comm comm, const rdml_svm_model *m,
                         const rdml_svm_images *im, int64_t n, const int64_t *ij, double *dec) {
    int rank = 0, size = 1;
    if (comm != MPI_COMM_NULL) {
        MPI_Comm_rank(comm, &rank);
        MPI_Comm_size(comm, &size);
    }
    if (size == 1) return rdml_svm_decision(ctx, m, im, n, ij, dec);
    int64_t lo, hi;
    rdml_part_block(n, rank, size, &lo, &hi);
    int *counts = malloc((size_t)size * sizeof *counts), *displs = malloc((size_t)size * sizeof *displs);
    int rc = counts && displs ? RDML_OK : RDML_FAIL(ctx, RDML_ENOMEM, "out of memory");
    if (!rc && n > INT_MAX) rc = RDML_FAIL(ctx, RDML_ECONFIG, "%lld test pairs on a group of ranks: at "
                                           "most %d", (long long)n, INT_MAX);
    if (!rc) rc = rdml_svm_decision(ctx, m, im, hi - lo, ij + 2 * lo, dec + lo);
    rc = rdml_agree(ctx, comm, rc);
    if (!rc) rdml_allgather_blocks(comm, dec, n, counts, displs);
    free(counts);
    free(displs);
    return rc;
}

/* Train the outer fold with setting p and fill st (ST_N values) and dec (ntest decision
 * values, or SVR predictions). Collective over comm (MPI_COMM_NULL: this rank alone): the fit
 * (rdml_svm_fit_comm) and the decision values split over the group, the same record. */
static int run_fold(rdml_ctx *ctx, MPI_Comm comm, const rdml_svm_params *p, const rdml_svm_images *im,
                    const rdml_pairs *P, const int64_t *tr, int64_t ntr, const int64_t *te,
                    int64_t nte, double *st, double *dec, double *waited) {
    int64_t *ij_tr = malloc((size_t)ntr * 2 * sizeof *ij_tr), *ij_te = malloc((size_t)nte * 2 * sizeof *ij_te);
    double *y_tr = malloc((size_t)ntr * sizeof *y_tr), *y_te = malloc((size_t)nte * sizeof *y_te);
    int8_t *yb = malloc((size_t)nte), *pred = malloc((size_t)nte);
    rdml_svm_model *m = NULL;
    int rc = ij_tr && ij_te && y_tr && y_te && yb && pred
                 ? RDML_OK : RDML_FAIL(ctx, RDML_ENOMEM, "out of memory for a fold");
    if (!rc) {
        rdml_cv_gather(ntr, tr, P->ij, P->label, ij_tr, y_tr);
        rdml_cv_gather(nte, te, P->ij, P->label, ij_te, y_te);
    }
    if (comm != MPI_COMM_NULL) {
        rc = rdml_agree(ctx, comm, rc);
        if (!rc) rc = rdml_svm_fit_comm(ctx, comm, p, im, ntr, ij_tr, y_tr, &m);
        if (!rc) rc = decision_comm(ctx, comm, m, im, nte, ij_te, dec);
    } else {
        if (!rc) rc = rdml_svm_fit(ctx, p, im, ntr, ij_tr, y_tr, &m);
        if (!rc) rc = rdml_svm_decision(ctx, m, im, nte, ij_te, dec);
    }
    double v[ST_N];
    memset(v, 0, sizeof v);
    if (!rc && p->type == RDML_SVM_EPSILON_SVR) {
        v[0] = rdml_metrics_r2(nte, y_te, dec);
        v[1] = rdml_metrics_mse(nte, y_te, dec);
        v[2] = rdml_metrics_pearson(nte, y_te, dec);
        v[3] = rdml_metrics_spearman(nte, y_te, dec);
        v[4] = NAN;
    } else if (!rc) {
        rdml_binary_metrics bm;
        for (int64_t t = 0; t < nte; t++) {
            yb[t] = y_te[t] > 0.5;
            pred[t] = dec[t] > 0;
        }
        rc = rdml_metrics_binary(ctx, nte, yb, pred, dec, &bm);
        double c[9] = {bm.accuracy, bm.precision, bm.recall, bm.f1, bm.roc_auc, (double)bm.tn,
                       (double)bm.fp, (double)bm.fn, (double)bm.tp};
        memcpy(v, c, sizeof c);
    }
    if (!rc) {
        rdml_svm_info info;
        rdml_svm_get_info(m, &info);
        *waited = info.waited;
        double w[8] = {info.objective, info.rho, info.gamma, (double)info.n_sv, (double)info.n_bsv,
                       (double)info.iterations, info.converged, info.seconds};
        memcpy(v + ST_OBJ, w, sizeof w);
        memcpy(st, v, sizeof v);
    }
    rdml_svm_free(&m);
    free(ij_tr);
    free(ij_te);
    free(y_tr);
    free(y_te);
    free(yb);
    free(pred);
    return rc;
}

/* pairs.set = colors: every image's class and colour shares, with what defines them. */
static int write_colors(rdml_ctx *ctx, rdml_h5 *h, const char *g, const svm_opts *o, int64_t n,
                        const int *colors, const double *share) {
    char path[760];
    int64_t *c = malloc((size_t)(n + 1) * sizeof *c);
    if (!c) return RDML_FAIL(ctx, RDML_ENOMEM, "out of memory writing the colour classes");
    for (int64_t i = 0; i < n; i++) c[i] = colors[i];
    snprintf(path, sizeof path, "%s/color", g);
    int rc = rdml_h5_write_vec_i64(ctx, h, path, n, c);
    free(c);
    if (!rc) rc = rdml_h5_attr_str(ctx, h, path, "meaning", "colour class of each image (rows of "
                                   "../../../../subjects/subjNN/images): -1 none, 0 red, 1 green, 2 "
                                   "blue; the colour with the largest share of the pixels, when that "
                                   "share >= color_fraction");
    if (!rc) rc = rdml_h5_attr_str(ctx, h, path, "names", "red,green,blue");
    if (!rc) rc = rdml_h5_attr_f64(ctx, h, path, "color_fraction", &o->color_fraction, 1);
    char pair[64];
    snprintf(pair, sizeof pair, "%s,%s", rdml_color_name(o->pp.color_a), rdml_color_name(o->pp.color_b));
    if (!rc) rc = rdml_h5_attr_str(ctx, h, path, "colors", pair);
    snprintf(path, sizeof path, "%s/color_share", g);
    if (!rc) rc = rdml_h5_write_rows_f64(ctx, h, path, n, 3, 0, ctx->rank == 0 ? n : 0, share);
    if (!rc) rc = rdml_h5_attr_str(ctx, h, path, "meaning", "share of each image's pixels nearest to "
                                   "pure red, green, blue (columns; a pixel equally near two is in "
                                   "none)");
    if (!rc) rc = rdml_h5_attr_str(ctx, h, path, "columns", "red,green,blue");
    return rc;
}

static int write_pairs(rdml_ctx *ctx, rdml_h5 *h, const char *g, const svm_opts *o,
                       const rdml_pairs *P, const rdml_split *S, int64_t n, double thr,
                       const int *colors, const double *share) {
    char path[700];
    int rc = rdml_exp_write_pairs(ctx, h, g, P, S, n, rdml_pairs_set_name(o->pp.set), NULL);
    snprintf(path, sizeof path, "%s/label", g);
    if (!rc) rc = rdml_h5_write_vec_f64(ctx, h, path, P->n, P->label);
    if (!rc) rc = rdml_h5_attr_str(ctx, h, path, "meaning", P->continuous
        ? "the RDM value (pairs.labels = continuous)" : "1 = dissimilar (value > threshold), 0 = similar");
    int64_t iv[2] = {o->pp.k, P->n_images_used};
    const char *in[2] = {"k", "n_color_images"};
    for (int i = 0; i < 2 && !rc; i++) rc = rdml_h5_attr_i64(ctx, h, g, in[i], &iv[i], 1);
    if (!rc) rc = rdml_h5_attr_f64(ctx, h, g, "threshold", &thr, 1);
    int64_t flags[2] = {o->pp.dedup, o->pp.symmetric};
    if (!rc) rc = rdml_h5_attr_i64(ctx, h, g, "dedup", &flags[0], 1);
    if (!rc) rc = rdml_h5_attr_i64(ctx, h, g, "symmetric", &flags[1], 1);
    if (!rc && o->pp.set == RDML_PAIRS_COLORS) rc = write_colors(ctx, h, g, o, n, colors, share);
    return rc;
}

static void gamma_text(const rdml_svm_params *p, char *out, size_t len) {
    if (p->gamma_mode == RDML_GAMMA_SCALE) snprintf(out, len, "scale");
    else if (p->gamma_mode == RDML_GAMMA_AUTO) snprintf(out, len, "auto");
    else snprintf(out, len, "%.17g", p->gamma);
}

/* The chosen setting's parameters as attributes of group g. */
static int write_setting_attrs(rdml_ctx *ctx, rdml_h5 *h, const char *g, const rdml_svm_params *p,
                               int64_t index) {
    char gt[64];
    gamma_text(p, gt, sizeof gt);
    int64_t deg = p->degree;
    int rc = rdml_h5_attr_i64(ctx, h, g, "setting", &index, 1);
    if (!rc) rc = rdml_h5_attr_str(ctx, h, g, "setting_kernel", rdml_svm_kernel_name(p->kernel));
    if (!rc) rc = rdml_h5_attr_f64(ctx, h, g, "setting_C", &p->C, 1);
    if (!rc) rc = rdml_h5_attr_i64(ctx, h, g, "setting_degree", &deg, 1);
    if (!rc) rc = rdml_h5_attr_f64(ctx, h, g, "setting_coef0", &p->coef0, 1);
    if (!rc) rc = rdml_h5_attr_str(ctx, h, g, "setting_gamma", gt);
    if (!rc && p->type == RDML_SVM_EPSILON_SVR)
        rc = rdml_h5_attr_f64(ctx, h, g, "setting_epsilon", &p->epsilon, 1);
    return rc;
}

static int write_fold(rdml_ctx *ctx, rdml_h5 *h, const char *g, const svm_opts *o, int64_t f,
                      const double *st, const double *dec, const int64_t *te, int64_t nte,
                      int64_t ntr, const rdml_pairs *P, int64_t chosen) {
    char fg[700], path[760];
    snprintf(fg, sizeof fg, "%s/fold_%lld", g, (long long)f);
    int rc = rdml_h5_group(ctx, h, fg);
    int64_t *pred = malloc((size_t)nte * sizeof *pred), *lab = malloc((size_t)nte * sizeof *lab);
    double *target = malloc((size_t)nte * sizeof *target);
    if (!pred || !lab || !target) rc = RDML_FAIL(ctx, RDML_ENOMEM, "out of memory writing fold %lld", (long long)f);
    for (int64_t t = 0; t < nte && pred && lab && target; t++) {
        pred[t] = dec[t] > 0;
        lab[t] = P->label[te[t]] > 0.5;
        target[t] = P->label[te[t]];
    }
    snprintf(path, sizeof path, "%s/test_pairs", fg);
    if (!rc) rc = rdml_h5_write_vec_i64(ctx, h, path, nte, te);
    if (is_svr(o)) {
        snprintf(path, sizeof path, "%s/prediction", fg);
        if (!rc) rc = rdml_h5_write_vec_f64(ctx, h, path, nte, dec);
        snprintf(path, sizeof path, "%s/target", fg);
        if (!rc) rc = rdml_h5_write_vec_f64(ctx, h, path, nte, target);
    } else {
        snprintf(path, sizeof path, "%s/decision", fg);
        if (!rc) rc = rdml_h5_write_vec_f64(ctx, h, path, nte, dec);
        snprintf(path, sizeof path, "%s/pred", fg);
        if (!rc) rc = rdml_h5_write_vec_i64(ctx, h, path, nte, pred);
        snprintf(path, sizeof path, "%s/label", fg);
        if (!rc) rc = rdml_h5_write_vec_i64(ctx, h, path, nte, lab);
        int64_t cm[4] = {(int64_t)st[ST_TN], (int64_t)st[ST_FP], (int64_t)st[ST_FN], (int64_t)st[ST_TP]};
        snprintf(path, sizeof path, "%s/confusion", fg);
        if (!rc) rc = rdml_h5_write_rows_i64(ctx, h, path, 2, 2, 0, ctx->rank == 0 ? 2 : 0, cm);
    }
    for (int i = 0; i < n_metrics(o) && !rc; i++) rc = rdml_h5_attr_f64(ctx, h, fg, metric_name(o, i), &st[i], 1);
    const char *dn[4] = {"dual_objective", "rho", "gamma", "fit_seconds"};
    const double dv[4] = {st[ST_OBJ], st[ST_RHO], st[ST_GAMMA], st[ST_SECONDS]};
    for (int i = 0; i < 4 && !rc; i++) rc = rdml_h5_attr_f64(ctx, h, fg, dn[i], &dv[i], 1);
    const char *iname[6] = {"n_train", "n_test", "n_sv", "n_bounded_sv", "iterations", "converged"};
    int64_t iv[6] = {ntr, nte, (int64_t)st[ST_NSV], (int64_t)st[ST_NBSV], (int64_t)st[ST_ITER],
                     (int64_t)st[ST_CONV]};
    for (int i = 0; i < 6 && !rc; i++) rc = rdml_h5_attr_i64(ctx, h, fg, iname[i], &iv[i], 1);
    if (!rc && o->grid) rc = write_setting_attrs(ctx, h, fg, &o->set[chosen], chosen);
    free(pred);
    free(lab);
    free(target);
    return rc;
}

static int write_grid(rdml_ctx *ctx, rdml_h5 *h, const char *gs, const svm_opts *o,
                      const rdml_split *S, const int64_t *ifold, const double *scores,
                      const int64_t *chosen) {
    const int64_t nf = S->nfolds, ns = o->nset, K = o->inner_folds;
    int rc = RDML_OK;
    char **gt = calloc((size_t)ns, sizeof *gt);
    const char **kn = calloc((size_t)ns, sizeof *kn);
    double *C = malloc((size_t)ns * sizeof *C), *c0 = malloc((size_t)ns * sizeof *c0);
    double *eps = malloc((size_t)ns * sizeof *eps);
    int64_t *deg = malloc((size_t)ns * sizeof *deg);
    if (!gt || !kn || !C || !c0 || !eps || !deg)
        rc = RDML_FAIL(ctx, RDML_ENOMEM, "out of memory writing the grid");
    for (int64_t s = 0; s < ns && !rc; s++) {
        const rdml_svm_params *p = &o->set[s];
        gt[s] = malloc(64);
        if (!gt[s]) {
            rc = RDML_FAIL(ctx, RDML_ENOMEM, "out of memory writing the grid");
            break;
        }
        gamma_text(p, gt[s], 64);
        kn[s] = rdml_svm_kernel_name(p->kernel);
        C[s] = p->C;
        c0[s] = p->coef0;
        eps[s] = p->epsilon;
        deg[s] = p->degree;
    }
    const double **fs = rc ? NULL : malloc((size_t)(nf + 1) * sizeof *fs);
    int64_t *best = rc ? NULL : malloc((size_t)(nf + 1) * sizeof *best);
    if (!rc && (!fs || !best)) rc = RDML_FAIL(ctx, RDML_ENOMEM, "out of memory writing the grid");
    for (int64_t f = 0; f < nf && !rc; f++) fs[f] = scores + f * ns * K;
    const rdml_exp_grid_col cols[6] = {
        {"kernel", NULL, NULL, kn, NULL},
        {"gamma", NULL, NULL, (const char *const *)gt, "svm.gamma of each setting: scale, auto or the value"},
        {"C", C, NULL, NULL, NULL},
        {"coef0", c0, NULL, NULL, NULL},
        {"degree", NULL, deg, NULL, NULL},
        {"epsilon", eps, NULL, NULL, NULL}};
    if (!rc) rc = rdml_exp_write_grid(ctx, h, gs, cols, 6, S, ifold, ns, K, fs,
                                      rdml_cv_scoring_name(o->scoring), o->axes, best);
    for (int64_t f = 0; f < nf && !rc; f++)
        if (best[f] != chosen[f])
            rc = RDML_FAIL(ctx, RDML_EINTERNAL, "fold %lld: the grid chose %lld, the fold used %lld",
                           (long long)f, (long long)best[f], (long long)chosen[f]);
    free(fs);
    free(best);
    for (int64_t s = 0; gt && s < ns; s++) free(gt[s]);
    free(gt);
    free(kn);
    free(C);
    free(c0);
    free(eps);
    free(deg);
    return rc;
}

/* ---- one subject x selection as a sweep group ---- */

typedef struct svm_group {
    int id;
    char name[256];
    int64_t n, d;
    double thr;
    float *R, *E;
    int *colors;
    double *share; /* pairs.set = colors: n x 3 colour shares */
    rdml_pairs P;
    rdml_split S;
    rdml_svm_images im; /* computed by the first task that needs it */
    rdml_cv_folds F;   /* pair lists per fold; grid: inner folds */
    double *target;     /* P.n labels or values */
} svm_group;

static int64_t svm_nfolds(const void *opts) {
    const svm_opts *o = opts;
    return o->sp.scheme == RDML_SPLIT_HOLDOUT ? 1 : o->sp.folds;
}

/* Record of an outer fold: [ST_N statistics][chosen setting][decision values of the test
 * pairs][grid: nset x inner_folds inner scores]. */
static int64_t rec_len(const svm_opts *o, const svm_group *g, int64_t f) {
    return ST_N + 1 + g->F.nte[f] + (o->grid ? o->nset * o->inner_folds : 0);
}

static void svm_release(void *group) {
    svm_group *g = group;
    rdml_cv_folds_free(&g->F);
    free(g->target);
    rdml_svm_images_free(&g->im);
    rdml_split_free(&g->S);
    rdml_pairs_free(&g->P);
    free(g->R);
    free(g->E);
    free(g->colors);
    free(g->share);
    memset(g, 0, sizeof *g);
}

/* A classifier needs both classes among a fold's training pairs. */
static int check_outer(rdml_ctx *ctx, const void *user, int64_t f, int64_t nf, const int64_t *tr,
                       int64_t ntr, int64_t nte) {
    const svm_group *g = user;
    (void)nte;
    int64_t c1 = 0;
    for (int64_t t = 0; t < ntr; t++) c1 += g->P.label[tr[t]] > 0.5;
    if (c1 == 0 || c1 == ntr)
        return RDML_FAIL(ctx, RDML_EDATA,
                         "fold %lld of %lld: its %lld training pairs are all %s; a classifier "
                         "needs both classes (hint: more images, fewer folds, or another pair set)",
                         (long long)f, (long long)nf, (long long)ntr, c1 ? "dissimilar" : "similar");
    return RDML_OK;
}

static int check_inner(rdml_ctx *ctx, const void *user, int64_t f, int64_t k, int64_t K,
                       const int64_t *tr, int64_t ntr, int64_t nte) {
    const svm_group *g = user;
    (void)nte;
    int64_t c1 = 0;
    for (int64_t t = 0; t < ntr; t++) c1 += g->target[tr[t]] > 0.5;
    if (c1 == 0 || c1 == ntr)
        return RDML_FAIL(ctx, RDML_EDATA, "outer fold %lld, inner fold %lld of %lld: its %lld "
                         "training pairs are all %s; a classifier needs both classes (hint: "
                         "lower grid.inner_folds, or use more images)", (long long)f,
                         (long long)k, (long long)K, (long long)ntr, c1 ? "dissimilar" : "similar");
    return RDML_OK;
}

/* svm.solver = lowrank: svm.rank must not exceed the images of any fold's training pairs
 * (nor the embedding width for the eigen factor); checked before any training. */
static int check_rank(rdml_ctx *ctx, const svm_opts *o, const svm_group *g) {
    const int64_t K = o->svm.rank;
    if (o->svm.factor == RDML_SVM_FACTOR_EIGEN && K > g->d)
        return RDML_FAIL(ctx, RDML_ECONFIG, "svm.rank = %lld is larger than the embedding width %lld "
                         "of %s (hint: svm.rank <= %lld, or svm.factor = nystrom)", (long long)K,
                         (long long)g->d, o->embedding, (long long)g->d);
    char *used = calloc((size_t)g->n + 1, 1);
    if (!used) return RDML_FAIL(ctx, RDML_ENOMEM, "out of memory");
    int rc = RDML_OK;
    for (int64_t f = 0; f < g->F.nf && !rc; f++) {
        memset(used, 0, (size_t)g->n);
        int64_t cnt = 0;
        for (int64_t t = 0; t < g->F.ntr[f]; t++)
            for (int h = 0; h < 2; h++) {
                int64_t i = g->P.ij[2 * g->F.tr[f][t] + h];
                cnt += !used[i];
                used[i] = 1;
            }
        if (K > cnt)
            rc = RDML_FAIL(ctx, RDML_ECONFIG, "svm.rank = %lld is larger than the %lld images of fold "
                           "%lld's training pairs (%lld images in all): the image factor has at most "
                           "that many columns (hint: svm.rank <= %lld)", (long long)K, (long long)cnt,
                           (long long)f, (long long)g->n, (long long)cnt);
    }
    free(used);
    return rc;
}

/* Collective over comm: the RDM, embeddings, pairs, folds and (with a grid) inner folds of a
 * group, every check made before any training. Pure: every rank builds the same group. */
static int svm_prepare(rdml_ctx *ctx, MPI_Comm comm, rdml_h5 *h, const void *opts,
                       const rdml_subject *subj, const char *name, void *group) {
    const svm_opts *o = opts;
    svm_group *g = group;
    g->id = rdml_subject_id(subj);
    rdml_strlcpy(g->name, name, sizeof g->name);
    char rpath[512], epath[600];
    RDML_TRY(rdml_exp_find_inputs(ctx, h, g->id, name, o->embedding, rpath, sizeof rpath, epath,
                                  sizeof epath, o->pair_images, &g->n, &g->d));
    const int64_t n = g->n, d = g->d;
    int64_t got;
    RDML_TRY(rdml_h5_get_attr_f64(ctx, h, rpath, "threshold", &g->thr, 1, &got));
    g->R = rdml_malloc(ctx, (size_t)(n * n) * sizeof *g->R, "RDM");
    g->E = rdml_malloc(ctx, (size_t)(n * d) * sizeof *g->E, "embeddings");
    g->colors = rdml_malloc(ctx, (size_t)n * sizeof *g->colors, "colour classes");
    g->share = rdml_calloc(ctx, (size_t)(3 * n), sizeof *g->share, "colour shares");
    int rc = g->R && g->E && g->colors && g->share ? RDML_OK : ctx->code;
    RDML_TRY(rdml_agree(ctx, comm, rc));
    rc = rdml_exp_read_rdm(ctx, comm, h, rpath, n, g->R);
    if (!rc) rc = rdml_h5_read_rows_f32(ctx, h, epath, 0, n, g->E);
    rc = rdml_agree(ctx, comm, rc);
    rdml_pairs_params pp = o->pp;
    pp.threshold = g->thr;
    if (!rc && pp.set == RDML_PAIRS_COLORS)
        rc = classify_colors(ctx, comm, subj, n, o->color_fraction, g->share, g->colors);
    if (rc) return rc;
    /* everything below is identical on every rank: no agreement needed */
    rc = rdml_pairs_build(ctx, &pp, n, g->R, g->colors, &g->P);
    if (!rc && !is_svr(o)) {
        int64_t n0, n1;
        rdml_pairs_count(&g->P, &n0, &n1);
        if (n0 == 0 || n1 == 0)
            rc = RDML_FAIL(ctx, RDML_EDATA,
                           "the %s pair set has %lld pairs, %lld similar and %lld dissimilar (RDM > "
                           "%g); a classifier needs both classes (hint: check rdm.threshold, or use "
                           "another pair set)", rdml_pairs_set_name(pp.set), (long long)g->P.n,
                           (long long)n0, (long long)n1, g->thr);
    }
    if (!rc) rc = rdml_split_make(ctx, &o->sp, n, &g->P, &g->S);
    if (!rc && g->S.nfolds != svm_nfolds(o))
        rc = RDML_FAIL(ctx, RDML_EINTERNAL, "split made %lld folds, expected %lld",
                       (long long)g->S.nfolds, (long long)svm_nfolds(o));
    if (!rc) {
        g->target = malloc((size_t)(g->P.n + 1) * sizeof *g->target);
        if (!g->target) rc = RDML_FAIL(ctx, RDML_ENOMEM, "out of memory");
    }
    for (int64_t t = 0; t < g->P.n && !rc; t++) g->target[t] = g->P.label[t];
    if (!rc) rc = rdml_cv_folds_make(ctx, &g->S, &g->P, o->grid ? o->inner_folds : 0, o->sp.seed,
                                      is_svr(o) ? NULL : check_outer, is_svr(o) ? NULL : check_inner,
                                      g, &g->F);
    if (!rc && o->svm.solver == RDML_SVM_LOWRANK) rc = check_rank(ctx, o, g);
    return rc;
}

/* A grid setting fit on an inner fold's training pairs and scored on its test pairs. */
typedef struct grid_user {
    const svm_opts *o;
    const svm_group *g;
} grid_user;

static int grid_fit_score(rdml_ctx *ctx, void *user, int64_t s, int64_t k, const int64_t *tr,
                          int64_t ntr, const int64_t *te, int64_t nte, double *score) {
    const grid_user *u = user;
    int rc = rdml_svm_fit_score(ctx, &u->o->set[s], &u->g->im, u->g->P.ij, u->g->target, tr, ntr,
                                te, nte, u->o->scoring, score);
    if (rc) rdml_ctx_prefix(ctx, "inner fold %lld", (long long)k);
    return rc;
}

/* One outer fold: the inner grid search (every setting x inner fold) picks the setting, then
 * the fold's SVM is trained on its training pairs and scored on its test pairs. comm:
 * MPI_COMM_NULL for a task of one rank; a group of ranks (the sweep's tail, svm_task_group)
 * splits the grid's fits over the group (rdml_exp_grid_search), then the chosen setting's fit
 * (C-SVC by SMO: rdml_svm_fit_comm) and its decision values; a fit that does not split (SVR,
 * lowrank) is trained by the group's rank 0 alone (the others return an empty record). */
static int svm_fold(rdml_ctx *ctx, MPI_Comm comm, const void *opts, const void *group, int64_t f,
                    rdml_rec *out, int *left_out, double *waited) {
    const svm_opts *o = opts;
    svm_group *g = (svm_group *)group; /* the Gram matrix is cached in the group */
    int grank = 0;
    if (comm != MPI_COMM_NULL) MPI_Comm_rank(comm, &grank);
    int rc = RDML_OK;
    if (!g->im.sqnorm)
        rc = rdml_svm_images_make_ex(ctx, g->n, g->d, g->E, rdml_svm_images_needs(&o->svm), &g->im);
    out->n = rec_len(o, g, f);
    out->v = rc ? NULL : calloc((size_t)out->n, sizeof *out->v);
    if (!rc && !out->v) rc = RDML_FAIL(ctx, RDML_ENOMEM, "out of memory for a fold record");
    if (comm != MPI_COMM_NULL) rc = rdml_agree(ctx, comm, rc);
    if (rc) {
        rdml_rec_free(out);
        return rc;
    }
    double *st = out->v, *dec = out->v + ST_N + 1, *scores = dec + g->F.nte[f];
    int64_t chosen = 0;
    if (o->grid) {
        const int64_t nu = g->S.nunits;
        const int by_pairs = g->S.scheme == RDML_SPLIT_PAIRS;
        grid_user u = {o, g};
        rc = rdml_exp_grid_search(ctx, comm, o->nset, o->inner_folds, g->P.n, g->P.ij,
                                  by_pairs ? NULL : g->F.ifold + f * nu,
                                  by_pairs ? g->F.ifold + f * nu : NULL, grid_fit_score, &u, scores,
                                  &chosen);
    }
    const int split = comm != MPI_COMM_NULL && rdml_svm_fit_splits(&o->set[chosen], g->F.ntr[f]);
    if (!rc && grank != 0 && !split) { /* the group's rank 0 trains the chosen setting */
        rdml_rec_free(out);
        *left_out = 1;
        return RDML_OK;
    }
    if (!rc) rc = run_fold(ctx, split ? comm : MPI_COMM_NULL, &o->set[chosen], &g->im, &g->P, g->F.tr[f], g->F.ntr[f], g->F.te[f],
                           g->F.nte[f], st, dec, waited);
    st[ST_N] = (double)chosen;
    if (rc) rdml_rec_free(out);
    return rc;
}

static int svm_task(rdml_ctx *ctx, const void *opts, const void *group, int64_t f, rdml_rec *out) {
    int left_out = 0;
    double waited = 0;
    return svm_fold(ctx, MPI_COMM_NULL, opts, group, f, out, &left_out, &waited);
}

/* A fold on a group of ranks (the sweep's tail): the grid's fits and a large C-SVC's SMO
 * iterations split over the group; the same record as svm_task. A rank left out of a fit that
 * does not split reports its wait (the busy figure counts it as idle). */
static int svm_task_group(rdml_ctx *ctx, MPI_Comm comm, const void *opts, const void *group,
                          int64_t f, rdml_rec *out, double *waited) {
    int left_out = 0;
    double fit_wait = 0;
    int rc = svm_fold(ctx, comm, opts, group, f, out, &left_out, &fit_wait);
    double t0 = rdml_now();
    rc = rdml_agree(ctx, comm, rc);
    *waited = fit_wait + (left_out ? rdml_now() - t0 : 0);
    return rc;
}

static int svm_write(rdml_ctx *ctx, rdml_h5 *h, const void *opts, const void *group,
                     const rdml_rec *recs) {
    const svm_opts *o = opts;
    const svm_group *g = group;
    const int64_t nf = g->F.nf;
    const int id = g->id;
    const char *name = g->name;
    for (int64_t f = 0; f < nf; f++)
        if (recs[f].n != rec_len(o, g, f))
            return RDML_FAIL(ctx, RDML_EINTERNAL, "fold %lld: record of %lld values, expected %lld "
                             "(hint: delete the journal directory and rerun)", (long long)f,
                             (long long)recs[f].n, (long long)rec_len(o, g, f));
    char gp[900], gs[900];
    snprintf(gp, sizeof gp, "/experiments/%s/pairs/subj%02d/%s", o->experiment, id, name);
    snprintf(gs, sizeof gs, "/experiments/%s/%s/subj%02d/%s", o->experiment, o->resname, id, name);
    char lab[600]; /* the log's name: the selection, and the embedding of a variant */
    snprintf(lab, sizeof lab, "%s%s%s", name, strchr(o->resname, '@') ? " " : "",
             strchr(o->resname, '@') ? o->embedding : "");
    int64_t *chosen = calloc((size_t)nf + 1, sizeof *chosen);
    const int64_t ns = o->nset, K = o->inner_folds;
    double *scores = o->grid ? calloc((size_t)(nf * ns * K + 1), sizeof *scores) : NULL;
    int rc = chosen && (!o->grid || scores) ? RDML_OK : RDML_FAIL(ctx, RDML_ENOMEM, "out of memory");
    for (int64_t f = 0; f < nf && !rc; f++) {
        chosen[f] = (int64_t)recs[f].v[ST_N];
        if (o->grid) memcpy(scores + f * ns * K, recs[f].v + ST_N + 1 + g->F.nte[f], (size_t)(ns * K) * sizeof *scores);
    }
    if (!rc && o->variant == 0) rc = write_pairs(ctx, h, gp, o, &g->P, &g->S, g->n, g->thr, g->colors, g->share);
    if (!rc) rc = rdml_h5_delete(ctx, h, gs);
    if (!rc) rc = rdml_h5_group(ctx, h, gs);
    if (!rc && o->grid) rc = write_grid(ctx, h, gs, o, &g->S, g->F.ifold, scores, chosen);
    for (int64_t f = 0; f < nf && !rc; f++) {
        const double *st = recs[f].v, *dec = recs[f].v + ST_N + 1;
        rc = write_fold(ctx, h, gs, o, f, st, dec, g->F.te[f], g->F.nte[f], g->F.ntr[f], &g->P, chosen[f]);
        char set[200] = "";
        if (o->grid) {
            const rdml_svm_params *sp = &o->set[chosen[f]];
            char gt[64], eps[48] = "";
            gamma_text(sp, gt, sizeof gt);
            if (is_svr(o)) snprintf(eps, sizeof eps, " epsilon=%g", sp->epsilon);
            snprintf(set, sizeof set, ", setting %lld (%s C=%g degree=%d gamma=%s coef0=%g%s)",
                     (long long)chosen[f], rdml_svm_kernel_name(sp->kernel), sp->C, sp->degree, gt,
                     sp->coef0, eps);
        }
        if (!rc && is_svr(o))
            rdml_info(ctx, "subj%02d %-12s fold %lld of %lld: %lld train / %lld test pairs, nSV %lld, "
                      "R^2 %.3f r %.3f rho %.3f (%.2f s)%s", id, lab, (long long)f, (long long)nf,
                      (long long)g->F.ntr[f], (long long)g->F.nte[f], (long long)st[ST_NSV], st[0], st[2],
                      st[3], st[ST_SECONDS], set);
        else if (!rc)
            rdml_info(ctx, "subj%02d %-12s fold %lld of %lld: %lld train / %lld test pairs, nSV %lld, "
                      "acc %.3f f1 %.3f auc %.3f (%.2f s)%s", id, lab, (long long)f, (long long)nf,
                      (long long)g->F.ntr[f], (long long)g->F.nte[f], (long long)st[ST_NSV], st[0],
                      st[3], st[4], st[ST_SECONDS], set);
    }
    /* epsilon_svr: the null distribution of each fold's R^2 and of the mean over folds (the
     * same shuffles as the networks', train.c; every rank draws them, in a fixed order) */
    if (!rc && is_svr(o) && o->null_shuffles > 0) {
        const int64_t NS = o->null_shuffles;
        double *nul = calloc((size_t)(NS * nf + 1), sizeof *nul), *mn = calloc((size_t)NS + 1, sizeof *mn);
        double *tg = nul && mn ? malloc((size_t)(g->P.n + 1) * sizeof *tg) : NULL;
        if (!tg) rc = RDML_FAIL(ctx, RDML_ENOMEM, "out of memory for the R^2 null");
        double msum = 0;
        for (int64_t f = 0; f < nf && !rc; f++) {
            const int64_t nte = g->F.nte[f];
            for (int64_t t = 0; t < nte; t++) tg[t] = g->P.label[g->F.te[f][t]];
            rc = rdml_cv_null_r2(ctx, o->seed, f, nte, tg, recs[f].v + ST_N + 1, NS, nul + f * NS);
            char fg[800];
            snprintf(fg, sizeof fg, "%s/fold_%lld", gs, (long long)f);
            if (!rc) rc = rdml_exp_write_null(ctx, h, fg, "null_r2", recs[f].v[0], nul + f * NS, NS);
            msum += recs[f].v[0];
        }
        for (int64_t b = 0; b < NS && !rc; b++) {
            double sum = 0;
            for (int64_t f = 0; f < nf; f++) sum += nul[f * NS + b];
            mn[b] = sum / (double)nf;
        }
        if (!rc) rc = rdml_exp_write_null(ctx, h, gs, "null_mean_r2", msum / (double)nf, mn, NS);
        if (!rc) rc = rdml_h5_attr_i64(ctx, h, gs, "null_shuffles", &o->null_shuffles, 1);
        free(nul);
        free(mn);
        free(tg);
    }
    /* summary: per-fold table and mean / std (ddof 0) */
    const int nm = n_metrics(o);
    double *tab = rc ? NULL : malloc((size_t)(nf * nm + 1) * sizeof *tab);
    double *col = rc ? NULL : malloc((size_t)(nf + 1) * sizeof *col);
    if (!rc && (!tab || !col)) rc = RDML_FAIL(ctx, RDML_ENOMEM, "out of memory");
    for (int i = 0; i < nm && !rc; i++) {
        for (int64_t f = 0; f < nf; f++) tab[f * nm + i] = col[f] = recs[f].v[i];
        char an[64];
        double mean, sd;
        rdml_metrics_mean_std(nf, col, &mean, &sd);
        snprintf(an, sizeof an, "mean_%s", metric_name(o, i));
        rc = rdml_h5_attr_f64(ctx, h, gs, an, &mean, 1);
        snprintf(an, sizeof an, "std_%s", metric_name(o, i));
        if (!rc) rc = rdml_h5_attr_f64(ctx, h, gs, an, &sd, 1);
        if (!rc && i == 0)
            rdml_info(ctx, "subj%02d %-12s %s, %lld pairs, %s x %lld: %s %.3f +- %.3f", id, lab,
                      rdml_pairs_set_name(o->pp.set), (long long)g->P.n,
                      rdml_split_scheme_name(g->S.scheme), (long long)nf,
                      is_svr(o) ? "R^2" : "accuracy", mean, sd);
    }
    char tpath[1000];
    snprintf(tpath, sizeof tpath, "%s/fold_metrics", gs);
    if (!rc) rc = rdml_h5_write_rows_f64(ctx, h, tpath, nf, nm, 0, ctx->rank == 0 ? nf : 0, tab);
    if (!rc) rc = rdml_h5_attr_str(ctx, h, tpath, "columns", is_svr(o) ? "r2,mse,pearson,spearman"
                                                             : "accuracy,precision,recall,f1,roc_auc");
    if (!rc) rc = rdml_h5_attr_str(ctx, h, gs, "type", rdml_svm_type_name(o->svm.type));
    if (!rc) rc = rdml_h5_attr_str(ctx, h, gs, "kernel", rdml_svm_kernel_name(o->svm.kernel));
    if (!rc) rc = rdml_h5_attr_str(ctx, h, gs, "solver", rdml_svm_solver_name(o->svm.solver));
    if (!rc && o->svm.solver == RDML_SVM_LOWRANK) {
        int64_t rk = o->svm.rank, me = o->svm.max_epochs;
        rc = rdml_h5_attr_i64(ctx, h, gs, "rank", &rk, 1);
        if (!rc) rc = rdml_h5_attr_str(ctx, h, gs, "factor", rdml_svm_factor_name(o->svm.factor));
        if (!rc) rc = rdml_h5_attr_f64(ctx, h, gs, "lowrank_tol", &o->svm.lr_tol, 1);
        if (!rc) rc = rdml_h5_attr_i64(ctx, h, gs, "max_epochs", &me, 1);
    }
    double pv[4] = {o->svm.C, (double)o->svm.degree, o->svm.coef0, o->svm.epsilon};
    const char *pn[4] = {"C", "degree", "coef0", "epsilon"};
    for (int i = 0; i < (is_svr(o) ? 4 : 3) && !rc; i++) rc = rdml_h5_attr_f64(ctx, h, gs, pn[i], &pv[i], 1);
    int64_t ngrid = o->grid ? o->nset : 0;
    if (!rc) rc = rdml_h5_attr_i64(ctx, h, gs, "grid_settings", &ngrid, 1);
    if (!rc) rc = rdml_h5_attr_str(ctx, h, gs, "embedding", o->embedding);
    if (!rc) rc = rdml_h5_attr_str(ctx, h, gs, "pairs", gp);
    free(tab);
    free(col);
    free(chosen);
    free(scores);
    return rc;
}

/* After the groups: the results of embeddings this run does not fit go (pairs.embeddings). */
static int svm_finish(rdml_ctx *ctx, rdml_h5 *h, const void *opts) {
    const svm_opts *o = opts;
    return rdml_exp_prune_model_groups(ctx, h, o->experiment, "svm", o->embs);
}

static void svm_metrics(const void *opts, const void *group, int64_t fold, const rdml_rec *rec,
                        double *out) {
    (void)group;
    (void)fold;
    for (int i = 0; i < n_metrics(opts); i++) out[i] = rec->v[i];
}

int rdml_exp_svm_stage(rdml_exp *ex, int64_t array_index, int64_t array_count) {
    svm_opts o;
    memset(&o, 0, sizeof o);
    int rc = read_opts(ex, &o);
    /* pairs.embeddings: one SVM per embedding, a variant of the sweep (pair_emb.c) */
    rdml_pair_embs pe;
    memset(&pe, 0, sizeof pe);
    if (!rc) rc = rdml_exp_pair_embs(ex, "svm", o.embedding, &pe);
    svm_opts *vo = rc ? NULL : calloc((size_t)pe.n, sizeof *vo);
    rdml_sweep_variant *vv = rc ? NULL : calloc((size_t)pe.n, sizeof *vv);
    if (!rc && (!vo || !vv)) rc = RDML_FAIL(ex->ctx, RDML_ENOMEM, "out of memory");
    rc = rdml_agree(ex->ctx, ex->comm, rc);
    for (int i = 0; i < pe.n && !rc; i++) {
        vo[i] = o;
        vo[i].variant = i;
        vo[i].embs = &pe;
        rdml_strlcpy(vo[i].embedding, pe.name[i], sizeof vo[i].embedding);
        if (pe.explicit_) snprintf(vo[i].resname, sizeof vo[i].resname, "svm@%.300s", pe.name[i]);
    }
    if (!rc) {
        rdml_exp_pair_variants(&pe, vo, sizeof *vo, vv);
        rdml_sweep_model m = {"svm", &vo[0], sizeof(svm_group), svm_nfolds, svm_prepare, svm_release,
                              svm_task, svm_write, svm_finish, o.experiment, is_svr(&o) ? "svr" : "svm", n_metrics(&o),
                              is_svr(&o) ? reg_metrics : class_metrics, svm_metrics, pe.n, vv,
                              /* a grid's fits or one C-SVC's SMO iterations split */
                              o.grid || rdml_svm_fit_splits(&o.svm, INT64_MAX) ? svm_task_group : NULL};
        rc = rdml_sweep_run(ex, &m, array_index, array_count);
    }
    free(vo);
    free(vv);
    rdml_exp_pair_embs_free(&pe);
    opts_free(&o);
    return rc;
}
