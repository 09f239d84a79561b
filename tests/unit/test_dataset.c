/* Unit tests of the Algonauts loader against tests/fixtures/algonauts_mini, whose expected
 * values (expected.json) were computed by numpy in tools/make_dataset_fixture.py: subject
 * listing, image names / NSD ids, vertex and ROI counts, selections (column lists), fMRI
 * blocks, the describe table, and bad inputs (missing root or subject, unknown ROI or class,
 * empty selection, and broken copies of the fixture made in a temporary folder: a mask whose
 * length disagrees with the fMRI file, missing or misnamed images, incomplete or absent ROI
 * classes, labels the mapping does not name). */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rdml/dataset.h"
#include "rdml/npy.h"
#include "test.h"

static json_t *expected;
static char root[4096];

static json_t *subj_json(int id) {
    char key[16];
    snprintf(key, sizeof key, "subj%02d", id);
    return json_object_get(expected, key);
}

static rdml_dataset *open_fixture(rdml_ctx *ctx) {
    rdml_dataset *ds = NULL;
    int rc = rdml_dataset_open(ctx, root, &ds);
    CHECK_EQ_I(rc, RDML_OK);
    if (rc) fprintf(stderr, "%s\n", ctx->msg);
    return ds;
}

static rdml_subject *open_subject(rdml_ctx *ctx, const char *dir, int id) {
    rdml_dataset *ds = NULL;
    rdml_subject *s = NULL;
    if (rdml_dataset_open(ctx, dir, &ds) == RDML_OK) rdml_subject_open(ctx, ds, id, &s);
    rdml_dataset_close(&ds);
    return s;
}

static void test_lists_subjects(void) {
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    rdml_dataset *ds = open_fixture(&ctx);
    if (!ds) return;
    json_t *ids = json_object_get(expected, "subjects");
    CHECK_EQ_I(rdml_dataset_nsubjects(ds), json_array_size(ids));
    for (int i = 0; i < rdml_dataset_nsubjects(ds); i++)
        CHECK_EQ_I(rdml_dataset_subject_id(ds, i), json_integer_value(json_array_get(ids, (size_t)i)));
    CHECK_EQ_I(rdml_dataset_subject_id(ds, 2), -1);
    CHECK(strcmp(rdml_dataset_root(ds), root) == 0);
    rdml_dataset_close(&ds);
    CHECK(ds == NULL);
    rdml_dataset_close(&ds); /* NULL-safe */

    char slash[4200]; /* a trailing slash changes nothing */
    snprintf(slash, sizeof slash, "%s/", root);
    CHECK_EQ_I(rdml_dataset_open(&ctx, slash, &ds), RDML_OK);
    if (ds) CHECK(strcmp(rdml_dataset_root(ds), root) == 0);
    rdml_dataset_close(&ds);
}

