/* `rdmlearn synth`: parameters (defaults, checks with readable messages, reading the [synth]
 * section), the plan of which NSD ids each subject sees, and the collective writer that lays
 * out the Algonauts 2023 folders. Rank 0 prepares a temporary folder (ROOT.tmp-<pid>, or
 * ROOT/.synth-tmp-<pid> when ROOT already exists), writes masks and mappings and creates the
 * fMRI .npy files; every rank renders its contiguous block of images (rdml_part_block),
 * writes their PNGs and, after the features of all images are gathered, its block of fMRI
 * rows (pwrite). Every number is a pure function of (seed, subject, NSD id, vertex), and the
 * per-vertex normalisation is computed identically on every rank from all images' features,
 * so the output is byte-identical for any number of ranks. The temporary folder is renamed
 * into place at the end (a subjNN folder that exists is complete) and removed on failure.
 * Left out: writing onto a filesystem that ranks do not share, test-split fMRI (the release
 * has none), and resuming a half-written run. */
#include <errno.h>
#include <dirent.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "dataset/synth_internal.h"
#include "rdml/config.h"
#include "rdml/mpiutil.h"
#include "rdml/npy.h"
#include "rdml/pymap.h"

#define NSD_IDS 73000
#define MAX_NAME_ROWS 9999 /* 4-digit row numbers in the image names, as in the release */
#define PATHLEN 4096

/* Per-subject factors of the release (subjects 1..8): training images 9841/9082/8779 and
 * test images 159/293/395; subjects 6 and 8 lost a few vertices to NaN removal. */
static const double img_factor[8] = {1, 1, 9082.0 / 9841, 8779.0 / 9841,
                                     1, 9082.0 / 9841, 1, 8779.0 / 9841};
static const double test_factor[8] = {1, 1, 293.0 / 159, 395.0 / 159, 1, 293.0 / 159, 1, 395.0 / 159};
static const double lh_factor[8] = {1, 1, 1, 1, 1, 18978.0 / 19004, 1, 18981.0 / 19004};
static const double rh_factor[8] = {1, 1, 1, 1, 1, 20220.0 / 20544, 1, 20530.0 / 20544};

void rdml_synth_defaults(rdml_synth_params *p) {
    memset(p, 0, sizeof *p);
    p->subjects = 2;
    p->images = 600;
    p->test_images = 20;
    p->image_size = 96;
    p->lh_vertices = 1500;
    p->rh_vertices = 1600;
    p->vary = 1;
    p->shared_fraction = 0.3;
    p->color_fraction = 0.25;
    p->noise = 1.0;
    p->fsaverage = 0;
    p->seed = 42;
}

/* ---- counts ---- */

static int64_t subject_images(const rdml_synth_params *p, int s) {
    if (!p->vary) return p->images;
    int64_t n = llround((double)p->images * img_factor[s - 1]);
    return n < 1 ? 1 : n;
}
static int64_t subject_tests(const rdml_synth_params *p, int s) {
    return p->vary ? llround((double)p->test_images * test_factor[s - 1]) : p->test_images;
}
static int64_t test_pool(const rdml_synth_params *p) {
    /* Sized for the largest possible subject so that adding subjects never moves ids. */
    return p->vary ? llround((double)p->test_images * (395.0 / 159)) : p->test_images;
}
static int64_t subject_vertices(const rdml_synth_params *p, int s, int hemi) {
    int64_t v = hemi ? p->rh_vertices : p->lh_vertices;
    double f = hemi ? rh_factor[s - 1] : lh_factor[s - 1];
    if (!p->vary || f >= 1) return v;
    int64_t n = llround((double)v * f);
    return n >= v ? v - 1 : n;
}
static int64_t shared_count(const rdml_synth_params *p) {
    return llround(p->shared_fraction * (double)p->images);
}
static int64_t ids_needed(const rdml_synth_params *p) {
    int64_t ns = shared_count(p), need = ns + test_pool(p);
    for (int s = 1; s <= p->subjects; s++) {
        int64_t n = subject_images(p, s);
        need += n - (ns < n ? ns : n);
    }
    return need;
}

