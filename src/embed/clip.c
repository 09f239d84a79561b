/* CLIP ViT image tower (Hugging Face CLIPVisionModelWithProjection.get_image_features and the
 * OpenAI / OpenCLIP VisionTransformer) in C on OpenBLAS. Loading: a safetensors or .pth file
 * (rdml_weights_open) in either naming
 * (vision_model.* + visual_projection, or visual.*), the architecture taken from tensor
 * shapes (width, patch, tokens, MLP, projection; layers = 1 + the largest layer index of any
 * tensor, and every tensor of every layer must be there) and heads / hidden_act /
 * layer_norm_eps from a config.json beside the weights (top level or "vision_config"), whose
 * stated sizes (num_hidden_layers, hidden_size, intermediate_size, patch_size, image_size,
 * projection_dim) must match the tensors; without one OpenCLIP's open_clip_config.json
 * (model_cfg.vision_cfg sizes, head_width, embed_dim, quick_gelu: gelu unless true), without
 * either the CLIP conventions (heads = width / 64, quick_gelu, 1e-5). Every tensor of the file is accounted for: read into the model, or a
 * known unused part of a full CLIP checkpoint (text tower, also OpenCLIP's text.*,
 * logit_scale, logit_bias, position_ids and OpenAI's scalars); anything else is an error listing it. Every tensor read is checked
 * against the shape the architecture implies and converted to float32
 * (q/k/v fused into one [3D, D] matrix; OpenAI's in_proj is already fused, its proj is
 * transposed). Preprocessing is CLIPImageProcessor's (Pillow-exact antialiased bicubic resize
 * of the short side, centre crop with floor, CLIP mean/std). The forward pass runs a batch of
 * B images as (B*T) x D activations: im2col + one SGEMM for the patch convolution, one SGEMM
 * for q|k|v, per (image, head) two small SGEMMs for attention with an fp32 softmax (the pairs
 * spread over the threads, one BLAS thread each: tfops.c), one SGEMM each for out_proj, fc1
 * and fc2 (bias-free GEMMs accumulate into the residual stream with beta = 1); LayerNorm,
 * softmax and quick_gelu run 8 floats at a time (vector extensions, AVX2 clones, a Cephes exp
 * within 1 ulp of expf) on all threads (rdml_par_for);
 * rdml_clip_forward_profile times the phases for bench/embed. Left out: attention masks,
 * interpolated position embeddings for other input sizes, the text tower, half-precision
 * compute, and open_clip's attentional pooler. */
#include <cblas.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "embed/embed_priv.h"
#include "embed/vecmath.h"
#include "rdml/safetensors.h"
#include "rdml/zoo.h"

typedef struct clip_layer {
    float *ln1_w, *ln1_b; /* D */
    float *qkv_w, *qkv_b; /* (3D, D), 3D: rows q | k | v */
    float *o_w, *o_b;     /* (D, D), D */
    float *ln2_w, *ln2_b; /* D */
    float *fc1_w, *fc1_b; /* (MLP, D), MLP */
    float *fc2_w, *fc2_b; /* (D, MLP), D */
} clip_layer;

struct rdml_clip {
    rdml_clip_arch a;
    float *mem;             /* every parameter, carved below */
    float *patch_w;         /* (D, 3 p p), columns (channel, y, x) */
    float *cls;             /* D */
    float *pos;             /* (T, D) */
    float *pre_w, *pre_b;   /* D */
    float *post_w, *post_b; /* D */
    float *proj;            /* (P, D) */
    clip_layer *L;
};

static const double clip_mean[3] = {0.48145466, 0.4578275, 0.40821073};
static const double clip_std[3] = {0.26862954, 0.26130258, 0.27577711};

/* ---- loading ---- */

typedef struct loader {
    rdml_ctx *ctx;
    rdml_weights *st; /* safetensors or a .pth state dict (rdml/zoo.h) */
    int oa;        /* OpenAI naming */
    uint8_t *used; /* per tensor of the file: read into the model */
} loader;

/* The tensors of one encoder layer, in each naming (after the layer prefix). */
static const char *const hf_layer_names[] = {
    "layer_norm1.weight", "layer_norm1.bias", "self_attn.q_proj.weight", "self_attn.q_proj.bias",
    "self_attn.k_proj.weight", "self_attn.k_proj.bias", "self_attn.v_proj.weight",
    "self_attn.v_proj.bias", "self_attn.out_proj.weight", "self_attn.out_proj.bias",
    "layer_norm2.weight", "layer_norm2.bias", "mlp.fc1.weight", "mlp.fc1.bias", "mlp.fc2.weight",
    "mlp.fc2.bias"};
static const char *const oa_layer_names[] = {
    "ln_1.weight", "ln_1.bias", "attn.in_proj_weight", "attn.in_proj_bias",
    "attn.out_proj.weight", "attn.out_proj.bias", "ln_2.weight", "ln_2.bias",
    "mlp.c_fc.weight", "mlp.c_fc.bias", "mlp.c_proj.weight", "mlp.c_proj.bias"};
#define HF_LAYER_PREFIX "vision_model.encoder.layers."
#define OA_LAYER_PREFIX "visual.transformer.resblocks."

/* Tensors of a full CLIP checkpoint that the image tower does not use: the text tower, the
 * logit scale, position-id buffers and OpenAI's scalar hyper-parameters. */
