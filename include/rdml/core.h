/* rdml/core.h — errors, logging and progress, the counter-based RNG, partition arithmetic.
 *
 * Example:
 *
 *   int noise_block(rdml_ctx *ctx, uint64_t seed, int64_t n, float **out, int64_t *lo,
 *                   int64_t *hi) {
 *       rdml_part_block(n, ctx->rank, ctx->nranks, lo, hi);  // my contiguous share of n
 *       if (*hi == *lo)
 *           return RDML_FAIL(ctx, RDML_EUSAGE, "%lld items for %d ranks: rank %d has none (hint: "
 *                            "run on at most %lld ranks)", (long long)n, ctx->nranks, ctx->rank,
 *                            (long long)n);
 *       float *x = rdml_malloc(ctx, (size_t)(*hi - *lo) * sizeof *x, "noise block");
 *       if (!x) return ctx->code;                            // message already in ctx->msg
 *       for (int64_t i = *lo; i < *hi; i++) {                // item i's number on any rank count
 *           rdml_rng r = rdml_rng_make(seed, rdml_rng_substream(RDML_STREAM_USER, (uint64_t)i), 0);
 *           x[i - *lo] = (float)rdml_rng_normal(&r);
 *       }
 *       *out = x;
 *       return RDML_OK;
 *   }
 *
 *   int noise_demo(void) {
 *       rdml_ctx ctx;
 *       rdml_ctx_init(&ctx);                                 // rank 0 of 1, log level INFO, stderr
 *       float *x = NULL;
 *       int64_t lo, hi;
 *       if (noise_block(&ctx, 42, 1000, &x, &lo, &hi)) {
 *           fprintf(stderr, "error: %s\n", ctx.msg);
 *           return rdml_status_exit_code(ctx.code);
 *       }
 *       rdml_info(&ctx, "items %lld..%lld: first %g", (long long)lo, (long long)hi, x[0]);
 *       free(x);
 *       return 0;
 *   }
 *
 * Everything here is serial (no MPI); the MPI pieces (error agreement) are in rdml/mpiutil.h.
 * Dimension letters used project-wide: N images, V voxels (vertices), D embedding width,
 * P pairs, H hidden width, K folds.
 */
#ifndef RDML_CORE_H
#define RDML_CORE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RDML_VERSION "0.1.0"

/* Status codes. RDML_OK is 0; every fallible function returns one of these and, on failure,
 * leaves a message naming the file/key/value and a hint in the rdml_ctx it was given. */
typedef enum rdml_status {
    RDML_OK = 0,
    RDML_EUSAGE,     /* bad command line */
    RDML_ECONFIG,    /* bad configuration file, key or value */
    RDML_EIO,        /* a file is missing, unreadable or unwritable */
    RDML_EFORMAT,    /* a file exists but its content is malformed or unsupported */
    RDML_EDATA,      /* well-formed input that cannot be used (missing subject/ROI, ...) */
    RDML_ENOMEM,     /* allocation failed */
    RDML_EMPI,       /* an MPI call failed */
    RDML_ECANCELLED, /* stopped by a signal (SIGTERM/SIGINT) */
    RDML_EINTERNAL,  /* a bug: an invariant did not hold */
    RDML_NSTATUS
} rdml_status;

/* "config", "io", ... Never NULL. */
const char *rdml_status_name(int code);
/* Process exit code for a status: 0 for OK, otherwise 2 + code (so 1 stays "crashed"). */
int rdml_status_exit_code(int code);

enum { RDML_LOG_QUIET = 0, RDML_LOG_ERROR, RDML_LOG_WARN, RDML_LOG_INFO, RDML_LOG_DEBUG };

/* The context every fallible function takes: holds the first error and the logging setup.
 * Not shared between threads. No globals: two contexts never interfere. */
typedef struct rdml_ctx {
    int code;           /* first error recorded; RDML_OK when none */
    char msg[4096];     /* that error's message (file, key, value, hint) */
    const char *where;  /* source file:line that raised it (for --debug) */
    int where_line;
    int rank, nranks;   /* of the communicator this context logs for (0 of 1 when serial) */
    int log_level;      /* RDML_LOG_* */
    int tty;            /* stderr of rank 0 is a terminal: progress draws a bar */
    FILE *log;          /* log stream, stderr by default */
} rdml_ctx;

