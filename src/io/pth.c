/* PyTorch checkpoints (rdml/pth.h): the zip archive torch.save writes (<dir>/data.pkl, the
 * pickled object; <dir>/data/<key>, one raw little-endian storage per key; <dir>/byteorder)
 * read with libzip, and data.pkl interpreted by the restricted unpickler (io/pickle_priv.h,
 * pickle.c, shared with the ROI-mapping reader) with the state-dict builder below: only the
 * globals a state dict needs (OrderedDict, the tensor rebuild functions, the storage types
 * inside a persistent id). Nothing is imported, called or executed: REDUCE is interpreted for
 * exactly those callables with their exact argument shapes, anything else is refused naming
 * it. Tensors must be contiguous views of their storage (as state_dict() tensors are); they
 * are read on demand from the storage's zip entry. Left out: the legacy (pre-1.6, non-zip)
 * tar format, big-endian archives, sparse, quantized and non-contiguous tensors, and pickled
 * modules (torch.save(model)). */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zip.h>

#include "io/pickle_priv.h"
#include "rdml/pth.h"

#define PKL_MAX ((int64_t)64 << 20) /* a state dict's pickle is small: refuse above 64 MiB */

/* ---- the builder: a state dict ---- */

enum { V_STORAGE = RDML_PK_USER, /* g: rdml_st_dtype, i: numel, ref: its key string node */
       V_TENSOR };               /* i: storage offset, ref: index into sd.tensors */
enum { G_ODICT, G_REBUILD, G_PARAM, G_STORAGE /* + index into storages[] */ };

static const rdml_st_dtype storages[] = {
    RDML_ST_F32, RDML_ST_F64, RDML_ST_F16, RDML_ST_BF16, RDML_ST_I64,
    RDML_ST_I32, RDML_ST_I16, RDML_ST_I8,  RDML_ST_U8,   RDML_ST_BOOL,
};

static const rdml_pk_global torch_globals[] = {
    {"collections", "OrderedDict", G_ODICT},
    {"torch._utils", "_rebuild_tensor_v2", G_REBUILD},
    {"torch._utils", "_rebuild_parameter", G_PARAM},
    {"torch", "FloatStorage", G_STORAGE + 0}, {"torch", "DoubleStorage", G_STORAGE + 1},
    {"torch", "HalfStorage", G_STORAGE + 2},  {"torch", "BFloat16Storage", G_STORAGE + 3},
    {"torch", "LongStorage", G_STORAGE + 4},  {"torch", "IntStorage", G_STORAGE + 5},
    {"torch", "ShortStorage", G_STORAGE + 6}, {"torch", "CharStorage", G_STORAGE + 7},
    {"torch", "ByteStorage", G_STORAGE + 8},  {"torch", "BoolStorage", G_STORAGE + 9},
};

typedef struct sd_tensor {
    int32_t storage; /* its V_STORAGE node */
    int ndim;
    int64_t shape[RDML_ST_MAXDIM];
} sd_tensor;

typedef struct sd {
    sd_tensor *t;
    int64_t n, cap;
} sd;

typedef struct pth_tensor {
    rdml_st_tensor t;
    char *key; /* storage key: the zip entry <dir>/data/<key> */
} pth_tensor;

struct rdml_pth {
    char *path;
    zip_t *z;
    char dir[256];
    pth_tensor *ts;
    int64_t n;
};

static int sd_fail(rdml_pk *p, rdml_pk_fault f, uint8_t op, int64_t at, const char *text) {
    if (f == RDML_PK_MALFORMED)
        return RDML_FAIL(p->ctx, RDML_EFORMAT, "%s: not a state dict rdmlearn reads: %s (at byte "
                         "%lld of data.pkl; nothing was executed) (hint: save the weights with "
                         "torch.save(model.state_dict(), path), or convert them with "
                         "tools/pth_to_safetensors.py)", p->what, text, (long long)at);
    if (f == RDML_PK_BAD_GLOBAL)
        return RDML_FAIL(p->ctx, RDML_EFORMAT, "%s: the pickle names the global %s (%s at byte "
                         "%lld of data.pkl), which a state dict does not need; refused, nothing "
                         "was imported or executed (allowed: collections.OrderedDict, "
                         "torch._utils._rebuild_tensor_v2 / _rebuild_parameter, torch.*Storage; "
                         "hint: a file from an untrusted source, or a pickled model rather than "
                         "its state_dict())", p->what, text, rdml_pickle_op_name(op), (long long)at);
    char c[8];
    if (op >= 0x20 && op < 0x7f) snprintf(c, sizeof c, "%c", op);
    else snprintf(c, sizeof c, "\\x%02x", op);
    return RDML_FAIL(p->ctx, RDML_EFORMAT, "%s: pickle opcode '%s' (%s) at byte %lld of data.pkl "
                     "is not allowed in a state dict; refused, nothing was executed (only what "
                     "torch.load(weights_only=True) accepts for tensors is read)", p->what, c,
                     rdml_pickle_op_name(op), (long long)at);
}

