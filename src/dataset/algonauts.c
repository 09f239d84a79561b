/* The Algonauts 2023 (NSD) folder layout: listing subjNN folders, opening a subject (training
 * image list with NSD ids, test-image count, lh/rh fMRI headers, the six ROI classes'
 * mappings and challenge-space masks with per-ROI vertex counts) and `rdmlearn info`'s
 * description. Every check a user's folder can fail (missing files, image numbers with gaps,
 * image count vs fMRI rows, mask length vs vertex count, labels without a name) is an error
 * naming the file. A class whose mapping and both masks are all missing is treated as absent
 * (it lists no ROIs and selecting it is an error naming the missing mapping file); a class with
 * only some of its three files is an error. fMRI values are never read here (select.c reads
 * blocks); the fsaverage-space masks and the test images' pixels are ignored. Not collective:
 * every rank opens the small metadata itself. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dataset/algonauts_priv.h"
#include "rdml/pymap.h"

static const char *const class_names[RDML_NROICLASS] = {"Visual", "Bodies", "Faces",
                                                        "Places", "Words",  "Streams"};
static const char *const class_tags[RDML_NROICLASS] = {
    "prf-visualrois", "floc-bodies", "floc-faces", "floc-places", "floc-words", "streams"};
static const char *const hemi_names[2] = {"lh", "rh"};

const char *rdml_roi_class_name(int cls) {
    return cls >= 0 && cls < RDML_NROICLASS ? class_names[cls] : "?";
}

const char *rdml_roi_class_tag(int cls) {
    return cls >= 0 && cls < RDML_NROICLASS ? class_tags[cls] : "?";
}

static int eq_nocase(const char *a, const char *b) {
    for (; *a && *b; a++, b++)
        if (tolower((unsigned char)*a) != tolower((unsigned char)*b)) return 0;
    return *a == *b;
}

int rdml_roi_class_find(const char *name) {
    for (int c = 0; c < RDML_NROICLASS; c++)
        if (eq_nocase(name, class_names[c]) || eq_nocase(name, class_tags[c])) return c;
    return -1;
}

char *rdml_ds_join(rdml_ctx *ctx, const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    char *p = rdml_malloc(ctx, la + lb + 2, "path");
    if (!p) return NULL;
    memcpy(p, a, la);
    p[la] = '/';
    memcpy(p + la + 1, b, lb + 1);
    return p;
}

static int is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

/* "subjNN" with exactly two digits, NN >= 1 -> NN; otherwise 0. */
static int subject_folder_id(const char *name) {
    if (strncmp(name, "subj", 4) != 0) return 0;
    if (!isdigit((unsigned char)name[4]) || !isdigit((unsigned char)name[5]) || name[6])
        return 0;
    return (name[4] - '0') * 10 + (name[5] - '0');
}

static int cmp_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* ---------------------------------------------------------------- dataset */

/* Why a folder without subjNN folders might still be close to right: a hint for the message. */
static void root_hint(const char *root, char *hint, size_t size) {
    hint[0] = '\0';
    char buf[4096];
    snprintf(buf, sizeof buf, "%s/training_split", root);
    if (is_dir(buf)) {
        snprintf(hint, size, " (hint: '%s' looks like one subject's folder; point the root at "
                             "the folder that contains it)", root);
        return;
    }
    DIR *d = opendir(root);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        snprintf(buf, sizeof buf, "%s/%s/subj01", root, e->d_name);
        if (is_dir(buf)) {
            snprintf(hint, size, " (hint: '%s/%s' has subject folders; use it as the root)",
                     root, e->d_name);
            break;
        }
    }
    closedir(d);
}