int rdml_synth_check(rdml_ctx *ctx, const rdml_synth_params *p) {
    if (p->subjects < 1 || p->subjects > 8)
        return RDML_FAIL(ctx, RDML_ECONFIG,
                         "synth.subjects = %lld is out of range (allowed: 1 to 8, like subj01..subj08 "
                         "of the release)", (long long)p->subjects);
    if (p->images < 10 || p->images > MAX_NAME_ROWS)
        return RDML_FAIL(ctx, RDML_ECONFIG,
                         "synth.images = %lld is out of range (allowed: 10 to %d; image names carry "
                         "4-digit row numbers as in the release, whose largest subject has 9841)",
                         (long long)p->images, MAX_NAME_ROWS);
    if (p->test_images < 0 || subject_tests(p, 4) > MAX_NAME_ROWS)
        return RDML_FAIL(ctx, RDML_ECONFIG,
                         "synth.test_images = %lld is out of range (allowed: 0 to %d%s)",
                         (long long)p->test_images, p->vary ? 4025 : MAX_NAME_ROWS,
                         p->vary ? "; with synth.vary = true subjects 4 and 8 get 395/159 times "
                                   "as many, and names have 4-digit row numbers"
                                 : "");
    if (p->image_size < 16 || p->image_size > 4096)
        return RDML_FAIL(ctx, RDML_ECONFIG,
                         "synth.image_size = %lld is out of range (allowed: 16 to 4096 pixels; "
                         "the release uses 425)", (long long)p->image_size);
    const char *hn[2] = {"lh_vertices", "rh_vertices"};
    int64_t hv[2] = {p->lh_vertices, p->rh_vertices};
    for (int h = 0; h < 2; h++)
        if (hv[h] < 50 || hv[h] > 163842)
            return RDML_FAIL(ctx, RDML_ECONFIG,
                             "synth.%s = %lld is out of range (allowed: 50 to 163842, the size "
                             "of an fsaverage hemisphere; the release has %s)", hn[h],
                             (long long)hv[h], h ? "20544" : "19004");
    if (p->vary != 0 && p->vary != 1)
        return RDML_FAIL(ctx, RDML_ECONFIG, "synth.vary = %d must be 0 or 1", p->vary);
    if (p->fsaverage != 0 && p->fsaverage != 1)
        return RDML_FAIL(ctx, RDML_ECONFIG, "synth.fsaverage = %d must be 0 or 1", p->fsaverage);
    if (!(p->shared_fraction >= 0 && p->shared_fraction <= 1))
        return RDML_FAIL(ctx, RDML_ECONFIG,
                         "synth.shared_fraction = %g is out of range (allowed: 0 to 1, the share "
                         "of subject 1's images that every subject sees)", p->shared_fraction);
    if (!(p->color_fraction >= 0 && p->color_fraction <= 1))
        return RDML_FAIL(ctx, RDML_ECONFIG,
                         "synth.color_fraction = %g is out of range (allowed: 0 to 1, the share "
                         "of images dominated by pure red, green or blue)", p->color_fraction);
    if (!(p->noise >= 0 && p->noise <= 1000))
        return RDML_FAIL(ctx, RDML_ECONFIG,
                         "synth.noise = %g is out of range (allowed: 0 to 1000, the measurement "
                         "noise std relative to the signal std; 1 is the default)", p->noise);
    int64_t need = ids_needed(p);
    if (need > NSD_IDS)
        return RDML_FAIL(ctx, RDML_ECONFIG,
                         "synth: %lld subjects x %lld images with shared_fraction %g need %lld "
                         "distinct NSD ids, but NSD has %d (hint: raise synth.shared_fraction, or "
                         "lower synth.images or synth.subjects)",
                         (long long)p->subjects, (long long)p->images, p->shared_fraction,
                         (long long)need, NSD_IDS);
    return RDML_OK;
}

int rdml_synth_from_config(rdml_ctx *ctx, const struct rdml_config *cfg, rdml_synth_params *p) {
    rdml_synth_defaults(p);
    int64_t seed = 0;
    RDML_TRY(rdml_config_int(ctx, cfg, "synth", "subjects", &p->subjects));
    RDML_TRY(rdml_config_int(ctx, cfg, "synth", "images", &p->images));
    RDML_TRY(rdml_config_int(ctx, cfg, "synth", "test_images", &p->test_images));
    RDML_TRY(rdml_config_int(ctx, cfg, "synth", "image_size", &p->image_size));
    RDML_TRY(rdml_config_int(ctx, cfg, "synth", "lh_vertices", &p->lh_vertices));
    RDML_TRY(rdml_config_int(ctx, cfg, "synth", "rh_vertices", &p->rh_vertices));
    RDML_TRY(rdml_config_bool(ctx, cfg, "synth", "vary", &p->vary));
    RDML_TRY(rdml_config_real(ctx, cfg, "synth", "shared_fraction", &p->shared_fraction));
    RDML_TRY(rdml_config_real(ctx, cfg, "synth", "color_fraction", &p->color_fraction));
    RDML_TRY(rdml_config_real(ctx, cfg, "synth", "noise", &p->noise));
    RDML_TRY(rdml_config_bool(ctx, cfg, "synth", "fsaverage", &p->fsaverage));
    RDML_TRY(rdml_config_int(ctx, cfg, "run", "seed", &seed));
    p->seed = (uint64_t)seed;
    return RDML_OK;
}

/* ---- the plan ---- */

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

