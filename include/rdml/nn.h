/* rdml/nn.h — neural pair models: layer kernels (forward/backward pairs over flat float
 * arrays), Adam/SGD, PyTorch's default initialisation, and the pair network that serves the
 * paper's siamese network and its concatenated-embedding MLP.
 *
 * Example:
 *
 *   // Train the paper's siamese network for one epoch on P pairs ij (P x 2 rows of E, N x D)
 *   // with targets y, in batches of B, then predict: pred (P values).
 *   int siamese_epoch(rdml_ctx *ctx, const float *E, int64_t D, int64_t P, const int64_t *ij,
 *                     const float *y, int64_t B, uint64_t seed, float *pred) {
 *       rdml_pairnet_params np;
 *       rdml_pairnet_defaults(&np);                      // siamese D-512-256 / 512-128-1
 *       np.in_dim = D;
 *       rdml_pairnet *net = NULL;
 *       RDML_TRY(rdml_pairnet_create(ctx, &np, seed, 0, &net));  // PyTorch default init
 *       rdml_optim opt;
 *       rdml_optim_defaults(&opt);                       // Adam, lr 0.01
 *       int rc = RDML_OK;
 *       for (int64_t b = 0; b * B < P && !rc; b++) {     // a batch: pairs [b B, b B + B)
 *           int64_t nb = P - b * B < B ? P - b * B : B;
 *           double loss;
 *           rc = rdml_pairnet_step(ctx, net, &opt, E, nb, ij + 2 * b * B, y + b * B, seed,
 *                                  (uint64_t)b, &loss);  // fwd + bwd + update; key b: dropout
 *       }
 *       if (!rc) rc = rdml_pairnet_predict(ctx, net, E, P, ij, pred);  // eval mode (no dropout)
 *       rdml_pairnet_free(&net);
 *       return rc;
 *   }
 *
 * Kernels follow llm.c: outputs first, then inputs, then sizes; backward ACCUMULATES (+=)
 * into its gradient outputs and zeroing is the caller's job; all matrices are row-major and
 * weights have PyTorch's layout (out x in). Nothing here is collective or uses MPI; all
 * randomness (init, dropout) is rdml_rng keyed by (seed, stream, index), never by rank.
 * Dimension letters: B batch rows, C in features, OC out features, N images, D embedding.
 */
#ifndef RDML_NN_H
#define RDML_NN_H

#include <mpi.h>
#include <stdint.h>

#include "rdml/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- layer kernels ---- */

/* out (B, OC) = inp (B, C) w^T + b; w (OC, C), b (OC) or NULL. */
void rdml_nn_linear_forward(float *out, const float *inp, const float *w, const float *b,
                            int64_t B, int64_t C, int64_t OC);
/* dinp (B, C) += dout w; dw (OC, C) += dout^T inp; db (OC) += column sums of dout. Any of
 * dinp, dw, db may be NULL (not needed). */
void rdml_nn_linear_backward(float *dinp, float *dw, float *db, const float *dout,
                             const float *inp, const float *w, int64_t B, int64_t C, int64_t OC);

/* Element-wise over n values; in place (out == inp) is allowed for the forwards. The
 * backwards take the forward's OUTPUT (relu: out > 0; sigmoid: s (1 - s)). */
void rdml_nn_relu_forward(float *out, const float *inp, int64_t n);
void rdml_nn_relu_backward(float *dinp, const float *dout, const float *out, int64_t n);
void rdml_nn_sigmoid_forward(float *out, const float *inp, int64_t n);
void rdml_nn_sigmoid_backward(float *dinp, const float *dout, const float *out, int64_t n);

/* Inverted dropout over B rows of C values: mask = keep / (1 - p) (0 or 1/(1-p)), out = inp *
 * mask. Row r's C mask values are draws of rdml_rng stream substream(RDML_STREAM_DROPOUT,
 * row_key[r]) under seed, so a row's mask depends only on (seed, its key): give keys built
 * from (fold, epoch, batch, image or pair index) and results do not depend on the ranks.
 * p = 0 writes mask = 1. mask (B, C) is kept for the backward. */
void rdml_nn_dropout_forward(float *out, float *mask, const float *inp, int64_t B, int64_t C,
                             double p, uint64_t seed, const uint64_t *row_key);
