import type { GradRuleTable } from './types.js';

/** Gradient rules: shape family (filled in by its owner). */
export const shapeRules: GradRuleTable = {};
