/**
 * One shape for local graph rewrites (DESIGN principle 3: pattern, check, rewrite; a failed check says
 * why). A rule names the ops it applies to; `check` looks at a node and either returns what it found (the
 * match: weight data, dims, the values to rewire) or a typed `Skip` saying why not; `rewrite` then edits
 * the graph using only the match, and says what the node became.
 *
 * Invariant: `check` never edits the graph, so a rejected node leaves nothing behind (no quantized copy
 * of its weight, no half-inserted chain). Everything `check` computed travels in the match, so `rewrite`
 * computes nothing twice.
 *
 * `applyRules` walks a graph's nodes once, in order, dispatches each to the rule for its op, and reports
 * every outcome (done, or skipped with its code) to the pass's stats collector.
 *
 * A rule may claim every op (`ops: ANY_OP`) when its question is about each node rather than about an op
 * (e.g. "does this node compute in float16?"); its `check` returns `null` for nodes that are outside
 * the question after all (nothing float about them), which are then not reported. Named rules win over it.
 *
 * What applyRules does not do: edits that are not local to one node. A pass runs them after applyRules
 * returns: int8 and int4 drop the weights their rewrites replaced; the float16 pass's whole edit is such
 * a step, because a value's type depends on its producer's and all its readers' decisions, and each
 * decision reads the graph as it was. Its rule decides and records each node (`rewrite` edits nothing),
 * and the retyping runs once every node is decided (precision/fp16.ts, fp16-retype.ts).
 */
import { FrugalError } from '../errors.js';
import type { Graph } from '../ir/graph.js';
import type { Node } from '../ir/node.js';

/** Why a rule left a node alone, as a stable code (the `detail` text says it for people). */
export const SKIP_CODES = Object.freeze([
  /** Excluded by name or op type by the caller. */
  'excluded',
  /** This kind of rewrite is turned off by an option (Conv left float, embeddings off). */
  'disabled',
  /** The weight is too small to be worth it (`minElements`). */
  'small-weight',
  /** A weight or bias the rewrite needs is not a constant (or is a graph input the caller may override). */
  'not-constant',
  /** The activation input is itself a constant: constant folding, not this rewrite, applies. */
  'constant-input',
  /** An input has an element type the rewrite does not handle (not float32). */
  'not-float',
  /** Rank, axis, transposition or size the rewrite does not handle. */
  'shape',
  /** The model's opset lacks an op the rewrite would emit. */
  'opset',
  /** The op is on a block list (no kernel for the target type, overflow-prone, other domain). */
  'blocked',
  /** A type the decision depends on is unknown (shape inference could not tell). */
  'unknown-type',
  /** A constant holds values the target type cannot represent. */
  'range',
  /** The node holds subgraphs, which the rewrite leaves as they are. */
  'subgraph',
] as const);

export type SkipCode = (typeof SKIP_CODES)[number];

/** A rule's refusal: a stable code and a sentence naming what is at fault. */
export class Skip {
  constructor(
    readonly code: SkipCode,
    readonly detail: string,
  ) {}
}

/** Shorthand for `new Skip(code, detail)`. */
export function skip(code: SkipCode, detail: string): Skip {
  return new Skip(code, detail);
}

/** Skipped entries counted by code (entries without a code are not counted): the `skippedByCode` of every pass's stats. */
export function countByCode(skipped: Iterable<{ code?: SkipCode | undefined }>): Partial<Record<SkipCode, number>> {
  const byCode: Partial<Record<SkipCode, number>> = {};
  for (const s of skipped) if (s.code) byCode[s.code] = (byCode[s.code] ?? 0) + 1;
  return byCode;
}

/** `ops` of a rule that applies to every node, of any domain, that no rule names by op type. */
export const ANY_OP = '*';

/** A local rewrite: which ops, whether a node qualifies (and what was found), and the edit. */
export interface RewriteRule<Ctx, Match> {
  /** Op types (of `domain`) this rule applies to, or `ANY_OP` (then `domain` is not given). */
  readonly ops: readonly string[] | typeof ANY_OP;
  /** The ops' domain (default: the ONNX default domain, '' or 'ai.onnx'). */
  readonly domain?: string;
  /**
   * Every test, no graph edit: the match on success (never null), else why not; or `null`: the node is
   * outside the rule after all (nothing to do and nothing to report).
   */
  check(node: Node, ctx: Ctx): Match | Skip | null;
  /** The edit, from the match alone; returns what the node became (for the report). */
  rewrite(node: Node, match: Match, ctx: Ctx): string;
}

/**
 * A rule whose match type is hidden, so that rules with different matches share a table. `any` rather
 * than `unknown`: a rule's `rewrite` takes exactly its own `check`'s match, which `applyRules` ensures.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyRewriteRule<Ctx> = RewriteRule<Ctx, any>;

/** Where `applyRules` reports each node it dispatched. */
export interface RuleReport {
  done(node: Node, detail: string): void;
  skip(node: Node, detail: string, code: SkipCode): void;
}

export interface ApplyRulesOptions {
  /** Checked before the rule's `check` (exclusions by name or op type): a Skip leaves the node alone. */
  exclude?: (node: Node) => Skip | undefined;
  report: RuleReport;
}

/** What `applyRules` did. */
export interface ApplyRulesResult {
  rewritten: number;
  skipped: number;
}

const normalDomain = (d: string): string => (d === 'ai.onnx' ? '' : d);

/**
 * Applies `rules` to the nodes of `graph` (not its subgraphs), in node order, each node once: nodes the
 * rewrites insert are not visited. At most one rule may claim an (op, domain) pair, and one `ANY_OP`.
 */
export function applyRules<Ctx>(graph: Graph, rules: ReadonlyArray<AnyRewriteRule<Ctx>>, ctx: Ctx, opts: ApplyRulesOptions): ApplyRulesResult {
  const byOp = new Map<string, AnyRewriteRule<Ctx>>();
  let anyOp: AnyRewriteRule<Ctx> | undefined;
  for (const r of rules) {
    if (r.ops === ANY_OP) {
      if (anyOp || r.domain !== undefined) throw new FrugalError('E_INTERNAL', anyOp ? 'two rewrite rules claim every op' : 'a rewrite rule for every op names a domain');
      anyOp = r;
      continue;
    }
    for (const op of r.ops) {
      const key = `${normalDomain(r.domain ?? '')}::${op}`;
      if (byOp.has(key)) throw new FrugalError('E_INTERNAL', `two rewrite rules claim op ${op}`);
      byOp.set(key, r);
    }
  }
  const result: ApplyRulesResult = { rewritten: 0, skipped: 0 };
  for (const node of [...graph.nodes]) {
    const rule = byOp.get(`${normalDomain(node.domain)}::${node.opType}`) ?? anyOp;
    if (!rule) continue;
    const found = opts.exclude?.(node) ?? rule.check(node, ctx);
    if (found === null) continue;
    if (found instanceof Skip) {
      opts.report.skip(node, found.detail, found.code);
      result.skipped++;
      continue;
    }
    // A node the rewrite removed keeps its name and op type, which the report reads.
    opts.report.done(node, rule.rewrite(node, found, ctx));
    result.rewritten++;
  }
  return result;
}
