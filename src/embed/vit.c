/* Vision transformers of the zoo (rdml/zoo.h): torchvision's vit_b_16 family and DINOv2
 * (facebookresearch/dinov2, with or without register tokens), in each publisher's tensor
 * names, on OpenBLAS. The architecture is read from tensor shapes: width from the class
 * token, patch size from the patch convolution, depth = 1 + the largest block index of any
 * tensor (every tensor of every block must be there), MLP width from the first block, the
 * register count from register_tokens; heads = width / 64 (every torchvision ViT but ViT-H,
 * whose 1280 wide blocks have 16 heads; every DINOv2 S/B/L). Every tensor of the file is read
 * and checked against the shape the architecture implies, or (DINOv2's mask_token, used only
 * in training) checked and ignored; anything else is an error listing it.
 *
 * Forward (pre-norm blocks, LayerNorm eps 1e-6, exact GELU): patch convolution (im2col + one
 * SGEMM + bias), class token (+ DINOv2's registers after the position embedding), then per
 * block x += ls1 * attn(norm1(x)), x += ls2 * mlp(norm2(x)) (layer scale: DINOv2's gamma,
 * 1 for torchvision), the final norm, and torchvision's head on the normed class token.
 * DINOv2's position embedding is interpolated at load time to the 224 x 224 input as
 * interpolate_pos_encoding does it: bicubic (A = -0.75, align_corners=False, edge-clamped,
 * no antialiasing: the released models' interpolate_antialias=False) with scale factor
 * (16 + 0.1) / M for an M x M table (interpolate_offset 0.1), skipped when the table already
 * has the input's grid. */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "embed/embed_priv.h"
#include "embed/vecmath.h"
#include "embed/vit.h"

typedef struct vit_block {
    float *ln1_w, *ln1_b, *qkv_w, *qkv_b, *o_w, *o_b, *ls1;
    float *ln2_w, *ln2_b, *fc1_w, *fc1_b, *fc2_w, *fc2_b, *ls2;
} vit_block;

struct rdml_vit {
    int dino;
    int64_t D, M, H, p, g, T, R, depth, classes, image;
    double eps;
    float *patch_w, *patch_b, *cls, *reg, *pos; /* pos: (1 + g g) x D, at the input's grid */
    float *norm_w, *norm_b, *head_w, *head_b;
    vit_block *blk;
    rdml_zoo_layer *L;
    int64_t nl;
};

/* ---- layers ---- */

static int make_layers(rdml_ctx *ctx, rdml_vit *m) {
    m->nl = m->depth + 1 + (m->dino ? 0 : 1);
    m->L = rdml_calloc(ctx, (size_t)m->nl, sizeof *m->L, "ViT layers");
    if (!m->L) return ctx->code;
    for (int64_t i = 0; i < m->nl; i++) {
        rdml_zoo_layer *L = &m->L[i];
        if (i < m->depth)
            snprintf(L->name, sizeof L->name, m->dino ? "blocks.%lld" : "encoder.layers.encoder_layer_%lld",
                     (long long)i);
        else
            snprintf(L->name, sizeof L->name, "%s",
                     i == m->depth ? (m->dino ? "norm" : "encoder.ln") : "heads");
        L->depth = (int)i;
        if (i <= m->depth) {
            L->c = m->D;
            L->h = m->T;
            L->w = 1;
            L->tokens = 1;
            L->prefix = (int)(1 + m->R);
        } else {
            L->c = m->classes;
            L->h = L->w = 1;
            L->vec = 1;
        }
    }
    return RDML_OK;
}

void rdml_vit_layers(const rdml_vit *m, const rdml_zoo_layer **L, int64_t *n) {
    *L = m->L;
    *n = m->nl;
}

static int vit_alloc(rdml_ctx *ctx, int dino, rdml_vit **out) {
    *out = calloc(1, sizeof **out);
    if (!*out) return RDML_FAIL(ctx, RDML_ENOMEM, "out of memory building a ViT");
    (*out)->dino = dino;
    (*out)->eps = 1e-6;
    (*out)->image = RDML_ZOO_IMAGE;
    return RDML_OK;
}

