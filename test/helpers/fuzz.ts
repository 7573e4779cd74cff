/**
 * Seeded mutations of ONNX files for fuzz tests: bit flips, overwrites, truncation, insertion, and
 * forged protobuf length fields (found by walking the wire format), each with a description that lets a
 * failure be replayed.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Rng } from '../../src/util/rng.js';
import { Reader, Writer, WIRE_LEN, concatChunks } from '../../src/onnx/wire.js';

/** Where a length-delimited field's length varint sits. */
export interface LenField {
  at: number;
  size: number;
  value: number;
}

/** Collects length fields, descending into payloads that parse as messages (bounded depth and count). */
export function collectLengths(buf: Uint8Array, start: number, end: number, depth: number, out: LenField[]): boolean {
  const r = new Reader(buf, start, end);
  const found: LenField[] = [];
  const nested: [number, number][] = [];
  try {
    while (r.pos < end) {
      const tagAt = r.pos;
      const wt = r.tag() & 7;
      if (wt !== WIRE_LEN) {
        r.skip(wt, tagAt);
        continue;
      }
      const at = r.pos;
      const e = r.lengthEnd();
      found.push({ at, size: r.pos - at, value: e - r.pos });
      nested.push([r.pos, e]);
      r.pos = e;
    }
  } catch {
    return false; // not a message: a string or raw bytes
  }
  out.push(...found);
  if (depth < 12 && out.length < 20_000) for (const [s, e] of nested) if (e > s) collectLengths(buf, s, e, depth + 1, out);
  return true;
}

function varint(v: number): Uint8Array {
  const w = new Writer(16);
  w.varint64(v >>> 0, Math.floor(v / 4294967296) >>> 0);
  return concatChunks(w.finish());
}

/** Applies one seeded mutation; returns the mutated bytes and a description. */
export function mutate(rng: Rng, src: Uint8Array, lens: LenField[]): [Uint8Array, string] {
  const kind = rng.int(lens.length > 0 ? 5 : 4);
  const b = src.slice();
  switch (kind) {
    case 0: {
      const flips: number[] = [];
      for (let i = 1 + rng.int(4); i > 0; i--) {
        const bit = rng.int(b.length * 8);
        b[bit >> 3]! ^= 1 << (bit & 7);
        flips.push(bit);
      }
      return [b, `bit flips at bits ${flips.join(',')}`];
    }
    case 1: {
      const at = rng.int(b.length);
      const n = 1 + rng.int(8);
      for (let i = 0; i < n && at + i < b.length; i++) b[at + i] = rng.int(256);
      return [b, `overwrite ${n} bytes at ${at}`];
    }
    case 2: {
      const cut = rng.int(b.length);
      return [b.subarray(0, cut), `truncate to ${cut} bytes`];
    }
    case 3: {
      const at = rng.int(b.length);
      const n = 1 + rng.int(16);
      const junk = new Uint8Array(n).map(() => rng.int(256));
      return [concatChunks([b.subarray(0, at), junk, b.subarray(at)]), `insert ${n} random bytes at ${at}`];
    }
    default: {
      const f = lens[rng.int(lens.length)]!;
      const choices = [0xffffffff, 2 ** 40, 2 ** 31, 2 ** 32, 2 ** 63, 0, f.value + 1, f.value - 1, f.value + 2, f.value + 7, f.value * 2];
      const forged = Math.max(0, choices[rng.int(choices.length)]!);
      return [concatChunks([b.subarray(0, f.at), varint(forged), b.subarray(f.at + f.size)]), `length at byte ${f.at} (was ${f.value}) forged to ${forged}`];
    }
  }
}

/** Real models under `data/models` (sorted), then the listed conformance models that exist. */
export function modelFiles(data: string, conformance: readonly string[]): string[] {
  const walk = (dir: string): string[] =>
    fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
      e.isDirectory() ? walk(path.join(dir, e.name)) : e.name.endsWith('.onnx') ? [path.join(dir, e.name)] : []);
  const models = fs.existsSync(path.join(data, 'models')) ? walk(path.join(data, 'models')).sort() : [];
  return [...models, ...conformance.map((p) => path.join(data, p)).filter((p) => fs.existsSync(p))];
}

