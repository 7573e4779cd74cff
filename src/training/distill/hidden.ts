/**
 * The hidden-state loss (TinyBERT): besides the logits, the student's hidden representation, mapped by a
 * learned linear projection W [student width, teacher width], is pulled towards the teacher's by
 * MSE. The representation is the one before the classifier head: the masked mean over tokens of the
 * last encoder layer for a zoo transformer (`pool.mean`), the hidden fully connected layer (or the
 * flattened features) for a zoo CNN. Both are [batch, width], so the teacher's are cached per example
 * like its logits.
 *
 * W lives in a copy of the student as an initializer feeding an extra graph output, so the trainer trains
 * it like any weight; {@link stripHiddenHead} removes it from the trained student.
 */
import { FrugalError } from '../../errors.js';
import { DataType } from '../../ir/dtype.js';
import type { Model } from '../../ir/model.js';
import { Tensor } from '../../ir/tensor.js';
import { eliminateDeadCode } from '../../ir/traversal.js';
import { tensorType } from '../../ir/types.js';
import { fillNormal } from '../../zoo/init.js';
import { cloneModel } from '../training-graph.js';

/** Name of the student's projected hidden state output, and of the input holding the teacher's. */
export const HIDDEN_OUTPUT = 'distill.hidden_projected';
export const HIDDEN_PROJECTION = 'distill.hidden_projection.weight';
export const HIDDEN_TARGET_INPUT = 'loss.teacher_hidden';

/** The hidden representation of a zoo model: its value name and width. */
export function hiddenState(model: Model, who: string): { value: string; width: number } {
  const pick = (node: string): { value: string; width: number } | undefined => {
    const n = model.graph.nodes.find((x) => x.name === node);
    if (!n) return undefined;
    const out = n.outputs[0]!;
    const w = widthOf(model, node);
    return w ? { value: out.name, width: w } : undefined;
  };
  const found = pick('pool.mean') ?? pick('hidden.relu') ?? pick('flatten');
  if (!found) throw new FrugalError('E_UNSUPPORTED', `--hidden-loss: the ${who} is not a Frugal zoo transformer or CNN, so its hidden state is unknown; train without --hidden-loss`);
  return found;
}

function widthOf(model: Model, node: string): number | undefined {
  const init = (n: string) => model.graph.values.get(n)?.initializer?.dims.map(Number);
  if (node === 'pool.mean') return init('pooler.dense.weight')?.[0];
  if (node === 'hidden.relu') return init('hidden.weight')?.[0];
  return init('fc.weight')?.[1];
}

/** A copy of `model` that also outputs the value `value` ([batch, width]), after its own outputs. */
export function withOutput(model: Model, value: string, width: number): Model {
  const m = cloneModel(model);
  const v = m.graph.values.get(value)!;
  v.type = tensorType(DataType.FLOAT, ['batch', width]);
  m.graph.outputs.push(v);
  return m;
}

/**
 * A copy of the student with the projection W [sw, tw] (identity where the widths match, else a small
 * seeded normal) and the output {@link HIDDEN_OUTPUT} = hidden · W.
 */
export function withHiddenHead(student: Model, hidden: { value: string; width: number }, teacherWidth: number, seed: number): Model {
  const m = cloneModel(student);
  const g = m.graph;
  const sw = hidden.width;
  const w = new Float32Array(sw * teacherWidth);
  if (sw === teacherWidth) for (let i = 0; i < sw; i++) w[i * sw + i] = 1;
  else fillNormal(w, 1 / Math.sqrt(sw), seed, HIDDEN_PROJECTION);
  const proj = g.addInitializer(HIDDEN_PROJECTION, Tensor.fromArray(DataType.FLOAT, [sw, teacherWidth], w));
  const node = g.addNode({ opType: 'MatMul', name: 'distill.hidden_projection', inputs: [g.values.get(hidden.value)!, proj], outputNames: [HIDDEN_OUTPUT] });
  const out = node.outputs[0]!;
  out.type = tensorType(DataType.FLOAT, ['batch', teacherWidth]);
  g.outputs.push(out);
  return m;
}

/** Removes the projection head from a trained student (in place). */
export function stripHiddenHead(model: Model): void {
  model.graph.outputs = model.graph.outputs.filter((v) => v.name !== HIDDEN_OUTPUT);
  eliminateDeadCode(model.graph, { keepInitializers: false });
}
