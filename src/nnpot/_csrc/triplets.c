/* Triplet (G4 / G5) symmetry-function sums and their pair-vector gradients, in C + OpenMP.
 *
 * Same math and conventions as nnpot/atomistic/descriptors_triplets.py (the reference):
 *
 *   out[i, pair(A,B), f] = Σ_{j<k} A_l(cos θ_ijk) · a_g(r_ij) a_g(r_ik) · b_g(r_jk),
 *   A_l = 2^{1-ζ} max(1 + λ cos θ, 0)^ζ,   a_g(r) = exp(-η (r - r_s)²) f_c(r),
 *   b_g = a_g for G4 groups, 1 for G5 groups,  (g, l) = (g_of[f], lz_of[f]),
 *
 * j < k over distinct entries of centre i's neighbour list (pairs sorted by centre: the
 * entries of centre c are start[c] .. start[c+1]-1). The backward maps d_out [rows, F] to
 * the gradient with respect to each pair vector r_ij [P, 3]; a pair belongs to one centre,
 * so threads over centres never write the same row.
 *
 * Per centre the neighbours are sorted by element, so for a fixed j each element block of k
 * feeds one output row and the inner loops over k vectorise (no scatter). Triplet-level
 * transcendentals use inlined polynomials (exp: Cody-Waite reduction + Taylor to r^12 / r^7;
 * cosine cutoff f_c = sin²(π(1 - r/r_c)/2) with Taylor sin/cos), accurate to a few ulp.
 *
 * The file includes itself twice: once with REAL = double (symbols *_f64), once with
 * REAL = float (*_f32).
 */
#ifndef REAL

/* let the compiler fuse a*b+c into FMA (ISO C modes default to no contraction) */
#if defined(__clang__)
#pragma clang fp contract(fast)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=fast")
#endif

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* integer parameters: header then tables (see triplets_c.py, which builds them) */
enum { I_N, I_NEL, I_NPAIR, I_G, I_L, I_F, I_KIND, I_ALLG4, I_NTHREADS, I_K, I_HEADER };

typedef struct {
    int n, n_el, n_pair, G, L, F, kind, all_g4, nthreads, K; /* K: cotangents */
    const int32_t *pair_id, *g_of, *lz_of, *is_g4, *zint;
    double rc;
    const double *eta, *rs, *lam, *zeta, *pre; /* pre = 2^(1-ζ) */
} plan_t;

static void read_plan(plan_t *p, const int32_t *ip, const double *dp) {
    p->n = ip[I_N]; p->n_el = ip[I_NEL]; p->n_pair = ip[I_NPAIR];
    p->G = ip[I_G]; p->L = ip[I_L]; p->F = ip[I_F];
    p->kind = ip[I_KIND]; p->all_g4 = ip[I_ALLG4]; p->nthreads = ip[I_NTHREADS];
    p->K = ip[I_K] > 0 ? ip[I_K] : 1;
    const int32_t *t = ip + I_HEADER;
    p->pair_id = t; t += p->n_el * p->n_el;
    p->g_of = t; t += p->F;
    p->lz_of = t; t += p->F;
    p->is_g4 = t; t += p->G;
    p->zint = t;
    p->rc = dp[0];
    p->eta = dp + 1; p->rs = dp + 1 + p->G;
    p->lam = dp + 1 + 2 * p->G; p->zeta = dp + 1 + 2 * p->G + p->L;
    p->pre = dp + 1 + 2 * p->G + 2 * p->L;
}

static int max_neighbours(const int64_t *start, int n) {
    int64_t m = 0;
    for (int c = 0; c < n; c++)
        if (start[c + 1] - start[c] > m) m = start[c + 1] - start[c];
    return (int)m;
}

#define MAX_TABLE 64 /* elements, radial groups and (λ, ζ) pairs (checked in triplets_c.py) */
#define ALIGN_UP(x) (((x) + 15) & ~(int64_t)15)
#define PI_D 3.14159265358979323846

