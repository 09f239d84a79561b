/* Vertex selections and fMRI block reads. A selection spec is a comma list of items: "all",
 * "class:<Name>" (case-insensitive class name or file tag: every vertex with a non-zero label
 * in that class), exact ROI names from the subject's mapping files, and the paper's unions
 * (V1 = V1v+V1d, V2, V3, FBA = FBA-1+FBA-2, FFA, VWFA), offered when at least one part exists
 * and no ROI carries that name itself. The result is the union of the items' vertices without
 * duplicates, lh ascending then rh ascending (rh vertex j is global column n_lh + j); the spec
 * is normalised (items trimmed, class names canonical, repeats dropped; anything with "all"
 * becomes "all"). Reading an fMRI block touches only the requested rows of both hemisphere
 * files (rdml_npy_read_f32 with a column subset, pread). Left out: vertex lists from files,
 * exclusions ("class:Faces,-FFA"), and fsaverage-space selections. Not collective. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "dataset/algonauts_priv.h"


typedef struct roi_union {
    const char *name;
    const char *parts[2];
} roi_union;

static const roi_union unions[] = {
    {"V1", {"V1v", "V1d"}},     {"V2", {"V2v", "V2d"}},     {"V3", {"V3v", "V3d"}},
    {"FBA", {"FBA-1", "FBA-2"}}, {"FFA", {"FFA-1", "FFA-2"}}, {"VWFA", {"VWFA-1", "VWFA-2"}},
};
enum { NUNION = (int)(sizeof unions / sizeof *unions) };

/* Mark every vertex of ROI `name` (exact, any present class). Returns how many ROIs matched. */
static int mark_roi(const rdml_subject *s, const char *name, unsigned char *keep) {
    int matched = 0;
    for (int c = 0; c < RDML_NROICLASS; c++) {
        const rdml_roiclass *k = &s->cls[c];
        if (!k->present) continue;
        for (int r = 0; r < k->nroi; r++) {
            if (strcmp(k->names[r], name) != 0) continue;
            matched++;
            for (int h = 0; h < 2; h++) {
                unsigned char *kh = keep + (h ? s->nv[0] : 0);
                for (int64_t j = 0; j < s->nv[h]; j++)
                    if (k->labels[h][j] == k->codes[r]) kh[j] = 1;
            }
        }
    }
    return matched;
}

static int roi_exists(const rdml_subject *s, const char *name) {
    for (int c = 0; c < RDML_NROICLASS; c++)
        for (int r = 0; s->cls[c].present && r < s->cls[c].nroi; r++)
            if (strcmp(s->cls[c].names[r], name) == 0) return 1;
    return 0;
}

static int union_available(const rdml_subject *s, int u) {
    return !roi_exists(s, unions[u].name) &&
           (roi_exists(s, unions[u].parts[0]) || roi_exists(s, unions[u].parts[1]));
}

