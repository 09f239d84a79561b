/* <run.output stem>.evaluate.csv: the /evaluate group of the committed results file in long
 * format, one row per analysis x subject x selection x model x method (analysis rdm: one
 * subject's images; rdm-group: the subjects together on the images they all saw, subject 0;
 * folds:<experiment>: the mean over the outer folds), kept equal to the file
 * by rdml_exp_tables_sync like the sweep tables (written when missing or different, removed
 * when the file holds no /evaluate, through a synced temporary file and a rename). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "eval_priv.h"
#include "exp_priv.h"
#include "rdml/h5.h"
#include "rdml/strbuf.h"

void rdml_exp_eval_csv_path(const char *output, char *path, size_t len) {
    char stem[4096];
    rdml_strlcpy(stem, output, sizeof stem);
    char *dot = strrchr(stem, '.');
    if (dot && strcmp(dot, ".h5") == 0) *dot = 0;
    snprintf(path, len, "%s.evaluate.csv", stem);
}

static void num(rdml_strbuf *b, double v) {
    if (isfinite(v)) rdml_strbuf_printf(b, ",%.17g", v);
    else rdml_strbuf_printf(b, ",nan");
}

/* Part 1: /evaluate/rdm/<sel>. */
static int rows_rdm(rdml_ctx *ctx, rdml_h5 *h, const char *sel, const char *const *methods,
                    int nm, rdml_strbuf *b, int *nrows) {
    char g[1200], p[1400];
    snprintf(g, sizeof g, "/evaluate/rdm/%s", sel);
    int64_t ns = 0, nmod = 0;
    char **models = NULL;
    int64_t *subj = NULL;
    snprintf(p, sizeof p, "%s/models", g);
    int rc = rdml_h5_read_strings(ctx, h, p, &models, &nmod);
    snprintf(p, sizeof p, "%s/subjects", g);
    int nd = 0;
    int64_t dims[8] = {0};
    if (!rc) rc = rdml_h5_dims(ctx, h, p, &nd, dims);
    ns = dims[0];
    subj = calloc((size_t)ns + 1, sizeof *subj);
    double *t = calloc((size_t)(5 * ns * nmod) + 1, sizeof *t);
    if (!rc && (!subj || !t)) rc = RDML_FAIL(ctx, RDML_ENOMEM, "out of memory");
    if (!rc) rc = rdml_h5_read_rows_i64(ctx, h, p, 0, ns, subj);
    static const char *const names[5] = {"score", "ci_low", "ci_high", "p", "q"};
    for (int mi = 0; mi < nm && !rc; mi++) {
        int ex = 0;
        snprintf(p, sizeof p, "%s/%s/score", g, methods[mi]);
        rc = rdml_h5_exists(ctx, h, p, &ex);
        if (rc || !ex) continue;
        for (int k = 0; k < 5 && !rc; k++) {
            snprintf(p, sizeof p, "%s/%s/%s", g, methods[mi], names[k]);
            rc = rdml_h5_read_rows_f64(ctx, h, p, 0, ns, t + k * ns * nmod);
        }
        double nc[2] = {NAN, NAN};
        snprintf(p, sizeof p, "%s/%s/noise_ceiling", g, methods[mi]);
        if (!rc) rc = rdml_h5_read_rows_f64(ctx, h, p, 0, 2, nc);
        for (int64_t i = 0; i < ns && !rc; i++)
            for (int64_t e = 0; e < nmod; e++) {
                rdml_strbuf_printf(b, "rdm,%lld,%s,%s,%s", (long long)subj[i], sel, models[e], methods[mi]);
                for (int k = 0; k < 5; k++) num(b, t[k * ns * nmod + i * nmod + e]);
                num(b, nc[0]);
                num(b, nc[1]);
                rdml_strbuf_printf(b, "\n");
                ++*nrows;
            }
        /* the subjects together on the shared images: subject 0 */
        snprintf(p, sizeof p, "%s/%s/group/score", g, methods[mi]);
        if (!rc) rc = rdml_h5_exists(ctx, h, p, &ex);
        for (int k = 0; k < 5 && !rc && ex; k++) {
            snprintf(p, sizeof p, "%s/%s/group/%s", g, methods[mi], names[k]);
            rc = rdml_h5_read_rows_f64(ctx, h, p, 0, nmod, t + k * nmod);
        }
        for (int64_t e = 0; e < nmod && !rc && ex; e++) {
            rdml_strbuf_printf(b, "rdm-group,0,%s,%s,%s", sel, models[e], methods[mi]);
            for (int k = 0; k < 5; k++) num(b, t[k * nmod + e]);
            num(b, nc[0]);
            num(b, nc[1]);
            rdml_strbuf_printf(b, "\n");
            ++*nrows;
        }
    }
    rdml_h5_free_strings(models, nmod);
    free(subj);
    free(t);
    return rc;
}