/* ---------------------------------------------------------------- double */
#define REAL double
#define SFX(name) name##_f64
#define SQRT sqrt
#define VPAD 8 /* inner loops run to a multiple of one 512-bit vector: no scalar remainders */
#include __FILE__
#undef REAL
#undef SFX
#undef SQRT
#undef VPAD

/* ---------------------------------------------------------------- float */
#define REAL float
#define SFX(name) name##_f32
#define SQRT sqrtf
#define VPAD 16
#define REAL_IS_FLOAT 1
#include __FILE__
#undef REAL
#undef SFX
#undef SQRT
#undef VPAD
#undef REAL_IS_FLOAT

#else /* ======================================================= body, once per REAL */

/* exp(x) for x <= 0 (clamped where the result underflows); vectorisable */
static inline REAL SFX(vexp)(REAL x) {
#ifdef REAL_IS_FLOAT
    x = x < -87.0f ? -87.0f : x;
    float t = x * 1.44269504088896341f + 0x1.8p23f;
    float kf = t - 0x1.8p23f;
    float r = x - kf * 0.693359375f;
    r = r + kf * 2.12194440e-4f;
    /* Taylor to r^7 (|r| <= ln2/2), Estrin's scheme */
    float r2 = r * r, r4 = r2 * r2;
    float p = ((1.0f + r) + (0.5f + r * (1.0f / 6.0f)) * r2)
              + ((1.0f / 24.0f + r * (1.0f / 120.0f))
                 + (1.0f / 720.0f + r * (1.0f / 5040.0f)) * r2) * r4;
    int32_t bits;
    memcpy(&bits, &t, 4);
    bits = (bits - 0x4B400000 + 127) << 23;
    float s;
    memcpy(&s, &bits, 4);
    return p * s;
#else
    x = x < -700.0 ? -700.0 : x;
    double t = x * 1.4426950408889634 + 0x1.8p52;
    double kf = t - 0x1.8p52;
    double r = x - kf * 6.93147180369123816490e-01;
    r = r - kf * 1.90821492927058770002e-10;
    /* Taylor to r^12 (|r| <= ln2/2), Estrin's scheme (short dependency chains) */
    double r2 = r * r, r4 = r2 * r2, r8 = r4 * r4;
    double q0 = (1.0 + r) + (0.5 + r * (1.0 / 6.0)) * r2;
    double q1 = (1.0 / 24.0 + r * (1.0 / 120.0)) + (1.0 / 720.0 + r * (1.0 / 5040.0)) * r2;
    double q2 = (1.0 / 40320.0 + r * (1.0 / 362880.0))
                + (1.0 / 3628800.0 + r * (1.0 / 39916800.0)) * r2;
    double p = (q0 + q1 * r4) + (q2 + (1.0 / 479001600.0) * r4) * r8;
    int64_t bits;
    memcpy(&bits, &t, 8);
    bits = (bits - 0x4338000000000000LL + 1023) << 52;
    double s;
    memcpy(&s, &bits, 8);
    return p * s;
#endif
}

/* sin(u), cos(u) for u in [0, π/2] (Taylor; truncation < 3e-16 resp. 6e-8) */
static inline REAL SFX(vsin)(REAL u) {
    REAL u2 = u * u, p;
#ifdef REAL_IS_FLOAT
    p = -1.0f / 39916800.0f;
    p = p * u2 + 1.0f / 362880.0f;
    p = p * u2 - 1.0f / 5040.0f;
    p = p * u2 + 1.0f / 120.0f;
    p = p * u2 - 1.0f / 6.0f;
#else
    p = -1.0 / 121645100408832000.0;
    p = p * u2 + 1.0 / 355687428096000.0;
    p = p * u2 - 1.0 / 1307674368000.0;
    p = p * u2 + 1.0 / 6227020800.0;
    p = p * u2 - 1.0 / 39916800.0;
    p = p * u2 + 1.0 / 362880.0;
    p = p * u2 - 1.0 / 5040.0;
    p = p * u2 + 1.0 / 120.0;
    p = p * u2 - 1.0 / 6.0;
#endif
    return u + u * u2 * p;
}

