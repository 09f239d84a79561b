/* Tests of rdml/h5.h at 1..4 ranks: row slabs split with rdml_part_block are written
 * collectively (f32, f64, i64, a dataset some ranks hold no rows of, an empty one), with
 * string/int/float attributes and UTF-8 string lists; after commit the final file exists, no
 * temporary is left, and a read-only reopen reads every value back under a different split
 * (and with type conversion). Errors come back identical on every rank without hanging:
 * mismatched dims or type on an existing dataset, a row range bad on one rank only, a missing
 * file/folder/dataset/attribute, a non-HDF5 file, writing through a read-only handle. Abort
 * leaves the previously committed file untouched; open(writable) changes it only on commit.
 *
 *   test_h5                  file names carry the rank count, so np1..np4 can run at once
 *   test_h5 --keep PATH      write the main results file at PATH and keep it (for
 *                            tests/cli/test_h5py.sh, which checks it with h5py)
 *   test_h5 --read-python P  only read the objects test_h5py.sh wrote with h5py into P */
#include <dirent.h>
#include <hdf5.h>
#include <mpi.h>
#include <stdint.h>
#include <unistd.h>

#include "rdml/h5.h"
#include "rdml/mpiutil.h"
#include "test.h"

static MPI_Comm comm;
static int rank, nranks;
static const char *keep_path = NULL;

enum { N = 23, D = 5, NSMALL = 2 };

/* The values written; tools/check_h5.py computes the same formulas with numpy. */
static float f32_val(int64_t r, int64_t c) { return (float)(r * 100 + c) + 0.25f; }
static double f64_val(int64_t r, int64_t c) { return (double)r * 1.5 - (double)c / 3.0; }
static int64_t i64_val(int64_t r, int64_t c) { return r * 4000000000LL + c - 7; }

static void name_of(char *buf, size_t n, const char *what) {
    snprintf(buf, n, "h5test_np%d_%s.h5", nranks, what);
}

/* Any file in the current folder starting with `prefix`? (temporary files left behind) */
static int leftover(const char *prefix) {
    DIR *d = opendir(".");
    int found = 0;
    if (!d) return 0;
    for (struct dirent *e; (e = readdir(d));)
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0) found = 1;
    closedir(d);
    return found;
}

/* Delete a results file and its side folder (<path>.d) if any. */
static void remove_results(const char *path) {
    char dir[300], f[600];
    unlink(path);
    snprintf(dir, sizeof dir, "%s.d", path);
    DIR *d = opendir(dir);
    if (!d) return;
    for (struct dirent *e; (e = readdir(d));)
        if (e->d_name[0] != '.') {
            snprintf(f, sizeof f, "%s/%s", dir, e->d_name);
            unlink(f);
        }
    closedir(d);
    rmdir(dir);
}

static void check_no_tmp(const char *path) {
    if (strchr(path, '/')) return; /* only checked for files in the working folder */
    char prefix[512];
    snprintf(prefix, sizeof prefix, "%s.tmp-", path);
    CHECK(!leftover(prefix));
}

/* rc is the expected non-OK code and the same on all ranks, and so is the message. */
static void check_agreed_error(rdml_ctx *ctx, int rc, int expect, const char *must_have) {
    int mn, mx;
    CHECK_EQ_I(rc, expect);
    MPI_Allreduce(&rc, &mn, 1, MPI_INT, MPI_MIN, comm);
    MPI_Allreduce(&rc, &mx, 1, MPI_INT, MPI_MAX, comm);
    CHECK_EQ_I(mn, mx);
    CHECK_EQ_I(ctx->code, expect);
    if (must_have) CHECK_STR_HAS(ctx->msg, must_have);
    unsigned long len = strlen(ctx->msg), lmin, lmax;
    MPI_Allreduce(&len, &lmin, 1, MPI_UNSIGNED_LONG, MPI_MIN, comm);
    MPI_Allreduce(&len, &lmax, 1, MPI_UNSIGNED_LONG, MPI_MAX, comm);
    CHECK_EQ_I(lmin, lmax);
    if (rank == 0 && getenv("RDML_TEST_VERBOSE")) fprintf(stderr, "  error: %s\n", ctx->msg);
    rdml_ctx_clear(ctx);
}

static const char *const string_list[] = {"img-000 Grüße", "", "日本語の画像", "a,b;c\"d'e",
                                          "x"};
enum { NSTR = 5 };

