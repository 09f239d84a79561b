/* Private: the zoo's vision transformers (vit.c), wrapped by rdml_convnet (convnet.c). */
#ifndef RDML_EMBED_VIT_H
#define RDML_EMBED_VIT_H

#include "rdml/zoo.h"

typedef struct rdml_vit rdml_vit;
/* dino = 0: torchvision's vit_*; 1: DINOv2. create: vit_b_16 / DINOv2 B/14 without weights
 * (for listing layers). load: every tensor of w checked, the architecture from shapes. */
int rdml_vit_create(rdml_ctx *ctx, int dino, rdml_vit **out);
int rdml_vit_load(rdml_ctx *ctx, int dino, const rdml_weights *w, rdml_vit **out);
void rdml_vit_free(rdml_vit **m);
void rdml_vit_layers(const rdml_vit *m, const rdml_zoo_layer **L, int64_t *n);
int rdml_vit_forward(rdml_ctx *ctx, const rdml_vit *m, int64_t B, const float *pixels, int64_t n,
                     const int64_t *layers, rdml_zoo_emit emit, void *arg);
const char *rdml_vit_describe(const rdml_vit *m, char *buf, size_t len);

#endif
