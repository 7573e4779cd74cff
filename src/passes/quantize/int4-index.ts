/** int4 weight-only quantization: the pass and the block-wise arithmetic it uses. */
export { int4WeightOnlyPass, type Int4Options, type Int4Stats, type SkippedNode } from './int4.js';
export { quantizeBlockwise, packMatMulNBitsZeroPoints, type BlockQuantized } from './int4-blockwise.js';
