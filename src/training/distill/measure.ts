/**
 * The figures a distillation run reports for teacher and student: test accuracy, parameters, FLOPs per
 * example (the cost model on the dataset's real input shape, batch 1) and median batch-1 latency, the
 * two models timed alternately in one loop so that machine noise hits both alike.
 */
import * as ort from 'onnxruntime-node';
import { openDatasetFeed } from '../../data/feed.js';
import { accuracyOnTest } from '../../evaluation/evaluate.js';
import { estimateCost } from '../../ir/cost.js';
import type { Model } from '../../ir/model.js';
import { interleavedTimings } from '../../evaluation/compare.js';
import { median } from '../../profiling/stats.js';
import { createSession, type FrugalSession } from '../../runtime/index.js';
import { cloneModel } from '../training-graph.js';

export interface ModelFigures {
  /** Test accuracy (fraction) on the dataset's held-out split. */
  accuracy: number;
  parameterCount: number;
  /** FLOPs for one example (null when the cost model does not know an op). */
  flops: number | null;
  /** Median latency of one batch-1 inference, milliseconds. */
  latencyP50Ms: number;
}

export interface MeasureOptions {
  /** Score only the first N test examples. */
  evalLimit?: number;
  /** Timed runs per model (default 30, after 3 warm-up runs each). */
  latencyRuns?: number;
  intraOpThreads?: number;
}

/** Measures each model on `dataset`; see the module comment. */
export async function measureModels(models: readonly Model[], dataset: string, opts: MeasureOptions = {}): Promise<ModelFigures[]> {
  const runs = opts.latencyRuns ?? 30;
  const sessions: FrugalSession[] = [];
  try {
    const entries = [];
    for (const m of models) {
      const feed = openDatasetFeed(dataset, m, { evalOnly: true, ...(opts.evalLimit !== undefined ? { testLimit: opts.evalLimit } : {}) });
      const s = await createSession(m, { name: 'measured model', ...(opts.intraOpThreads ? { intraOpThreads: opts.intraOpThreads } : {}) });
      sessions.push(s);
      const one = feed.batch('test', [0]).feeds;
      const shapes = Object.fromEntries(Object.entries(one).map(([k, t]) => [k, (t as ort.Tensor).dims.map(Number)]));
      // Shape inference writes types into the model: run it on a copy.
      const cost = estimateCost(cloneModel(m), { infer: { inputShapes: shapes } });
      const accuracy = (await accuracyOnTest(s, feed, 256)).accuracy;
      entries.push({ s, one, cost, accuracy });
    }
    const times = await interleavedTimings(entries.map((e) => ({ session: e.s, feeds: e.one as Record<string, ort.Tensor> })), runs);
    return entries.map((e, k) => ({ accuracy: e.accuracy, parameterCount: e.cost.parameterCount, flops: e.cost.flops, latencyP50Ms: median(times[k]!) }));
  } finally {
    for (const s of sessions) await s.release();
  }
}
