/* The embedding stage's engine (rdml/embed.h): backend selection, per-image dispatch with
 * batching, the file backend (rows of an N x D .npy read row by row with pread, or of an
 * HDF5 dataset read row by row per rank with HDF5's serial driver, matched by image order or through a
 * .npy list of NSD ids), optional L2 normalisation, progress, and error agreement across
 * ranks. Every row depends on its image (or its id) only, so the result is the same for any
 * partition. Left out: the models themselves (gabor.c, pixels.c, clip.c) and the HDF5
 * output, which is the command's (src/experiment/embed.c). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hdf5.h>

#include "embed/embed_priv.h"
#include "rdml/h5.h"
#include "rdml/mpiutil.h"
#include "rdml/npy.h"
#include "rdml/zoo.h"

struct rdml_embedder {
    rdml_embed_params p;
    char *file, *dataset, *ids_path, *weights; /* owned copies of the params' strings */
    int64_t dims;
    char model[512], prep[512];
    rdml_clip *clip;
    /* file backend */
    int is_h5;
    rdml_npy npy;
    hid_t h5f, h5d; /* HDF5 features: opened per rank with the serial (sec2) driver */
    int64_t file_rows;
    int64_t *id_sorted, *id_row; /* ids ascending and their file rows (NULL: image order) */
    int64_t nids;
    /* torchvision backend: the network, the requested layers, their pooling and outputs */
    rdml_convnet *cnn;
    int64_t nout;
    int64_t *sel;             /* layer indices, forward order of the request */
    rdml_pool *pools;         /* resolved per output */
    rdml_projection *proj;    /* per output (project pooling) */
    rdml_embed_output *outs;  /* nout descriptions (one for the other backends) */
    rdml_embed_output out1;
    /* clip-vit with embed.layers: hidden-state index per output in sel, its pooling here */
    int *clip_mean;
    char (*names)[96];
};

static const char *const backend_names[] = {"gabor", "pixels", "file", "clip-vit", "torchvision"};

const char *rdml_embed_backend_name(rdml_embed_backend b) {
    return (int)b >= 0 && b <= RDML_EMBED_TORCHVISION ? backend_names[b] : "?";
}

int rdml_embed_backend_parse(rdml_ctx *ctx, const char *s, rdml_embed_backend *out) {
    for (int i = 0; i <= RDML_EMBED_TORCHVISION; i++)
        if (strcmp(s, backend_names[i]) == 0) {
            *out = (rdml_embed_backend)i;
            return RDML_OK;
        }
    return RDML_FAIL(ctx, RDML_ECONFIG, "[embed] backend = %s is not one of gabor, pixels, file, "
                     "clip-vit, torchvision", s);
}

void rdml_embed_defaults(rdml_embed_params *p) {
    memset(p, 0, sizeof *p);
    p->backend = RDML_EMBED_GABOR;
    p->batch = 32;
    p->size = 128;
    p->layer = -1;
}

int64_t rdml_embed_dims(const rdml_embedder *e) { return e->nout > 0 ? e->outs[0].dims : e->dims; }
int64_t rdml_embed_noutputs(const rdml_embedder *e) { return e->nout > 0 ? e->nout : 1; }
const rdml_embed_output *rdml_embed_get_output(const rdml_embedder *e, int64_t k) {
    if (e->nout > 0) return k >= 0 && k < e->nout ? &e->outs[k] : NULL;
    return k == 0 ? &e->out1 : NULL;
}
const char *rdml_embed_model(const rdml_embedder *e) { return e->model; }
const char *rdml_embed_preprocessing(const rdml_embedder *e) { return e->prep; }
void rdml_embed_block(const rdml_embedder *e, int64_t n, int rank, int nranks, int64_t *lo,
                      int64_t *hi) {
    if (e->p.backend != RDML_EMBED_CLIP && e->p.backend != RDML_EMBED_TORCHVISION) {
        rdml_part_block(n, rank, nranks, lo, hi);
        return;
    }
    int64_t B = e->p.batch, nb = (n + B - 1) / B, b0, b1;
    rdml_part_block(nb, rank, nranks, &b0, &b1);
    *lo = b0 * B < n ? b0 * B : n;
    *hi = b1 * B < n ? b1 * B : n;
}

