/* Models and layers as a sweep axis (pairs.embeddings, issue 17): the svm and train stages fit
 * one pair model per embedding on the same pairs and folds. This file resolves the key against
 * run.output (all, or a list checked for every subject), describes each embedding for the sweep
 * table (its architecture, layer and depth attributes, written by the embed stage), writes and
 * reads the table's variant columns, and hashes the embeddings' own stamps into the model
 * stages' stamp (an added or recomputed embedding reruns the stage). The sweep engine
 * (sweep.c) sees the embeddings as variants: groups are subject x selection x embedding. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "exp_priv.h"
#include "rdml/dataset.h"
#include "rdml/h5.h"
#include "rdml/mpiutil.h"
#include "rdml/sched.h"
#include "rdml/strbuf.h"

/* pairs.embeddings split on commas, items trimmed, empty ones dropped; *items malloc'd (one
 * block: free(*items) frees all). */
static int key_list(rdml_ctx *ctx, const rdml_config *cfg, const char *section, char ***items,
                    int *n) {
    const char *v;
    *items = NULL;
    *n = 0;
    RDML_TRY(rdml_config_str(ctx, cfg, section, "embeddings", &v));
    const size_t len = strlen(v);
    int cap = 1;
    for (const char *p = v; *p; p++) cap += *p == ',';
    char **it = malloc((size_t)cap * sizeof *it + len + 1);
    if (!it) return RDML_FAIL(ctx, RDML_ENOMEM, "out of memory (%s.embeddings)", section);
    char *buf = (char *)(it + cap);
    memcpy(buf, v, len + 1);
    for (char *sv = NULL, *t = strtok_r(buf, ",", &sv); t; t = strtok_r(NULL, ",", &sv)) {
        while (*t == ' ' || *t == '\t') t++;
        char *e = t + strlen(t);
        while (e > t && (e[-1] == ' ' || e[-1] == '\t')) *--e = 0;
        if (*t) it[(*n)++] = t;
    }
    *items = it;
    return RDML_OK;
}

void rdml_exp_pair_embs_free(rdml_pair_embs *e) {
    for (int i = 0; i < e->n; i++) {
        if (e->name) free(e->name[i]);
        if (e->arch) free(e->arch[i]);
        if (e->layer) free(e->layer[i]);
    }
    free(e->name);
    free(e->arch);
    free(e->layer);
    free(e->depth);
    free(e->relative_depth);
    memset(e, 0, sizeof *e);
}

static int embs_alloc(rdml_ctx *ctx, rdml_pair_embs *e, int n) {
    e->n = n;
    e->name = calloc((size_t)n + 1, sizeof *e->name);
    e->arch = calloc((size_t)n + 1, sizeof *e->arch);
    e->layer = calloc((size_t)n + 1, sizeof *e->layer);
    e->depth = calloc((size_t)n + 1, sizeof *e->depth);
    e->relative_depth = calloc((size_t)n + 1, sizeof *e->relative_depth);
    if (!e->name || !e->arch || !e->layer || !e->depth || !e->relative_depth)
        return RDML_FAIL(ctx, RDML_ENOMEM, "out of memory (pairs.embeddings)");
    for (int i = 0; i < n; i++) e->depth[i] = e->relative_depth[i] = NAN;
    return RDML_OK;
}

/* Collective. An optional string attribute ("" when absent). */
static char *attr_str(rdml_ctx *ctx, rdml_h5 *h, const char *obj, const char *name) {
    char *v = NULL;
    if (rdml_h5_get_attr_str(ctx, h, obj, name, &v) != RDML_OK) {
        rdml_ctx_clear(ctx);
        v = NULL;
    }
    return v ? v : rdml_strdup(ctx, "");
}

/* Collective. The embedding's description: architecture, layer, depth and relative depth
 * (the attribute, else depth / (n_modules - 1) when the file has n_modules). */