static int write_main_file(rdml_ctx *ctx, const char *path) {
    rdml_h5 *h = NULL;
    int64_t lo, hi;
    rdml_part_block(N, rank, nranks, &lo, &hi);
    int64_t nr = hi - lo;
    float *a = malloc(sizeof(float) * (size_t)(nr * D + 1));
    double *b = malloc(sizeof(double) * (size_t)(nr * D + 1));
    int64_t *c = malloc(sizeof(int64_t) * (size_t)(nr * D + 1));
    for (int64_t r = 0; r < nr; r++)
        for (int64_t j = 0; j < D; j++) {
            a[r * D + j] = f32_val(lo + r, j);
            b[r * D + j] = f64_val(lo + r, j);
            c[r * D + j] = i64_val(lo + r, j);
        }
    int rc = rdml_h5_create(ctx, comm, path, &h);
    CHECK_EQ_I(rc, RDML_OK);
    if (rc) goto done;
    CHECK(strcmp(rdml_h5_path(h), path) == 0);
    CHECK(access(path, F_OK) != 0 || keep_path); /* nothing at the final path before commit */
    CHECK_EQ_I(rdml_h5_write_rows_f32(ctx, h, "/subjects/subj01/embeddings/gabor", N, D, lo, nr, a), 0);
    CHECK_EQ_I(rdml_h5_write_rows_f64(ctx, h, "/subjects/subj01/rdm/corr", N, D, lo, nr, b), 0);
    CHECK_EQ_I(rdml_h5_write_rows_i64(ctx, h, "experiments/e1/pairs", N, D, lo, nr, c), 0);
    /* rewriting an existing dataset with the same shape is allowed */
    CHECK_EQ_I(rdml_h5_write_rows_i64(ctx, h, "/experiments/e1/pairs", N, D, lo, nr, c), 0);
    {
        /* NSMALL rows: with 3 or 4 ranks some ranks own none */
        int64_t slo, shi;
        rdml_part_block(NSMALL, rank, nranks, &slo, &shi);
        double sv[NSMALL * 3];
        for (int64_t r = slo; r < shi; r++)
            for (int j = 0; j < 3; j++) sv[(r - slo) * 3 + j] = f64_val(r, j);
        CHECK_EQ_I(rdml_h5_write_rows_f64(ctx, h, "/small", NSMALL, 3, slo, shi - slo, sv), 0);
    }
    CHECK_EQ_I(rdml_h5_write_rows_f32(ctx, h, "/empty", 0, 4, 0, 0, NULL), 0);
    CHECK_EQ_I(rdml_h5_group(ctx, h, "/meta/notes"), 0);
    CHECK_EQ_I(rdml_h5_group(ctx, h, "/meta/notes"), 0); /* existing group is fine */
    CHECK_EQ_I(rdml_h5_attr_str(ctx, h, "/subjects/subj01/embeddings/gabor", "units", "wrong"), 0);
    CHECK_EQ_I(rdml_h5_attr_str(ctx, h, "/subjects/subj01/embeddings/gabor", "units", "a.u."), 0);
    CHECK_EQ_I(rdml_h5_attr_str(ctx, h, "/meta", "greeting", "Grüße ✓"), 0);
    CHECK_EQ_I(rdml_h5_attr_str(ctx, h, "/", "empty", ""), 0);
    int64_t shape[2] = {N, D};
    CHECK_EQ_I(rdml_h5_attr_i64(ctx, h, "/subjects/subj01/embeddings/gabor", "shape", shape, 2), 0);
    int64_t big = -9000000000LL;
    CHECK_EQ_I(rdml_h5_attr_i64(ctx, h, "/meta", "big", &big, 1), 0);
    double th[3] = {0.5, 1.0, -2.25e-3};
    CHECK_EQ_I(rdml_h5_attr_f64(ctx, h, "/subjects/subj01/rdm/corr", "thresholds", th, 3), 0);
    const char *wrong[NSTR] = {"w", "w", "w", "w", "w"};
    CHECK_EQ_I(rdml_h5_write_strings(ctx, h, "/subjects/subj01/images", wrong, NSTR), 0);
    CHECK_EQ_I(rdml_h5_write_strings(ctx, h, "/subjects/subj01/images", string_list, NSTR), 0);
    CHECK_EQ_I(rdml_h5_write_strings(ctx, h, "/meta/no_strings", NULL, 0), 0);
    /* numeric writes still work after the close/reopen that string lists need */
    CHECK_EQ_I(rdml_h5_attr_str(ctx, h, "/subjects/subj01/images", "meaning", "file names"), 0);
    CHECK_EQ_I(rdml_h5_write_rows_f32(ctx, h, "/after/strings", N, D, lo, nr, a), 0);
    rc = rdml_h5_commit(ctx, &h);
    CHECK_EQ_I(rc, RDML_OK);
    CHECK(h == NULL);
    if (rc) fprintf(stderr, "commit: %s\n", ctx->msg);
done:
    if (h) rdml_h5_abort(&h);
    free(a);
    free(b);
    free(c);
    return rc;
}

