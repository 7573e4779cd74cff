/**
 * The energy-meter contract. A meter reads one kind of counter (RAPL, NVML, nvidia-smi power samples,
 * or the CPU-time estimate); it says whether it can run here and, if not, why and how to fix it. An
 * open meter hands out cheap synchronous marks; the energy between two marks is a reading that
 * carries its source, so an estimate is never shown as a measurement.
 */

/** Where an energy figure comes from. `measured:*` read a hardware counter or sensor; `estimated:*` did not. */
export type EnergySource = 'measured:rapl' | 'measured:nvml' | 'measured:nvidia-smi' | 'estimated:cpu-time-tdp';

export type MeterDevice = 'cpu' | 'gpu';

/** True for sources that read hardware. */
export const isMeasured = (s: EnergySource): boolean => s.startsWith('measured:');

export interface MeterStatus {
  name: string;
  source: EnergySource;
  device: MeterDevice;
  available: boolean;
  /** Why the meter cannot run here (only when unavailable). */
  reason?: string;
  /** What would make it available (only when unavailable and something can be done). */
  fix?: string;
  /** What it reads when available (domains, devices, constants). */
  detail?: string;
}

export interface DomainEnergy {
  /** e.g. `package-0`, `package-0/dram`, `gpu0`, `cpu`, `dram`. */
  name: string;
  joules: number;
}

export interface MeterReading {
  meter: string;
  source: EnergySource;
  device: MeterDevice;
  /** Energy over the window in joules, or null when the window was too short for this meter. */
  joules: number | null;
  /** Per-domain figures (informational; `joules` is the meter's total without double counting). */
  domains: DomainEnergy[];
  /** Window length in seconds. */
  seconds: number;
  /** Why `joules` is null, or how an estimate was made. */
  note?: string;
}

/** An opaque snapshot taken by `MeterHandle.mark()`. */
export interface MeterMark {
  /** `performance.now()` when taken. */
  readonly t: number;
  readonly data: unknown;
}

/** An open meter. Marks are synchronous and cheap (a few file reads at most). */
export interface MeterHandle {
  mark(): MeterMark;
  /** Energy between two marks of this handle (`a` before `b`); may wait for a late sensor sample. */
  between(a: MeterMark, b: MeterMark): Promise<MeterReading>;
  /** Stops background sampling. Marks taken before remain usable with `between` only until then. */
  close(): Promise<void>;
}

export interface EnergyMeter {
  readonly name: string;
  readonly source: EnergySource;
  readonly device: MeterDevice;
  /**
   * Shortest window this meter can measure, in ms; shorter windows read as null ("too short to
   * measure") rather than zero. The profiler extends its measured loop to at least 10× this.
   */
  readonly minWindowMs: number;
  /** Whether the meter works here (cached after the first call). */
  status(): MeterStatus;
  /** Opens the meter; throws E_UNSUPPORTED with the status's reason when unavailable. */
  open(): MeterHandle;
}
