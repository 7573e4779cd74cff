/**
 * Passes: every model-to-model technique (quantize, convert to fp16, prune, rewrite attention, clean up)
 * has one contract: a name, options, preconditions, `run(model) -> { model, modified, stats }`, and
 * postconditions. The PassManager runs a pipeline, names the failing pass in its error, and can verify
 * the IR between passes (tests always do).
 */
import { FrugalError, isFrugalError } from '../errors.js';
import type { Model } from '../ir/model.js';
import { verify } from '../ir/verify.js';
import { judgeProof, proveInRuntime, type RuntimeProof } from './runtime-proof.js';

/** What a pass reports: counts and lists that say what it changed and what it skipped, and why. */
export type PassStats = Record<string, unknown>;

export interface PassResult {
  model: Model;
  /** False when the pass found nothing to do (the model is returned unchanged). */
  modified: boolean;
  stats: PassStats;
}

export interface Pass {
  /** Stable name, kebab-case (`quantize-int8-dynamic`). */
  readonly name: string;
  /** Throws a FrugalError (E_UNSUPPORTED / E_USAGE) naming what the model lacks. */
  checkPreconditions?(model: Model): void;
  /** Transforms the model (in place or into a new one; the result's `model` is authoritative). */
  run(model: Model): PassResult | Promise<PassResult>;
  /** Throws when the output breaks a promise of the pass (beyond the IR's own invariants). */
  checkPostconditions?(result: PassResult): void;
}

export interface PipelineOptions {
  /** Run `verify` after every pass (default true; cheap compared with any pass). */
  verify?: boolean;
  /** Called after each pass. */
  onPass?: (name: string, result: PassResult) => void;
  /**
   * Load the input and each changed output in ONNX Runtime and run it once on seeded random inputs;
   * a pass whose output no longer loads (or runs) where its input did fails with E_UNSUPPORTED and
   * the runtime's reason (see runtime-proof.ts). Default false here; the quantize modes turn it on.
   */
  proveInRuntime?: boolean;
}

export interface PipelineResult {
  model: Model;
  modified: boolean;
  /** Stats of each pass, in order. */
  passes: Array<{ name: string; modified: boolean; stats: PassStats }>;
  /** What could not be proven (with `proveInRuntime`): e.g. the input itself does not run. */
  warnings: string[];
}

/** Runs passes in order; an error from any pass is re-thrown with the pass's name in front. */
export class PassManager {
  constructor(
    readonly passes: readonly Pass[],
    private readonly opts: PipelineOptions = {},
  ) {}

  async run(model: Model): Promise<PipelineResult> {
    const passes: PipelineResult['passes'] = [];
    let current = model;
    let modified = false;
    const warnings: string[] = [];
    let proof: RuntimeProof | undefined = this.opts.proveInRuntime ? await proveInRuntime(model) : undefined;
    if (proof?.skipped) warnings.push(`outputs not loaded in ONNX Runtime: ${proof.reason}`);
    for (const pass of this.passes) {
      let result: PassResult;
      try {
        pass.checkPreconditions?.(current);
        result = await pass.run(current);
        pass.checkPostconditions?.(result);
        if (this.opts.verify !== false) verify(result.model);
      } catch (e) {
        if (isFrugalError(e)) throw new FrugalError(e.code, `pass '${pass.name}': ${e.message}`, { cause: e });
        throw new FrugalError('E_INTERNAL', `pass '${pass.name}' failed: ${(e as Error).message}`, { cause: e });
      }
      if (proof && result.modified && !proof.skipped) {
        const after = await proveInRuntime(result.model);
        const verdict = judgeProof(pass.name, proof, after);
        if (verdict.error) throw new FrugalError('E_UNSUPPORTED', verdict.error);
        if (verdict.warning) warnings.push(verdict.warning);
        proof = after;
      }
      current = result.model;
      modified ||= result.modified;
      passes.push({ name: pass.name, modified: result.modified, stats: result.stats });
      this.opts.onPass?.(pass.name, result);
    }
    return { model: current, modified, passes, warnings };
  }
}

/** Runs one pass with the manager's checks (preconditions, postconditions, verify). */
export async function runPass(pass: Pass, model: Model, opts: PipelineOptions = {}): Promise<PassResult> {
  const r = await new PassManager([pass], opts).run(model);
  return { model: r.model, modified: r.modified, stats: r.passes[0]!.stats };
}
