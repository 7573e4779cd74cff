/**
 * Inference sessions over onnxruntime-node with IR tensors in and out. Feeds are checked against the
 * model's declared inputs before ORT sees them, so a wrong name, type or rank gives one clear error
 * naming the input and what it expects instead of a native message.
 */
import * as ort from 'onnxruntime-node';
import { FrugalError, isFrugalError } from '../errors.js';
import { GraphBuilder } from '../ir/builder.js';
import { DataType, dataTypeName, parseDataType } from '../ir/dtype.js';
import type { Model } from '../ir/model.js';
import { Tensor } from '../ir/tensor.js';
import { type Dim, formatShape, type Shape } from '../ir/types.js';
import { encodeModelToBytes } from '../onnx/index.js';
import { type ProviderStatus, resolveProvider } from './providers.js';
import { BINDING_UNSUPPORTED_DTYPES, fromOrtTensor, toOrtTensor } from './tensors.js';

export type GraphOptimizationLevel = 'disabled' | 'basic' | 'extended' | 'all';

export interface SessionOptions {
  /** Execution provider name from `PROVIDERS` (default `cpu`). */
  ep?: string;
  intraOpThreads?: number;
  interOpThreads?: number;
  graphOptimizationLevel?: GraphOptimizationLevel;
  /**
   * ORT log severity: 0 verbose, 1 info, 2 warning, 3 error, 4 fatal. Default: see
   * {@link setDefaultLogSeverity} (4, so ORT prints nothing of its own; its errors reach the caller as
   * FrugalErrors instead).
   */
  logSeverity?: number;
  /** Name used in error messages (defaults to the path, or the model's graph name). */
  name?: string;
  /** Extra ORT session options, merged last (escape hatch for profiling, free dimension overrides...). */
  ortOptions?: ort.InferenceSession.SessionOptions;
}

/** A model input or output as the session sees it. */
export interface TensorInfo {
  name: string;
  /** IR element type id; undefined for non-tensor values (sequences, maps). */
  elemType: number | undefined;
  /** Short dtype name (`float32`), or `non-tensor`. */
  dtype: string;
  /** Dims: numbers, symbolic names, or null for unnamed unknown dims; undefined when the rank is unknown. */
  shape: Shape | undefined;
}

export interface RunOptions {
  /** Fetch only these outputs (default: all). */
  outputs?: string[];
  /**
   * Pre-allocated tensors that ORT writes these outputs into (same type and shape as the output), instead
   * of allocating new ones: the trainer's way to receive gradients where the optimizer reads them.
   */
  targets?: Record<string, ort.Tensor>;
}

/**
 * A loaded model ready to run. Create with `createSession`; call `release()` when done, since the
 * native session holds the weights outside the JS heap.
 */
export class FrugalSession {
  readonly name: string;
  readonly ep: string;
  readonly inputs: readonly TensorInfo[];
  readonly outputs: readonly TensorInfo[];
  private ortSession: ort.InferenceSession | undefined;
  private readonly runLogSeverity: 0 | 1 | 2 | 3 | 4;

  /** @internal use `createSession` */
  constructor(session: ort.InferenceSession, name: string, ep: string, model: Model | undefined, logSeverity = 3) {
    this.ortSession = session;
    // A user who asked for verbose logs keeps them; otherwise run errors are not printed twice.
    this.runLogSeverity = (logSeverity < 3 ? logSeverity : 4) as 0 | 1 | 2 | 4;
    this.name = name;
    this.ep = ep;
    this.inputs = Object.freeze(session.inputNames.map((n, i) => describeValue(n, session.inputMetadata[i], model, 'input')));
    this.outputs = Object.freeze(session.outputNames.map((n, i) => describeValue(n, session.outputMetadata[i], model, 'output')));
  }

  get inputNames(): string[] {
    return this.inputs.map((i) => i.name);
  }

  get outputNames(): string[] {
    return this.outputs.map((o) => o.name);
  }

  /**
   * The underlying ORT session (for IO binding, profiling, ...). Runs made on it directly skip Frugal's
   * checks, including the int4/uint4 guard that keeps the binding from aborting the process.
   */
  get ort(): ort.InferenceSession {
    return this.live();
  }

