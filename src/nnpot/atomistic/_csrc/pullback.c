/* K vector-Jacobian products of the factorised symmetry functions, fused per centre.
 *
 * The C side of nnpot.atomistic.pullback_c (see descriptors_vjp for the math). For every
 * centre i (parallel over centres, OpenMP), the per-centre coefficients of each neighbour
 * element e are assembled once:
 *     rows of phi:  d_rad[r] (the cotangent's radial columns) | d_dsq[c] | d_mom[c, m]
 *     d_mom[c, m, k] = sum_t f_t sum_d Qm[i, c, o_t, d, m] dS[i, p_t, c, d, k]
 *     poly[c, l, x, k] = low_fac[l, x] d_mom[c, low_idx[l, x], k]      (rows of psi)
 * then every pair p of the centre (r = |r_p| < r_c, rhat = r_p / r) gets its slot basis
 *     phi = [g_r'; 2 g_c g_c'; g_c' rhat^m],  psi = [g_c rhat^l / r]
 * once, and for all K cotangents
 *     v_k = rhat (coef_k . phi - rhat . du_k) + du_k,   du_k[x] = poly_k[., x] . psi
 * which is accumulated into the position gradient (-v at the centre, +v at the neighbour,
 * per-thread buffers or per-pair output) and the centre's virial W[a][b] += r_a v_b.
 * Layouts are K-last so the inner loops run over the K cotangents (vectorised).
 *
 * The file includes itself twice: once for double (suffix _f64), once for float (_f32).
 */
#ifndef PB_BODY
#define PB_BODY

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define PB_PI 3.14159265358979323846

/* exp for x in [-60, 0] (callers clamp): 2^k e^f, |f| <= ln2/2, Taylor to x^13 (double,
 * error below 1e-16 relative) or x^7 (float); no libm call, so loops over channels
 * vectorise. */
static inline double exp_f64(double x) {
    const double shift = 0x1.8p52;
    double t = x * 1.4426950408889634 + shift;
    double kd = t - shift;
    int64_t bits;
    memcpy(&bits, &t, 8);
    double f = x - kd * 0.6931471803691238;
    f -= kd * 1.9082149292705877e-10;
    double p = 1.0 / 6227020800.0;
    p = p * f + 1.0 / 479001600.0;
    p = p * f + 1.0 / 39916800.0;
    p = p * f + 1.0 / 3628800.0;
    p = p * f + 1.0 / 362880.0;
    p = p * f + 1.0 / 40320.0;
    p = p * f + 1.0 / 5040.0;
    p = p * f + 1.0 / 720.0;
    p = p * f + 1.0 / 120.0;
    p = p * f + 1.0 / 24.0;
    p = p * f + 1.0 / 6.0;
    p = p * f + 0.5;
    p = p * f + 1.0;
    p = p * f + 1.0;
    int64_t sb = (int64_t)((uint64_t)(bits + 1023) << 52);
    double s;
    memcpy(&s, &sb, 8);
    return p * s;
}

static inline float exp_f32(float x) {
    const float shift = 0x1.8p23f;
    float t = x * 1.44269504f + shift;
    float kd = t - shift;
    int32_t bits;
    memcpy(&bits, &t, 4);
    float f = x - kd * 0.693145752f;
    f -= kd * 1.42860677e-06f;
    float p = 1.0f / 5040.0f;
    p = p * f + 1.0f / 720.0f;
    p = p * f + 1.0f / 120.0f;
    p = p * f + 1.0f / 24.0f;
    p = p * f + 1.0f / 6.0f;
    p = p * f + 0.5f;
    p = p * f + 1.0f;
    p = p * f + 1.0f;
    int32_t sb = (int32_t)((uint32_t)(bits + 127) << 23);
    float s;
    memcpy(&s, &sb, 4);
    return p * s;
}

static inline double cos_f64(double x) { return cos(x); }
static inline double sin_f64(double x) { return sin(x); }
static inline float cos_f32(float x) { return cosf(x); }
static inline float sin_f32(float x) { return sinf(x); }

