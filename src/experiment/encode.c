/* `rdmlearn encode`: voxelwise encoding models. For every subject of data.subjects, selection
 * of data.rois and embedding of encode.embeddings (default: every embedding of the subject
 * in run.output), a ridge regression from the N x D embedding to each of the selection's V
 * vertices (lh then rh), over outer image folds that are the pair models' folds for the same
 * [split], [pairs] images and run.seed (rdml_split_make over the same image count, so the
 * test images are the same), with the penalty chosen per vertex from the alpha grid on the
 * training images (encode.mode: efficient leave-one-out or inner k-fold; the solver is
 * rdml/ridge.h through enc_ridge.c). Honest scores: the features are centred (and with
 * encode.standardize_features scaled) and, with data.standardize, the vertices z-scored on
 * the training images of each fold only; the test images get the training statistics.
 *
 * Distribution: the V vertices are cut into blocks of encode.block, dealt to the ranks in
 * turn (block b to rank b % P); each rank reads only its blocks' columns of the fMRI .npy
 * files (all N rows), and factorises each fold's training features itself (cheap: N x D),
 * so no rank ever holds N x V. Per-vertex results are independent of the blocks' owners;
 * the only cross-vertex sums (the predicted RDM, enc_rdm.c) are exact fixed-point sums. So
 * the results are the same bits for any number of ranks.
 *
 * Output (docs/results.md, docs/encode.md): /encode/<embedding>/subjNN/<selection>/ with per
 * fold fold_<f>/{alpha,r,r2,noise_normalized}_{lh,rh} (full hemisphere length, NaN outside the
 * selection), pred_rdm (m x m float32) and test_images (int64 rows into
 * /subjects/subjNN/images), the fold means, the noise ceiling used, and roi_summary/. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "enc_priv.h"
#include "exp_priv.h"
#include "rdml/dataset.h"
#include "rdml/h5.h"
#include "rdml/mpiutil.h"
#include "rdml/npy.h"
#include "rdml/ridge.h"

#define MIN_NOISE_CEILING 1.0 /* percent: below it no noise-normalised accuracy (NaN) */

static void opts_free(enc_opts *o) {
    free(o->embeddings);
    free(o->alphas);
    memset(o, 0, sizeof *o);
}

static int read_opts(rdml_exp *ex, enc_opts *o) {
    rdml_ctx *ctx = ex->ctx;
    const rdml_config *cfg = ex->cfg;
    const char *s, *experiment;
    int64_t seed;
    int b;
    memset(o, 0, sizeof *o);
    RDML_TRY(rdml_config_int(ctx, cfg, "run", "seed", &seed));
    o->seed = (uint64_t)seed;
    RDML_TRY(rdml_config_int(ctx, cfg, "data", "images", &o->nimages));
    RDML_TRY(rdml_config_bool(ctx, cfg, "data", "standardize", &b));
    o->standardize = b;
    RDML_TRY(rdml_config_str(ctx, cfg, "rdm", "metric", &s));
    RDML_TRY(rdml_rdm_metric_parse(ctx, s, &o->metric));
    rdml_pairs_params pp;
    double cf;
    RDML_TRY(rdml_exp_pairs_opts(ctx, cfg, o->seed, &experiment, &pp, &o->pair_images, &cf, &o->sp));
    o->scheme_note = "";
    if (o->sp.scheme == RDML_SPLIT_PAIRS) {
        /* pair-level folds have no test images: the image k-fold with the same folds and seed */
        o->sp.scheme = RDML_SPLIT_KFOLD;
        o->scheme_note = "split.scheme = pairs splits pairs, not images; the encoding model uses "
                         "the image k-fold of split.folds and run.seed (split.scheme = kfold)";
    }
    char **items;
    int n;
    RDML_TRY(rdml_config_list(ctx, cfg, "encode", "embeddings", &items, &n));
    if (n == 1 && strcmp(items[0], "all") == 0) {
        free(items);
    } else {
        o->embeddings = items;
        o->nemb = n;
    }
    RDML_TRY(rdml_config_list(ctx, cfg, "encode", "alphas", &items, &n));
    int logspace = n == 1 && strcmp(items[0], "logspace") == 0;
    int64_t na = n;
    double amin = 0, amax = 0;
    if (logspace) {
        RDML_TRY(rdml_config_int(ctx, cfg, "encode", "n_alphas", &na));
        RDML_TRY(rdml_config_real(ctx, cfg, "encode", "alpha_min", &amin));
        RDML_TRY(rdml_config_real(ctx, cfg, "encode", "alpha_max", &amax));
        if (!(amin > 0) || !(amax >= amin)) {
            free(items);
            return RDML_FAIL(ctx, RDML_ECONFIG, "[encode] alpha_min = %g, alpha_max = %g: need 0 < "
                             "alpha_min <= alpha_max (hint: e.g. alpha_min = 0.01, alpha_max = 1e6)",
                             amin, amax);
        }
    }
    o->alphas = rdml_malloc(ctx, (size_t)na * sizeof *o->alphas, "alpha grid");
    if (!o->alphas) {
        free(items);
        return ctx->code;
    }
    o->nalpha = (int)na;
    for (int64_t k = 0; k < na; k++) {
        if (logspace) {
            double la = log10(amin), lb = log10(amax);
            o->alphas[k] = na == 1 ? amin : pow(10.0, la + (lb - la) * (double)k / (double)(na - 1));
        } else {
            o->alphas[k] = strtod(items[k], NULL);
            if (!(o->alphas[k] > 0) || !isfinite(o->alphas[k])) { /* the schema checks it too */
                int rc = RDML_FAIL(ctx, RDML_ECONFIG, "[encode] alphas: item %lld \"%s\" is not a "
                                   "positive number (hint: ridge penalties are > 0, e.g. "
                                   "0.1,1,10)", (long long)k + 1, items[k]);
                free(items);
                return rc;
            }
        }
    }
    free(items);
    RDML_TRY(rdml_config_str(ctx, cfg, "encode", "mode", &s));
    o->mode = strcmp(s, "kfold") == 0 ? ENC_KFOLD : ENC_LOO;
    RDML_TRY(rdml_config_int(ctx, cfg, "encode", "inner_folds", &o->inner_folds));
    RDML_TRY(rdml_config_bool(ctx, cfg, "encode", "standardize_features", &b));
    o->std_features = b;
    RDML_TRY(rdml_config_int(ctx, cfg, "encode", "block", &o->block));
    o->min_nc = MIN_NOISE_CEILING;
    return RDML_OK;
}

/* Group name of a selection: the user's spelling with + for unions (as the rdm stage). */
static void sel_name(const char *spec, char *out, size_t len) {
    rdml_strlcpy(out, spec, len);
    for (char *p = out; *p; p++)
        if (*p == ',') *p = '+';
}

/* ---- per subject: images, embeddings list, folds, noise ceiling ---- */

