/* torchvision's convolutional networks in C on OpenBLAS (rdml/zoo.h): AlexNet, VGG-16,
 * ResNet-18 and ResNet-50 as torchvision 0.14 defines them, in eval mode. A network is a
 * list of modules ("ops") in forward order, each reading the output of an earlier one (and a
 * residual for the end of a ResNet block) and naming the module output it produces
 * (torchvision's module name: features.3, layer2.1, avgpool, fc, ...; containers such as
 * `features` or `layer3` are the output of their last child). Loading checks every tensor of
 * the state dict against the architecture in module order and folds batch norm into the
 * convolution before it. Activations are channels-last (B x H x W x C): a convolution is
 * a GEMM of its im2col rows (ky, kx, cin; a 1x1 stride-1 convolution reads its input as is)
 * against the weights, run in tiles of output rows, one thread each (run_conv), onto the
 * bias or, at the end of a ResNet block, onto the residual, with the ReLU in the same pass
 * over the tile; a linear layer is one SGEMM over the batch. Buffers are freed after their
 * last reader; the pass stops after the last requested layer. Left out: batch-norm VGG variants,
 * inputs other than 224 x 224, ResNet's unfolded conv1 (its output before bn1 is not
 * addressable: `bn1` is). */
#include <cblas.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rdml/zoo.h"
#include "embed/embed_priv.h"
#include "embed/vit.h"

#define CHUNK ((int64_t)8 << 20) /* im2col floats per SGEMM chunk (32 MiB) */

enum { Z_CONV, Z_RELU, Z_MAXPOOL, Z_AVGPOOL, Z_FLATTEN, Z_LINEAR, Z_ID, Z_ADDRELU };

typedef struct zop {
    int kind;
    int in, res;        /* op index of the input (-1: the image), of the residual (-1) */
    int64_t cin, cout;  /* conv / linear */
    int k, s, pad;      /* conv / maxpool */
    int relu;           /* conv: ReLU fused (inside ResNet blocks) */
                        /* conv with res >= 0: ReLU(conv + bias + op res's output), the end of
                         * a ResNet block, accumulated by the GEMM onto the residual */
    char w[48], bn[48]; /* tensor prefixes: "features.0" (weight, bias) / "bn1" (folded) */
    int layer;          /* index into the layer list of the module output, -1 */
    int64_t c, h, wd;   /* output shape (channels-last) */
    int vec;
    float *wt, *b;      /* conv: cout x (k k cin) (ky, kx, cin); linear: cout x cin */
} zop;

struct rdml_convnet {
    rdml_zoo_arch arch;
    int64_t classes;
    zop *ops;
    int nops, cap;
    rdml_zoo_layer *L;
    int nl, capl;
    int *layer_op; /* the op producing layer i */
    int err;
    rdml_vit *vit; /* vit_b_16 / dinov2: the transformer (ops unused) */
};

static const char *const arch_names[] = {"alexnet", "vgg16", "resnet18", "resnet50",
                                         "vit_b_16", "dinov2"};
static const char *const arch_urls[] = {
    "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
    "https://download.pytorch.org/models/vgg16-397923af.pth",
    "https://download.pytorch.org/models/resnet18-f37072fd.pth",
    "https://download.pytorch.org/models/resnet50-0676ba61.pth",
    "https://download.pytorch.org/models/vit_b_16-c867db91.pth",
    "https://dl.fbaipublicfiles.com/dinov2/dinov2_vitb14/dinov2_vitb14_pretrain.pth"};

const char *rdml_zoo_arch_name(rdml_zoo_arch a) {
    return (int)a >= 0 && a < RDML_ZOO_NARCH ? arch_names[a] : "?";
}
const char *rdml_zoo_weights_url(rdml_zoo_arch a) {
    return (int)a >= 0 && a < RDML_ZOO_NARCH ? arch_urls[a] : "";
}

int rdml_zoo_arch_parse(rdml_ctx *ctx, const char *s, rdml_zoo_arch *out) {
    for (int i = 0; i < RDML_ZOO_NARCH; i++)
        if (strcmp(s, arch_names[i]) == 0) {
            *out = (rdml_zoo_arch)i;
            return RDML_OK;
        }
    return RDML_FAIL(ctx, RDML_ECONFIG, "[embed] model = %s is not one of alexnet, vgg16, "
                     "resnet18, resnet50, vit_b_16, dinov2 (hint: `rdmlearn models` lists them with their layers)",
                     s);
}

/* ---- building the module list ---- */

static int add_layer(rdml_convnet *m, const char *name, int op) {
    if (m->nl == m->capl) {
        int nc = m->capl ? 2 * m->capl : 64;
        rdml_zoo_layer *l = realloc(m->L, (size_t)nc * sizeof *l);
        int *lo = realloc(m->layer_op, (size_t)nc * sizeof *lo);
        if (l) m->L = l;
        if (lo) m->layer_op = lo;
        if (!l || !lo) return m->err = 1;
        m->capl = nc;
    }
    rdml_zoo_layer *L = &m->L[m->nl];
    memset(L, 0, sizeof *L);
    rdml_strlcpy(L->name, name, sizeof L->name);
    L->c = m->ops[op].c;
    L->h = m->ops[op].h;
    L->w = m->ops[op].wd;
    L->vec = m->ops[op].vec;
    L->depth = m->nl;
    m->layer_op[m->nl] = op;
    if (m->ops[op].layer < 0) m->ops[op].layer = m->nl;
    m->nl++;
    return 0;
}

/* Append an op reading op `in`; its output shape follows from the input's. name: the
 * module output it produces (NULL: none). Returns the op index. */
static int add_op(rdml_convnet *m, int kind, int in, const char *name) {
    if (m->err) return -1;
    if (m->nops == m->cap) {
        int nc = m->cap ? 2 * m->cap : 64;
        zop *o = realloc(m->ops, (size_t)nc * sizeof *o);
        if (!o) {
            m->err = 1;
            return -1;
        }
        m->ops = o;
        m->cap = nc;
    }
    zop *o = &m->ops[m->nops];
    memset(o, 0, sizeof *o);
    o->kind = kind;
    o->in = in;
    o->res = -1;
    o->layer = -1;
    if (in < 0) {
        o->c = 3;
        o->h = o->wd = RDML_ZOO_IMAGE;
    } else {
        o->c = m->ops[in].c;
        o->h = m->ops[in].h;
        o->wd = m->ops[in].wd;
        o->vec = m->ops[in].vec;
    }
    (void)name;
    return m->nops++;
}