int syn_plan_make(rdml_ctx *ctx, const rdml_synth_params *p, syn_plan *plan) {
    memset(plan, 0, sizeof *plan);
    int64_t *perm = rdml_malloc(ctx, NSD_IDS * sizeof *perm, "NSD id permutation");
    if (!perm) return ctx->code;
    /* One permutation of all NSD ids: shared pool first, then the test pool, then each
     * subject's own ids in subject order. */
    for (int64_t i = 0; i < NSD_IDS; i++) perm[i] = i;
    rdml_rng r = rdml_rng_make(p->seed, rdml_rng_substream(RDML_STREAM_SYNTH_LAYOUT, 1), 0);
    rdml_rng_shuffle(&r, perm, NSD_IDS);
    int64_t ns = shared_count(p), pool = test_pool(p), next = ns + pool;
    plan->nsub = (int)p->subjects;
    plan->nshared = ns;
    for (int s = 1; s <= plan->nsub; s++) {
        syn_subject_plan *sp = &plan->sub[s - 1];
        sp->id = s;
        sp->n = subject_images(p, s);
        sp->ntest = subject_tests(p, s);
        sp->nv[0] = subject_vertices(p, s, 0);
        sp->nv[1] = subject_vertices(p, s, 1);
        sp->nsd = rdml_malloc(ctx, (size_t)sp->n * sizeof *sp->nsd, "subject NSD ids");
        sp->test_nsd = rdml_malloc(ctx, (size_t)(sp->ntest + 1) * sizeof *sp->test_nsd, "test NSD ids");
        if (!sp->nsd || !sp->test_nsd) {
            free(perm);
            syn_plan_free(plan);
            return ctx->code;
        }
        int64_t k = ns < sp->n ? ns : sp->n;
        memcpy(sp->nsd, perm, (size_t)k * sizeof *perm);
        memcpy(sp->nsd + k, perm + next, (size_t)(sp->n - k) * sizeof *perm);
        next += sp->n - k;
        memcpy(sp->test_nsd, perm + ns, (size_t)sp->ntest * sizeof *perm);
        /* Rows in ascending NSD id, as in the release (subject 1 starts at nsd-00013). */
        qsort(sp->nsd, (size_t)sp->n, sizeof *sp->nsd, cmp_i64);
        qsort(sp->test_nsd, (size_t)sp->ntest, sizeof *sp->test_nsd, cmp_i64);
    }
    free(perm);
    if (next > NSD_IDS)
        return RDML_FAIL(ctx, RDML_EINTERNAL, "synth plan used %lld NSD ids", (long long)next);
    return RDML_OK;
}

void syn_plan_free(syn_plan *plan) {
    for (int s = 0; s < 8; s++) {
        free(plan->sub[s].nsd);
        free(plan->sub[s].test_nsd);
    }
    memset(plan, 0, sizeof *plan);
}

/* ---- filesystem helpers (rank 0) ---- */

static int mkdir_one(rdml_ctx *ctx, const char *path) {
    if (mkdir(path, 0777) == 0 || errno == EEXIST) {
        struct stat st;
        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) return RDML_OK;
        return RDML_FAIL(ctx, RDML_EIO, "%s exists and is not a folder (hint: choose another "
                                        "output folder)", path);
    }
    return RDML_FAIL(ctx, RDML_EIO, "cannot create folder %s: %s (hint: check the path and "
                                    "permissions)", path, strerror(errno));
}

static int mkdir_p(rdml_ctx *ctx, const char *path) {
    char buf[PATHLEN];
    if (rdml_strlcpy(buf, path, sizeof buf) >= sizeof buf)
        return RDML_FAIL(ctx, RDML_EIO, "path too long: %.200s...", path);
    for (char *q = buf + 1; *q; q++)
        if (*q == '/') {
            *q = '\0';
            RDML_TRY(mkdir_one(ctx, buf));
            *q = '/';
        }
    return mkdir_one(ctx, buf);
}

static int exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

/* Remove the temporary tree this run created (best effort; symlinks are removed, never
 * followed). */
static void remove_tree(const char *path) {
    struct stat st;
    if (lstat(path, &st) != 0) return;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        if (d) {
            struct dirent *e;
            char sub[PATHLEN];
            while ((e = readdir(d)) != NULL) {
                if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
                int n = snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
                if (n > 0 && n < (int)sizeof sub) remove_tree(sub);
            }
            closedir(d);
        }
        rmdir(path);
    } else {
        unlink(path);
    }
}

static int pathf(rdml_ctx *ctx, char *buf, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int pathf(rdml_ctx *ctx, char *buf, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, PATHLEN, fmt, ap);
    va_end(ap);
    if (n < 0 || n >= PATHLEN)
        return RDML_FAIL(ctx, RDML_EIO, "path too long under %.200s (hint: use a shorter output "
                                        "folder)", buf);
    return RDML_OK;
}

enum { MODE_NEW = 0, MODE_IN_ROOT = 1 };

