/* numpy .npy files: a tolerant parser for the header (format 1.0/2.0/3.0, the Python dict
 * literal in any key order and spacing, trailing commas, old "10L" longs), partial reads of
 * rows x columns of 0-, 1- and 2-D numeric arrays with pread in bounded chunks (C or Fortran
 * order, little- or big-endian, converted to float/double/int64), and writers that produce the
 * same bytes as numpy 1.24's np.save (one whole array, via a temporary name and rename) or a
 * pre-sized file that parallel ranks fill with pwrite. Left out: structured and complex dtypes,
 * '|i1' and unsigned types wider than one byte, reading arrays of more than two dimensions
 * (their headers parse), and writing big-endian or object arrays (pymap.c writes the latter).
 * The host is assumed little-endian, as every platform the project targets is. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/npy_priv.h"
#include "rdml/npy.h"

#define NPY_MAGIC "\x93NUMPY"
#define NPY_MAX_HEADER (1 << 20)   /* refuse headers above 1 MiB (numpy: 10 kB by default) */
#define NPY_CHUNK ((int64_t)1 << 22) /* bytes per pread: 4 MiB */
#define NPY_GAP ((int64_t)1 << 16)   /* columns closer than 64 KiB are read as one span */

static const char *const dtype_names[] = {"<f4", "<f8", "<i4", "<i8", "|u1", "|b1", "|O"};
static const int dtype_sizes[] = {4, 8, 4, 8, 1, 1, 8};

const char *rdml_dtype_name(rdml_dtype t) {
    if ((int)t < 0 || t > RDML_DT_OBJ) return "?";
    return dtype_names[t];
}

int rdml_dtype_size(rdml_dtype t) {
    if ((int)t < 0 || t > RDML_DT_OBJ) return 0;
    return dtype_sizes[t];
}

/* Python repr of a shape tuple: "()", "(3,)", "(3, 4)". */
static void shape_repr(char *buf, size_t cap, int ndim, const int64_t *shape) {
    size_t n = 0;
    n += (size_t)snprintf(buf + n, cap - n, "(");
    for (int i = 0; i < ndim && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, i ? ", %" PRId64 : "%" PRId64, shape[i]);
    if (n < cap) n += (size_t)snprintf(buf + n, cap - n, ndim == 1 ? ",)" : ")");
}

/* ---- header parsing ---- */

typedef struct hlex {
    rdml_ctx *ctx;
    const char *what;
    const uint8_t *p, *start, *end; /* the dict text; start is file byte `base` */
    int64_t base;
} hlex;

static int hfail(hlex *lx, const char *msg) {
    long long at = (long long)(lx->base + (lx->p - lx->start));
    return RDML_FAIL(lx->ctx, RDML_EFORMAT,
                     "%s: malformed .npy header at byte %lld: %s (hint: re-save the array "
                     "with np.save)",
                     lx->what, at, msg);
}

static void skip_ws(hlex *lx) {
    while (lx->p < lx->end && (*lx->p == ' ' || *lx->p == '\t' || *lx->p == '\n' ||
                               *lx->p == '\r'))
        lx->p++;
}

static int expect(hlex *lx, char c, const char *msg) {
    skip_ws(lx);
    if (lx->p >= lx->end || *lx->p != (uint8_t)c) return hfail(lx, msg);
    lx->p++;
    return RDML_OK;
}

/* A quoted Python string without escapes, copied into out (cap bytes). */
static int parse_str(hlex *lx, char *out, size_t cap) {
    skip_ws(lx);
    if (lx->p >= lx->end || (*lx->p != '\'' && *lx->p != '"'))
        return hfail(lx, "expected a quoted string");
    uint8_t q = *lx->p++;
    size_t n = 0;
    while (lx->p < lx->end && *lx->p != q) {
        if (*lx->p == '\\') return hfail(lx, "escape sequences are not supported in keys");
        if (n + 1 >= cap) return hfail(lx, "string too long");
        out[n++] = (char)*lx->p++;
    }
    if (lx->p >= lx->end) return hfail(lx, "unterminated string");
    lx->p++;
    out[n] = '\0';
    return RDML_OK;
}

/* A non-negative-or-negative decimal integer with an optional Python 2 'L' suffix. */
static int parse_int(hlex *lx, int64_t *v) {
    skip_ws(lx);
    int neg = 0;
    if (lx->p < lx->end && (*lx->p == '-' || *lx->p == '+')) neg = *lx->p++ == '-';
    if (lx->p >= lx->end || *lx->p < '0' || *lx->p > '9') return hfail(lx, "expected an integer");
    uint64_t x = 0;
    while (lx->p < lx->end && *lx->p >= '0' && *lx->p <= '9') {
        uint64_t d = (uint64_t)(*lx->p - '0');
        if (x > (UINT64_C(9223372036854775807) - d) / 10)
            return hfail(lx, "integer too large");
        x = x * 10 + d;
        lx->p++;
    }
    if (lx->p < lx->end && (*lx->p == 'L' || *lx->p == 'l')) lx->p++;
    *v = neg ? -(int64_t)x : (int64_t)x;
    return RDML_OK;
}