static void finish_op(rdml_convnet *m, int i, const char *name) {
    if (!m->err && name) add_layer(m, name, i);
}

static int conv(rdml_convnet *m, int in, int64_t cout, int k, int s, int pad, const char *w,
                const char *bn, int relu, const char *name) {
    int i = add_op(m, Z_CONV, in, name);
    if (i < 0) return i;
    zop *o = &m->ops[i];
    o->cin = o->c;
    o->cout = cout;
    o->k = k;
    o->s = s;
    o->pad = pad;
    o->relu = relu;
    rdml_strlcpy(o->w, w, sizeof o->w);
    if (bn) rdml_strlcpy(o->bn, bn, sizeof o->bn);
    o->c = cout;
    o->h = (o->h + 2 * pad - k) / s + 1;
    o->wd = o->wd + 2 * pad - k < 0 ? 0 : (o->wd + 2 * pad - k) / s + 1;
    finish_op(m, i, name);
    return i;
}

static int simple(rdml_convnet *m, int kind, int in, const char *name) {
    int i = add_op(m, kind, in, name);
    if (i >= 0) finish_op(m, i, name);
    return i;
}

static int maxpool(rdml_convnet *m, int in, int k, int s, int pad, const char *name) {
    int i = add_op(m, Z_MAXPOOL, in, name);
    if (i < 0) return i;
    zop *o = &m->ops[i];
    o->k = k;
    o->s = s;
    o->pad = pad;
    o->h = (o->h + 2 * pad - k) / s + 1;
    o->wd = (o->wd + 2 * pad - k) / s + 1;
    finish_op(m, i, name);
    return i;
}

static int avgpool(rdml_convnet *m, int in, int64_t oh, int64_t ow, const char *name) {
    int i = add_op(m, Z_AVGPOOL, in, name);
    if (i < 0) return i;
    m->ops[i].h = oh;
    m->ops[i].wd = ow;
    finish_op(m, i, name);
    return i;
}

static int flatten(rdml_convnet *m, int in) {
    int i = add_op(m, Z_FLATTEN, in, NULL);
    if (i < 0) return i;
    zop *o = &m->ops[i];
    o->c = o->c * o->h * o->wd;
    o->h = o->wd = 1;
    o->vec = 1;
    return i;
}

static int linear(rdml_convnet *m, int in, int64_t out, const char *w, const char *name) {
    int i = add_op(m, Z_LINEAR, in, name);
    if (i < 0) return i;
    zop *o = &m->ops[i];
    o->cin = o->c;
    o->cout = out;
    o->c = out;
    rdml_strlcpy(o->w, w, sizeof o->w);
    finish_op(m, i, name);
    return i;
}

/* The classifier of AlexNet and VGG: Dropout, Linear, ReLU, Dropout, Linear, ReLU, Linear
 * (AlexNet) or Linear, ReLU, Dropout, Linear, ReLU, Dropout, Linear (VGG). */
static int classifier(rdml_convnet *m, int x, int vgg, int64_t hidden, int64_t classes) {
    const int kinds_a[7] = {Z_ID, Z_LINEAR, Z_RELU, Z_ID, Z_LINEAR, Z_RELU, Z_LINEAR};
    const int kinds_v[7] = {Z_LINEAR, Z_RELU, Z_ID, Z_LINEAR, Z_RELU, Z_ID, Z_LINEAR};
    const int *kinds = vgg ? kinds_v : kinds_a;
    for (int j = 0; j < 7; j++) {
        char n[48];
        snprintf(n, sizeof n, "classifier.%d", j);
        if (kinds[j] == Z_LINEAR) x = linear(m, x, j == 6 ? classes : hidden, n, n);
        else x = simple(m, kinds[j], x, n);
    }
    if (!m->err) add_layer(m, "classifier", x);
    return x;
}

static void build_alexnet(rdml_convnet *m) {
    int x = conv(m, -1, 64, 11, 4, 2, "features.0", NULL, 0, "features.0");
    x = simple(m, Z_RELU, x, "features.1");
    x = maxpool(m, x, 3, 2, 0, "features.2");
    x = conv(m, x, 192, 5, 1, 2, "features.3", NULL, 0, "features.3");
    x = simple(m, Z_RELU, x, "features.4");
    x = maxpool(m, x, 3, 2, 0, "features.5");
    x = conv(m, x, 384, 3, 1, 1, "features.6", NULL, 0, "features.6");
    x = simple(m, Z_RELU, x, "features.7");
    x = conv(m, x, 256, 3, 1, 1, "features.8", NULL, 0, "features.8");
    x = simple(m, Z_RELU, x, "features.9");
    x = conv(m, x, 256, 3, 1, 1, "features.10", NULL, 0, "features.10");
    x = simple(m, Z_RELU, x, "features.11");
    x = maxpool(m, x, 3, 2, 0, "features.12");
    if (!m->err) add_layer(m, "features", x);
    x = avgpool(m, x, 6, 6, "avgpool");
    x = flatten(m, x);
    classifier(m, x, 0, 4096, m->classes);
}

static void build_vgg16(rdml_convnet *m) {
    static const int cfg[] = {64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0,
                              512, 512, 512, 0};
    int x = -1, idx = 0;
    char n[48];
    for (size_t j = 0; j < sizeof cfg / sizeof *cfg; j++) {
        if (cfg[j]) {
            snprintf(n, sizeof n, "features.%d", idx++);
            x = conv(m, x, cfg[j], 3, 1, 1, n, NULL, 0, n);
            snprintf(n, sizeof n, "features.%d", idx++);
            x = simple(m, Z_RELU, x, n);
        } else {
            snprintf(n, sizeof n, "features.%d", idx++);
            x = maxpool(m, x, 2, 2, 0, n);
        }
    }
    if (!m->err) add_layer(m, "features", x);
    x = avgpool(m, x, 7, 7, "avgpool");
    x = flatten(m, x);
    classifier(m, x, 1, 4096, m->classes);
}