static void test_subject_counts_and_names(void) {
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    rdml_dataset *ds = open_fixture(&ctx);
    if (!ds) return;
    for (int i = 0; i < rdml_dataset_nsubjects(ds); i++) {
        int id = rdml_dataset_subject_id(ds, i);
        json_t *e = subj_json(id);
        rdml_subject *s = NULL;
        CHECK_EQ_I(rdml_subject_open(&ctx, ds, id, &s), RDML_OK);
        if (!s) {
            fprintf(stderr, "%s\n", ctx.msg);
            continue;
        }
        CHECK_EQ_I(rdml_subject_id(s), id);
        CHECK_EQ_I(rdml_subject_nimages(s), json_integer_value(json_object_get(e, "ntrain")));
        CHECK_EQ_I(rdml_subject_ntest(s), json_integer_value(json_object_get(e, "ntest")));
        CHECK_EQ_I(rdml_subject_nvert(s, 0), json_integer_value(json_object_get(e, "nlh")));
        CHECK_EQ_I(rdml_subject_nvert(s, 1), json_integer_value(json_object_get(e, "nrh")));
        CHECK_EQ_I(rdml_subject_nvert(s, 2), -1);
        json_t *names = json_object_get(e, "images"), *nsd = json_object_get(e, "nsd_ids");
        for (int64_t k = 0; k < rdml_subject_nimages(s); k++) {
            const char *p = rdml_subject_image_path(s, k);
            const char *want = json_string_value(json_array_get(names, (size_t)k));
            char full[4400];
            snprintf(full, sizeof full, "%s/subj%02d/training_split/training_images/%s", root, id, want);
            CHECK(p && strcmp(p, full) == 0);
            CHECK(access(p, R_OK) == 0);
            CHECK_EQ_I(rdml_subject_nsd_id(s, k), json_integer_value(json_array_get(nsd, (size_t)k)));
        }
        CHECK(rdml_subject_image_path(s, rdml_subject_nimages(s)) == NULL);
        CHECK_EQ_I(rdml_subject_nsd_id(s, -1), -1);
        /* ROI table: expected lists every class's ROIs in code order */
        json_t *rois = json_object_get(e, "rois");
        size_t k = 0;
        for (int c = 0; c < RDML_NROICLASS; c++) {
            CHECK(rdml_subject_class_present(s, c));
            for (int r = 0; r < rdml_subject_nrois(s, c); r++, k++) {
                json_t *x = json_array_get(rois, k);
                CHECK(strcmp(json_string_value(json_object_get(x, "class")), rdml_roi_class_name(c)) == 0);
                const char *nm = rdml_subject_roi_name(s, c, r);
                CHECK(nm && strcmp(nm, json_string_value(json_object_get(x, "name"))) == 0);
                CHECK_EQ_I(rdml_subject_roi_code(s, c, r), json_integer_value(json_object_get(x, "code")));
                CHECK_EQ_I(rdml_subject_roi_nvert(s, c, r, 0), json_integer_value(json_object_get(x, "lh")));
                CHECK_EQ_I(rdml_subject_roi_nvert(s, c, r, 1), json_integer_value(json_object_get(x, "rh")));
            }
        }
        CHECK_EQ_I(k, json_array_size(rois));
        CHECK(rdml_subject_roi_name(s, 0, 99) == NULL);
        rdml_subject_close(&s);
        CHECK(s == NULL);
    }
    rdml_dataset_close(&ds);
}

static void test_class_names(void) {
    CHECK(strcmp(rdml_roi_class_name(RDML_ROI_FACES), "Faces") == 0);
    CHECK(strcmp(rdml_roi_class_tag(RDML_ROI_VISUAL), "prf-visualrois") == 0);
    CHECK(strcmp(rdml_roi_class_tag(RDML_ROI_STREAMS), "streams") == 0);
    CHECK_EQ_I(rdml_roi_class_find("faces"), RDML_ROI_FACES);
    CHECK_EQ_I(rdml_roi_class_find("FLOC-WORDS"), RDML_ROI_WORDS);
    CHECK_EQ_I(rdml_roi_class_find("Face"), -1);
}

static void test_selections_match_numpy(void) {
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    rdml_dataset *ds = open_fixture(&ctx);
    if (!ds) return;
    for (int i = 0; i < rdml_dataset_nsubjects(ds); i++) {
        int id = rdml_dataset_subject_id(ds, i);
        rdml_subject *s = NULL;
        if (rdml_subject_open(&ctx, ds, id, &s) != RDML_OK) {
            CHECK(0);
            continue;
        }
        const char *spec;
        json_t *want;
        json_object_foreach(json_object_get(subj_json(id), "select"), spec, want) {
            rdml_selection sel;
            int rc = rdml_subject_select(&ctx, s, spec, &sel);
            CHECK_EQ_I(rc, RDML_OK);
            if (rc) {
                fprintf(stderr, "subj%02d '%s': %s\n", id, spec, ctx.msg);
                rdml_ctx_clear(&ctx);
                continue;
            }
            json_t *cols = json_object_get(want, "cols");
            CHECK_EQ_I(sel.n, json_array_size(cols));
            CHECK_EQ_I(sel.n_lh, json_integer_value(json_object_get(want, "n_lh")));
            int64_t bad = 0;
            for (int64_t k = 0; k < sel.n && k < (int64_t)json_array_size(cols); k++)
                bad += sel.cols[k] != json_integer_value(json_array_get(cols, (size_t)k));
            CHECK_EQ_I(bad, 0);
            rdml_selection_free(&sel);
        }
        rdml_subject_close(&s);
    }
    rdml_dataset_close(&ds);
}

