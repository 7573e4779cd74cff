/** One measured operation in a fresh process: `codec` = loadModel + saveModel, `io` = readFile + writeFile. */
import { promises as fsp, readFileSync } from 'node:fs';
import { loadModel, saveModel } from '../src/onnx/index.js';

const [mode, input, output] = process.argv.slice(2) as ['codec' | 'io', string, string];
const t0 = performance.now();
if (mode === 'codec') {
  const model = await loadModel(input);
  await saveModel(model, output, { externalData: false });
} else {
  const bytes = await fsp.readFile(input);
  await fsp.writeFile(output, bytes);
  // saveModel fsyncs before renaming (atomic write); do the same so both sides pay for durability.
  const fh = await fsp.open(output, 'r+');
  await fh.sync();
  await fh.close();
}
const seconds = (performance.now() - t0) / 1000;
/**
 * This process's own peak RSS. getrusage's maxRSS can carry the parent's peak over an exec on Linux, so
 * read the kernel's high-water mark of this address space (VmHWM) where /proc exists.
 */
function ownPeakRss(): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m) return Number(m[1]) * 1024;
  } catch {
    // Not Linux: fall back to getrusage.
  }
  return process.resourceUsage().maxRSS * 1024;
}
process.stdout.write(JSON.stringify({ seconds, maxRssBytes: ownPeakRss() }));
