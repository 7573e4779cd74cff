/**
 * Training checkpoints: weights, running statistics, optimizer state and progress in one file, written
 * atomically (temporary file + rename), so a run killed while saving keeps its previous checkpoint.
 *
 * Format (little-endian):
 *   bytes 0..7   magic "FRGLCKPT"
 *   bytes 8..11  uint32 format version (1)
 *   bytes 12..15 uint32 N, the byte length of the JSON header
 *   bytes 16..   N bytes of UTF-8 JSON ({@link CheckpointHeader}), then zero padding to a multiple of 4
 *   then         the float32 payload: each tensor of `header.tensors` at its `offset` (bytes from the
 *                payload start), `count` elements.
 * Tensors are grouped: `weight` (trainable), `stat` (running statistics), `opt.<slot>` (optimizer
 * buffers, parallel to the weights, e.g. `opt.m`).
 */
import { readFile } from 'node:fs/promises';
import { FrugalError } from '../errors.js';
import { writeFileAtomic } from '../onnx/index.js';
import type { LossScalerState } from './loss-scaling.js';
import type { OptimizerState } from './optimizers.js';

const MAGIC = 'FRGLCKPT';
const VERSION = 1;

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
    tensors.push({ group, name, dims: dims.get(name) ?? [a.length], offset, count: a.length });
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
  const out = new Uint8Array(start + offset);
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
  return out;
}

/** Parses bytes written by {@link encodeCheckpoint}; `what` names the file in errors. */
export function decodeCheckpoint(bytes: Uint8Array, what = 'checkpoint'): Checkpoint {
  const bad = (why: string) => new FrugalError('E_DECODE', `${what} is not a Frugal checkpoint: ${why}`);
  if (bytes.length < 16 || new TextDecoder().decode(bytes.subarray(0, 8)) !== MAGIC) throw bad('wrong magic bytes');
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = dv.getUint32(8, true);
  if (version !== VERSION) throw new FrugalError('E_UNSUPPORTED', `${what} has checkpoint format version ${version}; this Frugal reads version ${VERSION}`);
  const n = dv.getUint32(12, true);
  if (16 + n > bytes.length) throw bad('truncated header');
  let header: CheckpointHeader;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(16, 16 + n))) as CheckpointHeader;
  } catch (e) {
    throw new FrugalError('E_DECODE', `${what}: corrupt JSON header`, { cause: e });
  }
  const start = Math.ceil((16 + n) / 4) * 4;
  const weights = new Map<string, Float32Array>();
  const stats = new Map<string, Float32Array>();
  const slots: Record<string, Float32Array[]> = {};
  for (const t of header.tensors) {
    const from = start + t.offset;
    const to = from + t.count * 4;
    if (to > bytes.length) throw bad(`tensor '${t.name}' runs past the end of the file (truncated?)`);
    const a = new Float32Array(t.count);
    new Uint8Array(a.buffer).set(bytes.subarray(from, to));
    if (t.group === 'weight') weights.set(t.name, a);
    else if (t.group === 'stat') stats.set(t.name, a);
    else if (t.group.startsWith('opt.')) (slots[t.group.slice(4)] ??= []).push(a);
  }
  return {
    progress: header.progress,
    fingerprint: header.fingerprint,
    weights,
    stats,
    optimizer: { ...header.optimizer, slots },
    ...(header.extra ? { extra: header.extra } : {}),
  };
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
