/* `rdmlearn train`: the paper's regression experiment (its Table 2) for subjects x vertex
 * selections. For each it reads the RDM and the embeddings from run.output (as `rdmlearn svm`
 * does), builds the pair set ([pairs]) and the image-disjoint folds ([split]) identically on
 * every rank, and trains one pair network per fold ([train]: train.model = siamese or mlp,
 * nn.h) on the RDM values of the training pairs; fold f runs on rank f mod nranks, so its
 * result never depends on the rank count (weights from (run.seed, fold), batch order from
 * (run.seed, fold, epoch), dropout masks from (run.seed, fold, epoch, batch, image)). Per
 * fold it stores the per-epoch train/test loss, the test predictions, R^2 / MSE / Pearson /
 * Spearman, and the two chance levels of the paper in the same table: predicting the training
 * mean, and the model's predictions scored against shuffled test targets. A fold whose loss
 * becomes NaN stops with a message in its status attribute; the other folds go on and the
 * summary counts the finished folds only. train.model = cnn trains the paper's siamese CNN
 * on the subject's images (grayscale, train.cnn_size square, min-max normalised) instead of
 * embeddings. Left out: block-of-images batch ordering, grids with nested CV, a task farm
 * across subjects, distributing the image loading over ranks. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "rdml/dataset.h"
#include "rdml/h5.h"
#include "rdml/metrics.h"
#include "rdml/mpiutil.h"
#include "rdml/nn.h"
#include "rdml/pairs.h"
#include "rdml/png.h"

typedef struct train_opts {
    rdml_pairs_params pp;
    rdml_split_params sp;
    rdml_pairnet_params net;
    rdml_cnn_params cnn;
    int is_cnn;
    rdml_optim opt;
    const char *model, *experiment;
    char embedding[256];
    int64_t epochs, batch, input_dim;
    int standardize;
    uint64_t seed;
} train_opts;

static int read_int_list(rdml_ctx *ctx, const rdml_config *cfg, const char *key, int64_t *dst,
                         int *n) {
    int64_t *v;
    int nv;
    RDML_TRY(rdml_config_int_list(ctx, cfg, "train", key, &v, &nv));
    if (nv > RDML_PAIRNET_MAXLAYERS) {
        free(v);
        return RDML_FAIL(ctx, RDML_ECONFIG, "[train] %s has %d widths; at most %d layers", key, nv,
                         RDML_PAIRNET_MAXLAYERS);
    }
    memcpy(dst, v, (size_t)nv * sizeof *v);
    *n = nv;
    free(v);
    return RDML_OK;
}

static int read_opts(rdml_cli *cli, train_opts *o) {
    rdml_ctx *ctx = &cli->ctx;
    const rdml_config *cfg = cli->cfg;
    const char *s;
    int64_t seed;
    double *vals, x;
    int nv;
    RDML_TRY(rdml_config_int(ctx, cfg, "run", "seed", &seed));
    o->seed = (uint64_t)seed;
    rdml_pairs_defaults(&o->pp);
    o->pp.seed = o->seed;
    o->pp.continuous = 1;
    RDML_TRY(rdml_config_str(ctx, cfg, "pairs", "experiment", &o->experiment));
    for (const char *p = o->experiment; *p; p++)
        if (!(('a' <= *p && *p <= 'z') || ('A' <= *p && *p <= 'Z') || ('0' <= *p && *p <= '9') ||
              *p == '-' || *p == '_' || *p == '.'))
            return RDML_FAIL(ctx, RDML_ECONFIG, "[pairs] experiment = \"%s\": use letters, digits, "
                             "'-', '_' and '.' only", o->experiment);
    if (!*o->experiment) return RDML_FAIL(ctx, RDML_ECONFIG, "[pairs] experiment is empty");
    RDML_TRY(rdml_config_str(ctx, cfg, "pairs", "set", &s));
    o->pp.set = (rdml_pairs_set)rdml_pairs_set_parse(s);
    if (o->pp.set == RDML_PAIRS_COLORS)
        return RDML_FAIL(ctx, RDML_ECONFIG, "[pairs] set = colors is the SVM's colour experiment; "
                         "train predicts RDM values (hint: set = all, extremes, balanced or percentile)");
    RDML_TRY(rdml_config_int(ctx, cfg, "pairs", "k", &o->pp.k));
    RDML_TRY(rdml_config_real_list(ctx, cfg, "pairs", "mid_band", &vals, &nv));
    o->pp.mid_lo = vals[0];
    o->pp.mid_hi = vals[nv - 1];
    free(vals);
    RDML_TRY(rdml_config_int(ctx, cfg, "pairs", "mid_count", &o->pp.mid_count));
    RDML_TRY(rdml_config_real_list(ctx, cfg, "pairs", "percentiles", &vals, &nv));
    o->pp.pct_lo = vals[0];
    o->pp.pct_hi = vals[nv - 1];
    free(vals);
    RDML_TRY(rdml_config_bool(ctx, cfg, "pairs", "dedup", &o->pp.dedup));
    RDML_TRY(rdml_config_bool(ctx, cfg, "pairs", "symmetric", &o->pp.symmetric));

    rdml_split_defaults(&o->sp);
    o->sp.seed = o->seed;
    RDML_TRY(rdml_config_str(ctx, cfg, "split", "scheme", &s));
    o->sp.scheme = strcmp(s, "holdout") == 0 ? RDML_SPLIT_HOLDOUT
                   : strcmp(s, "pairs") == 0 ? RDML_SPLIT_PAIRS : RDML_SPLIT_KFOLD;
    RDML_TRY(rdml_config_int(ctx, cfg, "split", "folds", &o->sp.folds));
    RDML_TRY(rdml_config_real(ctx, cfg, "split", "test_size", &o->sp.test_size));
    RDML_TRY(rdml_config_bool(ctx, cfg, "split", "allow_pair_leakage", &o->sp.allow_leakage));

    RDML_TRY(rdml_config_str(ctx, cfg, "train", "model", &o->model));
    RDML_TRY(rdml_config_real(ctx, cfg, "train", "dropout", &x));
    if (strcmp(o->model, "mlp") == 0) {
        rdml_pairnet_mlp_defaults(&o->net, 0);
        RDML_TRY(read_int_list(ctx, cfg, "mlp_widths", o->net.head, &o->net.nhead));
        o->net.head_dropout = x;
    } else {
        rdml_pairnet_defaults(&o->net);
        RDML_TRY(read_int_list(ctx, cfg, "tower", o->net.tower, &o->net.ntower));
        RDML_TRY(read_int_list(ctx, cfg, "head", o->net.head, &o->net.nhead));
        o->net.tower_dropout = x;
    }
    RDML_TRY(rdml_config_str(ctx, cfg, "train", "output", &s));
    o->net.sigmoid_out = strcmp(s, "sigmoid2") == 0;
    RDML_TRY(rdml_config_real(ctx, cfg, "train", "pearson_mix", &o->net.pearson_mix));
    o->is_cnn = strcmp(o->model, "cnn") == 0;
    rdml_cnn_defaults(&o->cnn);
    o->cnn.sigmoid_out = o->net.sigmoid_out;
    o->cnn.pearson_mix = o->net.pearson_mix;
    RDML_TRY(rdml_config_int(ctx, cfg, "train", "cnn_size", &o->cnn.size));
    {
        int64_t ch[RDML_PAIRNET_MAXLAYERS];
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
    RDML_TRY(rdml_config_int(ctx, cfg, "train", "input_dim", &o->input_dim));
    RDML_TRY(rdml_config_bool(ctx, cfg, "train", "standardize", &o->standardize));
    RDML_TRY(rdml_config_int(ctx, cfg, "train", "epochs", &o->epochs));
    RDML_TRY(rdml_config_int(ctx, cfg, "train", "batch", &o->batch));
    rdml_optim_defaults(&o->opt);
    RDML_TRY(rdml_config_str(ctx, cfg, "train", "optimizer", &s));
    o->opt.kind = strcmp(s, "sgd") == 0 ? RDML_OPTIM_SGD : RDML_OPTIM_ADAM;
    RDML_TRY(rdml_config_real(ctx, cfg, "train", "lr", &o->opt.lr));
    RDML_TRY(rdml_config_real(ctx, cfg, "train", "momentum", &o->opt.momentum));
    RDML_TRY(rdml_config_real(ctx, cfg, "train", "weight_decay", &o->opt.weight_decay));

    RDML_TRY(rdml_config_str(ctx, cfg, "embed", "name", &s));
    if (!*s) RDML_TRY(rdml_config_str(ctx, cfg, "embed", "backend", &s));
    rdml_strlcpy(o->embedding, s, sizeof o->embedding);
    return RDML_OK;
}

static void sel_name(const char *spec, char *out, size_t len) {
    rdml_strlcpy(out, spec, len);
    for (char *p = out; *p; p++)
        if (*p == ',') *p = '+';
}

/* per-fold statistics, broadcast from the fold's rank */
enum { ST_R2 = 0, ST_MSE, ST_PEARSON, ST_SPEARMAN, /* model on the test pairs */
       ST_MEAN_R2, ST_MEAN_MSE, ST_MEAN_PEARSON, ST_MEAN_SPEARMAN, /* training-mean predictor */
       ST_SHUF_R2, ST_SHUF_MSE, ST_SHUF_PEARSON, ST_SHUF_SPEARMAN, /* vs shuffled targets */
       ST_TRAIN_R2, ST_OK, ST_SECONDS, ST_PAIRS_PER_S, ST_EPOCHS_DONE, ST_N };
