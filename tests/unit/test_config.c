/* Unit tests of the config module: strict value parsing for every type, each error class and
 * the words of its message (file, section, key, value, hint), --set overrides, required keys
 * (through a test schema: the shipped one has none), atomic failure, quoting and comments,
 * duplicate keys, case folding, dump round trips, and that configs/defaults.ini and
 * docs/config.md match what the schema generates.
 *
 * `test_config --regen` rewrites configs/defaults.ini and the generated part of
 * docs/config.md under $RDML_SRC from the schema (run it after editing src/config/schema.c).
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config_internal.h"
#include "rdml/config.h"
#include "test.h"

/* ---- helpers ---- */

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) {
        free(s);
        s = NULL;
    }
    if (s) s[n] = '\0';
    fclose(f);
    return s;
}

static int spit(const char *path, const char *text, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    int ok = fwrite(text, 1, len, f) == len;
    return (fclose(f) == 0 && ok) ? 0 : -1;
}

static const char *src_path(const char *rel) {
    static char buf[4096];
    const char *src = getenv("RDML_SRC");
    snprintf(buf, sizeof buf, "%s/%s", src ? src : "../..", rel);
    return buf;
}

/* Load `text` as "t.ini" into a fresh config; returns the status, message in ctx. */
static int load_fresh(rdml_ctx *ctx, rdml_config **cfg, const char *text) {
    rdml_ctx_init(ctx);
    if (rdml_config_create(ctx, cfg) != RDML_OK) return -1;
    return rdml_config_load_text(ctx, *cfg, "t.ini", text);
}

/* Expect text to fail with ECONFIG and a message containing want. */
static void expect_error(const char *text, const char *want) {
    rdml_ctx ctx;
    rdml_config *cfg;
    int rc = load_fresh(&ctx, &cfg, text);
    CHECK_EQ_I(rc, RDML_ECONFIG);
    CHECK_STR_HAS(ctx.msg, want);
    rdml_config_destroy(&cfg);
}

static int64_t load_int(const char *text, const char *sec, const char *key, int *rc) {
    rdml_ctx ctx;
    rdml_config *cfg;
    int64_t v = -12345;
    *rc = load_fresh(&ctx, &cfg, text);
    if (*rc == RDML_OK) *rc = rdml_config_int(&ctx, cfg, sec, key, &v);
    rdml_config_destroy(&cfg);
    return v;
}

static void expect_set_error(const char *assignment, const char *want) {
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    rdml_config *cfg;
    CHECK_EQ_I(rdml_config_create(&ctx, &cfg), RDML_OK);
    char *before = rdml_config_dump(cfg, 0);
    CHECK_EQ_I(rdml_config_set(&ctx, cfg, assignment), RDML_ECONFIG);
    CHECK_STR_HAS(ctx.msg, want);
    char *after = rdml_config_dump(cfg, 0);
    CHECK(before && after && strcmp(before, after) == 0); /* unchanged */
    free(before);
    free(after);
    rdml_config_destroy(&cfg);
}

/* ---- schema and defaults ---- */

static void test_schema_is_consistent(void) {
    int n, ns;
    const rdml_cfg_key *k = rdml_config_schema(&n);
    const char *const *secs = rdml_config_sections(&ns);
    CHECK(n >= 20);
    CHECK(ns >= 4); /* data, synth, rdm, run, and the sections later stages add */
    for (int i = 0; i < n; i++) {
        int found = 0;
        for (int s = 0; s < ns; s++) found |= strcmp(secs[s], k[i].section) == 0;
        CHECK(found);
        CHECK(k[i].help && strlen(k[i].help) > 20);
        CHECK(k[i].def != NULL); /* the foundation schema has no required key */
    }
    for (int s = 0; s < ns; s++) CHECK(rdml_config_section_help(secs[s]) != NULL);
    CHECK(rdml_config_section_help("nope") == NULL);
    /* Sections appear in the order of rdml_config_sections. */
    int cur = 0;
    for (int i = 0; i < n; i++) {
        while (cur < ns && strcmp(secs[cur], k[i].section) != 0) cur++;
        CHECK(cur < ns);
    }
}

static void test_defaults_through_getters(void) {
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    rdml_config *cfg;
    CHECK_EQ_I(rdml_config_create(&ctx, &cfg), RDML_OK);
    int64_t i64 = -1;
    double d = -1;
    int b = -1;
    const char *s = NULL;
    CHECK_EQ_I(rdml_config_int(&ctx, cfg, "data", "images", &i64), RDML_OK);
    CHECK_EQ_I(i64, 0);
    CHECK_EQ_I(rdml_config_int(&ctx, cfg, "run", "seed", &i64), RDML_OK);
    CHECK_EQ_I(i64, 42);
    CHECK_EQ_I(rdml_config_int(&ctx, cfg, "synth", "lh_vertices", &i64), RDML_OK);
    CHECK_EQ_I(i64, 1500);
    CHECK_EQ_I(rdml_config_real(&ctx, cfg, "synth", "noise", &d), RDML_OK);
    CHECK_NEAR(d, 1.0, 0);
    CHECK_EQ_I(rdml_config_real(&ctx, cfg, "synth", "color_fraction", &d), RDML_OK);
    CHECK_NEAR(d, 0.25, 0);
    CHECK_EQ_I(rdml_config_bool(&ctx, cfg, "data", "standardize", &b), RDML_OK);
    CHECK_EQ_I(b, 1);
    CHECK_EQ_I(rdml_config_bool(&ctx, cfg, "synth", "fsaverage", &b), RDML_OK);
    CHECK_EQ_I(b, 0);
    CHECK_EQ_I(rdml_config_str(&ctx, cfg, "data", "root", &s), RDML_OK);
    CHECK(s && strcmp(s, "data/synth") == 0);
    CHECK_EQ_I(rdml_config_str(&ctx, cfg, "run", "log_level", &s), RDML_OK);
    CHECK(s && strcmp(s, "info") == 0);
    char **items = NULL;
    int n = 0;
    CHECK_EQ_I(rdml_config_list(&ctx, cfg, "data", "subjects", &items, &n), RDML_OK);
    CHECK_EQ_I(n, 1);
    CHECK(items && strcmp(items[0], "all") == 0);
    free(items);
    CHECK_EQ_I(rdml_config_is_set(cfg, "data", "images"), 0);
    CHECK_EQ_I(rdml_config_check_required(&ctx, cfg), RDML_OK);
    rdml_config_destroy(&cfg);
    CHECK(cfg == NULL);
    rdml_config_destroy(&cfg); /* NULL is fine */
}

static void test_getter_misuse_is_internal(void) {
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    rdml_config *cfg;
    CHECK_EQ_I(rdml_config_create(&ctx, &cfg), RDML_OK);
    double d;
    int64_t v;
    CHECK_EQ_I(rdml_config_real(&ctx, cfg, "data", "images", &d), RDML_EINTERNAL);
    CHECK_STR_HAS(ctx.msg, "[data] images is a INT");
    rdml_ctx_clear(&ctx);
    CHECK_EQ_I(rdml_config_int(&ctx, cfg, "data", "nope", &v), RDML_EINTERNAL);
    CHECK_STR_HAS(ctx.msg, "[data] nope is not in the schema");
    rdml_ctx_clear(&ctx);
    const char *s;
    CHECK_EQ_I(rdml_config_str(&ctx, cfg, "data", "images", &s), RDML_EINTERNAL);
    rdml_config_destroy(&cfg);
}

/* ---- strict values ---- */

static void test_int_is_strict_decimal(void) {
    int rc;
    CHECK_EQ_I(load_int("[data]\nimages = 042\n", "data", "images", &rc), 42); /* not octal */
    CHECK_EQ_I(rc, RDML_OK);
    CHECK_EQ_I(load_int("[data]\nimages = +7\n", "data", "images", &rc), 7);
    CHECK_EQ_I(rc, RDML_OK);
    CHECK_EQ_I(load_int("[data]\nimages = \" 12 \"\n", "data", "images", &rc), 12);
    CHECK_EQ_I(rc, RDML_OK);
    CHECK_EQ_I(load_int("[run]\nseed = 9007199254740992\n", "run", "seed", &rc),
               9007199254740992LL);
    CHECK_EQ_I(rc, RDML_OK);
    expect_error("[data]\nimages = 12x\n",
                 "t.ini: [data] images = \"12x\": not an integer (expected a whole number >= 0;"
                 " keep the first N images of each subject; 0 means all images)");
    expect_error("[data]\nimages = abc\n", "[data] images = \"abc\": not an integer");
    expect_error("[data]\nimages = 0x10\n", "[data] images = \"0x10\": not an integer");
    expect_error("[data]\nimages =\n", "[data] images = \"\": not an integer");
    expect_error("[data]\nimages = 1.5\n", "[data] images = \"1.5\": not an integer");
    expect_error("[data]\nimages = 1 2\n", "[data] images = \"1 2\": not an integer");
    expect_error("[data]\nimages = -1\n",
                 "t.ini: [data] images = -1: below the minimum 0 (allowed: >= 0;");
    expect_error("[synth]\nsubjects = 9\n",
                 "[synth] subjects = 9: above the maximum 8 (allowed: 1 to 8;");
    expect_error("[run]\nseed = 9007199254740993\n",
                 "[run] seed = 9007199254740993: above the maximum 9007199254740992");
    expect_error("[run]\nseed = 99999999999999999999999\n",
                 "[run] seed = 99999999999999999999999: above the maximum");
}

