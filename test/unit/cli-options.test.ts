/**
 * The CLI's option specs are data: the parser checks presence, numeric ranges, choices, conflicts
 * and dependencies once for every command, and library errors that name an option reach the user
 * under the flag they typed.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { defineCommand, parseCommandArgs } from '../../src/cli/command.js';
import { main } from '../../src/cli/main.js';
import { FrugalError } from '../../src/errors.js';

const cmd = defineCommand({
  name: 'probe',
  usage: 'frugal probe [options]',
  positionals: [0, 1],
  options: {
    output: { type: 'string', short: 'o', required: true, description: 'out' },
    epochs: { type: 'int', min: 1, description: 'epochs' },
    lr: { type: 'number', min: 0, exclusiveMin: true, default: 0.001, description: 'lr' },
    offset: { type: 'number', description: 'any number, negative included' },
    mode: { type: 'choice', choices: ['a', 'b'], default: 'a', description: 'mode' },
    tag: { type: 'string', multiple: true, description: 'tags' },
    inline: { type: 'boolean', conflicts: ['external'], description: 'inline' },
    external: { type: 'boolean', description: 'external' },
    resume: { type: 'boolean', requires: 'checkpoint', description: 'resume' },
    checkpoint: { type: 'string', description: 'checkpoint' },
  },
  examples: [],
  async run() {},
});

function usageError(argv: string[], pattern: RegExp): void {
  assert.throws(() => parseCommandArgs(cmd, argv), (e: unknown) => e instanceof FrugalError && e.code === 'E_USAGE' && pattern.test(e.message), `argv ${argv.join(' ')}`);
}

test('cli options: values are converted, defaulted and typed by their specs', () => {
  const { values, positionals } = parseCommandArgs(cmd, ['-o', 'x.onnx', '--epochs', '3', '--tag', 'p', '--tag', 'q', 'in.onnx']);
  assert.deepEqual(positionals, ['in.onnx']);
  assert.equal(values.output, 'x.onnx');
  assert.equal(values.epochs, 3);
  assert.equal(values.lr, 0.001, 'a default fills an absent option');
  assert.equal(values.mode, 'a');
  assert.deepEqual(values.tag, ['p', 'q']);
  assert.equal(values.inline, false, 'an absent boolean is false, not undefined');
  assert.equal(values.checkpoint, undefined);
  assert.equal(parseCommandArgs(cmd, ['-o', 'x', '--offset', '-2.5']).values.offset, -2.5, 'a negative number after a numeric flag is its value');
});

test('cli options: every spec-level mistake is one usage error naming the flag', () => {
  usageError([], /missing -o\/--output <value>/);
  usageError(['-o', 'x', '--epochs', '-1'], /--epochs must be an integer ≥ 1, got '-1'/);
  usageError(['-o', 'x', '--epochs=-1'], /--epochs must be an integer ≥ 1, got '-1'/);
  usageError(['-o', 'x', '--epochs', '2.5'], /--epochs must be an integer/);
  usageError(['-o', 'x', '--lr', '0'], /--lr must be a number > 0, got '0'/);
  usageError(['-o', 'x', '--lr', 'fast'], /--lr must be a number/);
  usageError(['-o', 'x', '--mode', 'c'], /--mode must be one of a, b, got 'c'/);
  usageError(['-o', 'x', '--inline', '--external'], /give --inline or --external, not both/);
  usageError(['-o', 'x', '--resume'], /--resume needs --checkpoint/);
  usageError(['-o', 'x', '--nope'], /Unknown option '--nope'/);
  usageError(['-o', 'x', 'a', 'b'], /unexpected argument 'b'/);
  // --help skips the checks: asking for help is never an error.
  assert.equal(parseCommandArgs(cmd, ['--help']).values.help, true);
});

test('cli options: a library error about an option names the flag the user typed', async () => {
  const writes: string[] = [];
  const write = process.stderr.write;
  process.stderr.write = ((s: string) => (writes.push(s), true)) as typeof process.stderr.write;
  let code: number;
  try {
    // int4's own check (the library's `blockSize`), reached through the quantize command.
    code = await main(['quantize', 'models/mnist-cnn.onnx', '-o', '/nonexistent-dir/x.onnx', '--mode', 'int4', '--block-size', '24']);
  } finally {
    process.stderr.write = write;
  }
  assert.equal(code, 2);
  assert.match(writes.join(''), /frugal: error: --block-size must be a power of two from 16 to 256 \(int4 blocks\), got 24/);
});
