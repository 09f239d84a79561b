/* `rdmlearn embed`: the embedding of each subject's first data.images images with the
 * configured backend, written to run.output as /subjects/subjNN/embeddings/<name> (N x D
 * float32, rows in the subject's image order) with attributes backend, model, dims,
 * preprocessing, normalized. Each rank takes a contiguous block of every subject's images
 * (rdml_embed_block: whole batches for clip-vit), decodes and embeds them, and all ranks write their rows with one
 * collective HDF5 write per subject; failures (an unreadable image, a features file that
 * does not match) are agreed across ranks and leave run.output untouched. The subject's
 * image list (/subjects/subjNN/images) is written too, as `rdmlearn rdm` does. A stop request
 * (SIGTERM) ends the stage at the next batch boundary; the subjects finished by then are
 * committed with their stamp (configuration and inputs) and the stage is marked incomplete,
 * so the next run embeds only the other subjects. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exp_priv.h"
#include "rdml/dataset.h"
#include "rdml/embed.h"
#include "rdml/h5.h"
#include "rdml/mpiutil.h"
#include "rdml/zoo.h"

/* The configuration's lists (embed.layers, embed.pooling) that p points into. */
typedef struct lists {
    char **layers, **pooling;
    int nl, np;
} lists;

static void lists_free(lists *l) {
    free(l->layers);
    free(l->pooling);
    memset(l, 0, sizeof *l);
}

/* Drop empty items (an empty list reads as one empty item). */
static int nonempty(char **items, int n) {
    int k = 0;
    for (int i = 0; i < n; i++)
        if (items[i] && *items[i]) items[k++] = items[i];
    return k;
}

/* A comma-separated list, items trimmed, into one allocation (free(*items) frees all). */
static int split_list(rdml_ctx *ctx, const char *s, char ***items, int *n) {
    size_t len = strlen(s), cnt = 1;
    for (const char *c = s; *c; c++) cnt += *c == ',';
    char **it = rdml_malloc(ctx, cnt * sizeof *it + len + 1, "list");
    if (!it) return ctx->code;
    char *text = (char *)(it + cnt);
    memcpy(text, s, len + 1);
    int k = 0;
    for (char *tok = text; tok;) {
        char *comma = strchr(tok, ',');
        if (comma) *comma = '\0';
        while (*tok == ' ' || *tok == '\t') tok++;
        char *end = tok + strlen(tok);
        while (end > tok && (end[-1] == ' ' || end[-1] == '\t')) *--end = '\0';
        it[k++] = tok;
        tok = comma ? comma + 1 : NULL;
    }
    *items = it;
    *n = k;
    return RDML_OK;
}

