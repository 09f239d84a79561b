/* PyTorch checkpoints (rdml/pth.h): the zip archive torch.save writes (<dir>/data.pkl, the
 * pickled object; <dir>/data/<key>, one raw little-endian storage per key; <dir>/byteorder)
 * read with libzip, and data.pkl interpreted by a restricted pickle machine in the manner of
 * the ROI-mapping reader (pymap.c, whose opcode names it shares): a typed value stack, marks
 * and memo bounded by the input, and only the globals a state dict needs (OrderedDict, the
 * tensor rebuild functions, the storage types inside a persistent id). Nothing is imported,
 * called or executed: REDUCE is interpreted for exactly those callables with their exact
 * argument shapes, anything else is refused naming it. Tensors must be contiguous views of
 * their storage (as state_dict() tensors are); they are read on demand from the storage's zip
 * entry. Left out: the legacy (pre-1.6, non-zip) tar format, big-endian archives, sparse,
 * quantized and non-contiguous tensors, and pickled modules (torch.save(model)). */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zip.h>

#include "io/pickle_priv.h"
#include "rdml/pth.h"

#define PKL_MAX ((int64_t)64 << 20) /* a state dict's pickle is small: refuse above 64 MiB */
#define MAX_MARKS 64

enum { V_NONE, V_BOOL, V_INT, V_FLOAT, V_STR, V_BYTES, V_TUPLE, V_LIST, V_DICT, V_GLOBAL,
       V_STORAGE, V_TENSOR };
enum { G_ODICT, G_REBUILD, G_PARAM, G_STORAGE };

typedef struct pnode {
    uint8_t kind, g;
    int8_t dtype;        /* V_GLOBAL storage type / V_STORAGE: rdml_st_dtype */
    int64_t i;           /* V_INT, V_BOOL; V_STORAGE: numel; V_TENSOR: storage offset */
    size_t off, len;     /* V_STR / V_BYTES in the pickle */
    int32_t *items;      /* V_TUPLE / V_LIST children, V_DICT key, value, key, value ... */
    int32_t n, cap;
    int32_t storage;     /* V_TENSOR: its V_STORAGE node; V_STORAGE: its key string node */
    int ndim;
    int64_t shape[RDML_ST_MAXDIM];
} pnode;

typedef struct vm {
    rdml_ctx *ctx;
    const char *what;
    const uint8_t *buf;
    size_t len, pos, op_at;
    pnode *nodes;
    int32_t nnodes, cap_nodes;
    int32_t *stack;
    int64_t nstack, cap_stack;
    int64_t marks[MAX_MARKS];
    int nmarks;
    int32_t *memo;
    int64_t cap_memo, memo_count;
} vm;

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

static const struct {
    const char *name;
    rdml_st_dtype dt;
} storages[] = {
    {"FloatStorage", RDML_ST_F32}, {"DoubleStorage", RDML_ST_F64}, {"HalfStorage", RDML_ST_F16},
    {"BFloat16Storage", RDML_ST_BF16}, {"LongStorage", RDML_ST_I64}, {"IntStorage", RDML_ST_I32},
    {"ShortStorage", RDML_ST_I16}, {"CharStorage", RDML_ST_I8}, {"ByteStorage", RDML_ST_U8},
    {"BoolStorage", RDML_ST_BOOL},
};

