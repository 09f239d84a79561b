/* `rdmlearn train`: the paper's regression experiment (its Table 2) for subjects x vertex
 * selections. For each it reads the RDM and the embeddings from run.output (as `rdmlearn svm`
 * does), builds the pair set ([pairs]) and the image-disjoint folds ([split]) identically on
 * every rank, and trains one pair network per fold ([train]: train.model = siamese or mlp,
 * nn.h) on the RDM values of the training pairs. Batches are uniformly shuffled pairs, or
 * (train.batching = blocks) all training pairs between two blocks of images, so that the
 * pair-decomposed network runs its tower on few images per batch. With [grid] train_* lists,
 * each outer fold first runs an inner k-fold over its own training images for every setting
 * (lr, dropout, epochs, weight decay, tower and head widths), keeps the setting with the best
 * mean inner score (R^2 by default) and refits it on the whole outer training set. One outer
 * fold's work (inner grid: rdml_cv_grid_search; the fits: rdml_pairnet_fit; metrics and the
 * chance levels: rdml/cv.h) is one function (run_fold) that fills a flat record; the outer
 * folds are tasks of the sweep engine's dynamic task farm, and the farm's last folds (fewer
 * left than ranks) run on groups of ranks (tr_task_group: the inner fits split over the
 * group, the final fit given the group's communicator), so a result never depends on the
 * rank count (weights from (run.seed, fit key), batch order from
 * (run.seed, fit key, epoch), dropout masks from (run.seed, fit key, epoch, batch, image); the
 * final fit's key is the fold number, inner fits add the inner fold). Per fold it stores the
 * per-epoch train/test loss, the test predictions, R^2 / MSE / Pearson / Spearman, and the two
 * chance levels of the paper in the same table: predicting the training mean, and the model's
 * predictions scored against shuffled test targets. A fold whose loss becomes NaN stops with a
 * message in its status attribute; the other folds go on and the summary counts the finished
 * folds only. A finished fold whose predictions are (nearly) constant, its network dead, is
 * flagged "collapsed" (status, attributes, a warning) and still counted in the means; the
 * summary says how many. train.model = cnn trains the paper's siamese CNN on the subject's images
 * (grayscale, train.cnn_size square, min-max normalised) instead of embeddings. Left out:
 * distributing the image loading over ranks, early stopping. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exp_priv.h"
#include "rdml/dataset.h"
#include "rdml/h5.h"
#include "rdml/metrics.h"
#include "rdml/mpiutil.h"
#include "rdml/nn.h"
#include "rdml/pairs.h"
#include "rdml/png.h"
#include "rdml/sched.h"

#define ML RDML_PAIRNET_MAXLAYERS

/* What the grid varies: one setting. */
typedef struct train_set {
    double lr, dropout, weight_decay;
    int64_t epochs;
    int ntower, nhead;
    int64_t tower[ML], head[ML]; /* head: siamese head widths, or the mlp's widths */
} train_set;

typedef struct train_opts {
    rdml_pairs_params pp;
    rdml_split_params sp;
    rdml_pairnet_params net; /* the non-grid network parameters */
    rdml_cnn_params cnn;
    int is_cnn, is_mlp;
    rdml_optim opt;          /* the non-grid optimiser parameters */
    const char *model, *experiment;
    char embedding[256];
    char resname[320]; /* the results group: the model, or <model>@<embedding> (pairs.embeddings) */
    int variant;       /* the embedding's index: only the first writes the shared pairs */
    const struct rdml_pair_embs *embs; /* every embedding of the run (stale groups are removed) */
    int64_t batch, input_dim, block_images;
    int64_t pair_images;     /* pairs.images: 0 = all */
    double max_memory_gb;    /* train.max_memory_gb: 0 = the node's available share */
    double warmup_epochs;    /* train.warmup: epochs of linear lr warm-up (steps: per fit) */
    int standardize, blocks;
    uint64_t seed;
    train_set base;          /* the [train] values */
    /* grid: nset settings (1 and grid = 0 without one), inner folds, score */
    int grid;
    train_set *set;
    int64_t nset, inner_folds, max_epochs;
    int64_t null_shuffles;   /* train.null_shuffles: target shuffles of the R^2 null */
    int64_t shards;          /* train.shards: parts of every step, for a fit over ranks */
    rdml_cv_scoring scoring;
    char axes[128];
} train_opts;

static int read_int_list(rdml_ctx *ctx, const rdml_config *cfg, const char *key, int64_t *dst,
                         int *n) {
    int64_t *v;
    int nv;
    RDML_TRY(rdml_config_int_list(ctx, cfg, "train", key, &v, &nv));
    if (nv > ML) {
        free(v);
        return RDML_FAIL(ctx, RDML_ECONFIG, "[train] %s has %d widths; at most %d layers", key, nv, ML);
    }
    memcpy(dst, v, (size_t)nv * sizeof *v);
    *n = nv;
    free(v);
    return RDML_OK;
}

/* "512:256" -> widths. */
static int parse_widths(rdml_ctx *ctx, const char *key, const char *item, int64_t *w, int *nw) {
    const char *p = item;
    *nw = 0;
    while (*p) {
        char *end;
        long long v = strtoll(p, &end, 10);
        if (end == p || v < 1 || v > 1048576 || (*end && *end != ':') || *nw >= ML)
            return RDML_FAIL(ctx, RDML_ECONFIG, "[grid] %s item \"%s\": expected layer widths 1..1048576 "
                             "joined by ':' (at most %d layers), e.g. 512:256,256:128", key, item, ML);
        w[(*nw)++] = v;
        p = *end ? end + 1 : end;
    }
    if (!*nw) return RDML_FAIL(ctx, RDML_ECONFIG, "[grid] %s has an empty item (e.g. 512:256,256:128)", key);
    return RDML_OK;
}

static void widths_text(const int64_t *w, int n, char *out, size_t len) {
    out[0] = '\0';
    for (int l = 0; l < n; l++) {
        size_t k = strlen(out);
        snprintf(out + k, len - k, "%s%lld", l ? ":" : "", (long long)w[l]);
    }
}

/* [grid] train_* axes; settings in scikit-learn's ParameterGrid order (names sorted:
 * dropout, epochs, head, lr, tower, weight_decay; the last varies fastest). */
enum { AX_DROPOUT = 0, AX_EPOCHS, AX_HEAD, AX_LR, AX_TOWER, AX_WD, AX_N };
static int read_grid(rdml_ctx *ctx, const rdml_config *cfg, train_opts *o) {
    static const char *const keys[AX_N] = {"train_dropout", "train_epochs", "train_head", "train_lr",
                                           "train_tower", "train_weight_decay"};
    char **items[AX_N] = {0};
    int nit[AX_N] = {0}, rc = RDML_OK;
    o->axes[0] = '\0';
    int64_t total = 1;
    for (int a = 0; a < AX_N && !rc; a++) {
        rc = rdml_config_list(ctx, cfg, "grid", keys[a], &items[a], &nit[a]);
        if (rc) break;
        if (nit[a] == 1 && strcmp(items[a][0], "off") == 0) {
            nit[a] = 0;
            continue;
        }
        if (o->is_cnn && (a == AX_DROPOUT || a == AX_HEAD || a == AX_TOWER))
            rc = RDML_FAIL(ctx, RDML_ECONFIG, "[grid] %s is set but train.model = cnn has no %s (hint: "
                           "grid train_lr, train_epochs and train_weight_decay, or set it to off)",
                           keys[a], a == AX_DROPOUT ? "dropout" : "tower or head widths");
        if (o->is_mlp && a == AX_TOWER)
            rc = RDML_FAIL(ctx, RDML_ECONFIG, "[grid] train_tower is set but train.model = mlp has no tower "
                           "(hint: train_head varies the mlp's widths)");
        size_t l = strlen(o->axes);
        snprintf(o->axes + l, sizeof o->axes - l, "%s%s", l ? "," : "", keys[a] + 6);
        total *= nit[a];
        o->grid = 1;
    }
    if (!rc && total > 100000)
        rc = RDML_FAIL(ctx, RDML_ECONFIG, "[grid] the train_* lists make %lld settings; at most 100000",
                       (long long)total);
    if (!rc) {
        o->nset = total;
        o->set = calloc((size_t)total, sizeof *o->set);
        if (!o->set) rc = RDML_FAIL(ctx, RDML_ENOMEM, "out of memory for the grid");
    }
    o->max_epochs = 0;
    for (int64_t s = 0; s < total && !rc; s++) {
        train_set *t = &o->set[s];
        *t = o->base;
        int64_t rest = s;
        for (int a = AX_N - 1; a >= 0 && !rc; a--) {
            if (!nit[a]) continue;
            const char *it = items[a][rest % nit[a]];
            rest /= nit[a];
            char *end;
            double v = strtod(it, &end);
            int num_ok = end != it && *end == '\0' && isfinite(v);
            switch (a) {
            case AX_DROPOUT:
                if (!num_ok || v < 0 || v >= 1)
                    rc = RDML_FAIL(ctx, RDML_ECONFIG, "[grid] train_dropout item \"%s\": expected a "
                                   "probability in [0, 1), e.g. 0,0.25,0.5", it);
                t->dropout = v;
                break;
            case AX_EPOCHS:
                if (!num_ok || v < 1 || v > 1e6 || v != floor(v))
                    rc = RDML_FAIL(ctx, RDML_ECONFIG, "[grid] train_epochs item \"%s\": expected an "
                                   "integer 1..1000000, e.g. 5,10,20", it);
                t->epochs = (int64_t)v;
                break;
            case AX_LR:
                if (!num_ok || v <= 0)
                    rc = RDML_FAIL(ctx, RDML_ECONFIG, "[grid] train_lr item \"%s\": expected a positive "
                                   "number, e.g. 0.0003,0.001,0.003", it);
                t->lr = v;
                break;
            case AX_WD:
                if (!num_ok || v < 0)
                    rc = RDML_FAIL(ctx, RDML_ECONFIG, "[grid] train_weight_decay item \"%s\": expected a "
                                   "number >= 0, e.g. 0,1e-4,1e-3", it);
                t->weight_decay = v;
                break;
            case AX_HEAD:
                rc = parse_widths(ctx, keys[a], it, t->head, &t->nhead);
                break;
            case AX_TOWER:
                rc = parse_widths(ctx, keys[a], it, t->tower, &t->ntower);
                break;
            }
        }
        if (t->epochs > o->max_epochs) o->max_epochs = t->epochs;
    }
    for (int a = 0; a < AX_N; a++) free(items[a]);
    if (rc) return rc;
    const char *sc;
    RDML_TRY(rdml_config_int(ctx, cfg, "grid", "inner_folds", &o->inner_folds));
    RDML_TRY(rdml_config_str(ctx, cfg, "grid", "scoring", &sc));
    o->scoring = strcmp(sc, "auto") == 0 ? RDML_SCORE_R2 : (rdml_cv_scoring)rdml_cv_scoring_parse(sc);
    if (rdml_cv_scoring_is_classification(o->scoring))
        return RDML_FAIL(ctx, RDML_ECONFIG, "[grid] scoring = %s is a classification score; `rdmlearn "
                         "train` regresses RDM values (hint: r2, neg_mse, pearson, spearman or auto)", sc);
    return RDML_OK;
}

