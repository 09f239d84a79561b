/* core/radix.h (internal) — the one stable LSD radix sort of 64-bit keys, shared by the
 * rank statistics (stats/weighted.c: the bootstrap's sort order of a pooled RDM), the RDM
 * comparisons (rsa/corr.c: Spearman and Kendall tau-a orders, dense ranks of doubles), and
 * the order-preserving keys of doubles and floats (also the Spearman RDM's rank transform,
 * rdm/rdm_prep.c, whose short rows sort faster with its own 8-bit digits). */
#ifndef RDML_CORE_RADIX_H
#define RDML_CORE_RADIX_H

#include <stdint.h>
#include <string.h>

/* An order-preserving 64-bit key of a double (no NaN): unsigned comparison of the keys is
 * numeric comparison of the values; -0.0 keys like 0.0. */
static inline uint64_t rdml_radix_key_double(double x) {
    if (x == 0.0) x = 0.0;
    uint64_t u;
    memcpy(&u, &x, sizeof u);
    return (u >> 63) ? ~u : (u | ((uint64_t)1 << 63));
}

/* The same for a float, in 32 bits. */
static inline uint32_t rdml_radix_key_float(float x) {
    if (x == 0.0f) x = 0.0f;
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return (u >> 31) ? ~u : (u | 0x80000000u);
}

/* Sorts the p keys *key ascending on their bits [lo_bit, 64) (lower bits are ignored: ties),
 * stably, carrying the optional uint32 payload *pay (NULL: none) alongside. *kbuf (and *pbuf)
 * are scratch arrays of p elements; the arrays are swapped as the passes go, so on return
 * *key / *pay point to the sorted data and *kbuf / *pbuf to the other arrays. 11-bit digits;
 * a digit that is equal in every key costs a count but no pass.
 * No allocation (16 KiB of stack). */
void rdml_radix_sort_u64(uint64_t **key, uint64_t **kbuf, uint32_t **pay, uint32_t **pbuf,
                         int64_t p, int lo_bit);

#endif
