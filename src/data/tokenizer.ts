/**
 * A deterministic word-level tokenizer for long-sequence text classification (512 to 4,096 tokens).
 *
 * Text is lower-cased and split into runs of letters/digits; URLs, e-mail addresses and all-digit runs
 * become the placeholders [URL], [EMAIL] and [NUM] (they are numerous and nearly all unique, so they would
 * otherwise flood the vocabulary while each carries almost no signal beyond "there is a URL here").
 * The vocabulary is the top-K words of the training texts by frequency, ties broken by code-unit order of
 * the word, so the same texts always give the same ids, independent of locale and insertion order.
 * Word-level (rather than subword) keeps the tokenizer tiny, exact and fast in JS; the [UNK] rate it costs
 * is measured on held-out data by {@link WordTokenizer.coverage}.
 */
import { endianness } from 'node:os';
import { FrugalError } from '../errors.js';

/** Padding id; padded positions also have mask 0. */
export const PAD_ID = 0;
/** Id of any word outside the vocabulary. */
export const UNK_ID = 1;
/** Id placed at position 0 of every sequence (its state is what a classifier head reads). */
export const CLS_ID = 2;
/** Separator id, reserved for pair inputs; single-text `encode` does not emit it. */
export const SEP_ID = 3;

/** The reserved tokens, at ids 0..6; every vocabulary starts with them. */
export const SPECIAL_TOKENS = Object.freeze(['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[NUM]', '[URL]', '[EMAIL]'] as const);

/** Default vocabulary size (special tokens included). */
export const DEFAULT_VOCAB_SIZE = 8192;
/** Default sequence length of {@link WordTokenizer.encode}. */
export const DEFAULT_MAX_LENGTH = 512;
/** Words longer than this become [UNK] outright (base64 blobs, hashes): they never recur. */
export const MAX_WORD_LENGTH = 40;

const JSON_FORMAT = 'frugal-word-tokenizer';
const JSON_VERSION = 1;

