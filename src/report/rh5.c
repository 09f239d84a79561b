/* A serial, read-only view of a results file for the report: the report is drawn by one rank,
 * and it needs what the collective rdml_h5 wrapper does not offer (listing a group's
 * members, reading attributes that may be absent without an error). Plain HDF5 calls with
 * the default (sec2) driver; HDF5's own error stack printing is switched off and every
 * failure becomes a message naming the file and the object. Left out: writing, compound
 * and fixed-length string datasets (the results file has none), datasets of more than 2
 * dimensions for row reads. */
#include <hdf5.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "report/report_priv.h"

struct rdml_rh5 {
    hid_t file;
    char *path;
};

static void quiet(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

int rdml_rh5_open(rdml_ctx *ctx, const char *path, rdml_rh5 **out) {
    *out = NULL;
    quiet();
    if (access(path, R_OK) != 0)
        return RDML_FAIL(ctx, RDML_EIO, "%s: cannot open results file: %s%s", path, strerror(errno),
                         errno == ENOENT ? " (hint: check the path, or run a stage that writes it)"
                                         : "");
    if (H5Fis_hdf5(path) <= 0)
        return RDML_FAIL(ctx, RDML_EFORMAT,
                         "%s: not a readable HDF5 file (truncated or not a results file? hint: "
                         "rerun the stage that wrote it; an interrupted copy leaves a short file)",
                         path);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0)
        return RDML_FAIL(ctx, RDML_EFORMAT,
                         "%s: cannot open as HDF5 (truncated or corrupt? hint: rerun the stage "
                         "that wrote it)", path);
    rdml_rh5 *r = rdml_calloc(ctx, 1, sizeof *r, "results reader");
    char *p = r ? rdml_strdup(ctx, path) : NULL;
    if (!r || !p) {
        free(r);
        H5Fclose(f);
        return ctx->code;
    }
    r->file = f;
    r->path = p;
    *out = r;
    return RDML_OK;
}

void rdml_rh5_close(rdml_rh5 **r) {
    if (!r || !*r) return;
    H5Fclose((*r)->file);
    free((*r)->path);
    free(*r);
    *r = NULL;
}

const char *rdml_rh5_path(const rdml_rh5 *r) { return r->path; }

int rdml_rh5_exists(const rdml_rh5 *r, const char *obj) {
    if (!obj || obj[0] != '/') return 0;
    if (strcmp(obj, "/") == 0) return 1;
    char buf[1024];
    if (rdml_strlcpy(buf, obj, sizeof buf) >= sizeof buf) return 0;
    /* H5Lexists fails on a missing intermediate group, so test each prefix */
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            htri_t e = H5Lexists(r->file, buf, H5P_DEFAULT);
            if (e <= 0) return 0;
            if (H5Oexists_by_name(r->file, buf, H5P_DEFAULT) <= 0) return 0;
            *p = c;
            if (c == '\0') return 1;
        }
    }
}

int rdml_rh5_kind(const rdml_rh5 *r, const char *obj) {
    if (!rdml_rh5_exists(r, obj)) return -1;
    H5O_info_t info;
    if (H5Oget_info_by_name2(r->file, obj, &info, H5O_INFO_BASIC, H5P_DEFAULT) < 0) return -1;
    if (info.type == H5O_TYPE_DATASET) return 1;
    if (info.type == H5O_TYPE_GROUP) return 0;
    return -1;
}

typedef struct name_list {
    rdml_ctx *ctx;
    char **names;
    int n, cap;
    int failed;
} name_list;

static int push_name(name_list *l, const char *name) {
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 16;
        char **p = rdml_realloc(l->ctx, l->names, (size_t)cap * sizeof *p, "name list");
        if (!p) return -1;
        l->names = p;
        l->cap = cap;
    }
    l->names[l->n] = rdml_strdup(l->ctx, name);
    if (!l->names[l->n]) return -1;
    l->n++;
    return 0;
}

/* The iteration callbacks of links and attributes: collect the name, stop on failure. */
static herr_t collect(const char *name, name_list *l) {
    if (push_name(l, name)) {
        l->failed = 1;
        return -1;
    }
    return 0;
}

static herr_t link_cb(hid_t g, const char *name, const H5L_info_t *info, void *data) {
    (void)g;
    (void)info;
    return collect(name, data);
}