static void test_selection_spec_normalised(void) {
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    rdml_subject *s = open_subject(&ctx, root, 1);
    if (!s) {
        CHECK(0);
        return;
    }
    static const char *const cases[][2] = {
        {"V1,hV4", "V1,hV4"},
        {" FFA , class:places,OPA", "FFA,class:Places,OPA"},
        {"early,V1v,early", "early,V1v"},
        {"class:floc-faces,class:FACES", "class:Faces"},
        {"V1,all", "all"},
        {"V1,,hV4,", "V1,hV4"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        rdml_selection sel;
        CHECK_EQ_I(rdml_subject_select(&ctx, s, cases[i][0], &sel), RDML_OK);
        CHECK(sel.spec && strcmp(sel.spec, cases[i][1]) == 0);
        if (sel.spec && strcmp(sel.spec, cases[i][1]) != 0)
            fprintf(stderr, "'%s' -> '%s', want '%s'\n", cases[i][0], sel.spec, cases[i][1]);
        rdml_selection_free(&sel);
    }
    /* the same vertices whichever way the class is spelled; a union equals its parts */
    rdml_selection a, b;
    CHECK_EQ_I(rdml_subject_select(&ctx, s, "V1", &a), RDML_OK);
    CHECK_EQ_I(rdml_subject_select(&ctx, s, "V1d,V1v", &b), RDML_OK);
    CHECK_EQ_I(a.n, b.n);
    CHECK(a.n == b.n && memcmp(a.cols, b.cols, (size_t)a.n * sizeof *a.cols) == 0);
    rdml_selection_free(&a);
    rdml_selection_free(&b);
    rdml_subject_close(&s);
}

/* The expected block is rows lo..hi of the selection `std_spec` as numpy read them. */
static void test_read_fmri_block(void) {
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    const char *spec = json_string_value(json_object_get(expected, "std_spec"));
    for (int id = 1; id <= 3; id += 2) {
        rdml_subject *s = open_subject(&ctx, root, id);
        if (!s) {
            CHECK(0);
            continue;
        }
        json_t *e = subj_json(id);
        json_t *block = json_object_get(e, "block");
        int64_t lo = json_integer_value(json_array_get(json_object_get(e, "block_rows"), 0));
        int64_t hi = json_integer_value(json_array_get(json_object_get(e, "block_rows"), 1));
        rdml_selection sel;
        CHECK_EQ_I(rdml_subject_select(&ctx, s, spec, &sel), RDML_OK);
        CHECK(sel.n_lh > 0 && sel.n_lh < sel.n); /* both hemispheres take part */
        float *x = calloc((size_t)((hi - lo) * sel.n), sizeof *x);
        int rc = rdml_subject_read_fmri(&ctx, s, &sel, lo, hi, x);
        CHECK_EQ_I(rc, RDML_OK);
        if (rc) fprintf(stderr, "%s\n", ctx.msg);
        int64_t bad = 0;
        for (int64_t i = 0; i < hi - lo; i++)
            for (int64_t j = 0; j < sel.n; j++) {
                double want = json_real_value(json_array_get(json_array_get(block, (size_t)i), (size_t)j));
                bad += (double)x[i * sel.n + j] != want;
            }
        CHECK_EQ_I(bad, 0);

        /* reading "all" and picking the columns gives the same numbers */
        rdml_selection all;
        CHECK_EQ_I(rdml_subject_select(&ctx, s, "all", &all), RDML_OK);
        float *y = calloc((size_t)((hi - lo) * all.n), sizeof *y);
        CHECK_EQ_I(rdml_subject_read_fmri(&ctx, s, &all, lo, hi, y), RDML_OK);
        bad = 0;
        for (int64_t i = 0; i < hi - lo; i++)
            for (int64_t j = 0; j < sel.n; j++) bad += y[i * all.n + sel.cols[j]] != x[i * sel.n + j];
        CHECK_EQ_I(bad, 0);

        /* an empty row range reads nothing; rows past the end are refused */
        CHECK_EQ_I(rdml_subject_read_fmri(&ctx, s, &sel, 5, 5, x), RDML_OK);
        int64_t n = rdml_subject_nimages(s);
        CHECK(rdml_subject_read_fmri(&ctx, s, &sel, n - 1, n + 1, x) != RDML_OK);
        CHECK_STR_HAS(ctx.msg, "out of range");
        rdml_ctx_clear(&ctx);
        free(x);
        free(y);
        rdml_selection_free(&sel);
        rdml_selection_free(&all);
        rdml_subject_close(&s);
    }

    /* a selection made for subj01 (30 lh vertices) does not fit subj03 (28) */
    rdml_subject *s1 = open_subject(&ctx, root, 1), *s3 = open_subject(&ctx, root, 3);
    rdml_selection all1;
    if (s1 && s3 && rdml_subject_select(&ctx, s1, "all", &all1) == RDML_OK) {
        float *x = calloc((size_t)all1.n, sizeof *x);
        CHECK(rdml_subject_read_fmri(&ctx, s3, &all1, 0, 1, x) != RDML_OK);
        CHECK_STR_HAS(ctx.msg, "another subject");
        free(x);
        rdml_selection_free(&all1);
    } else {
        CHECK(0);
    }
    rdml_subject_close(&s1);
    rdml_subject_close(&s3);
}

static void test_describe(void) {
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    rdml_dataset *ds = open_fixture(&ctx);
    if (!ds) return;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    CHECK_EQ_I(rdml_dataset_describe(&ctx, ds, f), RDML_OK);
    fclose(f);
    CHECK_STR_HAS(buf, "2 subjects (subj01, subj03)");
    CHECK_STR_HAS(buf, "subj01: 12 training images, 2 test images; vertices lh 30, rh 25 (55)");
    CHECK_STR_HAS(buf, "subj03: 10 training images, 2 test images; vertices lh 28, rh 22 (50)");
    json_t *v1 = json_object_get(json_object_get(subj_json(1), "select"), "V1");
    int64_t v1_lh = json_integer_value(json_object_get(v1, "n_lh"));
    char want[64];
    snprintf(want, sizeof want, "unions (lh/rh): V1 %lld/%lld, V2", (long long)v1_lh,
             (long long)(json_array_size(json_object_get(v1, "cols")) - v1_lh));
    CHECK_STR_HAS(buf, want);
    /* every ROI row of the table has the same width; one row per ROI of expected.json */
    int rows = 0, width = -1, ragged = 0;
    for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
        int is_row = strncmp(line, "  ", 2) == 0 && strstr(line, "unions") == NULL;
        if (!is_row) continue;
        if (width < 0) width = (int)strlen(line);
        ragged += (int)strlen(line) != width;
        rows++;
    }
    CHECK_EQ_I(ragged, 0);
    CHECK_EQ_I(rows, 2 * (1 + 31)); /* header + 31 ROIs, twice */
    free(buf);
    rdml_dataset_close(&ds);
}

