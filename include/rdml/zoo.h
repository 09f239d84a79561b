/* rdml/zoo.h — the model zoo: torchvision's convolutional networks (AlexNet, VGG-16,
 * ResNet-18, ResNet-50) and vision transformers (torchvision's vit_b_16, facebookresearch's
 * DINOv2 S/B/L/14 with or without registers; the same rdml_convnet handle) with weights
 * from safetensors or a PyTorch .pth state dict, any list of their modules extracted in one forward pass, and the per-layer pooling shared by every
 * network of the zoo (global average pool, flatten, flatten + seeded random projection; CLS
 * and mean token for ViTs).
 *
 * Example:
 *
 *   #include <stdio.h>
 *   #include "rdml/png.h"
 *
 *   typedef struct { float *gap; } sink;               // pooled layer4 features, B x 512
 *
 *   static int take(void *arg, int64_t k, int64_t B, const rdml_zoo_layer *L, const float *x) {
 *       sink *s = arg;                                  // x: B x C x H x W, torch order
 *       (void)k;
 *       return rdml_zoo_pool(NULL, RDML_POOL_GAP, L, B, x, NULL, 0, s->gap);
 *   }
 *
 *   int resnet18_layer4(rdml_ctx *ctx, const char *weights, const char *png, float out[512]) {
 *       rdml_convnet *m;                                // weights: resnet18.safetensors or .pth
 *       RDML_TRY(rdml_convnet_load(ctx, RDML_ZOO_RESNET18, weights, &m));
 *       int64_t k = rdml_convnet_find(m, "layer4");     // -1 for a name it does not have
 *       float *px = rdml_malloc(ctx, 3 * 224 * 224 * sizeof *px, "pixels");
 *       rdml_image im = {0};
 *       int rc = px ? rdml_png_read(ctx, png, 3, &im) : ctx->code;
 *       if (!rc) rc = rdml_zoo_imagenet_preprocess(ctx, &im, px);
 *       sink s = {out};
 *       if (!rc) rc = rdml_convnet_forward(ctx, m, 1, px, 1, &k, take, &s);
 *       rdml_image_free(&im);
 *       free(px);
 *       rdml_convnet_free(&m);
 *       return rc;
 *   }
 *
 * Activations run channels-last (B x H x W x C): a 1x1 stride-1 convolution is one SGEMM
 * over the whole batch, any other one im2col over row chunks + SGEMM; batch norm is folded
 * into the convolution at load time (eval mode). Layers are handed to the caller in torch
 * order (B x C x H x W), so flatten matches torch.flatten(x, 1). Not collective.
 * The networks, layer names and preprocessing are documented in docs/embed.md.
 */
#ifndef RDML_ZOO_H
#define RDML_ZOO_H

#include <stdint.h>

#include "rdml/core.h"
#include "rdml/png.h"
#include "rdml/safetensors.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum rdml_zoo_arch {
    RDML_ZOO_ALEXNET = 0, /* torchvision.models.alexnet */
    RDML_ZOO_VGG16,       /* torchvision.models.vgg16 (no batch norm) */
    RDML_ZOO_RESNET18,    /* torchvision.models.resnet18 */
    RDML_ZOO_RESNET50,    /* torchvision.models.resnet50 */
    RDML_ZOO_VIT_B_16,    /* torchvision.models.vit_b_16 (any torchvision ViT by its shapes) */
    RDML_ZOO_DINOV2,      /* facebookresearch/dinov2 ViT-S/B/L/14, with or without registers */
    RDML_ZOO_NARCH
} rdml_zoo_arch;

/* "alexnet", "vgg16", "resnet18", "resnet50", "vit_b_16", "dinov2"; parse fails (RDML_ECONFIG) listing them. */
const char *rdml_zoo_arch_name(rdml_zoo_arch a);
int rdml_zoo_arch_parse(rdml_ctx *ctx, const char *s, rdml_zoo_arch *out);
/* torchvision's ImageNet weights for the architecture (IMAGENET1K_V1), for `rdmlearn models`. */
const char *rdml_zoo_weights_url(rdml_zoo_arch a);

