/** The comparison table every report shares, built from a record only. */
import { formatBytes, formatNumber } from './format.js';
import type { ModelProfile, ProfileRecord } from '../profiling/records.js';
import { energiesInseparable, RATING_NOISE_TOLERANCE } from '../profiling/rating.js';

export const SUMMARY_HEADER = [
  'model',
  'p50 ms',
  'p90 ms',
  'p99 ms',
  'mean ± sd ms',
  'inferences/s',
  'CPU s (user+sys)',
  'peak RSS',
  'mJ/inference',
  'Wh/1k inferences',
  'gCO2e/1k inferences',
  'rating',
  'p50 vs first',
  'energy vs first',
] as const;

const n = (x: number | null | undefined): string => (x === null || x === undefined ? '–' : formatNumber(x));
const ratio = (x: number | null, first: number | null): string => (x === null || first === null || first === 0 ? '–' : `${formatNumber(x / first)}×`);

/** One row per model; ratios are to the first model (1× for itself). */
export function summaryRows(record: ProfileRecord): string[][] {
  const first: ModelProfile | undefined = record.models[0];
  return record.models.map((m) => [
    m.name,
    n(m.latencyMs.p50),
    n(m.latencyMs.p90),
    n(m.latencyMs.p99),
    `${n(m.latencyMs.mean)} ± ${n(m.latencyMs.stddev)}`,
    n(m.throughput.inferencesPerSecond),
    n(m.cpu.userSeconds + m.cpu.systemSeconds),
    formatBytes(m.peakRssBytes),
    m.energy.joulesPerInference === null ? 'too short' : `${n(m.energy.joulesPerInference * 1000)}${m.energy.estimated ? ' (est.)' : ''}`,
    n(m.energy.whPer1000Inferences),
    m.carbon ? n(m.carbon.gramsPerInference * 1000) : '–',
    m.rating === null ? '–' : `${m.rating}/5`,
    ratio(m.latencyMs.p50, first?.latencyMs.p50 ?? null),
    ratio(m.energy.joulesPerInference, first?.energy.joulesPerInference ?? null),
  ]);
}

/** Lines that say where the figures come from: energy sources, grid intensity, meters not used and why. */
export function provenanceLines(record: ProfileRecord): string[] {
  const sources = [...new Set(record.models.flatMap((m) => m.energy.sources))];
  const estimated = record.models.some((m) => m.energy.estimated);
  const c = record.carbon;
  const lines = [
    `energy: ${sources.join(', ') || 'none'}${estimated ? ' (ESTIMATED from CPU time and TDP, not measured: no energy counter is readable here)' : ' (measured by hardware counters)'}`,
    `carbon: ${c.gCo2ePerKwh} gCO2e/kWh (${c.region}; ${c.source}) × PUE ${c.pue}`,
    'latency and throughput: measured (performance.now around each ONNX Runtime run); CPU time and peak RSS: measured (getrusage)',
  ];
  for (const m of record.meters) {
    if (m.available) lines.push(`meter ${m.name}: available${m.detail ? ` (${m.detail})` : ''}`);
    else lines.push(`meter ${m.name}: unavailable: ${m.reason}${m.fix ? `; fix: ${m.fix}` : ''}`);
  }
  const energies = record.models.map((m) => m.energy.whPer1000Inferences);
  const tol = record.ratingTolerance ?? RATING_NOISE_TOLERANCE;
  const pct = `${Number((tol * 100).toPrecision(2))}%`;
  if (energiesInseparable(energies, tol)) {
    lines.push(`rating: every energy figure is within ${pct} of the lowest, which this run's noise explains: the models cannot be separated (all rated 5/5)`);
  } else if (record.models.some((m) => m.rating !== null)) {
    lines.push(`rating: 5 (least energy per inference) to 1 (most), relative to these models; figures within ${pct} (this run's noise) of the best or worst count as equal to it`);
  }
  for (const m of record.models) if (m.energy.note) lines.push(`${m.name}: ${m.energy.note}`);
  for (const m of record.models) if (m.extendedForEnergy) lines.push(`${m.name}: ran ${m.iterations} runs, past the request, so the energy window was long enough to measure`);
  return lines;
}

/** The settings line. */
export function settingsLine(record: ProfileRecord): string {
  const s = record.settings;
  const mc = record.machine;
  return `ep ${s.ep}, batch ${s.batch}, threads ${s.threads ?? 'ORT default'}, warm-up ${s.warmup}, ${s.iterations !== null ? `${s.iterations} runs` : `${s.durationSeconds} s`}; ${mc.cpuModel} (${mc.logicalCpus} logical CPUs), ${mc.platform}/${mc.arch}, Node ${mc.node}, ONNX Runtime ${mc.onnxruntime}`;
}
