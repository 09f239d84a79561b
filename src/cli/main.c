/* main(): MPI start-up, option parsing shared by every subcommand, config resolution, and the
 * one place where errors become a message and an exit code. Every rank parses the same
 * arguments and loads the same files; failures are agreed across ranks (rdml_agree) so all
 * ranks exit with the same status and rank 0 prints the message once. */
#include <stdio.h>
#include <stdlib.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "rdml/h5.h"
#include "rdml/mpiutil.h"

/* OpenBLAS's thread control (declared in its cblas.h, whose location varies by package). */
void openblas_set_num_threads(int num_threads);

static const rdml_command commands[] = {
    {"synth", "write a synthetic dataset in the Algonauts 2023 layout",
     "rdmlearn synth OUTDIR [options]\n"
     "  Writes subjects, PNG images, fMRI .npy files, ROI masks and mappings under OUTDIR\n"
     "  (which must not hold subjNN folders yet). Sizes and model: the [synth] section,\n"
     "  e.g. --set synth.images=2000 --set synth.image_size=425; seed: run.seed.\n"
     "  Full real size: --set synth.subjects=1 --set synth.images=9841 --set synth.lh_vertices=19004\n"
     "                  --set synth.rh_vertices=20544 --set synth.image_size=425\n",
     1, 1, rdml_cmd_synth},
    {"info", "describe a dataset: subjects, images, vertices, ROI sizes",
     "rdmlearn info [ROOT] [options]\n"
     "  Prints every subject's image and vertex counts and every ROI's vertex count per\n"
     "  hemisphere. ROOT defaults to data.root.\n",
     0, 1, rdml_cmd_info},
    {"check", "load the configured data as the pipeline will and verify every file",
     "rdmlearn check [ROOT] [options]\n"
     "  For each subject of data.subjects: selects data.rois, reads the first data.images\n"
     "  images' fMRI rows (each rank its own block), checks every value is finite,\n"
     "  standardises (data.standardize) and decodes every image. ROOT defaults to data.root.\n",
     0, 1, rdml_cmd_check},
    {"rdm", "representational dissimilarity matrices for subjects x vertex selections",
     "rdmlearn rdm [ROOT] [options]\n"
     "  For each subject of data.subjects and each selection of data.rois: the N x N RDM\n"
     "  (rdm.metric) of the first data.images images, computed on a 2-D process grid where\n"
     "  each rank reads only its block, written to run.output as\n"
     "  /subjects/subjNN/rdm/<selection> with a summary (histogram, median, most similar and\n"
     "  dissimilar pairs) and the binary-label threshold; with several subjects also the\n"
     "  inter-subject consistency and noise ceiling on their shared images (/rsa/<selection>).\n",
     0, 1, rdml_cmd_rdm},
    {"embed", "image embeddings (gabor, pixels, imported features, CLIP ViT) for each subject",
     "rdmlearn embed [ROOT] [options]\n"
     "  For each subject of data.subjects: the embedding of each of its first data.images\n"
     "  images with embed.backend (gabor | pixels | file | clip-vit), the images split into\n"
     "  contiguous blocks over the ranks, written to run.output as the N x D float32 dataset\n"
     "  /subjects/subjNN/embeddings/<embed.name> with attributes backend, model, dims,\n"
     "  preprocessing. Identical for any number of ranks. See docs/embed.md.\n",
     0, 1, rdml_cmd_embed},
    {"encode", "voxelwise encoding models: ridge from each embedding to every selected vertex",
     "rdmlearn encode [ROOT] [options]\n"
     "  For each subject of data.subjects, selection of data.rois and embedding of\n"
     "  encode.embeddings in run.output: ridge regression from the embedding to every selected\n"
     "  vertex, the penalty chosen per vertex (encode.mode: leave-one-out or inner k-fold) over\n"
     "  the pair models' image folds ([split]); vertex blocks are dealt to the ranks, each\n"
     "  reading only its columns. Writes per fold and vertex the alpha, test r and R^2 (and\n"
     "  r^2 / noise ceiling where the dataset has one), per-ROI summaries and each fold's\n"
     "  predicted RDM under /encode/<embedding>/subjNN/<selection>. See docs/encode.md.\n",
     0, 1, rdml_cmd_encode},
    {"svm", "pair SVM (the paper's classification) with image-disjoint folds",
     "rdmlearn svm [ROOT] [options]\n"
     "  For each subject of data.subjects and selection of data.rois: reads the RDM and the\n"
     "  embeddings (/subjects/subjNN/embeddings/<embed.name>) from run.output, builds the pair\n"
     "  set ([pairs]: extremes, balanced, colors, all, percentile) and folds over images\n"
     "  ([split]: kfold, holdout), trains one C-SVC per fold ([svm]; the folds are tasks of a\n"
     "  dynamic MPI task farm) from the image Gram matrix, and writes decision values,\n"
     "  predictions, confusion\n"
     "  matrices and accuracy/precision/recall/F1/ROC AUC with mean and std over folds under\n"
     "  /experiments/<pairs.experiment>/. ROOT (default data.root) is needed for the subject\n"
     "  list and, with pairs.set = colors, the images.\n",
     0, 1, rdml_cmd_svm},
    {"train", "neural pair models (siamese network, MLP, CNN) regressing RDM values, k-fold over images",
     "rdmlearn train [ROOT] [options]\n"
     "  For each subject of data.subjects and selection of data.rois: reads the RDM and the\n"
     "  embeddings (/subjects/subjNN/embeddings/<embed.name>) from run.output, builds the pair\n"
     "  set ([pairs]) and folds over images ([split]), and trains one network per fold\n"
     "  ([train]: model = siamese | mlp on the embeddings, or cnn on the subject's grayscale\n"
     "  images; epochs, lr, batch, dropout, ...; the folds are tasks of a dynamic MPI task\n"
     "  farm) on the pairs' RDM values. Writes per-epoch losses, test predictions, R^2 / MSE /\n"
     "  Pearson / Spearman per fold with mean and std, and the chance levels (training mean,\n"
     "  shuffled targets) under /experiments/<pairs.experiment>/<train.model>/. Identical for\n"
     "  any number of ranks. See docs/nn.md.\n",
     0, 1, rdml_cmd_train},
    {"evaluate", "does a model explain the brain? model RDMs vs brain RDMs with intervals and p",
     "rdmlearn evaluate [ROOT] [options]\n"
     "  Reads run.output only. For each selection of data.rois and subject: the model RDM of\n"
     "  each embedding (evaluate.embeddings, evaluate.metric) against the brain RDM on the\n"
     "  images both cover, by evaluate.methods (spearman, pearson, kendall_tau_a), with a\n"
     "  bootstrap interval over images, a permutation p of score > 0, paired differences\n"
     "  between embeddings, BH/Bonferroni-corrected q values and the noise ceiling; and every\n"
     "  experiment's models (svm, siamese, mlp, cnn) beside the embedding RDMs and /encode's\n"
     "  predicted RDMs on each outer fold's test pairs. Writes /evaluate and <stem>.evaluate.csv.\n"
     "  Identical for any number of ranks. See docs/evaluate.md.\n",
     0, 1, rdml_cmd_evaluate},
    {"submit", "write SLURM job scripts for a job file and submit them with sbatch",
     "rdmlearn submit JOB.ini [--array N] [--dry-run] [options]\n"
     "  Writes sbatch scripts running `rdmlearn run JOB.ini` (with the same --config/--set)\n"
     "  into slurm.script_dir (default: run.output + .slurm/, also the jobs' logs) and a\n"
     "  submit.sh to submit them by hand; then submits them with `sbatch --parsable` (the\n"
     "  program in $RDML_SBATCH, else sbatch from PATH) and prints the job ids. Resources,\n"
     "  launcher (srun or mpirun), signals and requeue: the [slurm] section. Serial: run it\n"
     "  on a login node.\n"
     "  --array N    three jobs: prepare (run --until embed), an N-element array where element\n"
     "               I runs the model tasks t with t % N == I (run --array I/N), and a merge\n"
     "               (run) that writes the results; each waits for the previous (afterok)\n"
     "  --dry-run    write the scripts and say where, submit nothing\n"
     "  See docs/slurm.md.\n",
     1, 1, rdml_cmd_submit},
    {"run", "run a job file: stages rdm .. evaluate, report; cached and resumable",
     "rdmlearn run JOB.ini [--force] [--until STAGE] [--array I/N] [options]\n"
     "  Runs the stages of run.stages in order (rdm -> embed -> encode -> svm -> train ->\n"
     "  evaluate -> report) on the\n"
     "  job's configuration (JOB.ini, then --config files, then --set). A stage whose output in\n"
     "  run.output was made from the same configuration and the same input files (a hash of\n"
     "  the keys it depends on and of its input files' paths, sizes and modification times,\n"
     "  /meta/done) is skipped; --force redoes it. The model stages are\n"
     "  a sweep: subjects x selections x folds as tasks on a dynamic MPI task farm, each\n"
     "  finished task recorded in run.output + .journal/ so that a run killed at any moment\n"
     "  continues where it stopped when started again. SIGTERM (SLURM preemption) finishes\n"
     "  the tasks in progress and exits with status 10 (cancelled) for a requeue.\n"
     "  --until STAGE  stop after STAGE (SLURM arrays prepare with --until embed)\n"
     "  --array I/N    only the model tasks t with t % N == I, recorded in the journal; the\n"
     "                 results file is not written (a later plain run merges)\n"
     "  See docs/run.md.\n",
     1, 1, rdml_cmd_run},
    {"report", "figures (SVG, PNG) and an HTML report drawn from a results file",
     "rdmlearn report RESULTS.h5 [-o DIR] [options]\n"
     "  Draws the RDMs (continuous, binary, histogram; block-averaged above 1000 x 1000),\n"
     "  the most similar / dissimilar image pairs, colour-class examples, SVM confusion\n"
     "  matrices and metric tables, neural-model folds, predictions and loss curves, grid\n"
     "  searches, sweep heat maps and the provenance into DIR/report.html (default: report/\n"
     "  beside RESULTS.h5) with every figure as .png and .svg. Reads the file only; the\n"
     "  stimulus images come from data.root of the stored configuration, or\n"
     "  --set data.root=DIR. See docs/report.md.\n",
     1, 1, rdml_cmd_report},
    {"ls", "what a results file holds: subjects, RDMs, embeddings, model scores, provenance",
     "rdmlearn ls RESULTS.h5 [--json]\n"
     "  Lists the subjects (images, RDMs per selection with size, vertices, metric), the\n"
     "  inter-subject RSA, the embeddings (name, backend, dims), every experiment x model x\n"
     "  subject x selection with its headline metric (accuracy for the C-SVC, R^2 for the SVR\n"
     "  and the networks: mean +- std over folds, folds finished / diverged), grid searches,\n"
     "  sweep tables and the provenance (version, stages, ranks, config hashes) as aligned\n"
     "  tables. Reads the file only; serial (rank 0 prints).\n"
     "  --json       the same as one JSON object, for scripts (docs/ls.md)\n",
     1, 1, rdml_cmd_ls},
    {"config", "print the resolved configuration, or the documented defaults",
     "rdmlearn config [--defaults] [options]\n"
     "  --defaults   print every key with its documentation (this is configs/defaults.ini)\n"
     "  Without --defaults: validate --config files and --set overrides and print the\n"
     "  resolved configuration.\n",
     0, 0, rdml_cmd_config},
    {"models", "list the embedding networks, their layer names, preprocessing and weights",
     "rdmlearn models [MODEL]\n"
     "  Lists the model zoo (embed.backend = torchvision: alexnet, vgg16, resnet18, resnet50;\n"
     "  and clip-vit): every layer name embed.layers accepts with its output shape, the\n"
     "  preprocessing, and where to get the weights (URLs only; nothing is downloaded).\n"
     "  MODEL shows one of them. See docs/embed.md.\n",
     0, 1, rdml_cmd_models},
    {"version", "print versions of rdmlearn and its libraries", "rdmlearn version\n", 0, 0,
     rdml_cmd_version},
};
static const int ncommands = (int)(sizeof commands / sizeof commands[0]);

