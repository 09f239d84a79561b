/* Helpers shared by subcommands: turning [data] keys into subject ids and selections. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exp_priv.h"
#include "rdml/dataset.h"
#include "rdml/h5.h"
#include "rdml/mpiutil.h"
#include "rdml/sched.h"

int rdml_exp_subjects(rdml_ctx *ctx, const rdml_config *cfg, const rdml_dataset *ds, int **ids,
                      int *n) {
    char **items;
    int nitems;
    RDML_TRY(rdml_config_list(ctx, cfg, "data", "subjects", &items, &nitems));
    int nds = rdml_dataset_nsubjects(ds);
    int all = nitems == 1 && strcmp(items[0], "all") == 0;
    int cap = all ? nds : nitems;
    *ids = rdml_calloc(ctx, (size_t)(cap ? cap : 1), sizeof **ids, "subject list");
    if (!*ids) {
        free(items);
        return ctx->code;
    }
    *n = 0;
    for (int i = 0; i < cap; i++) (*ids)[(*n)++] = all ? rdml_dataset_subject_id(ds, i) : atoi(items[i]);
    free(items);
    return RDML_OK;
}

int rdml_exp_selections(rdml_ctx *ctx, const rdml_config *cfg, char ***specs, int *n) {
    char **items;
    int nitems;
    RDML_TRY(rdml_config_list(ctx, cfg, "data", "rois", &items, &nitems));
    *specs = rdml_calloc(ctx, (size_t)nitems + 1, sizeof **specs, "selection list");
    if (!*specs) {
        free(items);
        return ctx->code;
    }
    for (int i = 0; i < nitems; i++) {
        (*specs)[i] = rdml_strdup(ctx, items[i]);
        if (!(*specs)[i]) {
            rdml_exp_free_list(*specs, i);
            free(items);
            return ctx->code;
        }
        for (char *p = (*specs)[i]; *p; p++)
            if (*p == '+') *p = ',';
    }
    *n = nitems;
    free(items);
    return RDML_OK;
}

void rdml_exp_free_list(char **items, int n) {
    if (!items) return;
    for (int i = 0; i < n; i++) free(items[i]);
    free(items);
}

int rdml_exp_find_inputs(rdml_ctx *ctx, struct rdml_h5 *h, int id, const char *name,
                         const char *embedding, char *rpath, size_t rlen, char *epath,
                         size_t elen, int64_t max_images, int64_t *n, int64_t *d) {
    int ex = 0, ndim = 0;
    int64_t dims[8], edims[8];
    snprintf(rpath, rlen, "/subjects/subj%02d/rdm/%s", id, name);
    snprintf(epath, elen, "/subjects/subj%02d/embeddings/%s", id, embedding ? embedding : "");
    RDML_TRY(rdml_h5_exists(ctx, h, rpath, &ex));
    if (!ex)
        return RDML_FAIL(ctx, RDML_EDATA, "%s has no RDM %s (hint: run `rdmlearn rdm` with the same "
                         "data.rois and run.output first)", rdml_h5_path(h), rpath);
    RDML_TRY(rdml_h5_dims(ctx, h, rpath, &ndim, dims));
    *n = dims[0];
    *d = 0;
    if (max_images > 0 && max_images < *n) {
        *n = max_images;
    } else if (max_images > *n) {
        rdml_info(ctx, "pairs.images = %lld but %s has %lld images: using all %lld", (long long)max_images,
                  rpath, (long long)*n, (long long)*n);
    }
    if (!embedding) return RDML_OK;
    RDML_TRY(rdml_h5_exists(ctx, h, epath, &ex));
    if (!ex)
        return RDML_FAIL(ctx, RDML_EDATA, "%s has no embeddings %s (hint: run `rdmlearn embed` "
                         "first, or set embed.name to the embedding to use)", rdml_h5_path(h), epath);
    RDML_TRY(rdml_h5_dims(ctx, h, epath, &ndim, edims));
    if (ndim != 2 || edims[0] < *n)
        return RDML_FAIL(ctx, RDML_EDATA, "embeddings %s have %lld rows but the RDM %s has %lld "
                         "images (hint: compute both with the same data.images)", epath,
                         (long long)edims[0], rpath, (long long)*n);
    *d = edims[1];
    return RDML_OK;
}

int rdml_exp_read_rdm(rdml_ctx *ctx, MPI_Comm comm, struct rdml_h5 *h, const char *rpath, int64_t m,
                      float *R) {
    int ndim = 0;
    int64_t dims[8];
    RDML_TRY(rdml_h5_dims(ctx, h, rpath, &ndim, dims));
    const int64_t N = dims[0];
    if (m >= N) return rdml_h5_read_rows_f32(ctx, h, rpath, 0, N, R);
    /* slabs of full rows, keeping the first m values of each */
    const int64_t slab = 256;
    float *buf = rdml_malloc(ctx, (size_t)(slab * N) * sizeof *buf, "RDM rows");
    RDML_TRY(rdml_agree(ctx, comm, buf ? RDML_OK : ctx->code));
    int rc = RDML_OK;
    for (int64_t r0 = 0; r0 < m && !rc; r0 += slab) {
        int64_t k = m - r0 < slab ? m - r0 : slab;
        rc = rdml_h5_read_rows_f32(ctx, h, rpath, r0, k, buf);
        for (int64_t r = 0; r < k && !rc; r++) memcpy(R + (r0 + r) * m, buf + r * N, (size_t)m * sizeof *R);
    }
    free(buf);
    return rc;
}

