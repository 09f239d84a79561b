/* rdml/embed.h — image embeddings: a Gabor energy model, pixels, imported features, CLIP ViT,
 * and the torchvision convnets of the model zoo (rdml/zoo.h), several layers per pass.
 *
 * Example:
 *
 *   #include "rdml/dataset.h"
 *   #include "rdml/mpiutil.h"
 *
 *   // CLIP embeddings of a subject's images: this rank's rows [*lo, *hi) into *rows (free it).
 *   int embed_subject(rdml_ctx *ctx, MPI_Comm comm, const rdml_subject *s, const char *weights,
 *                     float **rows, int64_t *lo, int64_t *hi, int64_t *dims) {
 *       rdml_embed_params p;
 *       rdml_embed_defaults(&p);                         // gabor, batch 32, no normalisation
 *       p.backend = RDML_EMBED_CLIP;
 *       p.weights = weights;                             // ".../clip-vit-base-patch32/model.safetensors"
 *       rdml_embedder *e;
 *       RDML_TRY(rdml_embed_create(ctx, comm, &p, &e));  // collective: loads weights / opens files
 *       *dims = rdml_embed_dims(e);                      // 512 for ViT-B/32
 *       int64_t n = rdml_subject_nimages(s);
 *       rdml_embed_block(e, n, ctx->rank, ctx->nranks, lo, hi);  // whole batches per rank
 *       int64_t m = *hi - *lo;
 *       rdml_embed_item *items = rdml_calloc(ctx, (size_t)m + 1, sizeof *items, "image list");
 *       *rows = rdml_malloc(ctx, ((size_t)(m * *dims) + 1) * sizeof **rows, "embeddings");
 *       int rc = rdml_agree(ctx, comm, items && *rows ? RDML_OK : ctx->code);
 *       for (int64_t k = 0; k < m && !rc; k++)           // my images: PNG path, global row, NSD id
 *           items[k] = (rdml_embed_item){rdml_subject_image_path(s, *lo + k), *lo + k,
 *                                        rdml_subject_nsd_id(s, *lo + k)};
 *       if (!rc) {
 *           rdml_progress prog;
 *           rdml_progress_begin(&prog, ctx, "clip", n);
 *           rc = rdml_embed_compute(ctx, comm, e, m, items, *rows, &prog, 0);  // collective
 *           rdml_progress_end(&prog);
 *       }
 *       free(items);
 *       rdml_embed_destroy(&e);
 *       return rc;
 *   }
 *
 * Every image's features depend on that image only (and on the file backend's row lookup);
 * CLIP batches are aligned to global image indices (rdml_embed_block), so results are
 * bit-identical for any rank count.
 * The image-level functions below (Pillow-exact resampling, gabor, pixels, CLIP load,
 * preprocessing and forward) are not collective and are public for tests and benches.
 * The models are documented in docs/embed.md.
 */
#ifndef RDML_EMBED_H
#define RDML_EMBED_H

#include <mpi.h>
#include <stdint.h>

#include "rdml/core.h"
#include "rdml/png.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum rdml_embed_backend {
    RDML_EMBED_GABOR = 0, /* Gabor filter-bank energy model, 512-d */
    RDML_EMBED_PIXELS,    /* grayscale resize, min-max normalised, flattened (size^2-d) */
    RDML_EMBED_FILE,      /* rows of an N x D .npy or HDF5 dataset */
    RDML_EMBED_CLIP,      /* CLIP ViT image tower from safetensors weights */
    RDML_EMBED_TORCHVISION /* a torchvision convnet (rdml/zoo.h), any list of its layers */
} rdml_embed_backend;

/* "gabor", "pixels", "file", "clip-vit", "torchvision"; parse returns RDML_ECONFIG naming
 * the value. */
const char *rdml_embed_backend_name(rdml_embed_backend b);
int rdml_embed_backend_parse(rdml_ctx *ctx, const char *s, rdml_embed_backend *out);

typedef enum rdml_clip_act { RDML_ACT_AUTO = 0, RDML_ACT_QUICK_GELU, RDML_ACT_GELU } rdml_clip_act;

