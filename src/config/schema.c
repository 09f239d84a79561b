/* The configuration schema: THE table of every section and key (type, default, range,
 * choices, help), the section list with one-line descriptions, and the few checks that need
 * more than the generic per-type rules (a LIST mixing "all" with other items, ROI class
 * names). Adding a key is one line in `schema[]` (keep keys grouped by section, in display
 * order); a new section also needs a line in `sections[]`. configs/defaults.ini and the
 * reference in docs/config.md are generated from this table (see docs/config.md). This file
 * holds data only: parsing and validation live in value.c and config.c, and ROI names are
 * checked against the dataset's mapping files by the dataset module, not here.
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config/config_internal.h"

/* Range shorthands for the table: NR = no range (min > max), GE(x) = at least x. */
#define NR 1, 0
#define GE(x) (x), INFINITY
#define RANGE(a, b) (a), (b)

static const rdml_cfg_key schema[] = {
    /* ---- [data] ---- */
    {"data", "root", RDML_CFG_PATH, "data/synth", NR, NULL,
     "Algonauts 2023 dataset root holding subjNN/ folders. Point it at the unpacked challenge "
     "data (the folder with subj01 ... subj08) or at a folder written by `rdmlearn synth`; a "
     "relative path is taken from the current directory."},
    {"data", "subjects", RDML_CFG_LIST, "all", RANGE(1, 99), "all",
     "which subjects to use: all, or subject numbers like 1,2. A number refers to its subjNN "
     "folder (1 = subj01); all means every subject folder found under root."},
    {"data", "rois", RDML_CFG_LIST, "all", NR, NULL,
     "the vertex selections to analyse, comma-separated; each is analysed on its own. A "
     "selection is all, an ROI name, a class like class:Faces, or a union of these joined "
     "with + (V1v+V1d+hV4). ROI names are those of the dataset's mapping files (V1v, V1d, "
     "V2v, V2d, V3v, V3d, hV4, EBA, FBA-1, OFA, FFA-1, OPA, PPA, RSC, OWFA, VWFA-1, early, "
     "ventral, ...) plus the paper's unions V1, V2, V3, FBA, FFA and VWFA; class:NAME takes "
     "every labelled vertex of a class, NAME one of Visual, Bodies, Faces, Places, Words, "
     "Streams. Within a selection each vertex is used once, left hemisphere first."},
    {"data", "images", RDML_CFG_INT, "0", GE(0), NULL,
     "keep the first N images of each subject; 0 means all images. Images are taken in file "
     "order (train-0001, train-0002, ...) as the paper's code does; a small N makes quick "
     "test runs."},
    {"data", "standardize", RDML_CFG_BOOL, "true", NR, NULL,
     "z-score each vertex over the images, as sklearn's StandardScaler does. Mean 0 and "
     "population standard deviation 1 per vertex, over the images kept by `images`; false "
     "uses the released values as they are."},

    /* ---- [synth] ---- */
    {"synth", "subjects", RDML_CFG_INT, "2", RANGE(1, 8), NULL,
     "number of synthetic subjects to write, subj01 upwards. The release has 8."},
    {"synth", "images", RDML_CFG_INT, "600", RANGE(10, 9999), NULL,
     "training images of the first synthetic subject. The release has 9841 for subject 1; "
     "with vary = true later subjects get fewer. At most 9999: image file names carry a "
     "4-digit row number."},
    {"synth", "test_images", RDML_CFG_INT, "20", RANGE(0, 1000), NULL,
     "test images per subject, written without fMRI as in the release. The release has 159 "
     "to 395."},
    {"synth", "image_size", RDML_CFG_INT, "96", RANGE(16, 1024), NULL,
     "side of the square RGB PNG images in pixels. The release has 425; small images keep "
     "synthetic runs fast."},
    {"synth", "lh_vertices", RDML_CFG_INT, "1500", RANGE(50, 200000), NULL,
     "left-hemisphere vertices of the first synthetic subject. The release has 19004."},
    {"synth", "rh_vertices", RDML_CFG_INT, "1600", RANGE(50, 200000), NULL,
     "right-hemisphere vertices of the first synthetic subject. The release has 20544."},
    {"synth", "vary", RDML_CFG_BOOL, "true", NR, NULL,
     "later subjects get fewer images and vertices, as in the release. There subjects 3, 4, "
     "6 and 8 have fewer images and subjects 6 and 8 fewer vertices; varying sizes keep code "
     "from assuming equal ones. false gives every subject the sizes of the first."},
    {"synth", "shared_fraction", RDML_CFG_REAL, "0.3", RANGE(0, 1), NULL,
     "share of NSD image ids common to all subjects. A shared id is the same picture in "
     "every subject, as the ~1000 shared images of the release are."},
    {"synth", "color_fraction", RDML_CFG_REAL, "0.25", RANGE(0, 1), NULL,
     "share of images dominated by pure red, green or blue. Such an image has at least 70% "
     "of its pixels nearest to one pure colour, which feeds the paper's colour pair sets."},
    {"synth", "noise", RDML_CFG_REAL, "1.0", RANGE(0, 100), NULL,
     "noise std relative to the signal std. 0 gives noiseless responses; larger values lower "
     "what any model can reach."},
    {"synth", "fsaverage", RDML_CFG_BOOL, "false", NR, NULL,
     "also write the 163842-vertex fsaverage-space masks. They are only needed for plots and "
     "are large; the challenge-space masks are always written."},

    /* ---- [rdm] ---- */
    {"rdm", "metric", RDML_CFG_CHOICE, "correlation", NR,
     "correlation|euclidean|cosine|sqeuclidean|spearman",
     "dissimilarity between two images' vertex vectors, as scipy's pdist names it. "
     "correlation is 1 - Pearson r (the paper's); euclidean the paper's alternative; cosine "
     "1 - cosine similarity; sqeuclidean the squared distance; spearman 1 - Spearman rho "
     "(each image's vector rank-transformed, then correlation)."},
    {"rdm", "arithmetic", RDML_CFG_CHOICE, "float32", NR, "float32|int16",
     "the Gram matrix's arithmetic. float32 is float32 BLAS with exact accumulation (r within "
     "~2e-7 of float64). int16 rounds each prepared image vector to 13-bit integers and sums "
     "their products exactly: about twice as fast on a CPU with AVX-512 VNNI, half the "
     "memory, the same bits on any number of ranks and threads, r within ~1e-5 of float64 "
     "(rms ~3e-6 at 20,000 vertices; more for few vertices, docs/rdm.md). correlation, "
     "cosine and spearman only, on the automatic 1 x P grid."},
    {"rdm", "zero_variance", RDML_CFG_CHOICE, "error", NR, "error|one",
     "an image whose selected vertices all have one value has no correlation with anything. "
     "error stops with its name; one sets its dissimilarity to every other image to 1 "
     "(r taken as 0) and says so in the log and the results file."},
    {"rdm", "threshold", RDML_CFG_STRING, "auto", NR, NULL,
     "dissimilarity above which a pair is labelled dissimilar. auto is the paper's rule: 1 "
     "(negative r) for correlation, spearman and cosine, the median of the off-diagonal "
     "values for euclidean and sqeuclidean; or a number."},
    {"rdm", "hist_bins", RDML_CFG_INT, "50", RANGE(1, 100000), NULL,
     "bins of the stored histogram of each RDM's values (equal width from min to max)."},
    {"rdm", "extremes", RDML_CFG_INT, "10", RANGE(0, 100000), NULL,
     "how many most similar and most dissimilar image pairs each RDM summary stores (the "
     "paper's Figure 2)."},
    {"rdm", "compare", RDML_CFG_LIST, "spearman,pearson,kendall_tau_a", NR,
     "spearman|pearson|kendall_tau_a",
     "how RDMs are compared for inter-subject consistency and the noise ceiling, computed on "
     "the images all subjects share (matched by NSD id)."},
    {"rdm", "noise_ceiling", RDML_CFG_CHOICE, "mean", NR, "mean|rsatoolbox",
     "how the noise ceiling pools the subjects' RDMs into the group RDM. mean averages the raw "
     "dissimilarities for every method; rsatoolbox pools as rsatoolbox's pool_rdm does for the "
     "comparison method: z-scored RDMs averaged for pearson, rank-transformed RDMs (average "
     "ranks) averaged for spearman and kendall_tau_a (docs/rsa.md)."},
    {"rdm", "grid", RDML_CFG_STRING, "auto", NR, NULL,
     "MPI process grid over images x vertices, as ROWSxCOLS (e.g. 2x2), whose product is the "
     "number of ranks; auto picks a near-square grid with rows >= cols."},
    {"rdm", "block", RDML_CFG_INT, "0", RANGE(0, 65536), NULL,
     "block size of the block-cyclic distribution (ScaLAPACK) on a grid with more than one "
     "process row (rdm.grid); 0 picks one. The default 1 x P grid cuts the vertices into chunks "
     "fixed by their number alone, so the RDM has the same bits on any number of ranks."},
    {"rdm", "max_memory_gb", RDML_CFG_REAL, "0", RANGE(0, 1e6), NULL,
     "memory one rank may use, in GB; 0 takes the node's available memory shared among the "
     "ranks on it. A job that would need more stops before allocating, with the numbers."},

    /* ---- [embed] ---- */
    {"embed", "backend", RDML_CFG_CHOICE, "gabor", NR, "gabor|pixels|file|clip-vit|torchvision",
     "how image embeddings are computed. gabor is a fixed Gabor filter-bank energy model of "
     "early visual cortex (512-d, no weights needed); pixels the grayscale image resized and "
     "min-max normalised (the paper's CNN input); file imports precomputed features (embed.file); "
     "clip-vit runs the CLIP ViT image tower from embed.weights (the paper's features); "
     "torchvision runs the zoo network embed.model (AlexNet, VGG-16, ResNet-18/50, ViT-B/16, DINOv2) "
     "from embed.weights and stores every layer of embed.layers (`rdmlearn models` lists them)."},
    {"embed", "model", RDML_CFG_CHOICE, "resnet50", NR, "alexnet|vgg16|resnet18|resnet50|vit_b_16|dinov2",
     "torchvision backend: the architecture, as torchvision.models names it (dinov2: "
     "facebookresearch/dinov2's ViT-S/B/L/14, with or without registers, sized from the "
     "weights); embed.weights must be its state dict (every tensor is checked against it)."},
    {"embed", "layers", RDML_CFG_STRING, "", NR, NULL,
     "torchvision backend: the modules whose outputs are stored, comma-separated, as torchvision "
     "names them (e.g. features.10, classifier.4, layer3, layer4.1, avgpool, fc, "
     "encoder.layers.encoder_layer_6, blocks.8, norm), all from one forward "
     "pass; with several, each becomes the embedding NAME.LAYER (NAME: embed.name, else the "
     "backend). Empty means the last module (fc, classifier.6, heads or norm). `rdmlearn models` lists the "
     "valid names. clip-vit backend: the checkpoint's module names (vision_model.pre_layrnorm, "
     "vision_model.encoder.layers.K, visual_projection; OpenAI: visual.ln_pre, "
     "visual.transformer.resblocks.K, visual.proj) instead of embed.layer, pooled cls or mean."},
    {"embed", "dims", RDML_CFG_INT, "4096", RANGE(1, 1000000), NULL,
     "torchvision backend with pooling project: the width of the Gaussian random projection "
     "of a flattened layer (entries N(0, 1/dims) from embed.projection_seed and the layer name)."},
    {"embed", "projection_seed", RDML_CFG_INT, "42", RANGE(0, 9007199254740992.0), NULL,
     "torchvision backend with pooling project: the seed of the random projection (its own "
     "key, not run.seed, so that the embeddings and their cached stage follow it alone)."},
    {"embed", "name", RDML_CFG_STRING, "", NR, NULL,
     "name of the embedding in the results file (/subjects/subjNN/embeddings/NAME); empty "
     "means the backend's name. Letters, digits, '-', '_' and '.' only, and not . or .. "
     "(checked when the configuration is read)."},
    {"embed", "batch", RDML_CFG_INT, "32", RANGE(1, 4096), NULL,
     "images per batch of the clip-vit and torchvision forward passes (batched SGEMMs); larger batches are "
     "faster and need more memory. The features change with it in the last bits (float32 "
     "GEMM rounding, up to ~1e-6 relative; so do they with run.threads): keep it fixed "
     "within a study. For a given batch they are identical for any number of ranks."},
    {"embed", "normalize", RDML_CFG_BOOL, "false", NR, NULL,
     "divide each embedding by its L2 norm (a zero vector stays zero). The paper used CLIP's "
     "get_image_features unnormalised."},
    {"embed", "size", RDML_CFG_INT, "128", RANGE(1, 1024), NULL,
     "pixels backend: side of the square grayscale image in pixels (the paper's CNN used 128)."},
    {"embed", "file", RDML_CFG_PATH, "", NR, NULL,
     "file backend: an N x D .npy, or an HDF5 file (any other extension) with the dataset "
     "named by embed.dataset, e.g. THINGSvision or open_clip features."},
    {"embed", "dataset", RDML_CFG_STRING, "", NR, NULL,
     "file backend: path of the N x D dataset inside an HDF5 embed.file (e.g. /features)."},
    {"embed", "ids", RDML_CFG_PATH, "", NR, NULL,
     "file backend: a 1-D .npy with the NSD id (0-based) of every row of embed.file, so rows "
     "are matched to images by id; empty means row i is the subject's image i (file order)."},
    {"embed", "weights", RDML_CFG_PATH, "", NR, NULL,
     "clip-vit backend: a CLIP model.safetensors in Hugging Face (vision_model.*) or OpenAI "
     "(visual.*) naming, F32, F16 or BF16; a config.json beside it supplies heads, hidden_act "
     "and layer_norm_eps. torchvision backend: the model's state dict as .safetensors or as a "
     "PyTorch .pth (read without executing anything). See docs/embed.md for how to get one."},
    {"embed", "layer", RDML_CFG_INT, "-1", RANGE(-1, 1000), NULL,
     "clip-vit backend: -1 is get_image_features (the projected, post-layernorm CLS token, as "
     "the paper used); k >= 0 takes hidden state k (0 = after pre_layrnorm, k = after layer k), "
     "pooled by embed.pooling."},
    {"embed", "pooling", RDML_CFG_STRING, "auto", NR, NULL,
     "how a layer's output becomes one vector per image. clip-vit backend with layer >= 0: cls "
     "(the CLS token; also what auto means) or mean (the mean of the patch tokens). torchvision "
     "backend: gap (global average pool of a C x H x W map: C features), flatten "
     "(torch.flatten: C*H*W features), project (flatten, then a seeded Gaussian random "
     "projection to embed.dims features), auto (gap for maps, the vector itself for linear "
     "layers, cls for ViT tokens); ViT layers (vit_b_16, dinov2): cls, mean (the patch tokens "
     "without the class token and registers), flatten (T*D) or project; one value for every layer, or a comma-separated list with one per embed.layers "
     "entry. Values: auto, cls, mean, gap, flatten, project."},
    {"embed", "heads", RDML_CFG_INT, "0", RANGE(0, 1024), NULL,
     "clip-vit backend: attention heads; 0 takes num_attention_heads from config.json beside "
     "the weights (or width / head_width from OpenCLIP's open_clip_config.json), else width / "
     "64 (true of all OpenAI CLIP models)."},
    {"embed", "hidden_act", RDML_CFG_CHOICE, "auto", NR, "auto|quick_gelu|gelu",
     "clip-vit backend: MLP activation; auto takes config.json's hidden_act, or OpenCLIP's "
     "open_clip_config.json's quick_gelu (gelu when false or absent), else quick_gelu (OpenAI "
     "models; LAION models use gelu)."},

    /* ---- [pairs] ---- */
    {"pairs", "experiment", RDML_CFG_STRING, "main", NR, NULL,
     "name of the experiment: pairs, folds and model results go under /experiments/NAME in "
     "the results file. Letters, digits, '-', '_' and '.' only, not empty, and not . or .. "
     "(checked when the configuration is read, before any stage runs)."},
    {"pairs", "embeddings", RDML_CFG_STRING, "", NR, NULL,
     "the embeddings the svm and train stages fit their pair models on, one model per "
     "embedding (a sweep axis, e.g. every layer of several networks): empty (the default) uses "
     "embed.name and writes /experiments/NAME/<model>; all (every "
     "/subjects/subjNN/embeddings/<name> of the first subject of data.subjects in run.output) "
     "or a list of names writes /experiments/NAME/<model>@<embedding> for each, on the same "
     "pairs and folds, and the sweep table gets a row per embedding (docs/run.md, "
     "\"Models and layers as a sweep axis\"). The cnn reads the images and ignores it."},
    {"pairs", "set", RDML_CFG_CHOICE, "extremes", NR, "all|extremes|balanced|colors|percentile",
     "which image pairs are used. all: every pair i < j. extremes (the paper's): for each "
     "image its k most similar and k most dissimilar partners, as ordered pairs (i, j), "
     "repeats across images kept. balanced: extremes plus, per image, a seeded sample of "
     "mid_count partners whose RDM value lies in mid_band. colors: images classified by "
     "dominant pure colour (see colors), both colours cut to the smaller count and listed "
     "first colour first, then every pair of that list, as the paper orders them (a "
     "two-colour pair has its first-colour image first). percentile: all pairs i < j at or below the low or at or above the high "
     "percentile of the RDM values."},
    {"pairs", "images", RDML_CFG_INT, "0", RANGE(0, 1e9), NULL,
     "build this experiment's pairs from the first N images of the subject's RDM and "
     "embeddings only (all of them when the subject has fewer, said in the log); 0 uses every "
     "image. The RDM is the leading N x N block of the subject's RDM, so vertices are "
     "standardised over all data.images images, as the paper's code standardises before "
     "keeping its first N. The paper used 500 images for the extremes SVM and the CNN and MLP "
     "baselines, 1500 for the siamese network and 2000 for the colours."},
    {"pairs", "k", RDML_CFG_INT, "50", RANGE(1, 1e9), NULL,
     "extremes and balanced: lowest and highest partners per image (the paper's 50)."},
    {"pairs", "mid_band", RDML_CFG_REAL_LIST, "0.85,1.15", NR, NULL,
     "balanced: the RDM value band LOW,HIGH of the mid-range partners (the paper's 0.85,1.15)."},
    {"pairs", "mid_count", RDML_CFG_INT, "0", RANGE(0, 1e9), NULL,
     "balanced: mid-range partners sampled per image when more are in the band; 0 means "
     "floor(k / 0.3), the paper's int(50 // 0.3) = 166."},
    {"pairs", "percentiles", RDML_CFG_REAL_LIST, "10,90", RANGE(0, 100), NULL,
     "percentile: LOW,HIGH percentiles (numpy's linear interpolation over the pairs i < j)."},
    {"pairs", "colors", RDML_CFG_LIST, "red,blue", NR, "red|green|blue",
     "colors: the two colour classes, in pair order. Each pixel goes to the nearest of pure "
     "red, green and blue (a tie leaves it unclassified); an image takes the colour with the "
     "largest share of its pixels (the first of red, green, blue on a tie) when that share "
     "is at least color_fraction, as the paper's classify_images_rgb."},
    {"pairs", "color_fraction", RDML_CFG_REAL, "0.7", RANGE(0, 1), NULL,
     "colors: the share of the pixels an image's largest colour needs (the paper's 0.7)."},
    {"pairs", "dedup", RDML_CFG_BOOL, "false", NR, NULL,
     "drop repeated ordered pairs (extremes lists the same (i, j) again when j is among both "
     "the lowest and the highest partners of i); the first occurrence stays."},
    {"pairs", "symmetric", RDML_CFG_BOOL, "false", NR, NULL,
     "treat (i, j) and (j, i) as one pair: every pair is stored as (min, max) and repeats "
     "are dropped."},
    {"pairs", "labels", RDML_CFG_CHOICE, "binary", NR, "binary|continuous",
     "binary: 1 (dissimilar) when the RDM value > the RDM's threshold attribute (rdm.threshold), "
     "else 0. continuous: the RDM value itself (for regression models)."},

    /* ---- [split] ---- */
    {"split", "scheme", RDML_CFG_CHOICE, "kfold", NR, "kfold|holdout|pairs",
     "how pairs are split into training and test sets. kfold: K folds over IMAGES; a pair "
     "is in a fold's test set when both images are in the fold, in its training set when "
     "neither is, and dropped otherwise, so no test image is seen in training. holdout: one "
     "such split with test_size of the images in the test set (the paper's SVM). pairs: K "
     "folds over pairs, which puts images on both sides and inflates test scores; it needs "
     "allow_pair_leakage = true."},
    {"split", "folds", RDML_CFG_INT, "5", RANGE(2, 100000), NULL,
     "number of folds of kfold and pairs (the paper's siamese network uses 5)."},
    {"split", "test_size", RDML_CFG_REAL, "0.36", RANGE(0, 1), NULL,
     "holdout: fraction of the images in the test set, rounded up as sklearn's "
     "train_test_split does (the paper's 0.36)."},
    {"split", "allow_pair_leakage", RDML_CFG_BOOL, "false", NR, NULL,
     "permit scheme = pairs, to measure how much a pair-level split leaks."},

    /* ---- [encode] ---- */
    {"encode", "embeddings", RDML_CFG_LIST, "all", NR, NULL,
     "the embeddings (names under /subjects/subjNN/embeddings in run.output, as embed.name "
     "wrote them) that get an encoding model, e.g. gabor,clip; all: every embedding of the "
     "subject in the results file. The encode stage fits, for every subject x selection x "
     "embedding, a ridge regression from the embedding to each selected vertex (docs/encode.md)."},
    {"encode", "alphas", RDML_CFG_LIST, "logspace", NR, NULL,
     "the ridge penalties searched per vertex: logspace (alpha_min .. alpha_max, n_alphas "
     "values evenly spaced in log10, numpy.logspace) or an explicit list of positive numbers "
     "such as 0.1,1,10,100."},
    {"encode", "alpha_min", RDML_CFG_REAL, "0.01", NR, NULL,
     "alphas = logspace: the smallest penalty (positive)."},
    {"encode", "alpha_max", RDML_CFG_REAL, "1000000", NR, NULL,
     "alphas = logspace: the largest penalty (positive, >= alpha_min)."},
    {"encode", "n_alphas", RDML_CFG_INT, "17", RANGE(1, 1000), NULL,
     "alphas = logspace: how many penalties (17: two per decade from 0.01 to 10^6)."},
    {"encode", "mode", RDML_CFG_CHOICE, "loo", NR, "loo|kfold",
     "how each vertex's penalty is chosen on the training images of an outer fold. loo: the "
     "efficient leave-one-out error (scikit-learn RidgeCV(alpha_per_target=True)); kfold: "
     "the mean squared error over inner_folds image folds (himalaya's RidgeCV)."},
    {"encode", "inner_folds", RDML_CFG_INT, "5", RANGE(2, 1000), NULL,
     "mode = kfold: inner folds over each outer fold's training images (from run.seed and "
     "the outer fold)."},
    {"encode", "standardize_features", RDML_CFG_BOOL, "false", NR, NULL,
     "scale each embedding column to unit variance over the training images (it is always "
     "centred on them); the test images get the training images' mean and scale."},
    {"encode", "block", RDML_CFG_INT, "1024", RANGE(1, 1e9), NULL,
     "vertices per block: blocks are the unit of work and are dealt to the ranks in turn; "
     "each rank reads only its blocks' columns of the fMRI files. Results do not depend on "
     "the number of ranks; the block size can change their last bits (float32 summation "
     "order inside BLAS)."},

    /* ---- [svm] ---- */
    {"svm", "kernel", RDML_CFG_CHOICE, "poly", NR, "linear|poly|rbf|sigmoid",
     "SVM kernel on the concatenated pair embeddings [e_i ; e_j], as sklearn.svm.SVC names "
     "it; computed from the image Gram matrix, never from pair features."},
    {"svm", "degree", RDML_CFG_INT, "2", RANGE(0, 100), NULL,
     "poly: the degree (the paper's 2)."},
    {"svm", "c", RDML_CFG_REAL, "1", RANGE(1e-12, 1e12), NULL,
     "the box constraint C (sklearn's C; write C or c)."},
    {"svm", "gamma", RDML_CFG_STRING, "scale", NR, NULL,
     "kernel coefficient of poly, rbf and sigmoid: scale = 1 / (n_features * X.var()) over "
     "the training pairs' features, auto = 1 / n_features, or a positive number (sklearn's "
     "definitions)."},
    {"svm", "coef0", RDML_CFG_REAL, "0", NR, NULL, "poly and sigmoid: the additive constant."},
    {"svm", "class_weight", RDML_CFG_CHOICE, "none", NR, "none|balanced",
     "balanced multiplies C per class by n / (2 n_class), as sklearn's class_weight='balanced'."},
    {"svm", "tol", RDML_CFG_REAL, "0.001", RANGE(1e-12, 1), NULL,
     "stopping tolerance of the SMO solver on the KKT violation (sklearn's tol)."},
    {"svm", "shrinking", RDML_CFG_BOOL, "true", NR, NULL,
     "libsvm's shrinking heuristic; the solution is the same either way."},
    {"svm", "cache_mb", RDML_CFG_REAL, "200", RANGE(0.001, 1e6), NULL,
     "memory for cached kernel rows per task, in MB (sklearn's cache_size)."},
    {"svm", "max_iter", RDML_CFG_INT, "0", RANGE(0, 1e15), NULL,
     "SMO iteration cap; 0 is libsvm's max(10^7, 100 x training pairs). Hitting it warns."},
    {"svm", "symmetric_kernel", RDML_CFG_BOOL, "false", NR, NULL,
     "order-symmetric pair kernel (k([a;b],[c;d]) + k([a;b],[d;c])) / 2, so that the "
     "decision for (i, j) equals that for (j, i)."},

    {"svm", "type", RDML_CFG_CHOICE, "c_svc", NR, "c_svc|epsilon_svr",
     "c_svc: classify similar / dissimilar pairs (pairs.labels = binary), sklearn's SVC. "
     "epsilon_svr: regress the RDM value (pairs.labels = continuous), sklearn's SVR; "
     "class_weight does not apply."},
    {"svm", "epsilon", RDML_CFG_REAL, "0.1", RANGE(0, 1e12), NULL,
     "epsilon_svr: errors smaller than epsilon cost nothing (sklearn SVR's epsilon)."},
    {"svm", "null_shuffles", RDML_CFG_INT, "1000", RANGE(0, 1e7), NULL,
     "epsilon_svr: seeded permutations of each fold's test targets that the predictions are "
     "scored against: the null distribution of the test R^2 (fold_<f>/null_r2, percentiles, "
     "permutation p-value p_r2; and of the mean R^2 over folds), as train.null_shuffles does "
     "for the networks. 0 = none."},
    {"svm", "solver", RDML_CFG_CHOICE, "smo", NR, "smo|lowrank",
     "smo: libsvm's exact SMO on the pair kernel (sklearn's SVC; time and memory grow with "
     "the square of the pairs). lowrank: a rank-K factor of the image Gram matrix and "
     "LIBLINEAR's dual coordinate descent on the kernel's explicit feature map, for ~1M "
     "pairs (c_svc; kernel linear, or poly of degree <= 2 with coef0 >= 0; docs/svm.md)."},
    {"svm", "rank", RDML_CFG_INT, "50", RANGE(1, 100000), NULL,
     "lowrank: K, the columns of the image factor (at most the training images, and for "
     "factor = eigen the embedding width); accuracy against K is in docs/svm.md."},
    {"svm", "factor", RDML_CFG_CHOICE, "eigen", NR, "eigen|nystrom",
     "lowrank: eigen = the top K eigenvectors of the training images' Gram matrix (the best "
     "rank-K approximation); nystrom = K landmark training images drawn from run.seed."},
    {"svm", "lowrank_tol", RDML_CFG_REAL, "1", RANGE(1e-12, 1e6), NULL,
     "lowrank: stop when the largest minus the smallest projected gradient of an epoch is "
     "at most this (LIBLINEAR's eps; 1 rather than its 0.1: the same test accuracy on 2,000 "
     "and 9,841 images, and 0.1 did not converge in 1000 epochs at 955,000 pairs)."},
    {"svm", "max_epochs", RDML_CFG_INT, "1000", RANGE(1, 1e9), NULL,
     "lowrank: at most this many passes over the training pairs (LIBLINEAR's 1000); hitting "
     "it warns and stores converged = 0."},

    /* ---- [grid] ---- */
    {"grid", "svm_c", RDML_CFG_LIST, "off", NR, NULL,
     "grid search: values of svm.c to try, e.g. 0.1,1,10; off uses svm.c alone. Any [grid] "
     "list that is not off turns on nested cross-validation: in every outer fold an inner "
     "k-fold over that fold's training images scores every combination of the lists, the "
     "best mean inner score picks the setting, and the SVM is refit on the whole outer "
     "training set. Settings are listed in scikit-learn's ParameterGrid order (c slowest, "
     "then coef0, degree, epsilon, gamma, kernel fastest); ties go to the first."},
    {"grid", "svm_coef0", RDML_CFG_LIST, "off", NR, NULL,
     "grid search: values of svm.coef0, e.g. 0,1; off uses svm.coef0."},
    {"grid", "svm_degree", RDML_CFG_LIST, "off", NR, NULL,
     "grid search: values of svm.degree (integers 0..100), e.g. 2,3; off uses svm.degree."},
    {"grid", "svm_epsilon", RDML_CFG_LIST, "off", NR, NULL,
     "grid search: values of svm.epsilon (>= 0; epsilon_svr), e.g. 0.05,0.1; off uses "
     "svm.epsilon."},
    {"grid", "svm_gamma", RDML_CFG_LIST, "off", NR, NULL,
     "grid search: values of svm.gamma (scale, auto or positive numbers), e.g. scale,0.01; "
     "off uses svm.gamma."},
    {"grid", "svm_kernel", RDML_CFG_LIST, "off", NR, "off|linear|poly|rbf|sigmoid",
     "grid search: kernels to try, e.g. poly,rbf; off uses svm.kernel."},
    {"grid", "inner_folds", RDML_CFG_INT, "3", RANGE(2, 1000), NULL,
     "grid search: folds of the inner cross-validation over each outer fold's training "
     "images (image-disjoint like the outer split; pairs across inner folds are dropped). "
     "The inner folds come from run.seed and the outer fold number."},
    {"grid", "scoring", RDML_CFG_CHOICE, "auto", NR,
     "auto|accuracy|f1|roc_auc|r2|neg_mse|pearson|spearman",
     "grid search: the inner score that picks the setting (larger is better). auto: accuracy "
     "for c_svc, r2 for epsilon_svr (what sklearn's GridSearchCV uses by default); "
     "accuracy, f1 and roc_auc need c_svc, r2, neg_mse, pearson and spearman epsilon_svr."},

    {"grid", "train_lr", RDML_CFG_LIST, "off", NR, NULL,
     "grid search for `rdmlearn train`: values of train.lr, e.g. 0.0003,0.001,0.003; off uses "
     "train.lr. Any train_* list that is not off turns on nested cross-validation as for the "
     "SVM (inner_folds, scoring: r2 by default). Settings in ParameterGrid order (dropout "
     "slowest, then epochs, head, lr, tower, weight_decay fastest); ties go to the first."},
    {"grid", "train_dropout", RDML_CFG_LIST, "off", NR, NULL,
     "grid search: values of train.dropout, e.g. 0,0.25,0.5; off uses train.dropout."},
    {"grid", "train_epochs", RDML_CFG_LIST, "off", NR, NULL,
     "grid search: values of train.epochs, e.g. 5,10,20; off uses train.epochs."},
    {"grid", "train_weight_decay", RDML_CFG_LIST, "off", NR, NULL,
     "grid search: values of train.weight_decay, e.g. 0,1e-4; off uses train.weight_decay."},
    {"grid", "train_tower", RDML_CFG_LIST, "off", NR, NULL,
     "grid search: siamese tower widths, layers joined by ':', e.g. 512:256,128:64; off uses "
     "train.tower."},
    {"grid", "train_head", RDML_CFG_LIST, "off", NR, NULL,
     "grid search: siamese head widths (mlp: train.mlp_widths), layers joined by ':', e.g. "
     "128,64:32; off uses train.head / train.mlp_widths."},

    /* ---- [train] ---- */
    {"train", "model", RDML_CFG_CHOICE, "siamese", NR, "siamese|mlp|cnn",
     "the pair network of `rdmlearn train`. siamese: the paper's contrastive network, a shared "
     "tower on each image's embedding and a head on the two tower outputs. mlp: the paper's "
     "earlier baseline on the concatenated embeddings [e_i ; e_j]. cnn: the paper's first "
     "baseline, a siamese CNN on the grayscale images themselves (cnn_size, cnn_channels). All "
     "regress the RDM value of a pair. Results go under /experiments/NAME/MODEL."},
    {"train", "epochs", RDML_CFG_INT, "10", RANGE(1, 1e6), NULL,
     "passes over the training pairs of a fold (the paper: 10 to 15)."},
    {"train", "lr", RDML_CFG_REAL, "0.0005", RANGE(1e-12, 1e30), NULL,
     "learning rate (the paper: Adam 0.01, which with its batch of 32 does not generalise on "
     "the synthetic data; 0.002 with batch 1024 left most hidden ReLU units dead and 2% of "
     "the folds collapsed to a constant prediction; 0.0005 with train.warmup = 1 does "
     "neither and fits better, docs/nn.md)."},
    {"train", "warmup", RDML_CFG_REAL, "1", RANGE(0, 1e6), NULL,
     "epochs of linear learning-rate warm-up (fractions allowed): over its first warmup x "
     "(batches per epoch) optimiser steps the learning rate rises linearly from lr / steps to "
     "lr; 0 = none (the paper's, PyTorch's plain optimisers). Adam's first steps move every "
     "weight by about lr whatever its gradient; on a layer fed by ReLU outputs (all >= 0) that "
     "shifts whole units off, and full-size steps from the start can kill a whole layer: the "
     "fold then predicts a constant (status \"collapsed\", docs/nn.md)."},
    {"train", "shards", RDML_CFG_INT, "1", RANGE(1, 256), NULL,
     "the fixed number of parts every optimiser step's batch is cut into, so that one fit can "
     "run on several ranks (a stage's last folds when fewer are left than ranks: each gets a "
     "group of ranks). The results depend on shards, never on the number of ranks. 1: one pass "
     "(a last fold then runs on one rank of its group while the others wait); 4: up to 4 ranks "
     "share a fit, for about 20% more CPU per fit at batch 1024 and 6% at 16384, and results "
     "that differ from shards = 1 by rounding (docs/nn.md). The cnn too: a shard is a part of a "
     "batch's distinct images, whose towers run on one rank of the group."},
    {"train", "null_shuffles", RDML_CFG_INT, "1000", RANGE(0, 1e7), NULL,
     "seeded permutations of each fold's test targets that the predictions are scored against: "
     "the null distribution of the test R^2 (fold_<f>/null_r2, its 2.5/50/97.5 percentiles and "
     "the permutation p-value p_r2; and of the mean R^2 over folds), drawn in the report's fold "
     "figure. Costs about one R^2 per shuffle (test pairs x shuffles operations); 0 = none."},
    {"train", "batch", RDML_CFG_INT, "1024", RANGE(1, 1e8), NULL,
     "pairs per optimiser step (the paper: 32). With mode = decomposed a large batch is cheap: "
     "the tower runs once per distinct image of the batch (see train.batching)."},
    {"train", "optimizer", RDML_CFG_CHOICE, "adam", NR, "adam|sgd",
     "torch.optim.Adam (betas 0.9, 0.999, eps 1e-8) or SGD with momentum."},
    {"train", "momentum", RDML_CFG_REAL, "0", RANGE(0, 1), NULL, "sgd: momentum (PyTorch's, no dampening)."},
    {"train", "weight_decay", RDML_CFG_REAL, "0", RANGE(0, 1e6), NULL,
     "L2 penalty added to the gradient (PyTorch's weight_decay; not AdamW)."},
    {"train", "dropout", RDML_CFG_REAL, "0.5", RANGE(0, 0.99), NULL,
     "dropout probability: siamese after each tower layer but the last (the paper: 0.5 after "
     "the first); mlp after each hidden layer. Masks come from run.seed, the fold, the epoch, "
     "the batch and the image, never from the rank."},
    {"train", "tower", RDML_CFG_INT_LIST, "512,256", RANGE(1, 1048576), NULL,
     "siamese: widths of the tower layers (ReLU after each), applied to each image's embedding."},
    {"train", "head", RDML_CFG_INT_LIST, "128", RANGE(1, 1048576), NULL,
     "siamese: widths of the hidden head layers on [z_i ; z_j], before the 1-unit output."},
    {"train", "mlp_widths", RDML_CFG_INT_LIST, "512", RANGE(1, 1048576), NULL,
     "mlp: hidden widths on [e_i ; e_j] before the 1-unit output; the paper's sweep is 512 "
     "(h = 0), 512,512 or 512,256 (h = 1), ... up to h = 3."},
    {"train", "cnn_size", RDML_CFG_INT, "128", RANGE(10, 4096), NULL,
     "cnn: images are converted to grayscale, resized (bilinear) to this square size and "
     "min-max normalised per image (the paper: 128)."},
    {"train", "cnn_channels", RDML_CFG_INT_LIST, "32,64", RANGE(1, 4096), NULL,
     "cnn: channels of its two 3x3 conv layers (each ReLU + 2x2 max-pool)."},
    {"train", "max_memory_gb", RDML_CFG_REAL, "0", RANGE(0, 1e6), NULL,
     "cnn: memory one rank may use for a batch's activations, in GB; 0 takes the node's "
     "available memory shared among the ranks on it. A batch touching more distinct images "
     "than fit (about 0.9 MB each at 128 x 128) stops before allocating, with the numbers."},
    {"train", "output", RDML_CFG_CHOICE, "linear", NR, "linear|sigmoid2",
     "the output unit: linear, or 2 * sigmoid (the range [0, 2] of correlation distances)."},
    {"train", "pearson_mix", RDML_CFG_REAL, "0", RANGE(0, 1), NULL,
     "loss = mix * (-Pearson r of the batch) + (1 - mix) * MSE; 0 is plain MSE."},
    {"train", "mode", RDML_CFG_CHOICE, "decomposed", NR, "decomposed|perpair",
     "decomposed: tower and head projections once per distinct image of a batch, per pair only "
     "the head (fast; one dropout mask per image and batch). perpair: the tower on both images "
     "of every pair, as PyTorch batching does. Without dropout both compute the same."},
    {"train", "batching", RDML_CFG_CHOICE, "blocks", NR, "pairs|blocks",
     "how the training pairs form batches. pairs: a seeded shuffle of the pairs cut into "
     "batches of train.batch. blocks: the fold's training images are shuffled and cut into "
     "blocks of train.block_images; a batch is all training pairs between two blocks (block "
     "pairs in a seeded order, joined until a batch holds >= train.batch pairs), so with mode "
     "= decomposed the tower runs on 2 blocks of images for up to block_images^2 pairs."},
    {"train", "block_images", RDML_CFG_INT, "0", RANGE(0, 1e9), NULL,
     "batching = blocks: images per block; 0 = ceil(sqrt(train.batch)), so that one block "
     "pair holds about train.batch pairs of a dense pair set (pairs.set = all)."},
    {"train", "input_dim", RDML_CFG_INT, "0", RANGE(0, 1e9), NULL,
     "expected embedding width; 0 takes it from the embeddings. A different width is an error."},
    {"train", "standardize", RDML_CFG_BOOL, "true", NR, NULL,
     "z-score each embedding dimension with the mean and std of the fold's training images "
     "(no test image is used). false feeds the embeddings as stored, as the paper does with "
     "CLIP features; small-scale embeddings (gabor) barely train without it."},

    /* ---- [evaluate] ---- */
    {"evaluate", "methods", RDML_CFG_LIST, "spearman", NR, "spearman|pearson|kendall_tau_a",
     "how a model's dissimilarities are compared with the brain RDM's (docs/evaluate.md): "
     "spearman, pearson or kendall_tau_a (rsatoolbox's tau-a), one or several. Each method gets "
     "its own scores, intervals, p-values and corrections."},
    {"evaluate", "metric", RDML_CFG_CHOICE, "correlation", NR, "correlation|cosine|euclidean",
     "the dissimilarity of an embedding's model RDM: 1 - Pearson r between two images' "
     "embedding vectors (correlation), 1 - cosine, or the Euclidean distance."},
    {"evaluate", "embeddings", RDML_CFG_LIST, "all", NR, NULL,
     "the embeddings whose model RDMs are compared with the brain RDMs: all (every "
     "/subjects/subjNN/embeddings/<name> in run.output) or a list of names (embed.name), e.g. "
     "gabor,pixels."},
    {"evaluate", "fold_experiments", RDML_CFG_LIST, "all", NR, NULL,
     "the experiments (pairs.experiment) whose models are scored fold by fold on their test "
     "pairs, beside the embedding RDMs on the same pairs: all (every /experiments/<name> in "
     "run.output), none, or a list of names."},
    {"evaluate", "image_sets", RDML_CFG_CHOICE, "equal", NR, "equal|shared",
     "equal: a brain RDM and an embedding must cover the same images, else an error names the "
     "NSD ids one of them lacks; shared: compare them on the images both have (matched by NSD "
     "id)."},
    {"evaluate", "bootstrap", RDML_CFG_INT, "1000", RANGE(0, 1e7), NULL,
     "bootstrap samples of the images (rsatoolbox's bootstrap_sample_rdm: resampled with "
     "replacement, the self-pairs of repeated images dropped) for the percentile intervals of "
     "scores, differences and noise ceilings; 0 leaves the intervals out (NaN)."},
    {"evaluate", "bootstrap_subjects", RDML_CFG_BOOL, "false", NR, NULL,
     "with several subjects, also resample the subjects (with the images) for the group "
     "mean's interval, as rsatoolbox's bootstrap over subjects and patterns."},
    {"evaluate", "permutations", RDML_CFG_INT, "10000", RANGE(0, 1e8), NULL,
     "permutations of the image labels of the model RDM for the p-value of each score > 0 "
     "(one-sided, (1 + #{null >= score}) / (1 + permutations)); 0 leaves p out (NaN)."},
    {"evaluate", "ci", RDML_CFG_REAL, "0.95", RANGE(0.5, 0.9999), NULL,
     "coverage of the percentile bootstrap intervals."},
    {"evaluate", "correction", RDML_CFG_CHOICE, "bh", NR, "bh|bonferroni|none",
     "multiple-comparison correction of the p-values across subjects x selections x models "
     "(and across every pair of models for the differences), per method: Benjamini-Hochberg "
     "false discovery rate (bh), Bonferroni, or none. The raw p and the corrected q are "
     "both stored."},
    {"evaluate", "alpha", RDML_CFG_REAL, "0.05", RANGE(1e-12, 0.5), NULL,
     "significance level of the marks in the report (q < alpha after correction)."},
    {"evaluate", "save_bootstrap", RDML_CFG_BOOL, "false", NR, NULL,
     "also store every bootstrap sample's scores (samples x models per subject, selection and "
     "method) in run.output, for your own intervals."},

    /* ---- [slurm] ---- */
    {"slurm", "partition", RDML_CFG_STRING, "", NR, NULL,
     "SLURM partition (sbatch --partition) of every job `rdmlearn submit` writes; empty "
     "leaves it to the cluster's default partition."},
    {"slurm", "account", RDML_CFG_STRING, "", NR, NULL,
     "account charged for the jobs (sbatch --account); empty uses your default account."},
    {"slurm", "qos", RDML_CFG_STRING, "", NR, NULL,
     "quality of service of the jobs (sbatch --qos); empty uses the default."},
    {"slurm", "time", RDML_CFG_STRING, "01:00:00", NR, NULL,
     "wall-clock limit of each job (sbatch --time) as MINUTES, HH:MM:SS or D-HH:MM:SS. A job "
     "stopped at its limit keeps every finished task in the journal; submitting again "
     "continues from there."},
    {"slurm", "nodes", RDML_CFG_INT, "1", RANGE(1, 100000), NULL,
     "nodes of the single job and of the prepare and merge jobs of an array (sbatch --nodes)."},
    {"slurm", "ntasks", RDML_CFG_INT, "1", RANGE(1, 1000000), NULL,
     "MPI ranks of the single job and of the prepare and merge jobs of an array (sbatch "
     "--ntasks); at least nodes."},
    {"slurm", "array_ntasks", RDML_CFG_INT, "1", RANGE(1, 1000000), NULL,
     "MPI ranks of each element of a job array (`rdmlearn submit --array N`). Each element "
     "runs its share of the model tasks; one rank per element is usually best."},
    {"slurm", "cpus_per_task", RDML_CFG_INT, "1", RANGE(1, 4096), NULL,
     "cores per MPI rank (sbatch --cpus-per-task). Set run.threads to the same number to let "
     "BLAS use them."},
    {"slurm", "mem", RDML_CFG_STRING, "", NR, NULL,
     "memory per node (sbatch --mem) as a number with an optional unit K, M, G or T, e.g. "
     "16G; empty uses the partition's default."},
    {"slurm", "launcher", RDML_CFG_CHOICE, "srun", NR, "srun|mpirun",
     "how the job script starts the MPI ranks. srun uses SLURM's own launcher with the "
     "plugin srun_mpi (Open MPI and MPICH built with PMIx); mpirun uses slurm.mpirun, which "
     "reads the allocation from SLURM."},
    {"slurm", "srun_mpi", RDML_CFG_STRING, "pmix", NR, NULL,
     "the MPI plugin srun uses (srun --mpi=...); `srun --mpi=list` shows what the cluster "
     "offers. Only used with launcher = srun."},
    {"slurm", "mpirun", RDML_CFG_PATH, "mpirun", NR, NULL,
     "the mpirun program used with launcher = mpirun: a name looked up in PATH on the "
     "compute node, or a path."},
    {"slurm", "setup", RDML_CFG_STRING, "", NR, NULL,
     "a shell command run before rdmlearn in every job, e.g. \"module load openmpi hdf5\" "
     "(quote the value when it contains ; or #). Nothing site-specific is loaded otherwise."},
    {"slurm", "extra", RDML_CFG_STRING, "", NR, NULL,
     "more sbatch options for every job, separated by spaces, each starting with -, e.g. "
     "--constraint=skylake --mail-type=END,FAIL. Each becomes an #SBATCH line."},
    {"slurm", "signal", RDML_CFG_INT, "120", RANGE(0, 86400), NULL,
     "seconds before the time limit at which SLURM warns the job script (sbatch "
     "--signal=B:USR1@N); the script passes SIGUSR1 on to the ranks, which finish the task "
     "in progress, record it and exit. Make it longer than one task takes. 0 sends no "
     "warning."},
    {"slurm", "requeue", RDML_CFG_BOOL, "false", NR, NULL,
     "let SLURM requeue the jobs after preemption or a node failure (sbatch --requeue), and "
     "let a job stopped by the time-limit warning put itself back in the queue (at most "
     "max_requeue times). A requeued job continues from its journal."},
    {"slurm", "max_requeue", RDML_CFG_INT, "3", RANGE(0, 1000), NULL,
     "how often a job with requeue = true puts itself back in the queue after reaching its "
     "time limit (SLURM_RESTART_COUNT counts); then it stops and says so in its log."},
    {"slurm", "job_name", RDML_CFG_STRING, "", NR, NULL,
     "job name prefix shown by squeue; empty uses rdml- and the job file's name. The jobs "
     "are named PREFIX, or PREFIX-prepare, PREFIX-array and PREFIX-merge."},
    {"slurm", "script_dir", RDML_CFG_PATH, "", NR, NULL,
     "folder that receives the job scripts, the frozen job configuration and the job logs; "
     "empty means run.output followed by .slurm. A relative path is taken from the current "
     "directory."},
    {"slurm", "binary", RDML_CFG_PATH, "", NR, NULL,
     "the rdmlearn program the jobs run; empty means the program running `rdmlearn submit` "
     "(its absolute path). Set it when compute nodes see the program under another path."},

    /* ---- [run] ---- */
    {"run", "seed", RDML_CFG_INT, "42", RANGE(0, 9007199254740992.0), NULL,
     "seed of every random choice: synthetic data, pairs, folds, weight initialisation and "
     "dropout. Results depend on the seed only, never on the number of ranks; at most 2^53 "
     "so that it is exact as a double."},
    {"run", "output", RDML_CFG_PATH, "results.h5", NR, NULL,
     "HDF5 results file of the run. It is written under a temporary name and renamed when "
     "complete, so a file that exists is finished; a relative path is taken from the current "
     "directory. It must name a file, not a folder, and may not be empty."},
    {"run", "include", RDML_CFG_STRING, "", NR, NULL,
     "building-block INI files (e.g. ../configs/paper-svm.ini) read before the file that "
     "names them, so that its own keys override theirs; a relative path is taken from the "
     "including file's folder. Only meaningful in a file (not with --set)."},
    {"run", "experiments", RDML_CFG_STRING, "", NR, NULL,
     "experiment files run one after the other by `rdmlearn run`, e.g. "
     "../configs/paper/svm-extremes.ini, ../configs/paper/siamese.ini: each is the job file "
     "plus that file's keys (its own pairs.experiment name, model settings and run.stages); "
     "the command line's --config and --set apply to every experiment. Stages shared by "
     "experiments (the RDMs, the embeddings) run once. Relative paths are taken from the job "
     "file's folder. Empty: the job file is the one experiment."},
    {"run", "stages", RDML_CFG_LIST, "rdm,embed,svm,train,report", NR,
     "rdm|embed|encode|svm|train|evaluate|report",
     "the stages `rdmlearn run` runs, always in the order rdm, embed, encode, svm, train, "
     "evaluate, report (encode, the voxelwise encoding models, runs only when listed; evaluate "
     "runs after every experiment of run.experiments). A "
     "stage whose output in run.output was made from the same configuration is skipped "
     "(--force redoes it); svm and train run as a resumable sweep over data.subjects x "
     "data.rois x folds."},
    {"run", "threads", RDML_CFG_INT, "1", RANGE(1, 256), NULL,
     "BLAS threads per MPI rank. Keep 1 when running one rank per core; raise it when running "
     "fewer ranks than cores. clip-vit features change with it in the last bits (~1e-6 "
     "relative, docs/embed.md)."},
    {"run", "log_level", RDML_CFG_CHOICE, "info", NR, "quiet|error|warn|info|debug",
     "how much rdmlearn prints. quiet prints nothing but the final error; error, warn and "
     "info print messages of that level and more severe ones; debug adds timings and the "
     "source location of errors."},
};

