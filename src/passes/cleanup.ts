/**
 * Common cleanups, used after rewrites: remove Identity nodes (keeping graph output names) and dead
 * code (nodes and initializers nothing reads). Exact rewrites: outputs are bit-identical.
 */
import type { Model } from '../ir/model.js';
import { eliminateDeadCode } from '../ir/traversal.js';
import type { Pass, PassResult } from './pass.js';

/** Identity nodes become direct reads of their input; an Identity feeding a graph output is kept. */
export const removeIdentityPass: Pass = {
  name: 'remove-identity',
  run(model: Model): PassResult {
    let removed = 0;
    let kept = 0;
    for (const g of model.allGraphs()) {
      for (const n of [...g.nodes]) {
        if (n.opType !== 'Identity' || n.domain !== '' || !n.inputs[0] || !n.outputs[0]) continue;
        const out = n.outputs[0];
        // Renaming a graph output would change the model's interface; keep those.
        if (out.isGraphOutput) {
          kept++;
          continue;
        }
        out.replaceAllUsesWith(n.inputs[0]);
        g.removeNode(n);
        removed++;
      }
    }
    return { model, modified: removed > 0, stats: { removed, keptForGraphOutputs: kept } };
  },
};

/** Dead nodes and unread initializers, in every graph of the model. */
export const deadCodePass: Pass = {
  name: 'dead-code',
  run(model: Model): PassResult {
    const before = [...model.allGraphs()].reduce((s, g) => s + g.initializers().length, 0);
    let nodes = eliminateDeadCode(model.graph);
    for (const f of model.functions) nodes += eliminateDeadCode(f.body, { keepInitializers: true });
    const after = [...model.allGraphs()].reduce((s, g) => s + g.initializers().length, 0);
    return { model, modified: nodes > 0 || after < before, stats: { nodesRemoved: nodes, initializersRemoved: before - after } };
  },
};
