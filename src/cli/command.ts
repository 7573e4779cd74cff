import { parseArgs, type ParseArgsConfig } from 'node:util';
import { FrugalError } from '../errors.js';

/**
 * One CLI option as data: how it parses, how it is checked and how `--help` describes it. The parser
 * does every check a spec can state (presence, integer/number ranges, choices, conflicts), so commands
 * receive typed, valid values and only check what depends on the library (a mode's own options).
 */
export type OptionSpec =
  | (OptionBase & { type: 'boolean' })
  | (OptionBase & { type: 'string'; default?: string })
  | (OptionBase & NumberRange & { type: 'int'; default?: number })
  | (OptionBase & NumberRange & { type: 'number'; default?: number })
  | (OptionBase & { type: 'choice'; choices: readonly string[]; default?: string });

interface OptionBase {
  short?: string;
  /** Repeatable (not for booleans): the value is an array (empty when absent). */
  multiple?: boolean;
  description: string;
  /** Placeholder shown in help, e.g. `N` or `name=file.pb`; a choice option shows its choices. */
  arg?: string;
  /** Missing → a usage error naming the flag. */
  required?: boolean;
  /** Other options that may not be given together with this one. */
  conflicts?: readonly string[];
  /** An option that must be given when this one is. */
  requires?: string;
}

interface NumberRange {
  /** Smallest allowed value (inclusive unless `exclusiveMin`). */
  min?: number;
  exclusiveMin?: boolean;
  /** Largest allowed value (inclusive). */
  max?: number;
}

type ValueOf<O extends OptionSpec> = O extends { type: 'boolean' }
  ? boolean
  : O extends { type: 'int' | 'number' }
    ? number
    : O extends { type: 'choice'; choices: readonly (infer C)[] }
      ? C
      : string;

type IsPresent<O extends OptionSpec> = O extends { type: 'boolean' } | { required: true } | { default: unknown } | { multiple: true } ? true : false;
type Wrapped<O extends OptionSpec> = O extends { multiple: true } ? Array<ValueOf<O>> : ValueOf<O>;

/**
 * The parsed values of a command's options, typed from its specs: booleans and repeatable options are
 * always present; required options and options with a default are present; the rest may be undefined.
 */
export type OptionValues<Opts extends Record<string, OptionSpec>> = {
  [K in keyof Opts as IsPresent<Opts[K]> extends true ? K : never]: Wrapped<Opts[K]>;
} & {
  [K in keyof Opts as IsPresent<Opts[K]> extends true ? never : K]?: Wrapped<Opts[K]>;
} & { json: boolean; help: boolean };

export type ParsedValues = Record<string, string | number | boolean | Array<string | number> | undefined>;

export interface CommandContext<V = ParsedValues> {
  values: V;
  positionals: string[];
  json: boolean;
  /** Writes a line to stdout. */
  out: (line: string) => void;
  /** Progress to stderr, only on a TTY and never with --json (keeps machine output clean). */
  progress: (line: string) => void;
}

/**
 * A CLI command: usage, options and examples for `--help`, and a `run` that calls the library.
 * Commands are thin: parsing and printing only. Its name and one-line summary live in the command
 * table (cli/main.ts), which loads the command's module only when it runs.
 */
export interface Command {
  name: string;
  usage: string;
  options: Record<string, OptionSpec>;
  examples: string[];
  /** Minimum and maximum positional arguments. */
  positionals: [number, number];
  run(ctx: CommandContext): Promise<number | void>;
}

/** A command as written: its `run` sees its options' values typed from their specs. */
export interface TypedCommand<Opts extends Record<string, OptionSpec>> extends Omit<Command, 'options' | 'run'> {
  options: Opts;
  run(ctx: CommandContext<OptionValues<Opts>>): Promise<number | void>;
}

/**
 * Declares a command. The parser (`parseCommandArgs`) fills in exactly the values the specs promise,
 * which is what makes the typed view of `values` sound.
 */
export function defineCommand<const Opts extends Record<string, OptionSpec>>(cmd: TypedCommand<Opts>): Command {
  return cmd as unknown as Command;
}

/** Options every command takes. */
export const COMMON_OPTIONS = {
  json: { type: 'boolean', description: 'print one JSON object instead of text' },
  help: { type: 'boolean', short: 'h', description: 'show this help' },
  verbose: { type: 'boolean', description: "also show ONNX Runtime's own log lines (warnings and errors)" },
} as const satisfies Record<string, OptionSpec>;

function placeholder(o: OptionSpec): string {
  if (o.type === 'boolean') return '';
  return ` <${o.arg ?? (o.type === 'choice' ? o.choices.join('|') : o.type === 'int' ? 'N' : o.type === 'number' ? 'X' : 'value')}>`;
}

function describe(o: OptionSpec): string {
  const notes: string[] = [];
  if (o.required) notes.push('required');
  if ('default' in o && o.default !== undefined) notes.push(`default ${o.default}`);
  if (o.multiple) notes.push('repeatable');
  return o.description + (notes.length ? ` (${notes.join('; ')})` : '');
}

export function helpText(cmd: Command, summary: string): string {
  const opts: Record<string, OptionSpec> = { ...cmd.options, ...COMMON_OPTIONS };
  const lines = [`frugal ${cmd.name}: ${summary}`, '', `Usage: ${cmd.usage}`, '', 'Options:'];
  const rows = Object.entries(opts).map(([name, o]) => [`${o.short ? `-${o.short}, ` : '    '}--${name}${placeholder(o)}`, describe(o)] as const);
  const width = Math.max(...rows.map(([f]) => f.length)) + 2;
  for (const [f, d] of rows) lines.push(`  ${f.padEnd(width)}${d}`);
  if (cmd.examples.length) lines.push('', 'Examples:', ...cmd.examples.map((e) => `  ${e}`));
  return lines.join('\n');
}