/* Check that nothing would be overwritten and create the temporary folder. */
static int prepare_root(rdml_ctx *ctx, const rdml_synth_params *p, const char *root, char *tmp,
                        int *mode) {
    struct stat st;
    if (stat(root, &st) == 0) {
        if (!S_ISDIR(st.st_mode))
            return RDML_FAIL(ctx, RDML_EIO, "%s exists and is not a folder (hint: choose a new "
                                            "output folder)", root);
        char path[PATHLEN];
        for (int s = 1; s <= p->subjects; s++) {
            RDML_TRY(pathf(ctx, path, "%s/subj%02d", root, s));
            if (exists(path))
                return RDML_FAIL(ctx, RDML_EIO,
                                 "%s already exists; synth never overwrites a dataset (hint: "
                                 "write to a new folder, e.g. %s-new, or delete %s first)",
                                 path, root, path);
            RDML_TRY(pathf(ctx, path, "%s/synth_truth/subj%02d_category.npy", root, s));
            if (exists(path))
                return RDML_FAIL(ctx, RDML_EIO,
                                 "%s already exists; synth never overwrites a dataset's ground "
                                 "truth (hint: write to a new folder, or delete it first)", path);
        }
        *mode = MODE_IN_ROOT;
        RDML_TRY(pathf(ctx, tmp, "%s/.synth-tmp-%ld", root, (long)getpid()));
    } else {
        if (errno == ENOTDIR)
            return RDML_FAIL(ctx, RDML_EIO, "cannot create %s: a parent on that path is a file, "
                                            "not a folder (hint: choose another output folder)",
                             root);
        if (errno != ENOENT)
            return RDML_FAIL(ctx, RDML_EIO, "cannot access %s: %s (hint: check the path and "
                                            "permissions)", root, strerror(errno));
        char parent[PATHLEN];
        rdml_strlcpy(parent, root, sizeof parent);
        char *slash = strrchr(parent, '/');
        if (slash && slash != parent) {
            *slash = '\0';
            RDML_TRY(mkdir_p(ctx, parent));
        }
        *mode = MODE_NEW;
        RDML_TRY(pathf(ctx, tmp, "%s.tmp-%ld", root, (long)getpid()));
    }
    char base[PATHLEN];
    rdml_strlcpy(base, tmp, sizeof base);
    for (int k = 1; mkdir(tmp, 0777) != 0; k++) {
        if (errno != EEXIST || k > 100)
            return RDML_FAIL(ctx, RDML_EIO, "cannot create the temporary folder %s: %s (hint: "
                                            "check permissions and free space)", tmp,
                             strerror(errno));
        RDML_TRY(pathf(ctx, tmp, "%s-%d", base, k));
    }
    return RDML_OK;
}

/* The resolved configuration that made the dataset, beside the ground truth. */
static int write_provenance(rdml_ctx *ctx, const rdml_synth_params *p, const char *dir) {
    if (!p->provenance) return RDML_OK;
    char path[PATHLEN];
    RDML_TRY(pathf(ctx, path, "%s/synth_truth/config.ini", dir));
    FILE *f = fopen(path, "w");
    if (!f) return RDML_FAIL(ctx, RDML_EIO, "cannot write %s: %s", path, strerror(errno));
    int bad = fputs(p->provenance, f) < 0;
    bad |= fclose(f) != 0;
    return bad ? RDML_FAIL(ctx, RDML_EIO, "cannot write %s (disk full?)", path) : RDML_OK;
}

static int finalize(rdml_ctx *ctx, const rdml_synth_params *p, const char *root, const char *tmp,
                    int mode) {
    if (mode == MODE_NEW) {
        RDML_TRY(write_provenance(ctx, p, tmp));
        if (rename(tmp, root) != 0)
            return RDML_FAIL(ctx, RDML_EIO, "cannot rename %s to %s: %s (did another program "
                                            "create %s meanwhile?)", tmp, root, strerror(errno), root);
        return RDML_OK;
    }
    char a[PATHLEN], b[PATHLEN];
    RDML_TRY(pathf(ctx, a, "%s/synth_truth", root));
    RDML_TRY(mkdir_one(ctx, a));
    RDML_TRY(write_provenance(ctx, p, root));
    static const char *const kinds[5] = {"category", "color", "test_category", "test_color",
                                         "features"};
    for (int s = 1; s <= p->subjects; s++)
        for (int k = 0; k < 5; k++) {
            RDML_TRY(pathf(ctx, a, "%s/synth_truth/subj%02d_%s.npy", tmp, s, kinds[k]));
            RDML_TRY(pathf(ctx, b, "%s/synth_truth/subj%02d_%s.npy", root, s, kinds[k]));
            if (rename(a, b) != 0)
                return RDML_FAIL(ctx, RDML_EIO, "cannot move %s to %s: %s", a, b, strerror(errno));
        }
    for (int s = 1; s <= p->subjects; s++) {
        RDML_TRY(pathf(ctx, a, "%s/subj%02d", tmp, s));
        RDML_TRY(pathf(ctx, b, "%s/subj%02d", root, s));
        if (rename(a, b) != 0)
            return RDML_FAIL(ctx, RDML_EIO, "cannot move %s to %s: %s", a, b, strerror(errno));
    }
    remove_tree(tmp);
    return RDML_OK;
}

/* ---- per subject, rank 0: folders, masks, mappings, empty fMRI files ---- */

