/**
 * Measurement windows for library users: `begin(name)` … `end()` around any code, nested and named,
 * reading every available meter. A monitor opens its meters once (so a sampler such as nvidia-smi
 * runs continuously and short inner windows still see its samples) and closes them in `close()`.
 *
 * ```ts
 * const monitor = new EnergyMonitor({ carbon: { region: 'FR' } });
 * const epoch = monitor.begin('epoch 1');
 * for (const batch of batches) await monitor.measure('step', () => trainStep(batch));
 * const r = await epoch.end(); // r.energy.joules, r.energy.sources, r.carbon, r.children (the steps)
 * await monitor.close();
 * ```
 *
 * The energy of a window is the sum over devices of the preferred available meter's reading (CPU:
 * RAPL, else the CPU-time estimate; GPU: NVML, else nvidia-smi), and lists each part's source; if any
 * part is estimated the whole figure is flagged `estimated`. A part too short to measure makes the
 * total null with a note, never zero.
 */
import { FrugalError } from '../errors.js';
import { type CarbonOptions, type CarbonSettings, carbonGrams, resolveCarbon } from './carbon.js';
import { createMeters, type MeterOptions, meterStatuses, selectMeters } from './meters/registry.js';
import { type EnergyMeter, type EnergySource, isMeasured, type MeterDevice, type MeterHandle, type MeterMark, type MeterReading, type MeterStatus } from './meters/types.js';
import { cpuTime, type CpuTime, cpuTimeSince, nowMs } from './timer.js';

export interface MonitorOptions {
  /** Meters to use, highest priority first per device (default: `createMeters(meterOptions, devices)`). */
  meters?: EnergyMeter[];
  meterOptions?: MeterOptions;
  /** Devices whose energy counts (default cpu and gpu). A CPU-only workload can pass ['cpu']. */
  devices?: MeterDevice[];
  carbon?: CarbonOptions;
}

export interface EnergyFigure {
  /** Total joules, or null when a part was too short to measure (see `note`). */
  joules: number | null;
  /** The source of each part, e.g. ['measured:rapl', 'measured:nvml']. */
  sources: EnergySource[];
  /** True when any part is an estimate. */
  estimated: boolean;
  /** The readings that make up the total, one per device. */
  parts: MeterReading[];
  note?: string;
}

export interface CarbonFigure {
  grams: number;
  gCo2ePerKwh: number;
  pue: number;
  region: string;
  /** e.g. `estimated:cpu-time-tdp × Ember via Our World in Data…, 2023`. */
  source: string;
}

export interface WindowResult {
  name: string;
  /** Names from the outermost window, joined by '/'. */
  path: string;
  seconds: number;
  cpu: CpuTime;
  energy: EnergyFigure;
  carbon: CarbonFigure | null;
  /** Every open meter's reading, preferred or not (for transparency). */
  readings: MeterReading[];
  children: WindowResult[];
}

interface OpenMeter {
  meter: EnergyMeter;
  handle: MeterHandle;
}

/** An open window; `end()` closes it and returns its figures. */
export class MeasurementWindow {
  private ended = false;
  readonly children: WindowResult[] = [];

  /** @internal use `EnergyMonitor.begin` */
  constructor(
    private readonly monitor: EnergyMonitor,
    readonly name: string,
    readonly path: string,
    readonly parent: MeasurementWindow | undefined,
    private readonly t0: number,
    private readonly cpu0: CpuTime,
    private readonly marks: MeterMark[],
  ) {}

  /** Ends the window. Ending twice is an error (it names the window). */
  async end(): Promise<WindowResult> {
    if (this.ended) throw new FrugalError('E_USAGE', `measurement window '${this.path}' was already ended`);
    this.ended = true;
    const marks = this.monitor.markAll();
    const t1 = nowMs();
    const cpu = cpuTimeSince(this.cpu0);
    this.monitor.closed(this);
    const result = await this.monitor.result(this, this.marks, marks, (t1 - this.t0) / 1000, cpu);
    (this.parent ? this.parent.children : this.monitor.results).push(result);
    return result;
  }
}

