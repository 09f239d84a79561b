/* Helpers shared by the SVM/pairs/metrics unit tests: load a whole .npy fixture from
 * tests/fixtures/svm (written by tools/make_svm_fixtures.py). */
#ifndef RDML_TEST_SVM_FIXTURE_H
#define RDML_TEST_SVM_FIXTURE_H
#include <stdlib.h>

#include "rdml/npy.h"
#include "test.h"

/* rows x cols of a 1-D/2-D array as double / int64 / float; NULL on failure (printed). */
static inline void *fx_load(const char *name, int kind, int64_t *rows, int64_t *cols) {
    char rel[256];
    snprintf(rel, sizeof rel, "svm/%s.npy", name);
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    rdml_npy f;
    if (rdml_npy_open(&ctx, test_fixture(rel), 0, &f)) {
        fprintf(stderr, "fixture: %s\n", ctx.msg);
        return NULL;
    }
    int64_t r = f.ndim >= 1 ? f.shape[0] : 1, c = f.ndim == 2 ? f.shape[1] : 1;
    void *out = malloc((size_t)(r * c + 1) * 8);
    int rc = kind == 0   ? rdml_npy_read_f64(&ctx, &f, 0, r, NULL, 0, out)
             : kind == 1 ? rdml_npy_read_i64(&ctx, &f, 0, r, NULL, 0, out)
                         : rdml_npy_read_f32(&ctx, &f, 0, r, NULL, 0, out);
    rdml_npy_close(&f);
    if (rc) {
        fprintf(stderr, "fixture: %s\n", ctx.msg);
        free(out);
        return NULL;
    }
    if (rows) *rows = r;
    if (cols) *cols = c;
    return out;
}
#define FX_F64(name, r, c) ((double *)fx_load((name), 0, (r), (c)))
#define FX_I64(name, r, c) ((int64_t *)fx_load((name), 1, (r), (c)))
#define FX_F32(name, r, c) ((float *)fx_load((name), 2, (r), (c)))
#endif
