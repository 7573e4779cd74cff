/**
 * Dependency analysis for structured pruning (the idea of Torch-Pruning's DepGraph, written against this
 * IR): which tensors, weight slices and attributes must shrink together when one channel goes.
 *
 * A *channel group* starts at a layer that creates channels (Conv output channels, MatMul/Gemm output
 * features) and spreads both ways through the graph: forward through ops that keep channels apart
 * (activations, pools, BatchNormalization, elementwise ops with per-channel or scalar constants,
 * Flatten, Transpose, Squeeze/Unsqueeze, Pad, Reshapes of leading dims), into the consumers that reduce
 * over them (the input channels of a Conv, the input rows of a MatMul/Gemm weight), and backward from
 * any tensor the group reaches, so that a residual Add or Mul of two channel tensors couples both
 * producers, a depthwise Conv carries its channels through, a shared weight couples every node that
 * reads it, and past a Concat the group owns one range of the joined channels. A group whose channels
 * reach anything else (a graph output, LayerNormalization, a Reshape that splits them, a grouped Conv...)
 * cannot shrink: it is reported with the node at fault and left alone.
 *
 * Channel c of a member tensor occupies `block` consecutive indices along `axis` (block > 1 after a
 * Flatten of C×H×W, or for attention heads of headDim features).
 */
import { DataType } from '../../ir/dtype.js';
import type { Model } from '../../ir/model.js';
import type { Node, Value } from '../../ir/node.js';
import { inferShapes } from '../../ir/shape-inference.js';
import { type Shape, shapeOf, type ValueType } from '../../ir/types.js';
import { LAYOUT_RULES, type LayoutContext } from './layout-rules.js';

/**
 * A tensor whose channels belong to a group: channel c is indices [offset + c·block, offset + (c+1)·block)
 * of `axis` (negative, from the end), an axis `width` long (more than channels·block after a Concat).
 */
export interface Member {
  value: Value;
  axis: number;
  block: number;
  offset: number;
  width: number;
}

/**
 * A slice of a constant that shrinks with the group. `out`: the weight creates the channels; `in`: it
 * reduces over them; `param`: a per-channel constant (bias, BatchNorm statistics, elementwise operand),
 * sliced for the reading node `use` only (a copy when other nodes read it too).
 */
export interface Slice {
  value: Value;
  axis: number;
  block: number;
  /** Where channel 0 starts on the axis (after a Concat, the group's channels are one range of it). */
  offset: number;
  role: 'out' | 'in' | 'param';
  use?: { node: Node; index: number };
}

export interface ChannelGroup {
  /** The node that seeded the group (named in reports). */
  seed: Node;
  channels: number;
  members: Member[];
  slices: Slice[];
  /** Depthwise Convs inside the group: their `group` attribute becomes the new channel count. */
  depthwise: Node[];
  /**
   * Reshape nodes whose constant shape spells the channel count at `position` (as count × `unit`): each
   * gets its own copy of the shape with the new count.
   */
  reshapes: Array<{ node: Node; position: number; unit: number }>;
  /** Why the group cannot be pruned, naming the node at fault; undefined when it can. */
  blocked?: string;
}

const UNARY = new Set([
  'Relu', 'LeakyRelu', 'PRelu', 'Sigmoid', 'Tanh', 'Erf', 'Gelu', 'Elu', 'Selu', 'Celu', 'Softplus', 'Softsign', 'HardSigmoid', 'HardSwish',
  'Mish', 'Clip', 'Abs', 'Neg', 'Exp', 'Log', 'Sqrt', 'Reciprocal', 'Identity', 'Dropout', 'Cast', 'Floor', 'Ceil', 'Round', 'Sign', 'ThresholdedRelu',
  'MaxPool', 'AveragePool', 'LpPool', 'GlobalAveragePool', 'GlobalMaxPool', 'GlobalLpPool', 'Sin', 'Cos',
]);
const BINARY = new Set(['Add', 'Sub', 'Mul', 'Div', 'Max', 'Min', 'Pow', 'Sum', 'Mean']);
/** Ops whose single input keeps channels at the same axis but may read them only at the channel axis 1 (NCHW). */
const CHANNEL_AXIS_ONE = new Set(['MaxPool', 'AveragePool', 'LpPool', 'GlobalAveragePool', 'GlobalMaxPool', 'GlobalLpPool', 'BatchNormalization', 'InstanceNormalization']);

