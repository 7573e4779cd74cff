/**
 * Linux powercap RAPL counters (`/sys/class/powercap/intel-rapl:*`). AMD CPUs expose the same
 * interface, under `intel-rapl` names on most kernels (`amd-rapl` is accepted too). Each zone has a
 * `name` (package-N, core, uncore, dram, psys), a microjoule counter `energy_uj` that wraps at
 * `max_energy_range_uj`, and subzones `intel-rapl:N:M`.
 *
 * Invariants: the meter's total is Σ package zones + Σ dram zones (core and uncore are inside the
 * package; psys covers the whole platform and is used only when there is no package zone), so
 * nothing is counted twice. Counters are unwrapped on every mark and by a background poll (every 10 s
 * by default), so windows longer than one wrap period (minutes at full load) stay correct.
 * The figures are whole-socket energy: other processes running at the same time are included.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { FrugalError } from '../../errors.js';
import { nowMs } from '../timer.js';
import type { EnergyMeter, MeterHandle, MeterMark, MeterReading, MeterStatus } from './types.js';

export interface RaplOptions {
  /** The powercap folder (default `/sys/class/powercap`); tests point it at a fake tree. */
  root?: string;
  /** Reads a sysfs file as text (default `readFileSync`); tests inject permission errors through it. */
  readFile?: (file: string) => string;
  /** Background unwrap poll period in ms (default 10,000; 0 disables). */
  pollMs?: number;
}

export interface RaplZone {
  /** Folder name, e.g. `intel-rapl:0:2`. */
  id: string;
  dir: string;
  /** Domain label: `package-0`, or `package-0/dram` for a subzone. */
  label: string;
  kind: 'package' | 'core' | 'uncore' | 'dram' | 'psys' | 'other';
  maxRangeUj: number;
  /** Counted in the meter's total. */
  counted: boolean;
}

const ZONE_RE = /^(?:intel|amd)-rapl:(\d+)(?::(\d+))?$/;

export const RAPL_PERMISSION_FIX =
  'run as root, or make the counters readable: `sudo chmod a+r /sys/class/powercap/intel-rapl:*/energy_uj /sys/class/powercap/intel-rapl:*:*/energy_uj` ' +
  '(until reboot), or permanently with a udev rule such as ' +
  '`ACTION=="add", SUBSYSTEM=="powercap", KERNEL=="intel-rapl:*", RUN+="/bin/chmod a+r %S%p/energy_uj"` in /etc/udev/rules.d/99-rapl.rules';

function kindOf(name: string): RaplZone['kind'] {
  if (name.startsWith('package')) return 'package';
  if (name === 'core' || name === 'uncore' || name === 'dram' || name === 'psys') return name;
  return 'other';
}

/** Lists the RAPL zones under `root` (throws the fs error when the folder cannot be read). */
export function discoverRaplZones(root: string, readFile: (f: string) => string = (f) => readFileSync(f, 'utf8')): RaplZone[] {
  const ids = readdirSync(root).filter((d) => ZONE_RE.test(d));
  // Parents before children so a subzone can take its parent's label.
  ids.sort((a, b) => a.split(':').length - b.split(':').length || a.localeCompare(b, 'en', { numeric: true }));
  const labels = new Map<string, string>();
  const zones: RaplZone[] = [];
  for (const id of ids) {
    const dir = path.join(root, id);
    const name = readFile(path.join(dir, 'name')).trim();
    const m = ZONE_RE.exec(id)!;
    const parentId = m[2] !== undefined ? id.slice(0, id.lastIndexOf(':')) : undefined;
    const label = parentId && labels.has(parentId) ? `${labels.get(parentId)}/${name}` : name;
    labels.set(id, label);
    zones.push({ id, dir, label, kind: kindOf(name), maxRangeUj: Number(readFile(path.join(dir, 'max_energy_range_uj')).trim()), counted: false });
  }
  const hasPackage = zones.some((z) => z.kind === 'package');
  for (const z of zones) z.counted = z.kind === 'package' || z.kind === 'dram' || (!hasPackage && z.kind === 'psys');
  return zones;
}