/* The "unknown ROI" error: every valid item and the nearest one. */
static int fail_unknown(rdml_ctx *ctx, const rdml_subject *s, const char *item, const char *spec) {
    int ncand = 0, cap = 16;
    for (int c = 0; c < RDML_NROICLASS; c++) cap += s->cls[c].nroi;
    const char **cand = rdml_calloc(ctx, (size_t)cap, sizeof *cand, "ROI name list");
    if (!cand) return ctx->code;
    char valid[2600];
    size_t len = 0;
    len += (size_t)snprintf(valid + len, sizeof valid - len, "all, class:<");
    for (int c = 0; c < RDML_NROICLASS; c++)
        len += (size_t)snprintf(valid + len, sizeof valid - len, "%s%s", c ? "|" : "",
                                rdml_roi_class_name(c));
    len += (size_t)snprintf(valid + len, sizeof valid - len, ">");
    cand[ncand++] = "all";
    for (int c = 0; c < RDML_NROICLASS; c++) {
        const rdml_roiclass *k = &s->cls[c];
        for (int r = 0; k->present && r < k->nroi; r++) {
            cand[ncand++] = k->names[r];
            if (len < sizeof valid - 1)
                len += (size_t)snprintf(valid + len, sizeof valid - len, ", %s", k->names[r]);
        }
    }
    for (int u = 0; u < NUNION; u++) {
        if (!union_available(s, u)) continue;
        cand[ncand++] = unions[u].name;
        if (len < sizeof valid - 1)
            len += (size_t)snprintf(valid + len, sizeof valid - len, ", %s (=%s+%s)",
                                    unions[u].name, unions[u].parts[0], unions[u].parts[1]);
    }
    char absent[256] = "";
    size_t la = 0;
    for (int c = 0; c < RDML_NROICLASS; c++)
        if (!s->cls[c].present && la < sizeof absent - 1)
            la += (size_t)snprintf(absent + la, sizeof absent - la, "%s%s", la ? ", " : "",
                                   rdml_roi_class_name(c));
    int near = rdml_nearest(item, cand, ncand);
    char hint[160] = "";
    if (near >= 0) snprintf(hint, sizeof hint, " (did you mean '%s'?)", cand[near]);
    int rc = RDML_FAIL(ctx, RDML_EDATA, "unknown ROI '%s' in selection '%s' for subj%02d%s; "
                       "names are case-sensitive; valid: %s%s%s%s", item, spec, s->id, hint,
                       valid, absent[0] ? " (classes without mask files: " : "", absent,
                       absent[0] ? ")" : "");
    free(cand);
    return rc;
}

static int fail_class(rdml_ctx *ctx, const char *name, const char *spec) {
    const char *cand[2 * RDML_NROICLASS];
    for (int c = 0; c < RDML_NROICLASS; c++) {
        cand[c] = rdml_roi_class_name(c);
        cand[RDML_NROICLASS + c] = rdml_roi_class_tag(c);
    }
    int near = rdml_nearest(name, cand, 2 * RDML_NROICLASS);
    char hint[96] = "";
    if (near >= 0) snprintf(hint, sizeof hint, " (did you mean 'class:%s'?)",
                            rdml_roi_class_name(near % RDML_NROICLASS));
    return RDML_FAIL(ctx, RDML_EDATA, "unknown ROI class '%s' in selection '%s'%s; valid: "
                     "class:Visual, class:Bodies, class:Faces, class:Places, class:Words, "
                     "class:Streams", name, spec, hint);
}

/* Append item to the normalised spec unless already there. */
static int spec_add(rdml_ctx *ctx, char **norm, size_t *len, size_t *cap, const char *item) {
    size_t li = strlen(item);
    const char *p = *norm;
    while (p && *p) {
        const char *e = strchr(p, ',');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l == li && strncmp(p, item, li) == 0) return RDML_OK;
        p = e ? e + 1 : p + l;
    }
    if (*len + li + 2 > *cap) {
        size_t nc = 2 * (*len + li + 2);
        char *n = rdml_realloc(ctx, *norm, nc, "selection spec");
        if (!n) return ctx->code;
        *norm = n;
        *cap = nc;
    }
    if (*len) (*norm)[(*len)++] = ',';
    memcpy(*norm + *len, item, li + 1);
    *len += li;
    return RDML_OK;
}