static int read_opts(rdml_exp *ex, train_opts *o) {
    rdml_ctx *ctx = ex->ctx;
    const rdml_config *cfg = ex->cfg;
    const char *s;
    int64_t seed;
    memset(o, 0, sizeof *o);
    RDML_TRY(rdml_config_int(ctx, cfg, "run", "seed", &seed));
    o->seed = (uint64_t)seed;
    double color_fraction; /* the SVM's colour experiment only */
    RDML_TRY(rdml_exp_pairs_opts(ctx, cfg, o->seed, &o->experiment, &o->pp, &o->pair_images,
                                 &color_fraction, &o->sp));
    o->pp.continuous = 1; /* regression on the RDM value, whatever pairs.labels says */
    if (o->pp.set == RDML_PAIRS_COLORS)
        return RDML_FAIL(ctx, RDML_ECONFIG, "[pairs] set = colors is the SVM's colour experiment; "
                         "train predicts RDM values (hint: set = all, extremes, balanced or percentile)");

    RDML_TRY(rdml_config_str(ctx, cfg, "train", "model", &o->model));
    o->is_mlp = strcmp(o->model, "mlp") == 0;
    o->is_cnn = strcmp(o->model, "cnn") == 0;
    train_set *b = &o->base;
    RDML_TRY(rdml_config_real(ctx, cfg, "train", "dropout", &b->dropout));
    if (o->is_mlp) {
        rdml_pairnet_mlp_defaults(&o->net, 0);
        RDML_TRY(read_int_list(ctx, cfg, "mlp_widths", b->head, &b->nhead));
    } else {
        rdml_pairnet_defaults(&o->net);
        RDML_TRY(read_int_list(ctx, cfg, "tower", b->tower, &b->ntower));
        RDML_TRY(read_int_list(ctx, cfg, "head", b->head, &b->nhead));
    }
    RDML_TRY(rdml_config_str(ctx, cfg, "train", "output", &s));
    o->net.sigmoid_out = strcmp(s, "sigmoid2") == 0;
    RDML_TRY(rdml_config_real(ctx, cfg, "train", "pearson_mix", &o->net.pearson_mix));
    rdml_cnn_defaults(&o->cnn);
    o->cnn.sigmoid_out = o->net.sigmoid_out;
    o->cnn.pearson_mix = o->net.pearson_mix;
    RDML_TRY(rdml_config_int(ctx, cfg, "train", "cnn_size", &o->cnn.size));
    RDML_TRY(rdml_config_real(ctx, cfg, "train", "max_memory_gb", &o->max_memory_gb));
    {
        int64_t ch[ML];
        int nch;
        RDML_TRY(read_int_list(ctx, cfg, "cnn_channels", ch, &nch));
        if (nch != 2)
            return RDML_FAIL(ctx, RDML_ECONFIG, "[train] cnn_channels has %d values; the paper's CNN "
                             "has two conv layers: give two (e.g. 32,64)", nch);
        o->cnn.c1 = ch[0];
        o->cnn.c2 = ch[1];
    }
    RDML_TRY(rdml_config_str(ctx, cfg, "train", "mode", &s));
    o->net.mode = strcmp(s, "perpair") == 0 ? RDML_PAIRNET_PERPAIR : RDML_PAIRNET_DECOMPOSED;
    RDML_TRY(rdml_config_str(ctx, cfg, "train", "batching", &s));
    o->blocks = strcmp(s, "blocks") == 0;
    RDML_TRY(rdml_config_int(ctx, cfg, "train", "block_images", &o->block_images));
    RDML_TRY(rdml_config_int(ctx, cfg, "train", "input_dim", &o->input_dim));
    RDML_TRY(rdml_config_bool(ctx, cfg, "train", "standardize", &o->standardize));
    RDML_TRY(rdml_config_int(ctx, cfg, "train", "epochs", &b->epochs));
    RDML_TRY(rdml_config_int(ctx, cfg, "train", "batch", &o->batch));
    if (o->block_images == 0) { /* auto: block^2 ~ batch pairs */
        o->block_images = (int64_t)ceil(sqrt((double)o->batch));
        if (o->block_images < 2) o->block_images = 2;
    }
    rdml_optim_defaults(&o->opt);
    RDML_TRY(rdml_config_str(ctx, cfg, "train", "optimizer", &s));
    o->opt.kind = strcmp(s, "sgd") == 0 ? RDML_OPTIM_SGD : RDML_OPTIM_ADAM;
    RDML_TRY(rdml_config_real(ctx, cfg, "train", "lr", &b->lr));
    RDML_TRY(rdml_config_real(ctx, cfg, "train", "momentum", &o->opt.momentum));
    RDML_TRY(rdml_config_real(ctx, cfg, "train", "warmup", &o->warmup_epochs));
    RDML_TRY(rdml_config_int(ctx, cfg, "train", "null_shuffles", &o->null_shuffles));
    RDML_TRY(rdml_config_int(ctx, cfg, "train", "shards", &o->shards));
    RDML_TRY(rdml_config_real(ctx, cfg, "train", "weight_decay", &b->weight_decay));

    RDML_TRY(rdml_config_str(ctx, cfg, "embed", "name", &s));
    if (!*s) RDML_TRY(rdml_config_str(ctx, cfg, "embed", "backend", &s));
    rdml_strlcpy(o->embedding, s, sizeof o->embedding);
    rdml_strlcpy(o->resname, o->model, sizeof o->resname);
    return read_grid(ctx, cfg, o);
}

/* The network and optimiser of setting t. */
static void apply_set(const train_opts *o, const train_set *t, int64_t d, rdml_pairnet_params *np,
                      rdml_optim *opt) {
    *np = o->net;
    np->in_dim = d;
    if (o->is_mlp) {
        np->ntower = 0;
        np->head_dropout = t->dropout;
    } else {
        np->ntower = t->ntower;
        memcpy(np->tower, t->tower, sizeof np->tower);
        np->tower_dropout = t->dropout;
    }
    np->nhead = t->nhead;
    memcpy(np->head, t->head, sizeof np->head);
    *opt = o->opt;
    opt->lr = t->lr;
    opt->weight_decay = t->weight_decay;
}


/* ---- one subject x selection: the group every fold reads ---- */
typedef struct train_group {
    int id;
    char name[256];
    int64_t n, d;
    float *E;            /* n x d embeddings (or grayscale pixels for the cnn) */
    rdml_pairs P;
    rdml_split S;
    rdml_cv_folds F;    /* pair lists per fold; grid: inner folds */
    double *target;      /* P.n RDM values */
} train_group;

