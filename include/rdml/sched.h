/* rdml/sched.h — task lists run as a dynamic MPI task farm, with a crash-safe journal.
 *
 * Example:
 *
 *   // A task is a pure function of its index: it fills a record (a flat array of doubles whose
 *   // layout the caller defines) and never calls MPI.
 *   static int square(rdml_ctx *ctx, int64_t t, void *user, rdml_rec *out) {
 *       out->v = rdml_malloc(ctx, sizeof *out->v, "record");
 *       if (!out->v) return ctx->code;
 *       out->n = 1;
 *       out->v[0] = (double)t * (double)t;
 *       return RDML_OK;
 *   }
 *
 *   int squares(rdml_ctx *ctx, MPI_Comm comm, int64_t ntasks, const char *const *keys,
 *               double *sum) {
 *       rdml_journal *j;
 *       RDML_TRY(rdml_journal_open(ctx, comm, "results.h5.journal", 1, &j));  // collective
 *       rdml_farm_opts fo = {.journal = j, .keys = keys, .gather = 1, .label = "squares"};
 *       rdml_rec *recs = calloc((size_t)ntasks, sizeof *recs);  // keys: one per task, e.g.
 *       int rc = recs ? RDML_OK : RDML_FAIL(ctx, RDML_ENOMEM, "out of memory");  // "sq 7"
 *       rc = rdml_farm_run(ctx, comm, rc ? 0 : ntasks, square, NULL, &fo, recs, NULL);
 *       // every rank now holds every task's record, computed here or found in the journal
 *       *sum = 0;
 *       for (int64_t t = 0; t < ntasks && !rc; t++) *sum += recs[t].v[0];
 *       if (recs) rdml_recs_free(recs, ntasks);
 *       rdml_journal_close(&j, comm, 0);
 *       return rc;
 *   }
 *
 * The farm is self-scheduling: a shared counter on rank 0 (an MPI-3 window, MPI_Fetch_and_op)
 * hands out the next pending task to whichever rank asks, so long and short tasks mix and no
 * rank idles while tasks wait; rank 0 works too (no dedicated master). Tasks are listed by the
 * caller in a deterministic order and each is computed by exactly one rank from global indices
 * only, so a task's record never depends on the number of ranks or on which rank ran it.
 *
 * The journal is a directory with one file per finished task, named by a hash of the task's
 * key (a string naming everything the result depends on: stage, config hash, subject,
 * selection, setting, fold). A record is written under a temporary name, flushed and renamed:
 * after kill -9 at any moment the journal holds only complete records (the key text and a
 * checksum are verified on reading). Rerunning with the same keys skips the recorded tasks,
 * so an interrupted sweep resumes where it stopped and ends with the same results.
 *
 * Stopping: rdml_stop_requested() (SIGTERM/SIGINT, see core) makes every rank finish the task
 * it is computing, journal it, take no new task, and return RDML_ECANCELLED.
 */
#ifndef RDML_SCHED_H
#define RDML_SCHED_H

#include <mpi.h>
#include <stdint.h>

#include "rdml/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One task's result. v is malloc'ed (may be NULL when n == 0). */
typedef struct rdml_rec {
    int64_t n;
    double *v;
} rdml_rec;

void rdml_rec_free(rdml_rec *r);
void rdml_recs_free(rdml_rec *r, int64_t n); /* frees each record and the array */

/* ---- journal ---- */
typedef struct rdml_journal rdml_journal;

/* Collective. Open (creating it and its parents) the journal directory. With cleanup, rank 0
 * removes temporary files left by a killed run (do not use while other jobs write to the
 * same journal, e.g. array jobs). */
int rdml_journal_open(rdml_ctx *ctx, MPI_Comm comm, const char *dir, int cleanup,
                      rdml_journal **out);
/* Not collective. Is a complete record for key present? */
int rdml_journal_has(const rdml_journal *j, const char *key);
/* Not collective. Read key's record into rec (found = 0 and rec empty when absent). A record
 * whose key text or checksum does not match is an error naming the file. */
int rdml_journal_get(rdml_ctx *ctx, const rdml_journal *j, const char *key, rdml_rec *rec,
                     int *found);
