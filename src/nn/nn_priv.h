/* Internal helpers of the nn module (src/nn/), not part of the public API. */
#ifndef RDML_NN_PRIV_H
#define RDML_NN_PRIV_H

#include <stdint.h>
#include <string.h>

#include "rdml/nn.h"

/* c ? v : 0, bit for bit (NaN and -0 included), without a branch: a ReLU's sign and a dropout
 * draw are random, so a branch would be mispredicted half of the time, and a select whose arm
 * multiplies is not if-converted by the compiler (the product might trap), so the loop would
 * not vectorise. */
static inline float rdml_nn_sel(int c, float v) {
    uint32_t b;
    memcpy(&b, &v, sizeof b);
    b &= (uint32_t)0 - (uint32_t)c;
    memcpy(&v, &b, sizeof v);
    return v;
}

/* The hot element-wise loops of a training step (Adam, ReLU/dropout) are built twice on x86-64
 * with GCC, for AVX2 and for the baseline (SSE2), and the loader picks the one the CPU runs
 * (function multiversioning): twice the vector width without -march=native. Both compute the
 * same IEEE operations in the same order (no FMA: the library is built as ISO C, where GCC
 * does not contract a * b + c), so results do not depend on the CPU. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__ELF__) && \
    !defined(RDML_NN_NO_CLONES)
#define RDML_NN_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define RDML_NN_CLONES
#endif

/* ---- the fixed shard decomposition of a data-parallel step (src/nn/shard.c) ----
 * Used by the pair network's and the CNN's sharded steps (docs/nn.md, "A fit on several
 * ranks"). A step's n items (distinct images, pairs) are cut into S contiguous shards, shard k
 * = [k n / S, (k + 1) n / S), whatever the number of ranks g; shard k belongs to rank k g / S,
 * so rank r owns the contiguous run of shards [k0, k1) of rdml_nn_shard_range (none when
 * g > S leaves it out). */
static inline int64_t rdml_nn_shard_lo(int64_t k, int64_t n, int64_t S) { return k * n / S; }
static inline int rdml_nn_shard_owner(int64_t k, int g, int64_t S) { return (int)(k * g / S); }
void rdml_nn_shard_range(int rank, int g, int64_t S, int64_t *k0, int64_t *k1);
/* The ranks' contiguous slices of n items in S shards, in values (`unit` per item): counts and
 * displacements for MPI_Allgatherv (g each). RDML_ENOMEM beyond INT_MAX values (the same on
 * every rank). */
int rdml_nn_shard_slices(rdml_ctx *ctx, int g, int64_t S, int64_t n, int64_t unit, int *cnt, int *dsp);
/* Every rank's slice of buf (n items of `unit` floats in S shards) to every rank (in place;
 * cnt: 2 g ints of scratch). Collective over comm (g ranks). */
int rdml_nn_shard_allgather(rdml_ctx *ctx, MPI_Comm comm, int g, int64_t S, int64_t n, int64_t unit,
                            float *buf, int *cnt);
/* The parameter-gradient parts of S shards, part k at part + k stride, are added as a fixed
 * binary tree over the shards: node [lo, hi) = node [lo, mid) + node [mid, hi), mid = (lo +
 * hi) / 2, kept in part[lo]. rdml_nn_tree_own: node [lo, hi) of the values [off, off + len)
 * from parts all present here. rdml_nn_tree_sum: the sum of the first len values of all S
 * parts into part[0] on every rank of comm (g ranks; g <= 1: serial, rdml_nn_tree_own): a
 * rank adds the maximal nodes made of its own shards (only those parts need to be filled),
 * the ranks exchange only those (one MPI_Allgatherv into gbuf, S len floats), and every rank
 * completes the tree alike: the same sums in the same order as the serial tree. part needs
 * room for S parts on every rank; cnt 2 g ints of scratch. At most RDML_FIT_MAX_SHARDS
 * shards. Collective when g > 1. */
void rdml_nn_tree_own(float *part, int64_t stride, int64_t lo, int64_t hi, int64_t off, int64_t len);
int rdml_nn_tree_sum(rdml_ctx *ctx, float *part, float *gbuf, int64_t stride, int64_t S, int g, int rank,
                     MPI_Comm comm, int64_t len, int *cnt);

/* rdml_optim_update of n parameters with separate state arrays (m: SGD's momentum / Adam's first
 * moment, v: Adam's second moment), for disjoint ranges on several threads. */
struct rdml_optim;
void rdml_nn_optim_range(const struct rdml_optim *o, float *param, const float *grad, float *m, float *v,
                         int64_t n, int64_t t);

/* A persistent team of threads (team.c) for the pair network's step: rdml_nn_team_run runs
 * tasks 0 .. ntasks - 1 of fn on the team's threads and the caller's, each task once, and
 * returns when all are done (NULL team: on the caller, in order). Tasks must not depend on
 * which thread runs them or in which order. rdml_nn_team_create returns NULL for fewer than
 * 2 threads or when no thread can be started. */
typedef struct rdml_nn_team rdml_nn_team;
typedef void (*rdml_nn_task_fn)(void *arg, int task);
rdml_nn_team *rdml_nn_team_create(int nthreads);
void rdml_nn_team_free(rdml_nn_team **team);
int rdml_nn_team_size(const rdml_nn_team *team);
void rdml_nn_team_run(rdml_nn_team *team, int ntasks, rdml_nn_task_fn fn, void *arg);

#endif
