/* Committee MLPs of one element: outputs and input gradients, forward and backward fused.
 *
 * The C side of nnpot.atomistic.mlp_c. M member networks of one shape (ElementMLP: weights
 * W_l [M, s_l, s_{l+1}], biases b_l [M, 1, s_{l+1}], activation act on every hidden layer,
 * a linear output layer of n_out) see the same scaled inputs of the element's atoms
 *     x[a, f] = (G[idx[a], cols[f]] - mu[f]) * inv_std[f]
 * and for every member m the kernel returns the raw outputs y[m, a, :] and writes
 *     dedg[m, idx[a], cols[f]] = colscale[f] * d y[m, a, 0] / d x[a, f]
 * (backward from the first output only). Atoms go BW at a time (one SIMD vector of lanes);
 * per block the activations a_l, act(a_l), act'(a_l) of all layers stay in a small scratch
 * (cache resident) and are reused by the backward pass:
 *     h_{l+1} = act(h_l W_l + b_l),  y = h_L W_L + b_L,
 *     g_L = W_L[:, 0] * act'(a_L),   g_l = (W_l g_{l+1}) * act'(a_l),   dy/dx = W_0 g_1.
 * Activations: 0 = silu (a sigma(a)), 1 = tanh, with exp from kmath.h (|a| < 60; beyond,
 * exp(-|a|) is taken as 0, below the precision of either type). OpenMP over blocks.
 *
 * The file includes itself twice: once for double (suffix _f64), once for float (_f32).
 */
#ifndef MLP_BODY
#define MLP_BODY

#include "kmath.h" /* FMA-contraction pragma, standard headers, shared math */

#define REAL double
#define FN(name) name##_f64
#define EXPR km_exp_f64
#define BW 8
#include "mlp.c" /* this file, second pass */
#undef REAL
#undef FN
#undef EXPR
#undef BW

#define REAL float
#define FN(name) name##_f32
#define EXPR km_exp_f32
#define BW 16
#include "mlp.c" /* this file, second pass */

#else /* MLP_BODY: the kernel for one REAL type */

#define TILE 8 /* outputs per register tile */

/* out[o][q] = bias[o] + sum_i A[o * so + i * si] in[i][q] for o < nout, i < nin (bias may
 * be NULL: 0); in [nin][BW], out [nout][BW]. Tiles of TILE outputs keep their sums in
 * registers. */
static inline __attribute__((always_inline)) void FN(dense)(
    const REAL *restrict A, long so, long si, const REAL *restrict bias,
    const REAL *restrict in, long nin, long nout, REAL *restrict out) {
    long o = 0;
    for (; o + TILE <= nout; o += TILE) {
        REAL acc[TILE][BW];
        for (long t = 0; t < TILE; ++t) {
            const REAL b0 = bias ? bias[o + t] : (REAL)0;
#pragma omp simd
            for (long q = 0; q < BW; ++q) acc[t][q] = b0;
        }
        for (long i = 0; i < nin; ++i) {
            const REAL *x = in + i * BW;
            const REAL *w = A + o * so + i * si;
            for (long t = 0; t < TILE; ++t) {
                const REAL c = w[t * so];
#pragma omp simd
                for (long q = 0; q < BW; ++q) acc[t][q] += c * x[q];
            }
        }
        for (long t = 0; t < TILE; ++t)
#pragma omp simd
            for (long q = 0; q < BW; ++q) out[(o + t) * BW + q] = acc[t][q];
    }
    for (; o < nout; ++o) {
        REAL acc[BW];
        const REAL b0 = bias ? bias[o] : (REAL)0;
        for (long q = 0; q < BW; ++q) acc[q] = b0;
        for (long i = 0; i < nin; ++i) {
            const REAL c = A[o * so + i * si];
            const REAL *x = in + i * BW;
#pragma omp simd
            for (long q = 0; q < BW; ++q) acc[q] += c * x[q];
        }
        for (long q = 0; q < BW; ++q) out[o * BW + q] = acc[q];
    }
}

/* h = act(a), d = act'(a) in place of a (a -> h), for cnt values. */
static inline __attribute__((always_inline)) void FN(activate)(
    REAL *restrict h, REAL *restrict d, long cnt, int kind) {
    if (kind == 0) {  /* silu: s = sigma(a), h = a s, h' = s (1 + a (1 - s)) */
#pragma omp simd
        for (long q = 0; q < cnt; ++q) {
            const REAL a = h[q], m = a < 0 ? a : -a;  /* -|a| */
            const REAL e = EXPR(m < (REAL)-60 ? (REAL)-60 : m) * (m < (REAL)-60 ? 0 : 1);
            const REAL r = (REAL)1 / (1 + e);
            const REAL s = a < 0 ? e * r : r;
            h[q] = a * s;
            d[q] = s * (1 + a * (1 - s));
        }
    } else {  /* tanh: t = sign(a) (1 - e) / (1 + e), e = exp(-2|a|); h' = 1 - t^2 */
#pragma omp simd
        for (long q = 0; q < cnt; ++q) {
            const REAL a = h[q], m = a < 0 ? 2 * a : -2 * a;
            const REAL e = EXPR(m < (REAL)-60 ? (REAL)-60 : m) * (m < (REAL)-60 ? 0 : 1);
            const REAL u = (1 - e) / (1 + e), t = a < 0 ? -u : u;
            h[q] = t;
            d[q] = 1 - t * t;
        }
    }
}