int rdml_embed_normalized(const rdml_embedder *e) { return e->p.normalize; }
int64_t rdml_embed_order_rows(const rdml_embedder *e) {
    return e->p.backend == RDML_EMBED_FILE && !e->nids ? e->file_rows : -1;
}

void rdml_embed_destroy(rdml_embedder **pe) {
    if (!pe || !*pe) return;
    rdml_embedder *e = *pe;
    rdml_clip_free(&e->clip);
    rdml_convnet_free(&e->cnn);
    for (int64_t k = 0; e->proj && k < e->nout; k++) rdml_projection_free(&e->proj[k]);
    free(e->proj);
    free(e->sel);
    free(e->pools);
    free(e->outs);
    free(e->clip_mean);
    free(e->names);
    rdml_npy_close(&e->npy);
    if (e->h5d > 0) H5Dclose(e->h5d);
    if (e->h5f > 0) H5Fclose(e->h5f);
    free(e->id_sorted);
    free(e->id_row);
    free(e->file);
    free(e->dataset);
    free(e->ids_path);
    free(e->weights);
    free(e);
    *pe = NULL;
}

static int ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

typedef struct idrow { int64_t id, row; } idrow;
static int cmp_idrow(const void *a, const void *b) {
    const idrow *x = a, *y = b;
    return (x->id > y->id) - (x->id < y->id);
}

