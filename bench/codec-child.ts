/** One measured operation in a fresh process: `codec` = loadModel + saveModel, `io` = readFile + writeFile. */
import { promises as fsp } from 'node:fs';
import { ownPeakRss } from './child.js';
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
process.stdout.write(JSON.stringify({ seconds, maxRssBytes: ownPeakRss() }));
