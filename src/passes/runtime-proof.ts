/**
 * The promise that makes a pass's success mean something: its output loads in ONNX Runtime and runs.
 * The PassManager (with `proveInRuntime`) proves the input once and the output of every pass that
 * changed the model; a pass whose output does less than its input did (no longer loads, or no longer
 * runs on the same seeded random inputs) fails with the runtime's reason instead of reporting success.
 */
import { FrugalError } from '../errors.js';
import type { Model } from '../ir/model.js';
import { createSession, feedSpecsOf, randomFeeds } from '../runtime/index.js';

/** What ONNX Runtime made of a model. */
export interface RuntimeProof {
  /** A CPU session was created. */
  loaded: boolean;
  /** The session ran once on seeded random inputs (seed 0, symbolic dims 1). */
  ran: boolean;
  /** Why loading or running failed (ORT's message), or why the check was not attempted. */
  reason?: string;
  /** True when the check was not attempted at all (see `reason`). */
  skipped?: boolean;
}

/**
 * Above this many bytes of initializers the model is not encoded a second time in memory for the check
 * (DESIGN: a 2 GB model is never copied whole into the heap twice; protobuf also stops at 2 GiB).
 */
export const RUNTIME_PROOF_MAX_BYTES = 1024 * 1024 * 1024;

/** Why `model` cannot be proven from memory, or undefined when it can. */
function unprovable(model: Model): string | undefined {
  let bytes = 0;
  for (const g of model.allGraphs()) {
    for (const v of g.initializers()) {
      const t = v.initializer!;
      // ORT resolves external data of an in-memory model against the working directory, not the
      // model's folder, so such a model cannot be loaded from bytes.
      if (t.external && !t.isLoaded) return `initializer '${v.name}' is in external data; check the written file with 'frugal run <out.onnx>'`;
      bytes += t.byteLength;
    }
  }
  if (bytes > RUNTIME_PROOF_MAX_BYTES) return `initializers over ${RUNTIME_PROOF_MAX_BYTES / 2 ** 30} GiB are not copied for the check; check the written file with 'frugal run <out.onnx>'`;
  return undefined;
}

const firstLine = (e: unknown): string => String((e as Error)?.message ?? e).split('\n')[0]!.slice(0, 400).replace(/[.\s]+$/, '');

/** Loads `model` in a CPU session and runs it once on seeded random inputs; never throws. */
export async function proveInRuntime(model: Model): Promise<RuntimeProof> {
  const why = unprovable(model);
  if (why) return { loaded: false, ran: false, skipped: true, reason: why };
  let session;
  try {
    session = await createSession(model, { logSeverity: 4 });
  } catch (e) {
    return { loaded: false, ran: false, reason: firstLine(e) };
  }
  try {
    // Non-tensor outputs (ZipMap's maps) cannot be fetched through the Node binding; the tensors can.
    const outputs = model.graph.outputs.filter((o) => !o.type || o.type.kind === 'tensor').map((o) => o.name);
    await session.run(randomFeeds(feedSpecsOf(model), { seed: 0 }), outputs.length ? { outputs } : {});
    return { loaded: true, ran: true };
  } catch (e) {
    return { loaded: true, ran: false, reason: firstLine(e) };
  } finally {
    await session.release();
  }
}

/**
 * Compares a pass's output with its input: an error message when the output does less in ORT than the
 * input did, a warning when the check says little (neither ran, or it was skipped), else undefined.
 */
export function judgeProof(passName: string, before: RuntimeProof, after: RuntimeProof): { error?: string; warning?: string } {
  if (after.skipped || before.skipped) return { warning: `pass '${passName}': output not loaded in ONNX Runtime: ${(after.skipped ? after : before).reason}` };
  if (before.loaded && !after.loaded) {
    return { error: `pass '${passName}' produced a model that ONNX Runtime cannot load, so it declines (nothing was written): ${after.reason}. Leave the node it names out with --exclude, or report it as a bug` };
  }
  if (before.ran && !after.ran) {
    return { error: `pass '${passName}' produced a model that ONNX Runtime loads but cannot run on inputs the original ran on, so it declines (nothing was written): ${after.reason}` };
  }
  if (!before.loaded) return { warning: `pass '${passName}': the input model does not load in ONNX Runtime either (${before.reason}), so the output was not proven` };
  if (!before.ran) return { warning: `pass '${passName}': the output loads in ONNX Runtime; it was not run because the input does not run on random inputs either (${before.reason})` };
  return {};
}

/**
 * For passes that prove their own output (pruning, whose graph surgery is checked as a postcondition):
 * proves `model` against its input's proof `before`, throws E_UNSUPPORTED naming the pass when the
 * output does less in ONNX Runtime than the input did, and returns what was proven, in words.
 */
export async function requireProven(passName: string, before: RuntimeProof, model: Model): Promise<string> {
  const verdict = judgeProof(passName, before, await proveInRuntime(model));
  if (verdict.error) throw new FrugalError('E_UNSUPPORTED', verdict.error);
  return verdict.warning ?? 'loads and runs';
}
