/* Parallel HDF5 results files (rdml/h5.h) over the MPI-IO driver. A handle owns a duplicate
 * of the caller's communicator, the open file, its final path and, when writable, the
 * temporary path the file really lives at until commit (path.tmp-<pid>-<ns>, the suffix
 * chosen on rank 0 and broadcast). Every public function is collective: metadata calls
 * (create group/dataset/attribute) are made by all ranks with the same arguments, as HDF5
 * requires; row slabs are written with collective transfers (H5FD_MPIO_COLLECTIVE) and read
 * independently (overlapping collective reads are broken in Open MPI 4.1); and each phase
 * ends with rdml_agree so a failure on any rank returns the same status and message on every
 * rank instead of hanging. Arguments that differ per rank (row ranges) are validated and
 * agreed on *before* the collective transfer. HDF5's automatic error printing is switched off;
 * the innermost messages of its error stack are appended to ours instead. Variable-length
 * string *datasets* cannot be written through the MPI-IO driver in HDF5 1.10 ("Parallel IO does
 * not support writing VL datatypes"), so rdml_h5_write_strings closes the file on all ranks,
 * lets rank 0 write the strings through the serial driver, and reopens it; string attributes
 * are metadata and are written by all ranks in parallel. Numeric datasets are chunked (about
 * 1 MiB per chunk; 1-D vectors up to 128 Ki values) with a Fletcher-32 checksum per chunk, so
 * a damaged byte is a read error instead of a wrong number (parallel HDF5 >= 1.10.2 writes
 * filtered datasets with collective transfers, which every write here is; cost on a 9841 x
 * 9841 float32 RDM, 388 MB: about +0.15 s to write and to read it, docs/results.md).
 * Left out: compression, datasets of more than 2 dims, extendible datasets, and references. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "rdml/h5.h"
#include "rdml/mpiutil.h"

struct rdml_h5 {
    MPI_Comm comm; /* duplicate of the caller's communicator */
    int rank, nranks;
    hid_t file;   /* -1 once closed (or after a failed reopen) */
    int writable; /* 1: file lives at tmp until commit */
    char *path;   /* final path */
    char *tmp;    /* temporary path (writable handles), else NULL */
    /* Side file (writable handles): numeric datasets of at least `split` bytes live in
     * <folder>/<base>.d/<suffix>.h5, linked into the results file by external links. */
    hid_t side;       /* -1 until the first large dataset (and after commit/abort) */
    int side_made;    /* the side file was created */
    int64_t split;    /* bytes from which a dataset goes to the side file */
    char *side_rel;   /* "<base>.d/<suffix>.h5": the name the links hold (relative) */
    char *side_path;  /* the same file as a path to open */
    char *side_dir;   /* "<folder>/<base>.d" */
    char **old_sides; /* rank 0: side files the file this handle replaces linked to */
    int64_t n_old;
    hid_t lapl;       /* access: external files read-only, over this handle's communicator */
};

#define H5_SPLIT_DEFAULT ((int64_t)16 << 20)

#define H5_CHUNK_BYTES ((int64_t)1 << 20)

/* ---- errors ---- */

typedef struct h5_stack {
    char text[1200];
    int depth;
} h5_stack;

/* Walked upward: n = 0 is the innermost (most specific) entry. Keep the first three. */
static herr_t h5_walk_cb(unsigned n, const H5E_error2_t *e, void *data) {
    h5_stack *st = data;
    if (n >= 3) return 0;
    size_t len = strlen(st->text);
    char minor[160] = "";
    if (n == 0) H5Eget_msg(e->min_num, NULL, minor, sizeof minor);
    snprintf(st->text + len, sizeof st->text - len, "%s%s%s%s%s", n ? " <- " : "",
             e->desc ? e->desc : "?", n == 0 && minor[0] ? " (" : "", n == 0 ? minor : "",
             n == 0 && minor[0] ? ")" : "");
    st->depth++;
    return 0;
}

/* Record an error: our message, then what HDF5's error stack says (if anything). Call it right
 * after the failing HDF5 call, before any cleanup call resets the stack. */
static int h5_fail(rdml_ctx *ctx, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int h5_fail(rdml_ctx *ctx, int code, const char *fmt, ...) {
    char head[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(head, sizeof head, fmt, ap);
    va_end(ap);
    h5_stack st = {"", 0};
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, h5_walk_cb, &st);
    H5Eclear2(H5E_DEFAULT);
    if (st.depth) return RDML_FAIL(ctx, code, "%s [HDF5: %s]", head, st.text);
    return RDML_FAIL(ctx, code, "%s", head);
}

static void h5_quiet(void) { rdml_h5_quiet(); }

void rdml_h5_quiet(void) {
    /* RDML_DEBUG keeps HDF5's own error stacks (printed to stderr as they happen) */
    const char *dbg = getenv("RDML_DEBUG");
    if (dbg && *dbg && strcmp(dbg, "0") != 0) H5Eset_auto2(H5E_DEFAULT, (H5E_auto2_t)H5Eprint2, stderr);
    else H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

typedef struct h5_names {
    char *buf;
    size_t n, len;
    int count, shown;
} h5_names;

/* H5Lvisit callback: append "/path (rows x cols)" for every dataset, up to the buffer. */
static herr_t dataset_list_cb(hid_t g, const char *name, const H5L_info_t *info, void *data) {
    h5_names *st = data;
    (void)info;
    H5O_info_t oi;
    if (H5Oget_info_by_name(g, name, &oi, H5P_DEFAULT) < 0 || oi.type != H5O_TYPE_DATASET)
        return 0;
    st->count++;
    char item[512], dims[160] = "";
    hid_t d = H5Dopen2(g, name, H5P_DEFAULT);
    hid_t sp = d >= 0 ? H5Dget_space(d) : -1;
    int nd = sp >= 0 ? H5Sget_simple_extent_ndims(sp) : -1;
    hsize_t dd[8];
    if (nd >= 0 && nd <= 8 && H5Sget_simple_extent_dims(sp, dd, NULL) >= 0) {
        size_t l = 0;
        for (int i = 0; i < nd; i++)
            l += (size_t)snprintf(dims + l, sizeof dims - l, "%s%llu", i ? " x " : "",
                                  (unsigned long long)dd[i]);
        if (nd == 0) snprintf(dims, sizeof dims, "scalar");
    }
    if (sp >= 0) H5Sclose(sp);
    if (d >= 0) H5Dclose(d);
    int w = snprintf(item, sizeof item, "%s/%s%s%s%s", st->count > 1 ? ", " : "", name,
                     *dims ? " (" : "", dims, *dims ? ")" : "");
    if (w > 0 && st->len + (size_t)w + 8 < st->n) {
        memcpy(st->buf + st->len, item, (size_t)w + 1);
        st->len += (size_t)w;
        st->shown++;
    }
    return 0;
}

int rdml_h5_list_datasets(const char *path, char *buf, size_t n) {
    if (!buf || n == 0) return -1;
    buf[0] = '\0';
    rdml_h5_quiet();
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) {
        H5Eclear2(H5E_DEFAULT);
        return -1;
    }
    h5_names st = {buf, n, 0, 0, 0};
    H5Lvisit(f, H5_INDEX_NAME, H5_ITER_INC, dataset_list_cb, &st);
    H5Fclose(f);
    H5Eclear2(H5E_DEFAULT);
    if (st.shown < st.count && st.len + 8 < n)
        snprintf(buf + st.len, n - st.len, ", ...");
    return st.count;
}

/* Rank-local: a results file path that names a folder gives MPI-IO's read errors (one per
 * block) and a format error; say what is wrong instead. */
static int not_a_folder(rdml_ctx *ctx, const char *path) {
    struct stat sb;
    if (stat(path, &sb) != 0 || !S_ISDIR(sb.st_mode)) return RDML_OK;
    size_t l = strlen(path);
    return RDML_FAIL(ctx, RDML_EIO, "%s is a folder, not a results file (hint: set run.output "
                     "to a file path, e.g. %s%sresults.h5)", path, path,
                     l && path[l - 1] == '/' ? "" : "/");
}

/* Calling with a NULL handle is a bug on every rank alike (create/open agree), so it returns
 * at once without a collective step. */
#define NEED_HANDLE(h)                                                                     \
    do {                                                                                   \
        if (!(h)) return RDML_FAIL(ctx, RDML_EINTERNAL, "%s: NULL rdml_h5 handle", __func__); \
    } while (0)

static int check_handle(rdml_ctx *ctx, const rdml_h5 *h, const char *obj, int need_write) {
    if (!obj || !obj[0])
        return RDML_FAIL(ctx, RDML_EINTERNAL, "%s: empty HDF5 object name", h->path);
    if (h->file < 0)
        return RDML_FAIL(ctx, RDML_EIO,
                         "%s: the results file is closed after an earlier error (hint: abort "
                         "this handle and rerun)", h->path);
    if (need_write && !h->writable)
        return RDML_FAIL(ctx, RDML_EINTERNAL, "%s: cannot write '%s': file opened read-only",
                         h->path, obj);
    return RDML_OK;
}

/* ---- small helpers ---- */

static hid_t mpio_fapl(const rdml_h5 *h) {
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0) return -1;
    if (H5Pset_fapl_mpio(fapl, h->comm, MPI_INFO_NULL) < 0 ||
        H5Pset_coll_metadata_write(fapl, 1) < 0) {
        H5Pclose(fapl);
        return -1;
    }
    return fapl;
}

/* 1 if every component of obj resolves (a group chain ending in any object), 0 otherwise.
 * With follow_last = 0 the last link only has to exist (an external link is not followed).
 * lapl says how external links are followed (H5P_DEFAULT: as the file was opened). */
static int path_exists(hid_t file, const char *obj, hid_t lapl, int follow_last) {
    size_t n = strlen(obj);
    char *buf = malloc(n + 1);
    if (!buf) return -1;
    memcpy(buf, obj, n + 1);
    int ok = 1;
    for (size_t i = 1; i <= n && ok; i++) {
        if (buf[i] != '/' && buf[i] != '\0') continue;
        if (buf[i - 1] == '/') continue; /* leading or doubled slash */
        char save = buf[i];
        buf[i] = '\0';
        htri_t e = H5Lexists(file, buf, lapl);
        int last = save == '\0' || (save == '/' && buf[i + 1] == '\0');
        if (e > 0 && (follow_last || !last)) e = H5Oexists_by_name(file, buf, lapl);
        buf[i] = save;
        if (e <= 0) ok = 0;
    }
    H5Eclear2(H5E_DEFAULT);
    free(buf);
    return ok;
}

static H5O_type_t obj_type(hid_t file, const char *obj, hid_t lapl) {
    H5O_info_t info;
    if (H5Oget_info_by_name(file, obj, &info, lapl) < 0) {
        H5Eclear2(H5E_DEFAULT);
        return H5O_TYPE_UNKNOWN;
    }
    return info.type;
}

static hid_t intermediate_lcpl(void) {
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    if (lcpl >= 0) H5Pset_create_intermediate_group(lcpl, 1);
    return lcpl;
}

static const char *class_name(H5T_class_t c) {
    switch (c) {
    case H5T_INTEGER: return "integer";
    case H5T_FLOAT: return "float";
    case H5T_STRING: return "string";
    default: return "other";
    }
}

static hid_t vlen_str_type(void) {
    hid_t t = H5Tcopy(H5T_C_S1);
    if (t >= 0 && (H5Tset_size(t, H5T_VARIABLE) < 0 || H5Tset_cset(t, H5T_CSET_UTF8) < 0)) {
        H5Tclose(t);
        return -1;
    }
    return t;
}