/** Shapes of the main graph's values from shape inference, leaving the model's own types untouched. */
export function inferredShapes(model: Model): Map<Value, Shape | undefined> {
  const saved = new Map<Value, ValueType | undefined>();
  for (const v of model.graph.values.values()) saved.set(v, v.type);
  const shapes = new Map<Value, Shape | undefined>();
  try {
    inferShapes(model);
    for (const v of model.graph.values.values()) shapes.set(v, shapeOf(v.type) ?? (v.initializer ? [...v.initializer.dims] : undefined));
  } finally {
    for (const [v, t] of saved) v.type = t;
  }
  return shapes;
}

const isWeightOp = (n: Node): boolean => n.domain === '' && (n.opType === 'Conv' || n.opType === 'MatMul' || n.opType === 'Gemm');

/** The weight of a Conv/MatMul/Gemm when it is a float constant of the rank pruning handles. */
function constWeight(n: Node): Value | undefined {
  const w = n.inputs[1];
  if (!w?.initializer || w.initializer.dtype !== DataType.FLOAT) return undefined;
  const r = w.initializer.dims.length;
  if (n.opType === 'Conv') return r >= 3 ? w : undefined;
  if (n.opType === 'Gemm' && n.attrInt('transA', 0)) return undefined;
  return r === 2 ? w : undefined;
}

/** Output-channel axis of a weight (Conv W: 0; MatMul B: 1; Gemm B: 0 with transB, else 1); input axis is the other. */
function outAxis(n: Node): number {
  if (n.opType === 'Conv') return 0;
  if (n.opType === 'Gemm') return n.attrInt('transB', 0) ? 0 : 1;
  return 1;
}
function inAxis(n: Node): number {
  if (n.opType === 'Conv') return 1;
  return 1 - outAxis(n);
}

/** Depthwise: a Conv with group = input channels = output channels (W is [C, 1, k...]). */
function isDepthwise(n: Node): boolean {
  const g = n.attrInt('group', 1);
  const w = n.inputs[1]?.initializer;
  return g > 1 && !!w && w.dims[0] === g && w.dims[1] === 1;
}

class GroupBuilder implements LayoutContext {
  readonly members = new Map<Value, Member>();
  readonly slices = new Map<string, Slice>();
  readonly depthwise = new Set<Node>();
  readonly reshapes = new Map<Node, { node: Node; position: number; unit: number }>();
  blocked: string | undefined;
  private readonly queue: Member[] = [];

  constructor(
    readonly channels: number,
    private readonly shapes: Map<Value, Shape | undefined>,
  ) {}

  block(reason: string): void {
    this.blocked ??= reason;
  }

  join(value: Value, axis: number, block: number, offset = 0, width = this.channels * block): void {
    const seen = this.members.get(value);
    if (seen) {
      if (seen.axis !== axis || seen.block !== block || seen.offset !== offset) this.block(`'${value.name}' carries the channels at two different positions`);
      return;
    }
    const m = { value, axis, block, offset, width };
    this.members.set(value, m);
    this.queue.push(m);
  }

  slice(value: Value, axis: number, block: number, role: Slice['role'], use?: { node: Node; index: number }, offset = 0, width = this.channels * block): void {
    const dims = value.initializer!.dims;
    if (dims[axis] !== width) {
      this.block(`'${value.name}' has ${dims[axis]} entries on axis ${axis}, expected ${width}`);
      return;
    }
    const key = `${value.name}#${axis}#${offset}#${role === 'param' ? `${use!.node.name}:${use!.index}` : ''}`;
    this.slices.set(key, { value, axis, block, offset, role, ...(use ? { use } : {}) });
  }

  run(): void {
    while (this.queue.length && !this.blocked) {
      const m = this.queue.shift()!;
      const v = m.value;
      if (v.isGraphOutput) this.block(`'${v.name}' is a graph output`);
      else if (v.isGraphInput || !v.producer) this.block(`'${v.name}' is a graph input or constant`);
      else this.producer(v.producer, m);
      for (const u of v.uses) if (!this.blocked) this.consumer(u.node, u.index, m);
    }
  }

  private rank(v: Value): number | undefined {
    return this.shapes.get(v)?.length;
  }

  shape(v: Value): Shape | undefined {
    return this.shapes.get(v);
  }

  reshapeEdit(node: Node, position: number, unit: number): void {
    this.reshapes.set(node, { node, position, unit });
  }