static void test_bad_roots(void) {
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    rdml_dataset *ds = NULL;
    CHECK_EQ_I(rdml_dataset_open(&ctx, "/nonexistent/algonauts", &ds), RDML_EIO);
    CHECK(ds == NULL);
    CHECK_STR_HAS(ctx.msg, "'/nonexistent/algonauts' does not exist");
    CHECK_STR_HAS(ctx.msg, "/nonexistent/algonauts/subj01/training_split/training_fmri/lh_training_fmri.npy");
    rdml_ctx_clear(&ctx);

    char p[4400];
    snprintf(p, sizeof p, "%s/README.txt", root);
    CHECK_EQ_I(rdml_dataset_open(&ctx, p, &ds), RDML_EIO);
    CHECK_STR_HAS(ctx.msg, "not a directory");
    rdml_ctx_clear(&ctx);

    snprintf(p, sizeof p, "%s/subjects_extra", root);
    CHECK_EQ_I(rdml_dataset_open(&ctx, p, &ds), RDML_EDATA);
    CHECK_STR_HAS(ctx.msg, "no subject folders");
    CHECK_STR_HAS(ctx.msg, "subjects_extra/subj01/training_split/training_fmri/lh_training_fmri.npy");
    rdml_ctx_clear(&ctx);

    snprintf(p, sizeof p, "%s/subj01", root); /* a subject folder given as the root */
    CHECK_EQ_I(rdml_dataset_open(&ctx, p, &ds), RDML_EDATA);
    CHECK_STR_HAS(ctx.msg, "looks like one subject's folder");
    rdml_ctx_clear(&ctx);
}