static void test_parsers_directly(void) {
    int64_t v;
    CHECK_EQ_I(rdml_config_parse_int("9223372036854775807", &v), 0);
    CHECK_EQ_I(v, INT64_MAX);
    CHECK_EQ_I(rdml_config_parse_int("-9223372036854775808", &v), 0);
    CHECK(v == INT64_MIN);
    CHECK_EQ_I(rdml_config_parse_int("9223372036854775808", &v), 2);
    CHECK_EQ_I(rdml_config_parse_int("-", &v), 1);
    CHECK_EQ_I(rdml_config_parse_int("", &v), 1);
    CHECK_EQ_I(rdml_config_parse_int("1_000", &v), 1);
    double d;
    CHECK_EQ_I(rdml_config_parse_real("1e-3", &d), 0);
    CHECK_NEAR(d, 0.001, 0);
    CHECK_EQ_I(rdml_config_parse_real("-.5", &d), 0);
    CHECK_NEAR(d, -0.5, 0);
    CHECK_EQ_I(rdml_config_parse_real("1e999", &d), 2);
    CHECK(rdml_config_parse_real("nan", &d) != 0);
    CHECK(rdml_config_parse_real("inf", &d) != 0);
    CHECK(rdml_config_parse_real("0x1p3", &d) != 0);
    CHECK(rdml_config_parse_real("1.5.2", &d) != 0);
    CHECK(rdml_config_parse_real(" 1", &d) != 0);
    const char *yes[] = {"true", "yes", "on", "1", "TRUE", "Yes"};
    const char *no[] = {"false", "no", "off", "0", "Off"};
    for (int i = 0; i < 6; i++) {
        int b = -1;
        CHECK_EQ_I(rdml_config_parse_bool(yes[i], &b), 0);
        CHECK_EQ_I(b, 1);
    }
    for (int i = 0; i < 5; i++) {
        int b = -1;
        CHECK_EQ_I(rdml_config_parse_bool(no[i], &b), 0);
        CHECK_EQ_I(b, 0);
    }
    int b;
    CHECK(rdml_config_parse_bool("maybe", &b) != 0);
    CHECK(rdml_config_parse_bool("2", &b) != 0);
    CHECK(rdml_config_parse_bool("", &b) != 0);
}

static void test_real_is_strict_and_finite(void) {
    rdml_ctx ctx;
    rdml_config *cfg;
    CHECK_EQ_I(load_fresh(&ctx, &cfg, "[synth]\nnoise = 2.5e-1\nshared_fraction = 1\n"), RDML_OK);
    double d;
    CHECK_EQ_I(rdml_config_real(&ctx, cfg, "synth", "noise", &d), RDML_OK);
    CHECK_NEAR(d, 0.25, 0);
    CHECK_EQ_I(rdml_config_real(&ctx, cfg, "synth", "shared_fraction", &d), RDML_OK);
    CHECK_NEAR(d, 1.0, 0);
    rdml_config_destroy(&cfg);
    expect_error("[synth]\nnoise = 1e999\n", "[synth] noise = \"1e999\": not a finite number");
    expect_error("[synth]\nnoise = nan\n", "[synth] noise = \"nan\": not a number");
    expect_error("[synth]\nnoise = inf\n", "[synth] noise = \"inf\": not a number");
    expect_error("[synth]\nnoise = 12x\n",
                 "[synth] noise = \"12x\": not a number (expected a decimal number from 0 to "
                 "100, e.g. 1.0; noise std relative to the signal std)");
    expect_error("[synth]\nnoise =\n", "[synth] noise = \"\": not a number");
    expect_error("[synth]\nnoise = -1\n", "t.ini: [synth] noise = -1: below the minimum 0");
    expect_error("[synth]\nnoise = 100.5\n", "[synth] noise = 100.5: above the maximum 100");
    expect_error("[synth]\ncolor_fraction = 1.01\n",
                 "[synth] color_fraction = 1.01: above the maximum 1");
}

static void test_bool_and_choice(void) {
    rdml_ctx ctx;
    rdml_config *cfg;
    CHECK_EQ_I(load_fresh(&ctx, &cfg, "[data]\nstandardize = Off\n[synth]\nvary = no\n"
                                      "fsaverage = 1\n[run]\nlog_level = DEBUG\n"), RDML_OK);
    int b;
    CHECK_EQ_I(rdml_config_bool(&ctx, cfg, "data", "standardize", &b), RDML_OK);
    CHECK_EQ_I(b, 0);
    CHECK_EQ_I(rdml_config_bool(&ctx, cfg, "synth", "vary", &b), RDML_OK);
    CHECK_EQ_I(b, 0);
    CHECK_EQ_I(rdml_config_bool(&ctx, cfg, "synth", "fsaverage", &b), RDML_OK);
    CHECK_EQ_I(b, 1);
    const char *s;
    CHECK_EQ_I(rdml_config_str(&ctx, cfg, "run", "log_level", &s), RDML_OK);
    CHECK(strcmp(s, "debug") == 0); /* canonical spelling */
    char *dump = rdml_config_dump(cfg, 0);
    CHECK_STR_HAS(dump, "standardize = false\n");
    CHECK_STR_HAS(dump, "fsaverage = true\n");
    free(dump);
    rdml_config_destroy(&cfg);
    expect_error("[data]\nstandardize = maybe\n",
                 "[data] standardize = \"maybe\": not a boolean (expected true or false");
    expect_error("[run]\nlog_level = debg\n",
                 "[run] log_level = \"debg\": not a valid choice (did you mean \"debug\"?; "
                 "choices: quiet, error, warn, info, debug)");
    expect_error("[run]\nlog_level = chatty\n",
                 "not a valid choice (choices: quiet, error, warn, info, debug)");
}

static void test_lists(void) {
    rdml_ctx ctx;
    rdml_config *cfg;
    CHECK_EQ_I(load_fresh(&ctx, &cfg, "[data]\nsubjects = 1, 02 ,8\nrois = V1,hV4, class:Faces\n"),
               RDML_OK);
    char **items = NULL;
    int n = 0;
    CHECK_EQ_I(rdml_config_list(&ctx, cfg, "data", "subjects", &items, &n), RDML_OK);
    CHECK_EQ_I(n, 3);
    if (n == 3) {
        CHECK(strcmp(items[0], "1") == 0);
        CHECK(strcmp(items[1], "2") == 0); /* canonical integer */
        CHECK(strcmp(items[2], "8") == 0);
    }
    free(items);
    CHECK_EQ_I(rdml_config_list(&ctx, cfg, "data", "rois", &items, &n), RDML_OK);
    CHECK_EQ_I(n, 3);
    if (n == 3) CHECK(strcmp(items[2], "class:Faces") == 0);
    free(items);
    const char *s;
    CHECK_EQ_I(rdml_config_str(&ctx, cfg, "data", "rois", &s), RDML_OK);
    CHECK(strcmp(s, "V1,hV4,class:Faces") == 0);
    rdml_config_destroy(&cfg);

    /* several selections, unions with + and "all" as one selection among others */
    CHECK_EQ_I(load_fresh(&ctx, &cfg, "[data]\nrois = V1v+V1d+class:Faces, all, hV4\n"), RDML_OK);
    CHECK_EQ_I(rdml_config_list(&ctx, cfg, "data", "rois", &items, &n), RDML_OK);
    CHECK_EQ_I(n, 3);
    if (n == 3) CHECK(strcmp(items[0], "V1v+V1d+class:Faces") == 0);
    free(items);
    rdml_config_destroy(&cfg);

    CHECK_EQ_I(load_fresh(&ctx, &cfg, "[data]\nsubjects = ALL\n"), RDML_OK);
    CHECK_EQ_I(rdml_config_str(&ctx, cfg, "data", "subjects", &s), RDML_OK);
    CHECK(strcmp(s, "all") == 0);
    rdml_config_destroy(&cfg);

    expect_error("[data]\nsubjects = 1,,2\n",
                 "[data] subjects = \"1,,2\": item 2 is empty (write items separated by single "
                 "commas");
    expect_error("[data]\nsubjects = 1,\n", "item 2 is empty");
    expect_error("[data]\nsubjects =\n", "[data] subjects = \"\": empty list (expected");
    expect_error("[data]\nsubjects = 0\n",
                 "[data] subjects = 0: item 1 = 0: below the minimum 1 (allowed: 1 to 99;");
    expect_error("[data]\nsubjects = 1,100\n", "item 2 = 100: above the maximum 99");
    expect_error("[data]\nsubjects = 1,al\n",
                 "[data] subjects = \"1,al\": item 2 \"al\" is not allowed (did you mean "
                 "\"all\"?; expected comma-separated list of all or integers 1 to 99");
    expect_error("[data]\nsubjects = all,1\n", "\"all\" cannot be combined with other items");
    expect_error("[data]\nsubjects = 1,2,1\n", "item \"1\" is listed twice (items 1 and 3");
    expect_error("[data]\nrois = V1,class:Face\n",
                 "unknown ROI class \"Face\" (did you mean class:Faces?; classes: Visual, "
                 "Bodies, Faces, Places, Words, Streams)");
    expect_error("[data]\nrois = V1 hV4\n", "\"V1 hV4\" is not an ROI name");
    expect_error("[rdm]\nthreshold = 1.2x\n", "expected auto or a number");
    expect_error("[rdm]\ngrid = 2by2\n", "expected auto or ROWSxCOLS");
    expect_error("[rdm]\ncompare = spearman,kendal\n", "kendal");
    expect_error("[data]\nrois = all+V1\n", "\"all\" cannot be part of a + union");
    expect_error("[data]\nrois = V1v+\n", "empty ROI name in a + union");
    expect_error("[data]\nrois = V1v+class:Fces\n", "unknown ROI class \"Fces\"");
}