  /** Checks feeds against the declared inputs; throws E_USAGE naming the first problem. */
  checkFeeds(feeds: Record<string, Tensor>): void {
    const names = Object.keys(feeds);
    const missing = this.inputs.filter((i) => !(i.name in feeds));
    if (missing.length) {
      throw new FrugalError(
        'E_USAGE',
        `model '${this.name}': missing input${missing.length > 1 ? 's' : ''} ${missing.map((m) => `'${m.name}' (${fmt(m)})`).join(', ')}; the model takes ${this.inputs.map((i) => `'${i.name}'`).join(', ')}`,
      );
    }
    const extra = names.filter((n) => !this.inputs.some((i) => i.name === n));
    if (extra.length) {
      throw new FrugalError('E_USAGE', `model '${this.name}': unknown input ${extra.map((n) => `'${n}'`).join(', ')}; the model takes ${this.inputs.map((i) => `'${i.name}' (${fmt(i)})`).join(', ')}`);
    }
    for (const info of this.inputs) {
      const t = feeds[info.name]!;
      const got = `${dataTypeName(t.dtype)}[${t.dims.join(',')}]`;
      if (info.elemType !== undefined && t.dtype !== info.elemType) {
        throw new FrugalError('E_USAGE', `model '${this.name}': input '${info.name}' expects ${fmt(info)} but got ${got}; convert the data to ${info.dtype}`);
      }
      if (BINDING_UNSUPPORTED_DTYPES.includes(t.dtype)) throw bindingUnsupported(this.name, 'input', info.name, t.dtype);
      if (info.shape === undefined) continue;
      if (t.dims.length !== info.shape.length) {
        throw new FrugalError('E_USAGE', `model '${this.name}': input '${info.name}' expects rank ${info.shape.length} (${fmt(info)}) but got rank ${t.dims.length} (${got})`);
      }
      info.shape.forEach((d, k) => {
        if (typeof d === 'number' && t.dims[k] !== d) {
          throw new FrugalError('E_USAGE', `model '${this.name}': input '${info.name}' expects ${fmt(info)} but got ${got} (dimension ${k} must be ${d})`);
        }
      });
    }
  }

  /** Runs the model on IR tensors (validated first) and returns IR tensors named after the outputs. */
  async run(feeds: Record<string, Tensor>, opts: RunOptions = {}): Promise<Record<string, Tensor>> {
    this.checkFeeds(feeds);
    const ortFeeds: Record<string, ort.Tensor> = {};
    for (const [k, t] of Object.entries(feeds)) ortFeeds[k] = toOrtTensor(t.name === k ? t : t.withName(k));
    const res = await this.runOrt(ortFeeds, opts);
    const out: Record<string, Tensor> = {};
    for (const [k, v] of Object.entries(res)) {
      if (!(v instanceof ort.Tensor)) throw new FrugalError('E_UNSUPPORTED', `model '${this.name}': output '${k}' is not a tensor; Frugal reads tensor outputs only`);
      out[k] = fromOrtTensor(v, k);
    }
    return out;
  }

  /** Runs on raw `ort.Tensor` feeds without Frugal's checks (ORT's own errors wrapped as E_RUNTIME). */
  async runOrt(feeds: Record<string, ort.Tensor>, opts: RunOptions = {}): Promise<Record<string, ort.OnnxValue>> {
    const s = this.live();
    if (opts.outputs) {
      const unknown = opts.outputs.filter((o) => !s.outputNames.includes(o));
      if (unknown.length) throw new FrugalError('E_USAGE', `model '${this.name}': unknown output ${unknown.map((o) => `'${o}'`).join(', ')}; outputs are ${s.outputNames.map((o) => `'${o}'`).join(', ')}`);
    }
    // Guard the binding: fetching an int4/uint4 output aborts the process instead of throwing.
    const fetched = opts.outputs ?? s.outputNames;
    for (const o of this.outputs) {
      if (o.elemType !== undefined && fetched.includes(o.name) && BINDING_UNSUPPORTED_DTYPES.includes(o.elemType)) throw bindingUnsupported(this.name, 'output', o.name, o.elemType);
    }
    for (const [k, t] of Object.entries(feeds)) {
      const id = parseDataType(t.type);
      if (id !== undefined && BINDING_UNSUPPORTED_DTYPES.includes(id)) throw bindingUnsupported(this.name, 'input', k, id);
    }
    // ORT would also print a failing run's error to stderr; it reaches the caller as E_RUNTIME instead.
    const runOpts: ort.InferenceSession.RunOptions = { logSeverityLevel: this.runLogSeverity };
    try {
      if (opts.targets) {
        const fetches: Record<string, ort.OnnxValue | null> = {};
        for (const o of fetched) fetches[o] = opts.targets[o] ?? null;
        return await s.run(feeds, fetches, runOpts);
      }
      return opts.outputs ? await s.run(feeds, opts.outputs, runOpts) : await s.run(feeds, runOpts);
    } catch (e) {
      throw new FrugalError('E_RUNTIME', `onnxruntime failed to run model '${this.name}' on ${this.ep}: ${errorText(e)}`, { cause: e });
    }
  }