static int read_params(rdml_exp *ex, rdml_embed_params *p, const char **name, lists *l) {
    rdml_ctx *ctx = ex->ctx;
    const rdml_config *cfg = ex->cfg;
    const char *s;
    int b;
    rdml_embed_defaults(p);
    RDML_TRY(rdml_config_str(ctx, cfg, "embed", "backend", &s));
    RDML_TRY(rdml_embed_backend_parse(ctx, s, &p->backend));
    RDML_TRY(rdml_config_str(ctx, cfg, "embed", "name", name));
    if (!**name) *name = rdml_embed_backend_name(p->backend);
    for (const char *c = *name; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '-' || *c == '_' || *c == '.'))
            return RDML_FAIL(ctx, RDML_ECONFIG, "[embed] name = %s: only letters, digits, '-', "
                             "'_' and '.' are allowed (it names an HDF5 dataset)", *name);
    RDML_TRY(rdml_config_int(ctx, cfg, "embed", "batch", &p->batch));
    RDML_TRY(rdml_config_bool(ctx, cfg, "embed", "normalize", &b));
    p->normalize = b;
    RDML_TRY(rdml_config_int(ctx, cfg, "embed", "size", &p->size));
    RDML_TRY(rdml_config_str(ctx, cfg, "embed", "file", &p->file));
    RDML_TRY(rdml_config_str(ctx, cfg, "embed", "dataset", &p->dataset));
    RDML_TRY(rdml_config_str(ctx, cfg, "embed", "ids", &p->ids));
    RDML_TRY(rdml_config_str(ctx, cfg, "embed", "weights", &p->weights));
    RDML_TRY(rdml_config_int(ctx, cfg, "embed", "layer", &p->layer));
    RDML_TRY(rdml_config_str(ctx, cfg, "embed", "pooling", &s));
    p->pool_mean = strcmp(s, "mean") == 0;
    const char *layers_s = "";
    RDML_TRY(rdml_config_str(ctx, cfg, "embed", "layers", &layers_s));
    if (p->backend == RDML_EMBED_CLIP && !*layers_s && strcmp(s, "mean") != 0 &&
        strcmp(s, "cls") != 0 && strcmp(s, "auto") != 0)
        return RDML_FAIL(ctx, RDML_ECONFIG, "[embed] pooling = %s: the clip-vit backend takes one "
                         "of cls (also what auto means) or mean", s);
    RDML_TRY(rdml_config_str(ctx, cfg, "embed", "model", &p->model));
    RDML_TRY(rdml_config_int(ctx, cfg, "embed", "dims", &p->dims));
    int64_t seed = 0;
    RDML_TRY(rdml_config_int(ctx, cfg, "embed", "projection_seed", &seed));
    p->seed = (uint64_t)seed;
    RDML_TRY(rdml_config_str(ctx, cfg, "embed", "layers", &s));
    RDML_TRY(split_list(ctx, s, &l->layers, &l->nl));
    RDML_TRY(rdml_config_str(ctx, cfg, "embed", "pooling", &s));
    RDML_TRY(split_list(ctx, s, &l->pooling, &l->np));
    l->nl = nonempty(l->layers, l->nl);
    l->np = nonempty(l->pooling, l->np);
    p->layers = (const char *const *)l->layers;
    p->nlayers = l->nl;
    for (int i = 0; i < l->np; i++) {
        rdml_pool pool;
        RDML_TRY(rdml_pool_parse(ctx, l->pooling[i], &pool));
    }
    p->pooling = (const char *const *)l->pooling;
    p->npooling = l->np;
    RDML_TRY(rdml_config_int(ctx, cfg, "embed", "heads", &p->heads));
    RDML_TRY(rdml_config_str(ctx, cfg, "embed", "hidden_act", &s));
    p->act = strcmp(s, "gelu") == 0 ? RDML_ACT_GELU
             : strcmp(s, "quick_gelu") == 0 ? RDML_ACT_QUICK_GELU : RDML_ACT_AUTO;
    return RDML_OK;
}

/* The dataset name of output k: NAME for a single output, NAME.LAYER for each of several. */
static void output_path(const rdml_embedder *e, int64_t k, int id, const char *name, char *path,
                        size_t len) {
    if (rdml_embed_noutputs(e) == 1)
        snprintf(path, len, "/subjects/subj%02d/embeddings/%s", id, name);
    else
        snprintf(path, len, "/subjects/subj%02d/embeddings/%s.%s", id, name,
                 rdml_embed_get_output(e, k)->layer);
}

/* One subject: my block of images, embedded (every output in one pass) and written
 * collectively. */
