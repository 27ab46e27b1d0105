#ifndef S4STEP_H
#define S4STEP_H

#include <stdbool.h>
#include <stddef.h>

/// Whether this processor has AVX-512F, which `s4_step_diagonal_pair` needs.
bool s4_step_wide_available(void);

/// The diagonal S4 step of `DiscreteLayer` (Sources/S4Core/Recurrence/RecurrentStep.swift) for two
/// adjacent full blocks of eight channels at once, in 512-bit vectors: the same operations in the
/// same order, lane for lane, so the same bits. Each block's constants, D and state are laid out
/// as there (`constants1` is the second block's); `input` and `output` are the first block's
/// channels in [T × H] rows `stride` floats apart.
void s4_step_diagonal_pair(
    const float *constants0, const float *constants1, ptrdiff_t modes, const float *skip0, const float *skip1,
    float *state0, float *state1, const float *input, float *output, ptrdiff_t stride, ptrdiff_t count);

#endif
