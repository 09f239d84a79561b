/* The configuration object: create (every key at its validated default), merge an INI file
 * or INI text, apply --set overrides, check required keys, typed getters. iniparser 4.1 only
 * tokenises (it lowercases section and key names, strips quotes and inline comments); every
 * value is validated strictly by value.c against the schema, into a scratch copy, so a
 * failed merge leaves the config untouched. Before validating, a light scan of the text
 * (mirroring iniparser's line rules) finds keys given twice, which iniparser would silently
 * resolve as last-wins. [run] include names building blocks read first; a relative file name
 * not found where it is looked for first is looked up in the data folder (configs/ of the
 * source tree or of an installed share/rdmlearn). Left out: variable interpolation and writing INI files
 * other than through rdml_config_dump (dump.c). Not thread-safe while loading: iniparser's
 * error callback is process-wide, so its messages are caught in a thread-local buffer.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* mkstemp, strdup when built outside CMake (fuzzing) */
#endif
#include <ctype.h>
#include <errno.h>
#include <iniparser.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config_internal.h"
#include "rdml/strbuf.h"

struct rdml_config {
    const rdml_cfg_key *keys; /* the schema (static or the caller's table) */
    int nkeys;
    char **val;               /* nkeys canonical values; NULL = required and not set */
    unsigned char *set;       /* nkeys flags: set by a file or --set */
    char sources[512];        /* files merged so far, for the required-keys message */
};

/* Longest value or line echoed back in a message; the rest is elided. */
#define SHOW_MAX 160

/* ---- lookup helpers ---- */

static int find_key(const rdml_config *cfg, const char *sec, const char *key) {
    for (int i = 0; i < cfg->nkeys; i++)
        if (strcmp(cfg->keys[i].section, sec) == 0 && strcmp(cfg->keys[i].key, key) == 0)
            return i;
    return -1;
}

/* Distinct section names in schema order; returns the count (at most max). */
static int list_sections(const rdml_config *cfg, const char **out, int max) {
    int n = 0;
    for (int i = 0; i < cfg->nkeys && n < max; i++)
        if (n == 0 || strcmp(out[n - 1], cfg->keys[i].section) != 0)
            out[n++] = cfg->keys[i].section;
    return n;
}

static int section_known(const rdml_config *cfg, const char *sec) {
    for (int i = 0; i < cfg->nkeys; i++)
        if (strcmp(cfg->keys[i].section, sec) == 0) return 1;
    return 0;
}

/* s for messages: control characters escaped (\t, \x01) and cut after SHOW_MAX characters.
 * buf must hold SHOW_BUF bytes. */
#define SHOW_BUF (SHOW_MAX * 4 + 8)
static const char *shown(const char *s, char *buf, size_t n) {
    size_t j = 0, i = 0;
    for (; s[i] && i < SHOW_MAX && j + 8 < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\t') j += (size_t)snprintf(buf + j, n - j, "\\t");
        else if (c == '\n') j += (size_t)snprintf(buf + j, n - j, "\\n");
        else if (c < 0x20 || c == 0x7f) j += (size_t)snprintf(buf + j, n - j, "\\x%02x", c);
        else buf[j++] = (char)c;
    }
    if (s[i]) j += (size_t)snprintf(buf + j, n - j, "...");
    buf[j] = '\0';
    return buf;
}

static int fail_unknown_section(rdml_ctx *ctx, const rdml_config *cfg, const char *where,
                                const char *sec) {
    const char *secs[64] = {0};
    int ns = list_sections(cfg, secs, 64);
    char mean[128] = "", valid[1024] = "", b[SHOW_BUF];
    int near = rdml_nearest(sec, secs, ns);
    if (near >= 0) snprintf(mean, sizeof mean, "did you mean [%s]?; ", secs[near]);
    for (int i = 0; i < ns; i++) {
        size_t l = strlen(valid);
        snprintf(valid + l, sizeof valid - l, "%s[%s]", i ? ", " : "", secs[i]);
    }
    return RDML_FAIL(ctx, RDML_ECONFIG, "%s: unknown section [%s] (%svalid sections: %s)", where,
                     shown(sec, b, sizeof b), mean, valid);
}

static int fail_unknown_key(rdml_ctx *ctx, const rdml_config *cfg, const char *where,
                            const char *sec, const char *key) {
    const char *cand[256] = {0};
    int nc = 0;
    char valid[2048] = "", mean[256] = "", other[256] = "", b[SHOW_BUF];
    for (int i = 0; i < cfg->nkeys && nc < 256; i++) {
        if (strcmp(cfg->keys[i].section, sec) != 0) continue;
        size_t l = strlen(valid);
        snprintf(valid + l, sizeof valid - l, "%s%s", nc ? ", " : "", cfg->keys[i].key);
        cand[nc++] = cfg->keys[i].key;
    }
    /* The right key in the wrong section is a common slip ([data] noise for [synth] noise);
     * then a look-alike key of this section would only mislead. */
    for (int i = 0; i < cfg->nkeys; i++) {
        if (strcmp(cfg->keys[i].key, key) == 0 && strcmp(cfg->keys[i].section, sec) != 0) {
            snprintf(other, sizeof other, "%s belongs in [%s]; ", key, cfg->keys[i].section);
            break;
        }
    }
    int near = other[0] ? -1 : rdml_nearest(key, cand, nc);
    if (near >= 0) snprintf(mean, sizeof mean, "did you mean \"%s\"?; ", cand[near]);
    return RDML_FAIL(ctx, RDML_ECONFIG, "%s: unknown key [%s] %s (%s%svalid keys in [%s]: %s)",
                     where, sec, shown(key, b, sizeof b), mean, other, sec, valid);
}