void rdml_nn_dropout_backward(float *dinp, const float *dout, const float *mask, int64_t n);
/* The kept value 1 / (1 - p) of a mask (1 for p <= 0). */
float rdml_nn_dropout_scale(double p);
/* ReLU then dropout in one pass, without storing the mask: out = relu(inp) * mask with the
 * masks of rdml_nn_dropout_forward (same seed and row keys); p <= 0 is the ReLU alone. In
 * place (out == inp) is allowed. The backward needs only this output: a unit passed the
 * gradient iff its output is > 0 (scale >= 1 keeps a positive ReLU output positive). */
void rdml_nn_relu_dropout_forward(float *out, const float *inp, int64_t B, int64_t C, double p,
                                  uint64_t seed, const uint64_t *row_key);
/* dinp = out > 0 ? dout * scale : 0 over n values, the backward of relu_dropout_forward
 * (scale = rdml_nn_dropout_scale(p)) and, with scale 1, of a plain ReLU. WRITES dinp (no
 * accumulation, so no zeroing pass is needed); dinp must not overlap dout or out. */
void rdml_nn_relu_dropout_backward(float *dinp, const float *dout, const float *out, float scale,
                                   int64_t n);

/* 2-D convolution, stride 1, no padding ("valid", Keras' default and PyTorch padding=0):
 * inp (B, C, H, W) -> out (B, OC, H-K+1, W-K+1); w (OC, C, K, K), b (OC). Computed as im2col
 * + SGEMM per image; `col` is scratch of C*K*K*(H-K+1)*(W-K+1) floats. */
void rdml_nn_conv2d_forward(float *out, float *col, const float *inp, const float *w,
                            const float *b, int64_t B, int64_t C, int64_t H, int64_t W,
                            int64_t OC, int64_t K);
/* dinp (may be NULL) += ..., dw += ..., db += ...; col: scratch as above. */
void rdml_nn_conv2d_backward(float *dinp, float *dw, float *db, float *col, const float *dout,
                             const float *inp, const float *w, int64_t B, int64_t C, int64_t H,
                             int64_t W, int64_t OC, int64_t K);
/* The im2col of conv2d_forward on one (C, H, W) image: col (C*K*K, OH*OW), row (c, ki, kj),
 * column (y, x) = inp[c][y+ki][x+kj]; SGEMM w (OC, C*K*K) x col is the convolution. */
void rdml_nn_im2col(float *col, const float *inp, int64_t C, int64_t H, int64_t W, int64_t K);

/* 2 x 2 max-pool, stride 2, floor (PyTorch MaxPool2d(2), Keras MaxPooling2D): (B, C, H, W)
 * -> (B, C, H/2, W/2). The backward routes each gradient to the window's first maximum. */
void rdml_nn_maxpool2_forward(float *out, const float *inp, int64_t B, int64_t C, int64_t H,
                              int64_t W);
void rdml_nn_maxpool2_backward(float *dinp, const float *dout, const float *inp, int64_t B,
                               int64_t C, int64_t H, int64_t W);
/* Bias, ReLU then 2 x 2 max-pool in one pass (the CNN's): out (B, C, H/2, W/2) = max(0,
 * window max of inp + b[c]) (b (C) or NULL); arg (same shape) keeps the window's first
 * maximum (0..3 row-major in the window), which is all the backward needs: dinp += dout at
 * that position where out > 0. Same values and gradients as adding b, relu_forward,
 * maxpool2_forward and their backwards (the bias gradient is the sum of dinp per channel). */
void rdml_nn_relu_maxpool2_forward(float *out, uint8_t *arg, const float *inp, const float *b,
                                   int64_t B, int64_t C, int64_t H, int64_t W);
void rdml_nn_relu_maxpool2_backward(float *dinp, const float *dout, const float *out,
                                    const uint8_t *arg, int64_t B, int64_t C, int64_t H, int64_t W);

/* Flatten of a contiguous (B, C, H, W) tensor to (B, C*H*W) is the identity on the buffer;
 * these copy (forward) and accumulate (backward) so that they can be composed like the rest. */
void rdml_nn_flatten_forward(float *out, const float *inp, int64_t n);
void rdml_nn_flatten_backward(float *dinp, const float *dout, int64_t n);

/* out (B, C1 + C2) = [a (B, C1) | b (B, C2)]; backward splits and accumulates. */
void rdml_nn_concat_forward(float *out, const float *a, const float *b, int64_t B, int64_t C1,
                            int64_t C2);