static int ignorable(const char *name, int oa) {
    static const char *const hf[] = {"text_projection.weight", "logit_scale",
                                     "vision_model.embeddings.position_ids"};
    static const char *const oan[] = {"token_embedding.weight", "positional_embedding",
                                      "ln_final.weight", "ln_final.bias", "text_projection",
                                      "logit_scale", "input_resolution", "context_length",
                                      "vocab_size", "logit_bias", "attn_mask"};
    if (!oa && strncmp(name, "text_model.", 11) == 0) return 1;
    if (oa && strncmp(name, "transformer.", 12) == 0) return 1;
    if (oa && strncmp(name, "text.", 5) == 0) return 1; /* OpenCLIP's CustomTextCLIP */
    const char *const *list = oa ? oan : hf;
    size_t n = oa ? sizeof oan / sizeof *oan : sizeof hf / sizeof *hf;
    for (size_t i = 0; i < n; i++)
        if (strcmp(name, list[i]) == 0) return 1;
    return 0;
}

static const char *naming(const loader *ld) {
    return ld->oa ? "OpenAI (visual.*)" : "Hugging Face (vision_model.*)";
}

/* The tensor `name` (NULL when absent), marked as used. */
static const rdml_st_tensor *lookup(loader *ld, const char *name) {
    int64_t i = rdml_weights_index(ld->st, name);
    if (i < 0) return NULL;
    ld->used[i] = 1;
    return rdml_weights_at(ld->st, i);
}

