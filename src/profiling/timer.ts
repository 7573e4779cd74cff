/**
 * Clocks the profiler reads: a monotonic wall clock (`performance.now`), the process's CPU time
 * (getrusage through `process.cpuUsage`, which counts every thread, ONNX Runtime's pool included) and
 * its peak resident set size (getrusage `ru_maxrss`, a high-water mark that never goes down).
 */

/** Monotonic milliseconds. */
export const nowMs = (): number => performance.now();

export interface CpuTime {
  /** Seconds in user mode, all threads of this process. */
  userSeconds: number;
  /** Seconds in the kernel on behalf of this process. */
  systemSeconds: number;
}

/** CPU time used by this process so far. */
export function cpuTime(): CpuTime {
  const u = process.cpuUsage();
  return { userSeconds: u.user / 1e6, systemSeconds: u.system / 1e6 };
}

/** CPU time spent between two readings. */
export function cpuTimeSince(start: CpuTime, end: CpuTime = cpuTime()): CpuTime {
  return { userSeconds: end.userSeconds - start.userSeconds, systemSeconds: end.systemSeconds - start.systemSeconds };
}

/**
 * The process's peak resident set size in bytes so far. It is a high-water mark over the process's
 * life: when several models are profiled in one process, a later model's figure includes the earlier
 * ones' peak (profile one model per process for an isolated figure).
 */
export function peakRssBytes(): number {
  return process.resourceUsage().maxRSS * 1024;
}

/** Current resident set size in bytes. */
export function rssBytes(): number {
  return process.memoryUsage.rss();
}
