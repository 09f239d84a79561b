/* The zoo's shared pieces (rdml/zoo.h): weight files by content (safetensors or .pth),
 * per-layer pooling and the seeded Gaussian random projection, and torchvision's ImageNet
 * preprocessing on Pillow-exact resampling (resample.c). */
#include <cblas.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "embed/embed_priv.h"
#include "rdml/pth.h"
#include "rdml/zoo.h"

/* ---- weight files ---- */

struct rdml_weights {
    rdml_safetensors *st;
    rdml_pth *pth;
};

int rdml_weights_open(rdml_ctx *ctx, const char *path, rdml_weights **out) {
    *out = NULL;
    unsigned char magic[4] = {0};
    FILE *f = fopen(path, "rb");
    if (!f)
        return RDML_FAIL(ctx, RDML_EIO, "cannot open weights %s (hint: embed.weights names a "
                         ".safetensors or .pth file; `rdmlearn models` says where to get them)",
                         path);
    size_t got = fread(magic, 1, 4, f);
    fclose(f);
    rdml_weights *w = calloc(1, sizeof *w);
    if (!w) return RDML_FAIL(ctx, RDML_ENOMEM, "out of memory opening %s", path);
    int rc = got == 4 && memcmp(magic, "PK\3\4", 4) == 0 ? rdml_pth_open(ctx, path, &w->pth)
                                                          : rdml_safetensors_open(ctx, path, &w->st);
    if (rc) {
        free(w);
        return rc;
    }
    *out = w;
    return RDML_OK;
}

void rdml_weights_close(rdml_weights **pw) {
    if (!pw || !*pw) return;
    rdml_safetensors_close(&(*pw)->st);
    rdml_pth_close(&(*pw)->pth);
    free(*pw);
    *pw = NULL;
}

int64_t rdml_weights_count(const rdml_weights *w) {
    return w->st ? rdml_safetensors_count(w->st) : rdml_pth_count(w->pth);
}
const rdml_st_tensor *rdml_weights_at(const rdml_weights *w, int64_t i) {
    return w->st ? rdml_safetensors_at(w->st, i) : rdml_pth_at(w->pth, i);
}
int64_t rdml_weights_index(const rdml_weights *w, const char *name) {
    return w->st ? rdml_safetensors_index(w->st, name) : rdml_pth_index(w->pth, name);
}
const char *rdml_weights_path(const rdml_weights *w) {
    return w->st ? rdml_safetensors_path(w->st) : rdml_pth_path(w->pth);
}
const char *rdml_weights_format(const rdml_weights *w) { return w->st ? "safetensors" : "pth"; }
int rdml_weights_read_f32(rdml_ctx *ctx, const rdml_weights *w, const rdml_st_tensor *t,
                          float *out) {
    return w->st ? rdml_safetensors_read_f32(ctx, w->st, t, out)
                 : rdml_pth_read_f32(ctx, w->pth, t, out);
}

/* ---- pooling ---- */

static const char *const pool_names[] = {"auto", "cls", "mean", "gap", "flatten", "project"};

const char *rdml_pool_name(rdml_pool p) {
    return (int)p >= 0 && p < RDML_POOL_N ? pool_names[p] : "?";
}

int rdml_pool_parse(rdml_ctx *ctx, const char *s, rdml_pool *out) {
    for (int i = 0; i < RDML_POOL_N; i++)
        if (strcmp(s, pool_names[i]) == 0) {
            *out = (rdml_pool)i;
            return RDML_OK;
        }
    return RDML_FAIL(ctx, RDML_ECONFIG, "[embed] pooling = %s is not one of auto, cls, mean, "
                     "gap, flatten, project", s);
}

rdml_pool rdml_pool_resolve(rdml_pool p, const rdml_zoo_layer *L) {
    if (p != RDML_POOL_AUTO) return p;
    return L->tokens ? RDML_POOL_CLS : L->vec ? RDML_POOL_FLATTEN : RDML_POOL_GAP;
}

int64_t rdml_pool_dims(rdml_pool p, const rdml_zoo_layer *L, int64_t dims) {
    switch (rdml_pool_resolve(p, L)) {
    case RDML_POOL_CLS: return L->tokens ? L->c : -1;
    case RDML_POOL_MEAN: return L->tokens && L->h > L->prefix ? L->c : -1;
    case RDML_POOL_GAP: return L->tokens ? -1 : L->c;
    case RDML_POOL_FLATTEN: return L->c * L->h * L->w;
    case RDML_POOL_PROJECT: return dims;
    default: return -1;
    }
}

#define PROJ_MAX ((int64_t)1 << 28) /* 1 GiB of float32 */

