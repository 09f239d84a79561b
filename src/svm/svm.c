/* C-SVC and epsilon-SVR trained by SMO on image pairs whose kernel values come from the image
 * Gram matrix. The solver follows libsvm's Solver closely (the same WSS3 second-order working-set
 * selection, the same two-variable update with clipping, shrinking with the eps * 10
 * unshrink step, gradient reconstruction, the bias from free variables or the bound
 * midpoint, the default iteration cap), so its solution is the one sklearn.svm.SVC reaches
 * to within the stopping tolerance. Rows of Q (y_i y_j K_ij, float like libsvm's Qfloat)
 * live in an LRU cache that is resized as the active set shrinks; a kernel value is two
 * Gram lookups and a scalar function, so a row of l values costs O(l) and pair features
 * (2D floats per pair) are never formed. epsilon-SVR is libsvm's solve_epsilon_svr: 2l
 * variables [alpha; alpha*] with linear terms epsilon - y and epsilon + y and signs +1/-1, the
 * same solver with a general linear term p; its cache holds unsigned kernel rows of the l real
 * pairs (not permuted), and a signed row is assembled per variable into one of two buffers, as
 * libsvm's SVR_Q. Left out: nu-SVC, nu-SVR and one-class, probability estimates (Platt
 * scaling), multiclass one-vs-one. */
#include <cblas.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "rdml/mpiutil.h"
#include "svm/svm_priv.h"

#define TAU 1e-12

void rdml_svm_defaults(rdml_svm_params *p) {
    memset(p, 0, sizeof *p);
    p->kernel = RDML_SVM_RBF;
    p->degree = 3;
    p->gamma_mode = RDML_GAMMA_SCALE;
    p->C = 1.0;
    p->epsilon = 0.1;
    p->weight[0] = p->weight[1] = 1.0;
    p->tol = 1e-3;
    p->shrinking = 1;
    p->cache_mb = 200;
    p->solver = RDML_SVM_SMO;
    p->rank = 50;
    p->factor = RDML_SVM_FACTOR_EIGEN;
    p->lr_tol = 1.0;
    p->max_epochs = 1000;
    p->split_min = RDML_SVM_SPLIT_MIN_PAIRS;
}

static const char *const solver_names[] = {"smo", "lowrank"};
int rdml_svm_solver_parse(const char *name) {
    for (int i = 0; i < 2; i++)
        if (name && strcasecmp(name, solver_names[i]) == 0) return i;
    return -1;
}
const char *rdml_svm_solver_name(rdml_svm_solver v) {
    return (int)v >= 0 && (int)v < 2 ? solver_names[v] : "?";
}
static const char *const factor_names[] = {"eigen", "nystrom"};
int rdml_svm_factor_parse(const char *name) {
    for (int i = 0; i < 2; i++)
        if (name && strcasecmp(name, factor_names[i]) == 0) return i;
    return -1;
}
const char *rdml_svm_factor_name(rdml_svm_factor f) {
    return (int)f >= 0 && (int)f < 2 ? factor_names[f] : "?";
}

static const char *const kernel_names[] = {"linear", "poly", "rbf", "sigmoid"};
int rdml_svm_kernel_parse(const char *name) {
    for (int i = 0; i < 4; i++)
        if (name && strcasecmp(name, kernel_names[i]) == 0) return i;
    return -1;
}
const char *rdml_svm_kernel_name(rdml_svm_kernel k) {
    return (int)k >= 0 && (int)k < 4 ? kernel_names[k] : "?";
}

static const char *const type_names[] = {"c_svc", "epsilon_svr"};
int rdml_svm_type_parse(const char *name) {
    for (int i = 0; i < 2; i++)
        if (name && strcasecmp(name, type_names[i]) == 0) return i;
    return -1;
}
const char *rdml_svm_type_name(rdml_svm_type t) {
    return (int)t >= 0 && (int)t < 2 ? type_names[t] : "?";
}

int rdml_svm_check(rdml_ctx *ctx, const rdml_svm_params *p) {
    if ((int)p->type < 0 || (int)p->type > 1)
        return RDML_FAIL(ctx, RDML_ECONFIG, "svm.type %d is not c_svc or epsilon_svr", (int)p->type);
    if (p->type == RDML_SVM_EPSILON_SVR && !(p->epsilon >= 0 && isfinite(p->epsilon)))
        return RDML_FAIL(ctx, RDML_ECONFIG, "svm.epsilon = %g must be >= 0", p->epsilon);
    if ((int)p->kernel < 0 || (int)p->kernel > 3)
        return RDML_FAIL(ctx, RDML_ECONFIG, "svm.kernel %d is not linear, poly, rbf or sigmoid", (int)p->kernel);
    if (!(p->C > 0) || !isfinite(p->C))
        return RDML_FAIL(ctx, RDML_ECONFIG, "svm.C = %g must be > 0", p->C);
    if (p->kernel == RDML_SVM_POLY && (p->degree < 0 || p->degree > 100))
        return RDML_FAIL(ctx, RDML_ECONFIG, "svm.degree = %d must be in 0..100", p->degree);
    if (p->gamma_mode == RDML_GAMMA_VALUE && !(p->gamma > 0 && isfinite(p->gamma)))
        return RDML_FAIL(ctx, RDML_ECONFIG, "svm.gamma = %g must be > 0 (or scale, auto)", p->gamma);
    if (!(p->tol > 0)) return RDML_FAIL(ctx, RDML_ECONFIG, "svm.tol = %g must be > 0", p->tol);
    if (!(p->weight[0] > 0 && p->weight[1] > 0))
        return RDML_FAIL(ctx, RDML_ECONFIG, "class weights %g, %g must be > 0", p->weight[0], p->weight[1]);
    if (!(p->cache_mb > 0)) return RDML_FAIL(ctx, RDML_ECONFIG, "svm.cache_mb = %g must be > 0", p->cache_mb);
    if ((int)p->solver < 0 || (int)p->solver > 1)
        return RDML_FAIL(ctx, RDML_ECONFIG, "svm.solver %d is not smo or lowrank", (int)p->solver);
    if (p->solver == RDML_SVM_LOWRANK) return svm_lowrank_check(ctx, p);
    return RDML_OK;
}

/* ---- images ---- */

void rdml_svm_images_free(rdml_svm_images *im) {
    if (!im) return;
    free(im->gram);
    free(im->sqnorm);
    free(im->rowsum);
    free(im->emb);
    memset(im, 0, sizeof *im);
}

int rdml_svm_images_needs(const rdml_svm_params *p) {
    return p->solver == RDML_SVM_LOWRANK ? RDML_SVM_IMAGES_EMB : RDML_SVM_IMAGES_GRAM;
}

int rdml_svm_images_make(rdml_ctx *ctx, int64_t n, int64_t d, const float *emb,
                         rdml_svm_images *out) {
    return rdml_svm_images_make_ex(ctx, n, d, emb, RDML_SVM_IMAGES_GRAM, out);
}

int rdml_svm_images_make_ex(rdml_ctx *ctx, int64_t n, int64_t d, const float *emb, int what,
                            rdml_svm_images *out) {
    memset(out, 0, sizeof *out);
    if (n < 1 || d < 1)
        return RDML_FAIL(ctx, RDML_EDATA, "embeddings of %lld images x %lld dims: need at least 1 x 1",
                         (long long)n, (long long)d);
    const int gram = (what & RDML_SVM_IMAGES_GRAM) != 0;
    double *e = gram ? rdml_malloc(ctx, (size_t)(n * d) * sizeof *e, "embeddings (double)") : NULL;
    if (gram) out->gram = rdml_malloc(ctx, (size_t)(n * n) * sizeof *out->gram, "image Gram matrix");
    if (what & RDML_SVM_IMAGES_EMB) out->emb = rdml_malloc(ctx, (size_t)(n * d) * sizeof *out->emb, "embeddings");
    out->sqnorm = rdml_malloc(ctx, (size_t)n * sizeof *out->sqnorm, "image norms");
    out->rowsum = rdml_malloc(ctx, (size_t)n * sizeof *out->rowsum, "image sums");
    if ((gram && (!e || !out->gram)) || ((what & RDML_SVM_IMAGES_EMB) && !out->emb) || !out->sqnorm ||
        !out->rowsum) {
        free(e);
        rdml_svm_images_free(out);
        return ctx->code;
    }
    out->n = n;
    out->d = d;
    for (int64_t i = 0; i < n * d; i++) {
        if (!isfinite(emb[i])) {
            int64_t r = i / d, c = i % d;
            free(e);
            rdml_svm_images_free(out);
            return RDML_FAIL(ctx, RDML_EDATA, "embedding of image %lld, dimension %lld is not finite",
                             (long long)r, (long long)c);
        }
        if (e) e[i] = emb[i];
    }
    if (out->emb) memcpy(out->emb, emb, (size_t)(n * d) * sizeof *emb);
    /* row-major E (n x d) is column-major E^T (d x n): G = (E^T)^T E^T */
    if (gram) {
        cblas_dsyrk(CblasColMajor, CblasUpper, CblasTrans, (int)n, (int)d, 1.0, e, (int)d, 0.0,
                    out->gram, (int)n);
        /* column-major upper = row-major lower; mirror to a full symmetric matrix */
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < i; j++) out->gram[j * n + i] = out->gram[i * n + j];
    }
    for (int64_t i = 0; i < n; i++) {
        double s = 0, q = 0;
        for (int64_t k = 0; k < d; k++) {
            double x = emb[i * d + k];
            s += x;
            q += x * x;
        }
        out->rowsum[i] = s;
        out->sqnorm[i] = q;
        if (gram) out->gram[i * n + i] = q;
    }
    free(e);
    return RDML_OK;
}