static int parse_bool(hlex *lx, int *v) {
    skip_ws(lx);
    size_t left = (size_t)(lx->end - lx->p);
    if (left >= 4 && memcmp(lx->p, "True", 4) == 0) {
        lx->p += 4;
        *v = 1;
    } else if (left >= 5 && memcmp(lx->p, "False", 5) == 0) {
        lx->p += 5;
        *v = 0;
    } else {
        return hfail(lx, "fortran_order must be True or False");
    }
    return RDML_OK;
}

static int parse_shape(hlex *lx, rdml_npy *out) {
    RDML_TRY(expect(lx, '(', "shape must be a tuple like (3, 4)"));
    out->ndim = 0;
    for (;;) {
        skip_ws(lx);
        if (lx->p < lx->end && *lx->p == ')') {
            lx->p++;
            return RDML_OK;
        }
        if (out->ndim == RDML_NPY_MAXDIM) return hfail(lx, "more than 8 dimensions");
        int64_t v = 0;
        RDML_TRY(parse_int(lx, &v));
        if (v < 0) {
            char m[96];
            snprintf(m, sizeof m, "negative dimension %" PRId64 " in shape", v);
            return hfail(lx, m);
        }
        out->shape[out->ndim++] = v;
        skip_ws(lx);
        if (lx->p < lx->end && *lx->p == ',') {
            lx->p++;
        } else if (lx->p >= lx->end || *lx->p != ')') {
            return hfail(lx, "expected ',' or ')' in shape");
        }
    }
}

static int parse_descr(hlex *lx, rdml_npy *out) {
    skip_ws(lx);
    if (lx->p < lx->end && *lx->p == '[')
        return RDML_FAIL(lx->ctx, RDML_EFORMAT,
                         "%s: structured (record) dtypes are not supported (hint: save each "
                         "field as its own array)",
                         lx->what);
    char d[32];
    RDML_TRY(parse_str(lx, d, sizeof d));
    char order = d[0];
    const char *code = d + 1;
    if (order != '<' && order != '>' && order != '|' && order != '=') {
        order = '|';
        code = d;
    }
    static const struct {
        const char *code;
        rdml_dtype t;
    } known[] = {{"f4", RDML_DT_F4}, {"f8", RDML_DT_F8}, {"i4", RDML_DT_I4},
                 {"i8", RDML_DT_I8}, {"u1", RDML_DT_U1}, {"b1", RDML_DT_B1},
                 {"O", RDML_DT_OBJ},  {"O8", RDML_DT_OBJ}};
    int found = -1;
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strcmp(code, known[i].code) == 0) found = (int)i;
    int one_byte = found >= 0 && (known[found].t == RDML_DT_U1 || known[found].t == RDML_DT_B1 ||
                                  known[found].t == RDML_DT_OBJ);
    /* '|' is numpy's "not applicable" order: only for one-byte types (and objects). */
    if (found < 0 || (order == '|' && !one_byte))
        return RDML_FAIL(lx->ctx, RDML_EFORMAT,
                         "%s: unsupported dtype '%s' (supported: <f4 <f8 <i4 <i8 |u1 |b1, their "
                         "big-endian forms, and |O mappings; hint: convert with "
                         "arr.astype('<f4') and re-save)",
                         lx->what, d);
    out->dtype = known[found].t;
    out->itemsize = dtype_sizes[out->dtype];
    out->swap = order == '>' && !one_byte;
    return RDML_OK;
}

static int parse_dict(hlex *lx, rdml_npy *out) {
    int have_descr = 0, have_fortran = 0, have_shape = 0;
    RDML_TRY(expect(lx, '{', "the header is not a Python dict literal"));
    for (;;) {
        skip_ws(lx);
        if (lx->p < lx->end && *lx->p == '}') {
            lx->p++;
            break;
        }
        char key[32];
        RDML_TRY(parse_str(lx, key, sizeof key));
        RDML_TRY(expect(lx, ':', "expected ':' after a key"));
        int *seen;
        if (strcmp(key, "descr") == 0) {
            seen = &have_descr;
            if (!*seen) RDML_TRY(parse_descr(lx, out));
        } else if (strcmp(key, "fortran_order") == 0) {
            seen = &have_fortran;
            if (!*seen) RDML_TRY(parse_bool(lx, &out->fortran_order));
        } else if (strcmp(key, "shape") == 0) {
            seen = &have_shape;
            if (!*seen) RDML_TRY(parse_shape(lx, out));
        } else {
            char m[96];
            snprintf(m, sizeof m, "unknown key '%s' (expected descr, fortran_order, shape)", key);
            return hfail(lx, m);
        }
        if (*seen) {
            char m[64];
            snprintf(m, sizeof m, "key '%s' appears twice", key);
            return hfail(lx, m);
        }
        *seen = 1;
        skip_ws(lx);
        if (lx->p < lx->end && *lx->p == ',') {
            lx->p++;
        } else if (lx->p >= lx->end || *lx->p != '}') {
            return hfail(lx, "expected ',' or '}' after a value");
        }
    }
    skip_ws(lx);
    if (lx->p != lx->end) return hfail(lx, "unexpected text after the dict");
    if (!have_descr || !have_fortran || !have_shape)
        return hfail(lx, !have_descr     ? "the dict has no 'descr'"
                         : !have_fortran ? "the dict has no 'fortran_order'"
                                         : "the dict has no 'shape'");
    return RDML_OK;
}