int rdml_dataset_open(rdml_ctx *ctx, const char *root, rdml_dataset **out) {
    *out = NULL;
    if (!root || !*root)
        return RDML_FAIL(ctx, RDML_ECONFIG, "no dataset root given (hint: set data.root to the "
                                            "Algonauts 2023 folder holding subj01, subj02, ...)");
    struct stat st;
    if (stat(root, &st) != 0)
        return RDML_FAIL(ctx, RDML_EIO, "dataset root '%s' does not exist (%s); expected "
                         "%s/subj01/training_split/training_fmri/lh_training_fmri.npy",
                         root, strerror(errno), root);
    if (!S_ISDIR(st.st_mode))
        return RDML_FAIL(ctx, RDML_EIO, "dataset root '%s' is not a directory; expected the "
                         "folder holding subj01, subj02, ...", root);
    DIR *d = opendir(root);
    if (!d) return RDML_FAIL(ctx, RDML_EIO, "cannot list dataset root '%s': %s", root, strerror(errno));

    rdml_dataset *ds = rdml_calloc(ctx, 1, sizeof *ds, "dataset");
    int cap = 0, rc = RDML_OK;
    if (!ds) rc = ctx->code;
    struct dirent *e;
    while (rc == RDML_OK && (e = readdir(d)) != NULL) {
        int id = subject_folder_id(e->d_name);
        if (id <= 0) continue;
        char *p = rdml_ds_join(ctx, root, e->d_name);
        if (!p) { rc = ctx->code; break; }
        int ok = is_dir(p);
        free(p);
        if (!ok) continue;
        if (ds->n == cap) {
            cap = cap ? 2 * cap : 8;
            int *ids = rdml_realloc(ctx, ds->ids, (size_t)cap * sizeof *ids, "subject list");
            if (!ids) { rc = ctx->code; break; }
            ds->ids = ids;
        }
        ds->ids[ds->n++] = id;
    }
    closedir(d);
    if (rc == RDML_OK && ds->n == 0) {
        char hint[1024];
        root_hint(root, hint, sizeof hint);
        rc = RDML_FAIL(ctx, RDML_EDATA, "no subject folders (subj01, subj02, ...) in dataset "
                       "root '%s'; expected e.g. "
                       "%s/subj01/training_split/training_fmri/lh_training_fmri.npy%s",
                       root, root, hint);
    }
    if (rc == RDML_OK) {
        qsort(ds->ids, (size_t)ds->n, sizeof *ds->ids, cmp_int);
        ds->root = rdml_strdup(ctx, root);
        if (!ds->root) rc = ctx->code;
        else {
            size_t l = strlen(ds->root);
            while (l > 1 && ds->root[l - 1] == '/') ds->root[--l] = '\0';
        }
    }
    if (rc != RDML_OK) {
        rdml_dataset_close(&ds);
        return rc;
    }
    *out = ds;
    return RDML_OK;
}

void rdml_dataset_close(rdml_dataset **ds) {
    if (!ds || !*ds) return;
    free((*ds)->root);
    free((*ds)->ids);
    free(*ds);
    *ds = NULL;
}

int rdml_dataset_nsubjects(const rdml_dataset *ds) { return ds ? ds->n : 0; }

int rdml_dataset_subject_id(const rdml_dataset *ds, int i) {
    return ds && i >= 0 && i < ds->n ? ds->ids[i] : -1;
}

const char *rdml_dataset_root(const rdml_dataset *ds) { return ds ? ds->root : NULL; }

/* ---------------------------------------------------------------- images */

typedef struct img_entry {
    int64_t num, nsd;
    char *name;
} img_entry;

static int cmp_img(const void *a, const void *b) {
    const img_entry *x = a, *y = b;
    if (x->num != y->num) return (x->num > y->num) - (x->num < y->num);
    return strcmp(x->name, y->name);
}

/* Parse a decimal run at *p (at least one digit, at most 12); advances p. */
static int parse_digits(const char **p, int64_t *v) {
    const char *s = *p;
    int64_t x = 0;
    int nd = 0;
    while (isdigit((unsigned char)*s) && nd < 12) x = x * 10 + (*s++ - '0'), nd++;
    if (nd == 0 || isdigit((unsigned char)*s)) return 0;
    *v = x;
    *p = s;
    return 1;
}

/* "<prefix>-NNNN_nsd-IIIII.png" -> NNNN, IIIII; 0 when the name does not match. */
static int parse_image_name(const char *name, const char *prefix, int64_t *num, int64_t *nsd) {
    size_t lp = strlen(prefix);
    if (strncmp(name, prefix, lp) != 0 || name[lp] != '-') return 0;
    const char *p = name + lp + 1;
    if (!parse_digits(&p, num)) return 0;
    if (strncmp(p, "_nsd-", 5) != 0) return 0;
    p += 5;
    if (!parse_digits(&p, nsd)) return 0;
    return strcmp(p, ".png") == 0;
}