/* ---- side files ----
 * Committing a stage copies the results file (rdml_h5_open, writable): at full scale that file
 * holds tens of 388 MB RDMs, and every stage copied all of them to change a few records. So a
 * writable handle stores each numeric dataset of at least `split` bytes (RDML_H5_SPLIT_BYTES,
 * default 16 MiB) in a side file of its own, <folder>/<base>.d/<suffix>.h5, and links it into
 * the results file with an HDF5 external link whose file name is relative to the results file's
 * folder (HDF5 and h5py look there first). The copy is then small; the side file is written in
 * place, synced before the results file is renamed into place, and never changed afterwards: a
 * later handle that changes a dataset in an earlier side file writes it anew into its own
 * (copy on write). After a commit, rank 0 deletes the side files that the replaced version
 * linked to and the new one does not; an aborted handle deletes its own. External files are
 * followed read-only, over the handle's communicator (h->lapl). */

typedef struct name_list {
    char **names;
    int64_t n, cap;
    int oom;
} name_list;

static herr_t name_list_cb(hid_t g, const char *name, const H5L_info_t *info, void *data) {
    (void)g;
    (void)info;
    name_list *l = data;
    if (l->n == l->cap) {
        int64_t cap = l->cap ? 2 * l->cap : 16;
        char **p = realloc(l->names, (size_t)cap * sizeof *p);
        if (!p) {
            l->oom = 1;
            return -1;
        }
        l->names = p;
        l->cap = cap;
    }
    if (!(l->names[l->n] = strdup(name))) {
        l->oom = 1;
        return -1;
    }
    l->n++;
    return 0;
}

static int64_t split_default(rdml_ctx *ctx, int *rc) {
    const char *s = getenv("RDML_H5_SPLIT_BYTES");
    if (!s || !*s) return H5_SPLIT_DEFAULT;
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || !end || *end || v < 0) {
        *rc = RDML_FAIL(ctx, RDML_ECONFIG, "environment variable RDML_H5_SPLIT_BYTES='%s' is "
                        "not a byte count (hint: a whole number >= 0, e.g. 16777216; 0 puts "
                        "every numeric dataset in a side file; or unset it for 16 MiB)", s);
        return H5_SPLIT_DEFAULT;
    }
    return (int64_t)v;
}

/* Link and dataset access: external files opened read-only with this handle's MPI-IO access. */
static hid_t make_lapl(const rdml_h5 *h) {
    hid_t lapl = H5Pcreate(H5P_DATASET_ACCESS);
    hid_t fapl = mpio_fapl(h);
    if (lapl < 0 || fapl < 0 || H5Pset_elink_acc_flags(lapl, H5F_ACC_RDONLY) < 0 ||
        H5Pset_elink_fapl(lapl, fapl) < 0) {
        if (lapl >= 0) H5Pclose(lapl);
        lapl = -1;
    }
    if (fapl >= 0) H5Pclose(fapl);
    return lapl;
}

/* Names of the side file of a writable handle for `path` with job suffix `suffix`. */
static int side_names(rdml_h5 *h, const char *path, const char *suffix) {
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    size_t nfold = slash ? (size_t)(slash - path) + 1 : 0, nb = strlen(base);
    h->side_rel = malloc(nb + strlen(suffix) + 8);
    h->side_dir = malloc(nfold + nb + 4);
    h->side_path = malloc(nfold + nb + strlen(suffix) + 8);
    if (!h->side_rel || !h->side_dir || !h->side_path) return -1;
    sprintf(h->side_rel, "%s.d/%s.h5", base, suffix);
    sprintf(h->side_dir, "%.*s%s.d", (int)nfold, path, base);
    sprintf(h->side_path, "%.*s%s", (int)nfold, path, h->side_rel);
    return 0;
}

/* When the link `name` in loc is an external link: its file and object names (pointing into
 * the returned buffer, which the caller frees); NULL otherwise. li: the link's info when the
 * caller has it, else NULL. */
static char *elink_target(hid_t loc, const char *name, const H5L_info_t *li,
                          const char **fname, const char **oname) {
    H5L_info_t own;
    if (!li) {
        if (H5Lget_info(loc, name, &own, H5P_DEFAULT) < 0) {
            H5Eclear2(H5E_DEFAULT);
            return NULL;
        }
        li = &own;
    }
    if (li->type != H5L_TYPE_EXTERNAL) return NULL;
    char *val = malloc(li->u.val_size ? li->u.val_size : 1);
    unsigned flags = 0;
    if (val && (H5Lget_val(loc, name, val, li->u.val_size, H5P_DEFAULT) < 0 ||
                H5Lunpack_elink_val(val, li->u.val_size, &flags, fname, oname) < 0)) {
        free(val);
        val = NULL;
    }
    H5Eclear2(H5E_DEFAULT);
    return val;
}

/* Where obj really is: this handle's side file and the object's name there when obj's last
 * link is an external link into it; else the results file and obj. *name is malloc'd (NULL
 * when out of memory). *foreign: the last link is an external link into another file. */
static hid_t locate(rdml_h5 *h, const char *obj, char **name, int *foreign) {
    *foreign = 0;
    hid_t loc = h->file;
    const char *target = obj, *fname = NULL, *oname = NULL;
    char *val = elink_target(h->file, obj, NULL, &fname, &oname);
    if (val && h->side >= 0 && h->side_rel && strcmp(fname, h->side_rel) == 0) {
        loc = h->side;
        target = oname;
    } else if (val) {
        *foreign = 1;
    }
    *name = strdup(target);
    free(val);
    return loc;
}

/* Does obj exist (following an external link at its end)? 1/0, -1 when out of memory; its
 * type in *type when it exists and type is not NULL. */
static int h_look(rdml_h5 *h, const char *obj, H5O_type_t *type) {
    char *name;
    int foreign;
    hid_t loc = locate(h, obj, &name, &foreign);
    if (!name) return -1;
    int e = path_exists(loc, name, h->lapl, 1);
    if (e > 0 && type) *type = obj_type(loc, name, h->lapl);
    free(name);
    return e;
}

static int h_exists(rdml_h5 *h, const char *obj) { return h_look(h, obj, NULL); }

static H5O_type_t h_type(rdml_h5 *h, const char *obj) {
    H5O_type_t t = H5O_TYPE_UNKNOWN;
    h_look(h, obj, &t);
    return t;
}

/* When obj's last link is an external link whose file is missing (a results file copied
 * without its side folder), record an error naming that file and return 1; else 0. */
static int missing_side(rdml_ctx *ctx, rdml_h5 *h, const char *obj) {
    const char *fname = NULL, *oname = NULL;
    char *val = elink_target(h->file, obj, NULL, &fname, &oname);
    if (!val) return 0;
    const char *slash = strrchr(h->path, '/'), *fs = strchr(fname, '/');
    const int nfold = slash ? (int)(slash - h->path) + 1 : 0;
    const int nd = fs ? (int)(fs - fname) : (int)strlen(fname); /* the folder's name */
    char full[4096];
    if (fname[0] == '/') snprintf(full, sizeof full, "%s", fname);
    else snprintf(full, sizeof full, "%.*s%s", nfold, h->path, fname);
    const int missing = access(full, R_OK) != 0;
    if (missing)
        RDML_FAIL(ctx, RDML_EIO, "%s: '%s' is stored in %s, which is missing (hint: the large "
                  "datasets of a results file live in the folder %.*s beside it; copy or move "
                  "the two together, e.g. cp -r %s %.*s DEST/)", h->path, obj, full, nd, fname,
                  h->path, nfold + nd, full);
    free(val);
    return missing;
}

/* Collective: create the side file (and its folder) on first use. */
static int side_open(rdml_ctx *ctx, rdml_h5 *h) {
    if (h->side >= 0) return RDML_OK;
    int rc = RDML_OK;
    if (h->rank == 0 && mkdir(h->side_dir, 0777) != 0 && errno != EEXIST)
        rc = RDML_FAIL(ctx, RDML_EIO, "%s: cannot create the folder %s for its large datasets: "
                       "%s (hint: make the results folder writable, or set "
                       "RDML_H5_SPLIT_BYTES larger than any dataset to keep them in the file)",
                       h->path, h->side_dir, strerror(errno));
    RDML_TRY(rdml_agree(ctx, h->comm, rc));
    hid_t fapl = mpio_fapl(h);
    hid_t f = fapl < 0 ? -1 : H5Fcreate(h->side_path, H5F_ACC_EXCL, H5P_DEFAULT, fapl);
    if (f < 0) rc = h5_fail(ctx, RDML_EIO, "%s: cannot create side file %s", h->path,
                            h->side_path);
    if (fapl >= 0) H5Pclose(fapl);
    rc = rdml_agree(ctx, h->comm, rc);
    if (rc && f >= 0) H5Fclose(f);
    if (!rc) {
        h->side = f;
        h->side_made = 1;
    }
    return rc;
}

/* Collective: create dataset `dset` of `bytes` bytes: in the side file, linked from the
 * results file, when it is that large; else in the results file. -1 on failure (ctx set for
 * side-file failures only; the caller reports the rest). */
static hid_t create_dataset(rdml_ctx *ctx, rdml_h5 *h, const char *dset, hid_t ftype, hid_t sp,
                            hid_t lcpl, hid_t dcpl, int64_t bytes) {
    if (!h->writable || bytes < h->split || bytes <= 0)
        return H5Dcreate2(h->file, dset, ftype, sp, lcpl, dcpl, H5P_DEFAULT);
    if (side_open(ctx, h)) return -1;
    /* A name left in the side file by a deleted parent group is unreferenced: reuse it. */
    if (path_exists(h->side, dset, H5P_DEFAULT, 0) > 0) H5Ldelete(h->side, dset, H5P_DEFAULT);
    hid_t d = H5Dcreate2(h->side, dset, ftype, sp, lcpl, dcpl, H5P_DEFAULT);
    if (d >= 0 && H5Lcreate_external(h->side_rel, dset, h->file, dset, lcpl, H5P_DEFAULT) < 0) {
        H5Dclose(d);
        H5Ldelete(h->side, dset, H5P_DEFAULT);
        d = -1;
    }
    return d;
}

/* Remove obj's link from the results file, and the object from this handle's side file when
 * it lives there (so its space is reused). <0 on failure. */
static herr_t unlink_obj(rdml_h5 *h, const char *obj) {
    char *name;
    int foreign;
    hid_t loc = locate(h, obj, &name, &foreign);
    if (!name) return -1;
    if (loc == h->side && path_exists(h->side, name, H5P_DEFAULT, 0) > 0)
        H5Ldelete(h->side, name, H5P_DEFAULT);
    free(name);
    return H5Ldelete(h->file, obj, H5P_DEFAULT);
}

/* Copy the attributes of one object to another (same values, same types). */
static herr_t copy_attr_cb(hid_t src, const char *aname, const H5A_info_t *ai, void *data) {
    (void)ai;
    hid_t dst = *(hid_t *)data;
    herr_t e = -1;
    hid_t a = H5Aopen(src, aname, H5P_DEFAULT);
    hid_t t = a >= 0 ? H5Aget_type(a) : -1, sp = a >= 0 ? H5Aget_space(a) : -1;
    hid_t mt = t >= 0 ? H5Tget_native_type(t, H5T_DIR_DEFAULT) : -1;
    hssize_t np = sp >= 0 ? H5Sget_simple_extent_npoints(sp) : -1;
    size_t size = mt >= 0 ? H5Tget_size(mt) : 0;
    void *buf = np >= 0 && size ? calloc((size_t)(np ? np : 1), size) : NULL;
    if (buf && H5Aread(a, mt, buf) >= 0) {
        hid_t b = H5Acreate2(dst, aname, t, sp, H5P_DEFAULT, H5P_DEFAULT);
        if (b >= 0) {
            e = H5Awrite(b, mt, buf);
            H5Aclose(b);
        }
        if (H5Tdetect_class(mt, H5T_VLEN) > 0 || H5Tis_variable_str(mt) > 0)
            H5Dvlen_reclaim(mt, sp, H5P_DEFAULT, buf);
    }
    free(buf);
    if (mt >= 0) H5Tclose(mt);
    if (t >= 0) H5Tclose(t);
    if (sp >= 0) H5Sclose(sp);
    if (a >= 0) H5Aclose(a);
    return e < 0 ? -1 : 0;
}

