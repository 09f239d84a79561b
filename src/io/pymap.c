/* The Algonauts mapping_*.npy files: a pickled 0-d object array holding a dict {int: str}.
 * The reader is a builder of the restricted unpickler (io/pickle_priv.h, pickle.c), which
 * only *interprets*: it walks the opcodes numpy's np.save writes for such an array with
 * pickle protocols 2, 3 and 4 (numpy 1.x and 2.x). This builder allows only the globals
 * numpy's _reconstruct, ndarray and dtype (and _codecs.encode, which protocol 2 uses for a
 * bytes literal), checks every REDUCE and BUILD against the exact shapes numpy produces, and
 * allows one dict and one list; the machine refuses any other opcode with its name and byte
 * offset. Nothing is imported or executed. The writer emits the bytes numpy 1.24 writes with
 * protocol 3. Left out: other pickled objects (lists, nested dicts, non-int keys), and
 * reproducing pickle's memo sharing of one Python string object used as two values (the
 * writer emits each name; the reader accepts both forms). */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/npy_priv.h"
#include "io/pickle_priv.h"
#include "rdml/npy.h"
#include "rdml/pymap.h"

#define PM_MAX_FILE ((int64_t)256 << 20) /* mapping files are tiny; refuse above 256 MiB */

/* ---- the builder: numpy's object array of one dict ---- */

enum { V_NDARRAY = RDML_PK_USER, /* result of _reconstruct; flag = BUILD applied, ref = its list */
       V_DTYPE };                /* result of dtype('O8', False, True); flag = BUILD applied */
enum { G_RECONSTRUCT, G_NDARRAY, G_DTYPE, G_ENCODE };

static const rdml_pk_global numpy_globals[] = {
    {"numpy.core.multiarray", "_reconstruct", G_RECONSTRUCT},
    {"numpy._core.multiarray", "_reconstruct", G_RECONSTRUCT},
    {"numpy.core._multiarray_umath", "_reconstruct", G_RECONSTRUCT},
    {"numpy._core._multiarray_umath", "_reconstruct", G_RECONSTRUCT},
    {"numpy", "ndarray", G_NDARRAY},
    {"numpy", "dtype", G_DTYPE},
    {"_codecs", "encode", G_ENCODE},
};

typedef struct pm {
    rdml_pymap *out;
    int64_t cap_keys, cap_names;
    int dicts, lists;
} pm;

static int pm_fail(rdml_pk *p, rdml_pk_fault f, uint8_t op, int64_t at, const char *text) {
    if (f == RDML_PK_MALFORMED)
        return RDML_FAIL(p->ctx, RDML_EFORMAT,
                         "%s: malformed mapping pickle at byte %lld: %s (hint: mapping files are "
                         "written by np.save(path, {int: str}))",
                         p->what, (long long)at, text);
    char c[8];
    if (op >= 0x20 && op < 0x7f)
        snprintf(c, sizeof c, "%c", op);
    else
        snprintf(c, sizeof c, "\\x%02x", op);
    return RDML_FAIL(p->ctx, RDML_EFORMAT,
                     "%s: pickle opcode '%s' (%s%s%s) at byte %lld is not allowed in a mapping "
                     "file; only numpy dict mappings are read (never executed)",
                     p->what, c, rdml_pickle_op_name(op), text ? " " : "", text ? text : "",
                     (long long)at);
}

static int is_int(rdml_pk *p, int32_t id, int64_t v) {
    return rdml_pk_kind(p, id) == RDML_PK_INT && rdml_pk_at(p, id)->i == v;
}

static int is_bool(rdml_pk *p, int32_t id, int v) {
    return rdml_pk_kind(p, id) == RDML_PK_BOOL && rdml_pk_at(p, id)->i == v;
}

