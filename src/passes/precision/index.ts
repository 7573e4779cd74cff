/** Mixed precision: float32 → float16 / bfloat16 conversion and its op tables. */
export { fp16Pass, type Fp16Options, type Fp16Stats } from './fp16.js';
export { blockedOps, CPU_FP16_UNSUPPORTED, FP16_OVERFLOW_PRONE, FP16_DTYPE_OPS, FLOAT32_ONLY_INPUTS } from './fp16-ops.js';
