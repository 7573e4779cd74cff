import { FrugalError } from '../../errors.js';
import { requiredInputs } from '../../ir/summary.js';
import type { Tensor } from '../../ir/tensor.js';
import { loadModel } from '../../onnx/index.js';
import { createSession, feedsFromFiles, numericValues, outputSummary, randomFeeds } from '../../runtime/index.js';
import { formatNumber, table } from '../../report/format.js';
import { PROVIDERS } from '../../runtime/providers.js';
import { defineCommand } from '../command.js';
import { parseShapeFlag } from './inspect.js';

export const runCommand = defineCommand({
  name: 'run',
  usage: 'frugal run <model.onnx> [--input name=file.pb ...] [--random [--seed N] [--shape name=DxD ...]] [--ep cpu] [--json]',
  positionals: [1, 1],
  options: {
    input: { type: 'string', multiple: true, arg: 'name=file.pb', description: 'feed an input from a TensorProto .pb file' },
    random: { type: 'boolean', description: 'feed seeded random data to inputs not given by --input (default when no --input)' },
    seed: { type: 'int', min: 0, default: 0, description: 'seed for --random' },
    shape: { type: 'string', multiple: true, arg: 'name=DxD', description: 'concrete shape for a random input with symbolic dims (default: symbolic dims are 1)' },
    ep: { type: 'choice', choices: Object.keys(PROVIDERS), default: 'cpu', description: 'execution provider' },
    threads: { type: 'int', min: 1, description: 'intra-op threads (default: ONNX Runtime decides)' },
  },
  examples: ['frugal run model.onnx', 'frugal run model.onnx --random --seed 7 --shape input_ids=1x128', 'frugal run model.onnx --input x=test_data_set_0/input_0.pb --json'],
  async run(ctx) {
    const file = ctx.positionals[0]!;
    const model = await loadModel(file);
    const inputs = requiredInputs(model.graph);
    const given = ctx.values.input.map((spec) => {
      const eq = spec.indexOf('=');
      if (eq <= 0) throw new FrugalError('E_USAGE', `--input '${spec}' must look like name=file.pb`);
      return { name: spec.slice(0, eq), path: spec.slice(eq + 1) };
    });
    for (const g of given) {
      if (!inputs.some((v) => v.name === g.name)) throw new FrugalError('E_USAGE', `--input '${g.name}': the model has no such input (inputs: ${inputs.map((v) => v.name).join(', ')})`);
    }
    const feeds: Record<string, Tensor> = feedsFromFiles(given);
    const missing = inputs.filter((v) => !(v.name in feeds));
    if (missing.length && given.length && !ctx.values.random) {
      throw new FrugalError('E_USAGE', `no data for input(s) ${missing.map((v) => `'${v.name}'`).join(', ')}: give --input for each, or add --random`);
    }
    const shapes = Object.fromEntries(ctx.values.shape.map(parseShapeFlag));
    const specs = missing.map((v) => {
      const t = v.type;
      const shape = shapes[v.name] ?? (t && t.kind === 'tensor' ? t.shape : undefined);
      return { name: v.name, elemType: t && t.kind === 'tensor' ? t.elemType : undefined, shape };
    });
    Object.assign(feeds, randomFeeds(specs, { seed: ctx.values.seed }));
    const session = await createSession(file, {
      ep: ctx.values.ep,
      intraOpThreads: ctx.values.threads,
    });
    try {
      const t0 = performance.now();
      const outputs = await session.run(feeds);
      const ms = performance.now() - t0;
      if (ctx.json) {
        const json: Record<string, unknown> = {};
        for (const [name, t] of Object.entries(outputs)) json[name] = { ...outputSummary(t), values: tensorValues(t) };
        ctx.out(JSON.stringify({ model: file, ep: session.ep, milliseconds: ms, randomInputs: specs.map((s) => s.name), outputs: json }, null, 2));
        return;
      }
      if (specs.length) ctx.out(`random inputs (seed ${ctx.values.seed}): ${specs.map((s) => s.name).join(', ')}`);
      const rows = Object.entries(outputs).map(([name, t]) => {
        const s = outputSummary(t);
        return [name, s.dtype, `[${s.shape.join(',')}]`, formatNumber(s.min), formatNumber(s.max), formatNumber(s.mean), s.nanCount ? String(s.nanCount) : ''];
      });
      ctx.out(table(['output', 'dtype', 'shape', 'min', 'max', 'mean', 'NaN'], rows));
      ctx.out(`ran in ${ms.toFixed(1)} ms on ${session.ep}`);
    } finally {
      await session.release();
    }
  },
});

/**
 * Output values as JSON-safe arrays: numbers decoded as `outputSummary` decodes them (float16, bfloat16 and
 * int4 as values, not bit patterns), bigints as numbers when safe, else strings; strings decoded; other
 * types (float8, complex) as raw bytes.
 */
function tensorValues(t: Tensor): unknown[] {
  if (t.isString) return t.strings().map((b) => new TextDecoder().decode(b));
  const values = numericValues(t);
  if (!values) return Array.from(t.bytes());
  return Array.from(values, (x) => (typeof x === 'bigint' ? (Number.isSafeInteger(Number(x)) ? Number(x) : String(x)) : Number.isFinite(x) ? x : String(x)));
}
