/* Tests of rdml/pymap.h against mapping files written by numpy 1.24 (np.save of a dict, and the
 * same array pickled with protocols 2 and 4; tools/make_io_fixtures.py). The dicts below are the
 * inputs that script saved; the reader must recover them, the writer must reproduce numpy's
 * bytes, and hostile or broken pickles must be refused with a message naming the file. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rdml/core.h"
#include "rdml/pth.h"
#include "rdml/pymap.h"
#include "test.h"

static char tmpdir[512];

static const char *tmp_path(const char *name) {
    static char buf[1024];
    snprintf(buf, sizeof buf, "%s/%s", tmpdir, name);
    return buf;
}

static uint8_t *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)sz + 1);
    *n = fread(b, 1, (size_t)sz, f);
    fclose(f);
    return b;
}

static int same_bytes(const char *a, const char *b) {
    size_t na = 0, nb = 0;
    uint8_t *x = slurp(a, &na), *y = slurp(b, &nb);
    int ok = x && y && na == nb && memcmp(x, y, na) == 0;
    if (!ok) fprintf(stderr, "  %s (%zu bytes) differs from %s (%zu bytes)\n", a, na, b, nb);
    free(x);
    free(y);
    return ok;
}

/* The dicts of tools/make_io_fixtures.py, in insertion order. */
static const int64_t roi_keys[] = {0, 1, 2, 3, 4, 5, 6, 7};
static const char *const roi_names[] = {"Unknown", "V1v", "V1d", "V2v", "V2d", "V3v", "V3d", "hV4"};
static const int64_t wide_keys[] = {0,
                                    255,
                                    256,
                                    300,
                                    65535,
                                    65536,
                                    -1,
                                    -5,
                                    INT64_C(2147483647),
                                    -INT64_C(2147483648),
                                    INT64_C(2147483648),
                                    INT64_C(1) << 40,
                                    -(INT64_C(1) << 40),
                                    -(INT64_C(1) << 47),
                                    INT64_MAX,
                                    INT64_MIN,
                                    9};
static const char *const wide_names[] = {
    "Unknown", "b255", "b256", "x", "w", "w1", "minus one", "neg",
    "i32max", "i32min", "long", "huge", "nh", "edge", "max", "min",
    "h\xc3\xa9llo \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80"};

static int equals(const rdml_pymap *m, const int64_t *keys, const char *const *names, int64_t n) {
    if (m->n != n) {
        fprintf(stderr, "  %lld entries, expected %lld\n", (long long)m->n, (long long)n);
        return 0;
    }
    for (int64_t i = 0; i < n; i++) {
        if (m->keys[i] != keys[i] || strcmp(m->names[i], names[i]) != 0) {
            fprintf(stderr, "  entry %lld: %lld -> '%s', expected %lld -> '%s'\n", (long long)i,
                    (long long)m->keys[i], m->names[i], (long long)keys[i], names[i]);
            return 0;
        }
    }
    return 1;
}

static void test_algonauts_mapping_protocols_2_3_4(void) {
    const char *files[] = {"io/map_p3.npy", "io/map_p2.npy", "io/map_p4.npy", "io/map_np2_p4.npy"};
    for (int q = 0; q < 4; q++) {
        rdml_ctx ctx;
        rdml_ctx_init(&ctx);
        rdml_pymap m;
        int rc = rdml_pymap_read(&ctx, test_fixture(files[q]), &m);
        CHECK_EQ_I(rc, RDML_OK);
        if (rc) fprintf(stderr, "  %s\n", ctx.msg);
        CHECK(equals(&m, roi_keys, roi_names, 8));
        CHECK(rdml_pymap_get(&m, 7) && !strcmp(rdml_pymap_get(&m, 7), "hV4"));
        CHECK(rdml_pymap_get(&m, 8) == NULL);
        rdml_pymap_free(&m);
        CHECK_EQ_I(m.n, 0);
        rdml_pymap_free(&m);
    }
}

