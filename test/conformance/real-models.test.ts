/**
 * Real models from other projects (../shared/data/models): the codec round trip gives identical ORT
 * outputs, and `inspect`'s counts agree with a count made here directly from the protobuf messages.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { summarizeStructure } from '../../src/ir/summary.js';
import { decodeMessage, loadModel, saveModel } from '../../src/onnx/index.js';
import type { GraphProto, NodeProto } from '../../src/onnx/proto-types.js';
import { feedSpecsOf, randomFeeds, toOrtTensor } from '../../src/runtime/index.js';

const ROOT = path.resolve(process.cwd(), '../shared/data/models');

function modelFiles(): string[] {
  if (!existsSync(ROOT)) return [];
  const out: string[] = [];
  for (const d of readdirSync(ROOT).sort()) {
    for (const f of readdirSync(path.join(ROOT, d)).sort()) if (f.endsWith('.onnx')) out.push(path.join(ROOT, d, f));
  }
  return out;
}

/** Counts straight from the protobuf messages, sharing no code with the IR or `summarizeStructure`. */
function protoCounts(file: string) {
  const m = decodeMessage('ModelProto', readFileSync(file));
  const hist: Record<string, number> = {};
  let withSub = 0;
  let inits = 0;
  let params = 0;
  const walk = (g: GraphProto) => {
    inits += g.initializer.length + g.sparseInitializer.length;
    for (const t of g.initializer) params += t.dims.reduce((a: number, d) => a * Number(d), 1);
    for (const s of g.sparseInitializer) params += s.values!.dims.reduce((a: number, d) => a * Number(d), 1);
    for (const n of g.node as NodeProto[]) {
      withSub++;
      const op = n.domain && n.domain !== 'ai.onnx' ? `${n.domain}::${n.opType}` : n.opType!;
      hist[op] = (hist[op] ?? 0) + 1;
      for (const a of n.attribute) {
        if (a.g) walk(a.g);
        for (const sg of a.graphs) walk(sg);
      }
    }
  };
  walk(m.graph!);
  return { nodeCount: m.graph!.node.length, nodeCountWithSubgraphs: withSub, initializerCount: inits, parameterCount: params, opHistogram: hist };
}

const files = modelFiles();

test('real models: inspect counts agree with an independent count', async (t) => {
  if (!files.length) return t.skip(`../shared/data/models not found (looked in ${ROOT})`);
  for (const file of files) {
    const want = protoCounts(file);
    const s = summarizeStructure(await loadModel(file));
    const got = { nodeCount: s.nodeCount, nodeCountWithSubgraphs: s.nodeCountWithSubgraphs, initializerCount: s.initializerCount, parameterCount: s.parameterCount, opHistogram: { ...s.opHistogram } };
    assert.deepEqual(got, want, path.relative(ROOT, file));
  }
  t.diagnostic(`inspect counts of ${files.length} real models agree with the protobuf-level count`);
});

test('real models: decode → save → run in ORT gives outputs identical to the original file', async (t) => {
  if (!files.length) return t.skip(`../shared/data/models not found (looked in ${ROOT})`);
  ort.env.logLevel = 'fatal';
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'frugal-real-'));
  let compared = 0;
  const skipped: string[] = [];
  try {
    for (const file of files) {
      const rel = path.relative(ROOT, file);
      const model = await loadModel(file);
      const out = path.join(tmp, rel.replace(/[\\/]/g, '__'));
      await saveModel(model, out);
      const specs = feedSpecsOf(model);
      let original: ort.InferenceSession;
      try {
        original = await ort.InferenceSession.create(file, { logSeverityLevel: 4 });
      } catch (e) {
        skipped.push(`${rel}: ORT cannot load the original (${(e as Error).message.split('\n')[0]!.slice(0, 100)})`);
        continue;
      }
      const copy = await ort.InferenceSession.create(out, { logSeverityLevel: 4 });
      const feeds = Object.fromEntries(Object.entries(randomFeeds(specs, { seed: 1, dims: {}, intRange: [0, 2] })).map(([k, v]) => [k, toOrtTensor(v)]));
      let a: ort.InferenceSession.ReturnType;
      try {
        a = await original.run(feeds);
      } catch (e) {
        skipped.push(`${rel}: ORT cannot run the original on random data (${(e as Error).message.split('\n')[0]!.slice(0, 100)})`);
        continue;
      }
      const b = await copy.run(feeds);
      for (const name of original.outputNames) {
        const x = a[name]!.data as ArrayBufferView;
        const y = b[name]!.data as ArrayBufferView;
        assert.deepEqual(b[name]!.dims, a[name]!.dims, `${rel}: output ${name} shape`);
        assert.ok(Buffer.from(x.buffer, x.byteOffset, x.byteLength).equals(Buffer.from(y.buffer, y.byteOffset, y.byteLength)), `${rel}: output ${name} differs after the round trip`);
      }
      await original.release();
      await copy.release();
      compared++;
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  t.diagnostic(`real models: ${compared} of ${files.length} round-tripped with identical ORT outputs; skipped ${skipped.length}`);
  for (const s of skipped) t.diagnostic(`  skipped ${s}`);
  assert.ok(compared >= files.length - 3, `too many real models skipped: ${skipped.join('; ')}`);
});