/* Magic, version and header length; sets major/minor and data_offset. */
static int parse_prefix(rdml_ctx *ctx, const char *what, const uint8_t *buf, size_t len,
                        rdml_npy *out) {
    if (len < 10 || memcmp(buf, NPY_MAGIC, 6) != 0) {
        if (len >= 6 && memcmp(buf, NPY_MAGIC, 6) != 0)
            return RDML_FAIL(ctx, RDML_EFORMAT,
                             "%s: not a .npy file (it does not start with the magic bytes "
                             "\\x93NUMPY; hint: was it written by np.save?)",
                             what);
        return RDML_FAIL(ctx, RDML_EFORMAT,
                         "%s: only %zu bytes, too short for a .npy header (truncated?)", what,
                         len);
    }
    out->major = buf[6];
    out->minor = buf[7];
    if (out->major < 1 || out->major > 3 || out->minor != 0)
        return RDML_FAIL(ctx, RDML_EFORMAT,
                         "%s: unsupported .npy format version %d.%d (supported: 1.0, 2.0, 3.0)",
                         what, out->major, out->minor);
    int64_t hlen, pre;
    if (out->major == 1) {
        hlen = (int64_t)buf[8] | (int64_t)buf[9] << 8;
        pre = 10;
    } else {
        if (len < 12)
            return RDML_FAIL(ctx, RDML_EFORMAT,
                             "%s: only %zu bytes, too short for a .npy %d.0 header (truncated?)",
                             what, len, out->major);
        hlen = (int64_t)buf[8] | (int64_t)buf[9] << 8 | (int64_t)buf[10] << 16 |
               (int64_t)buf[11] << 24;
        pre = 12;
    }
    if (hlen > NPY_MAX_HEADER)
        return RDML_FAIL(ctx, RDML_EFORMAT,
                         "%s: .npy header length %" PRId64 " exceeds the 1 MiB limit (corrupt "
                         "file?)",
                         what, hlen);
    out->data_offset = pre + hlen;
    return RDML_OK;
}

int rdml_npy_parse_header(rdml_ctx *ctx, const char *what, const uint8_t *buf, size_t len,
                          rdml_npy *out) {
    memset(out, 0, sizeof *out);
    out->fd = -1;
    RDML_TRY(parse_prefix(ctx, what, buf, len, out));
    int64_t pre = out->major == 1 ? 10 : 12;
    if (out->data_offset > (int64_t)len)
        return RDML_FAIL(ctx, RDML_EFORMAT,
                         "%s: .npy header length %" PRId64 " runs past the end of the file "
                         "(%zu bytes; truncated?)",
                         what, out->data_offset - pre, len);
    if (out->data_offset == pre || buf[out->data_offset - 1] != '\n')
        return RDML_FAIL(ctx, RDML_EFORMAT,
                         "%s: .npy header does not end with a newline (corrupt or truncated "
                         "header; hint: re-save with np.save)",
                         what);
    hlex lx = {ctx, what, buf + pre, buf + pre, buf + out->data_offset, pre};
    RDML_TRY(parse_dict(&lx, out));
    int64_t count = 1;
    for (int i = 0; i < out->ndim; i++) {
        if (out->shape[i] && count > INT64_MAX / out->shape[i] / out->itemsize) {
            char s[256];
            shape_repr(s, sizeof s, out->ndim, out->shape);
            return RDML_FAIL(ctx, RDML_EFORMAT,
                             "%s: shape %s is too large (element count overflows 64 bits)",
                             what, s);
        }
        count *= out->shape[i];
    }
    out->count = count;
    return RDML_OK;
}

void rdml_npy_close(rdml_npy *f) {
    if (!f) return;
    if (f->fd >= 0) close(f->fd);
    f->fd = -1;
    free(f->path);
    f->path = NULL;
}