/* ---- names: unknown sections and keys, case, placement ---- */

static void test_unknown_names(void) {
    expect_error("[data]\nsubjcts = 1\n",
                 "t.ini: unknown key [data] subjcts (did you mean \"subjects\"?; valid keys in "
                 "[data]: root, subjects, rois, images, standardize)");
    expect_error("[dta]\nimages = 3\n",
                 "t.ini: unknown section [dta] (did you mean [data]?; valid sections: [data], "
                 "[synth], [rdm]");
    expect_error("[zzzzzz]\n",
                 "unknown section [zzzzzz] (valid sections: [data], [synth], [rdm]");
    expect_error("[data]\nnoise = 1\n",
                 "unknown key [data] noise (noise belongs in [synth]; valid keys in [data]");
    expect_error("images = 3\n[data]\n",
                 "t.ini: key images comes before any [section] header (put it under [data])");
    expect_error("[da:ta]\nx = 1\n", "unknown section [da:ta]");
}

static void test_case_is_folded(void) {
    int rc;
    CHECK_EQ_I(load_int("[DATA]\nImages = 3\n", "data", "images", &rc), 3);
    CHECK_EQ_I(rc, RDML_OK);
    /* Values keep their case (paths, ROI names). */
    rdml_ctx ctx;
    rdml_config *cfg;
    CHECK_EQ_I(load_fresh(&ctx, &cfg, "[Data]\nROOT = /Data/NSD\n"), RDML_OK);
    const char *s;
    CHECK_EQ_I(rdml_config_str(&ctx, cfg, "data", "root", &s), RDML_OK);
    CHECK(strcmp(s, "/Data/NSD") == 0);
    rdml_config_destroy(&cfg);
}

/* ---- INI syntax: quotes, comments, duplicates, continuation, bad lines ---- */

static void test_quotes_and_comments(void) {
    rdml_ctx ctx;
    rdml_config *cfg;
    const char *text = "; a comment\n# another\n[data]\n"
                       "root = \"my data;v2 \"   ; comment after quotes\n"
                       "images = 5 ; five\n"
                       "rois = V1 # inline hash comment\n"
                       "[run]\noutput = 'it\"s.h5'\n";
    CHECK_EQ_I(load_fresh(&ctx, &cfg, text), RDML_OK);
    const char *s;
    int64_t v;
    CHECK_EQ_I(rdml_config_str(&ctx, cfg, "data", "root", &s), RDML_OK);
    CHECK(strcmp(s, "my data;v2 ") == 0);
    CHECK_EQ_I(rdml_config_int(&ctx, cfg, "data", "images", &v), RDML_OK);
    CHECK_EQ_I(v, 5);
    CHECK_EQ_I(rdml_config_str(&ctx, cfg, "data", "rois", &s), RDML_OK);
    CHECK(strcmp(s, "V1") == 0);
    CHECK_EQ_I(rdml_config_str(&ctx, cfg, "run", "output", &s), RDML_OK);
    CHECK(strcmp(s, "it\"s.h5") == 0);
    CHECK_EQ_I(rdml_config_is_set(cfg, "data", "root"), 1);
    CHECK_EQ_I(rdml_config_is_set(cfg, "data", "standardize"), 0);
    rdml_config_destroy(&cfg);
}

static void test_duplicate_keys_are_errors(void) {
    expect_error("[data]\nimages = 1\nroot = x\nImages = 2\n",
                 "t.ini: key [data] images is given twice, on lines 2 and 4 (keep one of them");
    /* The same section may be reopened; its keys are still checked for repeats. */
    rdml_ctx ctx;
    rdml_config *cfg;
    CHECK_EQ_I(load_fresh(&ctx, &cfg, "[data]\nimages=1\n[synth]\nnoise=2\n[data]\nroot=x\n"),
               RDML_OK);
    rdml_config_destroy(&cfg);
    expect_error("[data]\nimages=1\n[synth]\nnoise=2\n[DATA]\nimages=3\n",
                 "key [data] images is given twice, on lines 2 and 6");
    /* Same key name in two sections is not a repeat. */
    CHECK_EQ_I(load_fresh(&ctx, &cfg, "[data]\nimages=1\n[synth]\nimages=20\n"), RDML_OK);
    rdml_config_destroy(&cfg);
}

static void test_continuation_lines(void) {
    rdml_ctx ctx;
    rdml_config *cfg;
    CHECK_EQ_I(load_fresh(&ctx, &cfg, "[data]\nrois = V1, \\\n  hV4\nimages = 4\n"), RDML_OK);
    const char *s;
    CHECK_EQ_I(rdml_config_str(&ctx, cfg, "data", "rois", &s), RDML_OK);
    CHECK(strcmp(s, "V1,hV4") == 0);
    rdml_config_destroy(&cfg);
    /* A continuation may carry any text but a key or section line: */
    CHECK_EQ_I(load_fresh(&ctx, &cfg, "[slurm]\nsetup = module load a \\\n  FOO=1 b\n"),
               RDML_OK);
    CHECK_EQ_I(rdml_config_str(&ctx, cfg, "slurm", "setup", &s), RDML_OK);
    CHECK(strcmp(s, "module load a   FOO=1 b") == 0);
    rdml_config_destroy(&cfg);
    /* ... a key line after a '\' would be swallowed into the value (iniparser reads root =
     * "aroot = b" and the second key is lost): an error naming file and lines. */
    expect_error("[data]\nroot = a\\\nroot = b\n",
                 "t.ini:2: line 2 ends in '\\', which continues its value on the next line, "
                 "so line 3 (\"root = b\") would be read as part of that value");
    expect_error("[data]\nimages = 5 \\\nstandardize = false\n", "t.ini:2: line 2 ends in");
    expect_error("[data]\nimages = 5 \\\n[run]\nseed = 3\n", "line 3 (\"[run]\")");
    /* ... and a '\' on the last line continues onto nothing: iniparser drops the line. */
    expect_error("[data]\nimages = 5\nroot = /tmp/x\\\n",
                 "t.ini:3: the last line ends in '\\' (a continuation) but no line follows, so "
                 "\"root = /tmp/x\" would be dropped");
}

/* A value opening a quote it never closes: iniparser keeps the text after the quote. */
static void test_unterminated_quotes(void) {
    expect_error("[data]\nroot = \"/tmp/x\nimages = 5\n",
                 "t.ini:2: [data] root: the value opens a quote (\") that is not closed");
    expect_error("[data]\nimages = 5\n\n[run]\noutput = 'r.h5\n",
                 "t.ini:5: [run] output: the value opens a quote (') that is not closed");
    /* closed quotes, a quote inside a value and an apostrophe after the first character stay
     * fine */
    rdml_ctx ctx;
    rdml_config *cfg;
    CHECK_EQ_I(load_fresh(&ctx, &cfg, "[data]\nroot = \"a b\"\n[slurm]\nsetup = it's \"x\"\n"),
               RDML_OK);
    rdml_config_destroy(&cfg);
}