typedef struct rdml_embed_params {
    rdml_embed_backend backend;
    int64_t batch;       /* images per batch (clip-vit SGEMM batch; others decode batch) */
    int normalize;       /* 1: divide each row by its L2 norm (a zero row stays zero) */
    int64_t size;        /* pixels: output side in pixels (default 128) */
    const char *file;    /* file: the .npy or .h5/.hdf5 holding N x D features */
    const char *dataset; /* file: dataset path inside an HDF5 file */
    const char *ids;     /* file: .npy of the NSD id of every row, or NULL/"" = image order */
    const char *weights; /* clip-vit: model.safetensors (config.json beside it is read) */
    int64_t layer;       /* clip-vit: -1 = get_image_features, k = hidden state after layer k
                            (0 = the embeddings after pre_layrnorm) */
    int pool_mean;       /* clip-vit, layer >= 0: 0 = CLS token, 1 = mean of the patch tokens */
    int64_t heads;       /* clip-vit: attention heads, 0 = config.json, else width / 64 */
    rdml_clip_act act;   /* clip-vit: AUTO = config.json hidden_act, else quick_gelu */
    /* torchvision backend (rdml/zoo.h); weights above is its state dict (.safetensors/.pth) */
    const char *model;          /* "alexnet", "vgg16", "resnet18", "resnet50" */
    const char *const *layers;  /* module names (torchvision's, or a CLIP checkpoint's:
                                   rdml_clip_layer_index); nlayers 0 = the last module
                                   (torchvision) / layer and pool_mean above (clip-vit) */
    int64_t nlayers;
    const char *const *pooling; /* "auto", "gap", "flatten", "project" ("cls", "mean" for
                                   clip-vit layers): 0, 1 (every layer) or nlayers names */
    int64_t npooling;
    int64_t dims;               /* width of `project` pooling */
    uint64_t seed;              /* keys the random projection (embed.projection_seed) */
} rdml_embed_params;

void rdml_embed_defaults(rdml_embed_params *p);

/* One image to embed: its PNG, its row in the subject's list and its NSD id. */
typedef struct rdml_embed_item {
    const char *path;
    int64_t row;
    int64_t nsd_id;
} rdml_embed_item;

typedef struct rdml_embedder rdml_embedder;

/* Collective over comm. Validates the parameters and loads what the backend needs (CLIP
 * weights, the file's header and id list). On error *out is NULL on every rank. */
int rdml_embed_create(rdml_ctx *ctx, MPI_Comm comm, const rdml_embed_params *p,
                      rdml_embedder **out);
void rdml_embed_destroy(rdml_embedder **e);
/* Width of output 0 (the only one of every backend but torchvision with several layers). */
int64_t rdml_embed_dims(const rdml_embedder *e);
/* The embedder's outputs: one per extracted layer (torchvision), else one. */
typedef struct rdml_embed_output {
    const char *arch;    /* "resnet50", ... (torchvision backend); "" otherwise */
    const char *layer;   /* module name ("layer4", "classifier.4"); "" for single-output backends */
    const char *pooling; /* "gap", "flatten", "project", ... ("" when none applies) */
    int64_t depth;       /* the layer's position in the network's module list, -1 */
    int64_t dims;
    int64_t nmodules;    /* how many addressable modules the network has (depth < nmodules), 0 */
} rdml_embed_output;
int64_t rdml_embed_noutputs(const rdml_embedder *e);
const rdml_embed_output *rdml_embed_get_output(const rdml_embedder *e, int64_t k);
/* Model description for the results attribute "model" (e.g. "ViT width 768, 12 layers, ..."). */
const char *rdml_embed_model(const rdml_embedder *e);
/* Preprocessing description for the attribute "preprocessing". */
const char *rdml_embed_preprocessing(const rdml_embedder *e);
/* The file backend matching rows by image order: the file's row count (a subject must have
 * exactly this many images); -1 otherwise. */
int64_t rdml_embed_order_rows(const rdml_embedder *e);
/* 1 when rows are L2-normalised. */
int rdml_embed_normalized(const rdml_embedder *e);
/* This rank's contiguous block [lo, hi) of a subject's n images. For clip-vit the blocks are
 * whole batches counted from image 0 (rdml_part_block over ceil(n / batch) batches): SGEMM
 * results depend in their last bits on the batch they are computed in, so every image must
 * see the same batch for any rank count. Other backends split the images themselves. */
