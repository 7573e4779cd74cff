/**
 * Codec benchmark: decode + encode of the BERT-base-shaped zoo model (~440 MB fp32) against plain
 * fs.readFile + fs.writeFile of the same bytes, each in a fresh child process (so peak RSS is the
 * operation's own), alternating, several repetitions, medians.
 * Goal (issue 2): ratio ≤ 2 and peak RSS ≤ 2× the file size.
 */
import { type ChildResult, runChild } from './child.js';
import { mkdirSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { saveModel } from '../src/onnx/index.js';
import { median } from '../src/profiling/stats.js';
import { intArg } from './args.js';
import { buildZooModel } from '../src/zoo/index.js';

const CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), 'codec-child.js');

function child(mode: 'codec' | 'io', input: string, output: string): ChildResult {
  return runChild([CHILD, mode, input, output], output);
}

export async function codecBench(args: string[]): Promise<Record<string, unknown>> {
  const reps = intArg(args, 'reps', 5);
  const dir = path.resolve('.bench-tmp');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, 'bert-base.onnx');
  try {
    process.stderr.write('building bert-base zoo model...\n');
    await saveModel(buildZooModel('bert-base'), file, { externalData: false });
    const fileBytes = statSync(file).size;
    const codec: Array<{ seconds: number; maxRssBytes: number }> = [];
    const io: Array<{ seconds: number; maxRssBytes: number }> = [];
    child('io', file, path.join(dir, 'warm.onnx')); // warm the page cache
    for (let i = 0; i < reps; i++) {
      io.push(child('io', file, path.join(dir, 'io.onnx')));
      codec.push(child('codec', file, path.join(dir, 'codec.onnx')));
      process.stderr.write(`rep ${i + 1}/${reps}: codec ${codec[i]!.seconds.toFixed(3)} s, io ${io[i]!.seconds.toFixed(3)} s\n`);
    }
    const codecSeconds = median(codec.map((r) => r.seconds));
    const ioSeconds = median(io.map((r) => r.seconds));
    const peakRssBytes = Math.max(...codec.map((r) => r.maxRssBytes));
    const result = {
      model: 'bert-base (zoo)',
      fileBytes,
      repetitions: reps,
      codecSeconds,
      ioSeconds,
      ratio: codecSeconds / ioSeconds,
      peakRssBytes,
      ioPeakRssBytes: Math.max(...io.map((r) => r.maxRssBytes)),
      peakRssOverFileBytes: peakRssBytes / fileBytes,
      goals: { ratio: 2, peakRssOverFileBytes: 2 },
    };
    process.stderr.write(
      `codec (load + save) ${codecSeconds.toFixed(3)} s vs readFile + writeFile ${ioSeconds.toFixed(3)} s: ratio ${result.ratio.toFixed(2)} (goal ≤ 2); ` +
        `peak RSS ${(peakRssBytes / 2 ** 20).toFixed(0)} MiB = ${result.peakRssOverFileBytes.toFixed(2)}× the ${(fileBytes / 2 ** 20).toFixed(0)} MiB file (goal ≤ 2)\n`,
    );
    return result;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