/* Integers beyond 64 bits are out of range for the key, with its range, whatever the key's
 * range (an open one like >= 0 used to give an empty message). */
static void test_huge_integers(void) {
    expect_set_error("data.images=12345678901234567890",
                     "--set data.images=12345678901234567890: out of range for [data] images: "
                     "12345678901234567890 is too large (allowed: >= 0; keep the first N images");
    expect_error("[data]\nimages = 12345678901234567890\n",
                 "t.ini: [data] images = 12345678901234567890: out of range for [data] images");
    expect_set_error("train.epochs=-99999999999999999999", "below the minimum 1 (allowed: 1 to");
    expect_set_error("synth.images=99999999999999999999", "above the maximum 9999");
    expect_set_error("train.tower=8,99999999999999999999",
                     "item 2 \"99999999999999999999\" is out of range");
}

/* pairs.experiment and embed.name become HDF5 link names: checked when the value is read,
 * before any stage runs. */
static void test_hdf5_names(void) {
    const char *bad[] = {".", "..", "a/b", "x y", "", "../up"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char set[64];
        snprintf(set, sizeof set, "pairs.experiment=%s", bad[i]);
        expect_set_error(set, "--set pairs.experiment=");
        if (!*bad[i]) continue; /* embed.name may be empty: the backend's name */
        snprintf(set, sizeof set, "embed.name=%s", bad[i]);
        expect_set_error(set, "--set embed.name=");
    }
    expect_set_error("pairs.experiment=..", "\"..\" cannot name an HDF5 group");
    expect_set_error("embed.name=a/b", "holds '/', which would nest HDF5 groups");
    expect_error("[pairs]\nexperiment = .\n", "t.ini: [pairs] experiment = \".\": \".\" cannot");
    rdml_ctx ctx;
    rdml_config *cfg;
    CHECK_EQ_I(load_fresh(&ctx, &cfg, "[pairs]\nexperiment = svm-V1.2_b\n[embed]\nname =\n"),
               RDML_OK);
    rdml_config_destroy(&cfg);
    /* an empty results path is a configuration error, not an internal one later */
    expect_set_error("run.output=", "--set run.output=: empty: the results file needs a path");
    expect_error("[run]\noutput = \"\"\n", "t.ini: [run] output = \"\": empty");
}

/* Common slips get a hint of their own rather than the nearest spelling. */
static void test_spelling_hints(void) {
    expect_set_error("rdm.metric=pearson", "not a valid choice (correlation is 1 - Pearson r: "
                                           "write correlation; choices: correlation,");
    expect_set_error("rdm.metric=Pearson", "correlation is 1 - Pearson r");
    expect_set_error("data.subjects=subj01", "item 1 \"subj01\" is not allowed (subjects are "
                                             "given by number: subj01 is subject 1 (write 1)");
    expect_set_error("data.subjects=1,subj12", "subj12 is subject 12 (write 12)");
    expect_set_error("embed.backend=clip", "write clip-vit");
    expect_set_error("rdm.compare=kendall", "write kendall_tau_a");
    /* no hint for other words: the nearest choice as before */
    expect_set_error("rdm.metric=cosin", "did you mean \"cosine\"");
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    rdml_config *cfg;
    CHECK_EQ_I(rdml_config_create(&ctx, &cfg), RDML_OK);
    char hint[256];
    int n;
    const rdml_cfg_key *k = rdml_config_schema(&n);
    for (int i = 0; i < n; i++) /* "subj" alone or with letters is no subject number */
        if (!strcmp(k[i].section, "data") && !strcmp(k[i].key, "subjects")) {
            CHECK_EQ_I(rdml_config_spelling_hint(&k[i], "subj", hint, sizeof hint), 0);
            CHECK_EQ_I(rdml_config_spelling_hint(&k[i], "subjx1", hint, sizeof hint), 0);
        }
    rdml_config_destroy(&cfg);
}

/* Keys without effect for the chosen backend or model: one warning each, from the schema's
 * table; every table row names real keys and real values of the deciding key. */
static int warnings_for(const char *text, char *out, size_t n) {
    rdml_ctx ctx;
    rdml_config *cfg;
    CHECK_EQ_I(load_fresh(&ctx, &cfg, text), RDML_OK);
    FILE *f = tmpfile();
    ctx.log = f;
    int w = rdml_config_warn_inapplicable(&ctx, cfg);
    fflush(f);
    rewind(f);
    size_t got = fread(out, 1, n - 1, f);
    out[got] = '\0';
    fclose(f);
    rdml_config_destroy(&cfg);
    return w;
}

static void test_inapplicable_keys(void) {
    char log[4096];
    CHECK_EQ_I(warnings_for("[embed]\nlayer = 3\n", log, sizeof log), 1);
    CHECK_STR_HAS(log, "[embed] layer is set but has no effect with embed.backend = gabor (it "
                       "applies only with embed.backend = clip-vit");
    CHECK_EQ_I(warnings_for("[embed]\nbackend = clip-vit\nlayer = 3\n", log, sizeof log), 0);
    CHECK_EQ_I(warnings_for("[embed]\nlayer = -1\n", log, sizeof log), 0); /* the default */
    CHECK_EQ_I(warnings_for("[train]\nmodel = mlp\ntower = 8\nmlp_widths = 8\ncnn_size = 64\n",
                            log, sizeof log), 2);
    CHECK_STR_HAS(log, "[train] tower is set but has no effect with train.model = mlp");
    CHECK_STR_HAS(log, "[train] cnn_size is set");
    CHECK_EQ_I(warnings_for("[svm]\nkernel = rbf\ndegree = 3\n", log, sizeof log), 1);
    CHECK_EQ_I(warnings_for("[svm]\nkernel = rbf\ndegree = 3\n[grid]\nsvm_kernel = poly,rbf\n",
                            log, sizeof log), 0);
    CHECK_EQ_I(warnings_for("[pairs]\nset = all\nk = 9\n", log, sizeof log), 1);
    int n, na;
    const rdml_cfg_key *k = rdml_config_schema(&n);
    const rdml_cfg_applies *a = rdml_config_applies(&na);
    for (int i = 0; i < na; i++) {
        int key = 0, when = 0, unless = a[i].unless == NULL;
        for (int j = 0; j < n; j++) {
            char dotted[128];
            snprintf(dotted, sizeof dotted, "%s.%s", k[j].section, k[j].key);
            key |= !strcmp(k[j].section, a[i].section) && !strcmp(k[j].key, a[i].key);
            unless |= a[i].unless && !strcmp(dotted, a[i].unless);
            if (strcmp(dotted, a[i].when) != 0) continue;
            when = 1;
            char vals[256];
            snprintf(vals, sizeof vals, "%s", a[i].values);
            for (char *save = NULL, *v = strtok_r(vals, "|", &save); v; v = strtok_r(NULL, "|", &save)) {
                char *canon = NULL, why[512];
                int ok = rdml_config_value_check(&k[j], v, &canon, why, sizeof why) == RDML_CFGV_OK;
                if (!ok) fprintf(stderr, "applies row %d: %s is no value of %s\n", i, v, a[i].when);
                CHECK(ok);
                free(canon);
            }
        }
        if (!key || !when || !unless) fprintf(stderr, "applies row %d names unknown keys\n", i);
        CHECK(key && when && unless);
    }
}

static void put_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (!f) return;
    fputs(text, f);
    fclose(f);
}

/* [run] include: building blocks load first (relative to the including file), the
 * including file overrides them, nesting works, a cycle and a missing file are errors. */