int rdml_npy_pread_all(rdml_ctx *ctx, const char *path, int fd, void *buf, size_t n,
                       int64_t off) {
    uint8_t *p = buf;
    while (n > 0) {
        ssize_t r = pread(fd, p, n, (off_t)off);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0)
            return RDML_FAIL(ctx, RDML_EIO, "%s: read failed at byte %" PRId64 ": %s", path, off,
                             strerror(errno));
        if (r == 0)
            return RDML_FAIL(ctx, RDML_EIO,
                             "%s: file ends at byte %" PRId64 " while %zu more bytes were "
                             "expected (truncated, or changed while reading?)",
                             path, off, n);
        p += r;
        n -= (size_t)r;
        off += r;
    }
    return RDML_OK;
}

int rdml_npy_open(rdml_ctx *ctx, const char *path, int writable, rdml_npy *out) {
    memset(out, 0, sizeof *out);
    out->fd = -1;
    int fd = open(path, writable ? O_RDWR : O_RDONLY);
    if (fd < 0)
        return RDML_FAIL(ctx, RDML_EIO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return RDML_FAIL(ctx, RDML_EIO, "%s: cannot stat: %s", path, strerror(e));
    }
    int64_t size = (int64_t)st.st_size;
    uint8_t pre[12];
    size_t npre = (size_t)(size < 12 ? size : 12);
    rdml_npy h;
    int rc = rdml_npy_pread_all(ctx, path, fd, pre, npre, 0);
    if (rc == RDML_OK) rc = parse_prefix(ctx, path, pre, npre, &h);
    if (rc != RDML_OK) {
        close(fd);
        return rc;
    }
    size_t nhead = (size_t)(h.data_offset < size ? h.data_offset : size);
    uint8_t *head = rdml_malloc(ctx, nhead, "npy header");
    if (!head) {
        close(fd);
        return ctx->code;
    }
    rc = rdml_npy_pread_all(ctx, path, fd, head, nhead, 0);
    if (rc == RDML_OK) rc = rdml_npy_parse_header(ctx, path, head, nhead, out);
    free(head);
    if (rc != RDML_OK) {
        close(fd);
        memset(out, 0, sizeof *out);
        out->fd = -1;
        return rc;
    }
    out->file_size = size;
    if (out->dtype != RDML_DT_OBJ) {
        int64_t need = out->count * out->itemsize, have = size - out->data_offset;
        if (need != have) {
            char s[256];
            shape_repr(s, sizeof s, out->ndim, out->shape);
            close(fd);
            return RDML_FAIL(ctx, RDML_EFORMAT,
                             "%s: shape %s of %s needs %" PRId64 " data bytes but the file "
                             "holds %" PRId64 " (%s? re-save with np.save)",
                             path, s, rdml_dtype_name(out->dtype), need, have,
                             have < need ? "truncated" : "trailing garbage");
        }
    }
    out->path = rdml_strdup(ctx, path);
    if (!out->path) {
        close(fd);
        return ctx->code;
    }
    out->fd = fd;
    return RDML_OK;
}

/* ---- reading ---- */

enum { OUT_F32, OUT_F64, OUT_I64 };

typedef struct sel {
    int64_t col; /* column in the file */
    int64_t pos; /* column in the output */
} sel;

static int sel_cmp(const void *a, const void *b) {
    const sel *x = a, *y = b;
    if (x->col != y->col) return x->col < y->col ? -1 : 1;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

static uint32_t ld32(const uint8_t *p, int swap) {
    uint32_t u;
    memcpy(&u, p, 4);
    return swap ? __builtin_bswap32(u) : u;
}

static uint64_t ld64(const uint8_t *p, int swap) {
    uint64_t u;
    memcpy(&u, p, 8);
    return swap ? __builtin_bswap64(u) : u;
}

/* Convert one element at p and store it as out[idx]. Refuses non-integral values for int64. */
static int store_elem(rdml_ctx *ctx, const rdml_npy *f, const uint8_t *p, int otype, void *out,
                      int64_t idx, int64_t row, int64_t col) {
    double d = 0;
    int64_t i = 0;
    int is_int = 1;
    switch (f->dtype) {
    case RDML_DT_F4: {
        uint32_t u = ld32(p, f->swap);
        float x;
        memcpy(&x, &u, 4);
        d = x;
        is_int = 0;
        break;
    }
    case RDML_DT_F8: {
        uint64_t u = ld64(p, f->swap);
        memcpy(&d, &u, 8);
        is_int = 0;
        break;
    }
    case RDML_DT_I4: i = (int32_t)ld32(p, f->swap); break;
    case RDML_DT_I8: i = (int64_t)ld64(p, f->swap); break;
    case RDML_DT_U1: i = p[0]; break;
    case RDML_DT_B1: i = p[0] != 0; break;
    default: return RDML_FAIL(ctx, RDML_EINTERNAL, "%s: unexpected dtype", f->path);
    }
    switch (otype) {
    case OUT_F32: ((float *)out)[idx] = is_int ? (float)i : (float)d; break;
    case OUT_F64: ((double *)out)[idx] = is_int ? (double)i : d; break;
    default:
        if (!is_int) {
            if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0) || d != floor(d))
                return RDML_FAIL(ctx, RDML_EDATA,
                                 "%s: value %.17g at row %" PRId64 ", column %" PRId64
                                 " is not an integer (hint: integer labels were expected here)",
                                 f->path, d, row, col);
            i = (int64_t)d;
        }
        ((int64_t *)out)[idx] = i;
    }
    return RDML_OK;
}

