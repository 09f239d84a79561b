/* safetensors reading (rdml/safetensors.h): the 8-byte header length, the JSON header parsed
 * with jansson, validation of every entry and of the offsets against the file size (the
 * rules of the reference Rust reader: contiguous, no gaps or overlaps, sizes matching dtype x
 * elements, data ending at the end of the file, header at most 100 MB), and conversion of
 * F32/F16/BF16/F64 tensors to float32 with pread and memcpy (offsets are not aligned). Left
 * out: writing, memory mapping, and integer/bool tensors beyond listing them (they are
 * validated but rdml_safetensors_read_f32 refuses them). */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rdml/safetensors.h"

#define ST_MAX_HEADER (100LL * 1000 * 1000)

struct rdml_safetensors {
    char *path;
    int fd;             /* -1 when reading from buf */
    const uint8_t *buf; /* parse(): the whole file image */
    int64_t data_start; /* 8 + header length */
    int64_t nt;
    rdml_st_tensor *t; /* sorted by begin */
};

static const char *const dtype_names[RDML_ST_NDTYPE] = {"F32", "F16", "BF16", "F64", "I64",
                                                        "I32", "I16", "I8",   "U8",  "BOOL"};
static const int dtype_sizes[RDML_ST_NDTYPE] = {4, 2, 2, 8, 8, 4, 2, 1, 1, 1};

const char *rdml_st_dtype_name(rdml_st_dtype t) {
    return (int)t >= 0 && t < RDML_ST_NDTYPE ? dtype_names[t] : "?";
}
int rdml_st_dtype_size(rdml_st_dtype t) {
    return (int)t >= 0 && t < RDML_ST_NDTYPE ? dtype_sizes[t] : 0;
}

static int cmp_begin(const void *a, const void *b) {
    const rdml_st_tensor *x = a, *y = b;
    return x->begin < y->begin ? -1 : x->begin > y->begin ? 1 : (x->end > y->end) - (x->end < y->end);
}

static void free_tensors(rdml_safetensors *st) {
    for (int64_t i = 0; i < st->nt; i++) free(st->t[i].name);
    free(st->t);
    st->t = NULL;
    st->nt = 0;
}

