/**
 * Training checkpoints: weights, running statistics, optimizer state and progress in one file, written
 * atomically (temporary file + rename), so a run killed while saving keeps its previous checkpoint.
 *
 * Format (little-endian):
 *   bytes 0..7   magic "FRGLCKPT"
 *   bytes 8..11  uint32 format version (2)
 *   bytes 12..15 uint32 N, the byte length of the JSON header
 *   bytes 16..   N bytes of UTF-8 JSON ({@link CheckpointHeader}), then zero padding to a multiple of 4
 *   then         the float32 payload: each tensor of `header.tensors` at its `offset` (bytes from the
 *                payload start), `count` elements
 *   last 4 bytes (version 2) uint32 CRC-32 of every byte before it.
 * Tensors are grouped: `weight` (trainable), `stat` (running statistics), `opt.<slot>` (optimizer
 * buffers, parallel to the weights, e.g. `opt.m`). Version 2 also stores each tensor's CRC-32 in its
 * header entry, so a damaged file is refused naming the tensor hit. Version 1 files (no checksums, the
 * format before) still load: they cannot be verified, and the next save rewrites them as version 2.
 */
import { readFile } from 'node:fs/promises';
import { FrugalError } from '../errors.js';
import { writeFileAtomic } from '../onnx/index.js';
import type { LossScalerState } from './loss-scaling.js';
import type { OptimizerState } from './optimizers/reference.js';
import { crc32 } from '../util/checksum.js';

const MAGIC = 'FRGLCKPT';
const VERSION = 2;
/** Oldest version this reader still loads (version 1 carries no checksums). */
const OLDEST = 1;

/** Where a run stands; enough to continue it exactly. */
export interface TrainingProgress {
  /** 0-based epoch in progress. */
  epoch: number;
  /** Micro-batches of `epoch` already consumed (the shuffle of an epoch is a function of seed and epoch). */
  batchInEpoch: number;
  /** Optimizer steps taken (also the schedule's step). */
  step: number;
  /** Training examples consumed in the whole run. */
  samples: number;
  /** Sum of micro-batch losses and their count in the current epoch (for the epoch's mean loss). */
  epochLossSum: number;
  epochBatches: number;
  /** Finished epochs' summaries. */
  history: Array<{ epoch: number; loss: number; accuracy?: number }>;
  /** Mixed precision: the dynamic loss scaler's state. */
  lossScale?: LossScalerState;
}

export interface CheckpointTensorEntry {
  group: string;
  name: string;
  dims: number[];
  offset: number;
  count: number;
  /** CRC-32 of the tensor's bytes (version 2). */
  crc32?: number;
}

export interface CheckpointHeader {
  format: 'frugal-checkpoint';
  version: number;
  progress: TrainingProgress;
  /** Optimizer kind, steps and hyper-parameters (its buffers are tensors in group `opt.<slot>`). */
  optimizer: Omit<OptimizerState, 'slots'>;
  /** Identifies the run configuration; resuming with a different one is refused. */
  fingerprint: string;
  tensors: CheckpointTensorEntry[];
  /** Free-form extras (e.g. the tokenizer a text run fitted). */
  extra?: Record<string, unknown>;
}

export interface Checkpoint {
  progress: TrainingProgress;
  fingerprint: string;
  weights: Map<string, Float32Array>;
  stats: Map<string, Float32Array>;
  optimizer: OptimizerState;
  extra?: Record<string, unknown>;
}