void rdml_embed_block(const rdml_embedder *e, int64_t n, int rank, int nranks, int64_t *lo,
                      int64_t *hi);

/* Collective over comm (every rank calls it once per subject with the items of its
 * rdml_embed_block, n may be 0; the file backend
 * reads HDF5 collectively). Writes n x dims floats to out. An unreadable image fails naming
 * it; the file backend fails naming the file and the id or row that has no match. Errors
 * are agreed across ranks before returning. progress (rank 0's, may be NULL) is advanced by
 * this rank's done count times the rank count, plus `progress_base`. Images go in batches of
 * p.batch with the ranks in step: a stop request (SIGTERM, rdml_stop_requested) on any rank
 * ends the call on every rank at the next batch boundary with RDML_ECANCELLED. */
int rdml_embed_compute(rdml_ctx *ctx, MPI_Comm comm, rdml_embedder *e, int64_t n,
                       const rdml_embed_item *items, float *out, rdml_progress *progress,
                       int64_t progress_base);
/* As rdml_embed_compute for every output at once (one forward pass): outs[k] receives
 * n x rdml_embed_get_output(e, k)->dims floats. rdml_embed_compute is this with one output
 * (an embedder with several outputs must use this one). */
int rdml_embed_compute_all(rdml_ctx *ctx, MPI_Comm comm, rdml_embedder *e, int64_t n,
                           const rdml_embed_item *items, float **outs, rdml_progress *progress,
                           int64_t progress_base);

/* ---- image-level pieces (not collective) ---- */

typedef enum rdml_resample {
    RDML_RESAMPLE_BOX = 0,  /* Pillow Image.BOX */
    RDML_RESAMPLE_BILINEAR, /* Pillow Image.BILINEAR */
    RDML_RESAMPLE_BICUBIC   /* Pillow Image.BICUBIC (a = -0.5) */
} rdml_resample;

/* Pillow's Image.resize((ow, oh), filter) on 8-bit pixels with c interleaved channels,
 * bit for bit: antialiased (support scaled by the reduction factor), coefficients in 22-bit
 * fixed point, horizontal pass first into an 8-bit intermediate. Returns RDML_ENOMEM only. */
int rdml_embed_resize_u8(rdml_ctx *ctx, const uint8_t *in, int64_t w, int64_t h, int c,
                         uint8_t *out, int64_t ow, int64_t oh, rdml_resample filter);

#define RDML_GABOR_DIMS 512
/* Gabor energy features of one image (any channel count; converted to Pillow 'L'). */
int rdml_embed_gabor(rdml_ctx *ctx, const rdml_image *im, float *out /* 512 */);
/* Pixels features: Pillow 'L', resized to size x size (BILINEAR), min-max to [0,1]
 * (a constant image gives zeros), row-major. */
int rdml_embed_pixels(rdml_ctx *ctx, const rdml_image *im, int64_t size, float *out);

/* CLIP ViT image tower. */
typedef struct rdml_clip rdml_clip;
typedef struct rdml_clip_arch {
    int64_t width, layers, heads, mlp, patch, grid, tokens, image, proj;
    rdml_clip_act act;
    double eps;
    int openai_naming; /* 1: visual.* tensors, 0: vision_model.* */
} rdml_clip_arch;

/* Load from a safetensors file in Hugging Face or OpenAI naming; the architecture comes from
 * the tensor shapes (layers: 1 + the largest layer index), heads/act/eps from `config.json`
 * beside the file when present (either the CLIPModel layout with "vision_config" or a vision
 * config at the top level), whose stated sizes must match the tensors. heads > 0 and act !=
 * AUTO override it. Every missing or mis-shaped tensor of any layer is an error naming it
 * (and the expected shape); a tensor neither used nor a known unused part of a full CLIP
 * checkpoint (text tower, logit_scale, ...) is an error listing it. Not collective. */
