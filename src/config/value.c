/* Strict parsing and validation of one configuration value against its schema entry, the
 * canonical text that dump writes back, the type summaries shown in comments and docs, and a
 * small string builder. iniparser's own getters are never used: they read "042" as octal 34,
 * "abc" as 0 and "12x" as 12. Everything here is pure (no I/O, no globals); messages are
 * composed by the caller (config.c), which adds the file, section and key.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* strdup, strcasecmp when built outside CMake (fuzzing) */
#endif
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config/config_internal.h"
#include "rdml/strbuf.h"

/* ---- scalars ---- */

static int is_space(char c) { return isspace((unsigned char)c) != 0; }

/* Copy of s without leading/trailing whitespace, into buf (NULL if it does not fit). */
static const char *trim_into(const char *s, char *buf, size_t n) {
    while (*s && is_space(*s)) s++;
    size_t len = strlen(s);
    while (len && is_space(s[len - 1])) len--;
    if (len + 1 > n) return NULL;
    memcpy(buf, s, len);
    buf[len] = '\0';
    return buf;
}

int rdml_config_parse_int(const char *s, int64_t *out) {
    const char *p = s;
    int neg = 0;
    if (*p == '+' || *p == '-') neg = *p++ == '-';
    if (!isdigit((unsigned char)*p)) return 1;
    /* Accumulate as a negative number so INT64_MIN is representable. */
    int64_t v = 0;
    int overflow = 0;
    for (; isdigit((unsigned char)*p); p++) {
        int d = *p - '0';
        if (v < (INT64_MIN + d) / 10) overflow = 1;
        else v = v * 10 - d;
    }
    if (*p) return 1;
    if (overflow) return 2;
    if (!neg) {
        if (v == INT64_MIN) return 2;
        v = -v;
    }
    *out = v;
    return 0;
}

int rdml_config_parse_real(const char *s, double *out) {
    if (!*s || is_space(*s)) return 1;
    /* strtod also takes hex floats, "inf" and "nan": only plain decimal notation is allowed
     * here, so the text must be digits, sign, '.', and an exponent. */
    for (const char *p = s; *p; p++)
        if (!isdigit((unsigned char)*p) && !strchr("+-.eE", *p)) return 1;
    errno = 0;
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end) return 1;
    if (!isfinite(v)) return 2;
    *out = v;
    return 0;
}

int rdml_config_parse_bool(const char *s, int *out) {
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0) return *out = 1, 0;
        if (strcasecmp(s, no[i]) == 0) return *out = 0, 0;
    }
    return 1;
}

void rdml_config_format_number(double x, char *buf, size_t n) {
    if (x == floor(x) && fabs(x) < 1e17) snprintf(buf, n, "%.0f", x);
    else snprintf(buf, n, "%g", x);
}

/* ---- descriptions ---- */

static int has_range(const rdml_cfg_key *k) { return k->min <= k->max; }

/* " from 1 to 8", " >= 0", " <= 5" or "" */
static void range_phrase(const rdml_cfg_key *k, const char *from, char *buf, size_t n) {
    char lo[64], hi[64];
    buf[0] = '\0';
    if (!has_range(k)) return;
    rdml_config_format_number(k->min, lo, sizeof lo);
    rdml_config_format_number(k->max, hi, sizeof hi);
    if (isinf(k->max) && isinf(k->min)) return;
    if (isinf(k->max)) snprintf(buf, n, " >= %s", lo);
    else if (isinf(k->min)) snprintf(buf, n, " <= %s", hi);
    else snprintf(buf, n, "%s%s to %s", from, lo, hi);
}

/* "quiet|error|warn" -> "quiet, error, warn" */
static void choices_list(const char *choices, char *buf, size_t n) {
    size_t j = 0;
    for (const char *p = choices; *p && j + 3 < n; p++) {
        if (*p == '|') {
            buf[j++] = ',';
            buf[j++] = ' ';
        } else {
            buf[j++] = *p;
        }
    }
    buf[j] = '\0';
}