static int pm_reduce(rdml_pk *p, int32_t fn, int32_t args, int32_t *out) {
#define K(t, k) rdml_pk_kid(p, t, k)
    switch (rdml_pk_at(p, fn)->g) {
    case G_RECONSTRUCT:
        /* _reconstruct(ndarray, (0,), b'b'); Python 2 pickled the 'b' as a str */
        if (!rdml_pk_is_tuple(p, args, 3) || rdml_pk_kind(p, K(args, 0)) != RDML_PK_GLOBAL ||
            rdml_pk_at(p, K(args, 0))->g != G_NDARRAY || !rdml_pk_is_tuple(p, K(args, 1), 1) ||
            !is_int(p, K(K(args, 1), 0), 0) || !rdml_pk_str_is(p, K(args, 2), "b"))
            return rdml_pk_bad(p, "_reconstruct is called with arguments numpy does not write");
        *out = rdml_pk_new(p, V_NDARRAY);
        break;
    case G_DTYPE:
        /* dtype('O8', False, True) */
        if (!rdml_pk_is_tuple(p, args, 3) || rdml_pk_kind(p, K(args, 0)) != RDML_PK_STR ||
            !(rdml_pk_str_is(p, K(args, 0), "O8") || rdml_pk_str_is(p, K(args, 0), "O4")) ||
            !is_bool(p, K(args, 1), 0) || !is_bool(p, K(args, 2), 1))
            return rdml_pk_bad(p, "the array's dtype is not numpy's object dtype 'O8' (not a dict "
                                  "mapping)");
        *out = rdml_pk_new(p, V_DTYPE);
        break;
    case G_ENCODE: {
        /* _codecs.encode('b', 'latin1'): how protocol 2 spells the bytes b'b' */
        if (!rdml_pk_is_tuple(p, args, 2) || rdml_pk_kind(p, K(args, 0)) != RDML_PK_STR ||
            !rdml_pk_str_is(p, K(args, 1), "latin1"))
            return rdml_pk_bad(p, "_codecs.encode is called with arguments numpy does not write");
        const rdml_pk_node s = *rdml_pk_at(p, K(args, 0));
        for (size_t i = 0; i < s.len; i++)
            if (p->buf[s.off + i] >= 0x80) return rdml_pk_bad(p, "_codecs.encode of a non-ASCII string");
        *out = rdml_pk_new(p, RDML_PK_BYTES);
        if (*out >= 0) {
            rdml_pk_at(p, *out)->off = s.off;
            rdml_pk_at(p, *out)->len = s.len;
        }
        break;
    }
    default: return rdml_pk_bad(p, "REDUCE applies numpy.ndarray directly");
    }
    return *out < 0 ? p->ctx->code : RDML_OK;
}

static int pm_build(rdml_pk *p, int32_t obj, int32_t state) {
    rdml_pk_node *o = rdml_pk_at(p, obj);
    if (o->kind == V_DTYPE && !o->flag) {
        /* (3, '|', None, None, None, -1, -1, 63) */
        if (!rdml_pk_is_tuple(p, state, 8) || !is_int(p, K(state, 0), 3) ||
            !rdml_pk_str_is(p, K(state, 1), "|"))
            return rdml_pk_bad(p, "the object dtype's state is not what numpy writes");
        o->flag = 1;
        return RDML_OK;
    }
    if (o->kind == V_NDARRAY && !o->flag) {
        /* (1, (), dtype, False, [the dict]) */
        if (!rdml_pk_is_tuple(p, state, 5) || !is_int(p, K(state, 0), 1) ||
            !rdml_pk_is_tuple(p, K(state, 1), 0) || rdml_pk_kind(p, K(state, 2)) != V_DTYPE ||
            !rdml_pk_at(p, K(state, 2))->flag || !is_bool(p, K(state, 3), 0) ||
            rdml_pk_kind(p, K(state, 4)) != RDML_PK_LIST)
            return rdml_pk_bad(p, "the array's state is not a 0-d object array as numpy writes it");
        o->flag = 1;
        o->ref = K(state, 4);
        return RDML_OK;
    }
    return rdml_pk_bad(p, "BUILD on something other than a numpy array or dtype");
#undef K
}

static int pm_container(rdml_pk *p, int kind) {
    pm *m = p->user;
    if (kind == RDML_PK_DICT && m->dicts++)
        return rdml_pk_bad(p, "a second dict (only one {int: str} dict is read)");
    if (kind == RDML_PK_LIST && m->lists++)
        return rdml_pk_bad(p, "a second list (not a numpy dict mapping)");
    return RDML_OK;
}

/* dict[k] = v: an int key and a valid UTF-8 name (no NUL, no overlongs or surrogates),
 * copied to the output. */
