import { FrugalError } from '../../errors.js';
import { writeFileAtomic } from '../../onnx/index.js';
import { PROVIDERS } from '../../runtime/providers.js';
import { profileModels, writeRecord } from '../../profiling/index.js';
import { htmlReport, markdownReport, terminalReport } from '../../report/index.js';
import { choiceOption, type Command, intOption, listOption, numberOption } from '../command.js';
import { parseShapeFlag } from './inspect.js';

export const profileCommand: Command = {
  name: 'profile',
  summary: 'measure latency, throughput, CPU time, memory, energy and carbon of models, side by side',
  usage:
    'frugal profile <model.onnx...> [--batch N] [--shape name=DxD ...] [--warmup N] [--iterations N | --duration S] [--threads N] [--ep cpu|cuda|webgpu] [--region CC] [--intensity G] [--pue X] [--json] [--report out.html] [--markdown out.md] [--record out.json]',
  positionals: [1, 32],
  options: {
    batch: { type: 'string', arg: 'N', description: "size of each input's symbolic first dimension (default 1); one inference = one batch item" },
    shape: { type: 'string', multiple: true, arg: 'name=DxD', description: 'concrete shape for an input (overrides --batch for it)' },
    warmup: { type: 'string', arg: 'N', description: 'warm-up runs before measuring (default 10)' },
    iterations: { type: 'string', arg: 'N', description: 'measured runs (default 100)' },
    duration: { type: 'string', arg: 'S', description: 'measure for S seconds instead of a number of runs' },
    threads: { type: 'string', arg: 'N', description: 'ONNX Runtime intra-op threads (default: ORT decides)' },
    ep: { type: 'string', arg: 'cpu|cuda|webgpu', description: 'execution provider (default cpu; GPU energy is counted for the others)' },
    region: { type: 'string', arg: 'CC', description: 'country code for grid carbon intensity (default: world average)' },
    intensity: { type: 'string', arg: 'G', description: 'grid carbon intensity in gCO2e/kWh (overrides --region)' },
    pue: { type: 'string', arg: 'X', description: 'data-centre power usage effectiveness (default 1.0)' },
    accuracy: { type: 'string', multiple: true, arg: 'model=A', description: 'accuracy of a model (0–1, from your own evaluation) for the accuracy-vs-energy chart' },
    report: { type: 'string', arg: 'out.html', description: 'write a self-contained HTML report with charts' },
    markdown: { type: 'string', arg: 'out.md', description: 'write a Markdown report' },
    record: { type: 'string', arg: 'out.json', description: 'write the versioned JSON record' },
  },
  examples: [
    'frugal profile model.onnx',
    'frugal profile model.onnx model_quantized.onnx --batch 8 --duration 10 --report profile.html',
    'frugal profile model.onnx --region FR --json',
  ],
  async run(ctx) {
    const v = ctx.values;
    const ep = choiceOption(v, 'ep', Object.keys(PROVIDERS)) ?? 'cpu';
    if (v.iterations !== undefined && v.duration !== undefined) throw new FrugalError('E_USAGE', 'give --iterations or --duration, not both');
    const durationSeconds = numberOption(v, 'duration', { min: 0 });
    if (durationSeconds === 0) throw new FrugalError('E_USAGE', '--duration must be more than 0 seconds');
    const shapes = Object.fromEntries(listOption(v, 'shape').map(parseShapeFlag));
    const accuracy = new Map<string, number>();
    for (const spec of listOption(v, 'accuracy')) {
      const eq = spec.lastIndexOf('=');
      const a = Number(spec.slice(eq + 1));
      if (eq <= 0 || !Number.isFinite(a) || a < 0 || a > 1) throw new FrugalError('E_USAGE', `--accuracy '${spec}' must look like model.onnx=0.97 (a number in [0, 1])`);
      const name = spec.slice(0, eq);
      if (!ctx.positionals.includes(name)) throw new FrugalError('E_USAGE', `--accuracy '${spec}': '${name}' is not one of the profiled models (${ctx.positionals.join(', ')})`);
      accuracy.set(name, a);
    }
    const record = await profileModels(
      ctx.positionals.map((p) => ({ path: p, name: p, ...(accuracy.has(p) ? { accuracy: accuracy.get(p)! } : {}) })),
      {
        ep,
        batch: intOption(v, 'batch', 1, 1),
        warmup: intOption(v, 'warmup', 10, 0),
        iterations: v.iterations !== undefined ? intOption(v, 'iterations', 100, 1) : undefined,
        durationSeconds,
        threads: v.threads !== undefined ? intOption(v, 'threads', 0, 1) : undefined,
        shapes,
        carbon: { region: v.region as string | undefined, intensity: numberOption(v, 'intensity', { min: 0 }), pue: numberOption(v, 'pue', { min: 1 }) },
        onProgress: ctx.progress,
      },
    );
    if (typeof v.record === 'string') await writeRecord(v.record, record);
    if (typeof v.markdown === 'string') await writeFileAtomic(v.markdown, markdownReport(record));
    if (typeof v.report === 'string') await writeFileAtomic(v.report, await htmlReport(record));
    if (ctx.json) {
      ctx.out(JSON.stringify(record, null, 2));
      return;
    }
    ctx.out(terminalReport(record).trimEnd());
    for (const [flag, what] of [['record', 'record'], ['markdown', 'Markdown report'], ['report', 'HTML report']] as const) {
      if (typeof v[flag] === 'string') ctx.out(`wrote ${what}: ${v[flag] as string}`);
    }
  },
};
