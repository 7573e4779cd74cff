/**
 * CPU power constants for the CPU-time estimate, as a frozen table: model → thermal design power (or
 * Intel's "processor base power"), cores and hardware threads, with the vendor's product page as
 * source. Watts per logical CPU = TDP / threads: a thread kept busy is charged its share of the
 * chip's TDP. Families get a representative part when the exact model is masked (cloud VMs often
 * report just "AMD EPYC"), and anything else gets `DEFAULT_WATTS_PER_CPU`.
 */

export interface CpuPowerEntry {
  /** Matched against `/proc/cpuinfo`'s model name (case-insensitive). */
  readonly pattern: RegExp;
  readonly model: string;
  readonly tdpWatts: number;
  readonly cores: number;
  readonly threads: number;
  readonly source: string;
}

const e = (pattern: RegExp, model: string, tdpWatts: number, cores: number, threads: number, source: string): CpuPowerEntry =>
  Object.freeze({ pattern, model, tdpWatts, cores, threads, source });

const AMD = 'AMD product specifications, amd.com';
const INTEL = 'Intel product specifications, ark.intel.com';

/** Exact models, checked in order before the families. */
export const CPU_TDP_TABLE: readonly CpuPowerEntry[] = Object.freeze([
  e(/EPYC\s+9654\b/i, 'AMD EPYC 9654', 360, 96, 192, AMD),
  e(/EPYC\s+7763\b/i, 'AMD EPYC 7763', 280, 64, 128, AMD),
  e(/EPYC\s+7742\b/i, 'AMD EPYC 7742', 225, 64, 128, AMD),
  e(/Ryzen 9 5950X\b/i, 'AMD Ryzen 9 5950X', 105, 16, 32, AMD),
  e(/Ryzen 7 5800X\b/i, 'AMD Ryzen 7 5800X', 105, 8, 16, AMD),
  e(/Platinum 8480\+?/i, 'Intel Xeon Platinum 8480+', 350, 56, 112, INTEL),
  e(/Platinum 8380\b/i, 'Intel Xeon Platinum 8380', 270, 40, 80, INTEL),
  e(/Gold 6248\b/i, 'Intel Xeon Gold 6248', 150, 20, 40, INTEL),
  e(/i9-13900K\b/i, 'Intel Core i9-13900K', 125, 24, 32, `${INTEL} (processor base power)`),
  e(/i7-12700K\b/i, 'Intel Core i7-12700K', 125, 12, 20, `${INTEL} (processor base power)`),
]);

/** Family fallbacks: a representative part stands in when only the family is known. */
export const CPU_FAMILY_TABLE: readonly CpuPowerEntry[] = Object.freeze([
  e(/EPYC/i, 'AMD EPYC (family; represented by EPYC 7763)', 280, 64, 128, `${AMD}, EPYC 7763`),
  e(/Xeon/i, 'Intel Xeon (family; represented by Xeon Platinum 8380)', 270, 40, 80, `${INTEL}, Xeon Platinum 8380`),
]);

/**
 * Watts per logical CPU for an unknown CPU: the median of `CPU_TDP_TABLE`'s TDP/threads, rounded to
 * the nearest 0.5 W (the table spans 1.8 W for 192-thread server parts to 6.6 W for 16-thread
 * desktop parts; the median is 3.3 W). A test keeps this constant in step with the table.
 */
export const DEFAULT_WATTS_PER_CPU = 3.5;

export interface CpuPower {
  wattsPerCpu: number;
  /** Which entry was used, or `default`. */
  basis: string;
  source: string;
}

/** The per-logical-CPU power for a CPU model name. */
export function cpuPowerFor(modelName: string): CpuPower {
  const hit = CPU_TDP_TABLE.find((x) => x.pattern.test(modelName)) ?? CPU_FAMILY_TABLE.find((x) => x.pattern.test(modelName));
  if (hit) return { wattsPerCpu: hit.tdpWatts / hit.threads, basis: `${hit.model}: ${hit.tdpWatts} W TDP / ${hit.threads} threads`, source: hit.source };
  return { wattsPerCpu: DEFAULT_WATTS_PER_CPU, basis: `default ${DEFAULT_WATTS_PER_CPU} W per logical CPU (CPU '${modelName}' is not in the table)`, source: 'median of Frugal CPU table' };
}