/* Parse and validate the JSON header; data_len = bytes after the header. */
static int parse_header(rdml_ctx *ctx, rdml_safetensors *st, const char *json, size_t len,
                        int64_t data_len) {
    const char *what = st->path;
    json_error_t jerr;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return RDML_FAIL(ctx, RDML_EFORMAT,
                         "%s: the safetensors header is not valid JSON (%s, at byte %d) (hint: "
                         "the file is truncated or not a safetensors file)",
                         what, jerr.text, jerr.position);
    int rc = RDML_OK;
    if (!json_is_object(root)) {
        json_decref(root);
        return RDML_FAIL(ctx, RDML_EFORMAT, "%s: the safetensors header is not a JSON object", what);
    }
    size_t n = json_object_size(root);
    st->t = calloc(n ? n : 1, sizeof *st->t);
    if (!st->t) {
        json_decref(root);
        return RDML_FAIL(ctx, RDML_ENOMEM, "%s: out of memory for %zu tensor entries", what, n);
    }
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val) {
        if (strcmp(key, "__metadata__") == 0) {
            if (!json_is_object(val)) {
                rc = RDML_FAIL(ctx, RDML_EFORMAT, "%s: __metadata__ is not an object", what);
                break;
            }
            continue;
        }
        rdml_st_tensor *t = &st->t[st->nt];
        t->name = strdup(key);
        if (!t->name) { rc = RDML_FAIL(ctx, RDML_ENOMEM, "%s: out of memory", what); break; }
        st->nt++;
        json_t *dt = json_is_object(val) ? json_object_get(val, "dtype") : NULL;
        json_t *sh = json_is_object(val) ? json_object_get(val, "shape") : NULL;
        json_t *of = json_is_object(val) ? json_object_get(val, "data_offsets") : NULL;
        if (!json_is_string(dt) || !json_is_array(sh) || !json_is_array(of) ||
            json_array_size(of) != 2) {
            rc = RDML_FAIL(ctx, RDML_EFORMAT,
                           "%s: tensor '%s' needs \"dtype\" (string), \"shape\" (array) and "
                           "\"data_offsets\" ([begin, end])", what, key);
            break;
        }
        int d;
        for (d = 0; d < RDML_ST_NDTYPE; d++)
            if (strcmp(json_string_value(dt), dtype_names[d]) == 0) break;
        if (d == RDML_ST_NDTYPE) {
            rc = RDML_FAIL(ctx, RDML_EFORMAT, "%s: tensor '%s' has unsupported dtype '%s' "
                           "(supported: F32 F16 BF16 F64 I64 I32 I16 I8 U8 BOOL)", what, key,
                           json_string_value(dt));
            break;
        }
        t->dtype = (rdml_st_dtype)d;
        if (json_array_size(sh) > RDML_ST_MAXDIM) {
            rc = RDML_FAIL(ctx, RDML_EFORMAT, "%s: tensor '%s' has %zu dims (at most %d)", what,
                           key, json_array_size(sh), RDML_ST_MAXDIM);
            break;
        }
        t->ndim = (int)json_array_size(sh);
        t->count = 1;
        for (int k = 0; k < t->ndim && !rc; k++) {
            json_t *e = json_array_get(sh, (size_t)k);
            if (!json_is_integer(e) || json_integer_value(e) < 0 ||
                json_integer_value(e) > ((int64_t)1 << 40))
                rc = RDML_FAIL(ctx, RDML_EFORMAT, "%s: tensor '%s' shape entry %d is not a "
                               "non-negative integer", what, key, k);
            else {
                t->shape[k] = json_integer_value(e);
                if (t->shape[k] && t->count > ((int64_t)1 << 50) / t->shape[k])
                    rc = RDML_FAIL(ctx, RDML_EFORMAT, "%s: tensor '%s' is too large", what, key);
                else
                    t->count *= t->shape[k];
            }
        }
        if (rc) break;
        json_t *b = json_array_get(of, 0), *e = json_array_get(of, 1);
        if (!json_is_integer(b) || !json_is_integer(e) || json_integer_value(b) < 0 ||
            json_integer_value(e) < json_integer_value(b)) {
            rc = RDML_FAIL(ctx, RDML_EFORMAT, "%s: tensor '%s' has invalid data_offsets (need "
                           "0 <= begin <= end)", what, key);
            break;
        }
        t->begin = json_integer_value(b);
        t->end = json_integer_value(e);
        if (t->end - t->begin != t->count * dtype_sizes[d]) {
            rc = RDML_FAIL(ctx, RDML_EFORMAT,
                           "%s: tensor '%s' (%s, %lld elements) should take %lld bytes but its "
                           "data_offsets [%lld, %lld] span %lld", what, key, dtype_names[d],
                           (long long)t->count, (long long)(t->count * dtype_sizes[d]),
                           (long long)t->begin, (long long)t->end, (long long)(t->end - t->begin));
            break;
        }
    }
    json_decref(root);
    if (rc) return rc;
    qsort(st->t, (size_t)st->nt, sizeof *st->t, cmp_begin);
    int64_t pos = 0;
    for (int64_t i = 0; i < st->nt; i++) {
        if (st->t[i].begin != pos)
            return RDML_FAIL(ctx, RDML_EFORMAT,
                             "%s: tensor '%s' starts at byte %lld of the data but the previous "
                             "tensor ends at %lld (%s; hint: the file is corrupt)",
                             what, st->t[i].name, (long long)st->t[i].begin, (long long)pos,
                             st->t[i].begin < pos ? "overlap" : "gap");
        pos = st->t[i].end;
    }
    if (pos != data_len)
        return RDML_FAIL(ctx, RDML_EFORMAT,
                         "%s: the tensors' data ends at byte %lld but the file holds %lld data "
                         "bytes after the header (hint: the file is %s)", what, (long long)pos,
                         (long long)data_len, pos > data_len ? "truncated" : "padded or corrupt");
    return RDML_OK;
}

