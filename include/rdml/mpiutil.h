/* rdml/mpiutil.h — the MPI side of error handling: ranks agree on failure.
 *
 * Example:
 *
 *   // At every phase boundary of a collective operation:
 *   int phase(rdml_ctx *ctx, MPI_Comm comm, int64_t n, double **buf) {
 *       *buf = rdml_malloc(ctx, (size_t)n * sizeof **buf, "buffer");  // may fail on some ranks
 *       int rc = *buf ? RDML_OK : ctx->code;
 *       rc = rdml_agree(ctx, comm, rc);  // collective: every rank now holds the same code
 *       if (rc) {                        //   and the same message (from the lowest failing rank)
 *           free(*buf);
 *           *buf = NULL;
 *           return rc;
 *       }
 *       double local = (double)n, total = 0;
 *       return rdml_mpi_check(ctx, MPI_Allreduce(&local, &total, 1, MPI_DOUBLE, MPI_SUM, comm),
 *                             "MPI_Allreduce");
 *   }
 *
 * A failing rank must still call rdml_agree, so a failure never leaves others waiting.
 */
#ifndef RDML_MPIUTIL_H
#define RDML_MPIUTIL_H

#include <mpi.h>

#include "rdml/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Set ctx->rank / ctx->nranks from comm (not collective). */
void rdml_ctx_set_comm(rdml_ctx *ctx, MPI_Comm comm);

/* Collective. `rc` is this rank's status (usually the return of its local step). If any rank
 * passes non-OK, every rank's ctx gets the code and message of the lowest failing rank
 * (prefixed "rank R: " when more than one rank exists and the failure was not on all ranks)
 * and every rank returns that code. Returns RDML_OK on all ranks otherwise. */
int rdml_agree(rdml_ctx *ctx, MPI_Comm comm, int rc);

/* Collective. For a step that only rank 0 performs (a lock, a check of a file, a listing):
 * rank 0's status `rc` and its message, word for word (no "rank 0: " prefix), on every rank;
 * every rank returns that status. Other ranks' rc is ignored. */
int rdml_root_status(rdml_ctx *ctx, MPI_Comm comm, int rc);

/* Collective: a stop boundary, to be reached equally often by every rank of comm (a batch or
 * panel loop whose bounds every rank knows). First rdml_agree(rc); then, if every rank is OK
 * but any rank has a stop request (rdml_stop_requested), every rank records the same
 * RDML_ECANCELLED "stopped by SIGTERM <where>" (where from fmt) and returns it. One extra
 * allreduce of an int. */
int rdml_stop_agree(rdml_ctx *ctx, MPI_Comm comm, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Turn an MPI error code into a recorded RDML_EMPI naming the call. */
int rdml_mpi_check(rdml_ctx *ctx, int mpi_rc, const char *call);
/* Collective. MPI_Bcast of `bytes` bytes from root in pieces of at most 1 GiB (MPI counts
 * are int). Returns RDML_OK or the recorded RDML_EMPI (not agreed). */
int rdml_bcast_bytes(rdml_ctx *ctx, MPI_Comm comm, void *buf, int64_t bytes, int root);
/* Collective. MemAvailable of this node divided by the ranks of comm on this node, the
 * smallest over comm's nodes; -1 if unknown (no /proc/meminfo). */
int64_t rdml_mem_available_share(MPI_Comm comm);
/* Collective. v holds n doubles split over the ranks of comm in rdml_part_block blocks, each
 * rank having filled its own block: afterwards every rank has all n (one in-place
 * MPI_Allgatherv). counts and displs: work arrays of size(comm) ints; n <= INT_MAX. Returns the
 * MPI return code. */
int rdml_allgather_blocks(MPI_Comm comm, double *v, int64_t n, int *counts, int *displs);

#ifdef __cplusplus
}
#endif
#endif
