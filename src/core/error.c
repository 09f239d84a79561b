/* Error recording in an rdml_ctx, allocation wrappers, status names. No globals: the context
 * passed in owns the first error and its message. */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rdml/core.h"

static const char *const status_names[RDML_NSTATUS] = {
    "ok", "usage", "config", "io", "format", "data", "nomem", "mpi", "cancelled", "internal",
};

const char *rdml_status_name(int code) {
    if (code < 0 || code >= RDML_NSTATUS) return "unknown";
    return status_names[code];
}

int rdml_status_exit_code(int code) { return code == RDML_OK ? 0 : 2 + code; }

void rdml_ctx_init(rdml_ctx *ctx) {
    memset(ctx, 0, sizeof *ctx);
    ctx->nranks = 1;
    ctx->log_level = RDML_LOG_INFO;
    ctx->log = stderr;
    ctx->tty = isatty(fileno(stderr));
}

void rdml_ctx_clear(rdml_ctx *ctx) {
    ctx->code = RDML_OK;
    ctx->msg[0] = '\0';
    ctx->where = NULL;
    ctx->where_line = 0;
}

int rdml_fail(rdml_ctx *ctx, int code, const char *src, int line, const char *fmt, ...) {
    if (code == RDML_OK) code = RDML_EINTERNAL;
    if (ctx->code != RDML_OK) return ctx->code;
    ctx->code = code;
    ctx->where = src;
    ctx->where_line = line;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->msg, sizeof ctx->msg, fmt, ap);
    va_end(ap);
    return code;
}

int rdml_ctx_prefix(rdml_ctx *ctx, const char *fmt, ...) {
    char head[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(head, sizeof head, fmt, ap);
    va_end(ap);
    char old[sizeof ctx->msg];
    memcpy(old, ctx->msg, sizeof old);
    snprintf(ctx->msg, sizeof ctx->msg, "%s: %s", head, old);
    return ctx->code;
}

void *rdml_malloc(rdml_ctx *ctx, size_t bytes, const char *what) {
    void *p = malloc(bytes ? bytes : 1);
    if (!p)
        RDML_FAIL(ctx, RDML_ENOMEM, "out of memory allocating %zu bytes for %s", bytes, what);
    return p;
}

void *rdml_calloc(rdml_ctx *ctx, size_t n, size_t size, const char *what) {
    if (size && n > SIZE_MAX / size) {
        RDML_FAIL(ctx, RDML_ENOMEM, "size overflow allocating %zu x %zu bytes for %s", n, size,
                  what);
        return NULL;
    }
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        RDML_FAIL(ctx, RDML_ENOMEM, "out of memory allocating %zu x %zu bytes for %s", n, size,
                  what);
    return p;
}

void *rdml_realloc(rdml_ctx *ctx, void *p, size_t bytes, const char *what) {
    void *q = realloc(p, bytes ? bytes : 1);
    if (!q)
        RDML_FAIL(ctx, RDML_ENOMEM, "out of memory growing %s to %zu bytes", what, bytes);
    return q;
}

char *rdml_strdup(rdml_ctx *ctx, const char *s) {
    size_t n = strlen(s) + 1;
    char *d = rdml_malloc(ctx, n, "string");
    if (d) memcpy(d, s, n);
    return d;
}

size_t rdml_strlcpy(char *dst, const char *src, size_t size) {
    size_t n = strlen(src);
    if (size) {
        size_t c = n < size - 1 ? n : size - 1;
        memcpy(dst, src, c);
        dst[c] = '\0';
    }
    return n;
}