static void test_wide_keys_and_unicode_names(void) {
    const char *files[] = {"io/map_wide_p3.npy", "io/map_wide_p2.npy", "io/map_wide_p4.npy"};
    for (int q = 0; q < 3; q++) {
        rdml_ctx ctx;
        rdml_ctx_init(&ctx);
        rdml_pymap m;
        CHECK_EQ_I(rdml_pymap_read(&ctx, test_fixture(files[q]), &m), RDML_OK);
        CHECK(equals(&m, wide_keys, wide_names, 17));
        CHECK(rdml_pymap_get(&m, INT64_MIN) && !strcmp(rdml_pymap_get(&m, INT64_MIN), "min"));
        rdml_pymap_free(&m);
    }
}

static void test_empty_single_large_and_memo(void) {
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    rdml_pymap m;
    CHECK_EQ_I(rdml_pymap_read(&ctx, test_fixture("io/map_empty_p3.npy"), &m), RDML_OK);
    CHECK_EQ_I(m.n, 0);
    CHECK(rdml_pymap_get(&m, 0) == NULL);
    rdml_pymap_free(&m);

    CHECK_EQ_I(rdml_pymap_read(&ctx, test_fixture("io/map_one_p3.npy"), &m), RDML_OK);
    const int64_t k5 = 5;
    const char *only[] = {"only"};
    CHECK(equals(&m, &k5, only, 1));
    rdml_pymap_free(&m);

    /* 1001 entries: two SETITEMS batches, LONG_BINPUT memo indices, protocol 4 frames */
    const char *big[] = {"io/map_1001_p3.npy", "io/map_1001_p4.npy"};
    for (int q = 0; q < 2; q++) {
        CHECK_EQ_I(rdml_pymap_read(&ctx, test_fixture(big[q]), &m), RDML_OK);
        CHECK_EQ_I(m.n, 1001);
        int bad = 0;
        for (int64_t i = 0; i < m.n; i++) {
            char want[16];
            snprintf(want, sizeof want, "n%lld", (long long)i);
            bad += m.keys[i] != i || strcmp(m.names[i], want) != 0;
        }
        CHECK_EQ_I(bad, 0);
        rdml_pymap_free(&m);
    }

    /* one str object used twice: the second value is a BINGET of the memo */
    CHECK_EQ_I(rdml_pymap_read(&ctx, test_fixture("io/map_memo_p3.npy"), &m), RDML_OK);
    const int64_t k01[] = {0, 1};
    const char *same[] = {"same", "same"};
    CHECK(equals(&m, k01, same, 2));
    rdml_pymap_free(&m);
}

static void write_and_compare(const int64_t *keys, const char *const *names, int64_t n,
                              const char *fixture) {
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    rdml_pymap m = {n, (int64_t *)keys, (char **)names};
    const char *out = tmp_path("written.npy");
    CHECK_EQ_I(rdml_pymap_write(&ctx, out, &m), RDML_OK);
    CHECK(same_bytes(out, test_fixture(fixture)));
    rdml_pymap back;
    CHECK_EQ_I(rdml_pymap_read(&ctx, out, &back), RDML_OK);
    CHECK(equals(&back, keys, names, n));
    rdml_pymap_free(&back);
    unlink(out);
}

static void test_writer_byte_identical_to_np_save(void) {
    write_and_compare(roi_keys, roi_names, 8, "io/map_p3.npy");
    write_and_compare(wide_keys, wide_names, 17, "io/map_wide_p3.npy");
    write_and_compare(NULL, NULL, 0, "io/map_empty_p3.npy");
    const int64_t k5 = 5;
    const char *only[] = {"only"};
    write_and_compare(&k5, only, 1, "io/map_one_p3.npy");
    int64_t *keys = malloc(1001 * sizeof *keys);
    char **names = malloc(1001 * sizeof *names);
    for (int i = 0; i < 1001; i++) {
        keys[i] = i;
        names[i] = malloc(16);
        snprintf(names[i], 16, "n%d", i);
    }
    write_and_compare(keys, (const char *const *)names, 1001, "io/map_1001_p3.npy");
    /* exactly 1000 entries: numpy ends with an empty MARK/SETITEMS batch; read it back */
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    rdml_pymap m = {1000, keys, names}, back;
    CHECK_EQ_I(rdml_pymap_write(&ctx, tmp_path("k.npy"), &m), RDML_OK);
    CHECK_EQ_I(rdml_pymap_read(&ctx, tmp_path("k.npy"), &back), RDML_OK);
    CHECK(equals(&back, keys, (const char *const *)names, 1000));
    rdml_pymap_free(&back);
    unlink(tmp_path("k.npy"));
    for (int i = 0; i < 1001; i++) free(names[i]);
    free(names);
    free(keys);
}