/* Open the features file and the id list (local to this rank except the HDF5 open). */
static int file_open(rdml_ctx *ctx, MPI_Comm comm, rdml_embedder *e) {
    int rc = RDML_OK;
    if (!e->file || !*e->file)
        rc = RDML_FAIL(ctx, RDML_ECONFIG, "[embed] backend = file needs embed.file (an N x D .npy "
                       "or an HDF5 file with embed.dataset)");
    RDML_TRY(rdml_agree(ctx, comm, rc));
    e->is_h5 = !ends_with(e->file, ".npy");
    if (e->is_h5) {
        if (!e->dataset || !*e->dataset)
            rc = RDML_FAIL(ctx, RDML_ECONFIG, "[embed] file = %s is not a .npy: embed.dataset must "
                           "name the N x D dataset inside it (e.g. /features)", e->file);
        RDML_TRY(rdml_agree(ctx, comm, rc));
        /* Independent reads with the serial driver: the rows a rank needs are scattered and
         * overlap other ranks' (id matching), which collective MPI-IO does not need to serve. */
        rdml_h5_quiet(); /* failures become our messages below, without HDF5-DIAG stacks */
        e->h5f = H5Fopen(e->file, H5F_ACC_RDONLY, H5P_DEFAULT);
        e->h5d = e->h5f > 0 ? H5Dopen2(e->h5f, e->dataset, H5P_DEFAULT) : -1;
        int nd = -1;
        hsize_t dims[8] = {0};
        if (e->h5d > 0) {
            hid_t sp = H5Dget_space(e->h5d);
            nd = sp >= 0 ? H5Sget_simple_extent_ndims(sp) : -1;
            if (nd >= 1 && nd <= 8) H5Sget_simple_extent_dims(sp, dims, NULL);
            if (sp >= 0) H5Sclose(sp);
        }
        H5Eclear2(H5E_DEFAULT);
        if (e->h5f <= 0)
            rc = RDML_FAIL(ctx, RDML_EIO, "[embed] file = %s cannot be opened as HDF5 (hint: a "
                           ".npy must end in .npy)", e->file);
        else if (e->h5d <= 0) {
            char have[1024];
            int nd_have = rdml_h5_list_datasets(e->file, have, sizeof have);
            rc = RDML_FAIL(ctx, RDML_EDATA, "[embed] file = %s has no dataset %s (%s%s; hint: "
                           "set embed.dataset to the N x D one, as a path from the root)",
                           e->file, e->dataset,
                           nd_have > 0 ? "its datasets: " : "it holds no datasets",
                           nd_have > 0 ? have : "");
        }
        else if (nd != 2)
            rc = RDML_FAIL(ctx, RDML_EFORMAT, "%s: dataset %s has %d dims; an N x D matrix "
                           "is needed", e->file, e->dataset, nd);
        RDML_TRY(rdml_agree(ctx, comm, rc));
        e->file_rows = dims[0];
        e->dims = dims[1];
    } else {
        rc = rdml_npy_open(ctx, e->file, 0, &e->npy);
        if (!rc && (e->npy.ndim != 2 || e->npy.dtype == RDML_DT_OBJ))
            rc = RDML_FAIL(ctx, RDML_EFORMAT, "%s: an N x D numeric array is needed, not %d-d "
                           "%s", e->file, e->npy.ndim, rdml_dtype_name(e->npy.dtype));
        if (!rc) {
            e->file_rows = e->npy.shape[0];
            e->dims = e->npy.shape[1];
        }
        RDML_TRY(rdml_agree(ctx, comm, rc));
    }
    if (e->dims < 1) rc = RDML_FAIL(ctx, RDML_EFORMAT, "%s: the features have 0 columns", e->file);
    if (!rc && e->ids_path && *e->ids_path) {
        rdml_npy f;
        rc = rdml_npy_open(ctx, e->ids_path, 0, &f);
        if (!rc) {
            int64_t n = f.ndim == 2 && f.shape[1] == 1 ? f.shape[0] : f.ndim == 1 ? f.shape[0] : -1;
            if (n < 0)
                rc = RDML_FAIL(ctx, RDML_EFORMAT, "%s: the id list must be a 1-D integer array",
                               e->ids_path);
            else if (n != e->file_rows)
                rc = RDML_FAIL(ctx, RDML_EDATA, "%s holds %lld ids but %s has %lld rows (hint: "
                               "embed.ids lists the NSD id of every row of embed.file)",
                               e->ids_path, (long long)n, e->file, (long long)e->file_rows);
            int64_t *ids = rc ? NULL : rdml_malloc(ctx, (size_t)(n + 1) * sizeof *ids, "ids");
            idrow *ir = rc ? NULL : rdml_malloc(ctx, (size_t)(n + 1) * sizeof *ir, "ids");
            if (!rc && (!ids || !ir)) rc = ctx->code;
            if (!rc) rc = rdml_npy_read_i64(ctx, &f, 0, n, NULL, 1, ids);
            if (!rc) {
                for (int64_t i = 0; i < n; i++) ir[i] = (idrow){ids[i], i};
                qsort(ir, (size_t)n, sizeof *ir, cmp_idrow);
                for (int64_t i = 1; i < n && !rc; i++)
                    if (ir[i].id == ir[i - 1].id)
                        rc = RDML_FAIL(ctx, RDML_EDATA, "%s: NSD id %lld appears twice (rows %lld "
                                       "and %lld)", e->ids_path, (long long)ir[i].id,
                                       (long long)ir[i - 1].row, (long long)ir[i].row);
            }
            if (!rc) {
                e->id_sorted = ids;
                e->id_row = rdml_malloc(ctx, (size_t)(n + 1) * sizeof *e->id_row, "ids");
                if (!e->id_row) rc = ctx->code;
                for (int64_t i = 0; i < n && !rc; i++) {
                    e->id_sorted[i] = ir[i].id;
                    e->id_row[i] = ir[i].row;
                }
                e->nids = n;
                ids = NULL;
            }
            free(ids);
            free(ir);
            rdml_npy_close(&f);
        }
    }
    snprintf(e->model, sizeof e->model, "features imported from %s%s%s (%lld x %lld)%s%s", e->file,
             e->is_h5 ? ":" : "", e->is_h5 ? e->dataset : "", (long long)e->file_rows,
             (long long)e->dims, e->nids ? ", rows matched by NSD id via " : ", rows in image order",
             e->nids ? e->ids_path : "");
    snprintf(e->prep, sizeof e->prep, "none (precomputed features)");
    return rdml_agree(ctx, comm, rc);
}

/* Not collective. clip-vit with embed.layers: the named modules (rdml_clip_layer_index), each
 * pooled cls (auto) or mean, all from one forward pass. */