static void shape_str(char *buf, size_t len, int ndim, const int64_t *shape) {
    size_t o = (size_t)snprintf(buf, len, "[");
    for (int i = 0; i < ndim && o < len; i++)
        o += (size_t)snprintf(buf + o, len - o, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (o < len) snprintf(buf + o, len - o, "]");
}

/* Read tensor `name` of the given shape into dst. */
static int get(loader *ld, const char *name, int ndim, const int64_t *shape, float *dst) {
    const rdml_st_tensor *t = lookup(ld, name);
    char want[128], got[128];
    shape_str(want, sizeof want, ndim, shape);
    if (!t)
        return RDML_FAIL(ld->ctx, RDML_EFORMAT,
                         "%s: tensor '%s' (shape %s) is missing (hint: a CLIP checkpoint in %s "
                         "naming is expected; see docs/embed.md)",
                         rdml_weights_path(ld->st), name, want, naming(ld));
    int same = t->ndim == ndim;
    for (int i = 0; i < ndim && same; i++) same = t->shape[i] == shape[i];
    if (!same) {
        shape_str(got, sizeof got, t->ndim, t->shape);
        return RDML_FAIL(ld->ctx, RDML_EFORMAT,
                         "%s: tensor '%s' has shape %s but %s is expected for this architecture "
                         "(from the shapes of the embedding tensors)",
                         rdml_weights_path(ld->st), name, got, want);
    }
    return rdml_weights_read_f32(ld->ctx, ld->st, t, dst);
}
static int get1(loader *ld, const char *name, int64_t n0, float *dst) {
    int64_t s[1] = {n0};
    return get(ld, name, 1, s, dst);
}
static int get2(loader *ld, const char *name, int64_t n0, int64_t n1, float *dst) {
    int64_t s[2] = {n0, n1};
    return get(ld, name, 2, s, dst);
}

static const rdml_st_tensor *need(loader *ld, const char *name, int ndim) {
    const rdml_st_tensor *t = lookup(ld, name);
    if (!t) {
        RDML_FAIL(ld->ctx, RDML_EFORMAT, "%s: tensor '%s' is missing (hint: a CLIP checkpoint "
                  "in %s naming is expected; see docs/embed.md)", rdml_weights_path(ld->st),
                  name, naming(ld));
        return NULL;
    }
    if (t->ndim != ndim) {
        char got[128];
        shape_str(got, sizeof got, t->ndim, t->shape);
        RDML_FAIL(ld->ctx, RDML_EFORMAT, "%s: tensor '%s' has shape %s but a %d-d tensor is "
                  "expected", rdml_weights_path(ld->st), name, got, ndim);
        return NULL;
    }
    return t;
}

/* The encoder layers: one more than the largest index of any tensor named
 * <layer prefix><index>.<...>; then every tensor of every layer up to it must be present
 * (a layer's tensor missing is an error naming it, before anything is allocated). */
static int count_layers(loader *ld, int64_t *layers) {
    const char *pre = ld->oa ? OA_LAYER_PREFIX : HF_LAYER_PREFIX;
    const size_t np = strlen(pre);
    int64_t top = -1;
    for (int64_t i = 0; i < rdml_weights_count(ld->st); i++) {
        const char *name = rdml_weights_at(ld->st, i)->name;
        if (strncmp(name, pre, np) != 0 || name[np] < '0' || name[np] > '9') continue;
        char *end;
        long long l = strtoll(name + np, &end, 10);
        if (*end != '.' || l > 100000) continue; /* not a layer tensor: reported as unexpected */
        if (l > top) top = l;
    }
    *layers = top + 1;
    const char *const *sfx = ld->oa ? oa_layer_names : hf_layer_names;
    const int ns = ld->oa ? (int)(sizeof oa_layer_names / sizeof *oa_layer_names)
                          : (int)(sizeof hf_layer_names / sizeof *hf_layer_names);
    int64_t missing = 0;
    char first[256] = "";
    for (int64_t l = 0; l < *layers; l++)
        for (int k = 0; k < ns; k++) {
            char n[256];
            snprintf(n, sizeof n, "%s%lld.%s", pre, (long long)l, sfx[k]);
            if (rdml_weights_index(ld->st, n) >= 0) continue;
            if (!missing++) rdml_strlcpy(first, n, sizeof first);
        }
    if (missing)
        return RDML_FAIL(ld->ctx, RDML_EFORMAT,
                         "%s: tensor '%s' is missing (%lld tensor%s of the %lld encoder layers "
                         "missing in all; the file has tensors of layers 0 to %lld, each needs "
                         "%d) (hint: the file is incomplete or not a CLIP ViT checkpoint in %s "
                         "naming; see docs/embed.md)", rdml_weights_path(ld->st), first,
                         (long long)missing, missing == 1 ? "" : "s", (long long)*layers,
                         (long long)top, ns, naming(ld));
    return RDML_OK;
}

/* Every tensor of the file is either read into the model or a known part of a full CLIP
 * checkpoint the image tower does not use (ignorable); anything else is an error listing
 * the first few: weights rdmlearn would silently leave out. */
static int check_unused(loader *ld) {
    int64_t bad = 0;
    char list[600] = "";
    size_t o = 0;
    for (int64_t i = 0; i < rdml_weights_count(ld->st); i++) {
        const char *name = rdml_weights_at(ld->st, i)->name;
        if (ld->used[i] || ignorable(name, ld->oa)) continue;
        if (bad++ < 4 && o < sizeof list)
            o += (size_t)snprintf(list + o, sizeof list - o, "%s'%s'", bad > 1 ? ", " : "", name);
    }
    if (!bad) return RDML_OK;
    return RDML_FAIL(ld->ctx, RDML_EFORMAT,
                     "%s: %lld tensor%s not part of the CLIP ViT image tower that rdmlearn runs "
                     "(%s naming): %s%s (hint: another architecture or a mixed file; only the "
                     "image tower, its projection and a full checkpoint's text tower and "
                     "logit_scale are accepted; see docs/embed.md)",
                     rdml_weights_path(ld->st), (long long)bad, bad == 1 ? " is" : "s are",
                     naming(ld), list, bad > 4 ? ", ..." : "");
}

/* config.json beside the weights, when present: heads, hidden_act, layer_norm_eps, and the
 * sizes that must agree with the tensors (-1 when absent). */
typedef struct clip_config {
    char path[4096];
    int present, open_clip; /* open_clip: the file is OpenCLIP's open_clip_config.json */
    int64_t heads, layers, width, mlp, patch, image, proj;
} clip_config;

static int config_int(rdml_ctx *ctx, const char *path, json_t *obj, const char *key, int64_t *v) {
    json_t *x = json_object_get(obj, key);
    if (!x || json_is_null(x)) return RDML_OK;
    if (!json_is_integer(x) || json_integer_value(x) < 1)
        return RDML_FAIL(ctx, RDML_EFORMAT, "%s: \"%s\" is not a positive integer", path, key);
    *v = json_integer_value(x);
    return RDML_OK;
}

/* OpenCLIP's open_clip_config.json beside the weights (as its Hugging Face hub repositories
 * ship it), read when there is no config.json: model_cfg.vision_cfg's layers, width,
 * patch_size, image_size, head_width (default 64) and mlp_ratio (default 4), model_cfg.embed_dim,
 * and model_cfg.quick_gelu (default false: OpenCLIP's nn.GELU; only OpenAI's weights use
 * quick_gelu). */
static int read_open_clip_config(rdml_ctx *ctx, const char *weights, clip_config *c,
                                 rdml_clip_act *act) {
    const char *slash = strrchr(weights, '/');
    if (slash) snprintf(c->path, sizeof c->path, "%.*s/open_clip_config.json", (int)(slash - weights), weights);
    else snprintf(c->path, sizeof c->path, "open_clip_config.json");
    FILE *f = fopen(c->path, "rb");
    if (!f) return RDML_OK;
    fclose(f);
    c->present = c->open_clip = 1;
    json_error_t err;
    json_t *root = json_load_file(c->path, 0, &err);
    json_t *mc = root ? json_object_get(root, "model_cfg") : NULL;
    json_t *vc = mc ? json_object_get(mc, "vision_cfg") : NULL;
    if (!json_is_object(mc) || !json_is_object(vc)) {
        json_decref(root);
        return RDML_FAIL(ctx, RDML_EFORMAT, "%s: no model_cfg.vision_cfg object (%s) (hint: "
                         "OpenCLIP's open_clip_config.json is expected)", c->path,
                         root ? "missing" : err.text);
    }
    int64_t hw = 64;
    int rc = config_int(ctx, c->path, vc, "layers", &c->layers);
    if (!rc) rc = config_int(ctx, c->path, vc, "width", &c->width);
    if (!rc) rc = config_int(ctx, c->path, vc, "patch_size", &c->patch);
    if (!rc) rc = config_int(ctx, c->path, vc, "image_size", &c->image);
    if (!rc) rc = config_int(ctx, c->path, vc, "head_width", &hw);
    if (!rc) rc = config_int(ctx, c->path, mc, "embed_dim", &c->proj);
    if (!rc && c->width > 0) {
        c->heads = c->width / hw;
        json_t *r = json_object_get(vc, "mlp_ratio");
        double ratio = json_is_number(r) ? json_number_value(r) : 4.0;
        c->mlp = (int64_t)(ratio * (double)c->width);
    }
    json_t *q = json_object_get(mc, "quick_gelu");
    if (!rc) *act = json_is_true(q) ? RDML_ACT_QUICK_GELU : RDML_ACT_GELU;
    json_decref(root);
    return rc;
}

static int read_config(rdml_ctx *ctx, const char *weights, clip_config *c, rdml_clip_act *act,
                       double *eps) {
    const char *slash = strrchr(weights, '/');
    if (slash) snprintf(c->path, sizeof c->path, "%.*s/config.json", (int)(slash - weights), weights);
    else snprintf(c->path, sizeof c->path, "config.json");
    c->present = c->open_clip = 0;
    c->heads = c->layers = c->width = c->mlp = c->patch = c->image = c->proj = -1;
    FILE *f = fopen(c->path, "rb");
    if (!f) return read_open_clip_config(ctx, weights, c, act);
    fclose(f);
    c->present = 1;
    const char *path = c->path;
    json_error_t err;
    json_t *root = json_load_file(path, 0, &err);
    if (!root || !json_is_object(root)) {
        json_decref(root);
        return RDML_FAIL(ctx, RDML_EFORMAT, "%s: not a JSON object (%s, line %d)", path,
                         root ? "top level" : err.text, err.line);
    }
    json_t *vc = json_object_get(root, "vision_config");
    if (!json_is_object(vc)) vc = root;
    int rc = config_int(ctx, path, vc, "num_attention_heads", &c->heads);
    if (!rc) rc = config_int(ctx, path, vc, "num_hidden_layers", &c->layers);
    if (!rc) rc = config_int(ctx, path, vc, "hidden_size", &c->width);
    if (!rc) rc = config_int(ctx, path, vc, "intermediate_size", &c->mlp);
    if (!rc) rc = config_int(ctx, path, vc, "patch_size", &c->patch);
    if (!rc) rc = config_int(ctx, path, vc, "image_size", &c->image);
    /* CLIPModel: projection_dim at the top level; a vision config alone holds its own */
    if (!rc) rc = config_int(ctx, path, root, "projection_dim", &c->proj);
    json_t *v = json_object_get(vc, "layer_norm_eps");
    if (!rc && json_is_number(v)) *eps = json_number_value(v);
    v = json_object_get(vc, "hidden_act");
    if (!rc && json_is_string(v)) {
        const char *s = json_string_value(v);
        if (strcmp(s, "quick_gelu") == 0) *act = RDML_ACT_QUICK_GELU;
        else if (strcmp(s, "gelu") == 0) *act = RDML_ACT_GELU;
        else
            rc = RDML_FAIL(ctx, RDML_EFORMAT, "%s: hidden_act \"%s\" is not supported (hint: "
                           "quick_gelu or gelu)", path, s);
    }
    json_decref(root);
    return rc;
}

/* The sizes config.json states must be the ones the tensors have. */
static int check_config(rdml_ctx *ctx, const clip_config *c, const rdml_clip_arch *a,
                        const char *weights) {
    if (!c->present) return RDML_OK;
    const char *hf_key[6] = {"num_hidden_layers", "hidden_size", "intermediate_size", "patch_size",
                             "image_size", "projection_dim"};
    const char *oc_key[6] = {"vision_cfg.layers", "vision_cfg.width", "vision_cfg.width * mlp_ratio",
                             "vision_cfg.patch_size", "vision_cfg.image_size", "embed_dim"};
    const char *const *key = c->open_clip ? oc_key : hf_key;
    const int64_t cfg[6] = {c->layers, c->width, c->mlp, c->patch, c->image, c->proj};
    const int64_t got[6] = {a->layers, a->width, a->mlp, a->patch, a->image, a->proj};
    const char *what[6] = {"encoder layers", "as hidden width", "as MLP width", "as patch size",
                           "as input image size", "as projection width"};
    for (int k = 0; k < 6; k++)
        if (cfg[k] >= 0 && cfg[k] != got[k])
            return RDML_FAIL(ctx, RDML_EFORMAT,
                             "%s: %s = %lld but the weights %s have %lld %s (hint: the config.json "
                             "beside the weights belongs to another model, or the weights file is "
                             "incomplete; see docs/embed.md)", c->path, key[k], (long long)cfg[k],
                             weights, (long long)got[k], what[k]);
    return RDML_OK;
}

int rdml_clip_load(rdml_ctx *ctx, const char *path, int64_t heads, rdml_clip_act act,
                   rdml_clip **out) {
    *out = NULL;
    loader ld = {ctx, NULL, 0, NULL};
    RDML_TRY(rdml_weights_open(ctx, path, &ld.st));
    rdml_clip *m = calloc(1, sizeof *m);
    ld.used = calloc((size_t)rdml_weights_count(ld.st) + 1, 1);
    int rc = m && ld.used ? RDML_OK : RDML_FAIL(ctx, RDML_ENOMEM, "out of memory loading %s", path);
    char n[256];
    rdml_clip_arch *a = m ? &m->a : NULL;
    clip_config cc;
    memset(&cc, 0, sizeof cc);
    if (!rc) {
        if (rdml_weights_index(ld.st, "vision_model.embeddings.class_embedding") >= 0) ld.oa = 0;
        else if (rdml_weights_index(ld.st, "visual.class_embedding") >= 0) ld.oa = 1;
        else
            rc = RDML_FAIL(ctx, RDML_EFORMAT, "%s: neither 'vision_model.embeddings.class_embedding' "
                           "(Hugging Face naming) nor 'visual.class_embedding' (OpenAI naming) is "
                           "present: not a CLIP vision checkpoint (hint: see docs/embed.md)", path);
    }
    const rdml_st_tensor *t;
    if (!rc) {
        a->openai_naming = ld.oa;
        t = need(&ld, ld.oa ? "visual.class_embedding" : "vision_model.embeddings.class_embedding", 1);
        if (!t) rc = ctx->code; else a->width = t->shape[0];
    }
    if (!rc) {
        t = need(&ld, ld.oa ? "visual.conv1.weight" : "vision_model.embeddings.patch_embedding.weight", 4);
        if (!t) rc = ctx->code; else a->patch = t->shape[3];
    }
    if (!rc) {
        t = need(&ld, ld.oa ? "visual.positional_embedding" : "vision_model.embeddings.position_embedding.weight", 2);
        if (!t) rc = ctx->code; else a->tokens = t->shape[0];
    }
    if (!rc) {
        a->grid = (int64_t)llround(sqrt((double)(a->tokens - 1)));
        if (a->tokens < 2 || a->grid * a->grid != a->tokens - 1 || a->patch < 1 || a->width < 1)
            rc = RDML_FAIL(ctx, RDML_EFORMAT, "%s: %lld position embeddings is not 1 + a square "
                           "number of patches", path, (long long)a->tokens);
        a->image = a->grid * a->patch;
    }
    if (!rc) rc = count_layers(&ld, &a->layers);
    if (!rc) {
        snprintf(n, sizeof n, ld.oa ? OA_LAYER_PREFIX "0.mlp.c_fc.weight" : HF_LAYER_PREFIX "0.mlp.fc1.weight");
        t = need(&ld, n, 2);
        if (!t) rc = ctx->code; else a->mlp = t->shape[0];
    }
    if (!rc) {
        t = need(&ld, ld.oa ? "visual.proj" : "visual_projection.weight", 2);
        if (!t) rc = ctx->code; else a->proj = ld.oa ? t->shape[1] : t->shape[0];
    }
    if (!rc) {
        a->heads = 0;
        a->act = RDML_ACT_QUICK_GELU;
        a->eps = 1e-5;
        rc = read_config(ctx, path, &cc, &a->act, &a->eps);
        if (!rc) rc = check_config(ctx, &cc, a, path);
        if (!rc && cc.heads > 0) a->heads = cc.heads;
        if (heads > 0) a->heads = heads;
        if (act != RDML_ACT_AUTO) a->act = act;
        if (!rc && a->heads <= 0) a->heads = a->width / 64;
        if (!rc && (a->heads <= 0 || a->width % a->heads))
            rc = RDML_FAIL(ctx, RDML_ECONFIG, "%s: width %lld cannot be split into %lld attention "
                           "heads (hint: set embed.heads, or put the model's config.json beside "
                           "the weights)", path, (long long)a->width, (long long)a->heads);
    }
    int64_t D = a ? a->width : 0, M = a ? a->mlp : 0, P = a ? a->proj : 0, pp = a ? 3 * a->patch * a->patch : 0;
    if (!rc) {
        int64_t per_layer = 2 * D + 3 * D * D + 3 * D + D * D + D + 2 * D + M * D + M + D * M + D;
        int64_t total = D * pp + D + a->tokens * D + 4 * D + P * D + a->layers * per_layer;
        m->mem = rdml_malloc(ctx, (size_t)total * sizeof(float), "CLIP weights");
        m->L = rdml_calloc(ctx, (size_t)(a->layers ? a->layers : 1), sizeof *m->L, "CLIP layers");
        if (!m->mem || !m->L) rc = ctx->code;
    }
    if (!rc) {
        float *p = m->mem;
#define CARVE(ptr, cnt) (ptr = p, p += (cnt))
        CARVE(m->patch_w, D * pp);
        CARVE(m->cls, D);
        CARVE(m->pos, a->tokens * D);
        CARVE(m->pre_w, D);
        CARVE(m->pre_b, D);
        CARVE(m->post_w, D);
        CARVE(m->post_b, D);
        CARVE(m->proj, P * D);
        for (int64_t l = 0; l < a->layers; l++) {
            clip_layer *L = &m->L[l];
            CARVE(L->ln1_w, D); CARVE(L->ln1_b, D);
            CARVE(L->qkv_w, 3 * D * D); CARVE(L->qkv_b, 3 * D);
            CARVE(L->o_w, D * D); CARVE(L->o_b, D);
            CARVE(L->ln2_w, D); CARVE(L->ln2_b, D);
            CARVE(L->fc1_w, M * D); CARVE(L->fc1_b, M);
            CARVE(L->fc2_w, D * M); CARVE(L->fc2_b, D);
        }
#undef CARVE
        int64_t ps[4] = {D, 3, a->patch, a->patch};
        if (ld.oa) {
            rc = get(&ld, "visual.conv1.weight", 4, ps, m->patch_w);
            if (!rc) rc = get1(&ld, "visual.class_embedding", D, m->cls);
            if (!rc) rc = get2(&ld, "visual.positional_embedding", a->tokens, D, m->pos);
            if (!rc) rc = get1(&ld, "visual.ln_pre.weight", D, m->pre_w);
            if (!rc) rc = get1(&ld, "visual.ln_pre.bias", D, m->pre_b);
            if (!rc) rc = get1(&ld, "visual.ln_post.weight", D, m->post_w);
            if (!rc) rc = get1(&ld, "visual.ln_post.bias", D, m->post_b);
            float *tmp = rc ? NULL : rdml_malloc(ctx, (size_t)(P * D) * sizeof *tmp, "projection");
            if (!rc && !tmp) rc = ctx->code;
            if (!rc) rc = get2(&ld, "visual.proj", D, P, tmp);
            for (int64_t i = 0; i < D && !rc; i++)
                for (int64_t j = 0; j < P; j++) m->proj[j * D + i] = tmp[i * P + j];
            free(tmp);
        } else {
            rc = get(&ld, "vision_model.embeddings.patch_embedding.weight", 4, ps, m->patch_w);
            if (!rc) rc = get1(&ld, "vision_model.embeddings.class_embedding", D, m->cls);
            if (!rc) rc = get2(&ld, "vision_model.embeddings.position_embedding.weight", a->tokens, D, m->pos);
            if (!rc) rc = get1(&ld, "vision_model.pre_layrnorm.weight", D, m->pre_w);
            if (!rc) rc = get1(&ld, "vision_model.pre_layrnorm.bias", D, m->pre_b);
            if (!rc) rc = get1(&ld, "vision_model.post_layernorm.weight", D, m->post_w);
            if (!rc) rc = get1(&ld, "vision_model.post_layernorm.bias", D, m->post_b);
            if (!rc) rc = get2(&ld, "visual_projection.weight", P, D, m->proj);
        }
        for (int64_t l = 0; l < a->layers && !rc; l++) {
            clip_layer *L = &m->L[l];
            char pre[128];
            if (ld.oa) {
                snprintf(pre, sizeof pre, "visual.transformer.resblocks.%lld.", (long long)l);
#define NM(suffix) (snprintf(n, sizeof n, "%s%s", pre, suffix), n)
                rc = get1(&ld, NM("ln_1.weight"), D, L->ln1_w);
                if (!rc) rc = get1(&ld, NM("ln_1.bias"), D, L->ln1_b);
                if (!rc) rc = get2(&ld, NM("attn.in_proj_weight"), 3 * D, D, L->qkv_w);
                if (!rc) rc = get1(&ld, NM("attn.in_proj_bias"), 3 * D, L->qkv_b);
                if (!rc) rc = get2(&ld, NM("attn.out_proj.weight"), D, D, L->o_w);
                if (!rc) rc = get1(&ld, NM("attn.out_proj.bias"), D, L->o_b);
                if (!rc) rc = get1(&ld, NM("ln_2.weight"), D, L->ln2_w);
                if (!rc) rc = get1(&ld, NM("ln_2.bias"), D, L->ln2_b);
                if (!rc) rc = get2(&ld, NM("mlp.c_fc.weight"), M, D, L->fc1_w);
                if (!rc) rc = get1(&ld, NM("mlp.c_fc.bias"), M, L->fc1_b);
                if (!rc) rc = get2(&ld, NM("mlp.c_proj.weight"), D, M, L->fc2_w);
                if (!rc) rc = get1(&ld, NM("mlp.c_proj.bias"), D, L->fc2_b);
            } else {
                snprintf(pre, sizeof pre, "vision_model.encoder.layers.%lld.", (long long)l);
                rc = get1(&ld, NM("layer_norm1.weight"), D, L->ln1_w);
                if (!rc) rc = get1(&ld, NM("layer_norm1.bias"), D, L->ln1_b);
                const char *qkv[3] = {"q", "k", "v"};
                for (int k = 0; k < 3 && !rc; k++) {
                    char s2[64];
                    snprintf(s2, sizeof s2, "self_attn.%s_proj.weight", qkv[k]);
                    rc = get2(&ld, NM(s2), D, D, L->qkv_w + k * D * D);
                    snprintf(s2, sizeof s2, "self_attn.%s_proj.bias", qkv[k]);
                    if (!rc) rc = get1(&ld, NM(s2), D, L->qkv_b + k * D);
                }
                if (!rc) rc = get2(&ld, NM("self_attn.out_proj.weight"), D, D, L->o_w);
                if (!rc) rc = get1(&ld, NM("self_attn.out_proj.bias"), D, L->o_b);
                if (!rc) rc = get1(&ld, NM("layer_norm2.weight"), D, L->ln2_w);
                if (!rc) rc = get1(&ld, NM("layer_norm2.bias"), D, L->ln2_b);
                if (!rc) rc = get2(&ld, NM("mlp.fc1.weight"), M, D, L->fc1_w);
                if (!rc) rc = get1(&ld, NM("mlp.fc1.bias"), M, L->fc1_b);
                if (!rc) rc = get2(&ld, NM("mlp.fc2.weight"), D, M, L->fc2_w);
                if (!rc) rc = get1(&ld, NM("mlp.fc2.bias"), D, L->fc2_b);
#undef NM
            }
        }
    }
    if (!rc) rc = check_unused(&ld);
    rdml_weights_close(&ld.st);
    free(ld.used);
    if (rc) {
        rdml_clip_free(&m);
        return rc;
    }
    *out = m;
    return RDML_OK;
}

void rdml_clip_free(rdml_clip **pm) {
    if (!pm || !*pm) return;
    free((*pm)->mem);
    free((*pm)->L);
    free(*pm);
    *pm = NULL;
}

const rdml_clip_arch *rdml_clip_get_arch(const rdml_clip *m) { return &m->a; }

int64_t rdml_clip_dims(const rdml_clip *m, int64_t layer) {
    return layer < 0 ? m->a.proj : m->a.width;
}

/* ---- preprocessing ---- */

int rdml_clip_preprocess(rdml_ctx *ctx, const rdml_clip *m, const rdml_image *im, float *out) {
    const int64_t S = m->a.image;
    if (im->channels != 3)
        return RDML_FAIL(ctx, RDML_EINTERNAL, "CLIP preprocessing needs an RGB image");
    int64_t w = im->w, h = im->h, ow, oh;
    if (w <= h) {
        ow = S;
        oh = (int64_t)((double)S * (double)h / (double)w);
    } else {
        oh = S;
        ow = (int64_t)((double)S * (double)w / (double)h);
    }
    uint8_t *r = rdml_malloc(ctx, (size_t)(ow * oh * 3), "resized image");
    if (!r) return ctx->code;
    int rc = rdml_embed_resize_u8(ctx, im->px, w, h, 3, r, ow, oh, RDML_RESAMPLE_BICUBIC);
    if (!rc) {
        int64_t top = (oh - S) / 2, left = (ow - S) / 2;
        for (int c = 0; c < 3; c++) {
            double sc = 1.0 / clip_std[c];
            for (int64_t y = 0; y < S; y++)
                for (int64_t x = 0; x < S; x++) {
                    uint8_t v = r[((y + top) * ow + x + left) * 3 + c];
                    out[(c * S + y) * S + x] = (float)(((double)(float)(v / 255.0) - clip_mean[c]) * sc);
                }
        }
    }
    free(r);
    return rc;
}

/* ---- forward ---- */

static double *prof_acc; /* rdml_clip_forward_profile */

void rdml_clip_forward_profile(double *acc) { prof_acc = acc; }

const char *rdml_clip_phase_name(int phase) {
    static const char *names[RDML_CLIP_NPHASE] = {"patch", "layernorm", "qkv", "attention",
                                                  "out_proj", "fc1", "activation", "fc2", "head"};
    return phase >= 0 && phase < RDML_CLIP_NPHASE ? names[phase] : "?";
}

static double prof_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Close phase `ph` begun at *t (when profiling) and start the next one. */
static void prof_mark(double *t, int ph) {
    if (!prof_acc) return;
    double n = prof_now();
    prof_acc[ph] += n - *t;
    *t = n;
}

/* y = x W^T (+ beta y): x rows x k, W n x k (PyTorch Linear layout). */
static void linear(float *y, const float *x, const float *W, int64_t rows, int64_t n, int64_t k,
                   float beta) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, (int)n, (int)k, 1.0f, x,
                (int)k, W, (int)k, beta, y, (int)n);
}