/* Validate raw for key i into *canon; on failure the message starts with `head`, which is
 * either "file: [sec] key" (the value is appended) or "--set a.b=c" (it is not). */
static int check_into(rdml_ctx *ctx, const rdml_config *cfg, int i, const char *raw,
                      const char *file, const char *set_arg, char **canon) {
    char why[2048], b[SHOW_BUF];
    const rdml_cfg_key *k = &cfg->keys[i];
    int rc = rdml_config_value_check(k, raw, canon, why, sizeof why);
    if (rc == RDML_CFGV_OK) return RDML_OK;
    if (rc == RDML_CFGV_NOMEM)
        return RDML_FAIL(ctx, RDML_ENOMEM, "out of memory checking [%s] %s", k->section, k->key);
    if (set_arg) return RDML_FAIL(ctx, RDML_ECONFIG, "--set %s: %s", set_arg, why);
    if (rc == RDML_CFGV_RANGE)
        return RDML_FAIL(ctx, RDML_ECONFIG, "%s: [%s] %s = %s: %s", file, k->section, k->key,
                         shown(raw, b, sizeof b), why);
    return RDML_FAIL(ctx, RDML_ECONFIG, "%s: [%s] %s = \"%s\": %s", file, k->section, k->key,
                     shown(raw, b, sizeof b), why);
}

/* ---- create / destroy ---- */

/* Schema names are what iniparser produces after lowercasing, and must not hold the ':' it
 * joins section and key with, nor the '.' of --set section.key. */
static int name_ok(const char *s) {
    if (!s || !*s) return 0;
    for (; *s; s++)
        if (!islower((unsigned char)*s) && !isdigit((unsigned char)*s) && *s != '_') return 0;
    return 1;
}

int rdml_config_create_with_schema(rdml_ctx *ctx, const rdml_cfg_key *keys, int nkeys,
                                   rdml_config **out) {
    *out = NULL;
    rdml_config *cfg = rdml_calloc(ctx, 1, sizeof *cfg, "config");
    if (!cfg) return ctx->code;
    cfg->keys = keys;
    cfg->nkeys = nkeys;
    cfg->val = rdml_calloc(ctx, (size_t)(nkeys ? nkeys : 1), sizeof *cfg->val, "config values");
    cfg->set = rdml_calloc(ctx, (size_t)(nkeys ? nkeys : 1), 1, "config flags");
    int rc = (cfg->val && cfg->set) ? RDML_OK : ctx->code;
    for (int i = 0; i < nkeys && rc == RDML_OK; i++) {
        const rdml_cfg_key *k = &keys[i];
        if (!name_ok(k->section) || !name_ok(k->key))
            rc = RDML_FAIL(ctx, RDML_EINTERNAL, "config schema: [%s] %s is not a lowercase "
                           "name of letters, digits and '_'", k->section, k->key);
        else if (find_key(cfg, k->section, k->key) != i)
            rc = RDML_FAIL(ctx, RDML_EINTERNAL, "config schema lists [%s] %s twice", k->section,
                           k->key);
        if (rc == RDML_OK && k->def)
            rc = check_into(ctx, cfg, i, k->def, "config schema default", NULL, &cfg->val[i]);
    }
    /* Keys must be grouped by section: a section may not reappear after another one. */
    for (int i = 1; i < nkeys && rc == RDML_OK; i++) {
        if (strcmp(keys[i - 1].section, keys[i].section) == 0) continue;
        for (int j = 0; j < i - 1; j++)
            if (strcmp(keys[j].section, keys[i].section) == 0)
                rc = RDML_FAIL(ctx, RDML_EINTERNAL, "config schema: section [%s] is split "
                               "(keep its keys together)", keys[i].section);
    }
    if (rc != RDML_OK) {
        if (rc != RDML_EINTERNAL && rc != RDML_ENOMEM)
            ctx->code = rc = RDML_EINTERNAL; /* a bad default is a bug, not a user error */
        rdml_config_destroy(&cfg);
        return rc;
    }
    *out = cfg;
    return RDML_OK;
}

int rdml_config_create(rdml_ctx *ctx, rdml_config **out) {
    int n;
    const rdml_cfg_key *keys = rdml_config_schema(&n);
    return rdml_config_create_with_schema(ctx, keys, n, out);
}

void rdml_config_destroy(rdml_config **cfg) {
    if (!cfg || !*cfg) return;
    rdml_config *c = *cfg;
    if (c->val)
        for (int i = 0; i < c->nkeys; i++) free(c->val[i]);
    free(c->val);
    free(c->set);
    free(c);
    *cfg = NULL;
}

/* ---- iniparser error capture ---- */

/* iniparser 4.1 reports syntax errors through one process-wide callback without a user
 * pointer; the first message of the current load is kept here (per thread). */
static _Thread_local char ini_err_first[1400];
static _Thread_local int ini_err_count;

static int ini_errback(const char *fmt, ...) {
    if (ini_err_count++ == 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(ini_err_first, sizeof ini_err_first, fmt, ap);
        va_end(ap);
    }
    return 0;
}

static dictionary *ini_load(const char *path) {
    ini_err_first[0] = '\0';
    ini_err_count = 0;
    iniparser_set_error_callback(ini_errback);
    dictionary *d = iniparser_load(path);
    iniparser_set_error_callback(NULL); /* back to iniparser's default */
    return d;
}

