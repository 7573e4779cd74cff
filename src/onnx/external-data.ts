import { realpathSync, type Stats, statSync } from 'node:fs';
import path from 'node:path';
import { FrugalError } from '../errors.js';
import type { ExternalRef } from '../ir/tensor.js';

/**
 * Resolves a TensorProto's external-data entries to a checked file reference.
 *
 * Security invariant: the resolved file lies inside the model's folder. An absolute location, one
 * that climbs out with `..`, or a symlink whose target is outside the folder is rejected before any
 * byte is read, so a hostile model cannot make Frugal read `/etc/passwd` into a "weight".
 */
export function resolveExternalData(
  entries: Array<[string, string]>,
  tensorName: string,
  baseDir: string | undefined,
  need?: { bytes: number; type: string },
): ExternalRef {
  const map = new Map(entries);
  const location = map.get('location');
  if (!location) {
    throw new FrugalError('E_EXTERNAL_DATA', `tensor '${tensorName}': external data has no 'location' entry; the model is corrupt`);
  }
  checkLocationString(location, tensorName);
  const offset = parseNonNegative(map.get('offset') ?? '0', 'offset', tensorName);
  const lengthText = map.get('length');
  const extraEntries = entries.filter(([k]) => k !== 'location' && k !== 'offset' && k !== 'length');
  if (baseDir === undefined) {
    // Decoded from bytes with no folder: keep the reference; reading it fails with a clear message.
    const length = lengthText === undefined ? 0 : parseNonNegative(lengthText, 'length', tensorName);
    return { path: '', location, offset, length, extraEntries };
  }
  const resolved = checkInsideFolder(location, baseDir, tensorName);
  let stats: Stats;
  try {
    stats = statSync(resolved);
  } catch (e) {
    throw new FrugalError('E_EXTERNAL_DATA', `tensor '${tensorName}': external data file '${location}' not found next to the model (${baseDir}); copy it there`, { cause: e });
  }
  checkRegularFile(stats, location, tensorName);
  const size = stats.size;
  // Without a `length`, the tensor takes the bytes its type and shape need (as ONNX Runtime reads it);
  // with one, it must be exactly that many, so every command (inspect included) refuses a short range.
  const length = lengthText === undefined ? (need?.bytes ?? size - offset) : parseNonNegative(lengthText, 'length', tensorName);
  if (need && length !== need.bytes) {
    throw new FrugalError(
      'E_EXTERNAL_DATA',
      `tensor '${tensorName}': external data '${location}' has length ${length} bytes but ${need.type} needs ${need.bytes}; the model's external data entries are wrong`,
    );
  }
  if (offset + length > size) {
    throw new FrugalError(
      'E_EXTERNAL_DATA',
      `tensor '${tensorName}': external data '${location}' range [${offset}, ${offset + length}) runs past the file's end (${size} bytes); the file is truncated or the model's offsets are wrong`,
    );
  }
  return { path: resolved, location, offset, length, extraEntries };
}

/** Rejects locations that are absolute or climb out of the folder (checked on the string alone). */
export function checkLocationString(location: string, tensorName: string): void {
  if (location.includes('\0')) {
    throw new FrugalError('E_EXTERNAL_DATA', `tensor '${tensorName}': external data location contains a NUL byte; refusing it`);
  }
  if (path.isAbsolute(location) || path.win32.isAbsolute(location)) {
    throw new FrugalError('E_EXTERNAL_DATA', `tensor '${tensorName}': external data location '${location}' is an absolute path; ONNX requires a path relative to the model's folder`);
  }
  const norm = path.posix.normalize(location.replace(/\\/g, '/'));
  if (norm === '..' || norm.startsWith('../')) {
    throw new FrugalError('E_EXTERNAL_DATA', `tensor '${tensorName}': external data location '${location}' leaves the model's folder; refusing to read it`);
  }
}

/** Resolves `location` under `baseDir`, following symlinks, and requires the result to stay inside. */
export function checkInsideFolder(location: string, baseDir: string, tensorName: string): string {
  let root: string;
  try {
    root = realpathSync(baseDir);
  } catch (e) {
    throw new FrugalError('E_EXTERNAL_DATA', `tensor '${tensorName}': model folder '${baseDir}' cannot be resolved`, { cause: e });
  }
  const candidate = path.resolve(root, location.replace(/\\/g, '/'));
  let real: string;
  try {
    real = realpathSync(candidate);
  } catch (e) {
    throw new FrugalError('E_EXTERNAL_DATA', `tensor '${tensorName}': external data file '${location}' not found next to the model (${baseDir}); copy it there`, { cause: e });
  }
  const rel = path.relative(root, real);
  if (rel === '') {
    throw new FrugalError('E_EXTERNAL_DATA', `tensor '${tensorName}': external data location '${location}' names the model's folder itself, not a file; the model is corrupt (the location must name a data file next to it)`);
  }
  if (rel.startsWith('..') || path.isAbsolute(rel)) {
    throw new FrugalError('E_EXTERNAL_DATA', `tensor '${tensorName}': external data location '${location}' resolves outside the model's folder (through a symlink); refusing to read it`);
  }
  return real;
}

/**
 * Refuses anything but a regular file, naming what it is. Called on the path before reading and again on
 * the open descriptor (the file could be swapped in between).
 */
export function checkRegularFile(stats: Stats, location: string, tensorName: string): void {
  if (stats.isFile()) return;
  const kind = stats.isDirectory()
    ? 'a folder'
    : stats.isFIFO()
      ? 'a FIFO (named pipe)'
      : stats.isSocket()
        ? 'a socket'
        : stats.isCharacterDevice()
          ? 'a character device'
          : stats.isBlockDevice()
            ? 'a block device'
            : 'not a regular file';
  throw new FrugalError('E_EXTERNAL_DATA', `tensor '${tensorName}': external data location '${location}' is ${kind}, not a regular file; external data must be a regular file next to the model`);
}

function parseNonNegative(text: string, what: string, tensorName: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(n)) {
    throw new FrugalError('E_EXTERNAL_DATA', `tensor '${tensorName}': external data ${what} '${text}' is not a non-negative integer`);
  }
  return n;
}