static void build_resnet(rdml_convnet *m, int bottleneck) {
    static const int blocks18[4] = {2, 2, 2, 2}, blocks50[4] = {3, 4, 6, 3};
    const int *nb = bottleneck ? blocks50 : blocks18;
    const int64_t exp = bottleneck ? 4 : 1;
    int x = conv(m, -1, 64, 7, 2, 3, "conv1", "bn1", 0, "bn1");
    x = simple(m, Z_RELU, x, "relu");
    x = maxpool(m, x, 3, 2, 1, "maxpool");
    for (int st = 0; st < 4; st++) {
        int64_t planes = (int64_t)64 << st;
        for (int b = 0; b < nb[st]; b++) {
            char p[32], w[48], bn[48], name[48];
            snprintf(p, sizeof p, "layer%d.%d", st + 1, b);
            const int stride = b == 0 && st > 0 ? 2 : 1;
            int in = x, y, idn = x;
            if (bottleneck) {
                snprintf(w, sizeof w, "%s.conv1", p);
                snprintf(bn, sizeof bn, "%s.bn1", p);
                y = conv(m, in, planes, 1, 1, 0, w, bn, 1, NULL);
                snprintf(w, sizeof w, "%s.conv2", p);
                snprintf(bn, sizeof bn, "%s.bn2", p);
                y = conv(m, y, planes, 3, stride, 1, w, bn, 1, NULL);
                snprintf(w, sizeof w, "%s.conv3", p);
                snprintf(bn, sizeof bn, "%s.bn3", p);
                y = conv(m, y, planes * 4, 1, 1, 0, w, bn, 0, NULL);
            } else {
                snprintf(w, sizeof w, "%s.conv1", p);
                snprintf(bn, sizeof bn, "%s.bn1", p);
                y = conv(m, in, planes, 3, stride, 1, w, bn, 1, NULL);
                snprintf(w, sizeof w, "%s.conv2", p);
                snprintf(bn, sizeof bn, "%s.bn2", p);
                y = conv(m, y, planes, 3, 1, 1, w, bn, 0, NULL);
            }
            if (b == 0 && (stride != 1 || m->ops[in].c != planes * exp)) {
                snprintf(w, sizeof w, "%s.downsample.0", p);
                snprintf(bn, sizeof bn, "%s.downsample.1", p);
                idn = conv(m, in, planes * exp, 1, stride, 0, w, bn, 0, NULL);
            }
            snprintf(name, sizeof name, "%s", p);
            /* the block's last convolution (conv3, or the downsample when there is one: the
             * later of the two) accumulates onto the other's output in its GEMM and applies
             * bias + ReLU in its pass over the result; the block output is that buffer */
            const int last = y > idn ? y : idn, other = y > idn ? idn : y;
            int r;
            if (!m->err && last == m->nops - 1 && m->ops[last].kind == Z_CONV && !m->ops[last].relu) {
                m->ops[last].res = other;
                m->ops[last].relu = 1;
                r = add_op(m, Z_ID, last, name);
            } else {
                r = add_op(m, Z_ADDRELU, y, name);
                if (r >= 0) m->ops[r].res = idn;
            }
            if (r >= 0) finish_op(m, r, name);
            x = r;
        }
        char name[16];
        snprintf(name, sizeof name, "layer%d", st + 1);
        if (!m->err) add_layer(m, name, x);
    }
    x = avgpool(m, x, 1, 1, "avgpool");
    x = flatten(m, x);
    linear(m, x, m->classes, "fc", "fc");
}

/* The transformer's layer list as the network's (find, list and the catalogue use it). */
static int vit_wrap(rdml_ctx *ctx, rdml_convnet *m, rdml_convnet **out) {
    const rdml_zoo_layer *L;
    int64_t n;
    rdml_vit_layers(m->vit, &L, &n);
    m->L = rdml_malloc(ctx, (size_t)n * sizeof *m->L, "layers");
    if (!m->L) {
        rdml_convnet_free(&m);
        return ctx->code;
    }
    memcpy(m->L, L, (size_t)n * sizeof *L);
    m->nl = m->capl = (int)n;
    *out = m;
    return RDML_OK;
}

int rdml_convnet_create(rdml_ctx *ctx, rdml_zoo_arch a, int64_t classes, rdml_convnet **out) {
    *out = NULL;
    if ((int)a < 0 || a >= RDML_ZOO_NARCH)
        return RDML_FAIL(ctx, RDML_EINTERNAL, "unknown zoo architecture %d", (int)a);
    if (classes < 1)
        return RDML_FAIL(ctx, RDML_EFORMAT, "%s with %lld classes", arch_names[a], (long long)classes);
    rdml_convnet *m = calloc(1, sizeof *m);
    if (!m) return RDML_FAIL(ctx, RDML_ENOMEM, "out of memory building %s", arch_names[a]);
    m->arch = a;
    m->classes = classes;
    if (a == RDML_ZOO_VIT_B_16 || a == RDML_ZOO_DINOV2) {
        int rc = rdml_vit_create(ctx, a == RDML_ZOO_DINOV2, &m->vit);
        if (rc) {
            free(m);
            return rc;
        }
        return vit_wrap(ctx, m, out);
    }
    switch (a) {
    case RDML_ZOO_ALEXNET: build_alexnet(m); break;
    case RDML_ZOO_VGG16: build_vgg16(m); break;
    case RDML_ZOO_RESNET18: build_resnet(m, 0); break;
    default: build_resnet(m, 1); break;
    }
    if (m->err) {
        rdml_convnet_free(&m);
        return RDML_FAIL(ctx, RDML_ENOMEM, "out of memory building %s", arch_names[a]);
    }
    *out = m;
    return RDML_OK;
}