/** Opens meters once and hands out nested, named measurement windows. */
export class EnergyMonitor {
  readonly meters: readonly EnergyMeter[];
  readonly carbon: CarbonSettings;
  /** Completed outermost windows, in the order they ended. */
  readonly results: WindowResult[] = [];
  private open: OpenMeter[] | undefined;
  private readonly stack: MeasurementWindow[] = [];
  private preferred: Partial<Record<MeterDevice, EnergyMeter>> = {};

  constructor(opts: MonitorOptions = {}) {
    const devices = opts.devices ?? ['cpu', 'gpu'];
    this.meters = (opts.meters ?? createMeters(opts.meterOptions, devices)).filter((m) => devices.includes(m.device));
    this.carbon = resolveCarbon(opts.carbon);
  }

  /** Every meter's status: available or why not, and how to fix it. */
  statuses(): MeterStatus[] {
    return meterStatuses(this.meters);
  }

  /** The meter that supplies each device's figure. */
  preferredMeters(): Partial<Record<MeterDevice, EnergyMeter>> {
    this.start();
    return { ...this.preferred };
  }

  /** The longest minimum window among the preferred meters, in ms. */
  minWindowMs(): number {
    return Math.max(0, ...Object.values(this.preferredMeters()).map((m) => m.minWindowMs));
  }

  /** Opens the available meters (done by the first `begin`; call it early so samplers warm up). */
  start(): void {
    if (this.open) return;
    this.open = this.meters.filter((m) => m.status().available).map((m) => ({ meter: m, handle: m.open() }));
    Object.assign(this.preferred, selectMeters(this.meters));
  }

  /** Begins a window, nested in the innermost open one. */
  begin(name: string): MeasurementWindow {
    this.start();
    const parent = this.stack[this.stack.length - 1];
    const w = new MeasurementWindow(this, name, parent ? `${parent.path}/${name}` : name, parent, nowMs(), cpuTime(), this.markAll());
    this.stack.push(w);
    return w;
  }

  /** Runs `fn` inside a window and returns its value with the window's result. */
  async measure<T>(name: string, fn: () => T | Promise<T>): Promise<{ value: T; window: WindowResult }> {
    const w = this.begin(name);
    let value: T;
    try {
      value = await fn();
    } catch (e) {
      await w.end();
      throw e;
    }
    return { value, window: await w.end() };
  }

  /** Stops the meters' background work. The monitor can be started again. */
  async close(): Promise<void> {
    const open = this.open ?? [];
    this.open = undefined;
    this.preferred = {};
    await Promise.all(open.map((o) => o.handle.close()));
  }

  /** @internal */
  markAll(): MeterMark[] {
    return (this.open ?? []).map((o) => o.handle.mark());
  }

  /** @internal */
  closed(w: MeasurementWindow): void {
    const i = this.stack.lastIndexOf(w);
    if (i >= 0) this.stack.splice(i, 1);
  }

  /** @internal */
  async result(w: MeasurementWindow, a: MeterMark[], b: MeterMark[], seconds: number, cpu: CpuTime): Promise<WindowResult> {
    const open = this.open ?? [];
    const readings = await Promise.all(open.map((o, i) => o.handle.between(a[i]!, b[i]!)));
    const parts = readings.filter((r, i) => this.preferred[open[i]!.meter.device] === open[i]!.meter);
    const energy = combine(parts);
    const carbon =
      energy.joules === null
        ? null
        : {
            grams: carbonGrams(energy.joules, this.carbon),
            gCo2ePerKwh: this.carbon.gCo2ePerKwh,
            pue: this.carbon.pue,
            region: this.carbon.region,
            source: `${energy.sources.join(' + ')} × ${this.carbon.source}`,
          };
    return { name: w.name, path: w.path, seconds, cpu, energy, carbon, readings, children: w.children };
  }
}

/** Sums per-device readings into one figure that keeps every part's source. */
export function combine(parts: MeterReading[]): EnergyFigure {
  const sources = parts.map((p) => p.source);
  const estimated = !sources.every(isMeasured);
  const short = parts.filter((p) => p.joules === null);
  if (parts.length === 0) return { joules: null, sources, estimated, parts, note: 'no energy meter is open' };
  if (short.length) return { joules: null, sources, estimated, parts, note: short.map((p) => `${p.meter}: ${p.note}`).join('; ') };
  return { joules: parts.reduce((s, p) => s + p.joules!, 0), sources, estimated, parts };
}