/** The RAPL meter (source `measured:rapl`). */
export class RaplMeter implements EnergyMeter {
  readonly name = 'rapl';
  readonly source = 'measured:rapl' as const;
  readonly device = 'cpu' as const;
  /** RAPL updates about every millisecond. */
  readonly minWindowMs = 1;
  private readonly root: string;
  private readonly readFile: (file: string) => string;
  private readonly pollMs: number;
  private cached: MeterStatus | undefined;
  private zones: RaplZone[] = [];

  constructor(opts: RaplOptions = {}) {
    this.root = opts.root ?? '/sys/class/powercap';
    this.readFile = opts.readFile ?? ((f) => readFileSync(f, 'utf8'));
    this.pollMs = opts.pollMs ?? 10_000;
  }

  status(): MeterStatus {
    return (this.cached ??= this.probe());
  }

  private probe(): MeterStatus {
    const base = { name: this.name, source: this.source, device: this.device };
    let zones: RaplZone[];
    try {
      zones = discoverRaplZones(this.root, this.readFile);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') {
        return {
          ...base,
          available: false,
          reason: `${this.root} does not exist: this kernel exposes no powercap counters (virtual machines and containers usually don't)`,
          fix: 'on bare-metal Linux load the driver (`sudo modprobe intel_rapl_msr`); in a VM there is no fix, and Frugal estimates from CPU time instead',
        };
      }
      if (code === 'EACCES' || code === 'EPERM') return { ...base, available: false, reason: `cannot read ${this.root}: permission denied`, fix: RAPL_PERMISSION_FIX };
      return { ...base, available: false, reason: `cannot read ${this.root}: ${(e as Error).message}` };
    }
    if (!zones.some((z) => z.counted)) {
      return { ...base, available: false, reason: `no intel-rapl or amd-rapl package zones under ${this.root}`, fix: 'on bare-metal Linux load the driver (`sudo modprobe intel_rapl_msr`)' };
    }
    for (const z of zones) {
      try {
        this.readCounter(z);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        const file = path.join(z.dir, 'energy_uj');
        if (code === 'EACCES' || code === 'EPERM') {
          return {
            ...base,
            available: false,
            reason: `${file} is readable by root only (Linux restricted RAPL counters in November 2020 after the Platypus side channel, CVE-2020-8694)`,
            fix: RAPL_PERMISSION_FIX,
          };
        }
        return { ...base, available: false, reason: `cannot read ${file}: ${(e as Error).message}` };
      }
    }
    this.zones = zones;
    return { ...base, available: true, detail: `zones ${zones.map((z) => `${z.label}${z.counted ? '' : ' (inside package)'}`).join(', ')}` };
  }

  private readCounter(z: RaplZone): number {
    const file = path.join(z.dir, 'energy_uj');
    const v = Number(this.readFile(file).trim());
    if (!Number.isFinite(v)) throw new FrugalError('E_IO', `RAPL counter ${file} does not hold a number`);
    return v;
  }

  open(): MeterHandle {
    const st = this.status();
    if (!st.available) throw new FrugalError('E_UNSUPPORTED', `RAPL meter unavailable: ${st.reason}${st.fix ? `; fix: ${st.fix}` : ''}`);
    const zones = this.zones;
    const last = zones.map((z) => this.readCounter(z));
    // Unwrapped microjoules since open, per zone.
    const acc = zones.map(() => 0);
    const poll = (): void => {
      zones.forEach((z, i) => {
        const cur = this.readCounter(z);
        let d = cur - last[i]!;
        // The counter wrapped: it ran from last up to max_energy_range_uj, then from 0 up to cur.
        if (d < 0) d += z.maxRangeUj;
        acc[i]! += d;
        last[i] = cur;
      });
    };
    const timer = this.pollMs > 0 ? setInterval(poll, this.pollMs) : undefined;
    timer?.unref();
    return {
      mark: (): MeterMark => {
        poll();
        return { t: nowMs(), data: acc.slice() };
      },
      between: async (a, b): Promise<MeterReading> => {
        const da = a.data as number[];
        const db = b.data as number[];
        const domains = zones.map((z, i) => ({ name: z.label, joules: (db[i]! - da[i]!) / 1e6 }));
        const joules = domains.reduce((s, d, i) => s + (zones[i]!.counted ? d.joules : 0), 0);
        return { meter: this.name, source: this.source, device: this.device, joules, domains, seconds: (b.t - a.t) / 1000 };
      },
      close: async () => {
        if (timer) clearInterval(timer);
      },
    };
  }
}
