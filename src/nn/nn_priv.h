/* Internal helpers of the nn module (src/nn/), not part of the public API. */
#ifndef RDML_NN_PRIV_H
#define RDML_NN_PRIV_H

#include <stdint.h>
#include <string.h>

/* c ? v : 0, bit for bit (NaN and -0 included), without a branch: a ReLU's sign and a dropout
 * draw are random, so a branch would be mispredicted half of the time, and a select whose arm
 * multiplies is not if-converted by the compiler (the product might trap), so the loop would
 * not vectorise. */
static inline float rdml_nn_sel(int c, float v) {
    uint32_t b;
    memcpy(&b, &v, sizeof b);
    b &= (uint32_t)0 - (uint32_t)c;
    memcpy(&v, &b, sizeof v);
    return v;
}

#endif
