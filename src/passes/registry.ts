/**
 * The quantization and precision modes as one frozen table (DESIGN principle 7): mode name → what it
 * does, the pass pipeline that does it, and the file name transformers.js looks for, so that
 * `frugal quantize -o onnx/` writes files its users can drop in (transformers.js's
 * DEFAULT_DTYPE_SUFFIX_MAPPING: q8 → `_quantized`, int8 → `_int8`, q4 → `_q4`, fp16 → `_fp16`,
 * q4f16 → `_q4f16`, appended to `model`).
 */
import { FrugalError } from '../errors.js';
import type { Model } from '../ir/model.js';
import { fp16Pass } from './precision/fp16.js';
import { calibrationFeeds, type CalibrationMethod } from './quantize/calibrate.js';
import { int4WeightOnlyPass } from './quantize/int4.js';
import { int8DynamicPass, int8StaticPass } from './quantize/index.js';
import { Tensor } from '../ir/tensor.js';
import { topologicalSort } from '../ir/traversal.js';
import { verify } from '../ir/verify.js';
import { type Pass, PassManager, type PassResult, type PipelineOptions, type PipelineResult } from './pass.js';

export const CALIBRATION_METHODS: readonly CalibrationMethod[] = Object.freeze(['minmax', 'percentile', 'entropy'] as CalibrationMethod[]);

/** Options common to the modes; each mode reads the ones that apply to it. */
export interface QuantizeModeOptions {
  /** One int8 scale per output channel instead of one per tensor. */
  perChannel?: boolean;
  /** Node names or op types to leave alone (a value that names an op type in the model is an op type). */
  exclude?: readonly string[];
  /** int4 block size (power of two, 16 to 256). */
  blockSize?: number;
  /** Weights with fewer elements stay float (defaults: 4096 for int8-dynamic, 1024 for int4, 0 for int8-static). */
  minElements?: number;
  /** int8-static range method. */
  method?: CalibrationMethod;
  /** int8-static calibration samples (from `calibrationFor`). */
  calibration?: Awaited<ReturnType<typeof calibrationFeeds>>;
}

export interface QuantizeMode {
  readonly name: string;
  readonly description: string;
  /** transformers.js `dtype` that loads this file. */
  readonly dtype: string;
  /** File name inside transformers.js's `onnx/` folder. */
  readonly fileName: string;
  /** True when the mode needs calibration data. */
  readonly calibrated: boolean;
  /** The pass pipeline, in order (`model`, when given, tells node names from op types in `exclude`). */
  create(opts: QuantizeModeOptions, model?: Model): Pass[];
  /**
   * Calibration samples from a dataset name or a folder of .pb inputs (calibrated modes only), in
   * batches of `batchSize` dataset examples (default 32; smaller bounds memory for long sequences).
   */
  calibrationFor?(model: Model, source: string, count: number, batchSize?: number): ReturnType<typeof calibrationFeeds>;
}

/** Splits `exclude` values into node names and op types, as the passes take them. */
export function splitExclusions(model: Model | undefined, exclude: readonly string[] = []): { excludeNodes: string[]; excludeOpTypes: string[] } {
  const names = new Set<string>();
  const ops = new Set<string>();
  if (model) for (const n of model.graph.allNodes()) (names.add(n.name), ops.add(n.opType));
  const excludeNodes: string[] = [];
  const excludeOpTypes: string[] = [];
  for (const e of exclude) {
    // A node name wins over an op type; an unknown value that looks like an op type (`Conv`) is one.
    if (names.has(e)) excludeNodes.push(e);
    else if (ops.has(e) || /^[A-Z][A-Za-z0-9]*$/.test(e)) excludeOpTypes.push(e);
    else excludeNodes.push(e);
  }
  return { excludeNodes, excludeOpTypes };
}

const min = (o: QuantizeModeOptions): { minElements?: number } => (o.minElements !== undefined ? { minElements: o.minElements } : {});