static inline REAL SFX(vcos)(REAL u) {
    REAL u2 = u * u, p;
#ifdef REAL_IS_FLOAT
    p = 1.0f / 479001600.0f;
    p = p * u2 - 1.0f / 3628800.0f;
    p = p * u2 + 1.0f / 40320.0f;
    p = p * u2 - 1.0f / 720.0f;
    p = p * u2 + 1.0f / 24.0f;
    p = p * u2 - 0.5f;
#else
    p = 1.0 / 2432902008176640000.0;
    p = p * u2 - 1.0 / 6402373705728000.0;
    p = p * u2 + 1.0 / 20922789888000.0;
    p = p * u2 - 1.0 / 87178291200.0;
    p = p * u2 + 1.0 / 479001600.0;
    p = p * u2 - 1.0 / 3628800.0;
    p = p * u2 + 1.0 / 40320.0;
    p = p * u2 - 1.0 / 720.0;
    p = p * u2 + 1.0 / 24.0;
    p = p * u2 - 0.5;
#endif
    return 1 + u2 * p;
}

/* Per-thread workspace: per-centre arrays (index = neighbour rank after sorting by element)
 * and per-block arrays (index t = k - k0 of one element block). */
typedef struct {
    int W;
    REAL *x, *y, *z, *r, *ir, *a, *da, *ga, *gx, *gy, *gz;
    REAL *r3, *cs, *fc, *dfc, *mk, *b, *db, *P, *A, *dA, *dcos, *dr3, *dP;
    int32_t *spc;
    int64_t *idx;
    REAL *acc; /* VPAD lanes per output (row, f) of the centre */
    int *eb;
} SFX(work_t);

static int SFX(work_alloc)(SFX(work_t) *w, const plan_t *p, int nbmax) {
    int W = (int)ALIGN_UP(nbmax + 1) + 16, G = p->G, L = p->L;
    const int64_t K = p->K;
    int64_t nreal = (int64_t)W * (5 + 2 * G + K * (G + 3) + 5 + 4 * G + 2 * L + 2);
    REAL *m = (REAL *)aligned_alloc(64, (size_t)ALIGN_UP(nreal) * sizeof(REAL));
    w->spc = (int32_t *)malloc((size_t)W * sizeof(int32_t));
    w->idx = (int64_t *)malloc((size_t)W * sizeof(int64_t));
    w->acc = (REAL *)aligned_alloc(64, (size_t)ALIGN_UP(p->n_pair * p->F * VPAD + 1) * sizeof(REAL));
    w->eb = (int *)malloc((size_t)(p->n_el + 2) * sizeof(int));
    if (!m || !w->spc || !w->idx || !w->acc || !w->eb) {
        free(m); free(w->spc); free(w->idx); free(w->acc); free(w->eb);
        w->x = NULL;
        return 1;
    }
    memset(m, 0, (size_t)ALIGN_UP(nreal) * sizeof(REAL));
    w->W = W;
    w->x = m; m += W; w->y = m; m += W; w->z = m; m += W; w->r = m; m += W; w->ir = m; m += W;
    w->a = m; m += (int64_t)G * W; w->da = m; m += (int64_t)G * W;
    w->ga = m; m += K * G * W;
    w->gx = m; m += K * W; w->gy = m; m += K * W; w->gz = m; m += K * W;
    w->r3 = m; m += W; w->cs = m; m += W; w->fc = m; m += W; w->dfc = m; m += W;
    w->mk = m; m += W;
    w->b = m; m += (int64_t)G * W; w->db = m; m += (int64_t)G * W;
    w->P = m; m += (int64_t)G * W; w->dP = m; m += (int64_t)G * W;
    w->A = m; m += (int64_t)L * W; w->dA = m; m += (int64_t)L * W;
    w->dcos = m; m += W; w->dr3 = m;
    return 0;
}

