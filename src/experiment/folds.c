/* What the model stages share about pairs and folds: reading [pairs] and [split]
 * (rdml_exp_pairs_opts), and the outer folds of one subject x selection: the training and
 * test pair lists of every fold and, for a nested grid search, every outer fold's inner fold
 * assignment. The svm and train stages add their own checks (a classifier needs both
 * classes, R^2 needs two test pairs) through the callbacks. Not collective. */
#include <stdlib.h>
#include <string.h>

#include "exp_priv.h"
#include "rdml/pairs.h"

int rdml_exp_pairs_opts(rdml_ctx *ctx, const rdml_config *cfg, uint64_t seed, const char **experiment,
                        rdml_pairs_params *pp, int64_t *pair_images, double *color_fraction,
                        rdml_split_params *sp) {
    const char *s;
    double *vals;
    char **items;
    int nv;
    rdml_pairs_defaults(pp);
    pp->seed = seed;
    RDML_TRY(rdml_config_str(ctx, cfg, "pairs", "experiment", experiment));
    for (const char *p = *experiment; *p; p++)
        if (!(('a' <= *p && *p <= 'z') || ('A' <= *p && *p <= 'Z') || ('0' <= *p && *p <= '9') ||
              *p == '-' || *p == '_' || *p == '.'))
            return RDML_FAIL(ctx, RDML_ECONFIG, "[pairs] experiment = \"%s\": use letters, digits, "
                             "'-', '_' and '.' only", *experiment);
    if (!**experiment) return RDML_FAIL(ctx, RDML_ECONFIG, "[pairs] experiment is empty");
    RDML_TRY(rdml_config_str(ctx, cfg, "pairs", "set", &s));
    pp->set = (rdml_pairs_set)rdml_pairs_set_parse(s);
    RDML_TRY(rdml_config_int(ctx, cfg, "pairs", "images", pair_images));
    RDML_TRY(rdml_config_int(ctx, cfg, "pairs", "k", &pp->k));
    RDML_TRY(rdml_config_real_list(ctx, cfg, "pairs", "mid_band", &vals, &nv));
    pp->mid_lo = vals[0];
    pp->mid_hi = vals[nv - 1];
    free(vals);
    RDML_TRY(rdml_config_int(ctx, cfg, "pairs", "mid_count", &pp->mid_count));
    RDML_TRY(rdml_config_real_list(ctx, cfg, "pairs", "percentiles", &vals, &nv));
    pp->pct_lo = vals[0];
    pp->pct_hi = vals[nv - 1];
    free(vals);
    RDML_TRY(rdml_config_list(ctx, cfg, "pairs", "colors", &items, &nv));
    pp->color_a = rdml_color_parse(items[0]);
    pp->color_b = rdml_color_parse(items[nv - 1]);
    free(items);
    RDML_TRY(rdml_config_real(ctx, cfg, "pairs", "color_fraction", color_fraction));
    RDML_TRY(rdml_config_bool(ctx, cfg, "pairs", "dedup", &pp->dedup));
    RDML_TRY(rdml_config_bool(ctx, cfg, "pairs", "symmetric", &pp->symmetric));
    RDML_TRY(rdml_config_str(ctx, cfg, "pairs", "labels", &s));
    pp->continuous = strcmp(s, "continuous") == 0;

    rdml_split_defaults(sp);
    sp->seed = seed;
    RDML_TRY(rdml_config_str(ctx, cfg, "split", "scheme", &s));
    sp->scheme = strcmp(s, "holdout") == 0 ? RDML_SPLIT_HOLDOUT
                 : strcmp(s, "pairs") == 0 ? RDML_SPLIT_PAIRS : RDML_SPLIT_KFOLD;
    RDML_TRY(rdml_config_int(ctx, cfg, "split", "folds", &sp->folds));
    RDML_TRY(rdml_config_real(ctx, cfg, "split", "test_size", &sp->test_size));
    RDML_TRY(rdml_config_bool(ctx, cfg, "split", "allow_pair_leakage", &sp->allow_leakage));
    return RDML_OK;
}