static const char *const metric_names[4] = {"r2", "mse", "pearson", "spearman"};

typedef struct fold_out {
    double st[ST_N];
    double *pred;                  /* nte */
    double *train_loss, *test_loss; /* epochs */
    char status[512];
} fold_out;

static void four(int64_t n, const double *y, const double *p, double *dst) {
    dst[0] = rdml_metrics_r2(n, y, p);
    dst[1] = rdml_metrics_mse(n, y, p);
    dst[2] = rdml_metrics_pearson(n, y, p);
    dst[3] = rdml_metrics_spearman(n, y, p);
}

/* Train fold f. A diverged run is not an error of the command: status says what happened. */
static int run_fold(rdml_ctx *ctx, const train_opts *o, int64_t f, int64_t n, int64_t d,
                    const float *E, const rdml_pairs *P, const int64_t *tr, int64_t ntr,
                    const int64_t *te, int64_t nte, fold_out *out) {
    for (int i = 0; i < ST_N; i++) out->st[i] = NAN;
    rdml_pairnet_params np = o->net;
    np.in_dim = d;
    rdml_pairnet *net = NULL;
    rdml_cnn *cnn = NULL;
    int64_t B = o->batch < ntr ? o->batch : ntr, ntrain_eval = ntr;
    int64_t *order = malloc((size_t)ntr * sizeof *order), *ijb = malloc((size_t)B * 2 * sizeof *ijb);
    int64_t *ij_te = malloc((size_t)(nte + ntr) * 2 * sizeof *ij_te);
    float *yb = malloc((size_t)B * sizeof *yb), *pf = malloc((size_t)(nte + ntr) * sizeof *pf);
    double *yte = malloc((size_t)(nte + ntr) * sizeof *yte), *ptr = malloc((size_t)(nte + ntr) * sizeof *ptr);
    int stdz = o->standardize && !o->is_cnn;
    float *Es = stdz ? malloc((size_t)(n * d) * sizeof *Es) : NULL;
    int rc = order && ijb && ij_te && yb && pf && yte && ptr && (Es || !stdz) ? RDML_OK
             : RDML_FAIL(ctx, RDML_ENOMEM, "out of memory for fold %lld", (long long)f);
    if (!rc && o->is_cnn) rc = rdml_cnn_create(ctx, &o->cnn, o->seed, (uint64_t)f, &cnn);
    else if (!rc) rc = rdml_pairnet_create(ctx, &np, o->seed, (uint64_t)f, &net);
    if (!rc && Es) {
        /* z-score each embedding column with the mean and std of the fold's TRAINING images
         * (the images of its training pairs), so no test image informs the scaling */
        char *used = calloc((size_t)n, 1);
        double *mu = calloc((size_t)d, sizeof *mu), *sd = calloc((size_t)d, sizeof *sd);
        if (!used || !mu || !sd) rc = RDML_FAIL(ctx, RDML_ENOMEM, "out of memory");
        int64_t cnt = 0;
        for (int64_t t = 0; t < ntr && !rc; t++) used[P->ij[2 * tr[t]]] = used[P->ij[2 * tr[t] + 1]] = 1;
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
    if (!rc) {
        /* start the output at the training targets' mean: otherwise the first epochs are
         * spent learning the offset of values near 1 */
        double mean = 0;
        for (int64_t t = 0; t < ntr; t++) mean += P->value[tr[t]];
        mean /= (double)ntr;
        if (cnn) rdml_cnn_set_output_bias(cnn, mean);
        else rdml_pairnet_set_output_bias(net, mean);
    }
    double t0 = rdml_now();
    int64_t steps_pairs = 0;
    (void)n;
    for (int64_t t = 0; t < nte && !rc; t++) {
        ij_te[2 * t] = P->ij[2 * te[t]];
        ij_te[2 * t + 1] = P->ij[2 * te[t] + 1];
        yte[t] = P->value[te[t]];
    }
    int diverged = 0;
    for (int64_t ep = 0; ep < o->epochs && !rc && !diverged; ep++) {
        memcpy(order, tr, (size_t)ntr * sizeof *order);
        rdml_rng r = rdml_rng_make(o->seed, rdml_rng_substream(RDML_STREAM_SHUFFLE, (uint64_t)f),
                                   (uint64_t)ep << 40);
        rdml_rng_shuffle(&r, order, ntr);
        double sum = 0;
        int64_t nb = 0;
        for (int64_t s = 0; s < ntr && !rc; s += B, nb++) {
            int64_t b = ntr - s < B ? ntr - s : B;
            for (int64_t q = 0; q < b; q++) {
                int64_t k = order[s + q];
                ijb[2 * q] = P->ij[2 * k];
                ijb[2 * q + 1] = P->ij[2 * k + 1];
                yb[q] = (float)P->value[k];
            }
            double loss;
            uint64_t key = rdml_rng_substream(rdml_rng_substream((uint64_t)f, (uint64_t)ep), (uint64_t)nb);
            rc = cnn ? rdml_cnn_step(ctx, cnn, &o->opt, E, b, ijb, yb, &loss)
                     : rdml_pairnet_step(ctx, net, &o->opt, E, b, ijb, yb, o->seed, key, &loss);
            if (rc == RDML_EDATA) {
                snprintf(out->status, sizeof out->status, "diverged in epoch %lld: %s", (long long)ep + 1, ctx->msg);
                rdml_ctx_clear(ctx);
                rc = RDML_OK;
                diverged = 1;
                break;
            }
            sum += loss * (double)b;
            steps_pairs += b;
        }
        if (rc || diverged) break;
        out->train_loss[ep] = sum / (double)ntr;
        rc = cnn ? rdml_cnn_predict(ctx, cnn, E, nte, ij_te, pf) : rdml_pairnet_predict(ctx, net, E, nte, ij_te, pf);
        double mse = 0;
        for (int64_t t = 0; t < nte; t++) mse += ((double)pf[t] - yte[t]) * ((double)pf[t] - yte[t]);
        out->test_loss[ep] = mse / (double)nte;
        out->st[ST_EPOCHS_DONE] = (double)(ep + 1);
        rdml_debug(ctx, "fold %lld epoch %lld: train loss %.5f test loss %.5f", (long long)f,
                   (long long)ep + 1, out->train_loss[ep], out->test_loss[ep]);
    }
    double secs = rdml_now() - t0;
    if (!rc && !diverged) {
        rc = cnn ? rdml_cnn_predict(ctx, cnn, E, nte, ij_te, pf) : rdml_pairnet_predict(ctx, net, E, nte, ij_te, pf);
        for (int64_t t = 0; t < nte; t++) out->pred[t] = pf[t];
        for (int64_t t = 0; t < nte && !rc; t++)
            if (!isfinite(out->pred[t])) {
                snprintf(out->status, sizeof out->status, "diverged: test prediction %lld is %g",
                         (long long)t, out->pred[t]);
                diverged = 1;
                break;
            }
    }
    if (!rc && !diverged) {
        four(nte, yte, out->pred, out->st + ST_R2);
        /* chance 1: the training targets' mean for every test pair */
        double mean = 0;
        for (int64_t t = 0; t < ntr; t++) mean += P->value[tr[t]];
        mean /= (double)ntr;
        for (int64_t t = 0; t < nte; t++) ptr[t] = mean;
        four(nte, yte, ptr, out->st + ST_MEAN_R2);
        /* chance 2: the model's predictions against a seeded permutation of the test targets */
        int64_t *perm = malloc((size_t)nte * sizeof *perm);
        if (!perm) rc = RDML_FAIL(ctx, RDML_ENOMEM, "out of memory");
        for (int64_t t = 0; t < nte && perm; t++) perm[t] = t;
        rdml_rng r = rdml_rng_make(o->seed, rdml_rng_substream(RDML_STREAM_SHUFFLE, (uint64_t)f), 1ull << 60);
        if (perm) {
            rdml_rng_shuffle(&r, perm, nte);
            for (int64_t t = 0; t < nte; t++) ptr[t] = yte[perm[t]];
            four(nte, ptr, out->pred, out->st + ST_SHUF_R2);
        }
        free(perm);
        /* training R^2 on (at most the first 200000 of) the training pairs */
        ntrain_eval = ntr < (cnn ? 2000 : 200000) ? ntr : (cnn ? 2000 : 200000);
        for (int64_t t = 0; t < ntrain_eval; t++) {
            ij_te[2 * t] = P->ij[2 * tr[t]];
            ij_te[2 * t + 1] = P->ij[2 * tr[t] + 1];
            yte[t] = P->value[tr[t]];
        }
        if (!rc) rc = cnn ? rdml_cnn_predict(ctx, cnn, E, ntrain_eval, ij_te, pf)
                          : rdml_pairnet_predict(ctx, net, E, ntrain_eval, ij_te, pf);
        for (int64_t t = 0; t < ntrain_eval; t++) ptr[t] = pf[t];
        out->st[ST_TRAIN_R2] = rdml_metrics_r2(ntrain_eval, yte, ptr);
        out->st[ST_OK] = 1;
        snprintf(out->status, sizeof out->status, "ok");
    } else if (!rc) {
        out->st[ST_OK] = 0;
    }
    out->st[ST_SECONDS] = secs;
    out->st[ST_PAIRS_PER_S] = secs > 0 ? (double)steps_pairs / secs : 0;
    rdml_pairnet_free(&net);
    rdml_cnn_free(&cnn);
    free(Es);
    free(order);
    free(ijb);
    free(ij_te);
    free(yb);
    free(pf);
    free(yte);
    free(ptr);
    return rc;
}

static int write_pairs(rdml_ctx *ctx, rdml_h5 *h, const char *g, const train_opts *o,
                       const rdml_pairs *P, const rdml_split *S, int64_t n) {
    char path[760];
    int rc = rdml_h5_delete(ctx, h, g);
    if (!rc) rc = rdml_h5_group(ctx, h, g);
    snprintf(path, sizeof path, "%s/ij", g);
    if (!rc) rc = rdml_h5_write_rows_i64(ctx, h, path, P->n, 2, 0, ctx->rank == 0 ? P->n : 0, P->ij);
    if (!rc) rc = rdml_h5_attr_str(ctx, h, path, "meaning", "image rows (a, b) of each pair");
    snprintf(path, sizeof path, "%s/value", g);
    if (!rc) rc = rdml_h5_write_vec_f64(ctx, h, path, P->n, P->value);
    if (!rc) rc = rdml_h5_attr_str(ctx, h, path, "meaning", "RDM value of each pair: the regression target");
    snprintf(path, sizeof path, "%s/fold", g);
    if (!rc) rc = rdml_h5_write_vec_i64(ctx, h, path, S->nunits, S->fold);
    if (!rc) rc = rdml_h5_attr_str(ctx, h, path, "meaning", S->scheme == RDML_SPLIT_PAIRS
        ? "test fold of each PAIR (pair-level split: images appear on both sides)"
        : "test fold of each image (-1: always training)");
    int64_t iv[3] = {n, P->n, S->nfolds};
    const char *in[3] = {"n_images", "n_pairs", "n_folds"};
    for (int i = 0; i < 3 && !rc; i++) rc = rdml_h5_attr_i64(ctx, h, g, in[i], &iv[i], 1);
    if (!rc) rc = rdml_h5_attr_str(ctx, h, g, "set", rdml_pairs_set_name(o->pp.set));
    if (!rc) rc = rdml_h5_attr_str(ctx, h, g, "scheme", rdml_split_scheme_name(S->scheme));
    return rc;
}

static int write_fold(rdml_ctx *ctx, rdml_h5 *h, const char *g, const train_opts *o, int64_t f,
                      const fold_out *fo, const int64_t *te, int64_t nte, int64_t ntr,
                      const rdml_pairs *P) {
    char fg[800], path[860];
    snprintf(fg, sizeof fg, "%s/fold_%lld", g, (long long)f);
    int rc = rdml_h5_group(ctx, h, fg);
    double *tgt = malloc((size_t)nte * sizeof *tgt);
    if (!tgt) rc = RDML_FAIL(ctx, RDML_ENOMEM, "out of memory writing fold %lld", (long long)f);
    for (int64_t t = 0; t < nte && tgt; t++) tgt[t] = P->value[te[t]];
    snprintf(path, sizeof path, "%s/test_pairs", fg);
    if (!rc) rc = rdml_h5_write_vec_i64(ctx, h, path, nte, te);
    snprintf(path, sizeof path, "%s/pred", fg);
    if (!rc) rc = rdml_h5_write_vec_f64(ctx, h, path, nte, fo->pred);
    snprintf(path, sizeof path, "%s/target", fg);
    if (!rc) rc = rdml_h5_write_vec_f64(ctx, h, path, nte, tgt);
    snprintf(path, sizeof path, "%s/train_loss", fg);
    if (!rc) rc = rdml_h5_write_vec_f64(ctx, h, path, o->epochs, fo->train_loss);
    if (!rc) rc = rdml_h5_attr_str(ctx, h, path, "meaning", "mean training loss of each epoch (NaN: not reached)");
    snprintf(path, sizeof path, "%s/test_loss", fg);
    if (!rc) rc = rdml_h5_write_vec_f64(ctx, h, path, o->epochs, fo->test_loss);
    if (!rc) rc = rdml_h5_attr_str(ctx, h, path, "meaning", "test MSE after each epoch (NaN: not reached)");
    for (int i = 0; i < 4 && !rc; i++) rc = rdml_h5_attr_f64(ctx, h, fg, metric_names[i], &fo->st[ST_R2 + i], 1);
    for (int i = 0; i < 4 && !rc; i++) {
        char an[64];
        snprintf(an, sizeof an, "mean_predictor_%s", metric_names[i]);
        rc = rdml_h5_attr_f64(ctx, h, fg, an, &fo->st[ST_MEAN_R2 + i], 1);
        snprintf(an, sizeof an, "shuffled_%s", metric_names[i]);
        if (!rc) rc = rdml_h5_attr_f64(ctx, h, fg, an, &fo->st[ST_SHUF_R2 + i], 1);
    }
    if (!rc) rc = rdml_h5_attr_f64(ctx, h, fg, "train_r2", &fo->st[ST_TRAIN_R2], 1);
    if (!rc) rc = rdml_h5_attr_f64(ctx, h, fg, "fit_seconds", &fo->st[ST_SECONDS], 1);
    if (!rc) rc = rdml_h5_attr_f64(ctx, h, fg, "pairs_per_second", &fo->st[ST_PAIRS_PER_S], 1);
    if (!rc) rc = rdml_h5_attr_str(ctx, h, fg, "status", fo->status);
    int64_t iv[2] = {ntr, nte};
    if (!rc) rc = rdml_h5_attr_i64(ctx, h, fg, "n_train", &iv[0], 1);
    if (!rc) rc = rdml_h5_attr_i64(ctx, h, fg, "n_test", &iv[1], 1);
    free(tgt);
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

/* One subject x selection. */
static int one_train(rdml_cli *cli, rdml_h5 *h, const train_opts *o, const rdml_subject *subj,
                     const char *name) {
    rdml_ctx *ctx = &cli->ctx;
    int id = rdml_subject_id(subj);
    char rpath[512], epath[600], gp[900], gs[900];
    int64_t n, d;
    RDML_TRY(rdml_cli_find_inputs(ctx, h, id, name, o->is_cnn ? NULL : o->embedding, rpath,
                                  sizeof rpath, epath, sizeof epath, &n, &d));
    if (o->is_cnn) d = o->cnn.size * o->cnn.size; /* grayscale pixels from the PNGs */
    if (o->input_dim > 0 && o->input_dim != d && !o->is_cnn)
        return RDML_FAIL(ctx, RDML_EDATA, "embeddings %s are %lld wide but train.input_dim = %lld "
                         "(hint: set train.input_dim = 0 to take the width from the embeddings, or "
                         "use embed.name of a %lld-wide embedding)", epath, (long long)d,
                         (long long)o->input_dim, (long long)o->input_dim);
    float *R = rdml_malloc(ctx, (size_t)(n * n) * sizeof *R, "RDM");
    float *E = rdml_malloc(ctx, (size_t)(n * d) * sizeof *E, "embeddings");
    int rc = R && E ? RDML_OK : ctx->code;
    RDML_TRY(rdml_agree(ctx, cli->comm, rc));
    rdml_pairs P;
    rdml_split S;
    memset(&P, 0, sizeof P);
    memset(&S, 0, sizeof S);
    int64_t nf = 0, **tr = NULL, **te = NULL, *ntr = NULL, *nte = NULL;
    fold_out *fo = NULL;
    rc = rdml_h5_read_rows_f32(ctx, h, rpath, 0, n, R);
    if (!rc && o->is_cnn) rc = load_gray(ctx, subj, n, o->cnn.size, E);
    else if (!rc) rc = rdml_h5_read_rows_f32(ctx, h, epath, 0, n, E);
    for (int64_t i = 0; i < n * d && !rc; i++)
        if (!isfinite(E[i]))
            rc = RDML_FAIL(ctx, RDML_EDATA, "embedding %s row %lld column %lld is %g (hint: recompute "
                           "the embeddings)", epath, (long long)(i / d), (long long)(i % d), E[i]);
    if (!rc) rc = rdml_pairs_build(ctx, &o->pp, n, R, NULL, &P);
    if (!rc) rc = rdml_split_make(ctx, &o->sp, n, &P, &S);
    if (!rc) {
        nf = S.nfolds;
        tr = calloc((size_t)nf, sizeof *tr);
        te = calloc((size_t)nf, sizeof *te);
        ntr = calloc((size_t)nf, sizeof *ntr);
        nte = calloc((size_t)nf, sizeof *nte);
        fo = calloc((size_t)nf, sizeof *fo);
        if (!tr || !te || !ntr || !nte || !fo) rc = RDML_FAIL(ctx, RDML_ENOMEM, "out of memory");
    }
    for (int64_t f = 0; f < nf && !rc; f++) {
        rc = rdml_split_fold(ctx, &S, &P, f, &tr[f], &ntr[f], &te[f], &nte[f]);
        if (!rc && nte[f] < 2)
            rc = RDML_FAIL(ctx, RDML_EDATA, "fold %lld has %lld test pairs; R^2 needs at least 2 "
                           "(hint: more images, fewer folds, or pairs.set = all)", (long long)f,
                           (long long)nte[f]);
        if (!rc) {
            fo[f].pred = malloc((size_t)nte[f] * sizeof *fo[f].pred);
            fo[f].train_loss = malloc((size_t)o->epochs * sizeof(double));
            fo[f].test_loss = malloc((size_t)o->epochs * sizeof(double));
            if (!fo[f].pred || !fo[f].train_loss || !fo[f].test_loss) rc = RDML_FAIL(ctx, RDML_ENOMEM, "out of memory");
            for (int64_t t = 0; t < nte[f] && !rc; t++) fo[f].pred[t] = NAN;
            for (int64_t e = 0; e < o->epochs && !rc; e++) fo[f].train_loss[e] = fo[f].test_loss[e] = NAN;
        }
    }
    if (rc) rdml_ctx_prefix(ctx, "subj%02d %s", id, name);
    rc = rdml_agree(ctx, cli->comm, rc);
    for (int64_t f = 0; f < nf && !rc; f++) {
        if (f % ctx->nranks != ctx->rank) continue;
        rc = run_fold(ctx, o, f, n, d, E, &P, tr[f], ntr[f], te[f], nte[f], &fo[f]);
        if (rc) rdml_ctx_prefix(ctx, "subj%02d %s fold %lld", id, name, (long long)f);
    }
    rc = rdml_agree(ctx, cli->comm, rc);
    for (int64_t f = 0; f < nf && !rc; f++) {
        int owner = (int)(f % ctx->nranks);
        MPI_Bcast(fo[f].st, ST_N, MPI_DOUBLE, owner, cli->comm);
        MPI_Bcast(fo[f].pred, (int)nte[f], MPI_DOUBLE, owner, cli->comm);
        MPI_Bcast(fo[f].train_loss, (int)o->epochs, MPI_DOUBLE, owner, cli->comm);
        MPI_Bcast(fo[f].test_loss, (int)o->epochs, MPI_DOUBLE, owner, cli->comm);
        MPI_Bcast(fo[f].status, (int)sizeof fo[f].status, MPI_CHAR, owner, cli->comm);
    }
    snprintf(gp, sizeof gp, "/experiments/%s/pairs/subj%02d/%s", o->experiment, id, name);
    snprintf(gs, sizeof gs, "/experiments/%s/%s/subj%02d/%s", o->experiment, o->model, id, name);
    if (!rc) rc = write_pairs(ctx, h, gp, o, &P, &S, n);
    if (!rc) rc = rdml_h5_delete(ctx, h, gs);
    if (!rc) rc = rdml_h5_group(ctx, h, gs);
    int64_t nok = 0;
    for (int64_t f = 0; f < nf && !rc; f++) {
        rc = write_fold(ctx, h, gs, o, f, &fo[f], te[f], nte[f], ntr[f], &P);
        const double *st = fo[f].st;
        if (rc) break;
        if (st[ST_OK] == 1) {
            nok++;
            rdml_info(ctx, "subj%02d %-12s %s fold %lld/%lld: %lld train / %lld test pairs, test R2 %.3f "
                      "(train %.3f; mean predictor %.3f, shuffled %.3f), %.0f pairs/s", id, name,
                      o->model, (long long)f + 1, (long long)nf, (long long)ntr[f], (long long)nte[f],
                      st[ST_R2], st[ST_TRAIN_R2], st[ST_MEAN_R2], st[ST_SHUF_R2], st[ST_PAIRS_PER_S]);
        } else {
            rdml_warn(ctx, "subj%02d %s %s fold %lld/%lld stopped, the other folds go on: %s", id,
                      name, o->model, (long long)f + 1, (long long)nf, fo[f].status);
        }
    }
    /* table: rows model / mean predictor / shuffled targets; columns mean and std of each metric
     * over the finished folds */
    double table[3 * 8], fm[4096 * 4];
    int64_t nfm = nf < 4096 ? nf : 4096;
    for (int r = 0; r < 3 && !rc; r++)
        for (int c = 0; c < 4; c++) {
            double col[4096];
            int64_t k = 0;
            for (int64_t f = 0; f < nfm; f++)
                if (fo[f].st[ST_OK] == 1) col[k++] = fo[f].st[4 * r + c];
            double mean = NAN, sd = NAN;
            if (k) rdml_metrics_mean_std(k, col, &mean, &sd);
            table[r * 8 + 2 * c] = mean;
            table[r * 8 + 2 * c + 1] = sd;
            char an[64];
            snprintf(an, sizeof an, "%s%s%s", r == 0 ? "mean_" : r == 1 ? "mean_predictor_mean_" : "shuffled_mean_",
                     metric_names[c], "");
            rc = rdml_h5_attr_f64(ctx, h, gs, an, &mean, 1);
            snprintf(an, sizeof an, "%s%s", r == 0 ? "std_" : r == 1 ? "mean_predictor_std_" : "shuffled_std_",
                     metric_names[c]);
            if (!rc) rc = rdml_h5_attr_f64(ctx, h, gs, an, &sd, 1);
            if (rc) break;
        }
    for (int64_t f = 0; f < nfm; f++)
        for (int c = 0; c < 4; c++) fm[f * 4 + c] = fo[f].st[ST_R2 + c];
    char tpath[1000];
    snprintf(tpath, sizeof tpath, "%s/table", gs);
    if (!rc) rc = rdml_h5_write_rows_f64(ctx, h, tpath, 3, 8, 0, ctx->rank == 0 ? 3 : 0, table);
    if (!rc) rc = rdml_h5_attr_str(ctx, h, tpath, "rows", "model,mean_predictor,shuffled_targets");
    if (!rc) rc = rdml_h5_attr_str(ctx, h, tpath, "columns", "mean_r2,std_r2,mean_mse,std_mse,mean_pearson,"
                                   "std_pearson,mean_spearman,std_spearman");
    if (!rc) rc = rdml_h5_attr_str(ctx, h, tpath, "meaning", "test metrics over the finished folds (std: "
                                   "ddof 0); mean_predictor predicts the training targets' mean, "
                                   "shuffled_targets scores the model against permuted test targets");
    snprintf(tpath, sizeof tpath, "%s/fold_metrics", gs);
    if (!rc) rc = rdml_h5_write_rows_f64(ctx, h, tpath, nfm, 4, 0, ctx->rank == 0 ? nfm : 0, fm);
    if (!rc) rc = rdml_h5_attr_str(ctx, h, tpath, "columns", "r2,mse,pearson,spearman");
    int64_t cnt[3] = {nf, nok, o->epochs};
    const char *cn[3] = {"n_folds", "n_folds_finished", "epochs"};
    for (int i = 0; i < 3 && !rc; i++) rc = rdml_h5_attr_i64(ctx, h, gs, cn[i], &cnt[i], 1);
    double pv[5] = {o->opt.lr, (double)o->batch, o->model[0] == 'm' ? o->net.head_dropout : o->net.tower_dropout,
                    o->opt.weight_decay, o->net.pearson_mix};
    const char *pn[5] = {"lr", "batch", "dropout", "weight_decay", "pearson_mix"};
    for (int i = 0; i < 5 && !rc; i++) rc = rdml_h5_attr_f64(ctx, h, gs, pn[i], &pv[i], 1);
    if (!rc) rc = rdml_h5_attr_str(ctx, h, gs, "model", o->model);
    if (!rc) rc = rdml_h5_attr_str(ctx, h, gs, "embedding", o->is_cnn ? "grayscale images" : o->embedding);
    if (!rc) rc = rdml_h5_attr_str(ctx, h, gs, "pairs", gp);
    if (!rc)
        rdml_info(ctx, "subj%02d %-12s %s, %lld pairs, %lld/%lld folds: test R2 %.3f +- %.3f | mean "
                  "predictor %.3f | shuffled targets %.3f", id, name, o->model, (long long)P.n,
                  (long long)nok, (long long)nf, table[0], table[1], table[8], table[16]);
    if (!rc && nok == 0)
        rc = RDML_FAIL(ctx, RDML_EDATA, "subj%02d %s: no fold of %s finished; fold 0 %s", id, name,
                       o->model, nf ? fo[0].status : "does not exist");
    for (int64_t f = 0; f < nf; f++) {
        if (tr) free(tr[f]);
        if (te) free(te[f]);
        if (fo) {
            free(fo[f].pred);
            free(fo[f].train_loss);
            free(fo[f].test_loss);
        }
    }
    free(tr);
    free(te);
    free(ntr);
    free(nte);
    free(fo);
    rdml_split_free(&S);
    rdml_pairs_free(&P);
    free(R);
    free(E);
    return rc;
}

int rdml_cmd_train(rdml_cli *cli) {
    rdml_ctx *ctx = &cli->ctx;
    train_opts o;
    const char *root;
    RDML_TRY(read_opts(cli, &o));
    RDML_TRY(rdml_config_str(ctx, cli->cfg, "data", "root", &root));
    if (cli->npos > 0) root = cli->pos[0];
    rdml_dataset *ds = NULL;
    int *ids = NULL, nids = 0, nsel = 0;
    char **sels = NULL;
    rdml_h5 *h = NULL;
    rdml_pairnet_params chk = o.net;
    chk.in_dim = 1;
    int rc = rdml_pairnet_check(ctx, &chk);
    if (!rc) rc = rdml_dataset_open(ctx, root, &ds);
    if (!rc) rc = rdml_cli_subjects(ctx, cli->cfg, ds, &ids, &nids);
    if (!rc) rc = rdml_cli_selections(ctx, cli->cfg, &sels, &nsel);
    rc = rdml_agree(ctx, cli->comm, rc);
    if (!rc) rc = rdml_cli_results_open(cli, "train", &h);
    for (int i = 0; i < nids && !rc; i++) {
        rdml_subject *subj = NULL;
        rc = rdml_subject_open(ctx, ds, ids[i], &subj);
        rc = rdml_agree(ctx, cli->comm, rc);
        for (int k = 0; k < nsel && !rc; k++) {
            char name[256];
            sel_name(sels[k], name, sizeof name);
            rc = one_train(cli, h, &o, subj, name);
        }
        rdml_subject_close(&subj);
    }
    if (!rc) {
        char out[4096];
        rdml_strlcpy(out, rdml_h5_path(h), sizeof out);
        rc = rdml_h5_commit(ctx, &h);
        if (!rc) rdml_info(ctx, "train: results in %s under /experiments/%s/%s", out, o.experiment, o.model);
    } else {
        rdml_h5_abort(&h);
    }
    rdml_cli_free_list(sels, nsel);
    free(ids);
    rdml_dataset_close(&ds);
    return rc;
}
