import { dataTypeInfo, DataType } from '../dtype.js';
import type { Tensor } from '../tensor.js';
import type { Dim, Shape } from '../types.js';
import { isStaticShape } from '../types.js';
import { addDim, divDim, mulDim, sameDim } from './dims.js';

/**
 * Constant folding of small tensors, just enough to resolve shape computations that exporters emit
 * (Shape → Gather → Unsqueeze → Concat → Reshape, Range, ConstantOfShape...). Values are flat arrays of
 * dims: numbers, symbols when a Shape op saw a symbolic dim, null when one element is unknown.
 */

/** Tensors with more elements than this are never tracked (they are data, not shape arithmetic). */
export const MAX_TRACKED = 1024;

/** The contents of a small numeric initializer or Constant, as numbers (int64 clamped to safe range). */
export function tensorValues(t: Tensor): Dim[] | undefined {
  if (t.numel > MAX_TRACKED || t.isString) return undefined;
  const info = dataTypeInfo(t.dtype);
  // fp16/bf16/fp8 arrays hold bit patterns, not numbers; shape arithmetic never uses them.
  if (!info.array || (info.isFloat && info.id !== DataType.FLOAT && info.id !== DataType.DOUBLE)) return undefined;
  if (t.external && !t.isLoaded) return undefined;
  const a = t.toArray();
  const out: Dim[] = [];
  const max = BigInt(Number.MAX_SAFE_INTEGER);
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    out.push(typeof x === 'bigint' ? Number(x > max ? max : x < -max ? -max : x) : x);
  }
  return out;
}

/** Row-major strides of a static shape. */
function strides(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length).fill(1);
  for (let i = shape.length - 2; i >= 0; i--) s[i] = s[i + 1]! * shape[i + 1]!;
  return s;
}

/**
 * Applies `f` elementwise over broadcast inputs whose shapes are static and whose values are known.
 * Returns undefined when anything is missing or the result would be too large.
 */
export function broadcastMap(out: Shape | undefined, shapes: Array<Shape | undefined>, vals: Array<Dim[] | undefined>, f: (xs: Dim[]) => Dim): Dim[] | undefined {
  if (!isStaticShape(out) || vals.some((v) => v === undefined) || shapes.some((s) => !isStaticShape(s))) return undefined;
  const n = out.reduce((a, b) => a * b, 1);
  if (n > MAX_TRACKED) return undefined;
  const outStrides = strides(out);
  const ins = shapes.map((s) => {
    const sh = s as number[];
    const st = strides(sh);
    // Stride per output axis: 0 on broadcast axes.
    return out.map((_, i) => {
      const k = i - (out.length - sh.length);
      return k < 0 || sh[k] === 1 ? 0 : st[k]!;
    });
  });
  const res: Dim[] = [];
  for (let idx = 0; idx < n; idx++) {
    const args: Dim[] = [];
    for (let j = 0; j < ins.length; j++) {
      let off = 0;
      let r = idx;
      for (let a = 0; a < out.length; a++) {
        const q = Math.floor(r / outStrides[a]!);
        r -= q * outStrides[a]!;
        off += q * ins[j]![a]!;
      }
      args.push(vals[j]![off] ?? null);
    }
    res.push(f(args));
  }
  return res;
}

const num = (f: (a: number, b: number) => number) => (xs: Dim[]): Dim => (typeof xs[0] === 'number' && typeof xs[1] === 'number' ? f(xs[0], xs[1]) : null);
const isIntType = (t: number | undefined): boolean => t !== undefined && !dataTypeInfo(t).isFloat;

/** Elementwise value functions for binary ops, by op type. `intType` selects integer division. */
export function binaryValueFn(op: string, elemType: number | undefined): ((xs: Dim[]) => Dim) | undefined {
  switch (op) {
    case 'Add':
      return (xs) => addDim(xs[0]!, xs[1]!);
    case 'Sub':
      return (xs) => {
        if (typeof xs[0] === 'number' && typeof xs[1] === 'number') return xs[0] - xs[1];
        if (xs[1] === 0) return xs[0]!;
        const r = addDim(xs[0]!, mulDim(xs[1]!, -1));
        return typeof r === 'number' ? r : null;
      };
    case 'Mul':
      return (xs) => mulDim(xs[0]!, xs[1]!);
    case 'Div':
      return (xs) => {
        const [a, b] = xs as [Dim, Dim];
        if (typeof a === 'number' && typeof b === 'number') {
          if (b === 0) return null;
          return isIntType(elemType) ? Math.trunc(a / b) : a / b;
        }
        return divDim(a, b);
      };
    case 'Mod':
      return num((a, b) => (b === 0 ? NaN : a - b * Math.floor(a / b)));
    case 'Pow':
      return num((a, b) => a ** b);
    case 'Equal':
      return (xs) => {
        const [a, b] = xs as [Dim, Dim];
        if (typeof a === 'number' && typeof b === 'number') return Number(a === b);
        if (a !== null && b !== null && sameDim(a, b)) return 1;
        // A dimension is never negative: `Equal(shape, -1)` (PyTorch's expand pattern) is false.
        if ((typeof a === 'string' && typeof b === 'number' && b < 0) || (typeof b === 'string' && typeof a === 'number' && a < 0)) return 0;
        return null;
      };
    case 'Less':
      return num((a, b) => Number(a < b));
    case 'Greater':
      return num((a, b) => Number(a > b));
    case 'LessOrEqual':
      return num((a, b) => Number(a <= b));
    case 'GreaterOrEqual':
      return num((a, b) => Number(a >= b));
    case 'And':
      return num((a, b) => Number(Boolean(a) && Boolean(b)));
    case 'Or':
      return num((a, b) => Number(Boolean(a) || Boolean(b)));
    case 'Max':
      return (xs) => (xs.every((x) => typeof x === 'number') ? Math.max(...(xs as number[])) : null);
    case 'Min':
      return (xs) => (xs.every((x) => typeof x === 'number') ? Math.min(...(xs as number[])) : null);
    case 'Where':
      return (xs) => (typeof xs[0] === 'number' ? (xs[0] ? xs[1]! : xs[2]!) : null);
    default:
      return undefined;
  }
}

/** Elementwise value functions for unary ops. */
export function unaryValueFn(op: string): ((x: Dim) => Dim) | undefined {
  const n = (f: (a: number) => number) => (x: Dim): Dim => (typeof x === 'number' ? f(x) : null);
  switch (op) {
    case 'Identity':
      return (x) => x;
    case 'Neg':
      return n((a) => -a);
    case 'Abs':
      return n(Math.abs);
    case 'Floor':
      return n(Math.floor);
    case 'Ceil':
      return n(Math.ceil);
    case 'Sqrt':
      return n(Math.sqrt);
    case 'Not':
      return n((a) => Number(!a));
    case 'Sign':
      return n(Math.sign);
    case 'Relu':
      return n((a) => Math.max(a, 0));
    default:
      return undefined;
  }
}

/** Value conversion done by Cast to element type `to`. */
export function castValue(x: Dim, to: number): Dim {
  if (typeof x !== 'number') return x;
  if (to === DataType.BOOL) return Number(x !== 0);
  return isIntType(to) ? Math.trunc(x) : x;
}