/* ---- kernel-row cache (libsvm's Cache: LRU list, rows computed up to a length) ---- */

typedef struct cache_head {
    struct cache_head *prev, *next;
    float *data;
    int64_t len;
} cache_head;

typedef struct svm_cache {
    int64_t l;
    int64_t size; /* floats still available */
    cache_head *head;
    cache_head lru;
} svm_cache;

static void lru_delete(cache_head *h) {
    h->prev->next = h->next;
    h->next->prev = h->prev;
}
static void lru_insert(svm_cache *c, cache_head *h) {
    h->next = &c->lru;
    h->prev = c->lru.prev;
    h->prev->next = h;
    h->next->prev = h;
}

static int cache_init(svm_cache *c, int64_t l, double mb) {
    c->l = l;
    c->head = calloc((size_t)l, sizeof *c->head);
    if (!c->head) return -1;
    int64_t size = (int64_t)(mb * (1 << 20)) / (int64_t)sizeof(float);
    size -= l * (int64_t)(sizeof(cache_head) / sizeof(float));
    c->size = size > 2 * l ? size : 2 * l; /* two rows always fit */
    c->lru.next = c->lru.prev = &c->lru;
    return 0;
}

static void cache_destroy(svm_cache *c) {
    for (cache_head *h = c->lru.next; h && h != &c->lru; h = h->next) free(h->data);
    free(c->head);
    c->head = NULL;
}

/* Row `index` with room for len values; returns how many were already valid, or -1 on
 * allocation failure. */
static int64_t cache_get(svm_cache *c, int64_t index, float **data, int64_t len) {
    cache_head *h = &c->head[index];
    if (h->len) lru_delete(h);
    int64_t more = len - h->len;
    if (more > 0) {
        while (c->size < more) {
            cache_head *old = c->lru.next;
            lru_delete(old);
            free(old->data);
            c->size += old->len;
            old->data = NULL;
            old->len = 0;
        }
        float *nd = realloc(h->data, (size_t)len * sizeof *nd);
        if (!nd) {
            if (h->len) lru_insert(c, h);
            return -1;
        }
        h->data = nd;
        c->size -= more;
        int64_t t = h->len;
        h->len = len;
        len = t;
    }
    lru_insert(c, h);
    *data = h->data;
    return len;
}

static void cache_swap(svm_cache *c, int64_t i, int64_t j) {
    if (i == j) return;
    if (c->head[i].len) lru_delete(&c->head[i]);
    if (c->head[j].len) lru_delete(&c->head[j]);
    float *td = c->head[i].data;
    c->head[i].data = c->head[j].data;
    c->head[j].data = td;
    int64_t tl = c->head[i].len;
    c->head[i].len = c->head[j].len;
    c->head[j].len = tl;
    if (c->head[i].len) lru_insert(c, &c->head[i]);
    if (c->head[j].len) lru_insert(c, &c->head[j]);
    if (i > j) {
        int64_t t = i;
        i = j;
        j = t;
    }
    for (cache_head *h = c->lru.next; h != &c->lru;) {
        cache_head *next = h->next;
        if (h->len > i) {
            if (h->len > j) {
                float t = h->data[i];
                h->data[i] = h->data[j];
                h->data[j] = t;
            } else { /* give up this row */
                lru_delete(h);
                free(h->data);
                c->size += h->len;
                h->data = NULL;
                h->len = 0;
            }
        }
        h = next;
    }
}

/* ---- the solver (libsvm's Solver with a linear term p: -1 for C-SVC, epsilon -/+ y for SVR) ---- */

enum { LOWER_BOUND = 0, UPPER_BOUND, FREE };

typedef struct solver {
    int64_t l, active_size;
    int8_t *y;        /* +1 / -1 */
    int64_t *pa, *pb; /* the pair of each (permuted) variable */
    double *QD;       /* K_ii */
    double *p;        /* linear term: -1 (C-SVC), epsilon -/+ target (SVR) */
    double *G, *G_bar, *alpha;
    /* SVR: variable -> real pair (permuted with the variables), the real pairs' image rows in
     * training order, and two row buffers (libsvm's SVR_Q: Qi and Qj must both stay valid) */
    int svr;
    int64_t *idx, *ra, *rb, nreal;
    float *buf[2];
    int next_buf;
    char *status;
    int64_t *active_set;
    double Cp, Cn, eps;
    int unshrink, oom;
    svm_kern k;
    svm_cache cache;
} solver;

static double get_C(const solver *s, int64_t i) { return s->y[i] > 0 ? s->Cp : s->Cn; }
static void update_status(solver *s, int64_t i) {
    if (s->alpha[i] >= get_C(s, i)) s->status[i] = UPPER_BOUND;
    else if (s->alpha[i] <= 0) s->status[i] = LOWER_BOUND;
    else s->status[i] = FREE;
}
#define IS_UPPER(s, i) ((s)->status[i] == UPPER_BOUND)
#define IS_LOWER(s, i) ((s)->status[i] == LOWER_BOUND)
#define IS_FREE(s, i) ((s)->status[i] == FREE)

/* SVR: the signed row of variable i from the cached kernel row of its real pair. */
static const float *get_Q_svr(solver *s, int64_t i, int64_t len) {
    float *data;
    const int64_t real = s->idx[i], nr = s->nreal;
    int64_t start = cache_get(&s->cache, real, &data, nr);
    if (start < 0) {
        s->oom = 1;
        return NULL;
    }
    for (int64_t j = start; j < nr; j++)
        data[j] = (float)svm_pair_kernel(&s->k, s->ra[real], s->rb[real], s->ra[j], s->rb[j]);
    float *buf = s->buf[s->next_buf];
    s->next_buf = 1 - s->next_buf;
    const float si = (float)s->y[i];
    for (int64_t j = 0; j < len; j++) buf[j] = si * (float)s->y[j] * data[s->idx[j]];
    return buf;
}

/* Row i of Q up to len (NULL on allocation failure: s->oom is set). */
static const float *get_Q(solver *s, int64_t i, int64_t len) {
    if (s->svr) return get_Q_svr(s, i, len);
    float *data;
    int64_t start = cache_get(&s->cache, i, &data, len);
    if (start < 0) {
        s->oom = 1;
        return NULL;
    }
    if (start >= len) return data;
    const svm_kern *k = &s->k;
    const int64_t a = s->pa[i], b = s->pb[i], n = k->n;
    const double yi = s->y[i];
    const double *Ga = k->G + a * n, *Gb = k->G + b * n;
    if (k->type == RDML_SVM_POLY && !k->symmetric) {
        const double g = k->gamma, c0 = k->coef0;
        const int deg = k->degree;
        if (deg == 2) {
            for (int64_t j = start; j < len; j++) {
                double t = g * (Ga[s->pa[j]] + Gb[s->pb[j]]) + c0;
                data[j] = (float)(yi * s->y[j] * (t * t));
            }
        } else {
            for (int64_t j = start; j < len; j++)
                data[j] = (float)(yi * s->y[j] * svm_powi(g * (Ga[s->pa[j]] + Gb[s->pb[j]]) + c0, deg));
        }
    } else {
        for (int64_t j = start; j < len; j++)
            data[j] = (float)(yi * s->y[j] * svm_pair_kernel(k, a, b, s->pa[j], s->pb[j]));
    }
    return data;
}

#define SWAP(T, x, y) do { T t_ = (x); (x) = (y); (y) = t_; } while (0)

static void swap_index(solver *s, int64_t i, int64_t j) {
    if (s->svr) SWAP(int64_t, s->idx[i], s->idx[j]); /* the cache is by real pair: no swap */
    else cache_swap(&s->cache, i, j);
    SWAP(double, s->p[i], s->p[j]);
    SWAP(int8_t, s->y[i], s->y[j]);
    SWAP(int64_t, s->pa[i], s->pa[j]);
    SWAP(int64_t, s->pb[i], s->pb[j]);
    SWAP(double, s->QD[i], s->QD[j]);
    SWAP(double, s->G[i], s->G[j]);
    SWAP(char, s->status[i], s->status[j]);
    SWAP(double, s->alpha[i], s->alpha[j]);
    SWAP(int64_t, s->active_set[i], s->active_set[j]);
    SWAP(double, s->G_bar[i], s->G_bar[j]);
}

static void reconstruct_gradient(solver *s) {
    int64_t l = s->l, as = s->active_size;
    if (as == l) return;
    int64_t nr_free = 0;
    for (int64_t j = as; j < l; j++) s->G[j] = s->G_bar[j] + s->p[j];
    for (int64_t j = 0; j < as; j++) nr_free += IS_FREE(s, j);
    if (nr_free * l > 2 * as * (l - as)) {
        for (int64_t i = as; i < l; i++) {
            const float *Qi = get_Q(s, i, as);
            if (!Qi) return;
            for (int64_t j = 0; j < as; j++)
                if (IS_FREE(s, j)) s->G[i] += s->alpha[j] * Qi[j];
        }
    } else {
        for (int64_t i = 0; i < as; i++)
            if (IS_FREE(s, i)) {
                const float *Qi = get_Q(s, i, l);
                if (!Qi) return;
                double ai = s->alpha[i];
                for (int64_t j = as; j < l; j++) s->G[j] += ai * Qi[j];
            }
    }
}