static void test_include(void) {
    char dir[] = "/tmp/rdml-test-include-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char a[128], b[128], job[128], cyc[128], miss[128];
    snprintf(a, sizeof a, "%s/blocks/a.ini", dir);
    snprintf(b, sizeof b, "%s/blocks/b.ini", dir);
    snprintf(job, sizeof job, "%s/job.ini", dir);
    snprintf(cyc, sizeof cyc, "%s/cyc.ini", dir);
    snprintf(miss, sizeof miss, "%s/miss.ini", dir);
    char sub[128];
    snprintf(sub, sizeof sub, "%s/blocks", dir);
    CHECK(mkdir(sub, 0777) == 0);
    put_file(a, "[run]\ninclude = b.ini\n[pairs]\nk = 7\n[svm]\nc = 3\n");
    put_file(b, "[pairs]\nk = 9\nset = balanced\n");
    put_file(job, "[run]\ninclude = blocks/a.ini\n[svm]\nc = 5\n");
    put_file(cyc, "[run]\ninclude = cyc.ini\n");
    put_file(miss, "[run]\ninclude = nope.ini\n");
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    rdml_config *cfg;
    CHECK_EQ_I(rdml_config_create(&ctx, &cfg), RDML_OK);
    CHECK_EQ_I(rdml_config_load(&ctx, cfg, job), RDML_OK);
    int64_t k;
    double c;
    const char *set;
    CHECK_EQ_I(rdml_config_int(&ctx, cfg, "pairs", "k", &k), RDML_OK);
    CHECK_EQ_I(k, 7); /* a.ini overrides b.ini it includes */
    CHECK_EQ_I(rdml_config_real(&ctx, cfg, "svm", "c", &c), RDML_OK);
    CHECK_NEAR(c, 5, 0); /* job.ini overrides a.ini */
    CHECK_EQ_I(rdml_config_str(&ctx, cfg, "pairs", "set", &set), RDML_OK);
    CHECK(strcmp(set, "balanced") == 0);
    rdml_config_destroy(&cfg);
    CHECK_EQ_I(rdml_config_create(&ctx, &cfg), RDML_OK);
    CHECK_EQ_I(rdml_config_load(&ctx, cfg, cyc), RDML_ECONFIG);
    CHECK_STR_HAS(ctx.msg, "include nests more than 8");
    rdml_ctx_clear(&ctx);
    CHECK_EQ_I(rdml_config_load(&ctx, cfg, miss), RDML_EIO);
    CHECK_STR_HAS(ctx.msg, "[run] include = nope.ini");
    CHECK_STR_HAS(ctx.msg, "nope.ini: No such file");
    rdml_config_destroy(&cfg);
    unlink(a);
    unlink(b);
    unlink(job);
    unlink(cyc);
    unlink(miss);
    rmdir(sub);
    rmdir(dir);
}

/* The data folder (rdml_config_set_datadir): a relative name not found where it is looked
 * for first is read from DATA/NAME or DATA/configs/NAME, leading ../ and ./ removed; a file
 * at the first place always wins; a name found nowhere names both places. */
static void test_include_datadir(void) {
    char dir[] = "/tmp/rdml-test-datadir-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char p[16][300];
    const char *sub[] = {"data", "data/configs", "data/configs/paper", "data/jobs", "work",
                         "work/paper"};
    for (int i = 0; i < 6; i++) {
        snprintf(p[i], sizeof p[i], "%s/%s", dir, sub[i]);
        CHECK(mkdir(p[i], 0777) == 0);
    }
    char blk[300], jobblk[300], job[300], local[300], bad[300], data[300], out[400];
    snprintf(data, sizeof data, "%s/data", dir);
    snprintf(blk, sizeof blk, "%s/data/configs/paper/x.ini", dir);
    snprintf(jobblk, sizeof jobblk, "%s/data/jobs/j.ini", dir);
    snprintf(job, sizeof job, "%s/work/job.ini", dir);
    snprintf(local, sizeof local, "%s/work/paper/x.ini", dir);
    snprintf(bad, sizeof bad, "%s/work/bad.ini", dir);
    put_file(blk, "[pairs]\nk = 11\n");
    put_file(jobblk, "[pairs]\nk = 13\n");
    put_file(job, "[run]\ninclude = ../configs/paper/x.ini\n[svm]\nc = 5\n");
    put_file(bad, "[run]\ninclude = paper/nothere.ini\n");
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    rdml_config *cfg;
    int64_t k = 0;
    /* no data folder: the include is not found */
    CHECK(rdml_config_datadir() == NULL);
    CHECK_EQ_I(rdml_config_create(&ctx, &cfg), RDML_OK);
    CHECK_EQ_I(rdml_config_load(&ctx, cfg, job), RDML_EIO);
    rdml_ctx_clear(&ctx);
    rdml_config_set_datadir(data);
    CHECK(rdml_config_datadir() && strcmp(rdml_config_datadir(), data) == 0);
    CHECK_EQ_I(rdml_config_load(&ctx, cfg, job), RDML_OK);
    CHECK_EQ_I(rdml_config_int(&ctx, cfg, "pairs", "k", &k), RDML_OK);
    CHECK_EQ_I(k, 11);
    /* a command-line name (from the current folder) and a name under DATA itself */
    CHECK_EQ_I(rdml_config_load(&ctx, cfg, "./paper/x.ini"), RDML_OK);
    CHECK_EQ_I(rdml_config_load(&ctx, cfg, "jobs/j.ini"), RDML_OK);
    CHECK_EQ_I(rdml_config_int(&ctx, cfg, "pairs", "k", &k), RDML_OK);
    CHECK_EQ_I(k, 13);
    rdml_config_destroy(&cfg);
    CHECK_EQ_I(rdml_config_locate("", "paper/x.ini", out, sizeof out), 1);
    CHECK(strcmp(out, blk) == 0);
    char wdir[300];
    snprintf(wdir, sizeof wdir, "%s/work/", dir);
    CHECK_EQ_I(rdml_config_locate(wdir, "../../configs/paper/x.ini", out, sizeof out), 1);
    CHECK(strcmp(out, blk) == 0);
    /* a file at the first place wins; absolute and unknown names stay as written */
    put_file(local, "[pairs]\nk = 12\n");
    CHECK_EQ_I(rdml_config_locate(wdir, "paper/x.ini", out, sizeof out), 0);
    CHECK(strcmp(out, local) == 0);
    CHECK_EQ_I(rdml_config_locate("", "/nonexistent/paper/x.ini", out, sizeof out), 0);
    CHECK(strcmp(out, "/nonexistent/paper/x.ini") == 0);
    CHECK_EQ_I(rdml_config_locate(wdir, "paper/nothere.ini", out, sizeof out), 0);
    CHECK(strncmp(out, wdir, strlen(wdir)) == 0);
    CHECK_EQ_I(rdml_config_create(&ctx, &cfg), RDML_OK);
    CHECK_EQ_I(rdml_config_load(&ctx, cfg, bad), RDML_EIO);
    CHECK_STR_HAS(ctx.msg, "[run] include = paper/nothere.ini");
    CHECK_STR_HAS(ctx.msg, "next to the file naming it");
    CHECK_STR_HAS(ctx.msg, data);
    rdml_ctx_clear(&ctx);
    rdml_config_destroy(&cfg);
    rdml_config_set_datadir(NULL);
    CHECK(rdml_config_datadir() == NULL);
    unlink(blk);
    unlink(jobblk);
    unlink(job);
    unlink(local);
    unlink(bad);
    for (int i = 5; i >= 0; i--) rmdir(p[i]);
    rmdir(dir);
}

/* rdml_config_from_stored: a dump comes back exactly; [run] include is kept as a value, not
 * followed; keys and values from another version are left out and counted; text that is not
 * INI is an error naming it. */
static void test_from_stored(void) {
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    rdml_config *src, *got = NULL;
    CHECK_EQ_I(rdml_config_create(&ctx, &src), RDML_OK);
    CHECK_EQ_I(rdml_config_set(&ctx, src, "data.root=/d/with space;x"), RDML_OK);
    CHECK_EQ_I(rdml_config_set(&ctx, src, "pairs.color_fraction=0.55"), RDML_OK);
    char *d1 = rdml_config_dump(src, 0);
    int skipped = -1;
    CHECK_EQ_I(rdml_config_from_stored(&ctx, "/meta/stages/rdm", d1, &got, &skipped), RDML_OK);
    CHECK_EQ_I(skipped, 0);
    char *d2 = got ? rdml_config_dump(got, 0) : NULL;
    CHECK(d2 && strcmp(d1, d2) == 0);
    const char *root = NULL;
    double frac = 0;
    if (got) {
        CHECK_EQ_I(rdml_config_str(&ctx, got, "data", "root", &root), RDML_OK);
        CHECK(root && strcmp(root, "/d/with space;x") == 0);
        CHECK(rdml_config_is_set(got, "data", "root"));
    }
    free(d2);
    rdml_config_destroy(&got);
    /* a resolved text naming an include: the include is not read (it would fail here) */
    CHECK_EQ_I(rdml_config_from_stored(&ctx, "s", "[run]\ninclude = /nonexistent/x.ini\n"
               "[pairs]\nk = 7\n", &got, NULL), RDML_OK);
    int64_t k = 0;
    if (got) {
        CHECK_EQ_I(rdml_config_int(&ctx, got, "pairs", "k", &k), RDML_OK);
        CHECK_EQ_I(k, 7);
    }
    rdml_config_destroy(&got);
    /* another version's keys: unknown section, unknown key, a rejected value */
    CHECK_EQ_I(rdml_config_from_stored(&ctx, "s", "[future]\nx = 1\n[pairs]\nk = 9\nnew_key = 2\n"
               "color_fraction = 7\n[data]\nroot = /r\n", &got, &skipped), RDML_OK);
    CHECK_EQ_I(skipped, 3);
    if (got) {
        CHECK_EQ_I(rdml_config_int(&ctx, got, "pairs", "k", &k), RDML_OK);
        CHECK_EQ_I(k, 9);
        CHECK_EQ_I(rdml_config_real(&ctx, got, "pairs", "color_fraction", &frac), RDML_OK);
        CHECK_NEAR(frac, 0.7, 0); /* the default, and not marked as set */
        CHECK(!rdml_config_is_set(got, "pairs", "color_fraction"));
        CHECK_EQ_I(rdml_config_str(&ctx, got, "data", "root", &root), RDML_OK);
        CHECK(strcmp(root, "/r") == 0);
    }
    rdml_config_destroy(&got);
    CHECK_EQ_I(ctx.code, RDML_OK);
    /* not INI */
    CHECK_EQ_I(rdml_config_from_stored(&ctx, "/meta/stages/svm", "[data\nthis is not ini\n", &got,
               NULL), RDML_ECONFIG);
    CHECK_STR_HAS(ctx.msg, "/meta/stages/svm");
    CHECK(got == NULL);
    free(d1);
    rdml_config_destroy(&src);
}

