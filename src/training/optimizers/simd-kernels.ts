/**
 * The optimizer updates as WebAssembly SIMD kernels: one pass over each parameter reading the weight,
 * its gradient and the optimizer state and writing the new weight and state, four float32 lanes at a
 * time. This is what makes the update cheap next to forward + backward: the same AdamW as ONNX ops is
 * 13 elementwise kernels, each a full pass over memory (the bench measured ~1.1 ms per step for the
 * 235K-parameter MLP in ORT), and the scalar JS loop costs ~5.5 ns per parameter (float64 sqrt and
 * division per element); a fused 4-lane pass streams the arrays once.
 *
 * The module is assembled here from its instructions (no toolchain, no binary blob): `assemble` writes
 * the WebAssembly binary format (magic, then type, import, function, export and code sections; LEB128
 * integers; SIMD instructions are the 0xFD prefix plus a LEB128 opcode). Arithmetic is float32, lane by
 * lane, in the order of the fused ONNX update (in-graph.ts):
 *
 *   AdamW: m' = β1·m + (1−β1)·g;  v' = β2·v + ((1−β2)·g)·g;  p' = p·shrink − (a·m') / (√v' + e)
 *          with a = stepSize·√c2, e = ε·√c2 (the JS reference's stepSize·m' / (√v'/√c2 + ε), rearranged)
 *   SGD:   d = g + wd·p;  b' = μ·b + d;  p' = p − lr·(α·d + β·b')
 *          (α, β) = (1, μ) Nesterov, (0, 1) momentum, (1, 0) plain (then b' = d, as the JS loop stores)
 *
 * Memory: the kernels work on one imported WebAssembly.Memory; callers place each array at a 16-byte
 * aligned offset and pad lengths to a multiple of 4 floats with zeros (a zero lane stays zero: g = m =
 * v = 0 gives p' = p·shrink = 0 for a zero weight).
 */

/** The parts of the WebAssembly JS API used here (the project's TypeScript libs do not declare it). */
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: Record<string, unknown> };
  Memory: new (desc: { initial: number }) => { buffer: ArrayBuffer };
}
const wasm = (globalThis as unknown as { WebAssembly?: WasmApi }).WebAssembly;

/** Kernel entry points over byte offsets into the module's memory (lengths in bytes, multiples of 16). */
export interface SimdKernels {
  /** The kernels' memory (fixed size: it never grows, so views into it stay valid). */
  buffer: ArrayBuffer;
  adamw(p: number, g: number, m: number, v: number, bytes: number, b1: number, c1: number, b2: number, c2: number, shrink: number, a: number, e: number): void;
  sgd(p: number, g: number, b: number, bytes: number, mu: number, wd: number, lr: number, alpha: number, beta: number): void;
}

// Value types and opcodes of the WebAssembly binary format (core spec §5, SIMD proposal's BinarySIMD.md).
const I32 = 0x7f;
const F32 = 0x7d;
const V128 = 0x7b;
const OP = {
  block: 0x02,
  loop: 0x03,
  end: 0x0b,
  brIf: 0x0d,
  localGet: 0x20,
  localSet: 0x21,
  localTee: 0x22,
  i32Const: 0x41,
  i32Eqz: 0x45,
  i32LtU: 0x49,
  i32Add: 0x6a,
} as const;
/** SIMD opcodes (after the 0xFD prefix). */
const SIMD = { load: 0x00, store: 0x0b, f32x4Splat: 0x13, f32x4Sqrt: 0xe3, f32x4Add: 0xe4, f32x4Sub: 0xe5, f32x4Mul: 0xe6, f32x4Div: 0xe7 } as const;
/** Memory immediates of a v128 access: alignment 2^4 = 16 bytes, offset 0. */
const MEMARG = [4, 0];

function leb(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n !== 0) byte |= 0x80;
    out.push(byte);
  } while (n !== 0);
  return out;
}

const vec = (items: number[][]): number[] => [...leb(items.length), ...items.flat()];
const name = (s: string): number[] => [...leb(s.length), ...Buffer.from(s, 'utf8')];
const section = (id: number, body: number[]): number[] => [id, ...leb(body.length), ...body];

/** A small instruction writer: `e.get(3).simd(SIMD.f32x4Mul)...`, local indices as the function declares them. */
class Body {
  readonly code: number[] = [];
  get(i: number): this {
    this.code.push(OP.localGet, ...leb(i));
    return this;
  }
  set(i: number): this {
    this.code.push(OP.localSet, ...leb(i));
    return this;
  }
  tee(i: number): this {
    this.code.push(OP.localTee, ...leb(i));
    return this;
  }
  op(...bytes: number[]): this {
    this.code.push(...bytes);
    return this;
  }
  simd(op: number, ...imm: number[]): this {
    this.code.push(0xfd, ...leb(op), ...imm.flatMap(leb));
    return this;
  }
  /** Pushes the address `base + i` (locals). */
  addr(base: number, i: number): this {
    return this.get(base).get(i).op(OP.i32Add);
  }
  load(base: number, i: number): this {
    return this.addr(base, i).simd(SIMD.load, ...MEMARG);
  }
  /** Splats f32 params `from..from+count` into v128 locals `to..`. */
  splats(from: number, count: number, to: number): this {
    for (let k = 0; k < count; k++) this.get(from + k).simd(SIMD.f32x4Splat).set(to + k);
    return this;
  }
  /** for (i = 0; i < bytes; i += 16) { ...step } — skipped entirely when bytes is 0. */
  loop(i: number, bytes: number, step: (b: this) => void): this {
    this.op(OP.block, 0x40).get(bytes).op(OP.i32Eqz, OP.brIf, 0, OP.loop, 0x40);
    step(this);
    this.get(i).op(OP.i32Const, 16, OP.i32Add).tee(i).get(bytes).op(OP.i32LtU, OP.brIf, 0, OP.end, OP.end);
    return this;
  }
}