static int ends_with(const char *s, const char *suffix) {
    size_t ls = strlen(s), lx = strlen(suffix);
    return ls >= lx && strcmp(s + ls - lx, suffix) == 0;
}

static int list_train_images(rdml_ctx *ctx, rdml_subject *s) {
    char *dir = rdml_ds_join(ctx, s->dir, "training_split/training_images");
    if (!dir) return ctx->code;
    DIR *d = opendir(dir);
    if (!d) {
        int rc = RDML_FAIL(ctx, RDML_EIO, "cannot list training images in '%s': %s (expected "
                           "%s/train-0001_nsd-IIIII.png, ...)", dir, strerror(errno), dir);
        free(dir);
        return rc;
    }
    img_entry *v = NULL;
    int64_t n = 0, cap = 0;
    int rc = RDML_OK;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || !ends_with(e->d_name, ".png")) continue;
        int64_t num, nsd;
        if (!parse_image_name(e->d_name, "train", &num, &nsd)) {
            rc = RDML_FAIL(ctx, RDML_EFORMAT, "training image '%s/%s' is not named "
                           "train-NNNN_nsd-IIIII.png (NNNN = fMRI row + 1, IIIII = NSD id)",
                           dir, e->d_name);
            break;
        }
        if (n == cap) {
            cap = cap ? 2 * cap : 1024;
            img_entry *nv = rdml_realloc(ctx, v, (size_t)cap * sizeof *v, "image list");
            if (!nv) { rc = ctx->code; break; }
            v = nv;
        }
        v[n].num = num;
        v[n].nsd = nsd;
        v[n].name = rdml_strdup(ctx, e->d_name);
        if (!v[n].name) { rc = ctx->code; break; }
        n++;
    }
    closedir(d);
    if (rc == RDML_OK && n == 0)
        rc = RDML_FAIL(ctx, RDML_EDATA, "no training images (train-NNNN_nsd-IIIII.png) in '%s'", dir);
    if (rc == RDML_OK) {
        qsort(v, (size_t)n, sizeof *v, cmp_img);
        for (int64_t i = 0; i < n; i++) {
            if (v[i].num == i + 1) continue;
            if (v[i].num == i)
                rc = RDML_FAIL(ctx, RDML_EDATA, "training images '%s' and '%s' in '%s' have the "
                               "same row number %lld", v[i - 1].name, v[i].name, dir,
                               (long long)v[i].num);
            else
                rc = RDML_FAIL(ctx, RDML_EDATA, "training image number %lld is missing in '%s' "
                               "(found %s%s%s; numbers must run 1..N without gaps, one per "
                               "fMRI row)", (long long)(i + 1), dir, i ? v[i - 1].name : "",
                               i ? " then " : "", v[i].name);
            break;
        }
    }
    if (rc == RDML_OK) {
        s->img = rdml_calloc(ctx, (size_t)n, sizeof *s->img, "image paths");
        s->nsd = rdml_calloc(ctx, (size_t)n, sizeof *s->nsd, "NSD ids");
        if (!s->img || !s->nsd) rc = ctx->code;
        for (int64_t i = 0; rc == RDML_OK && i < n; i++) {
            s->img[i] = rdml_ds_join(ctx, dir, v[i].name);
            if (!s->img[i]) rc = ctx->code;
            s->nsd[i] = v[i].nsd;
        }
        s->nimg = n;
    }
    for (int64_t i = 0; i < n; i++) free(v[i].name);
    free(v);
    free(dir);
    return rc;
}

static int count_test_images(rdml_ctx *ctx, rdml_subject *s) {
    char *dir = rdml_ds_join(ctx, s->dir, "test_split/test_images");
    if (!dir) return ctx->code;
    DIR *d = opendir(dir);
    s->ntest = 0;
    if (d) {
        struct dirent *e;
        int64_t num, nsd;
        while ((e = readdir(d)) != NULL)
            if (parse_image_name(e->d_name, "test", &num, &nsd)) s->ntest++;
        closedir(d);
    }
    free(dir);
    return RDML_OK;
}

