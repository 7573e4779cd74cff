import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { FrugalError } from '../../errors.js';
import { loadModel, saveModel } from '../../onnx/index.js';
import { applyQuantizeMode, CALIBRATION_METHODS, getQuantizeMode, QUANTIZE_MODES, type QuantizeModeOptions } from '../../passes/registry.js';
import { modelDiskBytes } from '../../evaluation/compare.js';
import { defineCommand } from '../command.js';
import { formatBytes } from '../../report/format.js';
import { modeOutcome } from '../../passes/outcome.js';

const MODES = Object.keys(QUANTIZE_MODES).join('|');

/**
 * The output file: `-o` as given, or, when it names a folder (an existing one, or a path ending in a
 * separator), the mode's transformers.js file name inside it.
 */
export function quantizeOutputPath(output: string, mode: string): string {
  const isFolder = /[\\/]$/.test(output) || (existsSync(output) && statSync(output).isDirectory());
  return isFolder ? path.join(output, getQuantizeMode(mode).fileName) : output;
}

/** Prints a pass's stats as indented lines: scalars on one line, lists and records summarized. */
function statLines(stats: Record<string, unknown>): string[] {
  const lines: string[] = [];
  const scalars = Object.entries(stats).filter(([, v]) => v === null || typeof v !== 'object');
  if (scalars.length) lines.push('  ' + scalars.map(([k, v]) => `${k}: ${String(v)}`).join(', '));
  for (const [k, v] of Object.entries(stats)) {
    if (v === null || typeof v !== 'object') continue;
    if (Array.isArray(v)) {
      if (!v.length) continue;
      lines.push(`  ${k} (${v.length}):`);
      for (const item of v.slice(0, 12)) lines.push(`    ${typeof item === 'object' ? Object.values(item as object).map(String).join(' — ') : String(item)}`);
      if (v.length > 12) lines.push(`    ... ${v.length - 12} more (--json lists all)`);
    } else {
      const entries = Object.entries(v as object);
      if (entries.length) lines.push(`  ${k}: ${entries.map(([a, b]) => `${a} ${typeof b === 'object' ? JSON.stringify(b) : String(b)}`).join(', ')}`);
    }
  }
  return lines;
}