static int clip_layers_open(rdml_ctx *ctx, rdml_embedder *e) {
    const rdml_embed_params *p = &e->p;
    const int64_t nl = p->nlayers;
    e->nout = nl;
    e->sel = rdml_calloc(ctx, (size_t)nl, sizeof *e->sel, "layers");
    e->clip_mean = rdml_calloc(ctx, (size_t)nl, sizeof *e->clip_mean, "layers");
    e->outs = rdml_calloc(ctx, (size_t)nl, sizeof *e->outs, "layers");
    e->names = rdml_calloc(ctx, (size_t)nl, sizeof *e->names, "layers");
    if (!e->sel || !e->clip_mean || !e->outs || !e->names) return ctx->code;
    if (p->npooling > 1 && p->npooling != nl)
        return RDML_FAIL(ctx, RDML_ECONFIG, "[embed] pooling lists %lld values for %lld layers "
                         "(hint: give one value for every layer, or one per embed.layers entry)",
                         (long long)p->npooling, (long long)nl);
    for (int64_t k = 0; k < nl; k++) {
        const int64_t h = rdml_clip_layer_index(e->clip, p->layers[k]);
        if (h < -1) {
            char list[4096];
            rdml_clip_layer_names(e->clip, list, sizeof list);
            return RDML_FAIL(ctx, RDML_ECONFIG, "[embed] layers: this CLIP ViT has no layer '%s' "
                             "(its layers: %s)", p->layers[k], list);
        }
        for (int64_t j = 0; j < k; j++)
            if (e->sel[j] == h) return RDML_FAIL(ctx, RDML_ECONFIG, "[embed] layers lists %s twice", p->layers[k]);
        const char *pool = p->npooling ? p->pooling[p->npooling > 1 ? k : 0] : "auto";
        if (strcmp(pool, "auto") != 0 && strcmp(pool, "cls") != 0 && strcmp(pool, "mean") != 0)
            return RDML_FAIL(ctx, RDML_ECONFIG, "[embed] pooling = %s does not apply to CLIP layer "
                             "%s (hint: cls or mean)", pool, p->layers[k]);
        e->sel[k] = h;
        e->clip_mean[k] = strcmp(pool, "mean") == 0;
        rdml_strlcpy(e->names[k], p->layers[k], sizeof e->names[k]);
        e->outs[k] = (rdml_embed_output){"clip-vit", e->names[k],
                                         h < 0 ? "projection" : e->clip_mean[k] ? "mean" : "cls",
                                         h < 0 ? rdml_clip_get_arch(e->clip)->layers + 1 : h,
                                         rdml_clip_dims(e->clip, h), rdml_clip_get_arch(e->clip)->layers + 2};
    }
    e->dims = e->outs[0].dims;
    return RDML_OK;
}

/* Collective. The torchvision network, its requested layers (default: the last module) and
 * their pooling; the random projections of `project` layers. */
