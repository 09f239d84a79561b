/* The growable string of rdml/strbuf.h (the config dump, the SLURM scripts, the CSV tables). */
#include "rdml/strbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void rdml_strbuf_addn(rdml_strbuf *b, const char *s, size_t n) {
    if (b->failed) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) cap *= 2;
        char *p = realloc(b->s, cap);
        if (!p) {
            b->failed = 1;
            return;
        }
        b->s = p;
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

void rdml_strbuf_add(rdml_strbuf *b, const char *s) { rdml_strbuf_addn(b, s, strlen(s)); }

void rdml_strbuf_printf(rdml_strbuf *b, const char *fmt, ...) {
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = 1;
        return;
    }
    if ((size_t)n < sizeof small) {
        rdml_strbuf_addn(b, small, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (!big) {
        b->failed = 1;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    rdml_strbuf_addn(b, big, (size_t)n);
    free(big);
}

const char *rdml_strbuf_str(const rdml_strbuf *b) { return b->s ? b->s : ""; }

char *rdml_strbuf_take(rdml_strbuf *b) {
    if (b->failed) {
        rdml_strbuf_free(b);
        return NULL;
    }
    if (!b->s) rdml_strbuf_addn(b, "", 0);
    char *s = b->s;
    memset(b, 0, sizeof *b);
    return s;
}

void rdml_strbuf_free(rdml_strbuf *b) {
    free(b->s);
    memset(b, 0, sizeof *b);
}
