/**
 * Teacher outputs for distillation. The teacher runs in its own ORT inference session on its own feed
 * of the dataset (its own input layout and, for text, its own tokenizer from its metadata), so a student
 * with another input shape or sequence length still gets the teacher's real outputs. Cached once for the
 * whole train split, the logits are then fed per batch by example index: with no augmentation the
 * teacher sees the same inputs every epoch, so re-running it each epoch would only burn energy.
 */
import * as ort from 'onnxruntime-node';
import { FrugalError } from '../../errors.js';
import { batches } from '../../data/index.js';
import { openDatasetFeed } from '../../data/feed.js';
import type { Model } from '../../ir/model.js';
import { createSession } from '../../runtime/index.js';
import { LOSS_TEACHER_INPUT } from '../losses.js';
import { HIDDEN_TARGET_INPUT } from './hidden.js';

/** The teacher's logits over the train split, row i for train example i. */
export interface TeacherCache {
  logits: Float32Array;
  count: number;
  classes: number;
  /** Wall seconds the teacher's inference took. */
  seconds: number;
  /** The teacher's hidden states [count, hiddenWidth] when `hiddenOutput` was asked for. */
  hidden?: Float32Array;
  hiddenWidth?: number;
}

export interface TeacherCacheOptions {
  /** Use only the first N training examples (must match the student run's `limit`). */
  limit?: number;
  /** Batch size of the teacher's inference (default 256). */
  batchSize?: number;
  intraOpThreads?: number;
  ep?: string;
  /** Also cache this output of the teacher ([batch, width]; its hidden state, see hidden.ts). */
  hiddenOutput?: string;
  /** Called after each batch with the examples done so far. */
  onProgress?: (done: number, total: number) => void;
}

/** Runs `teacher` once over the train split of `dataset` and keeps its logits. */
export async function cacheTeacherLogits(teacher: Model, dataset: string, opts: TeacherCacheOptions = {}): Promise<TeacherCache> {
  const t0 = performance.now();
  const feed = openDatasetFeed(dataset, teacher, opts.limit !== undefined ? { limit: opts.limit, testLimit: 1 } : { testLimit: 1 });
  const session = await createSession(teacher, { name: 'teacher', ...(opts.intraOpThreads ? { intraOpThreads: opts.intraOpThreads } : {}), ...(opts.ep ? { ep: opts.ep } : {}) });
  const out0 = session.outputNames[0]!;
  const count = feed.counts.train;
  let logits: Float32Array | undefined;
  let classes = 0;
  let hidden: Float32Array | undefined;
  let hiddenWidth = 0;
  try {
    let done = 0;
    for (const idx of batches(count, opts.batchSize ?? 256)) {
      const b = feed.batch('train', idx);
      const r = await session.runOrt(b.feeds, { outputs: [out0, ...(opts.hiddenOutput ? [opts.hiddenOutput] : [])] });
      const t = r[out0] as ort.Tensor;
      if (opts.hiddenOutput) {
        const h = r[opts.hiddenOutput] as ort.Tensor;
        hiddenWidth = Number(h.dims[1]);
        hidden ??= new Float32Array(count * hiddenWidth);
        const hd = h.data as Float32Array;
        idx.forEach((ex, i) => hidden!.set(hd.subarray(i * hiddenWidth, (i + 1) * hiddenWidth), ex * hiddenWidth));
      }
      if (t.dims.length !== 2) throw new FrugalError('E_USAGE', `teacher output '${out0}' has shape [${t.dims.join(', ')}]; distillation needs logits [batch, classes]`);
      if (!logits) {
        classes = Number(t.dims[1]);
        logits = new Float32Array(count * classes);
      }
      const data = t.data as Float32Array;
      idx.forEach((ex, i) => logits!.set(data.subarray(i * classes, (i + 1) * classes), ex * classes));
      done += b.count;
      opts.onProgress?.(done, count);
    }
  } finally {
    await session.release();
  }
  return { logits: logits ?? new Float32Array(0), count, classes, seconds: (performance.now() - t0) / 1000, ...(hidden ? { hidden, hiddenWidth } : {}) };
}

/**
 * A trainer `batchFeeds` hook that feeds the cached logits of a batch's examples as the distillation
 * loss's teacher input (and the cached hidden states, when present, as the hidden-state loss's target).
 */
export function cachedTeacherFeeds(cache: TeacherCache, input = LOSS_TEACHER_INPUT): (indices: readonly number[]) => Record<string, ort.Tensor> {
  const k = cache.classes;
  return (indices) => {
    const data = new Float32Array(indices.length * k);
    indices.forEach((ex, i) => {
      if (ex >= cache.count) throw new FrugalError('E_USAGE', `train example ${ex} is beyond the ${cache.count} cached teacher outputs; cache with the same limit as the student run`);
      data.set(cache.logits.subarray(ex * k, (ex + 1) * k), i * k);
    });
    const feeds: Record<string, ort.Tensor> = { [input]: new ort.Tensor('float32', data, [indices.length, k]) };
    if (cache.hidden) {
      const w = cache.hiddenWidth!;
      const h = new Float32Array(indices.length * w);
      indices.forEach((ex, i) => h.set(cache.hidden!.subarray(ex * w, (ex + 1) * w), i * w));
      feeds[HIDDEN_TARGET_INPUT] = new ort.Tensor('float32', h, [indices.length, w]);
    }
    return feeds;
  };
}