/* ---------------------------------------------------------------- fMRI headers */

static int open_fmri(rdml_ctx *ctx, rdml_subject *s) {
    for (int h = 0; h < 2; h++) {
        char rel[128];
        snprintf(rel, sizeof rel, "training_split/training_fmri/%s_training_fmri.npy", hemi_names[h]);
        char *p = rdml_ds_join(ctx, s->dir, rel);
        if (!p) return ctx->code;
        int rc = rdml_npy_open(ctx, p, 0, &s->fmri[h]);
        if (rc == RDML_OK) {
            const rdml_npy *f = &s->fmri[h];
            if (f->ndim != 2)
                rc = RDML_FAIL(ctx, RDML_EFORMAT, "'%s' has %d dimensions; expected 2 "
                               "(images x vertices)", p, f->ndim);
            else if (f->dtype != RDML_DT_F4 && f->dtype != RDML_DT_F8)
                rc = RDML_FAIL(ctx, RDML_EFORMAT, "'%s' holds %s values; expected float32 "
                               "('<f4') or float64", p, rdml_dtype_name(f->dtype));
            else if (f->shape[0] != s->nimg)
                rc = RDML_FAIL(ctx, RDML_EDATA, "'%s' has %lld rows but %s/training_split/"
                               "training_images has %lld images (train-0001 .. train-%04lld); "
                               "each image is one fMRI row", p, (long long)f->shape[0],
                               s->dir, (long long)s->nimg, (long long)s->nimg);
            else if (f->shape[1] < 1)
                rc = RDML_FAIL(ctx, RDML_EDATA, "'%s' has no vertex columns", p);
        }
        free(p);
        if (rc != RDML_OK) return rc;
        s->nv[h] = s->fmri[h].shape[1];
    }
    return RDML_OK;
}

/* ---------------------------------------------------------------- ROI classes */

static void roiclass_free(rdml_roiclass *c) {
    for (int r = 0; r < c->nroi; r++) free(c->names[r]);
    free(c->names);
    free(c->codes);
    for (int h = 0; h < 2; h++) {
        free(c->nvert[h]);
        free(c->labels[h]);
    }
    memset(c, 0, sizeof *c);
}

static int load_mapping(rdml_ctx *ctx, const char *path, rdml_roiclass *c) {
    rdml_pymap m;
    memset(&m, 0, sizeof m);
    RDML_TRY(rdml_pymap_read(ctx, path, &m));
    int rc = RDML_OK;
    int64_t n = 0;
    for (int64_t i = 0; i < m.n; i++)
        if (m.keys[i] != 0) n++; /* 0 = "Unknown", not an ROI */
    c->codes = rdml_calloc(ctx, (size_t)n, sizeof *c->codes, "ROI codes");
    c->names = rdml_calloc(ctx, (size_t)n, sizeof *c->names, "ROI names");
    for (int h = 0; h < 2; h++) c->nvert[h] = rdml_calloc(ctx, (size_t)n, sizeof(int64_t), "ROI sizes");
    if (!c->codes || !c->names || !c->nvert[0] || !c->nvert[1]) rc = ctx->code;
    for (int64_t i = 0; rc == RDML_OK && i < m.n; i++) {
        if (m.keys[i] == 0) continue;
        if (m.keys[i] < 0) {
            rc = RDML_FAIL(ctx, RDML_EFORMAT, "'%s' maps the negative code %lld to '%s'; ROI "
                           "codes are positive (0 = Unknown)", path, (long long)m.keys[i], m.names[i]);
            break;
        }
        /* insertion sort by code: mappings are tiny */
        int r = c->nroi;
        while (r > 0 && c->codes[r - 1] > m.keys[i]) {
            c->codes[r] = c->codes[r - 1];
            c->names[r] = c->names[r - 1];
            r--;
        }
        c->codes[r] = m.keys[i];
        c->names[r] = rdml_strdup(ctx, m.names[i]);
        c->nroi++;
        if (!c->names[r]) rc = ctx->code;
    }
    rdml_pymap_free(&m);
    return rc;
}

