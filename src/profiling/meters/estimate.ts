/**
 * The estimate for machines without energy counters (virtual machines, no RAPL permission), labelled
 * `estimated:cpu-time-tdp` everywhere it appears:
 *
 *   joules = CPU seconds (user + system, all threads of this process) × watts per logical CPU
 *          + DRAM watts per GB × resident memory (GB, mean of the window's ends) × wall seconds
 *
 * Watts per logical CPU come from the TDP table (`tdp-table.ts`); DRAM power is 0.375 W per GB (3 W
 * per 8 GB, the rule of thumb CodeCarbon used for RAM). It attributes to this process only the energy
 * its own CPU time and memory imply: no idle or platform power, no other processes. It is an estimate
 * of order of magnitude, good for comparing models on the same machine, not a measurement.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { cpuTime, type CpuTime, nowMs, rssBytes } from '../timer.js';
import { cpuPowerFor } from './tdp-table.js';
import type { EnergyMeter, MeterHandle, MeterMark, MeterReading, MeterStatus } from './types.js';

/** 3 W per 8 GB of DRAM. */
export const DRAM_WATTS_PER_GB = 0.375;

export interface EstimateOptions {
  /** CPU model name (default: from /proc/cpuinfo or os.cpus()). */
  cpuModel?: string;
  /** Overrides the table's watts per logical CPU. */
  wattsPerCpu?: number;
  dramWattsPerGb?: number;
  /** Clocks, injectable for tests. */
  cpuTime?: () => CpuTime;
  rssBytes?: () => number;
  now?: () => number;
}

/** The CPU model name as the OS reports it. */
export function cpuModelName(): string {
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (m) return m[1]!.trim();
  } catch {
    /* not Linux */
  }
  return os.cpus()[0]?.model?.trim() || 'unknown CPU';
}

interface EstimateMark {
  cpu: CpuTime;
  rss: number;
}

/** The CPU-time × TDP estimate meter (source `estimated:cpu-time-tdp`); always available. */
export class EstimateMeter implements EnergyMeter {
  readonly name = 'estimate';
  readonly source = 'estimated:cpu-time-tdp' as const;
  readonly device = 'cpu' as const;
  readonly minWindowMs = 0;
  readonly cpuModel: string;
  readonly wattsPerCpu: number;
  readonly dramWattsPerGb: number;
  readonly basis: string;
  private readonly clock: { cpu: () => CpuTime; rss: () => number; now: () => number };

  constructor(opts: EstimateOptions = {}) {
    this.cpuModel = opts.cpuModel ?? cpuModelName();
    const p = cpuPowerFor(this.cpuModel);
    this.wattsPerCpu = opts.wattsPerCpu ?? p.wattsPerCpu;
    this.basis = opts.wattsPerCpu !== undefined ? `${opts.wattsPerCpu} W per logical CPU (given)` : `${p.basis}; source: ${p.source}`;
    this.dramWattsPerGb = opts.dramWattsPerGb ?? DRAM_WATTS_PER_GB;
    this.clock = { cpu: opts.cpuTime ?? cpuTime, rss: opts.rssBytes ?? rssBytes, now: opts.now ?? nowMs };
  }

  status(): MeterStatus {
    return {
      name: this.name,
      source: this.source,
      device: this.device,
      available: true,
      // Watts drawn per fully busy logical CPU: CPU-seconds × this = joules.
      detail: `${Number(this.wattsPerCpu.toPrecision(3))} W per busy logical CPU, i.e. J per CPU-second (${this.basis}) + ${this.dramWattsPerGb} W per GB resident`,
    };
  }

  /** The estimate's arithmetic, exposed for tests and for callers that have their own CPU times. */
  estimate(cpuSeconds: number, meanRssBytes: number, wallSeconds: number): { cpu: number; dram: number } {
    return { cpu: cpuSeconds * this.wattsPerCpu, dram: this.dramWattsPerGb * (meanRssBytes / 1e9) * wallSeconds };
  }

  open(): MeterHandle {
    return {
      mark: (): MeterMark => ({ t: this.clock.now(), data: { cpu: this.clock.cpu(), rss: this.clock.rss() } satisfies EstimateMark }),
      between: async (a, b): Promise<MeterReading> => {
        const x = a.data as EstimateMark;
        const y = b.data as EstimateMark;
        const seconds = (b.t - a.t) / 1000;
        const cpuSeconds = y.cpu.userSeconds - x.cpu.userSeconds + (y.cpu.systemSeconds - x.cpu.systemSeconds);
        const { cpu, dram } = this.estimate(cpuSeconds, (x.rss + y.rss) / 2, seconds);
        return {
          meter: this.name,
          source: this.source,
          device: this.device,
          joules: cpu + dram,
          domains: [
            { name: 'cpu', joules: cpu },
            { name: 'dram', joules: dram },
          ],
          seconds,
          note: `estimated, not measured: ${cpuSeconds.toFixed(3)} CPU-s × ${this.wattsPerCpu.toFixed(3)} W + ${this.dramWattsPerGb} W/GB × ${((x.rss + y.rss) / 2e9).toFixed(3)} GB × ${seconds.toFixed(3)} s`,
        };
      },
      close: async () => {},
    };
  }
}
