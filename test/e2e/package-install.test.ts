/**
 * The published package runs the main job (issue 11, item 3): `npm pack` the repository, install the
 * tarball into an empty project (dependencies from the npm registry or npm's cache; onnxruntime-node's
 * CUDA download skipped by its documented environment variable), and run the installed
 * `frugal demo --quick` through npm's bin link. Slow (an install plus the short demo), so it lives
 * apart from the other package checks; it skips with a message where npm cannot install.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { npmCommand } from '../helpers/npm.js';

test('npm pack + install into a fresh project + `frugal demo --quick` from the installed package', { timeout: 900_000 }, (t) => {
  const root = mkdtempSync(path.join(os.tmpdir(), 'frugal-pack-'));
  try {
    const [npm, pre] = npmCommand();
    // A clean environment for npm: nothing inherited from the `npm test` that runs us (its prefix, its
    // project config), plus the one documented switch that skips onnxruntime-node's CUDA download.
    const env: NodeJS.ProcessEnv = { ONNXRUNTIME_NODE_INSTALL: 'skip', npm_config_loglevel: 'error' };
    for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k)) env[k] = v;
    // dist/ is already built (`npm test` builds first): packing must not rebuild it under the running tests.
    const pack = spawnSync(npm, [...pre, 'pack', '--ignore-scripts', '--pack-destination', root, '--json'], { encoding: 'utf8', env });
    assert.equal(pack.status, 0, pack.stderr);
    const tarball = path.join(root, (JSON.parse(pack.stdout) as Array<{ filename: string }>)[0]!.filename);
    assert.ok(existsSync(tarball));

    const project = path.join(root, 'app');
    rmSync(project, { recursive: true, force: true });
    mkdirSync(project, { recursive: true });
    writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'frugal-install-check', version: '1.0.0', private: true }));
    const install = spawnSync(npm, [...pre, 'install', '--prefer-offline', '--no-audit', '--no-fund', '--omit=dev', tarball], { cwd: project, encoding: 'utf8', env, timeout: 600_000 });
    if (install.status !== 0 && /ENOTFOUND|ECONNREFUSED|EAI_AGAIN|ETIMEDOUT|network/i.test(install.stderr)) {
      t.skip(`npm could not reach the registry to install dependencies: ${install.stderr.split('\n').find((l) => /ERR/.test(l)) ?? ''}`);
      return;
    }
    assert.equal(install.status, 0, install.stderr);
    const bin = path.join(project, 'node_modules', '.bin', 'frugal');
    assert.ok((statSync(bin).mode & 0o111) !== 0, 'npm linked an executable frugal');
    const installed = path.join(project, 'node_modules', 'frugal');
    assert.deepEqual(readdirSync(path.join(installed, 'models')).sort(), ['mnist-cnn.onnx', 'spam-transformer.onnx']);
    assert.ok(existsSync(path.join(installed, 'LICENSE')));

    // The bin link itself, as `npx frugal` runs it (not `node bin.js`): the execute bit matters.
    const out = path.join(project, 'report');
    const demo = spawnSync(bin, ['demo', '--quick', '--json', '--out', out], { cwd: project, encoding: 'utf8', env, timeout: 600_000 });
    assert.equal(demo.status, 0, demo.stderr);
    const j = JSON.parse(demo.stdout) as { teachers: Array<{ name: string; variants: Array<{ mode: string; accuracy: number }> }> };
    assert.deepEqual(j.teachers.map((x) => x.name), ['mnist-cnn', 'spam-transformer']);
    for (const x of j.teachers) for (const v of x.variants) assert.ok(v.accuracy > 0.9, `${x.name}/${v.mode}: accuracy ${v.accuracy}`);
    assert.ok(existsSync(path.join(out, 'report.html')));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