static int describe(rdml_ctx *ctx, rdml_h5 *h, int id, rdml_pair_embs *e, int i) {
    char path[1200];
    snprintf(path, sizeof path, "/subjects/subj%02d/embeddings/%s", id, e->name[i]);
    int ok = 0;
    RDML_TRY(rdml_h5_exists(ctx, h, path, &ok));
    e->arch[i] = ok ? attr_str(ctx, h, path, "architecture") : rdml_strdup(ctx, "");
    e->layer[i] = ok ? attr_str(ctx, h, path, "layer") : rdml_strdup(ctx, "");
    if (!e->arch[i] || !e->layer[i]) return ctx->code;
    if (!ok) return RDML_OK;
    int64_t got = 0, v = 0, nm = 0;
    double r = NAN;
    if (rdml_h5_get_attr_i64(ctx, h, path, "depth", &v, 1, &got) == RDML_OK && got) e->depth[i] = (double)v;
    rdml_ctx_clear(ctx);
    if (rdml_h5_get_attr_f64(ctx, h, path, "relative_depth", &r, 1, &got) == RDML_OK && got)
        e->relative_depth[i] = r;
    rdml_ctx_clear(ctx);
    if (isnan(e->relative_depth[i]) &&
        rdml_h5_get_attr_i64(ctx, h, path, "n_modules", &nm, 1, &got) == RDML_OK && got && nm > 1)
        e->relative_depth[i] = e->depth[i] / (double)(nm - 1);
    rdml_ctx_clear(ctx);
    return RDML_OK;
}

/* Collective. "a, b, c" of the names in list (cut to fit). */
static void join(char **names, int64_t n, char *buf, size_t len) {
    buf[0] = 0;
    for (int64_t i = 0; i < n; i++) {
        size_t at = strlen(buf);
        if (at + strlen(names[i]) + 8 >= len) {
            snprintf(buf + at, len - at, ", ...");
            break;
        }
        snprintf(buf + at, len - at, "%s%s", i ? ", " : "", names[i]);
    }
}