/* Collective: obj is an external link into an earlier side file, which must not change; copy
 * the dataset (values and attributes) into this handle's side file and point the link there.
 * Rows are copied in blocks of about 64 MiB, each rank a share of every block. */
static int copy_on_write(rdml_ctx *ctx, rdml_h5 *h, const char *obj) {
    int rc = RDML_OK;
    hid_t src = H5Dopen2(h->file, obj, h->lapl);
    hid_t sp = src >= 0 ? H5Dget_space(src) : -1, t = src >= 0 ? H5Dget_type(src) : -1;
    hid_t dcpl = src >= 0 ? H5Dget_create_plist(src) : -1;
    int nd = sp >= 0 ? H5Sget_simple_extent_ndims(sp) : -1;
    hsize_t dims[2] = {0, 1};
    if (src < 0 || sp < 0 || t < 0 || dcpl < 0 || nd < 1 || nd > 2 ||
        H5Sget_simple_extent_dims(sp, dims, NULL) < 0)
        rc = h5_fail(ctx, RDML_EFORMAT, "%s: cannot open '%s' (stored in another file) to "
                     "change it", h->path, obj);
    rc = rdml_agree(ctx, h->comm, rc);
    size_t el = t >= 0 ? H5Tget_size(t) : 0;
    hid_t lcpl = intermediate_lcpl(), dst = -1;
    if (!rc) rc = side_open(ctx, h);
    if (!rc) {
        if (path_exists(h->side, obj, H5P_DEFAULT, 0) > 0) H5Ldelete(h->side, obj, H5P_DEFAULT);
        dst = H5Dcreate2(h->side, obj, t, sp, lcpl, dcpl, H5P_DEFAULT);
        if (dst < 0) rc = h5_fail(ctx, RDML_EIO, "%s: cannot copy '%s' into %s", h->path, obj,
                                  h->side_path);
        rc = rdml_agree(ctx, h->comm, rc);
    }
    int64_t rows = (int64_t)dims[0], cols = nd == 2 ? (int64_t)dims[1] : 1;
    int64_t row_bytes = cols * (int64_t)el, block = row_bytes > 0 ? ((int64_t)64 << 20) / row_bytes : 1;
    if (block < h->nranks) block = h->nranks;
    char *buf = NULL;
    if (!rc && rows > 0 && row_bytes > 0) {
        buf = malloc((size_t)((block + h->nranks - 1) / h->nranks) * (size_t)row_bytes);
        if (!buf) rc = RDML_FAIL(ctx, RDML_ENOMEM, "out of memory copying '%s'", obj);
        rc = rdml_agree(ctx, h->comm, rc);
    }
    for (int64_t b0 = 0; !rc && buf && b0 < rows; b0 += block) {
        int64_t bn = rows - b0 < block ? rows - b0 : block;
        int64_t lo = b0 + bn * h->rank / h->nranks, hi = b0 + bn * (h->rank + 1) / h->nranks;
        hsize_t start[2] = {(hsize_t)lo, 0}, count[2] = {(hsize_t)(hi - lo), (hsize_t)cols};
        hsize_t mcount = (hsize_t)((hi - lo) * cols);
        hid_t fs = H5Scopy(sp), ms = H5Screate_simple(1, mcount ? &mcount : (hsize_t[]){1}, NULL);
        hid_t rx = H5Pcreate(H5P_DATASET_XFER), wx = H5Pcreate(H5P_DATASET_XFER);
        herr_t e = fs < 0 || ms < 0 || rx < 0 || wx < 0 ? -1 : 0;
        if (e >= 0) e = H5Pset_dxpl_mpio(rx, H5FD_MPIO_INDEPENDENT);
        if (e >= 0) e = H5Pset_dxpl_mpio(wx, H5FD_MPIO_COLLECTIVE);
        if (e >= 0 && hi == lo) {
            e = H5Sselect_none(fs);
            if (e >= 0) e = H5Sselect_none(ms);
        } else if (e >= 0) {
            e = H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL);
        }
        if (e >= 0 && hi > lo) e = H5Dread(src, t, ms, fs, rx, buf);
        if (e < 0)
            rc = h5_fail(ctx, RDML_EIO, "%s: cannot read rows %lld..%lld of '%s' to copy them",
                         h->path, (long long)lo, (long long)hi, obj);
        rc = rdml_agree(ctx, h->comm, rc); /* the write is collective: all ranks or none */
        if (!rc && H5Dwrite(dst, t, ms, fs, wx, buf) < 0)
            rc = h5_fail(ctx, RDML_EIO, "%s: cannot copy rows %lld..%lld of '%s' into %s",
                         h->path, (long long)lo, (long long)hi, obj, h->side_path);
        if (fs >= 0) H5Sclose(fs);
        if (ms >= 0) H5Sclose(ms);
        if (rx >= 0) H5Pclose(rx);
        if (wx >= 0) H5Pclose(wx);
        rc = rdml_agree(ctx, h->comm, rc);
    }
    free(buf);
    if (!rc) {
        hsize_t idx = 0;
        if (H5Aiterate2(src, H5_INDEX_NAME, H5_ITER_INC, &idx, copy_attr_cb, &dst) < 0)
            rc = h5_fail(ctx, RDML_EIO, "%s: cannot copy the attributes of '%s'", h->path, obj);
        rc = rdml_agree(ctx, h->comm, rc);
    }
    if (!rc && (H5Ldelete(h->file, obj, H5P_DEFAULT) < 0 ||
                H5Lcreate_external(h->side_rel, obj, h->file, obj, lcpl, H5P_DEFAULT) < 0))
        rc = h5_fail(ctx, RDML_EIO, "%s: cannot link '%s' to %s", h->path, obj, h->side_path);
    rc = rdml_agree(ctx, h->comm, rc);
    if (dst >= 0) H5Dclose(dst);
    if (src >= 0) H5Dclose(src);
    if (sp >= 0) H5Sclose(sp);
    if (t >= 0) H5Tclose(t);
    if (dcpl >= 0) H5Pclose(dcpl);
    if (lcpl >= 0) H5Pclose(lcpl);
    return rc;
}

/* Where to change obj: its location and name (malloc'd); an object in an earlier side file
 * is first copied into this handle's own. Collective. */
static int locate_for_write(rdml_ctx *ctx, rdml_h5 *h, const char *obj, hid_t *loc,
                            char **name) {
    int foreign;
    *loc = locate(h, obj, name, &foreign);
    if (!*name) return rdml_agree(ctx, h->comm, RDML_FAIL(ctx, RDML_ENOMEM, "out of memory"));
    if (!foreign) return RDML_OK;
    free(*name);
    *name = NULL;
    RDML_TRY(copy_on_write(ctx, h, obj));
    *loc = locate(h, obj, name, &foreign);
    if (!*name || foreign)
        return rdml_agree(ctx, h->comm, RDML_FAIL(ctx, RDML_EINTERNAL, "%s: '%s' is still "
                                                  "stored elsewhere after copying", h->path, obj));
    return RDML_OK;
}

typedef struct side_set {
    char prefix[512]; /* "<base>.d/" */
    name_list l;
} side_set;

/* H5Lvisit callback: collect the distinct external-link files under prefix. */
static herr_t side_set_cb(hid_t g, const char *name, const H5L_info_t *info, void *data) {
    side_set *s = data;
    const char *fname = NULL, *oname = NULL;
    char *val = elink_target(g, name, info, &fname, &oname);
    if (!val && info->type == H5L_TYPE_EXTERNAL) { /* unreadable: the set is not known */
        s->l.oom = 1;
        return -1;
    }
    if (!val) return 0;
    const size_t np = strlen(s->prefix);
    int keep = strncmp(fname, s->prefix, np) == 0 && !strchr(fname + np, '/');
    for (int64_t i = 0; keep && i < s->l.n; i++)
        if (strcmp(s->l.names[i], fname) == 0) keep = 0;
    herr_t r = keep ? name_list_cb(g, fname, info, &s->l) : 0;
    free(val);
    return r;
}

/* Rank 0, serial: add the side files (as the links name them) that the file at path links to;
 * -1 when the file cannot be read (then nothing may be deleted). */
static int side_set_add(const char *path, side_set *s) {
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) {
        H5Eclear2(H5E_DEFAULT);
        return -1;
    }
    herr_t e = H5Lvisit(f, H5_INDEX_NAME, H5_ITER_INC, side_set_cb, s);
    H5Fclose(f);
    H5Eclear2(H5E_DEFAULT);
    return e < 0 || s->l.oom ? -1 : 0;
}

/* An empty set for the side files of h's results file ("<base>.d/..."). */
static void side_set_init(const rdml_h5 *h, side_set *s) {
    memset(s, 0, sizeof *s);
    size_t np = (size_t)(strchr(h->side_rel, '/') - h->side_rel) + 1;
    if (np < sizeof s->prefix) memcpy(s->prefix, h->side_rel, np);
}

/* The side files the file at path links to; -1 when it cannot be read. */
static int side_set_read(const char *path, const rdml_h5 *h, side_set *s) {
    side_set_init(h, s);
    return s->prefix[0] ? side_set_add(path, s) : -1;
}

static int side_set_has(const side_set *s, const char *rel) {
    for (int64_t i = 0; i < s->l.n; i++)
        if (strcmp(s->l.names[i], rel) == 0) return 1;
    return 0;
}

/* Rank 0: delete side file `rel` ("<base>.d/<leaf>") from the side folder. */
static void side_unlink(const rdml_h5 *h, const char *rel) {
    const char *leaf = strchr(rel, '/');
    size_t n = strlen(h->side_dir) + strlen(rel) + 2;
    char *full = leaf ? malloc(n) : NULL;
    if (!full) return;
    snprintf(full, n, "%s%s", h->side_dir, leaf);
    unlink(full);
    free(full);
}

/* Rank 0: the side files of h's results file that the other HDF5 files in its folder link
 * to (a copy made with cp in the same folder links to the same side files), read once; -1
 * when some file cannot be read (then nothing may be deleted). */
static int side_set_others(const rdml_h5 *h, side_set *s) {
    side_set_init(h, s);
    const char *slash = strrchr(h->path, '/');
    size_t nfold = slash ? (size_t)(slash - h->path) + 1 : 0;
    char *dir = malloc(nfold + 2);
    if (!dir || !s->prefix[0]) {
        free(dir);
        return -1;
    }
    if (nfold) memcpy(dir, h->path, nfold);
    else dir[nfold++] = '.';
    dir[nfold] = '\0';
    DIR *d = opendir(dir);
    int rc = d ? 0 : -1;
    for (struct dirent *e; d && !rc && (e = readdir(d));) {
        size_t n = strlen(dir) + strlen(e->d_name) + 2;
        char *f = malloc(n);
        if (!f) {
            rc = -1;
            break;
        }
        snprintf(f, n, "%s%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/", e->d_name);
        struct stat sb;
        int skip = stat(f, &sb) != 0 || !S_ISREG(sb.st_mode) || strstr(e->d_name, ".tmp-") ||
                   strcmp(e->d_name, slash ? slash + 1 : h->path) == 0;
        if (!skip && H5Fis_hdf5(f) > 0 && side_set_add(f, s) != 0) rc = -1; /* keep all */
        H5Eclear2(H5E_DEFAULT);
        free(f);
    }
    if (d) closedir(d);
    free(dir);
    return rc;
}

/* Rank 0: delete side file rel unless `now` or (read on first need) the other files of the
 * folder link to it. *others_rc: 1 until read, then side_set_others' status. */
static int side_drop(const rdml_h5 *h, const char *rel, const side_set *now, side_set *others,
                     int *others_rc) {
    if (side_set_has(now, rel)) return 0;
    if (*others_rc == 1) *others_rc = side_set_others(h, others);
    if (*others_rc != 0 || side_set_has(others, rel)) return 0;
    side_unlink(h, rel);
    return 1;
}

/* Rank 0, after the commit: delete the side files the replaced version linked to and the new
 * one does not (and this handle's own, if nothing links to it), unless another results file
 * in the folder links to them; then the folder if empty. */
