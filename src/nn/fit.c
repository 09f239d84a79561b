/* The training loop of a pair model (rdml_pairnet_fit, rdml/nn.h): what `rdmlearn train`
 * runs for every fold and grid setting, and what bench/siamese times. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rdml/metrics.h"
#include "rdml/mpiutil.h"
#include "rdml/nn.h"

/* std(pred) / std(y) over n values (population std; NaN when y is constant). */
static double spread(int64_t n, const double *pred, const double *y) {
    double sp, sy, m;
    rdml_metrics_mean_std(n, pred, &m, &sp);
    rdml_metrics_mean_std(n, y, &m, &sy);
    return sy > 0 ? sp / sy : NAN;
}

/* With -v: per hidden layer the ReLU units that never fire on the first np training pairs,
 * and the spread of the predictions (after `epoch` epochs; 0 = at the start). */
static int debug_health(rdml_ctx *ctx, rdml_pairnet *net, const float *E, int64_t np,
                        const int64_t *ij, uint64_t key, int64_t epoch) {
    if (ctx->log_level < RDML_LOG_DEBUG) return RDML_OK;
    rdml_pairnet_health hh;
    RDML_TRY(rdml_pairnet_diagnose(ctx, net, E, np, ij, NULL, &hh));
    char dl[256] = "";
    for (int l = 0; l < hh.nlayers; l++) {
        size_t k = strlen(dl);
        snprintf(dl + k, sizeof dl - k, " %lld/%lld", (long long)hh.dead[l], (long long)hh.width[l]);
    }
    rdml_debug(ctx, "fit %llx epoch %lld: dead units per layer%s; training predictions mean %.4f std %.4g",
               (unsigned long long)key, (long long)epoch, dl, hh.pred_mean, hh.pred_std);
    return RDML_OK;
}

/* pf (P floats) <- the model's predictions for the P pairs ij (a CNN's split over comm:
 * collective when comm is not NULL). */
static int predict(rdml_ctx *ctx, rdml_pairnet *net, rdml_cnn *cnn, MPI_Comm comm, const float *E,
                   int64_t P, const int64_t *ij, float *pf) {
    return cnn ? rdml_cnn_predict_comm(ctx, cnn, E, P, ij, comm, pf) : rdml_pairnet_predict(ctx, net, E, P, ij, pf);
}