/* Run f with stderr captured into a temporary file; returns what was written. */
static char *capture_stderr(int (*f)(void)) {
    char path[] = "/tmp/rdml-test-stderr-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) return NULL;
    fflush(stderr);
    int saved = dup(2);
    dup2(fd, 2);
    f();
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    close(fd);
    char *s = slurp(path);
    unlink(path);
    return s;
}

static int load_bad_syntax(void) {
    rdml_ctx ctx;
    rdml_config *cfg;
    int rc = load_fresh(&ctx, &cfg, "[data]\nimages 3\nfoo\n");
    CHECK_EQ_I(rc, RDML_ECONFIG);
    CHECK_STR_HAS(ctx.msg, "t.ini:2: cannot parse \"images 3\" (expected key = value, a "
                           "[section] header or a ; comment; 1 more bad lines follow)");
    rdml_config_destroy(&cfg);
    return rc;
}

static void test_syntax_errors(void) {
    char *err = capture_stderr(load_bad_syntax);
    CHECK(err != NULL);
    if (err) CHECK_EQ_I(strlen(err), 0); /* iniparser's own printing is silenced */
    free(err);
    expect_error("[data]\n= 3\n", "t.ini:2: cannot parse \"= 3\"");
    expect_error("\xEF\xBB\xBF[data]\nimages = 3\n", "t.ini starts with a UTF-8 byte-order mark");
    expect_error("[data]\nimages \x01 3\n", "t.ini:2: cannot parse \"images \\x01 3\"");
    expect_error("[data\nimages = 3\n", "t.ini:1: cannot parse \"[data\"");
    char *big = malloc(1300);
    strcpy(big, "[data]\nroot = ");
    memset(big + strlen(big), 'x', 1200);
    strcpy(big + 14 + 1200, "\n");
    expect_error(big, "t.ini:2: line too long");
    free(big);
}

/* ---- files ---- */

static void test_files(void) {
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    rdml_config *cfg;
    CHECK_EQ_I(rdml_config_create(&ctx, &cfg), RDML_OK);
    CHECK_EQ_I(rdml_config_load(&ctx, cfg, "/nonexistent/jobs/x.ini"), RDML_EIO);
    CHECK_STR_HAS(ctx.msg, "cannot open config file /nonexistent/jobs/x.ini: No such file");
    rdml_ctx_clear(&ctx);
    CHECK_EQ_I(rdml_config_load(&ctx, cfg, "/tmp"), RDML_EIO);
    CHECK_STR_HAS(ctx.msg, "config file /tmp is a directory");
    rdml_ctx_clear(&ctx);

    char a[] = "/tmp/rdml-test-a-XXXXXX", b[] = "/tmp/rdml-test-b-XXXXXX";
    close(mkstemp(a));
    close(mkstemp(b));
    const char *ta = "[data]\nimages = 10\nroot = /first\n";
    const char *tb = "[data]\nimages = 20\n[run]\nseed = 7\n";
    CHECK_EQ_I(spit(a, ta, strlen(ta)), 0);
    CHECK_EQ_I(spit(b, tb, strlen(tb)), 0);
    CHECK_EQ_I(rdml_config_load(&ctx, cfg, a), RDML_OK);
    CHECK_EQ_I(rdml_config_load(&ctx, cfg, b), RDML_OK); /* later files override */
    int64_t v;
    const char *s;
    CHECK_EQ_I(rdml_config_int(&ctx, cfg, "data", "images", &v), RDML_OK);
    CHECK_EQ_I(v, 20);
    CHECK_EQ_I(rdml_config_int(&ctx, cfg, "run", "seed", &v), RDML_OK);
    CHECK_EQ_I(v, 7);
    CHECK_EQ_I(rdml_config_str(&ctx, cfg, "data", "root", &s), RDML_OK);
    CHECK(strcmp(s, "/first") == 0);

    /* A bad file names itself and changes nothing. */
    const char *tc = "[data]\nimages = 30\nstandardize = maybe\n";
    CHECK_EQ_I(spit(a, tc, strlen(tc)), 0);
    CHECK_EQ_I(rdml_config_load(&ctx, cfg, a), RDML_ECONFIG);
    CHECK_STR_HAS(ctx.msg, a);
    CHECK_STR_HAS(ctx.msg, ": [data] standardize = \"maybe\": not a boolean");
    rdml_ctx_clear(&ctx);
    CHECK_EQ_I(rdml_config_int(&ctx, cfg, "data", "images", &v), RDML_OK);
    CHECK_EQ_I(v, 20);

    /* NUL bytes: not a text file. */
    CHECK_EQ_I(spit(a, "[data]\n\0images = 1\n", 19), 0);
    CHECK_EQ_I(rdml_config_load(&ctx, cfg, a), RDML_ECONFIG);
    CHECK_STR_HAS(ctx.msg, "contains NUL bytes");
    rdml_ctx_clear(&ctx);
    unlink(a);
    unlink(b);
    rdml_config_destroy(&cfg);
}

static void test_failed_load_changes_nothing(void) {
    rdml_ctx ctx;
    rdml_config *cfg;
    CHECK_EQ_I(load_fresh(&ctx, &cfg, "[data]\nimages = 5\n"), RDML_OK);
    char *before = rdml_config_dump(cfg, 0);
    /* Valid keys first, then an error: none of them may stick. */
    CHECK_EQ_I(rdml_config_load_text(&ctx, cfg, "u.ini", "[data]\nimages = 9\nroot = /z\n"
                                                          "[synth]\nnoise = 1e999\n"),
               RDML_ECONFIG);
    char *after = rdml_config_dump(cfg, 0);
    CHECK(before && after && strcmp(before, after) == 0);
    CHECK_EQ_I(rdml_config_is_set(cfg, "data", "root"), 0);
    free(before);
    free(after);
    rdml_config_destroy(&cfg);
}

/* ---- --set ---- */

static void test_set_overrides(void) {
    rdml_ctx ctx;
    rdml_config *cfg;
    CHECK_EQ_I(load_fresh(&ctx, &cfg, "[data]\nimages = 5\n"), RDML_OK);
    CHECK_EQ_I(rdml_config_set(&ctx, cfg, "data.images=500"), RDML_OK);
    CHECK_EQ_I(rdml_config_set(&ctx, cfg, " Run.Log_Level = Warn "), RDML_OK);
    CHECK_EQ_I(rdml_config_set(&ctx, cfg, "run.output=\"my results;1.h5\""), RDML_OK);
    CHECK_EQ_I(rdml_config_set(&ctx, cfg, "data.subjects=3,1"), RDML_OK);
    int64_t v;
    const char *s;
    CHECK_EQ_I(rdml_config_int(&ctx, cfg, "data", "images", &v), RDML_OK);
    CHECK_EQ_I(v, 500);
    CHECK_EQ_I(rdml_config_str(&ctx, cfg, "run", "log_level", &s), RDML_OK);
    CHECK(strcmp(s, "warn") == 0);
    CHECK_EQ_I(rdml_config_str(&ctx, cfg, "run", "output", &s), RDML_OK);
    CHECK(strcmp(s, "my results;1.h5") == 0);
    CHECK_EQ_I(rdml_config_is_set(cfg, "run", "output"), 1);
    rdml_config_destroy(&cfg);

    expect_set_error("data.images=abc",
                     "--set data.images=abc: not an integer (expected a whole number >= 0");
    expect_set_error("synth.noise=-1", "--set synth.noise=-1: below the minimum 0");
    expect_set_error("data.images", "--set data.images: missing \"=\" (write --set "
                                    "section.key=value");
    expect_set_error("images=3", "--set images=3: the key needs its section, as "
                                 "section.key=value (images is in [data], [synth] and [pairs]: e.g. --set "
                                 "data.images=3)");
    expect_set_error("seed=x", "(seed is in [run]: --set run.seed=x)");
    expect_set_error("=3", "--set =3: missing the key name before \"=\"");
    expect_set_error("data.=3", "--set data.=3: expected section.key before \"=\"");
    expect_set_error(".images=3", "expected section.key");
    expect_set_error("dta.images=3",
                     "--set dta.images=3: unknown section [dta] (did you mean [data]?");
    expect_set_error("data.imgs=3",
                     "--set data.imgs=3: unknown key [data] imgs (did you mean \"images\"?");
    expect_set_error("data.root=a\tb", "--set data.root=a\\tb: contains a control character");
    expect_set_error("data.root=it's \"x\";y", "holds both quote characters");
}

