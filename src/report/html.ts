/**
 * A self-contained HTML report from a profile record: inline CSS, charts as inline SVG rendered in
 * Node from Vega-Lite specs, and the record itself embedded as JSON data. No executable script, no external
 * resource: it opens offline and from a file.
 */
import type { ProfileRecord } from '../profiling/records.js';
import { renderCharts } from './charts.js';
import { provenanceLines, settingsLine, SUMMARY_HEADER, summaryRows } from './summary.js';

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

const CSS = `body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:1100px;padding:0 1rem;color:#222}
table{border-collapse:collapse;font-size:13px;margin:1rem 0}th,td{padding:.3rem .5rem;border-bottom:1px solid #ddd;text-align:right}
th:first-child,td:first-child{text-align:left}th{background:#f4f4f4}.chart{margin:1.5rem 0}.est{color:#a33;font-weight:600}
ul{padding-left:1.2rem}code{background:#f4f4f4;padding:0 .2rem}`;

/**
 * One record's section of a report: summary table, charts and provenance, as an HTML fragment. Reports
 * that cover several records (the demo: one per teacher model) put several sections in one document.
 */
export async function htmlSection(record: ProfileRecord, title: string, headingLevel: 1 | 2 = 1): Promise<string> {
  const charts = await renderCharts(record);
  const rows = summaryRows(record);
  const estimated = record.models.some((m) => m.energy.estimated);
  const figure = (id: string, svg: string | null): string => (svg ? `<figure class="chart" id="chart-${id}">${svg}</figure>` : '');
  const h = `h${headingLevel}`;
  const h2 = `h${headingLevel + 1}`;
  return `<section>
<${h}>${esc(title)}</${h}>
<p>${esc(record.createdAt)}: ${esc(settingsLine(record))}</p>
${estimated ? '<p class="est">Energy figures are ESTIMATED from CPU time and TDP (no readable energy counter on this machine), not measured.</p>' : ''}
<table><thead><tr>${SUMMARY_HEADER.map((c) => `<th>${esc(c)}</th>`).join('')}</tr></thead>
<tbody>${rows.map((r) => `<tr>${r.map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`).join('\n')}</tbody></table>
${figure('latency', charts.latency)}
${figure('energy', charts.energy)}
${figure('accuracy', charts.accuracy)}
<${h2}>Where the figures come from</${h2}>
<ul>${provenanceLines(record).map((l) => `<li>${esc(l)}</li>`).join('\n')}</ul>
<p>Ratings: 1–5 relative to the models above, on a log scale of energy per 1,000 inferences (5 = least energy).</p>
</section>`;
}

/** A complete self-contained document around HTML fragments, with `data` embedded as inert JSON. */
export function htmlDocument(title: string, bodyParts: string[], data: unknown): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${esc(title)}</title><style>${CSS}</style></head>
<body>
${bodyParts.join('\n')}
<script type="application/json" id="frugal-record">${JSON.stringify(data).replace(/</g, '\\u003c')}</script>
</body></html>
`;
}

/** The HTML report of one profile record. */
export async function htmlReport(record: ProfileRecord, title = 'Frugal profile'): Promise<string> {
  return htmlDocument(title, [await htmlSection(record, title)], record);
}

/** Escapes text for HTML. */
export const escapeHtml = esc;
