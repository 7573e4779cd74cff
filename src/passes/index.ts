/**
 * Passes: every model-to-model technique follows one contract (`Pass`: name, preconditions,
 * `run(model) → { model, modified, stats }`, postconditions) and runs through a `PassManager`, which
 * names the failing pass in its error. The quantization and precision modes are one table
 * (`QUANTIZE_MODES`); `applyQuantizeMode` runs a mode's pipeline as `frugal quantize` does. Local rewrites
 * are rules (`RewriteRule`: ops, check → match or a typed `Skip`, rewrite) applied by `applyRules`.
 */
export * from './pass.js';
export * from './registry.js';
export { removeIdentityPass, deadCodePass } from './cleanup.js';
export { ANY_OP, applyRules, Skip, skip, SKIP_CODES, type AnyRewriteRule, type ApplyRulesOptions, type ApplyRulesResult, type RewriteRule, type RuleReport, type SkipCode } from './rules.js';
export {
  int8DynamicPass,
  int8StaticPass,
  calibrate,
  calibrationFeeds,
  calibrationFromFeeds,
  type Int8DynamicOptions,
  type Int8StaticOptions,
  type CalibrateOptions,
  type CalibrationData,
  type CalibrationMethod,
  type QuantizeStats,
  type NodeReport,
} from './quantize/index.js';
export { int4WeightOnlyPass, type Int4Options, type Int4Stats } from './quantize/int4.js';
export { fp16Pass, convertToFloat16, type Fp16Options, type Fp16Stats } from './precision/fp16.js';
export * from './attention/index.js';