int rdml_subject_select(rdml_ctx *ctx, const rdml_subject *s, const char *spec,
                        rdml_selection *out) {
    memset(out, 0, sizeof *out);
    if (!spec) spec = "";
    const int64_t nlh = s->nv[0], ntot = s->nv[0] + s->nv[1];
    unsigned char *keep = rdml_calloc(ctx, (size_t)ntot, 1, "selection mask");
    char *work = rdml_strdup(ctx, spec);
    char *norm = NULL;
    size_t nlen = 0, ncap = 0;
    int rc = (!keep || !work) ? ctx->code : RDML_OK;
    int nitems = 0, all = 0;
    char *save = NULL;
    for (char *tok = work ? strtok_r(work, ",", &save) : NULL; rc == RDML_OK && tok;
         tok = strtok_r(NULL, ",", &save)) {
        while (isspace((unsigned char)*tok)) tok++;
        char *end = tok + strlen(tok);
        while (end > tok && isspace((unsigned char)end[-1])) *--end = '\0';
        if (!*tok) continue;
        nitems++;
        if (strcmp(tok, "all") == 0 || strcmp(tok, "ALL") == 0 || strcmp(tok, "All") == 0) {
            all = 1;
            memset(keep, 1, (size_t)ntot);
            continue;
        }
        if (strncmp(tok, "class:", 6) == 0 || strncmp(tok, "Class:", 6) == 0 ||
            strncmp(tok, "CLASS:", 6) == 0) {
            const char *cname = tok + 6;
            while (isspace((unsigned char)*cname)) cname++;
            int c = rdml_roi_class_find(cname);
            if (c < 0) {
                rc = fail_class(ctx, cname, spec);
                break;
            }
            const rdml_roiclass *k = &s->cls[c];
            if (!k->present) {
                rc = RDML_FAIL(ctx, RDML_EDATA, "selection '%s' asks for class %s but subj%02d "
                               "has no ROI masks for it (missing %s/roi_masks/mapping_%s.npy)",
                               spec, rdml_roi_class_name(c), s->id, s->dir, rdml_roi_class_tag(c));
                break;
            }
            for (int h = 0; h < 2; h++) {
                unsigned char *kh = keep + (h ? nlh : 0);
                for (int64_t j = 0; j < s->nv[h]; j++)
                    if (k->labels[h][j] != 0) kh[j] = 1;
            }
            char item[64];
            snprintf(item, sizeof item, "class:%s", rdml_roi_class_name(c));
            rc = spec_add(ctx, &norm, &nlen, &ncap, item);
            continue;
        }
        if (mark_roi(s, tok, keep) == 0) {
            int u = 0;
            while (u < NUNION && strcmp(unions[u].name, tok) != 0) u++;
            if (u == NUNION || !union_available(s, u)) {
                rc = fail_unknown(ctx, s, tok, spec);
                break;
            }
            mark_roi(s, unions[u].parts[0], keep);
            mark_roi(s, unions[u].parts[1], keep);
        }
        rc = spec_add(ctx, &norm, &nlen, &ncap, tok);
    }
    if (rc == RDML_OK && nitems == 0)
        rc = RDML_FAIL(ctx, RDML_EDATA, "empty vertex selection '%s' (hint: use 'all', ROI names "
                       "such as 'V1,hV4', or 'class:Faces')", spec);
    if (rc == RDML_OK && all) {
        free(norm);
        norm = rdml_strdup(ctx, "all");
        if (!norm) rc = ctx->code;
    }
    int64_t n = 0, n_lh = 0;
    for (int64_t j = 0; rc == RDML_OK && j < ntot; j++) {
        n += keep[j];
        if (j < nlh) n_lh += keep[j];
    }
    if (rc == RDML_OK && n == 0) {
        /* Say what can be selected instead: every ROI with vertices in this subject. */
        char avail[2048] = "";
        size_t used = 0;
        for (int c = 0; c < RDML_NROICLASS; c++)
            for (int r = 0; r < rdml_subject_nrois(s, c); r++)
                if (rdml_subject_roi_nvert(s, c, r, 0) + rdml_subject_roi_nvert(s, c, r, 1) > 0 &&
                    used + 64 < sizeof avail)
                    used += (size_t)snprintf(avail + used, sizeof avail - used, "%s%s",
                                             used ? ", " : "", rdml_subject_roi_name(s, c, r));
        rc = RDML_FAIL(ctx, RDML_EDATA, "selection '%s' has no vertices in subj%02d (its ROIs are "
                       "empty in both hemispheres); ROIs with vertices: %s", spec, s->id,
                       used ? avail : "none");
    }
    if (rc == RDML_OK) {
        out->cols = rdml_malloc(ctx, (size_t)n * sizeof *out->cols, "selection columns");
        if (!out->cols) rc = ctx->code;
    }
    if (rc == RDML_OK) {
        int64_t k = 0;
        for (int64_t j = 0; j < ntot; j++)
            if (keep[j]) out->cols[k++] = j;
        out->n = n;
        out->n_lh = n_lh;
        out->spec = norm;
        norm = NULL;
    }
    free(keep);
    free(work);
    free(norm);
    if (rc != RDML_OK) rdml_selection_free(out);
    return rc;
}