int rdml_pairnet_fit(rdml_ctx *ctx, rdml_pairnet *net, rdml_cnn *cnn, const rdml_optim *optim,
                     const rdml_fit_opts *o, const float *E, int64_t n_images, int64_t ntr,
                     const int64_t *trij, const double *ytr, int64_t nte, const int64_t *teij,
                     const double *yte, double *pred, double *train_loss, double *test_loss,
                     rdml_fit_result *res) {
    memset(res, 0, sizeof *res);
    res->train_r2 = res->train_spread = res->test_spread = NAN;
    res->dead_units = res->units = res->dead_layer = -1;
    if ((net == NULL) == (cnn == NULL))
        return RDML_FAIL(ctx, RDML_EINTERNAL, "rdml_pairnet_fit: give a pair network or a CNN");
    rdml_optim opt = *optim;
    const uint64_t key = o->key;
    const int64_t nev = o->n_eval < ntr ? o->n_eval : ntr;
    const int64_t nbuf = nte > nev ? nte : nev;
    int64_t cap = 0, *ijb = NULL;
    float *yb = NULL;
    int64_t *order = malloc((size_t)(ntr + 1) * sizeof *order), *starts = malloc((size_t)(ntr + 2) * sizeof *starts);
    float *pf = malloc((size_t)(nbuf + 1) * sizeof *pf);
    double *pev = malloc((size_t)(nbuf + 1) * sizeof *pev);
    int rc = order && starts && pf && pev ? RDML_OK
             : RDML_FAIL(ctx, RDML_ENOMEM, "out of memory for a fit of %lld pairs", (long long)ntr);
    /* data-parallel over comm: every rank runs this loop with the same batches; the steps are
     * collective and the ranks agree on errors at every epoch's boundaries */
    int g = 1;
    if (o->comm != NULL && o->comm != MPI_COMM_NULL) MPI_Comm_size(o->comm, &g);
    MPI_Comm comm = g > 1 ? o->comm : NULL;
    if (comm) rc = rdml_agree(ctx, comm, rc);
    if (!rc && net) rc = debug_health(ctx, net, E, nev, trij, key, 0);

    double t0 = rdml_now();
    int64_t seen = 0, step = 0;
    for (int64_t ep = 0; ep < o->epochs && !rc && !res->stop_kind; ep++) {
        /* the epoch's batches */
        rdml_rng r = rdml_rng_make(o->seed, rdml_rng_substream(RDML_STREAM_SHUFFLE, key), (uint64_t)ep << 40);
        int64_t nb = 0, maxb = 0;
        if (o->blocks) {
            rc = rdml_nn_block_batches(ctx, ntr, trij, n_images, o->block_images, o->batch, &r, order, starts, &nb);
        } else {
            for (int64_t q = 0; q < ntr; q++) order[q] = q;
            rdml_rng_shuffle(&r, order, ntr);
            for (int64_t s = 0; s < ntr; s += o->batch) starts[nb++] = s;
            starts[nb] = ntr;
        }
        for (int64_t b = 0; b < nb; b++)
            if (starts[b + 1] - starts[b] > maxb) maxb = starts[b + 1] - starts[b];
        /* warm-up steps: warmup_epochs epochs of this fit's batches (known after planning the first) */
        if (ep == 0) opt.warmup = o->warmup_epochs > 0 ? (int64_t)ceil(o->warmup_epochs * (double)nb) : 0;
        if (!rc && maxb > cap) {
            free(ijb);
            free(yb);
            ijb = malloc((size_t)(2 * maxb) * sizeof *ijb);
            yb = malloc((size_t)maxb * sizeof *yb);
            cap = maxb;
            if (!ijb || !yb) rc = RDML_FAIL(ctx, RDML_ENOMEM, "out of memory for a batch of %lld pairs", (long long)maxb);
        }
        if (comm) rc = rdml_agree(ctx, comm, rc);
        /* one step per batch: zero the gradients, forward, backward, update */
        double sum = 0;
        for (int64_t bi = 0; bi < nb && !rc; bi++) {
            int64_t s0 = starts[bi], bsz = starts[bi + 1] - s0;
            for (int64_t q = 0; q < bsz; q++) {
                int64_t k = order[s0 + q];
                ijb[2 * q] = trij[2 * k];
                ijb[2 * q + 1] = trij[2 * k + 1];
                yb[q] = (float)ytr[k];
            }
            double loss = 0;
            uint64_t bkey = rdml_rng_substream(rdml_rng_substream(key, (uint64_t)ep), (uint64_t)bi);
            step++;
            rc = cnn ? rdml_cnn_step_sharded(ctx, cnn, &opt, E, bsz, ijb, yb, o->shards, comm, &loss)
                     : rdml_pairnet_step_sharded(ctx, net, &opt, E, bsz, ijb, yb, o->seed, bkey, o->shards,
                                                 comm, &loss);
            /* divergence: stop this fit, not the stage */
            if (rc == RDML_EDATA && (!isfinite(loss) || loss > 3.0e38)) {
                res->stop_kind = RDML_FIT_DIVERGED_LOSS;
                res->stop_epoch = ep + 1;
                res->stop_step = step;
                res->stop_value = loss;
                rdml_ctx_clear(ctx);
                rc = RDML_OK;
                break;
            }
            sum += loss * (double)bsz;
            seen += bsz;
        }
        if (rc || res->stop_kind) break;
        /* the epoch's evaluation */
        if (train_loss) train_loss[ep] = sum / (double)ntr;
        if (test_loss) {
            rc = predict(ctx, net, cnn, comm, E, nte, teij, pf);
            double mse = 0;
            for (int64_t q = 0; q < nte; q++) mse += ((double)pf[q] - yte[q]) * ((double)pf[q] - yte[q]);
            test_loss[ep] = mse / (double)nte;
            rdml_debug(ctx, "fit %llx epoch %lld: train loss %.5f test loss %.5f", (unsigned long long)key,
                       (long long)ep + 1, sum / (double)ntr, test_loss[ep]);
        }
        if (!rc && net) rc = debug_health(ctx, net, E, nev, trij, key, ep + 1);
        if (comm) rc = rdml_agree(ctx, comm, rc);
        if (!rc) res->epochs_done = ep + 1;
    }
    res->seconds = rdml_now() - t0;
    res->pairs_per_s = res->seconds > 0 ? (double)seen / res->seconds : 0;

    /* the test predictions; a non-finite one is a divergence too */
    if (!rc && !res->stop_kind) {
        rc = predict(ctx, net, cnn, comm, E, nte, teij, pf);
        for (int64_t q = 0; q < nte && !rc; q++) {
            pred[q] = pf[q];
            if (!isfinite(pred[q]) && !res->stop_kind) {
                res->stop_kind = RDML_FIT_DIVERGED_PRED;
                res->stop_step = q;
                res->stop_value = pred[q];
            }
        }
        if (!rc && !res->stop_kind && yte) res->test_spread = spread(nte, pred, yte);
    }
    /* the training predictions and the collapse diagnostics */
    if (!rc && !res->stop_kind && o->eval_train) {
        double *yev = malloc((size_t)(nev + 1) * sizeof *yev);
        if (!yev) rc = RDML_FAIL(ctx, RDML_ENOMEM, "out of memory");
        if (comm && cnn) rc = rdml_agree(ctx, comm, rc); /* the CNN's predictions are collective */
        for (int64_t q = 0; q < nev && !rc; q++) yev[q] = ytr[q];
        if (!rc && cnn) {
            rc = rdml_cnn_predict_comm(ctx, cnn, E, nev, trij, comm, pf);
        } else if (!rc) {
            /* the predictions, and which ReLU units ever fire on the training pairs */
            rdml_pairnet_health hh;
            rc = rdml_pairnet_diagnose(ctx, net, E, nev, trij, pf, &hh);
            res->dead_units = hh.dead_units;
            res->units = hh.units;
            res->dead_layer = hh.dead_layer;
        }
        for (int64_t q = 0; q < nev && yev; q++) pev[q] = pf[q];
        if (!rc) {
            res->train_r2 = rdml_metrics_r2(nev, yev, pev);
            res->train_spread = spread(nev, pev, yev);
        }
        free(yev);
    }
    if (comm) rc = rdml_agree(ctx, comm, rc);
    free(order);
    free(starts);
    free(ijb);
    free(yb);
    free(pf);
    free(pev);
    return rc;
}
