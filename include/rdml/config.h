/* rdml/config.h — INI configuration behind a validating schema.
 *
 * Example:
 *
 *   int show_job(rdml_ctx *ctx, const char *job) {              // job: e.g. "jobs/demo.ini"
 *       rdml_config *cfg;
 *       RDML_TRY(rdml_config_create(ctx, &cfg));                 // every key at its default
 *       int rc = rdml_config_load(ctx, cfg, job);                // merge a file (validated)
 *       if (!rc) rc = rdml_config_set(ctx, cfg, "data.images=500");  // a --set override
 *       if (!rc) rc = rdml_config_check_required(ctx, cfg);
 *       int64_t n = 0;
 *       const char *root = NULL;
 *       if (!rc) rc = rdml_config_int(ctx, cfg, "data", "images", &n);
 *       if (!rc) rc = rdml_config_str(ctx, cfg, "data", "root", &root);
 *       if (!rc) {
 *           char *text = rdml_config_dump(cfg, 0);  // resolved INI, stored with every output
 *           printf("%s: first %lld images\n%s", root, (long long)n, text ? text : "");
 *           free(text);
 *       }
 *       rdml_config_destroy(&cfg);
 *       return rc;
 *   }
 *
 * iniparser reads the file; every value is then parsed strictly by the schema (one table in
 * src/config/schema.c: section, key, type, default, range, choices, help). Errors name the
 * file, section, key and the bad value, and suggest the nearest valid name. Not collective:
 * every rank loads the same file (or rank 0 loads and broadcasts the dump).
 */
#ifndef RDML_CONFIG_H
#define RDML_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "rdml/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum rdml_cfg_type {
    RDML_CFG_INT,       /* 64-bit integer, decimal only ("042" is 42, "0x10" is an error) */
    RDML_CFG_REAL,      /* finite double ("1e999", "nan", "12x" are errors) */
    RDML_CFG_BOOL,      /* true/false/yes/no/on/off/1/0 */
    RDML_CFG_STRING,    /* free text */
    RDML_CFG_PATH,      /* a file or folder path (relative paths are kept as written) */
    RDML_CFG_CHOICE,    /* one of `choices` ("a|b|c") */
    RDML_CFG_LIST,      /* comma-separated strings */
    RDML_CFG_INT_LIST,  /* comma-separated integers, each within [min, max] */
    RDML_CFG_REAL_LIST  /* comma-separated reals, each within [min, max] */
} rdml_cfg_type;

typedef struct rdml_cfg_key {
    const char *section;
    const char *key;
    rdml_cfg_type type;
    const char *def;     /* default as INI text; NULL = required (no default) */
    double min, max;     /* inclusive range for numbers (ignored when min > max) */
    const char *choices; /* CHOICE: "a|b|c"; LIST: allowed items or NULL for free (matched
                            case-insensitively; with choices, min <= max also admits
                            integers in [min, max], e.g. subjects = all | 1..99) */
    const char *help;    /* one or more sentences; shown in --defaults and docs */
} rdml_cfg_key;

/* The schema: all keys of all sections, grouped by section in display order. */
const rdml_cfg_key *rdml_config_schema(int *n);
/* Section names in display order, with a one-line description each. */
const char *const *rdml_config_sections(int *n);
const char *rdml_config_section_help(const char *section);

typedef struct rdml_config rdml_config;

int rdml_config_create(rdml_ctx *ctx, rdml_config **out);
void rdml_config_destroy(rdml_config **cfg);

/* Merge an INI file. Unknown section or key, malformed or out-of-range values: error naming
 * the file, section, key and value, with the nearest valid name. On error cfg is unchanged.
 * Section and key names are case-insensitive (iniparser lowercases them); a key given twice in
 * one file is an error naming both lines; a later load overrides earlier ones key by key.
 * A missing or unreadable file is RDML_EIO; everything else is RDML_ECONFIG. A relative path
 * not found from the current folder is looked up in the data folder (below). */
int rdml_config_load(rdml_ctx *ctx, rdml_config *cfg, const char *path);
/* Where configuration files are. A relative name that is not found where it is looked for
 * first (the current folder for rdml_config_load, the including file's folder for
 * [run] include) is looked up in the data folder DIR, if one is set: as DIR/NAME, then
 * DIR/configs/NAME, with leading "./" and "../" removed from NAME (so a job's
 * "../configs/paper/svm.ini" and "paper/svm.ini" both find DIR/configs/paper/svm.ini).
 * rdmlearn sets DIR at start-up: the source tree for the binary of a build folder,
 * <prefix>/share/rdmlearn for an installed one. Process-wide (set it before loading, not
 * thread-safe); NULL or "" switches the lookup off (the default). */