static int torchvision_open(rdml_ctx *ctx, MPI_Comm comm, rdml_embedder *e) {
    const rdml_embed_params *p = &e->p;
    rdml_zoo_arch arch = RDML_ZOO_RESNET50;
    int rc = rdml_zoo_arch_parse(ctx, p->model ? p->model : "", &arch);
    if (!rc && (!e->weights || !*e->weights))
        rc = RDML_FAIL(ctx, RDML_ECONFIG, "[embed] backend = torchvision needs embed.weights (the "
                       "%s state dict as .safetensors or .pth; `rdmlearn models` says where to get "
                       "torchvision's)", rdml_zoo_arch_name(arch));
    if (!rc) rc = rdml_convnet_load(ctx, arch, e->weights, &e->cnn);
    rc = rdml_agree(ctx, comm, rc);
    if (rc) return rc;
    const int64_t nl = p->nlayers > 0 ? p->nlayers : 1;
    e->nout = nl;
    e->sel = rdml_calloc(ctx, (size_t)nl, sizeof *e->sel, "layers");
    e->pools = rdml_calloc(ctx, (size_t)nl, sizeof *e->pools, "layers");
    e->proj = rdml_calloc(ctx, (size_t)nl, sizeof *e->proj, "layers");
    e->outs = rdml_calloc(ctx, (size_t)nl, sizeof *e->outs, "layers");
    if (!e->sel || !e->pools || !e->proj || !e->outs) rc = ctx->code;
    if (!rc && p->npooling > 1 && p->npooling != nl)
        rc = RDML_FAIL(ctx, RDML_ECONFIG, "[embed] pooling lists %lld values for %lld layers (hint: "
                       "give one value for every layer, or one per embed.layers entry)",
                       (long long)p->npooling, (long long)nl);
    for (int64_t k = 0; k < nl && !rc; k++) {
        /* by default the last module: fc, or classifier.6 */
        const char *name = p->nlayers > 0 ? p->layers[k]
                           : arch == RDML_ZOO_ALEXNET || arch == RDML_ZOO_VGG16 ? "classifier.6" : "fc";
        e->sel[k] = rdml_convnet_find(e->cnn, name);
        if (e->sel[k] < 0) {
            char list[4096];
            rdml_convnet_layer_list(e->cnn, list, sizeof list);
            rc = RDML_FAIL(ctx, RDML_ECONFIG, "[embed] layers: %s has no layer '%s' (its layers, "
                           "as torchvision names the modules: %s)", rdml_zoo_arch_name(arch), name,
                           list);
            break;
        }
        for (int64_t j = 0; j < k && !rc; j++)
            if (e->sel[j] == e->sel[k])
                rc = RDML_FAIL(ctx, RDML_ECONFIG, "[embed] layers lists %s twice", name);
        const rdml_zoo_layer *L = rdml_convnet_layer(e->cnn, e->sel[k]);
        rdml_pool pool = RDML_POOL_AUTO;
        if (!rc && p->npooling > 0) rc = rdml_pool_parse(ctx, p->pooling[p->npooling > 1 ? k : 0], &pool);
        if (rc) break;
        pool = rdml_pool_resolve(pool, L);
        int64_t d = rdml_pool_dims(pool, L, p->dims);
        if (d < 1) {
            rc = RDML_FAIL(ctx, RDML_ECONFIG, "[embed] pooling = %s does not apply to %s layer %s "
                           "(hint: cls and mean are for ViT tokens; use gap, flatten or project)",
                           rdml_pool_name(pool), rdml_zoo_arch_name(arch), name);
            break;
        }
        if (pool == RDML_POOL_PROJECT)
            rc = rdml_projection_make(ctx, p->seed, L->name, L->c * L->h * L->w, p->dims, &e->proj[k]);
        e->pools[k] = pool;
        e->outs[k] = (rdml_embed_output){rdml_zoo_arch_name(arch), L->name, rdml_pool_name(pool),
                                         L->depth, d, rdml_convnet_nlayers(e->cnn)};
    }
    rc = rdml_agree(ctx, comm, rc);
    if (rc) return rc;
    e->dims = e->outs[0].dims;
    size_t o = (size_t)snprintf(e->model, sizeof e->model, "torchvision %s from %s; layers:",
                         rdml_zoo_arch_name(arch), e->weights);
    for (int64_t k = 0; k < nl && o < sizeof e->model; k++)
        o += (size_t)snprintf(e->model + o, sizeof e->model - o, " %s (%s, %lld)", e->outs[k].layer,
                              e->outs[k].pooling, (long long)e->outs[k].dims);
    snprintf(e->prep, sizeof e->prep, "%s", rdml_zoo_preprocessing(arch));
    return RDML_OK;
}