int rdml_vit_create(rdml_ctx *ctx, int dino, rdml_vit **out) {
    RDML_TRY(vit_alloc(ctx, dino, out));
    rdml_vit *m = *out;
    m->D = 768;
    m->M = 3072;
    m->H = 12;
    m->p = dino ? 14 : 16;
    m->g = RDML_ZOO_IMAGE / m->p;
    m->T = 1 + m->g * m->g;
    m->depth = 12;
    m->classes = dino ? 0 : 1000;
    int rc = make_layers(ctx, m);
    if (rc) rdml_vit_free(out);
    return rc;
}

void rdml_vit_free(rdml_vit **pm) {
    if (!pm || !*pm) return;
    rdml_vit *m = *pm;
    free(m->patch_w);
    free(m->patch_b);
    free(m->cls);
    free(m->reg);
    free(m->pos);
    free(m->norm_w);
    free(m->norm_b);
    free(m->head_w);
    free(m->head_b);
    for (int64_t l = 0; m->blk && l < m->depth; l++) {
        vit_block *b = &m->blk[l];
        float *all[] = {b->ln1_w, b->ln1_b, b->qkv_w, b->qkv_b, b->o_w, b->o_b, b->ls1,
                        b->ln2_w, b->ln2_b, b->fc1_w, b->fc1_b, b->fc2_w, b->fc2_b, b->ls2};
        for (size_t i = 0; i < sizeof all / sizeof *all; i++) free(all[i]);
    }
    free(m->blk);
    free(m->L);
    free(m);
    *pm = NULL;
}

/* ---- loading ---- */

typedef struct loader {
    rdml_ctx *ctx;
    const rdml_weights *w;
    const char *what;
    uint8_t *used;
} loader;

