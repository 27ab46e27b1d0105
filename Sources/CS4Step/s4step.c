#include "s4step.h"

#if defined(__x86_64__)
#include <immintrin.h>

bool s4_step_wide_available(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f");
}

#define WIDE __attribute__((target("avx512f"), always_inline)) static inline

/// Sixteen lanes: eight at `low` (the first block's), eight at `high` (the second's).
WIDE __m512 join(const float *low, const float *high) {
    __m512d wide = _mm512_castps_pd(_mm512_castps256_ps512(_mm256_loadu_ps(low)));
    return _mm512_castpd_ps(_mm512_insertf64x4(wide, _mm256_castps_pd(_mm256_loadu_ps(high)), 1));
}

WIDE void split(__m512 value, float *low, float *high) {
    _mm256_storeu_ps(low, _mm512_castps512_ps256(value));
    _mm256_storeu_ps(high, _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(value), 1)));
}

/// One mode of both blocks, as `DiagonalMode`: Ā = a + i·b, C̃ = c − i·d, x̃ = r + i·i.
typedef struct {
    __m512 a, b, c, d, r, i;
} Mode;

WIDE Mode load_mode(const float *k0, const float *k1, const float *s0, const float *s1, ptrdiff_t m, ptrdiff_t j) {
    Mode mode;
    mode.a = join(k0 + 8 * j, k1 + 8 * j);
    mode.b = join(k0 + 8 * (m + j), k1 + 8 * (m + j));
    mode.c = join(k0 + 8 * (2 * m + j), k1 + 8 * (2 * m + j));
    mode.d = join(k0 + 8 * (3 * m + j), k1 + 8 * (3 * m + j));
    mode.r = join(s0 + 8 * j, s1 + 8 * j);
    mode.i = join(s0 + 8 * (m + j), s1 + 8 * (m + j));
    return mode;
}

WIDE void save_mode(const Mode *mode, float *s0, float *s1, ptrdiff_t m, ptrdiff_t j) {
    split(mode->r, s0 + 8 * j, s1 + 8 * j);
    split(mode->i, s0 + 8 * (m + j), s1 + 8 * (m + j));
}

/// x̃ ← Ā x̃ + u; y plus the mode's term 2Re(C̃ x̃) (`DiagonalMode.step`).
WIDE __m512 step(Mode *mode, __m512 u, __m512 y) {
    __m512 next = _mm512_fmadd_ps(mode->a, mode->r, _mm512_fnmadd_ps(mode->b, mode->i, u));
    mode->i = _mm512_fmadd_ps(mode->a, mode->i, _mm512_mul_ps(mode->b, mode->r));
    mode->r = next;
    return _mm512_fmadd_ps(mode->c, mode->r, _mm512_fmadd_ps(mode->d, mode->i, y));
}

__attribute__((target("avx512f"))) void s4_step_diagonal_pair(
    const float *k0, const float *k1, ptrdiff_t m, const float *skip0, const float *skip1, float *s0, float *s1,
    const float *input, float *output, ptrdiff_t stride, ptrdiff_t count) {
    __m512 skip = join(skip0, skip1);
    if (count == 1) {
        __m512 u = _mm512_loadu_ps(input);
        __m512 y = _mm512_mul_ps(skip, u);
        for (ptrdiff_t j = 0; j < m; j++) {
            Mode mode = load_mode(k0, k1, s0, s1, m, j);
            y = step(&mode, u, y);
            save_mode(&mode, s0, s1, m, j);
        }
        _mm512_storeu_ps(output, y);
        return;
    }
    for (ptrdiff_t t = 0; t < count; t++) {
        _mm512_storeu_ps(output + t * stride, _mm512_mul_ps(skip, _mm512_loadu_ps(input + t * stride)));
    }
    ptrdiff_t j = 0;
    for (; j + 4 <= m; j += 4) {
        Mode m0 = load_mode(k0, k1, s0, s1, m, j), m1 = load_mode(k0, k1, s0, s1, m, j + 1);
        Mode m2 = load_mode(k0, k1, s0, s1, m, j + 2), m3 = load_mode(k0, k1, s0, s1, m, j + 3);
        for (ptrdiff_t t = 0; t < count; t++) {
            __m512 u = _mm512_loadu_ps(input + t * stride);
            float *row = output + t * stride;
            __m512 y = step(&m0, u, _mm512_loadu_ps(row));
            _mm512_storeu_ps(row, step(&m3, u, step(&m2, u, step(&m1, u, y))));
        }
        save_mode(&m0, s0, s1, m, j);
        save_mode(&m1, s0, s1, m, j + 1);
        save_mode(&m2, s0, s1, m, j + 2);
        save_mode(&m3, s0, s1, m, j + 3);
    }
    for (; j < m; j++) {
        Mode mode = load_mode(k0, k1, s0, s1, m, j);
        for (ptrdiff_t t = 0; t < count; t++) {
            float *row = output + t * stride;
            _mm512_storeu_ps(row, step(&mode, _mm512_loadu_ps(input + t * stride), _mm512_loadu_ps(row)));
        }
        save_mode(&mode, s0, s1, m, j);
    }
}

#else

bool s4_step_wide_available(void) { return false; }

void s4_step_diagonal_pair(
    const float *k0, const float *k1, ptrdiff_t m, const float *skip0, const float *skip1, float *s0, float *s1,
    const float *input, float *output, ptrdiff_t stride, ptrdiff_t count) {
    __builtin_trap();
}

#endif