static int write_static(rdml_ctx *ctx, const rdml_synth_params *p, const syn_subject_plan *sp,
                        const syn_hemi hemi[2], const char *sdir) {
    char path[PATHLEN];
    static const char *const sub[4] = {"training_split/training_fmri",
                                       "training_split/training_images", "test_split/test_images",
                                       "roi_masks"};
    for (int k = 0; k < 4; k++) {
        RDML_TRY(pathf(ctx, path, "%s/%s", sdir, sub[k]));
        RDML_TRY(mkdir_p(ctx, path));
    }
    static const char *const hn[2] = {"lh", "rh"};
    for (int h = 0; h < 2; h++) {
        int64_t shape[2] = {sp->n, sp->nv[h]};
        RDML_TRY(pathf(ctx, path, "%s/training_split/training_fmri/%s_training_fmri.npy", sdir, hn[h]));
        RDML_TRY(rdml_npy_create(ctx, path, RDML_DT_F4, 2, shape));
    }
    for (int c = 0; c < SYN_NCLASS; c++) {
        /* mapping_<class>.npy: {0: 'Unknown', 1: ..., } as numpy writes it. */
        int64_t keys[8];
        char *names[8];
        int n = syn_class_nroi(c) + 1;
        for (int k = 0; k < n; k++) {
            keys[k] = k;
            names[k] = (char *)syn_roi_name(c, k);
        }
        rdml_pymap m = {n, keys, names};
        RDML_TRY(pathf(ctx, path, "%s/roi_masks/mapping_%s.npy", sdir, syn_class_tag(c)));
        RDML_TRY(rdml_pymap_write(ctx, path, &m));
        for (int h = 0; h < 2; h++) {
            int64_t shape = hemi[h].nv;
            RDML_TRY(pathf(ctx, path, "%s/roi_masks/%s.%s_challenge_space.npy", sdir, hn[h],
                           syn_class_tag(c)));
            RDML_TRY(rdml_npy_save(ctx, path, RDML_DT_I8, 0, 1, &shape, hemi[h].label[c]));
        }
    }
    if (p->fsaverage) {
        int64_t *fs = rdml_calloc(ctx, SYN_FSAVERAGE, sizeof *fs, "fsaverage mask");
        if (!fs) return ctx->code;
        int64_t shape = SYN_FSAVERAGE;
        int rc = RDML_OK;
        for (int h = 0; h < 2 && !rc; h++) {
            for (int c = -1; c < SYN_NCLASS && !rc; c++) {
                memset(fs, 0, SYN_FSAVERAGE * sizeof *fs);
                for (int64_t j = 0; j < hemi[h].nv; j++)
                    fs[hemi[h].fsavg[j]] = c < 0 ? 1 : hemi[h].label[c][j];
                rc = pathf(ctx, path, "%s/roi_masks/%s.%s_fsaverage_space.npy", sdir, hn[h],
                           c < 0 ? "all-vertices" : syn_class_tag(c));
                if (!rc) rc = rdml_npy_save(ctx, path, RDML_DT_I8, 0, 1, &shape, fs);
            }
        }
        free(fs);
        RDML_TRY(rc);
    }
    return RDML_OK;
}

/* ---- per subject, collective ---- */

typedef struct progress_state {
    rdml_progress bar;
    int64_t done_before; /* images of earlier subjects */
} progress_state;

static int render_block(rdml_ctx *ctx, const rdml_synth_params *p, const syn_fbank *fb,
                        const int64_t *nsd, int64_t lo, int64_t hi, const char *dir,
                        const char *prefix, double *feat, int64_t *truth, double *work,
                        progress_state *ps, int64_t scale_num, int64_t scale_den) {
    char path[PATHLEN];
    for (int64_t i = lo; i < hi; i++) {
        rdml_image im;
        syn_scene sc;
        RDML_TRY(syn_render(ctx, p->seed, p->color_fraction, nsd[i], p->image_size, &im, &sc));
        int rc = pathf(ctx, path, "%s/%s-%04lld_nsd-%05lld.png", dir, prefix, (long long)(i + 1),
                       (long long)nsd[i]);
        if (!rc) rc = rdml_png_write(ctx, path, &im);
        if (!rc && feat) syn_features(fb, &im, &sc, work, feat + (i - lo) * SYN_NFEAT);
        rdml_image_free(&im);
        RDML_TRY(rc);
        truth[2 * (i - lo)] = sc.obj[0].category;
        truth[2 * (i - lo) + 1] = sc.color_class;
        /* Rank 0's share, scaled to an estimate of all ranks' progress. */
        rdml_progress_update(&ps->bar, ps->done_before + (i - lo + 1) * scale_num / scale_den);
    }
    return RDML_OK;
}

static int gather_i64(rdml_ctx *ctx, MPI_Comm comm, int64_t n, int64_t width, const int64_t *mine,
                      int64_t *all) {
    int rank, nr;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &nr);
    int *cnt = rdml_malloc(ctx, 2 * (size_t)nr * sizeof *cnt, "gather counts");
    if (!cnt) return ctx->code;
    for (int q = 0; q < nr; q++) {
        int64_t lo, hi;
        rdml_part_block(n, q, nr, &lo, &hi);
        cnt[q] = (int)((hi - lo) * width);
        cnt[nr + q] = (int)(lo * width);
    }
    int rc = rdml_mpi_check(ctx, MPI_Allgatherv(mine, cnt[rank], MPI_INT64_T, all, cnt, cnt + nr,
                                                MPI_INT64_T, comm), "MPI_Allgatherv");
    free(cnt);
    return rc;
}

