import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { isFrugalError } from '../../src/errors.js';
import {
  CLS_ID,
  DATASETS,
  PAD_ID,
  SEP_ID,
  SPECIAL_TOKENS,
  UNK_ID,
  WordTokenizer,
  batches,
  clearMnistCache,
  clearSpamCache,
  encodeTextDataset,
  gatherImages,
  gatherTokens,
  getDataset,
  loadMnist,
  loadSpamAssassin,
  loadSpamCorpus,
  oneHot,
  preprocessEmail,
  stratifiedSplit,
  tokenize,
  type ImageDataset,
} from '../../src/data/index.js';

function imageHashes(ds: ImageDataset): string[] {
  const out: string[] = [];
  for (let i = 0; i < ds.count; i++) {
    const img = ds.images.subarray(i * 784, (i + 1) * 784);
    out.push(createHash('sha1').update(new Uint8Array(img.buffer, img.byteOffset, img.byteLength)).digest('hex'));
  }
  return out;
}

function classCounts(labels: Uint8Array, k: number): number[] {
  const c = new Array<number>(k).fill(0);
  for (const l of labels) c[l]!++;
  return c;
}

function throwsCode(fn: () => unknown, code: Parameters<typeof isFrugalError>[1]): void {
  assert.throws(fn, (e: unknown) => isFrugalError(e, code));
}

// ---------------------------------------------------------------- MNIST