/* Part 2: /evaluate/folds/<exp>/<sel>/subjNN: the mean over folds. */
static int rows_folds(rdml_ctx *ctx, rdml_h5 *h, const char *exp, const char *sel, const char *subj,
                      const char *const *methods, int nm, rdml_strbuf *b, int *nrows) {
    char g[1600], p[1800];
    snprintf(g, sizeof g, "/evaluate/folds/%s/%s/%s", exp, sel, subj);
    char **models = NULL;
    int64_t nmod = 0, F = 0;
    int nd = 0;
    int64_t dims[8] = {0};
    snprintf(p, sizeof p, "%s/models", g);
    int rc = rdml_h5_read_strings(ctx, h, p, &models, &nmod);
    snprintf(p, sizeof p, "%s/folds", g);
    if (!rc) rc = rdml_h5_dims(ctx, h, p, &nd, dims);
    F = dims[0];
    double *mean = calloc((size_t)nmod + 1, sizeof *mean), *nc = calloc((size_t)(2 * F) + 1, sizeof *nc);
    if (!rc && (!mean || !nc)) rc = RDML_FAIL(ctx, RDML_ENOMEM, "out of memory");
    for (int mi = 0; mi < nm && !rc; mi++) {
        int ex = 0;
        snprintf(p, sizeof p, "%s/%s/mean", g, methods[mi]);
        rc = rdml_h5_exists(ctx, h, p, &ex);
        if (rc || !ex) continue;
        rc = rdml_h5_read_rows_f64(ctx, h, p, 0, nmod, mean);
        snprintf(p, sizeof p, "%s/%s/noise_ceiling", g, methods[mi]);
        if (!rc) rc = rdml_h5_read_rows_f64(ctx, h, p, 0, F, nc);
        /* the folds' ceilings averaged over the folds that have one */
        double lo = 0, hi = 0;
        int64_t k = 0;
        for (int64_t f = 0; f < F; f++)
            if (isfinite(nc[2 * f]) && isfinite(nc[2 * f + 1])) {
                lo += nc[2 * f];
                hi += nc[2 * f + 1];
                k++;
            }
        lo = k ? lo / (double)k : NAN;
        hi = k ? hi / (double)k : NAN;
        for (int64_t e = 0; e < nmod && !rc; e++) {
            rdml_strbuf_printf(b, "folds:%s,%d,%s,%s,%s", exp, atoi(subj + 4), sel, models[e], methods[mi]);
            num(b, mean[e]);
            for (int x = 0; x < 4; x++) num(b, NAN);
            num(b, lo);
            num(b, hi);
            rdml_strbuf_printf(b, "\n");
            ++*nrows;
        }
    }
    rdml_h5_free_strings(models, nmod);
    free(mean);
    free(nc);
    return rc;
}

