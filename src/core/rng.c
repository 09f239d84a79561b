/* Counter-based random numbers: the index-th draw of (seed, stream) is a pure function, so
 * every rank can produce any part of a random sequence and results never depend on how work
 * was split. SplitMix64's finaliser (Steele, Lea, Flood 2014) over a per-stream key; passes
 * BigCrush as a counter-based generator. Not cryptographic. */
#include <math.h>

#include "rdml/core.h"

static uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t stream_key(uint64_t seed, uint64_t stream) {
    return mix64(seed ^ mix64(stream + 0x632be59bd9b4e019ULL));
}

uint64_t rdml_rng_at(uint64_t seed, uint64_t stream, uint64_t index) {
    return mix64(stream_key(seed, stream) + (index + 1) * 0x9e3779b97f4a7c15ULL);
}

void rdml_rng_fill_u64(rdml_rng *r, int64_t n, uint64_t *out) {
    const uint64_t key = stream_key(r->seed, r->stream);
    const uint64_t c0 = r->counter;
    for (int64_t i = 0; i < n; i++) out[i] = mix64(key + (c0 + (uint64_t)i + 1) * 0x9e3779b97f4a7c15ULL);
    r->counter += (uint64_t)(n > 0 ? n : 0);
}

uint64_t rdml_rng_substream(uint64_t stream, uint64_t sub) {
    return mix64(stream * 0xd1342543de82ef95ULL + mix64(sub ^ 0x2545f4914f6cdd1dULL));
}

rdml_rng rdml_rng_make(uint64_t seed, uint64_t stream, uint64_t start) {
    rdml_rng r = {seed, stream, start};
    return r;
}

uint64_t rdml_rng_next(rdml_rng *r) { return rdml_rng_at(r->seed, r->stream, r->counter++); }

double rdml_rng_uniform(rdml_rng *r) {
    return (double)(rdml_rng_next(r) >> 11) * 0x1.0p-53;
}

double rdml_rng_normal(rdml_rng *r) {
    double u1 = rdml_rng_uniform(r), u2 = rdml_rng_uniform(r);
    /* 1 - u1 is in (0, 1], so the log is finite. */
    return sqrt(-2.0 * log(1.0 - u1)) * cos(6.283185307179586 * u2);
}

uint64_t rdml_rng_below(rdml_rng *r, uint64_t n) {
    if (n <= 1) return 0;
    /* Rejection on the top of the range keeps every value equally likely. */
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do {
        x = rdml_rng_next(r);
    } while (x >= limit);
    return x % n;
}

void rdml_rng_shuffle(rdml_rng *r, int64_t *a, int64_t n) {
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)rdml_rng_below(r, (uint64_t)i + 1);
        int64_t t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
}
