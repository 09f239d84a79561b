/* `rdmlearn rdm`: RDMs for subjects x vertex selections, their summaries and binary labels,
 * and inter-subject consistency with a noise ceiling on the shared images.
 *
 * For each selection and subject the RDM is computed collectively (rdml_rdm_compute: a 2-D
 * process grid, each rank reading only its blocks) and written as an N x N float32 dataset
 * /subjects/subjNN/rdm/<selection> with its attributes; its summary (histogram, median, the
 * most similar and dissimilar pairs) goes to /subjects/subjNN/rdm_summary/<selection>. The
 * rows of the images every subject shares (matched by NSD id) are gathered on rank 0, which
 * compares the subjects and computes the leave-one-subject-out noise ceiling for
 * /rsa/<selection>. Only one subject's RDM is in memory at a time. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exp_priv.h"
#include "rdml/dataset.h"
#include "rdml/h5.h"
#include "rdml/mpiutil.h"
#include "rdml/rdm.h"
#include "rdml/rsa.h"

typedef struct rdm_opts {
    rdml_rdm_params p;
    int threshold_auto;
    double threshold;
    int64_t nbins, extremes, nimages;
    rdml_rsa_method methods[3];
    int nmethods;
    rdml_rsa_pool pool; /* rdm.noise_ceiling */
} rdm_opts;

static int read_opts(rdml_exp *ex, rdm_opts *o) {
    rdml_ctx *ctx = ex->ctx;
    const rdml_config *cfg = ex->cfg;
    const char *s;
    int b;
    double gb;
    rdml_rdm_defaults(&o->p);
    RDML_TRY(rdml_config_str(ctx, cfg, "rdm", "metric", &s));
    RDML_TRY(rdml_rdm_metric_parse(ctx, s, &o->p.metric));
    RDML_TRY(rdml_config_bool(ctx, cfg, "data", "standardize", &b));
    o->p.standardize = b;
    RDML_TRY(rdml_config_str(ctx, cfg, "rdm", "arithmetic", &s));
    o->p.arithmetic = strcmp(s, "int16") == 0 ? RDML_RDM_INT16 : RDML_RDM_FLOAT32;
    RDML_TRY(rdml_config_str(ctx, cfg, "rdm", "zero_variance", &s));
    o->p.zero_variance_error = strcmp(s, "error") == 0;
    RDML_TRY(rdml_config_int(ctx, cfg, "rdm", "block", &o->p.block));
    RDML_TRY(rdml_config_str(ctx, cfg, "rdm", "grid", &s));
    if (strcmp(s, "auto") != 0) {
        if (sscanf(s, "%dx%d", &o->p.grid_rows, &o->p.grid_cols) != 2 ||
            o->p.grid_rows * o->p.grid_cols != ctx->nranks)
            return RDML_FAIL(ctx, RDML_ECONFIG,
                             "[rdm] grid = %s needs %d ranks but the job has %d (hint: set "
                             "grid = auto, or a grid whose product is %d)",
                             s, o->p.grid_rows * o->p.grid_cols, ctx->nranks, ctx->nranks);
    }
    RDML_TRY(rdml_config_real(ctx, cfg, "rdm", "max_memory_gb", &gb));
    o->p.max_bytes_per_rank = (int64_t)(gb * 1e9);
    RDML_TRY(rdml_config_str(ctx, cfg, "rdm", "threshold", &s));
    o->threshold_auto = strcmp(s, "auto") == 0;
    o->threshold = o->threshold_auto ? 0 : strtod(s, NULL);
    RDML_TRY(rdml_config_int(ctx, cfg, "rdm", "hist_bins", &o->nbins));
    RDML_TRY(rdml_config_int(ctx, cfg, "rdm", "extremes", &o->extremes));
    RDML_TRY(rdml_config_int(ctx, cfg, "data", "images", &o->nimages));
    char **items;
    int n;
    RDML_TRY(rdml_config_list(ctx, cfg, "rdm", "compare", &items, &n));
    o->nmethods = 0;
    int rc = RDML_OK;
    for (int i = 0; i < n && i < 3 && !rc; i++) rc = rdml_rsa_method_parse(ctx, items[i], &o->methods[o->nmethods++]);
    free(items);
    RDML_TRY(rc);
    RDML_TRY(rdml_config_str(ctx, cfg, "rdm", "noise_ceiling", &s));
    return rdml_rsa_pool_parse(ctx, s, &o->pool);
}

