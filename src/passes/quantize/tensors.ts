/**
 * Tensor and model helpers the quantization passes share: transposing a weight matrix, reading a float32
 * constant, and importing the opset a rewritten op needs.
 */
import { FrugalError } from '../../errors.js';
import { DataType } from '../../ir/dtype.js';
import type { Model } from '../../ir/model.js';
import type { Value } from '../../ir/node.js';

/** Transposes a row-major [rows, cols] float matrix (Gemm's transB weights become [K, N]). */
export function transpose2d(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(data.length);
  // In square tiles, so that both the reads and the strided writes stay in cache.
  const T = 64;
  for (let r0 = 0; r0 < rows; r0 += T) {
    const r1 = Math.min(rows, r0 + T);
    for (let c0 = 0; c0 < cols; c0 += T) {
      const c1 = Math.min(cols, c0 + T);
      for (let r = r0; r < r1; r++) for (let c = c0; c < c1; c++) out[c * rows + r] = data[r * cols + c]!;
    }
  }
  return out;
}

/** The float32 data of a constant value, or undefined when it is not a float32 initializer. */
export function floatConstant(v: Value | null | undefined): Float32Array | undefined {
  const t = v?.initializer;
  if (!t || t.dtype !== DataType.FLOAT) return undefined;
  return t.toArray() as Float32Array;
}

/**
 * Makes sure the model imports `domain` at least at `version`. A custom domain (com.microsoft) is added
 * or raised; the default domain is never raised (that would change the meaning of other ops), so an
 * old default opset is an E_UNSUPPORTED error naming what is needed.
 */
export function requireOpset(model: Model, domain: string, version: number, why: string): void {
  const key = domain === 'ai.onnx' ? '' : domain;
  const have = key === '' ? model.opset : model.opsetImports.get(key);
  if (have !== undefined && have >= version) return;
  if (key === '') throw new FrugalError('E_UNSUPPORTED', `${why} needs ONNX opset ${version} or later; the model imports opset ${have}. Convert the model to a newer opset first`);
  model.opsetImports.set(key, version);
}