static void SFX(work_free)(SFX(work_t) *w) {
    if (!w->x) return;
    free(w->x); free(w->spc); free(w->idx); free(w->acc); free(w->eb);
}

/* Load centre c: neighbours sorted by element (stable), distances, pair factors a (and
 * da/dr with grad). Returns the neighbour count. */
static int SFX(load_centre)(SFX(work_t) *w, const plan_t *p, const int64_t *start,
                            const int32_t *sj, const REAL *rij, int64_t c, int grad) {
    int64_t p0 = start[c];
    int nb = (int)(start[c + 1] - p0), W = w->W;
    int *eb = w->eb;
    for (int e = 0; e <= p->n_el; e++) eb[e] = 0;
    for (int q = 0; q < nb; q++) eb[sj[p0 + q] + 1]++;
    for (int e = 0; e < p->n_el; e++) eb[e + 1] += eb[e];
    int pos[MAX_TABLE];
    for (int e = 0; e < p->n_el; e++) pos[e] = eb[e];
    for (int q = 0; q < nb; q++) {
        int e = sj[p0 + q], s = pos[e]++;
        const REAL *v = rij + 3 * (p0 + q);
        w->x[s] = v[0]; w->y[s] = v[1]; w->z[s] = v[2];
        w->spc[s] = e;
        w->idx[s] = p0 + q;
    }
    const REAL rc = (REAL)p->rc, irc = (REAL)(1.0 / p->rc);
    for (int s = 0; s < nb; s++) {
        REAL r = SQRT(w->x[s] * w->x[s] + w->y[s] * w->y[s] + w->z[s] * w->z[s]);
        w->r[s] = r;
        w->ir[s] = 1 / r;
        REAL xx = r * irc < 1 ? r * irc : 1, f, df;
        if (p->kind == 0) {
            f = (REAL)(0.5 * cos(PI_D * xx) + 0.5);
            df = (REAL)(-0.5 * PI_D / p->rc * sin(PI_D * xx));
        } else {
            REAL x2 = xx * xx;
            f = 1 + x2 * xx * (-10 + xx * (15 - 6 * xx));
            df = x2 * (-30 + xx * (60 - 30 * xx)) / rc;
        }
        for (int g = 0; g < p->G; g++) {
            REAL d = r - (REAL)p->rs[g], eta = (REAL)p->eta[g];
            REAL e = (REAL)exp(-(double)(eta * d * d));
            w->a[g * W + s] = e * f;
            if (grad) w->da[g * W + s] = e * (df - 2 * eta * d * f);
        }
    }
    return nb;
}

/* Triplet quantities of block k0 .. k0+m-1 with the second neighbour jj, computed for
 * t < mp = m rounded up to VPAD (returned). Entries t >= m get f_c = b = db = 0 and r_jk = 1,
 * so they add exact zeros everywhere (the arrays are long enough to read them). */