static int load_mask(rdml_ctx *ctx, const rdml_subject *s, int h, const char *path,
                     const char *mapping_path, rdml_roiclass *c) {
    rdml_npy f;
    memset(&f, 0, sizeof f);
    f.fd = -1;
    RDML_TRY(rdml_npy_open(ctx, path, 0, &f));
    int rc = RDML_OK;
    if (f.dtype == RDML_DT_OBJ || f.dtype == RDML_DT_B1)
        rc = RDML_FAIL(ctx, RDML_EFORMAT, "'%s' holds %s values; expected integer ROI codes "
                       "('<i8', '<i4' or integral '<f8')", path, rdml_dtype_name(f.dtype));
    else if (f.ndim != 1)
        rc = RDML_FAIL(ctx, RDML_EFORMAT, "'%s' has %d dimensions; expected 1 (one ROI code per "
                       "challenge-space vertex)", path, f.ndim);
    else if (f.shape[0] != s->nv[h])
        rc = RDML_FAIL(ctx, RDML_EDATA, "'%s' has %lld entries but %s/training_split/"
                       "training_fmri/%s_training_fmri.npy has %lld vertex columns (hint: mask "
                       "and fMRI must come from the same subject)", path, (long long)f.shape[0],
                       s->dir, hemi_names[h], (long long)s->nv[h]);
    if (rc == RDML_OK) {
        c->labels[h] = rdml_malloc(ctx, (size_t)(s->nv[h] ? s->nv[h] : 1) * sizeof(int64_t), "ROI mask");
        if (!c->labels[h]) rc = ctx->code;
    }
    if (rc == RDML_OK) rc = rdml_npy_read_i64(ctx, &f, 0, s->nv[h], NULL, 1, c->labels[h]);
    rdml_npy_close(&f);
    if (rc != RDML_OK) return rc;
    for (int64_t j = 0; j < s->nv[h]; j++) {
        int64_t code = c->labels[h][j];
        if (code == 0) continue;
        int r = 0;
        while (r < c->nroi && c->codes[r] != code) r++;
        if (r == c->nroi)
            return RDML_FAIL(ctx, RDML_EFORMAT, "'%s' labels vertex %lld with code %lld, which "
                             "'%s' does not name", path, (long long)j, (long long)code, mapping_path);
        c->nvert[h][r]++;
    }
    return RDML_OK;
}

static int load_class(rdml_ctx *ctx, rdml_subject *s, int cls) {
    rdml_roiclass *c = &s->cls[cls];
    char rel[160];
    char *paths[3] = {NULL, NULL, NULL}; /* mapping, lh mask, rh mask */
    snprintf(rel, sizeof rel, "roi_masks/mapping_%s.npy", class_tags[cls]);
    paths[0] = rdml_ds_join(ctx, s->dir, rel);
    for (int h = 0; h < 2; h++) {
        snprintf(rel, sizeof rel, "roi_masks/%s.%s_challenge_space.npy", hemi_names[h], class_tags[cls]);
        paths[1 + h] = rdml_ds_join(ctx, s->dir, rel);
    }
    int rc = RDML_OK;
    if (!paths[0] || !paths[1] || !paths[2]) rc = ctx->code;
    int have = 0, first_missing = -1;
    for (int k = 0; rc == RDML_OK && k < 3; k++) {
        if (exists(paths[k])) have++;
        else if (first_missing < 0) first_missing = k;
    }
    if (rc == RDML_OK && have == 0) {
        c->present = 0; /* absent class: fine until someone selects it */
    } else if (rc == RDML_OK && have < 3) {
        rc = RDML_FAIL(ctx, RDML_EIO, "ROI class %s of subj%02d is incomplete: '%s' is missing "
                       "(a class needs mapping_%s.npy, lh.%s_challenge_space.npy and "
                       "rh.%s_challenge_space.npy)", class_names[cls], s->id, paths[first_missing],
                       class_tags[cls], class_tags[cls], class_tags[cls]);
    } else if (rc == RDML_OK) {
        rc = load_mapping(ctx, paths[0], c);
        for (int h = 0; rc == RDML_OK && h < 2; h++)
            rc = load_mask(ctx, s, h, paths[1 + h], paths[0], c);
        c->present = rc == RDML_OK;
    }
    for (int k = 0; k < 3; k++) free(paths[k]);
    return rc;
}