static int bad(vm *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int bad(vm *p, const char *fmt, ...) {
    char why[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    return RDML_FAIL(p->ctx, RDML_EFORMAT, "%s: not a state dict rdmlearn reads: %s (at byte "
                     "%zu of data.pkl; nothing was executed) (hint: save the weights with "
                     "torch.save(model.state_dict(), path), or convert them with "
                     "tools/pth_to_safetensors.py)", p->what, why, p->op_at);
}

static int refuse_op(vm *p, uint8_t op) {
    char c[8];
    if (op >= 0x20 && op < 0x7f) snprintf(c, sizeof c, "%c", op);
    else snprintf(c, sizeof c, "\\x%02x", op);
    return RDML_FAIL(p->ctx, RDML_EFORMAT, "%s: pickle opcode '%s' (%s) at byte %zu of data.pkl "
                     "is not allowed in a state dict; refused, nothing was executed (only what "
                     "torch.load(weights_only=True) accepts for tensors is read)", p->what, c,
                     rdml_pickle_op_name(op), p->op_at);
}

static int grow(vm *p, void **arr, int64_t *cap, int64_t need, size_t es, const char *what) {
    if (need < *cap) return RDML_OK;
    int64_t nc = *cap ? *cap : 16;
    while (nc <= need) nc *= 2;
    void *q = rdml_realloc(p->ctx, *arr, (size_t)nc * es, what);
    if (!q) return p->ctx->code;
    *arr = q;
    *cap = nc;
    return RDML_OK;
}

static int32_t new_node(vm *p, int kind) {
    if ((int64_t)p->nnodes >= (int64_t)p->len + 16 || p->nnodes >= INT32_MAX / 4) {
        bad(p, "more values than opcodes");
        return -1;
    }
    if (p->nnodes >= p->cap_nodes) {
        int64_t cap = p->cap_nodes;
        if (grow(p, (void **)&p->nodes, &cap, p->nnodes, sizeof(pnode), "pickle values")) return -1;
        p->cap_nodes = (int32_t)cap;
    }
    pnode *n = &p->nodes[p->nnodes];
    memset(n, 0, sizeof *n);
    n->kind = (uint8_t)kind;
    n->storage = -1;
    return p->nnodes++;
}

static pnode *N(vm *p, int32_t id) { return &p->nodes[id]; }

static int add_item(vm *p, int32_t id, int32_t v) {
    pnode *n = N(p, id);
    if (n->n == n->cap) {
        int32_t nc = n->cap ? 2 * n->cap : 8;
        int32_t *q = rdml_realloc(p->ctx, n->items, (size_t)nc * sizeof *q, "pickle items");
        if (!q) return p->ctx->code;
        n->items = q;
        n->cap = nc;
    }
    n->items[n->n++] = v;
    return RDML_OK;
}

static int push(vm *p, int32_t id) {
    if (id < 0) return p->ctx->code;
    RDML_TRY(grow(p, (void **)&p->stack, &p->cap_stack, p->nstack, sizeof(int32_t), "pickle stack"));
    p->stack[p->nstack++] = id;
    return RDML_OK;
}

static int64_t avail(const vm *p) { return p->nstack - (p->nmarks ? p->marks[p->nmarks - 1] : 0); }

static int pop(vm *p, int32_t *id) {
    if (avail(p) < 1) return bad(p, "stack underflow");
    *id = p->stack[--p->nstack];
    return RDML_OK;
}

static int take(vm *p, size_t n, const uint8_t **out) {
    if (p->len - p->pos < n) return bad(p, "the pickle ends inside an opcode (truncated file?)");
    *out = p->buf + p->pos;
    p->pos += n;
    return RDML_OK;
}

static uint64_t le(const uint8_t *b, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = v << 8 | b[i];
    return v;
}

static int push_int(vm *p, int kind, int64_t v) {
    int32_t id = new_node(p, kind);
    if (id >= 0) N(p, id)->i = v;
    return push(p, id);
}

static int push_blob(vm *p, int kind, uint64_t n) {
    const uint8_t *s = NULL;
    if (n > p->len) return bad(p, "a string longer than the pickle (truncated file?)");
    RDML_TRY(take(p, (size_t)n, &s));
    int32_t id = new_node(p, kind);
    if (id >= 0) {
        N(p, id)->off = (size_t)(s - p->buf);
        N(p, id)->len = (size_t)n;
    }
    return push(p, id);
}

static int str_is(vm *p, int32_t id, const char *s) {
    pnode *n = N(p, id);
    return (n->kind == V_STR || n->kind == V_BYTES) && n->len == strlen(s) &&
           memcmp(p->buf + n->off, s, n->len) == 0;
}

static int push_global(vm *p, uint8_t op, const uint8_t *mod, size_t ml, const uint8_t *name,
                       size_t nl) {
#define IS(a, b) (ml == strlen(a) && memcmp(mod, a, ml) == 0 && nl == strlen(b) && memcmp(name, b, nl) == 0)
    int g = -1, dt = -1;
    if (IS("collections", "OrderedDict")) g = G_ODICT;
    else if (IS("torch._utils", "_rebuild_tensor_v2")) g = G_REBUILD;
    else if (IS("torch._utils", "_rebuild_parameter")) g = G_PARAM;
    else if (ml == 5 && memcmp(mod, "torch", 5) == 0)
        for (size_t i = 0; i < sizeof storages / sizeof *storages; i++)
            if (nl == strlen(storages[i].name) && memcmp(name, storages[i].name, nl) == 0) {
                g = G_STORAGE;
                dt = storages[i].dt;
            }
#undef IS
    if (g < 0) {
        char shown[160];
        size_t k = 0;
        for (size_t i = 0; i < ml + 1 + nl && k < 120; i++) {
            uint8_t c = i < ml ? mod[i] : i == ml ? '.' : name[i - ml - 1];
            shown[k++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
        }
        shown[k] = '\0';
        return RDML_FAIL(p->ctx, RDML_EFORMAT, "%s: the pickle names the global %s (%s at byte "
                         "%zu of data.pkl), which a state dict does not need; refused, nothing "
                         "was imported or executed (allowed: collections.OrderedDict, "
                         "torch._utils._rebuild_tensor_v2 / _rebuild_parameter, torch.*Storage; "
                         "hint: a file from an untrusted source, or a pickled model rather than "
                         "its state_dict())", p->what, shown, rdml_pickle_op_name(op), p->op_at);
    }
    int32_t id = new_node(p, V_GLOBAL);
    if (id >= 0) {
        N(p, id)->g = (uint8_t)g;
        N(p, id)->dtype = (int8_t)dt;
    }
    return push(p, id);
}

static int make_tuple(vm *p, int64_t n) {
    if (avail(p) < n) return bad(p, "stack underflow building a tuple");
    int32_t id = new_node(p, V_TUPLE);
    if (id < 0) return p->ctx->code;
    for (int64_t i = 0; i < n; i++) RDML_TRY(add_item(p, id, p->stack[p->nstack - n + i]));
    p->nstack -= n;
    return push(p, id);
}

static int32_t kid(vm *p, int32_t t, int k) { return N(p, t)->items[k]; }

/* A tuple of n ints >= 0 (a size or stride) into v. */
static int int_tuple(vm *p, int32_t t, int64_t *v, int *n) {
    if (N(p, t)->kind != V_TUPLE || N(p, t)->n > RDML_ST_MAXDIM) return 0;
    *n = N(p, t)->n;
    for (int i = 0; i < *n; i++) {
        pnode *k = N(p, kid(p, t, i));
        if (k->kind != V_INT || k->i < 0) return 0;
        v[i] = k->i;
    }
    return 1;
}

static int do_reduce(vm *p) {
    int32_t args = 0, fn = 0, id = -1;
    RDML_TRY(pop(p, &args));
    RDML_TRY(pop(p, &fn));
    if (N(p, fn)->kind != V_GLOBAL)
        return bad(p, "REDUCE calls something that is not an allowed global");
    if (N(p, args)->kind != V_TUPLE) return bad(p, "REDUCE arguments are not a tuple");
    const int na = N(p, args)->n;
    switch (N(p, fn)->g) {
    case G_ODICT:
        if (na != 0) return bad(p, "OrderedDict is called with arguments");
        id = new_node(p, V_DICT);
        break;
    case G_REBUILD: {
        /* (storage, offset, size, stride, requires_grad, backward_hooks[, metadata]) */
        int64_t size[RDML_ST_MAXDIM], stride[RDML_ST_MAXDIM];
        int nd = 0, ns = 0;
        if ((na != 6 && na != 7) || N(p, kid(p, args, 0))->kind != V_STORAGE ||
            N(p, kid(p, args, 1))->kind != V_INT || N(p, kid(p, args, 1))->i < 0 ||
            !int_tuple(p, kid(p, args, 2), size, &nd) || !int_tuple(p, kid(p, args, 3), stride, &ns) ||
            nd != ns || N(p, kid(p, args, 4))->kind != V_BOOL ||
            N(p, kid(p, args, 5))->kind != V_DICT || N(p, kid(p, args, 5))->n != 0)
            return bad(p, "_rebuild_tensor_v2 is called with arguments torch.save does not write");
        int64_t expect = 1, count = 1;
        for (int d = nd - 1; d >= 0; d--) {
            if (size[d] != 1 && stride[d] != expect)
                return bad(p, "a non-contiguous tensor (size/stride do not describe a row-major "
                              "tensor; save tensor.contiguous())");
            expect *= size[d];
            count *= size[d];
        }
        pnode *st = N(p, kid(p, args, 0));
        const int64_t off = N(p, kid(p, args, 1))->i;
        if (off > st->i || count > st->i - off)
            return bad(p, "a tensor of %" PRId64 " elements at offset %" PRId64 " of a storage of "
                          "%" PRId64, count, off, st->i);
        id = new_node(p, V_TENSOR);
        if (id >= 0) {
            pnode *t = N(p, id);
            t->storage = kid(p, args, 0);
            t->i = off;
            t->ndim = nd;
            memcpy(t->shape, size, sizeof size);
            t->dtype = N(p, t->storage)->dtype;
        }
        break;
    }
    case G_PARAM:
        /* _rebuild_parameter(tensor, requires_grad, backward_hooks) */
        if (na != 3 || N(p, kid(p, args, 0))->kind != V_TENSOR ||
            N(p, kid(p, args, 1))->kind != V_BOOL || N(p, kid(p, args, 2))->kind != V_DICT)
            return bad(p, "_rebuild_parameter is called with arguments torch.save does not write");
        return push(p, kid(p, args, 0));
    default: return bad(p, "REDUCE calls a storage type (storages appear only in persistent ids)");
    }
    return push(p, id);
}

/* BINPERSID: ('storage', <torch.XStorage>, key, location, numel) */
static int do_persid(vm *p) {
    int32_t t = 0;
    RDML_TRY(pop(p, &t));
    if (N(p, t)->kind != V_TUPLE || N(p, t)->n != 5 || !str_is(p, kid(p, t, 0), "storage") ||
        N(p, kid(p, t, 1))->kind != V_GLOBAL || N(p, kid(p, t, 1))->g != G_STORAGE ||
        N(p, kid(p, t, 2))->kind != V_STR || N(p, kid(p, t, 3))->kind != V_STR ||
        N(p, kid(p, t, 4))->kind != V_INT || N(p, kid(p, t, 4))->i < 0)
        return bad(p, "a persistent id other than ('storage', type, key, location, numel)");
    pnode *k = N(p, kid(p, t, 2));
    for (size_t i = 0; i < k->len; i++) {
        uint8_t c = p->buf[k->off + i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'))
            return bad(p, "a storage key that is not a plain name");
    }
    if (!k->len || k->len > 64) return bad(p, "a storage key of %zu bytes", k->len);
    int32_t id = new_node(p, V_STORAGE);
    if (id >= 0) {
        N(p, id)->dtype = N(p, kid(p, t, 1))->dtype;
        N(p, id)->i = N(p, kid(p, t, 4))->i;
        N(p, id)->storage = kid(p, t, 2);
    }
    return push(p, id);
}

static int do_build(vm *p) {
    int32_t state = 0;
    RDML_TRY(pop(p, &state));
    if (avail(p) < 1) return bad(p, "stack underflow in BUILD");
    int32_t obj = p->stack[p->nstack - 1];
    /* OrderedDict.__setstate__: the state dict's _metadata attribute (a dict), ignored */
    if (N(p, obj)->kind == V_DICT && (N(p, state)->kind == V_DICT || N(p, state)->kind == V_NONE))
        return RDML_OK;
    return bad(p, "BUILD on something other than an OrderedDict");
}

static int do_setitems(vm *p, int marked) {
    int64_t from;
    if (marked) {
        if (!p->nmarks) return bad(p, "SETITEMS without a MARK");
        from = p->marks[p->nmarks - 1];
        int64_t floor_ = p->nmarks > 1 ? p->marks[p->nmarks - 2] : 0;
        if (from - 1 < floor_) return bad(p, "SETITEMS without a dict");
        p->nmarks--;
    } else {
        if (avail(p) < 3) return bad(p, "SETITEM without a dict, key and value");
        from = p->nstack - 2;
    }
    if ((p->nstack - from) % 2) return bad(p, "SETITEMS with a key but no value");
    int32_t d = p->stack[from - 1];
    if (N(p, d)->kind != V_DICT) return bad(p, "SETITEM(S) on something not a dict");
    for (int64_t i = from; i < p->nstack; i++) RDML_TRY(add_item(p, d, p->stack[i]));
    p->nstack = from;
    return RDML_OK;
}

static int do_appends(vm *p, int marked) {
    int64_t from;
    if (marked) {
        if (!p->nmarks) return bad(p, "APPENDS without a MARK");
        from = p->marks[p->nmarks - 1];
        int64_t floor_ = p->nmarks > 1 ? p->marks[p->nmarks - 2] : 0;
        if (from - 1 < floor_) return bad(p, "APPENDS without a list");
        p->nmarks--;
    } else {
        if (avail(p) < 2) return bad(p, "APPEND without a list and a value");
        from = p->nstack - 1;
    }
    int32_t l = p->stack[from - 1];
    if (N(p, l)->kind != V_LIST) return bad(p, "APPEND(S) on something not a list");
    for (int64_t i = from; i < p->nstack; i++) RDML_TRY(add_item(p, l, p->stack[i]));
    p->nstack = from;
    return RDML_OK;
}

static int memo_put(vm *p, uint64_t idx) {
    if (avail(p) < 1) return bad(p, "memo put with an empty stack");
    if (idx > (uint64_t)p->len + 16) return bad(p, "memo index %" PRIu64 " out of range", idx);
    int64_t old = p->cap_memo;
    RDML_TRY(grow(p, (void **)&p->memo, &p->cap_memo, (int64_t)idx, sizeof(int32_t), "pickle memo"));
    for (int64_t i = old; i < p->cap_memo; i++) p->memo[i] = -1;
    if (p->memo[idx] < 0) p->memo_count++;
    p->memo[idx] = p->stack[p->nstack - 1];
    return RDML_OK;
}

static int memo_get(vm *p, uint64_t idx) {
    if (idx >= (uint64_t)p->cap_memo || p->memo[idx] < 0)
        return bad(p, "memo entry %" PRIu64 " was never stored", idx);
    return push(p, p->memo[idx]);
}

static int step(vm *p, int *done) {
    p->op_at = p->pos;
    const uint8_t *a = NULL;
    if (p->pos >= p->len) return bad(p, "the pickle ends before its STOP opcode (truncated file?)");
    uint8_t op = p->buf[p->pos++];
    switch (op) {
    case 0x80:
        RDML_TRY(take(p, 1, &a));
        if (a[0] < 2 || a[0] > 5) return bad(p, "pickle protocol %d", a[0]);
        return RDML_OK;
    case 0x95:
        RDML_TRY(take(p, 8, &a));
        if (le(a, 8) > p->len - p->pos) return bad(p, "FRAME longer than the rest of the pickle");
        return RDML_OK;
    case 'c': {
        const uint8_t *m = p->buf + p->pos, *e1, *e2;
        e1 = memchr(m, '\n', p->len - p->pos);
        if (!e1) return bad(p, "GLOBAL without a newline (truncated file?)");
        e2 = memchr(e1 + 1, '\n', p->len - (size_t)(e1 + 1 - p->buf));
        if (!e2) return bad(p, "GLOBAL without a second newline (truncated file?)");
        p->pos = (size_t)(e2 + 1 - p->buf);
        return push_global(p, op, m, (size_t)(e1 - m), e1 + 1, (size_t)(e2 - e1 - 1));
    }
    case 0x93: {
        int32_t name = 0, mod = 0;
        RDML_TRY(pop(p, &name));
        RDML_TRY(pop(p, &mod));
        if (N(p, name)->kind != V_STR || N(p, mod)->kind != V_STR)
            return bad(p, "STACK_GLOBAL needs two strings");
        return push_global(p, op, p->buf + N(p, mod)->off, N(p, mod)->len,
                           p->buf + N(p, name)->off, N(p, name)->len);
    }
    case 0x8c:
    case 'U': RDML_TRY(take(p, 1, &a)); return push_blob(p, V_STR, a[0]);
    case 'X': RDML_TRY(take(p, 4, &a)); return push_blob(p, V_STR, le(a, 4));
    case 0x8d: RDML_TRY(take(p, 8, &a)); return push_blob(p, V_STR, le(a, 8));
    case 'T':
        RDML_TRY(take(p, 4, &a));
        if (a[3] & 0x80) return bad(p, "BINSTRING with a negative length");
        return push_blob(p, V_STR, le(a, 4));
    case 'C': RDML_TRY(take(p, 1, &a)); return push_blob(p, V_BYTES, a[0]);
    case 'B': RDML_TRY(take(p, 4, &a)); return push_blob(p, V_BYTES, le(a, 4));
    case 'K': RDML_TRY(take(p, 1, &a)); return push_int(p, V_INT, a[0]);
    case 'M': RDML_TRY(take(p, 2, &a)); return push_int(p, V_INT, (int64_t)le(a, 2));
    case 'J': RDML_TRY(take(p, 4, &a)); return push_int(p, V_INT, (int32_t)(uint32_t)le(a, 4));
    case 0x8a: {
        RDML_TRY(take(p, 1, &a));
        int n = a[0];
        if (n > 8) return bad(p, "an integer of %d bytes does not fit 64 bits", n);
        RDML_TRY(take(p, (size_t)n, &a));
        uint64_t v = n ? le(a, n) : 0;
        if (n && n < 8 && (a[n - 1] & 0x80)) v |= ~UINT64_C(0) << (8 * n);
        return push_int(p, V_INT, (int64_t)v);
    }
    case 'G': RDML_TRY(take(p, 8, &a)); return push_int(p, V_FLOAT, 0);
    case 'N': return push(p, new_node(p, V_NONE));
    case 0x88:
    case 0x89: return push_int(p, V_BOOL, op == 0x88);
    case '(':
        if (p->nmarks == MAX_MARKS) return bad(p, "more than %d nested MARKs", MAX_MARKS);
        p->marks[p->nmarks++] = p->nstack;
        return RDML_OK;
    case ')': return make_tuple(p, 0);
    case 0x85: return make_tuple(p, 1);
    case 0x86: return make_tuple(p, 2);
    case 0x87: return make_tuple(p, 3);
    case 't': {
        if (!p->nmarks) return bad(p, "TUPLE without a MARK");
        RDML_TRY(make_tuple(p, avail(p)));
        p->nmarks--;
        return RDML_OK;
    }
    case '}': return push(p, new_node(p, V_DICT));
    case ']': return push(p, new_node(p, V_LIST));
    case 's': return do_setitems(p, 0);
    case 'u': return do_setitems(p, 1);
    case 'a': return do_appends(p, 0);
    case 'e': return do_appends(p, 1);
    case 'q': RDML_TRY(take(p, 1, &a)); return memo_put(p, a[0]);
    case 'r': RDML_TRY(take(p, 4, &a)); return memo_put(p, le(a, 4));
    case 0x94: return memo_put(p, (uint64_t)p->memo_count);
    case 'h': RDML_TRY(take(p, 1, &a)); return memo_get(p, a[0]);
    case 'j': RDML_TRY(take(p, 4, &a)); return memo_get(p, le(a, 4));
    case 'R': return do_reduce(p);
    case 'Q': return do_persid(p);
    case 'b': return do_build(p);
    case '.': *done = 1; return RDML_OK;
    default: return refuse_op(p, op);
    }
}

static void vm_free(vm *p) {
    for (int32_t i = 0; i < p->nnodes; i++) free(p->nodes[i].items);
    free(p->nodes);
    free(p->stack);
    free(p->memo);
}

/* The top-level dict's string keys and tensors into f->ts. */
static int collect(vm *p, rdml_pth *f) {
    if (p->nmarks || p->nstack != 1) return bad(p, "STOP with %lld values on the stack", (long long)p->nstack);
    int32_t d = p->stack[0];
    if (N(p, d)->kind != V_DICT) return bad(p, "the pickle does not hold a dict of tensors");
    /* a checkpoint dict holding the state dict under "state_dict" or "model" */
    for (int32_t i = 0; i + 1 < N(p, d)->n; i += 2)
        if ((str_is(p, kid(p, d, i), "state_dict") || str_is(p, kid(p, d, i), "model")) &&
            N(p, kid(p, d, i + 1))->kind == V_DICT) {
            d = kid(p, d, i + 1);
            break;
        }
    const int64_t n = N(p, d)->n / 2;
    f->ts = rdml_calloc(p->ctx, (size_t)n + 1, sizeof *f->ts, "state dict");
    if (!f->ts) return p->ctx->code;
    for (int64_t i = 0; i < n; i++) {
        int32_t k = kid(p, d, (int)(2 * i)), v = kid(p, d, (int)(2 * i + 1));
        if (N(p, k)->kind != V_STR) return bad(p, "entry %lld's key is not a string", (long long)i);
        pnode *kn = N(p, k), *vn = N(p, v);
        char name[256];
        size_t l = kn->len < sizeof name - 1 ? kn->len : sizeof name - 1;
        memcpy(name, p->buf + kn->off, l);
        name[l] = '\0';
        if (memchr(name, '\0', l)) return bad(p, "a key holds a NUL byte");
        if (vn->kind != V_TENSOR) return bad(p, "entry '%s' is not a tensor", name);
        pth_tensor *t = &f->ts[f->n];
        pnode *sk = N(p, N(p, vn->storage)->storage);
        t->t.name = rdml_strdup(p->ctx, name);
        t->key = rdml_malloc(p->ctx, sk->len + 1, "storage key");
        if (!t->t.name || !t->key) return p->ctx->code;
        memcpy(t->key, p->buf + sk->off, sk->len);
        t->key[sk->len] = '\0';
        f->n++;
        t->t.dtype = (rdml_st_dtype)vn->dtype;
        t->t.ndim = vn->ndim;
        memcpy(t->t.shape, vn->shape, sizeof vn->shape);
        t->t.count = 1;
        for (int j = 0; j < vn->ndim; j++) t->t.count *= vn->shape[j];
        t->t.begin = vn->i;
        t->t.end = vn->i + t->t.count;
    }
    return RDML_OK;
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
    if (!rc) {
        vm p;
        memset(&p, 0, sizeof p);
        p.ctx = ctx;
        p.what = path;
        p.buf = buf;
        p.len = len;
        int done = 0;
        while (!rc && !done) rc = step(&p, &done);
        if (!rc && p.pos != len) rc = bad(&p, "%zu bytes after STOP", len - p.pos);
        if (!rc) rc = collect(&p, f);
        vm_free(&p);
    }
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
    vm p;
    memset(&p, 0, sizeof p);
    p.ctx = ctx;
    p.what = what;
    p.buf = buf;
    p.len = len;
    int done = 0, rc = RDML_OK;
    while (!rc && !done) rc = step(&p, &done);
    if (!rc && p.pos != len) rc = bad(&p, "%zu bytes after STOP", len - p.pos);
    if (!rc) rc = collect(&p, &f);
    vm_free(&p);
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
