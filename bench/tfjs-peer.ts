/**
 * The TensorFlow.js peer for `npm run bench -- train`: the same MLP (784 → 256 → 128 → 10, ReLU) and
 * CNN (Conv3×3 pad 1 + ReLU + MaxPool 2, channels 16 and 32, then a linear classifier) as Frugal's zoo,
 * trained with Adam and softmax cross-entropy at the same batch size on the same MNIST images, on
 * TF.js's wasm backend and its pure-JS cpu backend. TF.js is a dev dependency for this comparison only.
 */
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { median } from '../src/profiling/stats.js';

let wasmConfigured = false;

function buildTfjsModel(kind: 'mlp' | 'cnn'): tf.Sequential {
  if (kind === 'mlp') {
    return tf.sequential({
      layers: [
        tf.layers.dense({ inputShape: [784], units: 256, activation: 'relu' }),
        tf.layers.dense({ units: 128, activation: 'relu' }),
        tf.layers.dense({ units: 10 }),
      ],
    });
  }
  return tf.sequential({
    layers: [
      tf.layers.conv2d({ inputShape: [28, 28, 1], filters: 16, kernelSize: 3, padding: 'same', activation: 'relu' }),
      tf.layers.maxPooling2d({ poolSize: 2, strides: 2 }),
      tf.layers.conv2d({ filters: 32, kernelSize: 3, padding: 'same', activation: 'relu' }),
      tf.layers.maxPooling2d({ poolSize: 2, strides: 2 }),
      tf.layers.flatten(),
      tf.layers.dense({ units: 10 }),
    ],
  });
}

/**
 * Training throughput of TF.js (samples per second, median over `reps` timed epochs of `steps` batches
 * after one warm-up epoch) on `backend`.
 */
export async function tfjsSamplesPerSec(
  kind: 'mlp' | 'cnn',
  backend: 'wasm' | 'cpu',
  images: Float32Array,
  labels: Uint8Array,
  opts: { batch: number; steps: number; reps: number },
): Promise<number> {
  if (backend === 'wasm' && !wasmConfigured) {
    setWasmPaths(path.resolve('node_modules/@tensorflow/tfjs-backend-wasm/dist') + path.sep);
    wasmConfigured = true;
  }
  await tf.setBackend(backend);
  await tf.ready();
  const n = opts.batch * opts.steps;
  const x = kind === 'mlp' ? tf.tensor2d(images.subarray(0, n * 784), [n, 784]) : tf.tensor4d(images.subarray(0, n * 784), [n, 28, 28, 1]);
  const y = tf.oneHot(tf.tensor1d(Int32Array.from(labels.subarray(0, n)), 'int32'), 10).toFloat();
  const model = buildTfjsModel(kind);
  model.compile({ optimizer: tf.train.adam(1e-3), loss: tf.losses.softmaxCrossEntropy });
  const times: number[] = [];
  for (let r = 0; r <= opts.reps; r++) {
    const t0 = performance.now();
    await model.fit(x, y, { batchSize: opts.batch, epochs: 1, shuffle: false, verbose: 0 });
    if (r > 0) times.push((performance.now() - t0) / 1000);
  }
  x.dispose();
  y.dispose();
  model.dispose();
  return n / median(times);
}
