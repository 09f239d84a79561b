/* The dynamic task farm. Rank 0 exposes two 64-bit counters in an MPI-3 window: the next
 * pending task and a stop flag. Every rank, rank 0 included, loops: check the stop flag, take
 * the next index with MPI_Fetch_and_op, compute the task, journal its record. So ranks
 * self-schedule (a long task never holds short ones back) without a master rank idling on a
 * 2-core laptop. On Open MPI's shared-memory one-sided component the counter progresses while
 * rank 0 computes; across nodes it relies on the network's atomics (UCX) or, with the pt2pt
 * component, on rank 0 reaching its next fetch. After the loop the records are broadcast from
 * the rank that computed each (or read from the journal by rank 0), so every rank can take
 * part in the collective HDF5 writes. Leaves out: cost-ordered scheduling (the caller orders
 * its tasks) and retries of failed tasks (a failure stops the farm with the task's message).
 * With a group function (rdml_farm_opts.group_fn) the last P % R pending tasks run after the
 * dynamic part, each on a fixed group of ranks with its own communicator (MPI_Comm_split), so
 * that a stage with fewer tasks than ranks (one holdout fold on two ranks), or the fifth fold
 * of five on two ranks, keeps every rank working. */
#include <stdlib.h>
#include <string.h>

#include "rdml/mpiutil.h"
#include "rdml/sched.h"

enum { SLOT_NEXT = 0, SLOT_STOP = 1 };
enum { STOP_ERROR = 1, STOP_SIGNAL = 2 };

static int64_t win_op(MPI_Win w, int slot, int64_t val, MPI_Op op) {
    int64_t old = 0;
    MPI_Fetch_and_op(&val, &old, MPI_INT64_T, 0, slot, op, w);
    MPI_Win_flush(0, w);
    return old;
}

/* Broadcast record r from root (n first). */
static int bcast_rec(rdml_ctx *ctx, MPI_Comm comm, int root, rdml_rec *r) {
    int64_t n = r->n;
    MPI_Bcast(&n, 1, MPI_INT64_T, root, comm);
    if (n < 0) return RDML_FAIL(ctx, RDML_EINTERNAL, "task record with negative length");
    if (ctx->rank != root) {
        rdml_rec_free(r);
        r->v = n ? malloc((size_t)n * sizeof *r->v) : NULL;
        r->n = n;
    }
    int ok = !n || r->v, all = 0;
    MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, comm);
    if (!all) return RDML_FAIL(ctx, RDML_ENOMEM, "out of memory receiving a task record of %lld "
                               "values", (long long)n);
    return rdml_bcast_bytes(ctx, comm, r->v, n * (int64_t)sizeof *r->v, root);
}