static void pool_out(const rdml_clip *m, const float *h, int64_t B, int pool_mean, float *out) {
    int64_t T = m->a.tokens, D = m->a.width;
    for (int64_t b = 0; b < B; b++) {
        const float *hb = h + b * T * D;
        if (!pool_mean) {
            memcpy(out + b * D, hb, (size_t)D * sizeof *out);
            continue;
        }
        for (int64_t i = 0; i < D; i++) {
            double s = 0;
            for (int64_t t = 1; t < T; t++) s += hb[t * D + i];
            out[b * D + i] = (float)(s / (double)(T - 1));
        }
    }
}

/* Hand the hidden state after layer `done` (0: the embeddings after pre-LN) to every
 * output that asked for it. */
static void pool_outputs(const rdml_clip *m, const float *h, int64_t B, int64_t done, int64_t n,
                         const int64_t *layers, const int *pool_mean, float *const *outs) {
    for (int64_t k = 0; k < n; k++)
        if (layers[k] == done) pool_out(m, h, B, pool_mean[k], outs[k]);
}

int rdml_clip_forward(rdml_ctx *ctx, const rdml_clip *m, int64_t B, const float *pixels,
                      int64_t layer, int pool_mean, float *out) {
    return rdml_clip_forward_multi(ctx, m, B, pixels, 1, &layer, &pool_mean, &out);
}