void rdml_nn_concat_backward(float *da, float *db, const float *dout, int64_t B, int64_t C1,
                             int64_t C2);

/* Losses over n predictions. MSE: mean (p - y)^2 (PyTorch's MSELoss). Pearson: -r(p, y),
 * the correlation loss of the paper's CNN (0 gradient when p or y is constant). The
 * backwards add d loss / d p, scaled by `scale` (the weight of the loss in a mix). */
double rdml_nn_mse_forward(const float *pred, const float *y, int64_t n);
void rdml_nn_mse_backward(float *dpred, const float *pred, const float *y, int64_t n, float scale);
double rdml_nn_pearson_forward(const float *pred, const float *y, int64_t n);
void rdml_nn_pearson_backward(float *dpred, const float *pred, const float *y, int64_t n,
                              float scale);

/* PyTorch's default init of nn.Linear / nn.Conv2d: kaiming_uniform(a = sqrt(5)) weights and
 * uniform(+-1/sqrt(fan_in)) bias, which both come to U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
 * Draws rdml_rng_uniform from *r in buffer order: w (n_w values) then b (n_b values). */
void rdml_nn_init_uniform(float *w, int64_t n_w, float *b, int64_t n_b, int64_t fan_in,
                          rdml_rng *r);

/* ---- optimisers ---- */
typedef enum rdml_optim_kind { RDML_OPTIM_ADAM = 0, RDML_OPTIM_SGD } rdml_optim_kind;

typedef struct rdml_optim {
    rdml_optim_kind kind;
    double lr;           /* learning rate (paper: Adam 0.01) */
    double beta1, beta2; /* Adam moment decays (PyTorch: 0.9, 0.999) */
    double eps;          /* Adam denominator term (PyTorch: 1e-8) */
    double momentum;     /* SGD momentum (PyTorch's, dampening 0); 0 = plain SGD */
    double weight_decay; /* L2 added to the gradient (PyTorch's weight_decay, not AdamW) */
    int64_t warmup;      /* linear learning-rate warm-up: step t uses lr * min(1, t / warmup)
                            (PyTorch: LinearLR(start_factor = 1 / warmup, total_iters =
                            warmup - 1)); 0 = none, PyTorch's plain optimisers */
} rdml_optim;

void rdml_optim_defaults(rdml_optim *o); /* Adam, lr 0.01, PyTorch's betas/eps, no warm-up */
/* One update of n parameters from their gradients, PyTorch's arithmetic (torch.optim.Adam /
 * SGD, single-tensor path). state: 2n floats (Adam m, v; SGD: the momentum buffer in the
 * first n), zeroed before step 1; t = 1, 2, ... the step number. */
void rdml_optim_update(const rdml_optim *o, float *param, const float *grad, float *state,
                       int64_t n, int64_t t);

/* ---- the pair network ----
 * f(a, b) = out( head( relu( Wa z(a) + Wb z(b) + b1 ) ) ) with z the tower applied to an
 * image's embedding. siamese: tower D-512-256 (ReLU after each layer, dropout after all but
 * the last), head 512-128-1. mlp: no tower (z = e), head 2D -> widths -> 1, ReLU, dropout
 * after each hidden layer. The head's first layer on [z_a ; z_b] is split into Wa z_a + Wb z_b
 * (its PyTorch weight (H1, 2Z) is [Wa | Wb]). */
enum { RDML_PAIRNET_MAXLAYERS = 8 };

typedef enum rdml_pairnet_mode {
    RDML_PAIRNET_DECOMPOSED = 0, /* tower and Wa z, Wb z once per distinct image in a batch */
    RDML_PAIRNET_PERPAIR         /* tower per pair side, as PyTorch batching does */
} rdml_pairnet_mode;

typedef struct rdml_pairnet_params {
    int64_t in_dim;                        /* D, embedding width */
    int ntower;                            /* tower layers (siamese 2, mlp 0) */
    int64_t tower[RDML_PAIRNET_MAXLAYERS]; /* their widths (siamese 512, 256) */
    int nhead;                             /* hidden head layers before the 1-unit output, >= 1 */
    int64_t head[RDML_PAIRNET_MAXLAYERS];  /* their widths (siamese 128; mlp 512, ...) */
    double tower_dropout;                  /* after each tower layer but the last (siamese 0.5) */
    double head_dropout;                   /* after each hidden head layer (mlp) */
    int sigmoid_out;                       /* output 2 * sigmoid(x) instead of x (RDM in [0, 2]) */
    double pearson_mix;                    /* loss = mix * (-r) + (1 - mix) * MSE; 0 = MSE */
    rdml_pairnet_mode mode;
} rdml_pairnet_params;

