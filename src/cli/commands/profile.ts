import { FrugalError } from '../../errors.js';
import { writeFileAtomic } from '../../onnx/index.js';
import { PROVIDERS } from '../../runtime/providers.js';
import { profileModels, writeRecord } from '../../profiling/index.js';
import { htmlReport, markdownReport, terminalReport } from '../../report/index.js';
import { defineCommand } from '../command.js';
import { parseShapeFlag } from './inspect.js';

export const profileCommand = defineCommand({
  name: 'profile',
  usage:
    'frugal profile <model.onnx...> [--batch N] [--shape name=DxD ...] [--warmup N] [--iterations N | --duration S] [--threads N] [--ep cpu|cuda|webgpu] [--region CC] [--intensity G] [--pue X] [--json] [--report out.html] [--markdown out.md] [--record out.json]',
  positionals: [1, 32],
  options: {
    batch: { type: 'int', min: 1, default: 1, description: "size of each input's symbolic first dimension; one inference = one batch item" },
    shape: { type: 'string', multiple: true, arg: 'name=DxD', description: 'concrete shape for an input (overrides --batch for it)' },
    warmup: { type: 'int', min: 0, default: 10, description: 'warm-up runs before measuring' },
    iterations: { type: 'int', min: 1, conflicts: ['duration'], description: 'measured runs (default 100)' },
    duration: { type: 'number', min: 0, exclusiveMin: true, arg: 'S', description: 'measure for S seconds instead of a number of runs' },
    threads: { type: 'int', min: 1, description: 'ONNX Runtime intra-op threads (default: ORT decides)' },
    ep: { type: 'choice', choices: Object.keys(PROVIDERS), default: 'cpu', description: 'execution provider (GPU energy is counted for the others)' },
    region: { type: 'string', arg: 'CC', description: 'country code for grid carbon intensity (default: world average)' },
    intensity: { type: 'number', min: 0, arg: 'G', description: 'grid carbon intensity in gCO2e/kWh (overrides --region)' },
    pue: { type: 'number', min: 1, description: 'data-centre power usage effectiveness (default 1.0)' },
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
    const shapes = Object.fromEntries(v.shape.map(parseShapeFlag));
    const accuracy = new Map<string, number>();
    for (const spec of v.accuracy) {
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
        ep: v.ep,
        batch: v.batch,
        warmup: v.warmup,
        iterations: v.iterations,
        durationSeconds: v.duration,
        threads: v.threads,
        shapes,
        carbon: { region: v.region, intensity: v.intensity, pue: v.pue },
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
      if (v[flag] !== undefined) ctx.out(`wrote ${what}: ${v[flag]}`);
    }
  },
});