static const char *const sections[] = {"data", "synth", "rdm",  "embed",    "pairs", "split", "encode",
                                       "svm",  "grid",  "train", "evaluate", "slurm", "run"};
static const char *const section_help[] = {
    "the fMRI dataset: where it is and which subjects, ROIs and images are used",
    "the synthetic dataset written by `rdmlearn synth`: the Algonauts 2023 layout at toy size",
    "representational dissimilarity matrices: metric, labels, summaries, comparisons, layout",
    "image embeddings: backend (gabor, pixels, file, clip-vit, torchvision), model, layers, pooling, weights, batch, normalisation",
    "image pairs and their labels: the paper's pair sets (extremes, balanced, colours) and more",
    "training and test sets over images (leakage-free k-fold, holdout) or, flagged, over pairs",
    "voxelwise encoding models: ridge from each embedding to every selected vertex",
    "the pair SVM (sklearn SVC's parameters), trained from the image Gram matrix",
    "hyperparameter grids: lists of values searched by nested cross-validation",
    "neural pair models (siamese network, concatenated-embedding MLP) regressing RDM values",
    "model comparison: every model's RDM against the brain's, with intervals, p and q values",
    "SLURM jobs written by `rdmlearn submit`: resources, launcher, array, requeue",
    "how a run executes: seed, results file, threads and logging",
};