/* Siamese defaults: tower 512,256, dropout 0.5, head 128, linear output, MSE, decomposed. */
void rdml_pairnet_defaults(rdml_pairnet_params *p);
/* The paper's MLP: no tower, head 512 (then `extra` more layers, each half the previous),
 * dropout 0, linear output. */
void rdml_pairnet_mlp_defaults(rdml_pairnet_params *p, int extra);
/* Readable error for impossible sizes (names the field and value). */
int rdml_pairnet_check(rdml_ctx *ctx, const rdml_pairnet_params *p);

typedef struct rdml_pairnet rdml_pairnet;

/* Allocate the network and initialise it as PyTorch would, from rdml_rng (seed,
 * substream(RDML_STREAM_INIT, init_key)). */
int rdml_pairnet_create(rdml_ctx *ctx, const rdml_pairnet_params *p, uint64_t seed,
                        uint64_t init_key, rdml_pairnet **out);
void rdml_pairnet_free(rdml_pairnet **net);
/* The contiguous parameter buffer, in PyTorch's parameters() order: per tower layer W (out,
 * in), b; head first layer W1 (H1, 2Z), b1; each further head layer W, b; output w (1, H), b.
 * Writable: load or export weights. */
float *rdml_pairnet_params_buf(rdml_pairnet *net, int64_t *n);
const float *rdml_pairnet_grads_buf(const rdml_pairnet *net);
/* Set the output unit's bias so that a network whose hidden output is 0 predicts `value`
 * (logit(value / 2) with the 2 * sigmoid output): start training at the targets' mean. */
void rdml_pairnet_set_output_bias(rdml_pairnet *net, double value);

/* One training step on B pairs: forward (train mode: dropout on), loss, backward, optimiser
 * update. E: N x D embeddings (row-major; only the rows named in ij are read); ij: B x 2
 * image rows; y: B targets. key: identifies the batch for the dropout masks (e.g. built from
 * fold, epoch, batch); drop_seed the run seed. *loss: the batch loss before the update. A
 * non-finite loss, or one beyond float range (> 3e38), is RDML_EDATA ("diverged") and leaves
 * the parameters unchanged. Not collective. */
int rdml_pairnet_step(rdml_ctx *ctx, rdml_pairnet *net, const rdml_optim *opt, const float *E,
                      int64_t B, const int64_t *ij, const float *y, uint64_t drop_seed,
                      uint64_t key, double *loss);
/* rdml_pairnet_step with the gradient computed as the sum of `shards` shard gradients added in
 * shard order (shard k: the tower on the k-th of `shards` equal slices of the batch's distinct
 * images, the head on the k-th slice of its pairs; shards <= 1: one pass, rdml_pairnet_step's
 * arithmetic). With comm of g > 1 ranks (NULL / MPI_COMM_NULL / 1 rank: serial) shard k is
 * computed by rank k g / shards and every rank adds all shards in the same order, so the
 * parameters after the step are the same bit for bit for every g and equal to the serial
 * step with the same `shards` (with shards <= 1 every rank runs the whole batch). Collective
 * over comm (every rank passes the same batch); an error on one rank reaches all. At most
 * RDML_FIT_MAX_SHARDS shards. */
int rdml_pairnet_step_sharded(rdml_ctx *ctx, rdml_pairnet *net, const rdml_optim *opt, const float *E,
                              int64_t B, const int64_t *ij, const float *y, uint64_t drop_seed,
                              uint64_t key, int64_t shards, MPI_Comm comm, double *loss);
/* Forward only, dropout off, in chunks; pred: P values. */
int rdml_pairnet_predict(rdml_ctx *ctx, rdml_pairnet *net, const float *E, int64_t P,
                         const int64_t *ij, float *pred);