void rdml_selection_free(rdml_selection *sel) {
    if (!sel) return;
    free(sel->spec);
    free(sel->cols);
    memset(sel, 0, sizeof *sel);
}

int rdml_subject_read_fmri(rdml_ctx *ctx, const rdml_subject *s, const rdml_selection *sel,
                           int64_t row_lo, int64_t row_hi, float *out) {
    if (row_lo < 0 || row_hi < row_lo || row_hi > s->nimg)
        return RDML_FAIL(ctx, RDML_EINTERNAL, "fMRI rows [%lld, %lld) out of range for subj%02d "
                         "(%lld images)", (long long)row_lo, (long long)row_hi, s->id,
                         (long long)s->nimg);
    if (!sel || sel->n < 0 || sel->n_lh < 0 || sel->n_lh > sel->n || (sel->n && !sel->cols))
        return RDML_FAIL(ctx, RDML_EINTERNAL, "invalid selection passed to read_fmri for subj%02d",
                         s->id);
    const int64_t n = sel->n, n_lh = sel->n_lh, n_rh = n - n_lh, nlh = s->nv[0];
    for (int64_t k = 0; k < n; k++) {
        int64_t c = sel->cols[k];
        int ok = k < n_lh ? (c >= 0 && c < nlh) : (c >= nlh && c < nlh + s->nv[1]);
        if (!ok)
            return RDML_FAIL(ctx, RDML_EINTERNAL, "selection '%s' column %lld (%s) does not fit "
                             "subj%02d (lh %lld, rh %lld vertices): was it made for another "
                             "subject?", sel->spec ? sel->spec : "?", (long long)c,
                             k < n_lh ? "lh" : "rh", s->id, (long long)nlh, (long long)s->nv[1]);
    }
    const int64_t rows = row_hi - row_lo;
    if (rows == 0 || n == 0) return RDML_OK;
    /* lh rows land packed at the front of out, rh rows in a side buffer; then each row is
     * spread to its final place from the last row down, which never overwrites unread data. */
    if (n_lh > 0)
        RDML_TRY(rdml_npy_read_f32(ctx, &s->fmri[0], row_lo, row_hi, sel->cols, n_lh, out));
    if (n_rh == 0) return RDML_OK;
    int64_t *rcols = rdml_malloc(ctx, (size_t)n_rh * sizeof *rcols, "rh columns");
    float *rbuf = n_lh ? rdml_malloc(ctx, (size_t)(rows * n_rh) * sizeof *rbuf, "rh block") : out;
    int rc = (!rcols || !rbuf) ? ctx->code : RDML_OK;
    for (int64_t k = 0; rc == RDML_OK && k < n_rh; k++) rcols[k] = sel->cols[n_lh + k] - nlh;
    if (rc == RDML_OK) rc = rdml_npy_read_f32(ctx, &s->fmri[1], row_lo, row_hi, rcols, n_rh, rbuf);
    if (rc == RDML_OK && n_lh) {
        for (int64_t i = rows - 1; i >= 0; i--) {
            memmove(out + i * n, out + i * n_lh, (size_t)n_lh * sizeof *out);
            memcpy(out + i * n + n_lh, rbuf + i * n_rh, (size_t)n_rh * sizeof *out);
        }
    }
    free(rcols);
    if (rbuf != out) free(rbuf);
    return rc;
}
