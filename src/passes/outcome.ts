/**
 * One headline for what a quantize mode did, read from its passes' stats: "0 of 486 nodes quantized:
 * 486 weight below 4,096 elements (--min-elements to change)". A pass that changed nothing must say so
 * first, not bury it under a list of skipped node paths.
 */
import type { PipelineResult } from './pass.js';

export interface PassOutcome {
  pass: string;
  /** Nodes the pass rewrote (quantized, or converted to float16). */
  changed: number;
  /** Nodes it considered: changed plus skipped. */
  candidates: number;
  /** Why the others were skipped, grouped, most frequent first. */
  reasons: Array<{ reason: string; count: number }>;
  headline: string;
}

export interface ModeOutcome {
  changed: number;
  candidates: number;
  /** One line per pass that looks at nodes, joined with '; '. */
  headline: string;
  passes: PassOutcome[];
}

const thousands = (n: number): string => n.toLocaleString('en-US');

/** Groups a skip reason: small-weight reasons by their threshold, others without names and details. */
function reasonKey(detail: string): string {
  const small = /small weight \(\d+ < (\d+) elements\)|has \d+ elements \(< minElements (\d+)\)/.exec(detail);
  if (small) return `weight below ${thousands(Number(small[1] ?? small[2]))} elements`;
  return detail.replace(/\s*\(.*$/, '').replace(/'[^']*'/g, '…');
}

/** The outcome of one pass from its stats, or undefined for passes that do not report nodes. */
export function passOutcome(name: string, stats: Record<string, unknown>): PassOutcome | undefined {
  let changed: number;
  const skipped: string[] = [];
  let verb = 'quantized';
  if (Array.isArray(stats.quantized) && Array.isArray(stats.skipped)) {
    // int8 passes: one report per node, `detail` says how or why not.
    changed = stats.quantized.length;
    for (const s of stats.skipped as Array<{ detail: string }>) skipped.push(s.detail);
  } else if (stats.quantized && typeof stats.quantized === 'object' && Array.isArray(stats.skipped)) {
    // int4: counts by op type, skips with `reason`.
    changed = Object.values(stats.quantized as Record<string, number>).reduce((a, b) => a + b, 0);
    for (const s of stats.skipped as Array<{ reason: string }>) skipped.push(s.reason);
  } else if (typeof stats.convertedNodes === 'number') {
    changed = stats.convertedNodes;
    verb = `converted to ${String(stats.to ?? 'float16')}`;
    for (const k of Object.values((stats.keptFloat32 ?? {}) as Record<string, { count: number; reason: string }>)) for (let i = 0; i < k.count; i++) skipped.push(k.reason);
  } else return undefined;
  const counts = new Map<string, number>();
  for (const d of skipped) counts.set(reasonKey(d), (counts.get(reasonKey(d)) ?? 0) + 1);
  const reasons = [...counts].map(([reason, count]) => ({ reason, count })).sort((a, b) => b.count - a.count);
  const candidates = changed + skipped.length;
  let headline = `${thousands(changed)} of ${thousands(candidates)} nodes ${verb}`;
  if (reasons.length === 1 && changed === 0 && candidates > 0) headline += `: all ${reasons[0]!.reason.replace(/^weight /, 'weights ')}`;
  else if (reasons.length) headline += `: ${reasons.slice(0, 3).map((r) => `${thousands(r.count)} ${r.reason}`).join(', ')}${reasons.length > 3 ? `, ${reasons.length - 3} other reasons` : ''}`;
  if (reasons.some((r) => r.reason.startsWith('weight below'))) headline += '; --min-elements to change';
  return { pass: name, changed, candidates, reasons, headline };
}

/** The outcome of a mode's pipeline (its passes' outcomes together). */
export function modeOutcome(passes: PipelineResult['passes']): ModeOutcome {
  const outs = passes.map((p) => passOutcome(p.name, p.stats)).filter((o): o is PassOutcome => !!o);
  return {
    changed: outs.reduce((a, o) => a + o.changed, 0),
    candidates: outs.reduce((a, o) => a + o.candidates, 0),
    headline: outs.length > 1 ? outs.map((o) => `${o.pass}: ${o.headline}`).join('; ') : (outs[0]?.headline ?? 'no node-level changes reported'),
    passes: outs,
  };
}