static int SFX(block_terms)(SFX(work_t) *w, const plan_t *p, int jj, int k0, int m,
                            int grad, const unsigned char *need) {
    const int W = w->W, G = p->G, L = p->L, mp = (m + VPAD - 1) & ~(VPAD - 1);
    const REAL xj = w->x[jj], yj = w->y[jj], zj = w->z[jj], irj = w->ir[jj];
    const REAL irc = (REAL)(1.0 / p->rc), hpi = (REAL)(0.5 * PI_D);
    const REAL dscale = (REAL)(-PI_D / p->rc);
    const REAL *restrict x = w->x + k0, *restrict y = w->y + k0, *restrict z = w->z + k0;
    const REAL *restrict ir = w->ir + k0;
    REAL *restrict r3 = w->r3, *restrict cs = w->cs, *restrict fc = w->fc;
    REAL *restrict dfc = w->dfc, *restrict mk = w->mk;
    if (p->kind == 0) {
#pragma omp simd
        for (int t = 0; t < mp; t++) {
            REAL wx = x[t] - xj, wy = y[t] - yj, wz = z[t] - zj, in = t < m ? 1 : 0;
            REAL d = SQRT(wx * wx + wy * wy + wz * wz);
            r3[t] = t < m ? d : 1;
            mk[t] = in;
            cs[t] = (x[t] * xj + y[t] * yj + z[t] * zj) * (ir[t] * irj);
            REAL xx = d * irc;
            xx = xx < 1 ? xx : 1;
            REAL u = hpi * (1 - xx), s = SFX(vsin)(u) * in;
            fc[t] = s * s;
            dfc[t] = dscale * s * SFX(vcos)(u);
        }
    } else {
#pragma omp simd
        for (int t = 0; t < mp; t++) {
            REAL wx = x[t] - xj, wy = y[t] - yj, wz = z[t] - zj, in = t < m ? 1 : 0;
            REAL d = SQRT(wx * wx + wy * wy + wz * wz);
            r3[t] = t < m ? d : 1;
            mk[t] = in;
            cs[t] = (x[t] * xj + y[t] * yj + z[t] * zj) * (ir[t] * irj);
            REAL xx = d * irc;
            xx = xx < 1 ? xx : 1;
            REAL x2 = xx * xx;
            fc[t] = in * (1 + x2 * xx * (-10 + xx * (15 - 6 * xx)));
            dfc[t] = in * x2 * (-30 + xx * (60 - 30 * xx)) * irc;
        }
    }
    for (int g = 0; g < G; g++) {
        if (need && !need[g]) continue;
        const REAL aj = w->a[g * W + jj];
        const REAL *restrict ak = w->a + g * W + k0;
        REAL *restrict P = w->P + g * W, *restrict b = w->b + g * W;
        REAL *restrict db = w->db + g * W;
        if (p->is_g4[g]) {
            const REAL eta = (REAL)p->eta[g], rs = (REAL)p->rs[g];
            if (grad) {
#pragma omp simd
                for (int t = 0; t < mp; t++) {
                    REAL d = r3[t] - rs, e = SFX(vexp)(-eta * d * d);
                    b[t] = e * fc[t];
                    P[t] = aj * ak[t] * b[t];
                    db[t] = e * (dfc[t] - 2 * eta * d * fc[t]);
                }
            } else {
#pragma omp simd
                for (int t = 0; t < mp; t++) {
                    REAL d = r3[t] - rs;
                    P[t] = aj * ak[t] * SFX(vexp)(-eta * d * d) * fc[t];
                }
            }
        } else {
#pragma omp simd
            for (int t = 0; t < mp; t++) {
                b[t] = mk[t];
                P[t] = aj * ak[t] * mk[t];
                db[t] = 0;
            }
        }
    }
    for (int l = 0; l < L; l++) {
        if (need && !need[MAX_TABLE + l]) continue;
        const REAL lam = (REAL)p->lam[l], zeta = (REAL)p->zeta[l];
        const REAL pre = (REAL)p->pre[l], pzl = pre * zeta * lam;
        const int zi = p->zint[l];
        REAL *restrict A = w->A + l * W, *restrict dA = w->dA + l * W;
        if (zi >= 1 && zi <= 4) {  /* common cases without a loop over powers */
#pragma omp simd
            for (int t = 0; t < mp; t++) {
                REAL base = 1 + lam * cs[t];
                base = base > 0 ? base : 0;
                REAL pw = zi == 1 ? 1 : zi == 2 ? base : zi == 3 ? base * base
                          : base * base * base;
                A[t] = pre * pw * base;
                dA[t] = pzl * pw;
            }
        } else if (zi >= 1) {  /* dA holds base^(ζ-1) until the end */
#pragma omp simd
            for (int t = 0; t < mp; t++) {
                REAL base = 1 + lam * cs[t];
                base = base > 0 ? base : 0;
                A[t] = base;
                dA[t] = 1;
            }
            for (int q = 1; q < zi; q++) {
#pragma omp simd
                for (int t = 0; t < mp; t++) dA[t] *= A[t];
            }
#pragma omp simd
            for (int t = 0; t < mp; t++) {
                REAL pw = dA[t];
                A[t] = pre * pw * A[t];
                dA[t] = pzl * pw;
            }
        } else {
            for (int t = 0; t < mp; t++) {
                REAL base = 1 + lam * cs[t];
                base = base > 0 ? base : 0;
                A[t] = t < m ? pre * (REAL)pow((double)base, (double)zeta) : 0;
                dA[t] = t < m ? pzl * (REAL)pow((double)base, (double)(zeta - 1)) : 0;
            }
        }
    }
    return mp;
}