/* Turn iniparser's message ("iniparser: syntax error in F (L):\n-> LINE\n") into ours. */
static int fail_ini(rdml_ctx *ctx, const char *what) {
    const char *m = ini_err_first;
    const char *open = strstr(m, " (");
    int line = 0;
    if (open) line = atoi(open + 2);
    const char *arrow = strstr(m, "-> ");
    char raw[sizeof ini_err_first] = "", text[SHOW_BUF];
    if (arrow) {
        arrow += 3;
        size_t l = strcspn(arrow, "\n");
        memcpy(raw, arrow, l);
        raw[l] = '\0';
    }
    shown(raw, text, sizeof text);
    char more[64] = "";
    if (ini_err_count > 1)
        snprintf(more, sizeof more, "; %d more bad lines follow", ini_err_count - 1);
    if (strstr(m, "syntax error") && line > 0)
        return RDML_FAIL(ctx, RDML_ECONFIG, "%s:%d: cannot parse \"%s\" (expected key = value, "
                         "a [section] header or a ; comment%s)", what, line, text, more);
    if (strstr(m, "too long") && line > 0)
        return RDML_FAIL(ctx, RDML_ECONFIG, "%s:%d: line too long (iniparser reads at most 1023 "
                         "characters per line; shorten the value)", what, line);
    size_t l = strcspn(m, "\n");
    return RDML_FAIL(ctx, RDML_ECONFIG, "%s: iniparser could not read it: %.*s", what, (int)l,
                     m[0] ? m : "unknown error");
}

/* ---- duplicate keys ---- */

static char *strip(char *s) {
    while (*s && isspace((unsigned char)*s)) s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1])) s[--n] = '\0';
    return s;
}

static void lower(char *s) {
    for (; *s; s++) *s = (char)tolower((unsigned char)*s);
}

/* Is the physical line s (n bytes) a "[section]" header or a "key = value" line of a schema
 * key (in any section)? Such a line after a '\\' continuation is swallowed into the value. */
static int looks_like_entry(const rdml_config *cfg, const char *s, size_t n) {
    while (n && isspace((unsigned char)*s)) s++, n--;
    while (n && isspace((unsigned char)s[n - 1])) n--;
    if (n >= 2 && s[0] == '[' && s[n - 1] == ']') return 1;
    const char *eq = memchr(s, '=', n);
    if (!eq || eq == s) return 0;
    char key[128];
    size_t kl = (size_t)(eq - s);
    while (kl && isspace((unsigned char)s[kl - 1])) kl--;
    if (kl == 0 || kl >= sizeof key) return 0;
    memcpy(key, s, kl);
    key[kl] = '\0';
    lower(key);
    for (int i = 0; i < cfg->nkeys; i++)
        if (strcmp(cfg->keys[i].key, key) == 0) return 1;
    return 0;
}

/* Scan `text` with iniparser 4.1's line rules for what iniparser accepts silently but gets
 * wrong: a schema key given twice (iniparser keeps the last), a '\\' continuation that
 * swallows the next key or section line or ends the file (iniparser drops that line), and a
 * value opening a quote it never closes (iniparser keeps the text after the quote). Rules:
 * trailing '\\' joins the next line; "[name]" switches section (up to the first ']'; "[]"
 * keeps the current one); a line with '=' not in first position is a key line. Names are
 * lowercased as iniparser does. Unknown names are left to the dictionary pass. Runs only after
 * iniparser accepted the text, so every line is well formed. */
static int scan_duplicates(rdml_ctx *ctx, const rdml_config *cfg, const char *what,
                           const char *text) {
    int *first = calloc((size_t)(cfg->nkeys ? cfg->nkeys : 1), sizeof *first);
    char *line = malloc(strlen(text) + 1);
    char section[1100] = "";
    if (!first || !line) {
        free(first);
        free(line);
        return RDML_FAIL(ctx, RDML_ENOMEM, "out of memory reading %s", what);
    }
    int rc = RDML_OK, lineno = 0, start_line = 0, cont = 0;
    size_t have = 0; /* bytes of a continued logical line collected so far */
    const char *p = text;
    char b[SHOW_BUF];
    while (*p && rc == RDML_OK) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        lineno++;
        if (!cont) start_line = lineno;
        else if (looks_like_entry(cfg, p, len)) {
            char shown_line[SHOW_MAX + 1];
            size_t sl = len < SHOW_MAX ? len : SHOW_MAX;
            memcpy(shown_line, p, sl);
            shown_line[sl] = '\0';
            rc = RDML_FAIL(ctx, RDML_ECONFIG, "%s:%d: line %d ends in '\\', which continues its "
                           "value on the next line, so line %d (\"%s\") would be read as part "
                           "of that value and its setting lost (remove the '\\' at the end of "
                           "line %d)", what, lineno - 1, lineno - 1, lineno,
                           shown(strip(shown_line), b, sizeof b), lineno - 1);
            break;
        }
        memcpy(line + have, p, len);
        size_t end = have + len;
        line[end] = '\0';
        p = nl ? nl + 1 : p + len;
        while (end > 0 && isspace((unsigned char)line[end - 1])) line[--end] = '\0';
        if (end > 0 && line[end - 1] == '\\') {
            have = end - 1;
            cont = 1;
            continue;
        }
        have = 0;
        cont = 0;
        char *s = strip(line);
        if (!*s || *s == '#' || *s == ';') continue;
        size_t sl = strlen(s);
        if (s[0] == '[' && s[sl - 1] == ']') {
            if (s[1] != ']') {
                char *close = strchr(s + 1, ']');
                *close = '\0';
                char *name = strip(s + 1);
                lower(name);
                rdml_strlcpy(section, name, sizeof section);
            }
            continue;
        }
        char *eq = strchr(s, '=');
        if (!eq || eq == s) continue;
        *eq = '\0';
        char *key = strip(s), *val = strip(eq + 1);
        lower(key);
        if ((val[0] == '"' || val[0] == '\'') && !strchr(val + 1, val[0])) {
            rc = RDML_FAIL(ctx, RDML_ECONFIG, "%s:%d: [%s] %s: the value opens a quote (%c) that "
                           "is not closed (close it on the same line: %s = %c...%c)", what,
                           start_line, section, shown(key, b, sizeof b), val[0], key, val[0],
                           val[0]);
            break;
        }
        int i = find_key(cfg, section, key);
        if (i < 0) continue;
        if (first[i])
            rc = RDML_FAIL(ctx, RDML_ECONFIG, "%s: key [%s] %s is given twice, on lines %d and "
                           "%d (keep one of them; to override a file, use --set %s.%s=VALUE)",
                           what, section, key, first[i], start_line, section, key);
        first[i] = start_line;
    }
    if (rc == RDML_OK && cont) {
        line[have] = '\0';
        rc = RDML_FAIL(ctx, RDML_ECONFIG, "%s:%d: the last line ends in '\\' (a continuation) "
                       "but no line follows, so \"%s\" would be dropped (remove the '\\')",
                       what, lineno, shown(strip(line), b, sizeof b));
    }
    free(first);
    free(line);
    return rc;
}

