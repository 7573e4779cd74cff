/**
 * One measurement of the attention benchmark, in a fresh process so that its peak memory is its own:
 * builds the model (attention block alone, or a one-layer encoder), runs it `warmup` times, then `reps`
 * timed runs, and prints {medianMs, peakBytes, baseBytes} as its last stdout line.
 *
 * peakBytes is the growth of the process's resident high-water mark (VmHWM) from just before the first
 * run to the end: the working memory of inference (activations, ORT's arena), without the weights,
 * the model bytes and the Node runtime, which every form shares.
 *
 * argv[2]: JSON {kind: 'block'|'layer', form, n, window, globalTokens, warmup, reps}.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import * as ort from 'onnxruntime-node';
import { GraphBuilder } from '../src/ir/builder.js';
import { DataType } from '../src/ir/dtype.js';
import type { Model } from '../src/ir/model.js';
import { encodeModelToBytes } from '../src/onnx/index.js';
import { type AttentionForm, buildAttention } from '../src/passes/attention/forms.js';
import { median } from '../src/profiling/stats.js';
import { createRng } from '../src/util/rng.js';
import { buildTransformerEncoder } from '../src/zoo/transformer.js';

export interface ChildConfig {
  kind: 'block' | 'layer';
  form: AttentionForm;
  n: number;
  window: number;
  globalTokens: number;
  warmup: number;
  reps: number;
}

const HIDDEN = 768;
const HEADS = 12;
const HEAD_DIM = HIDDEN / HEADS;

function statusBytes(field: 'VmHWM' | 'VmRSS'): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) * 1024 : process.memoryUsage().rss;
}

/** The attention block alone: Q, K, V [1, 12, n, 64] and a key mask [1, 1, 1, n] → context. */
function blockModel(c: ChildConfig): Model {
  const b = new GraphBuilder('attention_block');
  const [q, k, v] = ['q', 'k', 'v'].map((name) => b.input(name, DataType.FLOAT, [1, HEADS, 'n', HEAD_DIM]));
  const mask = b.input('mask', DataType.FLOAT, [1, 1, 1, 'n']);
  const y = buildAttention(b, q!, k!, v!, { form: c.form, headDim: HEAD_DIM, window: c.window, globalTokens: c.globalTokens, maskBias: mask, prefix: 'attn' });
  b.output(y, 'context', DataType.FLOAT, [1, HEADS, 'n', HEAD_DIM]);
  return b.build({ opsetImports: { '': 17 } });
}

function feedsFor(c: ChildConfig): Record<string, ort.Tensor> {
  const rng = createRng(1);
  if (c.kind === 'block') {
    const size = HEADS * c.n * HEAD_DIM;
    const rand = () => new ort.Tensor('float32', Float32Array.from({ length: size }, () => rng.normal()), [1, HEADS, c.n, HEAD_DIM]);
    return { q: rand(), k: rand(), v: rand(), mask: new ort.Tensor('float32', new Float32Array(c.n), [1, 1, 1, c.n]) };
  }
  return {
    input_ids: new ort.Tensor('int64', BigInt64Array.from({ length: c.n }, () => BigInt(rng.int(1000))), [1, c.n]),
    attention_mask: new ort.Tensor('int64', new BigInt64Array(c.n).fill(1n), [1, c.n]),
  };
}

async function main(): Promise<void> {
  const c = JSON.parse(process.argv[2]!) as ChildConfig;
  const model =
    c.kind === 'block'
      ? blockModel(c)
      : buildTransformerEncoder({ vocabSize: 1000, maxLength: c.n, hidden: HIDDEN, heads: HEADS, ffn: 4 * HIDDEN, layers: 1, attention: c.form, attentionWindow: c.window, attentionGlobal: c.globalTokens });
  const session = await ort.InferenceSession.create(encodeModelToBytes(model), { logSeverityLevel: 3 });
  const feeds = feedsFor(c);
  // Reset the high-water mark to the current RSS (Linux: clear_refs 5), so building the model does not count.
  try {
    writeFileSync('/proc/self/clear_refs', '5');
  } catch {
    // Older kernels: the mark then includes model building, which overstates every form alike.
  }
  const base = statusBytes('VmRSS');
  const times: number[] = [];
  for (let i = 0; i < c.warmup + c.reps; i++) {
    const t0 = performance.now();
    await session.run(feeds);
    if (i >= c.warmup) times.push(performance.now() - t0);
  }
  const peak = statusBytes('VmHWM');
  await session.release();
  process.stdout.write(JSON.stringify({ medianMs: median(times), peakBytes: Math.max(0, peak - base), baseBytes: base }) + '\n');
}

main().catch((e) => {
  process.stderr.write(`${(e as Error).message}\n`);
  process.exitCode = 1;
});