/* ---- weight files: safetensors or a PyTorch .pth (zip of torch.save), by content ---- */

typedef struct rdml_weights rdml_weights;
/* A file starting with the zip signature "PK\3\4" is read as a .pth state dict (rdml/pth.h:
 * nothing is executed), anything else as safetensors. Errors name the file. */
int rdml_weights_open(rdml_ctx *ctx, const char *path, rdml_weights **out);
void rdml_weights_close(rdml_weights **w);
int64_t rdml_weights_count(const rdml_weights *w);
const rdml_st_tensor *rdml_weights_at(const rdml_weights *w, int64_t i);
int64_t rdml_weights_index(const rdml_weights *w, const char *name); /* -1 when absent */
const char *rdml_weights_path(const rdml_weights *w);
const char *rdml_weights_format(const rdml_weights *w); /* "safetensors" or "pth" */
int rdml_weights_read_f32(rdml_ctx *ctx, const rdml_weights *w, const rdml_st_tensor *t,
                          float *out);

/* ---- layers and pooling (every network of the zoo) ---- */

/* One addressable module output. vec = 1: a vector (C features, h = w = 1), e.g. fc;
 * vec = 0: a C x H x W map; tokens = 1: a ViT's token sequence, handed over as T x C (torch's
 * B x T x D order) with h = T tokens, w = 1, of which the first `prefix` are the class token
 * and registers. depth: the module's position in forward order (0 = the first listed). */
typedef struct rdml_zoo_layer {
    char name[48];
    int64_t c, h, w;
    int vec;
    int depth;
    int tokens, prefix;
} rdml_zoo_layer;

typedef enum rdml_pool {
    RDML_POOL_AUTO = 0, /* conv map: gap; vector: flatten; ViT tokens: cls */
    RDML_POOL_CLS,      /* ViT: the class token */
    RDML_POOL_MEAN,     /* ViT: the mean of the patch tokens (class token, registers left out) */
    RDML_POOL_GAP,      /* global average pool of a C x H x W map: C features */
    RDML_POOL_FLATTEN,  /* torch.flatten(x, 1): C * H * W features */
    RDML_POOL_PROJECT,  /* flatten, then a Gaussian random projection to `dims` features */
    RDML_POOL_N
} rdml_pool;

/* "auto", "cls", "mean", "gap", "flatten", "project". */
const char *rdml_pool_name(rdml_pool p);
int rdml_pool_parse(rdml_ctx *ctx, const char *s, rdml_pool *out);
/* The pooling `auto` stands for on a convolutional layer (gap, or flatten for a vector). */
rdml_pool rdml_pool_resolve(rdml_pool p, const rdml_zoo_layer *L);
/* Output width of pooling p on L (dims: the projection's width); -1 when p does not apply
 * (cls/mean on a conv map, gap on tokens; gap on a vector is allowed and is the identity). */
int64_t rdml_pool_dims(rdml_pool p, const rdml_zoo_layer *L, int64_t dims);

/* The random projection of `project` pooling: a dims x D matrix R with entries
 * N(0, 1) / sqrt(dims) (scikit-learn's GaussianRandomProjection, THINGSvision's reduction)
 * drawn from the counter RNG keyed by (seed, the projection stream, the layer name), so it is
 * the same on every rank and run. features = R @ flatten(x). */
typedef struct rdml_projection {
    int64_t in, out;
    uint64_t seed, stream;
    float *r; /* out x in, row-major; NULL above 2^28 entries (1 GiB): then the entries are
                 drawn again, in column blocks, for every batch (slower, same values) */
} rdml_projection;
int rdml_projection_make(rdml_ctx *ctx, uint64_t seed, const char *key, int64_t in,
                         int64_t out, rdml_projection *p);
void rdml_projection_free(rdml_projection *p);

/* Pool B items of layer L (x: B x C x H x W in torch order, B x T x D for tokens) into out (B x dims). proj is
 * needed for RDML_POOL_PROJECT (NULL otherwise); p must not be AUTO (resolve it first). */