/* Health of a trained network on P pairs (eval mode, as rdml_pairnet_predict): which hidden
 * ReLU units are never active (> 0) on any of the pairs ("dead" for these inputs: no gradient
 * reaches their weights), and the spread of the predictions. A hidden layer whose units are all
 * dead makes the output the same constant for every pair. pred (P) receives the predictions
 * unless NULL. Not collective. */
typedef struct rdml_pairnet_health {
    int nlayers;                              /* hidden layers: the tower's, then the head's */
    int64_t width[2 * RDML_PAIRNET_MAXLAYERS]; /* units of each */
    int64_t dead[2 * RDML_PAIRNET_MAXLAYERS];  /* of which never active on the pairs */
    int64_t units, dead_units;                /* over all hidden layers */
    int dead_layer;                           /* first layer with every unit dead (0-based), -1 */
    double pred_mean, pred_std;               /* of the P predictions (population std) */
} rdml_pairnet_health;
int rdml_pairnet_diagnose(rdml_ctx *ctx, rdml_pairnet *net, const float *E, int64_t P,
                         const int64_t *ij, float *pred, rdml_pairnet_health *h);

/* A fit has collapsed when its predictions on the training pairs are (nearly) constant: their
 * standard deviation is at most RDML_NN_COLLAPSE_SPREAD times the targets' (a healthy fit of
 * the synthetic RDMs spreads 0.15-0.75 times the targets'; a collapsed one exactly 0), or the
 * predictions are not finite. Such a model predicts about the training mean: R^2 ~ 0, Pearson
 * undefined. Not collective; any model (pair network, CNN). */
#define RDML_NN_COLLAPSE_SPREAD 0.01
int rdml_nn_collapsed(double pred_std, double target_std);

/* Forward + backward without the update (gradients accumulate into the grads buffer, which
 * this zeroes first); for gradient checks. dropout 0 when train is 0. */
int rdml_pairnet_grad(rdml_ctx *ctx, rdml_pairnet *net, const float *E, int64_t B,
                      const int64_t *ij, const float *y, int train, uint64_t drop_seed,
                      uint64_t key, double *loss);

/* Block-of-images batch order (docs/nn.md, "Block-of-images batches"; src/nn/batches.c). The distinct images of the
 * npairs pairs ij (npairs x 2 image rows, each in 0..nimg-1) are shuffled with *r and cut into
 * blocks of `block` images; a pair belongs to the unordered pair of its images' blocks; the
 * non-empty block pairs are visited in a shuffled order (also drawn from *r) and a batch is
 * the pairs of consecutive block pairs, closed as soon as it holds >= min_batch pairs (the
 * last may hold fewer). Inside a block pair, pairs keep ascending index. order (npairs):
 * indices into ij in batch order; starts (npairs + 1): batch b is order[starts[b] ..
 * starts[b + 1]); *nbatch batches. With decomposed training a batch of block pairs (A, B)
 * runs the tower on |A| + |B| images for up to |A| |B| pairs. Not collective. */
int rdml_nn_block_batches(rdml_ctx *ctx, int64_t npairs, const int64_t *ij, int64_t nimg,
                          int64_t block, int64_t min_batch, rdml_rng *r, int64_t *order,
                          int64_t *starts, int64_t *nbatch);

/* ---- the siamese CNN (the paper's first baseline) ----
 * Per branch on a (1, S, S) grayscale image: conv C1 3x3 + ReLU + maxpool 2, conv C2 3x3 +
 * ReLU + maxpool 2, flatten to F features; concat the two branches; Dense(1), linear or
 * 2 * sigmoid. The dense head is linear in [f_a ; f_b], so a step runs the branch ONCE per
 * distinct image of the batch (pair decomposition; the same function and gradient as running
 * both branches per pair, up to float summation order). */
typedef struct rdml_cnn_params {
    int64_t size;      /* S: input images are S x S (paper 128) */
    int64_t c1, c2;    /* conv channels (paper 32, 64) */
    int sigmoid_out;   /* 2 * sigmoid output */
    double pearson_mix;/* loss = mix * (-r) + (1 - mix) * MSE */
    int64_t max_bytes; /* workspace limit in bytes (train.max_memory_gb); 0 = none */
} rdml_cnn_params;