int rdml_clip_forward_multi(rdml_ctx *ctx, const rdml_clip *m, int64_t B, const float *pixels,
                            int64_t n, const int64_t *layers, const int *pool_mean,
                            float *const *outs) {
    const rdml_clip_arch *a = &m->a;
    const int64_t D = a->width, T = a->tokens, p = a->patch, g = a->grid, S = a->image,
                  M = a->mlp, H = a->heads, hd = D / H, pp = 3 * p * p, BT = B * T;
    int64_t last = 0; /* the deepest hidden state needed; layers + 1: the projected output */
    for (int64_t k = 0; k < n; k++) {
        if (layers[k] > a->layers || layers[k] < -1)
            return RDML_FAIL(ctx, RDML_ECONFIG, "embed.layer = %lld but the model has %lld layers "
                             "(hint: -1 for the projected output, 0..%lld for a hidden state)",
                             (long long)layers[k], (long long)a->layers, (long long)a->layers);
        const int64_t need = layers[k] < 0 ? a->layers + 1 : layers[k];
        if (need > last) last = need;
    }
    if (B <= 0 || n <= 0) return RDML_OK;
    int64_t wide = 3 * D > M ? 3 * D : M;
    if (B * g * g * pp > BT * wide) wide = (B * g * g * pp + BT - 1) / BT;
    float *h = rdml_malloc(ctx, (size_t)(BT * D) * sizeof *h, "CLIP activations");
    float *x = rdml_malloc(ctx, (size_t)(BT * D) * sizeof *x, "CLIP activations");
    float *big = rdml_malloc(ctx, (size_t)(BT * wide) * sizeof *big, "CLIP activations");
    float *att = rdml_malloc(ctx, (size_t)(rdml_par_threads() * T * T) * sizeof *att, "CLIP attention");
    int rc = h && x && big && att ? RDML_OK : ctx->code;
    if (rc) goto done;
    double tp = prof_acc ? prof_now() : 0;

    /* patch embedding: im2col rows (b, patch row, patch col), columns (channel, y, x) */
    vit_patches(big, pixels, B, g, p, S);
    linear(x, big, m->patch_w, B * g * g, D, pp, 0.0f);
    for (int64_t b = 0; b < B; b++) {
        float *hb = h + b * T * D;
        for (int64_t i = 0; i < D; i++) hb[i] = m->cls[i] + m->pos[i];
        for (int64_t t = 1; t < T; t++)
            for (int64_t i = 0; i < D; i++)
                hb[t * D + i] = x[(b * g * g + t - 1) * D + i] + m->pos[t * D + i];
    }
    rdml_tf_layer_norm(h, h, m->pre_w, m->pre_b, BT, D, a->eps);
    prof_mark(&tp, RDML_CLIP_PH_PATCH);
    pool_outputs(m, h, B, 0, n, layers, pool_mean, outs);
    if (last == 0) goto done;
    const float scale = (float)(1.0 / sqrt((double)hd));
    for (int64_t l = 0; l < a->layers; l++) {
        /* a large model's batch takes minutes on one core: stop between layers (the caller
         * agrees on it with the other ranks at its next batch boundary) */
        rc = rdml_stop_check(ctx, "in CLIP layer %lld of %lld", (long long)l, (long long)a->layers);
        if (rc) goto done;
        const clip_layer *L = &m->L[l];
        rdml_tf_layer_norm(x, h, L->ln1_w, L->ln1_b, BT, D, a->eps);
        prof_mark(&tp, RDML_CLIP_PH_LN);
        float *qkv = big; /* BT x 3D */
        linear(qkv, x, L->qkv_w, BT, 3 * D, D, 0.0f);
        prof_mark(&tp, RDML_CLIP_PH_QKV);
        rdml_tf_attention(qkv, L->qkv_b, x, att, B, T, D, H, scale); /* + q|k|v's bias */
        prof_mark(&tp, RDML_CLIP_PH_ATTN);
        linear(h, x, L->o_w, BT, D, D, 1.0f);
        rdml_tf_bias_act(h, L->o_b, BT, D, RDML_TF_NONE);
        prof_mark(&tp, RDML_CLIP_PH_OUT);
        rdml_tf_layer_norm(x, h, L->ln2_w, L->ln2_b, BT, D, a->eps);
        prof_mark(&tp, RDML_CLIP_PH_LN);
        float *f = big; /* BT x M */
        linear(f, x, L->fc1_w, BT, M, D, 0.0f);
        prof_mark(&tp, RDML_CLIP_PH_FC1);
        rdml_tf_bias_act(f, L->fc1_b, BT, M, a->act == RDML_ACT_GELU ? RDML_TF_GELU : RDML_TF_QUICK_GELU);
        prof_mark(&tp, RDML_CLIP_PH_ACT);
        linear(h, f, L->fc2_w, BT, D, M, 1.0f);
        rdml_tf_bias_act(h, L->fc2_b, BT, D, RDML_TF_NONE);
        prof_mark(&tp, RDML_CLIP_PH_FC2);
        pool_outputs(m, h, B, l + 1, n, layers, pool_mean, outs);
        if (last == l + 1) goto done;
    }
    /* get_image_features: post_layernorm on the CLS token, then the projection */
    for (int64_t b = 0; b < B; b++)
        layer_norm(x + b * D, h + b * T * D, m->post_w, m->post_b, 1, D, a->eps);
    for (int64_t k = 0; k < n; k++)
        if (layers[k] < 0) linear(outs[k], x, m->proj, B, a->proj, D, 0.0f);
    prof_mark(&tp, RDML_CLIP_PH_HEAD);
done:
    free(h);
    free(x);
    free(big);
    free(att);
    return rc;
}