/* Fold record (a flat array of doubles, the layout of the lead's task records):
 * [ST_N statistics][pred: nte][train_loss: max_epochs][test_loss: max_epochs]
 * [grid: nset x inner_folds inner scores]. */
enum { ST_R2 = 0, ST_MSE, ST_PEARSON, ST_SPEARMAN, /* model on the test pairs */
       ST_MEAN_R2, ST_MEAN_MSE, ST_MEAN_PEARSON, ST_MEAN_SPEARMAN, /* training-mean predictor */
       ST_SHUF_R2, ST_SHUF_MSE, ST_SHUF_PEARSON, ST_SHUF_SPEARMAN, /* vs shuffled targets */
       ST_TRAIN_R2, ST_OK, ST_SECONDS, ST_PAIRS_PER_S, ST_EPOCHS_DONE, ST_CHOSEN,
       ST_STOP_KIND, ST_STOP_EPOCH, ST_STOP_STEP, ST_STOP_VALUE,
       ST_COLLAPSED, ST_TRAIN_SPREAD, ST_TEST_SPREAD, /* collapse: 0/1, pred std / target std */
       ST_DEAD_UNITS, ST_UNITS, ST_DEAD_LAYER,           /* pair network: never-active ReLUs */
       ST_N };
enum { STOP_NONE = RDML_FIT_FINISHED, STOP_LOSS = RDML_FIT_DIVERGED_LOSS, STOP_PRED = RDML_FIT_DIVERGED_PRED };
static const char *const metric_names[4] = {"r2", "mse", "pearson", "spearman"};

static int64_t rec_len(const train_opts *o, const train_group *g, int64_t f) {
    return ST_N + g->F.nte[f] + 2 * o->max_epochs + (o->grid ? o->nset * o->inner_folds : 0) +
           o->null_shuffles;
}

/* The record's last train.null_shuffles values: the fold's R^2 null distribution. */
static const double *rec_null(const train_opts *o, const train_group *g, int64_t f,
                              const double *rec) {
    return rec + rec_len(o, g, f) - o->null_shuffles;
}

static void four(int64_t n, const double *y, const double *p, double *dst) {
    dst[0] = rdml_metrics_r2(n, y, p);
    dst[1] = rdml_metrics_mse(n, y, p);
    dst[2] = rdml_metrics_pearson(n, y, p);
    dst[3] = rdml_metrics_spearman(n, y, p);
}

/* The status text of a fold from its record. */
static void status_text(const double *st, char *out, size_t len) {
    if (st[ST_OK] == 1 && st[ST_COLLAPSED] == 1) {
        int n = snprintf(out, len, "collapsed: constant prediction (std of the predictions %.2g x the "
                         "targets' on the training pairs, %.2g x on the test pairs", st[ST_TRAIN_SPREAD],
                         st[ST_TEST_SPREAD]);
        if (st[ST_UNITS] > 0 && n >= 0 && (size_t)n < len)
            n += snprintf(out + n, len - (size_t)n, "; %.0f of %.0f hidden ReLU units never active%s",
                          st[ST_DEAD_UNITS], st[ST_UNITS],
                          st[ST_DEAD_LAYER] >= 0 ? ", a whole layer dead" : "");
        if (n >= 0 && (size_t)n < len)
            snprintf(out + n, len - (size_t)n, "); counted in the mean (hint: lower train.lr or "
                     "raise train.warmup; docs/nn.md)");
    } else if (st[ST_OK] == 1)
        snprintf(out, len, "ok");
    else if (st[ST_STOP_KIND] == STOP_LOSS)
        snprintf(out, len, "diverged in epoch %lld: the training loss became %g at step %lld (hint: "
                 "lower train.lr)", (long long)st[ST_STOP_EPOCH], st[ST_STOP_VALUE], (long long)st[ST_STOP_STEP]);
    else if (st[ST_STOP_KIND] == STOP_PRED)
        snprintf(out, len, "diverged: test prediction %lld is %g (hint: lower train.lr)",
                 (long long)st[ST_STOP_STEP], st[ST_STOP_VALUE]);
    else
        snprintf(out, len, "not run");
}

typedef rdml_fit_result fit_res;

/* Train setting t on the training pairs tr (indices into g->P) and predict the test pairs te.
 * key seeds the weights, the batch order and the dropout masks. pred (nte) gets the final
 * predictions; train_loss / test_loss (t->epochs, may be NULL) the per-epoch losses; with
 * want_train_r2 the training R^2 on at most 200000 (cnn 2000) training pairs. A diverging run
 * is not an error: res->stop_kind says what happened. Collective over comm (MPI_COMM_NULL:
 * this rank alone; a group of ranks: the data-parallel fit, rdml_fit_opts.comm). */
static int fit(rdml_ctx *ctx, MPI_Comm comm, const train_opts *o, const train_set *t, uint64_t key,
               const train_group *g, const int64_t *tr, int64_t ntr, const int64_t *te, int64_t nte,
               double *pred, double *train_loss, double *test_loss, int want_train_r2, fit_res *res) {
    const int64_t n = g->n, d = g->d;
    const rdml_pairs *P = &g->P;
    const float *E = g->E;
    memset(res, 0, sizeof *res);
    rdml_pairnet_params np;
    rdml_optim opt;
    apply_set(o, t, d, &np, &opt);
    rdml_pairnet *net = NULL;
    rdml_cnn *cnn = NULL;
    int64_t nev = ntr < (o->is_cnn ? 2000 : 200000) ? ntr : (o->is_cnn ? 2000 : 200000);
    int64_t *trij = malloc((size_t)(2 * ntr + 1) * sizeof *trij), *teij = malloc((size_t)(2 * nte + 1) * sizeof *teij);
    double *ytr = malloc((size_t)(ntr + 1) * sizeof *ytr), *yte = malloc((size_t)(nte + 1) * sizeof *yte);
    int stdz = o->standardize && !o->is_cnn;
    float *Es = stdz ? malloc((size_t)(n * d) * sizeof *Es) : NULL;
    int rc = trij && teij && ytr && yte && (Es || !stdz) ? RDML_OK
             : RDML_FAIL(ctx, RDML_ENOMEM, "out of memory for a fit of %lld pairs", (long long)ntr);
    if (!rc && o->is_cnn) rc = rdml_cnn_create(ctx, &o->cnn, o->seed, key, &cnn);
    else if (!rc) rc = rdml_pairnet_create(ctx, &np, o->seed, key, &net);
    if (!rc) {
        rdml_cv_gather(ntr, tr, P->ij, P->value, trij, ytr);
        rdml_cv_gather(nte, te, P->ij, P->value, teij, yte);
    }
    if (!rc && Es) {
        /* z-score each embedding column with the mean and std of the fit's TRAINING images
         * (the images of its training pairs), so no test image informs the scaling */
        char *used = calloc((size_t)n, 1);
        double *mu = calloc((size_t)d, sizeof *mu), *sd = calloc((size_t)d, sizeof *sd);
        if (!used || !mu || !sd) rc = RDML_FAIL(ctx, RDML_ENOMEM, "out of memory");
        int64_t cnt = 0;
        for (int64_t q = 0; q < 2 * ntr && !rc; q++) used[trij[q]] = 1;
        for (int64_t i = 0; i < n && !rc; i++)
            if (used[i]) {
                cnt++;
                for (int64_t c = 0; c < d; c++) mu[c] += E[i * d + c];
            }
        for (int64_t c = 0; c < d && !rc; c++) mu[c] /= (double)cnt;
        for (int64_t i = 0; i < n && !rc; i++)
            if (used[i])
                for (int64_t c = 0; c < d; c++) sd[c] += (E[i * d + c] - mu[c]) * (E[i * d + c] - mu[c]);
        for (int64_t c = 0; c < d && !rc; c++) sd[c] = sqrt(sd[c] / (double)cnt);
        for (int64_t i = 0; i < n && !rc; i++)
            for (int64_t c = 0; c < d; c++)
                Es[i * d + c] = sd[c] > 0 ? (float)((E[i * d + c] - mu[c]) / sd[c]) : 0.0f;
        free(used);
        free(mu);
        free(sd);
        E = Es;
    }
    double mean = 0;
    for (int64_t q = 0; q < ntr; q++) mean += P->value[tr[q]];
    mean /= (double)(ntr > 0 ? ntr : 1);
    /* start the output at the training targets' mean: otherwise the first epochs are spent
     * learning the offset of values near 1 */
    if (!rc && cnn) rdml_cnn_set_output_bias(cnn, mean);
    else if (!rc) rdml_pairnet_set_output_bias(net, mean);
    rdml_fit_opts fo = {.epochs = t->epochs, .batch = o->batch, .blocks = o->blocks,
                        .block_images = o->block_images, .warmup_epochs = o->warmup_epochs,
                        .seed = o->seed, .key = key, .n_eval = nev, .eval_train = want_train_r2,
                        .comm = comm, .shards = o->shards};
    if (!rc) rc = rdml_pairnet_fit(ctx, net, cnn, &opt, &fo, E, n, ntr, trij, ytr, nte, teij, yte, pred,
                                   train_loss, test_loss, res);
    rdml_pairnet_free(&net);
    rdml_cnn_free(&cnn);
    free(Es);
    free(trij);
    free(teij);
    free(ytr);
    free(yte);
    return rc;
}

