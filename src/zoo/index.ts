/**
 * The model zoo: models Frugal builds itself as ONNX graphs, as a frozen table of name → builder,
 * default configuration and description. `buildZooModel('bert-base')` gives a BERT-base-sized
 * encoder (≈110M parameters, ≈440 MB fp32) without downloading anything.
 */
import { FrugalError } from '../errors.js';
import type { Model } from '../ir/model.js';
import { buildCnn, CNN_DEFAULTS } from './cnn.js';
import { buildMlp, MLP_DEFAULTS } from './mlp.js';
import { BERT_BASE_DEFAULTS, buildTransformerEncoder, TRANSFORMER_TINY_DEFAULTS } from './transformer.js';

export * from './init.js';
export * from './mlp.js';
export * from './cnn.js';
export * from './transformer.js';

export interface ZooEntry {
  readonly name: string;
  readonly description: string;
  readonly defaults: Readonly<Record<string, unknown>>;
  /** Sizes for the inputs' symbolic dims that make a sensible example run (for random feeds). */
  readonly exampleDims: Readonly<Record<string, number>>;
  readonly build: (config: Record<string, unknown>) => Model;
}

const entry = <C extends object>(name: string, description: string, defaults: Readonly<C>, exampleDims: Record<string, number>, build: (c: Partial<C>) => Model): ZooEntry =>
  Object.freeze({
    name,
    description,
    defaults: defaults as Readonly<Record<string, unknown>>,
    exampleDims: Object.freeze(exampleDims),
    build: (c: Record<string, unknown>) => build({ ...defaults, ...c } as Partial<C>),
  });

export const ZOO: Readonly<Record<string, ZooEntry>> = Object.freeze({
  mlp: entry('mlp', 'MLP for MNIST: 784 → 256 → 128 → 10 with ReLU (~235K parameters)', MLP_DEFAULTS, { batch: 8 }, buildMlp),
  cnn: entry('cnn', 'CNN for MNIST: two Conv3×3+ReLU+MaxPool stages (16, 32 channels) and a linear classifier (~20K parameters)', CNN_DEFAULTS, { batch: 8 }, buildCnn),
  'transformer-tiny': entry(
    'transformer-tiny',
    'BERT-style encoder classifier: vocab 8192, up to 512 tokens, hidden 64, 2 layers, 4 heads, FFN 128 (~0.6M parameters)',
    TRANSFORMER_TINY_DEFAULTS,
    { batch: 2, seq: 16 },
    buildTransformerEncoder,
  ),
  'bert-base': entry(
    'bert-base',
    'BERT-base-sized encoder classifier: vocab 30522, 512 positions, hidden 768, 12 layers, 12 heads, FFN 3072, 2 classes (~110M parameters, ~440 MB fp32)',
    BERT_BASE_DEFAULTS,
    { batch: 1, seq: 128 },
    buildTransformerEncoder,
  ),
});

/** Names of the zoo models. */
export function zooNames(): string[] {
  return Object.keys(ZOO);
}

/**
 * Builds a zoo model by name with its defaults, overridden by `overrides` (unknown keys are rejected so
 * that a typo does not silently build the default).
 */
export function buildZooModel(name: string, overrides: Record<string, unknown> = {}): Model {
  const e = ZOO[name];
  if (!e) throw new FrugalError('E_USAGE', `unknown zoo model '${name}' (available: ${zooNames().join(', ')})`);
  const unknown = Object.keys(overrides).filter((k) => !(k in e.defaults));
  if (unknown.length) {
    throw new FrugalError('E_USAGE', `zoo model '${name}': unknown option${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')} (options: ${Object.keys(e.defaults).join(', ')})`);
  }
  return e.build(overrides);
}
