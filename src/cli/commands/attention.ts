import { FrugalError } from '../../errors.js';
import { loadModel, saveModel } from '../../onnx/index.js';
import { convertAttention } from '../../passes/attention/convert.js';
import { DATASETS } from '../../data/index.js';
import { recoverAttention } from '../../training/attention-recovery.js';
import { defineCommand } from '../command.js';

const FORMS = ['linear', 'performer', 'window', 'block'] as const;

export const attentionCommand = defineCommand({
  name: 'attention',
  usage: 'frugal attention <model.onnx> --to linear|performer|window|block -o <out.onnx> [--window N] [--global N] [--dataset spam --epochs N] [--json]',
  positionals: [1, 1],
  options: {
    to: { type: 'choice', choices: FORMS, required: true, description: 'the attention form to convert every softmax attention layer to' },
    output: { type: 'string', short: 'o', arg: 'out.onnx', required: true, description: 'output model path (never the input)' },
    window: { type: 'int', min: 1, description: 'window: band radius (keys within N tokens); block: block size (default 64)' },
    global: { type: 'int', min: 0, description: 'block: leading tokens that attend to and are attended by all (default 2)' },
    features: { type: 'int', min: 1, description: 'performer: random features per head (default 64)' },
    dataset: { type: 'choice', choices: Object.keys(DATASETS), description: 'fine-tune the converted model on this dataset, the original as teacher' },
    epochs: { type: 'int', min: 0, requires: 'dataset', description: 'fine-tuning epochs with --dataset (default 1; 0: evaluate only)' },
    limit: { type: 'int', min: 1, requires: 'dataset', description: 'fine-tune on the first N training examples only' },
    lr: { type: 'number', min: 0, exclusiveMin: true, arg: 'RATE', requires: 'dataset', description: 'fine-tuning learning rate (default 1e-4)' },
  },
  examples: [
    'frugal attention models/spam-transformer.onnx --to linear -o spam-linear.onnx',
    'frugal attention bert.onnx --to window --window 128 -o bert-window.onnx --json',
    'frugal attention models/spam-transformer.onnx --to performer --features 128 -o spam-performer.onnx',
    'frugal attention models/spam-transformer.onnx --to block --window 32 --global 2 --dataset spam --epochs 1 -o spam-block.onnx',
  ],
  async run(ctx) {
    const v = ctx.values;
    const input = ctx.positionals[0]!;
    const { to: form, window, global: globalTokens, features: randomFeatures, limit, lr, dataset } = v;
    if (randomFeatures !== undefined && form !== 'performer') throw new FrugalError('E_USAGE', '--features applies to --to performer only');
    const epochs = v.epochs ?? 1;
    if (window !== undefined && form !== 'window' && form !== 'block') throw new FrugalError('E_USAGE', `--window applies to --to window and --to block, not ${form}`);
    if (globalTokens !== undefined && form !== 'block') throw new FrugalError('E_USAGE', '--global applies to --to block only');

    ctx.progress(`reading ${input}`);
    const original = await loadModel(input);
    const opts = { form, ...(window !== undefined ? { window } : {}), ...(globalTokens !== undefined ? { globalTokens } : {}), ...(randomFeatures !== undefined ? { randomFeatures } : {}) };
    let model = original;
    let conversion: Record<string, unknown>;
    let accuracy: { original: number; converted: number; recovered: number; count: number } | undefined;
    if (dataset === undefined) {
      ctx.progress(`converting attention to ${form}`);
      conversion = convertAttention(model, opts).stats;
    } else {
      ctx.progress(`converting attention to ${form}, fine-tuning on ${dataset} for ${epochs} epoch(s)`);
      const r = await recoverAttention(original, {
        ...opts,
        dataset,
        epochs,
        ...(limit !== undefined ? { limit } : {}),
        ...(lr !== undefined ? { lr } : {}),
        onProgress: (p) => ctx.progress(`epoch ${p.epoch} step ${p.step}: loss ${p.loss.toFixed(4)}`),
      });
      model = r.model;
      conversion = r.conversion;
      accuracy = r.accuracy;
    }
    ctx.progress(`writing ${v.output}`);
    const saved = await saveModel(model, v.output, { protect: [input] });
    const converted = conversion.converted as Array<{ softmax: string; headDim: number; masked: boolean }>;
    const unconverted = conversion.unconverted as Array<{ node: string; reason: string }>;
    if (ctx.json) {
      ctx.out(JSON.stringify({ input, output: saved.path, ...opts, converted, unconverted, ...(accuracy ? { dataset, epochs, accuracy } : {}) }, null, 2));
      return;
    }
    ctx.out(`converted ${converted.length} attention layer(s) to ${form}${window ? ` (window ${window})` : ''}:`);
    for (const c of converted) ctx.out(`  ${c.softmax}  head size ${c.headDim}${c.masked ? ', padding mask kept' : ''}`);
    if (unconverted.length) {
      ctx.out(`left ${unconverted.length} Softmax node(s) as they were:`);
      for (const u of unconverted) ctx.out(`  ${u.node}: ${u.reason}`);
    }
    if (accuracy) {
      const pct = (x: number) => `${(100 * x).toFixed(2)}%`;
      ctx.out(`${dataset} test accuracy (${accuracy.count} examples): original ${pct(accuracy.original)}, converted ${pct(accuracy.converted)}, after ${epochs} epoch(s) ${pct(accuracy.recovered)}`);
    }
    ctx.out(`wrote ${saved.path}`);
  },
});