static int n_threads(long want) {
#ifdef _OPENMP
    return want > 0 ? (int)want : omp_get_max_threads();
#else
    (void)want;
    return 1;
#endif
}

#define REAL double
#define FN(name) name##_f64
#define EXPR exp_f64
#define COSR cos_f64
#define SINR sin_f64
#include "pullback.c" /* this file, second pass */
#undef REAL
#undef FN
#undef EXPR
#undef COSR
#undef SINR

#define REAL float
#define FN(name) name##_f32
#define EXPR exp_f32
#define COSR cos_f32
#define SINR sin_f32
#include "pullback.c" /* this file, second pass */

#else /* PB_BODY: the kernel for one REAL type */

typedef struct {
    /* dims */
    long n, K, E, R, C, D, Mt, nl, L, top0, low0, npair, F, cosine;
    REAL rc;
    /* inputs */
    const REAL *rij;               /* [P, 3] */
    const int64_t *ptr;            /* [n + 1] pair offsets of each centre */
    const int64_t *jn;             /* [P] neighbour atom */
    const int64_t *sj;             /* [P] neighbour element */
    const REAL *cot;               /* [n, F, K]: radial columns e*R + r */
    const REAL *dsq;               /* [n, E, C, K] */
    const REAL *dS;                /* [n, npair, C, D, K] */
    const REAL *qm;                /* [n, C, E, D, Mt] */
    const int64_t *term_ptr;       /* [E + 1] */
    const int64_t *term_pair;      /* [T] */
    const int64_t *term_oth;       /* [T] */
    const REAL *term_fac;          /* [T] */
    const int64_t *low_idx;        /* [nl * 3], (l, x) order */
    const REAL *low_fac;           /* [nl * 3] */
    const REAL *rad_eta, *rad_rs;  /* [R] */
    const REAL *ang_eta, *ang_rs;  /* [C] */
} FN(Args);

/* Coefficients of centre i for every element: cf [E][NB][K], pl [E][C*nl][3][K]. */
static inline __attribute__((always_inline)) void FN(coefficients)(
    const FN(Args) *a, long i, const long K, REAL *cf, REAL *pl) {
    const long E = a->E, R = a->R, C = a->C, D = a->D, Mt = a->Mt, nl = a->nl;
    const long NB = R + C + C * Mt;
    for (long e = 0; e < E; ++e) {
        REAL *c0 = cf + e * NB * K;
        memcpy(c0, a->cot + (i * a->F + e * R) * K, (size_t)(R * K) * sizeof(REAL));
        if (!C) continue;
        memcpy(c0 + R * K, a->dsq + (i * E + e) * C * K, (size_t)(C * K) * sizeof(REAL));
        for (long c = 0; c < C; ++c) {
            REAL *dm = c0 + (R + C + c * Mt) * K;
            for (long q = 0; q < Mt * K; ++q) dm[q] = 0;
            for (long t = a->term_ptr[e]; t < a->term_ptr[e + 1]; ++t) {
                const long p = a->term_pair[t], o = a->term_oth[t];
                const REAL f = a->term_fac[t];
                for (long d = 0; d < D; ++d) {
                    const REAL *q = a->qm + (((i * C + c) * E + o) * D + d) * Mt;
                    const REAL *s = a->dS + (((i * a->npair + p) * C + c) * D + d) * K;
                    for (long m = 0; m < Mt; ++m) {
                        const REAL fq = f * q[m];
#pragma omp simd
                        for (long k = 0; k < K; ++k) dm[m * K + k] += fq * s[k];
                    }
                }
            }
            REAL *pc = pl + (e * C + c) * nl * 3 * K;
            for (long lx = 0; lx < nl * 3; ++lx) {
                const REAL *src = dm + a->low_idx[lx] * K;
                const REAL fac = a->low_fac[lx];
#pragma omp simd
                for (long k = 0; k < K; ++k) pc[lx * K + k] = fac * src[k];
            }
        }
    }
}

/* All pairs of centre i. gbuf: [n, 3, K] gradient buffer (centre and neighbours), or NULL
 * with pout [P, 3, K] (v per pair; the centre's -sum v still goes to gcen [3, K]). */
