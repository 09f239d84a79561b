/* The task farm and its journal at 1-4 ranks: every task computed exactly once and every
 * record on every rank; dynamic balance (a long task does not hold short ones back); resume
 * from the journal; SLURM-array selection; a failing task stops every rank with its message;
 * a stop request finishes the tasks in progress and returns RDML_ECANCELLED; damaged journal
 * records are refused with the file named. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rdml/mpiutil.h"
#include "rdml/sched.h"
#include "test.h"

#define NT 41

typedef struct {
    int fail_at;   /* task that fails, -1 none */
    int signal_at; /* task that raises SIGTERM, -1 none */
    int long_task; /* task that takes 300 ms, -1 none */
} ud;

static int task(rdml_ctx *ctx, int64_t t, void *user, rdml_rec *out) {
    const ud *u = user;
    if (t == u->fail_at) return RDML_FAIL(ctx, RDML_EDATA, "task %lld failed on purpose", (long long)t);
    if (t == u->signal_at) raise(SIGTERM);
    usleep(t == u->long_task ? 300000 : 4000);
    out->n = t % 5 + 1;
    out->v = malloc((size_t)out->n * sizeof *out->v);
    if (!out->v) return RDML_FAIL(ctx, RDML_ENOMEM, "oom");
    for (int64_t i = 0; i < out->n; i++) out->v[i] = (double)t * 1000 + (double)i + 0.25;
    return RDML_OK;
}

/* The same record as task(), computed collectively over comm: element i by the group rank
 * i % size, reduced to the group's rank 0 (x + 0 is exact, so any group size gives the same
 * record). Counts the calls per group size in user (gsize[size]). */
typedef struct gud {
    ud u;
    int calls[8];   /* calls on this rank, by group size */
    int fail_group; /* task that fails on one rank of its group, -1 none */
} gud;

static int task_group(rdml_ctx *ctx, MPI_Comm comm, int64_t t, void *user, rdml_rec *out,
                      double *waited) {
    (void)waited;
    gud *g = user;
    int gr, gs;
    MPI_Comm_rank(comm, &gr);
    MPI_Comm_size(comm, &gs);
    g->calls[gs < 8 ? gs : 7]++;
    int rc = t == g->fail_group && gr == gs - 1
                 ? RDML_FAIL(ctx, RDML_EDATA, "group task %lld failed on purpose", (long long)t) : RDML_OK;
    rc = rdml_agree(ctx, comm, rc);
    if (rc) return rc;
    usleep(4000);
    int64_t n = t % 5 + 1;
    double part[5] = {0, 0, 0, 0, 0}, sum[5];
    for (int64_t i = gr; i < n; i += gs) part[i] = (double)t * 1000 + (double)i + 0.25;
    MPI_Reduce(part, sum, (int)n, MPI_DOUBLE, MPI_SUM, 0, comm);
    if (gr != 0) return RDML_OK; /* the farm keeps rank 0's record */
    out->n = n;
    out->v = malloc((size_t)n * sizeof *out->v);
    if (!out->v) return RDML_FAIL(ctx, RDML_ENOMEM, "oom");
    memcpy(out->v, sum, (size_t)n * sizeof *out->v);
    return RDML_OK;
}

static int check_recs(const rdml_rec *r, int64_t acount, int64_t aindex) {
    for (int64_t t = 0; t < NT; t++) {
        if (acount && t % acount != aindex) {
            if (r[t].n != 0) return 0;
            continue;
        }
        if (r[t].n != t % 5 + 1) return 0;
        for (int64_t i = 0; i < r[t].n; i++)
            if (r[t].v[i] != (double)t * 1000 + (double)i + 0.25) return 0;
    }
    return 1;
}

