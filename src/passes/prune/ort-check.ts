/**
 * The postcondition every pruning pass shares: its output loads in ONNX Runtime and runs on seeded
 * random inputs (symbolic dims bound to 1, text-like inputs kept in small index ranges). A graph the
 * dependency analysis got wrong fails here, with the pass named, instead of in the user's application.
 */
import { FrugalError } from '../../errors.js';
import type { Model } from '../../ir/model.js';
import { createSession } from '../../runtime/index.js';
import { feedSpecsOf, randomFeeds } from '../../runtime/feeds.js';

export async function checkRunsInOrt(model: Model, pass: string): Promise<void> {
  let session;
  try {
    session = await createSession(model, { name: `${pass} output`, intraOpThreads: 1 });
  } catch (e) {
    throw new FrugalError('E_INVALID_MODEL', `${pass}: ONNX Runtime rejects the pruned model (${(e as Error).message.split('\n')[0]}); this is a bug in the pass, please report it`, { cause: e });
  }
  try {
    const specs = feedSpecsOf(model);
    // Inputs of unknown rank cannot be fed at random; loading is then the whole check.
    if (specs.every((s) => s.shape && s.elemType !== undefined)) {
      // Non-tensor outputs (ZipMap's maps) cannot be fetched through the Node binding; the tensors can.
      const outputs = model.graph.outputs.filter((o) => !o.type || o.type.kind === 'tensor').map((o) => o.name);
      await session.run(randomFeeds(specs, { seed: 0 }), outputs.length ? { outputs } : {});
    }
  } catch (e) {
    throw new FrugalError('E_INVALID_MODEL', `${pass}: the pruned model fails to run in ONNX Runtime (${(e as Error).message.split('\n')[0]}); this is a bug in the pass, please report it`, { cause: e });
  } finally {
    await session.release();
  }
}
