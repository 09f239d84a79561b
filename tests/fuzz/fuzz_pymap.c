/* libFuzzer target for the pickled-mapping reader (rdml_pymap_parse): any bytes must give
 * either a well-formed {int: str} mapping or an error with a message, never a crash, a leak
 * or undefined behaviour. Built by tests/fuzz/CMakeLists.txt; run by tests/cli/test_fuzz.sh. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rdml/core.h"
#include "rdml/pymap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    ctx.log_level = RDML_LOG_QUIET;
    rdml_pymap m;
    if (rdml_pymap_parse(&ctx, "fuzz", data, size, &m) == RDML_OK) {
        size_t total = 0;
        for (int64_t i = 0; i < m.n; i++) {
            if (!m.names[i]) abort();
            total += strlen(m.names[i]);
            if (rdml_pymap_get(&m, m.keys[i]) == NULL) abort();
        }
        if (total > size) abort(); /* names come from the input */
    } else if (ctx.msg[0] == '\0' || m.n != 0) {
        abort();
    }
    rdml_pymap_free(&m);
    return 0;
}