int rdml_embed_create(rdml_ctx *ctx, MPI_Comm comm, const rdml_embed_params *p,
                      rdml_embedder **out) {
    *out = NULL;
    rdml_embedder *e = calloc(1, sizeof *e);
    int rc = e ? RDML_OK : RDML_FAIL(ctx, RDML_ENOMEM, "out of memory");
    if (!rc) {
        e->p = *p;
        e->npy.fd = -1;
        e->file = p->file ? strdup(p->file) : NULL;
        e->dataset = p->dataset ? strdup(p->dataset) : NULL;
        e->ids_path = p->ids ? strdup(p->ids) : NULL;
        e->weights = p->weights ? strdup(p->weights) : NULL;
        e->p.file = e->file;
        e->p.dataset = e->dataset;
        e->p.ids = e->ids_path;
        e->p.weights = e->weights;
        if (p->batch < 1) rc = RDML_FAIL(ctx, RDML_ECONFIG, "[embed] batch = %lld must be >= 1", (long long)p->batch);
    }
    rc = rdml_agree(ctx, comm, rc);
    if (!rc) switch (p->backend) {
        case RDML_EMBED_GABOR:
            e->dims = RDML_GABOR_DIMS;
            snprintf(e->model, sizeof e->model, "Gabor energy: 4 scales (32, 16, 8, 4 cycles/image) "
                     "x 8 orientations x 4x4 grid, wavelength 4 px, sigma 2.24 px (docs/embed.md)");
            snprintf(e->prep, sizeof e->prep, "Pillow convert('L'); BILINEAR resize to 128, 64, 32, "
                     "16 px; /255; minus the image mean");
            break;
        case RDML_EMBED_PIXELS:
            if (p->size < 1 || p->size > 4096)
                rc = RDML_FAIL(ctx, RDML_ECONFIG, "[embed] size = %lld must be in 1..4096", (long long)p->size);
            e->dims = p->size * p->size;
            snprintf(e->model, sizeof e->model, "grayscale pixels %lld x %lld, row-major", (long long)p->size, (long long)p->size);
            snprintf(e->prep, sizeof e->prep, "Pillow convert('L'); BILINEAR resize to %lld x %lld "
                     "(aspect ignored); per-image min-max to [0, 1]", (long long)p->size, (long long)p->size);
            rc = rdml_agree(ctx, comm, rc);
            break;
        case RDML_EMBED_FILE:
            rc = file_open(ctx, comm, e);
            break;
        case RDML_EMBED_CLIP:
            if (!e->weights || !*e->weights)
                rc = RDML_FAIL(ctx, RDML_ECONFIG, "[embed] backend = clip-vit needs embed.weights "
                               "(a CLIP model.safetensors; see docs/embed.md for how to get one)");
            if (!rc) rc = rdml_clip_load(ctx, e->weights, p->heads, p->act, &e->clip);
            if (!rc && p->nlayers > 0) rc = clip_layers_open(ctx, e);
            if (!rc && p->layer > rdml_clip_get_arch(e->clip)->layers)
                rc = RDML_FAIL(ctx, RDML_ECONFIG, "[embed] layer = %lld but %s has %lld layers",
                               (long long)p->layer, e->weights, (long long)rdml_clip_get_arch(e->clip)->layers);
            rc = rdml_agree(ctx, comm, rc);
            if (!rc) {
                const rdml_clip_arch *a = rdml_clip_get_arch(e->clip);
                if (!e->nout) e->dims = rdml_clip_dims(e->clip, p->layer);
                char out_desc[128];
                if (p->layer < 0) snprintf(out_desc, sizeof out_desc, "get_image_features (projection %lld)", (long long)a->proj);
                else snprintf(out_desc, sizeof out_desc, "%s of hidden state %lld", p->pool_mean ? "mean patch token" : "CLS token", (long long)p->layer);
                if (e->nout) snprintf(out_desc, sizeof out_desc, "%lld layers (embed.layers)", (long long)e->nout);
                snprintf(e->model, sizeof e->model, "CLIP ViT from %s (%s naming): image %lld, patch "
                         "%lld, width %lld, %lld layers, %lld heads, MLP %lld, %s, eps %g; output %s",
                         e->weights, a->openai_naming ? "OpenAI" : "Hugging Face", (long long)a->image,
                         (long long)a->patch, (long long)a->width, (long long)a->layers,
                         (long long)a->heads, (long long)a->mlp,
                         a->act == RDML_ACT_GELU ? "gelu" : "quick_gelu", a->eps, out_desc);
                snprintf(e->prep, sizeof e->prep, "CLIPImageProcessor: RGB; Pillow BICUBIC "
                         "(antialiased) resize of the short side to %lld; centre crop %lld; /255; "
                         "CLIP mean/std per channel", (long long)a->image, (long long)a->image);
            }
            break;
        case RDML_EMBED_TORCHVISION:
            rc = torchvision_open(ctx, comm, e);
            break;
        default:
            rc = RDML_FAIL(ctx, RDML_EINTERNAL, "unknown embedding backend %d", (int)p->backend);
        }
    rc = rdml_agree(ctx, comm, rc);
    if (!rc && e->nout == 0) e->out1 = (rdml_embed_output){"", "", "", -1, e->dims, 0};
    if (!rc && p->normalize && strlen(e->prep) + 40 < sizeof e->prep)
        strcat(e->prep, "; rows L2-normalised");
    if (rc) {
        rdml_embed_destroy(&e);
        return rc;
    }
    *out = e;
    return RDML_OK;
}

static int64_t find_id(const rdml_embedder *e, int64_t id) {
    int64_t lo = 0, hi = e->nids;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (e->id_sorted[mid] < id) lo = mid + 1;
        else hi = mid;
    }
    return lo < e->nids && e->id_sorted[lo] == id ? e->id_row[lo] : -1;
}

