/**
 * Efficient attention: the forms as graph builders (forms.ts) and the pass that converts a model's
 * softmax attention to one of them (convert.ts). Fine-tuning after conversion is a recipe in
 * training/attention-recovery.ts.
 */
export * from './forms.js';
export * from './convert.js';
