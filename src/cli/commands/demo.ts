import path from 'node:path';
import { inspectModel, requiredInputs } from '../../ir/summary.js';
import { saveModel } from '../../onnx/index.js';
import { createSession, feedSpecsOf, outputSummary, randomFeeds } from '../../runtime/index.js';
import { ZOO } from '../../zoo/index.js';
import { formatBytes, formatCount, formatNumber, table } from '../format.js';
import type { Command } from '../command.js';

/** Zoo models the demo builds, with the input sizes it runs them at. */
const DEMO_MODELS = ['mlp', 'cnn', 'transformer-tiny'] as const;

export const demoCommand: Command = {
  name: 'demo',
  summary: "Frugal's main job on its embedded default: build zoo models, inspect them, run them in ONNX Runtime",
  usage: 'frugal demo [--out DIR] [--quick] [--json]',
  positionals: [0, 0],
  options: {
    out: { type: 'string', arg: 'DIR', description: "where to write the models (default 'frugal-report')" },
    quick: { type: 'boolean', description: 'fewer timing repetitions (used by CI)' },
  },
  examples: ['frugal demo', 'frugal demo --out /tmp/frugal --json'],
  async run(ctx) {
    const outDir = path.resolve((ctx.values.out as string | undefined) ?? 'frugal-report');
    const reps = ctx.values.quick ? 3 : 20;
    const results = [];
    for (const name of DEMO_MODELS) {
      const entry = ZOO[name]!;
      ctx.progress(`[${name}] building`);
      const model = entry.build({});
      const file = path.join(outDir, `${name}.onnx`);
      const saved = await saveModel(model, file, { externalData: false });
      const summary = inspectModel(model, { inputShapes: exampleShapes(model, entry.exampleDims) });
      ctx.progress(`[${name}] running ${reps}× in ONNX Runtime`);
      const specs = feedSpecsOf(model);
      const feeds = randomFeeds(specs, { seed: 0, dims: { ...entry.exampleDims }, intRange: [0, 100] });
      const session = await createSession(file);
      const times: number[] = [];
      let outputs;
      try {
        outputs = await session.run(feeds); // warm-up
        for (let i = 0; i < reps; i++) {
          const t0 = performance.now();
          outputs = await session.run(feeds);
          times.push(performance.now() - t0);
        }
      } finally {
        await session.release();
      }
      times.sort((a, b) => a - b);
      const logits = outputSummary(Object.values(outputs)[0]!);
      results.push({
        name,
        file,
        sizeBytes: saved.bytes,
        parameterCount: summary.parameterCount,
        nodeCount: summary.nodeCount,
        flops: summary.flops,
        inputDims: entry.exampleDims,
        latencyP50Ms: times[Math.floor(times.length / 2)]!,
        output: { name: logits.name || Object.keys(outputs)[0], shape: logits.shape, min: logits.min, max: logits.max, mean: logits.mean },
      });
    }
    if (ctx.json) {
      ctx.out(JSON.stringify({ outDir, models: results }, null, 2));
      return;
    }
    ctx.out(
      table(
        ['model', 'params', 'size', 'nodes', 'FLOPs', 'inputs at', 'p50 ms', 'output', 'mean'],
        results.map((r) => [
          r.name,
          formatCount(r.parameterCount),
          formatBytes(r.sizeBytes),
          String(r.nodeCount),
          r.flops === null ? '?' : formatCount(r.flops),
          Object.entries(r.inputDims).map(([k, v]) => `${k}=${v}`).join(' '),
          r.latencyP50Ms.toFixed(2),
          `[${r.output.shape.join(',')}]`,
          formatNumber(r.output.mean),
        ]),
      ),
    );
    ctx.out(`models written to ${outDir}; try 'frugal inspect ${path.relative(process.cwd(), results[0]!.file)}'`);
  },
};

/** Concrete shapes for each input, from the zoo entry's example sizes for symbolic dims. */
function exampleShapes(model: import('../../ir/model.js').Model, dims: Readonly<Record<string, number>>): Record<string, Array<number | string>> {
  const out: Record<string, Array<number | string>> = {};
  for (const v of requiredInputs(model.graph)) {
    if (v.type?.kind === 'tensor' && v.type.shape) out[v.name] = v.type.shape.map((d) => (typeof d === 'string' ? dims[d] ?? 1 : d ?? 1));
  }
  return out;
}
