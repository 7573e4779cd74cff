/**
 * Execution providers as a table. onnxruntime-node reports which providers its binding was compiled
 * with (`listSupportedBackends()`: on linux/x64 1.30 that is cpu and webgpu bundled, cuda and tensorrt
 * "not bundled"); a not-bundled provider works only when its shared library was downloaded at install
 * time. This module turns that into one answer per provider: available or not, and why.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { FrugalError } from '../errors.js';

export interface ProviderInfo {
  /** Frugal's name for the provider (`--ep` value). */
  readonly name: string;
  /** The name onnxruntime's `executionProviders` option takes. */
  readonly ortName: string;
  readonly description: string;
  /** Shared library that must sit next to the binding when the provider is not bundled, per platform. */
  readonly libraries?: Readonly<Partial<Record<NodeJS.Platform, string>>>;
  /** What to do when it is missing. */
  readonly installHint: string;
}

const CUDA_HINT =
  'reinstall with `npm install onnxruntime-node --onnxruntime-node-install=cuda12` (or ONNXRUNTIME_NODE_INSTALL=cuda12) on linux/x64 or win32/x64 with CUDA 12 and cuDNN 9';

/** Every provider Frugal knows, by name. `cpu` is the default and always present. */
export const PROVIDERS: Readonly<Record<string, ProviderInfo>> = Object.freeze({
  cpu: Object.freeze({ name: 'cpu', ortName: 'cpu', description: 'ONNX Runtime CPU kernels (MLAS)', installHint: 'bundled with onnxruntime-node' }),
  cuda: Object.freeze({
    name: 'cuda',
    ortName: 'cuda',
    description: 'NVIDIA GPUs through CUDA 12',
    libraries: Object.freeze({ linux: 'libonnxruntime_providers_cuda.so', win32: 'onnxruntime_providers_cuda.dll' }),
    installHint: CUDA_HINT,
  }),
  tensorrt: Object.freeze({
    name: 'tensorrt',
    ortName: 'tensorrt',
    description: 'NVIDIA TensorRT',
    libraries: Object.freeze({ linux: 'libonnxruntime_providers_tensorrt.so', win32: 'onnxruntime_providers_tensorrt.dll' }),
    installHint: `${CUDA_HINT}, plus TensorRT 10 on the library path`,
  }),
  webgpu: Object.freeze({
    name: 'webgpu',
    ortName: 'webgpu',
    description: 'GPUs through WebGPU (Dawn: Vulkan, D3D12 or Metal); needs a GPU adapter at session creation',
    installHint: 'bundled in onnxruntime-node builds for win32, linux/x64 and macOS; needs a Vulkan/D3D12/Metal driver',
  }),
  dml: Object.freeze({ name: 'dml', ortName: 'dml', description: 'DirectML on Windows GPUs', installHint: 'bundled in the win32 build of onnxruntime-node only' }),
  coreml: Object.freeze({ name: 'coreml', ortName: 'coreml', description: 'Apple CoreML (Neural Engine / GPU)', installHint: 'bundled in the macOS build of onnxruntime-node only' }),
});

export interface ProviderStatus {
  name: string;
  available: boolean;
  /** Why it is unavailable, or a caveat for an available one (e.g. webgpu needs an adapter). */
  reason?: string;
}

/** The folder holding the native binding for this platform (where non-bundled EP libraries go). */
function bindingDir(): string | undefined {
  try {
    const require = createRequire(import.meta.url);
    const pkg = require.resolve('onnxruntime-node/package.json');
    return path.join(path.dirname(pkg), 'bin', 'napi-v6', process.platform, process.arch);
  } catch {
    return undefined;
  }
}

let cached: ProviderStatus[] | undefined;

/**
 * The status of every provider in `PROVIDERS` for the installed binding: compiled in, and (for
 * providers not bundled in the npm package) whether their shared library is installed.
 */
export function availableProviders(): ProviderStatus[] {
  if (cached) return cached.map((s) => ({ ...s }));
  const compiled = new Map<string, boolean>();
  for (const b of ort.listSupportedBackends()) compiled.set(b.name, b.bundled);
  const dir = bindingDir();
  const out: ProviderStatus[] = [];
  for (const info of Object.values(PROVIDERS)) {
    const bundled = compiled.get(info.ortName);
    if (bundled === undefined) {
      out.push({ name: info.name, available: false, reason: `not compiled into this onnxruntime-node build (${process.platform}/${process.arch}); ${info.installHint}` });
    } else if (bundled) {
      out.push({ name: info.name, available: true, ...(info.name === 'webgpu' ? { reason: 'compiled in; session creation fails without a WebGPU adapter' } : {}) });
    } else {
      const lib = info.libraries?.[process.platform];
      if (lib && dir && existsSync(path.join(dir, lib))) out.push({ name: info.name, available: true });
      else out.push({ name: info.name, available: false, reason: `the binding supports it but ${lib ?? 'its provider library'} is not installed${dir ? ` in ${dir}` : ''}; ${info.installHint}` });
    }
  }
  cached = out;
  return out.map((s) => ({ ...s }));
}

/** Names of the providers that can be asked for now. */
export function availableProviderNames(): string[] {
  return availableProviders()
    .filter((s) => s.available)
    .map((s) => s.name);
}

/**
 * Resolves a provider name to the `executionProviders` entry for ORT, or throws: E_USAGE for an unknown
 * name, E_UNSUPPORTED (naming what is available and how to install the missing one) when the installed
 * binding lacks it.
 */
export function resolveProvider(name: string | undefined): ProviderInfo {
  const key = (name ?? 'cpu').toLowerCase();
  const info = PROVIDERS[key];
  if (!info) {
    throw new FrugalError('E_USAGE', `unknown execution provider '${name}' (known: ${Object.keys(PROVIDERS).join(', ')})`);
  }
  const status = availableProviders().find((s) => s.name === key)!;
  if (!status.available) {
    throw new FrugalError(
      'E_UNSUPPORTED',
      `execution provider '${key}' is not available in this onnxruntime-node build (available: ${availableProviderNames().join(', ')}); ${status.reason}`,
    );
  }
  return info;
}