static void shape_str(char *buf, size_t len, int ndim, const int64_t *shape) {
    size_t o = (size_t)snprintf(buf, len, "[");
    for (int i = 0; i < ndim && o < len; i++)
        o += (size_t)snprintf(buf + o, len - o, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (o < len) snprintf(buf + o, len - o, "]");
}

static const rdml_st_tensor *find(loader *ld, const char *name) {
    int64_t i = rdml_weights_index(ld->w, name);
    if (i < 0) return NULL;
    ld->used[i] = 1;
    return rdml_weights_at(ld->w, i);
}

/* Read `name` (or, when absent, `alt`: an older naming) of the given shape into a new array. */
static int get_alt(loader *ld, const char *name, const char *alt, int ndim, const int64_t *shape,
                   float **dst) {
    const rdml_st_tensor *t = find(ld, name);
    if (!t && alt) t = find(ld, alt);
    char want[96], got[96];
    shape_str(want, sizeof want, ndim, shape);
    if (!t)
        return RDML_FAIL(ld->ctx, RDML_EFORMAT, "%s: tensor '%s' (shape %s) of %s is missing "
                         "(hint: weights of another architecture, or an incomplete file; "
                         "`rdmlearn models` lists the architectures)", rdml_weights_path(ld->w),
                         name, want, ld->what);
    int same = t->ndim == ndim;
    for (int i = 0; i < ndim && same; i++) same = t->shape[i] == shape[i];
    if (!same) {
        shape_str(got, sizeof got, t->ndim, t->shape);
        return RDML_FAIL(ld->ctx, RDML_EFORMAT, "%s: tensor '%s' has shape %s but %s expects %s "
                         "(from the shapes of its other tensors; hint: weights of another "
                         "architecture or a mixed file)", rdml_weights_path(ld->w), t->name, got,
                         ld->what, want);
    }
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    *dst = rdml_malloc(ld->ctx, (size_t)n * sizeof **dst, t->name);
    if (!*dst) return ld->ctx->code;
    return rdml_weights_read_f32(ld->ctx, ld->w, t, *dst);
}

static int get(loader *ld, const char *name, int ndim, const int64_t *shape, float **dst) {
    return get_alt(ld, name, NULL, ndim, shape, dst);
}
static int get1(loader *ld, const char *name, int64_t a, float **dst) {
    int64_t s[1] = {a};
    return get(ld, name, 1, s, dst);
}
static int get2(loader *ld, const char *name, int64_t a, int64_t b, float **dst) {
    int64_t s[2] = {a, b};
    return get(ld, name, 2, s, dst);
}

/* A tensor the shapes are read from: present and of ndim dimensions. */
static const rdml_st_tensor *probe(loader *ld, const char *name, int ndim) {
    int64_t i = rdml_weights_index(ld->w, name);
    const rdml_st_tensor *t = i < 0 ? NULL : rdml_weights_at(ld->w, i);
    if (!t) {
        RDML_FAIL(ld->ctx, RDML_EFORMAT, "%s: tensor '%s' is missing: not %s weights (hint: "
                  "set embed.model to the network the weights belong to; `rdmlearn models` "
                  "lists them)", rdml_weights_path(ld->w), name, ld->what);
        return NULL;
    }
    if (t->ndim != ndim) {
        char got[96];
        shape_str(got, sizeof got, t->ndim, t->shape);
        RDML_FAIL(ld->ctx, RDML_EFORMAT, "%s: tensor '%s' has shape %s but %s expects a %d-d "
                  "tensor", rdml_weights_path(ld->w), name, got, ld->what, ndim);
        return NULL;
    }
    return t;
}

/* PyTorch's bicubic convolution weights (A = -0.75) for fraction t. */
static void cubic_coeffs(double t, double c[4]) {
    const double A = -0.75;
    double x = t + 1;
    c[0] = ((A * x - 5 * A) * x + 8 * A) * x - 4 * A;
    x = t;
    c[1] = ((A + 2) * x - (A + 3)) * x * x + 1;
    x = 1 - t;
    c[2] = ((A + 2) * x - (A + 3)) * x * x + 1;
    x = 2 - t;
    c[3] = ((A * x - 5 * A) * x + 8 * A) * x - 4 * A;
}

/* F.interpolate(mode="bicubic", align_corners=False, antialias=False, scale_factor=(s, s)) of
 * an M x M x D table (rows y, columns x, channels last) to g x g: source coordinate
 * (dst + 0.5) / s - 0.5 (the given scale, not M / g), taps clamped to the edge. */
static void interp_pos(const float *src, int64_t M, int64_t D, int64_t g, double s, float *dst) {
    for (int64_t oy = 0; oy < g; oy++) {
        double sy = (oy + 0.5) / s - 0.5;
        int64_t iy = (int64_t)floor(sy);
        double cy[4];
        cubic_coeffs(sy - (double)iy, cy);
        for (int64_t ox = 0; ox < g; ox++) {
            double sx = (ox + 0.5) / s - 0.5;
            int64_t ix = (int64_t)floor(sx);
            double cx[4];
            cubic_coeffs(sx - (double)ix, cx);
            float *o = dst + (oy * g + ox) * D;
            for (int64_t d = 0; d < D; d++) {
                double acc = 0;
                for (int a = 0; a < 4; a++) {
                    int64_t yy = iy - 1 + a;
                    yy = yy < 0 ? 0 : yy >= M ? M - 1 : yy;
                    double row = 0;
                    for (int b = 0; b < 4; b++) {
                        int64_t xx = ix - 1 + b;
                        xx = xx < 0 ? 0 : xx >= M ? M - 1 : xx;
                        row += cx[b] * src[(yy * M + xx) * D + d];
                    }
                    acc += cy[a] * row;
                }
                o[d] = (float)acc;
            }
        }
    }
}

/* 1 + the largest K of any tensor named <pre>K.<...>. */
static int64_t count_blocks(const rdml_weights *w, const char *pre) {
    const size_t np = strlen(pre);
    int64_t top = -1;
    for (int64_t i = 0; i < rdml_weights_count(w); i++) {
        const char *name = rdml_weights_at(w, i)->name;
        if (strncmp(name, pre, np) != 0 || name[np] < '0' || name[np] > '9') continue;
        char *end;
        long long l = strtoll(name + np, &end, 10);
        if (*end == '.' && l < 100000 && l > top) top = l;
    }
    return top + 1;
}

int rdml_vit_load(rdml_ctx *ctx, int dino, const rdml_weights *w, rdml_vit **out) {
    *out = NULL;
    RDML_TRY(vit_alloc(ctx, dino, out));
    rdml_vit *m = *out;
    loader ld = {ctx, w, dino ? "DINOv2" : "torchvision's ViT", NULL};
    ld.used = rdml_calloc(ctx, (size_t)rdml_weights_count(w) + 1, 1, "tensor use");
    int rc = ld.used ? RDML_OK : ctx->code;
    const rdml_st_tensor *t;
    const char *pre = dino ? "blocks." : "encoder.layers.encoder_layer_";
    int64_t npos = 0;
    /* the architecture, from shapes */
    if (!rc && !(t = probe(&ld, dino ? "cls_token" : "class_token", 3))) rc = ctx->code;
    if (!rc) m->D = t->shape[2];
    if (!rc && !(t = probe(&ld, dino ? "patch_embed.proj.weight" : "conv_proj.weight", 4))) rc = ctx->code;
    if (!rc) m->p = t->shape[3];
    if (!rc && !(t = probe(&ld, dino ? "pos_embed" : "encoder.pos_embedding", 3))) rc = ctx->code;
    if (!rc) npos = t->shape[1] - 1;
    if (!rc) {
        m->depth = count_blocks(w, pre);
        char n[128];
        snprintf(n, sizeof n, "%s0.%s", pre, dino ? "mlp.fc1.weight" : "mlp.0.weight");
        if (!dino && rdml_weights_index(w, n) < 0)
            snprintf(n, sizeof n, "%s0.mlp.linear_1.weight", pre); /* before torchvision 0.12 */
        if (m->depth < 1)
            rc = RDML_FAIL(ctx, RDML_EFORMAT, "%s: no tensor named %s<K>.*: %s weights have "
                           "blocks (hint: set embed.model to the network the weights belong "
                           "to)", rdml_weights_path(w), pre, ld.what);
        else if (!(t = probe(&ld, n, 2))) rc = ctx->code;
        else m->M = t->shape[0];
    }
    if (!rc && dino) {
        int64_t i = rdml_weights_index(w, "register_tokens");
        if (i >= 0 && !(t = probe(&ld, "register_tokens", 3))) rc = ctx->code;
        else if (i >= 0) m->R = t->shape[1];
    }
    if (!rc && !dino) {
        if (!(t = probe(&ld, "heads.head.weight", 2))) rc = ctx->code;
        else m->classes = t->shape[0];
    }
    if (!rc) {
        m->H = m->D == 1280 && !dino ? 16 : m->D / 64;
        m->g = m->image / m->p;
        m->T = 1 + m->R + m->g * m->g;
        int64_t M0 = (int64_t)llround(sqrt((double)npos));
        if (m->D < 64 || m->D % 64 || m->p < 1 || m->g < 1 || M0 * M0 != npos)
            rc = RDML_FAIL(ctx, RDML_EFORMAT, "%s: width %lld, patch %lld and %lld position "
                           "embeddings do not make a ViT (hint: the width must be a multiple of "
                           "64 and the patches a square grid)", rdml_weights_path(w),
                           (long long)m->D, (long long)m->p, (long long)npos);
        else if (!dino && npos != m->g * m->g)
            rc = RDML_FAIL(ctx, RDML_EFORMAT, "%s: encoder.pos_embedding has %lld patch positions "
                           "but a %lld x %lld input in %lld-pixel patches has %lld (hint: "
                           "torchvision's ViTs are run at their own image size, 224)",
                           rdml_weights_path(w), (long long)npos, (long long)m->image,
                           (long long)m->image, (long long)m->p, (long long)(m->g * m->g));
    }
    /* every tensor, in model order */
    const int64_t D = m->D, M = m->M, p = m->p;
    if (!rc) {
        int64_t ps[4] = {D, 3, p, p}, cs[3] = {1, 1, D};
        rc = get(&ld, dino ? "patch_embed.proj.weight" : "conv_proj.weight", 4, ps, &m->patch_w);
        if (!rc) rc = get1(&ld, dino ? "patch_embed.proj.bias" : "conv_proj.bias", D, &m->patch_b);
        if (!rc) rc = get(&ld, dino ? "cls_token" : "class_token", 3, cs, &m->cls);
        float *pos = NULL;
        int64_t s3[3] = {1, 1 + npos, D};
        if (!rc) rc = get(&ld, dino ? "pos_embed" : "encoder.pos_embedding", 3, s3, &pos);
        if (!rc && m->R) {
            int64_t rs[3] = {1, m->R, D};
            rc = get(&ld, "register_tokens", 3, rs, &m->reg);
        }
        if (!rc && dino) { /* training only: checked, then dropped */
            float *mask = NULL;
            rc = get2(&ld, "mask_token", 1, D, &mask);
            free(mask);
        }
        if (!rc && npos == m->g * m->g) {
            m->pos = pos;
            pos = NULL;
        } else if (!rc) {
            m->pos = rdml_malloc(ctx, (size_t)((1 + m->g * m->g) * D) * sizeof *m->pos, "positions");
            if (!m->pos) rc = ctx->code;
            else {
                const int64_t M0 = (int64_t)llround(sqrt((double)npos));
                memcpy(m->pos, pos, (size_t)D * sizeof *pos);
                interp_pos(pos + D, M0, D, m->g, ((double)m->g + 0.1) / (double)M0, m->pos + D);
            }
        }
        free(pos);
    }
    if (!rc) {
        m->blk = rdml_calloc(ctx, (size_t)m->depth, sizeof *m->blk, "ViT blocks");
        if (!m->blk) rc = ctx->code;
    }
    for (int64_t l = 0; l < m->depth && !rc; l++) {
        vit_block *b = &m->blk[l];
        char n[160], a[160];
#define NM(s) (snprintf(n, sizeof n, "%s%lld.%s", pre, (long long)l, s), n)
#define AL(s) (snprintf(a, sizeof a, "%s%lld.%s", pre, (long long)l, s), a)
        if (dino) {
            rc = get1(&ld, NM("norm1.weight"), D, &b->ln1_w);
            if (!rc) rc = get1(&ld, NM("norm1.bias"), D, &b->ln1_b);
            if (!rc) rc = get2(&ld, NM("attn.qkv.weight"), 3 * D, D, &b->qkv_w);
            if (!rc) rc = get1(&ld, NM("attn.qkv.bias"), 3 * D, &b->qkv_b);
            if (!rc) rc = get2(&ld, NM("attn.proj.weight"), D, D, &b->o_w);
            if (!rc) rc = get1(&ld, NM("attn.proj.bias"), D, &b->o_b);
            if (!rc) rc = get1(&ld, NM("ls1.gamma"), D, &b->ls1);
            if (!rc) rc = get1(&ld, NM("norm2.weight"), D, &b->ln2_w);
            if (!rc) rc = get1(&ld, NM("norm2.bias"), D, &b->ln2_b);
            if (!rc) rc = get2(&ld, NM("mlp.fc1.weight"), M, D, &b->fc1_w);
            if (!rc) rc = get1(&ld, NM("mlp.fc1.bias"), M, &b->fc1_b);
            if (!rc) rc = get2(&ld, NM("mlp.fc2.weight"), D, M, &b->fc2_w);
            if (!rc) rc = get1(&ld, NM("mlp.fc2.bias"), D, &b->fc2_b);
            if (!rc) rc = get1(&ld, NM("ls2.gamma"), D, &b->ls2);
        } else {
            int64_t s1[2] = {M, D}, s2[2] = {D, M}, v1[1] = {M}, v2[1] = {D};
            rc = get1(&ld, NM("ln_1.weight"), D, &b->ln1_w);
            if (!rc) rc = get1(&ld, NM("ln_1.bias"), D, &b->ln1_b);
            if (!rc) rc = get2(&ld, NM("self_attention.in_proj_weight"), 3 * D, D, &b->qkv_w);
            if (!rc) rc = get1(&ld, NM("self_attention.in_proj_bias"), 3 * D, &b->qkv_b);
            if (!rc) rc = get2(&ld, NM("self_attention.out_proj.weight"), D, D, &b->o_w);
            if (!rc) rc = get1(&ld, NM("self_attention.out_proj.bias"), D, &b->o_b);
            if (!rc) rc = get1(&ld, NM("ln_2.weight"), D, &b->ln2_w);
            if (!rc) rc = get1(&ld, NM("ln_2.bias"), D, &b->ln2_b);
            /* torchvision 0.14 names the MLP mlp.0 / mlp.3 and renames the older
             * mlp.linear_1 / mlp.linear_2 on load (MLPBlock._load_from_state_dict) */
            if (!rc) rc = get_alt(&ld, NM("mlp.0.weight"), AL("mlp.linear_1.weight"), 2, s1, &b->fc1_w);
            if (!rc) rc = get_alt(&ld, NM("mlp.0.bias"), AL("mlp.linear_1.bias"), 1, v1, &b->fc1_b);
            if (!rc) rc = get_alt(&ld, NM("mlp.3.weight"), AL("mlp.linear_2.weight"), 2, s2, &b->fc2_w);
            if (!rc) rc = get_alt(&ld, NM("mlp.3.bias"), AL("mlp.linear_2.bias"), 1, v2, &b->fc2_b);
        }
#undef NM
#undef AL
    }
    if (!rc) rc = get1(&ld, dino ? "norm.weight" : "encoder.ln.weight", D, &m->norm_w);
    if (!rc) rc = get1(&ld, dino ? "norm.bias" : "encoder.ln.bias", D, &m->norm_b);
    if (!rc && !dino) rc = get2(&ld, "heads.head.weight", m->classes, D, &m->head_w);
    if (!rc && !dino) rc = get1(&ld, "heads.head.bias", m->classes, &m->head_b);
    if (!rc) {
        int64_t bad = 0;
        char list[600] = "";
        size_t o = 0;
        for (int64_t i = 0; i < rdml_weights_count(w); i++) {
            if (ld.used[i]) continue;
            if (bad++ < 4 && o < sizeof list)
                o += (size_t)snprintf(list + o, sizeof list - o, "%s'%s'", bad > 1 ? ", " : "",
                                      rdml_weights_at(w, i)->name);
        }
        if (bad)
            rc = RDML_FAIL(ctx, RDML_EFORMAT, "%s: %lld tensor%s not part of %s: %s%s (hint: "
                           "weights of another architecture or a model with extra modules; set "
                           "embed.model to the network they belong to)", rdml_weights_path(w),
                           (long long)bad, bad == 1 ? " is" : "s are", ld.what, list,
                           bad > 4 ? ", ..." : "");
    }
    if (!rc) rc = make_layers(ctx, m);
    free(ld.used);
    if (rc) rdml_vit_free(out);
    return rc;
}

/* ---- forward ---- */

static void linear(float *y, const float *x, const float *W, int64_t rows, int64_t n, int64_t k,
                   float beta) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, (int)n, (int)k, 1.0f, x,
                (int)k, W, (int)k, beta, y, (int)n);
}