void rdml_convnet_free(rdml_convnet **pm) {
    if (!pm || !*pm) return;
    rdml_convnet *m = *pm;
    for (int i = 0; i < m->nops; i++) {
        free(m->ops[i].wt);
        free(m->ops[i].b);
    }
    free(m->ops);
    free(m->L);
    free(m->layer_op);
    rdml_vit_free(&m->vit);
    free(m);
    *pm = NULL;
}

rdml_zoo_arch rdml_convnet_arch(const rdml_convnet *m) { return m->arch; }
int64_t rdml_convnet_nlayers(const rdml_convnet *m) { return m->nl; }
const rdml_zoo_layer *rdml_convnet_layer(const rdml_convnet *m, int64_t i) {
    return i >= 0 && i < m->nl ? &m->L[i] : NULL;
}
int64_t rdml_convnet_find(const rdml_convnet *m, const char *name) {
    for (int i = 0; i < m->nl; i++)
        if (strcmp(m->L[i].name, name) == 0) return i;
    return -1;
}
void rdml_convnet_layer_list(const rdml_convnet *m, char *buf, size_t len) {
    size_t o = 0;
    if (len) buf[0] = '\0';
    for (int i = 0; i < m->nl && o + 1 < len; i++) {
        size_t need = strlen(m->L[i].name) + 2;
        if (o + need + 5 >= len) {
            snprintf(buf + o, len - o, "...");
            return;
        }
        o += (size_t)snprintf(buf + o, len - o, "%s%s", i ? ", " : "", m->L[i].name);
    }
}

/* ---- loading ---- */

typedef struct loader {
    rdml_ctx *ctx;
    rdml_weights *w;
    const char *arch;
    char *used;
} loader;

