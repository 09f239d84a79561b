/* rdml/lock.h — a lock on a results file, held for a whole command, so that two commands
 * writing the same file cannot interleave (each copies the file, changes the copy and renames
 * it into place: the later rename would silently drop the earlier one's results).
 *
 * Example (collective; rank 0 holds the lock, every rank gets the same status):
 *
 *   int write_locked(rdml_ctx *ctx, MPI_Comm comm, const char *output) {
 *       rdml_lock *lk;
 *       RDML_TRY(rdml_lock_acquire(ctx, comm, output, RDML_LOCK_EXCLUSIVE,
 *                                  "rdmlearn run jobs/paper.ini", &lk));
 *       int rc = RDML_OK;  // ... write output and its companions here
 *       rdml_lock_release(&lk);  // also released by the kernel when the process dies
 *       return rc;
 *   }
 *
 * The lock is an open-file-description lock (fcntl F_OFD_SETLK; classic POSIX F_SETLK on
 * kernels without it) on the sidecar file "<path>.lock". Such locks are seen by every node
 * of a shared file system that supports locking (NFS with lockd / NFSv4, Lustre mounted with
 * -o flock, GPFS, BeeGFS) and vanish with the process that held them, so a crashed run
 * (kill -9, node failure) never blocks the next. The exclusive holder writes its host, PID,
 * start time and command into the file, so a refused command can name it. Shared locks (for
 * readers that must not overlap a writer, e.g. SLURM array shares) write nothing. A file
 * system without lock support gives a warning and no lock. */
#ifndef RDML_LOCK_H
#define RDML_LOCK_H

#include <mpi.h>

#include "rdml/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rdml_lock rdml_lock;

enum { RDML_LOCK_EXCLUSIVE = 0, RDML_LOCK_SHARED = 1 };

/* Collective. Lock `path` (through "<path>.lock"; the folder must exist). A lock held by
 * another process is waited for at most about 2 s (a process that has just died may still
 * be releasing it), then RDML_EIO with a message naming the holder. `what` describes this
 * command for the message others get. *out is NULL on error. */
int rdml_lock_acquire(rdml_ctx *ctx, MPI_Comm comm, const char *path, int mode, const char *what,
                      rdml_lock **out);
/* Not collective (rank 0 does the work). Release and free; accepts NULL / *lk == NULL. */
void rdml_lock_release(rdml_lock **lk);

#ifdef __cplusplus
}
#endif
#endif