int SFX(trip_forward)(const int64_t *start, const int32_t *sj, const REAL *rij,
                      const int32_t *ip, const double *dp, REAL *out) {
    plan_t p;
    read_plan(&p, ip, dp);
    const int nbmax = max_neighbours(start, p.n);
    int failed = 0;
#pragma omp parallel num_threads(p.nthreads)
    {
        SFX(work_t) w;
        int bad = SFX(work_alloc)(&w, &p, nbmax);
        if (bad) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(dynamic, 8)
        for (int64_t c = 0; c < p.n; c++) {
            if (bad) continue;
            const int F = p.F, W = w.W;
            REAL *acc = w.acc;
            for (int q = 0; q < p.n_pair * F * VPAD; q++) acc[q] = 0;
            int nb = SFX(load_centre)(&w, &p, start, sj, rij, c, 0);
            for (int jj = 0; jj + 1 < nb; jj++) {
                int ej = w.spc[jj];
                for (int e = ej; e < p.n_el; e++) {
                    int k0 = jj + 1 > w.eb[e] ? jj + 1 : w.eb[e], m = w.eb[e + 1] - k0;
                    if (m <= 0) continue;
                    const int mp = SFX(block_terms)(&w, &p, jj, k0, m, 0, NULL);
                    REAL *row = acc + (int64_t)p.pair_id[ej * p.n_el + e] * F * VPAD;
                    for (int f = 0; f < F; f++) {
                        const REAL *restrict A = w.A + p.lz_of[f] * W;
                        const REAL *restrict P = w.P + p.g_of[f] * W;
                        REAL *restrict av = row + f * VPAD;
                        for (int t0 = 0; t0 < mp; t0 += VPAD) {
#pragma omp simd
                            for (int t = 0; t < VPAD; t++) av[t] += A[t0 + t] * P[t0 + t];
                        }
                    }
                }
            }
            REAL *o = out + c * p.n_pair * F;
            for (int q = 0; q < p.n_pair * F; q++) {
                double s = 0;
                for (int t = 0; t < VPAD; t++) s += acc[q * VPAD + t];
                o[q] = (REAL)s;
            }
        }
        SFX(work_free)(&w);
    }
    return failed;
}

/* Contract the block's triplet terms (block_terms with grad) with one cotangent row dv [F]
 * into the accumulators of cotangent kk: ga (∂/∂a_g per neighbour) and g{x,y,z} (direct). */
