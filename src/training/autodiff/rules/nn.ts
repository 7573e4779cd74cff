import type { GradRuleTable } from './types.js';

/** Gradient rules: nn family (filled in by its owner). */
export const nnRules: GradRuleTable = {};