const rdml_cfg_key *rdml_config_schema(int *n) {
    if (n) *n = (int)(sizeof schema / sizeof schema[0]);
    return schema;
}

const char *const *rdml_config_sections(int *n) {
    if (n) *n = (int)(sizeof sections / sizeof sections[0]);
    return sections;
}

const char *rdml_config_section_help(const char *section) {
    for (size_t i = 0; i < sizeof sections / sizeof sections[0]; i++)
        if (section && strcmp(sections[i], section) == 0) return section_help[i];
    return NULL;
}

/* ---- checks beyond the generic per-item rules ---- */

/* "all" selects everything, so it must stand alone. */
static int all_alone(char *const *items, int n, const char *example, char *why, size_t len) {
    if (n < 2) return 0;
    for (int i = 0; i < n; i++) {
        if (strcmp(items[i], "all") == 0) {
            snprintf(why, len, "\"all\" cannot be combined with other items (write all, or "
                               "list the items without it, e.g. %s)", example);
            return 1;
        }
    }
    return 0;
}

static int check_subjects(char *const *items, int n, char *why, size_t len) {
    return all_alone(items, n, "1,2", why, len);
}

static const char *const roi_classes[] = {"Visual", "Bodies", "Faces", "Places", "Words",
                                          "Streams"};