/* ---- required keys, INT_LIST, REAL_LIST: a test schema ---- */

static const rdml_cfg_key test_schema[] = {
    {"t", "ints", RDML_CFG_INT_LIST, "1,2", 1, 10, NULL, "layer sizes. More words."},
    {"t", "reals", RDML_CFG_REAL_LIST, "0.5", 0, 1, NULL, "rates to try"},
    {"t", "need", RDML_CFG_INT, NULL, 0, 5, NULL, "a required number"},
    {"t", "name", RDML_CFG_STRING, "", 1, 0, NULL, "free text"},
    {"u", "path", RDML_CFG_PATH, NULL, 1, 0, NULL, "a required path"},
    {"u", "colors", RDML_CFG_LIST, "red,blue", 1, 0, "red|green|blue", "colour classes"},
};

static void test_required_keys(void) {
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    rdml_config *cfg;
    CHECK_EQ_I(rdml_config_create_with_schema(&ctx, test_schema, 6, &cfg), RDML_OK);
    CHECK_EQ_I(rdml_config_check_required(&ctx, cfg), RDML_ECONFIG);
    CHECK_STR_HAS(ctx.msg, "missing required keys [t] need, [u] path (no default; set them in "
                           "the config file or pass --set t.need=VALUE)");
    rdml_ctx_clear(&ctx);
    int64_t v;
    CHECK_EQ_I(rdml_config_int(&ctx, cfg, "t", "need", &v), RDML_ECONFIG);
    CHECK_STR_HAS(ctx.msg, "required key [t] need is not set");
    rdml_ctx_clear(&ctx);
    /* The dump of an unset required key is a comment, so it reloads unchanged. */
    char *d1 = rdml_config_dump(cfg, 0);
    CHECK_STR_HAS(d1, "; need = (required: not set)\n");
    CHECK_STR_HAS(d1, "name = \"\"\n");
    CHECK_EQ_I(rdml_config_load_text(&ctx, cfg, "job.ini", "[t]\nneed = 3\n"), RDML_OK);
    CHECK_EQ_I(rdml_config_check_required(&ctx, cfg), RDML_ECONFIG);
    CHECK_STR_HAS(ctx.msg, "missing required key [u] path (no default; set it in job.ini or "
                           "pass --set u.path=VALUE)");
    rdml_ctx_clear(&ctx);
    CHECK_EQ_I(rdml_config_set(&ctx, cfg, "u.path=/x"), RDML_OK);
    CHECK_EQ_I(rdml_config_check_required(&ctx, cfg), RDML_OK);
    CHECK_EQ_I(rdml_config_int(&ctx, cfg, "t", "need", &v), RDML_OK);
    CHECK_EQ_I(v, 3);
    free(d1);
    rdml_config_destroy(&cfg);

    /* A default that breaks its own rules is a bug caught at create. */
    static const rdml_cfg_key bad[] = {
        {"t", "x", RDML_CFG_INT, "11", 0, 10, NULL, "out of range default"}};
    CHECK_EQ_I(rdml_config_create_with_schema(&ctx, bad, 1, &cfg), RDML_EINTERNAL);
    CHECK_STR_HAS(ctx.msg, "[t] x = 11: above the maximum 10");
    CHECK(cfg == NULL);
    rdml_ctx_clear(&ctx);
    static const rdml_cfg_key upper[] = {{"t", "X", RDML_CFG_INT, "1", 0, 10, NULL, "upper"}};
    CHECK_EQ_I(rdml_config_create_with_schema(&ctx, upper, 1, &cfg), RDML_EINTERNAL);
    rdml_ctx_clear(&ctx);
    static const rdml_cfg_key split[] = {{"a", "x", RDML_CFG_INT, "1", 0, 10, NULL, "h"},
                                         {"b", "y", RDML_CFG_INT, "1", 0, 10, NULL, "h"},
                                         {"a", "z", RDML_CFG_INT, "1", 0, 10, NULL, "h"}};
    CHECK_EQ_I(rdml_config_create_with_schema(&ctx, split, 3, &cfg), RDML_EINTERNAL);
    CHECK_STR_HAS(ctx.msg, "section [a] is split");
}

static void test_number_lists(void) {
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    rdml_config *cfg;
    CHECK_EQ_I(rdml_config_create_with_schema(&ctx, test_schema, 6, &cfg), RDML_OK);
    CHECK_EQ_I(rdml_config_load_text(&ctx, cfg, "l.ini", "[t]\nints = 8, 08,+3\n"
                                                          "reals = 0.1,1e-2 , 1\n"), RDML_OK);
    int64_t *iv = NULL;
    double *dv = NULL;
    int n = 0;
    CHECK_EQ_I(rdml_config_int_list(&ctx, cfg, "t", "ints", &iv, &n), RDML_OK);
    CHECK_EQ_I(n, 3); /* repeats are fine in number lists (layer widths) */
    if (n == 3) {
        CHECK_EQ_I(iv[0], 8);
        CHECK_EQ_I(iv[1], 8);
        CHECK_EQ_I(iv[2], 3);
    }
    free(iv);
    CHECK_EQ_I(rdml_config_real_list(&ctx, cfg, "t", "reals", &dv, &n), RDML_OK);
    CHECK_EQ_I(n, 3);
    if (n == 3) {
        CHECK_NEAR(dv[0], 0.1, 0);
        CHECK_NEAR(dv[1], 0.01, 0);
        CHECK_NEAR(dv[2], 1.0, 0);
    }
    free(dv);
    char **items;
    CHECK_EQ_I(rdml_config_list(&ctx, cfg, "t", "ints", &items, &n), RDML_OK);
    CHECK(n == 3 && strcmp(items[1], "8") == 0);
    free(items);
    CHECK_EQ_I(rdml_config_load_text(&ctx, cfg, "l.ini", "[t]\nints = 1,11\n"), RDML_ECONFIG);
    CHECK_STR_HAS(ctx.msg, "l.ini: [t] ints = 1,11: item 2 = 11: above the maximum 10");
    rdml_ctx_clear(&ctx);
    CHECK_EQ_I(rdml_config_load_text(&ctx, cfg, "l.ini", "[t]\nints = 1,x\n"), RDML_ECONFIG);
    CHECK_STR_HAS(ctx.msg, "l.ini: [t] ints = \"1,x\": item 2 \"x\" is not an integer (expected "
                           "comma-separated whole numbers, each from 1 to 10; layer sizes)");
    rdml_ctx_clear(&ctx);
    CHECK_EQ_I(rdml_config_load_text(&ctx, cfg, "l.ini", "[t]\nreals = 0.5,nan\n"), RDML_ECONFIG);
    CHECK_STR_HAS(ctx.msg, "item 2 \"nan\" is not a number");
    rdml_ctx_clear(&ctx);
    CHECK_EQ_I(rdml_config_load_text(&ctx, cfg, "l.ini", "[t]\nreals = -0.5\n"), RDML_ECONFIG);
    CHECK_STR_HAS(ctx.msg, "item 1 = -0.5: below the minimum 0");
    rdml_ctx_clear(&ctx);
    CHECK_EQ_I(rdml_config_load_text(&ctx, cfg, "l.ini", "[u]\ncolors = red,purple\n"),
               RDML_ECONFIG);
    CHECK_STR_HAS(ctx.msg, "item 2 \"purple\" is not allowed (expected comma-separated list of "
                           "red, green, blue; colour classes)");
    rdml_ctx_clear(&ctx);
    /* Values unchanged by the failed loads. */
    CHECK_EQ_I(rdml_config_int_list(&ctx, cfg, "t", "ints", &iv, &n), RDML_OK);
    CHECK_EQ_I(n, 3);
    free(iv);
    double d;
    CHECK_EQ_I(rdml_config_real(&ctx, cfg, "t", "reals", &d), RDML_EINTERNAL);
    rdml_config_destroy(&cfg);
}

