/* libFuzzer target for the .pth state-dict pickle machine (rdml_pth_parse_pickle, src/io/pth.c):
 * any bytes must give either a state dict (a tensor count) or an error with a message, never
 * a crash, a leak or undefined behaviour. Seeds: tests/fuzz/corpus/pth (data.pkl of small
 * torch.save state dicts, protocols 2 and 4). Built by tests/fuzz/CMakeLists.txt; run by
 * tests/cli/test_fuzz.sh. */
#include <stdint.h>
#include <stdlib.h>

#include "rdml/core.h"
#include "rdml/pth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    ctx.log_level = RDML_LOG_QUIET;
    int64_t n = -1;
    if (rdml_pth_parse_pickle(&ctx, "fuzz", data, size, &n) == RDML_OK) {
        if (n < 0 || (size_t)n > size) abort(); /* every tensor takes bytes of the input */
    } else if (ctx.msg[0] == '\0' || n != 0) {
        abort();
    }
    return 0;
}