/* A grid setting fit on an inner fold's training pairs and scored on its test pairs; a
 * diverged fit scores NaN (ranks last). */
typedef struct grid_user {
    const train_opts *o;
    const train_group *g;
    int64_t f; /* the outer fold */
} grid_user;

static int grid_fit_score(rdml_ctx *ctx, void *user, int64_t s, int64_t k, const int64_t *itr,
                          int64_t nitr, const int64_t *ite, int64_t nite, double *score) {
    const grid_user *u = user;
    double *ip = malloc((size_t)(nite + 1) * sizeof *ip), *iy = malloc((size_t)(nite + 1) * sizeof *iy);
    int rc = ip && iy ? RDML_OK : RDML_FAIL(ctx, RDML_ENOMEM, "out of memory for the grid");
    for (int64_t q = 0; q < nite && !rc; q++) iy[q] = u->g->target[ite[q]];
    uint64_t ikey = (uint64_t)u->f + ((uint64_t)(k + 1) << 32);
    fit_res fr;
    if (!rc) rc = fit(ctx, MPI_COMM_NULL, u->o, &u->o->set[s], ikey, u->g, itr, nitr, ite, nite, ip, NULL, NULL, 0, &fr);
    if (!rc && !fr.stop_kind) rc = rdml_cv_score(ctx, u->o->scoring, nite, iy, ip, score);
    else if (!rc) *score = NAN; /* diverged: ranks last */
    free(ip);
    free(iy);
    return rc;
}

/* One outer fold, the unit of work that a task farm can hand out: with a grid, every setting
 * is fit on every inner fold of the fold's training images and scored on the inner test
 * pairs; the best mean inner score picks the setting; it is refit on the whole outer training
 * set and scored on the outer test pairs, with the two chance levels. Fills rec (rec_len
 * values, allocated by the caller). Collective over comm: MPI_COMM_NULL for a task of one rank;
 * on a group of ranks (the sweep's task_group) the inner fits are split over the group
 * (rdml_exp_grid_search) and the final fit is data-parallel over it; the record is the same. */
static int run_fold(rdml_ctx *ctx, MPI_Comm comm, const train_opts *o, const train_group *g,
                    int64_t f, double *rec) {
    const int64_t nte = g->F.nte[f], ntr = g->F.ntr[f], E_ = o->max_epochs;
    const int64_t *tr = g->F.tr[f], *te = g->F.te[f];
    double *st = rec, *pred = rec + ST_N, *tl = pred + nte, *vl = tl + E_, *scores = vl + E_;
    for (int i = 0; i < ST_N; i++) st[i] = NAN;
    for (int64_t q = 0; q < nte; q++) pred[q] = NAN;
    for (int64_t e = 0; e < 2 * E_; e++) tl[e] = NAN;
    double *null = (double *)rec_null(o, g, f, rec);
    for (int64_t b = 0; b < o->null_shuffles; b++) null[b] = NAN;
    st[ST_OK] = 0;
    st[ST_STOP_KIND] = STOP_NONE;
    int64_t chosen = 0;
    int rc = RDML_OK;
    if (o->grid) {
        const int64_t nu = g->S.nunits;
        const int by_pairs = g->S.scheme == RDML_SPLIT_PAIRS;
        grid_user u = {o, g, f};
        rc = rdml_exp_grid_search(ctx, comm, o->nset, o->inner_folds, g->P.n, g->P.ij,
                                  by_pairs ? NULL : g->F.ifold + f * nu,
                                  by_pairs ? g->F.ifold + f * nu : NULL, grid_fit_score, &u, scores,
                                  &chosen);
    }
    st[ST_CHOSEN] = (double)chosen;
    fit_res fr;
    if (!rc) rc = fit(ctx, comm, o, &o->set[chosen], (uint64_t)f, g, tr, ntr, te, nte, pred, tl, vl, 1, &fr);
    if (rc) return rc;
    st[ST_SECONDS] = fr.seconds;
    st[ST_PAIRS_PER_S] = fr.pairs_per_s;
    st[ST_EPOCHS_DONE] = (double)fr.epochs_done;
    st[ST_STOP_KIND] = fr.stop_kind;
    st[ST_STOP_EPOCH] = (double)fr.stop_epoch;
    st[ST_STOP_STEP] = (double)fr.stop_step;
    st[ST_STOP_VALUE] = fr.stop_value;
    if (fr.stop_kind) return RDML_OK;
    double *yte = malloc((size_t)(nte + 1) * sizeof *yte), *tmp = malloc((size_t)(nte + 1) * sizeof *tmp);
    if (!yte || !tmp) rc = RDML_FAIL(ctx, RDML_ENOMEM, "out of memory");
    if (!rc) {
        for (int64_t q = 0; q < nte; q++) yte[q] = g->target[te[q]];
        four(nte, yte, pred, st + ST_R2);
        /* chance 1: the training targets' mean for every test pair */
        double mean = rdml_cv_train_mean(g->target, tr, ntr);
        for (int64_t q = 0; q < nte; q++) tmp[q] = mean;
        four(nte, yte, tmp, st + ST_MEAN_R2);
        /* chance 2: the model's predictions against a seeded permutation of the test targets */
        rc = rdml_cv_shuffled_targets(ctx, o->seed, f, nte, yte, tmp);
    }
    if (!rc) {
        four(nte, tmp, pred, st + ST_SHUF_R2);
        /* the null distribution of R^2: many target shuffles instead of one */
        rc = rdml_cv_null_r2(ctx, o->seed, f, nte, yte, pred, o->null_shuffles, null);
    }
    if (!rc) {
        st[ST_TRAIN_R2] = fr.train_r2;
        st[ST_OK] = 1;
        /* a finished fit whose predictions are (nearly) constant on the training or the test
         * pairs: it still counts (it is what the method produced), but it is flagged */
        st[ST_TRAIN_SPREAD] = fr.train_spread;
        st[ST_TEST_SPREAD] = fr.test_spread;
        st[ST_DEAD_UNITS] = (double)fr.dead_units;
        st[ST_UNITS] = (double)fr.units;
        st[ST_DEAD_LAYER] = (double)fr.dead_layer;
        st[ST_COLLAPSED] = (isfinite(fr.train_spread) && rdml_nn_collapsed(fr.train_spread, 1.0)) ||
                           (isfinite(fr.test_spread) && rdml_nn_collapsed(fr.test_spread, 1.0)) ||
                           fr.dead_layer >= 0;
    }
    free(yte);
    free(tmp);
    return rc;
}

static int write_pairs(rdml_ctx *ctx, rdml_h5 *h, const char *gpath, const train_opts *o,
                       const train_group *g) {
    return rdml_exp_write_pairs(ctx, h, gpath, &g->P, &g->S, g->n, rdml_pairs_set_name(o->pp.set),
                                "RDM value of each pair: the regression target");
}

static int write_set_attrs(rdml_ctx *ctx, rdml_h5 *h, const char *obj, const train_opts *o,
                           const train_set *t) {
    double pv[4] = {t->lr, t->dropout, t->weight_decay, (double)t->epochs};
    const char *pn[4] = {"lr", "dropout", "weight_decay", "epochs_setting"};
    int rc = RDML_OK;
    for (int i = 0; i < 4 && !rc; i++) rc = rdml_h5_attr_f64(ctx, h, obj, pn[i], &pv[i], 1);
    char w[256];
    widths_text(t->tower, o->is_mlp ? 0 : t->ntower, w, sizeof w);
    if (!rc) rc = rdml_h5_attr_str(ctx, h, obj, "tower", w);
    widths_text(t->head, t->nhead, w, sizeof w);
    if (!rc) rc = rdml_h5_attr_str(ctx, h, obj, "head", w);
    return rc;
}