static inline __attribute__((always_inline)) void FN(centre)(
    const FN(Args) *a, long i, const long K, REAL *restrict cf, REAL *restrict pl,
    REAL *restrict phi, REAL *restrict psi, REAL *restrict Y, REAL *restrict ex,
    REAL *gbuf, REAL *gcen, REAL *pout, REAL *vout) {
    const long R = a->R, C = a->C, Mt = a->Mt, nl = a->nl;
    const long NB = R + C + C * Mt;
    const REAL rc = a->rc;
    REAL gi[3 * K], vi[9 * K], dr[K], du[3 * K], v[3 * K];
    for (long q = 0; q < 3 * K; ++q) gi[q] = 0;
    for (long q = 0; q < 9 * K; ++q) vi[q] = 0;
    FN(coefficients)(a, i, K, cf, pl);
    for (long p = a->ptr[i]; p < a->ptr[i + 1]; ++p) {
        const REAL x0 = a->rij[3 * p], x1 = a->rij[3 * p + 1], x2 = a->rij[3 * p + 2];
        const REAL r2 = x0 * x0 + x1 * x1 + x2 * x2;
        const REAL r = sqrt(r2);
        if (!(r < rc)) {  /* f_c = f_c' = 0: nothing (also pads of the torch path) */
            if (pout)
                for (long q = 0; q < 3 * K; ++q) pout[p * 3 * K + q] = 0;
            continue;
        }
        const REAL inv = (REAL)1 / r;
        const REAL u0 = x0 * inv, u1 = x1 * inv, u2 = x2 * inv;
        const REAL t = r / rc;
        REAL fc, dfc;
        if (a->cosine) {
            const REAL ang = (REAL)PB_PI * t;
            fc = (REAL)0.5 * COSR(ang) + (REAL)0.5;
            dfc = ((REAL)(-0.5 * PB_PI) / rc) * SINR(ang);
        } else {
            const REAL t2 = t * t;
            fc = 1 + t2 * t * (-10 + t * (15 - 6 * t));
            dfc = (t2 * (-30 + t * (60 - 30 * t))) * ((REAL)1 / rc);
        }
        const long e = a->sj[p];
        /* radial rows and the angular channel functions */
#pragma omp simd
        for (long q = 0; q < R; ++q) {
            const REAL d = r - a->rad_rs[q];
            REAL z = -a->rad_eta[q] * d * d;
            z = z < (REAL)-60 ? (REAL)-60 : z;
            const REAL g = EXPR(z);
            phi[q] = g * (fc * (-2 * a->rad_eta[q] * d) + dfc);
        }
        if (C) {
#pragma omp simd
            for (long c = 0; c < C; ++c) {
                const REAL d = r - a->ang_rs[c];
                REAL z = -a->ang_eta[c] * d * d;
                z = z < (REAL)-60 ? (REAL)-60 : z;
                const REAL g = EXPR(z);
                const REAL ga = g * fc, dga = g * (fc * (-2 * a->ang_eta[c] * d) + dfc);
                ex[c] = ga;
                ex[C + c] = dga;
                phi[R + c] = 2 * ga * dga;
            }
            /* monomials of rhat by degree: x * (degree d-1), y * (its last d), z * last */
            Y[0] = 1;
            Y[1] = u0; Y[2] = u1; Y[3] = u2;
            long ps = 1, pn = 3;
            for (long dg = 2; dg <= a->L; ++dg) {
                REAL *o = Y + ps + pn;
                const REAL *pv = Y + ps;
                for (long q = 0; q < pn; ++q) o[q] = u0 * pv[q];
                for (long q = 0; q < dg; ++q) o[pn + q] = u1 * pv[pn - dg + q];
                o[pn + dg] = u2 * pv[pn - 1];
                ps += pn;
                pn += dg + 1;
            }
            for (long c = 0; c < C; ++c) {
                const REAL dga = ex[C + c], gi_ = ex[c] * inv;
                REAL *ph = phi + R + C + c * Mt;
                const REAL *yt = Y + a->top0, *yl = Y + a->low0;
#pragma omp simd
                for (long m = 0; m < Mt; ++m) ph[m] = dga * yt[m];
#pragma omp simd
                for (long l = 0; l < nl; ++l) psi[c * nl + l] = gi_ * yl[l];
            }
        }
        /* K products */
        const REAL *ce = cf + e * NB * K;
        for (long k = 0; k < K; ++k) dr[k] = 0;
        for (long q = 0; q < 3 * K; ++q) du[q] = 0;
        if (K == 1) {
            REAL s = 0;
#pragma omp simd reduction(+ : s)
            for (long b = 0; b < NB; ++b) s += ce[b] * phi[b];
            dr[0] = s;
        } else {
            for (long b = 0; b < NB; ++b) {
                const REAL f = phi[b];
#pragma omp simd
                for (long k = 0; k < K; ++k) dr[k] += ce[b * K + k] * f;
            }
        }
        if (C) {
            const REAL *pe = pl + e * C * nl * 3 * K;
            if (K == 1) {
                REAL s0 = 0, s1 = 0, s2 = 0;
#pragma omp simd reduction(+ : s0, s1, s2)
                for (long q = 0; q < C * nl; ++q) {
                    s0 += pe[3 * q] * psi[q];
                    s1 += pe[3 * q + 1] * psi[q];
                    s2 += pe[3 * q + 2] * psi[q];
                }
                du[0] = s0; du[1] = s1; du[2] = s2;
            } else {
                for (long q = 0; q < C * nl; ++q) {
                    const REAL f = psi[q];
                    const REAL *pq = pe + q * 3 * K;
#pragma omp simd
                    for (long k = 0; k < K; ++k) {
                        du[k] += pq[k] * f;
                        du[K + k] += pq[K + k] * f;
                        du[2 * K + k] += pq[2 * K + k] * f;
                    }
                }
            }
        }
#pragma omp simd
        for (long k = 0; k < K; ++k) {
            const REAL tn = dr[k] - (du[k] * u0 + du[K + k] * u1 + du[2 * K + k] * u2);
            v[k] = du[k] + u0 * tn;
            v[K + k] = du[K + k] + u1 * tn;
            v[2 * K + k] = du[2 * K + k] + u2 * tn;
        }
        for (long q = 0; q < 3 * K; ++q) gi[q] -= v[q];
        if (vout) {
            const REAL xs[3] = {x0, x1, x2};
            for (long aa = 0; aa < 3; ++aa)
                for (long q = 0; q < 3 * K; ++q) vi[aa * 3 * K + q] += xs[aa] * v[q];
        }
        if (pout) {
            for (long q = 0; q < 3 * K; ++q) pout[p * 3 * K + q] = v[q];
        } else {
            REAL *gj = gbuf + a->jn[p] * 3 * K;
            for (long q = 0; q < 3 * K; ++q) gj[q] += v[q];
        }
    }
    REAL *gc = pout ? gcen : gbuf + i * 3 * K;
    for (long q = 0; q < 3 * K; ++q) gc[q] += gi[q];
    if (vout)
        for (long q = 0; q < 9 * K; ++q) vout[i * 9 * K + q] = vi[q];
}