static void side_collect(rdml_h5 *h) {
    side_set now, others;
    int others_rc = 1;
    memset(&others, 0, sizeof others);
    if (side_set_read(h->path, h, &now) == 0) {
        for (int64_t i = 0; i <= h->n_old; i++) {
            const char *rel = i < h->n_old ? h->old_sides[i] : (h->side_made ? h->side_rel : NULL);
            if (rel) side_drop(h, rel, &now, &others, &others_rc);
        }
    }
    rdml_h5_free_strings(now.l.names, now.l.n);
    rdml_h5_free_strings(others.l.names, others.l.n);
    rmdir(h->side_dir); /* only when empty */
}

/* Rank 0: remember the side files that the file being replaced links to. */
static void side_remember(rdml_h5 *h) {
    side_set old;
    if (side_set_read(h->path, h, &old) == 0) {
        h->old_sides = old.l.names;
        h->n_old = old.l.n;
    } else {
        rdml_h5_free_strings(old.l.names, old.l.n);
    }
}

/* Not collective. See rdml/h5.h. */
int rdml_h5_remove_orphans(const char *path) {
    h5_quiet();
    rdml_h5 t;
    memset(&t, 0, sizeof t);
    t.path = (char *)path;
    int removed = -1;
    if (path && path[0] && side_names(&t, path, "x") == 0) {
        side_set now, others;
        int others_rc = 1;
        memset(&others, 0, sizeof others);
        DIR *d = NULL;
        if (side_set_read(path, &t, &now) == 0 && (d = opendir(t.side_dir))) {
            size_t np = strlen(now.prefix);
            removed = 0;
            for (struct dirent *e; (e = readdir(d));) {
                if (e->d_name[0] == '.') continue;
                size_t n = np + strlen(e->d_name) + 1;
                char *rel = malloc(n);
                if (!rel) break;
                snprintf(rel, n, "%s%s", now.prefix, e->d_name);
                removed += side_drop(&t, rel, &now, &others, &others_rc);
                free(rel);
            }
            closedir(d);
            rmdir(t.side_dir); /* only when empty */
        }
        rdml_h5_free_strings(now.l.names, now.l.n);
        rdml_h5_free_strings(others.l.names, others.l.n);
    }
    free(t.side_rel);
    free(t.side_path);
    free(t.side_dir);
    return removed;
}

/* ---- create / open / commit / abort ---- */

static void handle_free(rdml_h5 *h) {
    if (!h) return;
    if (h->comm != MPI_COMM_NULL) MPI_Comm_free(&h->comm);
    if (h->lapl >= 0) H5Pclose(h->lapl);
    free(h->path);
    free(h->tmp);
    free(h->side_rel);
    free(h->side_path);
    free(h->side_dir);
    rdml_h5_free_strings(h->old_sides, h->n_old);
    free(h);
}

/* Collective: allocate a handle; writable ones get a temporary name agreed on rank 0. */
static int handle_new(rdml_ctx *ctx, MPI_Comm comm, const char *path, int writable,
                      rdml_h5 **out) {
    *out = NULL;
    h5_quiet();
    rdml_h5 *h = calloc(1, sizeof *h);
    if (!h) return rdml_agree(ctx, comm, RDML_FAIL(ctx, RDML_ENOMEM, "out of memory"));
    h->file = -1;
    h->side = -1;
    h->lapl = -1;
    h->comm = MPI_COMM_NULL;
    int rc = rdml_mpi_check(ctx, MPI_Comm_dup(comm, &h->comm), "MPI_Comm_dup");
    if (rc) {
        free(h);
        return rdml_agree(ctx, comm, rc);
    }
    MPI_Comm_rank(h->comm, &h->rank);
    MPI_Comm_size(h->comm, &h->nranks);
    h->writable = writable;
    char suffix[64] = "";
    if (writable) {
        if (h->rank == 0) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            snprintf(suffix, sizeof suffix, "%ld-%lld%09ld", (long)getpid(),
                     (long long)ts.tv_sec % 100000, (long)ts.tv_nsec);
        }
        MPI_Bcast(suffix, (int)sizeof suffix, MPI_CHAR, 0, h->comm);
    }
    h->path = strdup(path);
    if (writable) {
        size_t n = strlen(path) + strlen(suffix) + 8;
        h->tmp = malloc(n);
        if (h->tmp) snprintf(h->tmp, n, "%s.tmp-%s", path, suffix);
        h->split = split_default(ctx, &rc);
        if (side_names(h, path, suffix) != 0 && !rc)
            rc = RDML_FAIL(ctx, RDML_ENOMEM, "out of memory");
    }
    h->lapl = make_lapl(h);
    if (!rc && (!h->path || (writable && !h->tmp)))
        rc = RDML_FAIL(ctx, RDML_ENOMEM, "out of memory");
    if (!rc && h->lapl < 0)
        rc = h5_fail(ctx, RDML_EINTERNAL, "%s: cannot set up link access", path);
    rc = rdml_agree(ctx, h->comm, rc);
    if (rc) {
        handle_free(h);
        return rc;
    }
    *out = h;
    return RDML_OK;
}

/* Rank 0: is the folder of `path` there and writable? (A clearer message than MPI-IO's.) */
static int check_folder(rdml_ctx *ctx, const char *path) {
    char *dir = strdup(path);
    if (!dir) return RDML_FAIL(ctx, RDML_ENOMEM, "out of memory");
    char *slash = strrchr(dir, '/');
    if (!slash) strcpy(dir, ".");
    else if (slash == dir) dir[1] = '\0';
    else *slash = '\0';
    int rc = RDML_OK;
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        rc = RDML_FAIL(ctx, RDML_EIO, "%s: cannot create results file: folder '%s' does not "
                       "exist (hint: create it or change run.output)", path, dir);
    else if (access(dir, W_OK | X_OK) != 0)
        rc = RDML_FAIL(ctx, RDML_EIO, "%s: cannot create results file: folder '%s' is not "
                       "writable (%s)", path, dir, strerror(errno));
    free(dir);
    return rc;
}

int rdml_h5_create(rdml_ctx *ctx, MPI_Comm comm, const char *path, rdml_h5 **out) {
    *out = NULL;
    if (!path || !path[0])
        return rdml_agree(ctx, comm, RDML_FAIL(ctx, RDML_EINTERNAL, "rdml_h5_create: empty path"));
    rdml_h5 *h;
    RDML_TRY(handle_new(ctx, comm, path, 1, &h));
    /* Checked on every rank: on a cluster a folder missing on some nodes is worth naming. */
    int rc = not_a_folder(ctx, path);
    if (!rc) rc = check_folder(ctx, path);
    rc = rdml_agree(ctx, h->comm, rc);
    if (!rc && h->rank == 0 && access(path, F_OK) == 0) side_remember(h); /* being replaced */
    if (!rc) {
        hid_t fapl = mpio_fapl(h);
        if (fapl < 0) rc = h5_fail(ctx, RDML_EIO, "%s: cannot set up MPI-IO file access", path);
        if (!rc) {
            h->file = H5Fcreate(h->tmp, H5F_ACC_EXCL, H5P_DEFAULT, fapl);
            if (h->file < 0)
                rc = h5_fail(ctx, RDML_EIO, "%s: cannot create temporary results file %s", path,
                             h->tmp);
        }
        if (fapl >= 0) H5Pclose(fapl);
        rc = rdml_agree(ctx, h->comm, rc);
    }
    if (rc) {
        rdml_h5_abort(&h);
        return rc;
    }
    *out = h;
    return RDML_OK;
}

/* Rank 0: plain byte copy of src to dst (created exclusively). */
static int copy_file(rdml_ctx *ctx, const char *src, const char *dst) {
    int in = open(src, O_RDONLY);
    if (in < 0)
        return RDML_FAIL(ctx, RDML_EIO, "%s: cannot open results file: %s", src, strerror(errno));
    struct stat sb;
    mode_t mode = fstat(in, &sb) == 0 ? (sb.st_mode & 0777) : 0644;
    int outfd = open(dst, O_WRONLY | O_CREAT | O_EXCL, mode | 0200);
    if (outfd < 0) {
        int rc = RDML_FAIL(ctx, RDML_EIO, "%s: cannot create temporary copy %s: %s", src, dst,
                           strerror(errno));
        close(in);
        return rc;
    }
    size_t cap = (size_t)1 << 20;
    char *buf = malloc(cap);
    int rc = buf ? RDML_OK : RDML_FAIL(ctx, RDML_ENOMEM, "out of memory copying %s", src);
    while (!rc) {
        ssize_t got = read(in, buf, cap);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) {
            rc = RDML_FAIL(ctx, RDML_EIO, "%s: read error: %s", src, strerror(errno));
            break;
        }
        if (got == 0) break;
        for (ssize_t off = 0; off < got && !rc;) {
            ssize_t put = write(outfd, buf + off, (size_t)(got - off));
            if (put < 0 && errno == EINTR) continue;
            if (put <= 0)
                rc = RDML_FAIL(ctx, RDML_EIO, "%s: cannot write %s: %s (hint: is the disk full?)",
                               src, dst, strerror(errno));
            else
                off += put;
        }
    }
    free(buf);
    close(in);
    if (close(outfd) != 0 && !rc)
        rc = RDML_FAIL(ctx, RDML_EIO, "%s: cannot write %s: %s", src, dst, strerror(errno));
    if (rc) unlink(dst);
    return rc;
}

int rdml_h5_open(rdml_ctx *ctx, MPI_Comm comm, const char *path, int writable, rdml_h5 **out) {
    *out = NULL;
    if (!path || !path[0])
        return rdml_agree(ctx, comm, RDML_FAIL(ctx, RDML_EINTERNAL, "rdml_h5_open: empty path"));
    rdml_h5 *h;
    RDML_TRY(handle_new(ctx, comm, path, writable ? 1 : 0, &h));
    int rc = RDML_OK;
    if (access(path, R_OK) != 0)
        rc = RDML_FAIL(ctx, RDML_EIO, "%s: cannot open results file: %s%s", path,
                       strerror(errno),
                       errno == ENOENT ? " (hint: run the stage that writes it first)" : "");
    else
        rc = not_a_folder(ctx, path);
    rc = rdml_agree(ctx, h->comm, rc);
    if (!rc && writable && h->rank == 0) side_remember(h);
    if (!rc && writable) rc = rdml_agree(ctx, h->comm, h->rank == 0 ? copy_file(ctx, path, h->tmp) : RDML_OK);
    if (!rc) {
        hid_t fapl = mpio_fapl(h);
        if (fapl < 0) rc = h5_fail(ctx, RDML_EIO, "%s: cannot set up MPI-IO file access", path);
        if (!rc) {
            h->file = H5Fopen(writable ? h->tmp : path, writable ? H5F_ACC_RDWR : H5F_ACC_RDONLY,
                              fapl);
            if (h->file < 0)
                rc = h5_fail(ctx, RDML_EFORMAT, "%s: cannot open as HDF5%s", path,
                             writable ? " (read-write copy)" : "");
        }
        if (fapl >= 0) H5Pclose(fapl);
        rc = rdml_agree(ctx, h->comm, rc);
    }
    if (rc) {
        rdml_h5_abort(&h);
        return rc;
    }
    *out = h;
    return RDML_OK;
}