/* Group name of a selection: the user's spelling with + for unions. */
static void sel_name(const char *spec, char *out, size_t len) {
    rdml_strlcpy(out, spec, len);
    for (char *p = out; *p; p++)
        if (*p == ',') *p = '+';
}

static int write_summary(rdml_ctx *ctx, rdml_h5 *h, const char *group,
                         const rdml_rdm_summary *sm) {
    char path[512];
    int rc = rdml_h5_delete(ctx, h, group);
    if (!rc) rc = rdml_h5_group(ctx, h, group);
    double st[5] = {sm->min, sm->max, sm->mean, sm->std, sm->median};
    const char *names[5] = {"min", "max", "mean", "std", "median"};
    for (int i = 0; i < 5 && !rc; i++) rc = rdml_h5_attr_f64(ctx, h, group, names[i], &st[i], 1);
    if (!rc) rc = rdml_h5_attr_i64(ctx, h, group, "count", &sm->count, 1);
    if (!rc) rc = rdml_h5_attr_str(ctx, h, group, "meaning",
                                   "statistics of the strict upper triangle (i < j) of the RDM; "
                                   "hist/edges as numpy.histogram; low = most similar pairs "
                                   "(ascending), high = most dissimilar (descending)");
    snprintf(path, sizeof path, "%s/hist", group);
    if (!rc) rc = rdml_h5_write_vec_i64(ctx, h, path, sm->nbins, sm->hist);
    snprintf(path, sizeof path, "%s/edges", group);
    if (!rc) rc = rdml_h5_write_vec_f64(ctx, h, path, sm->nbins + 1, sm->edges);
    const rdml_rdm_pair *sets[2] = {sm->low, sm->high};
    const char *set_names[2] = {"low", "high"};
    int64_t *ij = rdml_calloc(ctx, 2 * (size_t)sm->k + 1, sizeof *ij, "pairs");
    double *v = rdml_calloc(ctx, (size_t)sm->k + 1, sizeof *v, "pairs");
    if (!ij || !v) rc = ctx->code;
    for (int s = 0; s < 2 && !rc; s++) {
        for (int t = 0; t < sm->k; t++) {
            ij[2 * t] = sets[s][t].i;
            ij[2 * t + 1] = sets[s][t].j;
            v[t] = sets[s][t].value;
        }
        snprintf(path, sizeof path, "%s/%s_pairs", group, set_names[s]);
        rc = rdml_h5_delete(ctx, h, path);
        if (!rc) rc = rdml_h5_write_rows_i64(ctx, h, path, sm->k, 2, 0, ctx->rank == 0 ? sm->k : 0, ij);
        snprintf(path, sizeof path, "%s/%s_values", group, set_names[s]);
        if (!rc) rc = rdml_h5_write_vec_f64(ctx, h, path, sm->k, v);
    }
    free(ij);
    free(v);
    return rc;
}