static void test_missing_subject_lists_available(void) {
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    rdml_dataset *ds = open_fixture(&ctx);
    if (!ds) return;
    rdml_subject *s = NULL;
    CHECK_EQ_I(rdml_subject_open(&ctx, ds, 2, &s), RDML_EDATA);
    CHECK(s == NULL);
    CHECK_STR_HAS(ctx.msg, "subject 2 not found in");
    CHECK_STR_HAS(ctx.msg, "available: 1, 3");
    rdml_dataset_close(&ds);
}

static void test_bad_selections(void) {
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    rdml_subject *s = open_subject(&ctx, root, 1);
    if (!s) {
        CHECK(0);
        return;
    }
    rdml_selection sel;
    CHECK_EQ_I(rdml_subject_select(&ctx, s, "V1,hv4", &sel), RDML_EDATA);
    CHECK(sel.cols == NULL && sel.spec == NULL && sel.n == 0);
    CHECK_STR_HAS(ctx.msg, "unknown ROI 'hv4'");
    CHECK_STR_HAS(ctx.msg, "did you mean 'hV4'?");
    CHECK_STR_HAS(ctx.msg, "valid: all, class:<Visual|Bodies|Faces|Places|Words|Streams>");
    CHECK_STR_HAS(ctx.msg, "V1v, V1d");
    CHECK_STR_HAS(ctx.msg, "mTL-words");
    CHECK_STR_HAS(ctx.msg, "FFA (=FFA-1+FFA-2)");
    rdml_ctx_clear(&ctx);
    rdml_selection_free(&sel);

    CHECK_EQ_I(rdml_subject_select(&ctx, s, "Unknown", &sel), RDML_EDATA); /* code 0 is no ROI */
    CHECK_STR_HAS(ctx.msg, "unknown ROI 'Unknown'");
    rdml_ctx_clear(&ctx);

    CHECK_EQ_I(rdml_subject_select(&ctx, s, "class:Fces", &sel), RDML_EDATA);
    CHECK_STR_HAS(ctx.msg, "unknown ROI class 'Fces'");
    CHECK_STR_HAS(ctx.msg, "did you mean 'class:Faces'?");
    rdml_ctx_clear(&ctx);

    CHECK_EQ_I(rdml_subject_select(&ctx, s, " , ", &sel), RDML_EDATA);
    CHECK_STR_HAS(ctx.msg, "empty vertex selection");
    rdml_ctx_clear(&ctx);
    rdml_subject_close(&s);

    /* subj03's aTL-faces is empty in both hemispheres: a valid name, but no vertices */
    s = open_subject(&ctx, root, 3);
    if (!s) {
        CHECK(0);
        return;
    }
    CHECK_EQ_I(rdml_subject_select(&ctx, s, "aTL-faces", &sel), RDML_EDATA);
    CHECK_STR_HAS(ctx.msg, "has no vertices in subj03");
    CHECK_STR_HAS(ctx.msg, "ROIs with vertices: V1v"); /* lists what can be selected */
    CHECK_STR_HAS(ctx.msg, "RSC");
    CHECK(strstr(ctx.msg, "aTL-faces, ") == NULL);
    rdml_ctx_clear(&ctx);
    CHECK_EQ_I(rdml_subject_select(&ctx, s, "aTL-faces,RSC", &sel), RDML_OK); /* RSC: rh only */
    CHECK_EQ_I(sel.n_lh, 0);
    CHECK(sel.n > 0);
    rdml_selection_free(&sel);
    rdml_subject_close(&s);
}

/* ---- broken copies of the fixture ---- */

static char tmpdir[4200];