/* One ROI name or class: as in the mapping files or class:NAME. */
static int check_roi_part(const char *it, char *why, size_t len) {
    const int ncls = (int)(sizeof roi_classes / sizeof roi_classes[0]);
    if (strncmp(it, "class:", 6) == 0) {
        const char *c = it + 6;
        for (int j = 0; j < ncls; j++)
            if (strcmp(c, roi_classes[j]) == 0) return 0;
        int near = rdml_nearest(c, roi_classes, ncls);
        char mean[64] = "";
        if (near >= 0) snprintf(mean, sizeof mean, "did you mean class:%s?; ", roi_classes[near]);
        snprintf(why, len, "unknown ROI class \"%s\" (%sclasses: Visual, Bodies, Faces, "
                           "Places, Words, Streams)", c, mean);
        return 1;
    }
    if (*it == '\0') {
        snprintf(why, len, "empty ROI name in a + union (write e.g. V1v+V1d)");
        return 1;
    }
    /* Mapping-file names use letters, digits and '-'; anything else is a typo such as a
     * stray quote. Whether the ROI exists is for the dataset to say. */
    for (const char *p = it; *p; p++) {
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_') {
            snprintf(why, len, "\"%s\" is not an ROI name (names use letters, digits and "
                               "'-', e.g. V1,hV4,FFA-1; a union is V1v+V1d; a class is "
                               "class:Faces)", it);
            return 1;
        }
    }
    return 0;
}