/* ---------------------------------------------------------------- subject */

int rdml_subject_open(rdml_ctx *ctx, const rdml_dataset *ds, int id, rdml_subject **out) {
    *out = NULL;
    int found = 0;
    for (int i = 0; i < ds->n; i++) found |= ds->ids[i] == id;
    if (!found) {
        char list[1024] = "";
        size_t len = 0;
        for (int i = 0; i < ds->n && len < sizeof list - 16; i++)
            len += (size_t)snprintf(list + len, sizeof list - len, "%s%d", i ? ", " : "", ds->ids[i]);
        return RDML_FAIL(ctx, RDML_EDATA, "subject %d not found in %s (no folder subj%02d); "
                         "available: %s", id, ds->root, id < 0 || id > 99 ? 0 : id, list);
    }
    rdml_subject *s = rdml_calloc(ctx, 1, sizeof *s, "subject");
    if (!s) return ctx->code;
    s->id = id;
    s->fmri[0].fd = s->fmri[1].fd = -1;
    char name[16];
    snprintf(name, sizeof name, "subj%02d", id);
    int rc = RDML_OK;
    s->dir = rdml_ds_join(ctx, ds->root, name);
    if (!s->dir) rc = ctx->code;
    if (rc == RDML_OK) rc = list_train_images(ctx, s);
    if (rc == RDML_OK) rc = count_test_images(ctx, s);
    if (rc == RDML_OK) rc = open_fmri(ctx, s);
    for (int c = 0; rc == RDML_OK && c < RDML_NROICLASS; c++) rc = load_class(ctx, s, c);
    if (rc != RDML_OK) {
        rdml_subject_close(&s);
        return rc;
    }
    *out = s;
    return RDML_OK;
}

void rdml_subject_close(rdml_subject **sp) {
    if (!sp || !*sp) return;
    rdml_subject *s = *sp;
    for (int64_t i = 0; s->img && i < s->nimg; i++) free(s->img[i]);
    free(s->img);
    free(s->nsd);
    for (int h = 0; h < 2; h++) rdml_npy_close(&s->fmri[h]);
    for (int c = 0; c < RDML_NROICLASS; c++) roiclass_free(&s->cls[c]);
    free(s->dir);
    free(s);
    *sp = NULL;
}

int rdml_subject_id(const rdml_subject *s) { return s->id; }
int64_t rdml_subject_nimages(const rdml_subject *s) { return s->nimg; }
int64_t rdml_subject_ntest(const rdml_subject *s) { return s->ntest; }
const char *rdml_subject_dir(const rdml_subject *s) { return s->dir; }

const char *rdml_subject_image_path(const rdml_subject *s, int64_t i) {
    return i >= 0 && i < s->nimg ? s->img[i] : NULL;
}

int64_t rdml_subject_nsd_id(const rdml_subject *s, int64_t i) {
    return i >= 0 && i < s->nimg ? s->nsd[i] : -1;
}

int64_t rdml_subject_nvert(const rdml_subject *s, int hemi) {
    return hemi == 0 || hemi == 1 ? s->nv[hemi] : -1;
}

int rdml_subject_class_present(const rdml_subject *s, int cls) {
    return cls >= 0 && cls < RDML_NROICLASS && s->cls[cls].present;
}

int rdml_subject_nrois(const rdml_subject *s, int cls) {
    return cls >= 0 && cls < RDML_NROICLASS ? s->cls[cls].nroi : 0;
}

const char *rdml_subject_roi_name(const rdml_subject *s, int cls, int r) {
    if (cls < 0 || cls >= RDML_NROICLASS || r < 0 || r >= s->cls[cls].nroi) return NULL;
    return s->cls[cls].names[r];
}

int64_t rdml_subject_roi_code(const rdml_subject *s, int cls, int r) {
    if (cls < 0 || cls >= RDML_NROICLASS || r < 0 || r >= s->cls[cls].nroi) return -1;
    return s->cls[cls].codes[r];
}

int64_t rdml_subject_roi_nvert(const rdml_subject *s, int cls, int r, int hemi) {
    if (cls < 0 || cls >= RDML_NROICLASS || r < 0 || r >= s->cls[cls].nroi) return -1;
    if (hemi != 0 && hemi != 1) return -1;
    return s->cls[cls].nvert[hemi][r];
}