static void shape_str(char *buf, size_t len, int ndim, const int64_t *shape) {
    size_t o = (size_t)snprintf(buf, len, "[");
    for (int i = 0; i < ndim && o < len; i++)
        o += (size_t)snprintf(buf + o, len - o, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (o < len) snprintf(buf + o, len - o, "]");
}

/* Tensor `name` of the given shape, read as float32 into a new buffer (*dst). */
static int get(loader *ld, const char *name, int ndim, const int64_t *shape, float **dst) {
    int64_t i = rdml_weights_index(ld->w, name);
    char want[96], got[96];
    shape_str(want, sizeof want, ndim, shape);
    if (i < 0)
        return RDML_FAIL(ld->ctx, RDML_EFORMAT, "%s: tensor '%s' (shape %s) is missing (hint: "
                         "a torchvision %s state dict is expected, tensors named as "
                         "model.state_dict() names them; `rdmlearn models` lists the "
                         "architectures)", rdml_weights_path(ld->w), name, want, ld->arch);
    const rdml_st_tensor *t = rdml_weights_at(ld->w, i);
    ld->used[i] = 1;
    int same = t->ndim == ndim;
    for (int d = 0; d < ndim && same; d++) same = t->shape[d] == shape[d];
    if (!same) {
        shape_str(got, sizeof got, t->ndim, t->shape);
        return RDML_FAIL(ld->ctx, RDML_EFORMAT, "%s: tensor '%s' has shape %s but %s expects "
                         "%s (hint: these are weights of another architecture; set "
                         "embed.model to the network they belong to)", rdml_weights_path(ld->w),
                         name, got, ld->arch, want);
    }
    int64_t n = 1;
    for (int d = 0; d < ndim; d++) n *= shape[d];
    *dst = rdml_malloc(ld->ctx, (size_t)(n + 1) * sizeof **dst, name);
    if (!*dst) return ld->ctx->code;
    return rdml_weights_read_f32(ld->ctx, ld->w, t, *dst);
}

static int load_conv(loader *ld, zop *o) {
    char n[96];
    const int64_t K = (int64_t)o->k * o->k * o->cin;
    int64_t s4[4] = {o->cout, o->cin, o->k, o->k}, s1[1] = {o->cout};
    float *w = NULL, *b = NULL, *g = NULL, *beta = NULL, *mu = NULL, *var = NULL;
    snprintf(n, sizeof n, "%s.weight", o->w);
    int rc = get(ld, n, 4, s4, &w);
    if (!rc && !o->bn[0]) {
        snprintf(n, sizeof n, "%s.bias", o->w);
        rc = get(ld, n, 1, s1, &b);
    }
    if (!rc && o->bn[0]) {
        snprintf(n, sizeof n, "%s.weight", o->bn);
        rc = get(ld, n, 1, s1, &g);
        snprintf(n, sizeof n, "%s.bias", o->bn);
        if (!rc) rc = get(ld, n, 1, s1, &beta);
        snprintf(n, sizeof n, "%s.running_mean", o->bn);
        if (!rc) rc = get(ld, n, 1, s1, &mu);
        snprintf(n, sizeof n, "%s.running_var", o->bn);
        if (!rc) rc = get(ld, n, 1, s1, &var);
        if (!rc) {
            b = rdml_malloc(ld->ctx, (size_t)o->cout * sizeof *b, "folded bias");
            if (!b) rc = ld->ctx->code;
        }
    }
    if (!rc) {
        o->wt = rdml_malloc(ld->ctx, (size_t)(o->cout * K) * sizeof *o->wt, o->w);
        if (!o->wt) rc = ld->ctx->code;
    }
    if (!rc) {
        for (int64_t co = 0; co < o->cout; co++) {
            double sc = 1.0;
            if (o->bn[0]) {
                sc = (double)g[co] / sqrt((double)var[co] + 1e-5);
                b[co] = (float)((double)beta[co] - (double)mu[co] * sc);
            }
            /* torch [cout][cin][ky][kx] -> [cout][ky][kx][cin] */
            for (int64_t ci = 0; ci < o->cin; ci++)
                for (int ky = 0; ky < o->k; ky++)
                    for (int kx = 0; kx < o->k; kx++)
                        o->wt[co * K + ((int64_t)ky * o->k + kx) * o->cin + ci] =
                            (float)(w[((co * o->cin + ci) * o->k + ky) * o->k + kx] * sc);
        }
        o->b = b;
        b = NULL;
    }
    free(w);
    free(b);
    free(g);
    free(beta);
    free(mu);
    free(var);
    return rc;
}

static int load_linear(loader *ld, zop *o) {
    char n[96];
    int64_t s2[2] = {o->cout, o->cin}, s1[1] = {o->cout};
    snprintf(n, sizeof n, "%s.weight", o->w);
    RDML_TRY(get(ld, n, 2, s2, &o->wt));
    snprintf(n, sizeof n, "%s.bias", o->w);
    return get(ld, n, 1, s1, &o->b);
}

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

int rdml_convnet_load(rdml_ctx *ctx, rdml_zoo_arch a, const char *path, rdml_convnet **out) {
    *out = NULL;
    rdml_weights *w = NULL;
    RDML_TRY(rdml_weights_open(ctx, path, &w));
    if (a == RDML_ZOO_VIT_B_16 || a == RDML_ZOO_DINOV2) {
        rdml_convnet *m = calloc(1, sizeof *m);
        int rc = m ? RDML_OK : RDML_FAIL(ctx, RDML_ENOMEM, "out of memory loading %s", path);
        if (!rc) {
            m->arch = a;
            rc = rdml_vit_load(ctx, a == RDML_ZOO_DINOV2, w, &m->vit);
            if (rc) free(m);
        }
        rdml_weights_close(&w);
        return rc ? rc : vit_wrap(ctx, m, out);
    }
    const char *last = a == RDML_ZOO_ALEXNET || a == RDML_ZOO_VGG16 ? "classifier.6.weight" : "fc.weight";
    int64_t li = rdml_weights_index(w, last);
    int rc = RDML_OK;
    int64_t classes = 1000;
    if (li >= 0 && rdml_weights_at(w, li)->ndim == 2) classes = rdml_weights_at(w, li)->shape[0];
    rdml_convnet *m = NULL;
    if (!rc) rc = rdml_convnet_create(ctx, a, classes, &m);
    loader ld = {ctx, w, arch_names[a], NULL};
    if (!rc) {
        ld.used = rdml_calloc(ctx, (size_t)rdml_weights_count(w) + 1, 1, "tensor use");
        if (!ld.used) rc = ctx->code;
    }
    for (int i = 0; m && i < m->nops && !rc; i++) {
        if (m->ops[i].kind == Z_CONV) rc = load_conv(&ld, &m->ops[i]);
        else if (m->ops[i].kind == Z_LINEAR) rc = load_linear(&ld, &m->ops[i]);
    }
    if (!rc) {
        int64_t bad = 0;
        char list[600] = "";
        size_t o = 0;
        for (int64_t i = 0; i < rdml_weights_count(w); i++) {
            const char *name = rdml_weights_at(w, i)->name;
            if (ld.used[i] || ends_with(name, ".num_batches_tracked")) continue;
            if (bad++ < 4 && o < sizeof list)
                o += (size_t)snprintf(list + o, sizeof list - o, "%s'%s'", bad > 1 ? ", " : "", name);
        }
        if (bad)
            rc = RDML_FAIL(ctx, RDML_EFORMAT, "%s: %lld tensor%s not part of torchvision's %s: "
                           "%s%s (hint: weights of another architecture or a model with extra "
                           "modules; set embed.model to the network they belong to)", path,
                           (long long)bad, bad == 1 ? " is" : "s are", arch_names[a], list,
                           bad > 4 ? ", ..." : "");
    }
    free(ld.used);
    rdml_weights_close(&w);
    if (rc) {
        rdml_convnet_free(&m);
        return rc;
    }
    *out = m;
    return RDML_OK;
}

/* ---- forward ---- */

/* Buffers freed during a forward pass are kept for the next allocation that fits (best
 * fit), so the pass does not page-fault fresh memory for every module (the ResNet blocks
 * repeat the same sizes); all are released at the end. */
#define NCACHE 32
typedef struct bufcache {
    float *p[NCACHE];
    int64_t n[NCACHE];
    int cnt;
} bufcache;

static float *cache_get(rdml_ctx *ctx, bufcache *c, int64_t count, int64_t *cap, const char *what) {
    int best = -1;
    for (int i = 0; i < c->cnt; i++)
        if (c->n[i] >= count && (best < 0 || c->n[i] < c->n[best])) best = i;
    if (best >= 0) {
        float *p = c->p[best];
        *cap = c->n[best];
        c->p[best] = c->p[--c->cnt];
        c->n[best] = c->n[c->cnt];
        return p;
    }
    *cap = count;
    return rdml_malloc(ctx, (size_t)(count + 1) * sizeof(float), what);
}

static void cache_put(bufcache *c, float *p, int64_t cap) {
    if (!p) return;
    if (c->cnt < NCACHE) {
        c->p[c->cnt] = p;
        c->n[c->cnt++] = cap;
        return;
    }
    int small = 0; /* full: drop the smallest */
    for (int i = 1; i < c->cnt; i++)
        if (c->n[i] < c->n[small]) small = i;
    if (c->n[small] < cap) {
        free(c->p[small]);
        c->p[small] = p;
        c->n[small] = cap;
    } else {
        free(p);
    }
}

static void cache_free(bufcache *c) {
    for (int i = 0; i < c->cnt; i++) free(c->p[i]);
    c->cnt = 0;
}

/* Row passes of a convolution, on rdml_par_for's threads. */
typedef struct conv_job {
    const zop *o;
    const float *x;
    float *y, *col;
    int64_t H, W, m0, M, rows;
    int mode; /* fill: rows = bias; post: rows = ReLU(rows (+ bias)) */
} conv_job;

enum { CJ_FILL, CJ_RELU, CJ_BIAS_RELU };

static void conv_pass(const zop *o, float *y, int64_t rows, int mode) {
    const int64_t Co = o->cout;
    const float *b = o->b;
    for (int64_t r = 0; r < rows; r++) {
        float *row = y + r * Co;
        if (mode == CJ_FILL)
            memcpy(row, b, (size_t)Co * sizeof *row);
        else if (mode == CJ_RELU)
            for (int64_t c = 0; c < Co; c++) row[c] = row[c] > 0.0f ? row[c] : 0.0f;
        else
            for (int64_t c = 0; c < Co; c++) {
                float v = row[c] + b[c];
                row[c] = v > 0.0f ? v : 0.0f;
            }
    }
}

static void conv_rows(void *arg, int thread, int64_t r0, int64_t r1) {
    const conv_job *j = arg;
    conv_pass(j->o, j->y + r0 * j->o->cout, r1 - r0, j->mode);
}

/* im2col of output rows m0 .. m0 + mr - 1 into col: (ky, kx, cin), zeros outside */
static void im2col(const zop *o, const float *x, int64_t H, int64_t W, int64_t m0, int64_t mr,
                   float *col) {
    const int64_t Ci = o->cin, OH = o->h, OW = o->wd, K = (int64_t)o->k * o->k * Ci;
    for (int64_t r = 0; r < mr; r++) {
        const int64_t mm = m0 + r, b = mm / (OH * OW), oy = (mm / OW) % OH, ox = mm % OW;
        float *c = col + r * K;
        const int64_t ix0 = ox * o->s - o->pad;
        for (int ky = 0; ky < o->k; ky++) {
            const int64_t iy = oy * o->s - o->pad + ky;
            if (iy >= 0 && iy < H && ix0 >= 0 && ix0 + o->k <= W) { /* the row's k taps at once */
                memcpy(c, x + ((b * H + iy) * W + ix0) * Ci, (size_t)(o->k * Ci) * sizeof *c);
                c += o->k * Ci;
                continue;
            }
            for (int kx = 0; kx < o->k; kx++, c += Ci) {
                const int64_t ix = ix0 + kx;
                if (iy < 0 || iy >= H || ix < 0 || ix >= W)
                    memset(c, 0, (size_t)Ci * sizeof *c);
                else
                    memcpy(c, x + ((b * H + iy) * W + ix) * Ci, (size_t)Ci * sizeof *c);
            }
        }
    }
}

static void im2col_rows(void *arg, int thread, int64_t r0, int64_t r1) {
    const conv_job *j = arg;
    const int64_t K = (int64_t)j->o->k * j->o->k * j->o->cin;
    im2col(j->o, j->x, j->H, j->W, j->m0 + r0, r1 - r0, j->col + r0 * K);
}

static int is_1x1(const zop *o) { return o->k == 1 && o->s == 1 && o->pad == 0; }

/* Tiles of `rows` output rows, one thread and one BLAS thread each: im2col into the thread's
 * buffer, y = bias (or the residual already there), the GEMM adds onto it, then the ReLU,
 * all while the tile is in cache. */
static void conv_tiles(void *arg, int thread, int64_t t0, int64_t t1) {
    const conv_job *j = arg;
    const zop *o = j->o;
    const int64_t Co = o->cout, K = (int64_t)o->k * o->k * o->cin;
    for (int64_t t = t0; t < t1; t++) {
        const int64_t m0 = t * j->rows, mr = j->M - m0 < j->rows ? j->M - m0 : j->rows;
        const float *a = j->x + m0 * K;
        if (!is_1x1(o)) {
            float *col = j->col + (int64_t)thread * j->rows * K;
            im2col(o, j->x, j->H, j->W, m0, mr, col);
            a = col;
        }
        float *yt = j->y + m0 * Co;
        if (j->mode == CJ_FILL) conv_pass(o, yt, mr, CJ_FILL);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)mr, (int)Co, (int)K, 1.0f, a,
                    (int)K, o->wt, (int)K, 1.0f, yt, (int)Co);
        if (j->mode == CJ_BIAS_RELU || o->relu) conv_pass(o, yt, mr, j->mode == CJ_FILL ? CJ_RELU : CJ_BIAS_RELU);
    }
}