/** Function 0: adamw(p, g, m, v, bytes: i32; b1, c1, b2, c2, shrink, a, e: f32). */
function adamwBody(): number[] {
  // Locals: 0..4 i32 params, 5..11 f32 params, 12..18 their splats, 19 i, 20 g, 21 m', 22 v'.
  const [P, G, M, V, N] = [0, 1, 2, 3, 4];
  const [B1, C1, B2, C2, SH, A, E] = [12, 13, 14, 15, 16, 17, 18];
  const [I, GV, MN, VN] = [19, 20, 21, 22];
  const b = new Body().splats(5, 7, 12);
  b.loop(I, N, (s) => {
    s.load(G, I).set(GV);
    // m' = b1·m + c1·g
    s.addr(M, I).get(B1).load(M, I).simd(SIMD.f32x4Mul).get(C1).get(GV).simd(SIMD.f32x4Mul).simd(SIMD.f32x4Add).tee(MN).simd(SIMD.store, ...MEMARG);
    // v' = b2·v + (c2·g)·g
    s.addr(V, I).get(B2).load(V, I).simd(SIMD.f32x4Mul).get(C2).get(GV).simd(SIMD.f32x4Mul).get(GV).simd(SIMD.f32x4Mul).simd(SIMD.f32x4Add).tee(VN).simd(SIMD.store, ...MEMARG);
    // p' = p·shrink − (a·m') / (√v' + e)
    s.addr(P, I).load(P, I).get(SH).simd(SIMD.f32x4Mul);
    s.get(A).get(MN).simd(SIMD.f32x4Mul).get(VN).simd(SIMD.f32x4Sqrt).get(E).simd(SIMD.f32x4Add).simd(SIMD.f32x4Div);
    s.simd(SIMD.f32x4Sub).simd(SIMD.store, ...MEMARG);
  });
  return [...vec([[...leb(7), V128], [...leb(1), I32], [...leb(3), V128]]), ...b.code, OP.end];
}

/** Function 1: sgd(p, g, b, bytes: i32; mu, wd, lr, alpha, beta: f32). */
function sgdBody(): number[] {
  // Locals: 0..3 i32 params, 4..8 f32 params, 9..13 their splats, 14 i, 15 d, 16 b'.
  const [P, G, BUF, N] = [0, 1, 2, 3];
  const [MU, WD, LR, AL, BE] = [9, 10, 11, 12, 13];
  const [I, D, BN] = [14, 15, 16];
  const b = new Body().splats(4, 5, 9);
  b.loop(I, N, (s) => {
    // d = g + wd·p
    s.load(G, I).get(WD).load(P, I).simd(SIMD.f32x4Mul).simd(SIMD.f32x4Add).set(D);
    // b' = μ·b + d
    s.addr(BUF, I).get(MU).load(BUF, I).simd(SIMD.f32x4Mul).get(D).simd(SIMD.f32x4Add).tee(BN).simd(SIMD.store, ...MEMARG);
    // p' = p − lr·(α·d + β·b')
    s.addr(P, I).load(P, I).get(LR).get(AL).get(D).simd(SIMD.f32x4Mul).get(BE).get(BN).simd(SIMD.f32x4Mul).simd(SIMD.f32x4Add).simd(SIMD.f32x4Mul);
    s.simd(SIMD.f32x4Sub).simd(SIMD.store, ...MEMARG);
  });
  return [...vec([[...leb(5), V128], [...leb(1), I32], [...leb(2), V128]]), ...b.code, OP.end];
}

/** The module's bytes: memory imported as env.memory, functions `adamw` and `sgd` exported. */
export function assemble(): Uint8Array {
  const types = vec([
    [0x60, ...vec([I32, I32, I32, I32, I32, F32, F32, F32, F32, F32, F32, F32].map((t) => [t])), ...vec([])],
    [0x60, ...vec([I32, I32, I32, I32, F32, F32, F32, F32, F32].map((t) => [t])), ...vec([])],
  ]);
  const imports = vec([[...name('env'), ...name('memory'), 0x02, 0x00, ...leb(0)]]);
  const funcs = vec([leb(0), leb(1)]);
  const exports = vec([
    [...name('adamw'), 0x00, ...leb(0)],
    [...name('sgd'), 0x00, ...leb(1)],
  ]);
  const bodies = [adamwBody(), sgdBody()];
  const code = vec(bodies.map((b) => [...leb(b.length), ...b]));
  return Uint8Array.from([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, ...section(1, types), ...section(2, imports), ...section(3, funcs), ...section(7, exports), ...section(10, code)]);
}

let compiled: object | null | undefined;

/**
 * Instantiates the kernels over a fresh memory of `bytes` bytes (rounded up to 64 KiB pages). Returns
 * undefined where WebAssembly SIMD is unavailable or the memory cannot be had (callers then use the JS
 * loops).
 */
export function createSimdKernels(bytes: number): SimdKernels | undefined {
  if (!wasm) return undefined;
  if (compiled === undefined) {
    try {
      compiled = new wasm.Module(assemble());
    } catch {
      compiled = null; // no SIMD support in this engine
    }
  }
  if (!compiled) return undefined;
  let memory: { buffer: ArrayBuffer };
  try {
    memory = new wasm.Memory({ initial: Math.max(1, Math.ceil(bytes / 65536)) });
  } catch {
    return undefined; // beyond a 32-bit memory (4 GiB) or out of memory
  }
  const ex = new wasm.Instance(compiled, { env: { memory } }).exports as unknown as Omit<SimdKernels, 'buffer'>;
  return { buffer: memory.buffer, adamw: ex.adamw, sgd: ex.sgd };
}
