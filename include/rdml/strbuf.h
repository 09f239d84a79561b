/* rdml/strbuf.h — a growable string.
 *
 * Example:
 *
 *   char *csv_row(const char *name, const double *v, int n) {
 *       rdml_strbuf b = {0};                                     // empty
 *       rdml_strbuf_add(&b, name);
 *       for (int i = 0; i < n; i++) rdml_strbuf_printf(&b, ",%.17g", v[i]);
 *       rdml_strbuf_addn(&b, "\n", 1);
 *       return rdml_strbuf_take(&b);                             // NULL if memory ran out
 *   }
 *
 * Append text or formatted text of any length; an allocation failure sets `failed`, drops
 * every later append, and rdml_strbuf_take returns NULL. The config dump, the SLURM scripts
 * and the sweep's CSV tables are built with it.
 */
#ifndef RDML_STRBUF_H
#define RDML_STRBUF_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rdml_strbuf {
    char *s;       /* NUL-terminated text, NULL while empty */
    size_t len, cap;
    int failed;    /* an allocation failed: the text is incomplete */
} rdml_strbuf;

void rdml_strbuf_addn(rdml_strbuf *b, const char *s, size_t n);
void rdml_strbuf_add(rdml_strbuf *b, const char *s);
void rdml_strbuf_printf(rdml_strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The text so far ("" while empty). */
const char *rdml_strbuf_str(const rdml_strbuf *b);
/* The finished string (caller frees; "" when empty), or NULL after an allocation failure;
 * the buffer is empty again either way. */
char *rdml_strbuf_take(rdml_strbuf *b);
void rdml_strbuf_free(rdml_strbuf *b);

#ifdef __cplusplus
}
#endif
#endif