/* WSS3: returns 1 when optimal within eps. */
static int select_working_set(solver *s, int64_t *out_i, int64_t *out_j) {
    double Gmax = -INFINITY, Gmax2 = -INFINITY, obj_diff_min = INFINITY;
    int64_t Gmax_idx = -1, Gmin_idx = -1, as = s->active_size;
    for (int64_t t = 0; t < as; t++) {
        if (s->y[t] == 1) {
            if (!IS_UPPER(s, t) && -s->G[t] >= Gmax) {
                Gmax = -s->G[t];
                Gmax_idx = t;
            }
        } else if (!IS_LOWER(s, t) && s->G[t] >= Gmax) {
            Gmax = s->G[t];
            Gmax_idx = t;
        }
    }
    int64_t i = Gmax_idx;
    const float *Qi = NULL;
    if (i != -1) {
        Qi = get_Q(s, i, as);
        if (!Qi) return 1;
    }
    for (int64_t j = 0; j < as; j++) {
        if (s->y[j] == 1) {
            if (!IS_LOWER(s, j)) {
                double grad_diff = Gmax + s->G[j];
                if (s->G[j] >= Gmax2) Gmax2 = s->G[j];
                if (grad_diff > 0) {
                    double quad = s->QD[i] + s->QD[j] - 2.0 * s->y[i] * Qi[j];
                    double od = quad > 0 ? -(grad_diff * grad_diff) / quad : -(grad_diff * grad_diff) / TAU;
                    if (od <= obj_diff_min) {
                        Gmin_idx = j;
                        obj_diff_min = od;
                    }
                }
            }
        } else if (!IS_UPPER(s, j)) {
            double grad_diff = Gmax - s->G[j];
            if (-s->G[j] >= Gmax2) Gmax2 = -s->G[j];
            if (grad_diff > 0) {
                double quad = s->QD[i] + s->QD[j] + 2.0 * s->y[i] * Qi[j];
                double od = quad > 0 ? -(grad_diff * grad_diff) / quad : -(grad_diff * grad_diff) / TAU;
                if (od <= obj_diff_min) {
                    Gmin_idx = j;
                    obj_diff_min = od;
                }
            }
        }
    }
    if (Gmax + Gmax2 < s->eps || Gmin_idx == -1) return 1;
    *out_i = Gmax_idx;
    *out_j = Gmin_idx;
    return 0;
}

static int be_shrunk(const solver *s, int64_t i, double Gmax1, double Gmax2) {
    if (IS_UPPER(s, i)) return s->y[i] == 1 ? -s->G[i] > Gmax1 : -s->G[i] > Gmax2;
    if (IS_LOWER(s, i)) return s->y[i] == 1 ? s->G[i] > Gmax2 : s->G[i] > Gmax1;
    return 0;
}

/* The two maxima of the shrinking rule over the active set (LIBSVM's do_shrinking). */
static void shrink_gmax(const solver *s, double *g1, double *g2) {
    double Gmax1 = -INFINITY, Gmax2 = -INFINITY;
    for (int64_t i = 0; i < s->active_size; i++) {
        if (s->y[i] == 1) {
            if (!IS_UPPER(s, i) && -s->G[i] >= Gmax1) Gmax1 = -s->G[i];
            if (!IS_LOWER(s, i) && s->G[i] >= Gmax2) Gmax2 = s->G[i];
        } else {
            if (!IS_UPPER(s, i) && -s->G[i] >= Gmax2) Gmax2 = -s->G[i];
            if (!IS_LOWER(s, i) && s->G[i] >= Gmax1) Gmax1 = s->G[i];
        }
    }
    *g1 = Gmax1;
    *g2 = Gmax2;
}

/* Move the variables to shrink behind the active set, swapping with swap(s, u, i, j). */
static void shrink_tail(solver *s, double Gmax1, double Gmax2,
                        void (*swap)(solver *, void *, int64_t, int64_t), void *u) {
    for (int64_t i = 0; i < s->active_size; i++)
        if (be_shrunk(s, i, Gmax1, Gmax2)) {
            s->active_size--;
            while (s->active_size > i) {
                if (!be_shrunk(s, s->active_size, Gmax1, Gmax2)) {
                    swap(s, u, i, s->active_size);
                    break;
                }
                s->active_size--;
            }
        }
}

static void swap_plain(solver *s, void *u, int64_t i, int64_t j) {
    (void)u;
    swap_index(s, i, j);
}

static void do_shrinking(solver *s) {
    double Gmax1, Gmax2;
    shrink_gmax(s, &Gmax1, &Gmax2);
    if (!s->unshrink && Gmax1 + Gmax2 <= s->eps * 10) {
        s->unshrink = 1;
        reconstruct_gradient(s);
        s->active_size = s->l;
    }
    shrink_tail(s, Gmax1, Gmax2, swap_plain, NULL);
}

static double calculate_rho(const solver *s) {
    int64_t nr_free = 0;
    double ub = INFINITY, lb = -INFINITY, sum_free = 0;
    for (int64_t i = 0; i < s->active_size; i++) {
        double yG = s->y[i] * s->G[i];
        if (IS_UPPER(s, i)) {
            if (s->y[i] == -1) ub = fmin(ub, yG);
            else lb = fmax(lb, yG);
        } else if (IS_LOWER(s, i)) {
            if (s->y[i] == 1) ub = fmin(ub, yG);
            else lb = fmax(lb, yG);
        } else {
            nr_free++;
            sum_free += yG;
        }
    }
    return nr_free > 0 ? sum_free / (double)nr_free : (ub + lb) / 2;
}

void rdml_svm_free(rdml_svm_model **m) {
    if (!m || !*m) return;
    free((*m)->sv_index);
    free((*m)->sv_ij);
    free((*m)->coef);
    svm_lowrank_free((*m)->lr);
    free(*m);
    *m = NULL;
}

void rdml_svm_get_info(const rdml_svm_model *m, rdml_svm_info *out) { *out = m->info; }

void rdml_svm_support(const rdml_svm_model *m, int64_t *n, const int64_t **index,
                      const double **coef) {
    *n = m->nsv;
    *index = m->sv_index;
    *coef = m->coef;
}

static void solver_free(solver *s) {
    free(s->p);
    free(s->idx);
    free(s->buf[0]);
    free(s->buf[1]);
    free(s->y);
    free(s->pa);
    free(s->pb);
    free(s->QD);
    free(s->G);
    free(s->G_bar);
    free(s->alpha);
    free(s->status);
    free(s->active_set);
    cache_destroy(&s->cache);
}

/* The SMO main loop; alpha is returned in s->alpha in ORIGINAL order via active_set. */
static int solve_from(rdml_ctx *ctx, solver *s, int shrinking, int64_t max_iter_cfg, int64_t iter,
                      int64_t counter, int64_t *iters, int *converged, double *obj, double *rho,
                      double *alpha_out);

static int solve(rdml_ctx *ctx, solver *s, int shrinking, int64_t max_iter_cfg, int64_t *iters,
                 int *converged, double *obj, double *rho, double *alpha_out) {
    int64_t l = s->l;
    for (int64_t i = 0; i < l; i++) {
        s->alpha[i] = 0;
        update_status(s, i);
        s->active_set[i] = i;
        s->G[i] = s->p[i];
        s->G_bar[i] = 0;
    }
    s->active_size = l;
    /* alpha starts at 0: no gradient initialisation needed */
    return solve_from(ctx, s, shrinking, max_iter_cfg, 0, (l < 1000 ? l : 1000) + 1, iters,
                      converged, obj, rho, alpha_out);
}

/* The main loop from a state (iteration iter, shrinking counter): a fit on a group of ranks
 * that does not pay hands its state to one rank here. */