/* Convert the selected entries s[0..n) of one row from buf, whose first element is column
 * `first` of that row, into output row `orow`. */
static int convert_row(rdml_ctx *ctx, const rdml_npy *f, const uint8_t *buf, int64_t first,
                       const sel *s, int64_t n, int64_t ncols, int64_t row, int64_t orow,
                       int otype, void *out) {
    int64_t isz = f->itemsize, base = orow * ncols;
    if (f->dtype == RDML_DT_F4 && !f->swap && otype == OUT_F32) {
        float *o = (float *)out + base;
        for (int64_t k = 0; k < n; k++) memcpy(&o[s[k].pos], buf + (s[k].col - first) * isz, 4);
        return RDML_OK;
    }
    for (int64_t k = 0; k < n; k++)
        RDML_TRY(store_elem(ctx, f, buf + (s[k].col - first) * isz, otype, out, base + s[k].pos,
                            row, s[k].col));
    return RDML_OK;
}

static int read_c_order(rdml_ctx *ctx, const rdml_npy *f, int64_t lo, int64_t hi, int64_t C,
                        const sel *s, int64_t ncols, int otype, void *out, uint8_t *buf) {
    int64_t isz = f->itemsize;
    /* Runs of selected columns read with one pread per row: split where the gap between
     * consecutive columns is large or the span would exceed the chunk. */
    int64_t nruns = 0;
    int64_t *run_at = rdml_malloc(ctx, (size_t)(ncols + 1) * sizeof *run_at, "npy read runs");
    if (!run_at) return ctx->code;
    for (int64_t k = 0; k < ncols; k++) {
        if (k == 0 || (s[k].col - s[k - 1].col) * isz > NPY_GAP ||
            (s[k].col - s[run_at[nruns - 1]].col + 1) * isz > NPY_CHUNK)
            run_at[nruns++] = k;
    }
    run_at[nruns] = ncols;
    int rc = RDML_OK;
    int64_t rowbytes = C * isz;
    if (nruns == 1 && s[0].col == 0 && s[ncols - 1].col == C - 1) {
        /* The whole row is wanted: read many rows per pread. */
        int64_t per = NPY_CHUNK / rowbytes;
        if (per < 1) per = 1;
        for (int64_t r = lo; r < hi && rc == RDML_OK; r += per) {
            int64_t k = hi - r < per ? hi - r : per;
            rc = rdml_npy_pread_all(ctx, f->path, f->fd, buf, (size_t)(k * rowbytes),
                                    f->data_offset + r * rowbytes);
            for (int64_t j = 0; j < k && rc == RDML_OK; j++)
                rc = convert_row(ctx, f, buf + j * rowbytes, 0, s, ncols, ncols, r + j,
                                 r + j - lo, otype, out);
        }
    } else {
        for (int64_t r = lo; r < hi && rc == RDML_OK; r++) {
            for (int64_t q = 0; q < nruns && rc == RDML_OK; q++) {
                const sel *a = s + run_at[q];
                int64_t n = run_at[q + 1] - run_at[q];
                int64_t c0 = a[0].col, c1 = a[n - 1].col;
                rc = rdml_npy_pread_all(ctx, f->path, f->fd, buf, (size_t)((c1 - c0 + 1) * isz),
                                        f->data_offset + (r * C + c0) * isz);
                if (rc == RDML_OK)
                    rc = convert_row(ctx, f, buf, c0, a, n, ncols, r, r - lo, otype, out);
            }
        }
    }
    free(run_at);
    return rc;
}

/* Fortran order: column j is contiguous, element (i, j) at j * R + i. One pread per selected
 * column and chunk of rows. */
static int read_f_order(rdml_ctx *ctx, const rdml_npy *f, int64_t lo, int64_t hi, int64_t R,
                        const sel *s, int64_t ncols, int otype, void *out, uint8_t *buf) {
    int64_t isz = f->itemsize, per = NPY_CHUNK / isz;
    for (int64_t k = 0; k < ncols;) {
        int64_t col = s[k].col, k1 = k;
        while (k1 < ncols && s[k1].col == col) k1++;
        for (int64_t r = lo; r < hi; r += per) {
            int64_t n = hi - r < per ? hi - r : per;
            RDML_TRY(rdml_npy_pread_all(ctx, f->path, f->fd, buf, (size_t)(n * isz),
                                        f->data_offset + (col * R + r) * isz));
            for (int64_t i = 0; i < n; i++)
                for (int64_t q = k; q < k1; q++)
                    RDML_TRY(store_elem(ctx, f, buf + i * isz, otype, out,
                                        (r + i - lo) * ncols + s[q].pos, r + i, col));
        }
        k = k1;
    }
    return RDML_OK;
}