typedef struct enc_subject {
    const rdml_subject *s;
    int id;
    int64_t n;            /* images used: the pair models' count */
    rdml_split S;
    char **emb;           /* embeddings to fit */
    int64_t nemb;
    float *nc[2];         /* per-vertex noise ceiling (percent) per hemisphere, or NULL */
    char nc_source[600];
} enc_subject;

static void subject_free(enc_subject *e) {
    rdml_split_free(&e->S);
    rdml_h5_free_strings(e->emb, e->nemb);
    free(e->nc[0]);
    free(e->nc[1]);
    memset(e, 0, sizeof *e);
}

/* Not collective (every rank reads the same two small files): the dataset's per-vertex noise
 * ceilings, ROOT/subjNN/training_split/training_fmri/{lh,rh}_noise_ceiling.npy (docs/encode.md),
 * or none when neither exists. */
static int read_noise_ceiling(rdml_ctx *ctx, enc_subject *e) {
    static const char *const hn[2] = {"lh", "rh"};
    char path[2][4200];
    int have[2];
    for (int h = 0; h < 2; h++) {
        snprintf(path[h], sizeof path[h], "%s/training_split/training_fmri/%s_noise_ceiling.npy",
                 rdml_subject_dir(e->s), hn[h]);
        FILE *f = fopen(path[h], "rb");
        have[h] = f != NULL;
        if (f) fclose(f);
    }
    if (!have[0] && !have[1]) return RDML_OK;
    if (!have[0] || !have[1])
        return RDML_FAIL(ctx, RDML_EDATA, "%s exists but %s does not: a noise ceiling needs both "
                         "hemispheres (hint: add the missing file, or remove the other)",
                         have[0] ? path[0] : path[1], have[0] ? path[1] : path[0]);
    for (int h = 0; h < 2; h++) {
        rdml_npy f;
        RDML_TRY(rdml_npy_open(ctx, path[h], 0, &f));
        int64_t nv = rdml_subject_nvert(e->s, h);
        int rc = RDML_OK;
        if (f.ndim != 1 || f.shape[0] != nv)
            rc = RDML_FAIL(ctx, RDML_EDATA, "%s: shape (%lld%s) but subj%02d has %lld %s vertices "
                           "(hint: one noise ceiling in percent per vertex, a 1-D array)", path[h],
                           (long long)f.shape[0], f.ndim == 1 ? "," : ", ...", e->id,
                           (long long)nv, hn[h]);
        if (!rc) {
            e->nc[h] = rdml_malloc(ctx, (size_t)(nv + 1) * sizeof *e->nc[h], "noise ceiling");
            rc = e->nc[h] ? rdml_npy_read_f32(ctx, &f, 0, nv, NULL, 1, e->nc[h]) : ctx->code;
        }
        rdml_npy_close(&f);
        RDML_TRY(rc);
        for (int64_t v = 0; v < nv; v++)
            if (!isfinite(e->nc[h][v]) || e->nc[h][v] < 0 || e->nc[h][v] > 100.0001f)
                return RDML_FAIL(ctx, RDML_EDATA, "%s: vertex %lld holds %g; a noise ceiling is a "
                                 "percentage in [0, 100] (hint: NSD's ncsnr converts with NC = 100 "
                                 "ncsnr^2 / (ncsnr^2 + 1/n), docs/encode.md)", path[h],
                                 (long long)v, (double)e->nc[h][v]);
    }
    snprintf(e->nc_source, sizeof e->nc_source, "%s/training_split/training_fmri/{lh,rh}_noise_ceiling.npy",
             rdml_subject_dir(e->s));
    return RDML_OK;
}

/* Collective. The subject's images, embeddings and folds. */
static int subject_prepare(rdml_exp *ex, rdml_h5 *h, const enc_opts *o, const rdml_subject *s,
                           enc_subject *e) {
    rdml_ctx *ctx = ex->ctx;
    memset(e, 0, sizeof *e);
    e->s = s;
    e->id = rdml_subject_id(s);
    int64_t n = rdml_subject_nimages(s);
    if (o->nimages > 0 && o->nimages < n) n = o->nimages;
    if (o->pair_images > 0 && o->pair_images < n) n = o->pair_images;
    e->n = n;
    char path[256];
    /* the rows of the results file's matrices must be the dataset's images */
    snprintf(path, sizeof path, "/subjects/subj%02d/images/nsd_id", e->id);
    int found = 0, nd = 0;
    int64_t dims[8] = {0};
    RDML_TRY(rdml_h5_exists(ctx, h, path, &found));
    if (!found)
        return RDML_FAIL(ctx, RDML_EDATA, "%s has no %s (hint: run `rdmlearn embed` with the same "
                         "data.root and run.output first)", rdml_h5_path(h), path);
    RDML_TRY(rdml_h5_dims(ctx, h, path, &nd, dims));
    int64_t *ids = rdml_malloc(ctx, (size_t)(dims[0] + 1) * sizeof *ids, "image ids");
    RDML_TRY(rdml_agree(ctx, ex->comm, ids ? RDML_OK : ctx->code));
    int rc = rdml_h5_read_rows_i64(ctx, h, path, 0, dims[0], ids);
    if (!rc && dims[0] < n)
        rc = RDML_FAIL(ctx, RDML_EDATA, "%s lists %lld images but the encoding models use %lld of "
                       "subj%02d (hint: run `rdmlearn embed` with the same data.images)",
                       rdml_h5_path(h), (long long)dims[0], (long long)n, e->id);
    for (int64_t i = 0; i < n && !rc; i++)
        if (ids[i] != rdml_subject_nsd_id(s, i))
            rc = RDML_FAIL(ctx, RDML_EDATA, "the embeddings in %s are of other images than the fMRI "
                           "rows of subj%02d in %s: row %lld is NSD id %lld there but %lld in the "
                           "dataset (hint: run `rdmlearn embed` with this data.root into this "
                           "run.output, or point data.root at the dataset the results were made "
                           "from)", rdml_h5_path(h), e->id, rdml_subject_dir(s), (long long)i,
                           (long long)ids[i], (long long)rdml_subject_nsd_id(s, i));
    free(ids);
    RDML_TRY(rc);
    /* the embeddings */
    snprintf(path, sizeof path, "/subjects/subj%02d/embeddings", e->id);
    char **all = NULL;
    int64_t nall = 0;
    RDML_TRY(rdml_h5_list(ctx, h, path, &all, &nall));
    if (!o->embeddings) {
        e->emb = all;
        e->nemb = nall;
        if (!nall)
            return RDML_FAIL(ctx, RDML_EDATA, "%s has no embeddings of subj%02d (hint: run "
                             "`rdmlearn embed` first)", rdml_h5_path(h), e->id);
    } else {
        e->emb = calloc((size_t)o->nemb + 1, sizeof *e->emb);
        e->nemb = 0;
        rc = e->emb ? RDML_OK : RDML_FAIL(ctx, RDML_ENOMEM, "out of memory");
        for (int k = 0; k < o->nemb && !rc; k++) {
            int in = 0;
            for (int64_t t = 0; t < nall; t++) in |= strcmp(all[t], o->embeddings[k]) == 0;
            if (!in) {
                char have[1024] = "";
                for (int64_t t = 0; t < nall; t++) {
                    size_t l = strlen(have);
                    snprintf(have + l, sizeof have - l, "%s%s", t ? ", " : "", all[t]);
                }
                rc = RDML_FAIL(ctx, RDML_EDATA, "[encode] embeddings: %s has no embedding %s of "
                               "subj%02d (it has: %s; hint: run `rdmlearn embed` with embed.name = "
                               "%s, or list the ones it has)", rdml_h5_path(h), o->embeddings[k],
                               e->id, nall ? have : "none", o->embeddings[k]);
            } else {
                e->emb[e->nemb] = strdup(o->embeddings[k]);
                if (!e->emb[e->nemb++]) rc = RDML_FAIL(ctx, RDML_ENOMEM, "out of memory");
            }
        }
        rdml_h5_free_strings(all, nall);
        RDML_TRY(rc);
    }
    /* the pair models' image folds: rdml_split_make over the same n, split and seed */
    RDML_TRY(rdml_split_make(ctx, &o->sp, n, NULL, &e->S));
    rc = read_noise_ceiling(ctx, e);
    return rdml_agree(ctx, ex->comm, rc);
}