int rdml_h5_commit(rdml_ctx *ctx, rdml_h5 **hp) {
    if (!hp || !*hp) return RDML_FAIL(ctx, RDML_EINTERNAL, "rdml_h5_commit: no open file");
    rdml_h5 *h = *hp;
    *hp = NULL;
    int rc = RDML_OK;
    if (h->side >= 0) { /* the side file first: durable before anything links to it */
        if (H5Fclose(h->side) < 0) rc = h5_fail(ctx, RDML_EIO, "%s: cannot close (flush) side "
                                                "file %s", h->path, h->side_path);
        h->side = -1;
        rc = rdml_agree(ctx, h->comm, rc);
        if (!rc && h->rank == 0) {
            int fd = open(h->side_path, O_RDONLY);
            if (fd < 0 || fsync(fd) != 0)
                rc = RDML_FAIL(ctx, RDML_EIO, "%s: cannot sync %s: %s", h->path, h->side_path,
                               strerror(errno));
            if (fd >= 0) close(fd);
        }
        rc = rdml_agree(ctx, h->comm, rc);
    }
    if (rc) {
        if (h->file >= 0) H5Fclose(h->file);
        h->file = -1;
        H5Eclear2(H5E_DEFAULT);
    } else if (h->file < 0) {
        rc = RDML_FAIL(ctx, RDML_EIO, "%s: not committed: the file was closed after an earlier "
                       "error", h->path);
    } else {
        herr_t e = H5Fclose(h->file);
        h->file = -1;
        if (e < 0) rc = h5_fail(ctx, RDML_EIO, "%s: cannot close (flush) the results file",
                                h->path);
    }
    rc = rdml_agree(ctx, h->comm, rc);
    if (h->writable) {
        if (h->rank == 0) {
            if (!rc) {
                /* Durable before visible: a file at the final path is always complete. */
                int fd = open(h->tmp, O_RDONLY);
                if (fd < 0 || fsync(fd) != 0)
                    rc = RDML_FAIL(ctx, RDML_EIO, "%s: cannot sync %s: %s", h->path, h->tmp,
                                   strerror(errno));
                if (fd >= 0) close(fd);
                if (!rc && rename(h->tmp, h->path) != 0)
                    rc = RDML_FAIL(ctx, RDML_EIO, "%s: cannot rename %s into place: %s",
                                   h->path, h->tmp, strerror(errno));
            }
            if (rc) {
                unlink(h->tmp);
                if (h->side_made) unlink(h->side_path);
                rmdir(h->side_dir);
            } else {
                side_collect(h);
            }
        }
        rc = rdml_agree(ctx, h->comm, rc);
    }
    handle_free(h);
    return rc;
}

void rdml_h5_abort(rdml_h5 **hp) {
    if (!hp || !*hp) return;
    rdml_h5 *h = *hp;
    *hp = NULL;
    if (h->file >= 0) H5Fclose(h->file);
    if (h->side >= 0) H5Fclose(h->side);
    H5Eclear2(H5E_DEFAULT);
    h->file = -1;
    h->side = -1;
    MPI_Barrier(h->comm); /* everyone closed before the file disappears */
    if (h->writable && h->rank == 0 && h->tmp) unlink(h->tmp);
    if (h->writable && h->rank == 0 && h->side_made) {
        unlink(h->side_path);
        rmdir(h->side_dir);
    }
    MPI_Barrier(h->comm);
    handle_free(h);
}

const char *rdml_h5_path(const rdml_h5 *h) { return h ? h->path : NULL; }

/* ---- groups ---- */

int rdml_h5_exists(rdml_ctx *ctx, rdml_h5 *h, const char *obj, int *exists) {
    NEED_HANDLE(h);
    *exists = 0;
    int rc = check_handle(ctx, h, obj, 0);
    if (!rc) {
        int e = h_exists(h, obj);
        if (e < 0) rc = RDML_FAIL(ctx, RDML_ENOMEM, "out of memory");
        *exists = e > 0;
    }
    return rdml_agree(ctx, h->comm, rc);
}

int rdml_h5_delete(rdml_ctx *ctx, rdml_h5 *h, const char *obj) {
    NEED_HANDLE(h);
    int rc = check_handle(ctx, h, obj, 1);
    if (!rc && path_exists(h->file, obj, h->lapl, 0) > 0 && unlink_obj(h, obj) < 0)
        rc = h5_fail(ctx, RDML_EDATA, "%s: cannot delete '%s'", h->path, obj);
    return rdml_agree(ctx, h->comm, rc);
}

int rdml_h5_group(rdml_ctx *ctx, rdml_h5 *h, const char *group) {
    NEED_HANDLE(h);
    int rc = check_handle(ctx, h, group, 1);
    if (!rc && strcmp(group, "/") != 0) {
        if (h_exists(h, group) > 0) {
            if (h_type(h, group) != H5O_TYPE_GROUP)
                rc = RDML_FAIL(ctx, RDML_EDATA, "%s: '%s' exists and is not a group", h->path,
                               group);
        } else {
            hid_t lcpl = intermediate_lcpl();
            hid_t g = H5Gcreate2(h->file, group, lcpl, H5P_DEFAULT, H5P_DEFAULT);
            if (g < 0)
                rc = h5_fail(ctx, RDML_EDATA, "%s: cannot create group '%s'", h->path, group);
            else
                H5Gclose(g);
            H5Pclose(lcpl);
        }
    }
    return rdml_agree(ctx, h->comm, rc);
}

int rdml_h5_list(rdml_ctx *ctx, rdml_h5 *h, const char *group, char ***names, int64_t *n) {
    NEED_HANDLE(h);
    *names = NULL;
    *n = 0;
    name_list l = {NULL, 0, 0, 0};
    int rc = check_handle(ctx, h, group, 0);
    if (!rc && h_exists(h, group) > 0) {
        hid_t g = H5Gopen2(h->file, group, h->lapl);
        hsize_t idx = 0;
        if (g < 0) rc = h5_fail(ctx, RDML_EFORMAT, "%s: cannot open group '%s'", h->path, group);
        else if (H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, &idx, name_list_cb, &l) < 0)
            rc = l.oom ? RDML_FAIL(ctx, RDML_ENOMEM, "out of memory listing '%s'", group)
                       : h5_fail(ctx, RDML_EFORMAT, "%s: cannot list group '%s'", h->path, group);
        if (g >= 0) H5Gclose(g);
    }
    rc = rdml_agree(ctx, h->comm, rc);
    if (rc) {
        rdml_h5_free_strings(l.names, l.n);
        return rc;
    }
    *names = l.names;
    *n = l.n;
    return RDML_OK;
}

/* ---- numeric row slabs ---- */

/* After a failed read: a chunk whose Fletcher-32 checksum does not match gets a hint. */
static void checksum_hint(rdml_ctx *ctx) {
    if (!strstr(ctx->msg, "Fletcher32") && !strstr(ctx->msg, "checksum")) return;
    size_t n = strlen(ctx->msg);
    snprintf(ctx->msg + n, sizeof ctx->msg - n, " (hint: the file is damaged: a stored checksum "
             "does not match its data; rerun the stage that wrote it with --force, or restore "
             "the file from a copy)");
}

/* Choose chunk dims of about H5_CHUNK_BYTES, never larger than the dataset. */
static void chunk_dims(int64_t rows, int64_t cols, size_t elsize, hsize_t chunk[2]) {
    int64_t row_bytes = cols * (int64_t)elsize;
    if (row_bytes >= H5_CHUNK_BYTES) {
        chunk[0] = 1;
        int64_t c = H5_CHUNK_BYTES / (int64_t)elsize;
        chunk[1] = (hsize_t)(c < cols ? c : cols);
    } else {
        int64_t r = H5_CHUNK_BYTES / row_bytes;
        chunk[0] = (hsize_t)(r < rows ? r : rows);
        chunk[1] = (hsize_t)cols;
    }
}

/* Open `dset` (checking dims and type class) or create it; returns the id or -1 (ctx set). */
static hid_t open_or_create_2d(rdml_ctx *ctx, rdml_h5 *h, const char *dset, int64_t rows,
                               int64_t cols, hid_t ftype) {
    H5T_class_t want_class = H5Tget_class(ftype);
    if (h_exists(h, dset) > 0) {
        if (h_type(h, dset) != H5O_TYPE_DATASET) {
            RDML_FAIL(ctx, RDML_EDATA, "%s: '%s' exists and is not a dataset", h->path, dset);
            return -1;
        }
        hid_t loc;
        char *name;
        if (locate_for_write(ctx, h, dset, &loc, &name)) return -1;
        hid_t d = H5Dopen2(loc, name, h->lapl);
        free(name);
        if (d < 0) {
            h5_fail(ctx, RDML_EFORMAT, "%s: cannot open dataset '%s'", h->path, dset);
            return -1;
        }
        hid_t sp = H5Dget_space(d), t = H5Dget_type(d);
        hsize_t dims[8] = {0};
        int nd = sp >= 0 ? H5Sget_simple_extent_ndims(sp) : -1;
        if (nd >= 0 && nd <= 8) H5Sget_simple_extent_dims(sp, dims, NULL);
        H5T_class_t cls = t >= 0 ? H5Tget_class(t) : H5T_NO_CLASS;
        if (sp >= 0) H5Sclose(sp);
        if (t >= 0) H5Tclose(t);
        if (nd != 2 || (int64_t)dims[0] != rows || (int64_t)dims[1] != cols) {
            char have[64];
            if (nd == 1) snprintf(have, sizeof have, "%llu (1-D)", (unsigned long long)dims[0]);
            else if (nd == 2)
                snprintf(have, sizeof have, "%llu x %llu", (unsigned long long)dims[0],
                         (unsigned long long)dims[1]);
            else snprintf(have, sizeof have, "%d dims", nd);
            RDML_FAIL(ctx, RDML_EDATA, "%s: dataset '%s' exists with shape %s, not %lld x %lld "
                      "(hint: write to a new name or start a new results file)", h->path, dset,
                      have, (long long)rows, (long long)cols);
            H5Dclose(d);
            return -1;
        }
        if (cls != want_class) {
            RDML_FAIL(ctx, RDML_EDATA, "%s: dataset '%s' exists with %s values, not %s",
                      h->path, dset, class_name(cls), class_name(want_class));
            H5Dclose(d);
            return -1;
        }
        return d;
    }
    hsize_t dims[2] = {(hsize_t)rows, (hsize_t)cols};
    hid_t sp = H5Screate_simple(2, dims, NULL);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    hid_t lcpl = intermediate_lcpl();
    hid_t d = -1;
    if (sp >= 0 && dcpl >= 0 && lcpl >= 0) {
        herr_t e = 0;
        if (rows > 0 && cols > 0) {
            hsize_t chunk[2];
            chunk_dims(rows, cols, H5Tget_size(ftype), chunk);
            e = H5Pset_chunk(dcpl, 2, chunk);
            /* a checksum per chunk: a damaged byte is a read error, not a wrong number */
            if (e >= 0) e = H5Pset_fletcher32(dcpl);
        }
        if (e >= 0)
            d = create_dataset(ctx, h, dset, ftype, sp, lcpl, dcpl,
                               rows * cols * (int64_t)H5Tget_size(ftype));
    }
    if (d < 0)
        h5_fail(ctx, RDML_EDATA, "%s: cannot create dataset '%s' (%lld x %lld)", h->path, dset,
                (long long)rows, (long long)cols);
    if (sp >= 0) H5Sclose(sp);
    if (dcpl >= 0) H5Pclose(dcpl);
    if (lcpl >= 0) H5Pclose(lcpl);
    return d;
}