int rdml_exp_pair_embs(rdml_exp *ex, const char *stage, const char *dflt, rdml_pair_embs *out) {
    rdml_ctx *ctx = ex->ctx;
    memset(out, 0, sizeof *out);
    const char *root, *output;
    char **items = NULL;
    int nitems = 0;
    RDML_TRY(rdml_config_str(ctx, ex->cfg, "data", "root", &root));
    RDML_TRY(rdml_config_str(ctx, ex->cfg, "run", "output", &output));
    RDML_TRY(key_list(ctx, ex->cfg, "pairs", &items, &nitems));
    int all = nitems == 1 && strcmp(items[0], "all") == 0;
    int exists = 0;
    if (ctx->rank == 0) {
        struct stat st;
        exists = stat(output, &st) == 0;
    }
    MPI_Bcast(&exists, 1, MPI_INT, 0, ex->comm);
    rdml_dataset *ds = NULL;
    int *ids = NULL, nids = 0;
    rdml_h5 *h = NULL;
    char **have = NULL;
    int64_t nhave = 0;
    int rc = RDML_OK;
    if (nitems == 0) { /* embed.name alone, described when the file has it */
        rc = embs_alloc(ctx, out, 1);
        if (!rc) out->name[0] = rdml_strdup(ctx, dflt);
        if (!rc && !out->name[0]) rc = ctx->code;
    } else if (!exists) {
        rc = RDML_FAIL(ctx, RDML_EIO, "%s: pairs.embeddings needs the embeddings in run.output = "
                       "%s, which does not exist (hint: run `rdmlearn embed` first, or `rdmlearn "
                       "run` with the embed stage)", stage, output);
    }
    if (!rc) rc = rdml_dataset_open(ctx, root, &ds);
    if (!rc) rc = rdml_exp_subjects(ctx, ex->cfg, ds, &ids, &nids);
    rc = rdml_agree(ctx, ex->comm, rc);
    if (!rc && exists) rc = rdml_h5_open(ctx, ex->comm, output, 0, &h);
    char g[200];
    if (!rc && nitems > 0 && nids > 0) {
        snprintf(g, sizeof g, "/subjects/subj%02d/embeddings", ids[0]);
        rc = rdml_h5_list(ctx, h, g, &have, &nhave);
        if (!rc && nhave == 0)
            rc = RDML_FAIL(ctx, RDML_EDATA, "%s: pairs.embeddings = %s: subj%02d has no embeddings "
                           "in %s (hint: run the embed stage first)", stage, all ? "all" : items[0],
                           ids[0], output);
        if (!rc) rc = embs_alloc(ctx, out, all ? (int)nhave : nitems);
        for (int i = 0; i < out->n && !rc; i++) {
            out->name[i] = rdml_strdup(ctx, all ? have[i] : items[i]);
            if (!out->name[i]) rc = ctx->code;
            for (int j = 0; j < i && !rc; j++)
                if (strcmp(out->name[i], out->name[j]) == 0)
                    rc = RDML_FAIL(ctx, RDML_ECONFIG, "pairs.embeddings lists %s twice (hint: name "
                                   "each embedding once)", out->name[i]);
        }
        out->explicit_ = 1;
        /* every name, for every subject of the sweep */
        for (int s = 0; s < nids && !rc; s++) {
            char **sh = have;
            int64_t nsh = nhave;
            if (s > 0) {
                snprintf(g, sizeof g, "/subjects/subj%02d/embeddings", ids[s]);
                sh = NULL;
                nsh = 0;
                rc = rdml_h5_list(ctx, h, g, &sh, &nsh);
            }
            for (int i = 0; i < out->n && !rc; i++) {
                int found = 0;
                for (int64_t k = 0; k < nsh && !found; k++) found = strcmp(sh[k], out->name[i]) == 0;
                if (!found) {
                    char list[2048];
                    join(sh, nsh, list, sizeof list);
                    rc = RDML_FAIL(ctx, RDML_ECONFIG, "%s: pairs.embeddings names '%s', but subj%02d "
                                   "has no such embedding in %s (available: %s; hint: list names "
                                   "from these, or all, or add an experiment whose embed stage "
                                   "makes it)", stage, out->name[i], ids[s], output,
                                   nsh ? list : "none");
                }
            }
            if (s > 0) rdml_h5_free_strings(sh, nsh);
        }
    }
    for (int i = 0; i < out->n && !rc; i++) {
        if (h && nids > 0) rc = describe(ctx, h, ids[0], out, i);
        else {
            out->arch[i] = rdml_strdup(ctx, "");
            out->layer[i] = rdml_strdup(ctx, "");
            if (!out->arch[i] || !out->layer[i]) rc = ctx->code;
        }
    }
    rc = rdml_agree(ctx, ex->comm, rc);
    if (!rc && out->explicit_)
        rdml_info(ctx, "%s: pairs.embeddings: %d embedding(s), one model each", stage, out->n);
    rdml_h5_free_strings(have, nhave);
    rdml_h5_abort(&h); /* read-only */
    free(ids);
    rdml_dataset_close(&ds);
    free(items);
    if (rc) rdml_exp_pair_embs_free(out);
    return rc;
}

void rdml_exp_pair_variants(const rdml_pair_embs *e, const void *opts, size_t opts_size,
                            rdml_sweep_variant *v) {
    for (int i = 0; i < e->n; i++)
        v[i] = (rdml_sweep_variant){(const char *)opts + (size_t)i * opts_size, e->name[i],
                                    e->arch[i], e->layer[i], e->depth[i], e->relative_depth[i]};
}

