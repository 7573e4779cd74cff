/** A Markdown report from a profile record. */
import type { ProfileRecord } from '../profiling/records.js';
import { provenanceLines, settingsLine, SUMMARY_HEADER, summaryRows } from './summary.js';

const cell = (s: string): string => s.replace(/\|/g, '\\|');

export function markdownReport(record: ProfileRecord, title = 'Frugal profile'): string {
  const rows = summaryRows(record);
  return [
    `# ${title}`,
    '',
    `${record.createdAt}: ${settingsLine(record)}`,
    '',
    `| ${SUMMARY_HEADER.join(' | ')} |`,
    `|${SUMMARY_HEADER.map((_, i) => (i === 0 ? ' --- ' : ' ---: ')).join('|')}|`,
    ...rows.map((r) => `| ${r.map(cell).join(' | ')} |`),
    '',
    '## Where the figures come from',
    '',
    ...provenanceLines(record).map((l) => `- ${l}`),
    '',
    `Ratings: 1–5 relative to the models above, on a log scale of energy per 1,000 inferences (5 = least energy). Record schema version ${record.schemaVersion}.`,
    '',
  ].join('\n');
}