static void SFX(block_backward)(SFX(work_t) *w, const plan_t *p, const REAL *dv, int jj,
                                int k0, int mp, int kk) {
    const int F = p->F, W = w->W, G = p->G;
    REAL *ga = w->ga + (int64_t)kk * G * W;
    REAL *gx = w->gx + (int64_t)kk * W, *gy = w->gy + (int64_t)kk * W;
    REAL *gz = w->gz + (int64_t)kk * W;
    int used = 0;
    for (int f = 0; f < F; f++) used |= dv[f] != 0;
    if (!used) return;
    /* dP_g = Σ_{f in g} dv_f A_l(f),  dcos = Σ_f dv_f P_g(f) dA_l(f) */
    REAL *restrict dcos = w->dcos, *restrict dr3 = w->dr3;
    for (int t = 0; t < mp; t++) dcos[t] = dr3[t] = 0;
    unsigned char gused[MAX_TABLE] = {0};
    for (int f = 0; f < F; f++) {
        if (dv[f] == 0) continue;
        const REAL d = dv[f];
        const int g = p->g_of[f], l = p->lz_of[f];
        const REAL *restrict A = w->A + l * W, *restrict dA = w->dA + l * W;
        const REAL *restrict P = w->P + g * W;
        REAL *restrict dP = w->dP + g * W;
        if (!gused[g]) {
            gused[g] = 1;
#pragma omp simd
            for (int t = 0; t < mp; t++) dP[t] = d * A[t];
        } else {
#pragma omp simd
            for (int t = 0; t < mp; t++) dP[t] += d * A[t];
        }
#pragma omp simd
        for (int t = 0; t < mp; t++) dcos[t] += d * P[t] * dA[t];
    }
    /* ∂/∂a_g of both pairs, and ∂/∂r_jk through b_g */
    for (int g = 0; g < G; g++) {
        if (!gused[g]) continue;
        const REAL aj = w->a[g * W + jj];
        const REAL *restrict ak = w->a + g * W + k0;
        const REAL *restrict dP = w->dP + g * W, *restrict b = w->b + g * W;
        const REAL *restrict db = w->db + g * W;
        REAL *restrict gak = ga + g * W + k0;
        REAL gaj = 0;
        if (p->is_g4[g]) {
#pragma omp simd reduction(+ : gaj)
            for (int t = 0; t < mp; t++) {
                REAL q = dP[t] * b[t];
                gaj += q * ak[t];
                gak[t] += q * aj;
                dr3[t] += dP[t] * aj * ak[t] * db[t];
            }
        } else {
#pragma omp simd reduction(+ : gaj)
            for (int t = 0; t < mp; t++) {
                REAL q = dP[t] * b[t];
                gaj += q * ak[t];
                gak[t] += q * aj;
            }
        }
        ga[g * W + jj] += gaj;
    }
    /* direct terms: cos θ = r_j·r_k/(r_j r_k), r_jk = |r_k - r_j| */
    const REAL xj = w->x[jj], yj = w->y[jj], zj = w->z[jj], irj = w->ir[jj];
    const REAL irj2 = irj * irj;
    const REAL *restrict x = w->x + k0, *restrict y = w->y + k0;
    const REAL *restrict z = w->z + k0, *restrict ir = w->ir + k0;
    const REAL *restrict cs = w->cs, *restrict r3 = w->r3;
    REAL *restrict gxk = gx + k0, *restrict gyk = gy + k0, *restrict gzk = gz + k0;
    REAL sx = 0, sy = 0, sz = 0;
#pragma omp simd reduction(+ : sx, sy, sz)
    for (int t = 0; t < mp; t++) {
        REAL i12 = ir[t] * irj, dc = dcos[t], c = cs[t];
        REAL s = dr3[t] / r3[t];
        REAL cj = dc * c * irj2, ck = dc * c * ir[t] * ir[t];
        REAL wx = x[t] - xj, wy = y[t] - yj, wz = z[t] - zj;
        sx += dc * x[t] * i12 - cj * xj - s * wx;
        sy += dc * y[t] * i12 - cj * yj - s * wy;
        sz += dc * z[t] * i12 - cj * zj - s * wz;
        gxk[t] += dc * xj * i12 - ck * x[t] + s * wx;
        gyk[t] += dc * yj * i12 - ck * y[t] + s * wy;
        gzk[t] += dc * zj * i12 - ck * z[t] + s * wz;
    }
    gx[jj] += sx;
    gy[jj] += sy;
    gz[jj] += sz;
}

