/**
 * NVIDIA GPU energy from NVML's total-energy counter (`nvmlDeviceGetTotalEnergyConsumption`, in
 * millijoules since the driver loaded; Volta and newer), called through the `koffi` FFI binding.
 * `libnvidia-ml.so.1` ships with the NVIDIA driver, not with CUDA, and is loaded lazily on first use,
 * so machines without a GPU pay nothing.
 *
 * The counter advances when the board's power sensor updates (about every 100 ms on many boards), so
 * a window shorter than that, or one over which the counter did not move, is reported as "too short
 * to measure" (null), never as zero.
 */
import { createRequire } from 'node:module';
import { FrugalError } from '../../errors.js';
import { nowMs } from '../timer.js';
import type { EnergyMeter, MeterHandle, MeterMark, MeterReading, MeterStatus } from './types.js';

export interface NvmlOptions {
  /** Shared library to load (default `libnvidia-ml.so.1`, or `nvml.dll` on Windows). */
  library?: string;
}

interface NvmlApi {
  count: number;
  /** Total energy per device in millijoules. */
  energyMj(): number[];
  names: string[];
}

const NVML_SUCCESS = 0;

function loadNvml(library: string): NvmlApi {
  const require = createRequire(import.meta.url);
  // koffi is loaded here rather than imported so that machines without a GPU never load it.
  const koffi = require('koffi') as typeof import('koffi');
  const lib = koffi.load(library);
  const init = lib.func('int nvmlInit_v2()');
  const errorString = lib.func('const char *nvmlErrorString(int result)');
  const getCount = lib.func('int nvmlDeviceGetCount_v2(_Out_ unsigned int *count)');
  const getHandle = lib.func('int nvmlDeviceGetHandleByIndex_v2(unsigned int index, _Out_ void **device)');
  const getName = lib.func('int nvmlDeviceGetName(void *device, _Out_ char *name, unsigned int length)');
  const getEnergy = lib.func('int nvmlDeviceGetTotalEnergyConsumption(void *device, _Out_ unsigned long long *energy)');
  const check = (rc: number, what: string): void => {
    if (rc !== NVML_SUCCESS) throw new FrugalError('E_UNSUPPORTED', `NVML ${what} failed: ${String(errorString(rc))} (NVML error ${rc})`);
  };
  check(init(), 'nvmlInit_v2');
  const count = [0];
  check(getCount(count), 'nvmlDeviceGetCount_v2');
  const handles: unknown[] = [];
  const names: string[] = [];
  for (let i = 0; i < count[0]!; i++) {
    const h: unknown[] = [null];
    check(getHandle(i, h), `nvmlDeviceGetHandleByIndex_v2(${i})`);
    handles.push(h[0]);
    const buf = Buffer.alloc(96);
    names.push(getName(h[0], buf, buf.length) === NVML_SUCCESS ? buf.toString('utf8').replace(/\0.*$/s, '') : `gpu${i}`);
  }
  const energyMj = (): number[] =>
    handles.map((h, i) => {
      const out: unknown[] = [0];
      check(getEnergy(h, out), `nvmlDeviceGetTotalEnergyConsumption(gpu ${i})`);
      return Number(out[0]);
    });
  energyMj(); // fails here, at probe time, on pre-Volta boards
  return { count: count[0]!, energyMj, names };
}

/** The NVML meter (source `measured:nvml`). */
export class NvmlMeter implements EnergyMeter {
  readonly name = 'nvml';
  readonly source = 'measured:nvml' as const;
  readonly device = 'gpu' as const;
  /** About one power-sensor update period. */
  readonly minWindowMs = 100;
  private readonly library: string;
  private cached: MeterStatus | undefined;
  private api: NvmlApi | undefined;

  constructor(opts: NvmlOptions = {}) {
    this.library = opts.library ?? (process.platform === 'win32' ? 'nvml.dll' : 'libnvidia-ml.so.1');
  }

  status(): MeterStatus {
    return (this.cached ??= this.probe());
  }

  private probe(): MeterStatus {
    const base = { name: this.name, source: this.source, device: this.device };
    try {
      this.api = loadNvml(this.library);
    } catch (e) {
      const msg = (e as Error).message;
      if (/cannot open|cannot load|no such file|not found/i.test(msg) && !/failed:/.test(msg)) {
        return { ...base, available: false, reason: `${this.library} not found: no NVIDIA driver is installed`, fix: 'install the NVIDIA driver (it provides libnvidia-ml.so.1)' };
      }
      if (/NOT_SUPPORTED|Not Supported|error 3\)/i.test(msg)) {
        return { ...base, available: false, reason: `this GPU has no total-energy counter (${msg}); needs Volta or newer`, fix: 'Frugal falls back to nvidia-smi power sampling' };
      }
      return { ...base, available: false, reason: `NVML: ${msg}` };
    }
    if (this.api.count === 0) return { ...base, available: false, reason: 'NVML reports no GPUs' };
    return { ...base, available: true, detail: this.api.names.map((n, i) => `gpu${i} ${n}`).join(', ') };
  }

  open(): MeterHandle {
    const st = this.status();
    if (!st.available || !this.api) throw new FrugalError('E_UNSUPPORTED', `NVML meter unavailable: ${st.reason}${st.fix ? `; fix: ${st.fix}` : ''}`);
    const api = this.api;
    return {
      mark: (): MeterMark => ({ t: nowMs(), data: api.energyMj() }),
      between: async (a, b): Promise<MeterReading> => energyBetween(this, a, b),
      close: async () => {},
    };
  }
}

function energyBetween(m: NvmlMeter, a: MeterMark, b: MeterMark): MeterReading {
  const da = a.data as number[];
  const db = b.data as number[];
  const seconds = (b.t - a.t) / 1000;
  const domains = db.map((e, i) => ({ name: `gpu${i}`, joules: (e - da[i]!) / 1000 }));
  const total = domains.reduce((s, d) => s + d.joules, 0);
  const base = { meter: m.name, source: m.source, device: m.device, domains, seconds };
  if (b.t - a.t < m.minWindowMs || total === 0) {
    return {
      ...base,
      joules: null,
      note: `too short to measure: the NVML energy counter ${total === 0 ? 'did not advance' : 'advanced'} over ${(seconds * 1000).toFixed(1)} ms, shorter than the GPU power sensor's update period (~100 ms); measure for at least 1 s`,
    };
  }
  return { ...base, joules: total };
}