/* The sections each stage's output depends on ("run.seed" is added for the model stages).
 * Keys that change how, not what, is computed (run.threads, run.log_level, run.output) and
 * the [slurm] and [synth] sections never enter a hash. */
enum { NDEPS = 12 };
static const char *const stage_deps[][NDEPS] = {
    {"rdm", "data", "rdm", NULL},
    {"embed", "data", "embed", NULL},
    {"encode", "data", "rdm", "embed", "pairs", "split", "encode", NULL},
    {"svm", "data", "rdm", "embed", "pairs", "split", "svm", "grid", NULL},
    {"train", "data", "rdm", "embed", "pairs", "split", "train", "grid", NULL},
    {"evaluate", "data", "rdm", "embed", "pairs", "split", "svm", "train", "grid", "evaluate", NULL},
    {"report", "data", "rdm", "embed", "pairs", "split", "svm", "train", "grid", "evaluate", NULL},
};

/* Hash "key = v1, v2" with each value normalised: numbers as %.17g (so 1, 1.0 and 1e0 are
 * the same setting), other items trimmed and lower-cased (config values are matched
 * case-insensitively). */
static uint64_t hash_line(const char *line, uint64_t h) {
    const char *eq = strchr(line, '=');
    if (!eq) return rdml_hash_str(line, h);
    char key[256];
    size_t kl = (size_t)(eq - line) < sizeof key - 1 ? (size_t)(eq - line) : sizeof key - 1;
    memcpy(key, line, kl);
    while (kl && key[kl - 1] == ' ') kl--;
    key[kl] = 0;
    h = rdml_hash_str(key, h);
    const char *p = eq + 1;
    for (;;) {
        while (*p == ' ' || *p == '\t') p++;
        const char *e = p;
        while (*e && *e != ',') e++;
        char item[1024];
        size_t n = (size_t)(e - p) < sizeof item - 1 ? (size_t)(e - p) : sizeof item - 1;
        memcpy(item, p, n);
        while (n && (item[n - 1] == ' ' || item[n - 1] == '\t')) n--;
        item[n] = 0;
        char *end;
        double v = strtod(item, &end);
        char norm[1100];
        if (n && *end == 0) snprintf(norm, sizeof norm, "=%.17g", v);
        else {
            snprintf(norm, sizeof norm, "=%s", item);
            for (char *q = norm; *q && !strchr(norm, '/'); q++) /* paths keep their case */
                if (*q >= 'A' && *q <= 'Z') *q = (char)(*q - 'A' + 'a');
        }
        h = rdml_hash_str(norm, h);
        if (!*e) break;
        p = e + 1;
    }
    return h;
}

/* The hash of the resolved configuration's lines that pick() selects: a section header
 * "[sec]" when pick(sec, NULL, u) holds, a "key = value" line of it when pick(sec, line, u)
 * does (values normalised by hash_line). */
typedef int (*line_pick)(const char *sec, const char *line, const void *u);
static int hash_config(const rdml_config *cfg, const char *label, line_pick pick, const void *u,
                       char hex[17]) {
    char *text = rdml_config_dump(cfg, 0);
    if (!text) return RDML_ENOMEM;
    uint64_t h = rdml_hash_str(label, 0);
    char sec[64] = "";
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        if (line[0] == '[') {
            rdml_strlcpy(sec, line + 1, sizeof sec);
            char *e = strchr(sec, ']');
            if (e) *e = 0;
            if (pick(sec, NULL, u)) h = rdml_hash_str(line, h);
        } else if (pick(sec, line, u)) {
            h = hash_line(line, rdml_hash_str("\n", h));
        }
    }
    free(text);
    rdml_hash_hex(h, hex);
    return RDML_OK;
}

