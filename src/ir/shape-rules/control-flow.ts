import { DataType } from '../dtype.js';
import type { Graph } from '../graph.js';
import type { Value } from '../node.js';
import { type Dim, elemTypeOf, type Shape, shapeOf, type ValueType } from '../types.js';
import type { OutSpec, RuleContext, RuleTable } from './context.js';
import { normAxis, sameDim } from './dims.js';

/**
 * Control flow: If, Loop and Scan. Bodies are inferred in place (their formal inputs are typed from
 * the node's inputs where the model left them untyped); the node's outputs take the body outputs'
 * types, with the iteration axis added for scan outputs.
 */

function subgraph(ctx: RuleContext, attr: string): Graph | undefined {
  const g = ctx.node.attr(attr);
  return g && typeof g === 'object' && 'nodes' in g ? (g as Graph) : undefined;
}

/** Types a body's formal input when the model did not (bodies usually declare their inputs). */
function bind(v: Value | undefined, t: ValueType | undefined): void {
  if (!v || !t) return;
  if (!v.type || v.type.kind === 'unknown') v.type = t;
  else if (v.type.kind === 'tensor' && t.kind === 'tensor' && v.type.shape === undefined && t.shape) v.type = { ...v.type, shape: [...t.shape] };
}

const tensor = (elemType: number | undefined, shape: Shape | undefined): ValueType | undefined =>
  elemType === undefined ? undefined : shape === undefined ? { kind: 'tensor', elemType } : { kind: 'tensor', elemType, shape };

/** The type both branches agree on: equal dims kept, differing dims unknown, differing ranks unknown rank. */
function join(a: ValueType | undefined, b: ValueType | undefined): OutSpec | undefined {
  if (!a || !b) return undefined;
  if (a.kind !== 'tensor' || b.kind !== 'tensor') return a.kind === b.kind ? { type: a } : undefined;
  const sa = a.shape;
  const sb = b.shape;
  const shape = sa && sb && sa.length === sb.length ? sa.map((d, i) => (d === sb[i] || (d !== null && sb[i] !== null && sameDim(d, sb[i]!)) ? d : null)) : undefined;
  return { elemType: a.elemType || b.elemType, shape };
}

const ifRule = (ctx: RuleContext): Array<OutSpec | undefined> => {
  const then = subgraph(ctx, 'then_branch');
  const els = subgraph(ctx, 'else_branch');
  if (then) ctx.inferSubgraph('then_branch');
  if (els) ctx.inferSubgraph('else_branch');
  return ctx.node.outputs.map((_, i) => join(then?.outputs[i]?.type, els?.outputs[i]?.type));
};

const loop = (ctx: RuleContext): Array<OutSpec | undefined> => {
  const body = subgraph(ctx, 'body');
  if (!body) return [];
  const n = Math.max(0, ctx.inputCount - 2);
  bind(body.inputs[0], { kind: 'tensor', elemType: DataType.INT64, shape: [] });
  bind(body.inputs[1], { kind: 'tensor', elemType: DataType.BOOL, shape: [] });
  for (let i = 0; i < n; i++) bind(body.inputs[2 + i], ctx.type(2 + i));
  ctx.inferSubgraph('body');
  const trip = ctx.has(0) && !ctx.has(1) ? (ctx.values(0)?.[0] ?? null) : null;
  return ctx.node.outputs.map((_, i) => {
    if (i < n) return join(body.outputs[1 + i]?.type, body.outputs[1 + i]?.type ?? ctx.type(2 + i));
    const t = body.outputs[1 + i]?.type;
    const s = shapeOf(t);
    return { elemType: elemTypeOf(t), shape: s ? [trip, ...s] : undefined };
  });
};

const scan = (ctx: RuleContext): Array<OutSpec | undefined> => {
  const body = subgraph(ctx, 'body');
  if (!body) return [];
  const m = ctx.node.attrInt('num_scan_inputs', 0);
  const legacy = ctx.opset < 9; // opset 8: optional sequence_lens first, every tensor has a batch axis
  const first = legacy ? 1 : 0;
  const n = ctx.inputCount - first - m;
  const inAxes = ctx.node.attrInts('scan_input_axes') ?? new Array<number>(m).fill(0);
  const outAxes = ctx.node.attrInts('scan_output_axes');
  let seq: Dim = null;
  let batch: Dim = null;
  for (let i = 0; i < n; i++) {
    const t = ctx.type(first + i);
    const s = shapeOf(t);
    if (legacy && s) batch = s[0] ?? null;
    bind(body.inputs[i], tensor(elemTypeOf(t), legacy ? s?.slice(1) : s));
  }
  for (let j = 0; j < m; j++) {
    const t = ctx.type(first + n + j);
    const s = shapeOf(t);
    let slice: Shape | undefined;
    if (s) {
      const axis = legacy ? 1 : normAxis(inAxes[j] ?? 0, s.length);
      if (axis !== undefined) {
        if (j === 0) seq = s[axis] ?? null;
        if (legacy) batch = s[0] ?? null;
        slice = s.filter((_, k) => k !== axis && !(legacy && k === 0));
      }
    }
    bind(body.inputs[n + j], tensor(elemTypeOf(t), slice));
  }
  ctx.inferSubgraph('body');
  return ctx.node.outputs.map((_, i) => {
    const t = body.outputs[i]?.type;
    const s = shapeOf(t);
    const et = elemTypeOf(t);
    if (i < n) return { elemType: et, shape: s && legacy ? [batch, ...s] : s };
    if (!s) return { elemType: et };
    if (legacy) return { elemType: et, shape: [batch, seq, ...s] };
    const axis = normAxis(outAxes?.[i - n] ?? 0, s.length + 1) ?? 0;
    const out = [...s];
    out.splice(axis, 0, seq);
    return { elemType: et, shape: out };
  });
};

export const controlFlowRules: RuleTable = {
  If: ifRule,
  Loop: loop,
  Scan: scan,
};