static int solve_from(rdml_ctx *ctx, solver *s, int shrinking, int64_t max_iter_cfg, int64_t iter,
                      int64_t counter, int64_t *iters, int *converged, double *obj, double *rho,
                      double *alpha_out) {
    int64_t l = s->l;
    int64_t max_iter = max_iter_cfg > 0 ? max_iter_cfg : (100 * l > 10000000 ? 100 * l : 10000000);
    *converged = 1;
    while (iter < max_iter) {
        if (--counter == 0) {
            counter = l < 1000 ? l : 1000;
            if (shrinking) do_shrinking(s);
        }
        int64_t i = 0, j = 0;
        if (select_working_set(s, &i, &j) != 0) {
            if (s->oom) break;
            reconstruct_gradient(s);
            s->active_size = l;
            if (select_working_set(s, &i, &j) != 0) break;
            counter = 1;
        }
        if (s->oom) break;
        ++iter;
        const float *Qi = get_Q(s, i, s->active_size);
        const float *Qj = Qi ? get_Q(s, j, s->active_size) : NULL;
        if (!Qi || !Qj) break;
        /* Qi may have been evicted by get_Q(j) only if the cache holds < 2 rows: it holds >= 2 */
        double Ci = get_C(s, i), Cj = get_C(s, j);
        double oai = s->alpha[i], oaj = s->alpha[j];
        double *a = s->alpha;
        if (s->y[i] != s->y[j]) {
            double quad = s->QD[i] + s->QD[j] + 2 * Qi[j];
            if (quad <= 0) quad = TAU;
            double delta = (-s->G[i] - s->G[j]) / quad, diff = a[i] - a[j];
            a[i] += delta;
            a[j] += delta;
            if (diff > 0) {
                if (a[j] < 0) { a[j] = 0; a[i] = diff; }
            } else if (a[i] < 0) { a[i] = 0; a[j] = -diff; }
            if (diff > Ci - Cj) {
                if (a[i] > Ci) { a[i] = Ci; a[j] = Ci - diff; }
            } else if (a[j] > Cj) { a[j] = Cj; a[i] = Cj + diff; }
        } else {
            double quad = s->QD[i] + s->QD[j] - 2 * Qi[j];
            if (quad <= 0) quad = TAU;
            double delta = (s->G[i] - s->G[j]) / quad, sum = a[i] + a[j];
            a[i] -= delta;
            a[j] += delta;
            if (sum > Ci) {
                if (a[i] > Ci) { a[i] = Ci; a[j] = sum - Ci; }
            } else if (a[j] < 0) { a[j] = 0; a[i] = sum; }
            if (sum > Cj) {
                if (a[j] > Cj) { a[j] = Cj; a[i] = sum - Cj; }
            } else if (a[i] < 0) { a[i] = 0; a[j] = sum; }
        }
        double dai = a[i] - oai, daj = a[j] - oaj;
        for (int64_t t = 0; t < s->active_size; t++) s->G[t] += Qi[t] * dai + Qj[t] * daj;
        int ui = IS_UPPER(s, i), uj = IS_UPPER(s, j);
        update_status(s, i);
        update_status(s, j);
        if (ui != IS_UPPER(s, i)) {
            const float *Q = get_Q(s, i, l);
            if (!Q) break;
            for (int64_t t = 0; t < l; t++) s->G_bar[t] += (ui ? -Ci : Ci) * Q[t];
        }
        if (uj != IS_UPPER(s, j)) {
            const float *Q = get_Q(s, j, l);
            if (!Q) break;
            for (int64_t t = 0; t < l; t++) s->G_bar[t] += (uj ? -Cj : Cj) * Q[t];
        }
    }
    if (s->oom)
        return RDML_FAIL(ctx, RDML_ENOMEM, "out of memory for the SVM kernel cache (%lld pairs; "
                         "hint: lower svm.cache_mb)", (long long)l);
    if (iter >= max_iter) {
        *converged = 0;
        if (s->active_size < l) {
            reconstruct_gradient(s);
            s->active_size = l;
        }
        rdml_log_any(ctx, RDML_LOG_WARN, "SVM reached the iteration limit (%lld) before the "
                     "tolerance; raise svm.max_iter or svm.tol", (long long)max_iter);
    }
    *rho = calculate_rho(s);
    double v = 0;
    for (int64_t i = 0; i < l; i++) v += s->alpha[i] * (s->G[i] + s->p[i]);
    *obj = v / 2;
    for (int64_t i = 0; i < l; i++) alpha_out[s->active_set[i]] = s->alpha[i];
    *iters = iter;
    return RDML_OK;
}

double svm_gamma_of(const rdml_svm_params *p, const rdml_svm_images *im, int64_t l,
                       const int64_t *ij) {
    double nfeat = 2.0 * (double)im->d;
    if (p->gamma_mode == RDML_GAMMA_VALUE) return p->gamma;
    if (p->gamma_mode == RDML_GAMMA_AUTO) return 1.0 / nfeat;
    /* X.var() over the l x 2D concatenated features: E[x^2] - E[x]^2 */
    double s = 0, q = 0, cnt = (double)l * nfeat;
    for (int64_t t = 0; t < l; t++) {
        s += im->rowsum[ij[2 * t]] + im->rowsum[ij[2 * t + 1]];
        q += im->sqnorm[ij[2 * t]] + im->sqnorm[ij[2 * t + 1]];
    }
    double mean = s / cnt, var = q / cnt - mean * mean;
    return var > 0 ? 1.0 / (nfeat * var) : 1.0;
}

/* The model from a solution: coef[t] (l values, 0 = not a support vector) in training order.
 * bound[t] is the C that makes pair t a bounded support vector. */
int svm_make_model(rdml_ctx *ctx, const svm_kern *k, int64_t n_images, int64_t l,
                      const int64_t *ij, const double *coef, const double *bound, double obj,
                      double rho, int64_t iters, int conv, double t0, rdml_svm_model **out) {
    rdml_svm_model *m = calloc(1, sizeof *m);
    if (!m) return RDML_FAIL(ctx, RDML_ENOMEM, "out of memory for an SVM model");
    int64_t nsv = 0, nbsv = 0;
    for (int64_t t = 0; t < l; t++)
        if (coef[t] != 0) {
            nsv++;
            nbsv += fabs(coef[t]) >= bound[t];
        }
    m->k = *k;
    m->k.G = NULL;
    m->k.sq = NULL;
    m->n_images = n_images;
    m->nsv = nsv;
    m->sv_index = malloc((size_t)(nsv ? nsv : 1) * sizeof *m->sv_index);
    m->sv_ij = malloc((size_t)(nsv ? nsv : 1) * 2 * sizeof *m->sv_ij);
    m->coef = malloc((size_t)(nsv ? nsv : 1) * sizeof *m->coef);
    if (!m->sv_index || !m->sv_ij || !m->coef) {
        rdml_svm_free(&m);
        return RDML_FAIL(ctx, RDML_ENOMEM, "out of memory for %lld support vectors", (long long)nsv);
    }
    for (int64_t t = 0, q = 0; t < l; t++)
        if (coef[t] != 0) {
            m->sv_index[q] = t;
            m->sv_ij[2 * q] = ij[2 * t];
            m->sv_ij[2 * q + 1] = ij[2 * t + 1];
            m->coef[q] = coef[t];
            q++;
        }
    m->info = (rdml_svm_info){obj, rho, k->gamma, nsv, nbsv, iters, conv, rdml_now() - t0, 0};
    *out = m;
    return RDML_OK;
}

int svm_check_labels(rdml_ctx *ctx, int64_t l, const int8_t *y, int64_t cnt[2]) {
    cnt[0] = cnt[1] = 0;
    for (int64_t t = 0; t < l; t++) {
        if (y[t] != 0 && y[t] != 1)
            return RDML_FAIL(ctx, RDML_EDATA, "SVM label %d of training pair %lld is not 0 or 1",
                             y[t], (long long)t);
        cnt[y[t]]++;
    }
    if (cnt[0] == 0 || cnt[1] == 0)
        return RDML_FAIL(ctx, RDML_EDATA,
                         "SVM training set of %lld pairs has %lld of class 0 (similar) and %lld of "
                         "class 1 (dissimilar); a classifier needs both (hint: another pair set, "
                         "threshold, or more images)", (long long)l, (long long)cnt[0], (long long)cnt[1]);
    return RDML_OK;
}

int svm_check_pairs(rdml_ctx *ctx, const rdml_svm_images *im, int64_t l, const int64_t *ij) {
    if (l < 1) return RDML_FAIL(ctx, RDML_EDATA, "SVM training set is empty");
    for (int64_t t = 0; t < l; t++)
        if (ij[2 * t] < 0 || ij[2 * t] >= im->n || ij[2 * t + 1] < 0 || ij[2 * t + 1] >= im->n)
            return RDML_FAIL(ctx, RDML_EDATA, "training pair %lld = (%lld, %lld) is outside the %lld images",
                             (long long)t, (long long)ij[2 * t], (long long)ij[2 * t + 1], (long long)im->n);
    return RDML_OK;
}

/* Allocate the solver's arrays for nv variables over nreal pairs (cache rows: nreal). */
static int solver_alloc(rdml_ctx *ctx, solver *s, int64_t nv, int64_t nreal, double cache_mb, int svr) {
    s->l = nv;
    s->svr = svr;
    s->nreal = nreal;
    s->y = malloc((size_t)nv * sizeof *s->y);
    s->pa = malloc((size_t)nv * sizeof *s->pa);
    s->pb = malloc((size_t)nv * sizeof *s->pb);
    s->QD = malloc((size_t)nv * sizeof *s->QD);
    s->p = malloc((size_t)nv * sizeof *s->p);
    s->G = malloc((size_t)nv * sizeof *s->G);
    s->G_bar = malloc((size_t)nv * sizeof *s->G_bar);
    s->alpha = malloc((size_t)nv * sizeof *s->alpha);
    s->status = malloc((size_t)nv);
    s->active_set = malloc((size_t)nv * sizeof *s->active_set);
    int ok = s->y && s->pa && s->pb && s->QD && s->p && s->G && s->G_bar && s->alpha &&
             s->status && s->active_set;
    if (svr) {
        s->idx = malloc((size_t)nv * sizeof *s->idx);
        s->buf[0] = malloc((size_t)nv * sizeof *s->buf[0]);
        s->buf[1] = malloc((size_t)nv * sizeof *s->buf[1]);
        ok = ok && s->idx && s->buf[0] && s->buf[1];
    }
    if (!ok || cache_init(&s->cache, nreal, cache_mb))
        return RDML_FAIL(ctx, RDML_ENOMEM, "out of memory for an SVM of %lld training pairs", (long long)nreal);
    return RDML_OK;
}

/* A C-SVC solver's settings: the class weights (balanced: l / (2 count)), C per class, the
 * tolerance and the pair kernel. */