/* Collective transfer of this rank's rows [row_lo, row_lo + nrows) of a rows x cols dataset. */
static int transfer_rows(rdml_ctx *ctx, rdml_h5 *h, hid_t d, const char *dset, int64_t cols,
                         int64_t row_lo, int64_t nrows, hid_t memtype, void *buf, int write) {
    int rc = RDML_OK;
    hid_t fsp = H5Dget_space(d);
    int empty = nrows == 0 || cols == 0;
    hsize_t mdims[2] = {empty ? 1 : (hsize_t)nrows, empty ? 1 : (hsize_t)cols};
    hid_t msp = H5Screate_simple(2, mdims, NULL);
    hid_t dxpl = H5Pcreate(H5P_DATASET_XFER);
    herr_t e = (fsp < 0 || msp < 0 || dxpl < 0) ? -1 : 0;
    /* Writes are collective (disjoint slabs, aggregated by MPI-IO). Reads are independent:
     * ranks may read overlapping rows, and Open MPI 4.1's collective read (OMPIO) returns
     * wrong bytes for overlapping requests (reproduced: 3 ranks, random overlapping spans). */
    if (e >= 0) e = H5Pset_dxpl_mpio(dxpl, write ? H5FD_MPIO_COLLECTIVE : H5FD_MPIO_INDEPENDENT);
    if (e >= 0 && empty) {
        e = H5Sselect_none(fsp);
        if (e >= 0) e = H5Sselect_none(msp);
    } else if (e >= 0) {
        hsize_t start[2] = {(hsize_t)row_lo, 0}, count[2] = {(hsize_t)nrows, (hsize_t)cols};
        e = H5Sselect_hyperslab(fsp, H5S_SELECT_SET, start, NULL, count, NULL);
    }
    if (e >= 0) {
        if (write) e = H5Dwrite(d, memtype, msp, fsp, dxpl, buf);
        else e = H5Dread(d, memtype, msp, fsp, dxpl, buf);
    }
    if (e < 0)
    {
        rc = h5_fail(ctx, RDML_EIO, "%s: cannot %s rows %lld..%lld of dataset '%s'", h->path,
                     write ? "write" : "read", (long long)row_lo, (long long)(row_lo + nrows),
                     dset);
        checksum_hint(ctx);
    }
    if (fsp >= 0) H5Sclose(fsp);
    if (msp >= 0) H5Sclose(msp);
    if (dxpl >= 0) H5Pclose(dxpl);
    return rc;
}

static int write_rows(rdml_ctx *ctx, rdml_h5 *h, const char *dset, int64_t rows, int64_t cols,
                      int64_t row_lo, int64_t nrows, const void *data, hid_t memtype,
                      hid_t ftype) {
    NEED_HANDLE(h);
    int rc = check_handle(ctx, h, dset, 1);
    if (!rc && (rows < 0 || cols < 0))
        rc = RDML_FAIL(ctx, RDML_EINTERNAL, "%s: dataset '%s': negative shape %lld x %lld",
                       h->path, dset, (long long)rows, (long long)cols);
    if (!rc && (row_lo < 0 || nrows < 0 || row_lo > rows || nrows > rows - row_lo))
        rc = RDML_FAIL(ctx, RDML_EINTERNAL,
                       "%s: dataset '%s': rows %lld..%lld are outside 0..%lld", h->path, dset,
                       (long long)row_lo, (long long)(row_lo + nrows), (long long)rows);
    if (!rc && nrows > 0 && cols > 0 && !data)
        rc = RDML_FAIL(ctx, RDML_EINTERNAL, "%s: dataset '%s': no data", h->path, dset);
    RDML_TRY(rdml_agree(ctx, h->comm, rc));

    hid_t d = open_or_create_2d(ctx, h, dset, rows, cols, ftype);
    rc = rdml_agree(ctx, h->comm, d < 0 ? ctx->code : RDML_OK);
    /* An empty dataset has no storage to transfer to (and MPI-IO would fail on its undefined
     * address); rows and cols are the same on all ranks, so all skip alike. */
    if (!rc && rows > 0 && cols > 0)
        rc = transfer_rows(ctx, h, d, dset, cols, row_lo, nrows, memtype, (void *)data, 1);
    if (d >= 0 && H5Dclose(d) < 0 && !rc)
        rc = h5_fail(ctx, RDML_EIO, "%s: cannot close dataset '%s'", h->path, dset);
    return rdml_agree(ctx, h->comm, rc);
}

int rdml_h5_write_rows_f32(rdml_ctx *ctx, rdml_h5 *h, const char *dset, int64_t rows,
                           int64_t cols, int64_t row_lo, int64_t nrows, const float *data) {
    NEED_HANDLE(h);
    return write_rows(ctx, h, dset, rows, cols, row_lo, nrows, data, H5T_NATIVE_FLOAT,
                      H5T_IEEE_F32LE);
}

int rdml_h5_write_rows_f64(rdml_ctx *ctx, rdml_h5 *h, const char *dset, int64_t rows,
                           int64_t cols, int64_t row_lo, int64_t nrows, const double *data) {
    NEED_HANDLE(h);
    return write_rows(ctx, h, dset, rows, cols, row_lo, nrows, data, H5T_NATIVE_DOUBLE,
                      H5T_IEEE_F64LE);
}

int rdml_h5_write_rows_i64(rdml_ctx *ctx, rdml_h5 *h, const char *dset, int64_t rows,
                           int64_t cols, int64_t row_lo, int64_t nrows, const int64_t *data) {
    NEED_HANDLE(h);
    return write_rows(ctx, h, dset, rows, cols, row_lo, nrows, data, H5T_NATIVE_INT64,
                      H5T_STD_I64LE);
}

/* A small 1-D vector that every rank holds: replaced if present, written by rank 0 in a
 * collective transfer (the others select nothing). */
static int write_vec(rdml_ctx *ctx, rdml_h5 *h, const char *dset, int64_t n, const void *data,
                     hid_t memtype, hid_t ftype) {
    NEED_HANDLE(h);
    int rc = check_handle(ctx, h, dset, 1);
    if (!rc && (n < 0 || (n > 0 && !data)))
        rc = RDML_FAIL(ctx, RDML_EINTERNAL, "%s: dataset '%s': bad vector (n = %lld)", h->path,
                       dset, (long long)n);
    if (!rc && path_exists(h->file, dset, h->lapl, 0) > 0 && unlink_obj(h, dset) < 0)
        rc = h5_fail(ctx, RDML_EDATA, "%s: cannot replace '%s'", h->path, dset);
    RDML_TRY(rdml_agree(ctx, h->comm, rc));
    hsize_t dims[1] = {(hsize_t)n}, chunk[1] = {(hsize_t)(n < 131072 ? n : 131072)};
    hid_t sp = H5Screate_simple(1, dims, NULL), lcpl = intermediate_lcpl();
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    /* chunked for the checksum (Fletcher-32 needs chunks; an empty dataset has neither) */
    if (n > 0 && dcpl >= 0 && (H5Pset_chunk(dcpl, 1, chunk) < 0 || H5Pset_fletcher32(dcpl) < 0))
        rc = h5_fail(ctx, RDML_EINTERNAL, "%s: cannot set up dataset '%s'", h->path, dset);
    hid_t d = rc || dcpl < 0 ? -1
                            : create_dataset(ctx, h, dset, ftype, sp, lcpl, dcpl,
                                             n * (int64_t)H5Tget_size(ftype));
    if (dcpl >= 0) H5Pclose(dcpl);
    if (d < 0 && !rc) rc = h5_fail(ctx, RDML_EDATA, "%s: cannot create dataset '%s'", h->path, dset);
    if (!rc && n > 0) {
        hid_t msp = H5Screate_simple(1, dims, NULL), dxpl = H5Pcreate(H5P_DATASET_XFER);
        herr_t e = H5Pset_dxpl_mpio(dxpl, H5FD_MPIO_COLLECTIVE);
        if (h->rank != 0) {
            H5Sselect_none(sp);
            H5Sselect_none(msp);
        }
        if (e >= 0) e = H5Dwrite(d, memtype, msp, sp, dxpl, data);
        if (e < 0) rc = h5_fail(ctx, RDML_EIO, "%s: cannot write '%s'", h->path, dset);
        H5Pclose(dxpl);
        H5Sclose(msp);
    }
    if (d >= 0) H5Dclose(d);
    H5Sclose(sp);
    H5Pclose(lcpl);
    return rdml_agree(ctx, h->comm, rc);
}

int rdml_h5_write_vec_i64(rdml_ctx *ctx, rdml_h5 *h, const char *dset, int64_t n,
                          const int64_t *data) {
    return write_vec(ctx, h, dset, n, data, H5T_NATIVE_INT64, H5T_STD_I64LE);
}

int rdml_h5_write_vec_f64(rdml_ctx *ctx, rdml_h5 *h, const char *dset, int64_t n,
                          const double *data) {
    return write_vec(ctx, h, dset, n, data, H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE);
}

/* Open an existing dataset with a clear message when it is missing. Not collective. */
static hid_t open_dataset(rdml_ctx *ctx, rdml_h5 *h, const char *dset) {
    if (h_exists(h, dset) <= 0) {
        if (missing_side(ctx, h, dset)) return -1;
        RDML_FAIL(ctx, RDML_EDATA, "%s: no dataset '%s' (hint: run the stage that writes it, "
                  "or check the name with h5ls -r)", h->path, dset);
        return -1;
    }
    if (h_type(h, dset) != H5O_TYPE_DATASET) {
        RDML_FAIL(ctx, RDML_EDATA, "%s: '%s' is a group, not a dataset", h->path, dset);
        return -1;
    }
    char *name;
    int foreign;
    hid_t loc = locate(h, dset, &name, &foreign);
    hid_t d = name ? H5Dopen2(loc, name, h->lapl) : -1;
    free(name);
    if (d < 0) h5_fail(ctx, RDML_EFORMAT, "%s: cannot open dataset '%s'", h->path, dset);
    return d;
}

/* Shape of an open dataset; -1 on failure (ctx set). */
static int dataset_dims(rdml_ctx *ctx, rdml_h5 *h, hid_t d, const char *dset, int *ndim,
                        hsize_t dims[8]) {
    hid_t sp = H5Dget_space(d);
    int nd = sp >= 0 ? H5Sget_simple_extent_ndims(sp) : -1;
    if (nd < 0 || nd > 8) {
        if (sp >= 0) H5Sclose(sp);
        return nd < 0 ? h5_fail(ctx, RDML_EFORMAT, "%s: cannot get the shape of '%s'", h->path,
                                dset)
                      : RDML_FAIL(ctx, RDML_EFORMAT, "%s: dataset '%s' has %d dims (max 8)",
                                  h->path, dset, nd);
    }
    H5Sget_simple_extent_dims(sp, dims, NULL);
    H5Sclose(sp);
    *ndim = nd;
    return RDML_OK;
}

static int read_rows(rdml_ctx *ctx, rdml_h5 *h, const char *dset, int64_t row_lo,
                     int64_t nrows, void *out, hid_t memtype) {
    NEED_HANDLE(h);
    int rc = check_handle(ctx, h, dset, 0);
    if (!rc && (row_lo < 0 || nrows < 0))
        rc = RDML_FAIL(ctx, RDML_EINTERNAL, "%s: dataset '%s': bad row range %lld + %lld",
                       h->path, dset, (long long)row_lo, (long long)nrows);
    RDML_TRY(rdml_agree(ctx, h->comm, rc));

    hid_t d = open_dataset(ctx, h, dset);
    int nd = 0;
    hsize_t dims[8] = {0};
    rc = d < 0 ? ctx->code : dataset_dims(ctx, h, d, dset, &nd, dims);
    if (!rc && nd != 1 && nd != 2)
        rc = RDML_FAIL(ctx, RDML_EDATA, "%s: dataset '%s' has %d dims; rows can be read from "
                       "1-D or 2-D datasets only", h->path, dset, nd);
    if (!rc) {
        hid_t t = H5Dget_type(d);
        H5T_class_t cls = t >= 0 ? H5Tget_class(t) : H5T_NO_CLASS;
        if (t >= 0) H5Tclose(t);
        if (cls != H5T_INTEGER && cls != H5T_FLOAT)
            rc = RDML_FAIL(ctx, RDML_EDATA, "%s: dataset '%s' holds %s values, not numbers",
                           h->path, dset, class_name(cls));
    }
    if (!rc && (hsize_t)row_lo + (hsize_t)nrows > dims[0])
        rc = RDML_FAIL(ctx, RDML_EDATA, "%s: dataset '%s' has %llu rows; cannot read rows "
                       "%lld..%lld", h->path, dset, (unsigned long long)dims[0],
                       (long long)row_lo, (long long)(row_lo + nrows));
    if (!rc && nrows > 0 && !out)
        rc = RDML_FAIL(ctx, RDML_EINTERNAL, "%s: dataset '%s': no output buffer", h->path, dset);
    rc = rdml_agree(ctx, h->comm, rc);
    int64_t cols = nd == 2 ? (int64_t)dims[1] : 1;
    if (!rc && dims[0] > 0 && cols > 0) { /* empty datasets have no storage: nothing to read */
        if (nd == 1) {
            /* 1-D: view as a column; select on the 1-D file space directly. */
            hid_t fsp = H5Dget_space(d);
            hsize_t m = nrows ? (hsize_t)nrows : 1;
            hid_t msp = H5Screate_simple(1, &m, NULL);
            hid_t dxpl = H5Pcreate(H5P_DATASET_XFER);
            herr_t e = (fsp < 0 || msp < 0 || dxpl < 0) ? -1 : 0;
            if (e >= 0) e = H5Pset_dxpl_mpio(dxpl, H5FD_MPIO_INDEPENDENT); /* see transfer_rows */
            if (e >= 0 && nrows == 0) {
                e = H5Sselect_none(fsp);
                if (e >= 0) e = H5Sselect_none(msp);
            } else if (e >= 0) {
                hsize_t start = (hsize_t)row_lo, count = (hsize_t)nrows;
                e = H5Sselect_hyperslab(fsp, H5S_SELECT_SET, &start, NULL, &count, NULL);
            }
            if (e >= 0) e = H5Dread(d, memtype, msp, fsp, dxpl, out);
            if (e < 0) {
                rc = h5_fail(ctx, RDML_EIO, "%s: cannot read rows %lld..%lld of dataset '%s'",
                             h->path, (long long)row_lo, (long long)(row_lo + nrows), dset);
                checksum_hint(ctx);
            }
            if (fsp >= 0) H5Sclose(fsp);
            if (msp >= 0) H5Sclose(msp);
            if (dxpl >= 0) H5Pclose(dxpl);
        } else {
            rc = transfer_rows(ctx, h, d, dset, cols, row_lo, nrows, memtype, out, 0);
        }
    }
    if (d >= 0) H5Dclose(d);
    return rdml_agree(ctx, h->comm, rc);
}