/* ---- merge ---- */

static void note_source(rdml_config *cfg, const char *what) {
    size_t l = strlen(cfg->sources);
    if (l + strlen(what) + 3 < sizeof cfg->sources)
        snprintf(cfg->sources + l, sizeof cfg->sources - l, "%s%s", l ? ", " : "", what);
}

/* Validate every entry of d into a scratch copy, then commit all of it or nothing. With
 * skipped (a stored configuration), unknown sections and keys and rejected values are
 * counted there and left out instead of failing. */
static int merge_dict(rdml_ctx *ctx, rdml_config *cfg, const char *what, const dictionary *d,
                      int *skipped) {
    char **nv = calloc((size_t)(cfg->nkeys ? cfg->nkeys : 1), sizeof *nv);
    if (!nv) return RDML_FAIL(ctx, RDML_ENOMEM, "out of memory reading %s", what);
    int rc = RDML_OK;
    char b[SHOW_BUF];
    for (ssize_t e = 0; e < d->size && rc == RDML_OK; e++) {
        const char *name = d->key[e];
        if (!name) continue;
        if (!d->val[e]) { /* a section header */
            if (!section_known(cfg, name) && !skipped)
                rc = fail_unknown_section(ctx, cfg, what, name);
            continue;
        }
        const char *colon = strchr(name, ':');
        char sec[1100];
        const char *key = colon ? colon + 1 : name;
        size_t sl = colon ? (size_t)(colon - name) : 0;
        if (sl >= sizeof sec) sl = sizeof sec - 1;
        memcpy(sec, name, sl);
        sec[sl] = '\0';
        if (!sec[0]) {
            char home[160] = "put it under its [section] header";
            for (int i = 0; i < cfg->nkeys; i++)
                if (strcmp(cfg->keys[i].key, key) == 0) {
                    snprintf(home, sizeof home, "put it under [%s]", cfg->keys[i].section);
                    break;
                }
            rc = RDML_FAIL(ctx, RDML_ECONFIG, "%s: key %s comes before any [section] header (%s)",
                           what, shown(key, b, sizeof b), home);
            break;
        }
        int i = section_known(cfg, sec) ? find_key(cfg, sec, key) : -1;
        if (i < 0 && skipped) {
            (*skipped)++;
            continue;
        }
        if (!section_known(cfg, sec)) {
            rc = fail_unknown_section(ctx, cfg, what, sec);
            break;
        }
        if (i < 0) {
            rc = fail_unknown_key(ctx, cfg, what, sec, key);
            break;
        }
        free(nv[i]);
        nv[i] = NULL;
        if (skipped) {
            char why[2048];
            int v = rdml_config_value_check(&cfg->keys[i], d->val[e], &nv[i], why, sizeof why);
            if (v == RDML_CFGV_NOMEM)
                rc = RDML_FAIL(ctx, RDML_ENOMEM, "out of memory reading %s", what);
            else if (v != RDML_CFGV_OK)
                (*skipped)++;
            continue;
        }
        rc = check_into(ctx, cfg, i, d->val[e], what, NULL, &nv[i]);
    }
    for (int i = 0; i < cfg->nkeys; i++) {
        if (!nv[i]) continue;
        if (rc == RDML_OK) {
            free(cfg->val[i]);
            cfg->val[i] = nv[i];
            cfg->set[i] = 1;
        } else {
            free(nv[i]);
        }
    }
    free(nv);
    if (rc == RDML_OK) note_source(cfg, what);
    return rc;
}

static int load_depth;

/* ---- where configuration files are ---- */

/* The data folder (holding configs/ and jobs/), or "" for none; process-wide, set once. */
static char data_dir[4096];

void rdml_config_set_datadir(const char *dir) {
    rdml_strlcpy(data_dir, dir ? dir : "", sizeof data_dir);
}

const char *rdml_config_datadir(void) {
    return data_dir[0] ? data_dir : NULL;
}

static int exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