static void test_write_commit_read(void) {
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    char path[4096];
    if (keep_path) snprintf(path, sizeof path, "%s", keep_path);
    else name_of(path, sizeof path, "main");
    if (write_main_file(&ctx, path)) return;
    MPI_Barrier(comm);
    CHECK(access(path, R_OK) == 0);
    check_no_tmp(path);

    rdml_h5 *h = NULL;
    int rc = rdml_h5_open(&ctx, comm, path, 0, &h);
    CHECK_EQ_I(rc, RDML_OK);
    if (rc) return;
    /* a different split: ranks take the blocks in reverse order */
    int64_t lo, hi;
    rdml_part_block(N, nranks - 1 - rank, nranks, &lo, &hi);
    int64_t nr = hi - lo;
    float *a = calloc((size_t)(nr * D + 1), sizeof *a);
    double *b = calloc((size_t)(nr * D + 1), sizeof *b);
    int64_t *c = calloc((size_t)(nr * D + 1), sizeof *c);
    CHECK_EQ_I(rdml_h5_read_rows_f32(&ctx, h, "/subjects/subj01/embeddings/gabor", lo, nr, a), 0);
    CHECK_EQ_I(rdml_h5_read_rows_f64(&ctx, h, "/subjects/subj01/rdm/corr", lo, nr, b), 0);
    CHECK_EQ_I(rdml_h5_read_rows_i64(&ctx, h, "/experiments/e1/pairs", lo, nr, c), 0);
    int bad = 0;
    for (int64_t r = 0; r < nr; r++)
        for (int64_t j = 0; j < D; j++) {
            bad += a[r * D + j] != f32_val(lo + r, j);
            bad += b[r * D + j] != f64_val(lo + r, j);
            bad += c[r * D + j] != i64_val(lo + r, j);
        }
    CHECK_EQ_I(bad, 0);
    /* conversions on read: f32 dataset as f64 is exact; i64 dataset as f64 (values < 2^53) */
    CHECK_EQ_I(rdml_h5_read_rows_f64(&ctx, h, "/subjects/subj01/embeddings/gabor", lo, nr, b), 0);
    CHECK_EQ_I(rdml_h5_read_rows_f64(&ctx, h, "/after/strings", lo, nr, b + 0), 0);
    for (int64_t r = 0; r < nr; r++)
        for (int64_t j = 0; j < D; j++) bad += b[r * D + j] != (double)f32_val(lo + r, j);
    CHECK_EQ_I(rdml_h5_read_rows_f64(&ctx, h, "/experiments/e1/pairs", lo, nr, b), 0);
    for (int64_t r = 0; r < nr; r++)
        for (int64_t j = 0; j < D; j++) bad += b[r * D + j] != (double)i64_val(lo + r, j);
    CHECK_EQ_I(bad, 0);
    /* every rank reads the whole small dataset (overlapping reads) */
    double sv[NSMALL * 3];
    CHECK_EQ_I(rdml_h5_read_rows_f64(&ctx, h, "/small", 0, NSMALL, sv), 0);
    for (int r = 0; r < NSMALL; r++)
        for (int j = 0; j < 3; j++) CHECK(sv[r * 3 + j] == f64_val(r, j));

    int nd = 0;
    int64_t dims[8] = {0};
    CHECK_EQ_I(rdml_h5_dims(&ctx, h, "/experiments/e1/pairs", &nd, dims), 0);
    CHECK_EQ_I(nd, 2);
    CHECK_EQ_I(dims[0], N);
    CHECK_EQ_I(dims[1], D);
    CHECK_EQ_I(rdml_h5_dims(&ctx, h, "/empty", &nd, dims), 0);
    CHECK_EQ_I(nd, 2);
    CHECK_EQ_I(dims[0], 0);
    CHECK_EQ_I(dims[1], 4);
    CHECK_EQ_I(rdml_h5_read_rows_f32(&ctx, h, "/empty", 0, 0, NULL), 0);

    int ex = -1;
    CHECK_EQ_I(rdml_h5_exists(&ctx, h, "/subjects/subj01", &ex), 0);
    CHECK_EQ_I(ex, 1);
    CHECK_EQ_I(rdml_h5_exists(&ctx, h, "/meta/notes", &ex), 0);
    CHECK_EQ_I(ex, 1);
    CHECK_EQ_I(rdml_h5_exists(&ctx, h, "/subjects/subj02/rdm", &ex), 0);
    CHECK_EQ_I(ex, 0);
    CHECK_EQ_I(rdml_h5_exists(&ctx, h, "/small/below_a_dataset", &ex), 0);
    CHECK_EQ_I(ex, 0);

    char *s = NULL;
    CHECK_EQ_I(rdml_h5_get_attr_str(&ctx, h, "/subjects/subj01/embeddings/gabor", "units", &s), 0);
    CHECK(s && strcmp(s, "a.u.") == 0);
    free(s);
    CHECK_EQ_I(rdml_h5_get_attr_str(&ctx, h, "/meta", "greeting", &s), 0);
    CHECK(s && strcmp(s, "Grüße ✓") == 0);
    free(s);
    CHECK_EQ_I(rdml_h5_get_attr_str(&ctx, h, "/", "empty", &s), 0);
    CHECK(s && s[0] == '\0');
    free(s);
    int64_t iv[4] = {0}, n = -1;
    CHECK_EQ_I(rdml_h5_get_attr_i64(&ctx, h, "/subjects/subj01/embeddings/gabor", "shape", iv, 4, &n), 0);
    CHECK_EQ_I(n, 2);
    CHECK_EQ_I(iv[0], N);
    CHECK_EQ_I(iv[1], D);
    CHECK_EQ_I(rdml_h5_get_attr_i64(&ctx, h, "/subjects/subj01/embeddings/gabor", "shape", iv, 1, &n), 0);
    CHECK_EQ_I(n, 1); /* capped at cap */
    CHECK_EQ_I(rdml_h5_get_attr_i64(&ctx, h, "/meta", "big", iv, 4, &n), 0);
    CHECK_EQ_I(n, 1);
    CHECK_EQ_I(iv[0], -9000000000LL);
    double fv[4] = {0};
    CHECK_EQ_I(rdml_h5_get_attr_f64(&ctx, h, "/subjects/subj01/rdm/corr", "thresholds", fv, 4, &n), 0);
    CHECK_EQ_I(n, 3);
    CHECK(fv[0] == 0.5 && fv[1] == 1.0 && fv[2] == -2.25e-3);
    /* an integer attribute read as float64 is converted */
    CHECK_EQ_I(rdml_h5_get_attr_f64(&ctx, h, "/subjects/subj01/embeddings/gabor", "shape", fv, 4, &n), 0);
    CHECK(n == 2 && fv[0] == (double)N && fv[1] == (double)D);

    char **strs = NULL;
    int64_t ns = -1;
    CHECK_EQ_I(rdml_h5_read_strings(&ctx, h, "/subjects/subj01/images", &strs, &ns), 0);
    CHECK_EQ_I(ns, NSTR);
    for (int64_t i = 0; strs && i < ns && i < NSTR; i++) CHECK(strcmp(strs[i], string_list[i]) == 0);
    rdml_h5_free_strings(strs, ns);
    CHECK_EQ_I(rdml_h5_read_strings(&ctx, h, "/meta/no_strings", &strs, &ns), 0);
    CHECK_EQ_I(ns, 0);
    rdml_h5_free_strings(strs, ns);
    CHECK_EQ_I(rdml_h5_get_attr_str(&ctx, h, "/subjects/subj01/images", "meaning", &s), 0);
    CHECK(s && strcmp(s, "file names") == 0);
    free(s);

    /* reading past the end fails on every rank (only the last block is out of range) */
    int64_t rlo = rank == nranks - 1 ? N - 1 : 0;
    int rc2 = rdml_h5_read_rows_f32(&ctx, h, "/subjects/subj01/embeddings/gabor", rlo, 2, a);
    check_agreed_error(&ctx, rc2, RDML_EDATA, "gabor");
    /* writing through a read-only handle */
    rc2 = rdml_h5_write_rows_f32(&ctx, h, "/new", N, D, lo, nr, a);
    check_agreed_error(&ctx, rc2, RDML_EINTERNAL, "read-only");
    /* missing dataset / attribute, strings from a numeric dataset */
    rc2 = rdml_h5_read_rows_f64(&ctx, h, "/subjects/subj09/rdm/corr", lo, nr, b);
    check_agreed_error(&ctx, rc2, RDML_EDATA, "/subjects/subj09/rdm/corr");
    rc2 = rdml_h5_get_attr_str(&ctx, h, "/meta", "nope", &s);
    check_agreed_error(&ctx, rc2, RDML_EDATA, "nope");
    CHECK(s == NULL);
    rc2 = rdml_h5_get_attr_i64(&ctx, h, "/meta", "greeting", iv, 4, &n);
    check_agreed_error(&ctx, rc2, RDML_EDATA, "greeting");
    rc2 = rdml_h5_read_strings(&ctx, h, "/small", &strs, &ns);
    check_agreed_error(&ctx, rc2, RDML_EDATA, "/small");
    CHECK(strs == NULL);
    rc2 = rdml_h5_dims(&ctx, h, "/meta", &nd, dims);
    check_agreed_error(&ctx, rc2, RDML_EDATA, "group");

    CHECK_EQ_I(rdml_h5_commit(&ctx, &h), RDML_OK); /* read-only: just closes */
    CHECK(access(path, R_OK) == 0);
    free(a);
    free(b);
    free(c);
}