int rdml_h5_read_rows_f32(rdml_ctx *ctx, rdml_h5 *h, const char *dset, int64_t row_lo,
                          int64_t nrows, float *out) {
    NEED_HANDLE(h);
    return read_rows(ctx, h, dset, row_lo, nrows, out, H5T_NATIVE_FLOAT);
}

int rdml_h5_read_rows_f64(rdml_ctx *ctx, rdml_h5 *h, const char *dset, int64_t row_lo,
                          int64_t nrows, double *out) {
    NEED_HANDLE(h);
    return read_rows(ctx, h, dset, row_lo, nrows, out, H5T_NATIVE_DOUBLE);
}

int rdml_h5_read_rows_i64(rdml_ctx *ctx, rdml_h5 *h, const char *dset, int64_t row_lo,
                          int64_t nrows, int64_t *out) {
    NEED_HANDLE(h);
    return read_rows(ctx, h, dset, row_lo, nrows, out, H5T_NATIVE_INT64);
}

int rdml_h5_dims(rdml_ctx *ctx, rdml_h5 *h, const char *dset, int *ndim, int64_t *dims) {
    NEED_HANDLE(h);
    *ndim = 0;
    int rc = check_handle(ctx, h, dset, 0);
    if (!rc) {
        hid_t d = open_dataset(ctx, h, dset);
        hsize_t hd[8] = {0};
        int nd = 0;
        rc = d < 0 ? ctx->code : dataset_dims(ctx, h, d, dset, &nd, hd);
        if (!rc) {
            *ndim = nd;
            for (int i = 0; i < nd; i++) dims[i] = (int64_t)hd[i];
        }
        if (d >= 0) H5Dclose(d);
    }
    return rdml_agree(ctx, h->comm, rc);
}

/* ---- attributes ---- */

/* Create (or replace) attribute `name` on `obj` and write `buf` into it. Not collective itself;
 * callers on all ranks pass the same arguments. */
static int attr_write(rdml_ctx *ctx, rdml_h5 *h, const char *obj, const char *name,
                      hid_t ftype, hid_t mtype, hid_t space, const void *buf) {
    if (h_exists(h, obj) <= 0)
        return RDML_FAIL(ctx, RDML_EDATA, "%s: cannot set attribute '%s': no group or dataset "
                         "'%s'", h->path, name, obj);
    hid_t loc;
    char *where;
    int rc = locate_for_write(ctx, h, obj, &loc, &where);
    if (rc) return rc;
    hid_t o = H5Oopen(loc, where, h->lapl);
    free(where);
    if (o < 0) return h5_fail(ctx, RDML_EFORMAT, "%s: cannot open '%s'", h->path, obj);
    htri_t ex = H5Aexists(o, name);
    if (ex > 0 && H5Adelete(o, name) < 0)
        rc = h5_fail(ctx, RDML_EIO, "%s: cannot replace attribute '%s' of '%s'", h->path, name,
                     obj);
    if (!rc) {
        hid_t a = H5Acreate2(o, name, ftype, space, H5P_DEFAULT, H5P_DEFAULT);
        if (a < 0 || H5Awrite(a, mtype, buf) < 0)
            rc = h5_fail(ctx, RDML_EIO, "%s: cannot write attribute '%s' of '%s'", h->path, name,
                         obj);
        if (a >= 0) H5Aclose(a);
    }
    H5Oclose(o);
    return rc;
}

static int check_attr_args(rdml_ctx *ctx, rdml_h5 *h, const char *obj, const char *name,
                           int need_write) {
    int rc = check_handle(ctx, h, obj, need_write);
    if (!rc && (!name || !name[0]))
        rc = RDML_FAIL(ctx, RDML_EINTERNAL, "%s: empty attribute name on '%s'", h->path, obj);
    return rc;
}

int rdml_h5_attr_str(rdml_ctx *ctx, rdml_h5 *h, const char *obj, const char *name,
                     const char *value) {
    NEED_HANDLE(h);
    int rc = check_attr_args(ctx, h, obj, name, 1);
    if (!rc && !value)
        rc = RDML_FAIL(ctx, RDML_EINTERNAL, "%s: attribute '%s' of '%s': NULL string", h->path,
                       name, obj);
    if (!rc) {
        hid_t t = vlen_str_type();
        hid_t sp = H5Screate(H5S_SCALAR);
        if (t < 0 || sp < 0) rc = h5_fail(ctx, RDML_EINTERNAL, "cannot make a string type");
        else rc = attr_write(ctx, h, obj, name, t, t, sp, &value);
        if (t >= 0) H5Tclose(t);
        if (sp >= 0) H5Sclose(sp);
    }
    return rdml_agree(ctx, h->comm, rc);
}

static int attr_array(rdml_ctx *ctx, rdml_h5 *h, const char *obj, const char *name,
                      const void *values, int64_t n, hid_t ftype, hid_t mtype) {
    NEED_HANDLE(h);
    int rc = check_attr_args(ctx, h, obj, name, 1);
    if (!rc && (n < 0 || (n > 0 && !values)))
        rc = RDML_FAIL(ctx, RDML_EINTERNAL, "%s: attribute '%s' of '%s': bad count %lld",
                       h->path, name, obj, (long long)n);
    if (!rc) {
        /* One value is a scalar attribute (h5py gives a number, not a 1-element array). */
        hsize_t dim = (hsize_t)n;
        hid_t sp = n == 1 ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &dim, NULL);
        double dummy = 0;
        if (sp < 0) rc = h5_fail(ctx, RDML_EINTERNAL, "cannot make an attribute space");
        else rc = attr_write(ctx, h, obj, name, ftype, mtype, sp, n ? values : (void *)&dummy);
        if (sp >= 0) H5Sclose(sp);
    }
    return rdml_agree(ctx, h->comm, rc);
}

int rdml_h5_attr_i64(rdml_ctx *ctx, rdml_h5 *h, const char *obj, const char *name,
                     const int64_t *values, int64_t n) {
    NEED_HANDLE(h);
    return attr_array(ctx, h, obj, name, values, n, H5T_STD_I64LE, H5T_NATIVE_INT64);
}

int rdml_h5_attr_f64(rdml_ctx *ctx, rdml_h5 *h, const char *obj, const char *name,
                     const double *values, int64_t n) {
    NEED_HANDLE(h);
    return attr_array(ctx, h, obj, name, values, n, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE);
}

/* Open attribute `name` of `obj` (and the object). Not collective. */
static hid_t attr_open(rdml_ctx *ctx, rdml_h5 *h, const char *obj, const char *name, hid_t *o) {
    *o = -1;
    if (h_exists(h, obj) <= 0) {
        if (missing_side(ctx, h, obj)) return -1;
        RDML_FAIL(ctx, RDML_EDATA, "%s: cannot read attribute '%s': no group or dataset '%s'",
                  h->path, name, obj);
        return -1;
    }
    char *where;
    int foreign;
    hid_t loc = locate(h, obj, &where, &foreign);
    *o = where ? H5Oopen(loc, where, h->lapl) : -1;
    free(where);
    if (*o < 0) {
        h5_fail(ctx, RDML_EFORMAT, "%s: cannot open '%s'", h->path, obj);
        return -1;
    }
    if (H5Aexists(*o, name) <= 0) {
        RDML_FAIL(ctx, RDML_EDATA, "%s: '%s' has no attribute '%s'", h->path, obj, name);
        H5Oclose(*o);
        *o = -1;
        return -1;
    }
    hid_t a = H5Aopen(*o, name, H5P_DEFAULT);
    if (a < 0) {
        h5_fail(ctx, RDML_EFORMAT, "%s: cannot open attribute '%s' of '%s'", h->path, name, obj);
        H5Oclose(*o);
        *o = -1;
    }
    return a;
}

/* A fixed-length string element (as h5py or numpy 'S' data stores it) as a C string:
 * NULLPAD/NULLTERM end at the first NUL; with SPACEPAD trailing spaces are padding. */
static char *fixed_to_cstr(const char *src, size_t size, H5T_str_t pad) {
    char *s = malloc(size + 1);
    if (!s) return NULL;
    memcpy(s, src, size);
    s[size] = '\0';
    if (pad == H5T_STR_SPACEPAD)
        for (size_t k = strlen(s); k > 0 && s[k - 1] == ' '; k--) s[k - 1] = '\0';
    return s;
}

int rdml_h5_get_attr_str(rdml_ctx *ctx, rdml_h5 *h, const char *obj, const char *name,
                         char **value) {
    NEED_HANDLE(h);
    *value = NULL;
    int rc = check_attr_args(ctx, h, obj, name, 0);
    hid_t o = -1, a = -1, t = -1, sp = -1;
    if (!rc) {
        a = attr_open(ctx, h, obj, name, &o);
        if (a < 0) rc = ctx->code;
    }
    if (!rc) {
        t = H5Aget_type(a);
        sp = H5Aget_space(a);
        if (t < 0 || sp < 0 || H5Tget_class(t) != H5T_STRING || H5Sget_simple_extent_npoints(sp) != 1)
            rc = RDML_FAIL(ctx, RDML_EDATA, "%s: attribute '%s' of '%s' is not a single string",
                           h->path, name, obj);
    }
    if (!rc && H5Tis_variable_str(t) > 0) {
        hid_t mt = vlen_str_type();
        char *s = NULL;
        if (mt < 0 || H5Tset_cset(mt, H5Tget_cset(t)) < 0 || H5Aread(a, mt, &s) < 0)
            rc = h5_fail(ctx, RDML_EIO, "%s: cannot read attribute '%s' of '%s'", h->path, name,
                         obj);
        else {
            *value = rdml_strdup(ctx, s ? s : "");
            if (!*value) rc = ctx->code;
            H5Dvlen_reclaim(mt, sp, H5P_DEFAULT, &s);
        }
        if (mt >= 0) H5Tclose(mt);
    } else if (!rc) {
        size_t size = H5Tget_size(t);
        char *buf = calloc(size + 1, 1);
        if (!buf) rc = RDML_FAIL(ctx, RDML_ENOMEM, "out of memory");
        else if (H5Aread(a, t, buf) < 0)
            rc = h5_fail(ctx, RDML_EIO, "%s: cannot read attribute '%s' of '%s'", h->path, name,
                         obj);
        else if (!(*value = fixed_to_cstr(buf, size, H5Tget_strpad(t))))
            rc = RDML_FAIL(ctx, RDML_ENOMEM, "out of memory");
        free(buf);
    }
    if (sp >= 0) H5Sclose(sp);
    if (t >= 0) H5Tclose(t);
    if (a >= 0) H5Aclose(a);
    if (o >= 0) H5Oclose(o);
    rc = rdml_agree(ctx, h->comm, rc);
    if (rc) {
        free(*value);
        *value = NULL;
    }
    return rc;
}