static herr_t attr_cb(hid_t loc, const char *name, const H5A_info_t *info, void *data) {
    (void)loc;
    (void)info;
    return collect(name, data);
}

void rdml_rh5_free_names(char **names, int n) {
    if (!names) return;
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
}

int rdml_rh5_list(rdml_ctx *ctx, const rdml_rh5 *r, const char *group, char ***names, int *n) {
    *names = NULL;
    *n = 0;
    if (rdml_rh5_kind(r, group) != 0) return RDML_OK;
    hid_t g = H5Gopen2(r->file, group, H5P_DEFAULT);
    if (g < 0) return RDML_FAIL(ctx, RDML_EFORMAT, "%s: cannot open group %s", r->path, group);
    name_list l = {ctx, NULL, 0, 0, 0};
    hsize_t idx = 0;
    herr_t e = H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, &idx, link_cb, &l);
    H5Gclose(g);
    if (l.failed) {
        rdml_rh5_free_names(l.names, l.n);
        return ctx->code;
    }
    if (e < 0) {
        rdml_rh5_free_names(l.names, l.n);
        return RDML_FAIL(ctx, RDML_EFORMAT, "%s: cannot list group %s (corrupt file?)", r->path,
                         group);
    }
    *names = l.names;
    *n = l.n;
    return RDML_OK;
}

int rdml_rh5_attr_names(rdml_ctx *ctx, const rdml_rh5 *r, const char *obj, char ***names,
                        int *n) {
    *names = NULL;
    *n = 0;
    if (!rdml_rh5_exists(r, obj)) return RDML_OK;
    hid_t o = H5Oopen(r->file, obj, H5P_DEFAULT);
    if (o < 0) return RDML_FAIL(ctx, RDML_EFORMAT, "%s: cannot open %s", r->path, obj);
    name_list l = {ctx, NULL, 0, 0, 0};
    hsize_t idx = 0;
    herr_t e = H5Aiterate2(o, H5_INDEX_NAME, H5_ITER_INC, &idx, attr_cb, &l);
    H5Oclose(o);
    if (l.failed || e < 0) {
        rdml_rh5_free_names(l.names, l.n);
        if (l.failed) return ctx->code;
        return RDML_FAIL(ctx, RDML_EFORMAT, "%s: cannot list the attributes of %s", r->path, obj);
    }
    *names = l.names;
    *n = l.n;
    return RDML_OK;
}

int rdml_rh5_dims(rdml_ctx *ctx, const rdml_rh5 *r, const char *dset, int *ndim, int64_t *dims) {
    *ndim = 0;
    if (rdml_rh5_kind(r, dset) != 1)
        return RDML_FAIL(ctx, RDML_EDATA, "%s: no dataset %s", r->path, dset);
    hid_t d = H5Dopen2(r->file, dset, H5P_DEFAULT);
    hid_t sp = d >= 0 ? H5Dget_space(d) : -1;
    int nd = sp >= 0 ? H5Sget_simple_extent_ndims(sp) : -1;
    hsize_t hd[H5S_MAX_RANK];
    if (nd >= 0 && nd <= 8 && H5Sget_simple_extent_dims(sp, hd, NULL) >= 0) {
        *ndim = nd;
        for (int i = 0; i < nd; i++) dims[i] = (int64_t)hd[i];
    } else {
        nd = -1;
    }
    if (sp >= 0) H5Sclose(sp);
    if (d >= 0) H5Dclose(d);
    if (nd < 0) return RDML_FAIL(ctx, RDML_EFORMAT, "%s: cannot read the shape of %s", r->path, dset);
    return RDML_OK;
}

