/**
 * CPU features that decide how int8 weights must be quantized, read from /proc/cpuinfo (injectable for
 * tests), and the recommended weight scheme.
 *
 * Why it matters: ONNX Runtime's int8 kernels (MLAS) multiply uint8 activations by int8 weights. On x64
 * CPUs without VNNI they use `vpmaddubsw`, which adds two u8×s8 products into a *saturating* int16:
 * 2 × 255 × 127 = 64,770 > 32,767, so full-range weights silently lose precision (measured 18% relative
 * error on a 768×3072 MatMul on an AVX2-only machine). With 7-bit weights (|w| ≤ 63, "reduce range")
 * 2 × 255 × 64 = 32,640 fits. VNNI (`vpdpbusd`, AVX512-VNNI or AVX-VNNI) and AMX accumulate straight into
 * int32, and ARM's kernels (sdot/udot with dotprod, or widening NEON without it) do not saturate either,
 * so those keep all 8 bits. ONNX Runtime's own guidance is the same (quantization docs: "reduce_range").
 */
import { readFileSync } from 'node:fs';
import { arch as osArch } from 'node:os';

/** The int8 weight scheme for u8 activations. */
export type Int8WeightScheme =
  /** int8 weights in [-127, 127]: full precision where integer products do not saturate. */
  | 's8'
  /** int8 weights in [-64, 63] (7 bits): safe on x64 without VNNI. */
  | 's8-reduced'
  /** uint8 asymmetric weights: ORT's u8u8 kernels widen to int16 before multiplying, no saturation. */
  | 'u8';

export interface CpuFeatures {
  /** Node's `os.arch()` value ('x64', 'arm64', ...). */
  arch: string;
  /** Model name from cpuinfo, when present. */
  model: string | undefined;
  avx2: boolean;
  avx512f: boolean;
  /** AVX512-VNNI (`avx512_vnni`): int8 dot products into int32. */
  avx512vnni: boolean;
  /** AVX-VNNI (`avx_vnni`, the VEX-encoded form on Alder Lake and later). */
  avxvnni: boolean;
  /** AMX int8 tiles (`amx_int8`). */
  amx: boolean;
  /** ARM dot product (`asimddp`). */
  dotprod: boolean;
  /** ARM int8 matrix multiply (`i8mm`). */
  i8mm: boolean;
  /** Where the flags came from ('/proc/cpuinfo', 'injected', or 'unavailable'). */
  source: string;
}

export interface Int8Recommendation {
  scheme: Int8WeightScheme;
  /** True when `scheme` is 's8-reduced'. */
  reduceRange: boolean;
  /** One sentence: why this scheme on this CPU. */
  reason: string;
}

/**
 * Reads the CPU's flags. `cpuinfo` (the text of /proc/cpuinfo) and `arch` are injectable for tests;
 * by default they come from this machine. Where /proc/cpuinfo cannot be read (macOS, Windows), all
 * flags are false and `source` says so.
 */
export function detectCpuFeatures(opts: { cpuinfo?: string; arch?: string } = {}): CpuFeatures {
  const arch = opts.arch ?? osArch();
  let text = opts.cpuinfo;
  let source = 'injected';
  if (text === undefined) {
    try {
      text = readFileSync('/proc/cpuinfo', 'utf8');
      source = '/proc/cpuinfo';
    } catch {
      text = '';
      source = 'unavailable';
    }
  }
  // x64 lists `flags`, arm64 `Features`; every core repeats them, the first block is enough.
  const line = (key: string): string | undefined => {
    const m = new RegExp(`^${key}\\s*:\\s*(.*)$`, 'mi').exec(text!);
    return m?.[1]?.trim();
  };
  const flags = new Set((line('flags') ?? line('Features') ?? '').split(/\s+/).filter(Boolean));
  return {
    arch,
    model: line('model name') ?? line('CPU part'),
    avx2: flags.has('avx2'),
    avx512f: flags.has('avx512f'),
    avx512vnni: flags.has('avx512_vnni'),
    avxvnni: flags.has('avx_vnni'),
    amx: flags.has('amx_int8'),
    dotprod: flags.has('asimddp'),
    i8mm: flags.has('i8mm'),
    source,
  };
}

/**
 * The int8 weight scheme that does not saturate on `cpu` (default: this machine). x64 with VNNI or AMX,
 * and arm64, get full-range int8; other x64 CPUs get 7-bit weights; an unknown CPU gets 7-bit weights
 * too, since losing one bit costs far less than saturating.
 */
export function recommendInt8Scheme(cpu: CpuFeatures = detectCpuFeatures()): Int8Recommendation {
  const pick = (scheme: Int8WeightScheme, reason: string): Int8Recommendation => ({ scheme, reduceRange: scheme === 's8-reduced', reason });
  if (cpu.arch === 'arm64') return pick('s8', 'arm64: int8 kernels accumulate without saturation (dotprod/i8mm or widening NEON)');
  if (cpu.arch === 'x64' || cpu.arch === 'ia32') {
    if (cpu.avx512vnni || cpu.avxvnni || cpu.amx) {
      const which = cpu.amx ? 'AMX' : cpu.avx512vnni ? 'AVX512-VNNI' : 'AVX-VNNI';
      return pick('s8', `x64 with ${which}: u8×s8 products accumulate into int32, full-range int8 weights are safe`);
    }
    return pick('s8-reduced', `x64 without VNNI${cpu.avx2 ? ' (AVX2)' : ''}: u8×s8 pairs saturate int16, so weights use 7 bits (reduce range)`);
  }
  return pick('s8-reduced', `unknown CPU (${cpu.arch}, flags ${cpu.source}): 7-bit weights cannot saturate anywhere`);
}