/* Each item is one selection: parts joined by '+'. */
static int check_rois(char *const *items, int n, char *why, size_t len) {
    for (int i = 0; i < n; i++) {
        char part[256];
        const char *it = items[i];
        while (1) {
            const char *plus = strchr(it, '+');
            size_t l = plus ? (size_t)(plus - it) : strlen(it);
            if (l >= sizeof part) l = sizeof part - 1;
            memcpy(part, it, l);
            part[l] = '\0';
            if (strcmp(part, "all") == 0 && (plus || it != items[i])) {
                snprintf(why, len, "\"all\" cannot be part of a + union (%s)", items[i]);
                return 1;
            }
            if (strcmp(part, "all") != 0 && check_roi_part(part, why, len)) return 1;
            if (!plus) break;
            it = plus + 1;
        }
    }
    return 0;
}

static int check_threshold(char *const *items, int n, char *why, size_t len) {
    if (n != 1 || strcmp(items[0], "auto") == 0) return 0;
    char *end;
    double v = strtod(items[0], &end);
    if (end == items[0] || *end != '\0' || !isfinite(v)) {
        snprintf(why, len, "expected auto or a number such as 1 or 0.85");
        return 1;
    }
    return 0;
}

static int check_grid(char *const *items, int n, char *why, size_t len) {
    if (n != 1 || strcmp(items[0], "auto") == 0) return 0;
    int r = 0, c = 0, used = 0;
    if (sscanf(items[0], "%dx%d%n", &r, &c, &used) != 2 || items[0][used] != '\0' || r < 1 ||
        c < 1) {
        snprintf(why, len, "expected auto or ROWSxCOLS such as 2x1 or 2x2");
        return 1;
    }
    return 0;
}