int rdml_zoo_pool(rdml_ctx *ctx, rdml_pool p, const rdml_zoo_layer *L, int64_t B,
                  const float *x, const rdml_projection *proj, int64_t dims, float *out);

/* ---- torchvision convolutional networks ---- */

typedef struct rdml_convnet rdml_convnet;

/* The network without weights (classes outputs), for listing layers. */
int rdml_convnet_create(rdml_ctx *ctx, rdml_zoo_arch a, int64_t classes, rdml_convnet **out);
/* Load torchvision state-dict weights (safetensors or .pth): every tensor checked in model
 * order against the architecture's shape (the first one that does not fit is an error naming
 * it and both shapes: weights of another architecture), a missing tensor is an error naming
 * it, a tensor the network does not use (other than batch norm's num_batches_tracked) is an
 * error listing it. The class count comes from the last layer's weight. Batch norm
 * (eps 1e-5, running statistics) is folded into the preceding convolution. */
int rdml_convnet_load(rdml_ctx *ctx, rdml_zoo_arch a, const char *path, rdml_convnet **out);
void rdml_convnet_free(rdml_convnet **m);
rdml_zoo_arch rdml_convnet_arch(const rdml_convnet *m);
int64_t rdml_convnet_nlayers(const rdml_convnet *m);
const rdml_zoo_layer *rdml_convnet_layer(const rdml_convnet *m, int64_t i);
/* The layer named `name` (torchvision's module name, e.g. "layer4.1", "features.10"), -1. */
int64_t rdml_convnet_find(const rdml_convnet *m, const char *name);
/* The valid layer names, comma-separated, into buf (truncated with "..."). */
void rdml_convnet_layer_list(const rdml_convnet *m, char *buf, size_t len);

/* Called once per requested layer k (in forward order) with that layer's output for the
 * batch, B x C x H x W in torch order; a non-OK return stops the forward pass. */
typedef int (*rdml_zoo_emit)(void *arg, int64_t k, int64_t B, const rdml_zoo_layer *L,
                             const float *x);
/* Forward B preprocessed images (B x 3 x 224 x 224, as rdml_zoo_imagenet_preprocess writes
 * them) up to the last of the n requested layers (indices from rdml_convnet_find, any order,
 * no repeats); emit gets each. Returns RDML_ECANCELLED when a stop is requested between
 * modules. */
int rdml_convnet_forward(rdml_ctx *ctx, const rdml_convnet *m, int64_t B, const float *pixels,
                         int64_t n, const int64_t *layers, rdml_zoo_emit emit, void *arg);

/* torchvision's ImageNet eval transform as of torchvision 0.14 on a PIL image: Resize(256)
 * (the short side to 256, the long side int(256 * long / short), Pillow BILINEAR with
 * antialiasing), CenterCrop(224) (top = round((H - 224) / 2), Python rounding), ToTensor
 * (/255) and Normalize(ImageNet mean, std). im must be RGB; out is 3 x 224 x 224. */
#define RDML_ZOO_IMAGE 224
int rdml_zoo_imagenet_preprocess(rdml_ctx *ctx, const rdml_image *im, float *out);
const char *rdml_zoo_imagenet_preprocessing(void);
/* The architecture's own preprocessing: the above for torchvision's networks (vit_b_16's
 * ViT_B_16_Weights transform is the same), DINOv2's make_classification_eval_transform for
 * dinov2 (the same with Pillow BICUBIC resizing). */
int rdml_zoo_preprocess(rdml_ctx *ctx, rdml_zoo_arch a, const rdml_image *im, float *out);
const char *rdml_zoo_preprocessing(rdml_zoo_arch a);

/* The text of `rdmlearn models`: every architecture (or only the one named, which may also
 * be "clip-vit") with its layer names and shapes, preprocessing and where to get weights.
 * *out is malloc'd; an unknown name is RDML_EUSAGE listing the known ones. */
int rdml_zoo_catalogue(rdml_ctx *ctx, const char *only, char **out);

#ifdef __cplusplus
}
#endif
#endif
