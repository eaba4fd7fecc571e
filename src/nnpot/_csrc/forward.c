/* Slot sums of the factorised symmetry functions, per centre (the forward of
 * nnpot.atomistic.descriptors_moments, C side of nnpot.atomistic.forward_c).
 *
 * For every centre i (parallel over centres, OpenMP) and neighbour element E, over the pairs
 * p of i (r = |r_p| < r_c, rhat = r_p / r) of element E:
 *     rad[i, E, r]    = sum_p exp(-eta_r (r - s_r)^2) f_c(r)
 *     dsq[i, E, c]    = sum_p g_c(r)^2,   g_c = exp(-eta_c (r - s_c)^2) f_c(r)
 *     mom[i, E, c, m] = sum_p g_c(r) rhat^m   (m: monomials of degrees L-1 and L, in the
 *                                              order of MomentTables.monomials)
 * The centre's pairs come straight from the centre-sorted pair list (i, j): its range is
 * found by binary search in i, the neighbour element is species[j]. Their coordinates are
 * copied into per-element buckets (structure of arrays, padded to whole blocks with pads at
 * (r_c, 0, 0)) and taken BW at a time (one SIMD vector); sums are kept lane-wise and
 * reduced once per (centre, element). Sums accumulate in the input precision. Pairs at
 * r >= r_c add nothing (f_c = 0 there, like the torch path's pads).
 *
 * g5() then contracts the moments into the factorised G5 columns (see there).
 *
 * The file includes itself twice: once for double (suffix _f64), once for float (_f32).
 */
#ifndef FW_BODY
#define FW_BODY

#include "kmath.h" /* FMA-contraction pragma, standard headers, shared math */
#define FW_PI KM_PI

/* cos(pi t) for t in [0, 1]: with z = pi (t - 1/2), |z| <= pi/2, it is -sin z (Taylor to
 * z^21: below 1e-17); no libm call, so it vectorises. */
static inline double fw_cospi(double t) {
    const double z = FW_PI * (t - 0.5), z2 = z * z;
    double ps = -1.0 / 51090942171709440000.0;
    ps = ps * z2 + 1.0 / 121645100408832000.0;
    ps = ps * z2 + -1.0 / 355687428096000.0;
    ps = ps * z2 + 1.0 / 1307674368000.0;
    ps = ps * z2 + -1.0 / 6227020800.0;
    ps = ps * z2 + 1.0 / 39916800.0;
    ps = ps * z2 + -1.0 / 362880.0;
    ps = ps * z2 + 1.0 / 5040.0;
    ps = ps * z2 + -1.0 / 120.0;
    ps = ps * z2 + 1.0 / 6.0;
    ps = ps * z2 - 1;  /* -(sin z)/z */
    return ps * z;
}

static inline float fw_cospi_f32(float t) {  /* the same to z^11 (below 1e-9) */
    const float z = (float)FW_PI * (t - 0.5f), z2 = z * z;
    float ps = -1.0f / 39916800.0f;
    ps = ps * z2 + 1.0f / 362880.0f;
    ps = ps * z2 + -1.0f / 5040.0f;
    ps = ps * z2 + 1.0f / 120.0f;
    ps = ps * z2 + -1.0f / 6.0f;
    ps = ps * z2 + 1.0f;
    return -ps * z;
}


