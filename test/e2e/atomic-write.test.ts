/**
 * Interrupted writes leave no temporary files: SIGINT/SIGTERM during a write remove them before the
 * process dies of the signal; after SIGKILL the next write to the same output removes the stale ones
 * (and only those whose process is gone). Real child processes, real signals.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { writeFileAtomic } from '../../src/onnx/index.js';
import { saveCheckpoint } from '../../src/training/checkpoint.js';
import { removeStaleTemps } from '../../src/util/atomic-write.js';

let dir: string;
const dist = (p: string) => JSON.stringify(path.resolve('dist/src', p));

before(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'frugal-atomic-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

/**
 * Starts a child that begins writing `target` through `how` and stalls mid-write (its write callback or
 * file system never finishes), printing READY once the temporary file exists.
 */
function stalledWriter(target: string, how: 'model' | 'checkpoint'): Promise<ChildProcess> {
  const script =
    how === 'model'
      ? // The model is saved with external data: two temporaries (side file and model) in flight. The
        // stall comes from a tensor whose bytes take forever to produce.
        `import { GraphBuilder } from ${dist('ir/builder.js')};
         import { DataType } from ${dist('ir/dtype.js')};
         import { saveModel } from ${dist('onnx/index.js')};
         import fs from 'node:fs';
         const b = new GraphBuilder('m');
         const w = b.constant('w', DataType.FLOAT, [4096], new Float32Array(4096));
         b.output(b.op('Identity', [w]), 'y', DataType.FLOAT, [4096]);
         const m = b.build();
         const fsp = fs.promises;
         const open = fsp.open;
         let n = 0;
         fsp.open = async (...a) => {
           const fh = await open(...a);
           if (++n === 2) { console.log('READY'); await new Promise(() => {}); }
           return fh;
         };
         setInterval(() => {}, 1000);
         await saveModel(m, process.argv[1], { externalData: true });`
      : `import { writeFileAtomic } from ${dist('onnx/index.js')};
         import fs from 'node:fs';
         const fsp = fs.promises;
         const open = fsp.open;
         fsp.open = async (...a) => { const fh = await open(...a); console.log('READY'); await new Promise(() => {}); return fh; };
         setInterval(() => {}, 1000);
         await writeFileAtomic(process.argv[1], 'checkpoint bytes');`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script, target], { stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('READY')) resolve(child);
    });
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    child.once('exit', (code) => reject(new Error(`writer exited (${code}) before it was ready: ${err}`)));
  });
}

function exited(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((r) => child.once('exit', (code, signal) => r({ code, signal })));
}

const temps = (folder: string) => readdirSync(folder).filter((f) => f.endsWith('.tmp'));

describe('temporary files of interrupted writes', () => {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    for (const how of ['model', 'checkpoint'] as const) {
      test(`${signal} during a ${how} write removes its temporary files and dies of the signal`, async () => {
        const folder = path.join(dir, `${signal}-${how}`);
        mkdirSync(folder);
        const target = path.join(folder, how === 'model' ? 'out.onnx' : 'run.ckpt');
        const child = await stalledWriter(target, how);
        assert.ok(temps(folder).length > 0, 'the write is in flight');
        child.kill(signal);
        const { code, signal: got } = await exited(child);
        // Dying of the signal is what a shell reports as 128+n (130, 143).
        assert.ok(got === signal || code === (signal === 'SIGINT' ? 130 : 143), `exit ${code} / ${got}`);
        assert.deepEqual(temps(folder), [], 'temporary files removed');
        assert.equal(existsSync(target), false, 'no half-written output');
      });
    }
  }

  test('after SIGKILL the next write to the same output removes the stale temporaries', async () => {
    const folder = path.join(dir, 'sigkill');
    mkdirSync(folder);
    const target = path.join(folder, 'out.onnx');
    const child = await stalledWriter(target, 'model');
    child.kill('SIGKILL');
    await exited(child);
    const stale = temps(folder);
    assert.equal(stale.length, 2, `SIGKILL leaves the model's and the side file's temporaries: ${stale}`);
    // A temporary of a writer that is still alive (a sleeping process) must survive.
    const alive = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)']);
    const liveTemp = `.out.onnx.${alive.pid}.0123abcd.tmp`;
    writeFileSync(path.join(folder, liveTemp), 'in flight');
    try {
      await writeFileAtomic(target, 'new model');
      assert.equal(readFileSync(target, 'utf8'), 'new model');
      // The side file's stale temporary goes with the next write of the side file.
      await writeFileAtomic(path.join(folder, 'out.onnx_data'), 'data');
      assert.deepEqual(temps(folder), [liveTemp]);
    } finally {
      alive.kill('SIGKILL');
    }
    // Once that process is gone, its temporary is stale too.
    await exited(alive);
    assert.deepEqual(await removeStaleTemps(target), [path.join(folder, liveTemp)]);
    assert.deepEqual(temps(folder), []);
  });

  test('a temporary with our own pid that is not one of our writes is stale (pid reuse)', async () => {
    const folder = path.join(dir, 'pid-reuse');
    mkdirSync(folder);
    const target = path.join(folder, 'run.ckpt');
    writeFileSync(path.join(folder, `.run.ckpt.${process.pid}.deadbeef.tmp`), 'old');
    writeFileSync(path.join(folder, '.other.ckpt.1.deadbeef.tmp'), 'not for this target');
    await saveCheckpoint(target, {
      progress: { epoch: 0, batchInEpoch: 0, step: 0, samples: 0, epochLossSum: 0, epochBatches: 0, history: [] },
      fingerprint: 'f',
      weights: new Map([['w', new Float32Array([1, 2])]]),
      stats: new Map(),
      optimizer: { kind: 'sgd', step: 0, hyper: {}, slots: {} },
    });
    assert.deepEqual(temps(folder), ['.other.ckpt.1.deadbeef.tmp']);
  });

  test('a write that fails removes its temporary file; signal hooks are gone after the write', async () => {
    const folder = path.join(dir, 'fails');
    mkdirSync(path.join(folder, 'target-is-a-folder'), { recursive: true });
    const before = process.listenerCount('SIGINT');
    await assert.rejects(writeFileAtomic(path.join(folder, 'target-is-a-folder'), 'x'), /cannot write/);
    assert.deepEqual(temps(folder), []);
    assert.equal(process.listenerCount('SIGINT'), before, 'no SIGINT listener left behind');
  });
});