/* Gather the m x m sub-RDM of the shared images (rows idx) on rank 0. */
static int gather_shared(rdml_ctx *ctx, MPI_Comm comm, const rdml_rdm *r, const int64_t *idx,
                         int64_t m, float *sub /* rank 0: m x m */) {
    int64_t mine = 0;
    for (int64_t t = 0; t < m; t++) mine += idx[t] >= r->row_lo && idx[t] < r->row_hi;
    float *buf = rdml_malloc(ctx, (size_t)(mine * (m + 1) + 1) * sizeof *buf, "shared rows");
    int rc = buf ? RDML_OK : ctx->code;
    RDML_TRY(rdml_agree(ctx, comm, rc));
    int64_t q = 0;
    for (int64_t t = 0; t < m; t++) {
        if (idx[t] < r->row_lo || idx[t] >= r->row_hi) continue;
        const float *row = r->rows + (idx[t] - r->row_lo) * r->n;
        buf[q * (m + 1)] = (float)t; /* exact: m < 2^24 */
        for (int64_t u = 0; u < m; u++) buf[q * (m + 1) + 1 + u] = row[idx[u]];
        q++;
    }
    int cnt = (int)(mine * (m + 1)), *counts = NULL, *displs = NULL;
    float *all = NULL;
    if (ctx->rank == 0) {
        counts = calloc((size_t)ctx->nranks, sizeof *counts);
        displs = calloc((size_t)ctx->nranks, sizeof *displs);
        all = malloc((size_t)(m * (m + 1) + 1) * sizeof *all);
        if (!counts || !displs || !all) rc = RDML_FAIL(ctx, RDML_ENOMEM, "out of memory gathering shared images");
    }
    rc = rdml_agree(ctx, comm, rc);
    if (!rc) {
        MPI_Gather(&cnt, 1, MPI_INT, counts, 1, MPI_INT, 0, comm);
        if (ctx->rank == 0)
            for (int k = 1; k < ctx->nranks; k++) displs[k] = displs[k - 1] + counts[k - 1];
        MPI_Gatherv(buf, cnt, MPI_FLOAT, all, counts, displs, MPI_FLOAT, 0, comm);
        if (ctx->rank == 0)
            for (int64_t t = 0; t < m; t++) {
                const float *rec = all + t * (m + 1);
                memcpy(sub + (int64_t)rec[0] * m, rec + 1, (size_t)m * sizeof *sub);
            }
    }
    free(buf);
    free(counts);
    free(displs);
    free(all);
    return rc;
}

/* Rank 0 compares the subjects' shared sub-RDMs; every rank writes the results. */
static int write_consistency(rdml_exp *ex, rdml_h5 *h, const char *name, const rdm_opts *o,
                             const int *ids, int ns, float *const *subs, int64_t m) {
    rdml_ctx *ctx = ex->ctx;
    char group[512], path[600];
    snprintf(group, sizeof group, "/rsa/%s", name);
    int rc = rdml_h5_delete(ctx, h, group);
    if (!rc) rc = rdml_h5_group(ctx, h, group);
    int64_t *sid = rdml_calloc(ctx, (size_t)ns, sizeof *sid, "subject ids");
    double *res = rdml_calloc(ctx, (size_t)(ns * ns + 2 * ns + 2), sizeof *res, "consistency");
    if (!sid || !res) rc = ctx->code;
    for (int s = 0; s < ns && sid; s++) sid[s] = ids[s];
    if (!rc) rc = rdml_h5_write_vec_i64(ctx, h, (snprintf(path, sizeof path, "%s/subjects", group), path), ns, sid);
    if (!rc) rc = rdml_h5_attr_i64(ctx, h, group, "n_shared_images", &m, 1);
    for (int k = 0; k < o->nmethods && !rc; k++) {
        /* layout: ns x ns matrix, per-subject lower, per-subject upper, lower, upper */
        double *mat = res, *pl = res + ns * ns, *pu = pl + ns;
        if (ctx->rank == 0) {
            for (int a = 0; a < ns && !rc; a++)
                for (int b = 0; b < ns && !rc; b++)
                    rc = a == b ? (mat[a * ns + b] = 1.0, RDML_OK)
                                : rdml_rsa_compare(ctx, subs[a], subs[b], m, o->methods[k], &mat[a * ns + b]);
            if (!rc)
                rc = rdml_rsa_noise_ceiling(ctx, (const float *const *)subs, ns, m, o->methods[k],
                                            o->pool, &pu[ns], &pu[ns + 1], pl, pu);
        }
        rc = rdml_agree(ctx, ex->comm, rc);
        if (rc) break;
        MPI_Bcast(res, ns * ns + 2 * ns + 2, MPI_DOUBLE, 0, ex->comm);
        const char *mn = rdml_rsa_method_name(o->methods[k]);
        snprintf(path, sizeof path, "%s/%s", group, mn);
        rc = rdml_h5_group(ctx, h, path);
        if (!rc) rc = rdml_h5_attr_f64(ctx, h, path, "noise_ceiling_lower", &pu[ns], 1);
        if (!rc) rc = rdml_h5_attr_f64(ctx, h, path, "noise_ceiling_upper", &pu[ns + 1], 1);
        if (!rc) rc = rdml_h5_attr_str(ctx, h, path, "noise_ceiling_pool", rdml_rsa_pool_name(o->pool));
        char sub[700];
        snprintf(sub, sizeof sub, "%s/subject_corr", path);
        if (!rc) rc = rdml_h5_write_rows_f64(ctx, h, sub, ns, ns, 0, ctx->rank == 0 ? ns : 0, mat);
        if (!rc) rc = rdml_h5_attr_str(ctx, h, sub, "meaning", "RDM correlation between subjects (rows/cols in the order of ../subjects) on the shared images");
        snprintf(sub, sizeof sub, "%s/per_subject_lower", path);
        if (!rc) rc = rdml_h5_write_vec_f64(ctx, h, sub, ns, pl);
        snprintf(sub, sizeof sub, "%s/per_subject_upper", path);
        if (!rc) rc = rdml_h5_write_vec_f64(ctx, h, sub, ns, pu);
        if (!rc)
            rdml_info(ctx, "  %s: inter-subject %s on %lld shared images: noise ceiling [%.3f, %.3f] (%s pooling)",
                      name, mn, (long long)m, pu[ns], pu[ns + 1], rdml_rsa_pool_name(o->pool));
    }
    free(sid);
    free(res);
    return rc;
}