int rdml_projection_make(rdml_ctx *ctx, uint64_t seed, const char *key, int64_t in,
                         int64_t out, rdml_projection *p) {
    memset(p, 0, sizeof *p);
    if (in < 1 || out < 1)
        return RDML_FAIL(ctx, RDML_ECONFIG, "[embed] dims = %lld: a projection needs dims >= 1",
                         (long long)out);
    uint64_t h = 1469598103934665603ull; /* FNV-1a of the key */
    for (const char *c = key; *c; c++) h = (h ^ (uint8_t)*c) * 1099511628211ull;
    p->in = in;
    p->out = out;
    p->seed = seed;
    p->stream = rdml_rng_substream(RDML_STREAM_PROJECTION, h);
    if (in > PROJ_MAX / out) return RDML_OK; /* too large to keep: drawn per batch */
    p->r = rdml_malloc(ctx, (size_t)(in * out) * sizeof *p->r, "random projection");
    if (!p->r) return ctx->code;
    rdml_rng r = rdml_rng_make(seed, p->stream, 0);
    const double sc = 1.0 / sqrt((double)out);
    for (int64_t i = 0; i < in * out; i++) p->r[i] = (float)(rdml_rng_normal(&r) * sc);
    return RDML_OK;
}

void rdml_projection_free(rdml_projection *p) {
    if (!p) return;
    free(p->r);
    memset(p, 0, sizeof *p);
}

/* The projection of a matrix too large to keep: the same entries (entry (i, j) is normal
 * draw i * in + j of the stream), drawn per call in blocks of columns. */
static int project_streamed(rdml_ctx *ctx, const rdml_projection *p, int64_t B, const float *x,
                            float *out) {
    const int64_t bs = 1024, D = p->in, O = p->out;
    float *rb = rdml_malloc(ctx, (size_t)(O * bs) * sizeof *rb, "random projection block");
    if (!rb) return ctx->code;
    const double sc = 1.0 / sqrt((double)O);
    for (int64_t j0 = 0; j0 < D; j0 += bs) {
        const int64_t nb = D - j0 < bs ? D - j0 : bs;
        for (int64_t i = 0; i < O; i++) {
            rdml_rng r = rdml_rng_make(p->seed, p->stream, 2 * (uint64_t)(i * D + j0));
            for (int64_t j = 0; j < nb; j++) rb[i * nb + j] = (float)(rdml_rng_normal(&r) * sc);
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)B, (int)O, (int)nb, 1.0f,
                    x + j0, (int)D, rb, (int)nb, j0 ? 1.0f : 0.0f, out, (int)O);
    }
    free(rb);
    return RDML_OK;
}

int rdml_zoo_pool(rdml_ctx *ctx, rdml_pool p, const rdml_zoo_layer *L, int64_t B,
                  const float *x, const rdml_projection *proj, int64_t dims, float *out) {
    const int64_t C = L->c, HW = L->h * L->w, D = C * HW;
    if (L->tokens && (p == RDML_POOL_CLS || p == RDML_POOL_MEAN)) { /* x: B x T x C */
        const int64_t T = L->h, P0 = p == RDML_POOL_CLS ? 0 : L->prefix;
        const int64_t P1 = p == RDML_POOL_CLS ? 1 : T;
        for (int64_t b = 0; b < B; b++)
            for (int64_t c = 0; c < C; c++) {
                double acc = 0;
                for (int64_t t = P0; t < P1; t++) acc += x[(b * T + t) * C + c];
                out[b * C + c] = (float)(acc / (double)(P1 - P0));
            }
        return RDML_OK;
    }
    if (L->tokens && p == RDML_POOL_GAP) p = RDML_POOL_N; /* not for tokens: the error below */
    switch (p) {
    case RDML_POOL_GAP:
        for (int64_t b = 0; b < B; b++)
            for (int64_t c = 0; c < C; c++) {
                const float *s = x + (b * C + c) * HW;
                double acc = 0;
                for (int64_t i = 0; i < HW; i++) acc += s[i];
                out[b * C + c] = (float)(acc / (double)HW);
            }
        return RDML_OK;
    case RDML_POOL_FLATTEN:
        memcpy(out, x, (size_t)(B * D) * sizeof *out);
        return RDML_OK;
    case RDML_POOL_PROJECT:
        if (!proj || proj->in != D || proj->out != dims)
            return RDML_FAIL(ctx, RDML_EINTERNAL, "projection of layer %s does not fit", L->name);
        if (proj->r) {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)B, (int)dims, (int)D, 1.0f,
                        x, (int)D, proj->r, (int)D, 0.0f, out, (int)dims);
            return RDML_OK;
        }
        return project_streamed(ctx, proj, B, x, out);
    default:
        return RDML_FAIL(ctx, RDML_ECONFIG, "[embed] pooling = %s does not apply to layer %s "
                         "(%s; hint: %s)", rdml_pool_name(p), L->name,
                         L->tokens ? "a token sequence" : "a feature map",
                         L->tokens ? "cls, mean, flatten or project" : "gap, flatten or project");
    }
}