static int one_subject(rdml_exp *ex, rdml_h5 *h, rdml_embedder *e, const rdml_subject *s,
                       int64_t n, const char *name, const char *backend, const char *stamp,
                       rdml_progress *prog, int64_t base) {
    rdml_ctx *ctx = ex->ctx;
    int64_t lo, hi, id = rdml_subject_id(s);
    const int64_t nout = rdml_embed_noutputs(e);
    rdml_embed_block(e, n, ctx->rank, ctx->nranks, &lo, &hi);
    rdml_embed_item *items = rdml_calloc(ctx, (size_t)(hi - lo) + 1, sizeof *items, "image list");
    float **rows = rdml_calloc(ctx, (size_t)nout, sizeof *rows, "embedding rows");
    int rc = items && rows ? RDML_OK : ctx->code;
    for (int64_t k = 0; k < nout && !rc; k++) {
        rows[k] = rdml_malloc(ctx, (size_t)((hi - lo) * rdml_embed_get_output(e, k)->dims + 1) *
                              sizeof **rows, "embedding rows");
        if (!rows[k]) rc = ctx->code;
    }
    for (int64_t i = lo; i < hi && !rc; i++)
        items[i - lo] = (rdml_embed_item){rdml_subject_image_path(s, i), i, rdml_subject_nsd_id(s, i)};
    rc = rdml_agree(ctx, ex->comm, rc);
    double t0 = rdml_now();
    if (!rc) rc = rdml_embed_compute_all(ctx, ex->comm, e, hi - lo, items, rows, prog, base);
    if (rc) rdml_ctx_prefix(ctx, "subj%02d", (int)id);
    double secs = rdml_now() - t0;
    MPI_Allreduce(MPI_IN_PLACE, &secs, 1, MPI_DOUBLE, MPI_MAX, ex->comm);
    if (!rc) rc = rdml_exp_write_images(ctx, h, s, n);
    for (int64_t k = 0; k < nout && !rc; k++) {
        const rdml_embed_output *o = rdml_embed_get_output(e, k);
        const int64_t D = o->dims;
        char path[512];
        output_path(e, k, (int)id, name, path, sizeof path);
        rc = rdml_h5_delete(ctx, h, path);
        if (!rc) rc = rdml_h5_write_rows_f32(ctx, h, path, n, D, lo, hi - lo, rows[k]);
        if (!rc) rc = rdml_h5_attr_str(ctx, h, path, "backend", backend);
        int64_t iv[3] = {id, n, D};
        const char *in[3] = {"subject", "n_images", "dims"};
        for (int i = 0; i < 3 && !rc; i++) rc = rdml_h5_attr_i64(ctx, h, path, in[i], &iv[i], 1);
        int64_t nrm = rdml_embed_normalized(e);
        if (!rc) rc = rdml_h5_attr_i64(ctx, h, path, "normalized", &nrm, 1);
        if (!rc) rc = rdml_h5_attr_str(ctx, h, path, "model", rdml_embed_model(e));
        if (!rc) rc = rdml_h5_attr_str(ctx, h, path, "preprocessing", rdml_embed_preprocessing(e));
        if (!rc && *o->layer) {
            int64_t depth = o->depth;
            rc = rdml_h5_attr_str(ctx, h, path, "layer", o->layer);
            if (!rc) rc = rdml_h5_attr_str(ctx, h, path, "pooling", o->pooling);
            if (!rc) rc = rdml_h5_attr_i64(ctx, h, path, "depth", &depth, 1);
            if (!rc) rc = rdml_h5_attr_str(ctx, h, path, "architecture", o->arch);
            /* the x axis of the report's layer curves (docs/embed.md) */
            int64_t nm = o->nmodules;
            double rel = nm > 1 ? (double)o->depth / (double)(nm - 1) : NAN;
            if (!rc && nm > 0) rc = rdml_h5_attr_i64(ctx, h, path, "n_modules", &nm, 1);
            if (!rc && nm > 1) rc = rdml_h5_attr_f64(ctx, h, path, "relative_depth", &rel, 1);
        }
        if (!rc) rc = rdml_h5_attr_f64(ctx, h, path, "seconds", &secs, 1);
        if (!rc) rc = rdml_h5_attr_str(ctx, h, path, "stamp", stamp);
        if (!rc)
            rc = rdml_h5_attr_str(ctx, h, path, "meaning",
                                  "N x D image embedding; row i is image i of ../../images");
        if (!rc)
            rdml_info(ctx, "subj%02d: %lld images -> %lld-d %s embeddings in %.2f s (%.1f images/s)",
                      (int)id, (long long)n, (long long)D, path + strlen("/subjects/subjNN/embeddings/"),
                      secs, secs > 0 ? (double)n / secs : 0.0);
    }
    free(items);
    for (int64_t k = 0; rows && k < nout; k++) free(rows[k]);
    free(rows);
    return rc;
}