/* Not collective. Atomically store key's record (temporary file, fsync, rename). */
int rdml_journal_put(rdml_ctx *ctx, const rdml_journal *j, const char *key, const rdml_rec *rec);
/* Not collective. Remove key's record if present. */
int rdml_journal_remove(rdml_ctx *ctx, const rdml_journal *j, const char *key);
const char *rdml_journal_dir(const rdml_journal *j);
/* Not collective (one rank). Remove every record whose task key begins with prefix (records
 * of results that are committed already); *removed gets their count. Unreadable records are
 * left alone. */
int rdml_journal_prune(rdml_ctx *ctx, const rdml_journal *j, const char *prefix, int64_t *removed);
/* Collective. Close; with remove_dir, rank 0 removes the directory if it is empty. */
void rdml_journal_close(rdml_journal **j, MPI_Comm comm, int remove_dir);

/* ---- farm ---- */

/* Compute task t into *out (out->v malloc'ed). Must not call MPI. A non-OK return stops the
 * farm on every rank after their current task, with this message. */
typedef int (*rdml_task_fn)(rdml_ctx *ctx, int64_t t, void *user, rdml_rec *out);

/* Optional: compute task t into *out collectively over comm, a group of the farm's ranks
 * (MPI_Comm_split of the farm's communicator; size 1 is possible). The record of comm's rank 0
 * is the task's record (journaled once, by that rank); the other ranks' records are freed. It
 * must give the same record for any group size (a fixed decomposition of the work into
 * shards, reduced in a fixed order), agree on errors over comm (rdml_agree) and use no other
 * communicator. *waited (0 on entry) gets the seconds this rank only waited for the others
 * (e.g. while one rank does a part that does not split): the farm counts them as idle. */
typedef int (*rdml_task_group_fn)(rdml_ctx *ctx, MPI_Comm comm, int64_t t, void *user,
                                  rdml_rec *out, double *waited);

typedef struct rdml_farm_opts {
    rdml_journal *journal;   /* NULL: no journal */
    const char *const *keys; /* ntasks keys; required with a journal */
    int64_t array_index;     /* with array_count > 0, only tasks t % array_count == array_index */
    int64_t array_count;     /*   run (SLURM job arrays); 0: every task */
    int gather;              /* 1: on return every rank holds every selected task's record */
    const char *label;       /* progress label; NULL: "tasks" */
    /* With group_fn and more than one rank, no rank idles at the end of the farm: of the P
     * pending tasks (selected, not journaled) the first P - P % R (R ranks) go to the dynamic
     * farm as usual, then the last P % R tasks run at the same time, task i of them on the
     * ranks r with r * (P % R) / R == i (groups of R / (P % R) ranks, rounded), each group
     * calling group_fn on its own communicator. Which rank or group computed a task never
     * changes its record; the journal, resume and array semantics stay the same. */
    rdml_task_group_fn group_fn;
} rdml_farm_opts;

typedef struct rdml_farm_stats {
    int64_t selected;  /* tasks of this call (after the array selection) */
    int64_t journaled; /* found in the journal at the start */
    int64_t computed;  /* computed by this call, all ranks */
    int64_t mine;      /* computed by this rank (a group task counts for its group's rank 0) */
    int64_t grouped;   /* of computed: tasks run on groups of ranks (group_fn) */
    double busy_seconds, seconds; /* this rank: inside tasks (less the waits group tasks
                                   * report); whole call */
} rdml_farm_stats;

/* Collective. Run every selected task that is not in the journal, journaling each as it
 * finishes; with opts->gather, fill recs[t] (ntasks entries, zeroed by the caller) on every
 * rank for every selected task. stats may be NULL. */
int rdml_farm_run(rdml_ctx *ctx, MPI_Comm comm, int64_t ntasks, rdml_task_fn fn, void *user,
                  const rdml_farm_opts *opts, rdml_rec *recs, rdml_farm_stats *stats);

/* A stable 64-bit FNV-1a hash of a string, printed as 16 hex digits into out (>= 17 bytes):
 * the config hashes that keys and stage caches use. */
uint64_t rdml_hash_str(const char *s, uint64_t h0);
void rdml_hash_hex(uint64_t h, char *out);

#ifdef __cplusplus
}
#endif
#endif
