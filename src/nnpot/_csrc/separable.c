/* Closed-form on-shell K of a rank-R separable potential, all energies in one call.
 *
 * For each energy b (on-shell momentum p0_b, fm^-1), with the principal-value propagator
 * on the mesh (k_j, w_j) (nnpot.nuclear.lowrank._common._propagator):
 *   d_j = 2mu w_j k_j^2 / (p0^2 - k_j^2),  d_0 = -2mu p0^2 sum_j w_j / (p0^2 - k_j^2),
 *   Gs  = sum_j d_j O_j + d_0 g_on g_on^T,   O_j[r,s] = sum_L g_r^L(k_j) g_s^L(k_j)
 *         (symmetric: the R(R+1)/2 entries r <= s, each one dot product over the mesh),
 *   (1 - Lambda Gs) x = Lambda g_on   (R x nL, Gaussian elimination, partial pivoting),
 *   or, given laminv = Lambda^-1 (well conditioned; else NULL), the symmetric
 *   (Lambda^-1 - Gs) x = g_on, which saves the R^3 product Lambda Gs,
 *   K   = g_on^T x                     (nL x nL, MeV fm^3).
 * Inputs (float64, contiguous): k, w [N]; p0 [B]; outer [R(R+1)/2, N] (O_j packed by
 * rows of its upper triangle: (0,0), (0,1), .., (0,R-1), (1,1), ..); g_on [nL, B, R];
 * lam [R, R]; laminv [R, R] or NULL. Output K [B, nL, nL]. Returns 0, or 1 if an on-shell momentum equals a mesh
 * point (the caller raises), 2 if R > 64, nL > 2 or N > 4096 (the caller uses torch), 3 if a pivot
 * vanishes (singular system). Parallel over energies (OpenMP).
 */
#include <math.h>
#include <stdint.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define RMAX 64
#define NMAX 4096

int separable_onshell(const double *k, const double *w, int64_t n, const double *p0,
                      int64_t nb, const double *outer, const double *g_on, const double *lam,
                      const double *laminv, int64_t r, int64_t nl, double two_mu, double *kout,
                      int nthreads) {
    if (r > RMAX || nl > 2 || n > NMAX) return 2;
    int status = 0;
    double k2[NMAX], c2[NMAX]; /* k_j^2 and 2mu w_j k_j^2, shared by all energies */
    for (int64_t j = 0; j < n; j++) {
        k2[j] = k[j] * k[j];
        c2[j] = two_mu * w[j] * k2[j];
    }
#pragma omp parallel for schedule(static) num_threads(nthreads) if (nb > 32)
    for (int64_t b = 0; b < nb; b++) {
        double gs[RMAX * RMAX], a[RMAX * RMAX], x[RMAX * 2];
        const double q2 = p0[b] * p0[b];
        double s0 = 0.0, dj[NMAX];
        int bad = 0;
        for (int64_t j = 0; j < n; j++) bad |= (q2 == k2[j]);
        if (bad) {
#pragma omp atomic write
            status = 1;
            continue;
        }
        /* propagator: one vectorisable pass (one division per mesh point) */
#pragma omp simd reduction(+ : s0)
        for (int64_t j = 0; j < n; j++) {
            const double inv = 1.0 / (q2 - k2[j]);
            s0 += w[j] * inv;
            dj[j] = c2[j] * inv;
        }
        /* Gs = sum_j d_j O_j: one SIMD dot product over the mesh per packed (u <= v) */
        for (int64_t u = 0, t = 0; u < r; u++)
            for (int64_t v = u; v < r; v++, t++) {
                const double *ot = outer + t * n;
                double acc = 0.0;
#pragma omp simd reduction(+ : acc)
                for (int64_t j = 0; j < n; j++) acc += dj[j] * ot[j];
                gs[u * r + v] = acc;
                gs[v * r + u] = acc;
            }
        const double d0 = -two_mu * q2 * s0;
        double gb[2][RMAX];
        for (int64_t L = 0; L < nl; L++)
            for (int64_t t = 0; t < r; t++) gb[L][t] = g_on[(L * nb + b) * r + t];
        for (int64_t u = 0; u < r; u++)
            for (int64_t v = 0; v < r; v++) {
                double acc = 0.0;
                for (int64_t L = 0; L < nl; L++) acc += gb[L][u] * gb[L][v];
                gs[u * r + v] += d0 * acc;
            }
        if (laminv) {
            /* a = lam^-1 - gs (symmetric), x = g_on: K = g_on^T (lam^-1 - Gs)^-1 g_on */
            for (int64_t t = 0; t < r * r; t++) a[t] = laminv[t] - gs[t];
            for (int64_t u = 0; u < r; u++)
                for (int64_t L = 0; L < nl; L++) x[u * nl + L] = gb[L][u];
        } else {
            /* a = 1 - lam gs; x = lam g_on */
            for (int64_t u = 0; u < r; u++) {
                for (int64_t v = 0; v < r; v++) {
                    double acc = 0.0;
                    for (int64_t t = 0; t < r; t++) acc += lam[u * r + t] * gs[t * r + v];
                    a[u * r + v] = (u == v) - acc;
                }
                for (int64_t L = 0; L < nl; L++) {
                    double acc = 0.0;
                    for (int64_t t = 0; t < r; t++) acc += lam[u * r + t] * gb[L][t];
                    x[u * nl + L] = acc;
                }
            }
        }
        /* Gaussian elimination with partial pivoting */
        for (int64_t c = 0; c < r; c++) {
            int64_t piv = c;
            double best = fabs(a[c * r + c]);
            for (int64_t u = c + 1; u < r; u++)
                if (fabs(a[u * r + c]) > best) { best = fabs(a[u * r + c]); piv = u; }
            if (best == 0.0) { bad = 1; break; }
            if (piv != c) {
                for (int64_t v = 0; v < r; v++) {
                    double t = a[c * r + v]; a[c * r + v] = a[piv * r + v]; a[piv * r + v] = t;
                }
                for (int64_t L = 0; L < nl; L++) {
                    double t = x[c * nl + L]; x[c * nl + L] = x[piv * nl + L]; x[piv * nl + L] = t;
                }
            }
            const double inv = 1.0 / a[c * r + c];
            for (int64_t u = c + 1; u < r; u++) {
                const double f = a[u * r + c] * inv;
                if (f == 0.0) continue;
                for (int64_t v = c; v < r; v++) a[u * r + v] -= f * a[c * r + v];
                for (int64_t L = 0; L < nl; L++) x[u * nl + L] -= f * x[c * nl + L];
            }
        }
        if (bad) {
#pragma omp atomic write
            status = 3;
            continue;
        }
        for (int64_t c = r - 1; c >= 0; c--)
            for (int64_t L = 0; L < nl; L++) {
                double acc = x[c * nl + L];
                for (int64_t v = c + 1; v < r; v++) acc -= a[c * r + v] * x[v * nl + L];
                x[c * nl + L] = acc / a[c * r + c];
            }
        for (int64_t X = 0; X < nl; X++)
            for (int64_t Y = 0; Y < nl; Y++) {
                double acc = 0.0;
                for (int64_t t = 0; t < r; t++) acc += gb[X][t] * x[t * nl + Y];
                kout[(b * nl + X) * nl + Y] = acc;
            }
    }
    return status;
}