/* In place: this rank's rows are already at their place in `all`. */
static int gather_f64(rdml_ctx *ctx, MPI_Comm comm, int64_t n, int64_t width, double *all) {
    int nr;
    MPI_Comm_size(comm, &nr);
    int *cnt = rdml_malloc(ctx, 2 * (size_t)nr * sizeof *cnt, "gather counts");
    if (!cnt) return ctx->code;
    for (int q = 0; q < nr; q++) {
        int64_t lo, hi;
        rdml_part_block(n, q, nr, &lo, &hi);
        cnt[q] = (int)((hi - lo) * width);
        cnt[nr + q] = (int)(lo * width);
    }
    int rc = rdml_mpi_check(ctx, MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, all, cnt,
                                                cnt + nr, MPI_DOUBLE, comm), "MPI_Allgatherv");
    free(cnt);
    return rc;
}

static int write_truth(rdml_ctx *ctx, const char *tmp, int s, const char *kind,
                       const int64_t *truth, int64_t n, int col) {
    char path[PATHLEN];
    int64_t *v = rdml_malloc(ctx, (size_t)(n + 1) * sizeof *v, "synthetic truth");
    if (!v) return ctx->code;
    for (int64_t i = 0; i < n; i++) v[i] = truth[2 * i + col];
    int rc = pathf(ctx, path, "%s/synth_truth/subj%02d_%s.npy", tmp, s, kind);
    if (!rc) rc = rdml_npy_save(ctx, path, RDML_DT_I8, 0, 1, &n, v);
    free(v);
    return rc;
}

/* The true standardised features z_k(i) of the training images (N x SYN_NFEAT float32,
 * docs/synth.md "Image features"), for encoding models of the generative features. */
static int write_features(rdml_ctx *ctx, const char *tmp, int s, const double *feat, int64_t n,
                          const syn_fstats *st) {
    char path[PATHLEN];
    float *z = rdml_malloc(ctx, (size_t)(n * SYN_NFEAT + 1) * sizeof *z, "synthetic features");
    if (!z) return ctx->code;
    for (int64_t i = 0; i < n; i++)
        for (int k = 0; k < SYN_NFEAT; k++)
            z[i * SYN_NFEAT + k] =
                st->sd[k] > 0 ? (float)((feat[i * SYN_NFEAT + k] - st->mean[k]) / st->sd[k]) : 0.0f;
    int64_t shape[2] = {n, SYN_NFEAT};
    int rc = pathf(ctx, path, "%s/synth_truth/subj%02d_features.npy", tmp, s);
    if (!rc) rc = rdml_npy_save(ctx, path, RDML_DT_F4, 0, 2, shape, z);
    free(z);
    return rc;
}

/* Each vertex's noise ceiling in percent, as NSD defines it (Allen et al. 2022): with
 * ncsnr = signal sd / trial-noise sd = 1 / sigma_v and A, B, C images of 3, 2, 1 repeats,
 * NC = 100 ncsnr^2 / (ncsnr^2 + (A/3 + B/2 + C/1) / (A + B + C)), which for this model is
 * exactly the share of the released responses' variance over the images that the signal
 * s_v(i) carries: 100 / (1 + sigma_v^2 mean_i(1 / R_i)) (docs/synth.md "Noise ceiling").
 * Written as <sdir>/training_split/training_fmri/{lh,rh}_noise_ceiling.npy, '<f4' (V_hemi). */
static int write_noise_ceiling(rdml_ctx *ctx, const rdml_synth_params *p, const syn_subject_plan *sp,
                               const syn_tuning tun[2], const char *sdir) {
    static const char *const hn[2] = {"lh", "rh"};
    double inv = 0;
    for (int64_t i = 0; i < sp->n; i++) inv += 1.0 / syn_repeats(p->seed, sp->id, sp->nsd[i]);
    inv /= (double)sp->n;
    int rc = RDML_OK;
    for (int h = 0; h < 2 && !rc; h++) {
        int64_t nv = tun[h].nv;
        float *nc = rdml_malloc(ctx, (size_t)(nv + 1) * sizeof *nc, "noise ceiling");
        if (!nc) return ctx->code;
        for (int64_t v = 0; v < nv; v++) {
            double sd = tun[h].noise_sd[v];
            nc[v] = (float)(100.0 / (1.0 + sd * sd * inv));
        }
        char path[PATHLEN];
        rc = pathf(ctx, path, "%s/training_split/training_fmri/%s_noise_ceiling.npy", sdir, hn[h]);
        if (!rc) rc = rdml_npy_save(ctx, path, RDML_DT_F4, 0, 1, &nv, nc);
        free(nc);
    }
    return rc;
}

#define FMRI_BLOCK 32