static int read_all(rdml_ctx *ctx, const rdml_rh5 *r, const char *dset, hid_t mtype,
                    size_t elsize, void **out, int64_t *count) {
    *out = NULL;
    *count = 0;
    int nd;
    int64_t dims[8];
    RDML_TRY(rdml_rh5_dims(ctx, r, dset, &nd, dims));
    int64_t total = 1;
    for (int i = 0; i < nd; i++) total *= dims[i];
    void *buf = rdml_malloc(ctx, (size_t)(total > 0 ? total : 1) * elsize, dset);
    if (!buf) return ctx->code;
    hid_t d = H5Dopen2(r->file, dset, H5P_DEFAULT);
    hid_t t = d >= 0 ? H5Dget_type(d) : -1;
    int ok = t >= 0 && (H5Tget_class(t) == H5T_INTEGER || H5Tget_class(t) == H5T_FLOAT);
    if (ok && total > 0) ok = H5Dread(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0;
    if (t >= 0) H5Tclose(t);
    if (d >= 0) H5Dclose(d);
    if (!ok) {
        free(buf);
        return RDML_FAIL(ctx, RDML_EFORMAT, "%s: cannot read dataset %s as numbers (corrupt or "
                         "truncated file?)", r->path, dset);
    }
    *out = buf;
    *count = total;
    return RDML_OK;
}

int rdml_rh5_read_f64(rdml_ctx *ctx, const rdml_rh5 *r, const char *dset, double **out,
                      int64_t *count) {
    void *p;
    int rc = read_all(ctx, r, dset, H5T_NATIVE_DOUBLE, sizeof(double), &p, count);
    *out = p;
    return rc;
}

int rdml_rh5_read_i64(rdml_ctx *ctx, const rdml_rh5 *r, const char *dset, int64_t **out,
                      int64_t *count) {
    void *p;
    int rc = read_all(ctx, r, dset, H5T_NATIVE_INT64, sizeof(int64_t), &p, count);
    *out = p;
    return rc;
}

int rdml_rh5_read_rows_f32(rdml_ctx *ctx, const rdml_rh5 *r, const char *dset, int64_t row_lo,
                           int64_t nrows, int64_t cols, float *out) {
    int nd;
    int64_t dims[8];
    RDML_TRY(rdml_rh5_dims(ctx, r, dset, &nd, dims));
    if (nd != 2 || dims[1] != cols || row_lo < 0 || nrows < 0 || row_lo + nrows > dims[0])
        return RDML_FAIL(ctx, RDML_EINTERNAL, "%s: rows [%lld, %lld) x %lld do not fit %s",
                         r->path, (long long)row_lo, (long long)(row_lo + nrows), (long long)cols,
                         dset);
    if (nrows == 0) return RDML_OK;
    hid_t d = H5Dopen2(r->file, dset, H5P_DEFAULT);
    hid_t fs = d >= 0 ? H5Dget_space(d) : -1;
    hsize_t start[2] = {(hsize_t)row_lo, 0}, cnt[2] = {(hsize_t)nrows, (hsize_t)cols};
    hid_t ms = H5Screate_simple(2, cnt, NULL);
    int ok = fs >= 0 && ms >= 0 &&
             H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, cnt, NULL) >= 0 &&
             H5Dread(d, H5T_NATIVE_FLOAT, ms, fs, H5P_DEFAULT, out) >= 0;
    if (ms >= 0) H5Sclose(ms);
    if (fs >= 0) H5Sclose(fs);
    if (d >= 0) H5Dclose(d);
    if (!ok)
        return RDML_FAIL(ctx, RDML_EFORMAT, "%s: cannot read rows [%lld, %lld) of %s (corrupt or "
                         "truncated file?)", r->path, (long long)row_lo,
                         (long long)(row_lo + nrows), dset);
    return RDML_OK;
}

int rdml_rh5_read_strings(rdml_ctx *ctx, const rdml_rh5 *r, const char *dset, char ***strs,
                          int64_t *n) {
    *strs = NULL;
    *n = 0;
    int nd;
    int64_t dims[8];
    RDML_TRY(rdml_rh5_dims(ctx, r, dset, &nd, dims));
    hid_t d = H5Dopen2(r->file, dset, H5P_DEFAULT);
    hid_t t = d >= 0 ? H5Dget_type(d) : -1;
    if (nd != 1 || t < 0 || H5Tget_class(t) != H5T_STRING || H5Tis_variable_str(t) <= 0) {
        if (t >= 0) H5Tclose(t);
        if (d >= 0) H5Dclose(d);
        return RDML_FAIL(ctx, RDML_EFORMAT, "%s: %s is not a 1-D variable-length string dataset",
                         r->path, dset);
    }
    int64_t cnt = dims[0];
    char **raw = rdml_calloc(ctx, (size_t)cnt + 1, sizeof *raw, dset);
    char **res = rdml_calloc(ctx, (size_t)cnt + 1, sizeof *res, dset);
    hid_t mt = H5Tcopy(H5T_C_S1);
    int rc = raw && res ? RDML_OK : ctx->code;
    if (!rc && (mt < 0 || H5Tset_size(mt, H5T_VARIABLE) < 0 || H5Tset_cset(mt, H5Tget_cset(t)) < 0))
        rc = RDML_FAIL(ctx, RDML_EINTERNAL, "%s: cannot set up a string type", r->path);
    if (!rc && cnt > 0) {
        if (H5Dread(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, raw) < 0) {
            rc = RDML_FAIL(ctx, RDML_EFORMAT, "%s: cannot read strings %s", r->path, dset);
        } else {
            for (int64_t i = 0; i < cnt && !rc; i++) {
                res[i] = rdml_strdup(ctx, raw[i] ? raw[i] : "");
                if (!res[i]) rc = ctx->code;
            }
            hid_t sp = H5Dget_space(d);
            H5Dvlen_reclaim(mt, sp, H5P_DEFAULT, raw);
            H5Sclose(sp);
        }
    }
    if (mt >= 0) H5Tclose(mt);
    H5Tclose(t);
    H5Dclose(d);
    free(raw);
    if (rc) {
        if (res)
            for (int64_t i = 0; i < cnt; i++) free(res[i]);
        free(res);
        return rc;
    }
    *strs = res;
    *n = cnt;
    return RDML_OK;
}

