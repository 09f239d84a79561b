/* tests/test.h — a minimal test harness. A test file defines test functions and a main:
 *
 *   static void test_block_covers_all(void) { CHECK(lo == 0); CHECK_EQ_I(hi, 10); }
 *   int main(void) { RUN(test_block_covers_all); return test_summary(); }
 *
 * Each failed CHECK prints file:line and the expression; test_summary() prints
 * "N passed, M failed" and returns non-zero if any check failed. For MPI tests, call
 * test_summary_mpi(comm) after the tests: it reduces failures over ranks.
 */
#ifndef RDML_TEST_H
#define RDML_TEST_H
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int test_failed_checks_ = 0, test_passed_ = 0, test_failed_ = 0;

#define CHECK(cond)                                                                        \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);       \
            test_failed_checks_++;                                                         \
        }                                                                                  \
    } while (0)
#define CHECK_EQ_I(a, b)                                                                   \
    do {                                                                                   \
        long long a_ = (long long)(a), b_ = (long long)(b);                                \
        if (a_ != b_) {                                                                    \
            fprintf(stderr, "%s:%d: CHECK failed: %s == %s (%lld vs %lld)\n", __FILE__,    \
                    __LINE__, #a, #b, a_, b_);                                             \
            test_failed_checks_++;                                                         \
        }                                                                                  \
    } while (0)
#define CHECK_NEAR(a, b, tol)                                                              \
    do {                                                                                   \
        double a_ = (double)(a), b_ = (double)(b);                                         \
        if (!(fabs(a_ - b_) <= (tol))) {                                                   \
            fprintf(stderr, "%s:%d: CHECK failed: %s ~ %s (%.9g vs %.9g, tol %g)\n",       \
                    __FILE__, __LINE__, #a, #b, a_, b_, (double)(tol));                    \
            test_failed_checks_++;                                                         \
        }                                                                                  \
    } while (0)
#define CHECK_STR_HAS(s, sub)                                                              \
    do {                                                                                   \
        const char *s_ = (s);                                                              \
        if (!s_ || !strstr(s_, (sub))) {                                                   \
            fprintf(stderr, "%s:%d: CHECK failed: \"%s\" contains \"%s\"\n", __FILE__,     \
                    __LINE__, s_ ? s_ : "(null)", (sub));                                  \
            test_failed_checks_++;                                                         \
        }                                                                                  \
    } while (0)

#define RUN(fn)                                                                            \
    do {                                                                                   \
        int before_ = test_failed_checks_;                                                 \
        fn();                                                                              \
        if (test_failed_checks_ == before_) {                                              \
            test_passed_++;                                                                \
        } else {                                                                           \
            test_failed_++;                                                                \
            fprintf(stderr, "FAILED %s\n", #fn);                                           \
        }                                                                                  \
    } while (0)

static inline int test_summary(void) {
    printf("%d passed, %d failed\n", test_passed_, test_failed_);
    return test_failed_ ? 1 : 0;
}

/* Path of a committed fixture: $RDML_FIXTURES/name (set by CTest). */
static inline const char *test_fixture(const char *name) {
    static char buf[4096];
    const char *dir = getenv("RDML_FIXTURES");
    snprintf(buf, sizeof buf, "%s/%s", dir ? dir : "../../tests/fixtures", name);
    return buf;
}

#ifdef MPI_VERSION
static inline int test_summary_mpi(MPI_Comm comm) {
    int rank, local[2] = {test_passed_, test_failed_}, tot[2];
    MPI_Comm_rank(comm, &rank);
    MPI_Allreduce(local, tot, 2, MPI_INT, MPI_MAX, comm);
    if (rank == 0) printf("%d passed, %d failed\n", tot[0], tot[1]);
    return tot[1] ? 1 : 0;
}
#endif
#endif
