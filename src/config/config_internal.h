/* config_internal.h — private pieces of the config module shared by its .c files and its unit
 * test: strict value parsing (value.c), extra per-key list checks (schema.c), a config built
 * over an arbitrary schema table (so tests can exercise required keys, which the shipped
 * schema has none of), and the Markdown reference generator behind docs/config.md.
 * Nothing here is part of the public API in include/rdml/config.h.
 */
#ifndef RDML_CONFIG_INTERNAL_H
#define RDML_CONFIG_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "rdml/config.h"

/* Longest value text accepted: keeps every "key = value" line under iniparser 4.1's
 * 1024-character line limit, so any accepted value can be dumped and read back. */
#define RDML_CFG_MAX_VALUE 1000

/* Outcome of checking one value. */
enum { RDML_CFGV_OK = 0, RDML_CFGV_SYNTAX, RDML_CFGV_RANGE, RDML_CFGV_NOMEM };

/* Extra check for a LIST key (after the generic per-item checks) or a STRING key (n = 1). Returns 0 when
 * the items are acceptable, otherwise writes the reason (and a hint) into why. */
typedef int (*rdml_cfg_list_check)(char *const *items, int n, char *why, size_t whylen);
typedef struct rdml_cfg_extra {
    const char *section, *key;
    rdml_cfg_list_check check;
} rdml_cfg_extra;
const rdml_cfg_extra *rdml_config_extra_checks(int *n);

/* Keys that only some settings use: [section] key has an effect only while the key `when`
 * ("section.key") holds one of `values` ("a|b", matched case-insensitively), or while
 * `unless` ("section.key", may be NULL) is set to anything but off. The table is in
 * schema.c; rdml_config_warn_inapplicable reads it. */
typedef struct rdml_cfg_applies {
    const char *section, *key;
    const char *when, *values, *unless;
} rdml_cfg_applies;
const rdml_cfg_applies *rdml_config_applies(int *n);

/* A common wrong spelling of a value of key k (rdm.metric = pearson, data.subjects = subj01):
 * writes a hint such as "correlation is 1 - Pearson r: write correlation" into buf and
 * returns 1; 0 when item is not one of the known slips. From a table in schema.c. */
int rdml_config_spelling_hint(const rdml_cfg_key *k, const char *item, char *buf, size_t n);

/* Check `raw` against key k. On RDML_CFGV_OK *canon is the malloc'd canonical text (what
 * dump writes: "042" -> "42", "Yes" -> "true", "1, 2" -> "1,2"). Otherwise *canon is NULL and
 * why holds the reason with a hint, e.g. "not an integer (expected a whole number >= 0; ...)"
 * (RDML_CFGV_SYNTAX) or "below the minimum 0 (allowed: 0 to 100; ...)" (RDML_CFGV_RANGE). */
int rdml_config_value_check(const rdml_cfg_key *k, const char *raw, char **canon, char *why,
                            size_t whylen);

/* Strict scalar parsers: 0 on success. parse_int returns 2 when the number does not fit in
 * int64_t, 1 for any other malformed text. */
int rdml_config_parse_int(const char *s, int64_t *out);
int rdml_config_parse_real(const char *s, double *out);
int rdml_config_parse_bool(const char *s, int *out);

/* "integer, >= 0", "number, 0 to 1", "one of quiet, error, ...": the type summary used by
 * the commented dump and the Markdown reference. */
void rdml_config_describe_type(const rdml_cfg_key *k, char *buf, size_t n);
/* Range bound as text: integral values without exponent ("9007199254740992"), else %g. */
void rdml_config_format_number(double x, char *buf, size_t n);
/* Does `v` need quotes in INI text, and can it be written at all? quote_char is set to '"',
 * '\'' or 0 (no quoting needed). Returns 0 when v cannot be written back (control characters,
 * too long, or it needs quotes but holds both quote characters). */
int rdml_config_ini_quote(const char *v, char *quote_char);

/* A config over a caller-provided schema table (which must outlive the config). keys must be
 * grouped by section; section and key names lowercase. Defaults are validated: a bad default
 * is RDML_EINTERNAL. rdml_config_create uses the shipped schema through this. */
int rdml_config_create_with_schema(rdml_ctx *ctx, const rdml_cfg_key *keys, int nkeys,
                                   rdml_config **out);

/* The schema a config was built over, and the canonical value of its i-th key (NULL when a
 * required key is unset). For dump.c. */
const rdml_cfg_key *rdml_config_keys(const rdml_config *cfg, int *n);
const char *rdml_config_value_at(const rdml_config *cfg, int i);

/* The key reference as Markdown (one table per section), malloc'd; docs/config.md embeds it
 * between the markers below, and a unit test keeps the two in sync. */
char *rdml_config_markdown(void);
#define RDML_CFG_MD_BEGIN "<!-- BEGIN GENERATED: rdml_config_markdown() -->"
#define RDML_CFG_MD_END "<!-- END GENERATED -->"


#endif