/* One subject x selection: compute, write, summarise, gather the shared rows. */
static int one_rdm(rdml_exp *ex, rdml_h5 *h, const rdm_opts *o, const rdml_subject *s,
                   const char *spec, const char *name, const int64_t *shared, int64_t m,
                   float *sub) {
    rdml_ctx *ctx = ex->ctx;
    rdml_selection sel = {0};
    rdml_rdm r = {0};
    rdml_rdm_summary sm;
    memset(&sm, 0, sizeof sm);
    int id = rdml_subject_id(s);
    double t0 = rdml_now();
    int rc = rdml_subject_select(ctx, s, spec, &sel);
    RDML_TRY(rdml_agree(ctx, ex->comm, rc));
    /* data.images keeps at most the first N images (all of them when the subject has fewer),
     * as the embed and check commands read it */
    int64_t nimg = rdml_subject_nimages(s);
    if (o->nimages > 0 && o->nimages < nimg) nimg = o->nimages;
    else if (o->nimages > nimg)
        rdml_info(ctx, "data.images = %lld but subj%02d has %lld images: using all of them",
                  (long long)o->nimages, rdml_subject_id(s), (long long)nimg);
    rc = rdml_rdm_compute(ctx, ex->comm, s, &sel, nimg, &o->p, &r);
    double tc = rdml_now() - t0;
    char path[512], group[512];
    snprintf(path, sizeof path, "/subjects/subj%02d/rdm/%s", id, name);
    if (!rc) rc = rdml_h5_delete(ctx, h, path);
    if (!rc) rc = rdml_h5_write_rows_f32(ctx, h, path, r.n, r.n, r.row_lo, r.row_hi - r.row_lo, r.rows);
    if (!rc)
        rc = rdml_rsa_summarize(ctx, ex->comm, r.n, r.row_lo, r.row_hi, r.rows, (int)o->nbins,
                                (int)(o->extremes < rdml_rsa_ntri(r.n) ? o->extremes : rdml_rsa_ntri(r.n)), &sm);
    double thr = o->threshold;
    const char *rule = "configured";
    if (!rc && o->threshold_auto) {
        int corr_like = o->p.metric == RDML_RDM_CORRELATION || o->p.metric == RDML_RDM_SPEARMAN ||
                        o->p.metric == RDML_RDM_COSINE;
        thr = corr_like ? 1.0 : sm.median;
        rule = corr_like ? "auto: 1 (dissimilar = negative correlation)"
                         : "auto: median of the off-diagonal values";
    }
    int64_t above = 0, tot = 0;
    for (int64_t i = r.row_lo; i < r.row_hi && !rc; i++)
        for (int64_t j = i + 1; j < r.n; j++) above += r.rows[(i - r.row_lo) * r.n + j] > thr;
    MPI_Allreduce(MPI_IN_PLACE, &above, 1, MPI_INT64_T, MPI_SUM, ex->comm);
    tot = rdml_rsa_ntri(r.n);
    double frac = tot ? (double)above / (double)tot : 0;
    int64_t attrs_i[5] = {id, r.n, sel.n, sel.n_lh, sel.n - sel.n_lh};
    const char *names_i[5] = {"subject", "n_images", "n_vertices", "n_vertices_lh", "n_vertices_rh"};
    for (int i = 0; i < 5 && !rc; i++) rc = rdml_h5_attr_i64(ctx, h, path, names_i[i], &attrs_i[i], 1);
    int64_t stdz = o->p.standardize;
    if (!rc) rc = rdml_h5_attr_i64(ctx, h, path, "standardized", &stdz, 1);
    if (!rc) rc = rdml_h5_attr_str(ctx, h, path, "metric", rdml_rdm_metric_name(o->p.metric));
    if (!rc) rc = rdml_h5_attr_str(ctx, h, path, "arithmetic", rdml_rdm_arith_name(o->p.arithmetic));
    if (!rc) rc = rdml_h5_attr_str(ctx, h, path, "selection", sel.spec);
    if (!rc) rc = rdml_h5_attr_f64(ctx, h, path, "threshold", &thr, 1);
    if (!rc) rc = rdml_h5_attr_str(ctx, h, path, "threshold_rule", rule);
    if (!rc) rc = rdml_h5_attr_f64(ctx, h, path, "dissimilar_fraction", &frac, 1);
    if (!rc) rc = rdml_h5_attr_f64(ctx, h, path, "seconds", &tc, 1);
    if (!rc)
        rc = rdml_h5_attr_str(ctx, h, path, "meaning",
                              "N x N dissimilarity between images' vertex vectors (rows and "
                              "columns in the order of ../../images); a pair is labelled "
                              "dissimilar when its value > threshold");
    snprintf(group, sizeof group, "/subjects/subj%02d/rdm_summary/%s", id, name);
    if (!rc) rc = write_summary(ctx, h, group, &sm);
    if (!rc && m > 0) rc = gather_shared(ctx, ex->comm, &r, shared, m, sub);
    if (!rc)
        rdml_info(ctx, "subj%02d %-14s %lld images x %lld vertices: %s RDM in %.2f s; median %.4f, "
                  "%.1f%% dissimilar (> %.4g)", id, name, (long long)r.n, (long long)sel.n,
                  rdml_rdm_metric_name(o->p.metric), tc, sm.median, 100 * frac, thr);
    rdml_rdm_summary_free(&sm);
    rdml_rdm_free(&r);
    rdml_selection_free(&sel);
    return rc;
}