/* The attribute and, in *o, its object, kept open while the attribute is read: an object
 * reached through an external link (a large dataset in the side file, docs/results.md)
 * lives in a file that stays open only as long as the object does. */
static hid_t open_attr(const rdml_rh5 *r, const char *obj, const char *name, hid_t *o) {
    *o = -1;
    if (!rdml_rh5_exists(r, obj)) return -1;
    *o = H5Oopen(r->file, obj, H5P_DEFAULT);
    hid_t a = *o >= 0 && H5Aexists(*o, name) > 0 ? H5Aopen(*o, name, H5P_DEFAULT) : -1;
    if (a < 0 && *o >= 0) {
        H5Oclose(*o);
        *o = -1;
    }
    return a;
}

double rdml_rh5_num(const rdml_rh5 *r, const char *obj, const char *name, double dflt) {
    hid_t o, a = open_attr(r, obj, name, &o);
    if (a < 0) return dflt;
    double v = dflt;
    hid_t t = H5Aget_type(a), sp = H5Aget_space(a);
    hssize_t np = sp >= 0 ? H5Sget_simple_extent_npoints(sp) : -1;
    if (t >= 0 && np >= 1 && np <= 1024 &&
        (H5Tget_class(t) == H5T_INTEGER || H5Tget_class(t) == H5T_FLOAT)) {
        double buf[1024];
        if (H5Aread(a, H5T_NATIVE_DOUBLE, buf) >= 0) v = buf[0];
    }
    if (sp >= 0) H5Sclose(sp);
    if (t >= 0) H5Tclose(t);
    H5Aclose(a);
    H5Oclose(o);
    return v;
}

char *rdml_rh5_str(const rdml_rh5 *r, const char *obj, const char *name) {
    hid_t o, a = open_attr(r, obj, name, &o);
    if (a < 0) return NULL;
    char *res = NULL;
    hid_t t = H5Aget_type(a);
    if (t >= 0 && H5Tget_class(t) == H5T_STRING) {
        if (H5Tis_variable_str(t) > 0) {
            hid_t mt = H5Tcopy(H5T_C_S1);
            char *s = NULL;
            H5Tset_size(mt, H5T_VARIABLE);
            H5Tset_cset(mt, H5Tget_cset(t));
            hid_t sp = H5Aget_space(a);
            if (H5Sget_simple_extent_npoints(sp) == 1 && H5Aread(a, mt, &s) >= 0 && s) {
                res = strdup(s);
                H5Dvlen_reclaim(mt, sp, H5P_DEFAULT, &s);
            }
            H5Sclose(sp);
            H5Tclose(mt);
        } else {
            size_t sz = H5Tget_size(t);
            char *s = calloc(sz + 1, 1);
            if (s && H5Aread(a, t, s) >= 0) res = s;
            else free(s);
        }
    } else if (t >= 0) {
        H5Tclose(t);
        t = -1;
        H5Aclose(a);
        H5Oclose(o);
        double v = rdml_rh5_num(r, obj, name, NAN);
        if (isnan(v)) return NULL;
        char buf[64];
        snprintf(buf, sizeof buf, "%.6g", v);
        return strdup(buf);
    }
    if (t >= 0) H5Tclose(t);
    H5Aclose(a);
    H5Oclose(o);
    return res;
}