/* Collective. Does h hold subject id's n x D embeddings (every output) made with this stamp
 * (the same configuration and inputs)? Then a run that was stopped (or an earlier complete
 * run) already made exactly what this one would. */
static int finished_before(rdml_exp *ex, rdml_h5 *h, const rdml_embedder *e, int id,
                           const char *name, int64_t n, const char *stamp, int *have) {
    rdml_ctx *ctx = ex->ctx;
    *have = 1;
    for (int64_t k = 0; k < rdml_embed_noutputs(e) && *have; k++) {
        char path[512], *v = NULL;
        output_path(e, k, id, name, path, sizeof path);
        int found = 0, nd = 0, ok = 0;
        int64_t dims[8] = {0};
        RDML_TRY(rdml_h5_exists(ctx, h, path, &found));
        if (found && rdml_h5_get_attr_str(ctx, h, path, "stamp", &v) == RDML_OK && v &&
            strcmp(v, stamp) == 0 && rdml_h5_dims(ctx, h, path, &nd, dims) == RDML_OK)
            ok = nd == 2 && dims[0] == n && dims[1] == rdml_embed_get_output(e, k)->dims;
        rdml_ctx_clear(ctx); /* no stamp (an older file): not finished */
        free(v);
        *have = ok;
    }
    return RDML_OK;
}

/* Collective, after a stop (RDML_ECANCELLED) with `made` subjects embedded in this run: keep
 * them. The stage is marked incomplete in /meta/done (so `run` redoes it) and committed; the
 * next run finds the finished subjects by their stamp and embeds only the others. With
 * nothing new the file is left as it was. */
static int keep_finished(rdml_exp *ex, rdml_h5 **h, int made, int nids) {
    rdml_ctx *ctx = ex->ctx;
    if (!made) {
        rdml_h5_abort(h);
        return rdml_exp_stopped(ex, "embed");
    }
    char msg[sizeof ctx->msg], key[512], out[4096];
    rdml_strlcpy(msg, ctx->msg, sizeof msg);
    rdml_strlcpy(out, rdml_h5_path(*h), sizeof out);
    rdml_ctx_clear(ctx);
    rdml_exp_stage_key(ex->cfg, "embed", key, sizeof key);
    int rc = rdml_h5_attr_str(ctx, *h, "/meta/done", key, "incomplete: stopped by a signal");
    if (rc) rdml_h5_abort(h);
    else rc = rdml_h5_commit(ctx, h);
    if (rc) return rdml_ctx_prefix(ctx, "%.2000s; keeping the finished subjects failed", msg);
    return RDML_FAIL(ctx, RDML_ECANCELLED, "%.3000s; the embeddings of the %d of %d subject(s) "
                     "finished are kept in %s, the stage is not marked done (hint: run the same "
                     "command again: it embeds only the other subjects)", msg, made, nids, out);
}