static int get_attr_array(rdml_ctx *ctx, rdml_h5 *h, const char *obj, const char *name,
                          void *values, int64_t cap, int64_t *n, hid_t mtype, size_t elsize) {
    NEED_HANDLE(h);
    *n = 0;
    int rc = check_attr_args(ctx, h, obj, name, 0);
    hid_t o = -1, a = -1, t = -1, sp = -1;
    if (!rc) {
        a = attr_open(ctx, h, obj, name, &o);
        if (a < 0) rc = ctx->code;
    }
    hssize_t np = 0;
    if (!rc) {
        t = H5Aget_type(a);
        sp = H5Aget_space(a);
        H5T_class_t cls = t >= 0 ? H5Tget_class(t) : H5T_NO_CLASS;
        np = sp >= 0 ? H5Sget_simple_extent_npoints(sp) : -1;
        if ((cls != H5T_INTEGER && cls != H5T_FLOAT) || np < 0)
            rc = RDML_FAIL(ctx, RDML_EDATA, "%s: attribute '%s' of '%s' holds %s values, not "
                           "numbers", h->path, name, obj, class_name(cls));
    }
    if (!rc && np > 0) {
        char *buf = malloc((size_t)np * elsize);
        if (!buf) rc = RDML_FAIL(ctx, RDML_ENOMEM, "out of memory");
        else if (H5Aread(a, mtype, buf) < 0)
            rc = h5_fail(ctx, RDML_EIO, "%s: cannot read attribute '%s' of '%s'", h->path, name,
                         obj);
        else {
            int64_t keep = np < cap ? np : cap;
            if (keep > 0) memcpy(values, buf, (size_t)keep * elsize);
            *n = keep;
        }
        free(buf);
    }
    if (sp >= 0) H5Sclose(sp);
    if (t >= 0) H5Tclose(t);
    if (a >= 0) H5Aclose(a);
    if (o >= 0) H5Oclose(o);
    rc = rdml_agree(ctx, h->comm, rc);
    if (rc) *n = 0;
    return rc;
}

int rdml_h5_get_attr_i64(rdml_ctx *ctx, rdml_h5 *h, const char *obj, const char *name,
                         int64_t *values, int64_t cap, int64_t *n) {
    NEED_HANDLE(h);
    return get_attr_array(ctx, h, obj, name, values, cap, n, H5T_NATIVE_INT64, sizeof(int64_t));
}

int rdml_h5_get_attr_f64(rdml_ctx *ctx, rdml_h5 *h, const char *obj, const char *name,
                         double *values, int64_t cap, int64_t *n) {
    NEED_HANDLE(h);
    return get_attr_array(ctx, h, obj, name, values, cap, n, H5T_NATIVE_DOUBLE, sizeof(double));
}

/* ---- string lists ---- */

/* Rank 0 only, on a serial (sec2) handle of the temporary file: create or overwrite the 1-D
 * variable-length UTF-8 string dataset. */
static int write_strings_serial(rdml_ctx *ctx, rdml_h5 *h, hid_t file, const char *dset,
                                const char *const *strs, int64_t n) {
    int rc = RDML_OK;
    hid_t t = vlen_str_type(), d = -1, sp = -1;
    if (t < 0) return h5_fail(ctx, RDML_EINTERNAL, "cannot make a string type");
    if (path_exists(file, dset, H5P_DEFAULT, 1) > 0) {
        d = H5Dopen2(file, dset, H5P_DEFAULT);
        if (d < 0) rc = h5_fail(ctx, RDML_EFORMAT, "%s: cannot open dataset '%s'", h->path, dset);
        if (!rc) {
            hid_t ft = H5Dget_type(d);
            sp = H5Dget_space(d);
            hsize_t dim = 0;
            int nd = sp >= 0 ? H5Sget_simple_extent_ndims(sp) : -1;
            if (nd == 1) H5Sget_simple_extent_dims(sp, &dim, NULL);
            if (ft < 0 || H5Tget_class(ft) != H5T_STRING || H5Tis_variable_str(ft) <= 0 ||
                nd != 1 || (int64_t)dim != n)
                rc = RDML_FAIL(ctx, RDML_EDATA, "%s: dataset '%s' exists and is not a list of "
                               "%lld strings (hint: write to a new name)", h->path, dset,
                               (long long)n);
            if (ft >= 0) H5Tclose(ft);
        }
    } else {
        hsize_t dim = (hsize_t)n;
        sp = H5Screate_simple(1, &dim, NULL);
        hid_t lcpl = intermediate_lcpl();
        d = sp >= 0 && lcpl >= 0 ? H5Dcreate2(file, dset, t, sp, lcpl, H5P_DEFAULT, H5P_DEFAULT)
                                 : -1;
        if (d < 0) rc = h5_fail(ctx, RDML_EDATA, "%s: cannot create dataset '%s'", h->path, dset);
        if (lcpl >= 0) H5Pclose(lcpl);
    }
    if (!rc && n > 0 && H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, strs) < 0)
        rc = h5_fail(ctx, RDML_EIO, "%s: cannot write the strings of '%s'", h->path, dset);
    if (d >= 0) H5Dclose(d);
    if (sp >= 0) H5Sclose(sp);
    H5Tclose(t);
    return rc;
}

int rdml_h5_write_strings(rdml_ctx *ctx, rdml_h5 *h, const char *dset,
                          const char *const *strs, int64_t n) {
    NEED_HANDLE(h);
    int rc = check_handle(ctx, h, dset, 1);
    if (!rc && (n < 0 || (n > 0 && !strs)))
        rc = RDML_FAIL(ctx, RDML_EINTERNAL, "%s: dataset '%s': bad string count %lld", h->path,
                       dset, (long long)n);
    for (int64_t i = 0; !rc && i < n; i++)
        if (!strs[i])
            rc = RDML_FAIL(ctx, RDML_EINTERNAL, "%s: dataset '%s': string %lld is NULL",
                           h->path, dset, (long long)i);
    if (!rc && h_exists(h, dset) > 0 && h_type(h, dset) != H5O_TYPE_DATASET)
        rc = RDML_FAIL(ctx, RDML_EDATA, "%s: '%s' exists and is not a dataset", h->path, dset);
    RDML_TRY(rdml_agree(ctx, h->comm, rc));

    /* The MPI-IO driver refuses variable-length writes: close on all ranks, write serially on
     * rank 0, reopen on all ranks. */
    herr_t e = H5Fclose(h->file);
    h->file = -1;
    if (e < 0) rc = h5_fail(ctx, RDML_EIO, "%s: cannot close the file to write '%s'", h->path, dset);
    rc = rdml_agree(ctx, h->comm, rc);
    if (!rc && h->rank == 0) {
        hid_t f = H5Fopen(h->tmp, H5F_ACC_RDWR, H5P_DEFAULT);
        if (f < 0)
            rc = h5_fail(ctx, RDML_EIO, "%s: cannot reopen %s on rank 0", h->path, h->tmp);
        else {
            rc = write_strings_serial(ctx, h, f, dset, strs, n);
            if (H5Fclose(f) < 0 && !rc)
                rc = h5_fail(ctx, RDML_EIO, "%s: cannot close %s on rank 0", h->path, h->tmp);
        }
    }
    int rc_write = rdml_agree(ctx, h->comm, rc);
    /* Reopen even after a failed write, so that the handle stays usable (or abortable). */
    rc = RDML_OK;
    hid_t fapl = mpio_fapl(h);
    if (fapl >= 0) h->file = H5Fopen(h->tmp, H5F_ACC_RDWR, fapl);
    if (fapl < 0 || h->file < 0)
        rc = h5_fail(ctx, RDML_EIO, "%s: cannot reopen %s after writing '%s'", h->path, h->tmp,
                     dset);
    if (fapl >= 0) H5Pclose(fapl);
    rc = rdml_agree(ctx, h->comm, rc);
    return rc_write ? rc_write : rc;
}

void rdml_h5_free_strings(char **strs, int64_t n) {
    if (!strs) return;
    for (int64_t i = 0; i < n; i++) free(strs[i]);
    free(strs);
}

int rdml_h5_read_strings(rdml_ctx *ctx, rdml_h5 *h, const char *dset, char ***strs,
                         int64_t *n) {
    NEED_HANDLE(h);
    *strs = NULL;
    *n = 0;
    int rc = check_handle(ctx, h, dset, 0);
    hid_t d = -1, t = -1, sp = -1;
    int nd = 0;
    hsize_t dims[8] = {0};
    if (!rc) {
        d = open_dataset(ctx, h, dset);
        rc = d < 0 ? ctx->code : dataset_dims(ctx, h, d, dset, &nd, dims);
    }
    if (!rc) {
        t = H5Dget_type(d);
        sp = H5Dget_space(d);
        if (t < 0 || sp < 0 || H5Tget_class(t) != H5T_STRING || nd != 1)
            rc = RDML_FAIL(ctx, RDML_EDATA, "%s: dataset '%s' is not a 1-D list of strings",
                           h->path, dset);
    }
    char **out = NULL;
    int64_t cnt = nd == 1 ? (int64_t)dims[0] : 0;
    if (!rc) {
        out = calloc(cnt ? (size_t)cnt : 1, sizeof *out);
        if (!out) rc = RDML_FAIL(ctx, RDML_ENOMEM, "out of memory for %lld strings",
                                 (long long)cnt);
    }
    if (!rc && cnt > 0 && H5Tis_variable_str(t) > 0) {
        hid_t mt = vlen_str_type();
        char **raw = calloc((size_t)cnt, sizeof *raw);
        if (mt < 0 || !raw || H5Tset_cset(mt, H5Tget_cset(t)) < 0)
            rc = RDML_FAIL(ctx, RDML_ENOMEM, "out of memory reading '%s'", dset);
        else if (H5Dread(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, raw) < 0)
            rc = h5_fail(ctx, RDML_EIO, "%s: cannot read the strings of '%s'", h->path, dset);
        else {
            for (int64_t i = 0; i < cnt && !rc; i++)
                if (!(out[i] = strdup(raw[i] ? raw[i] : "")))
                    rc = RDML_FAIL(ctx, RDML_ENOMEM, "out of memory");
            H5Dvlen_reclaim(mt, sp, H5P_DEFAULT, raw);
        }
        free(raw);
        if (mt >= 0) H5Tclose(mt);
    } else if (!rc && cnt > 0) {
        size_t size = H5Tget_size(t);
        char *buf = malloc((size_t)cnt * size);
        if (!buf) rc = RDML_FAIL(ctx, RDML_ENOMEM, "out of memory reading '%s'", dset);
        else if (H5Dread(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0)
            rc = h5_fail(ctx, RDML_EIO, "%s: cannot read the strings of '%s'", h->path, dset);
        for (int64_t i = 0; i < cnt && !rc; i++)
            if (!(out[i] = fixed_to_cstr(buf + (size_t)i * size, size, H5Tget_strpad(t))))
                rc = RDML_FAIL(ctx, RDML_ENOMEM, "out of memory");
        free(buf);
    }
    if (sp >= 0) H5Sclose(sp);
    if (t >= 0) H5Tclose(t);
    if (d >= 0) H5Dclose(d);
    rc = rdml_agree(ctx, h->comm, rc);
    if (rc) {
        rdml_h5_free_strings(out, cnt);
        return rc;
    }
    *strs = out;
    *n = cnt;
    return RDML_OK;
}