test('mnist: 8000/2000 split of 784 floats in [0,1]', (t) => {
  const t0 = performance.now();
  const { train, test: tst } = loadMnist();
  t.diagnostic(`cold load ${(performance.now() - t0).toFixed(0)} ms`);
  assert.equal(train.count, 8000);
  assert.equal(tst.count, 2000);
  for (const ds of [train, tst]) {
    assert.equal(ds.images.length, ds.count * 784);
    assert.equal(ds.labels.length, ds.count);
    assert.deepEqual(ds.shape, [1, 28, 28]);
    assert.equal(ds.numClasses, 10);
    let lo = Infinity;
    let hi = -Infinity;
    for (const v of ds.images) {
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    assert.ok(lo >= 0 && hi <= 1, `range [${lo}, ${hi}]`);
    assert.ok(hi > 0.9, 'images are not blank');
  }
});

test('mnist: every class in both splits, each >= 5% of test, stratified', () => {
  const { train, test: tst } = loadMnist();
  const tr = classCounts(train.labels, 10);
  const te = classCounts(tst.labels, 10);
  for (let c = 0; c < 10; c++) {
    assert.ok(tr[c]! > 0, `class ${c} in train`);
    assert.ok(te[c]! >= 0.05 * tst.count, `class ${c} is ${te[c]} of test`);
    // Stratified: each class's test share is its corpus share to within one image.
    const ideal = ((tr[c]! + te[c]!) * tst.count) / (train.count + tst.count);
    assert.ok(Math.abs(te[c]! - ideal) <= 1, `class ${c}: ${te[c]} vs ideal ${ideal}`);
  }
});

test('mnist: no image is in both train and test', () => {
  const { train, test: tst } = loadMnist();
  const trainSet = new Set(imageHashes(train));
  const testHashes = imageHashes(tst);
  assert.equal(trainSet.size + new Set(testHashes).size, 10000, 'all 10,000 images distinct and present');
  assert.equal(testHashes.filter((h) => trainSet.has(h)).length, 0);
});

test('mnist: cached, deterministic per seed, different across seeds', (t) => {
  const a = loadMnist();
  const t0 = performance.now();
  const b = loadMnist({ seed: 42 });
  const ms = performance.now() - t0;
  t.diagnostic(`cached load ${ms.toFixed(3)} ms`);
  assert.equal(a, b, 'same object');
  assert.ok(ms < 5);

  clearMnistCache();
  const c = loadMnist();
  assert.notEqual(a, c, 'cache was cleared');
  assert.deepEqual(c.test.labels, a.test.labels);
  assert.deepEqual(c.test.images, a.test.images);
  assert.deepEqual(c.train.images, a.train.images);

  const d = loadMnist({ seed: 7 });
  assert.equal(d.test.count, 2000);
  assert.notDeepEqual(imageHashes(d.test).sort(), imageHashes(a.test).sort(), 'another seed picks other images');
});

test('mnist: rejects a bad testCount', () => {
  throwsCode(() => loadMnist({ testCount: 0 }), 'E_USAGE');
  throwsCode(() => loadMnist({ testCount: 10000 }), 'E_USAGE');
});

// ---------------------------------------------------------------- SpamAssassin

test('spam: whole corpus, both labels, sane spam share, stratified 80/20', (t) => {
  const t0 = performance.now();
  const { train, test: tst } = loadSpamAssassin();
  t.diagnostic(`cold load ${(performance.now() - t0).toFixed(0)} ms`);
  const total = loadSpamCorpus().length;
  assert.equal(total, 6046);
  assert.equal(train.count + tst.count, total);
  assert.equal(tst.count, Math.round(total * 0.2));
  for (const ds of [train, tst]) {
    assert.equal(ds.texts.length, ds.count);
    assert.equal(ds.labels.length, ds.count);
    assert.equal(ds.ids.length, ds.count);
  }
  const spamTrain = classCounts(train.labels, 2)[1]!;
  const spamTest = classCounts(tst.labels, 2)[1]!;
  const overall = (spamTrain + spamTest) / total;
  t.diagnostic(`spam ${spamTrain + spamTest} / ham ${total - spamTrain - spamTest}`);
  assert.ok(overall > 0.2 && overall < 0.5, `spam share ${overall}`);
  assert.ok(spamTest > 0 && spamTest < tst.count);
  assert.ok(Math.abs(spamTest / tst.count - overall) < 0.01);
  assert.ok(Math.abs(spamTrain / train.count - overall) < 0.01);
});

test('spam: no message on both sides; ids map to the right label', () => {
  const { train, test: tst } = loadSpamAssassin();
  const trainIds = new Set(train.ids);
  assert.equal(trainIds.size, train.count);
  assert.equal(new Set(tst.ids).size, tst.count);
  assert.equal(tst.ids.filter((id) => trainIds.has(id)).length, 0);
  for (const ds of [train, tst]) {
    ds.ids.forEach((id, k) => assert.equal(ds.labels[k], id.startsWith('spam-') ? 1 : 0, id));
  }
});

test('spam: cached, deterministic per seed, different across seeds', () => {
  const a = loadSpamAssassin();
  assert.equal(loadSpamAssassin({ seed: 42 }), a);
  clearSpamCache();
  const b = loadSpamAssassin();
  assert.notEqual(a, b);
  assert.deepEqual(b.test.ids, a.test.ids);
  assert.deepEqual(b.train.texts, a.train.texts);
  const c = loadSpamAssassin({ seed: 1 });
  assert.notDeepEqual([...c.test.ids].sort(), [...a.test.ids].sort());
});

test('spam: dedupe drops repeated texts only', () => {
  const d = loadSpamAssassin({ dedupe: true });
  const all = [...d.train.texts, ...d.test.texts];
  assert.equal(new Set(all).size, all.length);
  assert.ok(all.length < 6046 && all.length > 5500);
});

test('spam: headers reduced to the subject', () => {
  const raw =
    'From spammer@x.com  Thu Aug 22 2002\r\nReturn-Path: <a@b.c>\r\nSubject: Cheap\r\n  pills today\r\n' +
    'X-Spam-Status: Yes\r\nReceived: from x\r\n\r\nBody line 1\r\nBody: line 2\r\n';
  assert.equal(preprocessEmail(raw), 'Cheap pills today\n\nBody line 1\nBody: line 2\n');
  assert.equal(preprocessEmail(raw, 'none'), 'Body line 1\nBody: line 2\n');
  assert.ok(preprocessEmail(raw, 'all').includes('X-Spam-Status'));
  const { test: tst } = loadSpamAssassin();
  // Forwarded messages quote headers in their bodies, so allow a few; a header block would hit them all.
  const withHeaders = tst.texts.filter((s) => /^(Return-Path|Received|Delivered-To|X-Spam-[\w-]+):/m.test(s.slice(0, 200)));
  assert.ok(withHeaders.length < 0.01 * tst.count, `${withHeaders.length} texts start with header lines`);
  // The mbox separator line ("From addr  Thu Aug 22 12:36:23 2002") is dropped with the headers.
  assert.ok(tst.texts.every((s) => !/^From \S+@\S+ +\w{3} \w{3} /.test(s)));
  throwsCode(() => loadSpamAssassin({ testFraction: 1 }), 'E_USAGE');
});

// ---------------------------------------------------------------- tokenizer

test('tokenizer: normalisation and placeholders', () => {
  assert.deepEqual(
    tokenize('Hello, WORLD! See https://x.com/a?b=1 or www.y.org, mail Bob.S@Example.co.uk: 12345 items; ab12'),
    ['hello', 'world', 'see', '[URL]', 'or', '[URL]', 'mail', '[EMAIL]', '[NUM]', 'items', 'ab12'],
  );
  assert.deepEqual(tokenize('x'.repeat(100) + ' ok'), ['[UNK]', 'ok']);
});

test('tokenizer: special ids, frequency order with lexicographic ties, [UNK]', () => {
  const tok = WordTokenizer.fit(['b a zeta', 'a b c', 'zeta'], { vocabSize: SPECIAL_TOKENS.length + 3 });
  assert.equal(tok.vocabSize, 10);
  assert.deepEqual([tok.tokenOf(PAD_ID), tok.tokenOf(UNK_ID), tok.tokenOf(CLS_ID), tok.tokenOf(SEP_ID)], [
    '[PAD]',
    '[UNK]',
    '[CLS]',
    '[SEP]',
  ]);
  // a, b and zeta all occur twice: ties go by code-unit order; c (once) does not fit.
  assert.deepEqual(tok.toJSON().vocab.slice(SPECIAL_TOKENS.length), ['a', 'b', 'zeta']);
  const e = tok.encode('A c zeta 42 unseen', 8);
  assert.deepEqual([...e.ids], [CLS_ID, tok.idOf('a'), UNK_ID, tok.idOf('zeta'), tok.idOf('[NUM]'), UNK_ID, 0, 0]);
  assert.deepEqual([...e.mask], [1, 1, 1, 1, 1, 1, 0, 0]);
  assert.equal(e.length, 6);
  assert.deepEqual(tok.decode(e.ids), ['[CLS]', 'a', '[UNK]', 'zeta', '[NUM]', '[UNK]']);
});

test('tokenizer: truncation and padding', () => {
  const tok = WordTokenizer.fit(['one two three four five six']);
  const t = tok.encode('one two three four five six', 4);
  assert.deepEqual(tok.decode(t.ids), ['[CLS]', 'one', 'two', 'three']);
  assert.deepEqual([...t.mask], [1, 1, 1, 1]);
  const p = tok.encode('two', 6);
  assert.deepEqual([...p.ids], [CLS_ID, tok.idOf('two'), PAD_ID, PAD_ID, PAD_ID, PAD_ID]);
  assert.deepEqual([...p.mask], [1, 1, 0, 0, 0, 0]);
  const empty = tok.encode('', 3);
  assert.deepEqual([...empty.ids], [CLS_ID, 0, 0]);
  throwsCode(() => tok.encode('x', 0), 'E_USAGE');
});

test('tokenizer: 4096-token sequences, int64 and int32 batch forms agree', () => {
  const words = Array.from({ length: 5000 }, (_, i) => `w${i % 300}`);
  const tok = WordTokenizer.fit([words.join(' ')]);
  const e = tok.encode(words.join(' '), 4096);
  assert.equal(e.ids.length, 4096);
  assert.equal(e.length, 4096);
  assert.ok(e.mask.every((m) => m === 1));
  assert.equal(e.ids[4095], tok.idOf(words[4094]!));
  const b = tok.encodeBatch([words.join(' '), 'w1 w2', ''], 4096);
  assert.deepEqual(b.dims, [3, 4096]);
  assert.deepEqual([...b.lengths], [4096, 3, 1]);
  assert.ok(b.ids instanceof BigInt64Array);
  assert.deepEqual(Array.from(b.ids, Number), Array.from(b.ids32));
  assert.deepEqual(b.ids32.subarray(0, 4096), e.ids);
});

test('tokenizer on SpamAssassin: train-only vocab, deterministic, JSON round trip', (t) => {
  const { train, test: tst } = loadSpamAssassin();
  const t0 = performance.now();
  const tok = WordTokenizer.fit(train.texts);
  t.diagnostic(`fit ${(performance.now() - t0).toFixed(0)} ms`);
  assert.equal(tok.vocabSize, 8192);
  // Frequency ranking with lexicographic ties does not depend on the order of the texts.
  const again = WordTokenizer.fit([...train.texts].reverse());
  assert.deepEqual(again.toJSON(), tok.toJSON());

  const cov = tok.coverage(tst.texts);
  t.diagnostic(`test [UNK] fraction ${(cov.unkFraction * 100).toFixed(2)}% of ${cov.tokens} tokens`);
  assert.ok(cov.unkFraction > 0 && cov.unkFraction < 0.15);

  const restored = WordTokenizer.fromJSON(JSON.stringify(tok));
  assert.equal(restored.vocabSize, tok.vocabSize);
  const sample = tst.texts.slice(0, 300);
  const a = tok.encodeBatch(sample, 512);
  const b = restored.encodeBatch(sample, 512);
  assert.deepEqual(b.ids32, a.ids32);
  assert.deepEqual(b.mask, a.mask);

  throwsCode(() => WordTokenizer.fromJSON('{"format":"other"}'), 'E_DATA');
  throwsCode(() => WordTokenizer.fromJSON({ ...tok.toJSON(), vocab: ['a'] }), 'E_DATA');
});

// ---------------------------------------------------------------- batching and registry

test('batches: every index exactly once per epoch', () => {
  for (const shuffle of [false, true]) {
    const seen = new Array<number>(103).fill(0);
    const sizes: number[] = [];
    for (const idx of batches(103, 10, { shuffle, seed: 3 })) {
      sizes.push(idx.length);
      for (const i of idx) seen[i]!++;
    }
    assert.ok(seen.every((c) => c === 1));
    assert.deepEqual(sizes, [10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 3]);
  }
  assert.deepEqual([...batches(5, 2)], [[0, 1], [2, 3], [4]]);
  assert.equal([...batches(103, 10, { dropLast: true })].length, 10);
  const e1 = [...batches(50, 7, { shuffle: true, seed: 1 })];
  assert.deepEqual([...batches(50, 7, { shuffle: true, seed: 1 })], e1);
  assert.notDeepEqual([...batches(50, 7, { shuffle: true, seed: 2 })], e1);
  assert.deepEqual([...batches(0, 4)], []);
  throwsCode(() => [...batches(10, 0)], 'E_USAGE');
});

test('stratifiedSplit: exact test size and per-class shares', () => {
  const labels = Uint8Array.from({ length: 101 }, (_, i) => (i < 70 ? 0 : i < 95 ? 1 : 2));
  const { train, test: tst } = stratifiedSplit(labels, 20, 5);
  assert.equal(tst.length, 20);
  assert.equal(train.length, 81);
  assert.equal(new Set([...train, ...tst]).size, 101);
  const te = classCounts(Uint8Array.from(tst, (i) => labels[i]!), 3);
  assert.deepEqual(te, [14, 5, 1]);
});

test('gatherImages and gatherTokens build feed-ready batches', () => {
  const { test: mt } = loadMnist();
  const ib = gatherImages(mt, [5, 0, 1999]);
  assert.deepEqual(ib.dims, [3, 1, 28, 28]);
  assert.deepEqual(ib.images.subarray(784, 1568), mt.images.subarray(0, 784));
  assert.deepEqual([...ib.labels], [mt.labels[5], mt.labels[0], mt.labels[1999]]);
  assert.deepEqual(Array.from(ib.labels64, Number), [...ib.labels]);
  throwsCode(() => gatherImages(mt, [2000]), 'E_USAGE');
  const oh = oneHot(ib.labels, 10);
  assert.equal(oh.length, 30);
  assert.equal(oh[10 + ib.labels[1]!], 1);

  const { train, test: st } = loadSpamAssassin();
  const tok = WordTokenizer.fit(train.texts.slice(0, 500), { vocabSize: 2048 });
  const enc = encodeTextDataset(st, tok, 256);
  const tb = gatherTokens(enc, [7, 3]);
  assert.deepEqual(tb.dims, [2, 256]);
  assert.deepEqual(tb.ids32.subarray(0, 256), tok.encode(st.texts[7]!, 256).ids);
  assert.deepEqual(tb.mask.subarray(256), tok.encode(st.texts[3]!, 256).mask);
  assert.deepEqual(Array.from(tb.ids, Number), Array.from(tb.ids32));
  assert.deepEqual([...tb.labels], [st.labels[7], st.labels[3]]);
});

test('DATASETS: frozen registry with working loaders', () => {
  assert.deepEqual(Object.keys(DATASETS), ['mnist', 'spam']);
  assert.ok(Object.isFrozen(DATASETS) && Object.isFrozen(DATASETS.mnist) && Object.isFrozen(DATASETS.spam.inputShape));
  const m = getDataset('mnist').load();
  assert.equal(m.train.count, DATASETS.mnist.sizes.train);
  assert.equal(m.test.count, DATASETS.mnist.sizes.test);
  const s = getDataset('spam').load();
  assert.equal(s.train.count, DATASETS.spam.sizes.train);
  assert.equal(s.test.count, DATASETS.spam.sizes.test);
  assert.equal(DATASETS.spam.numClasses, 2);
  throwsCode(() => getDataset('cifar'), 'E_USAGE');
});
