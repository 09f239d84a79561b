/* The restricted unpickler shared by the two pickle readers (pymap.c: numpy's ROI mapping
 * dicts; pth.c: PyTorch state dicts). One opcode machine (pickle.c) interprets the bytes:
 * a typed value stack, marks, a memo, all bounded by the input size; it never imports, calls
 * or executes anything. What a value means beyond plain data is up to a *builder*, which
 * gives
 *  - the table of globals it allows (module, name -> an id of its own): any other GLOBAL /
 *    STACK_GLOBAL is refused, naming it;
 *  - the opcodes it allows beyond the common data set (e.g. BINPERSID for storages);
 *  - REDUCE, BUILD and BINPERSID handlers that check the exact argument shapes their writer
 *    produces and make a value of their own kind (RDML_PK_USER and up): REDUCE on anything
 *    but an allowed global, or a BUILD / persistent id the builder does not know, is refused;
 *  - optional checks when a dict or list is made or a dict item is set;
 *  - how errors read (the two readers keep their own wording and hints).
 * After STOP (one value on the stack, nothing after it) the builder walks the value graph
 * from rdml_pk_run's result and makes its result. */
#ifndef RDML_PICKLE_PRIV_H
#define RDML_PICKLE_PRIV_H

#include <stddef.h>
#include <stdint.h>

#include "rdml/core.h"

/* The pickle opcode's name ("REDUCE", "GLOBAL", ...; "unknown opcode" for a byte that is none). */
const char *rdml_pickle_op_name(uint8_t op);

/* Value kinds of the machine; a builder numbers its own from RDML_PK_USER on. */
enum { RDML_PK_NONE, RDML_PK_BOOL, RDML_PK_INT, RDML_PK_FLOAT, RDML_PK_STR, RDML_PK_BYTES,
       RDML_PK_TUPLE, RDML_PK_LIST, RDML_PK_DICT, RDML_PK_GLOBAL, RDML_PK_USER };

typedef struct rdml_pk_node {
    uint8_t kind;
    uint8_t flag;     /* builder's use (e.g. "BUILD applied") */
    int16_t g;        /* RDML_PK_GLOBAL: the builder's id; builder kinds: its use */
    int32_t ref;      /* builder's use: a linked node or an index into its own tables */
    int64_t i;        /* INT, BOOL; builder kinds: its use */
    size_t off, len;  /* STR / BYTES: bytes in the input */
    int32_t *items;   /* TUPLE / LIST children; DICT key, value, key, value ... */
    int32_t n, cap;
} rdml_pk_node;

typedef struct rdml_pk rdml_pk;

/* Why the machine stops: malformed input (text: what is wrong), an opcode not allowed
 * (text NULL), a global not allowed (text: "module.name", unprintable bytes as '?'). */
typedef enum { RDML_PK_MALFORMED, RDML_PK_BAD_OPCODE, RDML_PK_BAD_GLOBAL } rdml_pk_fault;

typedef struct rdml_pk_global {
    const char *mod, *name;
    int16_t id;
} rdml_pk_global;

typedef struct rdml_pk_builder {
    const rdml_pk_global *globals;
    size_t nglobals;
    const char *extra_ops; /* allowed beyond the common set: any of "G" (BINFLOAT), "\x8d"
                            * (BINUNICODE8), "Q" (BINPERSID, needs persid) */
    /* REDUCE of the allowed global fn (an RDML_PK_GLOBAL node) on the tuple args: set *out
     * to the result node, or fail with rdml_pk_bad. */
    int (*reduce)(rdml_pk *p, int32_t fn, int32_t args, int32_t *out);
    /* BUILD: obj (left on the stack) with state. */
    int (*build)(rdml_pk *p, int32_t obj, int32_t state);
    /* BINPERSID on pid: *out is the value it stands for. */
    int (*persid)(rdml_pk *p, int32_t pid, int32_t *out);
    /* Optional: a new dict or list is made (EMPTY_DICT / EMPTY_LIST). */
    int (*on_container)(rdml_pk *p, int kind);
    /* Optional: dict[k] = v is set. */
    int (*on_setitem)(rdml_pk *p, int32_t dict, int32_t k, int32_t v);
    /* The error message: returns RDML_FAIL(...) naming p->what, the opcode and `at`. */
    int (*fail)(rdml_pk *p, rdml_pk_fault f, uint8_t op, int64_t at, const char *text);
} rdml_pk_builder;

struct rdml_pk {
    rdml_ctx *ctx;
    const char *what;             /* names the input in messages */
    const uint8_t *buf;
    size_t len, pos, op_at;       /* op_at: offset of the current opcode */
    int64_t base;                 /* offset of buf[0] in its file, for messages */
    const rdml_pk_builder *b;
    void *user;                   /* the builder's state */
    rdml_pk_node *nodes;
    int32_t nnodes, cap_nodes;
    int32_t *stack;
    int64_t nstack, cap_stack;
    int64_t marks[64];
    int nmarks;
    int32_t *memo;                /* node id or -1 */
    int64_t cap_memo, memo_count;
};

/* Interpret buf[0..len) up to its STOP; *top is the one value left. On error, the builder's
 * fail message is in ctx. Free with rdml_pk_free whatever the outcome. */
int rdml_pk_run(rdml_pk *p, rdml_ctx *ctx, const char *what, const uint8_t *buf, size_t len,
                int64_t base, const rdml_pk_builder *b, void *user, int32_t *top);
void rdml_pk_free(rdml_pk *p);

static inline rdml_pk_node *rdml_pk_at(rdml_pk *p, int32_t id) { return &p->nodes[id]; }
static inline int rdml_pk_kind(rdml_pk *p, int32_t id) { return p->nodes[id].kind; }
/* Child k of a tuple / list / dict. */
static inline int32_t rdml_pk_kid(rdml_pk *p, int32_t id, int k) { return p->nodes[id].items[k]; }
static inline int rdml_pk_is_tuple(rdml_pk *p, int32_t id, int n) {
    return p->nodes[id].kind == RDML_PK_TUPLE && p->nodes[id].n == n;
}
/* A STR or BYTES node equal to s. */
int rdml_pk_str_is(rdml_pk *p, int32_t id, const char *s);
/* A new node of kind (RDML_PK_* or a builder's): its id, or -1 with ctx set. */
int32_t rdml_pk_new(rdml_pk *p, int kind);
/* Grow *arr (elements of es bytes, capacity *cap) so that index need fits. */
int rdml_pk_grow(rdml_pk *p, void **arr, int64_t *cap, int64_t need, size_t es, const char *what);
/* A malformed-input error at the current opcode (the builder's fail, RDML_PK_MALFORMED). */
int rdml_pk_bad(rdml_pk *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