/* ---- torchvision ImageNet preprocessing ---- */

static const float in_mean[3] = {0.485f, 0.456f, 0.406f};
static const float in_std[3] = {0.229f, 0.224f, 0.225f};

const char *rdml_zoo_imagenet_preprocessing(void) {
    return "torchvision 0.14 ImageNet eval transform: RGB; Resize(256): Pillow BILINEAR "
           "(antialiased) resize of the short side to 256, long side int(256 * long / short); "
           "CenterCrop(224) (offset round((size - 224) / 2)); ToTensor (/255); Normalize(mean "
           "0.485, 0.456, 0.406; std 0.229, 0.224, 0.225)";
}

static int imagenet_preprocess(rdml_ctx *ctx, const rdml_image *im, rdml_resample filter, float *out);

int rdml_zoo_imagenet_preprocess(rdml_ctx *ctx, const rdml_image *im, float *out) {
    return imagenet_preprocess(ctx, im, RDML_RESAMPLE_BILINEAR, out);
}

int rdml_zoo_preprocess(rdml_ctx *ctx, rdml_zoo_arch a, const rdml_image *im, float *out) {
    return imagenet_preprocess(ctx, im, a == RDML_ZOO_DINOV2 ? RDML_RESAMPLE_BICUBIC
                                                             : RDML_RESAMPLE_BILINEAR, out);
}

const char *rdml_zoo_preprocessing(rdml_zoo_arch a) {
    if (a == RDML_ZOO_DINOV2)
        return "DINOv2 make_classification_eval_transform: RGB; Resize(256, BICUBIC): Pillow "
               "BICUBIC (antialiased) resize of the short side to 256; CenterCrop(224); "
               "ToTensor; Normalize(ImageNet mean 0.485, 0.456, 0.406; std 0.229, 0.224, 0.225)";
    return rdml_zoo_imagenet_preprocessing();
}

static int imagenet_preprocess(rdml_ctx *ctx, const rdml_image *im, rdml_resample filter, float *out) {
    if (im->channels != 3)
        return RDML_FAIL(ctx, RDML_EINTERNAL, "ImageNet preprocessing needs RGB, got %d channels",
                         im->channels);
    const int64_t w = im->w, h = im->h, S = RDML_ZOO_IMAGE, R = 256;
    int64_t ow, oh;
    if (w <= h) {
        ow = R;
        oh = (int64_t)((double)(R * h) / (double)w);
    } else {
        oh = R;
        ow = (int64_t)((double)(R * w) / (double)h);
    }
    uint8_t *rs = rdml_malloc(ctx, (size_t)(ow * oh * 3), "resized image");
    if (!rs) return ctx->code;
    int rc = rdml_embed_resize_u8(ctx, im->px, w, h, 3, rs, ow, oh, filter);
    if (!rc) {
        /* torchvision center_crop: int(round((H - S) / 2.0)), Python's round half to even */
        const int64_t top = (int64_t)nearbyint((double)(oh - S) / 2.0);
        const int64_t left = (int64_t)nearbyint((double)(ow - S) / 2.0);
        for (int c = 0; c < 3; c++)
            for (int64_t y = 0; y < S; y++)
                for (int64_t x = 0; x < S; x++) {
                    float v = (float)rs[((top + y) * ow + left + x) * 3 + c] / 255.0f;
                    out[(c * S + y) * S + x] = (v - in_mean[c]) / in_std[c];
                }
    }
    free(rs);
    return rc;
}

/* ---- the catalogue (`rdmlearn models`) ---- */