/* ---- per subject x selection: my vertex blocks ---- */

typedef struct enc_blocks {
    int64_t V, nbt;       /* vertices, blocks in all */
    int nblk;             /* my blocks: b = rank + k P */
    int64_t *lo, *w;      /* first column (into the selection) and width of my blocks */
    float **Y;            /* my blocks' fMRI: n x w[k] each */
} enc_blocks;

static void blocks_free(enc_blocks *B) {
    for (int k = 0; B->Y && k < B->nblk; k++) free(B->Y[k]);
    free(B->Y);
    free(B->lo);
    free(B->w);
    memset(B, 0, sizeof *B);
}

/* Collective. Read my blocks' columns of the selection for the first n images. */
static int blocks_read(rdml_exp *ex, const enc_opts *o, const enc_subject *e,
                       const rdml_selection *sel, enc_blocks *B) {
    rdml_ctx *ctx = ex->ctx;
    int rank, P;
    MPI_Comm_rank(ex->comm, &rank);
    MPI_Comm_size(ex->comm, &P);
    memset(B, 0, sizeof *B);
    B->V = sel->n;
    B->nbt = (sel->n + o->block - 1) / o->block;
    B->nblk = B->nbt > rank ? (int)((B->nbt - 1 - rank) / P + 1) : 0;
    int k1 = B->nblk + 1;
    B->lo = calloc((size_t)k1, sizeof *B->lo);
    B->w = calloc((size_t)k1, sizeof *B->w);
    B->Y = calloc((size_t)k1, sizeof *B->Y);
    int rc = B->lo && B->w && B->Y ? RDML_OK : RDML_FAIL(ctx, RDML_ENOMEM, "out of memory");
    for (int k = 0; k < B->nblk && !rc; k++) {
        int64_t b = rank + (int64_t)k * P;
        B->lo[k] = b * o->block;
        B->w[k] = (b + 1) * o->block < sel->n ? o->block : sel->n - b * o->block;
        B->Y[k] = rdml_malloc(ctx, (size_t)(e->n * B->w[k] + 1) * sizeof *B->Y[k], "fMRI block");
        if (!B->Y[k]) {
            rc = ctx->code;
            break;
        }
        /* the block as a selection of its own: its columns, lh ones first as in sel */
        rdml_selection sub = {sel->spec, B->w[k], 0, sel->cols + B->lo[k]};
        int64_t lh_end = sel->n_lh;
        sub.n_lh = lh_end <= B->lo[k] ? 0 : (lh_end >= B->lo[k] + B->w[k] ? B->w[k] : lh_end - B->lo[k]);
        rc = rdml_subject_read_fmri(ctx, e->s, &sub, 0, e->n, B->Y[k]);
        for (int64_t t = 0; t < e->n * B->w[k] && !rc; t++)
            if (!isfinite(B->Y[k][t])) {
                int64_t i = t / B->w[k], c = B->lo[k] + t % B->w[k];
                int lh = c < sel->n_lh;
                int64_t vtx = lh ? sel->cols[c] : sel->cols[c] - rdml_subject_nvert(e->s, 0);
                rc = RDML_FAIL(ctx, RDML_EDATA, "subj%02d fMRI: image row %lld, %s vertex %lld is %s "
                               "(hint: `rdmlearn check` lists non-finite values; drop such "
                               "vertices from data.rois)", e->id, (long long)i, lh ? "lh" : "rh",
                               (long long)vtx, isnan(B->Y[k][t]) ? "NaN" : "infinite");
            }
    }
    return rdml_agree(ctx, ex->comm, rc);
}

/* ---- one subject x selection x embedding ---- */

/* Exact gather of per-vertex values that each rank set for its own vertices (the others
 * hold +0.0 bits): a bitwise OR of the 64-bit patterns, so no arithmetic touches them. */
static int or_gather(rdml_ctx *ctx, MPI_Comm comm, double *v, int64_t n) {
    return rdml_mpi_check(ctx, MPI_Allreduce(MPI_IN_PLACE, v, (int)n, MPI_UINT64_T, MPI_BOR, comm),
                          "MPI_Allreduce");
}

typedef struct enc_result {
    int64_t nf, V;
    double *alpha, *r, *r2; /* nf x V, selection order */
    float **rdm;            /* nf predicted RDMs (rank 0) */
    int64_t **test;         /* nf test image lists */
    int64_t *ntest;
} enc_result;

static void result_free(enc_result *R) {
    free(R->alpha);
    free(R->r);
    free(R->r2);
    for (int64_t f = 0; f < R->nf; f++) {
        if (R->rdm) free(R->rdm[f]);
        if (R->test) free(R->test[f]);
    }
    free(R->rdm);
    free(R->test);
    free(R->ntest);
    memset(R, 0, sizeof *R);
}

/* Collective. Every outer fold of one embedding: factorise the fold's training features
 * (every rank the same), fit my blocks (rdml_ridge_fit: alpha per vertex, test r and R^2),
 * and the predicted RDM from the test predictions, z-scored per vertex with the training
 * images' mean and std when data.standardize (as the RDM stage z-scores the responses). */
