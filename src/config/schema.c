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
    {"rdm", "grid", RDML_CFG_STRING, "auto", NR, NULL,
     "MPI process grid over images x vertices, as ROWSxCOLS (e.g. 2x2), whose product is the "
     "number of ranks; auto picks a near-square grid with rows >= cols."},
    {"rdm", "block", RDML_CFG_INT, "0", RANGE(0, 65536), NULL,
     "block size of the block-cyclic distribution (ScaLAPACK); 0 picks one."},
    {"rdm", "max_memory_gb", RDML_CFG_REAL, "0", RANGE(0, 1e6), NULL,
     "memory one rank may use, in GB; 0 takes the node's available memory shared among the "
     "ranks on it. A job that would need more stops before allocating, with the numbers."},

    /* ---- [run] ---- */
    {"run", "seed", RDML_CFG_INT, "42", RANGE(0, 9007199254740992.0), NULL,
     "seed of every random choice: synthetic data, pairs, folds, weight initialisation and "
     "dropout. Results depend on the seed only, never on the number of ranks; at most 2^53 "
     "so that it is exact as a double."},
    {"run", "output", RDML_CFG_PATH, "results.h5", NR, NULL,
     "HDF5 results file of the run. It is written under a temporary name and renamed when "
     "complete, so a file that exists is finished; a relative path is taken from the current "
     "directory."},
    {"run", "threads", RDML_CFG_INT, "1", RANGE(1, 256), NULL,
     "BLAS threads per MPI rank. Keep 1 when running one rank per core; raise it when running "
     "fewer ranks than cores."},
    {"run", "log_level", RDML_CFG_CHOICE, "info", NR, "quiet|error|warn|info|debug",
     "how much rdmlearn prints. quiet prints nothing but the final error; error, warn and "
     "info print messages of that level and more severe ones; debug adds timings and the "
     "source location of errors."},
};

static const char *const sections[] = {"data", "synth", "rdm", "run"};
static const char *const section_help[] = {
    "the fMRI dataset: where it is and which subjects, ROIs and images are used",
    "the synthetic dataset written by `rdmlearn synth`: the Algonauts 2023 layout at toy size",
    "representational dissimilarity matrices: metric, labels, summaries, comparisons, layout",
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

static const rdml_cfg_extra extra[] = {
    {"rdm", "threshold", check_threshold},
    {"rdm", "grid", check_grid},
    {"data", "subjects", check_subjects},
    {"data", "rois", check_rois},
};

const rdml_cfg_extra *rdml_config_extra_checks(int *n) {
    *n = (int)(sizeof extra / sizeof extra[0]);
    return extra;
}