int rdml_config_locate(const char *dir, const char *name, char *out, size_t len) {
    size_t dl = dir ? strlen(dir) : 0;
    if (name[0] == '/' || !dl) snprintf(out, len, "%s", name);
    else snprintf(out, len, "%s%s%s", dir, dir[dl - 1] == '/' ? "" : "/", name);
    if (!data_dir[0] || !name[0] || name[0] == '/' || exists(out)) return 0;
    const char *rest = name; /* "../configs/paper/svm.ini" -> "configs/paper/svm.ini" */
    for (;;) {
        if (strncmp(rest, "./", 2) == 0) rest += 2;
        else if (strncmp(rest, "../", 3) == 0) rest += 3;
        else if (rest[0] == '/') rest++;
        else break;
    }
    static const char *const under[] = {"", "configs/"};
    for (int i = 0; i < 2 && *rest; i++) {
        char cand[8400];
        snprintf(cand, sizeof cand, "%s/%s%s", data_dir, under[i], rest);
        if (exists(cand) && strlen(cand) < len) {
            snprintf(out, len, "%s", cand);
            return 1;
        }
    }
    return 0;
}

static int load_file(rdml_ctx *ctx, rdml_config *cfg, const char *path);

/* Load `name` as found by rdml_config_locate from `dir`; when it is nowhere, the message
 * says where it was looked for. */
static int load_located(rdml_ctx *ctx, rdml_config *cfg, const char *dir, const char *name,
                        int included) {
    char path[8300];
    if (rdml_config_locate(dir, name, path, sizeof path))
        rdml_debug(ctx, "config: %s is not in %s: reading %s", name,
                   dir && *dir ? dir : "the current folder", path);
    else if (data_dir[0] && name[0] && name[0] != '/' && !exists(path))
        return RDML_FAIL(ctx, RDML_EIO, "cannot open config file %s: %s (looked for %s %s, "
                         "then in %s and %s/configs; check the name)", path, strerror(ENOENT),
                         name, included ? "next to the file naming it" :
                         "in the current folder", data_dir, data_dir);
    return load_file(ctx, cfg, path);
}

/* [run] include = a.ini, b.ini: load those building blocks first (paths relative to the
 * including file's folder, then the data folder), so that the including file's own keys
 * override theirs. */
static int load_includes(rdml_ctx *ctx, rdml_config *cfg, const char *what, const char *path,
                         const dictionary *d) {
    const char *inc = iniparser_getstring((dictionary *)d, "run:include", NULL);
    if (!inc || !*inc) return RDML_OK;
    if (load_depth >= 8)
        return RDML_FAIL(ctx, RDML_ECONFIG, "%s: [run] include nests more than 8 files deep "
                         "(hint: does a file include itself?)", what);
    char dir[4096];
    rdml_strlcpy(dir, path, sizeof dir);
    char *slash = strrchr(dir, '/');
    if (slash) slash[1] = 0;
    else dir[0] = 0;
    char *list = strdup(inc);
    if (!list) return RDML_FAIL(ctx, RDML_ENOMEM, "out of memory reading %s", what);
    int rc = RDML_OK;
    for (char *save = NULL, *item = strtok_r(list, ",", &save); item && !rc;
         item = strtok_r(NULL, ",", &save)) {
        item = strip(item);
        if (!*item) continue;
        load_depth++;
        rc = load_located(ctx, cfg, dir, item, 1);
        load_depth--;
        if (rc && load_depth == 0) rdml_ctx_prefix(ctx, "%s: [run] include = %s", what, item);
    }
    free(list);
    return rc;
}

/* Parse `path` with iniparser (text is its content, for the duplicate scan) and merge. With
 * skipped: a stored configuration (rdml_config_from_stored): no includes, no duplicate scan,
 * lenient merge. */
static int load_parsed(rdml_ctx *ctx, rdml_config *cfg, const char *what, const char *path,
                       const char *text, int *skipped) {
    if (strncmp(text, "\xEF\xBB\xBF", 3) == 0) /* iniparser would call line 1 a syntax error */
        return RDML_FAIL(ctx, RDML_ECONFIG, "%s starts with a UTF-8 byte-order mark (save it as "
                         "UTF-8 without BOM, or plain ASCII)", what);
    dictionary *d = ini_load(path);
    if (!d) {
        if (ini_err_count == 0)
            return RDML_FAIL(ctx, RDML_EIO, "%s: iniparser could not read it", what);
        return fail_ini(ctx, what);
    }
    int rc = skipped ? RDML_OK : scan_duplicates(ctx, cfg, what, text);
    if (rc == RDML_OK && !skipped) rc = load_includes(ctx, cfg, what, path, d);
    if (rc == RDML_OK) rc = merge_dict(ctx, cfg, what, d, skipped);
    iniparser_freedict(d);
    return rc;
}

/* Whole file as a string; NUL bytes are refused (not a text file, and they would make the
 * duplicate scan and iniparser disagree). */
static int read_text(rdml_ctx *ctx, const char *path, char **out) {
    *out = NULL;
    struct stat st;
    if (stat(path, &st) != 0)
        return RDML_FAIL(ctx, RDML_EIO, "cannot open config file %s: %s (check the path; a "
                         "relative path is taken from the current directory)", path,
                         strerror(errno));
    if (S_ISDIR(st.st_mode))
        return RDML_FAIL(ctx, RDML_EIO, "config file %s is a directory (give the path of an "
                         ".ini file, e.g. %s/demo.ini)", path, path);
    FILE *f = fopen(path, "rb");
    if (!f)
        return RDML_FAIL(ctx, RDML_EIO, "cannot open config file %s: %s", path, strerror(errno));
    rdml_strbuf b = {0};
    char chunk[8192];
    size_t n, total = 0;
    int has_nul = 0;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        has_nul |= memchr(chunk, '\0', n) != NULL;
        total += n;
        if (total > (16u << 20)) break;
        rdml_strbuf_addn(&b, chunk, n);
    }
    int err = ferror(f);
    fclose(f);
    char *s = rdml_strbuf_take(&b);
    if (!s) return RDML_FAIL(ctx, RDML_ENOMEM, "out of memory reading %s", path);
    int rc = RDML_OK;
    if (err) rc = RDML_FAIL(ctx, RDML_EIO, "error reading config file %s", path);
    else if (total > (16u << 20))
        rc = RDML_FAIL(ctx, RDML_ECONFIG, "%s is larger than 16 MB: not a config file", path);
    else if (has_nul)
        rc = RDML_FAIL(ctx, RDML_ECONFIG, "%s contains NUL bytes: not a text INI file", path);
    if (rc != RDML_OK) {
        free(s);
        return rc;
    }
    *out = s;
    return RDML_OK;
}