/* dims: n_e (atoms of the element), F (columns of G), nf (input features), M, nl (layers,
 * hidden + output), n_out, act, threads, n_total (rows of dedg); sizes [nl + 1] (s_0 = nf
 * ... s_nl = n_out); wptr [2 nl]: addresses of W_l [M, s_l, s_{l+1}] and b_l [M, s_{l+1}].
 * g [n_total, F], idx [n_e], cols [nf], mu, inv_std, colscale [nf]; y [M, n_e, n_out];
 * dedg [M, n_total, F] (rows idx, columns cols written). Returns 0, or -1 when memory ran
 * out (outputs undefined). */
int FN(mlp_committee)(const int64_t *dims, const int64_t *sizes, const int64_t *wptr,
                      const REAL *g, const int64_t *idx, const int64_t *cols, const REAL *mu,
                      const REAL *inv_std, const REAL *colscale, REAL *y, REAL *dedg) {
    const long ne = dims[0], F = dims[1], nf = dims[2], M = dims[3], nl = dims[4];
    const long nout = dims[5], nt_all = dims[8];
    const int kind = (int)dims[6];
    const int nt = km_threads(dims[7]);
    long hsum = 0, smax = nf;
    for (long l = 1; l < nl; ++l) hsum += sizes[l];
    for (long l = 0; l <= nl; ++l) smax = sizes[l] > smax ? sizes[l] : smax;
    /* per thread: x [nf][BW], h and d of every hidden layer [hsum][BW] each, out [n_out],
     * two gradient buffers [smax][BW] */
    const long scratch = (nf + 2 * hsum + nout + 2 * smax) * BW;
    REAL **scr = calloc((size_t)nt, sizeof(REAL *));
    int fail = !scr;
    for (int t = 0; t < nt && !fail; ++t) {
        scr[t] = malloc((size_t)scratch * sizeof(REAL));
        fail = !scr[t];
    }
    const long nblk = (ne + BW - 1) / BW;
    if (!fail) {
#pragma omp parallel num_threads(nt)
        {
            const int tid = km_thread_id();
            REAL *xb = scr[tid], *hb = xb + nf * BW, *db = hb + hsum * BW;
            REAL *ob = db + hsum * BW, *ga = ob + nout * BW, *gb = ga + smax * BW;
#pragma omp for schedule(static)
            for (long blk = 0; blk < nblk; ++blk) {
                const long a0 = blk * BW, nb = ne - a0 < BW ? ne - a0 : BW;
                for (long f = 0; f < nf; ++f) {  /* scaled inputs, pads repeat atom a0 */
                    const REAL m0 = mu[f], is = inv_std[f];
                    for (long q = 0; q < BW; ++q) {
                        const long a = idx[a0 + (q < nb ? q : 0)];
                        xb[f * BW + q] = (g[a * F + cols[f]] - m0) * is;
                    }
                }
                for (long m = 0; m < M; ++m) {
                    const REAL *in = xb;
                    REAL *h = hb, *d = db;
                    for (long l = 0; l < nl; ++l) {  /* forward */
                        const long si = sizes[l], so = sizes[l + 1];
                        const REAL *W = (const REAL *)(intptr_t)wptr[2 * l] + m * si * so;
                        const REAL *b = (const REAL *)(intptr_t)wptr[2 * l + 1] + m * so;
                        REAL *dst = l + 1 < nl ? h : ob;
                        FN(dense)(W, 1, so, b, in, si, so, dst);
                        if (l + 1 < nl) {
                            FN(activate)(h, d, so * BW, kind);
                            in = h;
                            h += so * BW;
                            d += so * BW;
                        }
                    }
                    for (long q = 0; q < nb; ++q)
                        for (long o = 0; o < nout; ++o)
                            y[(m * ne + a0 + q) * nout + o] = ob[o * BW + q];
                    /* backward from output 0: g_L[j] = W_L[j, 0] act'(a_L[j]) */
                    long l = nl - 1, s = sizes[l];
                    d -= s * BW;
                    const REAL *WL = (const REAL *)(intptr_t)wptr[2 * l] + m * s * nout;
                    REAL *gc = ga, *gn = gb;
                    for (long j = 0; j < s; ++j) {
                        const REAL c = WL[j * nout];
#pragma omp simd
                        for (long q = 0; q < BW; ++q) gc[j * BW + q] = c * d[j * BW + q];
                    }
                    for (l = nl - 2; l >= 0; --l) {  /* gn[i] = sum_o W_l[i, o] gc[o] */
                        const long si = sizes[l], so = sizes[l + 1];
                        const REAL *W = (const REAL *)(intptr_t)wptr[2 * l] + m * si * so;
                        FN(dense)(W, so, 1, NULL, gc, so, si, gn);
                        if (l > 0) {
                            d -= si * BW;
#pragma omp simd
                            for (long q = 0; q < si * BW; ++q) gn[q] *= d[q];
                        }
                        REAL *tmp = gc;
                        gc = gn;
                        gn = tmp;
                    }
                    /* gc = dy/dx [nf][BW] */
                    for (long q = 0; q < nb; ++q) {
                        REAL *row = dedg + (m * nt_all + idx[a0 + q]) * F;
                        for (long f = 0; f < nf; ++f) row[cols[f]] = colscale[f] * gc[f * BW + q];
                    }
                }
            }
        }
    }
    for (int t = 0; scr && t < nt; ++t) free(scr[t]);
    free(scr);
    return fail ? -1 : 0;
}

#undef TILE

#endif /* MLP_BODY */