/* y[M x cout] = im2col(x)[M x K] @ w^T + b (+ y when accumulate: a ResNet block's residual),
 * ReLU when asked; x is B x H x W x cin (a 1x1 stride-1 convolution reads it as is). y starts
 * as the bias (or the residual) and the GEMMs add onto it (beta = 1: OpenBLAS then skips its
 * pass over C), so the only other pass is the ReLU (with the bias, for a residual). A large
 * convolution runs as tiles of TILE floats (at least 2 cout rows), each on one thread from
 * im2col to ReLU in cache (im2col into a 32 MiB buffer, then the packing GEMM, cost ~20% more
 * for ResNet's 3 x 3 layers); a small one (under 8 tiles: ResNet's last stage) as whole
 * passes and one multi-threaded GEMM per CHUNK of im2col rows. Which way depends on the
 * shapes only, and the GEMMs never split K, so results do not depend on the threads. */
#define TILE ((int64_t)1 << 19)
static int run_conv(rdml_ctx *ctx, bufcache *bc, const zop *o, const zop *src_shape, int64_t B,
                    const float *x, float *y, int accumulate) {
    const int64_t H = src_shape ? src_shape->h : RDML_ZOO_IMAGE;
    const int64_t W = src_shape ? src_shape->wd : RDML_ZOO_IMAGE;
    const int64_t OH = o->h, OW = o->wd, Co = o->cout;
    const int64_t K = (int64_t)o->k * o->k * o->cin, M = B * OH * OW;
    conv_job j = {o, x, y, NULL, H, W, 0, M, 0, accumulate ? CJ_BIAS_RELU : CJ_FILL};
    j.rows = TILE / (K > Co ? K : Co);
    if (j.rows < 2 * Co) j.rows = 2 * Co;
    const int64_t tiles = (M + j.rows - 1) / j.rows;
    if (tiles >= 8) {
        int64_t ccap = 0;
        if (!is_1x1(o)) {
            j.col = cache_get(ctx, bc, rdml_par_threads() * j.rows * K, &ccap, "im2col");
            if (!j.col) return ctx->code;
        }
        rdml_par_for(tiles, 1, 1, conv_tiles, &j);
        cache_put(bc, j.col, ccap);
        return RDML_OK;
    }
    if (!accumulate) rdml_par_for(M, 256, 0, conv_rows, &j);
    if (is_1x1(o)) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)M, (int)Co, (int)K, 1.0f, x,
                    (int)K, o->wt, (int)K, 1.0f, y, (int)Co);
    } else {
        int64_t rows = CHUNK / K;
        if (rows < 1) rows = 1;
        if (rows > M) rows = M;
        int64_t ccap = 0;
        float *col = cache_get(ctx, bc, rows * K, &ccap, "im2col");
        if (!col) return ctx->code;
        for (int64_t m0 = 0; m0 < M; m0 += rows) {
            const int64_t mr = M - m0 < rows ? M - m0 : rows;
            conv_job c = {o, x, NULL, col, H, W, m0, M, 0, 0};
            rdml_par_for(mr, 64, 0, im2col_rows, &c);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)mr, (int)Co, (int)K, 1.0f,
                        col, (int)K, o->wt, (int)K, 1.0f, y + m0 * Co, (int)Co);
        }
        cache_put(bc, col, ccap);
    }
    if (accumulate || o->relu) {
        j.mode = accumulate ? CJ_BIAS_RELU : CJ_RELU;
        rdml_par_for(M, 256, 0, conv_rows, &j);
    }
    return RDML_OK;
}

