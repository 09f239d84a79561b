/* The Algonauts mapping_*.npy files: a pickled 0-d object array holding a dict {int: str}.
 * The reader is a small pickle virtual machine that only *interprets*: it walks the opcodes
 * numpy's np.save writes for such an array with pickle protocols 2, 3 and 4 (numpy 1.x and
 * 2.x), keeps a typed value stack, resolves GLOBAL / STACK_GLOBAL only to numpy's
 * _reconstruct, ndarray and dtype (and _codecs.encode, which protocol 2 uses for a bytes
 * literal), checks every REDUCE and BUILD against the exact shapes numpy produces, and
 * refuses any other opcode with its name and byte offset. Nothing is imported or executed.
 * All lengths, the stack, the marks and the memo are bounded by the input size, so malformed
 * input yields an error, never a crash (the parser is fuzzed). The writer emits the bytes
 * numpy 1.24 writes with protocol 3. Left out: other pickled objects (lists, nested dicts,
 * non-int keys), and reproducing pickle's memo sharing of one Python string object used as
 * two values (the writer emits each name; the reader accepts both forms). */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/npy_priv.h"
#include "io/pickle_priv.h"
#include "rdml/npy.h"
#include "rdml/pymap.h"

#define PM_MAX_MARKS 64
#define PM_MAX_FILE ((int64_t)256 << 20) /* mapping files are tiny; refuse above 256 MiB */

/* ---- opcode names (for messages) ---- */

static const char *op_name(uint8_t op) {
    switch (op) {
    case '(': return "MARK";
    case '.': return "STOP";
    case '0': return "POP";
    case '1': return "POP_MARK";
    case '2': return "DUP";
    case 'F': return "FLOAT";
    case 'I': return "INT";
    case 'J': return "BININT";
    case 'K': return "BININT1";
    case 'L': return "LONG";
    case 'M': return "BININT2";
    case 'N': return "NONE";
    case 'P': return "PERSID";
    case 'Q': return "BINPERSID";
    case 'R': return "REDUCE";
    case 'S': return "STRING";
    case 'T': return "BINSTRING";
    case 'U': return "SHORT_BINSTRING";
    case 'V': return "UNICODE";
    case 'X': return "BINUNICODE";
    case 'a': return "APPEND";
    case 'b': return "BUILD";
    case 'c': return "GLOBAL";
    case 'd': return "DICT";
    case '}': return "EMPTY_DICT";
    case 'e': return "APPENDS";
    case 'g': return "GET";
    case 'h': return "BINGET";
    case 'i': return "INST";
    case 'j': return "LONG_BINGET";
    case 'l': return "LIST";
    case ']': return "EMPTY_LIST";
    case 'o': return "OBJ";
    case 'p': return "PUT";
    case 'q': return "BINPUT";
    case 'r': return "LONG_BINPUT";
    case 's': return "SETITEM";
    case 't': return "TUPLE";
    case ')': return "EMPTY_TUPLE";
    case 'u': return "SETITEMS";
    case 'G': return "BINFLOAT";
    case 0x80: return "PROTO";
    case 0x81: return "NEWOBJ";
    case 0x82: return "EXT1";
    case 0x83: return "EXT2";
    case 0x84: return "EXT4";
    case 0x85: return "TUPLE1";
    case 0x86: return "TUPLE2";
    case 0x87: return "TUPLE3";
    case 0x88: return "NEWTRUE";
    case 0x89: return "NEWFALSE";
    case 0x8a: return "LONG1";
    case 0x8b: return "LONG4";
    case 'B': return "BINBYTES";
    case 'C': return "SHORT_BINBYTES";
    case 0x8c: return "SHORT_BINUNICODE";
    case 0x8d: return "BINUNICODE8";
    case 0x8e: return "BINBYTES8";
    case 0x8f: return "EMPTY_SET";
    case 0x90: return "ADDITEMS";
    case 0x91: return "FROZENSET";
    case 0x92: return "NEWOBJ_EX";
    case 0x93: return "STACK_GLOBAL";
    case 0x94: return "MEMOIZE";
    case 0x95: return "FRAME";
    case 0x96: return "BYTEARRAY8";
    case 0x97: return "NEXT_BUFFER";
    case 0x98: return "READONLY_BUFFER";
    default: return "unknown opcode";
    }
}

