/**
 * Versioned JSON records: everything a report shows comes from one of these, and every figure in it
 * names its source. `schemaVersion` changes when a field changes meaning or is removed; readers
 * refuse records newer than they understand.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import * as ort from 'onnxruntime-node';
import { FrugalError } from '../errors.js';
import { writeFileAtomic } from '../onnx/index.js';
import { crc32 } from '../util/checksum.js';
import { frugalVersion } from '../util/version.js';
import type { CarbonSettings } from './carbon.js';
import { cpuModelName } from './meters/estimate.js';
import type { EnergySource, MeterStatus } from './meters/types.js';
import type { SampleStats } from './stats.js';

export const PROFILE_SCHEMA_VERSION = 1;
export const PROFILE_RECORD_KIND = 'frugal-profile';

export interface MachineInfo {
  platform: string;
  arch: string;
  osRelease: string;
  cpuModel: string;
  logicalCpus: number;
  totalMemoryBytes: number;
  node: string;
  onnxruntime: string;
}

export interface ProfileSettings {
  ep: string;
  threads: number | null;
  batch: number;
  warmup: number;
  /** Requested iterations, or null in duration mode. */
  iterations: number | null;
  durationSeconds: number | null;
  seed: number;
}

export interface ModelProfile {
  name: string;
  path: string | null;
  /** Concrete input shapes fed. */
  inputs: Array<{ name: string; dtype: string; shape: number[] }>;
  /** Runs in the measured loop (each of `batch` inferences). */
  iterations: number;
  inferences: number;
  /** Length of the measured loop. */
  seconds: number;
  /** The loop ran past the requested iterations/duration so the energy window was long enough to measure. */
  extendedForEnergy: boolean;
  latencyMs: SampleStats;
  /** Per-run latencies (ms); at most 10,000, an evenly spaced subsample of the sorted list beyond that. */
  latencySamplesMs: number[];
  throughput: { runsPerSecond: number; inferencesPerSecond: number };
  cpu: { userSeconds: number; systemSeconds: number; utilization: number };
  peakRssBytes: number;
  energy: {
    joules: number | null;
    joulesPerInference: number | null;
    totalWh: number | null;
    whPer1000Inferences: number | null;
    sources: EnergySource[];
    estimated: boolean;
    note?: string;
    parts: Array<{ meter: string; source: EnergySource; joules: number | null; domains: Array<{ name: string; joules: number }>; note?: string }>;
  };
  carbon: { grams: number; gramsPerInference: number; source: string } | null;
  /** 1–5 relative to the models in this record (see rating.ts), or null. */
  rating: number | null;
  accuracy: number | null;
  /** The source of each figure. */
  sources: Record<'latency' | 'throughput' | 'cpuTime' | 'peakRss' | 'energy' | 'carbon', string>;
}

export interface ProfileRecord {
  schemaVersion: number;
  kind: typeof PROFILE_RECORD_KIND;
  createdAt: string;
  frugalVersion: string;
  machine: MachineInfo;
  settings: ProfileSettings;
  carbon: CarbonSettings;
  meters: MeterStatus[];
  models: ModelProfile[];
  /**
   * Relative energy difference the ratings treated as noise (see rating.ts): 10%, or more where the
   * measured latency spread says the figures are less certain. Absent in records before it existed.
   */
  ratingTolerance?: number;
}

/** Facts about this machine for a record. */
export function machineInfo(): MachineInfo {
  const versions = (ort.env as unknown as { versions?: Record<string, string> }).versions;
  return {
    platform: process.platform,
    arch: process.arch,
    osRelease: os.release(),
    cpuModel: cpuModelName(),
    logicalCpus: os.availableParallelism?.() ?? os.cpus().length,
    totalMemoryBytes: os.totalmem(),
    node: process.version,
    onnxruntime: versions?.common ?? versions?.node ?? 'unknown',
  };
}

/** A record's header (everything but the models). */
export function newRecord(settings: ProfileSettings, carbon: CarbonSettings, meters: MeterStatus[], models: ModelProfile[] = []): ProfileRecord {
  return { schemaVersion: PROFILE_SCHEMA_VERSION, kind: PROFILE_RECORD_KIND, createdAt: new Date().toISOString(), frugalVersion: frugalVersion(), machine: machineInfo(), settings, carbon, meters, models };
}

/** Checks and returns a parsed record (E_DATA for something that is not one, E_UNSUPPORTED for a newer schema). */
export function parseRecord(json: unknown, what = 'record'): ProfileRecord {
  const r = json as Partial<ProfileRecord> | null;
  if (!r || typeof r !== 'object' || r.kind !== PROFILE_RECORD_KIND) throw new FrugalError('E_DATA', `${what} is not a Frugal profile record (kind must be '${PROFILE_RECORD_KIND}')`);
  if (typeof r.schemaVersion !== 'number') throw new FrugalError('E_DATA', `${what} has no schemaVersion`);
  if (r.schemaVersion > PROFILE_SCHEMA_VERSION) {
    throw new FrugalError('E_UNSUPPORTED', `${what} has schemaVersion ${r.schemaVersion}, newer than this Frugal reads (${PROFILE_SCHEMA_VERSION}); upgrade Frugal`);
  }
  if (!Array.isArray(r.models)) throw new FrugalError('E_DATA', `${what} has no models list`);
  return r as ProfileRecord;
}

/**
 * Writes a record as pretty JSON (atomically), with an `integrity` field last: the CRC-32 of the record's
 * own pretty JSON without that field, so `readRecord` can tell a damaged file from a good one.
 */
export async function writeRecord(file: string, record: ProfileRecord): Promise<void> {
  const body = JSON.stringify(record, null, 2);
  const integrity = { crc32: crc32(new TextEncoder().encode(body)).toString(16).padStart(8, '0') };
  await writeFileAtomic(file, JSON.stringify({ ...record, integrity }, null, 2) + '\n');
}

/**
 * Checks and removes the `integrity` field `writeRecord` adds. JSON re-serializes a parsed object to the
 * same text (same key order, numbers round-trip), so the CRC is recomputed from the parsed record. A
 * record without the field (hand-made, or from an older Frugal) is accepted as it is.
 */
function checkIntegrity(json: unknown, file: string): unknown {
  if (!json || typeof json !== 'object' || !('integrity' in json)) return json;
  const { integrity, ...rest } = json as { integrity?: { crc32?: unknown } };
  const want = integrity?.crc32;
  const got = crc32(new TextEncoder().encode(JSON.stringify(rest, null, 2))).toString(16).padStart(8, '0');
  if (want !== got) {
    throw new FrugalError('E_DATA', `record ${file} is damaged or was edited: its content does not match its checksum (integrity.crc32 ${String(want)}, content ${got}); profile again, or delete the "integrity" field to accept a hand-edited record`);
  }
  return rest;
}

/** Reads and checks a record file. */
export function readRecord(file: string): ProfileRecord {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new FrugalError('E_IO', `cannot read record ${file}: ${(e as Error).message}`, { cause: e });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new FrugalError('E_DATA', `record ${file} is not JSON: ${(e as Error).message}`, { cause: e });
  }
  return parseRecord(checkIntegrity(json, file), `record ${file}`);
}