static int pm_setitem(rdml_pk *p, int32_t dict, int32_t k, int32_t v) {
    (void)dict;
    const rdml_pk_node *kn = rdml_pk_at(p, k), *vn = rdml_pk_at(p, v);
    if (kn->kind != RDML_PK_INT) return rdml_pk_bad(p, "a dict key is not an integer");
    if (vn->kind != RDML_PK_STR) return rdml_pk_bad(p, "a dict value is not a string");
    const uint8_t *s = p->buf + vn->off;
    size_t n = vn->len;
    for (size_t i = 0; i < n;) {
        uint8_t c = s[i];
        size_t w = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3
                                : (c & 0xf8) == 0xf0 ? 4 : 0;
        if (c == 0) return rdml_pk_bad(p, "a name contains a NUL byte");
        if (!w || i + w > n || (w == 2 && c < 0xc2) || (w == 4 && c > 0xf4))
            return rdml_pk_bad(p, "a name is not valid UTF-8");
        uint32_t cp = w == 1 ? c : w == 2 ? (c & 0x1fu) : w == 3 ? (c & 0x0fu) : (c & 0x07u);
        for (size_t j = 1; j < w; j++) {
            if ((s[i + j] & 0xc0) != 0x80) return rdml_pk_bad(p, "a name is not valid UTF-8");
            cp = cp << 6 | (s[i + j] & 0x3fu);
        }
        if ((w == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
            (w == 4 && (cp < 0x10000 || cp > 0x10ffff)))
            return rdml_pk_bad(p, "a name is not valid UTF-8");
        i += w;
    }
    pm *m = p->user;
    rdml_pymap *o = m->out;
    RDML_TRY(rdml_pk_grow(p, (void **)&o->keys, &m->cap_keys, o->n, sizeof *o->keys, "mapping keys"));
    RDML_TRY(rdml_pk_grow(p, (void **)&o->names, &m->cap_names, o->n, sizeof *o->names, "mapping names"));
    char *name = rdml_malloc(p->ctx, n + 1, "mapping name");
    if (!name) return p->ctx->code;
    memcpy(name, s, n);
    name[n] = '\0';
    o->keys[o->n] = kn->i;
    o->names[o->n] = name;
    o->n++;
    return RDML_OK;
}

static const rdml_pk_builder pymap_builder = {
    .globals = numpy_globals,
    .nglobals = sizeof numpy_globals / sizeof numpy_globals[0],
    .extra_ops = "",
    .reduce = pm_reduce,
    .build = pm_build,
    .persid = NULL,
    .on_container = pm_container,
    .on_setitem = pm_setitem,
    .fail = pm_fail,
};

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* After STOP: the one value is the built array, whose list holds the one dict; keys distinct. */
static int finish(rdml_pk *p, int32_t top, rdml_pymap *o) {
    const rdml_pk_node *a = rdml_pk_at(p, top);
    if (a->kind != V_NDARRAY || !a->flag)
        return rdml_pk_bad(p, "the pickle does not hold a numpy object array");
    if (a->ref < 0 || rdml_pk_at(p, a->ref)->n != 1 ||
        rdml_pk_kind(p, rdml_pk_kid(p, a->ref, 0)) != RDML_PK_DICT)
        return rdml_pk_bad(p, "the object array does not hold exactly one dict");
    if (o->n > 1) {
        int64_t *k = rdml_malloc(p->ctx, (size_t)o->n * sizeof *k, "key check");
        if (!k) return p->ctx->code;
        memcpy(k, o->keys, (size_t)o->n * sizeof *k);
        qsort(k, (size_t)o->n, sizeof *k, cmp_i64);
        int64_t dup = 0;
        int found = 0;
        for (int64_t i = 1; i < o->n && !found; i++)
            if (k[i] == k[i - 1]) dup = k[i], found = 1;
        free(k);
        if (found) return rdml_pk_bad(p, "key %" PRId64 " appears twice in the dict", dup);
    }
    return RDML_OK;
}

void rdml_pymap_free(rdml_pymap *m) {
    if (!m) return;
    for (int64_t i = 0; i < m->n; i++) free(m->names ? m->names[i] : NULL);
    free(m->names);
    free(m->keys);
    memset(m, 0, sizeof *m);
}

static int parse_at(rdml_ctx *ctx, const char *what, const uint8_t *buf, size_t len,
                    int64_t base, rdml_pymap *out) {
    memset(out, 0, sizeof *out);
    pm m = {.out = out};
    rdml_pk p;
    int32_t top = -1;
    int rc = rdml_pk_run(&p, ctx, what, buf, len, base, &pymap_builder, &m, &top);
    if (rc == RDML_OK) rc = finish(&p, top, out);
    rdml_pk_free(&p);
    if (rc != RDML_OK) rdml_pymap_free(out);
    return rc;
}

int rdml_pymap_parse(rdml_ctx *ctx, const char *what, const uint8_t *buf, size_t len,
                     rdml_pymap *out) {
    return parse_at(ctx, what, buf, len, 0, out);
}

int rdml_pymap_read(rdml_ctx *ctx, const char *path, rdml_pymap *out) {
    memset(out, 0, sizeof *out);
    rdml_npy f;
    RDML_TRY(rdml_npy_open(ctx, path, 0, &f));
    if (f.dtype != RDML_DT_OBJ || f.ndim != 0) {
        char sh[64] = "()";
        if (f.ndim == 1) snprintf(sh, sizeof sh, "(%" PRId64 ",)", f.shape[0]);
        if (f.ndim >= 2) snprintf(sh, sizeof sh, "(%" PRId64 ", ...)", f.shape[0]);
        int rc = RDML_FAIL(ctx, RDML_EFORMAT,
                           "%s: not a mapping file: the header says dtype %s, shape %s; a "
                           "mapping is a pickled dict ('|O', shape ())",
                           path, rdml_dtype_name(f.dtype), sh);
        rdml_npy_close(&f);
        return rc;
    }
    int64_t n = f.file_size - f.data_offset;
    if (n > PM_MAX_FILE) {
        rdml_npy_close(&f);
        return RDML_FAIL(ctx, RDML_EFORMAT,
                         "%s: %" PRId64 " bytes of pickle is far too large for a mapping", path,
                         n);
    }
    uint8_t *buf = rdml_malloc(ctx, (size_t)n, "mapping pickle");
    int rc = buf ? rdml_npy_pread_all(ctx, path, f.fd, buf, (size_t)n, f.data_offset) : ctx->code;
    if (rc == RDML_OK) rc = parse_at(ctx, path, buf, (size_t)n, f.data_offset, out);
    free(buf);
    rdml_npy_close(&f);
    return rc;
}

const char *rdml_pymap_get(const rdml_pymap *m, int64_t key) {
    for (int64_t i = 0; i < m->n; i++)
        if (m->keys[i] == key) return m->names[i];
    return NULL;
}

/* ---- writer: the bytes numpy 1.24 writes (C pickler, protocol 3) ---- */

typedef struct obuf {
    uint8_t *b;
    size_t n, cap;
    int oom;
} obuf;

static void put(obuf *o, const void *p, size_t n) {
    if (o->oom) return;
    if (o->n + n > o->cap) {
        size_t c = o->cap ? o->cap : 256;
        while (c < o->n + n) c *= 2;
        uint8_t *q = realloc(o->b, c);
        if (!q) {
            o->oom = 1;
            return;
        }
        o->b = q;
        o->cap = c;
    }
    memcpy(o->b + o->n, p, n);
    o->n += n;
}

static void put_le(obuf *o, uint8_t op, uint64_t v, int n) {
    uint8_t b[9];
    b[0] = op;
    for (int i = 0; i < n; i++) b[1 + i] = (uint8_t)(v >> (8 * i));
    put(o, b, (size_t)n + 1);
}

static void put_memo(obuf *o, uint32_t *memo) {
    if (*memo < 256)
        put_le(o, 'q', *memo, 1);
    else
        put_le(o, 'r', *memo, 4);
    (*memo)++;
}

/* pickle's save_long: BININT1/BININT2 for small non-negatives, BININT for 32-bit, else LONG1
 * with the shortest two's-complement encoding. */
static void put_int(obuf *o, int64_t v) {
    if (v >= 0 && v <= 0xff) {
        put_le(o, 'K', (uint64_t)v, 1);
    } else if (v >= 0 && v <= 0xffff) {
        put_le(o, 'M', (uint64_t)v, 2);
    } else if (v >= INT32_MIN && v <= INT32_MAX) {
        put_le(o, 'J', (uint64_t)(uint32_t)(int32_t)v, 4);
    } else {
        int n = 8;
        /* drop redundant sign bytes */
        while (n > 1) {
            uint8_t top = (uint8_t)((uint64_t)v >> (8 * (n - 1)));
            uint8_t next = (uint8_t)((uint64_t)v >> (8 * (n - 2)));
            if ((top == 0x00 && !(next & 0x80)) || (top == 0xff && (next & 0x80)))
                n--;
            else
                break;
        }
        uint8_t b[10];
        b[0] = 0x8a;
        b[1] = (uint8_t)n;
        for (int i = 0; i < n; i++) b[2 + i] = (uint8_t)((uint64_t)v >> (8 * i));
        put(o, b, (size_t)n + 2);
    }
}

int rdml_pymap_write(rdml_ctx *ctx, const char *path, const rdml_pymap *m) {
    if (m->n < 0 || (m->n && (!m->keys || !m->names)))
        return RDML_FAIL(ctx, RDML_EINTERNAL, "%s: invalid mapping to write", path);
    for (int64_t i = 0; i < m->n; i++) {
        if (!m->names[i])
            return RDML_FAIL(ctx, RDML_EINTERNAL, "%s: mapping key %" PRId64 " has no name", path,
                             m->keys[i]);
        if (strlen(m->names[i]) > UINT32_MAX)
            return RDML_FAIL(ctx, RDML_EDATA, "%s: mapping name too long", path);
    }
    char head[256];
    size_t hl = rdml_npy_header_bytes(head, sizeof head, RDML_DT_OBJ, 0, 0, NULL);
    obuf o = {0};
    /* The fixed prefix: PROTO 3, _reconstruct(ndarray, (0,), b'b'), and BUILD's state up to
     * the list (1, (), dtype('O8', False, True) built with (3, '|', ...), False, [ */
    static const uint8_t prefix[] =
        "\x80\x03"
        "cnumpy.core.multiarray\n_reconstruct\nq\x00"
        "cnumpy\nndarray\nq\x01"
        "K\x00\x85q\x02"
        "C\x01" "bq\x03"
        "\x87q\x04" "Rq\x05"
        "(K\x01)"
        "cnumpy\ndtype\nq\x06"
        "X\x02\x00\x00\x00O8q\x07"
        "\x89\x88\x87q\x08" "Rq\x09"
        "(K\x03X\x01\x00\x00\x00|q\x0a"
        "NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK?tq\x0b"
        "b"
        "\x89]q\x0c}q\x0d";
    put(&o, prefix, sizeof prefix - 1);
    uint32_t memo = 14;
    /* C pickler's batch_dict_exact: one item -> SETITEM; else batches of 1000 in
     * MARK ... SETITEMS, plus an empty batch when the last one was full. */
    if (m->n == 1) {
        put_int(&o, m->keys[0]);
        size_t l = strlen(m->names[0]);
        put_le(&o, 'X', l, 4);
        put(&o, m->names[0], l);
        put_memo(&o, &memo);
        put(&o, "s", 1);
    } else if (m->n > 1) {
        int64_t i = 0, in_batch;
        do {
            put(&o, "(", 1);
            in_batch = 0;
            while (i < m->n && in_batch < 1000) {
                put_int(&o, m->keys[i]);
                size_t l = strlen(m->names[i]);
                put_le(&o, 'X', l, 4);
                put(&o, m->names[i], l);
                put_memo(&o, &memo);
                i++;
                in_batch++;
            }
            put(&o, "u", 1);
        } while (in_batch == 1000);
    }
    put(&o, "at", 2);
    put_memo(&o, &memo);
    put(&o, "b.", 2);
    int rc;
    if (o.oom || !hl)
        rc = RDML_FAIL(ctx, RDML_ENOMEM, "%s: out of memory encoding the mapping", path);
    else
        rc = rdml_npy_write_atomic(ctx, path, head, hl, o.b, o.n);
    free(o.b);
    return rc;
}