const char *rdml_pickle_op_name(uint8_t op) { return op_name(op); }

/* ---- values ---- */

enum vkind {
    V_INT,
    V_STR,
    V_BYTES,
    V_NONE,
    V_BOOL,
    V_GLOBAL,  /* a whitelisted callable; g says which */
    V_TUPLE,   /* kids[first .. first+n) */
    V_LIST,    /* the one list; items in pm.list_items */
    V_DICT,    /* the one dict; items in the output */
    V_NDARRAY, /* result of _reconstruct; built = BUILD applied */
    V_DTYPE    /* result of dtype('O8', False, True) */
};
enum gkind { G_RECONSTRUCT, G_NDARRAY, G_DTYPE, G_ENCODE };

typedef struct node {
    uint8_t kind, g, built;
    int64_t i;          /* V_INT value, V_BOOL 0/1 */
    size_t off, len;    /* V_STR / V_BYTES: bytes in the input */
    int32_t first, n;   /* V_TUPLE children in kids */
    int32_t list;       /* V_NDARRAY: the list node of its state */
} node;

typedef struct pm {
    rdml_ctx *ctx;
    const char *what;
    const uint8_t *buf;
    size_t len, pos, op_at; /* op_at: offset of the current opcode */
    int64_t base;           /* file offset of buf[0], for messages */
    node *nodes;
    int32_t nnodes, cap_nodes;
    int32_t *kids;
    int64_t nkids, cap_kids;
    int32_t *stack;
    int64_t nstack, cap_stack;
    int64_t marks[PM_MAX_MARKS];
    int nmarks;
    int32_t *memo; /* node id or -1 */
    int64_t cap_memo, memo_count;
    int32_t dict_node, list_node;
    int32_t *list_items;
    int64_t nlist, cap_list;
    rdml_pymap *out;
    int64_t cap_out;
} pm;