static int check_svm_gamma(char *const *items, int n, char *why, size_t len) {
    if (n == 1 && (strcmp(items[0], "scale") == 0 || strcmp(items[0], "auto") == 0)) return 0;
    char *end;
    double v = n == 1 ? strtod(items[0], &end) : 0;
    if (n != 1 || end == items[0] || *end != '\0' || !isfinite(v) || v <= 0) {
        snprintf(why, len, "expected scale, auto or a positive number such as 0.01");
        return 1;
    }
    return 0;
}

/* Exactly two items; for numbers LOW <= HIGH, for names two different ones. */
static int check_two(char *const *items, int n, char *why, size_t len, int numeric) {
    if (n != 2) {
        snprintf(why, len, "expected two items, e.g. %s", numeric ? "0.85,1.15" : "red,blue");
        return 1;
    }
    if (numeric && strtod(items[0], NULL) > strtod(items[1], NULL)) {
        snprintf(why, len, "the first value must not exceed the second (LOW,HIGH)");
        return 1;
    }
    if (!numeric && strcasecmp(items[0], items[1]) == 0) {
        snprintf(why, len, "the two colours must differ (e.g. red,blue)");
        return 1;
    }
    return 0;
}
static int check_two_numbers(char *const *items, int n, char *why, size_t len) {
    return check_two(items, n, why, len, 1);
}
static int check_two_names(char *const *items, int n, char *why, size_t len) {
    return check_two(items, n, why, len, 0);
}

