/**
 * Issue 11, item 7: `inspect --shape` on an image model says what really keeps FLOPs unknown (an op
 * without a cost rule, or an inconsistency shape inference found) instead of asking for --shape again,
 * and gives the counted FLOPs as a lower bound; dataset feeds (calibration, evaluation) name a model's
 * real inputs only, not the initializers that IR < 4 models also list as inputs.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { openDatasetFeed } from '../../src/data/feed.js';
import { isFrugalError } from '../../src/errors.js';
import { GraphBuilder } from '../../src/ir/builder.js';
import { DataType } from '../../src/ir/dtype.js';
import { saveModel } from '../../src/onnx/index.js';
import { runFrugal } from '../helpers/cli.js';

let dir: string;
let image: string;

before(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'frugal-inspect-'));
  // An image model with open spatial dims, ending in an ai.onnx.ml op the cost model does not price.
  const b = new GraphBuilder('img');
  const x = b.input('image', DataType.FLOAT, ['N', 3, 'H', 'W']);
  const w = b.constant('w', DataType.FLOAT, [8, 3, 3, 3], new Float32Array(216).fill(0.1));
  const c = b.op('Relu', [b.op('Conv', [x, w], { pads: [1, 1, 1, 1] })]);
  const g = b.op('Flatten', [b.op('GlobalAveragePool', [c])]);
  b.output(b.op('Normalizer', [g], { norm: 'L2' }, { domain: 'ai.onnx.ml' }), 'scores', DataType.FLOAT, ['N', 8]);
  image = path.join(dir, 'image.onnx');
  await saveModel(b.build({ opsetImports: { '': 13, 'ai.onnx.ml': 1 } }), image);
});
after(() => rmSync(dir, { recursive: true, force: true }));

const flopsLine = (args: string[]): string => {
  const r = runFrugal(dir, ['inspect', image, ...args]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.split('\n').find((l) => l.startsWith('FLOPs: '))!;
};

test('inspect --shape on an image model: counted FLOPs as a lower bound and the unpriced op named, no "pass --shape"', () => {
  const line = flopsLine(['--shape', 'image=1x3x720x720']);
  // Conv: 2·8·27 per output pixel, 720² pixels → 223.9M (plus Relu/pool): counted, not "unknown".
  assert.match(line, /^FLOPs: at least 2\d\d\.\dM \(\d+% of nodes counted; no FLOP rule for ai\.onnx\.ml::Normalizer\)$/);
  assert.doesNotMatch(line, /--shape/);
});

test('inspect without --shape: FLOPs unknown because of the open input dims, and says which input needs --shape', () => {
  assert.match(flopsLine([]), /^FLOPs: unknown \(\d+% of nodes counted; shapes unknown at Conv, Relu, GlobalAveragePool.*; give --shape for image=…\)$/);
});

test('dataset feeds list only the real inputs of a model whose initializers are also graph inputs (IR < 4)', () => {
  const b = new GraphBuilder('mlp');
  const x = b.input('pixels', DataType.FLOAT, ['n', 784]);
  const w = b.constant('w', DataType.FLOAT, [784, 10], new Float32Array(7840));
  b.output(b.op('MatMul', [x, w]), 'logits', DataType.FLOAT, ['n', 10]);
  const extra = b.input('second', DataType.FLOAT, ['n', 784]);
  b.graph.inputs.push(b.graph.values.get('w')!);
  const m = b.build({ opsetImports: { '': 8 }, irVersion: 3 });
  // Two real inputs: the error names them, not the weight listed as an input.
  assert.throws(
    () => openDatasetFeed('mnist', m, { testLimit: 4, evalOnly: true }),
    (e: unknown) => isFrugalError(e, 'E_USAGE') && /this model takes 'pixels', 'second'$/.test(e.message),
  );
  // One real input plus the listed weight: opens (before, the weight made it "two inputs").
  m.graph.inputs.splice(m.graph.inputs.indexOf(extra), 1);
  const feed = openDatasetFeed('mnist', m, { testLimit: 4, evalOnly: true });
  assert.equal(feed.counts.test, 4);
});

test('real model: squeezenet (opset 7, ai.onnx.ml tail) with --shape counts its convolutions', { skip: !existsSync('../shared/data/models/squeezenet-imagenet') && '../shared/data absent' }, () => {
  const r = runFrugal(dir, ['inspect', path.resolve('../shared/data/models/squeezenet-imagenet/squeezenet_tensor_input.onnx'), '--shape', 'data=1x3x227x227']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^FLOPs: at least [\d.]+M \(97% of nodes counted; no FLOP rule for ai\.onnx\.ml::ArrayFeatureExtractor, ai\.onnx\.ml::ZipMap\)$/m);
});
