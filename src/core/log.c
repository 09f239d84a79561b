/* Logging and progress reporting. Only rank 0 prints (rdml_log_any excepted), so a 64-rank
 * job does not produce 64 copies of each line. A terminal gets a redrawn bar; a file or SLURM
 * log gets plain periodic lines, because carriage returns make such logs unreadable. */
#include <stdarg.h>
#include <string.h>
#include <time.h>

#include "rdml/core.h"

static const char *const level_tag[] = {"", "error", "warning", "info", "debug"};

double rdml_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void vlog(const rdml_ctx *ctx, int level, int any, const char *fmt, va_list ap) {
    if (level > ctx->log_level || level <= RDML_LOG_QUIET) return;
    FILE *f = ctx->log ? ctx->log : stderr;
    char line[4608];
    int n = 0;
    if (any && ctx->nranks > 1) n = snprintf(line, sizeof line, "[rank %d] ", ctx->rank);
    if (level != RDML_LOG_INFO)
        n += snprintf(line + n, sizeof line - (size_t)n, "%s: ", level_tag[level]);
    vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    fprintf(f, "%s\n", line);
    fflush(f);
}

void rdml_log(const rdml_ctx *ctx, int level, const char *fmt, ...) {
    if (ctx->rank != 0) return;
    va_list ap;
    va_start(ap, fmt);
    vlog(ctx, level, 0, fmt, ap);
    va_end(ap);
}

void rdml_log_any(const rdml_ctx *ctx, int level, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vlog(ctx, level, 1, fmt, ap);
    va_end(ap);
}

static int progress_on(const rdml_progress *p) {
    return p->ctx && p->ctx->rank == 0 && p->ctx->log_level >= RDML_LOG_INFO;
}

static void fmt_secs(char *buf, size_t n, double s) {
    if (s < 0 || s > 1e7) {
        snprintf(buf, n, "?");
    } else if (s < 60) {
        snprintf(buf, n, "%.0fs", s);
    } else if (s < 3600) {
        snprintf(buf, n, "%dm%02ds", (int)(s / 60), (int)s % 60);
    } else {
        snprintf(buf, n, "%dh%02dm", (int)(s / 3600), ((int)s % 3600) / 60);
    }
}

static void progress_print(rdml_progress *p, int final) {
    FILE *f = p->ctx->log ? p->ctx->log : stderr;
    double now = rdml_now(), el = now - p->t0;
    double frac = p->total > 0 ? (double)p->done / (double)p->total : 1.0;
    if (frac > 1) frac = 1;
    char eta[32], ela[32];
    fmt_secs(ela, sizeof ela, el);
    fmt_secs(eta, sizeof eta, frac > 0 ? el * (1 - frac) / frac : -1);
    if (p->ctx->tty) {
        char bar[31];
        int fill = (int)(frac * 30);
        for (int i = 0; i < 30; i++) bar[i] = i < fill ? '#' : '.';
        bar[30] = '\0';
        fprintf(f, "\r%-20s [%s] %3d%% %lld/%lld %s eta %s%s", p->label, bar, (int)(frac * 100),
                (long long)p->done, (long long)p->total, ela, final ? "0s" : eta,
                final ? "\n" : "");
    } else {
        fprintf(f, "%s: %lld/%lld (%d%%) elapsed %s%s%s\n", p->label, (long long)p->done,
                (long long)p->total, (int)(frac * 100), ela, final ? "" : " eta ",
                final ? "" : eta);
    }
    fflush(f);
    p->last_print = now;
}

void rdml_progress_begin(rdml_progress *p, const rdml_ctx *ctx, const char *label,
                         int64_t total) {
    memset(p, 0, sizeof *p);
    p->ctx = ctx;
    rdml_strlcpy(p->label, label, sizeof p->label);
    p->total = total;
    p->t0 = p->last_print = rdml_now();
    if (progress_on(p) && ctx->tty) progress_print(p, 0);
}

void rdml_progress_update(rdml_progress *p, int64_t done) {
    p->done = done;
    if (!progress_on(p)) return;
    double now = rdml_now();
    if (p->ctx->tty) {
        if (now - p->last_print >= 0.1) progress_print(p, 0);
        return;
    }
    int decile = p->total > 0 ? (int)(10 * done / p->total) : 10;
    if (decile > p->last_decile || now - p->last_print >= 30) {
        p->last_decile = decile;
        if (done < p->total) progress_print(p, 0);
    }
}

void rdml_progress_end(rdml_progress *p) {
    if (!progress_on(p)) return;
    p->done = p->total;
    progress_print(p, 1);
}