static int file_compute(rdml_ctx *ctx, MPI_Comm comm, rdml_embedder *e, int64_t n,
                        const rdml_embed_item *items, float *out) {
    int64_t *rows = rdml_malloc(ctx, (size_t)(n + 1) * sizeof *rows, "file rows");
    int rc = rows ? RDML_OK : ctx->code;
    int64_t lo = INT64_MAX, hi = -1;
    for (int64_t i = 0; i < n && !rc; i++) {
        int64_t r = e->nids ? find_id(e, items[i].nsd_id) : items[i].row;
        if (r < 0)
            rc = RDML_FAIL(ctx, RDML_EDATA, "%s has no row for NSD id %lld (image %s) (hint: the "
                           "id list %s must cover every image used)", e->file,
                           (long long)items[i].nsd_id, items[i].path ? items[i].path : "?", e->ids_path);
        else if (r >= e->file_rows)
            rc = RDML_FAIL(ctx, RDML_EDATA, "%s has %lld rows but image row %lld is needed "
                           "(hint: rows are matched by image order; set embed.ids to match by NSD id)",
                           e->file, (long long)e->file_rows, (long long)r);
        else {
            rows[i] = r;
            lo = r < lo ? r : lo;
            hi = r > hi ? r : hi;
        }
    }
    rc = rdml_agree(ctx, comm, rc);
    if (!rc && !e->is_h5) {
        for (int64_t i = 0; i < n && !rc; i++)
            rc = rdml_npy_read_f32(ctx, &e->npy, rows[i], rows[i] + 1, NULL, e->dims, out + i * e->dims);
        rc = rdml_agree(ctx, comm, rc);
    } else if (!rc) {
        for (int64_t i = 0; i < n && !rc; i++) {
            hid_t fsp = H5Dget_space(e->h5d);
            hsize_t start[2] = {(hsize_t)rows[i], 0}, count[2] = {1, (hsize_t)e->dims};
            hid_t msp = H5Screate_simple(2, count, NULL);
            herr_t st = fsp >= 0 && msp >= 0 ? H5Sselect_hyperslab(fsp, H5S_SELECT_SET, start, NULL, count, NULL) : -1;
            if (st >= 0) st = H5Dread(e->h5d, H5T_NATIVE_FLOAT, msp, fsp, H5P_DEFAULT, out + i * e->dims);
            if (fsp >= 0) H5Sclose(fsp);
            if (msp >= 0) H5Sclose(msp);
            if (st < 0) {
                H5Eclear2(H5E_DEFAULT);
                rc = RDML_FAIL(ctx, RDML_EIO, "%s: cannot read row %lld of dataset %s", e->file,
                               (long long)rows[i], e->dataset);
            }
        }
        rc = rdml_agree(ctx, comm, rc);
    }
    free(rows);
    return rc;
}

static void progress(rdml_ctx *ctx, rdml_progress *pg, int64_t base, int64_t done) {
    if (pg && ctx->rank == 0) rdml_progress_update(pg, base + done * ctx->nranks);
}

/* Collective. The images of my block in batches of embed.batch, every rank in step: a rank
 * with fewer batches runs empty rounds, so each round ends at a boundary where the ranks agree
 * on errors and on a stop request (rdml_stop_agree). CLIP also checks a stop between layers
 * (a local stop, agreed at the next boundary). */
/* Where a torchvision forward pass puts each requested layer: pooled into its output rows. */
typedef struct tv_sink {
    rdml_ctx *ctx;
    rdml_embedder *e;
    float **outs;
    int64_t row0;
} tv_sink;

static int tv_emit(void *arg, int64_t k, int64_t B, const rdml_zoo_layer *L, const float *x) {
    tv_sink *s = arg;
    const rdml_embed_output *o = &s->e->outs[k];
    return rdml_zoo_pool(s->ctx, s->e->pools[k], L, B, x, &s->e->proj[k], o->dims,
                         s->outs[k] + s->row0 * o->dims);
}