void rdml_config_set_datadir(const char *dir);
const char *rdml_config_datadir(void); /* the folder set, or NULL */
/* The path of `name` as written in a file in folder `dir` ("" or NULL: the current folder),
 * written to out: dir/name if it exists (or name is absolute, or no data folder is set),
 * else the data folder's file if there is one (returns 1), else dir/name (returns 0). */
int rdml_config_locate(const char *dir, const char *name, char *out, size_t len);
/* Merge INI text (what = name for messages). Same rules. For tests, fuzzing, broadcast. */
int rdml_config_load_text(rdml_ctx *ctx, rdml_config *cfg, const char *what, const char *text);
/* A configuration stored with results (/meta/stages/<stage> attribute config: the resolved
 * text of rdml_config_dump) as a new config over the defaults. Unlike load_text it does not
 * follow [run] include (the stored text is resolved already: the included keys are in it),
 * and as the file may come from another rdmlearn version, an unknown section or key or a
 * value this version rejects is left out (the key keeps its default and is not "set") and
 * counted in *skipped (may be NULL). Errors: text iniparser cannot read (RDML_ECONFIG, naming
 * `what`), memory. Free *out with rdml_config_destroy. */
int rdml_config_from_stored(rdml_ctx *ctx, const char *what, const char *text,
                            rdml_config **out, int *skipped);
/* Apply "section.key=value" (a --set override). Same validation; names are case-insensitive,
 * spaces around '=' are ignored and one pair of quotes around the value is removed. */
int rdml_config_set(rdml_ctx *ctx, rdml_config *cfg, const char *assignment);
/* Error naming every required key (default NULL) still unset. */
int rdml_config_check_required(rdml_ctx *ctx, const rdml_config *cfg);

/* Typed getters. Asking for a key not in the schema or of another type is RDML_EINTERNAL. */
int rdml_config_int(rdml_ctx *ctx, const rdml_config *cfg, const char *sec, const char *key,
                    int64_t *out);
int rdml_config_real(rdml_ctx *ctx, const rdml_config *cfg, const char *sec, const char *key,
                     double *out);
int rdml_config_bool(rdml_ctx *ctx, const rdml_config *cfg, const char *sec, const char *key,
                     int *out);
/* STRING, PATH, CHOICE and LIST keys: the resolved text (owned by cfg). */
int rdml_config_str(rdml_ctx *ctx, const rdml_config *cfg, const char *sec, const char *key,
                    const char **out);
/* LIST (also INT_LIST, REAL_LIST as text): items split on commas and trimmed; *items is
 * malloc'd (free(*items) frees all). */
int rdml_config_list(rdml_ctx *ctx, const rdml_config *cfg, const char *sec, const char *key,
                     char ***items, int *n);
/* INT_LIST / REAL_LIST: *vals malloc'd. */
int rdml_config_int_list(rdml_ctx *ctx, const rdml_config *cfg, const char *sec,
                         const char *key, int64_t **vals, int *n);
int rdml_config_real_list(rdml_ctx *ctx, const rdml_config *cfg, const char *sec,
                          const char *key, double **vals, int *n);
/* Was the key set by a file or --set (rather than left at its default)? */
int rdml_config_is_set(const rdml_config *cfg, const char *sec, const char *key);
/* Warn (rdml_warn: rank 0) once about each key that was set but has no effect with the
 * chosen backend, model or mode (embed.layer with embed.backend = gabor), from the schema's
 * table of which keys apply when. Returns how many keys it warned about. */
int rdml_config_warn_inapplicable(rdml_ctx *ctx, const rdml_config *cfg);

/* The resolved configuration as INI text (every key, in schema order), malloc'd.
 * commented = 1 adds each key's help, type and range as comments. */
char *rdml_config_dump(const rdml_config *cfg, int commented);
/* What `rdmlearn config --defaults` prints and configs/defaults.ini holds, malloc'd. */
char *rdml_config_defaults_text(void);

#ifdef __cplusplus
}
#endif
#endif
