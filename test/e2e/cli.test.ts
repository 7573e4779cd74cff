/**
 * End-to-end CLI tests: real processes, real files. Bad input must give a typed error on one line
 * (no stack trace), a non-zero exit, and no output file; outputs never replace inputs.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type CliResult, assertCleanError, runFrugal } from '../helpers/cli.js';
import { after, before, describe, test } from 'node:test';
import { DataType } from '../../src/ir/dtype.js';
import { GraphBuilder } from '../../src/ir/builder.js';
import { decodeMessage, encodeMessageToBytes, saveModel } from '../../src/onnx/index.js';
import { createRng } from '../../src/util/rng.js';

let dir: string;

function frugal(...args: string[]): CliResult {
  return runFrugal(dir, [...args], 120_000);
}


/** A small MatMul+Add model with a 64×32 weight (8 KiB, large enough to go external). */
async function writeSmallModel(file: string): Promise<void> {
  const b = new GraphBuilder('small');
  const x = b.input('x', DataType.FLOAT, ['batch', 64]);
  const rng = createRng(3);
  const w = b.constant('w', DataType.FLOAT, [64, 32], Float32Array.from({ length: 64 * 32 }, () => rng.normal()));
  const bias = b.constant('b', DataType.FLOAT, [32], new Float32Array(32).fill(0.5));
  b.output(b.op('Add', [b.op('MatMul', [x, w]), bias]), 'y', DataType.FLOAT, ['batch', 32]);
  await saveModel(b.build(), file, { externalData: false });
}

/** Writes a model whose initializer `w` lives in external data at the given (hostile) location. */
function writeExternalModel(file: string, location: string): void {
  const proto = decodeMessage('ModelProto', readFileSync(path.join(dir, 'small.onnx')));
  const w = proto.graph!.initializer.find((t) => t.name === 'w')!;
  w.rawData = undefined;
  w.dataLocation = 1;
  w.externalData = [{ key: 'location', value: location }, { key: 'offset', value: '0' }, { key: 'length', value: '8192' }];
  writeFileSync(file, encodeMessageToBytes('ModelProto', proto));
}

