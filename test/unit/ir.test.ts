/**
 * The IR core: use-lists stay consistent under edits, topological sort, dead-code elimination, verify,
 * subgraph captures, and save/load through the codec (external data, atomic writes, protection of inputs).
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { isFrugalError } from '../../src/errors.js';
import { GraphBuilder } from '../../src/ir/builder.js';
import { DataType } from '../../src/ir/dtype.js';
import { Graph } from '../../src/ir/graph.js';
import { Model } from '../../src/ir/model.js';
import { Node, float } from '../../src/ir/node.js';
import { Tensor } from '../../src/ir/tensor.js';
import { eliminateDeadCode, implicitInputs, topologicalSort } from '../../src/ir/traversal.js';
import { findProblems, verify } from '../../src/ir/verify.js';
import { decodeModel, encodeModelToBytes, loadModel, readTensorFile, saveModel, writeTensorFile } from '../../src/onnx/index.js';
import { createSession } from '../../src/runtime/index.js';
import { canonicalModel } from '../helpers/ir-canonical.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'frugal-ir-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** y = relu(x @ w + b), plus a dead branch. */
function smallModel() {
  const b = new GraphBuilder('g');
  const x = b.input('x', DataType.FLOAT, ['n', 4]);
  const w = b.constant('w', DataType.FLOAT, [4, 3], Float32Array.from({ length: 12 }, (_, i) => i / 10 - 0.5));
  const bias = b.constant('b', DataType.FLOAT, [3], [0.1, -0.2, 0.3]);
  const mm = b.op('MatMul', [x, w], undefined, { name: 'mm' });
  const add = b.op('Add', [mm, bias], undefined, { name: 'add' });
  const y = b.op('Relu', [add], undefined, { name: 'relu' });
  const dead = b.op('LeakyRelu', [add], { alpha: float(0.1) }, { name: 'dead' });
  b.output(y, 'y', DataType.FLOAT, ['n', 3]);
  return { model: b.build(), x, w, bias, mm, add, y, dead };
}

describe('use-lists', () => {
  test('builder keeps producers and uses', () => {
    const { model, x, w, mm, add } = smallModel();
    assert.equal(mm.producer?.opType, 'MatMul');
    assert.deepEqual(x.uses.map((u) => [u.node.name, u.index]), [['mm', 0]]);
    assert.deepEqual(w.uses.map((u) => [u.node.name, u.index]), [['mm', 1]]);
    assert.deepEqual(add.consumers().map((n) => n.name), ['relu', 'dead']);
    assert.deepEqual(findProblems(model), []);
  });

  test('replaceAllUsesWith rewires every reader and the graph output on request', () => {
    const { model, mm, add, y } = smallModel();
    // Bypass the Add: readers of `add` read `mm`.
    add.replaceAllUsesWith(mm);
    assert.equal(add.uses.length, 0);
    assert.deepEqual(mm.consumers().map((n) => n.name), ['add', 'relu', 'dead']);
    model.graph.removeNode(add.producer!);
    assert.deepEqual(mm.consumers().map((n) => n.name), ['relu', 'dead']);
    assert.deepEqual(findProblems(model), []);
    // Replacing a graph output keeps the model valid only when asked to redirect outputs.
    const relu2 = model.graph.addNode({ opType: 'Relu', name: 'relu2', inputs: [mm], outputNames: ['y2'] }).outputs[0]!;
    y.replaceAllUsesWith(relu2, true);
    assert.equal(model.graph.outputs[0], relu2);
  });

  test('removeNode refuses while outputs are used, and names the reader', () => {
    const { model, add } = smallModel();
    assert.throws(() => model.graph.removeNode(add.producer!), (e: unknown) => isFrugalError(e, 'E_INVALID_MODEL') && /still used by Relu node 'relu'/.test((e as Error).message));
  });

  test('setInput moves a use from one value to another', () => {
    const { x, w, mm } = smallModel();
    const node = mm.producer!;
    node.setInput(1, x);
    assert.equal(w.uses.length, 0);
    assert.deepEqual(x.uses.map((u) => u.index), [0, 1]);
  });
});

