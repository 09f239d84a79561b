/* rdml/pymap.h — the pickled {int: str} dictionaries of the Algonauts mapping_*.npy files.
 *
 * Example:
 *
 *   int list_rois(rdml_ctx *ctx, const char *path) {  // "subj01/roi_masks/mapping_prf-visualrois.npy"
 *       rdml_pymap m;
 *       RDML_TRY(rdml_pymap_read(ctx, path, &m));
 *       for (int64_t i = 0; i < m.n; i++) printf("%lld -> %s\n", (long long)m.keys[i], m.names[i]);
 *       rdml_pymap_free(&m);
 *       return RDML_OK;
 *   }
 *
 * The reader walks pickle opcodes and accepts exactly the subset numpy's np.save writes for a
 * 0-d object array holding a dict of int to str, with protocols 2, 3 and 4. It never executes
 * or imports anything: GLOBAL / STACK_GLOBAL must name numpy's _reconstruct, ndarray or
 * dtype (numpy.core or numpy 2's numpy._core; protocol 2 also needs _codecs.encode for a
 * bytes literal), and any other opcode is refused with its name and offset. The writer
 * produces the same bytes numpy 1.x writes (protocol 3) whenever the names are distinct
 * strings (pickle would emit a memo reference for one str object used as two values).
 * Not collective.
 */
#ifndef RDML_PYMAP_H
#define RDML_PYMAP_H

#include <stddef.h>
#include <stdint.h>

#include "rdml/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rdml_pymap {
    int64_t n;     /* number of entries */
    int64_t *keys; /* n keys, in the dict's insertion order */
    char **names;  /* n UTF-8 names, owned */
} rdml_pymap;

/* Read a mapping .npy file (header must be '|O' with shape ()). */
int rdml_pymap_read(rdml_ctx *ctx, const char *path, rdml_pymap *out);
/* Parse the pickle stream alone (`what` names it in messages). For fuzzing and tests. */
int rdml_pymap_parse(rdml_ctx *ctx, const char *what, const uint8_t *buf, size_t len,
                     rdml_pymap *out);
/* Write a mapping .npy byte-identical to numpy 1.x np.save(path, dict) (protocol 3).
 * Keys must fit numpy's int encodings (any int64). Written under a temporary name, renamed. */
int rdml_pymap_write(rdml_ctx *ctx, const char *path, const rdml_pymap *m);
/* The name for `key`, or NULL. */
const char *rdml_pymap_get(const rdml_pymap *m, int64_t key);
void rdml_pymap_free(rdml_pymap *m);

#ifdef __cplusplus
}
#endif
#endif