static void make_copy(void) {
    char cmd[9000];
    snprintf(tmpdir, sizeof tmpdir, "/tmp/rdml_ds_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return;
    }
    snprintf(cmd, sizeof cmd, "cp -r '%s/subj01' '%s/subj03' '%s/'", root, root, tmpdir);
    CHECK_EQ_I(system(cmd), 0);
}

static void drop_copy(void) {
    char cmd[4400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    CHECK_EQ_I(system(cmd), 0);
}

static void tmp_path(char *buf, size_t size, const char *rel) {
    snprintf(buf, size, "%s/%s", tmpdir, rel);
}

/* Name of training image k (0-based) of subject id, from expected.json. */
static const char *image_name(int id, int k) {
    return json_string_value(json_array_get(json_object_get(subj_json(id), "images"), (size_t)k));
}

static void test_copy_opens(void) {
    /* control: the unmodified copy opens, so the failures below come from the damage */
    make_copy();
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    rdml_subject *s = open_subject(&ctx, tmpdir, 1);
    CHECK(s != NULL);
    rdml_subject_close(&s);
    drop_copy();
}

static void test_mask_length_mismatch(void) {
    make_copy();
    char src[4400], dst[4400], cmd[9000];
    tmp_path(src, sizeof src, "subj03/roi_masks/lh.floc-faces_challenge_space.npy");
    tmp_path(dst, sizeof dst, "subj01/roi_masks/lh.floc-faces_challenge_space.npy");
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", src, dst);
    CHECK_EQ_I(system(cmd), 0);
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    rdml_subject *s = open_subject(&ctx, tmpdir, 1);
    CHECK(s == NULL);
    CHECK_EQ_I(ctx.code, RDML_EDATA);
    CHECK_STR_HAS(ctx.msg, "subj01/roi_masks/lh.floc-faces_challenge_space.npy' has 28 entries");
    CHECK_STR_HAS(ctx.msg, "lh_training_fmri.npy has 30 vertex columns");
    rdml_subject_close(&s);
    drop_copy();
}

static void test_image_count_mismatch(void) {
    make_copy();
    char p[4400], rel[256];
    snprintf(rel, sizeof rel, "subj01/training_split/training_images/%s", image_name(1, 11));
    tmp_path(p, sizeof p, rel);
    CHECK_EQ_I(unlink(p), 0);
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    rdml_subject *s = open_subject(&ctx, tmpdir, 1);
    CHECK(s == NULL);
    CHECK_EQ_I(ctx.code, RDML_EDATA);
    CHECK_STR_HAS(ctx.msg, "subj01/training_split/training_fmri/lh_training_fmri.npy' has 12 rows");
    CHECK_STR_HAS(ctx.msg, "has 11 images");
    drop_copy();
}

static void test_image_gap_and_bad_name(void) {
    make_copy();
    char p[4400], rel[256];
    snprintf(rel, sizeof rel, "subj01/training_split/training_images/%s", image_name(1, 4));
    tmp_path(p, sizeof p, rel);
    CHECK_EQ_I(unlink(p), 0);
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    rdml_subject *s = open_subject(&ctx, tmpdir, 1);
    CHECK(s == NULL);
    CHECK_STR_HAS(ctx.msg, "training image number 5 is missing");
    snprintf(rel, sizeof rel, "%s then %s", image_name(1, 3), image_name(1, 5));
    CHECK_STR_HAS(ctx.msg, rel);
    rdml_ctx_clear(&ctx);

    tmp_path(p, sizeof p, "subj03/training_split/training_images/train-0011.png");
    FILE *f = fopen(p, "w");
    if (f) fclose(f);
    s = open_subject(&ctx, tmpdir, 3);
    CHECK(s == NULL);
    CHECK_STR_HAS(ctx.msg, "train-0011.png' is not named train-NNNN_nsd-IIIII.png");
    drop_copy();
}

static void test_incomplete_and_absent_class(void) {
    make_copy();
    char p[4400];
    tmp_path(p, sizeof p, "subj01/roi_masks/rh.floc-words_challenge_space.npy");
    CHECK_EQ_I(unlink(p), 0);
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    rdml_subject *s = open_subject(&ctx, tmpdir, 1);
    CHECK(s == NULL);
    CHECK_STR_HAS(ctx.msg, "ROI class Words of subj01 is incomplete");
    CHECK_STR_HAS(ctx.msg, "rh.floc-words_challenge_space.npy' is missing");
    rdml_ctx_clear(&ctx);

    /* with all three files gone the class is absent: opening works, selecting it fails */
    tmp_path(p, sizeof p, "subj01/roi_masks/lh.floc-words_challenge_space.npy");
    CHECK_EQ_I(unlink(p), 0);
    tmp_path(p, sizeof p, "subj01/roi_masks/mapping_floc-words.npy");
    CHECK_EQ_I(unlink(p), 0);
    /* and a subject without a test split has 0 test images */
    char cmd[4600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s/subj01/test_split'", tmpdir);
    CHECK_EQ_I(system(cmd), 0);
    s = open_subject(&ctx, tmpdir, 1);
    CHECK(s != NULL);
    if (s) {
        CHECK_EQ_I(rdml_subject_ntest(s), 0);
        CHECK(!rdml_subject_class_present(s, RDML_ROI_WORDS));
        CHECK(rdml_subject_class_present(s, RDML_ROI_FACES));
        CHECK_EQ_I(rdml_subject_nrois(s, RDML_ROI_WORDS), 0);
        rdml_selection sel;
        CHECK_EQ_I(rdml_subject_select(&ctx, s, "class:Words", &sel), RDML_EDATA);
        CHECK_STR_HAS(ctx.msg, "roi_masks/mapping_floc-words.npy");
        rdml_ctx_clear(&ctx);
        CHECK_EQ_I(rdml_subject_select(&ctx, s, "VWFA", &sel), RDML_EDATA);
        CHECK_STR_HAS(ctx.msg, "unknown ROI 'VWFA'");
        CHECK_STR_HAS(ctx.msg, "classes without mask files: Words");
        rdml_ctx_clear(&ctx);
        CHECK_EQ_I(rdml_subject_select(&ctx, s, "class:Faces,V1", &sel), RDML_OK);
        rdml_selection_free(&sel);
    }
    rdml_subject_close(&s);
    drop_copy();
}

static void test_label_without_name(void) {
    make_copy();
    char p[4400];
    tmp_path(p, sizeof p, "subj03/roi_masks/rh.floc-places_challenge_space.npy");
    int64_t lab[22] = {0};
    lab[7] = 9; /* floc-places only names 1..3 */
    int64_t shape[1] = {22};
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    CHECK_EQ_I(rdml_npy_save(&ctx, p, RDML_DT_I8, 0, 1, shape, lab), RDML_OK);
    rdml_subject *s = open_subject(&ctx, tmpdir, 3);
    CHECK(s == NULL);
    CHECK_STR_HAS(ctx.msg, "labels vertex 7 with code 9");
    CHECK_STR_HAS(ctx.msg, "mapping_floc-places.npy");
    drop_copy();
}

int main(void) {
    snprintf(root, sizeof root, "%s", test_fixture("algonauts_mini"));
    char jp[4400];
    snprintf(jp, sizeof jp, "%s/expected.json", root);
    json_error_t jerr;
    expected = json_load_file(jp, 0, &jerr);
    if (!expected) {
        fprintf(stderr, "cannot load %s: %s\n", jp, jerr.text);
        return 1;
    }
    RUN(test_lists_subjects);
    RUN(test_subject_counts_and_names);
    RUN(test_class_names);
    RUN(test_selections_match_numpy);
    RUN(test_selection_spec_normalised);
    RUN(test_read_fmri_block);
    RUN(test_describe);
    RUN(test_bad_roots);
    RUN(test_missing_subject_lists_available);
    RUN(test_bad_selections);
    RUN(test_copy_opens);
    RUN(test_mask_length_mismatch);
    RUN(test_image_count_mismatch);
    RUN(test_image_gap_and_bad_name);
    RUN(test_incomplete_and_absent_class);
    RUN(test_label_without_name);
    json_decref(expected);
    return test_summary();
}