int rdml_config_load(rdml_ctx *ctx, rdml_config *cfg, const char *path) {
    return load_located(ctx, cfg, "", path, 0);
}

static int load_file(rdml_ctx *ctx, rdml_config *cfg, const char *path) {
    char *text;
    RDML_TRY(read_text(ctx, path, &text));
    int rc = load_parsed(ctx, cfg, path, path, text, NULL);
    free(text);
    return rc;
}

/* INI text through a private temporary file (iniparser 4.1 reads only from a path). */
static int parse_text(rdml_ctx *ctx, rdml_config *cfg, const char *what, const char *text,
                      int *skipped) {
    /* iniparser 4.1 reads only from a path: go through a private temporary file. */
    const char *dir = getenv("TMPDIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/rdml-config-XXXXXX", dir && *dir ? dir : "/tmp");
    int fd = mkstemp(path);
    if (fd < 0)
        return RDML_FAIL(ctx, RDML_EIO, "cannot create a temporary file in %s to parse %s: %s "
                         "(set TMPDIR to a writable folder)", dir && *dir ? dir : "/tmp", what,
                         strerror(errno));
    size_t len = strlen(text), off = 0;
    while (off < len) {
        ssize_t w = write(fd, text + off, len - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) break;
        off += (size_t)w;
    }
    int werr = off < len ? errno : 0;
    close(fd);
    int rc;
    if (off < len)
        rc = RDML_FAIL(ctx, RDML_EIO, "cannot write temporary file %s to parse %s: %s", path,
                       what, strerror(werr));
    else
        rc = load_parsed(ctx, cfg, what, path, text, skipped);
    unlink(path);
    return rc;
}

int rdml_config_load_text(rdml_ctx *ctx, rdml_config *cfg, const char *what, const char *text) {
    return parse_text(ctx, cfg, what ? what : "(config text)", text, NULL);
}

int rdml_config_from_stored(rdml_ctx *ctx, const char *what, const char *text,
                            rdml_config **out, int *skipped) {
    *out = NULL;
    int nskip = 0;
    if (skipped) *skipped = 0;
    rdml_config *cfg;
    RDML_TRY(rdml_config_create(ctx, &cfg));
    int rc = parse_text(ctx, cfg, what ? what : "(stored config)", text ? text : "", &nskip);
    if (rc) {
        rdml_config_destroy(&cfg);
        return rc;
    }
    if (skipped) *skipped = nskip;
    *out = cfg;
    return RDML_OK;
}

/* ---- --set ---- */

int rdml_config_set(rdml_ctx *ctx, rdml_config *cfg, const char *assignment) {
    char a[RDML_CFG_MAX_VALUE + 200], b[SHOW_BUF];
    const char *shown_a = shown(assignment, b, sizeof b);
    if (rdml_strlcpy(a, assignment, sizeof a) >= sizeof a)
        return RDML_FAIL(ctx, RDML_ECONFIG, "--set %s: too long (values hold at most %d "
                         "characters)", shown_a, RDML_CFG_MAX_VALUE);
    char *eq = strchr(a, '=');
    if (!eq)
        return RDML_FAIL(ctx, RDML_ECONFIG, "--set %s: missing \"=\" (write --set "
                         "section.key=value, e.g. --set data.images=500)", shown_a);
    *eq = '\0';
    char *name = strip(a), *value = strip(eq + 1);
    lower(name);
    if (!*name)
        return RDML_FAIL(ctx, RDML_ECONFIG, "--set %s: missing the key name before \"=\" (write "
                         "--set section.key=value, e.g. --set data.images=500)", shown_a);
    char *dot = strchr(name, '.');
    if (!dot) {
        char hint[512] = "e.g. --set data.images=500", secs[256] = "", vb[SHOW_BUF];
        int first = -1, count = 0, total = 0;
        for (int i = 0; i < cfg->nkeys; i++) total += strcmp(cfg->keys[i].key, name) == 0;
        for (int i = 0; i < cfg->nkeys; i++) {
            if (strcmp(cfg->keys[i].key, name) != 0) continue;
            size_t l = strlen(secs);
            /* "[a]", "[a] and [b]", "[a], [b] and [c]" */
            snprintf(secs + l, sizeof secs - l, "%s[%s]",
                     count == 0 ? "" : count == total - 1 ? " and " : ", ", cfg->keys[i].section);
            if (first < 0) first = i;
            count++;
        }
        if (first >= 0)
            snprintf(hint, sizeof hint, "%s is in %s: %s--set %s.%s=%s", name, secs,
                     count > 1 ? "e.g. " : "", cfg->keys[first].section, name,
                     shown(value, vb, sizeof vb));
        return RDML_FAIL(ctx, RDML_ECONFIG, "--set %s: the key needs its section, as "
                         "section.key=value (%s)", shown_a, hint);
    }
    *dot = '\0';
    char *sec = strip(name), *key = strip(dot + 1);
    if (!*sec || !*key)
        return RDML_FAIL(ctx, RDML_ECONFIG, "--set %s: expected section.key before \"=\" (e.g. "
                         "--set data.images=500)", shown_a);
    char where[SHOW_MAX + 16];
    snprintf(where, sizeof where, "--set %s", shown_a);
    if (!section_known(cfg, sec)) return fail_unknown_section(ctx, cfg, where, sec);
    int i = find_key(cfg, sec, key);
    if (i < 0) return fail_unknown_key(ctx, cfg, where, sec, key);
    /* Quotes protect spaces, ';' and '#' as in a file: strip one matching pair. */
    size_t vl = strlen(value);
    if (vl >= 2 && (value[0] == '"' || value[0] == '\'') && value[vl - 1] == value[0]) {
        value[vl - 1] = '\0';
        value++;
    }
    char *canon;
    RDML_TRY(check_into(ctx, cfg, i, value, NULL, shown_a, &canon));
    free(cfg->val[i]);
    cfg->val[i] = canon;
    cfg->set[i] = 1;
    return RDML_OK;
}