#define K(t, k) rdml_pk_kid(p, t, k)

/* A tuple of n ints >= 0 (a size or stride) into v. */
static int int_tuple(rdml_pk *p, int32_t t, int64_t *v, int *n) {
    if (rdml_pk_kind(p, t) != RDML_PK_TUPLE || rdml_pk_at(p, t)->n > RDML_ST_MAXDIM) return 0;
    *n = rdml_pk_at(p, t)->n;
    for (int i = 0; i < *n; i++) {
        const rdml_pk_node *k = rdml_pk_at(p, K(t, i));
        if (k->kind != RDML_PK_INT || k->i < 0) return 0;
        v[i] = k->i;
    }
    return 1;
}

static int sd_reduce(rdml_pk *p, int32_t fn, int32_t args, int32_t *out) {
    const int na = rdml_pk_at(p, args)->n;
    switch (rdml_pk_at(p, fn)->g) {
    case G_ODICT:
        if (na != 0) return rdml_pk_bad(p, "OrderedDict is called with arguments");
        *out = rdml_pk_new(p, RDML_PK_DICT);
        break;
    case G_REBUILD: {
        /* (storage, offset, size, stride, requires_grad, backward_hooks[, metadata]) */
        int64_t size[RDML_ST_MAXDIM], stride[RDML_ST_MAXDIM];
        int nd = 0, ns = 0;
        if ((na != 6 && na != 7) || rdml_pk_kind(p, K(args, 0)) != V_STORAGE ||
            rdml_pk_kind(p, K(args, 1)) != RDML_PK_INT || rdml_pk_at(p, K(args, 1))->i < 0 ||
            !int_tuple(p, K(args, 2), size, &nd) || !int_tuple(p, K(args, 3), stride, &ns) ||
            nd != ns || rdml_pk_kind(p, K(args, 4)) != RDML_PK_BOOL ||
            rdml_pk_kind(p, K(args, 5)) != RDML_PK_DICT || rdml_pk_at(p, K(args, 5))->n != 0)
            return rdml_pk_bad(p, "_rebuild_tensor_v2 is called with arguments torch.save does not write");
        int64_t expect = 1, count = 1;
        for (int d = nd - 1; d >= 0; d--) {
            if (size[d] != 1 && stride[d] != expect)
                return rdml_pk_bad(p, "a non-contiguous tensor (size/stride do not describe a "
                                      "row-major tensor; save tensor.contiguous())");
            expect *= size[d];
            count *= size[d];
        }
        const rdml_pk_node *st = rdml_pk_at(p, K(args, 0));
        const int64_t off = rdml_pk_at(p, K(args, 1))->i;
        if (off > st->i || count > st->i - off)
            return rdml_pk_bad(p, "a tensor of %" PRId64 " elements at offset %" PRId64 " of a "
                                  "storage of %" PRId64, count, off, st->i);
        sd *s = p->user;
        RDML_TRY(rdml_pk_grow(p, (void **)&s->t, &s->cap, s->n, sizeof *s->t, "state dict tensors"));
        *out = rdml_pk_new(p, V_TENSOR);
        if (*out >= 0) {
            sd_tensor *t = &s->t[s->n];
            t->storage = K(args, 0);
            t->ndim = nd;
            memcpy(t->shape, size, sizeof size);
            rdml_pk_at(p, *out)->i = off;
            rdml_pk_at(p, *out)->ref = (int32_t)s->n++;
        }
        break;
    }
    case G_PARAM:
        /* _rebuild_parameter(tensor, requires_grad, backward_hooks) */
        if (na != 3 || rdml_pk_kind(p, K(args, 0)) != V_TENSOR ||
            rdml_pk_kind(p, K(args, 1)) != RDML_PK_BOOL || rdml_pk_kind(p, K(args, 2)) != RDML_PK_DICT)
            return rdml_pk_bad(p, "_rebuild_parameter is called with arguments torch.save does not write");
        *out = K(args, 0);
        break;
    default: return rdml_pk_bad(p, "REDUCE calls a storage type (storages appear only in persistent ids)");
    }
    return *out < 0 ? p->ctx->code : RDML_OK;
}

