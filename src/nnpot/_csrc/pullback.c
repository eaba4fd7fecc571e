/* K vector-Jacobian products of the factorised symmetry functions, fused per centre.
 *
 * The C side of nnpot.atomistic.pullback_c (see descriptors_vjp for the math). For every
 * centre i (parallel over centres, OpenMP), the coefficients of each neighbour element e
 * are assembled once from the cotangents c [K, n, F]:
 *     rows of phi:  d_rad[r] (radial columns) | d_dsq[c] | d_mom[c, m]
 *     dS[p, c, d] = h_p sum_f W[c, d][f] c[i, G5 column (p, f)],  d_dsq = -h Wd . c
 *     Qm[c, o, d, m] = sum_m' Q[m', d, m] mom[i, o, c, m']     (Q sparse: a COO list)
 *     d_mom[c, m, k] = sum_t f_t sum_d Qm[c, o_t, d, m] dS[p_t, c, d, k]
 *     poly[c, l, x, k] = low_fac[l, x] d_mom[c, low_idx[l, x], k]      (rows of psi)
 * then the pairs of e inside the cutoff (r = |r_p|, rhat = r_p / r), BW at a time (one
 * SIMD vector), get their slot basis once
 *     phi = [g_r'; 2 g_c g_c'; g_c' rhat^m],  psi = [g_c rhat^l / r]
 * and for all K cotangents (small register-blocked GEMMs over the block)
 *     v_k = rhat (coef_k . phi - rhat . du_k) + du_k,   du_k[x] = poly_k[., x] . psi
 * which goes to the position gradient (-v at the centre, +v at the neighbour; private
 * buffers per thread, summed at the end) and the centre's virial W[a][b] += r_a v_b, or
 * (pout) is written per pair.
 *
 * The file includes itself twice: once for double (suffix _f64), once for float (_f32).
 */
#ifndef PB_BODY
#define PB_BODY

#include "kmath.h" /* FMA-contraction pragma, standard headers, shared math */
#define PB_PI KM_PI


#define REAL double
#define FN(name) name##_f64
#define EXPR km_exp_f64
#define BW 8 /* pairs per block: one 512-bit vector */
#include "pullback.c" /* this file, second pass */
#undef REAL
#undef FN
#undef EXPR
#undef BW

#define REAL float
#define FN(name) name##_f32
#define EXPR km_exp_f32
#define BW 16
#include "pullback.c" /* this file, second pass */

#else /* PB_BODY: the kernel for one REAL type */

#include "monomials.h" /* FN(rhat_monomials) for this REAL */

typedef struct {
    /* dims */
    long n, K, E, R, C, D, Mt, nl, L, top0, low0, npair, F, cosine, nf, n_ang;
    REAL rc;
    /* inputs */
    const REAL *rij;               /* [P, 3] */
    const int64_t *ptr;            /* [n + 1] pair offsets of each centre */
    const int64_t *jn;             /* [P] neighbour atom */
    const int64_t *species;        /* [n] element of each atom (of neighbour jn[p]) */
    const REAL *cot;               /* [K, n, F] */
    const REAL *W, *Wd;            /* [C * D, nf], [C, nf]: G5 columns from S_d and dsq */
    const REAL *half;              /* [npair] */
    const int64_t *fact;           /* [nf] factorised angular columns */
    const int64_t *diag;           /* [E] the pair (e, e) */
    const REAL *mom;               /* [n, E, C, Mt] top moments */
    long nq;                       /* nonzeros of Q */
    const int64_t *q_row;          /* [nq] m' of each nonzero */
    const int64_t *q_col;          /* [nq] d * Mt + m of each nonzero */
    const REAL *q_val;             /* [nq] Q[m', d, m] */
    const int64_t *term_ptr;       /* [E + 1] */
    const int64_t *term_pair;      /* [T] */
    const int64_t *term_oth;       /* [T] */
    const REAL *term_fac;          /* [T] */
    const int64_t *low_idx;        /* [nl * 3], (l, x) order */
    const REAL *low_fac;           /* [nl * 3] */
    const REAL *rad_eta, *rad_rs;  /* [R] */
    const REAL *ang_eta, *ang_rs;  /* [C] */
} FN(Args);

