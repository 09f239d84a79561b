/* Stop requests: SIGTERM, SIGINT and SIGUSR1 (the SLURM scripts' time-limit warning) set a flag that long loops poll, so a preempted SLURM job
 * or a Ctrl-C finishes the task in progress, records it and exits cleanly instead of dying
 * mid-write. The second signal of a kind restores the default action and re-raises it, so an
 * impatient user still gets an immediate stop. Nothing else here; no MPI. */
#include <signal.h>
#include <string.h>

#include "rdml/core.h"

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