uint64_t rdml_exp_embs_stamp(const rdml_config *cfg, const char *section) {
    rdml_ctx tmp;
    rdml_ctx_init(&tmp);
    tmp.log_level = RDML_LOG_QUIET;
    char **items = NULL;
    int nitems = 0;
    const char *output = "";
    if (key_list(&tmp, cfg, section, &items, &nitems) || nitems == 0 ||
        rdml_config_str(&tmp, cfg, "run", "output", &output)) {
        free(items);
        return 0;
    }
    char kname[64];
    snprintf(kname, sizeof kname, "%s.embeddings", section);
    uint64_t hsum = rdml_hash_str(kname, 0);
    struct stat st;
    rdml_h5 *h = NULL;
    char **subj = NULL, **names = NULL;
    int64_t ns = 0, nn = 0;
    if (stat(output, &st) == 0 && rdml_h5_open(&tmp, MPI_COMM_SELF, output, 0, &h) == RDML_OK &&
        rdml_h5_list(&tmp, h, "/subjects", &subj, &ns) == RDML_OK) {
        const int all = nitems == 1 && strcmp(items[0], "all") == 0;
        for (int64_t s = 0; s < ns; s++) {
            char g[600];
            snprintf(g, sizeof g, "/subjects/%s/embeddings", subj[s]);
            if (rdml_h5_list(&tmp, h, g, &names, &nn) != RDML_OK) {
                rdml_ctx_clear(&tmp);
                continue;
            }
            for (int64_t k = 0; k < nn; k++) {
                int want = all;
                for (int i = 0; i < nitems && !want; i++) want = strcmp(items[i], names[k]) == 0;
                if (!want) continue;
                char p[1300], *stamp = NULL;
                snprintf(p, sizeof p, "%s/%s", g, names[k]);
                if (rdml_h5_get_attr_str(&tmp, h, p, "stamp", &stamp) != RDML_OK) rdml_ctx_clear(&tmp);
                hsum = rdml_hash_str(stamp ? stamp : "-", rdml_hash_str(p, hsum));
                free(stamp);
            }
            rdml_h5_free_strings(names, nn);
            names = NULL;
            nn = 0;
        }
    }
    rdml_ctx_clear(&tmp);
    rdml_h5_free_strings(subj, ns);
    rdml_h5_abort(&h);
    free(items);
    return hsum ? hsum : 1;
}

int rdml_exp_prune_model_groups(rdml_ctx *ctx, rdml_h5 *h, const char *experiment, const char *model,
                                const rdml_pair_embs *pe) {
    char g[600];
    snprintf(g, sizeof g, "/experiments/%s", experiment);
    char **kids = NULL;
    int64_t nk = 0;
    RDML_TRY(rdml_h5_list(ctx, h, g, &kids, &nk));
    const size_t ml = strlen(model);
    int rc = RDML_OK;
    for (int64_t i = 0; i < nk && !rc; i++) {
        const char *k = kids[i];
        int mine = strcmp(k, model) == 0, variant = strncmp(k, model, ml) == 0 && k[ml] == '@';
        if (!mine && !variant) continue;
        int keep = mine ? !pe->explicit_ : 0;
        for (int e = 0; variant && pe->explicit_ && e < pe->n && !keep; e++)
            keep = strcmp(k + ml + 1, pe->name[e]) == 0;
        if (keep) continue;
        char p[1200];
        snprintf(p, sizeof p, "%s/%s", g, k);
        rc = rdml_h5_delete(ctx, h, p);
        if (!rc)
            rdml_info(ctx, "removed %s: results of an embedding this run's pairs.embeddings does not "
                      "list", p);
    }
    rdml_h5_free_strings(kids, nk);
    return rc;
}

/* ---- the sweep table's variant columns ---- */

int rdml_exp_sweep_variant_cols(rdml_ctx *ctx, rdml_h5 *h, const char *base, const rdml_sweep_model *m,
                                int64_t G, int64_t nf) {
    const int64_t T = G * nf, V = m->nvariants;
    const char **s = malloc((size_t)(T + 1) * sizeof *s);
    double *d = malloc((size_t)(T + 1) * sizeof *d);
    int rc = s && d ? RDML_OK : RDML_FAIL(ctx, RDML_ENOMEM, "out of memory (sweep table)");
    static const char *const part[2] = {"tasks", "summary"};
    for (int p = 0; p < 2 && !rc; p++) {
        const int64_t rows = p == 0 ? T : G, per = p == 0 ? nf : 1;
        for (int c = 0; c < 5 && !rc; c++) {
            static const char *const col[5] = {"embedding", "architecture", "layer", "depth",
                                               "relative_depth"};
            for (int64_t r = 0; r < rows; r++) {
                const rdml_sweep_variant *v = &m->variants[(r / per) % V];
                if (c < 3) s[r] = c == 0 ? v->embedding : c == 1 ? v->architecture : v->layer;
                else d[r] = c == 3 ? v->depth : v->relative_depth;
            }
            char path[900];
            snprintf(path, sizeof path, "%s/%s/%s", base, part[p], col[c]);
            rc = c < 3 ? rdml_h5_write_strings(ctx, h, path, s, rows)
                       : rdml_h5_write_vec_f64(ctx, h, path, rows, d);
        }
    }
    free(s);
    free(d);
    return rc;
}