static void csvc_setup(solver *s, const rdml_svm_params *p, const rdml_svm_images *im, int64_t l,
                       const int64_t *ij, const int64_t cnt[2]) {
    double w0 = p->weight[0], w1 = p->weight[1];
    if (p->balanced) {
        w0 = (double)l / (2.0 * (double)cnt[0]);
        w1 = (double)l / (2.0 * (double)cnt[1]);
    }
    memset(s, 0, sizeof *s);
    s->Cp = p->C * w1;
    s->Cn = p->C * w0;
    s->eps = p->tol;
    s->k = (svm_kern){p->kernel, p->degree, p->symmetric, svm_gamma_of(p, im, l, ij), p->coef0,
                      im->n, im->gram, im->sqnorm};
}

/* The C-SVC dual's variables: labels +-1, the pairs, p = -1 and the kernel's diagonal. */
static void csvc_fill(solver *s, int64_t l, const int64_t *ij, const int8_t *y) {
    for (int64_t t = 0; t < l; t++) {
        s->y[t] = y[t] ? 1 : -1;
        s->pa[t] = ij[2 * t];
        s->pb[t] = ij[2 * t + 1];
        s->p[t] = -1.0;
        s->QD[t] = svm_pair_kernel(&s->k, s->pa[t], s->pb[t], s->pa[t], s->pb[t]);
    }
}

/* The model of a solved C-SVC: signed coefficients y alpha and each variable's bound. */
static int csvc_model(rdml_ctx *ctx, const solver *s, const rdml_svm_images *im, int64_t l,
                      const int64_t *ij, const int8_t *y, double *alpha, double *bound, double obj,
                      double rho, int64_t iters, int conv, double t0, rdml_svm_model **out) {
    for (int64_t t = 0; t < l; t++) {
        bound[t] = y[t] ? s->Cp : s->Cn;
        alpha[t] = alpha[t] > 0 ? (y[t] ? 1.0 : -1.0) * alpha[t] : 0;
    }
    return svm_make_model(ctx, &s->k, im->n, l, ij, alpha, bound, obj, rho, iters, conv, t0, out);
}

int rdml_svm_train(rdml_ctx *ctx, const rdml_svm_params *p, const rdml_svm_images *im,
                   int64_t l, const int64_t *ij, const int8_t *y, rdml_svm_model **out) {
    *out = NULL;
    RDML_TRY(rdml_svm_check(ctx, p));
    if (p->type != RDML_SVM_C_SVC)
        return RDML_FAIL(ctx, RDML_EINTERNAL, "rdml_svm_train is C-SVC; svm.type = %s needs "
                         "rdml_svm_train_svr", rdml_svm_type_name(p->type));
    if (p->solver == RDML_SVM_LOWRANK) return rdml_svm_train_lowrank(ctx, p, im, l, ij, y, out);
    if (!im->gram)
        return RDML_FAIL(ctx, RDML_EINTERNAL, "SMO without the image Gram matrix (hint: "
                         "rdml_svm_images_make_ex with RDML_SVM_IMAGES_GRAM)");
    RDML_TRY(svm_check_pairs(ctx, im, l, ij));
    int64_t cnt[2];
    RDML_TRY(svm_check_labels(ctx, l, y, cnt));
    double t0 = rdml_now();
    solver s;
    csvc_setup(&s, p, im, l, ij, cnt);
    double *alpha = malloc((size_t)l * sizeof *alpha), *bound = malloc((size_t)l * sizeof *bound);
    int rc = solver_alloc(ctx, &s, l, l, p->cache_mb, 0);
    if (!rc && (!alpha || !bound))
        rc = RDML_FAIL(ctx, RDML_ENOMEM, "out of memory for an SVM of %lld training pairs", (long long)l);
    if (!rc) {
        csvc_fill(&s, l, ij, y);
        int64_t iters = 0;
        int conv = 1;
        double obj = 0, rho = 0;
        rc = solve(ctx, &s, p->shrinking, p->max_iter, &iters, &conv, &obj, &rho, alpha);
        if (!rc) {
            rc = csvc_model(ctx, &s, im, l, ij, y, alpha, bound, obj, rho, iters, conv, t0, out);
        }
    }
    solver_free(&s);
    free(alpha);
    free(bound);
    return rc;
}

int rdml_svm_train_svr(rdml_ctx *ctx, const rdml_svm_params *p, const rdml_svm_images *im,
                       int64_t l, const int64_t *ij, const double *target, rdml_svm_model **out) {
    *out = NULL;
    RDML_TRY(rdml_svm_check(ctx, p));
    if (p->type != RDML_SVM_EPSILON_SVR)
        return RDML_FAIL(ctx, RDML_EINTERNAL, "rdml_svm_train_svr is epsilon-SVR; svm.type = %s "
                         "needs rdml_svm_train", rdml_svm_type_name(p->type));
    if (!im->gram)
        return RDML_FAIL(ctx, RDML_EINTERNAL, "SMO without the image Gram matrix (hint: "
                         "rdml_svm_images_make_ex with RDML_SVM_IMAGES_GRAM)");
    RDML_TRY(svm_check_pairs(ctx, im, l, ij));
    for (int64_t t = 0; t < l; t++)
        if (!isfinite(target[t]))
            return RDML_FAIL(ctx, RDML_EDATA, "SVR target %g of training pair %lld is not finite",
                             target[t], (long long)t);
    double t0 = rdml_now();
    solver s;
    memset(&s, 0, sizeof s);
    s.Cp = s.Cn = p->C;
    s.eps = p->tol;
    s.k = (svm_kern){p->kernel, p->degree, p->symmetric, svm_gamma_of(p, im, l, ij), p->coef0,
                     im->n, im->gram, im->sqnorm};
    s.ra = malloc((size_t)l * sizeof *s.ra);
    s.rb = malloc((size_t)l * sizeof *s.rb);
    double *alpha2 = malloc((size_t)(2 * l) * sizeof *alpha2), *bound = malloc((size_t)l * sizeof *bound);
    int rc = solver_alloc(ctx, &s, 2 * l, l, p->cache_mb, 1);
    if (!rc && (!alpha2 || !bound || !s.ra || !s.rb))
        rc = RDML_FAIL(ctx, RDML_ENOMEM, "out of memory for an SVR of %lld training pairs", (long long)l);
    if (!rc) {
        for (int64_t t = 0; t < l; t++) {
            s.ra[t] = ij[2 * t];
            s.rb[t] = ij[2 * t + 1];
            double kd = svm_pair_kernel(&s.k, s.ra[t], s.rb[t], s.ra[t], s.rb[t]);
            for (int h = 0; h < 2; h++) {
                int64_t v = t + h * l;
                s.y[v] = h ? -1 : 1;
                s.p[v] = h ? p->epsilon + target[t] : p->epsilon - target[t];
                s.idx[v] = t;
                s.pa[v] = s.ra[t];
                s.pb[v] = s.rb[t];
                s.QD[v] = kd;
            }
        }
        int64_t iters = 0;
        int conv = 1;
        double obj = 0, rho = 0;
        rc = solve(ctx, &s, p->shrinking, p->max_iter, &iters, &conv, &obj, &rho, alpha2);
        if (!rc) {
            for (int64_t t = 0; t < l; t++) {
                alpha2[t] = alpha2[t] - alpha2[t + l];
                bound[t] = p->C;
            }
            rc = svm_make_model(ctx, &s.k, im->n, l, ij, alpha2, bound, obj, rho, iters, conv, t0, out);
        }
    }
    free(s.ra);
    free(s.rb);
    solver_free(&s);
    free(alpha2);
    free(bound);
    return rc;
}

int rdml_svm_fit(rdml_ctx *ctx, const rdml_svm_params *p, const rdml_svm_images *im,
                 int64_t l, const int64_t *ij, const double *target, rdml_svm_model **out) {
    *out = NULL;
    if (p->type == RDML_SVM_EPSILON_SVR) return rdml_svm_train_svr(ctx, p, im, l, ij, target, out);
    if (p->solver == RDML_SVM_LOWRANK) {
        int8_t *yl = rdml_malloc(ctx, (size_t)(l ? l : 1), "SVM labels");
        if (!yl) return ctx->code;
        for (int64_t t = 0; t < l; t++) yl[t] = target[t] > 0.5;
        int rc = rdml_svm_train_lowrank(ctx, p, im, l, ij, yl, out);
        free(yl);
        return rc;
    }
    int8_t *y = rdml_malloc(ctx, (size_t)(l ? l : 1), "SVM labels");
    if (!y) return ctx->code;
    for (int64_t t = 0; t < l; t++) y[t] = target[t] > 0.5;
    int rc = rdml_svm_train(ctx, p, im, l, ij, y, out);
    free(y);
    return rc;
}

int rdml_svm_decision(rdml_ctx *ctx, const rdml_svm_model *m, const rdml_svm_images *im,
                      int64_t n, const int64_t *ij, double *out) {
    if (im->n != m->n_images)
        return RDML_FAIL(ctx, RDML_EINTERNAL, "SVM trained on %lld images, decision asked on %lld",
                         (long long)m->n_images, (long long)im->n);
    if (m->lr) return svm_lowrank_decision(ctx, m, im, n, ij, out);
    if (!im->gram)
        return RDML_FAIL(ctx, RDML_EINTERNAL, "SMO decision without the image Gram matrix (hint: "
                         "rdml_svm_images_make_ex with RDML_SVM_IMAGES_GRAM)");
    svm_kern k = m->k;
    k.G = im->gram;
    k.sq = im->sqnorm;
    const int64_t N = im->n;
    for (int64_t t = 0; t < n; t++) {
        int64_t c = ij[2 * t], d = ij[2 * t + 1];
        if (c < 0 || c >= N || d < 0 || d >= N)
            return RDML_FAIL(ctx, RDML_EDATA, "pair %lld = (%lld, %lld) is outside the %lld images",
                             (long long)t, (long long)c, (long long)d, (long long)N);
        double sum = 0;
        if (k.type == RDML_SVM_POLY && !k.symmetric && k.degree == 2) {
            const double *Gc = im->gram + c * N, *Gd = im->gram + d * N;
            for (int64_t q = 0; q < m->nsv; q++) {
                double u = k.gamma * (Gc[m->sv_ij[2 * q]] + Gd[m->sv_ij[2 * q + 1]]) + k.coef0;
                sum += m->coef[q] * (u * u);
            }
        } else {
            for (int64_t q = 0; q < m->nsv; q++)
                sum += m->coef[q] * svm_pair_kernel(&k, m->sv_ij[2 * q], m->sv_ij[2 * q + 1], c, d);
        }
        out[t] = sum - m->info.rho;
    }
    return RDML_OK;
}

