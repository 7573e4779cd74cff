/**
 * Profiler overhead: the same model, the same ONNX Runtime session and feeds, blocks of N runs bare
 * (one clock read around the block) against blocks of N runs under the profiler (a measurement window
 * with every available meter, per-run timing), in ABBA order, 30 pairs, median of the paired
 * fractions (profiled − bare) / bare. Goal (issue 5): overheadFraction ≤ 0.01.
 * Workloads: the zoo CNN at batch 8 (`overheadFraction`) and the zoo MLP at batch 1, the smallest run
 * there is, where fixed costs weigh most (`overheadFractionSmallest`).
 */
import { intArg } from './args.js';
import type * as ort from 'onnxruntime-node';
import { EnergyMonitor, measuredLoop, median } from '../src/profiling/index.js';
import { createSession, feedSpecsOf, randomFeeds, toOrtTensor } from '../src/runtime/index.js';
import { buildZooModel } from '../src/zoo/index.js';

interface Workload {
  zoo: 'cnn' | 'mlp';
  batch: number;
  runs: number;
}

async function overhead(w: Workload, reps: number): Promise<Record<string, number | string>> {
  const model = buildZooModel(w.zoo);
  const feeds = randomFeeds(feedSpecsOf(model), { seed: 0, dims: { batch: w.batch } });
  // One intra-op thread: on a shared 2-core machine ORT's spinning pool makes block times swing more than the effect measured.
  const session = await createSession(model, { name: w.zoo, intraOpThreads: 1 });
  const ortFeeds: Record<string, ort.Tensor> = {};
  for (const [k, t] of Object.entries(feeds)) ortFeeds[k] = toOrtTensor(t);
  const raw = session.ort;
  const monitor = new EnergyMonitor({ devices: ['cpu'] });
  monitor.start();
  try {
    for (let i = 0; i < 50; i++) await raw.run(ortFeeds);
    const bare: number[] = [];
    const profiled: number[] = [];
    const fractions: number[] = [];
    const bareBlock = async (): Promise<number> => {
      const t0 = performance.now();
      for (let i = 0; i < w.runs; i++) await raw.run(ortFeeds);
      return performance.now() - t0;
    };
    const profiledBlock = async (r: number): Promise<number> => {
      const t0 = performance.now();
      const win = monitor.begin(`${w.zoo} pair ${r}`);
      await measuredLoop(() => raw.run(ortFeeds), { iterations: w.runs });
      await win.end();
      return performance.now() - t0;
    };
    for (let r = 0; r < reps; r++) {
      // ABBA order: drift in machine load cancels instead of favouring whichever block runs second.
      let b: number;
      let p: number;
      if (r % 2 === 0) {
        b = await bareBlock();
        p = await profiledBlock(r);
      } else {
        p = await profiledBlock(r);
        b = await bareBlock();
      }
      bare.push(b);
      profiled.push(p);
      fractions.push((p - b) / b);
    }
    process.stderr.write(`${w.zoo} batch ${w.batch}: ${reps} pairs of ${w.runs} runs, median bare ${median(bare).toFixed(1)} ms, profiled ${median(profiled).toFixed(1)} ms, median paired overhead ${(median(fractions) * 100).toFixed(2)}%\n`);
    return { workload: `zoo ${w.zoo}, batch ${w.batch}, ${w.runs} runs per block`, bareMs: median(bare), profiledMs: median(profiled), overheadFraction: median(fractions), ratioOfMedians: median(profiled) / median(bare) - 1 };
  } finally {
    await monitor.close();
    await session.release();
  }
}

export async function profileBench(args: string[]): Promise<Record<string, unknown>> {
  const reps = intArg(args, 'reps', 30);
  const main = await overhead({ zoo: 'cnn', batch: 8, runs: 300 }, reps);
  const smallest = await overhead({ zoo: 'mlp', batch: 1, runs: 1000 }, reps);
  const result = {
    repetitions: reps,
    overheadFraction: main.overheadFraction,
    overheadFractionSmallest: smallest.overheadFraction,
    workloads: [main, smallest],
    goals: { overheadFraction: 0.01 },
  };
  process.stderr.write(
    `profiler overhead: ${((main.overheadFraction as number) * 100).toFixed(2)}% on ${main.workload} (goal ≤ 1%); ` +
      `${((smallest.overheadFraction as number) * 100).toFixed(2)}% on ${smallest.workload}\n`,
  );
  return result;
}