/* [grid] lists: "off" alone, or values of the [svm] key's kind. */
static int grid_list(char *const *items, int n, char *why, size_t len, int kind) {
    static const char *const what[] = {"positive numbers such as 0.1,1,10",
                                       "numbers such as 0,1", "integers 0..100 such as 2,3",
                                       "numbers >= 0 such as 0.05,0.1",
                                       "scale, auto or positive numbers such as scale,0.01",
                                       "kernels such as poly,rbf"};
    for (int i = 0; i < n; i++) {
        if (strcmp(items[i], "off") == 0) {
            if (n == 1) return 0;
            snprintf(why, len, "off turns the list off and must stand alone; otherwise list %s",
                     what[kind]);
            return 1;
        }
        if (kind == 5) continue; /* kernels: checked by the choices */
        if (kind == 4 && (strcmp(items[i], "scale") == 0 || strcmp(items[i], "auto") == 0)) continue;
        char *end;
        double v = strtod(items[i], &end);
        int bad = end == items[i] || *end != '\0' || !isfinite(v);
        if (!bad && (kind == 0 || kind == 4)) bad = v <= 0;
        if (!bad && kind == 3) bad = v < 0;
        if (!bad && kind == 2) bad = v != floor(v) || v < 0 || v > 100;
        if (bad) {
            snprintf(why, len, "item %d \"%s\": expected off or %s", i + 1, items[i], what[kind]);
            return 1;
        }
    }
    return 0;
}
static int check_grid_c(char *const *it, int n, char *w, size_t l) { return grid_list(it, n, w, l, 0); }
static int check_grid_coef0(char *const *it, int n, char *w, size_t l) { return grid_list(it, n, w, l, 1); }
static int check_grid_degree(char *const *it, int n, char *w, size_t l) { return grid_list(it, n, w, l, 2); }
static int check_grid_epsilon(char *const *it, int n, char *w, size_t l) { return grid_list(it, n, w, l, 3); }
static int check_grid_gamma(char *const *it, int n, char *w, size_t l) { return grid_list(it, n, w, l, 4); }
static int check_grid_kernel(char *const *it, int n, char *w, size_t l) { return grid_list(it, n, w, l, 5); }

/* Names that become one HDF5 link name in the results file (pairs.experiment, embed.name):
 * letters, digits, '-', '_' and '.', and never "." or ".." (which HDF5 reads as the group
 * itself or its parent) nor a '/' (which would nest groups). allow_empty: embed.name (empty
 * means the backend's name). */
static int h5_name(char *const *items, int n, char *why, size_t len, int allow_empty) {
    const char *v = n == 1 ? items[0] : "";
    if (!*v) {
        if (allow_empty) return 0;
        snprintf(why, len, "empty (give a name of letters, digits, '-', '_' and '.', e.g. main)");
        return 1;
    }
    if (strcmp(v, ".") == 0 || strcmp(v, "..") == 0) {
        snprintf(why, len, "\"%s\" cannot name an HDF5 group (it means the group itself or its "
                           "parent): use letters, digits, '-', '_' and '.', e.g. main", v);
        return 1;
    }
    for (const char *p = v; *p; p++) {
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_' && *p != '.') {
            if (*p == '/')
                snprintf(why, len, "holds '/', which would nest HDF5 groups: use letters, "
                                   "digits, '-', '_' and '.' only (e.g. %s)", "svm-v1");
            else
                snprintf(why, len, "holds '%c': use letters, digits, '-', '_' and '.' only "
                                   "(it names an HDF5 group or dataset)", *p);
            return 1;
        }
    }
    return 0;
}
static int check_experiment(char *const *items, int n, char *why, size_t len) {
    return h5_name(items, n, why, len, 0);
}
static int check_embed_name(char *const *items, int n, char *why, size_t len) {
    return h5_name(items, n, why, len, 1);
}

/* run.output must name a file: empty is no file at all. */
static int check_output(char *const *items, int n, char *why, size_t len) {
    if (n == 1 && *items[0]) return 0;
    snprintf(why, len, "empty: the results file needs a path (e.g. results.h5 or "
                       "/scratch/me/run1.h5)");
    return 1;
}