void rdml_cnn_defaults(rdml_cnn_params *p); /* 128, 32, 64, linear, MSE, no memory limit */
/* Workspace of a step: a batch whose pairs touch U distinct images needs
 * U * rdml_cnn_bytes_per_image(p) + rdml_cnn_bytes_fixed(p) bytes (kept between steps; a few
 * dozen bytes per pair come on top). 128 x 128, 32, 64: about 0.92 MB per image + 7 MB. */
int64_t rdml_cnn_bytes_per_image(const rdml_cnn_params *p);
int64_t rdml_cnn_bytes_fixed(const rdml_cnn_params *p);
/* Not collective. RDML_ENOMEM with the numbers and a hint when a batch touching U distinct
 * images would exceed p->max_bytes (> 0). */
int rdml_cnn_check_memory(rdml_ctx *ctx, const rdml_cnn_params *p, int64_t U);
typedef struct rdml_cnn rdml_cnn;
int rdml_cnn_create(rdml_ctx *ctx, const rdml_cnn_params *p, uint64_t seed, uint64_t init_key,
                    rdml_cnn **out);
void rdml_cnn_free(rdml_cnn **net);
/* Buffer order: conv1 w (C1,1,3,3), b; conv2 w (C2,C1,3,3), b; dense w (1, 2F), b. */
float *rdml_cnn_params_buf(rdml_cnn *net, int64_t *n);
/* imgs: N x S x S floats; ij, y: B pairs (any pair (i, i) and repeated images allowed).
 * Zeroes the gradients, forward, backward; with opt non-NULL also updates (t counts steps
 * inside). RDML_ENOMEM (the message names the sizes) when the batch's U distinct images need
 * more than p.max_bytes; RDML_EDATA for a negative image row or a non-finite loss. */
int rdml_cnn_step(rdml_ctx *ctx, rdml_cnn *net, const rdml_optim *opt, const float *imgs,
                  int64_t B, const int64_t *ij, const float *y, double *loss);
/* rdml_cnn_step, data-parallel (docs/nn.md, "A fit on several ranks"): the batch's distinct
 * images (ascending row) are cut into `shards` fixed contiguous shards; with comm of g > 1
 * ranks (NULL / MPI_COMM_NULL / 1 rank: serial) rank k g / shards runs shard k's towers,
 * forward and backward, and holds only their activations (the memory limit applies to them
 * per rank); the ranks exchange the per-image head scalars (w_a.f, w_b.f); every rank computes
 * every pair's output, the loss and the pairs' gradients alike; each shard's parameter
 * gradient is its own part, the parts are added as a fixed binary tree over the shards, and
 * every rank takes the same optimiser step. The parameters after the step are the same bit for
 * bit for every g and equal to the serial step with the same `shards`; shards <= 1 is
 * rdml_cnn_step's one pass (with g > 1 every rank runs all of it). Collective over comm
 * (every rank passes the same batch); an error on one rank reaches all. At most
 * RDML_FIT_MAX_SHARDS shards. */
int rdml_cnn_step_sharded(rdml_ctx *ctx, rdml_cnn *net, const rdml_optim *opt, const float *imgs,
                          int64_t B, const int64_t *ij, const float *y, int64_t shards, MPI_Comm comm,
                          double *loss);
/* pred: P values; the branch runs once per distinct image of ij, in chunks of at most 64
 * images (fewer under p.max_bytes). */
int rdml_cnn_predict(rdml_ctx *ctx, rdml_cnn *net, const float *imgs, int64_t P,
                     const int64_t *ij, float *pred);
/* rdml_cnn_predict split over comm (NULL / MPI_COMM_NULL / 1 rank: rdml_cnn_predict): the same
 * chunks of images, a contiguous run of them per rank, their head scalars exchanged; every
 * rank gets every prediction, equal bit for bit to rdml_cnn_predict's. Collective over comm;
 * an error on one rank reaches all. */
int rdml_cnn_predict_comm(rdml_ctx *ctx, rdml_cnn *net, const float *imgs, int64_t P,
                          const int64_t *ij, MPI_Comm comm, float *pred);
const float *rdml_cnn_grads_buf(const rdml_cnn *net);
/* As rdml_pairnet_set_output_bias. */
void rdml_cnn_set_output_bias(rdml_cnn *net, double value);