static void test_mismatch_is_agreed(void) {
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    char path[256];
    name_of(path, sizeof path, "mismatch");
    if (rank == 0) remove_results(path);
    MPI_Barrier(comm);
    rdml_h5 *h = NULL;
    CHECK_EQ_I(rdml_h5_create(&ctx, comm, path, &h), RDML_OK);
    if (!h) return;
    int64_t lo, hi;
    rdml_part_block(10, rank, nranks, &lo, &hi);
    float v[10 * 4] = {0};
    CHECK_EQ_I(rdml_h5_write_rows_f32(&ctx, h, "/a", 10, 3, lo, hi - lo, v), 0);
    int rc = rdml_h5_write_rows_f32(&ctx, h, "/a", 10, 4, lo, hi - lo, v);
    check_agreed_error(&ctx, rc, RDML_EDATA, "10 x 4");
    int64_t iv[40] = {0};
    rc = rdml_h5_write_rows_i64(&ctx, h, "/a", 10, 3, lo, hi - lo, iv);
    check_agreed_error(&ctx, rc, RDML_EDATA, "float");
    /* a row range wrong on the last rank only: still the same error everywhere */
    int64_t blo = rank == nranks - 1 ? 9 : lo, bn = rank == nranks - 1 ? 2 : hi - lo;
    rc = rdml_h5_write_rows_f32(&ctx, h, "/b", 10, 3, blo, bn, v);
    check_agreed_error(&ctx, rc, RDML_EINTERNAL, "outside");
    /* a group cannot hold rows; a dataset cannot hold a group */
    CHECK_EQ_I(rdml_h5_group(&ctx, h, "/g"), 0);
    rc = rdml_h5_write_rows_f32(&ctx, h, "/g", 10, 3, lo, hi - lo, v);
    check_agreed_error(&ctx, rc, RDML_EDATA, "not a dataset");
    rc = rdml_h5_group(&ctx, h, "/a");
    check_agreed_error(&ctx, rc, RDML_EDATA, "not a group");
    rc = rdml_h5_attr_str(&ctx, h, "/missing", "units", "x");
    check_agreed_error(&ctx, rc, RDML_EDATA, "/missing");
    /* after the errors the handle still works */
    CHECK_EQ_I(rdml_h5_write_rows_f32(&ctx, h, "/a", 10, 3, lo, hi - lo, v), 0);
    rdml_h5_abort(&h);
    CHECK(h == NULL);
    rdml_h5_abort(&h); /* NULL is fine */
    MPI_Barrier(comm);
    CHECK(access(path, F_OK) != 0); /* never committed: nothing at the final path */
    check_no_tmp(path);
}

