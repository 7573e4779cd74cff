/**
 * Sparse storage: large pruned float32 initializers are written as ONNX SparseTensorProto (COO: the
 * nonzero values and their flat int64 positions), which ONNX Runtime turns back into dense tensors when
 * it loads the model. The file shrinks; nothing runs faster (the kernels stay dense). A weight is
 * converted only where that is smaller: 4 bytes per element dense against 12 (value + int64 index) per
 * nonzero, so above 2/3 sparsity.
 */
import { DataType } from '../../ir/dtype.js';
import type { Model } from '../../ir/model.js';
import { Tensor } from '../../ir/tensor.js';
import { proveInRuntime, requireProven } from '../runtime-proof.js';
import { countZeros, readFloats } from './weights.js';

export interface SparseStorageStats {
  /** Initializers now stored sparse. */
  converted: string[];
  /** Bytes of those tensors dense, and as values + indices. */
  denseBytes: number;
  sparseBytes: number;
}

/**
 * Converts every float32 initializer of the main graph with at least `minElements` elements whose sparse
 * form is smaller (in place), then checks that ONNX Runtime loads and runs the result.
 */
export async function toSparseStorage(model: Model, opts: { minElements?: number; check?: boolean } = {}): Promise<SparseStorageStats> {
  const g = model.graph;
  const stats: SparseStorageStats = { converted: [], denseBytes: 0, sparseBytes: 0 };
  const before = opts.check !== false ? await proveInRuntime(model) : undefined;
  for (const v of g.initializers()) {
    const t = v.initializer!;
    if (t.dtype !== DataType.FLOAT || t.numel < (opts.minElements ?? 1024) || v.isGraphInput) continue;
    const a = readFloats(v);
    const nnz = a.length - countZeros(a);
    if (nnz * 12 >= a.length * 4) continue;
    const values = new Float32Array(nnz);
    const indices = new BigInt64Array(nnz);
    let k = 0;
    for (let i = 0; i < a.length; i++) {
      if (a[i] === 0) continue;
      values[k] = a[i]!;
      indices[k++] = BigInt(i);
    }
    const dims = [...t.dims];
    g.initializerNames.splice(g.initializerNames.indexOf(v.name), 1);
    v.initializer = undefined;
    v.sparseInitializer = {
      values: Tensor.fromArray(DataType.FLOAT, [nnz], values, v.name),
      indices: Tensor.fromArray(DataType.INT64, [nnz], indices),
      dims,
    };
    g.sparseInitializerNames.push(v.name);
    stats.converted.push(v.name);
    stats.denseBytes += a.length * 4;
    stats.sparseBytes += nnz * 12;
  }
  if (stats.converted.length && before) await requireProven('sparse-storage', before, model);
  return stats;
}
