/** Knowledge distillation: students (zoo spec, file, layer dropping, width reduction), teacher logits, the recipe. */
export * from './distill.js';
export * from './students.js';
export * from './teacher.js';
export { type Family, readFamily, type Weight } from './families.js';
export * from './measure.js';
export { HIDDEN_OUTPUT, HIDDEN_PROJECTION, HIDDEN_TARGET_INPUT, hiddenState } from './hidden.js';
