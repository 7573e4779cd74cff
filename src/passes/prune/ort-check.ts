/**
 * The postcondition every pruning pass shares: its output loads in ONNX Runtime and runs on seeded
 * random inputs (symbolic dims bound to 1, text-like inputs kept in small index ranges). A graph the
 * dependency analysis got wrong fails here, with the pass named, instead of in the user's application.
 * Some models do not run on such inputs at all (a decoder whose skip connections need particular
 * sizes); `runsOnRandomInputs` on the input model tells, and then loading is the whole check.
 */
import { FrugalError } from '../../errors.js';
import type { Model } from '../../ir/model.js';
import { createSession, type FrugalSession } from '../../runtime/index.js';
import { feedSpecsOf, randomFeeds } from '../../runtime/feeds.js';

async function runOnce(session: FrugalSession, model: Model): Promise<boolean> {
  const specs = feedSpecsOf(model);
  // Inputs of unknown rank cannot be fed at random.
  if (!specs.every((s) => s.shape && s.elemType !== undefined)) return false;
  // Non-tensor outputs (ZipMap's maps) cannot be fetched through the Node binding; the tensors can.
  const outputs = model.graph.outputs.filter((o) => !o.type || o.type.kind === 'tensor').map((o) => o.name);
  await session.run(randomFeeds(specs, { seed: 0 }), outputs.length ? { outputs } : {});
  return true;
}

/** True when `model` loads and runs on seeded random inputs (never throws). */
export async function runsOnRandomInputs(model: Model): Promise<boolean> {
  let session: FrugalSession | undefined;
  try {
    session = await createSession(model, { name: 'pruning input', intraOpThreads: 1 });
    return await runOnce(session, model);
  } catch {
    return false;
  } finally {
    await session?.release();
  }
}

/** Throws E_INVALID_MODEL naming `pass` unless the model loads (and, with `run`, runs) in ONNX Runtime. */
export async function checkRunsInOrt(model: Model, pass: string, run = true): Promise<void> {
  let session;
  try {
    session = await createSession(model, { name: `${pass} output`, intraOpThreads: 1 });
  } catch (e) {
    throw new FrugalError('E_INVALID_MODEL', `${pass}: ONNX Runtime rejects the pruned model (${(e as Error).message.split('\n')[0]}); this is a bug in the pass, please report it`, { cause: e });
  }
  try {
    if (run) await runOnce(session, model);
  } catch (e) {
    throw new FrugalError('E_INVALID_MODEL', `${pass}: the pruned model fails to run in ONNX Runtime (${(e as Error).message.split('\n')[0]}); this is a bug in the pass, please report it`, { cause: e });
  } finally {
    await session.release();
  }
}