static void check_read_fails(const char *name, const char *sub1, const char *sub2) {
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    rdml_pymap m;
    int rc = rdml_pymap_read(&ctx, test_fixture(name), &m);
    CHECK(rc != RDML_OK);
    CHECK_STR_HAS(ctx.msg, name + 3);
    CHECK_STR_HAS(ctx.msg, sub1);
    if (sub2) CHECK_STR_HAS(ctx.msg, sub2);
    CHECK_EQ_I(m.n, 0);
    CHECK(m.keys == NULL && m.names == NULL);
}

static void test_hostile_and_broken_pickles_refused(void) {
    check_read_fails("io/evil_global.npy",
                     "pickle opcode 'c' (GLOBAL os.system) at byte 128 is not allowed in a "
                     "mapping file",
                     "never executed");
    check_read_fails("io/evil_p4.npy", "(STACK_GLOBAL builtins.eval)", "not allowed");
    check_read_fails("io/wrong_global.npy", "(GLOBAL numpy.zeros) at byte 205", NULL);
    check_read_fails("io/trunc_map.npy", "truncated", NULL);
    check_read_fails("io/map_strkey.npy", "key is not an integer", NULL);
    check_read_fails("io/map_intval.npy", "value is not a string", NULL);
    check_read_fails("io/map_list.npy", "second list", NULL);
    check_read_fails("io/map_two.npy", "not a mapping file", "shape (2,)");
    check_read_fails("io/pickle_f4.npy", "not a mapping file", "<f4");
    check_read_fails("io/bad_magic.npy", "not a .npy file", NULL);
    check_read_fails("io/no_such_mapping.npy", "cannot open", NULL);
}

static void test_parse_from_memory(void) {
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    rdml_pymap m;
    size_t n = 0;
    uint8_t *pk = slurp(test_fixture("io/pickle_p3.bin"), &n);
    CHECK(pk != NULL);
    if (!pk) return;
    CHECK_EQ_I(rdml_pymap_parse(&ctx, "stream", pk, n, &m), RDML_OK);
    CHECK(equals(&m, roi_keys, roi_names, 8));
    rdml_pymap_free(&m);
    /* trailing bytes after STOP */
    uint8_t *longer = malloc(n + 1);
    memcpy(longer, pk, n);
    longer[n] = '.';
    CHECK_EQ_I(rdml_pymap_parse(&ctx, "stream", longer, n + 1, &m), RDML_EFORMAT);
    CHECK_STR_HAS(ctx.msg, "trailing data");
    rdml_ctx_clear(&ctx);
    free(longer);
    /* every prefix is an error, never a crash or a partial result */
    int ok_prefixes = 0;
    for (size_t len = 0; len < n; len++) {
        rdml_ctx c2;
        rdml_ctx_init(&c2);
        if (rdml_pymap_parse(&c2, "prefix", pk, len, &m) == RDML_OK) ok_prefixes++;
        CHECK(m.n == 0);
    }
    CHECK_EQ_I(ok_prefixes, 0);
    /* every single-byte change either parses or fails cleanly (run under ASan) */
    uint8_t *mut = malloc(n);
    static const uint8_t vals[] = {0x00, 0x01, 0x7f, 0x80, 0xff, '(', 't', 'u', 'h', 'q', '.'};
    int parsed = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t v = 0; v < sizeof vals; v++) {
            memcpy(mut, pk, n);
            mut[i] = vals[v];
            rdml_ctx c3;
            rdml_ctx_init(&c3);
            if (rdml_pymap_parse(&c3, "mutant", mut, n, &m) == RDML_OK) parsed++;
            else CHECK(c3.msg[0] != '\0');
            rdml_pymap_free(&m);
        }
    CHECK(parsed > 0); /* e.g. a changed name byte still parses */
    free(mut);
    free(pk);
    /* protocol 0, straight from the start */
    const char evil[] = "cposix\nsystem\n(S'true'\ntR.";
    CHECK_EQ_I(rdml_pymap_parse(&ctx, "evil", (const uint8_t *)evil, sizeof evil - 1, &m),
               RDML_EFORMAT);
    CHECK_STR_HAS(ctx.msg, "evil: pickle opcode 'c' (GLOBAL posix.system) at byte 0");
}

