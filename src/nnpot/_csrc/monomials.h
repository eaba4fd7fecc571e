/* Monomials of rhat for BW pairs, shared by pullback.c and forward.c: included inside
 * each file's per-type body, where REAL, FN(name) and BW are defined (no include guard:
 * once per type). Y [(number of monomials of degree <= L) * BW], by degree 0..L; order
 * within degree d: x * (all of degree d-1), then y * (the last d of degree d-1, those
 * without x), then z * (the last one, z^(d-1)) (descriptors_moments.monomial_blocks). */
static inline __attribute__((always_inline)) void FN(rhat_monomials)(
    REAL *restrict Y, const REAL *restrict u0, const REAL *restrict u1,
    const REAL *restrict u2, long L) {
    for (long q = 0; q < BW; ++q) {
        Y[q] = 1;
        Y[BW + q] = u0[q];
        Y[2 * BW + q] = u1[q];
        Y[3 * BW + q] = u2[q];
    }
    long ps = 1, pn = 3;
    for (long dg = 2; dg <= L; ++dg) {
        REAL *o = Y + (ps + pn) * BW;
        const REAL *pv = Y + ps * BW;
        for (long m = 0; m < pn; ++m)
#pragma omp simd
            for (long q = 0; q < BW; ++q) o[m * BW + q] = u0[q] * pv[m * BW + q];
        for (long m = 0; m < dg; ++m)
#pragma omp simd
            for (long q = 0; q < BW; ++q)
                o[(pn + m) * BW + q] = u1[q] * pv[(pn - dg + m) * BW + q];
#pragma omp simd
        for (long q = 0; q < BW; ++q) o[(pn + dg) * BW + q] = u2[q] * pv[(pn - 1) * BW + q];
        ps += pn;
        pn += dg + 1;
    }
}