static int write_subject(rdml_ctx *ctx, MPI_Comm comm, const rdml_synth_params *p,
                         const syn_subject_plan *sp, const char *tmp, const syn_fbank *fb,
                         progress_state *ps) {
    int rank, nr;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &nr);
    int s = sp->id;
    char sdir[PATHLEN], dir[PATHLEN], path[PATHLEN];
    syn_hemi hemi[2];
    syn_tuning tun[2];
    syn_fstats st;
    rdml_npy f[2];
    memset(hemi, 0, sizeof hemi);
    memset(tun, 0, sizeof tun);
    memset(&st, 0, sizeof st);
    memset(f, 0, sizeof f);
    f[0].fd = f[1].fd = -1;
    double *feat_all = NULL, *work = NULL;
    int64_t *truth_all = NULL, *ttruth_all = NULL, *truth_mine = NULL, *ttruth_mine = NULL;
    float *rows = NULL;
    static const char *const hn[2] = {"lh", "rh"};
    int64_t lo, hi, tlo, thi;
    rdml_part_block(sp->n, rank, nr, &lo, &hi);
    rdml_part_block(sp->ntest, rank, nr, &tlo, &thi);

    /* Phase 1: layout (every rank), folders, masks and empty fMRI files (rank 0). */
    int rc = pathf(ctx, sdir, "%s/subj%02d", tmp, s);
    for (int h = 0; h < 2 && !rc; h++)
        rc = syn_hemi_make(ctx, p->seed, s, h, sp->nv[h], &hemi[h]);
    for (int h = 0; h < 2 && !rc; h++)
        rc = syn_tuning_make(ctx, p->seed, s, h, &hemi[h], p->noise, &tun[h]);
    if (!rc && rank == 0) rc = write_static(ctx, p, sp, hemi, sdir);
    rc = rdml_agree(ctx, comm, rc);
    if (rc) goto out;

    /* Phase 2: render my images, write their PNGs, keep the training images' features. */
    feat_all = rdml_malloc(ctx, (size_t)(sp->n * SYN_NFEAT) * sizeof *feat_all, "image features");
    truth_all = rdml_malloc(ctx, (size_t)(2 * sp->n) * sizeof *truth_all, "image truth");
    ttruth_all = rdml_malloc(ctx, (size_t)(2 * sp->ntest + 2) * sizeof *ttruth_all, "image truth");
    truth_mine = rdml_malloc(ctx, (size_t)(2 * (hi - lo) + 2) * sizeof *truth_mine, "image truth");
    ttruth_mine = rdml_malloc(ctx, (size_t)(2 * (thi - tlo) + 2) * sizeof *ttruth_mine, "image truth");
    work = rdml_malloc(ctx, (size_t)(2 * fb->D * fb->D) * sizeof *work, "feature work space");
    if (!feat_all || !truth_all || !ttruth_all || !truth_mine || !ttruth_mine || !work) rc = ctx->code;
    int64_t total = sp->n + sp->ntest, mine = (hi - lo) + (thi - tlo);
    if (mine == 0) mine = 1;
    if (!rc) rc = pathf(ctx, dir, "%s/training_split/training_images", sdir);
    if (!rc)
        rc = render_block(ctx, p, fb, sp->nsd, lo, hi, dir, "train", feat_all + lo * SYN_NFEAT,
                          truth_mine, work, ps, total, mine);
    if (!rc) rc = pathf(ctx, dir, "%s/test_split/test_images", sdir);
    int64_t saved = ps->done_before;
    ps->done_before += (hi - lo) * total / mine;
    if (!rc)
        rc = render_block(ctx, p, fb, sp->test_nsd, tlo, thi, dir, "test", NULL, ttruth_mine,
                          work, ps, total, mine);
    ps->done_before = saved + total;
    rc = rdml_agree(ctx, comm, rc);
    if (rc) goto out;

    /* Phase 3: every rank gets all features (fixed global order) and derives the same
     * standardisation; then computes and writes its fMRI rows. */
    rc = gather_f64(ctx, comm, sp->n, SYN_NFEAT, feat_all);
    if (!rc) rc = gather_i64(ctx, comm, sp->n, 2, truth_mine, truth_all);
    if (!rc) rc = gather_i64(ctx, comm, sp->ntest, 2, ttruth_mine, ttruth_all);
    if (!rc) rc = syn_fstats_make(ctx, feat_all, sp->n, &st);
    if (!rc) {
        syn_tuning_scale(&tun[0], &st);
        syn_tuning_scale(&tun[1], &st);
    }
    int64_t vmax = sp->nv[0] > sp->nv[1] ? sp->nv[0] : sp->nv[1];
    if (!rc) {
        rows = rdml_malloc(ctx, (size_t)(FMRI_BLOCK * vmax) * sizeof *rows, "fMRI rows");
        if (!rows) rc = ctx->code;
    }
    for (int h = 0; h < 2 && !rc; h++) {
        rc = pathf(ctx, path, "%s/training_split/training_fmri/%s_training_fmri.npy", sdir, hn[h]);
        if (!rc) rc = rdml_npy_open(ctx, path, 1, &f[h]);
    }
    for (int64_t b = lo; b < hi && !rc; b += FMRI_BLOCK) {
        int64_t e = b + FMRI_BLOCK < hi ? b + FMRI_BLOCK : hi;
        for (int h = 0; h < 2 && !rc; h++) {
            syn_fmri_rows(p->seed, s, h, &tun[h], &st, feat_all + b * SYN_NFEAT, sp->nsd + b,
                          e - b, rows);
            rc = rdml_npy_write_rows(ctx, &f[h], b, e, rows);
        }
    }
    rc = rdml_agree(ctx, comm, rc);
    if (rc) goto out;

    /* Phase 4: ground truth (rank 0). */
    if (rank == 0) {
        rc = pathf(ctx, path, "%s/synth_truth", tmp);
        if (!rc) rc = mkdir_one(ctx, path);
        if (!rc) rc = write_truth(ctx, tmp, s, "category", truth_all, sp->n, 0);
        if (!rc) rc = write_truth(ctx, tmp, s, "color", truth_all, sp->n, 1);
        if (!rc) rc = write_truth(ctx, tmp, s, "test_category", ttruth_all, sp->ntest, 0);
        if (!rc) rc = write_truth(ctx, tmp, s, "test_color", ttruth_all, sp->ntest, 1);
        if (!rc) rc = write_features(ctx, tmp, s, feat_all, sp->n, &st);
        if (!rc) rc = write_noise_ceiling(ctx, p, sp, tun, sdir);
    }
    rc = rdml_agree(ctx, comm, rc);
    if (!rc)
        rdml_debug(ctx, "synth: subj%02d: %lld training + %lld test images, %lld + %lld vertices",
                   s, (long long)sp->n, (long long)sp->ntest, (long long)sp->nv[0],
                   (long long)sp->nv[1]);