static int write_fold(rdml_ctx *ctx, rdml_h5 *h, const char *gs, const train_opts *o,
                      const train_group *g, int64_t f, const double *rec) {
    const int64_t nte = g->F.nte[f], E_ = o->max_epochs;
    const double *st = rec, *pred = rec + ST_N, *tl = pred + nte, *vl = tl + E_;
    char fg[800], path[860], status[512];
    snprintf(fg, sizeof fg, "%s/fold_%lld", gs, (long long)f);
    int rc = rdml_h5_group(ctx, h, fg);
    double *tgt = malloc((size_t)(nte + 1) * sizeof *tgt);
    if (!tgt) rc = RDML_FAIL(ctx, RDML_ENOMEM, "out of memory writing fold %lld", (long long)f);
    for (int64_t q = 0; q < nte && tgt; q++) tgt[q] = g->target[g->F.te[f][q]];
    snprintf(path, sizeof path, "%s/test_pairs", fg);
    if (!rc) rc = rdml_h5_write_vec_i64(ctx, h, path, nte, g->F.te[f]);
    snprintf(path, sizeof path, "%s/pred", fg);
    if (!rc) rc = rdml_h5_write_vec_f64(ctx, h, path, nte, pred);
    snprintf(path, sizeof path, "%s/target", fg);
    if (!rc) rc = rdml_h5_write_vec_f64(ctx, h, path, nte, tgt);
    snprintf(path, sizeof path, "%s/train_loss", fg);
    if (!rc) rc = rdml_h5_write_vec_f64(ctx, h, path, E_, tl);
    if (!rc) rc = rdml_h5_attr_str(ctx, h, path, "meaning", "mean training loss of each epoch (NaN: not reached)");
    snprintf(path, sizeof path, "%s/test_loss", fg);
    if (!rc) rc = rdml_h5_write_vec_f64(ctx, h, path, E_, vl);
    if (!rc) rc = rdml_h5_attr_str(ctx, h, path, "meaning", "test MSE after each epoch (NaN: not reached)");
    for (int i = 0; i < 4 && !rc; i++) rc = rdml_h5_attr_f64(ctx, h, fg, metric_names[i], &st[ST_R2 + i], 1);
    for (int i = 0; i < 4 && !rc; i++) {
        char an[64];
        snprintf(an, sizeof an, "mean_predictor_%s", metric_names[i]);
        rc = rdml_h5_attr_f64(ctx, h, fg, an, &st[ST_MEAN_R2 + i], 1);
        snprintf(an, sizeof an, "shuffled_%s", metric_names[i]);
        if (!rc) rc = rdml_h5_attr_f64(ctx, h, fg, an, &st[ST_SHUF_R2 + i], 1);
    }
    if (!rc) rc = rdml_h5_attr_f64(ctx, h, fg, "train_r2", &st[ST_TRAIN_R2], 1);
    if (!rc) rc = rdml_h5_attr_f64(ctx, h, fg, "fit_seconds", &st[ST_SECONDS], 1);
    if (!rc) rc = rdml_h5_attr_f64(ctx, h, fg, "pairs_per_second", &st[ST_PAIRS_PER_S], 1);
    status_text(st, status, sizeof status);
    if (!rc) rc = rdml_h5_attr_str(ctx, h, fg, "status", status);
    /* collapse diagnostics: prediction spread (std / the targets' std) on the training and the
     * test pairs, and the pair network's hidden ReLU units never active on the training pairs */
    int64_t col = st[ST_COLLAPSED] == 1;
    double dfrac = st[ST_UNITS] > 0 ? st[ST_DEAD_UNITS] / st[ST_UNITS] : NAN;
    if (!rc) rc = rdml_h5_attr_i64(ctx, h, fg, "collapsed", &col, 1);
    if (!rc) rc = rdml_h5_attr_f64(ctx, h, fg, "prediction_spread_train", &st[ST_TRAIN_SPREAD], 1);
    if (!rc) rc = rdml_h5_attr_f64(ctx, h, fg, "prediction_spread_test", &st[ST_TEST_SPREAD], 1);
    if (!rc) rc = rdml_h5_attr_f64(ctx, h, fg, "dead_unit_fraction", &dfrac, 1);
    int64_t iv[3] = {g->F.ntr[f], nte, (int64_t)st[ST_CHOSEN]};
    if (!rc) rc = rdml_h5_attr_i64(ctx, h, fg, "n_train", &iv[0], 1);
    if (!rc) rc = rdml_h5_attr_i64(ctx, h, fg, "n_test", &iv[1], 1);
    if (!rc && o->grid) rc = rdml_h5_attr_i64(ctx, h, fg, "chosen", &iv[2], 1);
    if (!rc && o->grid) rc = write_set_attrs(ctx, h, fg, o, &o->set[iv[2]]);
    if (!rc) rc = rdml_exp_write_null(ctx, h, fg, "null_r2", st[ST_R2], rec_null(o, g, f, rec), o->null_shuffles);
    free(tgt);
    return rc;
}

/* …/grid: the settings, and per outer fold the inner scores, their mean and the choice. */
static int write_grid(rdml_ctx *ctx, rdml_h5 *h, const char *gs, const train_opts *o,
                      const train_group *g, const double *const *recs) {
    const int64_t nf = g->F.nf, ns = o->nset, K = o->inner_folds;
    int rc = RDML_OK;
    double *v = malloc((size_t)(4 * ns) * sizeof *v);
    int64_t *chosen = malloc((size_t)(nf + 1) * sizeof *chosen);
    char **tw = calloc((size_t)(2 * ns), sizeof *tw);
    if (!v || !chosen || !tw) rc = RDML_FAIL(ctx, RDML_ENOMEM, "out of memory writing the grid");
    for (int64_t s = 0; s < ns && !rc; s++) {
        const train_set *t = &o->set[s];
        v[s] = t->lr;
        v[ns + s] = t->dropout;
        v[2 * ns + s] = t->weight_decay;
        v[3 * ns + s] = (double)t->epochs;
        tw[s] = malloc(256);
        tw[ns + s] = malloc(256);
        if (!tw[s] || !tw[ns + s]) {
            rc = RDML_FAIL(ctx, RDML_ENOMEM, "out of memory writing the grid");
            break;
        }
        widths_text(t->tower, o->is_mlp ? 0 : t->ntower, tw[s], 256);
        widths_text(t->head, t->nhead, tw[ns + s], 256);
    }
    const double **fs = rc ? NULL : malloc((size_t)(nf + 1) * sizeof *fs);
    if (!rc && !fs) rc = RDML_FAIL(ctx, RDML_ENOMEM, "out of memory writing the grid");
    for (int64_t f = 0; f < nf && !rc; f++) fs[f] = recs[f] + ST_N + g->F.nte[f] + 2 * o->max_epochs;
    const rdml_exp_grid_col cols[6] = {
        {"lr", v, NULL, NULL, NULL},
        {"dropout", v + ns, NULL, NULL, NULL},
        {"weight_decay", v + 2 * ns, NULL, NULL, NULL},
        {"epochs", v + 3 * ns, NULL, NULL, NULL},
        {"tower", NULL, NULL, (const char *const *)tw, "tower widths of each setting, joined by ':' (mlp: empty)"},
        {"head", NULL, NULL, (const char *const *)(tw + ns), "head widths (mlp: mlp_widths) of each setting, joined by ':'"}};
    if (!rc) rc = rdml_exp_write_grid(ctx, h, gs, cols, 6, &g->S, g->F.ifold, ns, K, fs,
                                      rdml_cv_scoring_name(o->scoring), o->axes, chosen);
    free(fs);
    for (int64_t s = 0; tw && s < 2 * ns; s++) free(tw[s]);
    free(tw);
    free(v);
    free(chosen);
    return rc;
}

/* Grayscale S x S images of the subject's first n images, min-max normalised to [0, 1] per
 * image (the paper's CNN input): Pillow's convert('L'), then bilinear resampling with
 * half-pixel centres (no antialiasing). Every rank loads all n (the folds on a rank need them
 * all). */
static int load_gray(rdml_ctx *ctx, const rdml_subject *s, int64_t n, int64_t S, float *out) {
    for (int64_t i = 0; i < n; i++) {
        rdml_image im;
        RDML_TRY(rdml_png_read(ctx, rdml_subject_image_path(s, i), 1, &im));
        float *o = out + i * S * S, lo = INFINITY, hi = -INFINITY;
        for (int64_t y = 0; y < S; y++)
            for (int64_t x = 0; x < S; x++) {
                double sy = ((double)y + 0.5) * (double)im.h / (double)S - 0.5;
                double sx = ((double)x + 0.5) * (double)im.w / (double)S - 0.5;
                sy = fmin(fmax(sy, 0), (double)im.h - 1);
                sx = fmin(fmax(sx, 0), (double)im.w - 1);
                int64_t y0 = (int64_t)sy, x0 = (int64_t)sx;
                int64_t y1 = y0 + 1 < im.h ? y0 + 1 : y0, x1 = x0 + 1 < im.w ? x0 + 1 : x0;
                double fy = sy - (double)y0, fx = sx - (double)x0;
                const uint8_t *p = im.px;
                double v = (1 - fy) * ((1 - fx) * p[y0 * im.w + x0] + fx * p[y0 * im.w + x1]) +
                           fy * ((1 - fx) * p[y1 * im.w + x0] + fx * p[y1 * im.w + x1]);
                o[y * S + x] = (float)v;
                lo = fminf(lo, (float)v);
                hi = fmaxf(hi, (float)v);
            }
        for (int64_t k = 0; k < S * S; k++) o[k] = hi > lo ? (o[k] - lo) / (hi - lo) : 0.0f;
        rdml_image_free(&im);
    }
    return RDML_OK;
}

