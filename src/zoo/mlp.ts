/**
 * A multilayer perceptron: `input` float32 [batch, inputSize] → (MatMul, Add, Relu) per hidden layer →
 * MatMul, Add → `logits` [batch, classes]. Weights are [in, out] (MatMul layout) named `fc{i}.weight`.
 */
import { GraphBuilder } from '../ir/builder.js';
import { DataType } from '../ir/dtype.js';
import type { Model } from '../ir/model.js';
import { FrugalError } from '../errors.js';
import { filledWeight, heStd, normalWeight, xavierStd } from './init.js';

export interface MlpConfig {
  inputSize: number;
  hidden: number[];
  classes: number;
  seed: number;
}

export const MLP_DEFAULTS: Readonly<MlpConfig> = Object.freeze({ inputSize: 784, hidden: [256, 128], classes: 10, seed: 0 });

/** Builds the MLP (He init for ReLU layers, Xavier for the classifier, zero biases). */
export function buildMlp(config: Partial<MlpConfig> = {}): Model {
  const c: MlpConfig = { ...MLP_DEFAULTS, ...config, hidden: [...(config.hidden ?? MLP_DEFAULTS.hidden)] };
  for (const [k, v] of [['inputSize', c.inputSize], ['classes', c.classes], ...c.hidden.map((h, i) => [`hidden[${i}]`, h] as const)] as const) {
    if (!Number.isInteger(v) || v < 1) throw new FrugalError('E_USAGE', `mlp: ${k} must be a positive integer, got ${v}`);
  }
  const b = new GraphBuilder('mlp');
  let x = b.input('input', DataType.FLOAT, ['batch', c.inputSize]);
  const sizes = [c.inputSize, ...c.hidden, c.classes];
  for (let i = 0; i < sizes.length - 1; i++) {
    const fin = sizes[i]!;
    const fout = sizes[i + 1]!;
    const last = i === sizes.length - 2;
    const layer = `fc${i + 1}`;
    const w = normalWeight(b, `${layer}.weight`, [fin, fout], last ? xavierStd(fin, fout) : heStd(fin), c.seed);
    const bias = filledWeight(b, `${layer}.bias`, [fout], 0);
    x = b.op('MatMul', [x, w], undefined, { name: `${layer}.matmul` });
    x = b.op('Add', [x, bias], undefined, { name: `${layer}.add` });
    if (!last) x = b.op('Relu', [x], undefined, { name: `${layer}.relu` });
  }
  b.output(x, 'logits', DataType.FLOAT, ['batch', c.classes]);
  return b.build({ opsetImports: { '': 17 } });
}