static int st_new(rdml_ctx *ctx, const char *what, rdml_safetensors **out) {
    rdml_safetensors *st = calloc(1, sizeof *st);
    if (!st || !(st->path = strdup(what))) {
        free(st);
        return RDML_FAIL(ctx, RDML_ENOMEM, "out of memory opening %s", what);
    }
    st->fd = -1;
    *out = st;
    return RDML_OK;
}

static int header_len(rdml_ctx *ctx, const char *what, const uint8_t b[8], int64_t size,
                      int64_t *n) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | b[i];
    if (v > (uint64_t)ST_MAX_HEADER)
        return RDML_FAIL(ctx, RDML_EFORMAT, "%s: safetensors header length %llu exceeds 100 MB "
                         "(hint: not a safetensors file)", what, (unsigned long long)v);
    if ((int64_t)v + 8 > size)
        return RDML_FAIL(ctx, RDML_EFORMAT, "%s: safetensors header of %llu bytes does not fit "
                         "in the file of %lld bytes (hint: the file is truncated)", what,
                         (unsigned long long)v, (long long)size);
    *n = (int64_t)v;
    return RDML_OK;
}

int rdml_safetensors_parse(rdml_ctx *ctx, const char *what, const uint8_t *buf, size_t len,
                           rdml_safetensors **out) {
    *out = NULL;
    if (len < 8)
        return RDML_FAIL(ctx, RDML_EFORMAT, "%s: %zu bytes is too short for a safetensors file",
                         what, len);
    int64_t n = 0;
    RDML_TRY(header_len(ctx, what, buf, (int64_t)len, &n));
    rdml_safetensors *st = NULL;
    RDML_TRY(st_new(ctx, what, &st));
    st->buf = buf;
    st->data_start = 8 + n;
    int rc = parse_header(ctx, st, (const char *)buf + 8, (size_t)n, (int64_t)len - 8 - n);
    if (rc) rdml_safetensors_close(&st);
    *out = st;
    return rc;
}

int rdml_safetensors_open(rdml_ctx *ctx, const char *path, rdml_safetensors **out) {
    *out = NULL;
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return RDML_FAIL(ctx, RDML_EIO, "cannot open weights %s: %s (hint: check "
                         "embed.weights)", path, strerror(errno));
    struct stat sb;
    uint8_t b[8];
    int64_t n = 0;
    int rc = RDML_OK;
    if (fstat(fd, &sb) != 0) rc = RDML_FAIL(ctx, RDML_EIO, "cannot stat %s: %s", path, strerror(errno));
    else if (sb.st_size < 8 || pread(fd, b, 8, 0) != 8)
        rc = RDML_FAIL(ctx, RDML_EFORMAT, "%s: %lld bytes is too short for a safetensors file",
                       path, (long long)sb.st_size);
    if (!rc) rc = header_len(ctx, path, b, (int64_t)sb.st_size, &n);
    if (rc) { close(fd); return rc; }
    char *json = malloc((size_t)n + 1);
    if (!json) { close(fd); return RDML_FAIL(ctx, RDML_ENOMEM, "%s: out of memory for the header", path); }
    int64_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, json + got, (size_t)(n - got), 8 + got);
        if (r <= 0) break;
        got += r;
    }
    rdml_safetensors *st = NULL;
    if (got != n) rc = RDML_FAIL(ctx, RDML_EIO, "%s: cannot read the %lld-byte header", path, (long long)n);
    if (!rc) rc = st_new(ctx, path, &st);
    if (!rc) {
        st->fd = fd;
        fd = -1;
        st->data_start = 8 + n;
        rc = parse_header(ctx, st, json, (size_t)n, (int64_t)sb.st_size - 8 - n);
    }
    free(json);
    if (fd >= 0) close(fd);
    if (rc) rdml_safetensors_close(&st);
    *out = st;
    return rc;
}

void rdml_safetensors_close(rdml_safetensors **pst) {
    if (!pst || !*pst) return;
    rdml_safetensors *st = *pst;
    free_tensors(st);
    if (st->fd >= 0) close(st->fd);
    free(st->path);
    free(st);
    *pst = NULL;
}