  /** Frees the native session. Further runs fail with E_USAGE. */
  async release(): Promise<void> {
    const s = this.ortSession;
    this.ortSession = undefined;
    if (s) await s.release();
  }

  private live(): ort.InferenceSession {
    if (!this.ortSession) throw new FrugalError('E_USAGE', `model '${this.name}': the session was released; create a new one`);
    return this.ortSession;
  }
}

type Severity = 0 | 1 | 2 | 3 | 4;
let defaultLogSeverity: Severity = 4;

/**
 * Sets the ORT log severity of sessions created without `logSeverity` (the CLI's `--verbose` sets 2).
 * ORT writes its log lines straight to stderr, so the default (4, fatal only) keeps them off: every ORT
 * failure is reported once, as a FrugalError naming the model.
 */
export function setDefaultLogSeverity(level: number): void {
  if (!(Number.isInteger(level) && level >= 0 && level <= 4)) throw new FrugalError('E_USAGE', `logSeverity must be 0 (verbose) to 4 (fatal), got ${level}`);
  defaultLogSeverity = level as Severity;
  // The process-wide logger (used before a session has its own) follows the same setting.
  ort.env.logLevel = (['verbose', 'info', 'warning', 'error', 'fatal'] as const)[level];
}

/**
 * Loads a model into onnxruntime-node. A `Model` is encoded in memory; a path is handed to ORT as a
 * path so that external data resolves relative to the file; bytes are loaded as they are.
 * Throws E_UNSUPPORTED for an unavailable provider and E_RUNTIME (naming the model) when ORT rejects it.
 */
export async function createSession(model: Model | Uint8Array | string, opts: SessionOptions = {}): Promise<FrugalSession> {
  const provider = resolveProvider(opts.ep);
  const levels: readonly GraphOptimizationLevel[] = ['disabled', 'basic', 'extended', 'all'];
  if (opts.graphOptimizationLevel !== undefined && !levels.includes(opts.graphOptimizationLevel)) {
    throw new FrugalError('E_USAGE', `graphOptimizationLevel must be one of ${levels.join(', ')}, got '${opts.graphOptimizationLevel}'`);
  }
  if (opts.logSeverity !== undefined && !(Number.isInteger(opts.logSeverity) && opts.logSeverity >= 0 && opts.logSeverity <= 4)) {
    throw new FrugalError('E_USAGE', `logSeverity must be 0 (verbose) to 4 (fatal), got ${opts.logSeverity}`);
  }
  const irModel = typeof model === 'string' || model instanceof Uint8Array ? undefined : model;
  const name =
    opts.name ?? (typeof model === 'string' ? model : model instanceof Uint8Array ? `<in-memory model, ${model.byteLength} bytes>` : model.graph.name || '<unnamed model>');
  const ortOpts: ort.InferenceSession.SessionOptions = {
    executionProviders: [provider.ortName],
    logSeverityLevel: (opts.logSeverity ?? defaultLogSeverity) as Severity,
    ...(opts.intraOpThreads !== undefined ? { intraOpNumThreads: checkThreads(opts.intraOpThreads, 'intraOpThreads') } : {}),
    ...(opts.interOpThreads !== undefined ? { interOpNumThreads: checkThreads(opts.interOpThreads, 'interOpThreads') } : {}),
    ...(opts.graphOptimizationLevel ? { graphOptimizationLevel: opts.graphOptimizationLevel } : {}),
    ...opts.ortOptions,
  };
  let source: string | Uint8Array;
  try {
    source = irModel ? encodeModelToBytes(irModel) : (model as string | Uint8Array);
  } catch (e) {
    if (isFrugalError(e)) throw e;
    throw new FrugalError('E_RUNTIME', `cannot encode model '${name}' for onnxruntime: ${errorText(e)}`, { cause: e });
  }
  let session: ort.InferenceSession;
  try {
    session = typeof source === 'string' ? await ort.InferenceSession.create(source, ortOpts) : await ort.InferenceSession.create(source, ortOpts);
  } catch (e) {
    const msg = errorText(e);
    // The 1.30 binding refuses models whose inputs/outputs use types it cannot map (bfloat16, float8).
    const m = /Unsupported data type: (\d+)/.exec(msg);
    if (m) {
      throw new FrugalError('E_UNSUPPORTED', `model '${name}': an input or output has element type ${dataTypeName(Number(m[1]))}, which onnxruntime-node cannot exchange with JS; add a Cast at the model boundary`, { cause: e });
    }
    const hint = provider.name === 'cpu' ? '' : ` (provider '${provider.name}': ${provider.installHint}; try --ep cpu)`;
    throw new FrugalError('E_RUNTIME', `onnxruntime could not load model '${name}': ${msg}${hint}`, { cause: e });
  }
  return new FrugalSession(session, name, provider.name, irModel, opts.logSeverity ?? defaultLogSeverity);
}