  /** A weight with other readers couples them: each must see the same channels in the same place. */
  private coupleSharedWeight(w: Value, node: Node, side: 'out' | 'in', m: Member): void {
    for (const u of w.uses) {
      if (u.node === node) continue;
      if (u.index !== 1 || u.node.opType !== node.opType || !isWeightOp(u.node) || outAxis(u.node) !== outAxis(node)) {
        this.block(`weight '${w.name}' is also read by ${u.node.describe()}`);
        return;
      }
      if (side === 'out') this.join(u.node.outputs[0]!, node.opType === 'Conv' ? 1 - w.initializer!.dims.length : -1, 1);
      else if (u.node.inputs[0]) this.join(u.node.inputs[0], m.axis, m.block, m.offset, m.width);
    }
  }

  /** `m` is an output of `n`: where do its channels come from? */
  private producer(n: Node, m: Member): void {
    if (n.domain !== '') return this.block(`${n.describe()} produces the channels`);
    const w = isWeightOp(n) ? constWeight(n) : undefined;
    if (w) {
      const rank = w.initializer!.dims.length;
      const want = n.opType === 'Conv' ? 1 - rank : -1;
      if (m.axis !== want || m.block !== 1 || m.offset !== 0 || m.width !== this.channels) return this.block(`${n.describe()} produces the channels on another axis`);
      if (n.opType === 'Conv' && n.attrInt('group', 1) > 1) {
        if (!isDepthwise(n)) return this.block(`grouped ${n.describe()}`);
        this.depthwise.add(n);
        this.join(n.inputs[0]!, m.axis, 1);
      }
      this.slice(w, outAxis(n), 1, 'out');
      this.coupleSharedWeight(w, n, 'out', m);
      if (n.inputs[2]) this.bias(n, m);
      return;
    }
    if (UNARY.has(n.opType) || n.opType === 'BatchNormalization') {
      if (m.value !== n.outputs[0]) return this.block(`${n.describe()} output ${m.value.producerIndex} depends on the channels`);
      if (!this.axisOneOk(n, m)) return;
      this.join(n.inputs[0]!, m.axis, m.block, m.offset, m.width);
      this.extraOperands(n, m);
      return;
    }
    if (BINARY.has(n.opType)) {
      n.inputs.forEach((x, i) => x && this.operand(n, i, m));
      return;
    }
    const layout = LAYOUT_RULES[n.opType];
    if (layout) return layout(this, n, m, 'up', -1);
    this.block(`${n.describe()} produces the channels`);
  }

  /** `m` is input `index` of `n`: how does `n` read the channels? */
  private consumer(n: Node, index: number, m: Member): void {
    if (n.domain !== '') return this.block(`${n.describe()} reads the channels`);
    const w = isWeightOp(n) ? constWeight(n) : undefined;
    if (w && index === 0) {
      const rank = w.initializer!.dims.length;
      if (n.opType === 'Conv') {
        if (m.axis !== 1 - rank || m.block !== 1) return this.block(`${n.describe()} reads the channels on another axis`);
        if (n.attrInt('group', 1) > 1) {
          if (m.offset !== 0 || m.width !== this.channels) return this.block(`depthwise ${n.describe()} reads channels of several groups`);
          if (!isDepthwise(n)) return this.block(`grouped ${n.describe()}`);
          this.depthwise.add(n);
          this.join(n.outputs[0]!, m.axis, 1);
          this.slice(w, 0, 1, 'out');
          if (n.inputs[2]) this.bias(n, m);
          return;
        }
      } else if (m.axis !== -1) {
        return this.block(`${n.describe()} reads the channels on axis ${m.axis}, not its reduction axis`);
      }
      this.slice(w, inAxis(n), m.block, 'in', undefined, m.offset, m.width);
      this.coupleSharedWeight(w, n, 'in', m);
      return;
    }
    if (UNARY.has(n.opType) || n.opType === 'BatchNormalization') {
      if (index !== 0) return this.block(`${n.describe()} reads the channels as input ${index}`);
      if (!this.axisOneOk(n, m)) return;
      if (n.outputs.slice(1).some((o) => o && (o.uses.length || o.isGraphOutput))) return this.block(`${n.describe()}: its second output is used`);
      this.join(n.outputs[0]!, m.axis, m.block, m.offset, m.width);
      this.extraOperands(n, m);
      return;
    }
    if (BINARY.has(n.opType)) {
      this.join(n.outputs[0]!, m.axis, m.block, m.offset, m.width);
      n.inputs.forEach((x, i) => x && i !== index && this.operand(n, i, m));
      return;
    }
    const layout = LAYOUT_RULES[n.opType];
    if (layout) {
      if (index !== 0 && n.opType !== 'Concat') return this.block(`${n.describe()} reads the channels as input ${index}`);
      return layout(this, n, m, 'down', index);
    }
    this.block(`${n.describe()} reads the channels`);
  }

