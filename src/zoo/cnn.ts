/**
 * A small convolutional network for 28×28 single-channel images (MNIST): per stage Conv 3×3 (pad 1),
 * Relu, MaxPool 2×2; then Flatten, an optional hidden Gemm + Relu (+ Dropout), and a Gemm classifier
 * (PyTorch Linear layout, transB=1).
 */
import { GraphBuilder } from '../ir/builder.js';
import { DataType } from '../ir/dtype.js';
import type { Model } from '../ir/model.js';
import { ints } from '../ir/node.js';
import { FrugalError } from '../errors.js';
import { filledWeight, heStd, normalWeight, xavierStd } from './init.js';

export interface CnnConfig {
  channels: number[];
  classes: number;
  /** Input height and width (default 28); each stage halves it (floor). */
  imageSize: number;
  inChannels: number;
  /** Units of a hidden fully connected layer before the classifier (0: none, the default). */
  hidden: number;
  /** Dropout ratio after the hidden layer (0: no Dropout node). Inference-mode Dropout is an identity. */
  dropout: number;
  seed: number;
}

export const CNN_DEFAULTS: Readonly<CnnConfig> = Object.freeze({ channels: [16, 32], classes: 10, imageSize: 28, inChannels: 1, hidden: 0, dropout: 0, seed: 0 });

/** Builds the CNN: input `input` float32 [batch, inChannels, imageSize, imageSize] → `logits` [batch, classes]. */
export function buildCnn(config: Partial<CnnConfig> = {}): Model {
  const c: CnnConfig = { ...CNN_DEFAULTS, ...config, channels: [...(config.channels ?? CNN_DEFAULTS.channels)] };
  if (c.channels.length === 0 || c.channels.some((ch) => !Number.isInteger(ch) || ch < 1)) {
    throw new FrugalError('E_USAGE', `cnn: channels must be a non-empty list of positive integers, got [${c.channels.join(', ')}]`);
  }
  let size = c.imageSize;
  for (let i = 0; i < c.channels.length; i++) size = Math.floor(size / 2);
  if (size < 1) throw new FrugalError('E_USAGE', `cnn: ${c.channels.length} pooling stages shrink a ${c.imageSize}×${c.imageSize} image to nothing; use fewer stages`);

  const b = new GraphBuilder('cnn');
  let x = b.input('input', DataType.FLOAT, ['batch', c.inChannels, c.imageSize, c.imageSize]);
  let cin = c.inChannels;
  c.channels.forEach((cout, i) => {
    const layer = `conv${i + 1}`;
    const w = normalWeight(b, `${layer}.weight`, [cout, cin, 3, 3], heStd(cin * 9), c.seed);
    const bias = filledWeight(b, `${layer}.bias`, [cout], 0);
    x = b.op('Conv', [x, w, bias], { kernel_shape: ints([3, 3]), pads: ints([1, 1, 1, 1]), strides: ints([1, 1]) }, { name: layer });
    x = b.op('Relu', [x], undefined, { name: `${layer}.relu` });
    x = b.op('MaxPool', [x], { kernel_shape: ints([2, 2]), strides: ints([2, 2]) }, { name: `pool${i + 1}` });
    cin = cout;
  });
  let features = cin * size * size;
  x = b.op('Flatten', [x], { axis: 1 }, { name: 'flatten' });
  if (c.hidden > 0) {
    const hw = normalWeight(b, 'hidden.weight', [c.hidden, features], heStd(features), c.seed);
    const hb = filledWeight(b, 'hidden.bias', [c.hidden], 0);
    x = b.op('Relu', [b.op('Gemm', [x, hw, hb], { transB: 1 }, { name: 'hidden' })], undefined, { name: 'hidden.relu' });
    if (c.dropout > 0) x = b.op('Dropout', [x, b.constant('hidden.dropout_ratio', DataType.FLOAT, [], [c.dropout])], undefined, { name: 'hidden.dropout' });
    features = c.hidden;
  }
  const w = normalWeight(b, 'fc.weight', [c.classes, features], xavierStd(features, c.classes), c.seed);
  const bias = filledWeight(b, 'fc.bias', [c.classes], 0);
  x = b.op('Gemm', [x, w, bias], { transB: 1 }, { name: 'fc' });
  b.output(x, 'logits', DataType.FLOAT, ['batch', c.classes]);
  return b.build({ opsetImports: { '': 17 } });
}
