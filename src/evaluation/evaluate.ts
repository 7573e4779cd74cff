/**
 * Classification accuracy of a model on a dataset's test split, through an ONNX Runtime session.
 */
import * as ort from 'onnxruntime-node';
import { FrugalError } from '../errors.js';
import { batches } from '../data/index.js';
import type { Model } from '../ir/model.js';
import { createSession, type FrugalSession } from '../runtime/index.js';
import { type DatasetFeed, openDatasetFeed } from '../data/feed.js';
import { argmax } from '../util/argmax.js';

export interface EvaluateOptions {
  /** Score only the first N test examples. */
  limit?: number;
  /** Batch size (default 256). */
  batchSize?: number;
  intraOpThreads?: number;
  /** Execution provider (default cpu). */
  ep?: string;
  /**
   * The test data, already opened (`openDatasetFeed(dataset, model, { testLimit, evalOnly: true })`), to
   * score several variants of one model without re-reading (and, for text, re-tokenizing) it each time.
   * `limit` is then the feed's own.
   */
  feed?: DatasetFeed;
}

export interface EvaluateResult {
  /** Fraction of test examples whose arg-max logit is the label. */
  accuracy: number;
  count: number;
}

/**
 * Scores a session over the test split of `feed`; `extra` are feeds added to every batch (weights and
 * running statistics when the session takes them as inputs).
 */
export async function accuracyOnTest(session: FrugalSession, feed: DatasetFeed, batchSize: number, extra: Record<string, ort.Tensor> = {}): Promise<EvaluateResult> {
  const logitsName = session.outputNames[0]!;
  let correct = 0;
  for (const idx of batches(feed.counts.test, batchSize)) {
    const b = feed.batch('test', idx);
    const out = await session.runOrt({ ...b.feeds, ...extra }, { outputs: [logitsName] });
    const logits = (out[logitsName] as ort.Tensor).data as Float32Array;
    const classes = logits.length / b.count;
    for (let i = 0; i < b.count; i++) if (argmax(logits, i * classes, classes) === b.labels[i]) correct++;
  }
  const count = feed.counts.test;
  return { accuracy: count ? correct / count : 0, count };
}

/**
 * Test accuracy of `model` on `dataset` ('mnist' or 'spam'). A text model must carry the tokenizer it
 * was trained with in its metadata (`frugal train` stores it).
 */
export async function evaluateModel(model: Model, dataset: string, opts: EvaluateOptions = {}): Promise<EvaluateResult> {
  const batchSize = opts.batchSize ?? 256;
  if (!(Number.isInteger(batchSize) && batchSize >= 1)) throw new FrugalError('E_USAGE', `batch size must be a positive integer, got ${batchSize}`);
  const feed = opts.feed ?? openDatasetFeed(dataset, model, { ...(opts.limit !== undefined ? { testLimit: opts.limit } : {}), evalOnly: true });
  const session = await createSession(model, { ...(opts.intraOpThreads ? { intraOpThreads: opts.intraOpThreads } : {}), ...(opts.ep ? { ep: opts.ep } : {}) });
  try {
    return await accuracyOnTest(session, feed, batchSize);
  } finally {
    await session.release();
  }
}
