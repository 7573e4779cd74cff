/**
 * onnxruntime-web (its WASM backend, run in Node): zoo models quantized with the default settings
 * load there and give the same outputs as onnxruntime-node. The WASM build lacks some kernels that
 * the native CPU build has (ConvInteger among them), so this is what proves the defaults are portable.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import * as ortNode from 'onnxruntime-node';
import * as ortWeb from 'onnxruntime-web';
import type { Model } from '../../src/ir/model.js';
import { encodeModelToBytes } from '../../src/onnx/index.js';
import { PassManager } from '../../src/passes/pass.js';
import { getQuantizeMode } from '../../src/passes/registry.js';
import { feedSpecsOf, randomFeeds, toOrtTensor } from '../../src/runtime/index.js';
import { buildZooModel } from '../../src/zoo/index.js';
import { maxRelativeError } from '../helpers/compare.js';

ortWeb.env.wasm.numThreads = 1;
ortWeb.env.wasm.wasmPaths = path.resolve('node_modules/onnxruntime-web/dist') + '/';

/** Runs `bytes` in both runtimes on the same seeded feeds; returns each output's values from both. */
async function runBoth(model: Model, dims: Record<string, number>): Promise<Array<{ name: string; node: Float32Array; web: Float32Array }>> {
  const bytes = encodeModelToBytes(model);
  const feeds = randomFeeds(feedSpecsOf(model), { seed: 7, dims, intRanges: { input_ids: [0, 100] } });
  const nodeSession = await ortNode.InferenceSession.create(bytes);
  const webSession = await ortWeb.InferenceSession.create(bytes, { executionProviders: ['wasm'] });
  try {
    const nodeFeeds: Record<string, ortNode.Tensor> = {};
    const webFeeds: Record<string, ortWeb.Tensor> = {};
    for (const [k, t] of Object.entries(feeds)) {
      const o = toOrtTensor(t);
      nodeFeeds[k] = o;
      webFeeds[k] = new ortWeb.Tensor(o.type as 'float32', o.data as Float32Array, o.dims);
    }
    const a = await nodeSession.run(nodeFeeds);
    const b = await webSession.run(webFeeds);
    return nodeSession.outputNames.map((name) => ({ name, node: a[name]!.data as Float32Array, web: b[name]!.data as Float32Array }));
  } finally {
    await nodeSession.release();
    await webSession.release();
  }
}

async function quantized(model: Model, mode: string): Promise<Model> {
  return (await new PassManager(getQuantizeMode(mode).create({})).run(model)).model;
}

const CASES: Array<{ zoo: string; dims: Record<string, number> }> = [
  { zoo: 'cnn', dims: { batch: 4 } },
  { zoo: 'transformer-tiny', dims: { batch: 2, seq: 16 } },
];

for (const { zoo, dims } of CASES) {
  for (const mode of ['int8-dynamic', 'fp16']) {
    test(`onnxruntime-web runs the ${mode} ${zoo} zoo model as onnxruntime-node does`, async () => {
      const model = await quantized(buildZooModel(zoo), mode);
      const ops = new Set(model.graph.nodes.map((n) => n.opType));
      assert.ok(!ops.has('ConvInteger'), 'the default int8 settings must not emit ConvInteger (missing in onnxruntime-web)');
      const changed = model.graph.nodes.some((n) => /Integer|QuantizeLinear|MatMulNBits|Cast/.test(n.opType)) || model.graph.initializers().some((v) => v.initializer!.dtype !== 1 && v.initializer!.dtype !== 7);
      assert.ok(changed, `the ${mode} pass changed nothing in ${zoo}; the test would prove nothing`);
      for (const o of await runBoth(model, dims)) {
        assert.equal(o.web.length, o.node.length, o.name);
        // Same graph, two builds of the same kernels: int8 arithmetic is exact, float sums may differ
        // in order; fp16 rounding differences stay within a few ulps of the outputs' range.
        const err = maxRelativeError(o.web, o.node);
        assert.ok(err <= (mode === 'fp16' ? 1e-2 : 1e-3), `${zoo} ${mode} output '${o.name}': web vs node max relative error ${err}`);
      }
    });
  }
}
