/**
 * Atomic file writes, the one mechanism behind every file Frugal writes (models and their side files,
 * checkpoints, records, reports): bytes go to a hidden temporary file next to the target, which is
 * renamed over the target only once complete, so a reader never sees a half-written file.
 *
 * Temporary files are named `.<target name>.<pid>.<hex>.tmp`, and none outlives the write:
 * - a failed write removes its own;
 * - SIGINT/SIGTERM while a write is in flight removes all of them, then the process dies of that signal
 *   as it would have (exit status 130/143 in a shell) — unless the application has its own handler for
 *   the signal, which then decides; the `exit` hook below still removes them if it exits;
 * - after SIGKILL (nothing can run), the next write to the same target removes the temporaries whose
 *   process is gone (the pid in the name no longer exists, or is ours but not one of our live writes).
 */
import { randomBytes } from 'node:crypto';
import { promises as fsp, unlinkSync } from 'node:fs';
import path from 'node:path';

/** Temporary files of writes in flight in this process. */
const live = new Set<string>();
const SIGNALS = ['SIGINT', 'SIGTERM'] as const;
let hooked = false;

/** A fresh temporary path in the target's folder (same filesystem, so the final rename is atomic). */
export function tempPathFor(target: string): string {
  return path.join(path.dirname(target), `.${path.basename(target)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
}

/**
 * Writes `targets` atomically: `write` fills the temporary paths it is given (one per target, same
 * order), then each is renamed over its target in order (put a model's data file before the model, so
 * the model never points at missing data). On any failure every temporary file is removed and the error
 * propagates unchanged (callers wrap it with the path they were asked to write).
 */
export async function writeAtomically(targets: readonly string[], write: (temps: string[]) => Promise<void>): Promise<void> {
  const resolved = targets.map((t) => path.resolve(t));
  await Promise.all(resolved.map(removeStaleTemps));
  const temps = resolved.map(tempPathFor);
  for (const t of temps) track(t);
  try {
    await write(temps);
    for (let i = 0; i < temps.length; i++) await fsp.rename(temps[i]!, resolved[i]!);
  } finally {
    // After a successful rename the temporary name no longer exists; rm with force is then a no-op.
    await Promise.all(temps.map((t) => fsp.rm(t, { force: true })));
    for (const t of temps) untrack(t);
  }
}

/** Writes bytes (or text as UTF-8) to `file` atomically; errors propagate as Node's. */
export async function writeBytesAtomically(file: string, data: Uint8Array | string): Promise<void> {
  const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data;
  await writeAtomically([file], ([tmp]) => writeChunks(tmp!, [bytes]));
}

/**
 * Removes temporary files of earlier writes to `target` whose process is gone (killed with SIGKILL, or
 * the machine lost power). Best effort: a folder that cannot be listed is left alone.
 */
export async function removeStaleTemps(target: string): Promise<string[]> {
  const dir = path.dirname(target);
  const prefix = `.${path.basename(target)}.`;
  let names: string[];
  try {
    names = await fsp.readdir(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    if (!name.startsWith(prefix)) continue;
    const m = /^(\d+)\.[0-9a-f]+\.tmp$/.exec(name.slice(prefix.length));
    if (!m) continue;
    const full = path.join(dir, name);
    const pid = Number(m[1]);
    // Our own pid on a file we are not writing means an earlier process had this pid (containers reuse
    // small pids); another pid counts as stale only once no such process exists.
    const stale = pid === process.pid ? !live.has(full) : !processExists(pid);
    if (!stale) continue;
    try {
      await fsp.rm(full, { force: true });
      removed.push(full);
    } catch {
      // Not ours to insist on (permissions): leave it.
    }
  }
  return removed;
}

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: it exists but belongs to another user.
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function track(tmp: string): void {
  live.add(tmp);
  if (hooked) return;
  hooked = true;
  for (const s of SIGNALS) process.on(s, onSignal);
  process.on('exit', removeLiveSync);
}

function untrack(tmp: string): void {
  live.delete(tmp);
  if (live.size || !hooked) return;
  // Hooks only while a write is in flight: otherwise a signal keeps its default (or the app's) meaning.
  hooked = false;
  for (const s of SIGNALS) process.off(s, onSignal);
  process.off('exit', removeLiveSync);
}

function removeLiveSync(): void {
  for (const t of live) {
    try {
      unlinkSync(t);
    } catch {
      // Already gone.
    }
  }
  live.clear();
}

function onSignal(signal: NodeJS.Signals): void {
  removeLiveSync();
  if (process.listenerCount(signal) > 1) return; // the application handles this signal itself
  hooked = false;
  for (const s of SIGNALS) process.off(s, onSignal);
  process.off('exit', removeLiveSync);
  // With no listener left the default action applies: die of the signal, as without Frugal.
  process.kill(process.pid, signal);
}

/** Writes a chunk list with vectored writes (no concatenation of large buffers), then fsyncs. */
export async function writeChunks(file: string, chunks: readonly Uint8Array[]): Promise<void> {
  const fh = await fsp.open(file, 'wx');
  try {
    const BATCH = 512;
    for (let i = 0; i < chunks.length; i += BATCH) {
      const batch = chunks.slice(i, i + BATCH).filter((c) => c.byteLength > 0);
      const want = batch.reduce((s, c) => s + c.byteLength, 0);
      const { bytesWritten } = await fh.writev(batch);
      // writev may write partially; finish the rest chunk by chunk.
      if (bytesWritten < want) {
        let skip = bytesWritten;
        for (const c of batch) {
          if (skip >= c.byteLength) {
            skip -= c.byteLength;
            continue;
          }
          let rest = c.subarray(skip);
          skip = 0;
          while (rest.byteLength) rest = rest.subarray((await fh.write(rest)).bytesWritten);
        }
      }
    }
    await fh.sync();
  } finally {
    await fh.close();
  }
}
