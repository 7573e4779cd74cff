import type { Dim, Shape } from '../types.js';

/**
 * Arithmetic on dimensions, including symbolic ones.
 *
 * A symbolic dim is treated as a *monomial*: an integer coefficient times a product of symbol names.
 * Its canonical spelling is `coef*sym1*sym2` with symbols sorted and the coefficient left out when it
 * is 1, e.g. `batch*seq` or `12*seq`. This keeps products exact (Reshape [batch,seq,768] → [-1,768]
 * gives `batch*seq`) and lets the -1 of a Reshape be solved by exact division (batch*seq*768 divided
 * by batch*seq*12 is 64). Sums of different symbols are not representable: they become `null`
 * (unknown). A declared dim_param that contains other operators (`+`, `/`, spaces...) is one opaque
 * symbol.
 */
export interface Monomial {
  coef: number;
  syms: string[];
}

const OPAQUE = /[^A-Za-z0-9_.:\-*]/;

/** The monomial a dim denotes, or undefined for an unknown dim. */
export function toMonomial(d: Dim): Monomial | undefined {
  if (d === null) return undefined;
  if (typeof d === 'number') return { coef: d, syms: [] };
  if (OPAQUE.test(d) || !d.includes('*')) return { coef: 1, syms: [d] };
  let coef = 1;
  const syms: string[] = [];
  for (const part of d.split('*')) {
    if (part === '') return { coef: 1, syms: [d] };
    if (/^-?\d+$/.test(part)) coef *= Number(part);
    else syms.push(part);
  }
  return { coef, syms };
}

export function fromMonomial(m: Monomial): Dim {
  if (m.coef === 0 || m.syms.length === 0) return m.coef;
  const s = [...m.syms].sort().join('*');
  return m.coef === 1 ? s : `${m.coef}*${s}`;
}

/** A dim in canonical spelling (numbers and null unchanged). */
export function canonicalDim(d: Dim): Dim {
  return typeof d === 'string' ? fromMonomial(toMonomial(d)!) : d;
}

export function mulDim(a: Dim, b: Dim): Dim {
  if (a === 0 || b === 0) return 0;
  const x = toMonomial(a);
  const y = toMonomial(b);
  if (!x || !y) return null;
  return fromMonomial({ coef: x.coef * y.coef, syms: [...x.syms, ...y.syms] });
}

/** Exact division: `a / b` when the result is a monomial with an integer coefficient, else null. */
export function divDim(a: Dim, b: Dim): Dim {
  const x = toMonomial(a);
  const y = toMonomial(b);
  if (!x || !y || y.coef === 0) return null;
  if (x.coef % y.coef !== 0) return null;
  const rest = [...x.syms];
  for (const s of y.syms) {
    const i = rest.indexOf(s);
    if (i < 0) return null;
    rest.splice(i, 1);
  }
  return fromMonomial({ coef: x.coef / y.coef, syms: rest });
}

/** `a + b`: exact for numbers, `x + 0`, and like monomials (`seq + seq` = `2*seq`); else null. */
export function addDim(a: Dim, b: Dim): Dim {
  if (typeof a === 'number' && typeof b === 'number') return a + b;
  if (a === 0) return canonicalDim(b);
  if (b === 0) return canonicalDim(a);
  const x = toMonomial(a);
  const y = toMonomial(b);
  if (!x || !y) return null;
  if ([...x.syms].sort().join('*') !== [...y.syms].sort().join('*')) return null;
  return fromMonomial({ coef: x.coef + y.coef, syms: x.syms });
}

export function productDims(dims: readonly Dim[]): Dim {
  let p: Dim = 1;
  for (const d of dims) p = mulDim(p, d);
  return p;
}

/** True when two dims are certainly equal (same number or same canonical symbol). */
export function sameDim(a: Dim, b: Dim): boolean {
  if (a === null || b === null) return false;
  return canonicalDim(a) === canonicalDim(b);
}

/**
 * Combines two dims that must be equal (e.g. the K of a MatMul, concat's other axes): a number wins
 * over a symbol; two different numbers are a conflict (returns undefined); two symbols keep the first.
 */
export function unifyDim(a: Dim, b: Dim): Dim | undefined {
  if (typeof a === 'number' && typeof b === 'number') return a === b ? a : undefined;
  if (typeof a === 'number') return a;
  if (typeof b === 'number') return b;
  return a ?? b;
}

/**
 * Numpy broadcasting of two dims. Returns undefined when both are different fixed sizes other than 1.
 * A fixed size n ≠ 1 against a symbol gives n (the symbol must be 1 or n); two different symbols, or
 * an unknown against anything but 1, give null.
 */
export function broadcastDim(a: Dim, b: Dim): Dim | undefined {
  if (a === 1) return b;
  if (b === 1) return a;
  if (typeof a === 'number' && typeof b === 'number') return a === b ? a : undefined;
  if (typeof a === 'number') return a;
  if (typeof b === 'number') return b;
  if (a !== null && b !== null && sameDim(a, b)) return a;
  return null;
}

/** Multidirectional (numpy) broadcasting of shapes; undefined shape in, undefined out; throws message on conflict. */
export function broadcastShapes(shapes: ReadonlyArray<Shape | undefined>): Shape | undefined | string {
  if (shapes.some((s) => s === undefined)) return undefined;
  const rank = Math.max(0, ...shapes.map((s) => s!.length));
  const out: Dim[] = [];
  for (let i = 0; i < rank; i++) {
    let d: Dim = 1;
    for (const s of shapes) {
      const k = i - (rank - s!.length);
      if (k < 0) continue;
      const r = broadcastDim(d, s![k]!);
      if (r === undefined) return `cannot broadcast dimension ${d} with ${s![k]} (shapes ${shapes.map((x) => `[${x!.join(',')}]`).join(' and ')})`;
      d = r;
    }
    out.push(d);
  }
  return out;
}

/** Normalizes a possibly negative axis for a tensor of `rank`; returns undefined when out of range. */
export function normAxis(axis: number, rank: number): number | undefined {
  const a = axis < 0 ? axis + rank : axis;
  return a >= 0 && a < rank ? a : undefined;
}
