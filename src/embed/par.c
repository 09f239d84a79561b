/* A parallel loop for the element-wise work of the zoo's forward passes (embed_priv.h). The
 * networks' GEMMs run on OpenBLAS's threads; everything between them (im2col, bias + ReLU,
 * LayerNorm, GELU, the attention of each image and head) ran on the calling thread alone
 * while the other cores waited. rdml_par_for splits such a loop over as many threads as
 * OpenBLAS has (run.threads), so that the whole pass uses the cores the user gave it.
 *
 * Chunks are handed out dynamically (an atomic counter): a core slowed by other processes
 * takes fewer. Every index is computed by the same code whichever thread runs it, so results
 * do not depend on the thread count, the schedule or the number of ranks. A thread that cannot
 * be started is no error: the calling thread does its share. */
#include <cblas.h>
#include <pthread.h>
#include <stdatomic.h>

#include "embed/embed_priv.h"

#define PAR_MAX 64

typedef struct par_job {
    rdml_par_fn fn;
    void *arg;
    int64_t n, grain;
    atomic_llong next;
} par_job;

typedef struct par_slot {
    par_job *job;
    int thread;
} par_slot;

static void par_run(par_job *j, int thread) {
    for (;;) {
        const int64_t b = (int64_t)atomic_fetch_add(&j->next, (long long)j->grain);
        if (b >= j->n) return;
        j->fn(j->arg, thread, b, b + j->grain < j->n ? b + j->grain : j->n);
    }
}

static void *par_main(void *p) {
    par_slot *s = p;
    par_run(s->job, s->thread);
    return NULL;
}

int rdml_par_threads(void) {
    int t = openblas_get_num_threads();
    return t < 1 ? 1 : t > PAR_MAX ? PAR_MAX : t;
}

void rdml_par_for(int64_t n, int64_t grain, int blas_single, rdml_par_fn fn, void *arg) {
    if (n <= 0) return;
    if (grain < 1) grain = 1;
    int nt = rdml_par_threads();
    const int64_t chunks = (n + grain - 1) / grain;
    if (nt > chunks) nt = (int)chunks;
    par_job j = {fn, arg, n, grain, 0};
    if (nt <= 1) {
        par_run(&j, 0);
        return;
    }
    /* the threads call OpenBLAS themselves: one BLAS thread each, restored afterwards */
    const int blas = blas_single ? openblas_get_num_threads() : 0;
    if (blas > 1) openblas_set_num_threads(1);
    pthread_t th[PAR_MAX];
    par_slot slot[PAR_MAX];
    int started[PAR_MAX] = {0};
    for (int t = 1; t < nt; t++) {
        slot[t] = (par_slot){&j, t};
        started[t] = pthread_create(&th[t], NULL, par_main, &slot[t]) == 0;
    }
    par_run(&j, 0);
    for (int t = 1; t < nt; t++)
        if (started[t]) pthread_join(th[t], NULL);
    if (blas > 1) openblas_set_num_threads(blas);
}
