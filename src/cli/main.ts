/**
 * The `frugal` command line: a thin layer over the library. Each command parses its flags and calls
 * the library; errors print one line (no stack trace for a FrugalError) and exit non-zero:
 * 0 success, 1 failure, 2 usage error.
 */
import { frugalVersion } from '../profiling/records.js';
import { FrugalError, isFrugalError } from '../errors.js';
import { type Command, type CommandContext, helpText, parseCommandArgs } from './command.js';
import { convertCommand } from './commands/convert.js';
import { demoCommand } from './commands/demo.js';
import { inspectCommand } from './commands/inspect.js';
import { profileCommand } from './commands/profile.js';
import { runCommand } from './commands/run.js';
import { trainCommand } from './commands/train.js';
import { evalCommand } from './commands/eval.js';
import { quantizeCommand } from './commands/quantize.js';
import { compareCommand } from './commands/compare.js';
import { pruneCommand } from './commands/prune.js';

/** The command table. */
export const COMMANDS: readonly Command[] = Object.freeze([demoCommand, inspectCommand, convertCommand, runCommand, profileCommand, trainCommand, evalCommand, quantizeCommand, pruneCommand, compareCommand]);

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
    process.stdout.write((sub ? helpText(sub) : mainHelp()) + '\n');
    return 0;
  }
  if (name === '--version' || name === '-v') {
    process.stdout.write(frugalVersion() + '\n');
    return 0;
  }
  const cmd = COMMANDS.find((c) => c.name === name);
  const json = rest.includes('--json');
  try {
    if (!cmd) throw new FrugalError('E_USAGE', `unknown command '${name}' (commands: ${COMMANDS.map((c) => c.name).join(', ')}; see 'frugal --help')`);
    const { values, positionals } = parseCommandArgs(cmd, rest);
    if (values.help) {
      process.stdout.write(helpText(cmd) + '\n');
      return 0;
    }
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
    return reportError(e, json);
  }
}

/** Prints an error as one line (or a JSON object with --json) and returns the exit code. */
export function reportError(e: unknown, json: boolean): number {
  const code = isFrugalError(e) ? e.code : 'E_INTERNAL';
  const message = e instanceof Error ? e.message : String(e);
  if (json) process.stdout.write(JSON.stringify({ error: { code, message } }) + '\n');
  const firstLine = message.split('\n').join('; ');
  process.stderr.write(`frugal: error: ${firstLine}\n`);
  if (!isFrugalError(e) && process.env.FRUGAL_DEBUG) process.stderr.write(`${(e as Error).stack}\n`);
  if (!isFrugalError(e)) process.stderr.write('frugal: this is a bug in frugal; set FRUGAL_DEBUG=1 for the stack trace and report it\n');
  return isFrugalError(e, 'E_USAGE') ? 2 : 1;
}
