/* libFuzzer harness for the config module: the input bytes are INI text for
 * rdml_config_load_text on a fresh config, and their first line is also tried as a --set
 * assignment. Beyond "no crash, no leak, no sanitizer report" it checks the module's
 * promises, trapping when one breaks: a failed merge leaves the config unchanged and leaves a
 * message; a successful one dumps to text that loads into a fresh config and dumps the same.
 * Built by tests/fuzz/CMakeLists.txt with clang -fsanitize=fuzzer from the config sources
 * and the core sources they need (error.c, part.c; no MPI). Seeds: tests/fuzz/corpus/ini/.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rdml/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* dump(cfg) must load into a fresh config and give the same dump. */
static void check_round_trip(const rdml_config *cfg) {
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    char *d1 = rdml_config_dump(cfg, 0);
    rdml_config *fresh = NULL;
    if (!d1 || rdml_config_create(&ctx, &fresh) != RDML_OK) __builtin_trap();
    if (rdml_config_load_text(&ctx, fresh, "dump", d1) != RDML_OK) __builtin_trap();
    char *d2 = rdml_config_dump(fresh, 0);
    if (!d2 || strcmp(d1, d2) != 0) __builtin_trap();
    free(d1);
    free(d2);
    rdml_config_destroy(&fresh);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > (1u << 16)) return 0; /* configs are small; keep iterations fast */
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = '\0';

    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    ctx.log_level = RDML_LOG_QUIET;
    rdml_config *cfg = NULL;
    if (rdml_config_create(&ctx, &cfg) != RDML_OK) __builtin_trap();

    char *before = rdml_config_dump(cfg, 0);
    int rc = rdml_config_load_text(&ctx, cfg, "fuzz.ini", text);
    char *after = rdml_config_dump(cfg, 0);
    if (!before || !after) __builtin_trap();
    if (rc != RDML_OK) {
        if (strcmp(before, after) != 0 || ctx.msg[0] == '\0') __builtin_trap();
        rdml_ctx_clear(&ctx);
    } else {
        check_round_trip(cfg);
    }

    /* The first line as a --set override. */
    char *nl = strchr(text, '\n');
    if (nl) *nl = '\0';
    free(before);
    before = rdml_config_dump(cfg, 0);
    rc = rdml_config_set(&ctx, cfg, text);
    free(after);
    after = rdml_config_dump(cfg, 0);
    if (!before || !after) __builtin_trap();
    if (rc != RDML_OK && (strcmp(before, after) != 0 || ctx.msg[0] == '\0')) __builtin_trap();
    if (rc == RDML_OK) check_round_trip(cfg);

    /* Every getter on every key, as the pipeline would call them. */
    int n;
    const rdml_cfg_key *keys = rdml_config_schema(&n);
    for (int i = 0; i < n; i++) {
        const rdml_cfg_key *k = &keys[i];
        rdml_ctx_clear(&ctx);
        int64_t v;
        double d;
        int b;
        const char *s;
        char **items;
        int m;
        switch (k->type) {
        case RDML_CFG_INT: rc = rdml_config_int(&ctx, cfg, k->section, k->key, &v); break;
        case RDML_CFG_REAL: rc = rdml_config_real(&ctx, cfg, k->section, k->key, &d); break;
        case RDML_CFG_BOOL: rc = rdml_config_bool(&ctx, cfg, k->section, k->key, &b); break;
        case RDML_CFG_LIST:
            rc = rdml_config_list(&ctx, cfg, k->section, k->key, &items, &m);
            if (rc == RDML_OK) free(items);
            break;
        case RDML_CFG_INT_LIST: {
            int64_t *iv = NULL;
            rc = rdml_config_int_list(&ctx, cfg, k->section, k->key, &iv, &m);
            free(iv);
            break;
        }
        case RDML_CFG_REAL_LIST: {
            double *dv = NULL;
            rc = rdml_config_real_list(&ctx, cfg, k->section, k->key, &dv, &m);
            free(dv);
            break;
        }
        default: rc = rdml_config_str(&ctx, cfg, k->section, k->key, &s); break;
        }
        if (rc != RDML_OK) __builtin_trap(); /* every key has a valid value */
    }

    free(before);
    free(after);
    rdml_config_destroy(&cfg);
    free(text);
    return 0;
}