/* ---- fitting a pair model (src/nn/fit.c) ----
 * The training loop of a pair network or a siamese CNN on a fold's pairs: per epoch the
 * batches (shuffled pairs, or block-of-images batches), per batch one step (zero the
 * gradients, forward, backward, update: rdml_pairnet_step / rdml_cnn_step), then the epoch's
 * mean training loss and, when asked, the test loss; a non-finite loss stops the fit
 * (divergence) without an error. After training the test predictions and, when asked, the
 * predictions on the training pairs with the network's health (for the collapse check,
 * rdml_nn_collapsed). Deterministic: the batch order and the dropout masks are streams of
 * (seed, key), so two fits with the same inputs are equal bit for bit. Not collective, unless
 * opts.comm has more than one rank (a data-parallel fit: every rank of it calls, below). */
typedef struct rdml_fit_opts {
    int64_t epochs;
    int64_t batch;          /* pairs per batch; with blocks the least per batch */
    int blocks;             /* batches between blocks of block_images images
                             * (rdml_nn_block_batches), else shuffled pairs */
    int64_t block_images;
    double warmup_epochs;   /* linear lr warm-up over this many epochs' steps (sets
                             * opt.warmup once the first epoch's batches are known) */
    uint64_t seed, key;     /* batch order: rdml_rng_substream(RDML_STREAM_SHUFFLE, key) of
                             * seed; batch b of epoch e drops with substream(substream(key, e), b) */
    int64_t n_eval;         /* training pairs (the first n_eval) for the health check and the
                             * training predictions */
    int eval_train;         /* after training: train_r2, train_spread and the dead units */
    /* Data-parallel training of a pair network or a CNN (docs/nn.md, "A fit on several
     * ranks"): with comm NULL, MPI_COMM_NULL or of size 1 the fit is serial; with g > 1 ranks
     * every step's gradient is computed as `shards` shard gradients spread over the ranks and
     * added as a fixed tree over the shards on every rank (rdml_pairnet_step_sharded,
     * rdml_cnn_step_sharded), and every rank ends with the same network and results; a CNN's
     * predictions are split over the ranks too (rdml_cnn_predict_comm). shards = 0 or 1: one
     * pass (today's arithmetic; with g > 1 every rank then runs the whole fit). The results
     * depend on `shards`, not on g: a caller that may run a fit on 1 or on g ranks sets the
     * same shards (e.g. RDML_FIT_SHARDS) for both. Collective over comm when g > 1. */
    MPI_Comm comm;
    int64_t shards;
} rdml_fit_opts;

/* The shard count for data-parallel fits (up to 4 ranks share a step's work evenly). */
#define RDML_FIT_SHARDS 4
#define RDML_FIT_MAX_SHARDS 256

/* Why a fit stopped early (rdml_fit_result.stop_kind). */
enum { RDML_FIT_FINISHED = 0, RDML_FIT_DIVERGED_LOSS = 1, RDML_FIT_DIVERGED_PRED = 2 };

typedef struct rdml_fit_result {
    double train_r2, seconds, pairs_per_s;
    double train_spread, test_spread; /* std of the predictions / std of the targets */
    int64_t dead_units, units, dead_layer; /* pair network on the training pairs; -1: n/a */
    int64_t epochs_done, stop_epoch, stop_step; /* stop_step: the loss's step, or the test
                                                 * pair whose prediction was not finite */
    int stop_kind;
    double stop_value;
} rdml_fit_result;

/* Train net (or cnn: exactly one is non-NULL) with optimiser opt on the ntr training pairs
 * trij (targets ytr) of the n_images rows of E (embeddings, or the CNN's images), then
 * predict the nte test pairs teij into pred (nte). train_loss / test_loss (epochs values
 * each, may be NULL) get the per-epoch mean training loss and test MSE; with test_loss NULL
 * the test pairs are only predicted at the end (yte may then be NULL unless spreads are
 * wanted: test_spread needs yte). A divergence is not an error: res->stop_kind says so and
 * pred is left as it is. Errors: RDML_ENOMEM, and the step's own. */
int rdml_pairnet_fit(rdml_ctx *ctx, rdml_pairnet *net, rdml_cnn *cnn, const rdml_optim *opt,
                     const rdml_fit_opts *o, const float *E, int64_t n_images, int64_t ntr,
                     const int64_t *trij, const double *ytr, int64_t nte, const int64_t *teij,
                     const double *yte, double *pred, double *train_loss, double *test_loss,
                     rdml_fit_result *res);

#ifdef __cplusplus
}
#endif
#endif