static void group_release(train_group *g) {
    rdml_cv_folds_free(&g->F);
    free(g->target);
    rdml_split_free(&g->S);
    rdml_pairs_free(&g->P);
    free(g->E);
    memset(g, 0, sizeof *g);
}

/* R^2 needs at least two test pairs, a fit at least one training pair. */
static int check_outer(rdml_ctx *ctx, const void *user, int64_t f, int64_t nf, const int64_t *tr,
                       int64_t ntr, int64_t nte) {
    (void)user;
    (void)tr;
    if (nte < 2)
        return RDML_FAIL(ctx, RDML_EDATA, "fold %lld of %lld has %lld test pairs; R^2 needs at "
                         "least 2 (hint: more images, fewer folds, or pairs.set = all)",
                         (long long)f, (long long)nf, (long long)nte);
    if (ntr < 1)
        return RDML_FAIL(ctx, RDML_EDATA, "fold %lld of %lld has no training pairs (hint: more "
                         "images or more folds)", (long long)f, (long long)nf);
    return RDML_OK;
}

static int check_inner(rdml_ctx *ctx, const void *user, int64_t f, int64_t k, int64_t K,
                       const int64_t *tr, int64_t ntr, int64_t nte) {
    (void)user;
    (void)tr;
    (void)ntr;
    if (nte < 2)
        return RDML_FAIL(ctx, RDML_EDATA, "outer fold %lld, inner fold %lld of %lld has %lld "
                         "test pairs; R^2 needs at least 2 (hint: lower grid.inner_folds, or more "
                         "images)", (long long)f, (long long)k, (long long)K, (long long)nte);
    return RDML_OK;
}

/* Collective over comm: the RDM, the embeddings (or images), pairs, folds and (with a grid)
 * inner folds of one subject x selection, every check made before any training. Every rank
 * builds the same group. */
static int group_prepare(rdml_ctx *ctx, MPI_Comm comm, rdml_h5 *h, const train_opts *o,
                         const rdml_subject *subj, const char *name, train_group *g) {
    memset(g, 0, sizeof *g);
    g->id = rdml_subject_id(subj);
    rdml_strlcpy(g->name, name, sizeof g->name);
    char rpath[512], epath[600];
    RDML_TRY(rdml_exp_find_inputs(ctx, h, g->id, name, o->is_cnn ? NULL : o->embedding, rpath,
                                  sizeof rpath, epath, sizeof epath, o->pair_images, &g->n, &g->d));
    const int64_t n = g->n;
    if (o->is_cnn) g->d = o->cnn.size * o->cnn.size; /* grayscale pixels from the PNGs */
    const int64_t d = g->d;
    if (o->input_dim > 0 && o->input_dim != d && !o->is_cnn)
        return RDML_FAIL(ctx, RDML_EDATA, "embeddings %s are %lld wide but train.input_dim = %lld "
                         "(hint: set train.input_dim = 0 to take the width from the embeddings, or "
                         "use embed.name of a %lld-wide embedding)", epath, (long long)d,
                         (long long)o->input_dim, (long long)o->input_dim);
    float *R = rdml_malloc(ctx, (size_t)(n * n) * sizeof *R, "RDM");
    g->E = rdml_malloc(ctx, (size_t)(n * d) * sizeof *g->E, "embeddings");
    int rc = R && g->E ? RDML_OK : ctx->code;
    rc = rdml_agree(ctx, comm, rc);
    if (!rc) rc = rdml_exp_read_rdm(ctx, comm, h, rpath, n, R);
    if (!rc && o->is_cnn) rc = load_gray(ctx, subj, n, o->cnn.size, g->E);
    else if (!rc) rc = rdml_h5_read_rows_f32(ctx, h, epath, 0, n, g->E);
    rc = rdml_agree(ctx, comm, rc);
    if (rc) {
        free(R);
        return rc;
    }
    /* everything below is identical on every rank */
    for (int64_t i = 0; i < n * d && !rc; i++)
        if (!isfinite(g->E[i]))
            rc = RDML_FAIL(ctx, RDML_EDATA, "embedding %s row %lld column %lld is %g (hint: recompute "
                           "the embeddings)", epath, (long long)(i / d), (long long)(i % d), g->E[i]);
    if (!rc) rc = rdml_pairs_build(ctx, &o->pp, n, R, NULL, &g->P);
    free(R);
    if (!rc) rc = rdml_split_make(ctx, &o->sp, n, &g->P, &g->S);
    if (!rc) {
        g->target = malloc((size_t)(g->P.n + 1) * sizeof *g->target);
        if (!g->target) rc = RDML_FAIL(ctx, RDML_ENOMEM, "out of memory");
    }
    for (int64_t t = 0; t < g->P.n && !rc; t++) g->target[t] = g->P.value[t];
    if (!rc) rc = rdml_cv_folds_make(ctx, &g->S, &g->P, o->grid ? o->inner_folds : 0, o->sp.seed,
                                      check_outer, check_inner, g, &g->F);
    return rc;
}