  /** Conv's bias is 1-D over output channels; Gemm's C broadcasts like an elementwise operand. */
  private bias(n: Node, m: Member): void {
    const b = n.inputs[2]!;
    if (n.opType !== 'Conv') return this.operand(n, 2, m);
    if (!b.initializer) return this.block(`${n.describe()} bias '${b.name}' is not a constant`);
    this.slice(b, 0, 1, 'param', { node: n, index: 2 });
  }

  /** Pools and BatchNormalization work on NCHW: the channels must be axis 1. */
  private axisOneOk(n: Node, m: Member): boolean {
    if (!CHANNEL_AXIS_ONE.has(n.opType)) return true;
    const r = this.rank(n.inputs[0]!);
    if (r === undefined || r + m.axis !== 1 || m.block !== 1) {
      this.block(`${n.describe()} would see the channels off its channel axis`);
      return false;
    }
    return true;
  }

  /** BatchNormalization's per-channel parameters, Clip's and Dropout's scalars, PRelu's slope. */
  private extraOperands(n: Node, m: Member): void {
    for (let i = 1; i < n.inputs.length; i++) if (n.inputs[i]) this.operand(n, i, m);
  }

  /**
   * Input `i` of `n` combined elementwise with the channels: a constant is sliced where it spans the
   * channel axis (left as is where it broadcasts); a tensor that spans it joins the group.
   */
  private operand(n: Node, i: number, m: Member): void {
    const x = n.inputs[i]!;
    if (x === m.value) return;
    let dims: Shape | undefined;
    if (x.initializer) dims = [...x.initializer.dims];
    else dims = this.shapes.get(x);
    if (n.opType === 'BatchNormalization' && i > 0) {
      // Scale, bias, mean, variance: 1-D over channels.
      if (x.initializer) this.slice(x, 0, m.block, 'param', { node: n, index: i }, m.offset, m.width);
      else this.block(`${n.describe()} parameter '${x.name}' is not a constant`);
      return;
    }
    if (!dims) return this.block(`cannot tell whether '${x.name}' (read by ${n.describe()}) spans the channels`);
    const at = dims.length + m.axis;
    if (at < 0 || dims[at] === 1) return;
    if (x.initializer) {
      this.slice(x, at, m.block, 'param', { node: n, index: i }, m.offset, m.width);
    } else if (typeof dims[at] === 'number' && dims[at] === m.width) {
      this.join(x, m.axis, m.block, m.offset, m.width);
    } else {
      this.block(`cannot tell whether '${x.name}' (read by ${n.describe()}) spans the channels`);
    }
  }

}

/**
 * Every channel group of the main graph, seeded at each Conv/MatMul/Gemm with a constant weight whose
 * output is not in an earlier group. Blocked groups are included with the reason.
 */
export function channelGroups(model: Model, shapes = inferredShapes(model)): ChannelGroup[] {
  const groups: ChannelGroup[] = [];
  const taken = new Set<Value>();
  for (const n of model.graph.nodes) {
    if (!isWeightOp(n)) continue;
    const w = constWeight(n);
    const out = n.outputs[0];
    if (!w || !out || taken.has(out)) continue;
    const channels = w.initializer!.dims[outAxis(n)]!;
    const b = new GroupBuilder(channels, shapes);
    b.join(out, n.opType === 'Conv' ? 1 - w.initializer!.dims.length : -1, 1);
    b.run();
    for (const v of b.members.keys()) taken.add(v);
    const g: ChannelGroup = { seed: n, channels, members: [...b.members.values()], slices: [...b.slices.values()], depthwise: [...b.depthwise], reshapes: [...b.reshapes.values()] };
    if (b.blocked) g.blocked = b.blocked;
    else if (!g.slices.some((s) => s.role === 'in')) g.blocked = `nothing reads the channels of ${n.describe()} through a weight`;
    groups.push(g);
  }
  return groups;
}