// Group 1: URL; group 2: e-mail; group 3: word. Quantifiers are bounded so that long runs of
// punctuation-joined text cannot make the e-mail branch backtrack quadratically.
const TOKEN_RE =
  /((?:https?|ftp):\/\/[^\s<>"'()]+|www\.[^\s<>"'()]+)|([a-z0-9._%+-]{1,64}@[a-z0-9-]{1,63}(?:\.[a-z0-9-]{1,63}){1,8})|([\p{L}\p{N}]+)/gu;
const DIGITS_RE = /^\p{N}+$/u;
const LITTLE_ENDIAN = endianness() === 'LE';

/** Splits `text` into normalised word strings (placeholders included); no vocabulary involved. */
export function tokenize(text: string): string[] {
  const out: string[] = [];
  for (const m of text.toLowerCase().matchAll(TOKEN_RE)) {
    if (m[1] !== undefined) out.push('[URL]');
    else if (m[2] !== undefined) out.push('[EMAIL]');
    else {
      const w = m[3]!;
      if (w.length > MAX_WORD_LENGTH) out.push('[UNK]');
      else if (DIGITS_RE.test(w)) out.push('[NUM]');
      else out.push(w);
    }
  }
  return out;
}

/** One encoded text. */
export interface Encoding {
  /** maxLength ids: [CLS], then the first maxLength - 1 tokens, then [PAD] (0). */
  ids: Int32Array;
  /** 1 where `ids` holds a real token ([CLS] included), 0 on padding. */
  mask: Uint8Array;
  /** Number of real tokens ([CLS] included), i.e. the number of 1s in `mask`. */
  length: number;
}

/** A batch of encoded texts, row-major [count, maxLength]. */
export interface EncodedBatch {
  /** Ids as int64 (ONNX Gather/Embedding indices are usually int64). */
  ids: BigInt64Array;
  /** The same ids as int32. */
  ids32: Int32Array;
  /** 1 on real tokens, 0 on padding. */
  mask: Uint8Array;
  /** Real tokens per row ([CLS] included). */
  lengths: Int32Array;
  count: number;
  maxLength: number;
  /** [count, maxLength], for building ONNX tensors. */
  dims: [number, number];
}

/** Token counts of {@link WordTokenizer.coverage}. */
export interface Coverage {
  /** Words seen (before truncation, [CLS] not counted). */
  tokens: number;
  /** How many of them map to [UNK]. */
  unknown: number;
  /** unknown / tokens (0 for no tokens). */
  unkFraction: number;
}

/** The serialised form of a {@link WordTokenizer} (what `toJSON` returns and `fromJSON` accepts). */
export interface TokenizerJSON {
  format: typeof JSON_FORMAT;
  version: number;
  /** Token strings by id. */
  vocab: string[];
}

/** Options for {@link WordTokenizer.fit}. */
export interface FitOptions {
  /** Total vocabulary size, special tokens included (default 8,192). */
  vocabSize?: number;
  /** Words seen fewer times than this are left out even if there is room (default 1). */
  minFrequency?: number;
}

/** Converts int32 ids to int64 without a BigInt per element where the platform is little-endian. */
export function toInt64(src: Int32Array): BigInt64Array {
  const out = new BigInt64Array(src.length);
  if (LITTLE_ENDIAN) {
    const words = new Int32Array(out.buffer);
    for (let i = 0; i < src.length; i++) {
      const v = src[i]!;
      words[2 * i] = v;
      words[2 * i + 1] = v < 0 ? -1 : 0;
    }
  } else {
    for (let i = 0; i < src.length; i++) out[i] = BigInt(src[i]!);
  }
  return out;
}

function checkMaxLength(maxLength: number): void {
  if (!Number.isInteger(maxLength) || maxLength < 1) {
    throw new FrugalError('E_USAGE', `tokenizer: maxLength must be a positive integer, got ${maxLength}`);
  }
}

/** Word-level tokenizer with a frequency-ranked vocabulary. Immutable once built. */
export class WordTokenizer {
  private readonly vocab: readonly string[];
  private readonly index: Map<string, number>;

  private constructor(vocab: readonly string[]) {
    this.vocab = Object.freeze(vocab.slice());
    this.index = new Map(vocab.map((t, i) => [t, i]));
  }

  /**
   * Builds the vocabulary from `texts` (pass the TRAIN split only, so test words stay unseen): the
   * special tokens, then the most frequent words, ties broken by code-unit order.
   */
  static fit(texts: Iterable<string>, opts: FitOptions = {}): WordTokenizer {
    const vocabSize = opts.vocabSize ?? DEFAULT_VOCAB_SIZE;
    const minFrequency = opts.minFrequency ?? 1;
    if (!Number.isInteger(vocabSize) || vocabSize < SPECIAL_TOKENS.length) {
      throw new FrugalError('E_USAGE', `tokenizer: vocabSize must be an integer >= ${SPECIAL_TOKENS.length}, got ${vocabSize}`);
    }
    const special = new Set<string>(SPECIAL_TOKENS);
    const counts = new Map<string, number>();
    for (const text of texts) {
      for (const w of tokenize(text)) {
        if (!special.has(w)) counts.set(w, (counts.get(w) ?? 0) + 1);
      }
    }
    const ranked = [...counts].filter(([, c]) => c >= minFrequency);
    ranked.sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    const words = ranked.slice(0, vocabSize - SPECIAL_TOKENS.length).map(([w]) => w);
    return new WordTokenizer([...SPECIAL_TOKENS, ...words]);
  }

  /** Rebuilds a tokenizer from {@link WordTokenizer.toJSON} output (an object or its JSON string). */
  static fromJSON(json: TokenizerJSON | string): WordTokenizer {
    let obj: unknown = json;
    if (typeof json === 'string') {
      try {
        obj = JSON.parse(json);
      } catch (e) {
        throw new FrugalError('E_DATA', 'tokenizer: fromJSON got a string that is not JSON', { cause: e });
      }
    }
    const o = obj as Partial<TokenizerJSON> | null;
    if (!o || o.format !== JSON_FORMAT || o.version !== JSON_VERSION) {
      throw new FrugalError('E_DATA', `tokenizer: expected format "${JSON_FORMAT}" version ${JSON_VERSION}`);
    }
    const vocab = o.vocab;
    if (!Array.isArray(vocab) || !vocab.every((t) => typeof t === 'string')) {
      throw new FrugalError('E_DATA', 'tokenizer: "vocab" must be an array of strings');
    }
    if (SPECIAL_TOKENS.some((t, i) => vocab[i] !== t)) {
      throw new FrugalError('E_DATA', `tokenizer: vocab must start with ${SPECIAL_TOKENS.join(' ')}`);
    }
    if (new Set(vocab).size !== vocab.length) throw new FrugalError('E_DATA', 'tokenizer: vocab has duplicate entries');
    return new WordTokenizer(vocab);
  }

  /** Number of ids (special tokens included); embedding tables need this many rows. */
  get vocabSize(): number {
    return this.vocab.length;
  }

  /** Id of `token` (a normalised word or a special token), or [UNK]'s id. */
  idOf(token: string): number {
    return this.index.get(token) ?? UNK_ID;
  }

  /** Token string of `id` (throws on an id outside the vocabulary). */
  tokenOf(id: number): string {
    const t = this.vocab[id];
    if (t === undefined) throw new FrugalError('E_USAGE', `tokenizer: id ${id} is outside the vocabulary (size ${this.vocabSize})`);
    return t;
  }

  /** Ids of every word of `text`, untruncated and without [CLS]. */
  tokenIds(text: string): number[] {
    return tokenize(text).map((w) => this.index.get(w) ?? UNK_ID);
  }

  /** Encodes into a fixed-length row: [CLS] + the first maxLength - 1 word ids, padded with 0. */
  encode(text: string, maxLength: number = DEFAULT_MAX_LENGTH): Encoding {
    checkMaxLength(maxLength);
    const ids = new Int32Array(maxLength);
    const mask = new Uint8Array(maxLength);
    const length = this.encodeInto(text, maxLength, ids, mask, 0);
    return { ids, mask, length };
  }

  /** Encodes many texts into one [count, maxLength] batch, in int64 and int32 forms. */
  encodeBatch(texts: readonly string[], maxLength: number = DEFAULT_MAX_LENGTH): EncodedBatch {
    checkMaxLength(maxLength);
    const n = texts.length;
    const ids32 = new Int32Array(n * maxLength);
    const mask = new Uint8Array(n * maxLength);
    const lengths = new Int32Array(n);
    for (let r = 0; r < n; r++) lengths[r] = this.encodeInto(texts[r]!, maxLength, ids32, mask, r * maxLength);
    return { ids: toInt64(ids32), ids32, mask, lengths, count: n, maxLength, dims: [n, maxLength] };
  }

  /**
   * Writes one encoded row at `offset` of `ids`/`mask` (which must be zero there) and returns its length.
   * Tokenizes lazily and stops at maxLength, so a huge message costs no more than its first tokens.
   */
  encodeInto(text: string, maxLength: number, ids: Int32Array, mask: Uint8Array, offset: number): number {
    ids[offset] = CLS_ID;
    mask[offset] = 1;
    let len = 1;
    if (len >= maxLength) return len;
    for (const m of text.toLowerCase().matchAll(TOKEN_RE)) {
      let id: number;
      if (m[1] !== undefined) id = this.index.get('[URL]')!;
      else if (m[2] !== undefined) id = this.index.get('[EMAIL]')!;
      else {
        const w = m[3]!;
        if (w.length > MAX_WORD_LENGTH) id = UNK_ID;
        else if (DIGITS_RE.test(w)) id = this.index.get('[NUM]')!;
        else id = this.index.get(w) ?? UNK_ID;
      }
      ids[offset + len] = id;
      mask[offset + len] = 1;
      if (++len >= maxLength) break;
    }
    return len;
  }

  /** Token strings of `ids`, stopping at the first [PAD]; for debugging and examples. */
  decode(ids: ArrayLike<number | bigint>): string[] {
    const out: string[] = [];
    for (let i = 0; i < ids.length; i++) {
      const id = Number(ids[i]);
      if (id === PAD_ID) break;
      out.push(this.tokenOf(id));
    }
    return out;
  }

  /** How many words of `texts` are unknown to this vocabulary (whole texts, no truncation). */
  coverage(texts: Iterable<string>): Coverage {
    let tokens = 0;
    let unknown = 0;
    for (const text of texts) {
      for (const id of this.tokenIds(text)) {
        tokens++;
        if (id === UNK_ID) unknown++;
      }
    }
    return { tokens, unknown, unkFraction: tokens ? unknown / tokens : 0 };
  }

  /** The vocabulary as plain JSON, to ship next to a trained model. */
  toJSON(): TokenizerJSON {
    return { format: JSON_FORMAT, version: JSON_VERSION, vocab: this.vocab.slice() };
  }
}
