/**
 * Charts for reports: Vega-Lite specs compiled to Vega and rendered to SVG strings in Node (headless,
 * no canvas, no browser), so an HTML report embeds them inline and opens offline.
 */
import * as vega from 'vega';
import * as vl from 'vega-lite';
import type { ProfileRecord } from '../profiling/records.js';

type Spec = vl.TopLevelSpec;

/** Renders a Vega-Lite spec to an SVG string. */
export async function renderSvg(spec: Spec): Promise<string> {
  const view = new vega.View(vega.parse(vl.compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

const FONT = { font: 'system-ui, sans-serif', labelFont: 'system-ui, sans-serif', titleFont: 'system-ui, sans-serif' };

/** Box plot of per-run latency for each model. */
export function latencySpec(record: ProfileRecord): Spec {
  const values = record.models.flatMap((m) => m.latencySamplesMs.map((ms) => ({ model: m.name, ms })));
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: 'Latency per run (ms)',
    width: 520,
    data: { values },
    mark: { type: 'boxplot', extent: 'min-max', size: 18 },
    encoding: {
      y: { field: 'model', type: 'nominal', title: null, sort: record.models.map((m) => m.name) },
      x: { field: 'ms', type: 'quantitative', title: 'milliseconds per run', scale: { type: 'log' } },
      color: { field: 'model', type: 'nominal', legend: null },
    },
    config: { ...FONT, axis: { labelLimit: 260 } },
  };
}

/** Bar chart of energy per inference, coloured by whether the figure is measured or estimated. */
export function energySpec(record: ProfileRecord): Spec {
  const values = record.models
    .filter((m) => m.energy.joulesPerInference !== null)
    .map((m) => ({ model: m.name, mj: m.energy.joulesPerInference! * 1000, source: m.energy.sources.join(' + ') }));
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: 'Energy per inference (mJ)',
    width: 520,
    data: { values },
    mark: { type: 'bar' },
    encoding: {
      y: { field: 'model', type: 'nominal', title: null, sort: record.models.map((m) => m.name) },
      x: { field: 'mj', type: 'quantitative', title: 'millijoules per inference' },
      color: { field: 'source', type: 'nominal', title: 'source' },
    },
    config: { ...FONT, axis: { labelLimit: 260 }, legend: { orient: 'bottom', labelLimit: 400 } },
  };
}

/** Accuracy against energy per 1,000 inferences, one point per model (models with both figures). */
export function accuracySpec(record: ProfileRecord): Spec | null {
  const values = record.models
    .filter((m) => m.accuracy !== null && m.energy.whPer1000Inferences !== null)
    .map((m) => ({ model: m.name, accuracy: m.accuracy!, wh: m.energy.whPer1000Inferences! }));
  if (values.length === 0) return null;
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: 'Accuracy against energy',
    width: 520,
    height: 300,
    data: { values },
    encoding: {
      x: { field: 'wh', type: 'quantitative', title: 'Wh per 1,000 inferences', scale: { type: 'log' } },
      y: { field: 'accuracy', type: 'quantitative', title: 'accuracy', scale: { zero: false } },
    },
    layer: [{ mark: { type: 'point', filled: true, size: 80 } }, { mark: { type: 'text', dx: 8, align: 'left' }, encoding: { text: { field: 'model' } } }],
    config: FONT,
  };
}

export interface RenderedCharts {
  latency: string;
  energy: string | null;
  accuracy: string | null;
}

/** Renders every chart a record supports. */
export async function renderCharts(record: ProfileRecord): Promise<RenderedCharts> {
  const hasEnergy = record.models.some((m) => m.energy.joulesPerInference !== null);
  const acc = accuracySpec(record);
  return {
    latency: await renderSvg(latencySpec(record)),
    energy: hasEnergy ? await renderSvg(energySpec(record)) : null,
    accuracy: acc ? await renderSvg(acc) : null,
  };
}