static const char common_options[] =
    "Options for every command:\n"
    "  --config FILE        read an INI file (repeatable; later files override earlier)\n"
    "  --set SEC.KEY=VALUE  override one key (repeatable; applied after all files)\n"
    "  --force              redo work whose output already exists\n"
    "  -q, --quiet          only errors;  -v, --verbose  debug messages\n"
    "  -h, --help           this help\n"
    "Run under MPI with: mpirun -n 4 rdmlearn COMMAND ...\n";

static void print_usage(FILE *f) {
    fprintf(f, "rdmlearn %s: learn to predict brain response dissimilarity of image pairs\n\n"
               "usage: rdmlearn COMMAND [ARGS] [--config FILE] [--set SEC.KEY=VALUE]...\n\n"
               "Commands:\n",
            RDML_VERSION);
    for (int i = 0; i < ncommands; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\n%s\n`rdmlearn COMMAND --help` describes one command.\n", common_options);
}

static const rdml_command *find_command(rdml_ctx *ctx, const char *name) {
    const char *names[32];
    for (int i = 0; i < ncommands; i++) {
        if (strcmp(commands[i].name, name) == 0) return &commands[i];
        names[i] = commands[i].name;
    }
    int near = rdml_nearest(name, names, ncommands);
    char list[512] = "";
    for (int i = 0; i < ncommands; i++) {
        strncat(list, i ? ", " : "", sizeof list - strlen(list) - 1);
        strncat(list, names[i], sizeof list - strlen(list) - 1);
    }
    if (near >= 0)
        RDML_FAIL(ctx, RDML_EUSAGE, "unknown command \"%s\" (did you mean \"%s\"?; commands: %s)",
                  name, names[near], list);
    else
        RDML_FAIL(ctx, RDML_EUSAGE, "unknown command \"%s\" (commands: %s)", name, list);
    return NULL;
}

/* Parse options after the command. Files are loaded in order, then every --set, so an
 * override on the command line always wins whatever its position. */
static int parse_args(rdml_cli *cli, const rdml_command *cmd, int argc, char **argv,
                      int *help) {
    rdml_ctx *ctx = &cli->ctx;
    const char **sets = rdml_calloc(ctx, (size_t)argc, sizeof *sets, "arguments");
    if (!sets) return ctx->code;
    int nsets = 0, rc = RDML_OK;
    cli->pos = rdml_calloc(ctx, (size_t)argc, sizeof *cli->pos, "arguments");
    cli->cfg_files = rdml_calloc(ctx, (size_t)argc + 1, sizeof *cli->cfg_files, "arguments");
    if (!cli->pos || !cli->cfg_files) {
        free(sets);
        return ctx->code;
    }
    int verbosity = 0;
    for (int i = 0; i < argc && rc == RDML_OK; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            *help = 1;
        } else if (strcmp(a, "--config") == 0 || strcmp(a, "-c") == 0) {
            if (i + 1 >= argc) {
                rc = RDML_FAIL(ctx, RDML_EUSAGE, "%s needs a file name", a);
            } else {
                cli->cfg_files[cli->ncfg_files++] = argv[i + 1];
                rc = rdml_config_load(ctx, cli->cfg, argv[++i]);
            }
        } else if (strncmp(a, "--config=", 9) == 0) {
            cli->cfg_files[cli->ncfg_files++] = a + 9;
            rc = rdml_config_load(ctx, cli->cfg, a + 9);
        } else if (strcmp(a, "--set") == 0) {
            if (i + 1 >= argc)
                rc = RDML_FAIL(ctx, RDML_EUSAGE, "--set needs SECTION.KEY=VALUE");
            else
                sets[nsets++] = argv[++i];
        } else if (strncmp(a, "--set=", 6) == 0) {
            sets[nsets++] = a + 6;
        } else if (strcmp(a, "--defaults") == 0 && strcmp(cmd->name, "config") == 0) {
            cli->defaults_flag = 1;
        } else if (strcmp(a, "--force") == 0) {
            cli->force = 1;
        } else if ((strcmp(a, "-o") == 0 || strcmp(a, "--output") == 0) &&
                   strcmp(cmd->name, "report") == 0) {
            if (i + 1 >= argc)
                rc = RDML_FAIL(ctx, RDML_EUSAGE, "%s needs a directory", a);
            else
                cli->out_dir = argv[++i];
        } else if (strcmp(a, "--json") == 0 && strcmp(cmd->name, "ls") == 0) {
            cli->json = 1;
        } else if (strcmp(a, "--dry-run") == 0 && strcmp(cmd->name, "submit") == 0) {
            cli->dry_run = 1;
        } else if (strcmp(a, "--until") == 0 && strcmp(cmd->name, "run") == 0) {
            if (i + 1 >= argc)
                rc = RDML_FAIL(ctx, RDML_EUSAGE, "--until needs a stage (rdm, embed, encode, svm, "
                               "train, evaluate or report)");
            else
                cli->until = argv[++i];
        } else if (strcmp(a, "--array") == 0 && strcmp(cmd->name, "run") == 0) {
            if (i + 1 >= argc)
                rc = RDML_FAIL(ctx, RDML_EUSAGE, "--array needs I/N (this job's index I of N)");
            else
                cli->array_arg = argv[++i];
        } else if (strcmp(a, "--array") == 0 && strcmp(cmd->name, "submit") == 0) {
            if (i + 1 >= argc)
                rc = RDML_FAIL(ctx, RDML_EUSAGE, "--array needs a value (see rdmlearn %s --help)",
                               cmd->name);
            else
                cli->array_arg = argv[++i];
        } else if (strncmp(a, "--array=", 8) == 0 && strcmp(cmd->name, "submit") == 0) {
            cli->array_arg = a + 8;
        } else if (strcmp(a, "-q") == 0 || strcmp(a, "--quiet") == 0) {
            verbosity = -1;
        } else if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0) {
            verbosity = 1;
        } else if (a[0] == '-' && a[1] != '\0') {
            rc = RDML_FAIL(ctx, RDML_EUSAGE,
                           "unknown option \"%s\" for `rdmlearn %s` (see rdmlearn %s --help)", a,
                           cmd->name, cmd->name);
        } else {
            /* `rdmlearn run JOB.ini`: the job file is the first configuration, in the order
             * of the command line; --set still applies last */
            if (strcmp(cmd->name, "run") == 0 && cli->npos == 0) rc = rdml_config_load(ctx, cli->cfg, a);
            cli->pos[cli->npos++] = argv[i];
        }
    }
    for (int i = 0; i < nsets && rc == RDML_OK; i++) rc = rdml_config_set(ctx, cli->cfg, sets[i]);
    cli->sets = sets; /* kept: `run` rebuilds a configuration per experiment */
    cli->nsets = nsets;
    if (rc || *help) return rc;
    if (cli->npos < cmd->min_pos || cli->npos > cmd->max_pos) {
        return RDML_FAIL(ctx, RDML_EUSAGE, "`rdmlearn %s` takes %d to %d arguments, got %d\nusage: %s",
                         cmd->name, cmd->min_pos, cmd->max_pos, cli->npos, cmd->usage);
    }
    /* a ROOT argument is data.root: stored with the results like every other setting */
    static const char *const takes_root[] = {"info", "check", "rdm", "embed", "encode", "svm",
                                             "train", "evaluate"};
    for (size_t i = 0; i < sizeof takes_root / sizeof takes_root[0] && cli->npos == 1; i++)
        if (strcmp(cmd->name, takes_root[i]) == 0) {
            char *as = malloc(strlen(cli->pos[0]) + 16);
            if (!as) return RDML_FAIL(ctx, RDML_ENOMEM, "out of memory");
            sprintf(as, "data.root=%s", cli->pos[0]);
            rc = rdml_config_set(ctx, cli->cfg, as);
            free(as);
            if (rc) return rc;
        }
    rc = rdml_config_check_required(ctx, cli->cfg);
    if (rc) return rc;
    const char *level;
    rc = rdml_config_str(ctx, cli->cfg, "run", "log_level", &level);
    if (rc) return rc;
    static const char *const levels[] = {"quiet", "error", "warn", "info", "debug"};
    for (int l = 0; l < 5; l++)
        if (strcmp(level, levels[l]) == 0) ctx->log_level = l;
    int64_t threads;
    rc = rdml_config_int(ctx, cli->cfg, "run", "threads", &threads);
    if (rc) return rc;
    /* One BLAS thread per rank unless configured: ranks already fill the cores. */
    openblas_set_num_threads((int)threads);
    if (verbosity < 0) ctx->log_level = RDML_LOG_ERROR;
    if (verbosity > 0) ctx->log_level = RDML_LOG_DEBUG;
    /* Keys without effect for the chosen backend or model: a warning each, on rank 0. A job
     * with run.experiments is left out: its experiment files choose models of their own. */
    const char *exps = "";
    rc = rdml_config_str(ctx, cli->cfg, "run", "experiments", &exps);
    if (rc) return rc;
    if (!*exps) rdml_config_warn_inapplicable(ctx, cli->cfg);
    return RDML_OK;
}