static int cat(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int cat(char **buf, size_t *len, size_t *cap, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return -1;
    if (*len + (size_t)n + 1 > *cap) {
        size_t c = *cap ? *cap : 4096;
        while (c < *len + (size_t)n + 1) c *= 2;
        char *q = realloc(*buf, c);
        if (!q) return -1;
        *buf = q;
        *cap = c;
    }
    va_start(ap, fmt);
    vsnprintf(*buf + *len, *cap - *len, fmt, ap);
    va_end(ap);
    *len += (size_t)n;
    return 0;
}

int rdml_zoo_catalogue(rdml_ctx *ctx, const char *only, char **out) {
    *out = NULL;
    char *b = NULL;
    size_t len = 0, cap = 0;
    int err = 0, shown = 0;
    for (int a = 0; a < RDML_ZOO_NARCH && !err; a++) {
        if (only && *only && strcmp(only, rdml_zoo_arch_name((rdml_zoo_arch)a)) != 0) continue;
        rdml_convnet *m = NULL;
        if (rdml_convnet_create(ctx, (rdml_zoo_arch)a, 1000, &m)) {
            free(b);
            return ctx->code;
        }
        shown++;
        err |= cat(&b, &len, &cap, "%s  (embed.backend = torchvision, embed.model = %s)\n",
                   rdml_zoo_arch_name((rdml_zoo_arch)a), rdml_zoo_arch_name((rdml_zoo_arch)a));
        if (a == RDML_ZOO_DINOV2)
            err |= cat(&b, &len, &cap, "  weights: facebookresearch/dinov2 backbones (the architecture "
                       "is read from the tensors), e.g.\n"
                       "           https://dl.fbaipublicfiles.com/dinov2/dinov2_vit{s,b,l}14/"
                       "dinov2_vit{s,b,l}14_pretrain.pth\n"
                       "           https://dl.fbaipublicfiles.com/dinov2/dinov2_vit{s,b,l}14/"
                       "dinov2_vit{s,b,l}14_reg4_pretrain.pth (4 registers)\n"
                       "           (download them yourself; embed.weights reads the .pth as is)\n");
        else
            err |= cat(&b, &len, &cap, "  weights: torchvision IMAGENET1K_V1 state dict, %s\n"
                       "           (download it yourself; embed.weights reads the .pth as is, or "
                       "convert it with tools/pth_to_safetensors.py)\n",
                       rdml_zoo_weights_url((rdml_zoo_arch)a));
        err |= cat(&b, &len, &cap, "  preprocessing: %s\n", rdml_zoo_preprocessing((rdml_zoo_arch)a));
        if (a == RDML_ZOO_VIT_B_16 || a == RDML_ZOO_DINOV2)
            err |= cat(&b, &len, &cap, "  layers of the %s (K < depth, read from the weights; "
                       "pooling cls, mean of the patch tokens, flatten or project):\n",
                       a == RDML_ZOO_DINOV2 ? "B/14, 12 blocks" : "B/16, 12 blocks");
        else err |= cat(&b, &len, &cap, "  layers (embed.layers; output shape; auto pooling):\n");
        for (int64_t i = 0; i < rdml_convnet_nlayers(m) && !err; i++) {
            const rdml_zoo_layer *L = rdml_convnet_layer(m, i);
            char shape[64];
            if (L->vec) snprintf(shape, sizeof shape, "%lld", (long long)L->c);
            else if (L->tokens) snprintf(shape, sizeof shape, "%lld x %lld", (long long)L->h,
                                         (long long)L->c);
            else snprintf(shape, sizeof shape, "%lld x %lld x %lld", (long long)L->c,
                          (long long)L->h, (long long)L->w);
            err |= cat(&b, &len, &cap, "    %-*s %-16s %s\n", L->tokens || L->depth > 30 ? 32 : 14, L->name, shape,
                       L->vec ? "the vector" : L->tokens ? "cls" : "gap");
        }
        err |= cat(&b, &len, &cap, "\n");
        rdml_convnet_free(&m);
    }
    if (!err && (!only || !*only || strcmp(only, "clip-vit") == 0)) {
        shown++;
        err |= cat(&b, &len, &cap,
                   "clip-vit  (embed.backend = clip-vit)\n"
                   "  weights: a CLIP model.safetensors in Hugging Face or OpenAI naming, e.g.\n"
                   "           https://huggingface.co/openai/clip-vit-base-patch32 (model.safetensors "
                   "and config.json),\n"
                   "           or an OpenCLIP checkpoint (visual.*; open_clip_pytorch_model.bin and "
                   "open_clip_config.json), e.g.\n"
                   "           https://huggingface.co/laion/CLIP-ViT-B-16-laion2B-s34B-b88K\n"
                   "  preprocessing: CLIPImageProcessor: Pillow BICUBIC resize of the short side, "
                   "centre crop, CLIP mean/std\n"
                   "  layers: embed.layer = -1 (get_image_features) or k = hidden state after "
                   "encoder layer k, pooled cls or mean;\n"
                   "          embed.layers: vision_model.pre_layrnorm, vision_model.encoder.layers.K, "
                   "visual_projection\n"
                   "          (OpenAI/OpenCLIP: visual.ln_pre, visual.transformer.resblocks.K, "
                   "visual.proj)\n\n");
    }
    if (!err && !shown) {
        free(b);
        return RDML_FAIL(ctx, RDML_EUSAGE, "no model %s (hint: one of alexnet, vgg16, resnet18, "
                         "resnet50, vit_b_16, dinov2, clip-vit; `rdmlearn models` lists them all)", only);
    }
    if (err) {
        free(b);
        return RDML_FAIL(ctx, RDML_ENOMEM, "out of memory listing the models");
    }
    *out = b;
    return RDML_OK;
}
