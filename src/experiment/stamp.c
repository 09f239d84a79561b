/* The stamp that marks a stage's output as current: the configuration keys the stage depends
 * on (rdml_exp_stage_hash) and the files it reads, each by path, size and modification time
 * (nanoseconds). Which files, per stage:
 *   rdm           every file under ROOT/subjNN of the subjects of data.subjects: the fMRI .npy,
 *                 ROI masks and mappings by size and time; the images by name only (rdm reads
 *                 their names, for the NSD ids, not their pixels);
 *   embed         the images (*.png) under the same folders, by size and time (by name only
 *                 for embed.backend = file), plus embed.file and embed.ids (file) or
 *                 embed.weights and the config.json beside it (clip-vit);
 *   svm, train    both sets: they read the RDMs and embeddings made from them (the CNN reads
 *                 the images itself); with pairs.embeddings also the `stamp` attribute of every
 *                 embedding it names in run.output (other experiments' embed stages make them);
 *   encode        both sets too: it reads the fMRI (and noise ceilings) itself and the
 *                 embeddings made from the images; also the `stamp` attribute of every
 *                 embedding encode.embeddings names (in a job with experiments it runs after
 *                 them, and their embed stages may add or change embeddings);
 *   evaluate      none: it reads only the results file; `run` reruns it whenever a stage
 *                 before it ran (like the report);
 *   report        none (it reads the results file, and reruns whenever a stage ran).
 * Size and time, not content: hashing the data would read every image and gigabytes of fMRI on
 * each run, while a regenerated dataset or new weights always get a new modification time
 * (make and rsync rely on the same). Not the change time or inode either, so a copy made with
 * cp -p or rsync -a to the same path (staging to node-local scratch) still counts as the same
 * data. Files and folders whose names start with '.' are ignored. Rank 0 walks the folders,
 * every rank gets the result. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "exp_priv.h"
#include "rdml/dataset.h"
#include "rdml/sched.h"

enum { WANT_DATA = 1, WANT_IMAGES = 2, WANT_IMAGE_NAMES = 4 };

typedef struct walk {
    uint64_t sum, count; /* order-independent: readdir order varies between file systems */
    int want;
} walk;

static int is_png(const char *name) {
    size_t n = strlen(name);
    return n > 4 && strcasecmp(name + n - 4, ".png") == 0;
}

/* One file: its path (relative to the dataset root, or absolute for embed.* files) and, when
 * the stage reads its content, size and modification time. */
static void add_file(walk *w, const char *rel, const struct stat *st, int content) {
    uint64_t h = rdml_hash_str(rel, 0x9e3779b97f4a7c15ull);
    if (content) {
        char num[96];
        snprintf(num, sizeof num, "|%lld|%lld.%09ld", (long long)st->st_size,
                 (long long)st->st_mtim.tv_sec, (long)st->st_mtim.tv_nsec);
        h = rdml_hash_str(num, h);
    }
    w->sum += h;
    w->count++;
}

static void walk_dir(walk *w, const char *path, const char *rel, int depth) {
    DIR *d = depth < 8 ? opendir(path) : NULL;
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char p[4096], r[4096];
        snprintf(p, sizeof p, "%s/%s", path, e->d_name);
        snprintf(r, sizeof r, "%s/%s", rel, e->d_name);
        struct stat st;
        if (stat(p, &st) != 0) continue;
        if (S_ISDIR(st.st_mode)) {
            walk_dir(w, p, r, depth + 1);
        } else if (S_ISREG(st.st_mode)) {
            int png = is_png(e->d_name);
            if (png ? (w->want & (WANT_IMAGES | WANT_IMAGE_NAMES)) : (w->want & WANT_DATA))
                add_file(w, r, &st, png ? (w->want & WANT_IMAGES) != 0 : 1);
        }
    }
    closedir(d);
}

/* A file named by the configuration (embed.file, ...): stat'ed as given; a missing one counts
 * as missing (the stage itself reports it). */
static void add_named(walk *w, const char *path) {
    if (!path || !*path) return;
    struct stat st;
    if (stat(path, &st) == 0) add_file(w, path, &st, 1);
    else add_file(w, path, &(struct stat){0}, 0);
}

