import { loadModel } from '../../onnx/index.js';
import { evaluateModel } from '../../evaluation/index.js';
import { DATASETS } from '../../data/index.js';
import { defineCommand } from '../command.js';

export const evalCommand = defineCommand({
  name: 'eval',
  usage: 'frugal eval <model.onnx> --dataset mnist|spam [--limit N] [--json]',
  positionals: [1, 1],
  options: {
    dataset: { type: 'choice', choices: Object.keys(DATASETS), required: true, description: 'test data' },
    limit: { type: 'int', min: 1, description: 'score only the first N test examples' },
    threads: { type: 'int', min: 1, description: 'ONNX Runtime intra-op threads' },
  },
  examples: ['frugal eval cnn.onnx --dataset mnist', 'frugal eval spam.onnx --dataset spam --json'],
  async run(ctx) {
    const v = ctx.values;
    const file = ctx.positionals[0]!;
    const model = await loadModel(file);
    const t0 = performance.now();
    const r = await evaluateModel(model, v.dataset, {
      ...(v.limit !== undefined ? { limit: v.limit } : {}),
      ...(v.threads !== undefined ? { intraOpThreads: v.threads } : {}),
    });
    const seconds = (performance.now() - t0) / 1000;
    if (ctx.json) {
      ctx.out(JSON.stringify({ model: file, dataset: v.dataset, accuracy: r.accuracy, count: r.count, seconds }));
      return;
    }
    ctx.out(`${file} on ${v.dataset}: accuracy ${(100 * r.accuracy).toFixed(2)}% (${Math.round(r.accuracy * r.count)}/${r.count}) in ${seconds.toFixed(1)} s`);
  },
});