static void fill(double *v, int64_t n, double x) {
    for (int64_t i = 0; i < n; i++) v[i] = x;
}

static void test_abort_keeps_committed(void) {
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    char path[256];
    name_of(path, sizeof path, "abort");
    int64_t lo, hi;
    rdml_part_block(6, rank, nranks, &lo, &hi);
    double v[6 * 2], back[6 * 2];
    rdml_h5 *h = NULL;
    /* version 1, committed */
    fill(v, 12, 1.0);
    CHECK_EQ_I(rdml_h5_create(&ctx, comm, path, &h), 0);
    CHECK_EQ_I(rdml_h5_write_rows_f64(&ctx, h, "/a", 6, 2, lo, hi - lo, v), 0);
    CHECK_EQ_I(rdml_h5_commit(&ctx, &h), 0);
    /* version 2 over the same path, aborted */
    fill(v, 12, 2.0);
    CHECK_EQ_I(rdml_h5_create(&ctx, comm, path, &h), 0);
    CHECK_EQ_I(rdml_h5_write_rows_f64(&ctx, h, "/a", 6, 2, lo, hi - lo, v), 0);
    CHECK_EQ_I(rdml_h5_write_rows_f64(&ctx, h, "/b", 6, 2, lo, hi - lo, v), 0);
    rdml_h5_abort(&h);
    MPI_Barrier(comm);
    check_no_tmp(path);
    /* open writable, change, abort: unchanged */
    CHECK_EQ_I(rdml_h5_open(&ctx, comm, path, 1, &h), 0);
    CHECK_EQ_I(rdml_h5_write_rows_f64(&ctx, h, "/a", 6, 2, lo, hi - lo, v), 0);
    CHECK_EQ_I(rdml_h5_write_rows_f64(&ctx, h, "/c", 6, 2, lo, hi - lo, v), 0);
    rdml_h5_abort(&h);
    MPI_Barrier(comm);
    check_no_tmp(path);
    int ex = -1;
    CHECK_EQ_I(rdml_h5_open(&ctx, comm, path, 0, &h), 0);
    CHECK_EQ_I(rdml_h5_read_rows_f64(&ctx, h, "/a", lo, hi - lo, back), 0);
    for (int64_t i = 0; i < (hi - lo) * 2; i++) CHECK(back[i] == 1.0);
    CHECK_EQ_I(rdml_h5_exists(&ctx, h, "/b", &ex), 0);
    CHECK_EQ_I(ex, 0);
    CHECK_EQ_I(rdml_h5_exists(&ctx, h, "/c", &ex), 0);
    CHECK_EQ_I(ex, 0);
    CHECK_EQ_I(rdml_h5_commit(&ctx, &h), 0);
    /* open writable, add a dataset, commit: both there */
    fill(v, 12, 3.0);
    CHECK_EQ_I(rdml_h5_open(&ctx, comm, path, 1, &h), 0);
    CHECK_EQ_I(rdml_h5_write_rows_f64(&ctx, h, "/c", 6, 2, lo, hi - lo, v), 0);
    CHECK_EQ_I(rdml_h5_commit(&ctx, &h), 0);
    MPI_Barrier(comm);
    check_no_tmp(path);
    CHECK_EQ_I(rdml_h5_open(&ctx, comm, path, 0, &h), 0);
    CHECK_EQ_I(rdml_h5_read_rows_f64(&ctx, h, "/a", lo, hi - lo, back), 0);
    for (int64_t i = 0; i < (hi - lo) * 2; i++) CHECK(back[i] == 1.0);
    CHECK_EQ_I(rdml_h5_read_rows_f64(&ctx, h, "/c", lo, hi - lo, back), 0);
    for (int64_t i = 0; i < (hi - lo) * 2; i++) CHECK(back[i] == 3.0);
    CHECK_EQ_I(rdml_h5_commit(&ctx, &h), 0);
    MPI_Barrier(comm);
    if (rank == 0) remove_results(path);
}