/* Rank 0: the inputs of stage under cfg into w. */
static void stage_inputs(const rdml_config *cfg, const char *stage, walk *w) {
    int rdm = strcmp(stage, "rdm") == 0, embed = strcmp(stage, "embed") == 0;
    int model = strcmp(stage, "svm") == 0 || strcmp(stage, "train") == 0 ||
                strcmp(stage, "encode") == 0;
    if (!rdm && !embed && !model) return;
    rdml_ctx tmp;
    rdml_ctx_init(&tmp);
    tmp.log_level = RDML_LOG_QUIET;
    const char *root = "", *backend = "", *s;
    rdml_config_str(&tmp, cfg, "data", "root", &root);
    rdml_config_str(&tmp, cfg, "embed", "backend", &backend);
    int file = strcmp(backend, "file") == 0, clip = strcmp(backend, "clip-vit") == 0;
    w->want = rdm ? WANT_DATA | WANT_IMAGE_NAMES
              : embed ? (file ? WANT_IMAGE_NAMES : WANT_IMAGES)
                      : WANT_DATA | WANT_IMAGES;
    if (embed || model) {
        if (file && !rdml_config_str(&tmp, cfg, "embed", "file", &s)) add_named(w, s);
        if (file && !rdml_config_str(&tmp, cfg, "embed", "ids", &s)) add_named(w, s);
        if (strcmp(backend, "torchvision") == 0 &&
            !rdml_config_str(&tmp, cfg, "embed", "weights", &s) && *s)
            add_named(w, s);
        if (clip && !rdml_config_str(&tmp, cfg, "embed", "weights", &s) && *s) {
            add_named(w, s);
            char cj[4096];
            const char *slash = strrchr(s, '/');
            if (slash) snprintf(cj, sizeof cj, "%.*s/config.json", (int)(slash - s), s);
            else snprintf(cj, sizeof cj, "config.json");
            add_named(w, cj);
        }
    }
    if (model) { /* pairs.embeddings, encode.embeddings: the embeddings' stamps */
        uint64_t eh = rdml_exp_embs_stamp(cfg, strcmp(stage, "encode") == 0 ? "encode" : "pairs");
        if (eh) {
            w->sum += eh;
            w->count++;
        }
    }
    rdml_dataset *ds = NULL;
    int *ids = NULL, n = 0;
    if (rdml_dataset_open(&tmp, root, &ds) == RDML_OK &&
        rdml_exp_subjects(&tmp, cfg, ds, &ids, &n) == RDML_OK) {
        for (int i = 0; i < n; i++) {
            char p[4200], rel[16];
            snprintf(rel, sizeof rel, "subj%02d", ids[i]);
            snprintf(p, sizeof p, "%s/%s", root, rel);
            walk_dir(w, p, rel, 0);
        }
    }
    free(ids);
    rdml_dataset_close(&ds);
}

int rdml_exp_stage_stamp(rdml_exp *ex, const char *stage, char hex[17]) {
    rdml_ctx *ctx = ex->ctx;
    char buf[64] = {0};
    int ok = 1;
    if (ctx->rank == 0) {
        char chex[17];
        ok = rdml_exp_stage_hash(ex->cfg, stage, chex) == RDML_OK;
        walk w = {0, 0, 0};
        if (ok) stage_inputs(ex->cfg, stage, &w);
        /* the configuration's hash alone when the stage reads no file: a results file made
         * before stamps existed stays current for the report */
        if (ok && !w.count) rdml_strlcpy(buf, chex, sizeof buf);
        else if (ok) {
            char num[80];
            snprintf(num, sizeof num, "|%llu|%llu", (unsigned long long)w.sum,
                     (unsigned long long)w.count);
            rdml_hash_hex(rdml_hash_str(num, rdml_hash_str(chex, 0)), buf);
        }
    }
    MPI_Bcast(&ok, 1, MPI_INT, 0, ex->comm);
    MPI_Bcast(buf, 17, MPI_CHAR, 0, ex->comm);
    if (!ok) return RDML_FAIL(ctx, RDML_ENOMEM, "out of memory hashing the configuration");
    memcpy(hex, buf, 17);
    return RDML_OK;
}