int rdml_config_check_required(rdml_ctx *ctx, const rdml_config *cfg) {
    char missing[2048] = "", first[300] = "";
    int n = 0;
    for (int i = 0; i < cfg->nkeys; i++) {
        if (cfg->val[i]) continue;
        const rdml_cfg_key *k = &cfg->keys[i];
        size_t l = strlen(missing);
        snprintf(missing + l, sizeof missing - l, "%s[%s] %s", n ? ", " : "", k->section, k->key);
        if (!n) snprintf(first, sizeof first, "%s.%s", k->section, k->key);
        n++;
    }
    if (!n) return RDML_OK;
    return RDML_FAIL(ctx, RDML_ECONFIG, "missing required key%s %s (no default; set %s in %s or "
                     "pass --set %s=VALUE)", n > 1 ? "s" : "", missing, n > 1 ? "them" : "it",
                     cfg->sources[0] ? cfg->sources : "the config file", first);
}

/* ---- getters ---- */

static const char *type_name(rdml_cfg_type t) {
    static const char *const names[] = {"INT", "REAL", "BOOL", "STRING", "PATH",
                                        "CHOICE", "LIST", "INT_LIST", "REAL_LIST"};
    return (unsigned)t < sizeof names / sizeof names[0] ? names[t] : "?";
}

/* The value of [sec] key if its type is one of `types` (a bit mask of 1 << type). */
static int get_value(rdml_ctx *ctx, const rdml_config *cfg, const char *sec, const char *key,
                     unsigned types, const char *want, const char **out) {
    int i = find_key(cfg, sec ? sec : "", key ? key : "");
    if (i < 0)
        return RDML_FAIL(ctx, RDML_EINTERNAL, "config key [%s] %s is not in the schema (a bug: "
                         "add it to src/config/schema.c)", sec ? sec : "", key ? key : "");
    if (!(types & (1u << cfg->keys[i].type)))
        return RDML_FAIL(ctx, RDML_EINTERNAL, "config key [%s] %s is a %s, read as %s (a bug)",
                         sec, key, type_name(cfg->keys[i].type), want);
    if (!cfg->val[i])
        return RDML_FAIL(ctx, RDML_ECONFIG, "required key [%s] %s is not set (it has no default; "
                         "set it in the config file or pass --set %s.%s=VALUE)", sec, key, sec,
                         key);
    *out = cfg->val[i];
    return RDML_OK;
}

#define T(x) (1u << RDML_CFG_##x)

int rdml_config_int(rdml_ctx *ctx, const rdml_config *cfg, const char *sec, const char *key,
                    int64_t *out) {
    const char *v;
    RDML_TRY(get_value(ctx, cfg, sec, key, T(INT), "INT", &v));
    if (rdml_config_parse_int(v, out))
        return RDML_FAIL(ctx, RDML_EINTERNAL, "config [%s] %s holds \"%s\"", sec, key, v);
    return RDML_OK;
}

int rdml_config_real(rdml_ctx *ctx, const rdml_config *cfg, const char *sec, const char *key,
                     double *out) {
    const char *v;
    RDML_TRY(get_value(ctx, cfg, sec, key, T(REAL), "REAL", &v));
    if (rdml_config_parse_real(v, out))
        return RDML_FAIL(ctx, RDML_EINTERNAL, "config [%s] %s holds \"%s\"", sec, key, v);
    return RDML_OK;
}

int rdml_config_bool(rdml_ctx *ctx, const rdml_config *cfg, const char *sec, const char *key,
                     int *out) {
    const char *v;
    RDML_TRY(get_value(ctx, cfg, sec, key, T(BOOL), "BOOL", &v));
    if (rdml_config_parse_bool(v, out))
        return RDML_FAIL(ctx, RDML_EINTERNAL, "config [%s] %s holds \"%s\"", sec, key, v);
    return RDML_OK;
}

int rdml_config_str(rdml_ctx *ctx, const rdml_config *cfg, const char *sec, const char *key,
                    const char **out) {
    return get_value(ctx, cfg, sec, key, T(STRING) | T(PATH) | T(CHOICE) | T(LIST),
                     "a string", out);
}

/* Split canonical "a,b,c" (validated: no empty items, no spaces around commas) into one
 * allocation: n pointers followed by the text. */
static int split_items(rdml_ctx *ctx, const char *v, char ***items, int *n) {
    int count = 1;
    for (const char *p = v; *p; p++) count += *p == ',';
    size_t len = strlen(v) + 1;
    char **arr = rdml_malloc(ctx, (size_t)count * sizeof *arr + len, "config list");
    if (!arr) return ctx->code;
    char *text = (char *)(arr + count);
    memcpy(text, v, len);
    int k = 0;
    arr[k++] = text;
    for (char *p = text; *p; p++)
        if (*p == ',') {
            *p = '\0';
            arr[k++] = p + 1;
        }
    *items = arr;
    *n = count;
    return RDML_OK;
}