void rdml_config_describe_type(const rdml_cfg_key *k, char *buf, size_t n) {
    char r[160], c[512];
    switch (k->type) {
    case RDML_CFG_INT:
        range_phrase(k, " ", r, sizeof r);
        snprintf(buf, n, "integer%s%s", *r ? "," : "", r);
        break;
    case RDML_CFG_REAL:
        range_phrase(k, " ", r, sizeof r);
        snprintf(buf, n, "number%s%s", *r ? "," : "", r);
        break;
    case RDML_CFG_BOOL: snprintf(buf, n, "true or false"); break;
    case RDML_CFG_STRING: snprintf(buf, n, "text"); break;
    case RDML_CFG_PATH: snprintf(buf, n, "path"); break;
    case RDML_CFG_CHOICE:
        choices_list(k->choices ? k->choices : "", c, sizeof c);
        snprintf(buf, n, "one of %s", c);
        break;
    case RDML_CFG_LIST:
        if (k->choices) {
            choices_list(k->choices, c, sizeof c);
            range_phrase(k, " ", r, sizeof r);
            if (*r) snprintf(buf, n, "comma-separated list of %s or integers%s", c, r);
            else snprintf(buf, n, "comma-separated list of %s", c);
        } else {
            snprintf(buf, n, "comma-separated list");
        }
        break;
    case RDML_CFG_INT_LIST:
        range_phrase(k, " ", r, sizeof r);
        snprintf(buf, n, "comma-separated integers%s%s", *r ? ", each" : "", r);
        break;
    case RDML_CFG_REAL_LIST:
        range_phrase(k, " ", r, sizeof r);
        snprintf(buf, n, "comma-separated numbers%s%s", *r ? ", each" : "", r);
        break;
    default: snprintf(buf, n, "unknown type"); break;
    }
}

/* The help's first sentence (up to ". " or the end), for hints in error messages. */
static void help_gist(const rdml_cfg_key *k, char *buf, size_t n) {
    const char *h = k->help ? k->help : "";
    const char *stop = strstr(h, ". ");
    size_t len = stop ? (size_t)(stop - h) : strlen(h);
    if (len && h[len - 1] == '.') len--;
    if (len + 1 > n) len = n - 1;
    memcpy(buf, h, len);
    buf[len] = '\0';
}

/* "expected a whole number >= 0; keep the first N images ..." (callers add the parentheses) */
static void expected_hint(const rdml_cfg_key *k, char *buf, size_t n) {
    char r[160], gist[600], what[700];
    help_gist(k, gist, sizeof gist);
    switch (k->type) {
    case RDML_CFG_INT:
    case RDML_CFG_INT_LIST:
        range_phrase(k, " from ", r, sizeof r);
        snprintf(what, sizeof what, "%s%s", k->type == RDML_CFG_INT ? "a whole number" :
                 "comma-separated whole numbers, each", r);
        break;
    case RDML_CFG_REAL:
    case RDML_CFG_REAL_LIST:
        range_phrase(k, " from ", r, sizeof r);
        snprintf(what, sizeof what, "%s%s%s%s", k->type == RDML_CFG_REAL ? "a decimal number" :
                 "comma-separated decimal numbers, each", r,
                 k->def ? ", e.g. " : "", k->def ? k->def : "");
        break;
    default: rdml_config_describe_type(k, what, sizeof what); break;
    }
    snprintf(buf, n, "expected %s%s%s", what, *gist ? "; " : "", gist);
}

/* ---- INI representability ---- */

int rdml_config_ini_quote(const char *v, char *quote_char) {
    size_t len = strlen(v);
    *quote_char = 0;
    if (len > RDML_CFG_MAX_VALUE) return 0;
    for (const char *p = v; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) return 0;
    int need = len == 0 || strpbrk(v, ";#") || is_space(v[0]) || is_space(v[len - 1]) ||
               v[0] == '"' || v[0] == '\'' || v[len - 1] == '\\';
    if (!need) return 1;
    if (!strchr(v, '"')) *quote_char = '"';
    else if (!strchr(v, '\'')) *quote_char = '\'';
    else return 0;
    return 1;
}

/* ---- the value check ---- */

static int range_message(const rdml_cfg_key *k, int below, const char *item, char *why,
                         size_t whylen) {
    char lo[64], hi[64], gist[600], r[160];
    rdml_config_format_number(k->min, lo, sizeof lo);
    rdml_config_format_number(k->max, hi, sizeof hi);
    range_phrase(k, "", r, sizeof r);
    help_gist(k, gist, sizeof gist);
    snprintf(why, whylen, "%s%s %s (allowed:%s%s; %s)", item ? item : "",
             below ? "below the minimum" : "above the maximum", below ? lo : hi,
             r[0] == ' ' ? "" : " ", r, gist);
    return 1;
}

static int range_error(const rdml_cfg_key *k, double v, const char *item, char *why,
                       size_t whylen) {
    if (!has_range(k) || (v >= k->min && v <= k->max)) return 0;
    return range_message(k, v < k->min, item, why, whylen);
}

