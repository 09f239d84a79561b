/* libFuzzer target for the .npy header parser (rdml_npy_parse_header). When the input parses
 * as a small 1-D or 2-D numeric array, the same bytes are also opened as a file (an in-memory
 * memfd) and read back with rdml_npy_open and the three readers over a row range and a
 * column subset, so the size checks, chunked preads and conversions are fuzzed too. Built by
 * tests/fuzz/CMakeLists.txt; run by tests/cli/test_fuzz.sh. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "rdml/core.h"
#include "rdml/npy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int memfd = -1;

static void read_back(const uint8_t *data, size_t size) {
    if (memfd < 0) memfd = memfd_create("fuzz_npy", 0);
    if (memfd < 0 || ftruncate(memfd, 0) != 0) return;
    if (pwrite(memfd, data, size, 0) != (ssize_t)size) return;
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", memfd);
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    ctx.log_level = RDML_LOG_QUIET;
    rdml_npy f;
    if (rdml_npy_open(&ctx, path, 0, &f) != RDML_OK) return;
    int64_t rows = f.ndim == 0 ? 1 : f.shape[0], cols = f.ndim == 2 ? f.shape[1] : 1;
    if (f.dtype != RDML_DT_OBJ && f.ndim <= 2 && cols > 0 && rows * cols <= 4096) {
        const int64_t pick[3] = {cols - 1, 0, cols / 2};
        int64_t nc = cols < 3 ? cols : 3, lo = rows / 3;
        double *d = malloc((size_t)(rows * cols + 1) * sizeof(double));
        rdml_npy_read_f64(&ctx, &f, lo, rows, pick, nc, d);
        rdml_ctx_clear(&ctx);
        rdml_npy_read_f32(&ctx, &f, lo, rows, pick, nc, (float *)d);
        rdml_ctx_clear(&ctx);
        rdml_npy_read_i64(&ctx, &f, 0, rows, NULL, 0, (int64_t *)d);
        free(d);
    }
    rdml_npy_close(&f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    ctx.log_level = RDML_LOG_QUIET;
    rdml_npy h;
    if (rdml_npy_parse_header(&ctx, "fuzz.npy", data, size, &h) == RDML_OK) {
        if (h.ndim < 0 || h.ndim > RDML_NPY_MAXDIM || h.data_offset > (int64_t)size ||
            h.count < 0)
            abort(); /* a parsed header must be self-consistent */
        if (h.dtype != RDML_DT_OBJ && h.ndim <= 2 && h.count <= 4096 &&
            h.data_offset + h.count * h.itemsize == (int64_t)size)
            read_back(data, size);
    } else if (ctx.msg[0] == '\0') {
        abort(); /* every failure carries a message */
    }
    return 0;
}
