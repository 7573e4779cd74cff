/** Flag parsing shared by the benchmarks: `--name=N`, a positive integer, with a clear error. */
export function intArg(args: readonly string[], name: string, fallback: number): number {
  const a = args.find((x) => x.startsWith(`--${name}=`));
  const v = a ? Number(a.slice(name.length + 3)) : fallback;
  if (!Number.isInteger(v) || v < 1) throw new Error(`--${name} must be a positive integer, got '${a?.slice(name.length + 3)}'`);
  return v;
}