/* Native float32 in C order to float32, the selection one run of consecutive ascending
 * columns [c0, c0 + ncols) in request order: every row is one pread straight into its place in
 * out (all rows in one pread when the whole row is wanted), no bounce buffer and no per-element
 * copy. The RDM reads its blocks this way. */
static int read_f32_span(rdml_ctx *ctx, const rdml_npy *f, int64_t lo, int64_t hi, int64_t C,
                         int64_t c0, int64_t ncols, float *out) {
    if (c0 == 0 && ncols == C)
        return rdml_npy_pread_all(ctx, f->path, f->fd, out, (size_t)((hi - lo) * C) * sizeof *out,
                                  f->data_offset + lo * C * (int64_t)sizeof *out);
    for (int64_t r = lo; r < hi; r++)
        RDML_TRY(rdml_npy_pread_all(ctx, f->path, f->fd, out + (r - lo) * ncols,
                                    (size_t)ncols * sizeof *out,
                                    f->data_offset + (r * C + c0) * (int64_t)sizeof *out));
    return RDML_OK;
}

static int read_any(rdml_ctx *ctx, const rdml_npy *f, int64_t lo, int64_t hi,
                    const int64_t *cols, int64_t ncols, int otype, void *out) {
    const char *path = f->path ? f->path : "(npy)";
    if (f->fd < 0) return RDML_FAIL(ctx, RDML_EINTERNAL, "%s: read from a closed .npy file", path);
    if (f->dtype == RDML_DT_OBJ)
        return RDML_FAIL(ctx, RDML_EFORMAT,
                         "%s: holds pickled Python objects ('|O'), not numbers (hint: mapping "
                         "files are read with rdml_pymap_read)",
                         path);
    if (f->ndim > 2) {
        char sh[256];
        shape_repr(sh, sizeof sh, f->ndim, f->shape);
        return RDML_FAIL(ctx, RDML_EDATA,
                         "%s: shape %s has %d dimensions; only 1-D and 2-D arrays can be read "
                         "(hint: reshape to 2-D before np.save)",
                         path, sh, f->ndim);
    }
    int64_t R = f->ndim == 0 ? 1 : f->shape[0], C = f->ndim == 2 ? f->shape[1] : 1;
    if (lo < 0 || hi < lo || hi > R)
        return RDML_FAIL(ctx, RDML_EINTERNAL,
                         "%s: row range [%" PRId64 ", %" PRId64 ") outside the %" PRId64 " rows",
                         path, lo, hi, R);
    if (!cols && ncols == 0) ncols = C;
    if (!cols && ncols != C)
        return RDML_FAIL(ctx, RDML_EINTERNAL,
                         "%s: all columns requested (cols NULL) with ncols %" PRId64
                         " but the array has %" PRId64,
                         path, ncols, C);
    if (ncols < 0)
        return RDML_FAIL(ctx, RDML_EINTERNAL, "%s: negative column count %" PRId64, path, ncols);
    if (hi == lo || ncols == 0) return RDML_OK;
    /* consecutive ascending columns inside the array: checked without building the selection
     * (the RDM asks for the same span of thousands of columns a few rows at a time) */
    int span = f->dtype == RDML_DT_F4 && !f->swap && otype == OUT_F32 &&
               !(f->fortran_order && f->ndim == 2) && (!cols || (cols[0] >= 0 && cols[0] + ncols <= C));
    for (int64_t k = 1; span && cols && k < ncols; k++) span = cols[k] == cols[0] + k;
    if (span) return read_f32_span(ctx, f, lo, hi, C, cols ? cols[0] : 0, ncols, out);
    sel *s = rdml_malloc(ctx, (size_t)ncols * sizeof *s, "npy column selection");
    if (!s) return ctx->code;
    for (int64_t k = 0; k < ncols; k++) {
        s[k].col = cols ? cols[k] : k;
        s[k].pos = k;
        if (s[k].col < 0 || s[k].col >= C) {
            free(s);
            return RDML_FAIL(ctx, RDML_EDATA,
                             "%s: column %" PRId64 " requested but the array has %" PRId64
                             " columns",
                             path, cols[k], C);
        }
    }
    if (cols) qsort(s, (size_t)ncols, sizeof *s, sel_cmp);
    /* Every pread is at most one chunk and at most the rows x columns span asked for. */
    int64_t want = (hi - lo) * C * f->itemsize;
    uint8_t *buf =
        rdml_malloc(ctx, (size_t)(want < NPY_CHUNK ? want : NPY_CHUNK), "npy read buffer");
    int rc = ctx->code;
    if (buf) {
        if (f->fortran_order && f->ndim == 2)
            rc = read_f_order(ctx, f, lo, hi, R, s, ncols, otype, out, buf);
        else
            rc = read_c_order(ctx, f, lo, hi, C, s, ncols, otype, out, buf);
    }
    free(buf);
    free(s);
    return rc;
}

