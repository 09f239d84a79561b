/* The shared radix sort (core/radix.h). */
#include "core/radix.h"

enum { BITS = 11, R = 1 << BITS, NDIG = (64 + BITS - 1) / BITS };

void rdml_radix_sort_u64(uint64_t **key, uint64_t **kbuf, uint32_t **pay, uint32_t **pbuf,
                         int64_t p, int lo_bit) {
    int64_t cnt[NDIG][R];
    const int d0 = lo_bit / BITS;
    const uint64_t low_mask = lo_bit ? ~(((uint64_t)1 << lo_bit) - 1) : ~(uint64_t)0; /* bits below lo_bit */
    memset(cnt[d0], 0, (size_t)(NDIG - d0) * sizeof cnt[0]);
    const uint64_t *k = *key;
    for (int64_t i = 0; i < p; i++) {
        const uint64_t v = k[i];
        cnt[d0][(v & low_mask) >> (BITS * d0) & (R - 1)]++;
        for (int d = d0 + 1; d < NDIG; d++) cnt[d][(v >> (BITS * d)) & (R - 1)]++;
    }
    for (int d = d0; d < NDIG; d++) {
        int64_t *c = cnt[d], sum = 0;
        int trivial = 0;
        for (int x = 0; x < R; x++) {
            const int64_t t = c[x];
            trivial |= t == p;
            c[x] = sum;
            sum += t;
        }
        if (trivial) continue;
        const uint64_t mask = d == d0 ? low_mask : ~(uint64_t)0;
        const int shift = BITS * d;
        const uint64_t *src = *key;
        uint64_t *dst = *kbuf;
        if (pay && *pay) {
            const uint32_t *ps = *pay;
            uint32_t *pd = *pbuf;
            for (int64_t i = 0; i < p; i++) {
                const int64_t pos = c[((src[i] & mask) >> shift) & (R - 1)]++;
                dst[pos] = src[i];
                pd[pos] = ps[i];
            }
            *pbuf = *pay;
            *pay = pd;
        } else {
            for (int64_t i = 0; i < p; i++) dst[c[((src[i] & mask) >> shift) & (R - 1)]++] = src[i];
        }
        *kbuf = *key;
        *key = dst;
    }
}
