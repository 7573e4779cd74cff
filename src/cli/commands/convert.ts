import { loadModel, saveModel } from '../../onnx/index.js';
import { formatBytes } from '../../report/format.js';
import { defineCommand } from '../command.js';

export const convertCommand = defineCommand({
  name: 'convert',
  usage: 'frugal convert <in.onnx> -o <out.onnx> [--external-data [--threshold BYTES] [--location NAME]] [--inline] [--json]',
  positionals: [1, 1],
  options: {
    output: { type: 'string', short: 'o', arg: 'out.onnx', required: true, description: 'output model path (never the input)' },
    'external-data': { type: 'boolean', conflicts: ['inline'], description: 'move initializers of at least --threshold bytes to a side file' },
    threshold: { type: 'int', min: 0, arg: 'BYTES', requires: 'external-data', description: 'minimum initializer size for --external-data (default 1024)' },
    location: { type: 'string', arg: 'NAME', description: "side file name, relative to the output (default '<out name>_data')" },
    inline: { type: 'boolean', description: 'put every initializer back into the .onnx file (fails over 2 GiB)' },
  },
  examples: [
    'frugal convert model.onnx -o copy.onnx',
    'frugal convert big.onnx -o out/model.onnx --external-data --threshold 4096',
    'frugal convert out/model.onnx -o inline.onnx --inline --json',
  ],
  async run(ctx) {
    const input = ctx.positionals[0]!;
    const output = ctx.values.output;
    const threshold = ctx.values.threshold ?? 1024;
    ctx.progress(`reading ${input}`);
    const model = await loadModel(input);
    ctx.progress(`writing ${output}`);
    const res = await saveModel(model, output, {
      externalData: ctx.values['external-data'] ? true : ctx.values.inline ? false : 'auto',
      threshold,
      location: ctx.values.location,
      protect: [input],
    });
    if (ctx.json) {
      ctx.out(JSON.stringify({ input, output: res.path, bytes: res.bytes, externalDataPath: res.externalDataPath ?? null, externalDataBytes: res.externalDataBytes ?? 0, externalTensors: res.externalTensors }, null, 2));
      return;
    }
    ctx.out(`wrote ${res.path} (${formatBytes(res.bytes)})`);
    if (res.externalDataPath) ctx.out(`wrote ${res.externalDataPath} (${formatBytes(res.externalDataBytes ?? 0)}, ${res.externalTensors} tensors)`);
  },
});
