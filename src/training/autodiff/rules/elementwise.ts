import type { GradRuleTable } from './types.js';

/** Gradient rules: elementwise family (filled in by its owner). */
export const elementwiseRules: GradRuleTable = {};