int rdml_clip_load(rdml_ctx *ctx, const char *path, int64_t heads, rdml_clip_act act,
                   rdml_clip **out);
void rdml_clip_free(rdml_clip **m);
const rdml_clip_arch *rdml_clip_get_arch(const rdml_clip *m);
/* CLIPImageProcessor: bicubic (Pillow, antialiased) resize of the short side to the model's
 * image size (long side truncated), centre crop (top = (H - S) / 2), /255, per-channel CLIP
 * mean/std; out is 3 x S x S channel-first. im must be RGB (3 channels). */
int rdml_clip_preprocess(rdml_ctx *ctx, const rdml_clip *m, const rdml_image *im, float *out);
/* Output width for a layer choice: proj for layer < 0, width otherwise. */
int64_t rdml_clip_dims(const rdml_clip *m, int64_t layer);
/* Forward B preprocessed images (B x 3 x S x S) as batched SGEMMs. layer < 0: the
 * get_image_features vector (post_layernorm(CLS) @ projection^T, not normalised); layer k in
 * [0, layers]: the CLS token (pool_mean 0) or the mean of the patch tokens (pool_mean 1) of
 * the hidden state after layer k. out: B x rdml_clip_dims(m, layer). Returns RDML_ECANCELLED
 * when a stop is requested (rdml_stop_requested) before a layer. */
int rdml_clip_forward(rdml_ctx *ctx, const rdml_clip *m, int64_t B, const float *pixels,
                      int64_t layer, int pool_mean, float *out);

/* One forward pass for several outputs: n requested layers (each -1 or 0..layers, as for
 * rdml_clip_forward, with its own pool_mean), outs[k] receiving B x rdml_clip_dims(m,
 * layers[k]). The pass stops after the deepest one. rdml_clip_forward is this with n = 1. */
int rdml_clip_forward_multi(rdml_ctx *ctx, const rdml_clip *m, int64_t B, const float *pixels,
                            int64_t n, const int64_t *layers, const int *pool_mean,
                            float *const *outs);
/* CLIP's addressable modules for embed.layers, in the checkpoint's naming: Hugging Face
 * "vision_model.pre_layrnorm" (hidden state 0), "vision_model.encoder.layers.K" (hidden
 * state K + 1), "visual_projection" (get_image_features); OpenAI "visual.ln_pre",
 * "visual.transformer.resblocks.K", "visual.proj". Returns the hidden-state index (-1 for
 * the projected output) or -2 for a name the model does not have; list (may be NULL) gets
 * the valid names, comma-separated (truncated with "..."). */
int64_t rdml_clip_layer_index(const rdml_clip *m, const char *name);
void rdml_clip_layer_names(const rdml_clip *m, char *list, size_t len);
const char *rdml_clip_layer_name(const rdml_clip *m, int64_t hidden, char *buf, size_t len);

/* Per-phase wall-clock profile of rdml_clip_forward, for benches (bench/embed): after
 * rdml_clip_forward_profile(acc), acc an array of RDML_CLIP_NPHASE doubles, every forward adds
 * each phase's seconds to acc[phase] until rdml_clip_forward_profile(NULL). Process-wide and
 * not thread-safe; off by default (then no timer is read). */
enum {
    RDML_CLIP_PH_PATCH = 0, /* im2col, patch GEMM, class + position embeddings, pre-LN */
    RDML_CLIP_PH_LN,        /* layer_norm1 and layer_norm2 */
    RDML_CLIP_PH_QKV,       /* q|k|v GEMM and bias */
    RDML_CLIP_PH_ATTN,      /* scores, softmax, weighted values */
    RDML_CLIP_PH_OUT,       /* out_proj GEMM and bias */
    RDML_CLIP_PH_FC1,       /* fc1 GEMM */
    RDML_CLIP_PH_ACT,       /* fc1 bias and activation */
    RDML_CLIP_PH_FC2,       /* fc2 GEMM and bias */
    RDML_CLIP_PH_HEAD,      /* post-LN, projection, pooling */
    RDML_CLIP_NPHASE
};
void rdml_clip_forward_profile(double *acc);
const char *rdml_clip_phase_name(int phase);

#ifdef __cplusplus
}
#endif
#endif