int rdml_npy_read_f32(rdml_ctx *ctx, const rdml_npy *f, int64_t row_lo, int64_t row_hi,
                      const int64_t *cols, int64_t ncols, float *out) {
    return read_any(ctx, f, row_lo, row_hi, cols, ncols, OUT_F32, out);
}

int rdml_npy_read_f64(rdml_ctx *ctx, const rdml_npy *f, int64_t row_lo, int64_t row_hi,
                      const int64_t *cols, int64_t ncols, double *out) {
    return read_any(ctx, f, row_lo, row_hi, cols, ncols, OUT_F64, out);
}

int rdml_npy_read_i64(rdml_ctx *ctx, const rdml_npy *f, int64_t row_lo, int64_t row_hi,
                      const int64_t *cols, int64_t ncols, int64_t *out) {
    return read_any(ctx, f, row_lo, row_hi, cols, ncols, OUT_I64, out);
}

/* ---- writing ---- */

size_t rdml_npy_header_bytes(char *buf, size_t cap, rdml_dtype dtype, int fortran_order,
                             int ndim, const int64_t *shape) {
    if ((int)dtype < 0 || dtype > RDML_DT_OBJ || ndim < 0 || ndim > RDML_NPY_MAXDIM) return 0;
    char dict[512], sh[256];
    shape_repr(sh, sizeof sh, ndim, shape);
    /* numpy 1.24: keys sorted, "'key': repr(value), " each, then spare spaces so the
     * growth axis (first, or last for Fortran order) can be rewritten in place. */
    int n = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }",
                     dtype_names[dtype], fortran_order ? "True" : "False", sh);
    if (ndim > 0) {
        char ax[32];
        int w = snprintf(ax, sizeof ax, "%" PRId64, shape[fortran_order ? ndim - 1 : 0]);
        for (int i = w; i < 21 && n < (int)sizeof dict - 1; i++) dict[n++] = ' ';
        dict[n] = '\0';
    }
    size_t hlen = (size_t)n + 1, pre = 10;
    size_t pad = 64 - (pre + hlen) % 64;
    if (hlen + pad > 65535) {
        pre = 12;
        pad = 64 - (pre + hlen) % 64;
    }
    size_t total = pre + hlen + pad;
    if (total > cap) return 0;
    memcpy(buf, NPY_MAGIC, 6);
    buf[6] = pre == 10 ? 1 : 2;
    buf[7] = 0;
    size_t body = hlen + pad;
    for (size_t i = 0; i < pre - 8; i++) buf[8 + i] = (char)((body >> (8 * i)) & 0xff);
    memcpy(buf + pre, dict, (size_t)n);
    memset(buf + pre + n, ' ', pad);
    buf[total - 1] = '\n';
    return total;
}

static int write_all(rdml_ctx *ctx, const char *path, int fd, const void *p, size_t n) {
    const uint8_t *q = p;
    while (n > 0) {
        size_t step = n > ((size_t)1 << 30) ? ((size_t)1 << 30) : n;
        ssize_t w = write(fd, q, step);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0)
            return RDML_FAIL(ctx, RDML_EIO, "%s: write failed: %s (disk full?)", path,
                             strerror(errno));
        q += w;
        n -= (size_t)w;
    }
    return RDML_OK;
}

int rdml_npy_write_atomic(rdml_ctx *ctx, const char *path, const void *a, size_t alen,
                          const void *b, size_t blen) {
    size_t plen = strlen(path) + 32;
    char *tmp = rdml_malloc(ctx, plen, "temporary file name");
    if (!tmp) return ctx->code;
    snprintf(tmp, plen, "%s.tmp-%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        int rc = RDML_FAIL(ctx, RDML_EIO, "%s: cannot create %s: %s (does the folder exist?)",
                           path, tmp, strerror(errno));
        free(tmp);
        return rc;
    }
    int rc = write_all(ctx, path, fd, a, alen);
    if (rc == RDML_OK && blen) rc = write_all(ctx, path, fd, b, blen);
    if (close(fd) != 0 && rc == RDML_OK)
        rc = RDML_FAIL(ctx, RDML_EIO, "%s: close failed: %s", path, strerror(errno));
    if (rc == RDML_OK && rename(tmp, path) != 0)
        rc = RDML_FAIL(ctx, RDML_EIO, "%s: cannot rename %s into place: %s", path, tmp,
                       strerror(errno));
    if (rc != RDML_OK) unlink(tmp);
    free(tmp);
    return rc;
}

