/**
 * NVIDIA GPU energy from `nvidia-smi` power sampling, for GPUs or drivers without NVML's energy
 * counter: `nvidia-smi --query-gpu=index,power.draw --format=csv,noheader,nounits -lms 100` runs for
 * as long as the meter is open, and energy is the integral of power over time (trapezoids between
 * samples, clipped to the window; the nearest sample's power is held at the edges).
 *
 * The board's power sensor updates about every 100 ms, so a window must hold at least two samples to
 * be measured; shorter windows are reported as "too short to measure" (null), never as zero.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { FrugalError } from '../../errors.js';
import { nowMs } from '../timer.js';
import type { EnergyMeter, MeterHandle, MeterMark, MeterReading, MeterStatus } from './types.js';

export interface NvidiaSmiOptions {
  /** The command (default `nvidia-smi`, looked up on PATH); tests point it at a fake script. */
  command?: string;
  /** Sampling period in ms (default 100, the sensor's own period). */
  intervalMs?: number;
}

interface Sample {
  t: number;
  watts: number;
}

/** Parses one `index, power.draw` line (a bare power value means GPU 0); undefined for `[N/A]` or noise. */
export function parsePowerLine(line: string): { gpu: number; watts: number } | undefined {
  const parts = line.split(',').map((s) => s.trim());
  const [gpuText, wattText] = parts.length >= 2 ? [parts[0]!, parts[1]!] : ['0', parts[0]!];
  const gpu = Number(gpuText);
  const watts = Number(wattText);
  if (!/^\d+$/.test(gpuText) || wattText === '' || !Number.isFinite(watts) || watts < 0) return undefined;
  return { gpu, watts };
}

/** ∫ power dt over [t0, t1] in joules from time-ordered samples (ms, W), holding the edge samples' power. */
export function integratePower(samples: readonly Sample[], t0: number, t1: number): number {
  if (samples.length === 0 || t1 <= t0) return 0;
  const powerAt = (t: number): number => {
    if (t <= samples[0]!.t) return samples[0]!.watts;
    const last = samples[samples.length - 1]!;
    if (t >= last.t) return last.watts;
    let i = 1;
    while (samples[i]!.t < t) i++;
    const p = samples[i - 1]!;
    const q = samples[i]!;
    return p.watts + ((q.watts - p.watts) * (t - p.t)) / (q.t - p.t);
  };
  const points = [t0, ...samples.map((s) => s.t).filter((t) => t > t0 && t < t1), t1];
  let mJ = 0;
  for (let k = 1; k < points.length; k++) mJ += ((powerAt(points[k - 1]!) + powerAt(points[k]!)) / 2) * (points[k]! - points[k - 1]!);
  return mJ / 1000;
}

/** The nvidia-smi sampling meter (source `measured:nvidia-smi`). */
export class NvidiaSmiMeter implements EnergyMeter {
  readonly name = 'nvidia-smi';
  readonly source = 'measured:nvidia-smi' as const;
  readonly device = 'gpu' as const;
  readonly minWindowMs: number;
  private readonly command: string;
  private readonly intervalMs: number;
  private cached: MeterStatus | undefined;

  constructor(opts: NvidiaSmiOptions = {}) {
    this.command = opts.command ?? 'nvidia-smi';
    this.intervalMs = opts.intervalMs ?? 100;
    this.minWindowMs = 2 * this.intervalMs;
  }

  status(): MeterStatus {
    return (this.cached ??= this.probe());
  }

