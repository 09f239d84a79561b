/* rdml/pth.h — PyTorch checkpoints (.pth / .pt, the zip format of torch.save) read safely.
 *
 * Example:
 *
 *   #include <stdio.h>
 *
 *   int list_state_dict(rdml_ctx *ctx, const char *path) {   // "resnet18-f37072fd.pth"
 *       rdml_pth *f;
 *       RDML_TRY(rdml_pth_open(ctx, path, &f));                // refuses anything but tensors
 *       for (int64_t i = 0; i < rdml_pth_count(f); i++) {
 *           const rdml_st_tensor *t = rdml_pth_at(f, i);
 *           printf("%s %s %d-d\n", t->name, rdml_st_dtype_name(t->dtype), t->ndim);
 *       }
 *       rdml_pth_close(&f);
 *       return RDML_OK;
 *   }
 *
 * What torch.load(path, weights_only=True) accepts for a state dict, and nothing more: the
 * archive's <dir>/data.pkl is interpreted by a restricted pickle machine (never executed,
 * nothing imported) that knows the opcodes of protocols 2 to 5 a state dict uses and the
 * globals collections.OrderedDict, torch._utils._rebuild_tensor_v2,
 * torch._utils._rebuild_parameter and the storage types torch.{Float,Double,Half,BFloat16,
 * Long,Int,Short,Char,Byte,Bool}Storage (only as the type in a persistent id
 * ('storage', type, key, location, numel)). Any other global, a REDUCE or BUILD on anything
 * else, any other opcode, a truncated pickle, a storage entry missing from the zip or too
 * short for its tensor, or a non-contiguous tensor is an error naming it, with its byte
 * offset in data.pkl. The result is a flat {name: tensor} dict (a state dict, or a dict
 * holding one under "state_dict" or "model"); tensors are described with the safetensors
 * types (rdml/safetensors.h: begin = element offset into its storage) and read on demand.
 * Not collective.
 */
#ifndef RDML_PTH_H
#define RDML_PTH_H

#include <stddef.h>
#include <stdint.h>

#include "rdml/core.h"
#include "rdml/safetensors.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rdml_pth rdml_pth;

int rdml_pth_open(rdml_ctx *ctx, const char *path, rdml_pth **out);
void rdml_pth_close(rdml_pth **f);
int64_t rdml_pth_count(const rdml_pth *f);
const rdml_st_tensor *rdml_pth_at(const rdml_pth *f, int64_t i);
int64_t rdml_pth_index(const rdml_pth *f, const char *name); /* -1 when absent */
const char *rdml_pth_path(const rdml_pth *f);
/* A float tensor (F32, F64, F16, BF16) converted to float32: t->count values. */
int rdml_pth_read_f32(rdml_ctx *ctx, const rdml_pth *f, const rdml_st_tensor *t, float *out);

/* Interpret a data.pkl image alone (no archive: storages are not looked up), for fuzzing and
 * tests: RDML_OK with the number of tensors of the state dict, or the error open would give. */
int rdml_pth_parse_pickle(rdml_ctx *ctx, const char *what, const uint8_t *buf, size_t len,
                          int64_t *ntensors);

#ifdef __cplusplus
}
#endif
#endif
