/* Closed-form on-shell K of a rank-R separable potential, all energies in one call.
 *
 * For each energy b (on-shell momentum p0_b, fm^-1), with the principal-value propagator
 * on the mesh (k_j, w_j) (nnpot.nuclear.lowrank._common._propagator):
 *   d_j = 2mu w_j k_j^2 / (p0^2 - k_j^2),  d_0 = -2mu p0^2 sum_j w_j / (p0^2 - k_j^2),
 *   Gs  = sum_j d_j O_j + d_0 g_on g_on^T,   O_j[r,s] = sum_L g_r^L(k_j) g_s^L(k_j),
 *   (1 - Lambda Gs) x = Lambda g_on   (R x nL, Gaussian elimination, partial pivoting),
 *   K   = g_on^T x                     (nL x nL, MeV fm^3).
 * Inputs (float64, contiguous): k, w [N]; p0 [B]; outer [N, R*R]; g_on [nL, B, R];
 * lam [R, R]. Output K [B, nL, nL]. Returns 0, or 1 if an on-shell momentum equals a mesh
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
                      int64_t r, int64_t nl, double two_mu, double *kout, int nthreads) {
    if (r > RMAX || nl > 2 || n > NMAX) return 2;
    int status = 0;
#pragma omp parallel for schedule(static) num_threads(nthreads) if (nb > 32)
    for (int64_t b = 0; b < nb; b++) {
        double gs[RMAX * RMAX], a[RMAX * RMAX], x[RMAX * 2];
        const double q2 = p0[b] * p0[b];
        double s0 = 0.0, dj[NMAX];
        memset(gs, 0, sizeof(double) * r * r);
        int bad = 0;
        for (int64_t j = 0; j < n; j++) bad |= (q2 == k[j] * k[j]);
        /* propagator: one vectorisable pass of divisions, then the Gs accumulation */
        for (int64_t j = 0; j < n; j++) dj[j] = w[j] / (q2 - k[j] * k[j]);
        for (int64_t j = 0; j < n; j++) {
            s0 += dj[j];
            dj[j] *= two_mu * k[j] * k[j];
        }
        for (int64_t j = 0; j < n && !bad; j++) {
            const double *oj = outer + j * r * r;
            for (int64_t t = 0; t < r * r; t++) gs[t] += dj[j] * oj[t];
        }
        if (bad) {
#pragma omp atomic write
            status = 1;
            continue;
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