/* Validates a shape for writing and returns its data size in bytes (-1 on error). */
static int64_t data_bytes(rdml_ctx *ctx, const char *path, rdml_dtype dtype, int ndim,
                          const int64_t *shape) {
    if ((int)dtype < 0 || dtype >= RDML_DT_OBJ) {
        RDML_FAIL(ctx, RDML_EINTERNAL, "%s: cannot write dtype %d as a numeric array", path,
                  (int)dtype);
        return -1;
    }
    if (ndim < 0 || ndim > RDML_NPY_MAXDIM) {
        RDML_FAIL(ctx, RDML_EINTERNAL, "%s: %d dimensions (0 to 8 supported)", path, ndim);
        return -1;
    }
    int64_t n = dtype_sizes[dtype];
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0 || (shape[i] && n > INT64_MAX / shape[i])) {
            RDML_FAIL(ctx, RDML_EINTERNAL, "%s: invalid dimension %" PRId64, path, shape[i]);
            return -1;
        }
        n *= shape[i];
    }
    return n;
}

int rdml_npy_save(rdml_ctx *ctx, const char *path, rdml_dtype dtype, int fortran_order,
                  int ndim, const int64_t *shape, const void *data) {
    int64_t nb = data_bytes(ctx, path, dtype, ndim, shape);
    if (nb < 0) return ctx->code;
    char head[1024];
    size_t hl = rdml_npy_header_bytes(head, sizeof head, dtype, fortran_order, ndim, shape);
    if (!hl) return RDML_FAIL(ctx, RDML_EINTERNAL, "%s: cannot format the .npy header", path);
    return rdml_npy_write_atomic(ctx, path, head, hl, data, (size_t)nb);
}

int rdml_npy_create(rdml_ctx *ctx, const char *path, rdml_dtype dtype, int ndim,
                    const int64_t *shape) {
    int64_t nb = data_bytes(ctx, path, dtype, ndim, shape);
    if (nb < 0) return ctx->code;
    char head[1024];
    size_t hl = rdml_npy_header_bytes(head, sizeof head, dtype, 0, ndim, shape);
    if (!hl) return RDML_FAIL(ctx, RDML_EINTERNAL, "%s: cannot format the .npy header", path);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return RDML_FAIL(ctx, RDML_EIO, "%s: cannot create: %s (does the folder exist?)", path,
                         strerror(errno));
    int rc = write_all(ctx, path, fd, head, hl);
    if (rc == RDML_OK && ftruncate(fd, (off_t)((int64_t)hl + nb)) != 0)
        rc = RDML_FAIL(ctx, RDML_EIO, "%s: cannot size the file to %" PRId64 " bytes: %s", path,
                       (int64_t)hl + nb, strerror(errno));
    if (close(fd) != 0 && rc == RDML_OK)
        rc = RDML_FAIL(ctx, RDML_EIO, "%s: close failed: %s", path, strerror(errno));
    if (rc != RDML_OK) unlink(path);
    return rc;
}

int rdml_npy_write_rows(rdml_ctx *ctx, const rdml_npy *f, int64_t row_lo, int64_t row_hi,
                        const void *src) {
    const char *path = f->path ? f->path : "(npy)";
    if (f->fd < 0) return RDML_FAIL(ctx, RDML_EINTERNAL, "%s: write to a closed .npy file", path);
    if (f->dtype == RDML_DT_OBJ || f->swap || (f->fortran_order && f->ndim > 1))
        return RDML_FAIL(ctx, RDML_EINTERNAL,
                         "%s: rows can only be written to little-endian C-order numeric arrays",
                         path);
    int64_t R = f->ndim == 0 ? 1 : f->shape[0];
    if (row_lo < 0 || row_hi < row_lo || row_hi > R)
        return RDML_FAIL(ctx, RDML_EINTERNAL,
                         "%s: row range [%" PRId64 ", %" PRId64 ") outside the %" PRId64 " rows",
                         path, row_lo, row_hi, R);
    int64_t rowbytes = R ? f->count / R * f->itemsize : 0;
    const uint8_t *p = src;
    int64_t off = f->data_offset + row_lo * rowbytes, n = (row_hi - row_lo) * rowbytes;
    while (n > 0) {
        size_t step = n > ((int64_t)1 << 30) ? ((size_t)1 << 30) : (size_t)n;
        ssize_t w = pwrite(f->fd, p, step, (off_t)off);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0)
            return RDML_FAIL(ctx, RDML_EIO,
                             "%s: write of rows [%" PRId64 ", %" PRId64 ") failed: %s (hint: "
                             "open the file with writable = 1)",
                             path, row_lo, row_hi, strerror(errno));
        p += w;
        off += w;
        n -= w;
    }
    return RDML_OK;
}
