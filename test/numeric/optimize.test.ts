/**
 * The optimize search as a library: the Pareto front and the choice on synthetic candidates; the
 * validation split (the tail of the training split, disjoint from fine-tuning data and from the test
 * split, and unseen by the embedded teacher); and real searches on the MNIST teacher: --max-drop respected, the cost model and the prefix
 * rule skipping fine-tunes, cached candidates not re-run (and a damaged cache entry not trusted), and a
 * budget that runs out returning the best so far with a note.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadModel } from '../../src/onnx/index.js';
import type { Model } from '../../src/ir/model.js';
import { openDatasetFeed, recordTrainedOn, TRAINED_ON_METADATA_KEY, trainedOn } from '../../src/data/feed.js';
import { DATASETS } from '../../src/data/index.js';
import { cloneModel } from '../../src/training/training-graph.js';
import { type CandidateResult, chooseCandidate, paretoFront, SEARCH_DEFAULTS, searchCandidates, searchSplits, selectCandidates, validationFeed, validationOverlapNote, type SearchOptions } from '../../src/search/index.js';

const TEACHER = path.resolve('models/mnist-cnn.onnx');
let teacher: Model;
let dir: string;

before(async () => {
  teacher = await loadModel(TEACHER);
  dir = mkdtempSync(path.join(os.tmpdir(), 'frugal-optimize-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

const cand = (pipeline: string, accuracy: number, joules: number | null, status: CandidateResult['status'] = 'evaluated'): CandidateResult => ({
  pipeline,
  status,
  cached: false,
  accuracy,
  accuracyDeltaPoints: (accuracy - 0.98) * 100,
  joulesPerInference: joules,
  sizeBytes: 1000,
  pareto: false,
});

describe('Pareto front and choice on synthetic candidates', () => {
  test('the front holds exactly the non-dominated points', () => {
    const pts = [
      { accuracy: 0.98, cost: 10 }, // reference: most accurate → front
      { accuracy: 0.975, cost: 5 }, // front
      { accuracy: 0.97, cost: 6 }, // dominated by the one above
      { accuracy: 0.9, cost: 1 }, // cheapest → front
      { accuracy: 0.975, cost: 5 }, // a tie with a front member: neither dominates the other
      { accuracy: null, cost: 0.5 }, // not comparable → never on the front
      { accuracy: 0.95, cost: 1 }, // dominates (0.9, 1)
    ];
    assert.deepEqual(paretoFront(pts), [true, true, false, false, true, false, true]);
  });

  test('the choice is the cheapest within --max-drop, never one beyond it', () => {
    const cs = [cand('a', 0.978, 8), cand('b', 0.971, 3), cand('c', 0.96, 1), cand('d', 0.97, 2, 'rejected')];
    // b drops 0.9 points: within 1, so it wins over a; c (2 points) is cheaper but out of budget.
    assert.equal(chooseCandidate(cs, 'energy', 1)?.pipeline, 'b');
    // Exactly at the limit counts as within it.
    assert.equal(chooseCandidate(cs, 'energy', 2)?.pipeline, 'c');
    assert.equal(chooseCandidate(cs, 'energy', 0.5)?.pipeline, 'a');
    // Nothing within the budget: null (the caller reports the front).
    assert.equal(chooseCandidate([cand('c', 0.96, 1)], 'energy', 0.5), null);
    // A candidate without the objective's figure cannot be chosen.
    assert.equal(chooseCandidate([cand('x', 0.98, null)], 'energy', 1), null);
  });
});

describe('validation split', () => {
  test('the tail of the training split, disjoint from fine-tuning data and from the test split', () => {
    const splits = searchSplits(8000, 1000, 9000);
    assert.deepEqual(splits, { trainCount: 8000, trainLimit: 7000, validationStart: 7000, validationCount: 1000, modelTrainedOn: null }, 'fine-tuning is clamped to the examples before the validation block');
    assert.throws(() => searchSplits(8000, 8000, 10), /leaves no training examples/);

    const { feed } = validationFeed('mnist', teacher, 300, 500);
    const base = openDatasetFeed('mnist', teacher, {});
    assert.equal(feed.counts.test, 300);
    assert.equal(feed.counts.train, base.counts.train - 300);
    const idx = Array.from({ length: 300 }, (_, i) => i);
    const val = feed.batch('test', idx);
    const tail = base.batch('train', idx.map((i) => base.counts.train - 300 + i));
    const data = (b: typeof val) => Object.values(b.feeds)[0]!.data as Float32Array;
    assert.deepEqual(data(val), data(tail), 'validation examples are the training tail');
    assert.deepEqual(val.labels, tail.labels);
    // No validation image is a test image.
    const hash = (a: Float32Array, i: number) => createHash('sha1').update(new Uint8Array(a.buffer, a.byteOffset + i * 784 * 4, 784 * 4)).digest('hex');
    const test = base.batch('test', Array.from({ length: base.counts.test }, (_, i) => i));
    const testHashes = new Set(Array.from({ length: test.count }, (_, i) => hash(data(test), i)));
    for (let i = 0; i < val.count; i++) assert.ok(!testHashes.has(hash(data(val), i)), `validation example ${i} is not in the test split`);
    assert.throws(() => feed.batch('test', [300]), /outside \[0, 300\)/);
  });

  test('the embedded teacher never saw the search\'s default validation block; a model that did gets a note', () => {
    // scripts/train-teachers.ts trains on all but the last SEARCH_DEFAULTS.mnist.validation examples and the
    // trainer records that prefix in the model's metadata.
    const seen = trainedOn(teacher).mnist;
    assert.equal(seen, DATASETS.mnist.sizes.train - SEARCH_DEFAULTS.mnist.validation);
    const { splits } = validationFeed('mnist', teacher, SEARCH_DEFAULTS.mnist.validation, 500);
    assert.equal(splits.modelTrainedOn, seen);
    assert.equal(validationOverlapNote(splits), null);

    const overfit = cloneModel(teacher);
    recordTrainedOn(overfit, 'mnist', 7500);
    assert.equal(trainedOn(overfit).mnist, 7500);
    recordTrainedOn(overfit, 'mnist', 100);
    assert.equal(trainedOn(overfit).mnist, 7500, 'a later, shorter fine-tune does not unsee examples');
    const note = validationOverlapNote(validationFeed('mnist', overfit, 1000, 500).splits);
    assert.match(note ?? '', /trained on 500 of the 1000 validation examples/);
    const anon = cloneModel(teacher);
    anon.extras.metadataProps = anon.extras.metadataProps?.filter(([k]) => k !== TRAINED_ON_METADATA_KEY);
    assert.equal(validationFeed('mnist', anon, 1000, 500).splits.modelTrainedOn, null);
  });
});

const small = (extra: Partial<SearchOptions>): SearchOptions => ({
  model: teacher,
  dataset: 'mnist',
  maxDropPoints: 1,
  validationCount: 300,
  trainLimit: 256,
  profileSeconds: 0.2,
  warmup: 1,
  ...extra,
});

describe('search on the MNIST teacher', () => {
  test('--max-drop is respected; the cost model and rejected prefixes skip fine-tunes; a rerun uses the cache; a damaged entry is rebuilt', async () => {
    const cacheDir = path.join(dir, 'cache');
    const candidates = selectCandidates(['int8-dynamic', 'structured-0.75', 'magnitude-0.5', 'structured-0.75+int8-dynamic']);
    const lines1: string[] = [];
    const r1 = await searchCandidates(small({ candidates, cacheDir, onProgress: (l) => lines1.push(l) }));
    const by = (r: typeof r1, id: string) => r.candidates.find((c) => c.pipeline === id)!;
    assert.equal(r1.reference.accuracyDeltaPoints, 0);
    // Removing three quarters of every layer after a 256-example fine-tune costs far more than a point.
    const s75 = by(r1, 'structured-0.75');
    assert.equal(s75.status, 'rejected');
    assert.ok(s75.accuracyDeltaPoints! < -1, `structured-0.75 drops ${s75.accuracyDeltaPoints}`);
    assert.match(s75.reason!, /more than --max-drop 1/);
    assert.equal(by(r1, 'structured-0.75+int8-dynamic').skippedBy, 'prefix-rejected');
    // Magnitude pruning leaves the dense FLOPs as they are: it cannot beat int8-dynamic on energy.
    assert.equal(by(r1, 'magnitude-0.5').skippedBy, 'cost-model');
    assert.match(by(r1, 'magnitude-0.5').reason!, /FLOPs/);
    assert.equal(r1.fineTunesSaved, 1, "magnitude-0.5; the rejected prefix was trained already, so skipping its int8 form saves no fine-tune");
    assert.ok(r1.chosen, 'int8-dynamic stays within a point');
    assert.ok(r1.chosen.accuracyDeltaPoints! >= -1);
    assert.notEqual(r1.chosen.pipeline, 'structured-0.75');
    for (const c of [r1.reference, ...r1.candidates.filter((c) => c.status !== 'skipped')]) {
      assert.ok(c.joulesPerInference === null || c.joulesPerInference! > 0);
      assert.match(c.energySource!, /^(measured|estimated):/);
    }
    assert.ok(lines1.some((l) => /training on 256 examples/.test(l)), 'the first run fine-tunes');
    assert.ok(r1.candidates.every((c) => !c.cached));

    // Rerun: every built candidate comes from the cache, with the same accuracy, and nothing trains.
    const lines2: string[] = [];
    const r2 = await searchCandidates(small({ candidates, cacheDir, onProgress: (l) => lines2.push(l) }));
    for (const id of ['int8-dynamic', 'structured-0.75']) {
      assert.equal(by(r2, id).cached, true, `${id} is cached`);
      assert.equal(by(r2, id).accuracy, by(r1, id).accuracy);
    }
    assert.ok(!lines2.some((l) => /training on|fine-tuning|quantiz/.test(l)), `no step ran on the rerun:\n${lines2.join('\n')}`);

    // Damage every cached model file: the checksums catch it and the candidates are rebuilt, not trusted.
    for (const f of readdirSync(cacheDir).filter((f) => f.endsWith('.onnx'))) {
      const p = path.join(cacheDir, f);
      const b = readFileSync(p);
      b[b.length >> 1] ^= 0xff;
      writeFileSync(p, b);
    }
    const r3 = await searchCandidates(small({ candidates: selectCandidates(['int8-dynamic']), cacheDir }));
    assert.equal(by(r3, 'int8-dynamic').cached, false, 'a damaged entry is a miss');
    assert.equal(by(r3, 'int8-dynamic').accuracy, by(r1, 'int8-dynamic').accuracy, 'and the rebuilt candidate scores the same');
  });

  test('a budget that runs out returns the best so far, with a note', async () => {
    let now = 0;
    // Each look at the clock moves it 30 s: candidates 1 and 2 start (at 30 s and 60 s), the third (at 90 s) would not.
    const clock = () => (now += 30) - 30;
    const candidates = selectCandidates(['fp16', 'int8-dynamic', 'int4', 'structured-0.25']);
    const r = await searchCandidates(small({ candidates, budgetSeconds: 70, clock }));
    assert.deepEqual(r.candidates.map((c) => c.skippedBy ?? c.status), ['evaluated', 'evaluated', 'budget', 'budget']);
    assert.ok(r.chosen && ['fp16', 'int8-dynamic'].includes(r.chosen.pipeline), 'the best of those tried');
    assert.match(r.notes.join('\n'), /time budget of 70 s ran out after 2 of 4 candidates/);
  });

  test('bad options are clear errors naming the option', async () => {
    await assert.rejects(searchCandidates(small({ maxDropPoints: -1 })), /accuracy drop must be a number of points ≥ 0/);
    await assert.rejects(searchCandidates(small({ budgetSeconds: -5 })), /time budget must be positive/);
    await assert.rejects(searchCandidates(small({ objective: 'speed' as never })), /unknown objective 'speed'/);
    await assert.rejects(searchCandidates(small({ dataset: 'spam' })), /--dataset spam does not fit this model/);
    assert.throws(() => selectCandidates(['int9']), /unknown candidate 'int9'/);
  });
});

describe('efficient attention as candidates', () => {
  test('the spam teacher gets linear-attention candidates (converted and fine-tuned); the CNN rejects them with the reason and the search goes on', async () => {
    const spam = await loadModel(path.resolve('models/spam-transformer.onnx'));
    const candidates = selectCandidates(['attention-linear', 'attention-linear+int8-dynamic']);
    const lines: string[] = [];
    const r = await searchCandidates({ model: spam, dataset: 'spam', maxDropPoints: 5, validationCount: 40, trainLimit: 16, profileSeconds: 0.1, warmup: 1, candidates, onProgress: (l) => lines.push(l) });
    const lin = r.candidates.find((c) => c.pipeline === 'attention-linear')!;
    assert.equal(lin.status, 'evaluated', lin.reason);
    assert.ok(lines.some((l) => /converting attention to linear/.test(l)), 'the step converted and fine-tuned');
    assert.ok(r.candidates.find((c) => c.pipeline === 'attention-linear+int8-dynamic')!.status !== 'rejected' || /more than/.test(r.candidates.find((c) => c.pipeline === 'attention-linear+int8-dynamic')!.reason!));

    const cnn = await searchCandidates(small({ candidates: selectCandidates(['int8-dynamic', 'attention-linear']) }));
    const att = cnn.candidates.find((c) => c.pipeline === 'attention-linear')!;
    assert.equal(att.status, 'rejected');
    assert.match(att.reason!, /no attention to convert/);
    assert.equal(cnn.candidates.find((c) => c.pipeline === 'int8-dynamic')!.status, 'evaluated');
  });
});
