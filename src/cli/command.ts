import { parseArgs, type ParseArgsConfig } from 'node:util';
import { FrugalError } from '../errors.js';

/** One CLI option: how it parses and how `--help` describes it. */
export interface OptionSpec {
  type: 'string' | 'boolean';
  short?: string;
  multiple?: boolean;
  description: string;
  /** Placeholder shown in help, e.g. `N` or `name=file.pb`. */
  arg?: string;
}

export type ParsedValues = Record<string, string | boolean | string[] | boolean[] | undefined>;

export interface CommandContext {
  values: ParsedValues;
  positionals: string[];
  json: boolean;
  /** Writes a line to stdout. */
  out: (line: string) => void;
  /** Progress to stderr, only on a TTY and never with --json (keeps machine output clean). */
  progress: (line: string) => void;
}

/**
 * A CLI command: a name, a one-line summary, usage, options and examples for `--help`, and a `run`
 * that calls the library. Commands are thin: parsing and printing only.
 */
export interface Command {
  name: string;
  summary: string;
  usage: string;
  options: Record<string, OptionSpec>;
  examples: string[];
  /** Minimum and maximum positional arguments. */
  positionals: [number, number];
  run(ctx: CommandContext): Promise<number | void>;
}

/** Options every command takes. */
export const COMMON_OPTIONS: Record<string, OptionSpec> = {
  json: { type: 'boolean', description: 'print one JSON object instead of text' },
  help: { type: 'boolean', short: 'h', description: 'show this help' },
  verbose: { type: 'boolean', description: "also show ONNX Runtime's own log lines (warnings and errors)" },
};

export function helpText(cmd: Command): string {
  const opts = { ...cmd.options, ...COMMON_OPTIONS };
  const lines = [`frugal ${cmd.name}: ${cmd.summary}`, '', `Usage: ${cmd.usage}`, '', 'Options:'];
  const rows = Object.entries(opts).map(([name, o]) => {
    const flag = `${o.short ? `-${o.short}, ` : '    '}--${name}${o.arg ? ` <${o.arg}>` : o.type === 'string' ? ' <value>' : ''}`;
    return [flag, o.description + (o.multiple ? ' (repeatable)' : '')] as const;
  });
  const width = Math.max(...rows.map(([f]) => f.length)) + 2;
  for (const [f, d] of rows) lines.push(`  ${f.padEnd(width)}${d}`);
  if (cmd.examples.length) lines.push('', 'Examples:', ...cmd.examples.map((e) => `  ${e}`));
  return lines.join('\n');
}

/** Parses argv for a command; unknown flags and wrong arity are E_USAGE errors that name the flag. */
export function parseCommandArgs(cmd: Command, argv: string[]): { values: ParsedValues; positionals: string[] } {
  const options: NonNullable<ParseArgsConfig['options']> = {};
  for (const [name, o] of Object.entries({ ...cmd.options, ...COMMON_OPTIONS })) {
    options[name] = { type: o.type, ...(o.short ? { short: o.short } : {}), ...(o.multiple ? { multiple: true } : {}) };
  }
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (e) {
    const msg = (e as Error).message.replace(/\. To specify a positional argument.*$/s, '');
    throw new FrugalError('E_USAGE', `${msg} (see 'frugal ${cmd.name} --help')`);
  }
  const values = parsed.values as ParsedValues;
  if (!values.help) {
    const [min, max] = cmd.positionals;
    if (parsed.positionals.length < min) throw new FrugalError('E_USAGE', `missing argument: ${cmd.usage} (see 'frugal ${cmd.name} --help')`);
    if (parsed.positionals.length > max) throw new FrugalError('E_USAGE', `unexpected argument '${parsed.positionals[max]}' (see 'frugal ${cmd.name} --help')`);
  }
  return { values, positionals: parsed.positionals };
}

/** Reads an integer flag, with a clear error naming the flag. */
export function intOption(values: ParsedValues, name: string, fallback: number, min = 0): number {
  const v = values[name];
  if (v === undefined) return fallback;
  const n = Number(v);
  if (typeof v !== 'string' || !/^-?\d+$/.test(v) || !Number.isSafeInteger(n) || n < min) {
    throw new FrugalError('E_USAGE', `--${name} must be an integer ≥ ${min}, got '${String(v)}'`);
  }
  return n;
}

/**
 * Reads a number flag (`--lr 3e-4`); `min` bounds it (exclusive with `exclusiveMin`), and a wrong value
 * is an E_USAGE error naming the flag.
 */
export function numberOption(values: ParsedValues, name: string, opts: { min?: number; exclusiveMin?: boolean } = {}): number | undefined {
  const v = values[name];
  if (v === undefined) return undefined;
  const x = Number(v);
  const min = opts.min ?? -Infinity;
  const tooSmall = opts.exclusiveMin ? x <= min : x < min;
  if (typeof v !== 'string' || v.trim() === '' || !Number.isFinite(x) || tooSmall) {
    const bound = min === -Infinity ? '' : ` ${opts.exclusiveMin ? '>' : '≥'} ${min}`;
    throw new FrugalError('E_USAGE', `--${name} must be a number${bound}, got '${String(v)}'`);
  }
  return x;
}

/** Reads a flag that takes one of `allowed`, with an error listing them. */
export function choiceOption<T extends string>(values: ParsedValues, name: string, allowed: readonly T[]): T | undefined {
  const v = values[name];
  if (v === undefined) return undefined;
  if (!allowed.includes(v as T)) throw new FrugalError('E_USAGE', `--${name} must be one of ${allowed.join(', ')}, got '${String(v)}'`);
  return v as T;
}

/** Reads a repeatable string flag as an array. */
export function listOption(values: ParsedValues, name: string): string[] {
  const v = values[name];
  if (v === undefined) return [];
  return (Array.isArray(v) ? v : [v]).map(String);
}
