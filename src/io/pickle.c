/* The restricted unpickler (io/pickle_priv.h): one opcode machine for the pickle readers of
 * untrusted files (pymap.c, pth.c). It interprets protocols 2 to 5 as far as plain data goes
 * (ints, floats, strings, bytes, tuples, lists, dicts, marks, the memo, frames); GLOBAL and
 * STACK_GLOBAL resolve only against the builder's table; REDUCE, BUILD and BINPERSID are
 * handed to the builder, which checks the exact shapes it knows. Nothing is imported, called
 * or executed; every other opcode (INST, OBJ, NEWOBJ, EXT*, PERSID, sets, buffers, protocol
 * 0/1 text opcodes) is refused with its name and offset. Nodes, stack, marks and memo are
 * bounded by the input length, so malformed input yields an error, never a crash (both
 * readers are fuzzed). */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/pickle_priv.h"

#define MAX_MARKS ((int)(sizeof ((rdml_pk *)0)->marks / sizeof(int64_t)))

/* ---- opcode names (for messages) ---- */

const char *rdml_pickle_op_name(uint8_t op) {
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

int rdml_pk_bad(rdml_pk *p, const char *fmt, ...) {
    char why[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    return p->b->fail(p, RDML_PK_MALFORMED, p->pos > p->op_at ? p->buf[p->op_at] : 0,
                      p->base + (int64_t)p->op_at, why);
}

static int refuse_op(rdml_pk *p, uint8_t op) {
    return p->b->fail(p, RDML_PK_BAD_OPCODE, op, p->base + (int64_t)p->op_at, NULL);
}

int rdml_pk_grow(rdml_pk *p, void **arr, int64_t *cap, int64_t need, size_t es, const char *what) {
    if (need < *cap) return RDML_OK;
    int64_t nc = *cap ? *cap : 16;
    while (nc <= need) nc *= 2;
    void *q = rdml_realloc(p->ctx, *arr, (size_t)nc * es, what);
    if (!q) return p->ctx->code;
    *arr = q;
    *cap = nc;
    return RDML_OK;
}

/* Every opcode makes at most one node, so the count is bounded by the input length. */
int32_t rdml_pk_new(rdml_pk *p, int kind) {
    if ((int64_t)p->nnodes >= (int64_t)p->len + 16 || p->nnodes >= INT32_MAX / 4) {
        rdml_pk_bad(p, "more values than opcodes");
        return -1;
    }
    if (p->nnodes >= p->cap_nodes) {
        int64_t cap = p->cap_nodes;
        if (rdml_pk_grow(p, (void **)&p->nodes, &cap, p->nnodes, sizeof(rdml_pk_node), "pickle values"))
            return -1;
        p->cap_nodes = (int32_t)cap;
    }
    rdml_pk_node *n = &p->nodes[p->nnodes];
    memset(n, 0, sizeof *n);
    n->kind = (uint8_t)kind;
    n->ref = -1;
    return p->nnodes++;
}

static int add_item(rdml_pk *p, int32_t id, int32_t v) {
    rdml_pk_node *n = rdml_pk_at(p, id);
    int64_t cap = n->cap;
    RDML_TRY(rdml_pk_grow(p, (void **)&n->items, &cap, n->n, sizeof(int32_t), "pickle items"));
    n->cap = (int32_t)cap;
    n->items[n->n++] = v;
    return RDML_OK;
}

static int push(rdml_pk *p, int32_t id) {
    if (id < 0) return p->ctx->code;
    RDML_TRY(rdml_pk_grow(p, (void **)&p->stack, &p->cap_stack, p->nstack, sizeof(int32_t), "pickle stack"));
    p->stack[p->nstack++] = id;
    return RDML_OK;
}

/* Items above the innermost mark. */
static int64_t avail(const rdml_pk *p) { return p->nstack - (p->nmarks ? p->marks[p->nmarks - 1] : 0); }

static int pop(rdml_pk *p, int32_t *id) {
    if (avail(p) < 1) return rdml_pk_bad(p, "stack underflow");
    *id = p->stack[--p->nstack];
    return RDML_OK;
}

/* Read n argument bytes. */
static int take(rdml_pk *p, size_t n, const uint8_t **out) {
    if (p->len - p->pos < n) return rdml_pk_bad(p, "the pickle ends inside an opcode (truncated file?)");
    *out = p->buf + p->pos;
    p->pos += n;
    return RDML_OK;
}

static uint64_t le(const uint8_t *b, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = v << 8 | b[i];
    return v;
}

static int push_int(rdml_pk *p, int kind, int64_t v) {
    int32_t id = rdml_pk_new(p, kind);
    if (id >= 0) rdml_pk_at(p, id)->i = v;
    return push(p, id);
}

static int push_blob(rdml_pk *p, int kind, uint64_t n) {
    const uint8_t *s = NULL;
    if (n > p->len) return rdml_pk_bad(p, "a string longer than the pickle (truncated file?)");
    RDML_TRY(take(p, (size_t)n, &s));
    int32_t id = rdml_pk_new(p, kind);
    if (id >= 0) {
        rdml_pk_at(p, id)->off = (size_t)(s - p->buf);
        rdml_pk_at(p, id)->len = (size_t)n;
    }
    return push(p, id);
}

int rdml_pk_str_is(rdml_pk *p, int32_t id, const char *s) {
    const rdml_pk_node *n = rdml_pk_at(p, id);
    return (n->kind == RDML_PK_STR || n->kind == RDML_PK_BYTES) && n->len == strlen(s) &&
           memcmp(p->buf + n->off, s, n->len) == 0;
}

/* Resolve module.name against the builder's table; push an RDML_PK_GLOBAL or refuse. */
static int push_global(rdml_pk *p, uint8_t op, const uint8_t *mod, size_t ml, const uint8_t *name,
                       size_t nl) {
    for (size_t i = 0; i < p->b->nglobals; i++) {
        const rdml_pk_global *g = &p->b->globals[i];
        if (strlen(g->mod) == ml && memcmp(g->mod, mod, ml) == 0 && strlen(g->name) == nl &&
            memcmp(g->name, name, nl) == 0) {
            int32_t id = rdml_pk_new(p, RDML_PK_GLOBAL);
            if (id >= 0) rdml_pk_at(p, id)->g = g->id;
            return push(p, id);
        }
    }
    /* the name with unprintable bytes replaced, bounded */
    char shown[160];
    size_t k = 0;
    for (size_t i = 0; i < ml + 1 + nl && k < 120; i++) {
        uint8_t c = i < ml ? mod[i] : i == ml ? '.' : name[i - ml - 1];
        shown[k++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    if (ml + 1 + nl > 120) k += (size_t)snprintf(shown + k, sizeof shown - k, "...");
    shown[k] = '\0';
    return p->b->fail(p, RDML_PK_BAD_GLOBAL, op, p->base + (int64_t)p->op_at, shown);
}

/* A new tuple from the top n stack items. */
static int make_tuple(rdml_pk *p, int64_t n) {
    if (avail(p) < n) return rdml_pk_bad(p, "stack underflow building a tuple");
    int32_t id = rdml_pk_new(p, RDML_PK_TUPLE);
    if (id < 0) return p->ctx->code;
    for (int64_t i = 0; i < n; i++) RDML_TRY(add_item(p, id, p->stack[p->nstack - n + i]));
    p->nstack -= n;
    return push(p, id);
}

/* SETITEMS / APPENDS: the items above the innermost mark go into the dict / list just below
 * that mark. SETITEM / APPEND: the last k (2 / 1) items into the one below them. *from is
 * the stack index of the first item; the container is just below it. */
static int items_from(rdml_pk *p, int marked, int64_t k, const char *ops, const char *what,
                      const char *single, int64_t *from) {
    if (marked) {
        if (!p->nmarks) return rdml_pk_bad(p, "%s without a MARK", ops);
        *from = p->marks[p->nmarks - 1];
        int64_t floor_ = p->nmarks > 1 ? p->marks[p->nmarks - 2] : 0;
        if (*from - 1 < floor_) return rdml_pk_bad(p, "%s without %s", ops, what);
        p->nmarks--;
    } else {
        if (avail(p) < k + 1) return rdml_pk_bad(p, "%s", single);
        *from = p->nstack - k;
    }
    return RDML_OK;
}

static int do_setitems(rdml_pk *p, int marked) {
    int64_t from = 0;
    RDML_TRY(items_from(p, marked, 2, "SETITEMS", "a dict", "SETITEM without a dict, key and value", &from));
    if ((p->nstack - from) % 2) return rdml_pk_bad(p, "SETITEMS with a key but no value");
    int32_t d = p->stack[from - 1];
    if (rdml_pk_kind(p, d) != RDML_PK_DICT) return rdml_pk_bad(p, "SETITEM(S) on something not a dict");
    for (int64_t i = from; i < p->nstack; i += 2) {
        if (p->b->on_setitem) RDML_TRY(p->b->on_setitem(p, d, p->stack[i], p->stack[i + 1]));
        RDML_TRY(add_item(p, d, p->stack[i]));
        RDML_TRY(add_item(p, d, p->stack[i + 1]));
    }
    p->nstack = from;
    return RDML_OK;
}

static int do_appends(rdml_pk *p, int marked) {
    int64_t from = 0;
    RDML_TRY(items_from(p, marked, 1, "APPENDS", "a list", "APPEND without a list and a value", &from));
    int32_t l = p->stack[from - 1];
    if (rdml_pk_kind(p, l) != RDML_PK_LIST) return rdml_pk_bad(p, "APPEND(S) on something not a list");
    for (int64_t i = from; i < p->nstack; i++) RDML_TRY(add_item(p, l, p->stack[i]));
    p->nstack = from;
    return RDML_OK;
}

static int memo_put(rdml_pk *p, uint64_t idx) {
    if (avail(p) < 1) return rdml_pk_bad(p, "memo put with an empty stack");
    if (idx > (uint64_t)p->len + 16) return rdml_pk_bad(p, "memo index %" PRIu64 " out of range", idx);
    int64_t old = p->cap_memo;
    RDML_TRY(rdml_pk_grow(p, (void **)&p->memo, &p->cap_memo, (int64_t)idx, sizeof(int32_t), "pickle memo"));
    for (int64_t i = old; i < p->cap_memo; i++) p->memo[i] = -1;
    if (p->memo[idx] < 0) p->memo_count++;
    p->memo[idx] = p->stack[p->nstack - 1];
    return RDML_OK;
}

static int memo_get(rdml_pk *p, uint64_t idx) {
    if (idx >= (uint64_t)p->cap_memo || p->memo[idx] < 0)
        return rdml_pk_bad(p, "memo entry %" PRIu64 " was never stored", idx);
    return push(p, p->memo[idx]);
}

static int do_reduce(rdml_pk *p) {
    int32_t args = 0, fn = 0, out = -1;
    RDML_TRY(pop(p, &args));
    RDML_TRY(pop(p, &fn));
    if (rdml_pk_kind(p, fn) != RDML_PK_GLOBAL)
        return rdml_pk_bad(p, "REDUCE calls something that is not an allowed global");
    if (rdml_pk_kind(p, args) != RDML_PK_TUPLE) return rdml_pk_bad(p, "REDUCE arguments are not a tuple");
    RDML_TRY(p->b->reduce(p, fn, args, &out));
    return push(p, out);
}

static int do_build(rdml_pk *p) {
    int32_t state = 0;
    RDML_TRY(pop(p, &state));
    if (avail(p) < 1) return rdml_pk_bad(p, "stack underflow in BUILD");
    return p->b->build(p, p->stack[p->nstack - 1], state);
}

static int do_persid(rdml_pk *p) {
    int32_t pid = 0, out = -1;
    RDML_TRY(pop(p, &pid));
    RDML_TRY(p->b->persid(p, pid, &out));
    return push(p, out);
}

/* An opcode outside the common set that the builder may allow. */
static int extra(const rdml_pk *p, uint8_t op) {
    return p->b->extra_ops && memchr(p->b->extra_ops, op, strlen(p->b->extra_ops)) &&
           (op != 'Q' || p->b->persid);
}

static int step(rdml_pk *p, int *done) {
    p->op_at = p->pos;
    const uint8_t *a = NULL;
    if (p->pos >= p->len) return rdml_pk_bad(p, "the pickle ends before its STOP opcode (truncated file?)");
    uint8_t op = p->buf[p->pos++];
    if ((op == 'G' || op == 0x8d || op == 'Q') && !extra(p, op)) return refuse_op(p, op);
    switch (op) {
    case 0x80: /* PROTO */
        RDML_TRY(take(p, 1, &a));
        if (a[0] < 2 || a[0] > 5) return rdml_pk_bad(p, "pickle protocol %d (2 to 5 are read)", a[0]);
        return RDML_OK;
    case 0x95: /* FRAME: a length hint; opcodes continue inside it */
        RDML_TRY(take(p, 8, &a));
        if (le(a, 8) > p->len - p->pos) return rdml_pk_bad(p, "FRAME longer than the rest of the pickle");
        return RDML_OK;
    case 'c': { /* GLOBAL "module\nname\n" */
        const uint8_t *m = p->buf + p->pos, *e1, *e2;
        e1 = memchr(m, '\n', p->len - p->pos);
        if (!e1) return rdml_pk_bad(p, "GLOBAL without a newline (truncated file?)");
        e2 = memchr(e1 + 1, '\n', p->len - (size_t)(e1 + 1 - p->buf));
        if (!e2) return rdml_pk_bad(p, "GLOBAL without a second newline (truncated file?)");
        p->pos = (size_t)(e2 + 1 - p->buf);
        return push_global(p, op, m, (size_t)(e1 - m), e1 + 1, (size_t)(e2 - e1 - 1));
    }
    case 0x93: { /* STACK_GLOBAL */
        int32_t name = 0, mod = 0;
        RDML_TRY(pop(p, &name));
        RDML_TRY(pop(p, &mod));
        const rdml_pk_node *nn = rdml_pk_at(p, name), *mn = rdml_pk_at(p, mod);
        if (nn->kind != RDML_PK_STR || mn->kind != RDML_PK_STR)
            return rdml_pk_bad(p, "STACK_GLOBAL needs two strings");
        return push_global(p, op, p->buf + mn->off, mn->len, p->buf + nn->off, nn->len);
    }
    case 0x8c: /* SHORT_BINUNICODE */
    case 'U':  /* SHORT_BINSTRING */
        RDML_TRY(take(p, 1, &a));
        return push_blob(p, RDML_PK_STR, a[0]);
    case 'X': RDML_TRY(take(p, 4, &a)); return push_blob(p, RDML_PK_STR, le(a, 4));
    case 0x8d: RDML_TRY(take(p, 8, &a)); return push_blob(p, RDML_PK_STR, le(a, 8));
    case 'T': /* BINSTRING: signed 32-bit length */
        RDML_TRY(take(p, 4, &a));
        if (a[3] & 0x80) return rdml_pk_bad(p, "BINSTRING with a negative length");
        return push_blob(p, RDML_PK_STR, le(a, 4));
    case 'C': RDML_TRY(take(p, 1, &a)); return push_blob(p, RDML_PK_BYTES, a[0]);
    case 'B': RDML_TRY(take(p, 4, &a)); return push_blob(p, RDML_PK_BYTES, le(a, 4));
    case 'K': RDML_TRY(take(p, 1, &a)); return push_int(p, RDML_PK_INT, a[0]);
    case 'M': RDML_TRY(take(p, 2, &a)); return push_int(p, RDML_PK_INT, (int64_t)le(a, 2));
    case 'J': RDML_TRY(take(p, 4, &a)); return push_int(p, RDML_PK_INT, (int32_t)(uint32_t)le(a, 4));
    case 0x8a: { /* LONG1: n-byte little-endian two's complement */
        RDML_TRY(take(p, 1, &a));
        int n = a[0];
        if (n > 8) return rdml_pk_bad(p, "an integer of %d bytes does not fit 64 bits", n);
        RDML_TRY(take(p, (size_t)n, &a));
        uint64_t v = n ? le(a, n) : 0;
        if (n && n < 8 && (a[n - 1] & 0x80)) v |= ~UINT64_C(0) << (8 * n);
        return push_int(p, RDML_PK_INT, (int64_t)v);
    }
    case 'G': RDML_TRY(take(p, 8, &a)); return push_int(p, RDML_PK_FLOAT, 0); /* value unused */
    case 'N': return push(p, rdml_pk_new(p, RDML_PK_NONE));
    case 0x88:
    case 0x89: return push_int(p, RDML_PK_BOOL, op == 0x88);
    case '(':
        if (p->nmarks == MAX_MARKS) return rdml_pk_bad(p, "more than %d nested MARKs", MAX_MARKS);
        p->marks[p->nmarks++] = p->nstack;
        return RDML_OK;
    case ')': return make_tuple(p, 0);
    case 0x85: return make_tuple(p, 1);
    case 0x86: return make_tuple(p, 2);
    case 0x87: return make_tuple(p, 3);
    case 't':
        if (!p->nmarks) return rdml_pk_bad(p, "TUPLE without a MARK");
        RDML_TRY(make_tuple(p, avail(p)));
        p->nmarks--; /* the tuple was pushed above the mark: move the mark away */
        return RDML_OK;
    case '}':
    case ']': {
        const int kind = op == '}' ? RDML_PK_DICT : RDML_PK_LIST;
        if (p->b->on_container) RDML_TRY(p->b->on_container(p, kind));
        return push(p, rdml_pk_new(p, kind));
    }
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
    case 'Q': return do_persid(p);
    case '.':
        if (p->nmarks || p->nstack != 1)
            return rdml_pk_bad(p, "STOP with %lld values left on the stack", (long long)p->nstack);
        *done = 1;
        return RDML_OK;
    default: return refuse_op(p, op);
    }
}

void rdml_pk_free(rdml_pk *p) {
    for (int32_t i = 0; i < p->nnodes; i++) free(p->nodes[i].items);
    free(p->nodes);
    free(p->stack);
    free(p->memo);
    p->nodes = NULL;
    p->stack = p->memo = NULL;
    p->nnodes = p->cap_nodes = 0;
}

int rdml_pk_run(rdml_pk *p, rdml_ctx *ctx, const char *what, const uint8_t *buf, size_t len,
                int64_t base, const rdml_pk_builder *b, void *user, int32_t *top) {
    memset(p, 0, sizeof *p);
    p->ctx = ctx;
    p->what = what;
    p->buf = buf;
    p->len = len;
    p->base = base;
    p->b = b;
    p->user = user;
    *top = -1;
    int done = 0, rc = RDML_OK;
    while (rc == RDML_OK && !done) rc = step(p, &done);
    if (rc == RDML_OK && p->pos != len)
        rc = rdml_pk_bad(p, "%zu bytes of trailing data after STOP", len - p->pos);
    if (rc == RDML_OK) *top = p->stack[0];
    return rc;
}