typedef struct pool_job {
    const zop *o, *in;
    const float *x, *r;
    float *y;
} pool_job;

/* output rows (b, oy) r0 .. r1 */
static void maxpool_rows(void *arg, int thread, int64_t r0, int64_t r1) {
    const pool_job *j = arg;
    const zop *o = j->o, *in = j->in;
    const float *x = j->x;
    float *y = j->y;
    const int64_t H = in->h, W = in->wd, C = in->c, OH = o->h, OW = o->wd;
    for (int64_t row = r0; row < r1; row++) {
        const int64_t b = row / OH, oy = row % OH;
        for (int64_t ox = 0; ox < OW; ox++) {
            float *d = y + ((b * OH + oy) * OW + ox) * C;
            for (int64_t c = 0; c < C; c++) d[c] = -FLT_MAX;
            for (int ky = 0; ky < o->k; ky++) {
                const int64_t iy = oy * o->s - o->pad + ky;
                if (iy < 0 || iy >= H) continue;
                for (int kx = 0; kx < o->k; kx++) {
                    const int64_t ix = ox * o->s - o->pad + kx;
                    if (ix < 0 || ix >= W) continue;
                    const float *s = x + ((b * H + iy) * W + ix) * C;
                    for (int64_t c = 0; c < C; c++) d[c] = s[c] > d[c] ? s[c] : d[c];
                }
            }
        }
    }
}

static void run_maxpool(const zop *o, const zop *in, int64_t B, const float *x, float *y) {
    pool_job j = {o, in, x, NULL, y};
    rdml_par_for(B * o->h, 4, 0, maxpool_rows, &j);
}

/* element-wise passes over n floats: ReLU(x), ReLU(x + r) */
static void relu_span(void *arg, int thread, int64_t i0, int64_t i1) {
    const pool_job *j = arg;
    if (j->r)
        for (int64_t i = i0; i < i1; i++) {
            float v = j->x[i] + j->r[i];
            j->y[i] = v > 0.0f ? v : 0.0f;
        }
    else
        for (int64_t i = i0; i < i1; i++) j->y[i] = j->x[i] > 0.0f ? j->x[i] : 0.0f;
}

/* AdaptiveAvgPool2d: bin i covers [floor(i H / OH), ceil((i + 1) H / OH)). */
static int run_avgpool(rdml_ctx *ctx, const zop *o, const zop *in, int64_t B, const float *x,
                       float *y) {
    const int64_t H = in->h, W = in->wd, C = in->c, OH = o->h, OW = o->wd;
    double *acc = rdml_malloc(ctx, (size_t)C * sizeof *acc, "average pool");
    if (!acc) return ctx->code;
    for (int64_t b = 0; b < B; b++)
        for (int64_t oy = 0; oy < OH; oy++)
            for (int64_t ox = 0; ox < OW; ox++) {
                const int64_t y0 = oy * H / OH, y1 = ((oy + 1) * H + OH - 1) / OH;
                const int64_t x0 = ox * W / OW, x1 = ((ox + 1) * W + OW - 1) / OW;
                for (int64_t c = 0; c < C; c++) acc[c] = 0;
                for (int64_t iy = y0; iy < y1; iy++)
                    for (int64_t ix = x0; ix < x1; ix++) {
                        const float *s = x + ((b * H + iy) * W + ix) * C;
                        for (int64_t c = 0; c < C; c++) acc[c] += s[c];
                    }
                const double inv = 1.0 / (double)((y1 - y0) * (x1 - x0));
                float *d = y + ((b * OH + oy) * OW + ox) * C;
                for (int64_t c = 0; c < C; c++) d[c] = (float)(acc[c] * inv);
            }
    free(acc);
    return RDML_OK;
}

/* channels-last B x H x W x C <-> torch order B x C x H x W, per image */
typedef struct perm_job {
    int64_t HW, C;
    const float *x;
    float *y;
    int to_nchw;
} perm_job;

static void perm_images(void *arg, int thread, int64_t b0, int64_t b1) {
    const perm_job *j = arg;
    const int64_t HW = j->HW, C = j->C;
    for (int64_t b = b0; b < b1; b++)
        for (int64_t i = 0; i < HW; i++)
            for (int64_t c = 0; c < C; c++) {
                if (j->to_nchw)
                    j->y[(b * C + c) * HW + i] = j->x[(b * HW + i) * C + c];
                else
                    j->y[(b * HW + i) * C + c] = j->x[(b * C + c) * HW + i];
            }
}

static void to_nchw(int64_t B, int64_t H, int64_t W, int64_t C, const float *x, float *y) {
    perm_job j = {H * W, C, x, y, 1};
    rdml_par_for(B, 1, 0, perm_images, &j);
}

