/**
 * The meter registry: a table of meter factories by name with a priority per device, after
 * onnxruntime's backend registry. For each device the highest-priority available meter supplies the
 * figure (CPU: RAPL, else the estimate; GPU: NVML, else nvidia-smi); every unavailable meter keeps its
 * reason and fix so the user sees why a figure is an estimate.
 */
import { FrugalError } from '../../errors.js';
import { type EstimateOptions, EstimateMeter } from './estimate.js';
import { type NvidiaSmiOptions, NvidiaSmiMeter } from './nvidia-smi.js';
import { type NvmlOptions, NvmlMeter } from './nvml.js';
import { type RaplOptions, RaplMeter } from './rapl.js';
import type { EnergyMeter, MeterDevice, MeterStatus } from './types.js';

/** Options for the built-in meters (paths and commands are injectable for tests). */
export interface MeterOptions {
  rapl?: RaplOptions;
  nvml?: NvmlOptions;
  nvidiaSmi?: NvidiaSmiOptions;
  estimate?: EstimateOptions;
}

export interface MeterRegistration {
  name: string;
  device: MeterDevice;
  /** Higher wins among available meters of the same device. */
  priority: number;
  create: (opts: MeterOptions) => EnergyMeter;
}

const registry = new Map<string, MeterRegistration>();

/** Adds (or replaces) a meter factory. */
export function registerMeter(reg: MeterRegistration): void {
  registry.set(reg.name, Object.freeze({ ...reg }));
}

registerMeter({ name: 'rapl', device: 'cpu', priority: 100, create: (o) => new RaplMeter(o.rapl) });
registerMeter({ name: 'estimate', device: 'cpu', priority: 0, create: (o) => new EstimateMeter(o.estimate) });
registerMeter({ name: 'nvml', device: 'gpu', priority: 100, create: (o) => new NvmlMeter(o.nvml) });
registerMeter({ name: 'nvidia-smi', device: 'gpu', priority: 50, create: (o) => new NvidiaSmiMeter(o.nvidiaSmi) });

/** The registered meters, highest priority first within each device. */
export function registeredMeters(): MeterRegistration[] {
  return [...registry.values()].sort((a, b) => a.device.localeCompare(b.device) || b.priority - a.priority);
}

/** Creates every registered meter for the given devices (default: cpu and gpu), highest priority first. */
export function createMeters(opts: MeterOptions = {}, devices: readonly MeterDevice[] = ['cpu', 'gpu']): EnergyMeter[] {
  return registeredMeters()
    .filter((r) => devices.includes(r.device))
    .map((r) => r.create(opts));
}

/** The status of each meter (probing it on first call). */
export function meterStatuses(meters: readonly EnergyMeter[]): MeterStatus[] {
  return meters.map((m) => m.status());
}

/**
 * For each device, the first available meter in `meters` (callers pass them highest priority first,
 * as `createMeters` returns them). Throws E_UNSUPPORTED when a device in `required` has none.
 */
export function selectMeters(meters: readonly EnergyMeter[], required: readonly MeterDevice[] = []): Partial<Record<MeterDevice, EnergyMeter>> {
  const out: Partial<Record<MeterDevice, EnergyMeter>> = {};
  for (const m of meters) if (!out[m.device] && m.status().available) out[m.device] = m;
  for (const d of required) {
    if (!out[d]) {
      const why = meters.filter((m) => m.device === d).map((m) => `${m.name}: ${m.status().reason ?? 'unavailable'}`);
      throw new FrugalError('E_UNSUPPORTED', `no ${d} energy meter is available (${why.join('; ') || 'none registered'})`);
    }
  }
  return out;
}