static int csv_text(rdml_ctx *ctx, rdml_h5 *h, rdml_strbuf *b, int *nrows) {
    static const char *const methods[3] = {"spearman", "pearson", "kendall_tau_a"};
    char **sels = NULL, **exps = NULL, **ss = NULL, **subs = NULL;
    int64_t nsel = 0, nexp = 0, nss = 0, nsub = 0;
    int rc = rdml_h5_list(ctx, h, "/evaluate/rdm", &sels, &nsel);
    for (int64_t k = 0; k < nsel && !rc; k++) rc = rows_rdm(ctx, h, sels[k], methods, 3, b, nrows);
    if (!rc) rc = rdml_h5_list(ctx, h, "/evaluate/folds", &exps, &nexp);
    for (int64_t x = 0; x < nexp && !rc; x++) {
        char g[1200];
        snprintf(g, sizeof g, "/evaluate/folds/%s", exps[x]);
        rc = rdml_h5_list(ctx, h, g, &ss, &nss);
        for (int64_t k = 0; k < nss && !rc; k++) {
            char g2[2400];
            snprintf(g2, sizeof g2, "%s/%s", g, ss[k]);
            rc = rdml_h5_list(ctx, h, g2, &subs, &nsub);
            for (int64_t i = 0; i < nsub && !rc; i++)
                rc = rows_folds(ctx, h, exps[x], ss[k], subs[i], methods, 3, b, nrows);
            rdml_h5_free_strings(subs, nsub);
            subs = NULL;
            nsub = 0;
        }
        rdml_h5_free_strings(ss, nss);
        ss = NULL;
        nss = 0;
    }
    rdml_h5_free_strings(sels, nsel);
    rdml_h5_free_strings(exps, nexp);
    if (!rc && b->failed) rc = RDML_FAIL(ctx, RDML_ENOMEM, "out of memory writing the evaluate table");
    return rc;
}

static int same_content(const char *path, const char *text, size_t n) {
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    char *buf = malloc(n + 2);
    size_t got = buf ? fread(buf, 1, n + 1, f) : 0;
    int same = buf && got == n && memcmp(buf, text, n) == 0;
    free(buf);
    fclose(f);
    return same;
}

int rdml_exp_eval_csv_sync(rdml_ctx *ctx, const char *output) {
    char csv[4200];
    rdml_exp_eval_csv_path(output, csv, sizeof csv);
    rdml_exp_remove_tmp(csv);
    struct stat st;
    if (stat(output, &st) != 0) return RDML_OK;
    rdml_h5 *h = NULL;
    rdml_strbuf b = {0};
    rdml_strbuf_printf(&b, "analysis,subject,selection,model,method,score,ci_low,ci_high,p,q,"
                           "noise_ceiling_lower,noise_ceiling_upper\n");
    int nrows = 0, ex = 0;
    int rc = rdml_h5_open(ctx, MPI_COMM_SELF, output, 0, &h);
    if (!rc) rc = rdml_h5_exists(ctx, h, "/evaluate", &ex);
    if (!rc && ex) rc = csv_text(ctx, h, &b, &nrows);
    rdml_h5_abort(&h);
    if (rc) {
        rdml_ctx_prefix(ctx, "writing %s", csv);
    } else if (!ex) {
        if (unlink(csv) == 0) rdml_info(ctx, "removed %s: %s holds no /evaluate", csv, output);
    } else if (!same_content(csv, b.s ? b.s : "", b.len)) {
        char tmp[4300];
        snprintf(tmp, sizeof tmp, "%s.tmp-%ld", csv, (long)getpid());
        FILE *f = fopen(tmp, "w");
        int bad = !f || fwrite(b.s, 1, b.len, f) != b.len || fflush(f) != 0 || fsync(fileno(f)) != 0;
        int err = errno;
        if (f && fclose(f) != 0 && !bad) {
            bad = 1;
            err = errno;
        }
        if (!bad && rename(tmp, csv) != 0) {
            bad = 1;
            err = errno;
        }
        if (bad) {
            unlink(tmp);
            rc = RDML_FAIL(ctx, RDML_EIO, "cannot write %s: %s (hint: is the disk full? The results "
                           "are safe in %s; the next command on it writes this table)", csv,
                           strerror(err), output);
        } else {
            rdml_info(ctx, "wrote %s (%d rows of /evaluate)", csv, nrows);
        }
    }
    rdml_strbuf_free(&b);
    return rc;
}