export const quantizeCommand = defineCommand({
  name: 'quantize',
  usage: `frugal quantize <in.onnx> -o <out.onnx|folder/> --mode ${MODES} [--calibrate mnist|spam|<folder>] [--method minmax|percentile|entropy] [--per-channel] [--exclude NAME|OP ...] [--block-size N] [--min-elements N] [--strict] [--json]`,
  positionals: [1, 1],
  options: {
    output: { type: 'string', short: 'o', arg: 'out.onnx|folder/', required: true, description: "output model, or a folder: then the file is named as transformers.js expects (model_quantized.onnx, model_q4.onnx, model_fp16.onnx...)" },
    mode: { type: 'choice', choices: Object.keys(QUANTIZE_MODES), required: true, description: 'what to do (see the modes below)' },
    calibrate: { type: 'string', arg: 'mnist|spam|folder', description: 'calibration data for int8-static: a built-in dataset, or a folder of .pb input tensors' },
    'calibration-size': { type: 'int', min: 1, description: 'dataset examples used for calibration (default 256)' },
    method: { type: 'choice', choices: CALIBRATION_METHODS, description: 'int8-static range method (default minmax)' },
    'per-channel': { type: 'boolean', description: 'one scale per output channel for int8 weights' },
    exclude: { type: 'string', multiple: true, arg: 'NAME|OP', description: 'leave nodes with this name or op type as they are' },
    'block-size': { type: 'int', description: 'int4 block size: a power of two from 16 to 256 (default 32)' },
    'min-elements': { type: 'int', min: 0, description: 'leave weights with fewer elements float (default 4096 for int8-dynamic, 1024 for int4/q4f16, 0 for int8-static)' },
    strict: { type: 'boolean', description: 'fail (exit 1, nothing written) when the mode changes no node, instead of a warning' },
  },
  examples: [
    'frugal quantize model.onnx -o onnx/ --mode int8-dynamic',
    'frugal quantize cnn.onnx -o cnn-int8.onnx --mode int8-static --calibrate mnist --method entropy --per-channel',
    'frugal quantize model.onnx -o onnx/ --mode int4 --block-size 32 --json',
    'frugal quantize small.onnx -o small-int8.onnx --mode int8-dynamic --min-elements 256 --strict',
    '',
    'Modes (output name in a folder):',
    ...Object.values(QUANTIZE_MODES).map((m) => `  ${m.name.padEnd(13)}${m.fileName.padEnd(22)}${m.description}`),
  ],
  async run(ctx) {
    const v = ctx.values;
    const input = ctx.positionals[0]!;
    const mode = getQuantizeMode(v.mode);
    const { method, 'block-size': blockSize } = v;
    const calibrationOnly = (['calibrate', 'method', 'calibration-size'] as const).filter((k) => v[k] !== undefined);
    if (!mode.calibrated && calibrationOnly.length) throw new FrugalError('E_USAGE', `--${calibrationOnly[0]} applies to int8-static only, not --mode ${mode.name}`);
    if (mode.calibrated && v.calibrate === undefined) throw new FrugalError('E_USAGE', `--mode ${mode.name} needs calibration data: --calibrate mnist|spam|<folder of .pb inputs>`);
    if (blockSize !== undefined && mode.name !== 'int4') throw new FrugalError('E_USAGE', `--block-size applies to int4 only, not --mode ${mode.name}`);
    if (v['min-elements'] !== undefined && mode.name === 'fp16') throw new FrugalError('E_USAGE', '--min-elements applies to the int8 and int4 modes, not --mode fp16');
    const minElements = v['min-elements'];
    const output = quantizeOutputPath(v.output, mode.name);

    const t0 = performance.now();
    ctx.progress(`reading ${input}`);
    const model = await loadModel(input);
    const inputBytes = await modelDiskBytes(input, model);
    const opts: QuantizeModeOptions = {
      ...(v['per-channel'] ? { perChannel: true } : {}),
      exclude: v.exclude,
      ...(blockSize !== undefined ? { blockSize } : {}),
      ...(method ? { method } : {}),
      ...(minElements !== undefined ? { minElements } : {}),
    };
    if (mode.calibrated) {
      ctx.progress(`reading calibration data (${String(v.calibrate)})`);
      opts.calibration = await mode.calibrationFor!(model, String(v.calibrate), v['calibration-size'] ?? 256);
    }
    ctx.progress(`quantizing (${mode.name})`);
    const result = await applyQuantizeMode(model, mode.name, opts, { onPass: (name) => ctx.progress(`${name}: done`) });
    const outcome = modeOutcome(result.passes);
    // A mode that rewrote no node would write a copy of the input and call it quantized.
    const unchanged = outcome.changed === 0;
    if (unchanged && v.strict === true) throw new FrugalError('E_UNSUPPORTED', `${outcome.headline}; nothing written (--strict)`);
    if (unchanged) result.warnings.unshift(`nothing changed: the output is a re-encoded copy of the input (--strict makes this an error)`);
    ctx.progress(`writing ${output}`);
    const saved = await saveModel(result.model, output, { externalData: 'auto', protect: [input] });
    const outputBytes = saved.bytes + (saved.externalDataBytes ?? 0);
    const seconds = (performance.now() - t0) / 1000;
    const summary = {
      input,
      output: saved.path,
      mode: mode.name,
      modified: result.modified,
      headline: outcome.headline,
      changedNodes: outcome.changed,
      candidateNodes: outcome.candidates,
      inputBytes,
      outputBytes,
      sizeRatio: outputBytes / inputBytes,
      externalDataPath: saved.externalDataPath ?? null,
      seconds,
      warnings: result.warnings,
      passes: result.passes,
    };
    if (ctx.json) {
      ctx.out(JSON.stringify(summary, null, 2));
      return;
    }
    ctx.out(outcome.headline);
    for (const w of result.warnings) ctx.out(`warning: ${w}`);
    for (const p of result.passes) {
      ctx.out(`${p.name}${p.modified ? '' : ' (nothing to do)'}`);
      for (const l of statLines(p.stats)) ctx.out(l);
    }
    ctx.out(`wrote ${saved.path}: ${formatBytes(inputBytes)} → ${formatBytes(outputBytes)} (${summary.sizeRatio.toFixed(3)}×) in ${seconds.toFixed(1)} s`);
    if (saved.externalDataPath) ctx.out(`external data: ${saved.externalDataPath} (${formatBytes(saved.externalDataBytes ?? 0)})`);
  },
});
