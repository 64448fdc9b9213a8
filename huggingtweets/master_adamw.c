/* MasterAdamW's update of bf16 weights in one pass (huggingtweets/master.py).

   Each weight is stored as its bf16 rounding (`high`) and the 16 bits the rounding dropped (`low`, an int16):
   together they are the exact fp32 weight. Torch's eager ops need a dozen passes over each slice to join the two,
   run its fused AdamW in fp32 and split them again (134-220 ms a step for 124-135M weights on a 2-core Zen 4);
   this loop reads each weight's 12 bytes (high, low, gradient, first and second moment) once and writes 10, and
   the compiler vectorises it (47-52 ms). master.py builds it with the system's C compiler, once per host, and
   falls back to the eager slices where there is none.

   The arithmetic is torch's fused AdamW (decoupled weight decay) in fp32, as in
   aten/src/ATen/native/cpu/FusedAdamKernel.cpp: the factors come in worked out in double, as torch works them out. */

#include <math.h>
#include <stdint.h>
#include <string.h>

static inline float as_float(uint32_t bits) { float f; memcpy(&f, &bits, 4); return f; }
static inline uint32_t as_bits(float f) { uint32_t bits; memcpy(&bits, &f, 4); return bits; }

void master_adamw(uint16_t *restrict high, int16_t *restrict low, const uint16_t *restrict grad,
                  uint16_t *restrict exp_avg, float *restrict exp_avg_sq, int64_t n,
                  float decay,                  /* 1 - lr * weight_decay */
                  float one_minus_beta1, float beta2, float one_minus_beta2,
                  float step_size,              /* lr / (1 - beta1^step) */
                  float bias_correction2_sqrt,  /* sqrt(1 - beta2^step) */
                  float eps)
{
    for (int64_t i = 0; i < n; i++) {
        /* A bf16 number is the top half of an fp32 one; the lower bits are signed (split rounds to nearest) */
        float w = as_float(((uint32_t)high[i] << 16) + (uint32_t)(int32_t)low[i]);
        float g = as_float((uint32_t)grad[i] << 16);
        float m = as_float((uint32_t)exp_avg[i] << 16);
        float v = exp_avg_sq[i];
        w = w * decay;
        m = m + one_minus_beta1 * (g - m);
        v = v * beta2 + one_minus_beta2 * g * g;
        w = w - step_size * m / (sqrtf(v) / bias_correction2_sqrt + eps);
        exp_avg_sq[i] = v;
        /* the first moment back to bf16, rounded to nearest even as torch rounds */
        uint32_t mb = as_bits(m);
        exp_avg[i] = m != m ? 0x7fc0 : (uint16_t)((mb + 0x7fffu + ((mb >> 16) & 1u)) >> 16);
        /* split, as master.split: the magnitude rounded at bit 16 (ties away from zero), and what is left */
        uint32_t wb = as_bits(w), rounded = (wb + 0x8000u) & 0xffff0000u;
        high[i] = (uint16_t)(rounded >> 16);
        low[i] = (int16_t)(uint16_t)(wb - rounded);
    }
}
