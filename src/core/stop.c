/* Stop requests: SIGTERM, SIGINT and SIGUSR1 (the SLURM scripts' time-limit warning) set a flag
 * that long loops poll, so a preempted SLURM job or a Ctrl-C finishes the step in progress,
 * keeps what is resumable and exits cleanly instead of dying mid-write. The second signal of a
 * kind restores the default action and re-raises it, so an impatient user still gets an
 * immediate stop. Two ways to act on the flag: rdml_stop_check inside a loop without
 * collectives (it fails locally; the next rdml_agree spreads the stop), and rdml_stop_agree at
 * a boundary every rank reaches equally often (one allreduce: all ranks stop at the same
 * boundary, or none does). */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "rdml/core.h"
#include "rdml/mpiutil.h"

static volatile sig_atomic_t stop_sig;

static void on_signal(int sig) {
    if (stop_sig == sig) {
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    stop_sig = sig;
}

void rdml_stop_install(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL); /* SLURM's --signal=B:USR1@N warning before the time limit */
}

int rdml_stop_requested(void) { return (int)stop_sig; }

void rdml_stop_clear(void) { stop_sig = 0; }

const char *rdml_stop_name(int sig) {
    switch (sig) {
    case SIGTERM: return "SIGTERM";
    case SIGINT: return "SIGINT";
    case SIGUSR1: return "SIGUSR1 (time limit near)";
    default: return "a signal";
    }
}

static int stop_fail(rdml_ctx *ctx, int sig, const char *fmt, va_list ap) {
    char where[512] = "";
    if (fmt) vsnprintf(where, sizeof where, fmt, ap);
    return RDML_FAIL(ctx, RDML_ECANCELLED, "stopped by %s%s%s", rdml_stop_name(sig),
                     *where ? " " : "", where);
}

int rdml_stop_check(rdml_ctx *ctx, const char *fmt, ...) {
    int sig = rdml_stop_requested();
    if (!sig) return RDML_OK;
    va_list ap;
    va_start(ap, fmt);
    int rc = stop_fail(ctx, sig, fmt, ap);
    va_end(ap);
    return rc;
}

int rdml_stop_agree(rdml_ctx *ctx, MPI_Comm comm, int rc, const char *fmt, ...) {
    rc = rdml_agree(ctx, comm, rc);
    if (rc) return rc;
    int sig = rdml_stop_requested(), any = 0;
    MPI_Allreduce(&sig, &any, 1, MPI_INT, MPI_MAX, comm);
    if (!any) return RDML_OK;
    va_list ap;
    va_start(ap, fmt);
    rc = stop_fail(ctx, any, fmt, ap); /* the same words on every rank */
    va_end(ap);
    return rc;
}
