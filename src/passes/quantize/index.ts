/**
 * Quantization passes. int8: `int8DynamicPass` (no data needed) and `int8StaticPass` (QDQ, calibrated
 * on real data). The weight range follows the CPU (`recommendInt8Scheme`) unless the caller picks one.
 */
export * from './quant-math.js';
export * from './tensors.js';
export * from '../exclusions.js';
export { int8DynamicPass, type Int8DynamicOptions } from './int8-dynamic.js';
export { int8StaticPass, QDQ_OPS, type Int8StaticOptions } from './qdq.js';
export {
  calibrate,
  calibrationFeeds,
  calibrationFromFeeds,
  entropyThreshold,
  percentileThreshold,
  type CalibrateOptions,
  type CalibrationData,
  type CalibrationMethod,
  type TensorRange,
} from './calibrate.js';
