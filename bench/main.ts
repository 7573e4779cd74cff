/**
 * `npm run bench -- <name> [--json]`: benchmarks that print ratios against a peer measured in the same
 * run (this machine is shared and noisy: medians and ratios, never a lone absolute time).
 */
import { attentionBench } from './attention.js';
import { codecBench } from './codec.js';
import { distillBench } from './distill.js';
import { optimizeBench } from './optimize.js';
import { optimizerBench } from './optimizer.js';
import { profileBench } from './profile.js';
import { pruneBench } from './prune.js';
import { quantizeBench } from './quantize.js';
import { trainBench } from './train.js';
import { trainKernelsBench } from './train-kernels.js';

const BENCHES: Record<string, (args: string[]) => Promise<Record<string, unknown>>> = { attention: attentionBench, codec: codecBench, profile: profileBench, train: trainBench, quantize: quantizeBench, optimizer: optimizerBench, 'train-kernels': trainKernelsBench, distill: distillBench, prune: pruneBench, optimize: optimizeBench };

async function main(): Promise<number> {
  const [name, ...rest] = process.argv.slice(2);
  const json = rest.includes('--json');
  if (!name || !(name in BENCHES)) {
    process.stderr.write(`usage: npm run bench -- <${Object.keys(BENCHES).join('|')}> [--json]\n`);
    return 2;
  }
  const result = await BENCHES[name]!(rest.filter((a) => a !== '--json'));
  if (json) process.stdout.write(JSON.stringify(result, null, 2) + '\n');
  return 0;
}

main().then(
  (c) => (process.exitCode = c),
  (e) => {
    process.stderr.write(`bench failed: ${(e as Error).stack}\n`);
    process.exitCode = 1;
  },
);