/* ---------------------------------------------------------------- describe */

static void describe_subject(const rdml_subject *s, FILE *out) {
    fprintf(out, "subj%02d: %lld training images, %lld test images; vertices lh %lld, rh %lld "
            "(%lld)\n", s->id, (long long)s->nimg, (long long)s->ntest, (long long)s->nv[0],
            (long long)s->nv[1], (long long)(s->nv[0] + s->nv[1]));
    int wname = 3, wclass = 5;
    for (int c = 0; c < RDML_NROICLASS; c++) {
        if ((int)strlen(class_names[c]) > wclass) wclass = (int)strlen(class_names[c]);
        for (int r = 0; r < s->cls[c].nroi; r++)
            if ((int)strlen(s->cls[c].names[r]) > wname) wname = (int)strlen(s->cls[c].names[r]);
    }
    fprintf(out, "  %-*s  %-*s  %5s  %6s  %6s\n", wclass, "class", wname, "ROI", "code", "lh", "rh");
    for (int c = 0; c < RDML_NROICLASS; c++) {
        const rdml_roiclass *k = &s->cls[c];
        if (!k->present) {
            fprintf(out, "  %-*s  (absent: no roi_masks/mapping_%s.npy)\n", wclass,
                    class_names[c], class_tags[c]);
            continue;
        }
        if (k->nroi == 0) fprintf(out, "  %-*s  (no ROIs in mapping_%s.npy)\n", wclass,
                                  class_names[c], class_tags[c]);
        for (int r = 0; r < k->nroi; r++)
            fprintf(out, "  %-*s  %-*s  %5lld  %6lld  %6lld\n", wclass, r ? "" : class_names[c],
                    wname, k->names[r], (long long)k->codes[r], (long long)k->nvert[0][r],
                    (long long)k->nvert[1][r]);
    }
    /* the paper's unions, as rdml_subject_select resolves them (overlaps counted once) */
    static const char *const unions[] = {"V1", "V2", "V3", "FBA", "FFA", "VWFA"};
    int first = 1;
    for (size_t u = 0; u < sizeof unions / sizeof *unions; u++) {
        rdml_ctx quiet;
        rdml_ctx_init(&quiet);
        rdml_selection sel;
        if (rdml_subject_select(&quiet, s, unions[u], &sel) != RDML_OK) continue;
        fprintf(out, "%s%s %lld/%lld", first ? "  unions (lh/rh): " : ", ", unions[u],
                (long long)sel.n_lh, (long long)(sel.n - sel.n_lh));
        first = 0;
        rdml_selection_free(&sel);
    }
    if (!first) fputc('\n', out);
}

int rdml_dataset_describe(rdml_ctx *ctx, const rdml_dataset *ds, FILE *out) {
    fprintf(out, "dataset %s: %d subject%s (", ds->root, ds->n, ds->n == 1 ? "" : "s");
    for (int i = 0; i < ds->n; i++) fprintf(out, "%ssubj%02d", i ? ", " : "", ds->ids[i]);
    fprintf(out, ")\n");
    int nbad = 0, first_rc = RDML_OK;
    char first_msg[sizeof ctx->msg];
    first_msg[0] = '\0';
    for (int i = 0; i < ds->n; i++) {
        rdml_subject *s;
        fputc('\n', out);
        /* one broken subject should not hide the others: report it and go on */
        rdml_ctx sub;
        rdml_ctx_init(&sub);
        int rc = rdml_subject_open(&sub, ds, ds->ids[i], &s);
        if (rc != RDML_OK) {
            fprintf(out, "subj%02d: ERROR: %s\n", ds->ids[i], sub.msg);
            if (!nbad++) {
                first_rc = rc;
                memcpy(first_msg, sub.msg, sizeof first_msg);
            }
            continue;
        }
        describe_subject(s, out);
        rdml_subject_close(&s);
    }
    fflush(out);
    if (nbad)
        return RDML_FAIL(ctx, first_rc, "%d of %d subjects could not be opened; first: %s",
                         nbad, ds->n, first_msg);
    return RDML_OK;
}