/* Collective: write the group from its fold records (identical on every rank). */
static int group_write(rdml_ctx *ctx, rdml_h5 *h, const train_opts *o, const train_group *g,
                       const double *const *recs) {
    const int id = g->id;
    const char *name = g->name;
    const int64_t nf = g->F.nf;
    char gp[900], gs[900];
    snprintf(gp, sizeof gp, "/experiments/%s/pairs/subj%02d/%s", o->experiment, id, name);
    snprintf(gs, sizeof gs, "/experiments/%s/%s/subj%02d/%s", o->experiment, o->resname, id, name);
    int rc = o->variant == 0 ? write_pairs(ctx, h, gp, o, g) : RDML_OK;
    if (!rc) rc = rdml_h5_delete(ctx, h, gs);
    if (!rc) rc = rdml_h5_group(ctx, h, gs);
    if (!rc && o->grid) rc = write_grid(ctx, h, gs, o, g, recs);
    int64_t nok = 0, ncol = 0;
    for (int64_t f = 0; f < nf && !rc; f++) {
        rc = write_fold(ctx, h, gs, o, g, f, recs[f]);
        const double *st = recs[f];
        if (rc) break;
        char set[300] = "";
        if (o->grid) {
            const train_set *t = &o->set[(int64_t)st[ST_CHOSEN]];
            char tw[128], hw[128];
            widths_text(t->tower, o->is_mlp ? 0 : t->ntower, tw, sizeof tw);
            widths_text(t->head, t->nhead, hw, sizeof hw);
            snprintf(set, sizeof set, ", setting %lld (lr=%g dropout=%g epochs=%lld weight_decay=%g tower=%s head=%s)",
                     (long long)st[ST_CHOSEN], t->lr, t->dropout, (long long)t->epochs, t->weight_decay, tw, hw);
        }
        if (st[ST_OK] == 1 && st[ST_COLLAPSED] == 1) {
            nok++;
            ncol++;
            char status[512];
            status_text(st, status, sizeof status);
            rdml_warn(ctx, "subj%02d %s %s fold %lld/%lld (test R2 %.3f, train %.3f) %s%s", id, name, o->resname,
                      (long long)f + 1, (long long)nf, st[ST_R2], st[ST_TRAIN_R2], status, set);
        } else if (st[ST_OK] == 1) {
            nok++;
            rdml_info(ctx, "subj%02d %-12s %s fold %lld of %lld: %lld train / %lld test pairs, test R2 %.3f "
                      "(train %.3f; mean predictor %.3f, shuffled %.3f), %.0f pairs/s%s", id, name,
                      o->resname, (long long)f, (long long)nf, (long long)g->F.ntr[f], (long long)g->F.nte[f],
                      st[ST_R2], st[ST_TRAIN_R2], st[ST_MEAN_R2], st[ST_SHUF_R2], st[ST_PAIRS_PER_S], set);
        } else {
            char status[512];
            status_text(st, status, sizeof status);
            rdml_warn(ctx, "subj%02d %s %s fold %lld of %lld stopped, the other folds go on: %s%s", id,
                      name, o->resname, (long long)f, (long long)nf, status, set);
        }
    }
    /* table: rows model / mean predictor / shuffled targets; columns mean and std of each metric
     * over the finished folds */
    double table[3 * 8];
    double *col = malloc((size_t)(nf + 1) * sizeof *col), *fm = malloc((size_t)(4 * nf + 1) * sizeof *fm);
    if (!rc && (!col || !fm)) rc = RDML_FAIL(ctx, RDML_ENOMEM, "out of memory");
    for (int r = 0; r < 3 && !rc; r++)
        for (int c = 0; c < 4; c++) {
            int64_t k = 0;
            for (int64_t f = 0; f < nf; f++)
                if (recs[f][ST_OK] == 1) col[k++] = recs[f][4 * r + c];
            double mean = NAN, sd = NAN;
            if (k) rdml_metrics_mean_std(k, col, &mean, &sd);
            table[r * 8 + 2 * c] = mean;
            table[r * 8 + 2 * c + 1] = sd;
            char an[64];
            snprintf(an, sizeof an, "%s%s", r == 0 ? "mean_" : r == 1 ? "mean_predictor_mean_" : "shuffled_mean_",
                     metric_names[c]);
            rc = rdml_h5_attr_f64(ctx, h, gs, an, &mean, 1);
            snprintf(an, sizeof an, "%s%s", r == 0 ? "std_" : r == 1 ? "mean_predictor_std_" : "shuffled_std_",
                     metric_names[c]);
            if (!rc) rc = rdml_h5_attr_f64(ctx, h, gs, an, &sd, 1);
            if (rc) break;
        }
    for (int64_t f = 0; f < nf && fm; f++)
        for (int c = 0; c < 4; c++) fm[f * 4 + c] = recs[f][ST_R2 + c];
    char tpath[1000];
    snprintf(tpath, sizeof tpath, "%s/table", gs);
    if (!rc) rc = rdml_h5_write_rows_f64(ctx, h, tpath, 3, 8, 0, ctx->rank == 0 ? 3 : 0, table);
    if (!rc) rc = rdml_h5_attr_str(ctx, h, tpath, "rows", "model,mean_predictor,shuffled_targets");
    if (!rc) rc = rdml_h5_attr_str(ctx, h, tpath, "columns", "mean_r2,std_r2,mean_mse,std_mse,mean_pearson,"
                                   "std_pearson,mean_spearman,std_spearman");
    if (!rc) rc = rdml_h5_attr_str(ctx, h, tpath, "meaning", "test metrics over the finished folds, "
                                   "collapsed ones included (std: ddof 0); mean_predictor predicts the "
                                   "training targets' mean, shuffled_targets scores the model against "
                                   "permuted test targets");
    snprintf(tpath, sizeof tpath, "%s/fold_metrics", gs);
    if (!rc) rc = rdml_h5_write_rows_f64(ctx, h, tpath, nf, 4, 0, ctx->rank == 0 ? nf : 0, fm);
    if (!rc) rc = rdml_h5_attr_str(ctx, h, tpath, "columns", "r2,mse,pearson,spearman");
    int64_t cnt[5] = {nf, nok, o->max_epochs, o->grid ? o->nset : 0, ncol};
    const char *cn[5] = {"n_folds", "n_folds_finished", "epochs", "grid_settings", "n_folds_collapsed"};
    for (int i = 0; i < 5 && !rc; i++) rc = rdml_h5_attr_i64(ctx, h, gs, cn[i], &cnt[i], 1);
    /* collapsed folds count in the table (they are what the method produced); for comparison
     * the mean test R^2 of the finished folds that did not collapse */
    double r2nc = NAN;
    {
        int64_t k = 0;
        for (int64_t f = 0; f < nf && col; f++)
            if (recs[f][ST_OK] == 1 && recs[f][ST_COLLAPSED] != 1) col[k++] = recs[f][ST_R2];
        double sd;
        if (k) rdml_metrics_mean_std(k, col, &r2nc, &sd);
    }
    if (!rc) rc = rdml_h5_attr_f64(ctx, h, gs, "mean_r2_not_collapsed", &r2nc, 1);
    /* the null of the mean R^2 over the finished folds: shuffle b of every fold, averaged */
    if (!rc) rc = rdml_h5_attr_i64(ctx, h, gs, "null_shuffles", &o->null_shuffles, 1);
    if (!rc && o->null_shuffles > 0) {
        double *mn = calloc((size_t)o->null_shuffles, sizeof *mn);
        if (!mn) rc = RDML_FAIL(ctx, RDML_ENOMEM, "out of memory for the R^2 null");
        double msum = 0;
        for (int64_t b = 0; b < o->null_shuffles && mn; b++) {
            double sum = 0;
            msum = 0;
            for (int64_t f = 0; f < nf; f++)
                if (recs[f][ST_OK] == 1) {
                    sum += rec_null(o, g, f, recs[f])[b];
                    msum += recs[f][ST_R2];
                }
            mn[b] = nok ? sum / (double)nok : NAN;
        }
        if (!rc) rc = rdml_exp_write_null(ctx, h, gs, "null_mean_r2", nok ? msum / (double)nok : NAN, mn,
                                 o->null_shuffles);
        free(mn);
    }
    double pv[4] = {o->base.lr, (double)o->batch, o->base.dropout, o->base.weight_decay};
    const char *pn[5] = {"lr", "batch", "dropout", "weight_decay"};
    for (int i = 0; i < 4 && !rc; i++) rc = rdml_h5_attr_f64(ctx, h, gs, pn[i], &pv[i], 1);
    if (!rc) rc = rdml_h5_attr_f64(ctx, h, gs, "pearson_mix", &o->net.pearson_mix, 1);
    if (!rc) rc = rdml_h5_attr_f64(ctx, h, gs, "warmup", &o->warmup_epochs, 1);
    if (!rc) rc = rdml_h5_attr_str(ctx, h, gs, "batching", o->blocks ? "blocks" : "pairs");
    if (!rc) rc = rdml_h5_attr_i64(ctx, h, gs, "block_images", &o->block_images, 1);
    if (!rc) rc = rdml_h5_attr_str(ctx, h, gs, "model", o->model);
    /* the architecture ([train]; with a grid each fold's attributes name its chosen setting) */
    if (!rc && o->is_cnn) {
        int64_t ch[2] = {o->cnn.c1, o->cnn.c2};
        rc = rdml_h5_attr_i64(ctx, h, gs, "cnn_size", &o->cnn.size, 1);
        if (!rc) rc = rdml_h5_attr_i64(ctx, h, gs, "cnn_channels", ch, 2);
    } else if (!rc && o->is_mlp && o->base.nhead > 0) {
        rc = rdml_h5_attr_i64(ctx, h, gs, "mlp_widths", o->base.head, o->base.nhead);
    } else if (!rc && !o->is_mlp) {
        if (o->base.ntower > 0) rc = rdml_h5_attr_i64(ctx, h, gs, "tower", o->base.tower, o->base.ntower);
        if (!rc && o->base.nhead > 0) rc = rdml_h5_attr_i64(ctx, h, gs, "head", o->base.head, o->base.nhead);
    }
    if (!rc) rc = rdml_h5_attr_str(ctx, h, gs, "output", o->net.sigmoid_out ? "sigmoid2" : "linear");
    if (!rc) rc = rdml_h5_attr_str(ctx, h, gs, "embedding", o->is_cnn ? "grayscale images" : o->embedding);
    if (!rc) rc = rdml_h5_attr_str(ctx, h, gs, "pairs", gp);
    char coltxt[200] = "";
    if (ncol)
        snprintf(coltxt, sizeof coltxt, " (%lld collapsed to a constant prediction, counted in the mean; "
                 "without: test R2 %.3f)", (long long)ncol, r2nc);
    if (!rc && ncol)
        rdml_warn(ctx, "subj%02d %-12s %s, %lld pairs, %lld/%lld folds%s: test R2 %.3f +- %.3f | mean "
                  "predictor %.3f | shuffled targets %.3f", id, name, o->resname, (long long)g->P.n,
                  (long long)nok, (long long)nf, coltxt, table[0], table[1], table[8], table[16]);
    else if (!rc)
        rdml_info(ctx, "subj%02d %-12s %s, %lld pairs, %lld/%lld folds: test R2 %.3f +- %.3f | mean "
                  "predictor %.3f | shuffled targets %.3f", id, name, o->resname, (long long)g->P.n,
                  (long long)nok, (long long)nf, table[0], table[1], table[8], table[16]);
    if (!rc && nok == 0) {
        char status[512] = "does not exist";
        if (nf) status_text(recs[0], status, sizeof status);
        rc = RDML_FAIL(ctx, RDML_EDATA, "subj%02d %s: no fold of %s finished; fold 0 %s", id, name,
                       o->resname, status);
    }
    free(col);
    free(fm);
    return rc;
}

/* ---- the stage as a sweep (src/experiment/sweep.c): one task per (subject, selection, fold) on
 * the task farm, journaled ---- */

static int64_t tr_nfolds(const void *opts) {
    const train_opts *o = opts;
    return o->sp.scheme == RDML_SPLIT_HOLDOUT ? 1 : o->sp.folds;
}