int rdml_farm_run(rdml_ctx *ctx, MPI_Comm comm, int64_t ntasks, rdml_task_fn fn, void *user,
                  const rdml_farm_opts *opts, rdml_rec *recs, rdml_farm_stats *stats) {
    rdml_farm_stats st;
    memset(&st, 0, sizeof st);
    double t0 = rdml_now();
    const rdml_journal *j = opts->journal;
    if (j && !opts->keys) return RDML_FAIL(ctx, RDML_EINTERNAL, "farm: a journal needs task keys");
    if (opts->gather && !recs) return RDML_FAIL(ctx, RDML_EINTERNAL, "farm: gather needs records");
    const int64_t acount = opts->array_count > 0 ? opts->array_count : 1;
    const int64_t aindex = opts->array_count > 0 ? opts->array_index : 0;
    int64_t *pending = malloc((size_t)(ntasks + 1) * sizeof *pending);
    int *owner = malloc((size_t)(ntasks + 1) * sizeof *owner);
    char *done = calloc((size_t)ntasks + 1, 1);
    int rc = pending && owner && done ? RDML_OK
                                      : RDML_FAIL(ctx, RDML_ENOMEM, "out of memory (task farm)");
    /* which selected tasks are already journaled: rank 0 looks, everyone learns */
    if (!rc && j && ctx->rank == 0)
        for (int64_t t = aindex; t < ntasks; t += acount) done[t] = (char)rdml_journal_has(j, opts->keys[t]);
    rc = rdml_agree(ctx, comm, rc);
    if (rc) goto out;
    if (ntasks) MPI_Bcast(done, (int)ntasks, MPI_CHAR, 0, comm);
    int64_t np = 0;
    for (int64_t t = 0; t < ntasks; t++) {
        owner[t] = -1;
        if (t % acount != aindex) continue;
        st.selected++;
        if (done[t]) st.journaled++;
        else pending[np++] = t;
    }

    /* the tail: with a group function, the last np % R pending tasks run on groups of ranks
     * after the dynamic part, so that no rank idles while the last tasks finish */
    int crank = 0, csize = 1;
    MPI_Comm_rank(comm, &crank);
    MPI_Comm_size(comm, &csize);
    const int64_t tail = opts->group_fn && csize > 1 ? np % csize : 0;
    const int64_t ndyn = np - tail;

    int64_t *base = NULL;
    MPI_Win win;
    MPI_Win_allocate(ctx->rank == 0 ? 2 * (MPI_Aint)sizeof(int64_t) : 0, sizeof(int64_t),
                     MPI_INFO_NULL, comm, &base, &win);
    if (ctx->rank == 0) base[SLOT_NEXT] = base[SLOT_STOP] = 0;
    MPI_Barrier(comm);
    MPI_Win_lock_all(0, win);
    rdml_progress pr;
    rdml_progress_begin(&pr, ctx, opts->label ? opts->label : "tasks", np);
    int stopped_by = 0;
    for (;;) {
        if (rdml_stop_requested()) {
            win_op(win, SLOT_STOP, STOP_SIGNAL, MPI_MAX);
            stopped_by = STOP_SIGNAL;
            break;
        }
        int64_t flag = win_op(win, SLOT_STOP, 0, MPI_NO_OP);
        if (flag) {
            stopped_by = (int)flag;
            break;
        }
        int64_t k = win_op(win, SLOT_NEXT, 1, MPI_SUM);
        if (k >= ndyn) break;
        int64_t t = pending[k];
        rdml_progress_update(&pr, k);
        rdml_rec r = {0, NULL};
        double tb = rdml_now();
        rc = fn(ctx, t, user, &r);
        st.busy_seconds += rdml_now() - tb;
        if (!rc && j) rc = rdml_journal_put(ctx, j, opts->keys[t], &r);
        if (rc) {
            rdml_rec_free(&r);
            win_op(win, SLOT_STOP, STOP_ERROR, MPI_MAX);
            break;
        }
        st.mine++;
        owner[t] = ctx->rank;
        if (opts->gather) recs[t] = r;
        else rdml_rec_free(&r);
    }
    MPI_Win_unlock_all(win);
    MPI_Win_free(&win);
    if (tail > 0) {
        /* every rank agrees to go on: no error, no stop on any rank */
        if (!stopped_by && rdml_stop_requested()) stopped_by = STOP_SIGNAL;
        int go = !rc && !stopped_by, all = 0;
        MPI_Allreduce(&go, &all, 1, MPI_INT, MPI_MIN, comm);
        if (all) {
            const int color = (int)((int64_t)crank * tail / csize);
            MPI_Comm g;
            MPI_Comm_split(comm, color, crank, &g);
            int grank = 0;
            MPI_Comm_rank(g, &grank);
            const int64_t t = pending[ndyn + color];
            rdml_progress_update(&pr, ndyn + color);
            rdml_rec r = {0, NULL};
            double tb = rdml_now(), waited = 0;
            int lrc = opts->group_fn(ctx, g, t, user, &r, &waited);
            st.busy_seconds += rdml_now() - tb - waited;
            if (!lrc && grank == 0 && j) lrc = rdml_journal_put(ctx, j, opts->keys[t], &r);
            lrc = rdml_agree(ctx, g, lrc);
            if (lrc || grank != 0 || !opts->gather) rdml_rec_free(&r);
            if (!lrc && grank == 0) {
                st.mine++;
                st.grouped++;
                owner[t] = crank;
                if (opts->gather) recs[t] = r;
            }
            rc = lrc;
            MPI_Comm_free(&g);
        }
    }
    rdml_progress_end(&pr);

    rc = rdml_agree(ctx, comm, rc);
    MPI_Allreduce(&st.mine, &st.computed, 1, MPI_INT64_T, MPI_SUM, comm);
    {
        int64_t gl = st.grouped;
        MPI_Allreduce(&gl, &st.grouped, 1, MPI_INT64_T, MPI_SUM, comm);
    }
    if (!rc) {
        int sig = stopped_by == STOP_SIGNAL, any = 0;
        MPI_Allreduce(&sig, &any, 1, MPI_INT, MPI_MAX, comm);
        if (any && st.computed < np)
            rc = RDML_FAIL(ctx, RDML_ECANCELLED, "stopped by a signal after %lld of %lld tasks; "
                           "%lld finished tasks are in the journal %s (hint: run the same "
                           "command again to continue)", (long long)(st.journaled + st.computed),
                           (long long)st.selected, (long long)(st.journaled + st.computed),
                           j ? rdml_journal_dir(j) : "(none: no journal, nothing kept)");
    }
    if (rc || !opts->gather) goto out;
    MPI_Allreduce(MPI_IN_PLACE, owner, (int)ntasks, MPI_INT, MPI_MAX, comm);
    for (int64_t t = aindex; t < ntasks && !rc; t += acount) {
        int root = owner[t] >= 0 ? owner[t] : 0;
        int lrc = RDML_OK;
        if (owner[t] < 0 && ctx->rank == 0) {
            int found = 0;
            lrc = rdml_journal_get(ctx, j, opts->keys[t], &recs[t], &found);
            if (!lrc && !found)
                lrc = RDML_FAIL(ctx, RDML_EIO, "journal record of task '%s' vanished from %s "
                                "during the run (hint: is another job cleaning it?)",
                                opts->keys[t], rdml_journal_dir(j));
        }
        rc = rdml_agree(ctx, comm, lrc);
        if (!rc) rc = bcast_rec(ctx, comm, root, &recs[t]);
        rc = rdml_agree(ctx, comm, rc);
    }
out:
    free(pending);
    free(owner);
    free(done);
    st.seconds = rdml_now() - t0;
    if (stats) *stats = st;
    return rc;
}