const NEGATIVE_NUMBER = /^-(\d|\.\d)/;

/**
 * `--epochs -1` would read as a flag `-1` to node's parser ("argument is ambiguous"); for numeric
 * options a following token that looks like a negative number is their value, so the range check
 * can report it as `--epochs=-1` would be.
 */
function joinNegativeNumbers(argv: string[], options: Record<string, OptionSpec>): string[] {
  const numeric = new Set<string>();
  for (const [name, o] of Object.entries(options)) {
    if (o.type !== 'int' && o.type !== 'number') continue;
    numeric.add(`--${name}`);
    if (o.short) numeric.add(`-${o.short}`);
  }
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') return [...out, ...argv.slice(i)];
    const next = argv[i + 1];
    if (numeric.has(a) && next !== undefined && NEGATIVE_NUMBER.test(next)) {
      out.push(a.startsWith('--') ? `${a}=${next}` : `${a}${next}`);
      i++;
    } else out.push(a);
  }
  return out;
}

/** Converts and checks one raw value against its spec; a wrong value is an E_USAGE naming the flag. */
function convert(name: string, o: OptionSpec, raw: string): string | number {
  if (o.type === 'int' || o.type === 'number') {
    const x = Number(raw);
    const isInt = o.type === 'int';
    const wellFormed = raw.trim() !== '' && Number.isFinite(x) && (!isInt || (/^-?\d+$/.test(raw.trim()) && Number.isSafeInteger(x)));
    const min = o.min ?? -Infinity;
    const inRange = wellFormed && (o.exclusiveMin ? x > min : x >= min) && x <= (o.max ?? Infinity);
    if (!inRange) {
      const bounds = [
        o.min !== undefined ? `${o.exclusiveMin ? '>' : '≥'} ${o.min}` : '',
        o.max !== undefined ? `≤ ${o.max}` : '',
      ].filter(Boolean);
      throw new FrugalError('E_USAGE', `--${name} must be ${isInt ? 'an integer' : 'a number'}${bounds.length ? ' ' + bounds.join(' and ') : ''}, got '${raw}'`);
    }
    return x;
  }
  if (o.type === 'choice' && !o.choices.includes(raw)) {
    throw new FrugalError('E_USAGE', `--${name} must be one of ${o.choices.join(', ')}, got '${raw}'`);
  }
  return raw;
}

/**
 * Parses argv for a command: unknown flags, wrong arity, missing required options, out-of-range
 * numbers, unknown choices and conflicting options are E_USAGE errors that name the flag. Values come
 * back converted (numbers as numbers) with defaults filled in.
 */
export function parseCommandArgs(cmd: Command, argv: string[]): { values: ParsedValues; positionals: string[] } {
  const specs: Record<string, OptionSpec> = { ...cmd.options, ...COMMON_OPTIONS };
  const options: NonNullable<ParseArgsConfig['options']> = {};
  for (const [name, o] of Object.entries(specs)) {
    options[name] = { type: o.type === 'boolean' ? 'boolean' : 'string', ...(o.short ? { short: o.short } : {}), ...(o.multiple && o.type !== 'boolean' ? { multiple: true } : {}) };
  }
  let parsed;
  try {
    parsed = parseArgs({ args: joinNegativeNumbers(argv, specs), options, allowPositionals: true, strict: true });
  } catch (e) {
    const msg = (e as Error).message.replace(/\. To specify a positional argument.*$/s, '');
    throw new FrugalError('E_USAGE', `${msg} (see 'frugal ${cmd.name} --help')`);
  }
  const raw = parsed.values as Record<string, string | boolean | Array<string | boolean> | undefined>;
  if (raw.help) return { values: { ...raw, help: true, json: raw.json === true }, positionals: parsed.positionals };
  const values: ParsedValues = {};
  for (const [name, o] of Object.entries(specs)) {
    const v = raw[name];
    if (o.type === 'boolean') values[name] = v === true;
    else if (v === undefined) {
      if (o.required) throw new FrugalError('E_USAGE', `missing ${o.short ? `-${o.short}/` : ''}--${name}${placeholder(o)} (see 'frugal ${cmd.name} --help')`);
      values[name] = o.multiple ? [] : o.default;
    } else values[name] = Array.isArray(v) ? v.map((x) => convert(name, o, String(x))) : convert(name, o, String(v));
  }
  for (const [name, o] of Object.entries(specs)) {
    if (raw[name] === undefined) continue;
    const clash = o.conflicts?.find((c) => raw[c] !== undefined);
    if (clash) throw new FrugalError('E_USAGE', `give --${name} or --${clash}, not both (see 'frugal ${cmd.name} --help')`);
    if (o.requires && raw[o.requires] === undefined) throw new FrugalError('E_USAGE', `--${name} needs --${o.requires}${placeholder(specs[o.requires]!)}`);
  }
  const [min, max] = cmd.positionals;
  if (parsed.positionals.length < min) throw new FrugalError('E_USAGE', `missing argument: ${cmd.usage} (see 'frugal ${cmd.name} --help')`);
  if (parsed.positionals.length > max) throw new FrugalError('E_USAGE', `unexpected argument '${parsed.positionals[max]}' (see 'frugal ${cmd.name} --help')`);
  return { values, positionals: parsed.positionals };
}