/* pairs.embeddings left empty (its default: embed.name, as before the key existed). */
static int unset_embeddings(const char *sec, const char *line) {
    if (strcmp(sec, "pairs") != 0 || strncmp(line, "embeddings", 10) != 0) return 0;
    const char *p = line + 10;
    while (*p == ' ' || *p == '\t' || *p == '=') p++;
    return *p == 0;
}

/* A stage's lines: the sections it depends on (every section but [slurm] and [synth] for a
 * stage without a row), plus run.seed for the model stages (run.seed and run.stages for a
 * stage without a row). */
static int pick_stage(const char *sec, const char *line, const void *u) {
    const char *stage = u;
    int row = -1;
    for (int i = 0; i < (int)(sizeof stage_deps / sizeof stage_deps[0]); i++)
        if (strcmp(stage_deps[i][0], stage) == 0) row = i;
    int keep = 0;
    for (int k = 1; row >= 0 && k < NDEPS && stage_deps[row][k]; k++)
        if (strcmp(stage_deps[row][k], sec) == 0) keep = 1;
    if (row < 0) keep = strcmp(sec, "slurm") != 0 && strcmp(sec, "synth") != 0;
    if (!line) return keep;
    if (unset_embeddings(sec, line)) return 0; /* results made before the key stay current */
    int run = strcmp(sec, "run") == 0, seed = run && strncmp(line, "seed ", 5) == 0;
    if (row < 0 && run) return seed || strncmp(line, "stages ", 7) == 0;
    int model = strcmp(stage, "svm") == 0 || strcmp(stage, "train") == 0 ||
                strcmp(stage, "report") == 0 || strcmp(stage, "encode") == 0 ||
                strcmp(stage, "evaluate") == 0;
    return keep || (model && seed);
}

int rdml_exp_stage_hash(const rdml_config *cfg, const char *stage, char hex[17]) {
    return hash_config(cfg, stage, pick_stage, stage, hex);
}

/* The pairs' lines: [data] (but its rois and subjects lists: the groups are per subject and
 * selection, those lists do not change a group's pairs), [rdm], [pairs], [split], run.seed. */
static int pick_pairs(const char *sec, const char *line, const void *u) {
    (void)u;
    int keep = !strcmp(sec, "data") || !strcmp(sec, "rdm") || !strcmp(sec, "pairs") || !strcmp(sec, "split");
    if (!line) return keep;
    if (strcmp(sec, "run") == 0) return strncmp(line, "seed ", 5) == 0;
    /* pairs.embeddings chooses the models' inputs, not the pairs */
    if (strcmp(sec, "pairs") == 0 && strncmp(line, "embeddings ", 11) == 0) return 0;
    return keep && !(strcmp(sec, "data") == 0 && (strncmp(line, "rois ", 5) == 0 ||
                                                  strncmp(line, "subjects ", 9) == 0));
}

int rdml_exp_pairs_hash(const rdml_config *cfg, char hex[17]) {
    return hash_config(cfg, "pairs", pick_pairs, NULL, hex);
}

void rdml_exp_stage_key(const rdml_config *cfg, const char *stage, char *out, size_t len) {
    rdml_ctx tmp;
    rdml_ctx_init(&tmp);
    const char *a = "", *b = "";
    char rois[400] = "";
    if (strcmp(stage, "rdm") == 0) {
        /* one record per selection list: an experiment may add its own (the paper's CNN on V1) */
        const char *r = "";
        rdml_config_str(&tmp, cfg, "data", "rois", &r);
        size_t k = 0;
        for (const char *p = r; *p && k + 1 < sizeof rois; p++)
            if (*p != ' ' && *p != '\t') rois[k++] = *p;
        rois[k] = 0;
        a = rois;
    } else if (strcmp(stage, "embed") == 0) {
        if (rdml_config_str(&tmp, cfg, "embed", "name", &a) || !*a)
            rdml_config_str(&tmp, cfg, "embed", "backend", &a);
    } else if (strcmp(stage, "svm") == 0 || strcmp(stage, "train") == 0) {
        rdml_config_str(&tmp, cfg, "pairs", "experiment", &a);
        if (strcmp(stage, "train") == 0) rdml_config_str(&tmp, cfg, "train", "model", &b);
    }
    snprintf(out, len, "%s%s%s%s%s", stage, *a ? ":" : "", a, *b ? ":" : "", b);
}
