/**
 * The search's on-disk cache: each evaluated candidate (and each trained pipeline prefix) is stored as
 * `<key>.onnx` plus `<key>.json`, keyed by a hash of (input model bytes, pipeline, seed, training
 * settings), so a rerun or a resumed search does not retrain it. Both files are written atomically, the
 * JSON last, and the JSON carries CRC-32s of the model bytes and of its own body: an entry that fails
 * either check (a torn copy, bit rot, an edit) is a miss and is rewritten, never trusted.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../onnx/index.js';
import { crc32 } from '../util/checksum.js';

export const CACHE_SCHEMA_VERSION = 1;

/** What the cache remembers of a candidate besides its model. */
export interface CacheEntryInfo {
  pipeline: string;
  /** Validation accuracy, when the entry is a whole candidate (absent for a trained prefix). */
  validationAccuracy?: number;
  validationCount?: number;
  /** Seconds the pipeline took when it was first built. */
  buildSeconds: number;
}

const hex = (n: number): string => (n >>> 0).toString(16).padStart(8, '0');

/** SHA-256 of bytes, hex. */
export function sha256(bytes: Uint8Array | string): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** The cache key of (model, pipeline, seed, settings): anything that changes the result changes the key. */
export function cacheKey(modelHash: string, pipeline: string, seed: number, settings: Record<string, unknown>): string {
  return sha256(JSON.stringify({ v: CACHE_SCHEMA_VERSION, modelHash, pipeline, seed, settings })).slice(0, 32);
}

export class CandidateCache {
  constructor(readonly dir: string) {}

  private files(key: string): { model: string; info: string } {
    return { model: path.join(this.dir, `${key}.onnx`), info: path.join(this.dir, `${key}.json`) };
  }

  /** The entry's model bytes and info, or undefined when absent or failing its checksums. */
  get(key: string): { bytes: Uint8Array; info: CacheEntryInfo } | undefined {
    const f = this.files(key);
    if (!existsSync(f.info) || !existsSync(f.model)) return undefined;
    try {
      const json = JSON.parse(readFileSync(f.info, 'utf8')) as { body: string; crc32: string };
      if (typeof json.body !== 'string' || hex(crc32(new TextEncoder().encode(json.body))) !== json.crc32) return undefined;
      const body = JSON.parse(json.body) as { key: string; modelCrc32: string; modelBytes: number; info: CacheEntryInfo };
      if (body.key !== key) return undefined;
      const bytes = new Uint8Array(readFileSync(f.model));
      if (bytes.byteLength !== body.modelBytes || hex(crc32(bytes)) !== body.modelCrc32) return undefined;
      return { bytes, info: body.info };
    } catch {
      return undefined;
    }
  }

  /** Stores an entry: the model first, then the JSON that vouches for it. */
  async put(key: string, bytes: Uint8Array, info: CacheEntryInfo): Promise<void> {
    mkdirSync(this.dir, { recursive: true });
    const f = this.files(key);
    await writeFileAtomic(f.model, bytes);
    const body = JSON.stringify({ key, modelCrc32: hex(crc32(bytes)), modelBytes: bytes.byteLength, info });
    await writeFileAtomic(f.info, JSON.stringify({ schemaVersion: CACHE_SCHEMA_VERSION, body, crc32: hex(crc32(new TextEncoder().encode(body))) }));
  }
}
