/** Helpers for benchmarks that measure work in a fresh child process (so its peak RSS is its own). */
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';

export interface ChildResult {
  seconds: number;
  maxRssBytes: number;
}

/** Runs `node <args>`, removes `output`, and parses the child's last stdout line as a ChildResult. */
export function runChild(args: string[], output: string): ChildResult {
  const out = execFileSync(process.execPath, args, { encoding: 'utf8', maxBuffer: 1 << 20 });
  rmSync(output, { force: true });
  return JSON.parse(out.trim().split('\n').pop()!) as ChildResult;
}

/**
 * This process's own peak RSS. getrusage's maxRSS can carry the parent's peak over fork+exec on Linux,
 * so read the kernel's high-water mark of this address space (VmHWM) where /proc exists.
 */
export function ownPeakRss(): number {
  try {
    const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m) return Number(m[1]) * 1024;
  } catch {
    // Not Linux: fall back to getrusage.
  }
  return process.resourceUsage().maxRSS * 1024;
}