/* The data folder of configuration building blocks (rdml_config_set_datadir): the source tree
 * for the binary of the build folder, else <bin>/../share/rdmlearn of an installed binary,
 * found from /proc/self/exe so that any install prefix (and a moved one) works. */
static void set_datadir(void) {
#if defined(RDML_BUILD_BINDIR) && defined(RDML_SOURCE_DIR) && defined(RDML_DATADIR_FROM_BIN)
    char exe[4096], build[PATH_MAX], dir[8300];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (!slash) return;
    *slash = '\0';
    if (realpath(RDML_BUILD_BINDIR, build) && strcmp(build, exe) == 0) {
        rdml_config_set_datadir(RDML_SOURCE_DIR);
    } else {
        snprintf(dir, sizeof dir, "%s/%s", exe, RDML_DATADIR_FROM_BIN);
        if (realpath(dir, build)) rdml_config_set_datadir(build); /* absent: no lookup */
    }
#endif
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    rdml_h5_quiet(); /* errors are reported as messages, not HDF5-DIAG stacks (RDML_DEBUG) */
    set_datadir();
    rdml_cli cli;
    memset(&cli, 0, sizeof cli);
    rdml_ctx_init(&cli.ctx);
    cli.comm = MPI_COMM_WORLD;
    rdml_ctx_set_comm(&cli.ctx, cli.comm);
    rdml_ctx *ctx = &cli.ctx;

    int rc = RDML_OK, help = 0;
    const rdml_command *cmd = NULL;
    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "help") == 0) {
        if (cli.ctx.rank == 0) print_usage(stdout);
        if (argc < 2) rc = RDML_FAIL(ctx, RDML_EUSAGE, "no command given");
        help = argc >= 2;
    } else if (strcmp(argv[1], "--version") == 0) {
        cmd = &commands[ncommands - 1];
    } else {
        cmd = find_command(ctx, argv[1]);
        rc = cmd ? RDML_OK : ctx->code;
    }
    if (cmd) {
        cli.command = cmd->name;
        rc = rdml_config_create(ctx, &cli.cfg);
        if (!rc) rc = parse_args(&cli, cmd, argc - 2, argv + 2, &help);
        rc = rdml_agree(ctx, cli.comm, rc);
        if (!rc && help) {
            if (cli.ctx.rank == 0) printf("usage: %s\n%s", cmd->usage, common_options);
        } else if (!rc) {
            /* the commands that write results stop at their next task, batch or panel
             * boundary on SIGTERM / SIGUSR1, writing nothing of the unfinished stage (exit
             * status 10); the experiment layer holds run.output's lock while a stage runs */
            static const char *const writers[] = {"rdm", "embed", "encode", "svm", "train",
                                                  "evaluate", "run"};
            for (size_t i = 0; i < sizeof writers / sizeof writers[0]; i++)
                if (strcmp(cmd->name, writers[i]) == 0) rdml_stop_install();
            rc = cmd->run(&cli);
            rc = rdml_agree(ctx, cli.comm, rc);
        }
    } else if (rc) {
        rc = rdml_agree(ctx, cli.comm, rc);
    }
    if (rc && cli.ctx.rank == 0) {
        fprintf(stderr, "rdmlearn%s%s: error: %s\n", cli.command ? " " : "",
                cli.command ? cli.command : "", ctx->msg);
        if (ctx->log_level >= RDML_LOG_DEBUG && ctx->where)
            fprintf(stderr, "  (raised at %s:%d)\n", ctx->where, ctx->where_line);
    }
    rdml_config_destroy(&cli.cfg);
    free(cli.pos);
    free(cli.cfg_files);
    free((void *)cli.sets);
    /* Testing hook: record each rank's exit status, so tests can check that every rank (not
     * just the one mpirun reports) stopped with the same error. */
    const char *status_dir = getenv("RDML_STATUS_DIR");
    if (status_dir) {
        char path[4096];
        snprintf(path, sizeof path, "%s/rank%d.status", status_dir, cli.ctx.rank);
        FILE *f = fopen(path, "w");
        if (f) {
            fprintf(f, "%d %s\n", rdml_status_exit_code(rc), rdml_status_name(rc));
            fclose(f);
        }
    }
    MPI_Finalize();
    return rdml_status_exit_code(rc);
}
