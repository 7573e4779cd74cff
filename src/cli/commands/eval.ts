import { FrugalError } from '../../errors.js';
import { loadModel } from '../../onnx/index.js';
import { evaluateModel } from '../../evaluation/index.js';
import { type Command, intOption } from '../command.js';

export const evalCommand: Command = {
  name: 'eval',
  summary: 'test accuracy of a classifier on a built-in dataset (mnist, spam)',
  usage: 'frugal eval <model.onnx> --dataset mnist|spam [--limit N] [--json]',
  positionals: [1, 1],
  options: {
    dataset: { type: 'string', arg: 'mnist|spam', description: 'test data' },
    limit: { type: 'string', arg: 'N', description: 'score only the first N test examples' },
    threads: { type: 'string', arg: 'N', description: 'ONNX Runtime intra-op threads' },
  },
  examples: ['frugal eval cnn.onnx --dataset mnist', 'frugal eval spam.onnx --dataset spam --json'],
  async run(ctx) {
    const v = ctx.values;
    if (typeof v.dataset !== 'string') throw new FrugalError('E_USAGE', "missing --dataset mnist|spam (see 'frugal eval --help')");
    const file = ctx.positionals[0]!;
    const model = await loadModel(file);
    const t0 = performance.now();
    const r = await evaluateModel(model, v.dataset, {
      ...(v.limit !== undefined ? { limit: intOption(v, 'limit', 0, 1) } : {}),
      ...(v.threads !== undefined ? { intraOpThreads: intOption(v, 'threads', 0, 1) } : {}),
    });
    const seconds = (performance.now() - t0) / 1000;
    if (ctx.json) {
      ctx.out(JSON.stringify({ model: file, dataset: v.dataset, accuracy: r.accuracy, count: r.count, seconds }));
      return;
    }
    ctx.out(`${file} on ${v.dataset}: accuracy ${(100 * r.accuracy).toFixed(2)}% (${Math.round(r.accuracy * r.count)}/${r.count}) in ${seconds.toFixed(1)} s`);
  },
};
