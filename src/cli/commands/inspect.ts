import { FrugalError } from '../../errors.js';
import { loadModel } from '../../onnx/index.js';
import { inspectModel, type ModelSummary } from '../../ir/summary.js';
import { formatBytes, formatCount, table } from '../../report/format.js';
import { describeAttention, type LayerAttention } from '../../passes/attention/convert.js';
import { defineCommand } from '../command.js';

/** Parses `name=1x3x224x224` (dims may be symbolic words) into a name and a shape. */
export function parseShapeFlag(spec: string): [string, Array<number | string>] {
  const eq = spec.lastIndexOf('=');
  if (eq <= 0) throw new FrugalError('E_USAGE', `--shape '${spec}' must look like name=1x3x224x224`);
  const dims = spec.slice(eq + 1).split(/[x,]/).map((d) => (/^\d+$/.test(d) ? Number(d) : d));
  if (dims.some((d) => d === '')) throw new FrugalError('E_USAGE', `--shape '${spec}' has an empty dimension`);
  return [spec.slice(0, eq), dims];
}

export const inspectCommand = defineCommand({
  name: 'inspect',
  usage: 'frugal inspect <model.onnx> [--shape name=1x3x224x224 ...] [--json]',
  positionals: [1, 1],
  options: {
    shape: { type: 'string', multiple: true, arg: 'name=DxDxD', description: 'input shape for FLOP estimates (symbolic dims default to 1)' },
  },
  examples: ['frugal inspect model.onnx', 'frugal inspect resnet.onnx --shape input=1x3x224x224 --json'],
  async run(ctx) {
    const file = ctx.positionals[0]!;
    const shapes = Object.fromEntries(ctx.values.shape.map(parseShapeFlag));
    const model = await loadModel(file);
    const s = inspectModel(model, { inputShapes: shapes });
    // After the summary: describing attention infers shapes, which annotates the model's values.
    const attention = describeAttention(model);
    if (ctx.json) {
      ctx.out(JSON.stringify({ file, ...s, attention }, null, 2));
      return;
    }
    printSummary(ctx.out, file, s, Object.keys(shapes));
    if (attention.length) {
      ctx.out(table(['attention layer', 'form'], attention.map((x) => [x.layer, formName(x)])));
    }
  },
});

/** The FLOPs figure, or what keeps it unknown: open input shapes (then --shape helps) or unpriced ops. */
export function flopsLine(s: ModelSummary, givenShapes: readonly string[] = []): string {
  if (s.flops !== null) return formatCount(s.flops);
  const list = (reason: string): string => {
    const u = s.flopsUnknown.filter((x) => x.reason === reason).map((x) => `${x.op}${x.count > 1 ? ` ×${x.count}` : ''}`);
    return u.length > 4 ? `${u.slice(0, 4).join(', ')} and ${u.length - 4} more op types` : u.join(', ');
  };
  const parts: string[] = [];
  const open = list('shapes unknown');
  const unpriced = list('no cost rule');
  if (open) {
    const symbolic = s.inputs.filter((i) => !givenShapes.includes(i.name) && (!i.shape || i.shape.some((d) => typeof d !== 'number'))).map((i) => i.name);
    // With every input's shape given, open shapes come from the model itself: say what inference found.
    const why = s.shapeWarnings.length ? ` (${s.shapeWarnings[0]}${s.shapeWarnings.length > 1 ? `; ${s.shapeWarnings.length - 1} more warnings in --json` : ''})` : '';
    parts.push(`shapes unknown at ${open}${why}${symbolic.length ? `; give --shape for ${symbolic.map((n) => `${n}=…`).join(', ')}` : ''}`);
  }
  if (unpriced) parts.push(`no FLOP rule for ${unpriced}`);
  return `${s.knownFlops > 0 ? `at least ${formatCount(s.knownFlops)}` : 'unknown'} (${Math.round(s.flopsKnownFraction * 100)}% of nodes counted; ${parts.join('; ')})`;
}

/** `window (radius 64, causal)`, `block (block 64, 2 global)`, `softmax (not convertible: …)`. */
function formName(a: LayerAttention): string {
  const details = [
    ...(a.form === 'window' ? [`radius ${a.window}`] : a.form === 'block' ? [`block ${a.window}`, `${a.globalTokens} global`] : a.form === 'performer' ? [`${a.randomFeatures} random features`] : []),
    ...(a.causal ? ['causal'] : []),
    ...(a.note ? [a.note] : []),
  ];
  return details.length ? `${a.form} (${details.join(', ')})` : a.form;
}

function printSummary(out: (l: string) => void, file: string, s: ModelSummary, givenShapes: string[]): void {
  out(`${file}`);
  out(`  IR version ${s.irVersion}, opsets ${Object.entries(s.opsets).map(([d, v]) => `${d} ${v}`).join(', ')}${s.producer ? `, producer ${s.producer}` : ''}`);
  out('');
  out(table(['input', 'type'], s.inputs.map((i) => [i.name, i.type])));
  out(table(['output', 'type'], s.outputs.map((o) => [o.name, o.type])));
  out(`nodes: ${s.nodeCount}${s.nodeCountWithSubgraphs !== s.nodeCount ? ` (${s.nodeCountWithSubgraphs} with ${s.subgraphCount} subgraphs)` : ''}${s.functionCount ? `, local functions: ${s.functionCount}` : ''}`);
  out(`initializers: ${s.initializerCount}, parameters: ${formatCount(s.parameterCount)} (${formatBytes(s.parameterBytes)})`);
  out(`bytes by dtype: ${Object.entries(s.bytesByDtype).map(([k, v]) => `${k} ${formatBytes(v)}`).join(', ') || '-'}`);
  if (s.externalDataFiles.length) out(`external data: ${s.externalDataFiles.join(', ')}`);
  out(`FLOPs: ${flopsLine(s, givenShapes)}`);
  out('');
  out(table(['op', 'count'], Object.entries(s.opHistogram).map(([k, v]) => [k, String(v)])));
}