int rdml_vit_forward(rdml_ctx *ctx, const rdml_vit *m, int64_t B, const float *pixels, int64_t n,
                     const int64_t *layers, rdml_zoo_emit emit, void *arg) {
    if (B < 1 || n < 1) return RDML_OK;
    int64_t last = -1;
    for (int64_t k = 0; k < n; k++) {
        if (layers[k] < 0 || layers[k] >= m->nl)
            return RDML_FAIL(ctx, RDML_EINTERNAL, "layer index %lld out of range", (long long)layers[k]);
        if (layers[k] > last) last = layers[k];
    }
    const int64_t D = m->D, T = m->T, p = m->p, g = m->g, S = m->image, M = m->M, H = m->H,
                  hd = D / H, pp = 3 * p * p, BT = B * T, P0 = 1 + m->R;
    int64_t wide = 3 * D > M ? 3 * D : M;
    if (B * g * g * pp > BT * wide) wide = (B * g * g * pp + BT - 1) / BT;
    float *h = rdml_malloc(ctx, (size_t)(BT * D) * sizeof *h, "ViT activations");
    float *x = rdml_malloc(ctx, (size_t)(BT * D) * sizeof *x, "ViT activations");
    float *y = rdml_malloc(ctx, (size_t)(BT * D) * sizeof *y, "ViT activations");
    float *big = rdml_malloc(ctx, (size_t)(BT * wide) * sizeof *big, "ViT activations");
    float *att = rdml_malloc(ctx, (size_t)(rdml_par_threads() * T * T) * sizeof *att, "ViT attention");
    int rc = h && x && y && big && att ? RDML_OK : ctx->code;
    if (rc) goto done;
    /* patch embedding: im2col rows (b, patch row, patch col), columns (channel, y, x) */
    vit_patches(big, pixels, B, g, p, S);
    linear(x, big, m->patch_w, B * g * g, D, pp, 0.0f);
    for (int64_t b = 0; b < B; b++) {
        float *hb = h + b * T * D;
        for (int64_t i = 0; i < D; i++) hb[i] = m->cls[i] + m->pos[i];
        for (int64_t r = 0; r < m->R; r++) memcpy(hb + (1 + r) * D, m->reg + r * D, (size_t)D * sizeof *hb);
        for (int64_t t = 0; t < g * g; t++)
            for (int64_t i = 0; i < D; i++)
                hb[(P0 + t) * D + i] = x[(b * g * g + t) * D + i] + m->patch_b[i] + m->pos[(1 + t) * D + i];
    }
    const float scale = (float)(1.0 / sqrt((double)hd));
    for (int64_t l = 0; l < m->depth && l <= last; l++) {
        rc = rdml_stop_check(ctx, "in ViT block %lld of %lld", (long long)l, (long long)m->depth);
        if (rc) goto done;
        const vit_block *L = &m->blk[l];
        rdml_tf_layer_norm(x, h, L->ln1_w, L->ln1_b, BT, D, m->eps);
        float *qkv = big;
        linear(qkv, x, L->qkv_w, BT, 3 * D, D, 0.0f);
        rdml_tf_attention(qkv, L->qkv_b, x, att, B, T, D, H, scale);
        linear(y, x, L->o_w, BT, D, D, 0.0f);
        rdml_tf_residual(h, y, L->o_b, L->ls1, BT, D);
        rdml_tf_layer_norm(x, h, L->ln2_w, L->ln2_b, BT, D, m->eps);
        float *f = big;
        linear(f, x, L->fc1_w, BT, M, D, 0.0f);
        rdml_tf_bias_act(f, L->fc1_b, BT, M, RDML_TF_GELU);
        linear(y, f, L->fc2_w, BT, D, M, 0.0f);
        rdml_tf_residual(h, y, L->fc2_b, L->ls2, BT, D);
        for (int64_t k = 0; k < n && !rc; k++)
            if (layers[k] == l) rc = emit(arg, k, B, &m->L[l], h);
        if (rc) goto done;
    }
    if (last >= m->depth) {
        rdml_tf_layer_norm(h, h, m->norm_w, m->norm_b, BT, D, m->eps);
        for (int64_t k = 0; k < n && !rc; k++)
            if (layers[k] == m->depth) rc = emit(arg, k, B, &m->L[m->depth], h);
    }
    if (!rc && last > m->depth) { /* torchvision: heads(x[:, 0]) */
        for (int64_t b = 0; b < B; b++) memcpy(x + b * D, h + b * T * D, (size_t)D * sizeof *x);
        float *o = big;
        linear(o, x, m->head_w, B, m->classes, D, 0.0f);
        for (int64_t b = 0; b < B; b++)
            for (int64_t c = 0; c < m->classes; c++) o[b * m->classes + c] += m->head_b[c];
        for (int64_t k = 0; k < n && !rc; k++)
            if (layers[k] == m->depth + 1) rc = emit(arg, k, B, &m->L[m->depth + 1], o);
    }
done:
    free(h);
    free(x);
    free(y);
    free(big);
    free(att);
    return rc;
}

const char *rdml_vit_describe(const rdml_vit *m, char *buf, size_t len) {
    snprintf(buf, len, "patch %lld, width %lld, %lld blocks, %lld heads, MLP %lld, %lld register%s",
             (long long)m->p, (long long)m->D, (long long)m->depth, (long long)m->H,
             (long long)m->M, (long long)m->R, m->R == 1 ? "" : "s");
    return buf;
}
