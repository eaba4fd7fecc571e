/* Shared inline math of the nnpot C kernels (included by pullback.c, forward.c and mlp.c, with
 * the FMA-contraction pragma and the standard headers they share; the
 * kernel cache key in nnpot.ckernels hashes this header with each source).
 *
 * km_exp_f64 / km_exp_f32: exp for x in [-60, 0] (callers clamp) as 2^k e^f, |f| <= ln2/2,
 * Taylor to x^13 (double, error below 1e-16 relative) or x^7 (float, below 1e-8); no libm
 * call, so loops over channels vectorise. km_threads: OpenMP threads for a call (want > 0:
 * that many; else the runtime's default); km_thread_id: the calling thread's number.
 */
#ifndef NNPOT_KMATH_H
#define NNPOT_KMATH_H

/* FMA contraction in every kernel that includes this header (-std=c11 turns it off) */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("fp-contract=fast")
#elif defined(__clang__)
#pragma clang fp contract(fast)
#endif

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define KM_PI 3.14159265358979323846

static inline double km_exp_f64(double x) {
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

static inline float km_exp_f32(float x) {
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

/* this thread's number inside an OpenMP parallel region (0 without OpenMP) */
static inline int km_thread_id(void) {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

static inline int km_threads(long want) {
#ifdef _OPENMP
    return want > 0 ? (int)want : omp_get_max_threads();
#else
    (void)want;
    return 1;
#endif
}

#endif /* NNPOT_KMATH_H */