/* Coefficients of centre i for every element: cf [E][NB][K], pl [E][C*nl][3][K];
 * cs: scratch of F*K + npair*C*D*K + C*E*D*Mt. */
static inline __attribute__((always_inline)) void FN(coefficients)(
    const FN(Args) *a, long i, const long K, REAL *restrict cf, REAL *restrict pl,
    REAL *restrict cs) {
    const long E = a->E, R = a->R, C = a->C, D = a->D, Mt = a->Mt, nl = a->nl, F = a->F;
    const long NB = R + C + C * Mt, nf = a->nf, np = a->npair;
    REAL *ct = cs, *dS = ct + F * K, *qm = dS + np * C * D * K;
    if (C) {  /* qm[c][o][d * Mt + m] = sum_m' Q[m', d, m] mom[i, o, c, m'] */
        const long DM = D * Mt;
        for (long q = 0; q < C * E * DM; ++q) qm[q] = 0;
        for (long o = 0; o < E; ++o)
            for (long c = 0; c < C; ++c) {
                const REAL *mo = a->mom + ((i * E + o) * C + c) * Mt;
                REAL *qo = qm + (c * E + o) * DM;
                for (long z = 0; z < a->nq; ++z)
                    qo[a->q_col[z]] += a->q_val[z] * mo[a->q_row[z]];
            }
    }
    for (long k = 0; k < K; ++k) {  /* ct[f][k] = cot[k][i][f] */
        const REAL *src = a->cot + (k * a->n + i) * F;
        for (long f = 0; f < F; ++f) ct[f * K + k] = src[f];
    }
    /* dS[p][c, d][k] = half_p sum_f W[c, d][f] cot[k][i][G5 column (p, f)] */
    for (long p = 0; p < np && C; ++p) {
        const REAL h = a->half[p];
        const REAL *cp = ct + (E * R + p * a->n_ang) * K;
        for (long cd = 0; cd < C * D; ++cd) {
            REAL *o = dS + (p * C * D + cd) * K;
            for (long k = 0; k < K; ++k) o[k] = 0;
            for (long f = 0; f < nf; ++f) {
                const REAL wf = h * a->W[cd * nf + f];
                const REAL *src = cp + a->fact[f] * K;
#pragma omp simd
                for (long k = 0; k < K; ++k) o[k] += wf * src[k];
            }
        }
    }
    for (long e = 0; e < E; ++e) {
        REAL *c0 = cf + e * NB * K;
        memcpy(c0, ct + e * R * K, (size_t)(R * K) * sizeof(REAL));
        if (!C) continue;
        {  /* d_dsq[c][k] = -half sum_f Wd[c][f] cot[k][i][G5 column ((e, e), f)] */
            const long p = a->diag[e];
            const REAL h = a->half[p];
            const REAL *cp = ct + (E * R + p * a->n_ang) * K;
            for (long c = 0; c < C; ++c) {
                REAL *o = c0 + (R + c) * K;
                for (long k = 0; k < K; ++k) o[k] = 0;
                for (long f = 0; f < nf; ++f) {
                    const REAL wf = -h * a->Wd[c * nf + f];
                    const REAL *src = cp + a->fact[f] * K;
#pragma omp simd
                    for (long k = 0; k < K; ++k) o[k] += wf * src[k];
                }
            }
        }
        for (long c = 0; c < C; ++c) {
            REAL *dm = c0 + (R + C + c * Mt) * K;
            for (long q = 0; q < Mt * K; ++q) dm[q] = 0;
            for (long t = a->term_ptr[e]; t < a->term_ptr[e + 1]; ++t) {
                const long p = a->term_pair[t], o = a->term_oth[t];
                const REAL f = a->term_fac[t];
                for (long d = 0; d < D; ++d) {
                    const REAL *q = qm + ((c * E + o) * D + d) * Mt;
                    const REAL *sd = dS + ((p * C + c) * D + d) * K;
                    for (long m = 0; m < Mt; ++m) {
                        const REAL fq = f * q[m];
#pragma omp simd
                        for (long k = 0; k < K; ++k) dm[m * K + k] += fq * sd[k];
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

/* cos(pi t), sin(pi t) for t in [0, 1]: with z = pi (t - 1/2), |z| <= pi/2, they are
 * -sin z and cos z (Taylor to z^21 / z^22: below 1e-17); no libm call, so it vectorises. */
static inline void FN(cospi_sinpi)(REAL t, REAL *c, REAL *s) {
    const REAL z = (REAL)PB_PI * (t - (REAL)0.5), z2 = z * z;
    REAL ps = (REAL)(-1.0 / 51090942171709440000.0);
    ps = ps * z2 + (REAL)(1.0 / 121645100408832000.0);
    ps = ps * z2 + (REAL)(-1.0 / 355687428096000.0);
    ps = ps * z2 + (REAL)(1.0 / 1307674368000.0);
    ps = ps * z2 + (REAL)(-1.0 / 6227020800.0);
    ps = ps * z2 + (REAL)(1.0 / 39916800.0);
    ps = ps * z2 + (REAL)(-1.0 / 362880.0);
    ps = ps * z2 + (REAL)(1.0 / 5040.0);
    ps = ps * z2 + (REAL)(-1.0 / 120.0);
    ps = ps * z2 + (REAL)(1.0 / 6.0);
    ps = ps * z2 - 1;  /* -(sin z)/z */
    REAL pc = (REAL)(1.0 / 1124000727777607680000.0);
    pc = pc * z2 + (REAL)(-1.0 / 2432902008176640000.0);
    pc = pc * z2 + (REAL)(1.0 / 6402373705728000.0);
    pc = pc * z2 + (REAL)(-1.0 / 20922789888000.0);
    pc = pc * z2 + (REAL)(1.0 / 87178291200.0);
    pc = pc * z2 + (REAL)(-1.0 / 479001600.0);
    pc = pc * z2 + (REAL)(1.0 / 3628800.0);
    pc = pc * z2 + (REAL)(-1.0 / 40320.0);
    pc = pc * z2 + (REAL)(1.0 / 720.0);
    pc = pc * z2 + (REAL)(-1.0 / 24.0);
    pc = pc * z2 + (REAL)0.5;
    pc = pc * z2 - 1;  /* -cos z */
    *c = ps * z;
    *s = -pc;
}

/* Slot bases of one block of BW pairs of one neighbour element (lanes >= nb are pads with
 * f_c = f_c' = 0, so every row vanishes there): phi [NB][BW], psi [C*nl][BW]. */
static inline __attribute__((always_inline)) void FN(block_basis)(
    const FN(Args) *a, const int64_t *idx, long nb, REAL *restrict w, REAL *restrict phi,
    REAL *restrict psi, REAL *restrict Y, REAL *restrict gd) {
    const long R = a->R, C = a->C, Mt = a->Mt, nl = a->nl;
    REAL *x0 = w, *x1 = w + BW, *x2 = w + 2 * BW, *u0 = w + 3 * BW, *u1 = w + 4 * BW,
         *u2 = w + 5 * BW, *rr = w + 6 * BW, *iv = w + 7 * BW, *fc = w + 8 * BW,
         *dfc = w + 9 * BW;
    const REAL irc = (REAL)1 / a->rc;
    for (long q = 0; q < BW; ++q) {
        const long p = idx[q < nb ? q : 0];
        x0[q] = a->rij[3 * p];
        x1[q] = a->rij[3 * p + 1];
        x2[q] = a->rij[3 * p + 2];
    }
#pragma omp simd
    for (long q = 0; q < BW; ++q) {
        const REAL r2 = x0[q] * x0[q] + x1[q] * x1[q] + x2[q] * x2[q];
        const REAL r = sqrt(r2), inv = (REAL)1 / r, t = r * irc;
        const REAL live = q < nb ? (REAL)1 : (REAL)0;
        REAL f, df;
        if (a->cosine) {
            REAL c, s;
            FN(cospi_sinpi)(t, &c, &s);
            f = (REAL)0.5 * c + (REAL)0.5;
            df = ((REAL)(-0.5 * PB_PI) * irc) * s;
        } else {
            const REAL t2 = t * t;
            f = 1 + t2 * t * (-10 + t * (15 - 6 * t));
            df = (t2 * (-30 + t * (60 - 30 * t))) * irc;
        }
        rr[q] = r;
        iv[q] = inv;
        u0[q] = x0[q] * inv;
        u1[q] = x1[q] * inv;
        u2[q] = x2[q] * inv;
        fc[q] = f * live;
        dfc[q] = df * live;
    }
    for (long ch = 0; ch < R; ++ch) {
        const REAL eta = a->rad_eta[ch], s = a->rad_rs[ch];
        REAL *ph = phi + ch * BW;
#pragma omp simd
        for (long q = 0; q < BW; ++q) {
            const REAL d = rr[q] - s;
            REAL z = -eta * d * d;
            z = z < (REAL)-60 ? (REAL)-60 : z;
            ph[q] = EXPR(z) * (fc[q] * (-2 * eta * d) + dfc[q]);
        }
    }
    if (!C) return;
    REAL *ga = gd, *dga = gd + C * BW;
    for (long c = 0; c < C; ++c) {
        const REAL eta = a->ang_eta[c], s = a->ang_rs[c];
        REAL *ph = phi + (R + c) * BW;
#pragma omp simd
        for (long q = 0; q < BW; ++q) {
            const REAL d = rr[q] - s;
            REAL z = -eta * d * d;
            z = z < (REAL)-60 ? (REAL)-60 : z;
            const REAL g = EXPR(z);
            const REAL g0 = g * fc[q], g1 = g * (fc[q] * (-2 * eta * d) + dfc[q]);
            ga[c * BW + q] = g0 * iv[q];
            dga[c * BW + q] = g1;
            ph[q] = 2 * g0 * g1;
        }
    }
    FN(rhat_monomials)(Y, u0, u1, u2, a->L);
    for (long c = 0; c < C; ++c) {
        REAL *ph = phi + (R + C + c * Mt) * BW;
        const REAL *yt = Y + a->top0 * BW, *yl = Y + a->low0 * BW;
        for (long m = 0; m < Mt; ++m)
#pragma omp simd
            for (long q = 0; q < BW; ++q) ph[m * BW + q] = dga[c * BW + q] * yt[m * BW + q];
        for (long l = 0; l < nl; ++l)
#pragma omp simd
            for (long q = 0; q < BW; ++q)
                psi[(c * nl + l) * BW + q] = ga[c * BW + q] * yl[l * BW + q];
    }
}

/* out[k][q] = sum_b coef[b * cs + k] rows[b][q] for k < K, b < nrow (lanes q < BW); the
 * sums live in a local array (registers for constant K), stored once. */
static inline __attribute__((always_inline)) void FN(contract)(
    const REAL *restrict coef, long cs, const REAL *restrict rows, long nrow, const long K,
    REAL *restrict out) {
    REAL acc[K * BW];
    for (long q = 0; q < K * BW; ++q) acc[q] = 0;
    for (long b = 0; b < nrow; ++b) {
        const REAL *rb = rows + b * BW;
        for (long k = 0; k < K; ++k) {
            const REAL c = coef[b * cs + k];
#pragma omp simd
            for (long q = 0; q < BW; ++q) acc[k * BW + q] += c * rb[q];
        }
    }
    for (long q = 0; q < K * BW; ++q) out[q] = acc[q];
}

/* All pairs of centre i, in blocks of BW pairs of one neighbour element. gbuf: [n, 3, K]
 * gradient buffer (centre and neighbours), or NULL with pout [P, K, 3] (v per pair, no
 * gradient). vout: [K, n, 3, 3] or NULL. */
static inline __attribute__((always_inline)) void FN(centre)(
    const FN(Args) *a, long i, const long K, REAL *restrict cf, REAL *restrict pl,
    REAL *restrict cs, REAL *restrict w, int64_t *restrict idx, REAL *gbuf, REAL *pout,
    REAL *vout) {
    const long E = a->E, R = a->R, C = a->C, Mt = a->Mt, nl = a->nl;
    const long NB = R + C + C * Mt;
    const long n_all = (a->L + 1) * (a->L + 2) * (a->L + 3) / 6;
    REAL *phi = w + 10 * BW, *psi = phi + NB * BW, *Y = psi + C * nl * BW;
    REAL *gd = Y + (n_all > 4 ? n_all : 4) * BW, *dr = gd + 2 * C * BW, *du = dr + K * BW;
    REAL *gl = du + 3 * K * BW, *vl = gl + 3 * K * BW;  /* lane-wise sums [.][BW] */
    for (long q = 0; q < 12 * K * BW; ++q) gl[q] = 0;
    const long p0 = a->ptr[i], p1 = a->ptr[i + 1];
    if (p1 == p0) {
        if (vout)
            for (long k = 0; k < K; ++k)
                for (long q = 0; q < 9; ++q) vout[(k * a->n + i) * 9 + q] = 0;
        return;
    }
    FN(coefficients)(a, i, K, cf, pl, cs);
    for (long e = 0; e < E; ++e) {
        long m = 0;  /* this element's pairs inside the cutoff */
        for (long p = p0; p < p1; ++p) {
            if (a->species[a->jn[p]] != e) continue;
            const REAL *x = a->rij + 3 * p;
            if (sqrt(x[0] * x[0] + x[1] * x[1] + x[2] * x[2]) < a->rc)
                idx[m++] = p;  /* beyond: f_c = f_c' = 0, nothing (like the torch pads) */
            else if (pout)
                for (long q = 0; q < 3 * K; ++q) pout[p * 3 * K + q] = 0;  /* any order */
        }
        const REAL *ce = cf + e * NB * K, *pe = pl + e * C * nl * 3 * K;
        for (long b0 = 0; b0 < m; b0 += BW) {
            const long nb = m - b0 < BW ? m - b0 : BW;
            FN(block_basis)(a, idx + b0, nb, w, phi, psi, Y, gd);
            FN(contract)(ce, K, phi, NB, K, dr);  /* dr[k][q] = coef_k . phi */
            REAL *u0 = w + 3 * BW, *u1 = w + 4 * BW, *u2 = w + 5 * BW;
            if (C) {  /* du[x][k][q] = poly_k[., x] . psi */
                for (long x = 0; x < 3; ++x)
                    FN(contract)(pe + x * K, 3 * K, psi, C * nl, K, du + x * K * BW);
                for (long k = 0; k < K; ++k) {
                    REAL *d0 = du + k * BW, *d1 = du + (K + k) * BW, *d2 = du + (2 * K + k) * BW;
                    REAL *dk = dr + k * BW;
#pragma omp simd
                    for (long q = 0; q < BW; ++q) {
                        const REAL tn = dk[q] - (d0[q] * u0[q] + d1[q] * u1[q] + d2[q] * u2[q]);
                        d0[q] += u0[q] * tn;
                        d1[q] += u1[q] * tn;
                        d2[q] += u2[q] * tn;
                    }
                }
            } else {
                for (long k = 0; k < K; ++k)
#pragma omp simd
                    for (long q = 0; q < BW; ++q) {
                        du[k * BW + q] = u0[q] * dr[k * BW + q];
                        du[(K + k) * BW + q] = u1[q] * dr[k * BW + q];
                        du[(2 * K + k) * BW + q] = u2[q] * dr[k * BW + q];
                    }
            }
            /* du now holds v[x][k][q] (pads: 0); lane-wise sums, reduced once per centre */
            for (long xk = 0; xk < 3 * K; ++xk) {
                const REAL *vq = du + xk * BW;
                REAL *g = gl + xk * BW;
#pragma omp simd
                for (long q = 0; q < BW; ++q) g[q] += vq[q];
                if (vout)
                    for (long aa = 0; aa < 3; ++aa) {
                        const REAL *xa = w + aa * BW;
                        REAL *vv = vl + (aa * 3 * K + xk) * BW;
#pragma omp simd
                        for (long q = 0; q < BW; ++q) vv[q] += xa[q] * vq[q];
                    }
            }
            if (!pout && K > 1 && K <= 32) {  /* transpose the block, then rows per pair */
                REAL tb[BW * 3 * K];
                for (long xk = 0; xk < 3 * K; ++xk)
                    for (long q = 0; q < BW; ++q) tb[q * 3 * K + xk] = du[xk * BW + q];
                for (long q = 0; q < nb; ++q) {
                    REAL *dst = gbuf + a->jn[idx[b0 + q]] * 3 * K;
                    const REAL *src = tb + q * 3 * K;
#pragma omp simd
                    for (long xk = 0; xk < 3 * K; ++xk) dst[xk] += src[xk];
                }
            } else {
                for (long q = 0; q < nb; ++q) {
                    const long p = idx[b0 + q];
                    if (pout) {
                        for (long k = 0; k < K; ++k)
                            for (long x = 0; x < 3; ++x)
                                pout[(p * K + k) * 3 + x] = du[(x * K + k) * BW + q];
                    } else {
                        REAL *dst = gbuf + a->jn[p] * 3 * K;
                        for (long xk = 0; xk < 3 * K; ++xk) dst[xk] += du[xk * BW + q];
                    }
                }
            }
        }
    }
    if (!pout)
        for (long xk = 0; xk < 3 * K; ++xk) {
            REAL sum = 0;
            for (long q = 0; q < BW; ++q) sum += gl[xk * BW + q];
            gbuf[i * 3 * K + xk] -= sum;
        }
    if (vout)  /* vl[(a, x, k)][lane] -> W[k][i][a][x] = sum r_a v_x */
        for (long aa = 0; aa < 3; ++aa)
            for (long x = 0; x < 3; ++x)
                for (long k = 0; k < K; ++k) {
                    REAL sum = 0;
                    const REAL *src = vl + ((aa * 3 + x) * K + k) * BW;
                    for (long l = 0; l < BW; ++l) sum += src[l];
                    vout[((k * a->n + i) * 3 + aa) * 3 + x] = sum;
                }
}

static void FN(run_centre)(const FN(Args) *a, long i, REAL *cf, REAL *pl, REAL *cs, REAL *w,
                           int64_t *idx, REAL *gbuf, REAL *pout, REAL *vout) {
    switch (a->K) {  /* constant K: accumulators in registers, loops unrolled */
    case 1: FN(centre)(a, i, 1, cf, pl, cs, w, idx, gbuf, pout, vout); break;
    case 2: FN(centre)(a, i, 2, cf, pl, cs, w, idx, gbuf, pout, vout); break;
    case 4: FN(centre)(a, i, 4, cf, pl, cs, w, idx, gbuf, pout, vout); break;
    case 8: FN(centre)(a, i, 8, cf, pl, cs, w, idx, gbuf, pout, vout); break;
    default: FN(centre)(a, i, a->K, cf, pl, cs, w, idx, gbuf, pout, vout);
    }
}

/* dims: n, P, K, E, R, C, D, Mt, nl, L, top0, low0, npair, F, cosine, threads, nf, n_ang,
 * nq (nonzeros of Q: q_row, q_col, q_val).
 * cot [K, n, F]; grad [K, n, 3] (or NULL with pout); vir [K, n, 3, 3] or NULL; pout
 * [P, K, 3] or NULL (products per pair instead of gradients). Returns 0, or -1 when memory
 * ran out (outputs undefined). */
int FN(pullback_atoms)(const int64_t *dims, double rc_, const REAL *rij, const int64_t *ptr,
                       const int64_t *jn, const int64_t *species, const REAL *cot,
                       const REAL *W,
                       const REAL *Wd, const REAL *half, const int64_t *fact,
                       const int64_t *diag, const REAL *mom, const int64_t *q_row,
                       const int64_t *q_col, const REAL *q_val, const int64_t *term_ptr,
                       const int64_t *term_pair, const int64_t *term_oth,
                       const REAL *term_fac, const int64_t *low_idx, const REAL *low_fac,
                       const REAL *rad_eta, const REAL *rad_rs, const REAL *ang_eta,
                       const REAL *ang_rs, REAL *grad, REAL *vir, REAL *pout) {
    FN(Args) a = {dims[0], dims[2], dims[3], dims[4], dims[5], dims[6], dims[7], dims[8],
                  dims[9], dims[10], dims[11], dims[12], dims[13], dims[14], dims[16],
                  dims[17], (REAL)rc_, rij, ptr, jn, species, cot, W, Wd, half, fact, diag, mom,
                  dims[18], q_row, q_col, q_val, term_ptr, term_pair, term_oth, term_fac,
                  low_idx, low_fac, rad_eta, rad_rs, ang_eta, ang_rs};
    const long n = a.n, K = a.K;
    const int nt = km_threads(dims[15]);
    const long NB = a.R + a.C + a.C * a.Mt;
    const long n_all = (a.L + 1) * (a.L + 2) * (a.L + 3) / 6;
    const long n_cs = a.F * K + a.npair * a.C * a.D * K + a.C * a.E * a.D * a.Mt;
    const long scratch = a.E * NB * K + a.E * a.C * a.nl * 3 * K + n_cs
                         + (10 + NB + a.C * a.nl + (n_all > 4 ? n_all : 4) + 2 * a.C + 16 * K) * BW;
    long maxdeg = 1;
    for (long i = 0; i < n; ++i)
        maxdeg = ptr[i + 1] - ptr[i] > maxdeg ? ptr[i + 1] - ptr[i] : maxdeg;
    /* per-thread scratch and gradient buffers [n, 3, K] (none with pout), allocated here
     * so that a failure leaves the parallel region out altogether */
    REAL **bufs = calloc((size_t)nt, sizeof(REAL *));
    REAL **scr = calloc((size_t)nt, sizeof(REAL *));
    int64_t **ids = calloc((size_t)nt, sizeof(int64_t *));
    int fail = !bufs || !scr || !ids;
    for (int t = 0; t < nt && !fail; ++t) {
        scr[t] = malloc((size_t)scratch * sizeof(REAL));
        ids[t] = malloc((size_t)maxdeg * sizeof(int64_t));
        if (!pout) bufs[t] = calloc((size_t)(n * 3 * K) + 1, sizeof(REAL));
        fail = !scr[t] || !ids[t] || (!pout && !bufs[t]);
    }
    if (!fail) {
#pragma omp parallel num_threads(nt)
        {
            const int tid = km_thread_id();
            REAL *cf = scr[tid], *pl = cf + a.E * NB * K, *cs = pl + a.E * a.C * a.nl * 3 * K;
            REAL *w = cs + n_cs;
#pragma omp for schedule(dynamic, 16)
            for (long i = 0; i < n; ++i)
                FN(run_centre)(&a, i, cf, pl, cs, w, ids[tid], bufs[tid], pout, vir);
            if (!pout) {  /* grad[k][atom][x] = sum over threads */
#pragma omp for schedule(static)
                for (long at = 0; at < n; ++at)
                    for (long x = 0; x < 3; ++x)
                        for (long k = 0; k < K; ++k) {
                            REAL acc = 0;
                            for (int t = 0; t < nt; ++t) acc += bufs[t][(at * 3 + x) * K + k];
                            grad[(k * n + at) * 3 + x] = acc;
                        }
            }
        }
    }
    for (int t = 0; bufs && scr && ids && t < nt; ++t) {
        free(bufs[t]);
        free(scr[t]);
        free(ids[t]);
    }
    free(scr);
    free(ids);
    free(bufs);
    return fail ? -1 : 0;
}

#endif /* PB_BODY */