/* ---- dump ---- */

static void check_round_trip(rdml_config *cfg, int commented) {
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    char *d1 = rdml_config_dump(cfg, commented);
    CHECK(d1 != NULL);
    if (!d1) return;
    rdml_config *fresh;
    CHECK_EQ_I(rdml_config_create(&ctx, &fresh), RDML_OK);
    int rc = rdml_config_load_text(&ctx, fresh, "dump", d1);
    CHECK_EQ_I(rc, RDML_OK);
    if (rc) fprintf(stderr, "%s\n--- dump was:\n%s\n", ctx.msg, d1);
    char *d2 = rdml_config_dump(fresh, commented);
    CHECK(d2 && strcmp(d1, d2) == 0);
    free(d1);
    free(d2);
    rdml_config_destroy(&fresh);
}

static void test_dump_round_trip(void) {
    rdml_ctx ctx;
    rdml_config *cfg;
    CHECK_EQ_I(load_fresh(&ctx, &cfg, "[data]\nimages = 007\nsubjects = 2, 1\n"
                                      "rois = class:Words,FFA-1\nstandardize = no\n"
                                      "[synth]\nnoise = 2.5e-1\n[run]\nseed = 9007199254740992\n"),
               RDML_OK);
    check_round_trip(cfg, 0);
    check_round_trip(cfg, 1);
    char *d = rdml_config_dump(cfg, 0);
    CHECK_STR_HAS(d, "[data]\nroot = data/synth\nsubjects = 2,1\nrois = class:Words,FFA-1\n"
                     "images = 7\nstandardize = false\n\n[synth]\n");
    CHECK_STR_HAS(d, "noise = 2.5e-1\n");
    free(d);
    /* Values that need quoting survive: ';', '#', edge spaces, quotes, a trailing '\'. */
    const char *paths[] = {"a;b", "x#y", " lead", "trail ", "it's;", "\"q\"", "back\\",
                           "'single", "", "a=b", "[x]"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        char set[128];
        snprintf(set, sizeof set, "data.root=\"%s\"", paths[i]);
        if (strchr(paths[i], '"')) snprintf(set, sizeof set, "data.root='%s'", paths[i]);
        CHECK_EQ_I(rdml_config_set(&ctx, cfg, set), RDML_OK);
        const char *s;
        CHECK_EQ_I(rdml_config_str(&ctx, cfg, "data", "root", &s), RDML_OK);
        CHECK(strcmp(s, paths[i]) == 0);
        check_round_trip(cfg, 0);
        /* ... and the reloaded value is the same string. */
        char *dd = rdml_config_dump(cfg, 0);
        rdml_config *fresh;
        rdml_ctx_init(&ctx);
        CHECK_EQ_I(rdml_config_create(&ctx, &fresh), RDML_OK);
        CHECK_EQ_I(rdml_config_load_text(&ctx, fresh, "dump", dd), RDML_OK);
        CHECK_EQ_I(rdml_config_str(&ctx, fresh, "data", "root", &s), RDML_OK);
        CHECK(s && strcmp(s, paths[i]) == 0);
        free(dd);
        rdml_config_destroy(&fresh);
    }
    rdml_config_destroy(&cfg);
}

static void test_commented_dump_documents_every_key(void) {
    char *t = rdml_config_defaults_text();
    CHECK(t != NULL);
    if (!t) return;
    CHECK(strncmp(t, "; rdmlearn configuration defaults — generated by `rdmlearn config "
                     "--defaults`; every key is documented here\n", 98) == 0);
    CHECK_STR_HAS(t, "\n; images: keep the first N images of each subject; 0 means all images.");
    CHECK_STR_HAS(t, "integer, >= 0. default: 0\nimages = 0\n");
    CHECK_STR_HAS(t, "; seed: ");
    CHECK_STR_HAS(t, "integer, 0 to 9007199254740992. default: 42\nseed = 42\n");
    CHECK_STR_HAS(t, "one of quiet, error, warn, info, debug. default: info\nlog_level = info\n");
    CHECK_STR_HAS(t, "; [synth]: the synthetic dataset");
    int n;
    const rdml_cfg_key *k = rdml_config_schema(&n);
    for (int i = 0; i < n; i++) {
        char want[128];
        snprintf(want, sizeof want, "\n; %s: ", k[i].key);
        CHECK_STR_HAS(t, want);
    }
    /* No comment line is wider than the wrap width unless it is one long word. */
    for (const char *p = strchr(t, '\n') + 1; *p;) { /* the fixed header line may be wider */
        size_t l = strcspn(p, "\n");
        if (l > 92 && memchr(p + 2, ' ', l - 2)) {
            fprintf(stderr, "long line: %.*s\n", (int)l, p);
            CHECK(0);
        }
        p += l + (p[l] ? 1 : 0);
    }
    free(t);
}

/* ---- committed files generated from the schema ---- */

static void test_defaults_file_in_sync(void) {
    char *want = rdml_config_defaults_text();
    char *have = slurp(src_path("configs/defaults.ini"));
    CHECK(want && have);
    if (want && have && strcmp(want, have) != 0) {
        fprintf(stderr, "configs/defaults.ini is out of date: run `test_config --regen`\n");
        CHECK(0);
    }
    free(want);
    free(have);
}

static void test_docs_reference_in_sync(void) {
    char *want = rdml_config_markdown();
    char *have = slurp(src_path("docs/config.md"));
    CHECK(want && have);
    if (want && have && !strstr(have, want)) {
        fprintf(stderr, "docs/config.md reference is out of date: run `test_config --regen`\n");
        CHECK(0);
    }
    free(want);
    free(have);
}

/* Rewrite configs/defaults.ini and the generated block of docs/config.md. */
static int regen(void) {
    char *def = rdml_config_defaults_text();
    if (!def || spit(src_path("configs/defaults.ini"), def, strlen(def))) {
        fprintf(stderr, "cannot write %s\n", src_path("configs/defaults.ini"));
        return 1;
    }
    printf("wrote %s\n", src_path("configs/defaults.ini"));
    free(def);
    char *md = rdml_config_markdown();
    char *doc = slurp(src_path("docs/config.md"));
    char *b = doc ? strstr(doc, RDML_CFG_MD_BEGIN) : NULL;
    char *e = b ? strstr(b, RDML_CFG_MD_END) : NULL;
    if (!md || !e) {
        fprintf(stderr, "docs/config.md lacks the generated-block markers\n");
        return 1;
    }
    e += strlen(RDML_CFG_MD_END) + (e[strlen(RDML_CFG_MD_END)] == '\n');
    FILE *f = fopen(src_path("docs/config.md"), "wb");
    if (!f) return 1;
    fwrite(doc, 1, (size_t)(b - doc), f);
    fputs(md, f);
    fputs(e, f);
    fclose(f);
    printf("updated %s\n", src_path("docs/config.md"));
    free(md);
    free(doc);
    return 0;
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--regen") == 0) return regen();
    RUN(test_schema_is_consistent);
    RUN(test_defaults_through_getters);
    RUN(test_getter_misuse_is_internal);
    RUN(test_int_is_strict_decimal);
    RUN(test_parsers_directly);
    RUN(test_real_is_strict_and_finite);
    RUN(test_bool_and_choice);
    RUN(test_lists);
    RUN(test_unknown_names);
    RUN(test_case_is_folded);
    RUN(test_quotes_and_comments);
    RUN(test_duplicate_keys_are_errors);
    RUN(test_continuation_lines);
    RUN(test_unterminated_quotes);
    RUN(test_huge_integers);
    RUN(test_hdf5_names);
    RUN(test_spelling_hints);
    RUN(test_inapplicable_keys);
    RUN(test_syntax_errors);
    RUN(test_files);
    RUN(test_include);
    RUN(test_include_datadir);
    RUN(test_from_stored);
    RUN(test_failed_load_changes_nothing);
    RUN(test_set_overrides);
    RUN(test_required_keys);
    RUN(test_number_lists);
    RUN(test_dump_round_trip);
    RUN(test_commented_dump_documents_every_key);
    RUN(test_defaults_file_in_sync);
    RUN(test_docs_reference_in_sync);
    return test_summary();
}