static int fit_embedding(rdml_exp *ex, const enc_opts *o, const enc_subject *e,
                         const enc_blocks *B, const float *X, int64_t d, enc_result *R) {
    rdml_ctx *ctx = ex->ctx;
    const int64_t n = e->n, nf = e->S.nfolds, V = B->V;
    int P;
    MPI_Comm_size(ex->comm, &P);
    memset(R, 0, sizeof *R);
    R->nf = nf;
    R->V = V;
    R->alpha = calloc((size_t)(nf * V + 1), sizeof *R->alpha);
    R->r = calloc((size_t)(nf * V + 1), sizeof *R->r);
    R->r2 = calloc((size_t)(nf * V + 1), sizeof *R->r2);
    R->rdm = calloc((size_t)nf + 1, sizeof *R->rdm);
    R->test = calloc((size_t)nf + 1, sizeof *R->test);
    R->ntest = calloc((size_t)nf + 1, sizeof *R->ntest);
    int64_t wmax = 1;
    for (int k = 0; k < B->nblk; k++) wmax = B->w[k] > wmax ? B->w[k] : wmax;
    int64_t *tr = malloc((size_t)(n + 1) * sizeof *tr);
    int32_t *ia = malloc((size_t)(2 * wmax + 2) * sizeof *ia), *nev = ia ? ia + wmax + 1 : NULL;
    double nev_sum = 0, nev_n = 0; /* alphas evaluated exactly (LOO pruning), for the log */
    double *r = malloc((size_t)(wmax + 1) * sizeof *r), *r2 = malloc((size_t)(wmax + 1) * sizeof *r2);
    float **pb = calloc((size_t)B->nblk + 1, sizeof *pb);
    int rc = R->alpha && R->r && R->r2 && R->rdm && R->test && R->ntest && tr && ia && r && r2 && pb
                 ? RDML_OK
                 : RDML_FAIL(ctx, RDML_ENOMEM, "out of memory for the encoding models of subj%02d",
                             e->id);
    rc = rdml_agree(ctx, ex->comm, rc);
    rdml_ridge_opts ro;
    rdml_ridge_opts_default(&ro);
    ro.alphas = o->alphas;
    ro.nalphas = o->nalpha;
    ro.cv = o->mode == ENC_KFOLD ? RDML_RIDGE_KFOLD : RDML_RIDGE_LOO;
    ro.standardize = o->std_features;
    ro.inner_k = o->inner_folds;
    ro.seed = o->seed;
    double t_fact = 0, t_fit = 0, t_rdm = 0, t0;
    for (int64_t f = 0; f < nf && !rc; f++) {
        rc = rdml_stop_agree(ctx, ex->comm, rc, "before outer fold %lld of %lld", (long long)f,
                             (long long)nf);
        if (rc) break;
        int64_t ntr = 0, nte = 0;
        for (int64_t i = 0; i < n; i++) nte += e->S.fold[i] == f;
        R->test[f] = malloc((size_t)(nte + 1) * sizeof *R->test[f]);
        if (!R->test[f]) rc = RDML_FAIL(ctx, RDML_ENOMEM, "out of memory");
        nte = 0;
        for (int64_t i = 0; i < n && !rc; i++) {
            if (e->S.fold[i] == f) R->test[f][nte++] = i;
            else tr[ntr++] = i;
        }
        R->ntest[f] = nte;
        ro.outer_fold = f; /* k-fold: the inner folds of the pair models' grid search */
        rdml_ridge_fact *fact = NULL;
        t0 = rdml_now();
        if (!rc) rc = rdml_ridge_fact_new(ctx, X, n, d, d, tr, ntr, R->test[f], nte, &ro, &fact);
        t_fact += rdml_now() - t0;
        t0 = rdml_now();
        /* rounds of one block per rank, a stop boundary each: every rank knows how many */
        const int64_t rounds = (B->nbt + P - 1) / P;
        for (int64_t k = 0; k < rounds; k++) {
            rc = rdml_stop_agree(ctx, ex->comm, rc, "in outer fold %lld of %lld (%lld of %lld "
                                 "vertex blocks done)", (long long)f, (long long)nf,
                                 (long long)(k * P < B->nbt ? k * P : B->nbt), (long long)B->nbt);
            if (rc || k >= B->nblk) {
                if (rc) break; /* every rank breaks in the same round */
                continue;
            }
            const int64_t w = B->w[k];
            pb[k] = malloc((size_t)(nte * w + 1) * sizeof *pb[k]);
            if (!pb[k]) {
                rc = RDML_FAIL(ctx, RDML_ENOMEM, "out of memory for the test predictions");
                continue;
            }
            rdml_ridge_out out;
            memset(&out, 0, sizeof out);
            out.alpha_index = ia;
            out.pred = pb[k];
            out.r = r;
            out.r2 = r2;
            out.loo_evals = nev;
            rc = rdml_ridge_fit(ctx, fact, B->Y[k], w, w, B->lo[k], &out);
            if (rc) continue;
            for (int64_t v = 0; v < w; v++) nev_sum += nev[v];
            nev_n += (double)w;
            for (int64_t v = 0; v < w; v++) {
                const int64_t c = f * V + B->lo[k] + v;
                R->alpha[c] = o->alphas[ia[v]];
                R->r[c] = r[v];
                R->r2[c] = r2[v];
            }
            if (!o->standardize) continue;
            /* per vertex: training mean and std (row by row: contiguous reads; per vertex the
             * sums run over the training rows in order) */
            double *mu = calloc((size_t)(2 * w), sizeof *mu), *sc = mu ? mu + w : NULL;
            if (!mu) {
                rc = RDML_FAIL(ctx, RDML_ENOMEM, "out of memory for the test predictions");
                continue;
            }
            const float *Y = B->Y[k];
            for (int64_t t = 0; t < ntr; t++)
                for (int64_t v = 0; v < w; v++) mu[v] += Y[tr[t] * w + v];
            for (int64_t v = 0; v < w; v++) mu[v] /= (double)ntr;
            for (int64_t t = 0; t < ntr; t++)
                for (int64_t v = 0; v < w; v++) sc[v] += (Y[tr[t] * w + v] - mu[v]) * (Y[tr[t] * w + v] - mu[v]);
            for (int64_t v = 0; v < w; v++) {
                double sd = sqrt(sc[v] / (double)ntr);
                sc[v] = sd > 0 ? 1.0 / sd : 0.0;
            }
            for (int64_t t = 0; t < nte; t++)
                for (int64_t v = 0; v < w; v++) pb[k][t * w + v] = (float)((pb[k][t * w + v] - mu[v]) * sc[v]);
            free(mu);
        }
        rdml_ridge_fact_free(fact);
        t_fit += rdml_now() - t0;
        if (rc && ctx->code != RDML_ECANCELLED) rdml_ctx_prefix(ctx, "outer fold %lld", (long long)f);
        rc = rdml_agree(ctx, ex->comm, rc);
        t0 = rdml_now();
        if (!rc) rc = enc_pred_rdm(ctx, ex->comm, o, nte, V, B->nbt, B->nblk, B->lo, B->w, pb, &R->rdm[f]);
        t_rdm += rdml_now() - t0;
        for (int k = 0; k < B->nblk; k++) {
            free(pb[k]);
            pb[k] = NULL;
        }
    }
    rdml_debug(ctx, "encode subj%02d: rank 0 spent %.2f s factorising, %.2f s fitting its %d "
               "block(s) (%.2f of %d alphas evaluated exactly per vertex and fold), %.2f s on "
               "the predicted RDMs", e->id, t_fact, t_fit, B->nblk,
               nev_sum / (nev_n > 0 ? nev_n : 1), (int)o->nalpha, t_rdm);
    if (!rc) rc = or_gather(ctx, ex->comm, R->alpha, nf * V);
    if (!rc) rc = or_gather(ctx, ex->comm, R->r, nf * V);
    if (!rc) rc = or_gather(ctx, ex->comm, R->r2, nf * V);
    free(tr);
    free(ia);
    free(r);
    free(r2);
    free(pb);
    return rc;
}