export const QUANTIZE_MODES: Readonly<Record<string, QuantizeMode>> = Object.freeze({
  'int8-dynamic': Object.freeze({
    name: 'int8-dynamic',
    description: 'int8 weights, activations quantized at run time (MatMul/Gemm; no calibration data)',
    dtype: 'q8',
    fileName: 'model_quantized.onnx',
    calibrated: false,
    create: (o: QuantizeModeOptions, m?: Model) => [int8DynamicPass({ ...splitExclusions(m, o.exclude), ...(o.perChannel ? { perChannel: true } : {}), ...min(o) })],
  }),
  'int8-static': Object.freeze({
    name: 'int8-static',
    description: 'int8 weights and activations (QDQ), activation ranges calibrated on real inputs',
    dtype: 'int8',
    fileName: 'model_int8.onnx',
    calibrated: true,
    create: (o: QuantizeModeOptions, m?: Model) => {
      if (!o.calibration) throw new FrugalError('E_USAGE', 'int8-static needs calibration data (--calibrate mnist|spam|<folder of .pb inputs>)');
      return [
        int8StaticPass({
          ...splitExclusions(m, o.exclude),
          ...(o.perChannel ? { perChannel: true } : {}),
          ...(o.method ? { method: o.method } : {}),
          ...min(o),
          calibration: o.calibration,
        }),
      ];
    },
    calibrationFor: (model: Model, source: string, count: number, batchSize?: number) => calibrationFeeds(model, source, { count, ...(batchSize ? { batchSize } : {}) }),
  }),
  int4: Object.freeze({
    name: 'int4',
    description: 'int4 weight-only, blockwise (MatMul with constant weights → com.microsoft MatMulNBits)',
    dtype: 'q4',
    fileName: 'model_q4.onnx',
    calibrated: false,
    create: (o: QuantizeModeOptions, m?: Model) => [int4WeightOnlyPass({ ...splitExclusions(m, o.exclude), ...(o.blockSize ? { blockSize: o.blockSize } : {}), ...min(o) })],
  }),
  q4f16: Object.freeze({
    name: 'q4f16',
    description: 'int4 weight-only (MatMulNBits) plus float16 activations and scales: transformers.js\'s q4f16',
    dtype: 'q4f16',
    fileName: 'model_q4f16.onnx',
    calibrated: false,
    create: (o: QuantizeModeOptions, m?: Model) => {
      const ex = splitExclusions(m, o.exclude);
      return [int4WeightOnlyPass({ ...ex, ...(o.blockSize ? { blockSize: o.blockSize } : {}), ...min(o) }), fp16Pass({ excludeNodes: ex.excludeNodes, blockOps: ex.excludeOpTypes })];
    },
  }),
  fp16: Object.freeze({
    name: 'fp16',
    description: 'float16 weights and arithmetic, float32 inputs and outputs kept',
    dtype: 'fp16',
    fileName: 'model_fp16.onnx',
    calibrated: false,
    create: (o: QuantizeModeOptions, m?: Model) => {
      const { excludeNodes, excludeOpTypes } = splitExclusions(m, o.exclude);
      return [fp16Pass({ excludeNodes, blockOps: excludeOpTypes })];
    },
  }),
});

/** The mode named `name`, or an E_USAGE error listing the modes. */
export function getQuantizeMode(name: string): QuantizeMode {
  const m = Object.hasOwn(QUANTIZE_MODES, name) ? QUANTIZE_MODES[name] : undefined;
  if (!m) throw new FrugalError('E_USAGE', `unknown --mode '${name}' (modes: ${Object.keys(QUANTIZE_MODES).join(', ')})`);
  return m;
}

/**
 * Puts a model into the form the quantization passes read: nodes in topological order (exporters do not
 * always write them so: bert-toy, gpt2-past and a Keras export here do not), and `Constant` nodes of the
 * main graph turned into initializers (paddle2onnx writes every PP-OCR weight as a Constant node, which
 * the passes would otherwise not see as constant weights). Exact: outputs are bit-identical.
 */
export const prepareForQuantizationPass: Pass = Object.freeze({
  name: 'prepare-graph',
  run(model: Model): PassResult {
    const before = model.graph.nodes.slice();
    for (const g of model.allGraphs()) topologicalSort(g);
    const reordered = model.graph.nodes.some((n, i) => n !== before[i]);
    const g = model.graph;
    let folded = 0;
    for (const n of [...g.nodes]) {
      if (n.opType !== 'Constant' || n.domain !== '' || n.attributes.size !== 1) continue;
      const out = n.outputs[0];
      const value = n.attr('value');
      if (!out || out.isGraphOutput || !(value instanceof Tensor)) continue;
      const init = g.addInitializer(out.name, value);
      out.replaceAllUsesWith(init);
      g.removeNode(n);
      folded++;
    }
    return { model, modified: reordered || folded > 0, stats: { reordered, constantsToInitializers: folded } };
  },
});

export interface ApplyResult extends PipelineResult {
  /** Problems of the input model that made the IR checks between passes impossible. */
  warnings: string[];
}

/**
 * Runs a mode's pipeline on `model`: `prepareForQuantizationPass`, then the mode's passes, verifying
 * the IR after each and proving each changed output in ONNX Runtime (loaded, and run once on seeded
 * random inputs where the input runs; `pipeline.proveInRuntime: false` turns that off). An input that fails verification even after preparing (a subgraph value shadowing
 * an outer one, which onnxruntime accepts) is still quantized, without the checks, and says so.
 */
export async function applyQuantizeMode(model: Model, mode: string, opts: QuantizeModeOptions = {}, pipeline: PipelineOptions = {}): Promise<ApplyResult> {
  const passes = getQuantizeMode(mode).create(opts, model);
  const prep = await new PassManager([prepareForQuantizationPass], { ...pipeline, verify: false }).run(model);
  const warnings: string[] = [];
  let check = pipeline.verify !== false;
  if (check) {
    try {
      verify(prep.model);
    } catch (e) {
      check = false;
      warnings.push(`the input model does not pass Frugal's IR checks, so they were skipped between passes: ${(e as Error).message.split('\n').slice(0, 2).join(' ')}`);
    }
  }
  // Every mode proves its output in ONNX Runtime unless the caller says otherwise.
  const r = await new PassManager(passes, { proveInRuntime: true, ...pipeline, verify: check }).run(prep.model);
  warnings.push(...r.warnings);
  // `modified` says whether the mode did anything; preparing alone does not count.
  return { model: r.model, modified: r.modified, passes: [...prep.passes, ...r.passes], warnings };
}
