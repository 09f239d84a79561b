/* MPI tests of error agreement: a failure on any subset of ranks reaches every rank with the
 * same code and message, and nobody hangs. Runs at 1, 2, 3 and 4 ranks. */
#include <mpi.h>

#include "rdml/mpiutil.h"
#include "test.h"

static void test_no_failure(void) {
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    rdml_ctx_set_comm(&ctx, MPI_COMM_WORLD);
    CHECK_EQ_I(rdml_agree(&ctx, MPI_COMM_WORLD, RDML_OK), RDML_OK);
    CHECK_EQ_I(ctx.code, RDML_OK);
}

static void test_last_rank_fails(void) {
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    rdml_ctx_set_comm(&ctx, MPI_COMM_WORLD);
    int rc = RDML_OK;
    if (ctx.rank == ctx.nranks - 1) rc = RDML_FAIL(&ctx, RDML_EIO, "cannot read %s", "x.npy");
    rc = rdml_agree(&ctx, MPI_COMM_WORLD, rc);
    CHECK_EQ_I(rc, RDML_EIO);
    CHECK_EQ_I(ctx.code, RDML_EIO);
    CHECK_STR_HAS(ctx.msg, "cannot read x.npy");
    if (ctx.nranks > 1) {
        char want[32];
        snprintf(want, sizeof want, "rank %d:", ctx.nranks - 1);
        CHECK_STR_HAS(ctx.msg, want);
    }
}

static void test_lowest_failing_rank_wins(void) {
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    rdml_ctx_set_comm(&ctx, MPI_COMM_WORLD);
    /* every rank fails with its own message: all must end with rank 0's */
    int rc = RDML_FAIL(&ctx, ctx.rank == 0 ? RDML_EDATA : RDML_EFORMAT, "failure on rank %d",
                       ctx.rank);
    rc = rdml_agree(&ctx, MPI_COMM_WORLD, rc);
    CHECK_EQ_I(rc, RDML_EDATA);
    CHECK_STR_HAS(ctx.msg, "failure on rank 0");
    CHECK(strstr(ctx.msg, "rank 0: failure") == NULL); /* all failed: no rank prefix */
}

static void test_code_without_message(void) {
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    rdml_ctx_set_comm(&ctx, MPI_COMM_WORLD);
    int rc = rdml_agree(&ctx, MPI_COMM_WORLD, ctx.rank == 0 ? RDML_EINTERNAL : RDML_OK);
    CHECK_EQ_I(rc, RDML_EINTERNAL);
    CHECK_STR_HAS(ctx.msg, "internal");
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    RUN(test_no_failure);
    RUN(test_last_rank_fails);
    RUN(test_lowest_failing_rank_wins);
    RUN(test_code_without_message);
    int rc = test_summary_mpi(MPI_COMM_WORLD);
    MPI_Finalize();
    return rc;
}