void rdml_ctx_init(rdml_ctx *ctx);
/* Forget the recorded error (e.g. after reporting it). */
void rdml_ctx_clear(rdml_ctx *ctx);

/* Record an error and return `code`. The first error wins: a later call while ctx->code is
 * set keeps the original message (use rdml_ctx_prefix to add context instead). */
int rdml_fail(rdml_ctx *ctx, int code, const char *src, int line, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
#define RDML_FAIL(ctx, code, ...) rdml_fail((ctx), (code), __FILE__, __LINE__, __VA_ARGS__)

/* Prepend context to the recorded message: "reading subj01: <old message>". Returns ctx->code. */
int rdml_ctx_prefix(rdml_ctx *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Propagate a non-OK status from a callee that already filled ctx. */
#define RDML_TRY(expr)                                                                     \
    do {                                                                                   \
        int rdml_rc_ = (expr);                                                             \
        if (rdml_rc_ != RDML_OK) return rdml_rc_;                                          \
    } while (0)

/* Allocation that records RDML_ENOMEM naming `what` and the size on failure (returns NULL).
 * Sizes are checked for overflow in rdml_calloc. */
void *rdml_malloc(rdml_ctx *ctx, size_t bytes, const char *what);
void *rdml_calloc(rdml_ctx *ctx, size_t n, size_t size, const char *what);
void *rdml_realloc(rdml_ctx *ctx, void *p, size_t bytes, const char *what);
char *rdml_strdup(rdml_ctx *ctx, const char *s);

/* ---- logging (rank 0 only unless noted) ---- */
void rdml_log(const rdml_ctx *ctx, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
#define rdml_info(ctx, ...) rdml_log((ctx), RDML_LOG_INFO, __VA_ARGS__)
#define rdml_warn(ctx, ...) rdml_log((ctx), RDML_LOG_WARN, __VA_ARGS__)
#define rdml_debug(ctx, ...) rdml_log((ctx), RDML_LOG_DEBUG, __VA_ARGS__)
/* Any rank, prefixed "[rank r]". */
void rdml_log_any(const rdml_ctx *ctx, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Progress of a long loop. On rank 0 only: on a terminal a redrawn bar (at most ~10 Hz),
 * otherwise (SLURM log, pipe) one plain line per 10% or per 30 s, whichever comes first. */
typedef struct rdml_progress {
    const rdml_ctx *ctx;
    char label[64];
    int64_t total, done;
    double t0, last_print;
    int last_decile;
} rdml_progress;
void rdml_progress_begin(rdml_progress *p, const rdml_ctx *ctx, const char *label, int64_t total);
void rdml_progress_update(rdml_progress *p, int64_t done);
void rdml_progress_end(rdml_progress *p);

/* Monotonic wall clock in seconds. */
double rdml_now(void);

/* ---- counter-based RNG ----
 * The index-th 64-bit number of stream `stream` under `seed`: a pure function, so any rank
 * can produce any number without communication and results never depend on the rank count.
 * SplitMix64 finaliser over a stream key derived from (seed, stream). */
uint64_t rdml_rng_at(uint64_t seed, uint64_t stream, uint64_t index);

typedef struct rdml_rng {
    uint64_t seed, stream, counter;
} rdml_rng;

/* Stream ids used project-wide (add new ones at the end; never renumber). */
enum {
    RDML_STREAM_SYNTH_IMAGE = 1, /* synthetic scene content, keyed further by NSD id */
    RDML_STREAM_SYNTH_TUNING,    /* synthetic vertex tuning */
    RDML_STREAM_SYNTH_NOISE,     /* synthetic measurement noise */
    RDML_STREAM_SYNTH_LAYOUT,    /* subject sizes, image-id draws, ROI layout */
    RDML_STREAM_FOLDS,
    RDML_STREAM_PAIRS,
    RDML_STREAM_INIT,
    RDML_STREAM_DROPOUT,
    RDML_STREAM_SHUFFLE,
    RDML_STREAM_PROJECTION, /* zoo: random projection of flattened layers (rdml/zoo.h) */
    RDML_STREAM_NULL,       /* the pair models' null distribution of R^2 (rdml_cv_null_r2) */
    RDML_STREAM_USER = 1000
};

rdml_rng rdml_rng_make(uint64_t seed, uint64_t stream, uint64_t start);
/* Derive a sub-stream id (e.g. one per image): mixes `stream` and `sub`. */
uint64_t rdml_rng_substream(uint64_t stream, uint64_t sub);
uint64_t rdml_rng_next(rdml_rng *r);
/* The next n raw draws at once, exactly those of n rdml_rng_next calls (the stream key is
 * hashed once instead of per draw). */
void rdml_rng_fill_u64(rdml_rng *r, int64_t n, uint64_t *out);
double rdml_rng_uniform(rdml_rng *r);           /* [0, 1), 53 random bits */
double rdml_rng_normal(rdml_rng *r);            /* N(0,1), Box-Muller, uses 2 draws */
uint64_t rdml_rng_below(rdml_rng *r, uint64_t n); /* unbiased integer in [0, n), n > 0 */
void rdml_rng_shuffle(rdml_rng *r, int64_t *a, int64_t n); /* Fisher-Yates */

/* ---- partition arithmetic (pure) ---- */
/* Contiguous block of [0,n) owned by `part` of `nparts`: the first n % nparts parts get one
 * more. lo inclusive, hi exclusive. */
void rdml_part_block(int64_t n, int part, int nparts, int64_t *lo, int64_t *hi);
/* Which part owns index i under rdml_part_block. */
int rdml_part_owner(int64_t n, int nparts, int64_t i);
/* ScaLAPACK NUMROC: how many of n items, in blocks of nb dealt cyclically starting at
 * process isrc, process iproc of nprocs holds. */
int64_t rdml_part_numroc(int64_t n, int64_t nb, int iproc, int isrc, int nprocs);
/* Block-cyclic maps (isrc = 0). */
int64_t rdml_part_l2g(int64_t il, int64_t nb, int iproc, int nprocs);
int rdml_part_g2p(int64_t ig, int64_t nb, int nprocs);
int64_t rdml_part_g2l(int64_t ig, int64_t nb, int nprocs);
/* A pr x pc process grid with pr * pc == nranks, as square as possible, pr >= pc. */
void rdml_part_grid(int nranks, int *pr, int *pc);

/* ---- stop requests ----
 * Process-wide state (as is the configuration data folder of rdml/config.h): a flag set by
 * SIGTERM/SIGINT/SIGUSR1 (SLURM preemption or time-limit warning, Ctrl-C). Long loops (the
 * task farm, RDM panels, embedding batches, CLIP layers) check it, finish the step in progress
 * and return RDML_ECANCELLED; a collective boundary agrees with rdml_stop_agree
 * (rdml/mpiutil.h). A second signal of the same kind ends the process at once. */
void rdml_stop_install(void);  /* install the handlers (the command-line front end does) */
int rdml_stop_requested(void); /* the signal number received, 0 when none */
void rdml_stop_clear(void);    /* forget a request (tests) */
const char *rdml_stop_name(int sig); /* "SIGTERM", "SIGINT", "SIGUSR1 (time limit near)" */
/* Not collective. With a stop requested, record RDML_ECANCELLED "stopped by SIGTERM <where>"
 * (where from fmt, may be NULL) and return it; else RDML_OK. For loops without collectives:
 * the caller's next rdml_agree spreads the stop to every rank. */
int rdml_stop_check(rdml_ctx *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- small string helpers ---- */
/* Levenshtein distance (case-insensitive), for "did you mean" suggestions. */
int rdml_edit_distance(const char *a, const char *b);
/* Index of the candidate nearest to s, or -1 when none is within max(2, strlen(s)/3). */
int rdml_nearest(const char *s, const char *const *candidates, int n);
/* Bounded copy that always terminates; returns strlen(src). */
size_t rdml_strlcpy(char *dst, const char *src, size_t size);

#ifdef __cplusplus
}
#endif
#endif