/* Integers are compared exactly: as doubles, 2^53 + 1 would pass a maximum of 2^53. */
static int int_range_error(const rdml_cfg_key *k, int64_t v, const char *item, char *why,
                           size_t whylen) {
    if (!has_range(k)) return 0;
    int below = 0, above = 0;
    if (k->min > 9.2e18) below = 1;
    else if (k->min >= -9.2e18) below = v < (int64_t)ceil(k->min);
    if (k->max < -9.2e18) above = 1;
    else if (k->max <= 9.2e18) above = v > (int64_t)floor(k->max);
    if (!below && !above) return 0;
    return range_message(k, below, item, why, whylen);
}


static int out_canon(char **canon, const char *s) {
    *canon = strdup(s);
    return *canon ? RDML_CFGV_OK : RDML_CFGV_NOMEM;
}

/* Match `s` case-insensitively against "a|b|c"; writes the canonical spelling. */
static int match_choice(const char *choices, const char *s, char *canon, size_t n) {
    const char *p = choices;
    size_t ls = strlen(s);
    while (p && *p) {
        const char *bar = strchr(p, '|');
        size_t lc = bar ? (size_t)(bar - p) : strlen(p);
        if (lc == ls && strncasecmp(p, s, lc) == 0 && lc < n) {
            memcpy(canon, p, lc);
            canon[lc] = '\0';
            return 1;
        }
        p = bar ? bar + 1 : NULL;
    }
    return 0;
}

/* "did you mean "x"?; " when a choice is near s, else "" */
static void nearest_choice(const char *choices, const char *s, char *buf, size_t n) {
    const char *cand[64];
    char store[1024];
    int nc = 0;
    buf[0] = '\0';
    if (rdml_strlcpy(store, choices, sizeof store) >= sizeof store) return;
    for (char *tok = store, *bar; tok && nc < 64; tok = bar) {
        bar = strchr(tok, '|');
        if (bar) *bar++ = '\0';
        cand[nc++] = tok;
    }
    int i = rdml_nearest(s, cand, nc);
    if (i >= 0) snprintf(buf, n, "did you mean \"%s\"?; ", cand[i]);
}

static int check_scalar(const rdml_cfg_key *k, const char *raw, char **canon, char *why,
                        size_t whylen) {
    char t[RDML_CFG_MAX_VALUE + 1], hint[1024], c[256];
    const char *s = trim_into(raw, t, sizeof t);
    expected_hint(k, hint, sizeof hint);
    if (!s) {
        snprintf(why, whylen, "too long (%s)", hint);
        return RDML_CFGV_SYNTAX;
    }
    switch (k->type) {
    case RDML_CFG_INT: {
        int64_t v;
        int rc = rdml_config_parse_int(s, &v);
        int neg = s[0] == '-';
        if (rc == 2 && has_range(k) && (neg ? isfinite(k->min) : isfinite(k->max))) {
            range_message(k, neg, NULL, why, whylen); /* "above the maximum 8 (...)" */
            return RDML_CFGV_RANGE;
        }
        if (rc == 2) {
            /* Beyond int64 and no finite bound on that side (>= 0): out of range all the
             * same, as a number it would pass INFINITY <= INFINITY. */
            char r[160], gist[600];
            range_phrase(k, "", r, sizeof r);
            help_gist(k, gist, sizeof gist);
            snprintf(why, whylen, "out of range for [%s] %s: %s is too %s (allowed:%s%s; %s)",
                     k->section, k->key, s, s[0] == '-' ? "small" : "large", *r && r[0] != ' ' ? " " : "",
                     *r ? r : " -9223372036854775808 to 9223372036854775807", gist);
            return RDML_CFGV_RANGE;
        }
        if (rc) {
            snprintf(why, whylen, "not an integer (%s)", hint);
            return RDML_CFGV_SYNTAX;
        }
        if (int_range_error(k, v, NULL, why, whylen)) return RDML_CFGV_RANGE;
        snprintf(c, sizeof c, "%" PRId64, v);
        return out_canon(canon, c);
    }
    case RDML_CFG_REAL: {
        double v;
        int rc = rdml_config_parse_real(s, &v);
        if (rc) {
            snprintf(why, whylen, "%s (%s)", rc == 2 ? "not a finite number" : "not a number",
                     hint);
            return RDML_CFGV_SYNTAX;
        }
        if (range_error(k, v, NULL, why, whylen)) return RDML_CFGV_RANGE;
        return out_canon(canon, s);
    }
    case RDML_CFG_BOOL: {
        int v;
        if (rdml_config_parse_bool(s, &v)) {
            snprintf(why, whylen, "not a boolean (expected true or false; yes/no, on/off and "
                                  "1/0 also work)");
            return RDML_CFGV_SYNTAX;
        }
        return out_canon(canon, v ? "true" : "false");
    }
    case RDML_CFG_CHOICE: {
        const char *ch = k->choices ? k->choices : "";
        if (match_choice(ch, s, c, sizeof c)) return out_canon(canon, c);
        char mean[400], list[512];
        if (rdml_config_spelling_hint(k, s, mean, sizeof mean - 2)) strcat(mean, "; ");
        else nearest_choice(ch, s, mean, sizeof mean);
        choices_list(ch, list, sizeof list);
        snprintf(why, whylen, "not a valid choice (%schoices: %s)", mean, list);
        return RDML_CFGV_SYNTAX;
    }
    default: break;
    }
    snprintf(why, whylen, "internal error: not a scalar type");
    return RDML_CFGV_SYNTAX;
}