int rdml_config_list(rdml_ctx *ctx, const rdml_config *cfg, const char *sec, const char *key,
                     char ***items, int *n) {
    const char *v;
    *items = NULL;
    *n = 0;
    RDML_TRY(get_value(ctx, cfg, sec, key, T(LIST) | T(INT_LIST) | T(REAL_LIST), "LIST", &v));
    return split_items(ctx, v, items, n);
}

/* Element parsers with one signature, so both number lists share number_list below. */
static int parse_int_elem(const char *s, void *out) { return rdml_config_parse_int(s, out); }
static int parse_real_elem(const char *s, void *out) { return rdml_config_parse_real(s, out); }

static int number_list(rdml_ctx *ctx, const rdml_config *cfg, const char *sec, const char *key,
                       unsigned type_mask, const char *type_name, size_t elem_size,
                       int (*parse)(const char *, void *), void **vals, int *n) {
    const char *v;
    char **items;
    int m;
    *vals = NULL;
    *n = 0;
    RDML_TRY(get_value(ctx, cfg, sec, key, type_mask, type_name, &v));
    RDML_TRY(split_items(ctx, v, &items, &m));
    char *out = rdml_malloc(ctx, (size_t)m * elem_size, "config number list");
    int rc = out ? RDML_OK : ctx->code;
    for (int i = 0; i < m && rc == RDML_OK; i++)
        if (parse(items[i], out + (size_t)i * elem_size))
            rc = RDML_FAIL(ctx, RDML_EINTERNAL, "config [%s] %s holds \"%s\"", sec, key, v);
    free(items);
    if (rc != RDML_OK) {
        free(out);
        return rc;
    }
    *vals = out;
    *n = m;
    return RDML_OK;
}

int rdml_config_int_list(rdml_ctx *ctx, const rdml_config *cfg, const char *sec,
                         const char *key, int64_t **vals, int *n) {
    return number_list(ctx, cfg, sec, key, T(INT_LIST), "INT_LIST", sizeof **vals,
                       parse_int_elem, (void **)vals, n);
}

int rdml_config_real_list(rdml_ctx *ctx, const rdml_config *cfg, const char *sec,
                          const char *key, double **vals, int *n) {
    return number_list(ctx, cfg, sec, key, T(REAL_LIST), "REAL_LIST", sizeof **vals,
                       parse_real_elem, (void **)vals, n);
}

int rdml_config_is_set(const rdml_config *cfg, const char *sec, const char *key) {
    if (!cfg || !sec || !key) return 0;
    int i = find_key(cfg, sec, key);
    return i >= 0 && cfg->set[i];
}

/* "a|b|c" holds v (case-insensitively)? */
static int in_choices(const char *choices, const char *v) {
    size_t lv = strlen(v);
    for (const char *p = choices; p && *p;) {
        const char *bar = strchr(p, '|');
        size_t l = bar ? (size_t)(bar - p) : strlen(p);
        if (l == lv && strncasecmp(p, v, l) == 0) return 1;
        p = bar ? bar + 1 : NULL;
    }
    return 0;
}

/* The key named "section.key", or -1. */
static int find_dotted(const rdml_config *cfg, const char *name) {
    const char *dot = name ? strchr(name, '.') : NULL;
    char sec[64];
    if (!dot || (size_t)(dot - name) >= sizeof sec) return -1;
    memcpy(sec, name, (size_t)(dot - name));
    sec[dot - name] = '\0';
    return find_key(cfg, sec, dot + 1);
}

int rdml_config_warn_inapplicable(rdml_ctx *ctx, const rdml_config *cfg) {
    int n, warned = 0;
    const rdml_cfg_applies *a = rdml_config_applies(&n);
    for (int i = 0; i < n; i++) {
        int k = find_key(cfg, a[i].section, a[i].key);
        int w = find_dotted(cfg, a[i].when);
        if (k < 0 || w < 0 || !cfg->set[k] || !cfg->val[w] || !cfg->val[k]) continue;
        if (in_choices(a[i].values, cfg->val[w])) continue;
        /* a key set to its default (a copy of configs/defaults.ini) changes nothing either */
        char *def = NULL, why[512];
        if (cfg->keys[k].def &&
            rdml_config_value_check(&cfg->keys[k], cfg->keys[k].def, &def, why, sizeof why) ==
                RDML_CFGV_OK &&
            strcmp(def, cfg->val[k]) == 0) {
            free(def);
            continue;
        }
        free(def);
        int u = find_dotted(cfg, a[i].unless);
        if (u >= 0 && cfg->val[u] && strcasecmp(cfg->val[u], "off") != 0) continue;
        char only[256];
        rdml_strlcpy(only, a[i].values, sizeof only);
        for (char *p = only; *p; p++)
            if (*p == '|') *p = '/';
        rdml_warn(ctx, "[%s] %s is set but has no effect with %s = %s (it applies only with %s "
                  "= %s; remove it, or check %s)", a[i].section, a[i].key, a[i].when,
                  cfg->val[w], a[i].when, only, a[i].when);
        warned++;
    }
    return warned;
}

/* ---- for dump.c ---- */

const rdml_cfg_key *rdml_config_keys(const rdml_config *cfg, int *n) {
    *n = cfg->nkeys;
    return cfg->keys;
}

const char *rdml_config_value_at(const rdml_config *cfg, int i) { return cfg->val[i]; }