/* ---- layer names (embed.layers) ---- */

const char *rdml_clip_layer_name(const rdml_clip *m, int64_t hidden, char *buf, size_t len) {
    const int oa = m->a.openai_naming;
    if (hidden < 0) snprintf(buf, len, "%s", oa ? "visual.proj" : "visual_projection");
    else if (hidden == 0) snprintf(buf, len, "%s", oa ? "visual.ln_pre" : "vision_model.pre_layrnorm");
    else snprintf(buf, len, "%s%lld", oa ? "visual.transformer.resblocks." : "vision_model.encoder.layers.",
                  (long long)(hidden - 1));
    return buf;
}

int64_t rdml_clip_layer_index(const rdml_clip *m, const char *name) {
    char buf[96];
    for (int64_t h = -1; h <= m->a.layers; h++)
        if (strcmp(name, rdml_clip_layer_name(m, h, buf, sizeof buf)) == 0) return h;
    return -2;
}

void rdml_clip_layer_names(const rdml_clip *m, char *list, size_t len) {
    size_t o = 0;
    char buf[96];
    if (len) list[0] = '\0';
    for (int64_t h = 0; h <= m->a.layers + 1 && o + 1 < len; h++) {
        const char *nm = rdml_clip_layer_name(m, h > m->a.layers ? -1 : h, buf, sizeof buf);
        if (o + strlen(nm) + 8 >= len) {
            snprintf(list + o, len - o, "...");
            return;
        }
        o += (size_t)snprintf(list + o, len - o, "%s%s", h ? ", " : "", nm);
    }
}