  private probe(): MeterStatus {
    const base = { name: this.name, source: this.source, device: this.device };
    let out: string;
    try {
      out = execFileSync(this.command, ['--query-gpu=index,name,power.draw', '--format=csv,noheader,nounits'], { encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (e) {
      const err = e as NodeJS.ErrnoException & { stderr?: string; stdout?: string; status?: number };
      if (err.code === 'ENOENT') return { ...base, available: false, reason: `${this.command} not found on PATH: no NVIDIA driver is installed`, fix: 'install the NVIDIA driver (it provides nvidia-smi)' };
      const text = `${err.stdout ?? ''}${err.stderr ?? ''}`.trim().split('\n')[0] || err.message;
      return { ...base, available: false, reason: `${this.command} failed (exit ${err.status ?? '?'}): ${text}`, fix: 'check that the NVIDIA driver is loaded (`nvidia-smi` should list the GPUs)' };
    }
    const rows = out.trim().split('\n').filter(Boolean).map((l) => l.split(',').map((s) => s.trim()));
    if (rows.length === 0) return { ...base, available: false, reason: `${this.command} lists no GPUs` };
    const noPower = rows.filter((r) => !Number.isFinite(Number(r[2])));
    if (noPower.length === rows.length) return { ...base, available: false, reason: `${this.command} reports no power reading (power.draw is '${noPower[0]![2]}') for ${rows.map((r) => r[1]).join(', ')}` };
    return { ...base, available: true, detail: rows.map((r) => `gpu${r[0]} ${r[1]}`).join(', ') + `, sampled every ${this.intervalMs} ms` };
  }

  open(): MeterHandle {
    const st = this.status();
    if (!st.available) throw new FrugalError('E_UNSUPPORTED', `nvidia-smi meter unavailable: ${st.reason}${st.fix ? `; fix: ${st.fix}` : ''}`);
    const samples = new Map<number, Sample[]>();
    let exited = false;
    const waiters = new Set<() => void>();
    const child: ChildProcess = spawn(this.command, ['--query-gpu=index,power.draw', '--format=csv,noheader,nounits', '-lms', String(this.intervalMs)], { stdio: ['ignore', 'pipe', 'ignore'] });
    child.on('error', () => (exited = true));
    child.on('exit', () => {
      exited = true;
      for (const w of waiters) w();
    });
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const p = parsePowerLine(line);
      if (!p) return;
      let list = samples.get(p.gpu);
      if (!list) samples.set(p.gpu, (list = []));
      list.push({ t: nowMs(), watts: p.watts });
      for (const w of waiters) w();
    });
    // The sampler must not keep a finished program alive.
    child.unref();
    (child.stdout as unknown as { unref?: () => void }).unref?.();
    const covered = (t: number): boolean => samples.size > 0 && [...samples.values()].every((l) => l[l.length - 1]!.t >= t);
    const waitFor = (t: number): Promise<void> =>
      new Promise((resolve) => {
        const deadline = setTimeout(done, 3 * this.intervalMs + 1000);
        function done(): void {
          clearTimeout(deadline);
          waiters.delete(check);
          resolve();
        }
        const check = (): void => {
          if (exited || covered(t)) done();
        };
        waiters.add(check);
        check();
      });
    return {
      mark: (): MeterMark => ({ t: nowMs(), data: null }),
      between: async (a, b): Promise<MeterReading> => {
        await waitFor(b.t);
        const seconds = (b.t - a.t) / 1000;
        const base = { meter: this.name, source: this.source, device: this.device, seconds };
        const domains = [...samples.entries()].sort(([x], [y]) => x - y).map(([gpu, list]) => ({ name: `gpu${gpu}`, joules: integratePower(list, a.t, b.t), inside: list.filter((s) => s.t >= a.t && s.t <= b.t).length }));
        const fewest = domains.length ? Math.min(...domains.map((d) => d.inside)) : 0;
        const clean = domains.map(({ name, joules }) => ({ name, joules }));
        if (fewest < 2) {
          return {
            ...base,
            joules: null,
            domains: clean,
            note: `too short to measure: ${(seconds * 1000).toFixed(1)} ms holds ${fewest} power sample${fewest === 1 ? '' : 's'} (nvidia-smi samples every ${this.intervalMs} ms and the sensor updates about every 100 ms); measure for at least 1 s`,
          };
        }
        return { ...base, joules: clean.reduce((s, d) => s + d.joules, 0), domains: clean };
      },
      close: async () => {
        if (!exited) child.kill();
      },
    };
  }
}