/* first index p in [0, P) with ci[p] >= c (P when none); ci sorted */
static int64_t fw_lower_bound(const int64_t *ci, int64_t P, int64_t c) {
    int64_t lo = 0, hi = P;
    while (lo < hi) {
        const int64_t mid = lo + (hi - lo) / 2;
        if (ci[mid] < c)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

#define REAL double
#define FN(name) name##_f64
#define EXPR km_exp_f64
#define COSPI fw_cospi
#define BW 8 /* pairs per block: one 512-bit vector */
#include "forward.c" /* this file, second pass */
#undef REAL
#undef FN
#undef EXPR
#undef COSPI
#undef BW

#define REAL float
#define FN(name) name##_f32
#define EXPR km_exp_f32
#define COSPI fw_cospi_f32
#define BW 16
#include "forward.c" /* this file, second pass */

#else /* FW_BODY: the kernel for one REAL type */

#include "monomials.h" /* FN(rhat_monomials) for this REAL */

typedef struct {
    long n, E, R, C, L, top0, Mt, cosine;
    REAL rc;
    const REAL *rij;              /* [P, 3] */
    const int64_t *jn;            /* [P] neighbour atom */
    const int64_t *species;       /* [n] element of each atom */
    const REAL *rad_eta, *rad_rs; /* [R] */
    const REAL *ang_eta, *ang_rs; /* [C] */
    REAL *rad, *dsq, *mom;        /* [n, E, R], [n, E, C], [n, E, C, Mt] */
} FN(Fw);

/* Lane-wise sums acc [R + C + C*Mt][BW] over one block of BW pairs of one element, given
 * as coordinates x0, x1, x2 [BW] (pads sit at (r_c, 0, 0), where f_c = 0, so they add
 * nothing). w: scratch [(5 + C + n_all) BW]. */
static inline __attribute__((always_inline)) void FN(block)(
    const FN(Fw) *a, const REAL *restrict x0, const REAL *restrict x1,
    const REAL *restrict x2, REAL *restrict w, REAL *restrict acc) {
    const long R = a->R, C = a->C, Mt = a->Mt;
    REAL *u0 = w, *u1 = w + BW, *u2 = w + 2 * BW, *rr = w + 3 * BW, *fc = w + 4 * BW;
    REAL *g = w + 5 * BW, *Y = g + C * BW;
    const REAL irc = (REAL)1 / a->rc;
#pragma omp simd
    for (long q = 0; q < BW; ++q) {
        const REAL r = sqrt(x0[q] * x0[q] + x1[q] * x1[q] + x2[q] * x2[q]);
        REAL t = r * irc, f;
        t = t > (REAL)1 ? (REAL)1 : t;
        if (a->cosine) {
            f = (REAL)0.5 * COSPI(t) + (REAL)0.5;
        } else {
            const REAL t2 = t * t;
            f = 1 + t2 * t * (-10 + t * (15 - 6 * t));
        }
        const REAL inv = (REAL)1 / r;
        rr[q] = r;
        fc[q] = t < (REAL)1 ? f : (REAL)0;  /* r >= r_c (and pads): exactly nothing */
        u0[q] = x0[q] * inv;
        u1[q] = x1[q] * inv;
        u2[q] = x2[q] * inv;
    }
    for (long ch = 0; ch < R; ++ch) {
        const REAL eta = a->rad_eta[ch], s = a->rad_rs[ch];
        REAL *o = acc + ch * BW;
#pragma omp simd
        for (long q = 0; q < BW; ++q) {
            const REAL d = rr[q] - s;
            REAL z = -eta * d * d;
            z = z < (REAL)-60 ? (REAL)-60 : z;
            o[q] += EXPR(z) * fc[q];
        }
    }
    if (!C) return;
    for (long c = 0; c < C; ++c) {
        const REAL eta = a->ang_eta[c], s = a->ang_rs[c];
        REAL *o = acc + (R + c) * BW, *gc = g + c * BW;
#pragma omp simd
        for (long q = 0; q < BW; ++q) {
            const REAL d = rr[q] - s;
            REAL z = -eta * d * d;
            z = z < (REAL)-60 ? (REAL)-60 : z;
            const REAL v = EXPR(z) * fc[q];
            gc[q] = v;
            o[q] += v * v;
        }
    }
    FN(rhat_monomials)(Y, u0, u1, u2, a->L);
    const REAL *yt = Y + a->top0 * BW;
    for (long c = 0; c < C; ++c) {
        const REAL *gc = g + c * BW;
        REAL *o = acc + (R + C + c * Mt) * BW;
        for (long m = 0; m < Mt; ++m)
#pragma omp simd
            for (long q = 0; q < BW; ++q) o[m * BW + q] += gc[q] * yt[m * BW + q];
    }
}

/* Slot sums of centre i (pairs p0..p1). xs: [E][3][cap] coordinates of the centre's pairs
 * by element, each bucket padded to whole blocks of BW (cap >= max pairs + BW); cnt:
 * [2 E + 1] scratch.
 * Returns 0, or 1 when the pair list is bad here (a pair of another centre, a neighbour or
 * an element index out of range). */
static int FN(centre)(const FN(Fw) *a, long i, const int64_t *ci, int64_t p0, int64_t p1,
                      int64_t cap, int64_t *restrict cnt, REAL *restrict xs,
                      REAL *restrict acc, REAL *restrict w) {
    const long E = a->E, R = a->R, C = a->C, Mt = a->Mt, NB = R + C + C * Mt;
    /* one pass: element e's pairs go to xs[e * 3 * cap + (0, 1, 2) * cap + k] */
    for (long e = 0; e < E; ++e) cnt[e] = 0;
    for (int64_t p = p0; p < p1; ++p) {
        const int64_t jn = a->jn[p];
        if (ci[p] != i || jn < 0 || jn >= a->n) return 1;
        const int64_t e = a->species[jn];
        if (e < 0 || e >= E) return 1;
        const int64_t k = cnt[e]++;
        REAL *dst = xs + e * 3 * cap + k;
        const REAL *x = a->rij + 3 * p;
        dst[0] = x[0];
        dst[cap] = x[1];
        dst[2 * cap] = x[2];
    }
    int64_t *pos = cnt + E + 1;
    for (long e = 0; e < E; ++e) {  /* pad to whole blocks at (r_c, 0, 0) */
        REAL *b = xs + e * 3 * cap;
        const int64_t len = cnt[e], end = (len + BW - 1) / BW * BW;
        for (int64_t q = len; q < end; ++q) {
            b[q] = a->rc;
            b[cap + q] = 0;
            b[2 * cap + q] = 0;
        }
        pos[e] = end;
    }
    REAL *rad = a->rad + i * E * R, *dsq = a->dsq + i * E * C, *mom = a->mom + i * E * C * Mt;
    for (long e = 0; e < E; ++e) {
        if (pos[e] == 0) {  /* no neighbour of this element */
            for (long r = 0; r < R; ++r) rad[e * R + r] = 0;
            for (long c = 0; c < C; ++c) dsq[e * C + c] = 0;
            for (long q = 0; q < C * Mt; ++q) mom[e * C * Mt + q] = 0;
            continue;
        }
        for (long q = 0; q < NB * BW; ++q) acc[q] = 0;
        const REAL *b = xs + e * 3 * cap;
        for (int64_t s = 0; s < pos[e]; s += BW)
            FN(block)(a, b + s, b + cap + s, b + 2 * cap + s, w, acc);
        /* lane sums, once per (centre, element) */
        for (long row = 0; row < NB; ++row) {
            REAL sum = 0;
            for (long q = 0; q < BW; ++q) sum += acc[row * BW + q];
            acc[row * BW] = sum;
        }
        for (long r = 0; r < R; ++r) rad[e * R + r] = acc[r * BW];
        for (long c = 0; c < C; ++c) dsq[e * C + c] = acc[(R + c) * BW];
        for (long q = 0; q < C * Mt; ++q) mom[e * C * Mt + q] = acc[(R + C + q) * BW];
    }
    return 0;
}

/* dims: n, P, E, R, C, L, top0, Mt, cosine, threads. ci, cj [P]: centre and neighbour of
 * each pair (sorted by centre); species [n]; outputs rad [n, E, R], dsq [n, E, C], mom
 * [n, E, C, Mt] (every entry written). Returns 0; -1 when memory ran out; -2 when the pair
 * list is not sorted by centre or holds an index out of range (outputs undefined). */
int FN(slot_sums)(const int64_t *dims, double rc_, const REAL *rij, const int64_t *ci,
                  const int64_t *cj, const int64_t *species, const REAL *rad_eta,
                  const REAL *rad_rs, const REAL *ang_eta, const REAL *ang_rs, REAL *rad,
                  REAL *dsq, REAL *mom) {
    FN(Fw) a = {dims[0], dims[2], dims[3], dims[4], dims[5], dims[6], dims[7], dims[8],
                (REAL)rc_, rij, cj, species, rad_eta, rad_rs, ang_eta, ang_rs, rad, dsq,
                mom};
    const long n = a.n, P = dims[1], E = a.E;
    if (n <= 0) return P > 0 ? -2 : 0;
    const int nt = km_threads(dims[9]);
    const long NB = a.R + a.C + a.C * a.Mt;
    const long n_all = (a.L + 1) * (a.L + 2) * (a.L + 3) / 6;
    const long n_w = (5 + a.C + (n_all > 4 ? n_all : 4)) * BW;
    int64_t *ptr = malloc((size_t)(n + 1) * sizeof(int64_t));
    if (!ptr) return -1;
    /* centre ranges by binary search (valid when ci is sorted; checked below) */
#pragma omp parallel for num_threads(nt) schedule(static)
    for (long c = 0; c <= n; ++c) ptr[c] = fw_lower_bound(ci, P, c);
    int bad = ptr[0] != 0 || ptr[n] != P, fail = 0;
    long maxdeg = 1;
    for (long c = 0; c < n && !bad; ++c) {
        const long d = ptr[c + 1] - ptr[c];
        bad = d < 0;
        maxdeg = d > maxdeg ? d : maxdeg;
    }
    if (bad) {
        free(ptr);
        return -2;
    }
    const int64_t cap = maxdeg + BW;  /* per element, padded to whole blocks */
    int64_t **ib = calloc((size_t)nt, sizeof(int64_t *));
    REAL **scr = calloc((size_t)nt, sizeof(REAL *));
    fail = !ib || !scr;
    for (int t = 0; t < nt && !fail; ++t) {
        ib[t] = malloc((size_t)(2 * E + 1) * sizeof(int64_t));
        scr[t] = malloc((size_t)(3 * E * cap + NB * BW + n_w) * sizeof(REAL));
        fail = !ib[t] || !scr[t];
    }
    if (!fail) {
#pragma omp parallel num_threads(nt)
        {
            const int tid = km_thread_id();
            REAL *xs = scr[tid], *acc = xs + 3 * E * cap, *w = acc + NB * BW;
            int mine = 0;
#pragma omp for schedule(dynamic, 32)
            for (long c = 0; c < n; ++c)
                if (!mine)
                    mine = FN(centre)(&a, c, ci, ptr[c], ptr[c + 1], cap, ib[tid], xs, acc, w);
            if (mine) {
#pragma omp atomic write
                bad = 1;
            }
        }
    }
    for (int t = 0; ib && scr && t < nt; ++t) {
        free(ib[t]);
        free(scr[t]);
    }
    free(ib);
    free(scr);
    free(ptr);
    return fail ? -1 : (bad ? -2 : 0);
}

/* Factorised G5 of every centre from its slot sums (the forward of FastPlan._g5):
 *     mw[E, c, a]  = sum_m T[m, a] mom[i, E, c, m]   (weighted moments of all degrees;
 *                                                    T sparse, by column: t_ptr/t_row/t_val)
 *     S[p, c, d]   = sum_{a of degree d} mw[A_p, c, a] mw[B_p, c, a]  (columns ordered by
 *                    degree: those of degree d are doff[d] .. doff[d + 1] - 1)
 *     G5[i, p, k]  = half_p (sum_{c,d} S[p, c, d] W[c D + d, k] - same_p sum_c dsq[i, A_p, c]
 *                    Wd[c, k])
 * dims: n, E, C, Mt, n_all, D, npair, nf, threads. Returns 0, or -1 when memory ran out. */
int FN(g5)(const int64_t *dims, const REAL *mom, const REAL *dsq, const int64_t *t_ptr,
           const int64_t *t_row, const REAL *t_val, const int64_t *doff, const int64_t *pa,
           const int64_t *pb, const REAL *W, const REAL *Wd, const REAL *half,
           const REAL *same, REAL *out) {
    const long n = dims[0], E = dims[1], C = dims[2], Mt = dims[3], n_all = dims[4],
               D = dims[5], np = dims[6], nf = dims[7];
    const int nt = km_threads(dims[8]);
    const long per = E * C * n_all + C * D + nf;
    REAL *scr = malloc((size_t)(nt * per + 1) * sizeof(REAL));
    if (!scr) return -1;
#pragma omp parallel num_threads(nt)
    {
#ifdef _OPENMP
        REAL *mw = scr + omp_get_thread_num() * per;
#else
        REAL *mw = scr;
#endif
        REAL *S = mw + E * C * n_all, *G = S + C * D;
#pragma omp for schedule(static)
        for (long i = 0; i < n; ++i) {
            const REAL *mi = mom + i * E * C * Mt, *di = dsq + i * E * C;
            for (long ec = 0; ec < E * C; ++ec) {
                const REAL *src = mi + ec * Mt;
                REAL *dst = mw + ec * n_all;
                for (long col = 0; col < n_all; ++col) {
                    REAL v = 0;
                    for (int64_t k = t_ptr[col]; k < t_ptr[col + 1]; ++k)
                        v += t_val[k] * src[t_row[k]];
                    dst[col] = v;
                }
            }
            for (long p = 0; p < np; ++p) {
                for (long c = 0; c < C; ++c) {
                    const REAL *ma = mw + (pa[p] * C + c) * n_all;
                    const REAL *mb = mw + (pb[p] * C + c) * n_all;
                    for (long d = 0; d < D; ++d) {  /* columns of degree d: doff[d]..[d+1] */
                        REAL v = 0;
                        for (int64_t col = doff[d]; col < doff[d + 1]; ++col)
                            v += ma[col] * mb[col];
                        S[c * D + d] = v;
                    }
                }
                for (long k = 0; k < nf; ++k) G[k] = 0;
                for (long cd = 0; cd < C * D; ++cd) {
                    const REAL v = S[cd], *w = W + cd * nf;
#pragma omp simd
                    for (long k = 0; k < nf; ++k) G[k] += v * w[k];
                }
                const REAL h = half[p], sm = same[p];
                REAL *o = out + (i * np + p) * nf;
                for (long k = 0; k < nf; ++k) {
                    REAL dg = 0;
                    for (long c = 0; c < C; ++c) dg += di[pa[p] * C + c] * Wd[c * nf + k];
                    o[k] = h * (G[k] - sm * dg);
                }
            }
        }
    }
    free(scr);
    return 0;
}

#endif /* FW_BODY */
