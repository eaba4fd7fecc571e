/* Pair vectors r_p = x_j - x_i + s_p . h_b (Angstrom) in one pass over the pair list.
 *
 * pos [n, 3], cell [B, 3, 3] (rows are the lattice vectors), batch [n] (structure of each
 * atom), i, j [P] (int64), shifts [P, 3] (integer cell shifts stored as REAL), out [P, 3].
 * The eager-torch version streams five [P, 3] arrays through memory (two gathers, the
 * shift product, two sums); here each pair is read once and written once, which is what
 * matters once the pair list (5.6 M pairs for 66k water atoms) no longer fits in cache.
 * Parallel over pairs (OpenMP, static chunks); no reductions, so results do not depend on
 * the thread count. Compiled once per precision (REAL = double / float).
 */
#include <stdint.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define DEFINE_PAIRS(NAME, REAL)                                                          \
    void NAME(const REAL *pos, const REAL *cell, const int64_t *batch, const int64_t *i,  \
              const int64_t *j, const REAL *shifts, int64_t P, REAL *out, int nthreads) { \
        _Pragma("omp parallel for schedule(static) num_threads(nthreads)")                 \
        for (int64_t p = 0; p < P; p++) {                                                 \
            const int64_t a = i[p], b = j[p];                                             \
            const REAL *h = cell + 9 * batch[a];                                          \
            const REAL s0 = shifts[3 * p], s1 = shifts[3 * p + 1], s2 = shifts[3 * p + 2]; \
            for (int c = 0; c < 3; c++)                                                   \
                out[3 * p + c] = pos[3 * b + c] - pos[3 * a + c]                          \
                                 + s0 * h[c] + s1 * h[3 + c] + s2 * h[6 + c];             \
        }                                                                                 \
    }

DEFINE_PAIRS(pair_vectors_f64, double)
DEFINE_PAIRS(pair_vectors_f32, float)