static void FN(run_centre)(const FN(Args) *a, long i, REAL *cf, REAL *pl, REAL *phi,
                           REAL *psi, REAL *Y, REAL *ex, REAL *gbuf, REAL *gcen, REAL *pout,
                           REAL *vout) {
    switch (a->K) {  /* constant K: accumulators in registers, loops unrolled */
    case 1: FN(centre)(a, i, 1, cf, pl, phi, psi, Y, ex, gbuf, gcen, pout, vout); break;
    case 2: FN(centre)(a, i, 2, cf, pl, phi, psi, Y, ex, gbuf, gcen, pout, vout); break;
    case 4: FN(centre)(a, i, 4, cf, pl, phi, psi, Y, ex, gbuf, gcen, pout, vout); break;
    case 8: FN(centre)(a, i, 8, cf, pl, phi, psi, Y, ex, gbuf, gcen, pout, vout); break;
    case 16: FN(centre)(a, i, 16, cf, pl, phi, psi, Y, ex, gbuf, gcen, pout, vout); break;
    default: FN(centre)(a, i, a->K, cf, pl, phi, psi, Y, ex, gbuf, gcen, pout, vout);
    }
}

/* dims: n, P, K, E, R, C, D, Mt, nl, L, top0, low0, npair, F, cosine, threads.
 * grad [n, 3, K] (zeroed by the caller); vir [n, 3, 3, K] or NULL; pout [P, 3, K] or NULL
 * (then neighbours' gradients are left to the caller; grad still gets the centre part).
 * Returns 0, or -1 when memory ran out (outputs undefined). */