static int bad(pm *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int bad(pm *p, const char *fmt, ...) {
    char why[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    return RDML_FAIL(p->ctx, RDML_EFORMAT,
                     "%s: malformed mapping pickle at byte %lld: %s (hint: mapping files are "
                     "written by np.save(path, {int: str}))",
                     p->what, (long long)(p->base + (int64_t)p->op_at), why);
}

static int refuse(pm *p, uint8_t op, const char *detail) {
    char c[8];
    if (op >= 0x20 && op < 0x7f)
        snprintf(c, sizeof c, "%c", op);
    else
        snprintf(c, sizeof c, "\\x%02x", op);
    return RDML_FAIL(p->ctx, RDML_EFORMAT,
                     "%s: pickle opcode '%s' (%s%s%s) at byte %lld is not allowed in a mapping "
                     "file; only numpy dict mappings are read (never executed)",
                     p->what, c, op_name(op), detail ? " " : "", detail ? detail : "",
                     (long long)(p->base + (int64_t)p->op_at));
}

/* Grow *arr (element size es) so that index `need` fits. */
static int grow(pm *p, void **arr, int64_t *cap, int64_t need, size_t es, const char *what) {
    if (need < *cap) return RDML_OK;
    int64_t nc = *cap ? *cap : 16;
    while (nc <= need) nc *= 2;
    void *q = rdml_realloc(p->ctx, *arr, (size_t)nc * es, what);
    if (!q) return p->ctx->code;
    *arr = q;
    *cap = nc;
    return RDML_OK;
}

/* A new node; returns its id or -1 (ctx filled). Every opcode makes at most one node, so the
 * count is bounded by the input length. */
static int32_t new_node(pm *p, int kind) {
    if (p->nnodes >= p->cap_nodes) {
        if ((int64_t)p->nnodes >= (int64_t)p->len + 16 || p->nnodes >= INT32_MAX / 4) {
            bad(p, "more values than opcodes");
            return -1;
        }
        int64_t cap = p->cap_nodes;
        if (grow(p, (void **)&p->nodes, &cap, p->nnodes, sizeof(node), "pickle values"))
            return -1;
        p->cap_nodes = (int32_t)(cap > INT32_MAX ? INT32_MAX : cap);
    }
    node *n = &p->nodes[p->nnodes];
    memset(n, 0, sizeof *n);
    n->kind = (uint8_t)kind;
    n->list = -1;
    return p->nnodes++;
}

static int push(pm *p, int32_t id) {
    if (id < 0) return p->ctx->code;
    RDML_TRY(grow(p, (void **)&p->stack, &p->cap_stack, p->nstack, sizeof(int32_t),
                  "pickle stack"));
    p->stack[p->nstack++] = id;
    return RDML_OK;
}

/* Items above the innermost mark. */
static int64_t avail(const pm *p) {
    return p->nstack - (p->nmarks ? p->marks[p->nmarks - 1] : 0);
}

static int pop(pm *p, int32_t *id) {
    if (avail(p) < 1) return bad(p, "stack underflow");
    *id = p->stack[--p->nstack];
    return RDML_OK;
}

static node *N(pm *p, int32_t id) { return &p->nodes[id]; }

/* Read n argument bytes. */
static int take(pm *p, size_t n, const uint8_t **out) {
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

static int push_int(pm *p, int64_t v) {
    int32_t id = new_node(p, V_INT);
    if (id >= 0) N(p, id)->i = v;
    return push(p, id);
}

static int push_blob(pm *p, int kind, size_t n) {
    const uint8_t *s = NULL;
    RDML_TRY(take(p, n, &s));
    int32_t id = new_node(p, kind);
    if (id >= 0) {
        N(p, id)->off = (size_t)(s - p->buf);
        N(p, id)->len = n;
    }
    return push(p, id);
}

static int str_is(pm *p, int32_t id, const char *s) {
    node *n = N(p, id);
    return (n->kind == V_STR || n->kind == V_BYTES) && n->len == strlen(s) &&
           memcmp(p->buf + n->off, s, n->len) == 0;
}

/* Resolve module.name against the whitelist; push a V_GLOBAL or refuse. */
static int push_global(pm *p, uint8_t op, const uint8_t *mod, size_t mlen, const uint8_t *name,
                       size_t nlen) {
    static const struct {
        const char *mod, *name;
        int g;
    } ok[] = {
        {"numpy.core.multiarray", "_reconstruct", G_RECONSTRUCT},
        {"numpy._core.multiarray", "_reconstruct", G_RECONSTRUCT},
        {"numpy.core._multiarray_umath", "_reconstruct", G_RECONSTRUCT},
        {"numpy._core._multiarray_umath", "_reconstruct", G_RECONSTRUCT},
        {"numpy", "ndarray", G_NDARRAY},
        {"numpy", "dtype", G_DTYPE},
        {"_codecs", "encode", G_ENCODE},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        if (strlen(ok[i].mod) == mlen && memcmp(ok[i].mod, mod, mlen) == 0 &&
            strlen(ok[i].name) == nlen && memcmp(ok[i].name, name, nlen) == 0) {
            int32_t id = new_node(p, V_GLOBAL);
            if (id >= 0) N(p, id)->g = (uint8_t)ok[i].g;
            return push(p, id);
        }
    }
    /* Show the name with unprintable bytes replaced, bounded. */
    char shown[160];
    size_t k = 0;
    for (size_t i = 0; i < mlen + 1 + nlen && k < 120; i++) {
        uint8_t c = i < mlen ? mod[i] : i == mlen ? '.' : name[i - mlen - 1];
        shown[k++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    if (mlen + 1 + nlen > 120) k += (size_t)snprintf(shown + k, sizeof shown - k, "...");
    shown[k] = '\0';
    char detail[200];
    snprintf(detail, sizeof detail, "%s", shown);
    return refuse(p, op, detail);
}

/* A new tuple from the top n stack items. */
static int make_tuple(pm *p, int64_t n) {
    if (avail(p) < n) return bad(p, "stack underflow building a tuple");
    RDML_TRY(grow(p, (void **)&p->kids, &p->cap_kids, p->nkids + n, sizeof(int32_t),
                  "pickle tuples"));
    int32_t id = new_node(p, V_TUPLE);
    if (id < 0) return p->ctx->code;
    N(p, id)->first = (int32_t)p->nkids;
    N(p, id)->n = (int32_t)n;
    if (n) memcpy(p->kids + p->nkids, p->stack + p->nstack - n, (size_t)n * sizeof(int32_t));
    p->nkids += n;
    p->nstack -= n;
    return push(p, id);
}

static int32_t kid(pm *p, int32_t tuple, int k) { return p->kids[N(p, tuple)->first + k]; }

static int is_tuple(pm *p, int32_t id, int n) {
    return N(p, id)->kind == V_TUPLE && N(p, id)->n == n;
}

static int is_int(pm *p, int32_t id, int64_t v) {
    return N(p, id)->kind == V_INT && N(p, id)->i == v;
}

static int is_bool(pm *p, int32_t id, int v) {
    return N(p, id)->kind == V_BOOL && N(p, id)->i == v;
}

static int do_reduce(pm *p) {
    int32_t args = 0, fn = 0;
    RDML_TRY(pop(p, &args));
    RDML_TRY(pop(p, &fn));
    if (N(p, fn)->kind != V_GLOBAL)
        return bad(p, "REDUCE applies something that is not a numpy callable");
    if (N(p, args)->kind != V_TUPLE) return bad(p, "REDUCE arguments are not a tuple");
    int32_t id = -1;
    switch (N(p, fn)->g) {
    case G_RECONSTRUCT:
        /* _reconstruct(ndarray, (0,), b'b'); Python 2 pickled the 'b' as a str */
        if (!is_tuple(p, args, 3) || N(p, kid(p, args, 0))->kind != V_GLOBAL ||
            N(p, kid(p, args, 0))->g != G_NDARRAY || !is_tuple(p, kid(p, args, 1), 1) ||
            !is_int(p, kid(p, kid(p, args, 1), 0), 0) || !str_is(p, kid(p, args, 2), "b"))
            return bad(p, "_reconstruct is called with arguments numpy does not write");
        id = new_node(p, V_NDARRAY);
        break;
    case G_DTYPE:
        /* dtype('O8', False, True) */
        if (!is_tuple(p, args, 3) || N(p, kid(p, args, 0))->kind != V_STR ||
            !(str_is(p, kid(p, args, 0), "O8") || str_is(p, kid(p, args, 0), "O4")) ||
            !is_bool(p, kid(p, args, 1), 0) || !is_bool(p, kid(p, args, 2), 1))
            return bad(p, "the array's dtype is not numpy's object dtype 'O8' (not a dict "
                          "mapping)");
        id = new_node(p, V_DTYPE);
        break;
    case G_ENCODE: {
        /* _codecs.encode('b', 'latin1'): how protocol 2 spells the bytes b'b' */
        if (!is_tuple(p, args, 2) || N(p, kid(p, args, 0))->kind != V_STR ||
            !str_is(p, kid(p, args, 1), "latin1"))
            return bad(p, "_codecs.encode is called with arguments numpy does not write");
        node s = *N(p, kid(p, args, 0));
        for (size_t i = 0; i < s.len; i++)
            if (p->buf[s.off + i] >= 0x80)
                return bad(p, "_codecs.encode of a non-ASCII string");
        id = new_node(p, V_BYTES);
        if (id >= 0) {
            N(p, id)->off = s.off;
            N(p, id)->len = s.len;
        }
        break;
    }
    default: return bad(p, "REDUCE applies numpy.ndarray directly");
    }
    return push(p, id);
}

static int do_build(pm *p) {
    int32_t state = 0, obj;
    RDML_TRY(pop(p, &state));
    if (avail(p) < 1) return bad(p, "stack underflow in BUILD");
    obj = p->stack[p->nstack - 1];
    node *o = N(p, obj);
    if (o->kind == V_DTYPE && !o->built) {
        /* (3, '|', None, None, None, -1, -1, 63) */
        if (!is_tuple(p, state, 8) || !is_int(p, kid(p, state, 0), 3) ||
            !str_is(p, kid(p, state, 1), "|"))
            return bad(p, "the object dtype's state is not what numpy writes");
        o->built = 1;
        return RDML_OK;
    }
    if (o->kind == V_NDARRAY && !o->built) {
        /* (1, (), dtype, False, [the dict]) */
        if (!is_tuple(p, state, 5) || !is_int(p, kid(p, state, 0), 1) ||
            !is_tuple(p, kid(p, state, 1), 0) || N(p, kid(p, state, 2))->kind != V_DTYPE ||
            !N(p, kid(p, state, 2))->built || !is_bool(p, kid(p, state, 3), 0) ||
            N(p, kid(p, state, 4))->kind != V_LIST)
            return bad(p, "the array's state is not a 0-d object array as numpy writes it");
        o->built = 1;
        o->list = kid(p, state, 4);
        return RDML_OK;
    }
    return bad(p, "BUILD on something other than a numpy array or dtype");
}

/* Validate UTF-8 (no NUL, no overlongs or surrogates) and copy to a new C string. */
static int add_item(pm *p, int32_t k, int32_t v) {
    node *kn = N(p, k), *vn = N(p, v);
    if (kn->kind != V_INT) return bad(p, "a dict key is not an integer");
    if (vn->kind != V_STR) return bad(p, "a dict value is not a string");
    const uint8_t *s = p->buf + vn->off;
    size_t n = vn->len;
    for (size_t i = 0; i < n;) {
        uint8_t c = s[i];
        size_t m = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3
                                : (c & 0xf8) == 0xf0 ? 4 : 0;
        if (c == 0) return bad(p, "a name contains a NUL byte");
        if (!m || i + m > n || (m == 2 && c < 0xc2) || (m == 4 && c > 0xf4))
            return bad(p, "a name is not valid UTF-8");
        uint32_t cp = m == 1 ? c : m == 2 ? (c & 0x1fu) : m == 3 ? (c & 0x0fu) : (c & 0x07u);
        for (size_t j = 1; j < m; j++) {
            if ((s[i + j] & 0xc0) != 0x80) return bad(p, "a name is not valid UTF-8");
            cp = cp << 6 | (s[i + j] & 0x3fu);
        }
        if ((m == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
            (m == 4 && (cp < 0x10000 || cp > 0x10ffff)))
            return bad(p, "a name is not valid UTF-8");
        i += m;
    }
    rdml_pymap *o = p->out;
    if (o->n >= p->cap_out) {
        int64_t cap = p->cap_out ? 2 * p->cap_out : 16;
        int64_t *k2 = rdml_realloc(p->ctx, o->keys, (size_t)cap * sizeof *k2, "mapping keys");
        if (!k2) return p->ctx->code;
        o->keys = k2;
        char **n2 = rdml_realloc(p->ctx, o->names, (size_t)cap * sizeof *n2, "mapping names");
        if (!n2) return p->ctx->code;
        o->names = n2;
        p->cap_out = cap;
    }
    char *name = rdml_malloc(p->ctx, n + 1, "mapping name");
    if (!name) return p->ctx->code;
    memcpy(name, s, n);
    name[n] = '\0';
    o->keys[o->n] = kn->i;
    o->names[o->n] = name;
    o->n++;
    return RDML_OK;
}

/* SETITEMS / APPENDS: the items above the innermost mark go into the dict / list just
 * below that mark. SETITEM / APPEND: the last two / one items into the one below them. */
static int do_setitems(pm *p, int marked) {
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
    if (N(p, p->stack[from - 1])->kind != V_DICT)
        return bad(p, "SETITEM(S) on something not a dict");
    for (int64_t i = from; i < p->nstack; i += 2)
        RDML_TRY(add_item(p, p->stack[i], p->stack[i + 1]));
    p->nstack = from;
    return RDML_OK;
}

static int do_appends(pm *p, int marked) {
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
    if (N(p, p->stack[from - 1])->kind != V_LIST)
        return bad(p, "APPEND(S) on something not a list");
    for (int64_t i = from; i < p->nstack; i++) {
        RDML_TRY(grow(p, (void **)&p->list_items, &p->cap_list, p->nlist, sizeof(int32_t),
                      "pickle list"));
        p->list_items[p->nlist++] = p->stack[i];
    }
    p->nstack = from;
    return RDML_OK;
}

static int memo_put(pm *p, uint64_t idx) {
    if (avail(p) < 1) return bad(p, "memo put with an empty stack");
    if (idx > (uint64_t)p->len + 16) return bad(p, "memo index %" PRIu64 " out of range", idx);
    int64_t old = p->cap_memo;
    RDML_TRY(grow(p, (void **)&p->memo, &p->cap_memo, (int64_t)idx, sizeof(int32_t),
                  "pickle memo"));
    for (int64_t i = old; i < p->cap_memo; i++) p->memo[i] = -1;
    if (p->memo[idx] < 0) p->memo_count++;
    p->memo[idx] = p->stack[p->nstack - 1];
    return RDML_OK;
}

static int memo_get(pm *p, uint64_t idx) {
    if (idx >= (uint64_t)p->cap_memo || p->memo[idx] < 0)
        return bad(p, "memo entry %" PRIu64 " was never stored", idx);
    return push(p, p->memo[idx]);
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static int finish(pm *p) {
    if (p->nmarks || p->nstack != 1) return bad(p, "STOP with %lld values left on the stack",
                                                (long long)p->nstack);
    node *a = N(p, p->stack[0]);
    if (a->kind != V_NDARRAY || !a->built)
        return bad(p, "the pickle does not hold a numpy object array");
    if (a->list < 0 || p->nlist != 1 || N(p, p->list_items[0])->kind != V_DICT)
        return bad(p, "the object array does not hold exactly one dict");
    rdml_pymap *o = p->out;
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
        if (found) return bad(p, "key %" PRId64 " appears twice in the dict", dup);
    }
    return RDML_OK;
}

static int step(pm *p, int *done) {
    p->op_at = p->pos;
    const uint8_t *a = NULL;
    if (p->pos >= p->len)
        return bad(p, "the pickle ends before its STOP opcode (truncated file?)");
    uint8_t op = p->buf[p->pos++];
    switch (op) {
    case 0x80: /* PROTO */
        RDML_TRY(take(p, 1, &a));
        if (a[0] < 2 || a[0] > 5)
            return bad(p, "pickle protocol %d (numpy writes 2 to 5)", a[0]);
        return RDML_OK;
    case 0x95: /* FRAME: a length hint; opcodes continue inside it */
        RDML_TRY(take(p, 8, &a));
        if (le(a, 8) > p->len - p->pos) return bad(p, "FRAME longer than the rest of the file");
        return RDML_OK;
    case 'c': { /* GLOBAL "module\nname\n" */
        const uint8_t *m = p->buf + p->pos, *e1, *e2;
        e1 = memchr(m, '\n', p->len - p->pos);
        if (!e1) return bad(p, "GLOBAL without a newline (truncated file?)");
        e2 = memchr(e1 + 1, '\n', p->len - (size_t)(e1 + 1 - p->buf));
        if (!e2) return bad(p, "GLOBAL without a second newline (truncated file?)");
        p->pos = (size_t)(e2 + 1 - p->buf);
        return push_global(p, op, m, (size_t)(e1 - m), e1 + 1, (size_t)(e2 - e1 - 1));
    }
    case 0x93: { /* STACK_GLOBAL */
        int32_t name = 0, mod = 0;
        RDML_TRY(pop(p, &name));
        RDML_TRY(pop(p, &mod));
        if (N(p, name)->kind != V_STR || N(p, mod)->kind != V_STR)
            return bad(p, "STACK_GLOBAL needs two strings");
        return push_global(p, op, p->buf + N(p, mod)->off, N(p, mod)->len,
                           p->buf + N(p, name)->off, N(p, name)->len);
    }
    case 0x8c: /* SHORT_BINUNICODE */
    case 'U':  /* SHORT_BINSTRING */
        RDML_TRY(take(p, 1, &a));
        return push_blob(p, V_STR, a[0]);
    case 'X': RDML_TRY(take(p, 4, &a)); return push_blob(p, V_STR, le(a, 4)); /* BINUNICODE */
    case 'T': /* BINSTRING: signed 32-bit length */
        RDML_TRY(take(p, 4, &a));
        if (a[3] & 0x80) return bad(p, "BINSTRING with a negative length");
        return push_blob(p, V_STR, le(a, 4));
    case 'C': RDML_TRY(take(p, 1, &a)); return push_blob(p, V_BYTES, a[0]); /* SHORT_BINBYTES */
    case 'B': RDML_TRY(take(p, 4, &a)); return push_blob(p, V_BYTES, le(a, 4)); /* BINBYTES */
    case 'K': RDML_TRY(take(p, 1, &a)); return push_int(p, a[0]);
    case 'M': RDML_TRY(take(p, 2, &a)); return push_int(p, (int64_t)le(a, 2));
    case 'J': RDML_TRY(take(p, 4, &a)); return push_int(p, (int32_t)(uint32_t)le(a, 4));
    case 0x8a: { /* LONG1: n-byte little-endian two's complement */
        RDML_TRY(take(p, 1, &a));
        int n = a[0];
        if (n > 8) return bad(p, "an integer of %d bytes does not fit 64 bits", n);
        RDML_TRY(take(p, (size_t)n, &a));
        uint64_t v = n ? le(a, n) : 0;
        if (n && n < 8 && (a[n - 1] & 0x80)) v |= ~UINT64_C(0) << (8 * n);
        return push_int(p, (int64_t)v);
    }
    case 'N': return push(p, new_node(p, V_NONE));
    case 0x88:
    case 0x89: {
        int32_t id = new_node(p, V_BOOL);
        if (id >= 0) N(p, id)->i = op == 0x88;
        return push(p, id);
    }
    case '(':
        if (p->nmarks == PM_MAX_MARKS) return bad(p, "more than %d nested MARKs", PM_MAX_MARKS);
        p->marks[p->nmarks++] = p->nstack;
        return RDML_OK;
    case ')': return make_tuple(p, 0);
    case 0x85: return make_tuple(p, 1);
    case 0x86: return make_tuple(p, 2);
    case 0x87: return make_tuple(p, 3);
    case 't': {
        if (!p->nmarks) return bad(p, "TUPLE without a MARK");
        int64_t n = avail(p);
        RDML_TRY(make_tuple(p, n));
        /* the tuple was pushed above the mark: move the mark away */
        p->nmarks--;
        return RDML_OK;
    }
    case '}':
        if (p->dict_node >= 0) return bad(p, "a second dict (only one {int: str} dict is read)");
        p->dict_node = new_node(p, V_DICT);
        return push(p, p->dict_node);
    case ']':
        if (p->list_node >= 0) return bad(p, "a second list (not a numpy dict mapping)");
        p->list_node = new_node(p, V_LIST);
        return push(p, p->list_node);
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
    case 'b': return do_build(p);
    case '.':
        *done = 1;
        return finish(p);
    default: return refuse(p, op, NULL);
    }
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
    pm p;
    memset(&p, 0, sizeof p);
    p.ctx = ctx;
    p.what = what;
    p.buf = buf;
    p.len = len;
    p.base = base;
    p.dict_node = p.list_node = -1;
    p.out = out;
    int done = 0, rc = RDML_OK;
    while (rc == RDML_OK && !done) rc = step(&p, &done);
    if (rc == RDML_OK && p.pos != len)
        rc = bad(&p, "%zu bytes of trailing data after STOP", len - p.pos);
    free(p.nodes);
    free(p.kids);
    free(p.stack);
    free(p.memo);
    free(p.list_items);
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