/* Number of files in folder `dir` (-1 when it does not exist). */
static int files_in(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

/* Large datasets in side files (RDML_H5_SPLIT_BYTES = 0 here): the results file links to
 * <name>.d/<job>.h5; a later handle that changes such a dataset (rows or an attribute) copies
 * it into a side file of its own, so the committed one never changes and an abort leaves it
 * as it was; a commit deletes the side files nothing links to any more; a missing side file is
 * an error that names it; a bad RDML_H5_SPLIT_BYTES is an error naming the variable. */
static void test_side_files(void) {
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    char path[256], dir[300];
    name_of(path, sizeof path, "side");
    snprintf(dir, sizeof dir, "%s.d", path);
    int64_t lo, hi;
    rdml_part_block(7, rank, nranks, &lo, &hi);
    double v[7 * 3], back[7 * 3];
    rdml_h5 *h = NULL;
    fill(v, 21, 1.0);
    CHECK_EQ_I(rdml_h5_create(&ctx, comm, path, &h), 0);
    CHECK_EQ_I(rdml_h5_write_rows_f64(&ctx, h, "/g/a", 7, 3, lo, hi - lo, v), 0);
    CHECK_EQ_I(rdml_h5_attr_str(&ctx, h, "/g/a", "units", "m"), 0);
    CHECK_EQ_I(rdml_h5_write_rows_f64(&ctx, h, "/g/b", 7, 3, lo, hi - lo, v), 0);
    CHECK_EQ_I(rdml_h5_commit(&ctx, &h), 0);
    MPI_Barrier(comm);
    CHECK_EQ_I(files_in(dir), 1);
    if (rank == 0) { /* a killed command's side file (nothing links to it) is removed */
        char cmd[800];
        snprintf(cmd, sizeof cmd, "cp %s/*.h5 %s/dead.h5", dir, dir);
        CHECK(system(cmd) == 0);
        CHECK_EQ_I(files_in(dir), 2);
        CHECK_EQ_I(rdml_h5_remove_orphans(path), 1);
        CHECK_EQ_I(files_in(dir), 1);
        CHECK_EQ_I(rdml_h5_remove_orphans("h5test_no_such_file.h5"), -1);
    }
    MPI_Barrier(comm);
    if (rank == 0) { /* the results file holds an external link, not the data */
        hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
        H5L_info_t li;
        CHECK(f >= 0 && H5Lget_info(f, "/g/a", &li, H5P_DEFAULT) >= 0 &&
              li.type == H5L_TYPE_EXTERNAL);
        if (f >= 0) H5Fclose(f);
    }
    /* change rows of /g/a: copied on write; abort first, then commit */
    fill(v, 21, 2.0);
    for (int pass = 0; pass < 2; pass++) {
        CHECK_EQ_I(rdml_h5_open(&ctx, comm, path, 1, &h), 0);
        CHECK_EQ_I(rdml_h5_write_rows_f64(&ctx, h, "/g/a", 7, 3, lo, lo + 1 <= hi ? 1 : 0, v), 0);
        CHECK_EQ_I(rdml_h5_attr_str(&ctx, h, "/g/a", "note", "changed"), 0);
        if (pass == 0) rdml_h5_abort(&h);
        else CHECK_EQ_I(rdml_h5_commit(&ctx, &h), 0);
        MPI_Barrier(comm);
        CHECK_EQ_I(files_in(dir), pass + 1); /* abort: its copy gone; commit: a + the new one */
    }
    CHECK_EQ_I(rdml_h5_open(&ctx, comm, path, 0, &h), 0);
    CHECK_EQ_I(rdml_h5_read_rows_f64(&ctx, h, "/g/a", lo, hi - lo, back), 0);
    for (int64_t i = 0; i < (hi - lo) * 3; i++) CHECK(back[i] == (i < 3 ? 2.0 : 1.0));
    CHECK_EQ_I(rdml_h5_read_rows_f64(&ctx, h, "/g/b", lo, hi - lo, back), 0);
    for (int64_t i = 0; i < (hi - lo) * 3; i++) CHECK(back[i] == 1.0);
    char *units = NULL, *note = NULL;
    CHECK_EQ_I(rdml_h5_get_attr_str(&ctx, h, "/g/a", "units", &units), 0); /* copied along */
    CHECK_EQ_I(rdml_h5_get_attr_str(&ctx, h, "/g/a", "note", &note), 0);
    CHECK(units && strcmp(units, "m") == 0);
    CHECK(note && strcmp(note, "changed") == 0);
    free(units);
    free(note);
    CHECK_EQ_I(rdml_h5_commit(&ctx, &h), 0);
    /* delete /g/b, then /g: the side files nothing links to are deleted, then the folder */
    CHECK_EQ_I(rdml_h5_open(&ctx, comm, path, 1, &h), 0);
    CHECK_EQ_I(rdml_h5_delete(&ctx, h, "/g/b"), 0);
    CHECK_EQ_I(rdml_h5_commit(&ctx, &h), 0);
    MPI_Barrier(comm);
    CHECK_EQ_I(files_in(dir), 1);
    CHECK_EQ_I(rdml_h5_open(&ctx, comm, path, 1, &h), 0);
    CHECK_EQ_I(rdml_h5_delete(&ctx, h, "/g"), 0);
    CHECK_EQ_I(rdml_h5_commit(&ctx, &h), 0);
    MPI_Barrier(comm);
    CHECK_EQ_I(files_in(dir), -1);
    /* a copy in the same folder (cp) links to the same side file: deleting /g/a from the
     * original keeps it for the copy */
    CHECK_EQ_I(rdml_h5_create(&ctx, comm, path, &h), 0);
    CHECK_EQ_I(rdml_h5_write_rows_f64(&ctx, h, "/g/a", 7, 3, lo, hi - lo, v), 0);
    CHECK_EQ_I(rdml_h5_commit(&ctx, &h), 0);
    char copy[300];
    snprintf(copy, sizeof copy, "%s.copy.h5", path);
    if (rank == 0) {
        char cmd[700];
        snprintf(cmd, sizeof cmd, "cp %s %s", path, copy);
        CHECK(system(cmd) == 0);
    }
    MPI_Barrier(comm);
    CHECK_EQ_I(rdml_h5_open(&ctx, comm, path, 1, &h), 0);
    CHECK_EQ_I(rdml_h5_delete(&ctx, h, "/g/a"), 0);
    CHECK_EQ_I(rdml_h5_commit(&ctx, &h), 0);
    MPI_Barrier(comm);
    CHECK_EQ_I(files_in(dir), 1);
    CHECK_EQ_I(rdml_h5_open(&ctx, comm, copy, 0, &h), 0);
    CHECK_EQ_I(rdml_h5_read_rows_f64(&ctx, h, "/g/a", lo, hi - lo, back), 0);
    for (int64_t i = 0; i < (hi - lo) * 3; i++) CHECK(back[i] == 2.0);
    CHECK_EQ_I(rdml_h5_commit(&ctx, &h), 0);
    MPI_Barrier(comm);
    if (rank == 0) {
        unlink(copy);
        remove_results(path);
    }
    MPI_Barrier(comm);
    /* a side file that is missing (the results file copied without its folder) */
    CHECK_EQ_I(rdml_h5_create(&ctx, comm, path, &h), 0);
    CHECK_EQ_I(rdml_h5_write_rows_f64(&ctx, h, "/g/a", 7, 3, lo, hi - lo, v), 0);
    CHECK_EQ_I(rdml_h5_commit(&ctx, &h), 0);
    MPI_Barrier(comm);
    char moved[320];
    snprintf(moved, sizeof moved, "%s.moved", dir);
    if (rank == 0) CHECK(rename(dir, moved) == 0);
    MPI_Barrier(comm);
    CHECK_EQ_I(rdml_h5_open(&ctx, comm, path, 0, &h), 0);
    int rc = rdml_h5_read_rows_f64(&ctx, h, "/g/a", lo, hi - lo, back);
    check_agreed_error(&ctx, rc, RDML_EIO, ".d/");
    CHECK_EQ_I(rdml_h5_commit(&ctx, &h), 0);
    MPI_Barrier(comm);
    if (rank == 0) CHECK(rename(moved, dir) == 0);
    MPI_Barrier(comm);
    /* a bad RDML_H5_SPLIT_BYTES */
    setenv("RDML_H5_SPLIT_BYTES", "12MB", 1);
    rc = rdml_h5_open(&ctx, comm, path, 1, &h);
    check_agreed_error(&ctx, rc, RDML_ECONFIG, "RDML_H5_SPLIT_BYTES");
    CHECK(h == NULL);
    setenv("RDML_H5_SPLIT_BYTES", "0", 1);
    MPI_Barrier(comm);
    check_no_tmp(path);
    CHECK_EQ_I(rdml_h5_create(&ctx, comm, path, &h), 0); /* replaced: its side file goes */
    CHECK_EQ_I(rdml_h5_commit(&ctx, &h), 0);
    MPI_Barrier(comm);
    CHECK_EQ_I(files_in(dir), -1);
    if (rank == 0) remove_results(path);
}

static void test_open_errors(void) {
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    rdml_h5 *h = (rdml_h5 *)&ctx;
    char path[256];
    name_of(path, sizeof path, "missing");
    int rc = rdml_h5_open(&ctx, comm, path, 0, &h);
    check_agreed_error(&ctx, rc, RDML_EIO, path);
    CHECK(h == NULL);
    rc = rdml_h5_open(&ctx, comm, path, 1, &h);
    check_agreed_error(&ctx, rc, RDML_EIO, path);
    rc = rdml_h5_create(&ctx, comm, "no_such_dir_h5test/x.h5", &h);
    check_agreed_error(&ctx, rc, RDML_EIO, "no_such_dir_h5test");
    CHECK(h == NULL);
    /* a file that is not HDF5 */
    name_of(path, sizeof path, "text");
    if (rank == 0) {
        FILE *f = fopen(path, "w");
        if (f) {
            fputs("not an HDF5 file\n", f);
            fclose(f);
        }
    }
    MPI_Barrier(comm);
    rc = rdml_h5_open(&ctx, comm, path, 0, &h);
    check_agreed_error(&ctx, rc, RDML_EFORMAT, path);
    rc = rdml_h5_open(&ctx, comm, path, 1, &h);
    check_agreed_error(&ctx, rc, RDML_EFORMAT, path);
    MPI_Barrier(comm);
    check_no_tmp(path);
    if (rank == 0) remove_results(path);
}

/* --read-python PATH: read objects that h5py wrote (tests/cli/test_h5py.sh makes them): a 1-D
 * float32 vector split over ranks, an int32 matrix read as int64 and float32, fixed-length
 * string datasets and attributes (h5py's np.bytes_ / 'S' types), an int32 attribute. */
static const char *python_path = NULL;
static void test_read_python_file(void) {
    const char *path = python_path;
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    rdml_h5 *h = NULL;
    CHECK_EQ_I(rdml_h5_open(&ctx, comm, path, 0, &h), 0);
    if (!h) return;
    int64_t lo, hi;
    rdml_part_block(11, rank, nranks, &lo, &hi);
    float v[11];
    CHECK_EQ_I(rdml_h5_read_rows_f32(&ctx, h, "/py/vec", lo, hi - lo, v), 0);
    for (int64_t i = lo; i < hi; i++) CHECK(v[i - lo] == 0.5f * (float)i);
    int nd = 0;
    int64_t dims[8];
    CHECK_EQ_I(rdml_h5_dims(&ctx, h, "/py/vec", &nd, dims), 0);
    CHECK(nd == 1 && dims[0] == 11);
    int64_t m[4 * 3];
    float mf[4 * 3];
    CHECK_EQ_I(rdml_h5_read_rows_i64(&ctx, h, "/py/int32", 0, 4, m), 0);
    CHECK_EQ_I(rdml_h5_read_rows_f32(&ctx, h, "/py/int32", 1, 3, mf), 0);
    for (int r = 0; r < 4; r++)
        for (int c = 0; c < 3; c++) {
            CHECK_EQ_I(m[r * 3 + c], r * 3 + c - 5);
            if (r >= 1) CHECK(mf[(r - 1) * 3 + c] == (float)(r * 3 + c - 5));
        }
    char **strs = NULL;
    int64_t n = 0;
    CHECK_EQ_I(rdml_h5_read_strings(&ctx, h, "/py/fixed", &strs, &n), 0);
    CHECK_EQ_I(n, 3);
    if (n == 3) CHECK(!strcmp(strs[0], "ab") && !strcmp(strs[1], "c") && !strcmp(strs[2], ""));
    rdml_h5_free_strings(strs, n);
    CHECK_EQ_I(rdml_h5_read_strings(&ctx, h, "/py/vlen", &strs, &n), 0);
    CHECK_EQ_I(n, 2);
    if (n == 2) CHECK(!strcmp(strs[0], "Grüße") && !strcmp(strs[1], "x y"));
    rdml_h5_free_strings(strs, n);
    char *s = NULL;
    CHECK_EQ_I(rdml_h5_get_attr_str(&ctx, h, "/py", "fixed_attr", &s), 0);
    CHECK(s && !strcmp(s, "hello"));
    free(s);
    CHECK_EQ_I(rdml_h5_get_attr_str(&ctx, h, "/py", "str_attr", &s), 0);
    CHECK(s && !strcmp(s, "ünïcode"));
    free(s);
    int64_t iv[4];
    CHECK_EQ_I(rdml_h5_get_attr_i64(&ctx, h, "/py", "i32", iv, 4, &n), 0);
    CHECK(n == 3 && iv[0] == 1 && iv[1] == -2 && iv[2] == 3);
    CHECK_EQ_I(rdml_h5_commit(&ctx, &h), 0);
}

/* Ranks reading overlapping row spans get the right bytes (Open MPI 4.1's collective reads
 * did not: 3 ranks with random overlapping spans returned zeros for some rows). */
static void test_overlapping_reads(void) {
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    rdml_ctx_set_comm(&ctx, comm);
    char path[256];
    name_of(path, sizeof path, "overlap");
    enum { R = 39, C = 512 };
    rdml_h5 *h = NULL;
    int64_t lo, hi;
    rdml_part_block(R, rank, nranks, &lo, &hi);
    float *w = malloc((size_t)(hi - lo + 1) * C * sizeof *w);
    for (int64_t r = lo; r < hi; r++)
        for (int j = 0; j < C; j++) w[(r - lo) * C + j] = (float)(r * C + j + 1);
    CHECK_EQ_I(rdml_h5_create(&ctx, comm, path, &h), 0);
    CHECK_EQ_I(rdml_h5_write_rows_f32(&ctx, h, "/d", R, C, lo, hi - lo, w), 0);
    CHECK_EQ_I(rdml_h5_commit(&ctx, &h), 0);
    free(w);
    CHECK_EQ_I(rdml_h5_open(&ctx, comm, path, 0, &h), 0);
    int bad = 0;
    for (int trial = 0; trial < 100 && h; trial++) {
        uint64_t a = rdml_rng_at(trial, (uint64_t)rank, 0) % R;
        uint64_t b = rdml_rng_at(trial, (uint64_t)rank, 1) % R;
        int64_t s0 = (int64_t)(a < b ? a : b), n = (int64_t)(a < b ? b - a : a - b) + 1;
        float *buf = calloc((size_t)(n * C), sizeof *buf);
        CHECK_EQ_I(rdml_h5_read_rows_f32(&ctx, h, "/d", s0, n, buf), 0);
        for (int64_t i = 0; i < n * C; i++) bad += buf[i] != (float)(s0 * C + i + 1);
        free(buf);
    }
    CHECK_EQ_I(bad, 0);
    rdml_h5_abort(&h);
    MPI_Barrier(comm);
    if (rank == 0) remove_results(path);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    comm = MPI_COMM_WORLD;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &nranks);
    if (argc == 3 && strcmp(argv[1], "--keep") == 0) keep_path = argv[2];
    if (argc == 3 && strcmp(argv[1], "--read-python") == 0) {
        python_path = argv[2];
        RUN(test_read_python_file);
        int rc = test_summary_mpi(comm);
        MPI_Finalize();
        return rc;
    }
    RUN(test_write_commit_read);
    RUN(test_mismatch_is_agreed);
    RUN(test_abort_keeps_committed);
    RUN(test_open_errors);
    RUN(test_overlapping_reads);
    /* again with every numeric dataset in a side file */
    setenv("RDML_H5_SPLIT_BYTES", "0", 1);
    if (rank == 0) {
        char path[256];
        name_of(path, sizeof path, "main");
        remove_results(keep_path ? keep_path : path);
    }
    MPI_Barrier(comm);
    RUN(test_write_commit_read);
    RUN(test_mismatch_is_agreed);
    RUN(test_abort_keeps_committed);
    RUN(test_open_errors);
    RUN(test_overlapping_reads);
    RUN(test_side_files);
    if (!keep_path) {
        char path[256];
        name_of(path, sizeof path, "main");
        MPI_Barrier(comm);
        if (rank == 0) remove_results(path);
    }
    int rc = test_summary_mpi(comm);
    MPI_Finalize();
    return rc;
}
