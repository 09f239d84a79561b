/* Error agreement across ranks. Each rank brings its local status to a phase boundary; one
 * allreduce finds the lowest failing rank, which broadcasts its code and message, so every
 * rank stops with the same clear message and none waits forever for a peer that gave up. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "rdml/mpiutil.h"

void rdml_ctx_set_comm(rdml_ctx *ctx, MPI_Comm comm) {
    MPI_Comm_rank(comm, &ctx->rank);
    MPI_Comm_size(comm, &ctx->nranks);
}

int rdml_root_status(rdml_ctx *ctx, MPI_Comm comm, int rc) {
    int rank;
    MPI_Comm_rank(comm, &rank);
    MPI_Bcast(&rc, 1, MPI_INT, 0, comm);
    if (rc != RDML_OK) {
        if (rank != 0) {
            ctx->code = rc;
            ctx->where = NULL;
        }
        MPI_Bcast(ctx->msg, (int)sizeof ctx->msg, MPI_CHAR, 0, comm);
    }
    return rc;
}

int rdml_agree(rdml_ctx *ctx, MPI_Comm comm, int rc) {
    int rank, size;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
    if (rc != RDML_OK && ctx->code == RDML_OK) ctx->code = rc; /* callee forgot a message */
    int mine[2] = {rc != RDML_OK ? rank : size, rc != RDML_OK ? 1 : 0};
    int agg[2];
    int lowest, nfail;
    MPI_Allreduce(&mine[0], &agg[0], 1, MPI_INT, MPI_MIN, comm);
    MPI_Allreduce(&mine[1], &agg[1], 1, MPI_INT, MPI_SUM, comm);
    lowest = agg[0];
    nfail = agg[1];
    if (lowest == size) return RDML_OK;
    struct {
        int code;
        char msg[sizeof ctx->msg];
    } buf;
    if (rank == lowest) {
        buf.code = ctx->code;
        memcpy(buf.msg, ctx->msg, sizeof buf.msg);
        if (buf.msg[0] == '\0') snprintf(buf.msg, sizeof buf.msg, "%s error", rdml_status_name(buf.code));
    }
    MPI_Bcast(&buf, (int)sizeof buf, MPI_BYTE, lowest, comm);
    ctx->code = buf.code;
    if (size > 1 && nfail < size)
        snprintf(ctx->msg, sizeof ctx->msg, "rank %d: %.4000s", lowest, buf.msg);
    else
        memcpy(ctx->msg, buf.msg, sizeof ctx->msg);
    ctx->msg[sizeof ctx->msg - 1] = '\0';
    return ctx->code;
}

int rdml_mpi_check(rdml_ctx *ctx, int mpi_rc, const char *call) {
    if (mpi_rc == MPI_SUCCESS) return RDML_OK;
    char err[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(mpi_rc, err, &len);
    return RDML_FAIL(ctx, RDML_EMPI, "%s failed: %s", call, err);
}

int rdml_bcast_bytes(rdml_ctx *ctx, MPI_Comm comm, void *buf, int64_t bytes, int root) {
    char *c = buf;
    for (int64_t off = 0; off < bytes;) {
        const int64_t n = bytes - off < ((int64_t)1 << 30) ? bytes - off : ((int64_t)1 << 30);
        RDML_TRY(rdml_mpi_check(ctx, MPI_Bcast(c + off, (int)n, MPI_BYTE, root, comm), "MPI_Bcast"));
        off += n;
    }
    return RDML_OK;
}

int64_t rdml_mem_available_share(MPI_Comm comm) {
    FILE *fp = fopen("/proc/meminfo", "r");
    int64_t kb = -1;
    if (fp) {
        char line[256];
        while (fgets(line, sizeof line, fp)) {
            long long val;
            if (sscanf(line, "MemAvailable: %lld kB", &val) == 1) {
                kb = val;
                break;
            }
        }
        fclose(fp);
    }
    MPI_Comm node;
    int nnode = 1;
    if (MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node) == MPI_SUCCESS) {
        MPI_Comm_size(node, &nnode);
        MPI_Comm_free(&node);
    }
    int64_t mine = kb < 0 ? INT64_MAX : kb * 1024 / (nnode > 0 ? nnode : 1), least = mine;
    MPI_Allreduce(&mine, &least, 1, MPI_INT64_T, MPI_MIN, comm);
    return least == INT64_MAX ? -1 : least;
}

int rdml_allgather_blocks(MPI_Comm comm, double *v, int64_t n, int *counts, int *displs) {
    int size = 1;
    MPI_Comm_size(comm, &size);
    for (int r = 0; r < size; r++) {
        int64_t a, b;
        rdml_part_block(n, r, size, &a, &b);
        counts[r] = (int)(b - a);
        displs[r] = (int)a;
    }
    return MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, v, counts, displs, MPI_DOUBLE, comm);
}