/* [encode] alphas: "logspace" alone, or positive numbers. */
static int positive_number(const char *it, char *why, size_t len, const char *what) {
    char *end;
    double v = strtod(it, &end);
    if (end == it || *end != '\0' || !isfinite(v)) {
        snprintf(why, len, "%s\"%s\" is not a number (hint: ridge penalties are positive numbers "
                 "such as 0.1,1,10)", what, it);
        return 1;
    }
    if (v <= 0) {
        snprintf(why, len, "%s%s is not positive: a ridge penalty must be > 0 (alpha = 0 is "
                 "unregularised least squares, which the grid leaves out; hint: use a small "
                 "positive value such as 1e-3)", what, it);
        return 1;
    }
    return 0;
}
static int check_alphas(char *const *items, int n, char *why, size_t len) {
    if (n == 1 && strcmp(items[0], "logspace") == 0) return 0;
    for (int i = 0; i < n; i++) {
        char what[64];
        snprintf(what, sizeof what, "item %d ", i + 1);
        if (strcmp(items[i], "logspace") == 0) {
            snprintf(why, len, "logspace (alpha_min .. alpha_max) must stand alone; otherwise "
                     "list positive numbers such as 0.1,1,10");
            return 1;
        }
        if (positive_number(items[i], why, len, what)) return 1;
    }
    return 0;
}

static const rdml_cfg_extra extra[] = {
    {"encode", "alphas", check_alphas},
    {"pairs", "experiment", check_experiment},
    {"embed", "name", check_embed_name},
    {"run", "output", check_output},
    {"grid", "svm_c", check_grid_c},
    {"grid", "svm_coef0", check_grid_coef0},
    {"grid", "svm_degree", check_grid_degree},
    {"grid", "svm_epsilon", check_grid_epsilon},
    {"grid", "svm_gamma", check_grid_gamma},
    {"grid", "svm_kernel", check_grid_kernel},
    {"svm", "gamma", check_svm_gamma},
    {"pairs", "mid_band", check_two_numbers},
    {"pairs", "percentiles", check_two_numbers},
    {"pairs", "colors", check_two_names},
    {"rdm", "threshold", check_threshold},
    {"rdm", "grid", check_grid},
    {"data", "subjects", check_subjects},
    {"data", "rois", check_rois},
};

const rdml_cfg_extra *rdml_config_extra_checks(int *n) {
    *n = (int)(sizeof extra / sizeof extra[0]);
    return extra;
}

/* ---- common wrong spellings of values ---- */

/* item matches pattern case-insensitively; a pattern ending in '*' matches a prefix. */
typedef struct spelling {
    const char *section, *key, *pattern, *hint;
} spelling;
static const spelling spellings[] = {
    {"rdm", "metric", "pearson", "correlation is 1 - Pearson r: write correlation"},
    {"rdm", "metric", "pearsonr", "correlation is 1 - Pearson r: write correlation"},
    {"rdm", "metric", "corr", "correlation is 1 - Pearson r: write correlation"},
    {"rdm", "metric", "1-pearson", "correlation is 1 - Pearson r: write correlation"},
    {"rdm", "metric", "spearmanr", "spearman is 1 - Spearman rho: write spearman"},
    {"rdm", "compare", "correlation", "RDMs are compared by Pearson r: write pearson"},
    {"rdm", "compare", "kendall", "write kendall_tau_a (Kendall's tau-a, as rsatoolbox)"},
    {"rdm", "compare", "kendalltau", "write kendall_tau_a (Kendall's tau-a, as rsatoolbox)"},
    {"rdm", "compare", "kendall_tau", "write kendall_tau_a (Kendall's tau-a, as rsatoolbox)"},
    {"data", "subjects", "subj*", "subjects are given by number"},
    {"data", "subjects", "sub-*", "subjects are given by number"},
    {"embed", "backend", "clip", "write clip-vit (the CLIP ViT image tower)"},
    {"embed", "backend", "vit", "write clip-vit (the CLIP ViT image tower)"},
    {"embed", "backend", "clip_vit", "write clip-vit (the CLIP ViT image tower)"},
    {"embed", "backend", "clipvit", "write clip-vit (the CLIP ViT image tower)"},
    {"embed", "backend", "npy", "imported features are backend file (with embed.file)"},
    {"embed", "backend", "hdf5", "imported features are backend file (with embed.file)"},
    {"svm", "kernel", "gaussian", "the Gaussian kernel is rbf: write rbf"},
    {"grid", "scoring", "mse", "larger must be better: write neg_mse"},
};

int rdml_config_spelling_hint(const rdml_cfg_key *k, const char *item, char *buf, size_t n) {
    for (size_t i = 0; i < sizeof spellings / sizeof spellings[0]; i++) {
        const spelling *sp = &spellings[i];
        if (strcmp(sp->section, k->section) != 0 || strcmp(sp->key, k->key) != 0) continue;
        size_t pl = strlen(sp->pattern);
        if (sp->pattern[pl - 1] == '*') {
            if (strncasecmp(item, sp->pattern, pl - 1) != 0) continue;
            const char *tail = item + pl - 1, *num = tail;
            if (!*tail) continue;
            for (const char *p = tail; *p; p++)
                if (!isdigit((unsigned char)*p)) num = NULL;
            if (!num) continue;
            while (num[0] == '0' && num[1]) num++;
            snprintf(buf, n, "%s: %s is subject %s (write %s)", sp->hint, item, num, num);
            return 1;
        }
        if (strcasecmp(item, sp->pattern) == 0) {
            snprintf(buf, n, "%s", sp->hint);
            return 1;
        }
    }
    return 0;
}

/* ---- which keys apply to which backend, model or mode ---- */

/* A key set while `when` (section.key) holds a value outside `values` has no effect; unless
 * the key `unless` is set to something other than off (a grid list that brings those values
 * back). The reason appended to the warning says what the key is for. */
static const rdml_cfg_applies applies[] = {
    {"embed", "batch", "embed.backend", "clip-vit|torchvision", NULL},
    {"embed", "size", "embed.backend", "pixels", NULL},
    {"embed", "file", "embed.backend", "file", NULL},
    {"embed", "dataset", "embed.backend", "file", NULL},
    {"embed", "ids", "embed.backend", "file", NULL},
    {"embed", "weights", "embed.backend", "clip-vit|torchvision", NULL},
    {"embed", "model", "embed.backend", "torchvision", NULL},
    {"embed", "layers", "embed.backend", "clip-vit|torchvision", NULL},
    {"embed", "dims", "embed.backend", "torchvision", NULL},
    {"embed", "projection_seed", "embed.backend", "torchvision", NULL},
    {"embed", "layer", "embed.backend", "clip-vit", NULL},
    {"embed", "pooling", "embed.backend", "clip-vit|torchvision", NULL},
    {"embed", "heads", "embed.backend", "clip-vit", NULL},
    {"embed", "hidden_act", "embed.backend", "clip-vit", NULL},
    {"pairs", "k", "pairs.set", "extremes|balanced", NULL},
    {"pairs", "mid_band", "pairs.set", "balanced", NULL},
    {"pairs", "mid_count", "pairs.set", "balanced", NULL},
    {"pairs", "percentiles", "pairs.set", "percentile", NULL},
    {"pairs", "colors", "pairs.set", "colors", NULL},
    {"pairs", "color_fraction", "pairs.set", "colors", NULL},
    {"split", "folds", "split.scheme", "kfold|pairs", NULL},
    {"split", "test_size", "split.scheme", "holdout", NULL},
    {"split", "allow_pair_leakage", "split.scheme", "pairs", NULL},
    {"svm", "degree", "svm.kernel", "poly", "grid.svm_kernel"},
    {"svm", "coef0", "svm.kernel", "poly|sigmoid", "grid.svm_kernel"},
    {"svm", "gamma", "svm.kernel", "poly|rbf|sigmoid", "grid.svm_kernel"},
    {"svm", "epsilon", "svm.type", "epsilon_svr", NULL},
    {"svm", "null_shuffles", "svm.type", "epsilon_svr", NULL},
    {"svm", "class_weight", "svm.type", "c_svc", NULL},
    {"svm", "rank", "svm.solver", "lowrank", NULL},
    {"svm", "factor", "svm.solver", "lowrank", NULL},
    {"svm", "lowrank_tol", "svm.solver", "lowrank", NULL},
    {"svm", "max_epochs", "svm.solver", "lowrank", NULL},
    {"svm", "tol", "svm.solver", "smo", NULL},
    {"svm", "cache_mb", "svm.solver", "smo", NULL},
    {"svm", "max_iter", "svm.solver", "smo", NULL},
    {"train", "momentum", "train.optimizer", "sgd", NULL},
    {"train", "tower", "train.model", "siamese", NULL},
    {"train", "head", "train.model", "siamese", NULL},
    {"train", "mlp_widths", "train.model", "mlp", NULL},
    {"train", "cnn_size", "train.model", "cnn", NULL},
    {"train", "cnn_channels", "train.model", "cnn", NULL},
    {"train", "max_memory_gb", "train.model", "cnn", NULL},
    {"slurm", "srun_mpi", "slurm.launcher", "srun", NULL},
    {"slurm", "mpirun", "slurm.launcher", "mpirun", NULL},
    {"slurm", "max_requeue", "slurm.requeue", "true", NULL},
};

const rdml_cfg_applies *rdml_config_applies(int *n) {
    *n = (int)(sizeof applies / sizeof applies[0]);
    return applies;
}