/* ---- one C-SVC fit on a group of ranks (rdml_svm_fit_comm) ----
 *
 * Every rank keeps the solver's small per-variable state (labels, pairs, alpha, status, the
 * permutation) and makes the same decisions; what costs O(l) per iteration is split: rank r
 * owns the positions rdml_part_block(active_size, r, g) of the active set for the working-set
 * scans, the gradient G and its kernel-row slices, and rdml_part_block(l, r, g) of all
 * positions for G_bar. The two scans of the working-set selection reduce (value, position)
 * pairs in rank order with the serial scan's tie rule (the last position wins), so the choice
 * is the serial one. Each G value is updated by the one rank that owns it with the serial
 * formula; at a shrinking step (every min(l, 1000) iterations) and at the end G and G_bar are
 * gathered and the serial code runs on the full arrays (the swaps, the gradient
 * reconstruction, rho, the objective). Kernel rows are cached per rank as ranges of
 * positions. After 64 iterations and then every 1000 the group checks that the split pays
 * (the ranks' CPU time outside the exchanges, summed, >= 1.2 x the window's wall time); if
 * not, rank 0 continues alone with the serial loop from the same state (gs_handoff), the
 * others wait without spinning. */

typedef struct grow {
    struct grow *prev, *next;
    float *data;
    int64_t lo, hi; /* positions held: [lo, hi) */
} grow;

typedef struct gsolve {
    MPI_Comm comm;
    int rank, size;
    int64_t alo, ahi; /* my active positions */
    int64_t flo, fhi; /* my positions of [0, l) */
    grow *rows;
    grow lru;
    int64_t budget; /* floats still available */
    int *counts, *displs;
    float one;      /* a valid pointer for an empty range */
    double comm_cpu; /* CPU seconds of this thread in the scans' exchanges */
    double waited;  /* seconds waiting for rank 0 after a hand-over */
} gsolve;

static void grow_unlink(grow *h) {
    h->prev->next = h->next;
    h->next->prev = h->prev;
}
static void grow_link(gsolve *g, grow *h) {
    h->next = &g->lru;
    h->prev = g->lru.prev;
    h->prev->next = h;
    h->next->prev = h;
}
static void grow_drop(gsolve *g, grow *h) {
    grow_unlink(h);
    free(h->data);
    g->budget += h->hi - h->lo;
    h->data = NULL;
    h->lo = h->hi = 0;
}

/* Q_it (the serial get_Q's formula) for positions t in [a, b) into dst[t - a]. */
static void q_fill(const solver *s, int64_t i, int64_t a, int64_t b, float *dst) {
    const svm_kern *k = &s->k;
    const int64_t pa = s->pa[i], pb = s->pb[i], n = k->n;
    const double yi = s->y[i];
    const double *Ga = k->G + pa * n, *Gb = k->G + pb * n;
    if (k->type == RDML_SVM_POLY && !k->symmetric) {
        const double gm = k->gamma, c0 = k->coef0;
        const int deg = k->degree;
        if (deg == 2) {
            for (int64_t j = a; j < b; j++) {
                double t = gm * (Ga[s->pa[j]] + Gb[s->pb[j]]) + c0;
                dst[j - a] = (float)(yi * s->y[j] * (t * t));
            }
        } else {
            for (int64_t j = a; j < b; j++)
                dst[j - a] = (float)(yi * s->y[j] * svm_powi(gm * (Ga[s->pa[j]] + Gb[s->pb[j]]) + c0, deg));
        }
    } else {
        for (int64_t j = a; j < b; j++)
            dst[j - a] = (float)(yi * s->y[j] * svm_pair_kernel(k, pa, pb, s->pa[j], s->pb[j]));
    }
}

/* Row i at positions [a, b): ptr[t - a]; NULL when out of memory (s->oom set). */
static const float *grow_get(gsolve *g, solver *s, int64_t i, int64_t a, int64_t b) {
    if (a >= b) return &g->one;
    grow *h = &g->rows[i];
    if (h->data) {
        grow_unlink(h);
        if (h->lo <= a && b <= h->hi) {
            grow_link(g, h);
            return h->data + (a - h->lo);
        }
    }
    int keep = h->data && a <= h->hi && h->lo <= b; /* overlapping: extend to the union */
    int64_t nlo = keep ? (a < h->lo ? a : h->lo) : a, nhi = keep ? (b > h->hi ? b : h->hi) : b;
    int64_t old = h->data ? h->hi - h->lo : 0, need = (nhi - nlo) - old;
    while (g->budget < need && g->lru.next != &g->lru) grow_drop(g, g->lru.next);
    float *nd = malloc((size_t)(nhi - nlo) * sizeof *nd);
    if (!nd) {
        if (h->data) grow_link(g, h);
        s->oom = 1;
        return NULL;
    }
    if (keep) {
        memcpy(nd + (h->lo - nlo), h->data, (size_t)old * sizeof *nd);
        if (nlo < h->lo) q_fill(s, i, nlo, h->lo, nd);
        if (h->hi < nhi) q_fill(s, i, h->hi, nhi, nd + (h->hi - nlo));
    } else {
        q_fill(s, i, nlo, nhi, nd);
    }
    free(h->data);
    g->budget -= need;
    h->data = nd;
    h->lo = nlo;
    h->hi = nhi;
    grow_link(g, h);
    return h->data + (a - nlo);
}

/* The cached rows follow a swap of positions i and j (libsvm's Cache::swap_index). */
static void grow_swap(gsolve *g, int64_t i, int64_t j) {
    if (i == j) return;
    grow *hi_ = &g->rows[i], *hj = &g->rows[j];
    if (hi_->data) grow_unlink(hi_);
    if (hj->data) grow_unlink(hj);
    grow t = *hi_;
    hi_->data = hj->data, hi_->lo = hj->lo, hi_->hi = hj->hi;
    hj->data = t.data, hj->lo = t.lo, hj->hi = t.hi;
    if (hi_->data) grow_link(g, hi_);
    if (hj->data) grow_link(g, hj);
    for (grow *h = g->lru.next; h != &g->lru;) {
        grow *next = h->next;
        int in_i = h->lo <= i && i < h->hi, in_j = h->lo <= j && j < h->hi;
        if (in_i && in_j) {
            float v = h->data[i - h->lo];
            h->data[i - h->lo] = h->data[j - h->lo];
            h->data[j - h->lo] = v;
        } else if (in_i || in_j) {
            grow_drop(g, h);
        }
        h = next;
    }
}