describe('algorithms', () => {
  test('topologicalSort restores order and is stable', () => {
    const { model } = smallModel();
    const nodes = model.graph.nodes;
    const original = nodes.map((n) => n.name);
    topologicalSort(model.graph);
    assert.deepEqual(nodes.map((n) => n.name), original, 'an already sorted graph is left as it is');
    nodes.reverse();
    assert.ok(findProblems(model).some((p) => /not topologically sorted/.test(p)));
    topologicalSort(model.graph);
    // Ties keep their current relative order: 'dead' now precedes 'relu'.
    assert.deepEqual(nodes.map((n) => n.name), ['mm', 'add', 'dead', 'relu']);
    verify(model);
  });

  test('topologicalSort reports a cycle with a node name', () => {
    const g = new Graph('cyc');
    const a = g.addNode({ opType: 'Relu', name: 'a', inputs: [], outputNames: ['va'] });
    const b = g.addNode({ opType: 'Relu', name: 'b', inputs: [a.outputs[0]!], outputNames: ['vb'] });
    a.appendInput(b.outputs[0]!);
    assert.throws(() => topologicalSort(g), /cycle through Relu node '(a|b)'/);
  });

  test('eliminateDeadCode removes unread nodes and initializers', () => {
    const { model } = smallModel();
    const extra = model.graph.addInitializer('unused', Tensor.fromArray(DataType.FLOAT, [2], [1, 2]));
    assert.equal(eliminateDeadCode(model.graph), 1);
    assert.deepEqual(model.graph.nodes.map((n) => n.name), ['mm', 'add', 'relu']);
    assert.ok(!model.graph.values.has(extra.name));
    verify(model);
  });

  test('subgraphs capture outer values; sort, DCE and verify see the capture', () => {
    const b = new GraphBuilder('main');
    const cond = b.input('cond', DataType.BOOL, []);
    const x = b.input('x', DataType.FLOAT, [2]);
    const outer = b.op('Neg', [x], undefined, { name: 'neg' });
    const thenG = new Graph('then', b.graph);
    const thenOut = thenG.addNode({ opType: 'Identity', name: 't', inputs: [outer], outputNames: ['then_out'] }).outputs[0]!;
    thenG.outputs.push(thenOut);
    const elseG = new Graph('else', b.graph);
    const elseOut = elseG.addNode({ opType: 'Identity', name: 'e', inputs: [x], outputNames: ['else_out'] }).outputs[0]!;
    elseG.outputs.push(elseOut);
    const ifNode = b.node('If', [cond], { then_branch: thenG, else_branch: elseG }, { name: 'if', outputCount: 1 });
    thenG.ownerNode = elseG.ownerNode = ifNode;
    b.output(ifNode.outputs[0]!, 'y', DataType.FLOAT, [2]);
    const model = b.build();
    assert.deepEqual(implicitInputs(ifNode).map((v) => v.name).sort(), [outer.name, 'x'].sort());
    // `neg` is only read inside the subgraph: it is live.
    assert.equal(eliminateDeadCode(model.graph), 0);
    model.graph.nodes.reverse();
    topologicalSort(model.graph);
    assert.deepEqual(model.graph.nodes.map((n) => n.name), ['neg', 'if']);
    verify(model);
    // Round trip through the codec keeps the capture.
    const again = decodeModel(encodeModelToBytes(model));
    assert.equal(canonicalModel(again), canonicalModel(model));
    verify(again);
  });

  test('verify finds undefined inputs, missing opsets and shadowed names', () => {
    const g = new Graph('bad');
    const ghost = g.createValue('ghost');
    g.addNode({ opType: 'Relu', name: 'r', inputs: [ghost], outputNames: ['out'] });
    g.addNode({ opType: 'Foo', domain: 'com.example', name: 'f', inputs: [], outputNames: ['foo'] });
    const m = new Model(g);
    const problems = findProblems(m);
    assert.ok(problems.some((p) => /input 'ghost' is not defined/.test(p)), problems.join('\n'));
    assert.ok(problems.some((p) => /domain 'com.example' has no opset import/.test(p)), problems.join('\n'));
    assert.throws(() => verify(m), (e: unknown) => isFrugalError(e, 'E_INVALID_MODEL'));
  });

  test('uniqueName never collides with outer or inner scopes', () => {
    const g = new Graph('g');
    g.createValue('v');
    const sub = new Graph('s', g);
    assert.equal(sub.uniqueName('v'), 'v_1');
    const n = new Node({ opType: 'If', name: 'if' });
    n.setAttribute('then_branch', sub, 5);
    g.insertNode(n);
    sub.createValue('inner');
    assert.notEqual(g.uniqueName('inner'), 'inner');
  });
});

