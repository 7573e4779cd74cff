/**
 * Folder-level import graph of src/: no two folders may import each other, directly or through others.
 * A cycle means a file lives in the wrong folder (move it where a newcomer would look) or a shared idea
 * wants its own lower-level home.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const SRC = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../src');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = path.join(dir, name);
    return statSync(p).isDirectory() ? sourceFiles(p) : name.endsWith('.ts') ? [p] : [];
  });
}

/** The top-level folder of src/ a file belongs to ('.' for files directly in src/). */
function folderOf(file: string): string {
  const rel = path.relative(SRC, file).split(path.sep);
  return rel.length > 1 ? rel[0]! : '.';
}

/** folder → folders it imports (relative imports only; type-only imports count too). */
export function folderGraph(): Map<string, Map<string, string>> {
  const graph = new Map<string, Map<string, string>>();
  for (const file of sourceFiles(SRC)) {
    const from = folderOf(file);
    const edges = graph.get(from) ?? new Map<string, string>();
    graph.set(from, edges);
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)) {
      const target = path.resolve(path.dirname(file), m[1]!.replace(/\.js$/, '.ts'));
      const to = folderOf(target);
      if (to !== from && to !== '.' && !edges.has(to)) edges.set(to, path.relative(SRC, file));
    }
  }
  return graph;
}

/** Every elementary cycle's folders, found by depth-first search from each folder. */
function findCycles(graph: Map<string, Map<string, string>>): string[][] {
  const cycles = new Map<string, string[]>();
  const walk = (start: string, node: string, trail: string[]): void => {
    for (const next of graph.get(node)?.keys() ?? []) {
      if (next === start) {
        const key = [...trail].sort().join(',');
        if (!cycles.has(key)) cycles.set(key, [...trail, start]);
      } else if (!trail.includes(next) && next > start) walk(start, next, [...trail, next]);
    }
  };
  for (const folder of graph.keys()) walk(folder, folder, [folder]);
  return [...cycles.values()];
}

test('architecture: no import cycles between the folders of src/', () => {
  const graph = folderGraph();
  assert.ok(graph.size >= 10, `expected the src/ folders, found ${[...graph.keys()].join(', ')}`);
  const cycles = findCycles(graph);
  const explain = cycles.map((c) =>
    c.slice(0, -1).map((f, i) => `${f} → ${c[i + 1]} (${graph.get(f)!.get(c[i + 1]!)})`).join(', '),
  );
  assert.deepEqual(explain, [], `folder-level import cycles:\n  ${explain.join('\n  ')}`);
});

test('architecture: src/ throws only FrugalError (typed codes; E_INTERNAL for broken invariants)', () => {
  const plain: string[] = [];
  for (const file of sourceFiles(SRC)) {
    readFileSync(file, 'utf8').split('\n').forEach((line, i) => {
      if (/throw new (Error|RangeError|TypeError|SyntaxError)\(/.test(line)) plain.push(`${path.relative(SRC, file)}:${i + 1}`);
      if (/FrugalError\('E_[A-Z_]+', `internal:/.test(line)) plain.push(`${path.relative(SRC, file)}:${i + 1} (use E_INTERNAL)`);
    });
  }
  assert.deepEqual(plain, [], 'plain errors thrown from src/');
});
