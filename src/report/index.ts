/** Reports from profile records: terminal table, Markdown, self-contained HTML with Vega-Lite charts. */
export * from './summary.js';
export * from './terminal.js';
export * from './markdown.js';
export * from './html.js';
export * from './charts.js';