static int check_text(const rdml_cfg_key *k, const char *raw, char **canon, char *why,
                      size_t whylen) {
    char q;
    if (!rdml_config_ini_quote(raw, &q)) {
        if (strlen(raw) > RDML_CFG_MAX_VALUE)
            snprintf(why, whylen, "too long (at most %d characters)", RDML_CFG_MAX_VALUE);
        else if (strchr(raw, '"') && strchr(raw, '\''))
            snprintf(why, whylen, "holds both quote characters ' and \" and a ; # or edge "
                                  "space, so it cannot be written back to an INI file");
        else
            snprintf(why, whylen, "contains a control character (tab, newline, ...); write "
                                  "the %s on one line without tabs",
                     k->type == RDML_CFG_PATH ? "path" : "text");
        return RDML_CFGV_SYNTAX;
    }
    if (k->type == RDML_CFG_STRING || k->type == RDML_CFG_PATH) { /* keys with a format of
                                                                     their own (e.g. "2x2") */
        int ne;
        const rdml_cfg_extra *ex = rdml_config_extra_checks(&ne);
        char *one = (char *)raw;
        for (int e = 0; e < ne; e++)
            if (strcmp(ex[e].section, k->section) == 0 && strcmp(ex[e].key, k->key) == 0 &&
                ex[e].check(&one, 1, why, whylen))
                return RDML_CFGV_SYNTAX;
    }
    return out_canon(canon, raw);
}

