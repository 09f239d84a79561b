/* Private pieces shared by the embedding backends (src/embed). */
#ifndef RDML_EMBED_PRIV_H
#define RDML_EMBED_PRIV_H

#include "rdml/embed.h"

/* Pillow convert('L') of any channel count (1: copy, 2: the gray channel, 3/4: ITU-R 601-2
 * luma in 16-bit fixed point); out has w * h bytes. */
void rdml_embed_gray(const rdml_image *im, uint8_t *out);

#endif
