import { promises as fsp, readFileSync, realpathSync } from 'node:fs';
import path from 'node:path';
import { FrugalError, isFrugalError } from '../errors.js';
import type { Model } from '../ir/model.js';
import type { Tensor } from '../ir/tensor.js';
import { decodeModel } from './decode.js';
import { encodeModel } from './encode.js';
import { chunksByteLength, concatChunks, decodeMessage, encodeMessage } from './proto.js';
import { tensorFromProto, tensorToProto } from './tensor-codec.js';
import { writeAtomically, writeBytesAtomically, writeChunks } from '../util/atomic-write.js';

export { writeChunks };

/** Files a decoded model was read from (model file and external-data files), to refuse overwriting them. */
const sources = new WeakMap<Model, Set<string>>();

function realOrResolved(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    return path.resolve(p);
  }
}

async function readFileChecked(file: string, what: string): Promise<Buffer> {
  try {
    return await fsp.readFile(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a folder' : code === 'EACCES' ? 'permission denied' : (e as Error).message;
    throw new FrugalError('E_IO', `cannot read ${what} '${file}': ${why}`, { cause: e });
  }
}

/**
 * Reads and decodes an `.onnx` file. External data is resolved relative to the file's folder and
 * read lazily. The file's bytes are read once; initializers are views into them.
 */
export async function loadModel(file: string): Promise<Model> {
  const bytes = await readFileChecked(file, 'model');
  let model: Model;
  try {
    model = decodeModel(bytes, { baseDir: path.dirname(path.resolve(file)) });
  } catch (e) {
    if (isFrugalError(e)) {
      e.message = `${file}: ${e.message}`;
      throw e;
    }
    throw new FrugalError('E_DECODE', `${file}: cannot decode model: ${(e as Error).message}`, { cause: e });
  }
  const files = new Set([realOrResolved(file)]);
  for (const g of model.allGraphs()) for (const v of g.initializers()) if (v.initializer!.external?.path) files.add(v.initializer!.external.path);
  sources.set(model, files);
  return model;
}

export interface SaveOptions {
  /**
   * External data policy: `false` writes every tensor inline (fails over 2 GiB); `true` moves
   * initializers of at least `threshold` bytes to one side file; `'auto'` (default) does so only when
   * the model read external data or would exceed the 2 GiB protobuf limit.
   */
  externalData?: boolean | 'auto';
  /** Minimum tensor size in bytes to move out (default 1024, as ONNX's own tools use). */
  threshold?: number;
  /** Side-file name, relative to the model's folder (default `<model file name>_data`). */
  location?: string;
  /** Extra paths that must not be overwritten (e.g. the command's input file). */
  protect?: string[];
}

export interface SaveResult {
  path: string;
  bytes: number;
  externalDataPath?: string;
  externalDataBytes?: number;
  externalTensors: number;
}

/** Protobuf messages cannot exceed 2 GiB. */
const PROTOBUF_LIMIT = 2 ** 31 - 1;
/** Side-file tensors start on 4 KiB boundaries so runtimes can memory-map them. */
const ALIGN = 4096;

/**
 * Encodes and writes a model atomically: everything goes to temporary files in the target folder,
 * which are renamed into place only once complete, so a failure never leaves a half-written model.
 * Refuses to write over the file the model was read from (or any of its external-data files).
 */
export async function saveModel(model: Model, file: string, opts: SaveOptions = {}): Promise<SaveResult> {
  const target = path.resolve(file);
  const dir = path.dirname(target);
  const location = opts.location ?? `${path.basename(target)}_data`;
  const dataPath = path.resolve(dir, location);
  const protectedPaths = new Set([...(sources.get(model) ?? []), ...(opts.protect ?? []).map(realOrResolved)]);
  for (const p of [target, dataPath]) {
    if (protectedPaths.has(realOrResolved(p))) {
      throw new FrugalError('E_USAGE', `refusing to write '${p}': it is the input model or one of its data files; choose another output path`);
    }
  }
  const tensors: Tensor[] = [];
  let inlineBytes = 0;
  let anyExternal = false;
  for (const g of model.allGraphs()) {
    for (const v of g.initializers()) {
      tensors.push(v.initializer!);
      inlineBytes += v.initializer!.byteLength;
      if (v.initializer!.external) anyExternal = true;
    }
  }
  const threshold = opts.threshold ?? 1024;
  const mode = opts.externalData ?? 'auto';
  const useExternal = mode === true || (mode === 'auto' && (anyExternal || inlineBytes > PROTOBUF_LIMIT - 64 * 1024 * 1024));
  const placed: Array<{ t: Tensor; offset: number }> = [];
  let dataEnd = 0;
  const chunks = encodeModel(model, {
    placeExternal: (t) => {
      if (!useExternal || t.isString || t.byteLength < threshold) {
        if (t.external) t.bytes(); // inline it: load from its file now
        return undefined;
      }
      const offset = Math.ceil(dataEnd / ALIGN) * ALIGN;
      placed.push({ t, offset });
      dataEnd = offset + t.byteLength;
      return { location, offset, length: t.byteLength };
    },
  });
  // (A model over protobuf's 2 GiB limit cannot get here: encoding refuses it, naming the fix.)
  const modelBytes = chunksByteLength(chunks);
  await fsp.mkdir(dir, { recursive: true }).catch((e) => {
    throw new FrugalError('E_IO', `cannot create folder '${dir}': ${(e as Error).message}`, { cause: e });
  });
  try {
    // Data file first, then the model: the model never names a side file that is not there yet.
    const targets = placed.length ? [dataPath, target] : [target];
    await writeAtomically(targets, async (temps) => {
      if (placed.length) {
        let pos = 0;
        const dataChunks: Uint8Array[] = [];
        for (const { t, offset } of placed) {
          if (offset > pos) dataChunks.push(new Uint8Array(offset - pos));
          dataChunks.push(t.bytes());
          pos = offset + t.byteLength;
        }
        await writeChunks(temps[0]!, dataChunks);
      }
      await writeChunks(temps[temps.length - 1]!, chunks);
    });
  } catch (e) {
    if (isFrugalError(e)) throw e;
    throw new FrugalError('E_IO', `cannot write '${file}': ${(e as Error).message}`, { cause: e });
  }
  return {
    path: target,
    bytes: modelBytes,
    externalTensors: placed.length,
    ...(placed.length ? { externalDataPath: dataPath, externalDataBytes: dataEnd } : {}),
  };
}

/** Writes bytes (or text as UTF-8) atomically: temporary file, then rename (see `util/atomic-write.ts`). */
export async function writeFileAtomic(file: string, data: Uint8Array | string): Promise<void> {
  try {
    await writeBytesAtomically(file, data);
  } catch (e) {
    throw new FrugalError('E_IO', `cannot write '${file}': ${(e as Error).message}`, { cause: e });
  }
}

/** Decodes a single serialized TensorProto (`.pb`, as the ONNX test suite stores inputs/outputs). */
export function decodeTensor(bytes: Uint8Array, baseDir?: string): Tensor {
  return tensorFromProto(decodeMessage('TensorProto', bytes), baseDir);
}

/** Reads a `.pb` TensorProto file. */
export function readTensorFile(file: string): Tensor {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (e) {
    throw new FrugalError('E_IO', `cannot read tensor file '${file}': ${(e as Error).message}`, { cause: e });
  }
  try {
    return decodeTensor(bytes, path.dirname(path.resolve(file)));
  } catch (e) {
    if (isFrugalError(e)) e.message = `${file}: ${e.message}`;
    throw e;
  }
}

/** Encodes a Tensor as a TensorProto. */
export function encodeTensor(t: Tensor): Uint8Array[] {
  return encodeMessage('TensorProto', tensorToProto(t));
}

/** Writes a `.pb` TensorProto file atomically. */
export async function writeTensorFile(file: string, t: Tensor): Promise<void> {
  await writeFileAtomic(file, concatChunks(encodeTensor(t)));
}