int rdml_exp_embed_stage(rdml_exp *ex) {
    rdml_ctx *ctx = ex->ctx;
    rdml_embed_params p;
    const char *name, *root;
    int64_t nimages;
    lists l = {0};
    int prc = read_params(ex, &p, &name, &l);
    if (prc) {
        lists_free(&l);
        return prc;
    }
    RDML_TRY(rdml_config_int(ctx, ex->cfg, "data", "images", &nimages));
    RDML_TRY(rdml_config_str(ctx, ex->cfg, "data", "root", &root));

    rdml_dataset *ds = NULL;
    rdml_subject **subj = NULL;
    rdml_embedder *e = NULL;
    rdml_h5 *h = NULL;
    int *ids = NULL, nids = 0;
    int rc = rdml_dataset_open(ctx, root, &ds);
    if (!rc) rc = rdml_exp_subjects(ctx, ex->cfg, ds, &ids, &nids);
    if (!rc) {
        subj = rdml_calloc(ctx, (size_t)nids + 1, sizeof *subj, "subjects");
        if (!subj) rc = ctx->code;
    }
    for (int i = 0; i < nids && !rc; i++) rc = rdml_subject_open(ctx, ds, ids[i], &subj[i]);
    rc = rdml_agree(ctx, ex->comm, rc);
    if (!rc) rc = rdml_embed_create(ctx, ex->comm, &p, &e);
    int64_t total = 0, *ns = rc ? NULL : rdml_calloc(ctx, (size_t)nids + 1, sizeof *ns, "sizes");
    if (!rc && !ns) rc = ctx->code;
    for (int i = 0; i < nids && !rc; i++) {
        int64_t all = rdml_subject_nimages(subj[i]);
        ns[i] = nimages > 0 && nimages < all ? nimages : all;
        total += ns[i];
        int64_t fr = rdml_embed_order_rows(e);
        if (fr >= 0 && fr != all)
            rc = RDML_FAIL(ctx, RDML_EDATA, "[embed] file = %s has %lld rows but subj%02d has %lld "
                           "images: rows are matched by image order, so the counts must agree "
                           "(hint: set embed.ids to a .npy of the NSD id of each row, or select "
                           "the matching subject with data.subjects)", p.file, (long long)fr,
                           ids[i], (long long)all);
    }
    rc = rdml_agree(ctx, ex->comm, rc);
    if (!rc) {
        rdml_info(ctx, "embed: %s backend, %lld-d, %d subject(s), %lld images, %d rank(s)",
                  rdml_embed_backend_name(p.backend), (long long)rdml_embed_dims(e), nids,
                  (long long)total, ctx->nranks);
        rc = rdml_exp_results_open(ex, "embed", &h);
    }
    char stamp[17] = "";
    if (!rc) rc = rdml_exp_stage_stamp(ex, "embed", stamp);
    rdml_progress prog;
    rdml_progress_begin(&prog, ctx, "embed", total);
    int64_t base = 0;
    int made = 0;
    for (int i = 0; i < nids && !rc; i++) {
        rc = rdml_stop_agree(ctx, ex->comm, rc, "before subj%02d (%d of %d subjects done)", ids[i], i, nids);
        int have = 0;
        if (!rc && !ex->opts.force)
            rc = finished_before(ex, h, e, ids[i], name, ns[i], stamp, &have);
        if (!rc && have) {
            rdml_info(ctx, "subj%02d: %s embeddings already in the file for this configuration "
                      "and these inputs; kept (--force redoes them)", ids[i], name);
        } else if (!rc) {
            rc = one_subject(ex, h, e, subj[i], ns[i], name, rdml_embed_backend_name(p.backend),
                             stamp, &prog, base);
            made += !rc;
        }
        base += ns[i];
        if (!rc && ctx->rank == 0) rdml_progress_update(&prog, base);
    }
    if (!rc) rdml_progress_end(&prog);
    if (!rc) {
        rc = rdml_exp_results_commit(ctx, &h, "embed");
    } else if (ctx->code == RDML_ECANCELLED && h) {
        rc = keep_finished(ex, &h, made, nids);
    } else {
        rdml_h5_abort(&h);
    }
    free(ns);
    rdml_embed_destroy(&e);
    lists_free(&l);
    for (int i = 0; subj && i < nids; i++) rdml_subject_close(&subj[i]);
    free(subj);
    free(ids);
    rdml_dataset_close(&ds);
    return rc;
}
