/* A persistent team of threads for the pair network's training step (nn_priv.h). A default
 * step runs ~10 GEMMs over ~64-200 image rows; OpenBLAS splits each of them over its threads
 * and synchronises them per call, and everything between the GEMMs (dropout, ReLU, the head,
 * Adam) ran on one thread. The step instead runs its independent pieces (the rows of the
 * forward, a layer's weight and input gradients, parts of Adam) as tasks on this team, one
 * BLAS thread each. A job is a list of tasks handed out by an atomic counter (a descheduled
 * thread takes fewer); the caller runs tasks too and returns when all are done. Idle workers
 * spin briefly, yield the core for ~50 us, then sleep on a condition variable. Which thread runs a task never changes
 * what the task computes, so results do not depend on the team's size. */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "nn_priv.h"

#define TEAM_MAX 64

struct rdml_nn_team {
    int nt;                   /* threads, the caller included */
    int nworkers;             /* started */
    pthread_t th[TEAM_MAX];
    pthread_mutex_t mu;
    pthread_cond_t cv;
    /* the current job: generation (32 bits) | task count (16) | next task (16) */
    _Atomic uint64_t ctr;
    atomic_int done, nsleep, quit;
    rdml_nn_task_fn fn; /* written before ctr announces the job */
    void *arg;
};

static inline void relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int has_task(uint64_t c) { return (c & 0xffff) < ((c >> 16) & 0xffff); }

/* Take and run tasks of the current job until none is left. A task is reserved by a CAS on
 * ctr, so the job (fn, arg) cannot end, nor be replaced, before the task is done. */
static void take_tasks(rdml_nn_team *t) {
    uint64_t c = atomic_load(&t->ctr);
    while (has_task(c)) {
        if (!atomic_compare_exchange_weak(&t->ctr, &c, c + 1)) continue;
        t->fn(t->arg, (int)(c & 0xffff));
        atomic_fetch_add(&t->done, 1);
        c = atomic_load(&t->ctr);
    }
}

static void *worker(void *p) {
    rdml_nn_team *t = p;
    for (;;) {
        /* spin briefly, then yield the core (to the caller, when another process took the other
         * core) up to ~50 us, then sleep until a job has tasks left */
        int64_t t0 = 0;
        for (int i = 0; !has_task(atomic_load(&t->ctr)) && !atomic_load(&t->quit); i++) {
            if (i < 256) {
                relax();
                continue;
            }
            sched_yield();
            int64_t now = now_ns();
            if (!t0) t0 = now;
            else if (now - t0 > 50000) {
                pthread_mutex_lock(&t->mu);
                atomic_fetch_add(&t->nsleep, 1);
                while (!has_task(atomic_load(&t->ctr)) && !atomic_load(&t->quit)) pthread_cond_wait(&t->cv, &t->mu);
                atomic_fetch_sub(&t->nsleep, 1);
                pthread_mutex_unlock(&t->mu);
                t0 = 0;
            }
        }
        if (atomic_load(&t->quit)) return NULL;
        take_tasks(t);
    }
}

rdml_nn_team *rdml_nn_team_create(int nthreads) {
    if (nthreads > TEAM_MAX) nthreads = TEAM_MAX;
    if (nthreads < 2) return NULL;
    rdml_nn_team *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cv, NULL);
    atomic_init(&t->ctr, 0);
    atomic_init(&t->done, 0);
    atomic_init(&t->nsleep, 0);
    atomic_init(&t->quit, 0);
    for (int i = 1; i < nthreads; i++) { /* a thread that cannot be started is no error */
        if (pthread_create(&t->th[t->nworkers], NULL, worker, t) != 0) break;
        t->nworkers++;
    }
    t->nt = 1 + t->nworkers;
    if (t->nworkers == 0) {
        rdml_nn_team_free(&t);
        return NULL;
    }
    return t;
}

void rdml_nn_team_free(rdml_nn_team **team) {
    rdml_nn_team *t = team ? *team : NULL;
    if (!t) return;
    pthread_mutex_lock(&t->mu);
    atomic_store(&t->quit, 1);
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
    for (int i = 0; i < t->nworkers; i++) pthread_join(t->th[i], NULL);
    pthread_cond_destroy(&t->cv);
    pthread_mutex_destroy(&t->mu);
    free(t);
    *team = NULL;
}

int rdml_nn_team_size(const rdml_nn_team *t) { return t ? t->nt : 1; }

void rdml_nn_team_run(rdml_nn_team *t, int ntasks, rdml_nn_task_fn fn, void *arg) {
    if (ntasks <= 0) return;
    if (!t || ntasks == 1 || ntasks > 0xffff) { /* callers use a few tasks per thread */
        for (int k = 0; k < ntasks; k++) fn(arg, k);
        return;
    }
    t->fn = fn;
    t->arg = arg;
    atomic_store(&t->done, 0);
    uint64_t gen = (atomic_load(&t->ctr) >> 32) + 1;
    atomic_store(&t->ctr, (gen << 32) | ((uint64_t)ntasks << 16));
    if (atomic_load(&t->nsleep) > 0) {
        pthread_mutex_lock(&t->mu);
        pthread_cond_broadcast(&t->cv);
        pthread_mutex_unlock(&t->mu);
    }
    take_tasks(t);
    for (int i = 0; atomic_load(&t->done) < ntasks; i++) {
        if (i < 256) relax();
        else sched_yield();
    }
}