/**
 * Checks that a provider really works here by creating a session for a one-node model on it: catches
 * what `availableProviders()` cannot see from files alone (no WebGPU adapter, missing CUDA driver).
 */
export async function probeProvider(name: string): Promise<ProviderStatus> {
  try {
    resolveProvider(name);
    const b = new GraphBuilder('probe');
    b.output(b.op('Identity', [b.input('x', DataType.FLOAT, [1])]), 'y', DataType.FLOAT, [1]);
    const session = await createSession(b.build({ opsetImports: { '': 17 } }), { ep: name, logSeverity: 4 });
    const out = await session.run({ x: Tensor.fromArray(DataType.FLOAT, [1], [1]) });
    await session.release();
    if ((out.y!.toArray() as Float32Array)[0] !== 1) return { name, available: false, reason: 'a test run gave a wrong result' };
    return { name, available: true };
  } catch (e) {
    return { name, available: false, reason: errorText(e) };
  }
}

function bindingUnsupported(model: string, kind: 'input' | 'output', name: string, dtype: number): FrugalError {
  const fix = kind === 'output' ? `fetch the other outputs with { outputs: [...] }, or add DequantizeLinear/Cast so the output is float` : 'feed a wider type and convert inside the model';
  return new FrugalError('E_UNSUPPORTED', `model '${model}': ${kind} '${name}' is ${dataTypeName(dtype)}, which onnxruntime-node 1.30 cannot pass between JS and the runtime; ${fix}`);
}

function checkThreads(n: number, what: string): number {
  if (!Number.isInteger(n) || n < 0) throw new FrugalError('E_USAGE', `${what} must be a non-negative integer (0 lets onnxruntime choose), got ${n}`);
  return n;
}

function describeValue(name: string, meta: ort.InferenceSession.ValueMetadata | undefined, model: Model | undefined, kind: 'input' | 'output'): TensorInfo {
  const irValue = model ? (kind === 'input' ? model.graph.inputs : model.graph.outputs).find((v) => v.name === name) : undefined;
  const irType = irValue?.type;
  if (meta && !meta.isTensor) return { name, elemType: undefined, dtype: 'non-tensor', shape: undefined };
  let elemType: number | undefined;
  let shape: Shape | undefined;
  if (meta && meta.isTensor) {
    elemType = parseDataType(meta.type);
    // ORT reports an unknown-rank value as shape []; only the IR can tell it from a real scalar.
    shape = meta.shape.length ? meta.shape.map((d): Dim => (typeof d === 'string' ? d || null : d)) : undefined;
  }
  if (irType && irType.kind === 'tensor') {
    elemType ??= irType.elemType;
    shape = irType.shape ? [...irType.shape] : undefined;
  }
  return { name, elemType, dtype: elemType === undefined ? 'unknown' : dataTypeName(elemType), shape };
}

function fmt(i: TensorInfo): string {
  return `${i.dtype}${formatShape(i.shape)}`;
}

function errorText(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).trim();
}