describe('save and load', () => {
  test('external data: threshold, alignment, same outputs in ORT, inline again', async () => {
    const { model } = smallModel();
    eliminateDeadCode(model.graph);
    const ext = path.join(tmp, 'ext', 'model.onnx');
    const res = await saveModel(model, ext, { externalData: true, threshold: 16 });
    assert.equal(res.externalTensors, 1, 'w (48 bytes) passes the 16-byte threshold, b (12 bytes) does not');
    assert.equal(res.externalDataPath, `${ext}_data`);
    const loaded = await loadModel(ext);
    const wt = loaded.graph.values.get('w')!.initializer!;
    assert.ok(wt.external, 'w is read lazily from the side file');
    assert.equal(wt.external.offset % 4096, 0);
    const inline = path.join(tmp, 'inline.onnx');
    await saveModel(loaded, inline, { externalData: false });
    assert.equal(canonicalModel(await loadModel(inline)), canonicalModel(loaded));
    const feeds = { x: Tensor.fromArray(DataType.FLOAT, [2, 4], [1, 2, 3, 4, -1, -2, -3, -4]) };
    const outs: number[][] = [];
    for (const f of [ext, inline]) {
      const s = await createSession(f);
      outs.push(Array.from((await s.run(feeds)).y!.toArray() as Float32Array));
      await s.release();
    }
    assert.deepEqual(outs[0], outs[1]);
  });

  test('saveModel refuses to overwrite the model it was loaded from', async () => {
    const { model } = smallModel();
    const f = path.join(tmp, 'protect.onnx');
    await saveModel(model, f);
    const before = readFileSync(f);
    const loaded = await loadModel(f);
    await assert.rejects(saveModel(loaded, f), /refusing to write/);
    assert.ok(readFileSync(f).equals(before));
  });

  test('a failed save leaves neither the target nor temporary files', async () => {
    const { model } = smallModel();
    // Sabotage: a tensor whose external file vanished cannot be inlined.
    const w = model.graph.values.get('w')!;
    w.initializer = Tensor.fromExternal(DataType.FLOAT, [4, 3], { path: path.join(tmp, 'missing.bin'), location: 'missing.bin', offset: 0, length: 48 }, 'w');
    const f = path.join(tmp, 'fail', 'model.onnx');
    await assert.rejects(saveModel(model, f), (e: unknown) => isFrugalError(e, 'E_EXTERNAL_DATA'));
    assert.ok(!existsSync(f));
    assert.deepEqual(existsSync(path.dirname(f)) ? readdirSync(path.dirname(f)) : [], []);
  });

  test('.pb tensor files: write and read back, every numeric layout', async () => {
    const cases = [
      Tensor.fromArray(DataType.FLOAT, [2, 3], [1, -2, 3.5, 0, 1e-8, -0]),
      Tensor.fromArray(DataType.INT64, [3], [1n, -(2n ** 62n), 2n ** 63n - 1n] as unknown as number[]),
      Tensor.fromArray(DataType.FLOAT16, [2], Uint16Array.from([0x3c00, 0xfc00])),
      Tensor.fromBytes(DataType.INT4, [3], Uint8Array.from([0x21, 0x0f])),
      Tensor.fromStrings([2], [new TextEncoder().encode('héllo'), new Uint8Array([0xff])]),
    ];
    for (const [i, t] of cases.entries()) {
      t.name = `t${i}`;
      const f = path.join(tmp, `t${i}.pb`);
      await writeTensorFile(f, t);
      const back = readTensorFile(f);
      assert.equal(back.name, t.name);
      assert.equal(back.dtype, t.dtype);
      assert.deepEqual(back.dims, t.dims);
      if (t.isString) assert.deepEqual(back.strings(), t.strings());
      else assert.deepEqual(Buffer.from(back.bytes()), Buffer.from(t.bytes()));
    }
  });

  test('saved files are complete protobuf (size matches the encoding)', async () => {
    const { model } = smallModel();
    const f = path.join(tmp, 'size.onnx');
    const res = await saveModel(model, f);
    assert.equal(statSync(f).size, res.bytes);
    assert.equal(canonicalModel(await loadModel(f)), canonicalModel(decodeModel(encodeModelToBytes(model))));
  });
});

test('string attributes keep a leading byte-order mark through encode and decode', () => {
  const b = new GraphBuilder('bom');
  const x = b.input('x', DataType.FLOAT, [1]);
  const y = b.op('Identity', [x]);
  y.producer!.setAttribute('note', '\uFEFFhello');
  b.output(y, 'y', DataType.FLOAT, [1]);
  const again = decodeModel(encodeModelToBytes(b.build()));
  assert.equal(again.graph.nodes[0]!.attrString('note', ''), '\uFEFFhello');
});

test('uniqueNodeName: skips names of existing and inserted nodes, and its own earlier answers', () => {
  const b = new GraphBuilder('names');
  const x = b.input('x', DataType.FLOAT, [1]);
  b.output(b.op('Relu', [x], {}, { name: 'x_cast' }), 'y', DataType.FLOAT, [1]);
  const g = b.graph;
  assert.equal(g.uniqueNodeName('x_cast'), 'x_cast_1', 'a node already has the name (a value named x_cast does not exist)');
  assert.equal(g.uniqueNodeName('x_cast'), 'x_cast_2');
  g.addNode({ opType: 'Identity', name: 'later', inputs: [x] });
  assert.equal(g.uniqueNodeName('later'), 'later_1');
  assert.equal(g.uniqueNodeName('fresh'), 'fresh');
});
