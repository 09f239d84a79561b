/* Internal helpers of the nn module (src/nn/), not part of the public API. */
#ifndef RDML_NN_PRIV_H
#define RDML_NN_PRIV_H

#include <stdint.h>
#include <string.h>

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
