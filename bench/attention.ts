/**
 * Attention benchmark (issue 15): latency and peak inference memory of each attention form against
 * softmax attention, measured side by side in one run, for the attention block alone and for a
 * one-layer encoder (hidden 768, 12 heads, FFN 3072, batch 1, with its embeddings and pooler), over
 * sequence lengths n. Each (kind, form, n) runs in a fresh process (bench/attention-child.ts) so its
 * peak memory is its own; latency is the median of `reps` runs after `warmup`.
 *
 * Forms: linear (elu+1), performer (64 random features), window (radius --window, default 128), block (block --block, default 64, plus
 * --global tokens, default 2). Softmax is skipped where its n×n scores would not fit in the memory
 * available now (three float32 copies of 12·n² values), and reported as such.
 *
 * --quick (default): n = 256 … 4096, warm-up 1, 3 reps. --full: n up to 16384, 5 reps.
 * Crossover: the smallest measured n from which on a form stays faster than softmax.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { AttentionForm } from '../src/passes/attention/forms.js';
import type { ChildConfig } from './attention-child.js';
import { intArg } from './args.js';

interface Row {
  kind: 'block' | 'layer';
  n: number;
  form: AttentionForm;
  medianMs?: number;
  peakMiB?: number;
  speedup?: number;
  memoryRatio?: number;
  skipped?: string;
}

function availableBytes(): number {
  const m = /^MemAvailable:\s+(\d+) kB/m.exec(readFileSync('/proc/meminfo', 'utf8'));
  return m ? Number(m[1]) * 1024 : 8 * 2 ** 30;
}

function measure(c: ChildConfig): { medianMs: number; peakBytes: number } {
  const child = fileURLToPath(new URL('./attention-child.js', import.meta.url));
  const out = execFileSync(process.execPath, [child, JSON.stringify(c)], { encoding: 'utf8', maxBuffer: 1 << 20, stdio: ['ignore', 'pipe', 'pipe'] });
  return JSON.parse(out.trim().split('\n').pop()!) as { medianMs: number; peakBytes: number };
}

function fmt(x: number | undefined, digits = 1): string {
  return x === undefined ? '—' : x.toFixed(digits);
}

export async function attentionBench(args: string[]): Promise<Record<string, unknown>> {
  const full = args.includes('--full');
  const window = intArg(args, 'window', 128);
  const block = intArg(args, 'block', 64);
  const globalTokens = intArg(args, 'global', 2);
  const reps = intArg(args, 'reps', full ? 5 : 3);
  const lengths = full ? [256, 512, 1024, 2048, 4096, 8192, 16384] : [256, 512, 1024, 2048, 4096];
  const kinds = args.includes('--block-only') ? (['block'] as const) : (['block', 'layer'] as const);
  const forms: AttentionForm[] = ['softmax', 'linear', 'performer', 'window', 'block'];
  const rows: Row[] = [];
  for (const kind of kinds) {
    for (const n of lengths) {
      let soft: Row | undefined;
      for (const form of forms) {
        const row: Row = { kind, n, form };
        const scoreBytes = 3 * 12 * n * n * 4;
        if (form === 'softmax' && scoreBytes > 0.7 * availableBytes()) {
          row.skipped = `n×n scores need ~${(scoreBytes / 2 ** 30).toFixed(1)} GiB; ${(availableBytes() / 2 ** 30).toFixed(1)} GiB available`;
        } else {
          const r = measure({ kind, form, n, window: form === 'block' ? block : window, globalTokens, warmup: 1, reps });
          row.medianMs = r.medianMs;
          row.peakMiB = r.peakBytes / 2 ** 20;
          if (soft?.medianMs !== undefined && form !== 'softmax') {
            row.speedup = soft.medianMs / r.medianMs;
            row.memoryRatio = soft.peakMiB! / Math.max(row.peakMiB, 0.1);
          }
        }
        if (form === 'softmax') soft = row;
        rows.push(row);
        process.stderr.write(`${kind} n=${n} ${form}: ${row.skipped ?? `${fmt(row.medianMs)} ms, peak +${fmt(row.peakMiB)} MiB${row.speedup ? `, ${fmt(row.speedup, 2)}× faster, ${fmt(row.memoryRatio, 1)}× less memory` : ''}`}\n`);
      }
    }
  }
  // Crossover: smallest n from which on the form is faster than softmax at every measured length.
  const crossover: Record<string, number | string> = {};
  for (const kind of kinds) {
    for (const form of forms.slice(1)) {
      const mine = rows.filter((r) => r.kind === kind && r.form === form && r.speedup !== undefined);
      let from: number | undefined;
      for (const r of mine) from = r.speedup! > 1 ? (from ?? r.n) : undefined;
      crossover[`${kind}/${form}`] = from === undefined ? 'not within the measured lengths' : from === mine[0]?.n ? `≤ ${from}` : from;
    }
  }
  process.stdout.write(`\n| kind | n | form | median ms | peak MiB | speed-up vs softmax | memory ratio vs softmax |\n|---|---|---|---|---|---|---|\n`);
  for (const r of rows) {
    process.stdout.write(`| ${r.kind} | ${r.n} | ${r.form} | ${r.skipped ? `skipped: ${r.skipped}` : fmt(r.medianMs)} | ${fmt(r.peakMiB)} | ${r.speedup ? `${fmt(r.speedup, 2)}×` : '—'} | ${r.memoryRatio ? `${fmt(r.memoryRatio, 1)}×` : '—'} |\n`);
  }
  process.stdout.write(`\ncrossover (form faster than softmax from n on): ${Object.entries(crossover).map(([k, v]) => `${k} ${v}`).join(', ')}\n`);
  return { window, block, globalTokens, reps, rows, crossover };
}
