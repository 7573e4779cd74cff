/**
 * Pruning real models from other projects (../shared/data/models; skipped where absent): every model
 * with a prunable layer whose channels the dependency analysis can follow prunes structurally (no
 * fine-tuning) into a graph that passes `verify()` and runs in ONNX Runtime; the rest are refused with
 * E_UNSUPPORTED naming the node at fault, never an invalid graph. On ResNet-20 (residual Adds coupling
 * channels across blocks) pruning zeroed channels changes no output. Magnitude pruning of every model
 * with prunable weights loads in ORT.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { isFrugalError } from '../../src/errors.js';
import type { Model } from '../../src/ir/model.js';
import { verify } from '../../src/ir/verify.js';
import { decodeModel, encodeModelToBytes, loadModel } from '../../src/onnx/index.js';
import { runPass } from '../../src/passes/pass.js';
import { analyzeStructure, magnitudePrunePass, readFloats, structuredPrunePass, writeFloats } from '../../src/passes/prune/index.js';
import { proveInRuntime } from '../../src/passes/runtime-proof.js';
import { prepareForQuantizationPass } from '../../src/passes/registry.js';
import { createSession, feedSpecsOf, randomFeeds } from '../../src/runtime/index.js';

const ROOT = path.resolve('../shared/data/models');
const SKIP = existsSync(ROOT) ? undefined : `../shared/data/models not found (looked in ${ROOT})`;

function onnxFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? onnxFiles(path.join(dir, e.name)) : e.name.endsWith('.onnx') ? [path.join(dir, e.name)] : []));
}
const rel = (f: string) => path.relative(ROOT, f);

/** Models whose channels the analysis follows (known today); each must prune. */
const MUST_PRUNE = [
  'mnist-pytorch-mlp/model.onnx', 'squeezenet-cifar10/squeezenet_cifar10.onnx', 'resnet20-cifar/resnet20.onnx', 'keras-conv-bn-tanh/test_model_0_no_opt.onnx',
  'har-cnn/HAR-CNN.onnx', 'kws-dnn/KWS-DNN_S.onnx', 'bert-toy/bert_toy_optimized.onnx', 'squeezenet-imagenet/squeezenet_tensor_input.onnx', 'mnist-cntk/model.onnx',
];

test('structured pruning of every real model: valid, runs in ORT, or refused with the reason', { skip: SKIP }, async () => {
  const pruned: string[] = [];
  for (const f of onnxFiles(ROOT)) {
    const m = await loadModel(f);
    try {
      const r = await runPass(structuredPrunePass({ ratio: 0.5 }), m, { verify: true });
      verify(r.model);
      // Re-encoded and decoded, the file form loads in ORT too.
      const proof = await proveInRuntime(decodeModel(encodeModelToBytes(r.model)));
      assert.ok(proof.loaded, `${rel(f)}: ORT rejects the pruned file: ${proof.reason}`);
      if (r.stats.runtimeCheck === 'loads and runs') assert.ok(proof.ran, `${rel(f)}: the pruned file does not run: ${proof.reason}`);
      assert.ok((r.stats.groups as unknown[]).length > 0);
      pruned.push(rel(f));
    } catch (e) {
      assert.ok(isFrugalError(e, 'E_UNSUPPORTED'), `${rel(f)}: ${(e as Error).message}`);
      assert.match((e as Error).message, /nothing structurally prunable \(.+\)/, rel(f));
    }
  }
  for (const f of MUST_PRUNE) assert.ok(pruned.includes(f), `${f} should prune structurally (pruned: ${pruned.join(', ')})`);
});

test('magnitude pruning of every real model with prunable weights loads in ORT', { skip: SKIP }, async () => {
  let done = 0;
  for (const f of onnxFiles(ROOT)) {
    const m = await loadModel(f);
    prepareForQuantizationPass.run(m);
    try {
      const r = await runPass(magnitudePrunePass({ sparsity: 0.8 }), m);
      const proof = await proveInRuntime(r.model);
      assert.ok(proof.loaded, `${rel(f)}: ORT rejects the pruned model: ${proof.reason}`);
      done++;
    } catch (e) {
      assert.ok(isFrugalError(e, 'E_UNSUPPORTED'), `${rel(f)}: ${(e as Error).message}`);
    }
  }
  assert.ok(done >= 12, `${done} models pruned`);
});

async function run(m: Model): Promise<Float32Array> {
  const s = await createSession(m, { intraOpThreads: 1 });
  try {
    const out = await s.run(randomFeeds(feedSpecsOf(m), { seed: 3, dims: { batch: 2 } }));
    return out[s.outputNames[0]!]!.toArray() as Float32Array;
  } finally {
    await s.release();
  }
}

test('ResNet-20: pruning zeroed channels of residual-coupled groups changes no output', { skip: SKIP }, async () => {
  const m = await loadModel(path.join(ROOT, 'resnet20-cifar/resnet20.onnx'));
  prepareForQuantizationPass.run(m);
  const { groups } = analyzeStructure(m, 'channels');
  assert.ok(groups.some((g) => g.slices.filter((s) => s.role === 'out').length > 2), 'a residual stage couples several convolutions');
  const ratio = 1 / 16;
  for (const g of groups) {
    const k = Math.floor(ratio * g.channels + 1e-9);
    for (const s of g.slices) {
      if (s.role === 'param') continue;
      const data = Float32Array.from(readFloats(s.value));
      const dims = s.value.initializer!.dims;
      const inner = dims.slice(s.axis + 1).reduce((a, b) => a * b, 1);
      for (let i = 0; i < data.length; i++) {
        const at = (Math.floor(i / inner) % dims[s.axis]!) - s.offset;
        if (at >= 0 && at < k * s.block) data[i] = 0;
      }
      writeFloats(s.value, data);
    }
  }
  const ref = await run(m);
  const r = await runPass(structuredPrunePass({ ratio, target: 'channels' }), decodeModel(encodeModelToBytes(m)));
  assert.ok((r.stats.groups as unknown[]).length >= 3);
  const got = await run(r.model);
  let d = 0;
  for (let i = 0; i < ref.length; i++) d = Math.max(d, Math.abs(ref[i]! - got[i]!));
  assert.ok(d < 1e-4, `max diff ${d}`);
});