/* ---- writing ---- */

/* Full-length lh and rh vectors (NaN outside the selection) of selection-ordered values. */
static void spread(const rdml_selection *sel, int64_t nlh, const double *v, double *lh, double *rh,
                   int64_t nrh) {
    for (int64_t j = 0; j < nlh; j++) lh[j] = NAN;
    for (int64_t j = 0; j < nrh; j++) rh[j] = NAN;
    for (int64_t k = 0; k < sel->n; k++) {
        if (k < sel->n_lh) lh[sel->cols[k]] = v[k];
        else rh[sel->cols[k] - nlh] = v[k];
    }
}

static int write_pair(rdml_ctx *ctx, rdml_h5 *h, const char *g, const char *name,
                      const rdml_selection *sel, int64_t nlh, int64_t nrh, const double *v,
                      double *lh, double *rh, const char *meaning) {
    char path[900];
    spread(sel, nlh, v, lh, rh, nrh);
    snprintf(path, sizeof path, "%s/%s_lh", g, name);
    int rc = rdml_h5_write_vec_f64(ctx, h, path, nlh, lh);
    if (!rc && meaning) rc = rdml_h5_attr_str(ctx, h, path, "meaning", meaning);
    snprintf(path, sizeof path, "%s/%s_rh", g, name);
    if (!rc) rc = rdml_h5_write_vec_f64(ctx, h, path, nrh, rh);
    if (!rc && meaning) rc = rdml_h5_attr_str(ctx, h, path, "meaning", meaning);
    return rc;
}

/* Noise-normalised accuracy of one vertex, in percent: 100 r^2 / (NC / 100) (Algonauts 2023);
 * a negative r counts as 0, and a vertex whose ceiling is below o->min_nc gets NaN. */