/* The ROI-mapping reader and the .pth state-dict reader are two builders on one restricted
 * unpickler (src/io/pickle.c): the same hostile or broken bytes are refused by both with the
 * same finding (opcode name, global, byte offset), each in its own reader's wording. */
static void test_one_machine_for_both_readers(void) {
    char longname[400] = "\x80\x02" "c";
    for (int i = 0; i < 200; i++) strcat(longname, "m");
    strcat(longname, "\nsystem\n.");
#define PK(lit) lit, sizeof lit - 1
    const struct { const char *pkl; size_t len; const char *msg; } cases[] = {
        {PK("\x80\x02" "cos\nsystem\nX\x02\x00\x00\x00ls\x85R."), "os.system"},
        {PK("\x80\x02" "(ios\nsystem\n."), "'i' (INST) at byte 3"},
        {PK("\x80\x02" "N)\x81."), "(NEWOBJ) at byte 4"},
        {PK("\x80\x02" "(N)o."), "'o' (OBJ) at byte 5"},
        {PK("\x80\x02" "\x82\x01."), "(EXT1) at byte 2"},
        {PK("\x80\x02" "P1\n."), "'P' (PERSID) at byte 2"},
        {PK("\x80\x05" "\x8f."), "(EMPTY_SET) at byte 2"},
        {PK("\x80\x05" "\x97."), "(NEXT_BUFFER) at byte 2"},
        {PK("\x80\x02" "))R."), "REDUCE calls something that is not an allowed global"},
        {PK("\x80\x02" "NN."), "STOP with 2 values left on the stack"},
        {PK("\x80\x02" "N.N"), "1 bytes of trailing data after STOP"},
        {PK("\x80\x02" "X\xff\xff\x00\x00ab"), "truncated"},
        {PK("\x80\x01" "N."), "pickle protocol 1"},
        {longname, 0, "mmm..."},
    };
#undef PK
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const size_t len = cases[i].len ? cases[i].len : strlen(cases[i].pkl);
        rdml_ctx a, b;
        rdml_ctx_init(&a);
        rdml_ctx_init(&b);
        a.log_level = b.log_level = RDML_LOG_QUIET;
        rdml_pymap m;
        int64_t nt = -1;
        CHECK_EQ_I(rdml_pymap_parse(&a, "map", (const uint8_t *)cases[i].pkl, len, &m), RDML_EFORMAT);
        CHECK_EQ_I(rdml_pth_parse_pickle(&b, "pth", (const uint8_t *)cases[i].pkl, len, &nt), RDML_EFORMAT);
        CHECK_STR_HAS(a.msg, cases[i].msg);
        CHECK_STR_HAS(b.msg, cases[i].msg);
        CHECK(strlen(a.msg) < 700 && strlen(b.msg) < 900); /* long names are cut */
        CHECK_EQ_I(m.n, 0);
        CHECK_EQ_I(nt, 0);
    }
}

int main(void) {
    const char *t = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/rdml-pymap-XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(test_algonauts_mapping_protocols_2_3_4);
    RUN(test_wide_keys_and_unicode_names);
    RUN(test_empty_single_large_and_memo);
    RUN(test_writer_byte_identical_to_np_save);
    RUN(test_hostile_and_broken_pickles_refused);
    RUN(test_one_machine_for_both_readers);
    RUN(test_parse_from_memory);
    rmdir(tmpdir);
    return test_summary();
}