int FN(pullback_atoms)(const int64_t *dims, double rc_, const REAL *rij, const int64_t *ptr,
                       const int64_t *jn, const int64_t *sj, const REAL *cot, const REAL *dsq,
                       const REAL *dS, const REAL *qm, const int64_t *term_ptr,
                       const int64_t *term_pair, const int64_t *term_oth,
                       const REAL *term_fac, const int64_t *low_idx, const REAL *low_fac,
                       const REAL *rad_eta, const REAL *rad_rs, const REAL *ang_eta,
                       const REAL *ang_rs, REAL *grad, REAL *vir, REAL *pout) {
    FN(Args) a = {dims[0], dims[2], dims[3], dims[4], dims[5], dims[6], dims[7], dims[8],
                  dims[9], dims[10], dims[11], dims[12], dims[13], dims[14], (REAL)rc_,
                  rij, ptr, jn, sj, cot, dsq, dS, qm, term_ptr, term_pair, term_oth,
                  term_fac, low_idx, low_fac, rad_eta, rad_rs, ang_eta, ang_rs};
    const long n = a.n, K = a.K;
    const int nt = n_threads(dims[15]);
    const long NB = a.R + a.C + a.C * a.Mt;
    const long n_all = (a.L + 1) * (a.L + 2) * (a.L + 3) / 6;
    const long scratch = a.E * NB * K + a.E * a.C * a.nl * 3 * K + NB + a.C * a.nl + n_all
                         + 2 * a.C + 16;
    const int shared = nt == 1 || pout != NULL;  /* grad written by centres only */
    /* per-thread scratch and (several threads) private gradient buffers, allocated here
     * so that a failure leaves the parallel region out altogether */
    REAL **bufs = calloc((size_t)nt, sizeof(REAL *));
    REAL **scr = calloc((size_t)nt, sizeof(REAL *));
    int fail = !bufs || !scr;
    for (int t = 0; t < nt && !fail; ++t) {
        scr[t] = malloc((size_t)scratch * sizeof(REAL));
        bufs[t] = shared ? grad : calloc((size_t)(n * 3 * K), sizeof(REAL));
        fail = !scr[t] || !bufs[t];
    }
    if (!fail) {
#pragma omp parallel num_threads(nt)
        {
#ifdef _OPENMP
            const int tid = omp_get_thread_num();
#else
            const int tid = 0;
#endif
            REAL *gb = bufs[tid];
            REAL *cf = scr[tid], *pl = cf + a.E * NB * K, *phi = pl + a.E * a.C * a.nl * 3 * K;
            REAL *psi = phi + NB, *Y = psi + a.C * a.nl, *ex = Y + n_all;
#pragma omp for schedule(dynamic, 16)
            for (long i = 0; i < n; ++i)
                FN(run_centre)(&a, i, cf, pl, phi, psi, Y, ex, gb,
                               pout ? grad + i * 3 * K : NULL, pout, vir);
            if (!shared) {
#pragma omp for schedule(static)
                for (long q = 0; q < n * 3 * K; ++q) {
                    REAL acc = 0;
                    for (int t = 0; t < nt; ++t) acc += bufs[t][q];
                    grad[q] = acc;
                }
            }
        }
    }
    for (int t = 0; bufs && scr && t < nt; ++t) {
        if (!shared) free(bufs[t]);
        free(scr[t]);
    }
    free(scr);
    free(bufs);
    return fail ? -1 : 0;
}

#endif /* PB_BODY */
