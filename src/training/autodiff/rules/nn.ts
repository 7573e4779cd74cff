import { convRules } from './conv.js';
import { normRules } from './norm.js';
import { poolRules } from './pool.js';
import type { GradRuleTable } from './types.js';

/**
 * Gradient rules for neural-network layers: Conv (conv.ts), pooling (pool.ts), LayerNormalization and
 * inference-mode BatchNormalization (norm.ts). ORT's CPU provider runs these in float32 only.
 */
export const nnRules: GradRuleTable = {
  ...convRules,
  ...poolRules,
  ...normRules,
};
