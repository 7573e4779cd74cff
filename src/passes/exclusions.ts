/**
 * Which nodes a rewriting pass leaves alone (exclusions by name or op type, weights too small to be
 * worth it) and the per-node report of what it did and skipped, which `quantize --json` prints.
 */
import { FrugalError } from '../errors.js';
import type { Model } from '../ir/model.js';
import type { Node } from '../ir/node.js';
import type { Int8WeightScheme } from '../runtime/cpu-features.js';
import { countByCode, skip, type Skip, type SkipCode } from './rules.js';

/** Which nodes a quantization pass must leave alone, and below what size a weight is not worth it. */
export interface ExclusionOptions {
  /** Node names left in float. */
  excludeNodes?: readonly string[];
  /** Op types left in float (`'Conv'`, `'Gemm'`...). */
  excludeOpTypes?: readonly string[];
  /**
   * Weights with fewer elements stay float. Default: 4096 (a 64×64 matrix) in the dynamic pass, where
   * each quantized node quantizes its activation at run time, which for a small weight costs about as
   * much as the integer product saves (and saves under 12 KB); 0 in the static pass, where a layer left
   * float costs Q/DQ and layout boundaries instead (measured on the MNIST teacher, batch 64: leaving
   * its 288- and 1,280-element layers float made it 1.0× fp32 latency instead of 0.57×).
   */
  minElements?: number;
}

/** The dynamic pass's default `minElements`. */
export const DEFAULT_MIN_ELEMENTS = 4096;

/** Why a node is excluded by name or op type, or undefined. */
export function exclusionReason(node: Node, opts: ExclusionOptions): string | undefined {
  if (opts.excludeNodes?.includes(node.name)) return 'excluded by name';
  if (opts.excludeOpTypes?.includes(node.opType)) return `excluded op type ${node.opType}`;
  return undefined;
}

/** Why a weight is too small to quantize, or undefined. */
export function smallTensorReason(numel: number, opts: ExclusionOptions, defaultMin = DEFAULT_MIN_ELEMENTS): string | undefined {
  const min = opts.minElements ?? defaultMin;
  return numel < min ? `small weight (${numel} < ${min} elements)` : undefined;
}

/** `exclusionReason` as a rule's Skip (code 'excluded'), for `applyRules`'s `exclude`. */
export function exclusionSkip(node: Node, opts: ExclusionOptions): Skip | undefined {
  const why = exclusionReason(node, opts);
  return why === undefined ? undefined : skip('excluded', why);
}

/** `smallTensorReason` as a rule's Skip (code 'small-weight'). */
export function smallWeightSkip(numel: number, opts: ExclusionOptions, defaultMin = DEFAULT_MIN_ELEMENTS): Skip | undefined {
  const why = smallTensorReason(numel, opts, defaultMin);
  return why === undefined ? undefined : skip('small-weight', why);
}

/** Checks exclusion options: every excluded node name must exist (a typo would silently do nothing). */
export function checkExclusions(model: Model, opts: ExclusionOptions): void {
  const names = new Set([...model.graph.allNodes()].map((n) => n.name));
  const missing = (opts.excludeNodes ?? []).filter((n) => !names.has(n));
  if (missing.length) throw new FrugalError('E_USAGE', `exclude: no node named ${missing.map((n) => `'${n}'`).join(', ')} in the model`);
  const min = opts.minElements;
  if (min !== undefined && !(Number.isInteger(min) && min >= 0)) throw new FrugalError('E_USAGE', `minElements must be a non-negative integer, got ${min}`);
}

/** What a quantization pass did to one node. */
export interface NodeReport {
  node: string;
  opType: string;
  /** What it became (quantized) or why not (skipped). */
  detail: string;
  /** Why not, as a stable code (skipped nodes of passes written as rules; see rules.ts). */
  code?: SkipCode;
}

/** Stats every quantization pass reports. */
export interface QuantizeStats {
  [key: string]: unknown;
  quantized: NodeReport[];
  skipped: NodeReport[];
  /** Skip reasons with their counts (reasons are grouped by their text before any parenthesis). */
  skippedByReason: Record<string, number>;
  /** Skipped nodes by code (those reported with one). */
  skippedByCode: Partial<Record<SkipCode, number>>;
  /** The int8 weight scheme used and why it was chosen. */
  weightScheme: Int8WeightScheme;
  weightSchemeReason: string;
  /** Float weight bytes replaced by integer bytes. */
  weightBytesBefore: number;
  weightBytesAfter: number;
}

/** Builds the stats object incrementally. */
export class StatsCollector {
  readonly quantized: NodeReport[] = [];
  readonly skipped: NodeReport[] = [];
  bytesBefore = 0;
  bytesAfter = 0;

  done(node: Node, detail: string): void {
    this.quantized.push({ node: node.name, opType: node.opType, detail });
  }

  skip(node: Node, reason: string, code?: SkipCode): void {
    this.skipped.push({ node: node.name, opType: node.opType, detail: reason, ...(code ? { code } : {}) });
  }

  finish(scheme: Int8WeightScheme, schemeReason: string, extra: Record<string, unknown> = {}): QuantizeStats {
    const byReason: Record<string, number> = {};
    for (const s of this.skipped) {
      const key = s.detail.replace(/\s*\(.*$/, '');
      byReason[key] = (byReason[key] ?? 0) + 1;
    }
    return {
      quantized: this.quantized,
      skipped: this.skipped,
      skippedByReason: byReason,
      skippedByCode: countByCode(this.skipped),
      weightScheme: scheme,
      weightSchemeReason: schemeReason,
      weightBytesBefore: this.bytesBefore,
      weightBytesAfter: this.bytesAfter,
      ...extra,
    };
  }
}