void rdml_exp_sweep_vcols_free(rdml_sweep_vcols *v) {
    const int64_t n = v->T + v->G;
    for (int64_t i = 0; i < n; i++) {
        if (v->emb) free(v->emb[i]);
        if (v->arch) free(v->arch[i]);
        if (v->layer) free(v->layer[i]);
    }
    free(v->emb);
    free(v->arch);
    free(v->layer);
    free(v->depth);
    free(v->rel);
    memset(v, 0, sizeof *v);
}

int rdml_exp_sweep_vcols_read(rdml_ctx *ctx, rdml_h5 *h, const char *base, int64_t T, int64_t G,
                              rdml_sweep_vcols *v) {
    memset(v, 0, sizeof *v);
    const int64_t n = T + G;
    v->T = T;
    v->G = G;
    v->emb = calloc((size_t)n + 1, sizeof *v->emb);
    v->arch = calloc((size_t)n + 1, sizeof *v->arch);
    v->layer = calloc((size_t)n + 1, sizeof *v->layer);
    v->depth = malloc((size_t)(n + 1) * sizeof *v->depth);
    v->rel = malloc((size_t)(n + 1) * sizeof *v->rel);
    if (!v->emb || !v->arch || !v->layer || !v->depth || !v->rel) {
        rdml_exp_sweep_vcols_free(v);
        return RDML_FAIL(ctx, RDML_ENOMEM, "out of memory reading the sweep table %s", base);
    }
    for (int64_t i = 0; i < n; i++) v->depth[i] = v->rel[i] = NAN;
    static const char *const part[2] = {"tasks", "summary"};
    int rc = RDML_OK;
    for (int p = 0; p < 2 && !rc; p++) {
        const int64_t rows = p == 0 ? T : G, off = p == 0 ? 0 : T;
        char path[900];
        int ok = 0;
        snprintf(path, sizeof path, "%s/%s/embedding", base, part[p]);
        rc = rdml_h5_exists(ctx, h, path, &ok);
        if (rc || !ok) continue; /* a table without the columns (one embedding, older files) */
        char ***dst[3] = {&v->emb, &v->arch, &v->layer};
        static const char *const scol[3] = {"embedding", "architecture", "layer"};
        for (int c = 0; c < 3 && !rc; c++) {
            char **got = NULL;
            int64_t ng = 0;
            snprintf(path, sizeof path, "%s/%s/%s", base, part[p], scol[c]);
            rc = rdml_h5_read_strings(ctx, h, path, &got, &ng);
            if (!rc && ng != rows)
                rc = RDML_FAIL(ctx, RDML_EFORMAT, "%s: %s has %lld rows, the table %lld",
                               rdml_h5_path(h), path, (long long)ng, (long long)rows);
            for (int64_t r = 0; r < rows && !rc; r++) {
                (*dst[c])[off + r] = got[r];
                got[r] = NULL;
            }
            rdml_h5_free_strings(got, ng);
        }
        snprintf(path, sizeof path, "%s/%s/depth", base, part[p]);
        if (!rc) rc = rdml_h5_read_rows_f64(ctx, h, path, 0, rows, v->depth + off);
        snprintf(path, sizeof path, "%s/%s/relative_depth", base, part[p]);
        if (!rc) rc = rdml_h5_read_rows_f64(ctx, h, path, 0, rows, v->rel + off);
    }
    if (rc) rdml_exp_sweep_vcols_free(v);
    return rc;
}