/* BINPERSID: ('storage', <torch.XStorage>, key, location, numel) */
static int sd_persid(rdml_pk *p, int32_t t, int32_t *out) {
    if (!rdml_pk_is_tuple(p, t, 5) || !rdml_pk_str_is(p, K(t, 0), "storage") ||
        rdml_pk_kind(p, K(t, 1)) != RDML_PK_GLOBAL || rdml_pk_at(p, K(t, 1))->g < G_STORAGE ||
        rdml_pk_kind(p, K(t, 2)) != RDML_PK_STR || rdml_pk_kind(p, K(t, 3)) != RDML_PK_STR ||
        rdml_pk_kind(p, K(t, 4)) != RDML_PK_INT || rdml_pk_at(p, K(t, 4))->i < 0)
        return rdml_pk_bad(p, "a persistent id other than ('storage', type, key, location, numel)");
    const rdml_pk_node *k = rdml_pk_at(p, K(t, 2));
    for (size_t i = 0; i < k->len; i++) {
        uint8_t c = p->buf[k->off + i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'))
            return rdml_pk_bad(p, "a storage key that is not a plain name");
    }
    if (!k->len || k->len > 64) return rdml_pk_bad(p, "a storage key of %zu bytes", k->len);
    *out = rdml_pk_new(p, V_STORAGE);
    if (*out < 0) return p->ctx->code;
    rdml_pk_at(p, *out)->g = (int16_t)storages[rdml_pk_at(p, K(t, 1))->g - G_STORAGE];
    rdml_pk_at(p, *out)->i = rdml_pk_at(p, K(t, 4))->i;
    rdml_pk_at(p, *out)->ref = K(t, 2);
    return RDML_OK;
}

static int sd_build(rdml_pk *p, int32_t obj, int32_t state) {
    /* OrderedDict.__setstate__: the state dict's _metadata attribute (a dict), ignored */
    if (rdml_pk_kind(p, obj) == RDML_PK_DICT &&
        (rdml_pk_kind(p, state) == RDML_PK_DICT || rdml_pk_kind(p, state) == RDML_PK_NONE))
        return RDML_OK;
    return rdml_pk_bad(p, "BUILD on something other than an OrderedDict");
}

static const rdml_pk_builder sd_builder = {
    .globals = torch_globals,
    .nglobals = sizeof torch_globals / sizeof torch_globals[0],
    .extra_ops = "G\x8dQ",
    .reduce = sd_reduce,
    .build = sd_build,
    .persid = sd_persid,
    .fail = sd_fail,
};

/* After STOP: the top-level dict's string keys and tensors into f->ts. */
static int collect(rdml_pk *p, int32_t d, rdml_pth *f) {
    const sd *s = p->user;
    if (rdml_pk_kind(p, d) != RDML_PK_DICT) return rdml_pk_bad(p, "the pickle does not hold a dict of tensors");
    /* a checkpoint dict holding the state dict under "state_dict" or "model" */
    for (int32_t i = 0; i + 1 < rdml_pk_at(p, d)->n; i += 2)
        if ((rdml_pk_str_is(p, K(d, i), "state_dict") || rdml_pk_str_is(p, K(d, i), "model")) &&
            rdml_pk_kind(p, K(d, i + 1)) == RDML_PK_DICT) {
            d = K(d, i + 1);
            break;
        }
    const int64_t n = rdml_pk_at(p, d)->n / 2;
    f->ts = rdml_calloc(p->ctx, (size_t)n + 1, sizeof *f->ts, "state dict");
    if (!f->ts) return p->ctx->code;
    for (int64_t i = 0; i < n; i++) {
        const int32_t k = K(d, (int)(2 * i)), v = K(d, (int)(2 * i + 1));
        if (rdml_pk_kind(p, k) != RDML_PK_STR) return rdml_pk_bad(p, "entry %lld's key is not a string", (long long)i);
        const rdml_pk_node *kn = rdml_pk_at(p, k), *vn = rdml_pk_at(p, v);
        char name[256];
        size_t l = kn->len < sizeof name - 1 ? kn->len : sizeof name - 1;
        memcpy(name, p->buf + kn->off, l);
        name[l] = '\0';
        if (memchr(name, '\0', l)) return rdml_pk_bad(p, "a key holds a NUL byte");
        if (vn->kind != V_TENSOR) return rdml_pk_bad(p, "entry '%s' is not a tensor", name);
        const sd_tensor *st = &s->t[vn->ref];
        const rdml_pk_node *sn = rdml_pk_at(p, st->storage), *sk = rdml_pk_at(p, sn->ref);
        pth_tensor *t = &f->ts[f->n];
        t->t.name = rdml_strdup(p->ctx, name);
        t->key = rdml_malloc(p->ctx, sk->len + 1, "storage key");
        if (!t->t.name || !t->key) return p->ctx->code;
        memcpy(t->key, p->buf + sk->off, sk->len);
        t->key[sk->len] = '\0';
        f->n++;
        t->t.dtype = (rdml_st_dtype)sn->g;
        t->t.ndim = st->ndim;
        memcpy(t->t.shape, st->shape, sizeof st->shape);
        t->t.count = 1;
        for (int j = 0; j < st->ndim; j++) t->t.count *= st->shape[j];
        t->t.begin = vn->i;
        t->t.end = vn->i + t->t.count;
    }
    return RDML_OK;
}
#undef K

/* data.pkl's bytes to f->ts. */
static int interpret(rdml_ctx *ctx, const char *what, const uint8_t *buf, size_t len, rdml_pth *f) {
    sd s = {0};
    rdml_pk p;
    int32_t top = -1;
    int rc = rdml_pk_run(&p, ctx, what, buf, len, 0, &sd_builder, &s, &top);
    if (rc == RDML_OK) rc = collect(&p, top, f);
    rdml_pk_free(&p);
    free(s.t);
    return rc;
}

void rdml_pth_close(rdml_pth **pf) {
    if (!pf || !*pf) return;
    rdml_pth *f = *pf;
    for (int64_t i = 0; i < f->n; i++) {
        free(f->ts[i].t.name);
        free(f->ts[i].key);
    }
    free(f->ts);
    if (f->z) zip_discard(f->z);
    free(f->path);
    free(f);
    *pf = NULL;
}

static int read_entry(rdml_ctx *ctx, rdml_pth *f, const char *name, uint8_t **buf, size_t *len,
                      int64_t max) {
    zip_stat_t zs;
    *buf = NULL;
    zip_stat_init(&zs);
    if (zip_stat(f->z, name, 0, &zs) != 0 || !(zs.valid & ZIP_STAT_SIZE))
        return RDML_FAIL(ctx, RDML_EFORMAT, "%s: the archive has no entry %s (hint: not a "
                         "torch.save checkpoint?)", f->path, name);
    if ((int64_t)zs.size > max)
        return RDML_FAIL(ctx, RDML_EFORMAT, "%s: %s holds %" PRIu64 " bytes, far more than a "
                         "state dict's pickle", f->path, name, (uint64_t)zs.size);
    *buf = rdml_malloc(ctx, (size_t)zs.size + 1, name);
    if (!*buf) return ctx->code;
    zip_file_t *zf = zip_fopen(f->z, name, 0);
    zip_int64_t got = zf ? zip_fread(zf, *buf, zs.size) : -1;
    if (zf) zip_fclose(zf);
    if (got != (zip_int64_t)zs.size) {
        free(*buf);
        *buf = NULL;
        return RDML_FAIL(ctx, RDML_EFORMAT, "%s: cannot read %s from the archive (truncated or "
                         "corrupt file?)", f->path, name);
    }
    *len = (size_t)zs.size;
    return RDML_OK;
}

int rdml_pth_open(rdml_ctx *ctx, const char *path, rdml_pth **out) {
    *out = NULL;
    rdml_pth *f = calloc(1, sizeof *f);
    if (!f || !(f->path = strdup(path))) {
        free(f);
        return RDML_FAIL(ctx, RDML_ENOMEM, "out of memory opening %s", path);
    }
    int err = 0, rc = RDML_OK;
    f->z = zip_open(path, ZIP_RDONLY | ZIP_CHECKCONS, &err);
    if (!f->z) {
        zip_error_t ze;
        zip_error_init_with_code(&ze, err);
        rc = RDML_FAIL(ctx, RDML_EFORMAT, "%s: not a readable zip archive: %s (hint: a "
                       "truncated download, or a checkpoint in the legacy pre-1.6 format: load "
                       "and re-save it with torch.save(sd, path))", path, zip_error_strerror(&ze));
        zip_error_fini(&ze);
    }
    /* the one <dir>/data.pkl */
    int found = 0;
    for (zip_int64_t i = 0; !rc && i < zip_get_num_entries(f->z, 0); i++) {
        const char *e = zip_get_name(f->z, (zip_uint64_t)i, 0);
        const char *sl = e ? strchr(e, '/') : NULL;
        if (!sl || strcmp(sl, "/data.pkl") != 0 || (size_t)(sl - e) >= sizeof f->dir) continue;
        if (found++)
            rc = RDML_FAIL(ctx, RDML_EFORMAT, "%s: more than one data.pkl in the archive", path);
        else {
            memcpy(f->dir, e, (size_t)(sl - e));
            f->dir[sl - e] = '\0';
        }
    }
    if (!rc && !found)
        rc = RDML_FAIL(ctx, RDML_EFORMAT, "%s: a zip archive without <dir>/data.pkl: not a "
                       "torch.save checkpoint", path);
    char name[512];
    uint8_t *buf = NULL;
    size_t len = 0;
    if (!rc) {
        snprintf(name, sizeof name, "%s/byteorder", f->dir);
        if (zip_name_locate(f->z, name, 0) >= 0) {
            rc = read_entry(ctx, f, name, &buf, &len, 16);
            if (!rc && !(len == 6 && memcmp(buf, "little", 6) == 0))
                rc = RDML_FAIL(ctx, RDML_EFORMAT, "%s: a big-endian checkpoint is not supported "
                               "(hint: re-save it on a little-endian machine)", path);
            free(buf);
            buf = NULL;
        }
    }
    if (!rc) {
        snprintf(name, sizeof name, "%s/data.pkl", f->dir);
        rc = read_entry(ctx, f, name, &buf, &len, PKL_MAX);
    }
    if (!rc) rc = interpret(ctx, path, buf, len, f);
    free(buf);
    /* every storage is there and long enough */
    for (int64_t i = 0; !rc && i < f->n; i++) {
        const pth_tensor *t = &f->ts[i];
        zip_stat_t zs;
        zip_stat_init(&zs);
        snprintf(name, sizeof name, "%s/data/%s", f->dir, t->key);
        const int64_t need = t->t.end * rdml_st_dtype_size(t->t.dtype);
        if (zip_stat(f->z, name, 0, &zs) != 0)
            rc = RDML_FAIL(ctx, RDML_EFORMAT, "%s: tensor '%s' lives in storage %s, which the "
                           "archive lacks (truncated or corrupt checkpoint?)", path, t->t.name, name);
        else if ((int64_t)zs.size < need)
            rc = RDML_FAIL(ctx, RDML_EFORMAT, "%s: storage %s holds %" PRIu64 " bytes but "
                           "tensor '%s' needs %" PRId64, path, name, (uint64_t)zs.size, t->t.name,
                           need);
    }
    if (rc) {
        rdml_pth_close(&f);
        return rc;
    }
    *out = f;
    return RDML_OK;
}

int rdml_pth_parse_pickle(rdml_ctx *ctx, const char *what, const uint8_t *buf, size_t len,
                          int64_t *ntensors) {
    *ntensors = 0;
    rdml_pth f;
    memset(&f, 0, sizeof f);
    f.path = (char *)what;
    int rc = interpret(ctx, what, buf, len, &f);
    if (!rc) *ntensors = f.n;
    for (int64_t i = 0; i < f.n; i++) {
        free(f.ts[i].t.name);
        free(f.ts[i].key);
    }
    free(f.ts);
    return rc;
}

int64_t rdml_pth_count(const rdml_pth *f) { return f->n; }
const rdml_st_tensor *rdml_pth_at(const rdml_pth *f, int64_t i) {
    return i >= 0 && i < f->n ? &f->ts[i].t : NULL;
}
int64_t rdml_pth_index(const rdml_pth *f, const char *name) {
    for (int64_t i = 0; i < f->n; i++)
        if (strcmp(f->ts[i].t.name, name) == 0) return i;
    return -1;
}
const char *rdml_pth_path(const rdml_pth *f) { return f->path; }

static float half_f(uint16_t h) {
    const uint32_t s = (uint32_t)(h >> 15) << 31, e = (h >> 10) & 0x1f, m = h & 0x3ff;
    uint32_t u;
    if (e == 0) {
        if (!m) u = s;
        else {
            int k = -1;
            uint32_t mm = m;
            do { k++; mm <<= 1; } while (!(mm & 0x400));
            u = s | (uint32_t)(127 - 15 - k) << 23 | (mm & 0x3ff) << 13;
        }
    } else if (e == 31) u = s | 0x7f800000u | m << 13;
    else u = s | (e - 15 + 127) << 23 | m << 13;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

int rdml_pth_read_f32(rdml_ctx *ctx, const rdml_pth *f, const rdml_st_tensor *t, float *out) {
    const pth_tensor *pt = (const pth_tensor *)t;
    const int es = rdml_st_dtype_size(t->dtype);
    if (t->dtype != RDML_ST_F32 && t->dtype != RDML_ST_F64 && t->dtype != RDML_ST_F16 &&
        t->dtype != RDML_ST_BF16)
        return RDML_FAIL(ctx, RDML_EFORMAT, "%s: tensor '%s' is %s, not a float tensor", f->path,
                         t->name, rdml_st_dtype_name(t->dtype));
    char name[512];
    snprintf(name, sizeof name, "%s/data/%s", f->dir, pt->key);
    zip_file_t *zf = zip_fopen(f->z, name, 0);
    int rc = zf ? RDML_OK : RDML_FAIL(ctx, RDML_EFORMAT, "%s: cannot open %s", f->path, name);
    /* skip to the tensor's offset, then read in pieces */
    uint8_t chunk[1 << 16];
    int64_t skip = t->begin * es, left = t->count * es, done = 0;
    while (!rc && skip > 0) {
        zip_int64_t g = zip_fread(zf, chunk, (zip_uint64_t)(skip < (int64_t)sizeof chunk ? skip : (int64_t)sizeof chunk));
        if (g <= 0) rc = RDML_FAIL(ctx, RDML_EFORMAT, "%s: %s is shorter than its tensors", f->path, name);
        else skip -= g;
    }
    while (!rc && left > 0) {
        int64_t want = left < (int64_t)sizeof chunk ? left : (int64_t)sizeof chunk;
        want -= want % es;
        zip_int64_t g = zip_fread(zf, chunk, (zip_uint64_t)want);
        if (g <= 0 || g % es) {
            rc = RDML_FAIL(ctx, RDML_EFORMAT, "%s: cannot read tensor '%s' from %s (corrupt "
                           "archive?)", f->path, t->name, name);
            break;
        }
        const int64_t n = g / es;
        for (int64_t i = 0; i < n; i++) {
            const uint8_t *q = chunk + i * es;
            float v;
            switch (t->dtype) {
            case RDML_ST_F32: memcpy(&v, q, 4); break;
            case RDML_ST_F64: { double d; memcpy(&d, q, 8); v = (float)d; break; }
            case RDML_ST_F16: v = half_f((uint16_t)(q[0] | q[1] << 8)); break;
            default: { uint32_t u = (uint32_t)(q[0] | q[1] << 8) << 16; memcpy(&v, &u, 4); break; }
            }
            out[done + i] = v;
        }
        done += n;
        left -= g;
    }
    if (zf) zip_fclose(zf);
    return rc;
}