int64_t rdml_safetensors_count(const rdml_safetensors *st) { return st->nt; }
const rdml_st_tensor *rdml_safetensors_at(const rdml_safetensors *st, int64_t i) {
    return i >= 0 && i < st->nt ? &st->t[i] : NULL;
}
int64_t rdml_safetensors_index(const rdml_safetensors *st, const char *name) {
    for (int64_t i = 0; i < st->nt; i++)
        if (strcmp(st->t[i].name, name) == 0) return i;
    return -1;
}
const rdml_st_tensor *rdml_safetensors_find(const rdml_safetensors *st, const char *name) {
    return rdml_safetensors_at(st, rdml_safetensors_index(st, name));
}
const char *rdml_safetensors_path(const rdml_safetensors *st) { return st->path; }

static float half_to_float(uint16_t h) {
    uint32_t s = (uint32_t)(h >> 15) << 31, e = (h >> 10) & 0x1f, m = h & 0x3ff, bits;
    if (e == 0) {
        if (m == 0) bits = s;
        else { /* subnormal: m * 2^-24 */
            float f = ldexpf((float)m, -24);
            return s ? -f : f;
        }
    } else if (e == 31) {
        bits = s | 0x7f800000u | (m << 13);
    } else {
        bits = s | ((e + 112) << 23) | (m << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

int rdml_safetensors_read_f32(rdml_ctx *ctx, const rdml_safetensors *st,
                              const rdml_st_tensor *t, float *out) {
    if (t->dtype != RDML_ST_F32 && t->dtype != RDML_ST_F16 && t->dtype != RDML_ST_BF16 &&
        t->dtype != RDML_ST_F64)
        return RDML_FAIL(ctx, RDML_EFORMAT, "%s: tensor '%s' has dtype %s; a float tensor (F32, "
                         "F16, BF16 or F64) is needed", st->path, t->name, dtype_names[t->dtype]);
    int sz = dtype_sizes[t->dtype];
    enum { CHUNK = 1 << 16 };
    uint8_t *tmp = st->buf ? NULL : malloc((size_t)CHUNK * 8);
    if (!st->buf && !tmp) return RDML_FAIL(ctx, RDML_ENOMEM, "out of memory reading %s", t->name);
    for (int64_t i0 = 0; i0 < t->count; i0 += CHUNK) {
        int64_t m = t->count - i0 < CHUNK ? t->count - i0 : CHUNK;
        int64_t off = st->data_start + t->begin + i0 * sz;
        const uint8_t *src;
        if (st->buf) {
            src = st->buf + off;
        } else {
            int64_t got = 0;
            while (got < m * sz) {
                ssize_t r = pread(st->fd, tmp + got, (size_t)(m * sz - got), off + got);
                if (r <= 0) {
                    free(tmp);
                    return RDML_FAIL(ctx, RDML_EIO, "%s: cannot read tensor '%s': %s", st->path,
                                     t->name, r < 0 ? strerror(errno) : "unexpected end of file");
                }
                got += r;
            }
            src = tmp;
        }
        for (int64_t i = 0; i < m; i++) {
            const uint8_t *p = src + i * sz;
            switch (t->dtype) {
            case RDML_ST_F32: {
                uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
                memcpy(&out[i0 + i], &u, 4);
                break;
            }
            case RDML_ST_F16: out[i0 + i] = half_to_float((uint16_t)(p[0] | p[1] << 8)); break;
            case RDML_ST_BF16: {
                uint32_t u = ((uint32_t)p[0] | (uint32_t)p[1] << 8) << 16;
                memcpy(&out[i0 + i], &u, 4);
                break;
            }
            default: {
                uint64_t u = 0;
                for (int k = 7; k >= 0; k--) u = (u << 8) | p[k];
                double d;
                memcpy(&d, &u, 8);
                out[i0 + i] = (float)d;
            }
            }
        }
    }
    free(tmp);
    return RDML_OK;
}
