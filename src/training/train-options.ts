/**
 * What `trainModel` takes and returns (trainer.ts runs it): the options, the progress events it
 * reports, and the result.
 */
import type * as ort from 'onnxruntime-node';
import type { Model } from '../ir/model.js';
import type { WindowResult } from '../profiling/window.js';
import type { LossScalerOptions, LossScalerState } from './loss-scaling.js';
import type { AuxiliaryLoss, LossSpec } from './losses.js';
import type { OptimizerConfig, OptimizerKind } from './optimizers/reference.js';
import type { ScheduleKind } from './schedules.js';

export interface TrainOptions {
  /** The forward model (not modified). */
  model: Model;
  dataset: 'mnist' | 'spam' | string;
  /** Passes over the training data (default 1 unless `steps` is given). */
  epochs?: number;
  /** Total optimizer steps (overrides `epochs`). */
  steps?: number;
  /** Micro-batch size (default 64). */
  batchSize?: number;
  /** Micro-batches per optimizer step (gradient accumulation; default 1). */
  accumulate?: number;
  /** Optimizer kind or full config (default adamw). */
  optimizer?: OptimizerKind | OptimizerConfig;
  /** Peak learning rate (default 1e-3 for adamw, 0.05 for sgd). */
  lr?: number;
  schedule?: ScheduleKind;
  warmupSteps?: number;
  /** Clip the global gradient norm to this (default: no clipping). */
  clipNorm?: number;
  /** Loss (default cross-entropy). Distillation needs `teacher`. */
  loss?: LossSpec;
  /** Teacher model for a distillation loss: its logits on each batch are fed to the loss. */
  teacher?: Model;
  /**
   * Extra tensors fed to the training graph with each micro-batch, by input name: called with the
   * train-split indices of the batch's examples and the epoch (e.g. cached teacher logits for
   * distillation). A loss input it supplies is not computed by the trainer (no online teacher run).
   */
  batchFeeds?: (indices: readonly number[], epoch: number) => Record<string, ort.Tensor>;
  /** Extra MSE terms on other model outputs, their targets fed through `batchFeeds` (training-graph.ts). */
  auxiliaryLosses?: AuxiliaryLoss[];
  /** Initializers to train (default: all float weights reaching the output). */
  trainable?: string[];
  /** Dropout in training mode (default true). */
  dropout?: boolean;
  /** Seed of the per-epoch shuffles (default 0). */
  seed?: number;
  /** Use only the first N training examples. */
  limit?: number;
  /** Image data augmentation: random translation by up to `shift` pixels (seeded per epoch and example). */
  augment?: { shift: number };
  /** Evaluate on only the first N test examples. */
  evalLimit?: number;
  /** Evaluate test accuracy after each epoch (default true). */
  evaluate?: boolean;
  /** Text: sequence length (default: the model's position table). */
  maxLength?: number;
  /** Checkpoint file: written every `checkpointEvery` steps and at each epoch end. */
  checkpoint?: string;
  checkpointEvery?: number;
  /** Continue from `checkpoint` when it exists. */
  resume?: boolean;
  intraOpThreads?: number;
  /**
   * `fp16`: mixed precision. The training graph computes in float16 (normalizations, softmax and the loss
   * in float32; training-graph.ts), the optimizer updates fp32 master weights outside the graph, and dynamic loss
   * scaling (loss-scaling.ts) keeps small gradients from flushing to zero, skipping steps that overflow.
   * Speed needs an execution provider with fp16 kernels; the CPU provider computes most fp16 ops in float32
   * between Casts (fp16 storage and rounding, no faster than fp32 there). The trained model is saved in float32
   * (the master weights); convert it with `frugal quantize --mode fp16` to deploy in fp16.
   */
  precision?: 'fp32' | 'fp16';
  /** Dynamic loss scaling settings for `precision: 'fp16'` (PyTorch GradScaler's defaults otherwise). */
  lossScale?: LossScalerOptions;
  ep?: string;
  onProgress?: (p: ProgressEvent) => void;
  /** Called once after setup (data, graphs, sessions, resume), right before the first step. */
  onStart?: () => void;
  /**
   * Run the optimizer update (and clipping) inside the ORT training graph, one `session.run` per step
   * (see optimizers/in-graph.ts). Default false: the WebAssembly SIMD update, measured faster on CPU.
   */
  fusedOptimizer?: boolean;
  /** Stop (as if killed) after this many optimizer steps in this call; for tests of resume. */
  stopAfterSteps?: number;
  /** Measure the energy of the run and of each epoch run in this call (`TrainResult.energy`). */
  measureEnergy?: boolean;
  /**
   * Called after every optimizer step (skipped steps included) with the step count and the live fp32
   * weights by name, which it may edit in place: pruning re-applies its masks here so pruned weights stay
   * exactly zero whatever momentum and weight decay do, and gradual pruning grows its masks.
   */
  afterStep?: (step: number, weights: ReadonlyMap<string, Float32Array>) => void;
}

export interface ProgressEvent {
  epoch: number;
  epochs: number;
  step: number;
  totalSteps: number;
  loss: number;
  lr: number;
  samplesPerSec: number;
  /** Set on the event that ends an epoch (when evaluated). */
  accuracy?: number;
  /**
   * True on the event that closes an epoch, after its evaluation (also when the run stops mid-epoch): the
   * one place to close per-epoch measurements. Step events leave it unset.
   */
  epochEnd?: true;
}

export interface EpochSummary {
  epoch: number;
  /** Mean training loss over the epoch's micro-batches. */
  loss: number;
  /** Test accuracy after the epoch (when evaluated). */
  accuracy?: number;
}

export interface TrainResult {
  /** The trained forward model: weights and running statistics written back as initializers. */
  model: Model;
  epochs: EpochSummary[];
  /** Loss of the last micro-batch. */
  finalLoss: number;
  finalAccuracy?: number;
  steps: number;
  samples: number;
  /** Training examples per second over this call (forward+backward+update, evaluation excluded). */
  samplesPerSec: number;
  wallSeconds: number;
  /**
   * Seconds in ORT runs of the training model and in the JS optimizer update (incl. clipping,
   * accumulation); with the fused optimizer the update is inside the runs and optimizerSeconds ≈ 0.
   */
  runSeconds: number;
  optimizerSeconds: number;
  resumedFrom?: { epoch: number; step: number };
  /** Mixed precision: the loss scale at the end and the steps skipped because gradients overflowed. */
  lossScale?: LossScalerState;
  /** True when `stopAfterSteps` ended the call early. */
  stopped: boolean;
  trainable: string[];
  /**
   * With `measureEnergy`: the whole call's energy and each epoch's run in this call (a resumed run's
   * earlier epochs were measured by the earlier call).
   */
  energy?: { run: WindowResult; epochs: Array<{ epoch: number; energy: WindowResult }> };
}