out:
    rdml_npy_close(&f[0]);
    rdml_npy_close(&f[1]);
    for (int h = 0; h < 2; h++) {
        syn_hemi_free(&hemi[h]);
        syn_tuning_free(&tun[h]);
    }
    syn_fstats_free(&st);
    free(feat_all);
    free(truth_all);
    free(ttruth_all);
    free(truth_mine);
    free(ttruth_mine);
    free(work);
    free(rows);
    return rc;
}

int rdml_synth_write(rdml_ctx *ctx, MPI_Comm comm, const rdml_synth_params *p, const char *root_in) {
    int rank, nr;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &nr);
    char root[PATHLEN];
    int rc = rdml_synth_check(ctx, p);
    if (!rc && (!root_in || !root_in[0]))
        rc = RDML_FAIL(ctx, RDML_EUSAGE, "synth: no output folder given");
    if (!rc && rdml_strlcpy(root, root_in, sizeof root) >= sizeof root - 64)
        rc = RDML_FAIL(ctx, RDML_EIO, "output folder path too long: %.200s...", root_in);
    if (!rc) {
        size_t L = strlen(root);
        while (L > 1 && root[L - 1] == '/') root[--L] = '\0';
    }
    rc = rdml_agree(ctx, comm, rc);
    if (rc) return rc;

    syn_plan plan;
    syn_fbank fb;
    memset(&fb, 0, sizeof fb);
    rc = syn_plan_make(ctx, p, &plan);
    if (!rc) rc = syn_fbank_make(ctx, p->image_size, &fb);
    rc = rdml_agree(ctx, comm, rc);
    if (rc) {
        syn_plan_free(&plan);
        syn_fbank_free(&fb);
        return rc;
    }

    /* Rank 0 checks for existing output and creates the temporary folder; all learn its name. */
    struct {
        int mode;
        char tmp[PATHLEN];
    } where;
    memset(&where, 0, sizeof where);
    if (rank == 0) rc = prepare_root(ctx, p, root, where.tmp, &where.mode);
    rc = rdml_agree(ctx, comm, rc);
    if (!rc)
        rc = rdml_mpi_check(ctx, MPI_Bcast(&where, (int)sizeof where, MPI_BYTE, 0, comm), "MPI_Bcast");
    if (rc) {
        syn_plan_free(&plan);
        syn_fbank_free(&fb);
        return rc;
    }

    progress_state ps;
    int64_t total = 0;
    for (int s = 0; s < plan.nsub; s++) total += plan.sub[s].n + plan.sub[s].ntest;
    rdml_progress_begin(&ps.bar, ctx, "synth: images", total);
    ps.done_before = 0;
    for (int s = 0; s < plan.nsub && !rc; s++)
        rc = write_subject(ctx, comm, p, &plan.sub[s], where.tmp, &fb, &ps);
    if (!rc) rdml_progress_end(&ps.bar);

    if (!rc && rank == 0) rc = finalize(ctx, p, root, where.tmp, where.mode);
    rc = rdml_agree(ctx, comm, rc);
    if (rc) {
        /* Every rank has stopped writing: drop the temporary folder. Subject folders already
         * moved into an existing ROOT by finalize are complete and stay. */
        if (rank == 0) remove_tree(where.tmp);
        rdml_ctx_prefix(ctx, "synth into %s (temporary folder %s removed)", root, where.tmp);
    }
    syn_plan_free(&plan);
    syn_fbank_free(&fb);
    return rc;
}