int rdml_exp_stopped(rdml_exp *ex, const char *stage) {
    rdml_ctx *ctx = ex->ctx;
    if (ctx->code != RDML_ECANCELLED) return ctx->code;
    const char *output = "run.output";
    rdml_ctx tmp;
    rdml_ctx_init(&tmp);
    rdml_config_str(&tmp, ex->cfg, "run", "output", &output);
    char msg[sizeof ctx->msg];
    rdml_strlcpy(msg, ctx->msg, sizeof msg);
    rdml_ctx_clear(ctx);
    return RDML_FAIL(ctx, RDML_ECANCELLED, "%.3000s; stage %s did not finish, so none of its output "
                     "was written: %s is as it was before (hint: run the same command again; "
                     "finished stages are kept, this one starts over)", msg, stage, output);
}

int rdml_exp_rdm_stage(rdml_exp *ex) {
    rdml_ctx *ctx = ex->ctx;
    rdm_opts o;
    const char *root;
    RDML_TRY(read_opts(ex, &o));
    RDML_TRY(rdml_config_str(ctx, ex->cfg, "data", "root", &root));

    rdml_dataset *ds = NULL;
    rdml_subject **subj = NULL;
    int *ids = NULL, nids = 0, nsel = 0;
    char **sels = NULL;
    rdml_h5 *h = NULL;
    int rc = rdml_dataset_open(ctx, root, &ds);
    if (!rc) rc = rdml_exp_subjects(ctx, ex->cfg, ds, &ids, &nids);
    if (!rc) rc = rdml_exp_selections(ctx, ex->cfg, &sels, &nsel);
    if (!rc) {
        subj = rdml_calloc(ctx, (size_t)nids, sizeof *subj, "subjects");
        if (!subj) rc = ctx->code;
    }
    for (int i = 0; i < nids && !rc; i++) rc = rdml_subject_open(ctx, ds, ids[i], &subj[i]);
    rc = rdml_agree(ctx, ex->comm, rc);

    /* the images all subjects share, by NSD id, among each subject's first data.images */
    int64_t **idx = NULL, m = 0;
    if (!rc && nids >= 2) {
        int64_t **lists = calloc((size_t)nids, sizeof *lists), *lens = calloc((size_t)nids, sizeof *lens);
        idx = calloc((size_t)nids, sizeof *idx);
        if (!lists || !lens || !idx) rc = RDML_FAIL(ctx, RDML_ENOMEM, "out of memory matching images");
        for (int i = 0; i < nids && !rc; i++) {
            int64_t n = rdml_subject_nimages(subj[i]);
            if (o.nimages > 0 && o.nimages < n) n = o.nimages;
            lens[i] = n;
            lists[i] = malloc((size_t)n * sizeof **lists);
            if (!lists[i]) { rc = RDML_FAIL(ctx, RDML_ENOMEM, "out of memory matching images"); break; }
            for (int64_t t = 0; t < n; t++) lists[i][t] = rdml_subject_nsd_id(subj[i], t);
        }
        if (!rc) rc = rdml_rsa_match_ids_all(ctx, (const int64_t *const *)lists, lens, nids, idx, &m);
        if (!rc && m < 3) {
            rdml_warn(ctx, "only %lld images shared by all subjects: no inter-subject consistency", (long long)m);
            m = 0;
        }
        for (int i = 0; lists && i < nids; i++) free(lists[i]);
        free(lists);
        free(lens);
    }
    rc = rdml_agree(ctx, ex->comm, rc);
    if (!rc) rc = rdml_exp_results_open(ex, "rdm", &h);
    for (int i = 0; i < nids && !rc; i++) {
        int64_t n = rdml_subject_nimages(subj[i]);
        if (o.nimages > 0 && o.nimages < n) n = o.nimages;
        rc = rdml_exp_write_images(ctx, h, subj[i], n);
    }
    float **subs = NULL;
    if (!rc && m > 0) {
        subs = calloc((size_t)nids, sizeof *subs);
        if (!subs) rc = RDML_FAIL(ctx, RDML_ENOMEM, "out of memory");
        for (int i = 0; i < nids && !rc && ctx->rank == 0; i++) {
            subs[i] = malloc((size_t)(m * m) * sizeof **subs);
            if (!subs[i]) rc = RDML_FAIL(ctx, RDML_ENOMEM, "out of memory for shared sub-RDMs");
        }
        rc = rdml_agree(ctx, ex->comm, rc);
    }
    rdml_progress prog;
    rdml_progress_begin(&prog, ctx, "rdm", (int64_t)nsel * nids);
    for (int k = 0; k < nsel && !rc; k++) {
        char name[256];
        sel_name(sels[k], name, sizeof name);
        for (int i = 0; i < nids && !rc; i++) {
            rc = rdml_stop_agree(ctx, ex->comm, rc, "before the RDM of subj%02d %s (%lld of %lld RDMs done)",
                                 ids[i], name, (long long)k * nids + i, (long long)nsel * nids);
            if (!rc) rc = one_rdm(ex, h, &o, subj[i], sels[k], name, m ? idx[i] : NULL, m,
                         subs && ctx->rank == 0 ? subs[i] : NULL);
            rdml_progress_update(&prog, (int64_t)k * nids + i + 1);
        }
        if (!rc && m > 0) rc = write_consistency(ex, h, name, &o, ids, nids, subs, m);
    }
    if (!rc) rdml_progress_end(&prog);
    if (!rc) {
        rc = rdml_exp_results_commit(ctx, &h, "rdm");
    } else {
        rdml_h5_abort(&h);
        rdml_exp_stopped(ex, "rdm");
    }
    for (int i = 0; subs && i < nids; i++) free(subs[i]);
    free(subs);
    for (int i = 0; idx && i < nids; i++) free(idx[i]);
    free(idx);
    for (int i = 0; subj && i < nids; i++) rdml_subject_close(&subj[i]);
    free(subj);
    rdml_exp_free_list(sels, nsel);
    free(ids);
    rdml_dataset_close(&ds);
    return rc;
}
