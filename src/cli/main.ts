/**
 * The `frugal` command line: a thin layer over the library. Each command parses its flags and calls
 * the library; errors print one line (no stack trace for a FrugalError) and exit non-zero:
 * 0 success, 1 failure, 2 usage error.
 */
import { frugalVersion } from '../util/version.js';
import { FrugalError, isFrugalError } from '../errors.js';
import { type Command, type CommandContext, helpText, parseCommandArgs } from './command.js';

/** One row of the command table: the name and summary `frugal --help` lists, and how to load it. */
export interface CommandEntry {
  readonly name: string;
  readonly summary: string;
  /** Loads the command's module (only the command that runs is imported, so `--help` stays quick). */
  load(): Promise<Command>;
}

/** The command table. */
export const COMMANDS: readonly CommandEntry[] = Object.freeze([
  { name: 'demo', summary: "Frugal's main job on its embedded default: quantize the trained teachers, evaluate, profile, report", load: async () => (await import('./commands/demo.js')).demoCommand },
  { name: 'inspect', summary: 'describe a model: opsets, inputs/outputs, ops, parameters, bytes by dtype, FLOPs', load: async () => (await import('./commands/inspect.js')).inspectCommand },
  { name: 'convert', summary: 're-encode a model, moving initializers to or from an external-data side file', load: async () => (await import('./commands/convert.js')).convertCommand },
  { name: 'run', summary: 'run a model in ONNX Runtime and print output summaries (or values with --json)', load: async () => (await import('./commands/run.js')).runCommand },
  { name: 'profile', summary: 'measure latency, throughput, CPU time, memory, energy and carbon of models, side by side', load: async () => (await import('./commands/profile.js')).profileCommand },
  { name: 'train', summary: 'train a zoo model or an ONNX model on a built-in dataset (mnist, spam) with ONNX Runtime', load: async () => (await import('./commands/train.js')).trainCommand },
  { name: 'distill', summary: 'train a small student from a teacher (knowledge distillation), compared with the same student trained on labels alone', load: async () => (await import('./commands/distill.js')).distillCommand },
  { name: 'eval', summary: 'test accuracy of a classifier on a built-in dataset (mnist, spam)', load: async () => (await import('./commands/eval.js')).evalCommand },
  { name: 'quantize', summary: 'quantize a model: int8 dynamic or static (calibrated), int4 weight-only (q4, q4f16), fp16', load: async () => (await import('./commands/quantize.js')).quantizeCommand },
  { name: 'prune', summary: 'prune a model: unstructured magnitude (gradual), N:M, or structured (removes channels, units, heads), with fine-tuning', load: async () => (await import('./commands/prune.js')).pruneCommand },
  { name: 'attention', summary: 'convert softmax attention to linear, sliding-window or block-sparse attention (and fine-tune)', load: async () => (await import('./commands/attention.js')).attentionCommand },
  { name: 'optimize', summary: 'search for the cheapest model on energy, latency or size within an accuracy budget (quantization, pruning, distillation, efficient attention)', load: async () => (await import('./commands/optimize.js')).optimizeCommand },
  { name: 'compare', summary: 'compare a candidate model with its reference: size, output fidelity, accuracy, latency', load: async () => (await import('./commands/compare.js')).compareCommand },
]);

function mainHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length)) + 2;
  return [
    'frugal: make neural networks cheaper to run and to train (ONNX, on ONNX Runtime)',
    '',
    'Usage: frugal <command> [options]',
    '',
    'Commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}${c.summary}`),
    '',
    "Every command takes --json and --help. Run 'frugal <command> --help' for its options and examples.",
  ].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    const sub = name === 'help' ? COMMANDS.find((c) => c.name === rest[0]) : undefined;
    process.stdout.write((sub ? helpText(await sub.load(), sub.summary) : mainHelp()) + '\n');
    return 0;
  }
  if (name === '--version' || name === '-v') {
    process.stdout.write(frugalVersion() + '\n');
    return 0;
  }
  const entry = COMMANDS.find((c) => c.name === name);
  const json = rest.includes('--json');
  let cmd: Command | undefined;
  try {
    if (!entry) throw new FrugalError('E_USAGE', `unknown command '${name}' (commands: ${COMMANDS.map((c) => c.name).join(', ')}; see 'frugal --help')`);
    cmd = await entry.load();
    const { values, positionals } = parseCommandArgs(cmd, rest);
    if (values.help) {
      process.stdout.write(helpText(cmd, entry.summary) + '\n');
      return 0;
    }
    // ORT logs straight to stderr; keep its lines off unless asked, since its errors come back as ours.
    // (Imported here, not at the top: `frugal --help` should not load ONNX Runtime.)
    const { setDefaultLogSeverity } = await import('../runtime/session.js');
    setDefaultLogSeverity(values.verbose ? 2 : 4);
    const tty = process.stderr.isTTY === true && !values.json;
    const ctx: CommandContext = {
      values,
      positionals,
      json: values.json === true,
      out: (line) => process.stdout.write(line + '\n'),
      progress: (line) => {
        if (tty) process.stderr.write(`\x1b[2m${line}\x1b[0m\n`);
      },
    };
    return (await cmd.run(ctx)) ?? 0;
  } catch (e) {
    return reportError(cmd ? inFlagTerms(e, cmd) : e, json);
  }
}

/**
 * Library errors name the option at fault in the library's terms (`blockSize`); on the command line
 * the user typed a flag (`--block-size`), so the message is rewritten to name it.
 */
function inFlagTerms(e: unknown, cmd: Command): unknown {
  if (!isFrugalError(e) || !e.option) return e;
  const flag = e.option.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
  if (!Object.hasOwn(cmd.options, flag)) return e;
  const message = e.message.replace(new RegExp(`\\b${e.option}\\b`, 'g'), `--${flag}`);
  return new FrugalError(e.code, message, { cause: e.cause, option: e.option });
}

/** Prints an error as one line (or a JSON object with --json) and returns the exit code. */
export function reportError(e: unknown, json: boolean): number {
  const code = isFrugalError(e) ? e.code : 'E_INTERNAL';
  const message = e instanceof Error ? e.message : String(e);
  if (json) process.stdout.write(JSON.stringify({ error: { code, message } }) + '\n');
  const firstLine = message.split('\n').join('; ');
  process.stderr.write(`frugal: error: ${firstLine}\n`);
  const bug = !isFrugalError(e) || e.code === 'E_INTERNAL';
  if (bug && process.env.FRUGAL_DEBUG) process.stderr.write(`${(e as Error).stack}\n`);
  if (bug) process.stderr.write('frugal: this is a bug in frugal; set FRUGAL_DEBUG=1 for the stack trace and report it\n');
  return isFrugalError(e, 'E_USAGE') ? 2 : 1;
}