int rdml_convnet_forward(rdml_ctx *ctx, const rdml_convnet *m, int64_t B, const float *pixels,
                         int64_t n, const int64_t *layers, rdml_zoo_emit emit, void *arg) {
    if (m->vit) return rdml_vit_forward(ctx, m->vit, B, pixels, n, layers, emit, arg);
    if (B < 1 || n < 1) return RDML_OK;
    const int nops = m->nops;
    int last = -1;
    for (int64_t k = 0; k < n; k++) {
        if (layers[k] < 0 || layers[k] >= m->nl)
            return RDML_FAIL(ctx, RDML_EINTERNAL, "layer index %lld out of range", (long long)layers[k]);
        if (m->layer_op[layers[k]] > last) last = m->layer_op[layers[k]];
    }
    bufcache bc = {{0}, {0}, 0};
    int64_t *cap = rdml_calloc(ctx, (size_t)nops + 1, sizeof *cap, "activations");
    float **buf = rdml_calloc(ctx, (size_t)nops + 1, sizeof *buf, "activations");
    int *lastuse = rdml_calloc(ctx, (size_t)nops + 1, sizeof *lastuse, "activations");
    float *img = NULL, *tmp = NULL;
    int rc = buf && lastuse && cap ? RDML_OK : ctx->code;
    if (!rc) {
        for (int i = 0; i < nops; i++) lastuse[i] = i;
        for (int i = 0; i <= last; i++) {
            if (m->ops[i].in >= 0 && i > lastuse[m->ops[i].in]) lastuse[m->ops[i].in] = i;
            if (m->ops[i].res >= 0 && i > lastuse[m->ops[i].res]) lastuse[m->ops[i].res] = i;
        }
        /* the image, channels-last */
        const int64_t S = RDML_ZOO_IMAGE;
        img = rdml_malloc(ctx, (size_t)(B * 3 * S * S) * sizeof *img, "input images");
        if (!img) rc = ctx->code;
        perm_job pj = {S * S, 3, pixels, img, 0};
        if (!rc) rdml_par_for(B, 1, 0, perm_images, &pj);
    }
    int64_t maxsz = 0;
    for (int i = 0; i <= last; i++) {
        int64_t sz = m->ops[i].c * m->ops[i].h * m->ops[i].wd;
        if (sz > maxsz) maxsz = sz;
    }
    if (!rc) {
        tmp = rdml_malloc(ctx, (size_t)(B * maxsz + 1) * sizeof *tmp, "layer output");
        if (!tmp) rc = ctx->code;
    }
    for (int i = 0; i <= last && !rc; i++) {
        if (rdml_stop_requested()) {
            rc = rdml_stop_check(ctx, "in a forward pass");
            break;
        }
        const zop *o = &m->ops[i];
        const zop *in = o->in >= 0 ? &m->ops[o->in] : NULL;
        const float *x = o->in >= 0 ? buf[o->in] : img;
        const int64_t sz = B * o->c * o->h * o->wd;
        const int reuse = (o->kind == Z_RELU || o->kind == Z_ID || o->kind == Z_FLATTEN ||
                           o->kind == Z_ADDRELU) && o->in >= 0 && lastuse[o->in] == i;
        float *y;
        if (reuse && o->kind != Z_FLATTEN) {
            y = buf[o->in];
            cap[i] = cap[o->in];
            buf[o->in] = NULL;
        } else if (o->kind == Z_CONV && o->res >= 0 && lastuse[o->res] == i) {
            y = buf[o->res]; /* the residual, accumulated onto */
            cap[i] = cap[o->res];
            buf[o->res] = NULL;
        } else {
            y = cache_get(ctx, &bc, sz, &cap[i], "activations");
            if (!y) {
                rc = ctx->code;
                break;
            }
        }
        switch (o->kind) {
        case Z_CONV:
            if (o->res >= 0 && buf[o->res]) /* the residual is read later: a copy */
                memcpy(y, buf[o->res], (size_t)sz * sizeof *y);
            rc = run_conv(ctx, &bc, o, in, B, x, y, o->res >= 0);
            break;
        case Z_RELU: {
            pool_job j = {o, in, x, NULL, y};
            rdml_par_for(sz, 1 << 14, 0, relu_span, &j);
            break;
        }
        case Z_ID:
            if (y != x) memcpy(y, x, (size_t)sz * sizeof *y);
            break;
        case Z_MAXPOOL: run_maxpool(o, in, B, x, y); break;
        case Z_AVGPOOL: rc = run_avgpool(ctx, o, in, B, x, y); break;
        case Z_FLATTEN: to_nchw(B, in->h, in->wd, in->c, x, y); break;
        case Z_LINEAR:
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)B, (int)o->cout,
                        (int)o->cin, 1.0f, x, (int)o->cin, o->wt, (int)o->cin, 0.0f, y,
                        (int)o->cout);
            for (int64_t b = 0; b < B; b++)
                for (int64_t c = 0; c < o->cout; c++) y[b * o->cout + c] += o->b[c];
            break;
        case Z_ADDRELU: {
            pool_job j = {o, in, x, buf[o->res], y};
            rdml_par_for(sz, 1 << 14, 0, relu_span, &j);
            break;
        }
        default: rc = RDML_FAIL(ctx, RDML_EINTERNAL, "unknown module kind %d", o->kind);
        }
        buf[i] = y;
        /* the module outputs this op produces that were asked for */
        for (int64_t k = 0; k < n && !rc; k++) {
            if (m->layer_op[layers[k]] != i) continue;
            const rdml_zoo_layer *L = &m->L[layers[k]];
            const float *v = y;
            if (!o->vec && (o->h > 1 || o->wd > 1)) {
                to_nchw(B, o->h, o->wd, o->c, y, tmp);
                v = tmp;
            }
            rc = emit(arg, k, B, L, v);
        }
        /* free what no later op reads */
        if (o->in >= 0 && lastuse[o->in] == i && buf[o->in]) {
            cache_put(&bc, buf[o->in], cap[o->in]);
            buf[o->in] = NULL;
        }
        if (o->res >= 0 && lastuse[o->res] == i && buf[o->res]) {
            cache_put(&bc, buf[o->res], cap[o->res]);
            buf[o->res] = NULL;
        }
    }
    for (int i = 0; buf && i < nops; i++) free(buf[i]);
    cache_free(&bc);
    free(buf);
    free(cap);
    free(lastuse);
    free(img);
    free(tmp);
    return rc;
}