/** Serializes a checkpoint to bytes (see the format above). */
export function encodeCheckpoint(c: Checkpoint, dims: Map<string, number[]> = new Map()): Uint8Array {
  const tensors: CheckpointTensorEntry[] = [];
  const arrays: Float32Array[] = [];
  let offset = 0;
  const add = (group: string, name: string, a: Float32Array) => {
    const crc = crc32(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
    tensors.push({ group, name, dims: dims.get(name) ?? [a.length], offset, count: a.length, crc32: crc });
    arrays.push(a);
    offset += a.byteLength;
  };
  for (const [n, a] of c.weights) add('weight', n, a);
  for (const [n, a] of c.stats) add('stat', n, a);
  const names = [...c.weights.keys()];
  for (const [slot, list] of Object.entries(c.optimizer.slots)) list.forEach((a, i) => add(`opt.${slot}`, names[i] ?? String(i), a));
  const header: CheckpointHeader = {
    format: 'frugal-checkpoint',
    version: VERSION,
    progress: c.progress,
    optimizer: { kind: c.optimizer.kind, step: c.optimizer.step, hyper: c.optimizer.hyper },
    fingerprint: c.fingerprint,
    tensors,
    ...(c.extra ? { extra: c.extra } : {}),
  };
  const json = new TextEncoder().encode(JSON.stringify(header));
  const start = Math.ceil((16 + json.length) / 4) * 4;
  const out = new Uint8Array(start + offset + 4);
  out.set(new TextEncoder().encode(MAGIC), 0);
  const dv = new DataView(out.buffer);
  dv.setUint32(8, VERSION, true);
  dv.setUint32(12, json.length, true);
  out.set(json, 16);
  let p = start;
  for (const a of arrays) {
    // Byte copy (not a typed-array view) keeps the layout little-endian-as-written on any host we run on.
    out.set(new Uint8Array(a.buffer, a.byteOffset, a.byteLength), p);
    p += a.byteLength;
  }
  dv.setUint32(p, crc32(out.subarray(0, p)), true);
  return out;
}

/** Parses bytes written by {@link encodeCheckpoint}; `what` names the file in errors. */
export function decodeCheckpoint(bytes: Uint8Array, what = 'checkpoint'): Checkpoint {
  const bad = (why: string) => new FrugalError('E_DECODE', `${what} is not a Frugal checkpoint: ${why}`);
  if (bytes.length < 16 || new TextDecoder().decode(bytes.subarray(0, 8)) !== MAGIC) throw bad('wrong magic bytes');
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = dv.getUint32(8, true);
  if (version < OLDEST || version > VERSION) {
    throw new FrugalError('E_UNSUPPORTED', `${what} has checkpoint format version ${version}; this Frugal reads versions ${OLDEST} to ${VERSION}${version > VERSION ? ' (upgrade Frugal)' : ''}`);
  }
  const n = dv.getUint32(12, true);
  const end = version >= 2 ? bytes.length - 4 : bytes.length;
  if (16 + n > end) throw bad('truncated header');
  // Damage anywhere (header, padding, payload) changes the file's CRC; which tensor it hit is told below.
  const fileIntact = version < 2 || crc32(bytes.subarray(0, end)) === dv.getUint32(end, true);
  let header: CheckpointHeader;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(16, 16 + n))) as CheckpointHeader;
  } catch (e) {
    throw new FrugalError('E_DECODE', `${what} is damaged: its header is not valid JSON${fileIntact ? '' : ' (the file checksum does not match either)'}; resume from another checkpoint or start over`, { cause: e });
  }
  if (!header || !Array.isArray(header.tensors)) throw damaged(what, 'its header lists no tensors');
  const start = Math.ceil((16 + n) / 4) * 4;
  const weights = new Map<string, Float32Array>();
  const stats = new Map<string, Float32Array>();
  const slots: Record<string, Float32Array[]> = {};
  for (const t of header.tensors) {
    if (!t || typeof t.group !== 'string' || typeof t.name !== 'string' || typeof t.offset !== 'number') {
      throw fileIntact ? bad(`a tensor entry of the header is malformed`) : damaged(what, 'a tensor entry of its header is malformed');
    }
    const from = start + t.offset;
    const to = from + t.count * 4;
    if (!Number.isSafeInteger(t.count) || t.count < 0 || !Number.isSafeInteger(from) || !Number.isSafeInteger(to) || from < start || to > end) {
      throw fileIntact ? bad(`tensor '${t.name}' runs past the end of the file (truncated?)`) : damaged(what, `tensor '${t.name}' lies outside the file (truncated, or the header is damaged)`);
    }
    const a = new Float32Array(t.count);
    const raw = new Uint8Array(a.buffer);
    raw.set(bytes.subarray(from, to));
    if (version >= 2 && crc32(raw) !== t.crc32) throw damaged(what, `the bytes of ${describeEntry(t)} fail their checksum`);
    if (t.group === 'weight') weights.set(t.name, a);
    else if (t.group === 'stat') stats.set(t.name, a);
    else if (t.group.startsWith('opt.')) (slots[t.group.slice(4)] ??= []).push(a);
  }
  // Every tensor checked out, so the damage is in the header (progress, hyper-parameters...) or padding.
  if (!fileIntact) throw damaged(what, 'its header or padding fails the file checksum');
  return {
    progress: header.progress,
    fingerprint: header.fingerprint,
    weights,
    stats,
    optimizer: { ...header.optimizer, slots },
    ...(header.extra ? { extra: header.extra } : {}),
  };
}

function describeEntry(t: CheckpointTensorEntry): string {
  const kind = t.group === 'weight' ? 'weight' : t.group === 'stat' ? 'running statistic' : `optimizer state '${t.group.slice(4)}' of`;
  return `${kind} '${t.name}'`;
}

function damaged(what: string, why: string): FrugalError {
  return new FrugalError('E_DECODE', `${what} is damaged: ${why}; it was changed after it was written (disk or copy error?). Resume from another checkpoint or start over`);
}

/** Writes a checkpoint atomically. */
export async function saveCheckpoint(file: string, c: Checkpoint, dims?: Map<string, number[]>): Promise<void> {
  await writeFileAtomic(file, encodeCheckpoint(c, dims));
}

/** Reads a checkpoint file (E_IO when missing, E_DECODE when it is not one). */
export async function loadCheckpoint(file: string): Promise<Checkpoint> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(file);
  } catch (e) {
    throw new FrugalError('E_IO', `cannot read checkpoint '${file}': ${(e as Error).message}`, { cause: e });
  }
  return decodeCheckpoint(bytes, `checkpoint '${file}'`);
}