/* K cotangents at once: dout [K, n·n_pair, F] -> grad [K, P, 3] (the triplet terms are
 * computed once per block and contracted with every cotangent). */
int SFX(trip_backward)(const int64_t *start, const int32_t *sj, const REAL *rij,
                       const int32_t *ip, const double *dp, const REAL *dout, REAL *grad) {
    plan_t p;
    read_plan(&p, ip, dp);
    const int nbmax = max_neighbours(start, p.n), K = p.K;
    const int64_t P3 = 3 * start[p.n], rows = (int64_t)p.n * p.n_pair * p.F;
    int failed = 0;
#pragma omp parallel num_threads(p.nthreads)
    {
        SFX(work_t) w;
        int bad = SFX(work_alloc)(&w, &p, nbmax);
        if (bad) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(dynamic, 8)
        for (int64_t c = 0; c < p.n; c++) {
            if (bad) continue;
            const int F = p.F, W = w.W, G = p.G;
            const int64_t p0 = start[c], nb0 = start[c + 1] - p0;
            const REAL *drow = dout + c * p.n_pair * F;
            int any = 0;
            for (int kk = 0; kk < K; kk++)
                for (int q = 0; q < p.n_pair * F; q++) any |= drow[kk * rows + q] != 0;
            if (!any || nb0 < 2) {
                for (int kk = 0; kk < K; kk++)
                    for (int64_t q = 0; q < 3 * nb0; q++) grad[kk * P3 + 3 * p0 + q] = 0;
                continue;
            }
            int nb = SFX(load_centre)(&w, &p, start, sj, rij, c, 1);
            for (int64_t q = 0; q < (int64_t)K * G * W; q++) w.ga[q] = 0;
            for (int64_t q = 0; q < (int64_t)K * W; q++) w.gx[q] = w.gy[q] = w.gz[q] = 0;
            for (int jj = 0; jj + 1 < nb; jj++) {
                int ej = w.spc[jj];
                for (int e = ej; e < p.n_el; e++) {
                    int k0 = jj + 1 > w.eb[e] ? jj + 1 : w.eb[e], m = w.eb[e + 1] - k0;
                    if (m <= 0) continue;
                    const REAL *dv0 = drow + (int64_t)p.pair_id[ej * p.n_el + e] * F;
                    unsigned char need[2 * MAX_TABLE] = {0}; /* groups, then (λ, ζ) */
                    int used = 0;
                    for (int kk = 0; kk < K; kk++)
                        for (int f = 0; f < F; f++) {
                            if (dv0[kk * rows + f] == 0) continue;
                            used = 1;
                            need[p.g_of[f]] = need[MAX_TABLE + p.lz_of[f]] = 1;
                        }
                    if (!used) continue;
                    const int mp = SFX(block_terms)(&w, &p, jj, k0, m, 1, need);
                    for (int kk = 0; kk < K; kk++)
                        SFX(block_backward)(&w, &p, dv0 + kk * rows, jj, k0, mp, kk);
                }
            }
            for (int kk = 0; kk < K; kk++) {
                const REAL *ga = w.ga + (int64_t)kk * G * W;
                const REAL *gx = w.gx + (int64_t)kk * W, *gy = w.gy + (int64_t)kk * W;
                const REAL *gz = w.gz + (int64_t)kk * W;
                for (int s = 0; s < nb; s++) {
                    REAL gr = 0;
                    for (int g = 0; g < G; g++) gr += ga[g * W + s] * w.da[g * W + s];
                    gr *= w.ir[s];
                    REAL *o = grad + kk * P3 + 3 * w.idx[s];
                    o[0] = gx[s] + gr * w.x[s];
                    o[1] = gy[s] + gr * w.y[s];
                    o[2] = gz[s] + gr * w.z[s];
                }
            }
        }
        SFX(work_free)(&w);
    }
    return failed;
}

#endif