/* CPU seconds of this thread (its compute; a descheduled rank's wait is not in it). */
static double gs_cpu(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void gs_swap(solver *s, gsolve *g, int64_t i, int64_t j) {
    swap_index(s, i, j); /* the serial cache is empty here */
    grow_swap(g, i, j);
}

static void gs_swap_cb(solver *s, void *u, int64_t i, int64_t j) { gs_swap(s, u, i, j); }

/* Every rank: v[lo, lo + n) from the owners of rdml_part_block(n, r, size) blocks. */
static void gs_gather(gsolve *g, double *v, int64_t lo, int64_t n) {
    rdml_allgather_blocks(g->comm, v + lo, n, g->counts, g->displs);
}

static void gs_part(solver *s, gsolve *g) {
    rdml_part_block(s->active_size, g->rank, g->size, &g->alo, &g->ahi);
}

/* reconstruct_gradient with the full G and G_bar on every rank: the same sums in the same
 * order, the positions split; then G[as, l) gathered. */
static void gs_reconstruct(solver *s, gsolve *g) {
    const int64_t l = s->l, as = s->active_size;
    if (as == l) return;
    int64_t nr_free = 0;
    for (int64_t j = as; j < l; j++) s->G[j] = s->G_bar[j] + s->p[j];
    for (int64_t j = 0; j < as; j++) nr_free += IS_FREE(s, j);
    int64_t a, b;
    rdml_part_block(l - as, g->rank, g->size, &a, &b);
    a += as;
    b += as;
    if (nr_free * l > 2 * as * (l - as)) {
        for (int64_t i = a; i < b && !s->oom; i++) {
            const float *Qi = grow_get(g, s, i, 0, as);
            if (!Qi) break;
            for (int64_t j = 0; j < as; j++)
                if (IS_FREE(s, j)) s->G[i] += s->alpha[j] * Qi[j];
        }
    } else {
        for (int64_t i = 0; i < as && !s->oom; i++)
            if (IS_FREE(s, i)) {
                const float *Qi = grow_get(g, s, i, a, b);
                if (!Qi) break;
                double ai = s->alpha[i];
                for (int64_t j = a; j < b; j++) s->G[j] += ai * Qi[j - a];
            }
    }
    gs_gather(g, s->G, as, l - as);
}

/* do_shrinking on the full arrays (gathered by the caller). */
static void gs_shrink(solver *s, gsolve *g) {
    double Gmax1, Gmax2;
    shrink_gmax(s, &Gmax1, &Gmax2);
    if (!s->unshrink && Gmax1 + Gmax2 <= s->eps * 10) {
        s->unshrink = 1;
        gs_reconstruct(s, g);
        s->active_size = s->l;
    }
    shrink_tail(s, Gmax1, Gmax2, gs_swap_cb, g);
}

/* select_working_set over my positions, the candidates reduced in rank order; also gives
 * G[i], G[j] and Q_ij from their owners. Returns 1 when optimal (or out of memory: s->oom). */
static int gs_wss(solver *s, gsolve *g, int64_t *out_i, int64_t *out_j, double *Gi, double *Gj,
                  double *Qij, double *all) {
    const int64_t a = g->alo, b = g->ahi;
    double Gmax = -INFINITY;
    int64_t idx = -1;
    for (int64_t t = a; t < b; t++) {
        if (s->y[t] == 1) {
            if (!IS_UPPER(s, t) && -s->G[t] >= Gmax) {
                Gmax = -s->G[t];
                idx = t;
            }
        } else if (!IS_LOWER(s, t) && s->G[t] >= Gmax) {
            Gmax = s->G[t];
            idx = t;
        }
    }
    double mine[6] = {Gmax, (double)idx, idx >= 0 ? s->G[idx] : 0, (double)s->oom, 0, 0};
    double tc = gs_cpu();
    MPI_Allgather(mine, 6, MPI_DOUBLE, all, 6, MPI_DOUBLE, g->comm);
    g->comm_cpu += gs_cpu() - tc;
    Gmax = -INFINITY;
    int64_t i = -1;
    int oom = 0;
    for (int r = 0; r < g->size; r++) {
        const double *v = all + 6 * r;
        if (v[1] >= 0 && v[0] >= Gmax) {
            Gmax = v[0];
            i = (int64_t)v[1];
            *Gi = v[2];
        }
        oom |= v[3] != 0;
    }
    if (oom) {
        s->oom = 1;
        return 1;
    }
    const float *Qi = NULL;
    if (i != -1) Qi = grow_get(g, s, i, a, b); /* NULL: s->oom, told to all below */
    double Gmax2 = -INFINITY, odmin = INFINITY;
    int64_t jdx = -1;
    for (int64_t j = a; j < b && Qi; j++) {
        if (s->y[j] == 1) {
            if (!IS_LOWER(s, j)) {
                double grad_diff = Gmax + s->G[j];
                if (s->G[j] >= Gmax2) Gmax2 = s->G[j];
                if (grad_diff > 0) {
                    double quad = s->QD[i] + s->QD[j] - 2.0 * s->y[i] * Qi[j - a];
                    double od = quad > 0 ? -(grad_diff * grad_diff) / quad : -(grad_diff * grad_diff) / TAU;
                    if (od <= odmin) {
                        jdx = j;
                        odmin = od;
                    }
                }
            }
        } else if (!IS_UPPER(s, j)) {
            double grad_diff = Gmax - s->G[j];
            if (-s->G[j] >= Gmax2) Gmax2 = -s->G[j];
            if (grad_diff > 0) {
                double quad = s->QD[i] + s->QD[j] + 2.0 * s->y[i] * Qi[j - a];
                double od = quad > 0 ? -(grad_diff * grad_diff) / quad : -(grad_diff * grad_diff) / TAU;
                if (od <= odmin) {
                    jdx = j;
                    odmin = od;
                }
            }
        }
    }
    if (i == -1) { /* no i: the serial scan still takes Gmax2 over every position */
        for (int64_t j = a; j < b; j++) {
            if (s->y[j] == 1) {
                if (!IS_LOWER(s, j) && s->G[j] >= Gmax2) Gmax2 = s->G[j];
            } else if (!IS_UPPER(s, j) && -s->G[j] >= Gmax2) {
                Gmax2 = -s->G[j];
            }
        }
    }
    double m2[6] = {Gmax2, odmin, (double)jdx, jdx >= 0 ? s->G[jdx] : 0,
                    jdx >= 0 ? (double)Qi[jdx - a] : 0, (double)s->oom};
    tc = gs_cpu();
    MPI_Allgather(m2, 6, MPI_DOUBLE, all, 6, MPI_DOUBLE, g->comm);
    g->comm_cpu += gs_cpu() - tc;
    Gmax2 = -INFINITY;
    odmin = INFINITY;
    int64_t j = -1;
    for (int r = 0; r < g->size; r++) {
        const double *v = all + 6 * r;
        if (v[0] > Gmax2) Gmax2 = v[0];
        if (v[2] >= 0 && v[1] <= odmin) {
            odmin = v[1];
            j = (int64_t)v[2];
            *Gj = v[3];
            *Qij = v[4];
        }
        oom |= v[5] != 0;
    }
    if (oom) {
        s->oom = 1;
        return 1;
    }
    if (Gmax + Gmax2 < s->eps || j == -1) return 1;
    *out_i = i;
    *out_j = j;
    return 0;
}

/* The rest of the fit on rank 0 alone, from the state every rank holds (G and G_bar full):
 * the others wait for alpha and the statistics. */
static int gs_handoff(rdml_ctx *ctx, gsolve *g, solver *s, int shrinking, int64_t max_iter_cfg,
                      int64_t iter, int64_t counter, int64_t *iters, int *converged, double *obj,
                      double *rho, double *alpha_out) {
    for (grow *h = g->lru.next; h != &g->lru;) { /* rank 0's serial cache takes over */
        grow *next = h->next;
        grow_drop(g, h);
        h = next;
    }
    double tw = rdml_now();
    int rc = RDML_OK;
    if (g->rank == 0)
        rc = solve_from(ctx, s, shrinking, max_iter_cfg, iter, counter, iters, converged, obj, rho,
                        alpha_out);
    /* the others wait without spinning (a core kept busy polling would slow rank 0 down on a
     * loaded machine) */
    double st[5] = {(double)rc, *obj, *rho, (double)*iters, (double)*converged};
    MPI_Request req;
    MPI_Ibcast(st, 5, MPI_DOUBLE, 0, g->comm, &req);
    for (int done = 0; !done;) {
        MPI_Test(&req, &done, MPI_STATUS_IGNORE);
        if (!done) {
            struct timespec ts = {0, 500000};
            nanosleep(&ts, NULL);
        }
    }
    rc = rdml_agree(ctx, g->comm, g->rank == 0 ? rc : (int)st[0]); /* rank 0's message */
    if (!rc) {
        MPI_Bcast(alpha_out, (int)s->l, MPI_DOUBLE, 0, g->comm);
        *obj = st[1];
        *rho = st[2];
        *iters = (int64_t)st[3];
        *converged = (int)st[4];
    }
    if (g->rank != 0) g->waited = rdml_now() - tw;
    return rc;
}

/* solve() on a group of ranks: the same iterations, the same result. */
static int gs_solve(rdml_ctx *ctx, gsolve *g, solver *s, int shrinking, int64_t max_iter_cfg,
                    int split_mode, int64_t *iters, int *converged, double *obj, double *rho,
                    double *alpha_out) {
    const int64_t l = s->l;
    for (int64_t i = 0; i < l; i++) {
        s->alpha[i] = 0;
        update_status(s, i);
        s->active_set[i] = i;
        s->G[i] = s->p[i];
        s->G_bar[i] = 0;
    }
    s->active_size = l;
    gs_part(s, g);
    double all[6 * 64];
    double *allv = g->size <= 64 ? all : malloc((size_t)g->size * 6 * sizeof *allv);
    if (!allv) s->oom = 1;
    int64_t iter = 0;
    int64_t max_iter = max_iter_cfg > 0 ? max_iter_cfg : (100 * l > 10000000 ? 100 * l : 10000000);
    int64_t counter = (l < 1000 ? l : 1000) + 1;
    *converged = 1;
    int64_t next_check = 64;
    double w0 = rdml_now(), c0 = gs_cpu();
    g->comm_cpu = 0;
    while (iter < max_iter && allv) {
        if (iter >= next_check) {
            /* does the split pay? In the window since the last check, every rank's CPU time
             * outside the exchanges (its share of the work) summed against the wall time: on
             * cores of their own the ranks do close to g serial seconds of work per second; on
             * loaded or oversubscribed ones they wait for each other (and for the cores) */
            int handoff = 0;
            {
                next_check = iter + 1000;
                double now = rdml_now(), cpu = gs_cpu();
                double wall = now - w0, comp = (cpu - c0) - g->comm_cpu, sum = 0, wmax = 0;
                w0 = now;
                c0 = cpu;
                g->comm_cpu = 0;
                int oom = s->oom, any = 0;
                MPI_Allreduce(&comp, &sum, 1, MPI_DOUBLE, MPI_SUM, g->comm);
                MPI_Allreduce(&wall, &wmax, 1, MPI_DOUBLE, MPI_MAX, g->comm);
                MPI_Allreduce(&oom, &any, 1, MPI_INT, MPI_MAX, g->comm);
                if (any) { /* a rank skipped its part of an update: stop here */
                    s->oom = 1;
                    break;
                }
                handoff = split_mode == 2 || (split_mode == 0 && sum < 1.2 * wmax);
            }
            if (handoff) { /* at an iteration's start: the serial loop goes on from here */
                gs_gather(g, s->G, 0, s->active_size);
                gs_gather(g, s->G_bar, 0, l);
                if (allv != all) free(allv);
                return gs_handoff(ctx, g, s, shrinking, max_iter_cfg, iter, counter, iters,
                                  converged, obj, rho, alpha_out);
            }
        }
        if (--counter == 0) {
            counter = l < 1000 ? l : 1000;
            if (shrinking) {
                gs_gather(g, s->G, 0, s->active_size);
                gs_gather(g, s->G_bar, 0, l);
                gs_shrink(s, g);
                gs_part(s, g);
            }
        }
        int64_t i = 0, j = 0;
        double Gi = 0, Gj = 0, Qij = 0;
        if (gs_wss(s, g, &i, &j, &Gi, &Gj, &Qij, allv) != 0) {
            if (s->oom) break;
            gs_gather(g, s->G, 0, s->active_size);
            gs_gather(g, s->G_bar, 0, l);
            gs_reconstruct(s, g);
            s->active_size = l;
            gs_part(s, g);
            if (gs_wss(s, g, &i, &j, &Gi, &Gj, &Qij, allv) != 0) break;
            counter = 1;
        }
        if (s->oom) break;
        ++iter;
        const int64_t a = g->alo, b = g->ahi;
        const float *Qi = grow_get(g, s, i, a, b);
        const float *Qj = Qi ? grow_get(g, s, j, a, b) : NULL;
        if (!Qi || !Qj) continue; /* s->oom: every rank learns it at the next scan */
        double Ci = get_C(s, i), Cj = get_C(s, j);
        double oai = s->alpha[i], oaj = s->alpha[j];
        double *al = s->alpha;
        if (s->y[i] != s->y[j]) {
            double quad = s->QD[i] + s->QD[j] + 2 * (float)Qij;
            if (quad <= 0) quad = TAU;
            double delta = (-Gi - Gj) / quad, diff = al[i] - al[j];
            al[i] += delta;
            al[j] += delta;
            if (diff > 0) {
                if (al[j] < 0) { al[j] = 0; al[i] = diff; }
            } else if (al[i] < 0) { al[i] = 0; al[j] = -diff; }
            if (diff > Ci - Cj) {
                if (al[i] > Ci) { al[i] = Ci; al[j] = Ci - diff; }
            } else if (al[j] > Cj) { al[j] = Cj; al[i] = Cj + diff; }
        } else {
            double quad = s->QD[i] + s->QD[j] - 2 * (float)Qij;
            if (quad <= 0) quad = TAU;
            double delta = (Gi - Gj) / quad, sum = al[i] + al[j];
            al[i] -= delta;
            al[j] += delta;
            if (sum > Ci) {
                if (al[i] > Ci) { al[i] = Ci; al[j] = sum - Ci; }
            } else if (al[j] < 0) { al[j] = 0; al[i] = sum; }
            if (sum > Cj) {
                if (al[j] > Cj) { al[j] = Cj; al[i] = sum - Cj; }
            } else if (al[i] < 0) { al[i] = 0; al[j] = sum; }
        }
        double dai = al[i] - oai, daj = al[j] - oaj;
        for (int64_t t = a; t < b; t++) s->G[t] += Qi[t - a] * dai + Qj[t - a] * daj;
        int ui = IS_UPPER(s, i), uj = IS_UPPER(s, j);
        update_status(s, i);
        update_status(s, j);
        if (ui != IS_UPPER(s, i)) {
            const float *Q = grow_get(g, s, i, g->flo, g->fhi);
            if (!Q) continue;
            for (int64_t t = g->flo; t < g->fhi; t++) s->G_bar[t] += (ui ? -Ci : Ci) * Q[t - g->flo];
        }
        if (uj != IS_UPPER(s, j)) {
            const float *Q = grow_get(g, s, j, g->flo, g->fhi);
            if (!Q) continue;
            for (int64_t t = g->flo; t < g->fhi; t++) s->G_bar[t] += (uj ? -Cj : Cj) * Q[t - g->flo];
        }
    }
    if (allv != all) free(allv);
    int oom = s->oom, any = 0;
    MPI_Allreduce(&oom, &any, 1, MPI_INT, MPI_MAX, g->comm);
    if (any)
        return RDML_FAIL(ctx, RDML_ENOMEM, "out of memory for the SVM kernel cache (%lld pairs; "
                         "hint: lower svm.cache_mb)", (long long)l);
    gs_gather(g, s->G, 0, s->active_size);
    if (iter >= max_iter) {
        *converged = 0;
        if (s->active_size < l) {
            gs_gather(g, s->G_bar, 0, l);
            gs_reconstruct(s, g);
            s->active_size = l;
        }
        if (g->rank == 0)
            rdml_log_any(ctx, RDML_LOG_WARN, "SVM reached the iteration limit (%lld) before the "
                         "tolerance; raise svm.max_iter or svm.tol", (long long)max_iter);
    }
    *rho = calculate_rho(s);
    double v = 0;
    for (int64_t i = 0; i < l; i++) v += s->alpha[i] * (s->G[i] + s->p[i]);
    *obj = v / 2;
    for (int64_t i = 0; i < l; i++) alpha_out[s->active_set[i]] = s->alpha[i];
    *iters = iter;
    return RDML_OK;
}

int rdml_svm_fit_splits(const rdml_svm_params *p, int64_t l) {
    return p->type == RDML_SVM_C_SVC && p->solver == RDML_SVM_SMO && l >= p->split_min;
}

int rdml_svm_fit_comm(rdml_ctx *ctx, MPI_Comm comm, const rdml_svm_params *p,
                      const rdml_svm_images *im, int64_t l, const int64_t *ij,
                      const double *target, rdml_svm_model **out) {
    *out = NULL;
    int size = 1, rank = 0;
    if (comm != MPI_COMM_NULL) {
        MPI_Comm_size(comm, &size);
        MPI_Comm_rank(comm, &rank);
    }
    if (size == 1 || !rdml_svm_fit_splits(p, l))
        return rdml_svm_fit(ctx, p, im, l, ij, target, out);
    /* the checks of rdml_svm_train, on every rank (same inputs: same outcome) */
    RDML_TRY(rdml_svm_check(ctx, p));
    if (!im->gram)
        return RDML_FAIL(ctx, RDML_EINTERNAL, "SMO without the image Gram matrix (hint: "
                         "rdml_svm_images_make_ex with RDML_SVM_IMAGES_GRAM)");
    RDML_TRY(svm_check_pairs(ctx, im, l, ij));
    if (l > INT_MAX) return RDML_FAIL(ctx, RDML_ECONFIG, "an SVM of %lld pairs on a group of ranks: "
                                      "at most %d", (long long)l, INT_MAX);
    int8_t *y = rdml_malloc(ctx, (size_t)(l ? l : 1), "SVM labels");
    if (!y) return ctx->code;
    for (int64_t t = 0; t < l; t++) y[t] = target[t] > 0.5;
    int64_t cnt[2];
    int rc = svm_check_labels(ctx, l, y, cnt);
    if (rc) {
        free(y);
        return rc;
    }
    double t0 = rdml_now();
    solver s;
    csvc_setup(&s, p, im, l, ij, cnt);
    gsolve g;
    memset(&g, 0, sizeof g);
    g.comm = comm;
    g.rank = rank;
    g.size = size;
    g.lru.next = g.lru.prev = &g.lru;
    rdml_part_block(l, rank, size, &g.flo, &g.fhi);
    /* the cache: svm.cache_mb on each rank, two full rows at least */
    g.budget = (int64_t)(p->cache_mb * (1 << 20)) / (int64_t)sizeof(float);
    if (g.budget < 2 * l) g.budget = 2 * l;
    g.rows = calloc((size_t)l, sizeof *g.rows);
    g.counts = malloc((size_t)size * sizeof *g.counts);
    g.displs = malloc((size_t)size * sizeof *g.displs);
    double *alpha = malloc((size_t)l * sizeof *alpha), *bound = malloc((size_t)l * sizeof *bound);
    rc = solver_alloc(ctx, &s, l, l, p->cache_mb, 0); /* serial cache: used after a hand-over */
    if (!rc && (!alpha || !bound || !g.rows || !g.counts || !g.displs))
        rc = RDML_FAIL(ctx, RDML_ENOMEM, "out of memory for an SVM of %lld training pairs", (long long)l);
    rc = rdml_agree(ctx, comm, rc);
    if (!rc) {
        csvc_fill(&s, l, ij, y);
        int64_t iters = 0;
        int conv = 1;
        double obj = 0, rho = 0;
        rc = gs_solve(ctx, &g, &s, p->shrinking, p->max_iter, p->split_mode, &iters, &conv, &obj,
                      &rho, alpha);
        if (!rc) {
            rc = csvc_model(ctx, &s, im, l, ij, y, alpha, bound, obj, rho, iters, conv, t0, out);
            if (!rc) (*out)->info.waited = g.waited;
        }
        rc = rdml_agree(ctx, comm, rc);
        if (rc) rdml_svm_free(out);
    }
    for (grow *h = g.lru.next; h && h != &g.lru; h = h->next) free(h->data);
    free(g.rows);
    free(g.counts);
    free(g.displs);
    solver_free(&s);
    free(alpha);
    free(bound);
    free(y);
    return rc;
}