static int image_compute(rdml_ctx *ctx, MPI_Comm comm, rdml_embedder *e, int64_t n,
                         const rdml_embed_item *items, float **outs, rdml_progress *pg,
                         int64_t base) {
    const rdml_embed_params *p = &e->p;
    const int clip = p->backend == RDML_EMBED_CLIP, tv = p->backend == RDML_EMBED_TORCHVISION;
    const int64_t S = clip ? rdml_clip_get_arch(e->clip)->image : tv ? RDML_ZOO_IMAGE : 0;
    const int64_t B = p->batch;
    int64_t mine = (n + B - 1) / B, rounds = 0;
    MPI_Allreduce(&mine, &rounds, 1, MPI_INT64_T, MPI_MAX, comm);
    float *px = NULL, *out = outs[0];
    int rc = RDML_OK;
    if (clip || tv) {
        int64_t bb = B < n ? B : n;
        px = rdml_malloc(ctx, (size_t)((bb ? bb : 1) * 3 * S * S) * sizeof *px, "input batch");
        if (!px) rc = ctx->code;
    }
    rc = rdml_agree(ctx, comm, rc);
    for (int64_t r = 0; r < rounds && !rc; r++) {
        if (r > 0) {
            rc = rdml_stop_agree(ctx, comm, rc, "after %lld of %lld embedding batches",
                                 (long long)r, (long long)rounds);
            if (rc) break;
        }
        const int64_t b0 = r * B, nb = b0 < n ? (n - b0 < B ? n - b0 : B) : 0;
        for (int64_t i = 0; i < nb && !rc; i++) {
            rdml_image im = {0};
            rc = rdml_png_read(ctx, items[b0 + i].path, clip || tv ? 3 : 1, &im);
            if (!rc && clip) rc = rdml_clip_preprocess(ctx, e->clip, &im, px + i * 3 * S * S);
            else if (!rc && tv) rc = rdml_zoo_preprocess(ctx, rdml_convnet_arch(e->cnn), &im, px + i * 3 * S * S);
            else if (!rc && p->backend == RDML_EMBED_GABOR) rc = rdml_embed_gabor(ctx, &im, out + (b0 + i) * e->dims);
            else if (!rc) rc = rdml_embed_pixels(ctx, &im, p->size, out + (b0 + i) * e->dims);
            rdml_image_free(&im);
        }
        if (!rc && clip && nb && !e->nout)
            rc = rdml_clip_forward(ctx, e->clip, nb, px, p->layer, p->pool_mean, out + b0 * e->dims);
        if (!rc && clip && nb && e->nout) {
            float **o = rdml_calloc(ctx, (size_t)e->nout, sizeof *o, "outputs");
            if (!o) rc = ctx->code;
            for (int64_t k = 0; !rc && k < e->nout; k++) o[k] = outs[k] + b0 * e->outs[k].dims;
            if (!rc) rc = rdml_clip_forward_multi(ctx, e->clip, nb, px, e->nout, e->sel,
                                                  e->clip_mean, o);
            free(o);
        }
        if (!rc && tv && nb) {
            tv_sink sink = {ctx, e, outs, b0};
            rc = rdml_convnet_forward(ctx, e->cnn, nb, px, e->nout, e->sel, tv_emit, &sink);
        }
        if (!rc && nb) progress(ctx, pg, base, b0 + nb);
    }
    free(px);
    return rc;
}

int rdml_embed_compute_all(rdml_ctx *ctx, MPI_Comm comm, rdml_embedder *e, int64_t n,
                           const rdml_embed_item *items, float **outs, rdml_progress *pg,
                           int64_t progress_base) {
    int rc;
    if (e->p.backend == RDML_EMBED_FILE) {
        rc = file_compute(ctx, comm, e, n, items, outs[0]);
        progress(ctx, pg, progress_base, n);
    } else {
        rc = image_compute(ctx, comm, e, n, items, outs, pg, progress_base);
    }
    for (int64_t k = 0; !rc && e->p.normalize && k < rdml_embed_noutputs(e); k++) {
        const int64_t D = rdml_embed_get_output(e, k)->dims;
        for (int64_t i = 0; i < n; i++) {
            float *r = outs[k] + i * D;
            double s = 0;
            for (int64_t j = 0; j < D; j++) s += (double)r[j] * r[j];
            if (s > 0) {
                float inv = (float)(1.0 / sqrt(s));
                for (int64_t j = 0; j < D; j++) r[j] *= inv;
            }
        }
    }
    return rdml_agree(ctx, comm, rc);
}

int rdml_embed_compute(rdml_ctx *ctx, MPI_Comm comm, rdml_embedder *e, int64_t n,
                       const rdml_embed_item *items, float *out, rdml_progress *pg,
                       int64_t progress_base) {
    if (rdml_embed_noutputs(e) != 1)
        return RDML_FAIL(ctx, RDML_EINTERNAL, "rdml_embed_compute on an embedder with %lld outputs "
                         "(use rdml_embed_compute_all)", (long long)rdml_embed_noutputs(e));
    return rdml_embed_compute_all(ctx, comm, e, n, items, &out, pg, progress_base);
}