static int check_list(const rdml_cfg_key *k, const char *raw, char **canon, char *why,
                      size_t whylen) {
    char hint[1024], item[RDML_CFG_MAX_VALUE + 1], label[96], c[256], num[64], q;
    if (!rdml_config_ini_quote(raw, &q)) return check_text(k, raw, canon, why, whylen);
    expected_hint(k, hint, sizeof hint);
    size_t offs[RDML_CFG_MAX_VALUE / 2 + 2]; /* item starts in the canonical text */
    int n = 0, rc = RDML_CFGV_OK;
    rdml_strbuf out = {0};
    const char *p = raw;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char tb[RDML_CFG_MAX_VALUE + 1];
        memcpy(item, p, len); /* len <= RDML_CFG_MAX_VALUE, checked by ini_quote */
        item[len] = '\0';
        const char *it = trim_into(item, tb, sizeof tb);
        const char *canon_item = it;
        snprintf(label, sizeof label, "item %d = %s: ", n + 1, it);
        if (!*it) {
            if (!comma && n == 0) snprintf(why, whylen, "empty list (%s)", hint);
            else snprintf(why, whylen, "item %d is empty (write items separated by single "
                                       "commas; %s)", n + 1, hint);
            rc = RDML_CFGV_SYNTAX;
        } else if (k->type == RDML_CFG_INT_LIST) {
            int64_t v;
            int prc = rdml_config_parse_int(it, &v);
            if (prc) {
                snprintf(why, whylen, "item %d \"%s\" is %s (%s)", n + 1, it,
                         prc == 2 ? "out of range (beyond a 64-bit integer)" :
                         "not an integer", hint);
                rc = prc == 2 ? RDML_CFGV_RANGE : RDML_CFGV_SYNTAX;
            } else if (int_range_error(k, v, label, why, whylen)) {
                rc = RDML_CFGV_RANGE;
            } else {
                snprintf(num, sizeof num, "%" PRId64, v);
                canon_item = num;
            }
        } else if (k->type == RDML_CFG_REAL_LIST) {
            double v;
            int prc = rdml_config_parse_real(it, &v);
            if (prc) {
                snprintf(why, whylen, "item %d \"%s\" is %s (%s)", n + 1, it,
                         prc == 2 ? "not a finite number" : "not a number", hint);
                rc = RDML_CFGV_SYNTAX;
            } else if (range_error(k, v, label, why, whylen)) {
                rc = RDML_CFGV_RANGE;
            }
        } else if (k->choices) {
            int64_t v;
            if (match_choice(k->choices, it, c, sizeof c)) {
                canon_item = c;
            } else if (has_range(k) && rdml_config_parse_int(it, &v) == 0) {
                if (int_range_error(k, v, label, why, whylen)) {
                    rc = RDML_CFGV_RANGE;
                } else {
                    snprintf(num, sizeof num, "%" PRId64, v);
                    canon_item = num;
                }
            } else {
                char mean[400];
                if (rdml_config_spelling_hint(k, it, mean, sizeof mean - 2)) strcat(mean, "; ");
                else nearest_choice(k->choices, it, mean, sizeof mean);
                snprintf(why, whylen, "item %d \"%s\" is not allowed (%s%s)", n + 1, it, mean,
                         hint);
                rc = RDML_CFGV_SYNTAX;
            }
        }
        if (rc != RDML_CFGV_OK) break;
        offs[n] = out.len + (n ? 1 : 0);
        rdml_strbuf_printf(&out, "%s%s", n ? "," : "", canon_item);
        n++;
        if (out.failed) {
            rc = RDML_CFGV_NOMEM;
            break;
        }
        if (!comma) break;
        p = comma + 1;
    }
    char *joined = rdml_strbuf_take(&out);
    if (rc == RDML_CFGV_OK && !joined) rc = RDML_CFGV_NOMEM;
    if (rc == RDML_CFGV_OK && k->type == RDML_CFG_LIST) {
        /* Item pointers into a split copy of the canonical text, for the duplicate check and
         * the key's extra check. */
        char *copy = strdup(joined);
        char *items[RDML_CFG_MAX_VALUE / 2 + 2];
        if (!copy) rc = RDML_CFGV_NOMEM;
        for (int i = 0; copy && i < n; i++) {
            items[i] = copy + offs[i];
            if (offs[i]) copy[offs[i] - 1] = '\0';
        }
        /* Distinct items only: a repeated subject or ROI is almost always a slip. */
        for (int i = 0; copy && i < n && rc == RDML_CFGV_OK; i++) {
            for (int j = 0; j < i; j++) {
                if (strcmp(items[i], items[j]) == 0) {
                    snprintf(why, whylen, "item \"%s\" is listed twice (items %d and %d; list "
                                          "each once)", items[i], j + 1, i + 1);
                    rc = RDML_CFGV_SYNTAX;
                    break;
                }
            }
        }
        int ne;
        const rdml_cfg_extra *ex = rdml_config_extra_checks(&ne);
        for (int e = 0; copy && e < ne && rc == RDML_CFGV_OK; e++)
            if (strcmp(ex[e].section, k->section) == 0 && strcmp(ex[e].key, k->key) == 0 &&
                ex[e].check(items, n, why, whylen))
                rc = RDML_CFGV_SYNTAX;
        free(copy);
    }
    if (rc != RDML_CFGV_OK) {
        free(joined);
        return rc;
    }
    *canon = joined;
    return RDML_CFGV_OK;
}

int rdml_config_value_check(const rdml_cfg_key *k, const char *raw, char **canon, char *why,
                            size_t whylen) {
    *canon = NULL;
    why[0] = '\0';
    switch (k->type) {
    case RDML_CFG_INT:
    case RDML_CFG_REAL:
    case RDML_CFG_BOOL:
    case RDML_CFG_CHOICE: return check_scalar(k, raw, canon, why, whylen);
    case RDML_CFG_STRING:
    case RDML_CFG_PATH: return check_text(k, raw, canon, why, whylen);
    case RDML_CFG_LIST:
    case RDML_CFG_INT_LIST:
    case RDML_CFG_REAL_LIST: return check_list(k, raw, canon, why, whylen);
    }
    snprintf(why, whylen, "internal error: unknown type %d", (int)k->type);
    return RDML_CFGV_SYNTAX;
}