static double nna_of(const enc_opts *o, double r, double nc) {
    if (!isfinite(r) || !isfinite(nc) || nc < o->min_nc) return NAN;
    double rp = r > 0 ? r : 0;
    return 100.0 * rp * rp / (nc / 100.0);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Per ROI (every ROI of every class with vertices in the selection, then the selection as a
 * whole): vertices, median and mean of the fold-mean r, share with r > 0, median R^2, median
 * noise ceiling and noise-normalised accuracy. Every rank computes the same table. */
static int write_roi_summary(rdml_ctx *ctx, rdml_h5 *h, const char *g, const enc_opts *o,
                             const enc_subject *e, const rdml_selection *sel, const char *selname,
                             const double *mr, const double *mr2, const double *nc, const double *nna) {
    const int64_t nlh = rdml_subject_nvert(e->s, 0), ntot = nlh + rdml_subject_nvert(e->s, 1);
    int64_t *pos = malloc((size_t)(ntot + 1) * sizeof *pos); /* global column -> selection index */
    double *buf = malloc((size_t)(sel->n + 1) * sizeof *buf);
    int cap = 64, nrow = 0;
    char **names = calloc((size_t)cap, sizeof *names), **classes = calloc((size_t)cap, sizeof *classes);
    int64_t *nv = calloc((size_t)cap, sizeof *nv);
    double *col[7], *quant = calloc((size_t)cap * 5, sizeof *quant);
    for (int c = 0; c < 7; c++) col[c] = calloc((size_t)cap, sizeof *col[c]);
    int rc = pos && buf && names && classes && nv && quant && col[0] && col[1] && col[2] && col[3] &&
                     col[4] && col[5] && col[6]
                 ? RDML_OK
                 : RDML_FAIL(ctx, RDML_ENOMEM, "out of memory for the ROI summary");
    for (int64_t j = 0; !rc && j < ntot; j++) pos[j] = -1;
    for (int64_t k = 0; !rc && k < sel->n; k++) pos[sel->cols[k]] = k;
    for (int cls = 0; cls <= RDML_NROICLASS && !rc; cls++) {
        int nr = cls < RDML_NROICLASS ? rdml_subject_nrois(e->s, cls) : 1;
        for (int r = 0; r < nr && !rc; r++) {
            rdml_selection roi = {0};
            const char *rn = cls < RDML_NROICLASS ? rdml_subject_roi_name(e->s, cls, r) : selname;
            if (cls < RDML_NROICLASS) {
                if (rdml_subject_roi_nvert(e->s, cls, r, 0) + rdml_subject_roi_nvert(e->s, cls, r, 1) == 0)
                    continue;
                rdml_ctx tmp;
                rdml_ctx_init(&tmp);
                tmp.log_level = RDML_LOG_QUIET;
                if (rdml_subject_select(&tmp, e->s, rn, &roi) != RDML_OK) continue;
            }
            int64_t cnt = 0;
            int64_t nsel = cls < RDML_NROICLASS ? roi.n : sel->n;
            for (int64_t t = 0; t < nsel; t++) {
                int64_t k = cls < RDML_NROICLASS ? pos[roi.cols[t]] : t;
                if (k >= 0) buf[cnt++] = (double)k;
            }
            if (cnt == 0) {
                rdml_selection_free(&roi);
                continue;
            }
            if (nrow == cap) {
                cap *= 2;
                names = realloc(names, (size_t)cap * sizeof *names);
                classes = realloc(classes, (size_t)cap * sizeof *classes);
                nv = realloc(nv, (size_t)cap * sizeof *nv);
                for (int c = 0; c < 7; c++) col[c] = realloc(col[c], (size_t)cap * sizeof *col[c]);
                quant = realloc(quant, (size_t)cap * 5 * sizeof *quant);
                if (!names || !classes || !nv || !quant || !col[0] || !col[1] || !col[2] || !col[3] || !col[4] ||
                    !col[5] || !col[6]) {
                    rdml_selection_free(&roi);
                    rc = RDML_FAIL(ctx, RDML_ENOMEM, "out of memory for the ROI summary");
                    break;
                }
            }
            names[nrow] = strdup(rn);
            classes[nrow] = strdup(cls < RDML_NROICLASS ? rdml_roi_class_name(cls) : "selection");
            nv[nrow] = cnt;
            /* columns: median r, mean r, share r > 0, median R^2, median NC, median NNA, mean NNA */
            double *vals = malloc((size_t)(cnt + 1) * sizeof *vals);
            if (!vals || !names[nrow] || !classes[nrow]) {
                free(vals);
                rdml_selection_free(&roi);
                rc = RDML_FAIL(ctx, RDML_ENOMEM, "out of memory for the ROI summary");
                break;
            }
            const double *src[4] = {mr, mr2, nc, nna};
            for (int q = 0; q < 4; q++) {
                int64_t m = 0;
                double sum = 0;
                int64_t pos_r = 0;
                for (int64_t t = 0; src[q] && t < cnt; t++) {
                    double x = src[q][(int64_t)buf[t]];
                    if (!isnan(x)) {
                        vals[m++] = x;
                        sum += x;
                        pos_r += x > 0;
                    }
                }
                qsort(vals, (size_t)m, sizeof *vals, cmp_double);
                double med = m ? (m % 2 ? vals[m / 2] : 0.5 * (vals[m / 2 - 1] + vals[m / 2])) : NAN;
                if (q == 0) {
                    /* numpy.percentile's linear interpolation at 5, 25, 50, 75, 95 */
                    static const double pc[5] = {5, 25, 50, 75, 95};
                    for (int t = 0; t < 5; t++) {
                        double x = m ? pc[t] / 100.0 * (double)(m - 1) : 0;
                        int64_t lo = (int64_t)floor(x), hi = lo + 1 < m ? lo + 1 : lo;
                        quant[nrow * 5 + t] = m ? vals[lo] + (x - (double)lo) * (vals[hi] - vals[lo]) : NAN;
                    }
                    col[0][nrow] = med;
                    col[1][nrow] = m ? sum / (double)m : NAN;
                    col[2][nrow] = m ? (double)pos_r / (double)cnt : NAN;
                } else if (q == 1) {
                    col[3][nrow] = med;
                } else if (q == 2) {
                    col[4][nrow] = med;
                } else {
                    col[5][nrow] = med;
                    col[6][nrow] = m ? sum / (double)m : NAN;
                }
            }
            free(vals);
            nrow++;
            rdml_selection_free(&roi);
        }
    }
    (void)o;
    char gs[900], path[1000];
    snprintf(gs, sizeof gs, "%s/roi_summary", g);
    if (!rc) rc = rdml_h5_group(ctx, h, gs);
    if (!rc)
        rc = rdml_h5_attr_str(ctx, h, gs, "meaning",
                              "one row per ROI (of every ROI class) with vertices in the selection, "
                              "then the whole selection; statistics over its vertices of the fold "
                              "means (../r_lh, ../r_rh, ...); NaN values are left out; share_positive "
                              "counts r > 0 among all the ROI's vertices");
    snprintf(path, sizeof path, "%s/roi", gs);
    if (!rc) rc = rdml_h5_write_strings(ctx, h, path, (const char *const *)names, nrow);
    snprintf(path, sizeof path, "%s/roi_class", gs);
    if (!rc) rc = rdml_h5_write_strings(ctx, h, path, (const char *const *)classes, nrow);
    snprintf(path, sizeof path, "%s/n_vertices", gs);
    if (!rc) rc = rdml_h5_write_vec_i64(ctx, h, path, nrow, nv);
    static const char *const cn[7] = {"median_r", "mean_r", "share_positive", "median_r2",
                                      "median_noise_ceiling", "median_noise_normalized",
                                      "mean_noise_normalized"};
    for (int c = 0; c < 7 && !rc; c++) {
        snprintf(path, sizeof path, "%s/%s", gs, cn[c]);
        rc = rdml_h5_write_vec_f64(ctx, h, path, nrow, col[c]);
    }
    snprintf(path, sizeof path, "%s/r_quantiles", gs);
    if (!rc) rc = rdml_h5_write_rows_f64(ctx, h, path, nrow, 5, 0, ctx->rank == 0 ? nrow : 0, quant);
    if (!rc) rc = rdml_h5_attr_str(ctx, h, path, "columns", "5,25,50,75,95");
    if (!rc) rc = rdml_h5_attr_str(ctx, h, path, "meaning", "percentiles (numpy.percentile, linear) "
                                   "of the fold-mean r over each ROI's vertices: the report's boxes");
    for (int t = 0; names && t < nrow; t++) free(names[t]);
    for (int t = 0; classes && t < nrow; t++) free(classes[t]);
    free(names);
    free(classes);
    free(nv);
    for (int c = 0; c < 7; c++) free(col[c]);
    free(quant);
    free(pos);
    free(buf);
    return rc;
}

static int write_group(rdml_exp *ex, rdml_h5 *h, const enc_opts *o, const enc_subject *e,
                       const rdml_selection *sel, const char *selname, const char *emb, int64_t d,
                       const enc_result *R, double secs) {
    rdml_ctx *ctx = ex->ctx;
    const int64_t nlh = rdml_subject_nvert(e->s, 0), nrh = rdml_subject_nvert(e->s, 1);
    const int64_t nf = R->nf, V = R->V;
    char g[700], fg[800], path[900];
    snprintf(g, sizeof g, "/encode/%s/subj%02d/%s", emb, e->id, selname);
    double *lh = malloc((size_t)(nlh + 1) * sizeof *lh), *rh = malloc((size_t)(nrh + 1) * sizeof *rh);
    double *mr = calloc((size_t)(V + 1), sizeof *mr), *mr2 = calloc((size_t)(V + 1), sizeof *mr2);
    double *ma = calloc((size_t)(V + 1), sizeof *ma), *nc = NULL, *nna = NULL, *fnna = NULL;
    int rc = lh && rh && mr && mr2 && ma ? RDML_OK : RDML_FAIL(ctx, RDML_ENOMEM, "out of memory");
    if (!rc && e->nc[0]) {
        nc = malloc((size_t)(V + 1) * sizeof *nc);
        nna = malloc((size_t)(V + 1) * sizeof *nna);
        fnna = malloc((size_t)(V + 1) * sizeof *fnna);
        if (!nc || !nna || !fnna) rc = RDML_FAIL(ctx, RDML_ENOMEM, "out of memory");
        for (int64_t k = 0; k < V && !rc; k++)
            nc[k] = k < sel->n_lh ? e->nc[0][sel->cols[k]] : e->nc[1][sel->cols[k] - nlh];
    }
    /* fold means: r and R^2 averaged over the folds (NaN folds left out), log-mean alpha */
    for (int64_t k = 0; k < V && !rc; k++) {
        double sr = 0, sr2 = 0, sa = 0;
        int64_t cr = 0, cr2 = 0;
        for (int64_t f = 0; f < nf; f++) {
            double r = R->r[f * V + k], r2 = R->r2[f * V + k];
            if (!isnan(r)) sr += r, cr++;
            if (!isnan(r2)) sr2 += r2, cr2++;
            sa += log10(R->alpha[f * V + k]);
        }
        mr[k] = cr ? sr / (double)cr : NAN;
        mr2[k] = cr2 ? sr2 / (double)cr2 : NAN;
        ma[k] = pow(10.0, sa / (double)nf);
        if (nna) nna[k] = nna_of(o, mr[k], nc[k]);
    }
    if (!rc) rc = rdml_h5_delete(ctx, h, g);
    if (!rc) rc = rdml_h5_group(ctx, h, g);
    int64_t iv[9] = {e->id, e->n, d, V, sel->n_lh, V - sel->n_lh, nf, o->inner_folds, o->block};
    const char *in[9] = {"subject", "n_images", "n_features", "n_vertices", "n_vertices_lh",
                         "n_vertices_rh", "n_folds", "inner_folds", "block"};
    for (int i = 0; i < 9 && !rc; i++) rc = rdml_h5_attr_i64(ctx, h, g, in[i], &iv[i], 1);
    int64_t flags[2] = {o->standardize, o->std_features};
    if (!rc) rc = rdml_h5_attr_i64(ctx, h, g, "standardized", &flags[0], 1);
    if (!rc) rc = rdml_h5_attr_i64(ctx, h, g, "standardized_features", &flags[1], 1);
    if (!rc) rc = rdml_h5_attr_str(ctx, h, g, "embedding", emb);
    if (!rc) rc = rdml_h5_attr_str(ctx, h, g, "selection", sel->spec);
    if (!rc) rc = rdml_h5_attr_str(ctx, h, g, "mode", o->mode == ENC_KFOLD ? "kfold" : "loo");
    if (!rc) rc = rdml_h5_attr_str(ctx, h, g, "solver", o->mode == ENC_KFOLD
                                   ? "rdml_ridge: inner image k-fold, neg. MSE (himalaya RidgeCV)"
                                   : "rdml_ridge: efficient leave-one-out (sklearn RidgeCV, "
                                     "alpha_per_target=True)");
    if (!rc) rc = rdml_h5_attr_str(ctx, h, g, "scheme", rdml_split_scheme_name(o->sp.scheme));
    if (!rc && *o->scheme_note) rc = rdml_h5_attr_str(ctx, h, g, "scheme_note", o->scheme_note);
    if (!rc) rc = rdml_h5_attr_str(ctx, h, g, "metric", rdml_rdm_metric_name(o->metric));
    if (!rc) rc = rdml_h5_attr_str(ctx, h, g, "noise_ceiling_source", nc ? e->nc_source : "none");
    if (!rc) rc = rdml_h5_attr_f64(ctx, h, g, "min_noise_ceiling", &o->min_nc, 1);
    if (!rc) rc = rdml_h5_attr_f64(ctx, h, g, "seconds", &secs, 1);
    if (!rc)
        rc = rdml_h5_attr_str(ctx, h, g, "meaning",
                              "ridge encoding models from the embedding to each vertex of the "
                              "selection over the pair models' image folds (docs/encode.md); "
                              "*_lh / *_rh vectors are full hemisphere length in challenge space, "
                              "NaN outside the selection");
    snprintf(path, sizeof path, "%s/alphas", g);
    if (!rc) rc = rdml_h5_write_vec_f64(ctx, h, path, o->nalpha, o->alphas);
    if (!rc) rc = rdml_h5_attr_str(ctx, h, path, "meaning", "the penalty grid searched per vertex");
    if (!rc) rc = write_pair(ctx, h, g, "r", sel, nlh, nrh, mr, lh, rh,
                             "test Pearson r, mean over the folds");
    if (!rc) rc = write_pair(ctx, h, g, "r2", sel, nlh, nrh, mr2, lh, rh,
                             "test R^2 (sklearn r2_score), mean over the folds");
    if (!rc) rc = write_pair(ctx, h, g, "alpha", sel, nlh, nrh, ma, lh, rh,
                             "chosen penalty, geometric mean over the folds");
    if (!rc && nc) rc = write_pair(ctx, h, g, "noise_ceiling", sel, nlh, nrh, nc, lh, rh,
                                   "the dataset's noise ceiling, percent of the variance explainable");
    if (!rc && nc) rc = write_pair(ctx, h, g, "noise_normalized", sel, nlh, nrh, nna, lh, rh,
                                   "100 max(r, 0)^2 / (noise_ceiling / 100), percent, of the fold-mean "
                                   "r; NaN where the ceiling is below min_noise_ceiling");
    for (int64_t f = 0; f < nf && !rc; f++) {
        snprintf(fg, sizeof fg, "%s/fold_%lld", g, (long long)f);
        rc = rdml_h5_group(ctx, h, fg);
        int64_t cnt[2] = {e->n - R->ntest[f], R->ntest[f]};
        if (!rc) rc = rdml_h5_attr_i64(ctx, h, fg, "n_train", &cnt[0], 1);
        if (!rc) rc = rdml_h5_attr_i64(ctx, h, fg, "n_test", &cnt[1], 1);
        if (!rc) rc = write_pair(ctx, h, fg, "alpha", sel, nlh, nrh, R->alpha + f * V, lh, rh, NULL);
        if (!rc) rc = write_pair(ctx, h, fg, "r", sel, nlh, nrh, R->r + f * V, lh, rh, NULL);
        if (!rc) rc = write_pair(ctx, h, fg, "r2", sel, nlh, nrh, R->r2 + f * V, lh, rh, NULL);
        if (!rc && nc) {
            for (int64_t k = 0; k < V; k++) fnna[k] = nna_of(o, R->r[f * V + k], nc[k]);
            rc = write_pair(ctx, h, fg, "noise_normalized", sel, nlh, nrh, fnna, lh, rh, NULL);
        }
        snprintf(path, sizeof path, "%s/test_images", fg);
        if (!rc) rc = rdml_h5_write_vec_i64(ctx, h, path, R->ntest[f], R->test[f]);
        if (!rc) rc = rdml_h5_attr_str(ctx, h, path, "meaning", "the fold's test images: rows of "
                                       "/subjects/subjNN/images (ascending)");
        snprintf(path, sizeof path, "%s/pred_rdm", fg);
        const int64_t m = R->ntest[f];
        if (!rc) rc = rdml_h5_write_rows_f32(ctx, h, path, m, m, 0, ctx->rank == 0 ? m : 0, R->rdm[f]);
        if (!rc) rc = rdml_h5_attr_str(ctx, h, path, "metric", rdml_rdm_metric_name(o->metric));
        if (!rc) rc = rdml_h5_attr_str(ctx, h, path, "meaning", "RDM of the predicted responses "
                                       "(all the selection's vertices) of the test images, rows "
                                       "and columns in the order of test_images");
    }
    if (!rc) rc = write_roi_summary(ctx, h, g, o, e, sel, selname, mr, mr2, nc, nna);
    if (!rc) {
        double med[2] = {NAN, NAN};
        double *tmp = malloc((size_t)(V + 1) * sizeof *tmp);
        int64_t m = 0, pos = 0;
        for (int64_t k = 0; tmp && k < V; k++)
            if (!isnan(mr[k])) tmp[m++] = mr[k], pos += mr[k] > 0;
        if (tmp && m) {
            qsort(tmp, (size_t)m, sizeof *tmp, cmp_double);
            med[0] = m % 2 ? tmp[m / 2] : 0.5 * (tmp[m / 2 - 1] + tmp[m / 2]);
        }
        med[1] = V ? (double)pos / (double)V : NAN;
        free(tmp);
        rdml_info(ctx, "subj%02d %-14s %-10s %lld images x %lld features -> %lld vertices, %lld "
                  "folds: median r %.3f, %.0f%% of vertices r > 0 (%.1f s)", e->id, selname, emb,
                  (long long)e->n, (long long)d, (long long)V, (long long)nf, med[0], 100 * med[1],
                  secs);
    }
    free(lh);
    free(rh);
    free(mr);
    free(mr2);
    free(ma);
    free(nc);
    free(nna);
    free(fnna);
    return rc;
}

/* Collective. The embedding emb of subject e: its first n rows, every value finite. */
static int read_embedding(rdml_exp *ex, rdml_h5 *h, const enc_subject *e, const char *emb,
                          float **X, int64_t *d) {
    rdml_ctx *ctx = ex->ctx;
    char path[600];
    snprintf(path, sizeof path, "/subjects/subj%02d/embeddings/%s", e->id, emb);
    int nd = 0;
    int64_t dims[8] = {0};
    *X = NULL;
    RDML_TRY(rdml_h5_dims(ctx, h, path, &nd, dims));
    if (nd != 2 || dims[0] < e->n)
        return RDML_FAIL(ctx, RDML_EDATA, "embeddings %s have %lld rows but the encoding models use "
                         "%lld images of subj%02d (hint: run `rdmlearn embed` with the same "
                         "data.images)", path, (long long)dims[0], (long long)e->n, e->id);
    *d = dims[1];
    *X = rdml_malloc(ctx, (size_t)(e->n * *d + 1) * sizeof **X, "embeddings");
    RDML_TRY(rdml_agree(ctx, ex->comm, *X ? RDML_OK : ctx->code));
    int rc = rdml_h5_read_rows_f32(ctx, h, path, 0, e->n, *X);
    for (int64_t t = 0; t < e->n * *d && !rc; t++)
        if (!isfinite((*X)[t]))
            rc = RDML_FAIL(ctx, RDML_EDATA, "embeddings %s: row %lld (image %lld, NSD id %lld), "
                           "column %lld is %s; a ridge regression needs finite features (hint: fix "
                           "the features file and rerun `rdmlearn embed`)", path,
                           (long long)(t / *d), (long long)(t / *d),
                           (long long)rdml_subject_nsd_id(e->s, t / *d), (long long)(t % *d),
                           isnan((*X)[t]) ? "NaN" : "infinite");
    if (rc) {
        free(*X);
        *X = NULL;
    }
    return rc;
}

int rdml_exp_encode_stage(rdml_exp *ex) {
    rdml_ctx *ctx = ex->ctx;
    enc_opts o;
    const char *root;
    int rc = read_opts(ex, &o);
    if (!rc) rc = rdml_config_str(ctx, ex->cfg, "data", "root", &root);
    if (rc) {
        opts_free(&o);
        return rc;
    }
    rdml_dataset *ds = NULL;
    rdml_subject **subj = NULL;
    int *ids = NULL, nids = 0, nsel = 0;
    char **sels = NULL;
    rdml_h5 *h = NULL;
    rc = rdml_dataset_open(ctx, root, &ds);
    if (!rc) rc = rdml_exp_subjects(ctx, ex->cfg, ds, &ids, &nids);
    if (!rc) rc = rdml_exp_selections(ctx, ex->cfg, &sels, &nsel);
    if (!rc) {
        subj = rdml_calloc(ctx, (size_t)nids + 1, sizeof *subj, "subjects");
        if (!subj) rc = ctx->code;
    }
    for (int i = 0; i < nids && !rc; i++) rc = rdml_subject_open(ctx, ds, ids[i], &subj[i]);
    rc = rdml_agree(ctx, ex->comm, rc);
    if (!rc && *o.scheme_note) rdml_warn(ctx, "encode: %s", o.scheme_note);
    if (!rc) {
        rdml_info(ctx, "encode: %d subject(s) x %d selection(s), %s alpha selection over %d "
                  "alphas (%g .. %g), %d rank(s)", nids, nsel,
                  o.mode == ENC_KFOLD ? "inner k-fold" : "leave-one-out", o.nalpha, o.alphas[0],
                  o.alphas[o.nalpha - 1], ctx->nranks);
        rc = rdml_exp_results_open(ex, "encode", &h);
    }
    for (int i = 0; i < nids && !rc; i++) {
        enc_subject es;
        rc = subject_prepare(ex, h, &o, subj[i], &es);
        for (int k = 0; k < nsel && !rc; k++) {
            char name[256];
            sel_name(sels[k], name, sizeof name);
            rdml_selection sel = {0};
            enc_blocks B;
            memset(&B, 0, sizeof B);
            rc = rdml_agree(ctx, ex->comm, rdml_subject_select(ctx, subj[i], sels[k], &sel));
            double tr0 = rdml_now();
            if (!rc) rc = blocks_read(ex, &o, &es, &sel, &B);
            if (!rc) rdml_debug(ctx, "encode subj%02d %s: read my %d block(s) in %.2f s", ids[i], name,
                                B.nblk, rdml_now() - tr0);
            for (int64_t t = 0; t < es.nemb && !rc; t++) {
                float *X = NULL;
                int64_t d = 0;
                enc_result R;
                memset(&R, 0, sizeof R);
                double t0 = rdml_now();
                rc = read_embedding(ex, h, &es, es.emb[t], &X, &d);
                if (!rc) rc = fit_embedding(ex, &o, &es, &B, X, d, &R);
                double secs = rdml_now() - t0;
                MPI_Allreduce(MPI_IN_PLACE, &secs, 1, MPI_DOUBLE, MPI_MAX, ex->comm);
                if (!rc) rc = write_group(ex, h, &o, &es, &sel, name, es.emb[t], d, &R, secs);
                if (rc && ctx->code != RDML_ECANCELLED)
                    rdml_ctx_prefix(ctx, "subj%02d %s, embedding %s", ids[i], name, es.emb[t]);
                free(X);
                result_free(&R);
            }
            blocks_free(&B);
            rdml_selection_free(&sel);
        }
        subject_free(&es);
    }
    if (!rc) {
        rc = rdml_exp_results_commit(ctx, &h, "encode");
    } else {
        rdml_h5_abort(&h);
        rdml_exp_stopped(ex, "encode");
    }
    for (int i = 0; subj && i < nids; i++) rdml_subject_close(&subj[i]);
    free(subj);
    rdml_exp_free_list(sels, nsel);
    free(ids);
    rdml_dataset_close(&ds);
    opts_free(&o);
    return rc;
}
