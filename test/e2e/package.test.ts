/**
 * What `npm pack` publishes and what the build leaves behind (issue 11, items 3, 4 and 6): the packed
 * file list holds the teachers, the LICENSE and an executable CLI; every production dependency accepts
 * the oldest Node that `engines` claims. The slow end-to-end check (install the tarball, run the demo)
 * is test/package-install.test.ts.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { test } from 'node:test';
import { npmCommand } from '../helpers/npm.js';


test('the build leaves the CLI executable with a node shebang (npm bin links and npx need the bit)', () => {
  // `npm test` builds first (pretest → npm run build, which deletes dist/ and writes it again).
  const bin = 'dist/src/cli/bin.js';
  assert.ok((statSync(bin).mode & 0o111) === 0o111, `${bin} mode ${(statSync(bin).mode & 0o777).toString(8)}: run 'npm run build'`);
  assert.match(readFileSync(bin, 'utf8'), /^#!\/usr\/bin\/env node\n/);
});

test('LICENSE: MIT, Frugal contributors, as package.json says', () => {
  const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { license: string };
  assert.equal(pkg.license, 'MIT');
  const text = readFileSync('LICENSE', 'utf8');
  assert.match(text, /^MIT License/);
  assert.match(text, /Copyright \(c\) \d{4} Frugal contributors/);
});

test('npm pack publishes the teachers, the LICENSE, the README and the built CLI, and no tests or sources', () => {
  const [cmd, pre] = npmCommand();
  const r = spawnSync(cmd, [...pre, 'pack', '--dry-run', '--json', '--ignore-scripts'], { encoding: 'utf8', env: { ...process.env, npm_config_loglevel: 'error' } });
  assert.equal(r.status, 0, r.stderr);
  const files = (JSON.parse(r.stdout) as Array<{ files: Array<{ path: string; mode: number }> }>)[0]!.files;
  const paths = new Set(files.map((f) => f.path));
  for (const f of ['models/mnist-cnn.onnx', 'models/spam-transformer.onnx', 'LICENSE', 'README.md', 'package.json', 'dist/src/cli/bin.js', 'dist/src/index.js', 'dist/src/index.d.ts']) {
    assert.ok(paths.has(f), `${f} is packed`);
  }
  assert.ok(![...paths].some((p) => p.startsWith('dist/test/') || p.startsWith('src/') || p.startsWith('test/')), 'tests and TypeScript sources stay out');
  const bin = files.find((f) => f.path === 'dist/src/cli/bin.js')!;
  assert.ok((bin.mode & 0o111) !== 0, 'the packed CLI keeps its execute bit');
});

/** A minimal semver check: does version `v` satisfy `range` (`>=x`, `^x`, `x.y.z`, `*`, `a || b`, `a b`)? */
function satisfies(v: readonly number[], range: string): boolean {
  const parse = (s: string): number[] => s.replace(/^v/, '').split('.').map((x) => (/^\d+$/.test(x) ? Number(x) : 0));
  const cmp = (a: readonly number[], b: readonly number[]): number => {
    for (let i = 0; i < 3; i++) if ((a[i] ?? 0) !== (b[i] ?? 0)) return (a[i] ?? 0) - (b[i] ?? 0);
    return 0;
  };
  const one = (c: string): boolean => {
    const m = /^(>=|<=|>|<|\^|~|=)?\s*(.*)$/.exec(c)!;
    const w = parse(m[2]!);
    const d = cmp(v, w);
    switch (m[1]) {
      case '>=': return d >= 0;
      case '>': return d > 0;
      case '<=': return d <= 0;
      case '<': return d < 0;
      case '^': return d >= 0 && v[0] === w[0];
      case '~': return d >= 0 && v[0] === w[0] && v[1] === w[1];
      default:
        if (m[2] === '*' || m[2] === '') return true;
        return /x/i.test(m[2]!) ? v[0] === w[0] : d === 0;
    }
  };
  return range.split('||').some((alt) => alt.trim().replace(/(>=|<=|>|<|\^|~|=)\s+/g, '$1').split(/\s+/).filter(Boolean).every(one));
}

test("every production dependency runs on the oldest Node that package.json's engines accepts", () => {
  const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { engines: { node: string } };
  const lock = JSON.parse(readFileSync('package-lock.json', 'utf8')) as { packages: Record<string, { dev?: boolean; engines?: { node?: string } | string[]; version?: string }> };
  // The oldest version each alternative of our range admits (`^20.19.0 || >=22.12.0` → 20.19.0, 22.12.0).
  const floors = pkg.engines.node.split('||').map((a) => /(\d+)\.?(\d+)?\.?(\d+)?/.exec(a)!.slice(1, 4).map((x) => Number(x ?? 0)));
  assert.ok(satisfies(process.versions.node.split('.').map(Number), pkg.engines.node), `this Node ${process.version} is in engines ${pkg.engines.node}`);
  const bad: string[] = [];
  for (const [where, p] of Object.entries(lock.packages)) {
    const node = p.engines && !Array.isArray(p.engines) ? p.engines.node : undefined;
    if (!where || p.dev || !node) continue;
    for (const f of floors) if (!satisfies(f, node)) bad.push(`${where.replace(/^.*node_modules\//, '')}@${p.version} needs node ${node}, engines admits ${f.join('.')}`);
  }
  assert.deepEqual(bad, []);
  assert.ok(satisfies([20, 19, 0], '^20.19.0 || ^22.12.0 || >=23') && !satisfies([20, 0, 0], '>=22') && satisfies([22, 12, 0], '>=20'));
});