before(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'frugal-cli-'));
  await writeSmallModel(path.join(dir, 'small.onnx'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe('help and usage', () => {
  test('frugal --help lists the commands; each command has --help with examples', () => {
    const r = frugal('--help');
    assert.equal(r.code, 0);
    for (const c of ['inspect', 'convert', 'run', 'demo']) {
      assert.match(r.stdout, new RegExp(`\\b${c}\\b`));
      const h = frugal(c, '--help');
      assert.equal(h.code, 0);
      assert.match(h.stdout, /Usage: frugal/);
      assert.match(h.stdout, /Examples:/);
      assert.match(h.stdout, /--json/);
    }
  });
  test('unknown command and unknown flag are usage errors (exit 2)', () => {
    assertCleanError(frugal('frobnicate'), /unknown command 'frobnicate'/, 2);
    assertCleanError(frugal('inspect', 'small.onnx', '--bogus'), /bogus/, 2);
    assertCleanError(frugal('inspect'), /missing argument/, 2);
  });
});

describe('inspect, convert and run on a good model', () => {
  test('inspect --json reports the documented keys', () => {
    const r = frugal('inspect', 'small.onnx', '--json', '--shape', 'x=4x64');
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    for (const k of ['irVersion', 'opsets', 'nodeCount', 'nodeCountWithSubgraphs', 'initializerCount', 'parameterCount', 'opHistogram', 'inputs', 'outputs', 'flops']) assert.ok(k in j, k);
    assert.equal(j.nodeCount, 2);
    assert.equal(j.parameterCount, 64 * 32 + 32);
    assert.deepEqual(j.opHistogram, { Add: 1, MatMul: 1 });
    // MatMul 2·4·64·32 + Add 4·32.
    assert.equal(j.flops, 2 * 4 * 64 * 32 + 4 * 32);
  });
  test('convert to external data and back gives the same outputs', () => {
    let r = frugal('convert', 'small.onnx', '-o', 'ext/model.onnx', '--external-data', '--json');
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.equal(j.externalTensors, 1);
    assert.ok(existsSync(path.join(dir, 'ext/model.onnx_data')));
    r = frugal('convert', 'ext/model.onnx', '-o', 'inline.onnx', '--inline');
    assert.equal(r.code, 0, r.stderr);
    const a = JSON.parse(frugal('run', 'small.onnx', '--json', '--seed', '5', '--shape', 'x=3x64').stdout);
    const b = JSON.parse(frugal('run', 'ext/model.onnx', '--json', '--seed', '5', '--shape', 'x=3x64').stdout);
    const c = JSON.parse(frugal('run', 'inline.onnx', '--json', '--seed', '5', '--shape', 'x=3x64').stdout);
    assert.deepEqual(a.outputs.y.shape, [3, 32]);
    assert.deepEqual(b.outputs.y.values, a.outputs.y.values);
    assert.deepEqual(c.outputs.y.values, a.outputs.y.values);
  });
  test('run prints output summaries', () => {
    const r = frugal('run', 'small.onnx');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /y\s+float32\s+\[1,32\]/);
  });
  test('run --json gives float16 outputs as values, not bit patterns', async () => {
    const b = new GraphBuilder('half');
    const x = b.input('x', DataType.FLOAT, [2]);
    b.output(b.op('Cast', [x], { to: DataType.FLOAT16 }), 'h', DataType.FLOAT16, [2]);
    await saveModel(b.build({ opsetImports: { '': 17 } }), path.join(dir, 'half.onnx'));
    const out = JSON.parse(frugal('run', 'half.onnx', '--json', '--seed', '3').stdout) as { outputs: { h: { values: number[]; min: number; max: number } } };
    const { values, min, max } = out.outputs.h;
    assert.deepEqual([Math.min(...values), Math.max(...values)], [min, max]);
    assert.ok(values.every((v) => Math.abs(v) < 10), JSON.stringify(values));
  });
});

describe('bad input: typed one-line errors, non-zero exit, no output file', () => {
  const cases: Array<[string, (file: string) => void, RegExp]> = [
    ['an empty file', (f) => writeFileSync(f, ''), /empty/],
    ['random bytes', (f) => writeFileSync(f, Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 2654435761) >>> 24))), /Invalid ONNX|not a known|corrupt|no graph/i],
    ['a PNG file (wrong magic)', (f) => writeFileSync(f, Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.alloc(64, 7)])), /Invalid ONNX|no graph/i],
    ['a text file', (f) => writeFileSync(f, 'hello, this is not a model\n'.repeat(20)), /Invalid ONNX|no graph/i],
    ['a truncated model', (f) => writeFileSync(f, readFileSync(path.join(dir, 'small.onnx')).subarray(0, 5000)), /Invalid ONNX|truncated|runs past/i],
  ];
  for (const [what, make, pattern] of cases) {
    test(`${what}`, () => {
      const f = path.join(dir, `bad-${what.replace(/\W+/g, '-')}.onnx`);
      make(f);
      assertCleanError(frugal('inspect', f), pattern);
      const out = path.join(dir, `out-${path.basename(f)}`);
      assertCleanError(frugal('convert', f, '-o', out), pattern);
      assert.ok(!existsSync(out), 'no output file');
      assertCleanError(frugal('run', f), pattern);
      assertCleanError(frugal('inspect', f, '--json'), pattern);
    });
  }
  test('a missing file', () => {
    assertCleanError(frugal('inspect', 'nope.onnx'), /cannot read model 'nope.onnx': no such file/);
  });

  const hostile: Array<[string, string, RegExp]> = [
    ['a location that climbs out with ..', '../../../etc/passwd', /leaves the model's folder/],
    ['an absolute location', '/etc/passwd', /absolute path/],
    ['a symlink that points out of the folder', 'link.bin', /outside the model's folder/],
  ];
  for (const [what, location, pattern] of hostile) {
    test(`external data: ${what}`, () => {
      const sub = path.join(dir, `hostile-${location.replace(/\W+/g, '')}`);
      mkdirSync(sub, { recursive: true });
      if (location === 'link.bin') symlinkSync('/etc/passwd', path.join(sub, 'link.bin'));
      const f = path.join(sub, 'model.onnx');
      writeExternalModel(f, location);
      const before = readdirSync(sub).sort();
      assertCleanError(frugal('inspect', f), pattern);
      assertCleanError(frugal('convert', f, '-o', path.join(sub, 'out.onnx')), pattern);
      assertCleanError(frugal('run', f), pattern);
      assert.deepEqual(readdirSync(sub).sort(), before, 'nothing written');
    });
  }
  test('external data file missing or too short', () => {
    const sub = path.join(dir, 'short');
    mkdirSync(sub, { recursive: true });
    writeExternalModel(path.join(sub, 'model.onnx'), 'weights.bin');
    assertCleanError(frugal('inspect', path.join(sub, 'model.onnx')), /not found next to the model/);
    writeFileSync(path.join(sub, 'weights.bin'), Buffer.alloc(100));
    assertCleanError(frugal('inspect', path.join(sub, 'model.onnx')), /runs past the file's end/);
  });
  test('convert refuses to write over its input, and the input is unchanged', () => {
    const f = path.join(dir, 'small.onnx');
    const original = readFileSync(f);
    assertCleanError(frugal('convert', f, '-o', f), /refusing to write/, 2);
    assert.ok(readFileSync(f).equals(original));
  });
  test('run with a wrong input name or a bad .pb file', () => {
    assertCleanError(frugal('run', 'small.onnx', '--input', 'nosuch=x.pb'), /no such input/, 2);
    writeFileSync(path.join(dir, 'junk.pb'), Buffer.from([0xff, 0xff, 0xff]));
    assertCleanError(frugal('run', 'small.onnx', '--input', 'x=junk.pb'), /junk\.pb/);
  });
  test('no temporary files are left behind', () => {
    const leftovers = readdirSync(dir, { recursive: true }).map(String).filter((f) => f.endsWith('.tmp'));
    assert.deepEqual(leftovers, []);
  });
});

test('output piped into a reader that leaves early (frugal ... | head): quiet exit 0, no stack trace', async () => {
  const { spawn } = await import('node:child_process');
  const child = spawn(process.execPath, [path.resolve('dist/src/cli/bin.js'), 'inspect', path.resolve('models/spam-transformer.onnx')], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  // Read the first chunk, then close our end of the pipe as `head -1` does.
  child.stdout.once('data', () => child.stdout.destroy());
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  assert.equal(code, 0, `exit code (stderr: ${stderr})`);
  assert.doesNotMatch(stderr, /EPIPE|\n\s+at /);
});