static void test_farm_journal_resume_stop(void) {
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    rdml_ctx_set_comm(&ctx, MPI_COMM_WORLD);
    ctx.log_level = RDML_LOG_ERROR;
    const MPI_Comm comm = MPI_COMM_WORLD;
    char dir[256];
    long pid = (long)getpid();
    MPI_Bcast(&pid, 1, MPI_LONG, 0, comm);
    snprintf(dir, sizeof dir, "farm-test-%d-%ld/journal", ctx.nranks, pid);
    char *keys[NT];
    for (int t = 0; t < NT; t++) {
        keys[t] = malloc(64);
        snprintf(keys[t], 64, "test-stage/cfg=abc/task=%d", t);
    }
    ud u = {-1, -1, 0};

    /* 1. plain run, no journal: every record everywhere, every task once */
    rdml_rec *r = calloc(NT, sizeof *r);
    rdml_farm_opts fo = {.gather = 1, .label = "test"};
    rdml_farm_stats st;
    CHECK(rdml_farm_run(&ctx, comm, NT, task, &u, &fo, r, &st) == RDML_OK);
    CHECK(check_recs(r, 0, 0));
    CHECK_EQ_I(st.computed, NT);
    CHECK_EQ_I(st.selected, NT);
    int64_t mine_long = -1, mine_other = -1;
    /* dynamic balance: the rank holding the 300 ms task did fewer of the 4 ms ones */
    {
        int has_long = 0;
        /* the long task is task 0, taken first by some rank */
        int64_t m = st.mine;
        int64_t all[4] = {0, 0, 0, 0};
        MPI_Allgather(&m, 1, MPI_INT64_T, all, 1, MPI_INT64_T, comm);
        (void)has_long;
        if (ctx.nranks == 2) {
            mine_long = all[0] < all[1] ? all[0] : all[1];
            mine_other = all[0] < all[1] ? all[1] : all[0];
            CHECK(mine_long * 3 < mine_other);
        }
        int64_t sum = 0;
        for (int i = 0; i < ctx.nranks && i < 4; i++) sum += all[i];
        CHECK_EQ_I(sum, NT);
    }
    rdml_recs_free(r, NT);

    /* 2. journal + array selection: index 1 of 3, then the merge computes the rest */
    u.long_task = -1;
    rdml_journal *j = NULL;
    CHECK(rdml_journal_open(&ctx, comm, dir, 1, &j) == RDML_OK);
    r = calloc(NT, sizeof *r);
    rdml_farm_opts fa = {.journal = j, .keys = (const char *const *)keys, .array_index = 1,
                         .array_count = 3, .gather = 1};
    CHECK(rdml_farm_run(&ctx, comm, NT, task, &u, &fa, r, &st) == RDML_OK);
    CHECK_EQ_I(st.selected, 14);
    CHECK_EQ_I(st.computed, 14);
    CHECK(check_recs(r, 3, 1));
    rdml_recs_free(r, NT);
    for (int t = 0; t < NT; t++) CHECK_EQ_I(rdml_journal_has(j, keys[t]), t % 3 == 1);
    r = calloc(NT, sizeof *r);
    rdml_farm_opts fj = {.journal = j, .keys = (const char *const *)keys, .gather = 1};
    CHECK(rdml_farm_run(&ctx, comm, NT, task, &u, &fj, r, &st) == RDML_OK);
    CHECK_EQ_I(st.journaled, 14);
    CHECK_EQ_I(st.computed, NT - 14);
    CHECK(check_recs(r, 0, 0));
    rdml_recs_free(r, NT);
    /* rerun: everything from the journal */
    r = calloc(NT, sizeof *r);
    CHECK(rdml_farm_run(&ctx, comm, NT, task, &u, &fj, r, &st) == RDML_OK);
    CHECK_EQ_I(st.computed, 0);
    CHECK_EQ_I(st.journaled, NT);
    CHECK(check_recs(r, 0, 0));
    rdml_recs_free(r, NT);

    /* 3. a failing task stops every rank with its message; finished tasks stay journaled */
    MPI_Barrier(comm);
    for (int t = 0; t < NT && ctx.rank == 0; t++) rdml_journal_remove(&ctx, j, keys[t]);
    MPI_Barrier(comm);
    u.fail_at = 20;
    r = calloc(NT, sizeof *r);
    int rc = rdml_farm_run(&ctx, comm, NT, task, &u, &fj, r, &st);
    CHECK_EQ_I(rc, RDML_EDATA);
    CHECK_STR_HAS(ctx.msg, "task 20 failed on purpose");
    rdml_recs_free(r, NT);
    rdml_ctx_clear(&ctx);
    int njour = 0;
    for (int t = 0; t < NT; t++) njour += rdml_journal_has(j, keys[t]);
    CHECK(njour >= 20 && njour < NT);
    CHECK(!rdml_journal_has(j, keys[20]));
    u.fail_at = -1;
    r = calloc(NT, sizeof *r);
    CHECK(rdml_farm_run(&ctx, comm, NT, task, &u, &fj, r, &st) == RDML_OK);
    CHECK_EQ_I(st.journaled, njour);
    CHECK_EQ_I(st.computed, NT - njour);
    CHECK(check_recs(r, 0, 0));
    rdml_recs_free(r, NT);

    /* 4. SIGTERM inside task 10 on whichever rank runs it: all ranks stop after their
     * current task, ECANCELLED everywhere, the finished tasks journaled; a rerun finishes */
    MPI_Barrier(comm);
    for (int t = 0; t < NT && ctx.rank == 0; t++) rdml_journal_remove(&ctx, j, keys[t]);
    MPI_Barrier(comm);
    rdml_stop_install();
    u.signal_at = 10;
    r = calloc(NT, sizeof *r);
    rc = rdml_farm_run(&ctx, comm, NT, task, &u, &fj, r, &st);
    CHECK_EQ_I(rc, RDML_ECANCELLED);
    CHECK_STR_HAS(ctx.msg, "run the same command again");
    rdml_recs_free(r, NT);
    rdml_ctx_clear(&ctx);
    rdml_stop_clear();
    signal(SIGTERM, SIG_DFL);
    njour = 0;
    for (int t = 0; t < NT; t++) njour += rdml_journal_has(j, keys[t]);
    CHECK(njour >= 11 && njour < NT);
    CHECK(rdml_journal_has(j, keys[10])); /* the task in progress was finished and kept */
    u.signal_at = -1;
    r = calloc(NT, sizeof *r);
    CHECK(rdml_farm_run(&ctx, comm, NT, task, &u, &fj, r, &st) == RDML_OK);
    CHECK_EQ_I(st.computed, NT - njour);
    CHECK(check_recs(r, 0, 0));
    rdml_recs_free(r, NT);

    /* 5. damaged records: truncated, foreign key, bad checksum -> errors naming the file */
    MPI_Barrier(comm);
    if (ctx.rank == 0) {
        rdml_rec rr = {0, NULL};
        int found = 0;
        char p[512], hex[17];
        rdml_hash_hex(rdml_hash_str(keys[3], 0), hex);
        snprintf(p, sizeof p, "%s/%s.rec", dir, hex);
        CHECK(truncate(p, 30) == 0);
        CHECK(rdml_journal_get(&ctx, j, keys[3], &rr, &found) == RDML_EFORMAT);
        CHECK_STR_HAS(ctx.msg, hex);
        CHECK_STR_HAS(ctx.msg, "truncated");
        rdml_ctx_clear(&ctx);
        /* a record stored under task 4's name but holding task 5's key */
        rdml_rec five = {0, NULL};
        CHECK(rdml_journal_get(&ctx, j, keys[5], &five, &found) == RDML_OK && found);
        char p4[512], p5[512];
        rdml_hash_hex(rdml_hash_str(keys[4], 0), hex);
        snprintf(p4, sizeof p4, "%s/%s.rec", dir, hex);
        rdml_hash_hex(rdml_hash_str(keys[5], 0), hex);
        snprintf(p5, sizeof p5, "%s/%s.rec", dir, hex);
        CHECK(rename(p5, p4) == 0);
        CHECK(rdml_journal_get(&ctx, j, keys[4], &rr, &found) == RDML_EFORMAT);
        CHECK_STR_HAS(ctx.msg, "task=5");
        rdml_ctx_clear(&ctx);
        /* flip one value byte of task 6 */
        rdml_hash_hex(rdml_hash_str(keys[6], 0), hex);
        snprintf(p, sizeof p, "%s/%s.rec", dir, hex);
        FILE *f = fopen(p, "r+b");
        CHECK(f != NULL);
        if (f) {
            fseek(f, 8 + 8 + (long)strlen(keys[6]) + 8 + 3, SEEK_SET);
            fputc(0x5a, f);
            fclose(f);
        }
        CHECK(rdml_journal_get(&ctx, j, keys[6], &rr, &found) == RDML_EFORMAT);
        CHECK_STR_HAS(ctx.msg, "checksum");
        rdml_ctx_clear(&ctx);
        rdml_rec_free(&five);
        for (int t = 0; t < NT; t++) rdml_journal_remove(&ctx, j, keys[t]);
    }
    /* 6. the tail on groups of ranks: of P pending tasks the last P % R run on groups, each
     * task once, journaled once; the records are the same as on one rank; a rerun after some
     * tasks were journaled groups the new tail; an error in a group stops every rank */
    MPI_Barrier(comm);
    {
        gud g;
        memset(&g, 0, sizeof g);
        g.u = (ud){-1, -1, -1};
        g.fail_group = -1;
        rdml_farm_opts fg = {.journal = j, .keys = (const char *const *)keys, .gather = 1,
                             .group_fn = task_group};
        r = calloc(NT, sizeof *r);
        CHECK(rdml_farm_run(&ctx, comm, NT, task, &g.u, &fg, r, &st) == RDML_OK);
        CHECK(check_recs(r, 0, 0));
        CHECK_EQ_I(st.computed, NT);
        CHECK_EQ_I(st.grouped, ctx.nranks > 1 ? NT % ctx.nranks : 0);
        rdml_recs_free(r, NT);
        int njr = 0;
        for (int t = 0; t < NT; t++) njr += rdml_journal_has(j, keys[t]);
        CHECK_EQ_I(njr, NT); /* every task journaled, the group tasks too */
        /* the group sizes: R ranks over NT % R tasks, as even as possible */
        int tail = ctx.nranks > 1 ? NT % ctx.nranks : 0, allcalls[8];
        MPI_Allreduce(g.calls, allcalls, 8, MPI_INT, MPI_SUM, comm);
        int ncalls = 0;
        for (int k = 1; k < 8; k++) ncalls += allcalls[k];
        CHECK_EQ_I(ncalls, tail ? ctx.nranks : 0);
        /* keep 2 journaled, so P = 39 pending: the tail is 39 % R (a stage with fewer
         * tasks than ranks: keep NT - 1, one task on every rank) */
        MPI_Barrier(comm);
        for (int t = 2; t < NT && ctx.rank == 0; t++)
            if (t != 7 || ctx.nranks == 1) rdml_journal_remove(&ctx, j, keys[t]);
        MPI_Barrier(comm);
        memset(g.calls, 0, sizeof g.calls);
        r = calloc(NT, sizeof *r);
        CHECK(rdml_farm_run(&ctx, comm, NT, task, &g.u, &fg, r, &st) == RDML_OK);
        CHECK(check_recs(r, 0, 0));
        int64_t pend = ctx.nranks == 1 ? NT - 2 : NT - 3;
        CHECK_EQ_I(st.computed, pend);
        CHECK_EQ_I(st.grouped, ctx.nranks > 1 ? pend % ctx.nranks : 0);
        rdml_recs_free(r, NT);
        /* one pending task on all ranks */
        MPI_Barrier(comm);
        if (ctx.rank == 0) rdml_journal_remove(&ctx, j, keys[40]);
        MPI_Barrier(comm);
        memset(g.calls, 0, sizeof g.calls);
        r = calloc(NT, sizeof *r);
        CHECK(rdml_farm_run(&ctx, comm, NT, task, &g.u, &fg, r, &st) == RDML_OK);
        CHECK(check_recs(r, 0, 0));
        CHECK_EQ_I(st.computed, 1);
        CHECK_EQ_I(st.grouped, ctx.nranks > 1);
        if (ctx.nranks > 1) CHECK_EQ_I(g.calls[ctx.nranks < 8 ? ctx.nranks : 7], 1);
        rdml_recs_free(r, NT);
        /* an error on one rank of a group: every rank stops with its message */
        MPI_Barrier(comm);
        if (ctx.rank == 0) rdml_journal_remove(&ctx, j, keys[40]);
        MPI_Barrier(comm);
        g.fail_group = ctx.nranks > 1 ? 40 : -1;
        r = calloc(NT, sizeof *r);
        rc = rdml_farm_run(&ctx, comm, NT, task, &g.u, &fg, r, &st);
        if (ctx.nranks > 1) {
            CHECK_EQ_I(rc, RDML_EDATA);
            CHECK_STR_HAS(ctx.msg, "group task 40 failed on purpose");
            CHECK(!rdml_journal_has(j, keys[40]));
        } else {
            CHECK_EQ_I(rc, RDML_OK);
        }
        rdml_recs_free(r, NT);
        rdml_ctx_clear(&ctx);
        MPI_Barrier(comm);
        for (int t = 0; t < NT && ctx.rank == 0; t++) rdml_journal_remove(&ctx, j, keys[t]);
    }
    MPI_Barrier(comm);
    rdml_journal_close(&j, comm, 1);
    if (ctx.rank == 0) {
        CHECK(access(dir, F_OK) != 0); /* empty journal directory removed */
        char top[256];
        snprintf(top, sizeof top, "farm-test-%d-%ld", ctx.nranks, pid);
        rmdir(top);
    }
    for (int t = 0; t < NT; t++) free(keys[t]);
    (void)mine_long;
    (void)mine_other;
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    RUN(test_farm_journal_resume_stop);
    int rc = test_summary_mpi(MPI_COMM_WORLD);
    MPI_Finalize();
    return rc;
}