static int tr_prepare(rdml_ctx *ctx, MPI_Comm comm, rdml_h5 *h, const void *opts,
                      const rdml_subject *subj, const char *name, void *group) {
    int rc = group_prepare(ctx, comm, h, opts, subj, name, group);
    const train_group *g = group;
    if (!rc && g->F.nf != tr_nfolds(opts))
        rc = RDML_FAIL(ctx, RDML_EINTERNAL, "split made %lld folds, expected %lld",
                       (long long)g->F.nf, (long long)tr_nfolds(opts));
    return rc;
}

static void tr_release(void *group) { group_release(group); }

static int tr_task(rdml_ctx *ctx, const void *opts, const void *group, int64_t f, rdml_rec *out) {
    const train_opts *o = opts;
    const train_group *g = group;
    out->n = rec_len(o, g, f);
    out->v = malloc((size_t)out->n * sizeof *out->v);
    if (!out->v) return RDML_FAIL(ctx, RDML_ENOMEM, "out of memory for a fold record");
    int rc = run_fold(ctx, MPI_COMM_NULL, o, g, f, out->v);
    if (rc) rdml_rec_free(out);
    return rc;
}

/* A fold on a group of ranks (the sweep's tail: fewer folds left than ranks). */
static int tr_task_group(rdml_ctx *ctx, MPI_Comm comm, const void *opts, const void *group,
                         int64_t f, rdml_rec *out, double *waited) {
    const train_opts *o = opts;
    const train_group *g = group;
    out->n = rec_len(o, g, f);
    out->v = malloc((size_t)out->n * sizeof *out->v);
    int rc = rdml_agree(ctx, comm, out->v ? RDML_OK : RDML_FAIL(ctx, RDML_ENOMEM, "out of memory "
                                                                  "for a fold record"));
    if (!rc) rc = run_fold(ctx, comm, o, g, f, out->v);
    rc = rdml_agree(ctx, comm, rc);
    /* a fit in one pass (train.shards = 1) runs whole on every rank of the group: the group's
     * grid fits were shared, its final fit only by rank 0's record, so the others count that
     * time as waiting (the busy figure stays honest); with shards > 1 the pair networks and
     * the cnn split every step over the group */
    int gr = 0;
    MPI_Comm_rank(comm, &gr);
    if (!rc && gr > 0 && o->shards <= 1 && isfinite(out->v[ST_SECONDS]))
        *waited = out->v[ST_SECONDS];
    if (rc) rdml_rec_free(out);
    return rc;
}

static int tr_write(rdml_ctx *ctx, rdml_h5 *h, const void *opts, const void *group,
                    const rdml_rec *recs) {
    const train_opts *o = opts;
    const train_group *g = group;
    const double **r = calloc((size_t)g->F.nf + 1, sizeof *r);
    if (!r) return RDML_FAIL(ctx, RDML_ENOMEM, "out of memory");
    int rc = RDML_OK;
    for (int64_t f = 0; f < g->F.nf && !rc; f++) {
        if (recs[f].n != rec_len(o, g, f))
            rc = RDML_FAIL(ctx, RDML_EINTERNAL, "fold %lld: record of %lld values, expected %lld "
                           "(hint: delete the journal directory and rerun)", (long long)f,
                           (long long)recs[f].n, (long long)rec_len(o, g, f));
        r[f] = recs[f].v;
    }
    if (!rc) rc = group_write(ctx, h, o, g, (const double *const *)r);
    free(r);
    return rc;
}

/* After the groups: the results of embeddings this run does not fit go (pairs.embeddings). */
static int tr_finish(rdml_ctx *ctx, rdml_h5 *h, const void *opts) {
    const train_opts *o = opts;
    return rdml_exp_prune_model_groups(ctx, h, o->experiment, o->model, o->embs);
}

static const char *const tr_columns[6] = {"r2", "mse", "pearson", "spearman", "mean_predictor_r2",
                                          "shuffled_r2"};

static void tr_metrics(const void *opts, const void *group, int64_t f, const rdml_rec *rec,
                       double *out) {
    (void)opts;
    (void)group;
    (void)f;
    const double *st = rec->v;
    const int ok = st[ST_OK] == 1;
    const double v[6] = {st[ST_R2], st[ST_MSE], st[ST_PEARSON], st[ST_SPEARMAN], st[ST_MEAN_R2],
                         st[ST_SHUF_R2]};
    for (int i = 0; i < 6; i++) out[i] = ok ? v[i] : NAN; /* a fold that stopped: NaN */
}

/* The cnn's one variant: the images (no embedding; the table's embedding column is empty). */
static int embs_none(rdml_ctx *ctx, rdml_pair_embs *pe) {
    pe->n = 1;
    pe->name = calloc(2, sizeof *pe->name);
    pe->arch = calloc(2, sizeof *pe->arch);
    pe->layer = calloc(2, sizeof *pe->layer);
    pe->depth = calloc(2, sizeof *pe->depth);
    pe->relative_depth = calloc(2, sizeof *pe->relative_depth);
    if (pe->name) pe->name[0] = rdml_strdup(ctx, "");
    if (pe->arch) pe->arch[0] = rdml_strdup(ctx, "");
    if (pe->layer) pe->layer[0] = rdml_strdup(ctx, "");
    if (!pe->name || !pe->arch || !pe->layer || !pe->depth || !pe->relative_depth || !pe->name[0] ||
        !pe->arch[0] || !pe->layer[0])
        return RDML_FAIL(ctx, RDML_ENOMEM, "out of memory");
    pe->depth[0] = pe->relative_depth[0] = NAN;
    return RDML_OK;
}

int rdml_exp_train_stage(rdml_exp *ex, int64_t array_index, int64_t array_count) {
    rdml_ctx *ctx = ex->ctx;
    train_opts o;
    int rc = read_opts(ex, &o);
    if (rc) {
        free(o.set);
        return rc;
    }
    if (o.is_cnn) { /* collective: the activation budget of a CNN batch on every rank */
        int64_t share = rdml_mem_available_share(ex->comm);
        o.cnn.max_bytes = o.max_memory_gb > 0 ? (int64_t)(o.max_memory_gb * 1e9) : share > 0 ? share : 0;
        /* the most distinct images a batch can touch: two blocks, or both sides of every pair */
        rc = rdml_cnn_check_memory(ctx, &o.cnn, o.blocks ? 2 * o.block_images : 2 * o.batch);
        if (rc) rdml_ctx_prefix(ctx, "train.model = cnn, train.batch = %lld", (long long)o.batch);
    }
    for (int64_t s = 0; s < o.nset && !rc; s++) {
        rdml_pairnet_params chk;
        rdml_optim opt;
        apply_set(&o, &o.set[s], 1, &chk, &opt);
        rc = rdml_pairnet_check(ctx, &chk);
        if (rc && o.grid) rdml_ctx_prefix(ctx, "[grid] setting %lld", (long long)s);
    }
    /* pairs.embeddings: one network per embedding, a variant of the sweep (pair_emb.c); the
     * cnn reads the images and has one */
    rdml_pair_embs pe;
    memset(&pe, 0, sizeof pe);
    if (!rc && o.is_cnn && rdml_config_is_set(ex->cfg, "pairs", "embeddings"))
        rdml_info(ctx, "train: the cnn reads the images: pairs.embeddings does not apply to it");
    if (!rc && o.is_cnn) rc = embs_none(ctx, &pe);
    else if (!rc) rc = rdml_exp_pair_embs(ex, "train", o.embedding, &pe);
    train_opts *vo = rc ? NULL : calloc((size_t)pe.n, sizeof *vo);
    rdml_sweep_variant *vv = rc ? NULL : calloc((size_t)pe.n, sizeof *vv);
    if (!rc && (!vo || !vv)) rc = RDML_FAIL(ctx, RDML_ENOMEM, "out of memory");
    rc = rdml_agree(ctx, ex->comm, rc);
    for (int i = 0; i < pe.n && !rc; i++) {
        vo[i] = o;
        vo[i].variant = i;
        vo[i].embs = &pe;
        if (!o.is_cnn) rdml_strlcpy(vo[i].embedding, pe.name[i], sizeof vo[i].embedding);
        if (pe.explicit_) snprintf(vo[i].resname, sizeof vo[i].resname, "%s@%.300s", o.model, pe.name[i]);
    }
    if (!rc) {
        rdml_exp_pair_variants(&pe, vo, sizeof *vo, vv);
        rdml_sweep_model m = {"train", &vo[0], sizeof(train_group), tr_nfolds, tr_prepare, tr_release,
                              tr_task, tr_write, tr_finish, o.experiment, o.model, 6, tr_columns,
                              tr_metrics, pe.n, vv, tr_task_group};
        rc = rdml_sweep_run(ex, &m, array_index, array_count);
    }
    free(vo);
    free(vv);
    rdml_exp_pair_embs_free(&pe);
    free(o.set);
    return rc;
}
