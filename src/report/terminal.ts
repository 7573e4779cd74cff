/** A terminal report from a profile record: the comparison table and where each figure comes from. */
import { table } from './format.js';
import type { ProfileRecord } from '../profiling/records.js';
import { provenanceLines, settingsLine, SUMMARY_HEADER, summaryRows } from './summary.js';

export function terminalReport(record: ProfileRecord): string {
  return [settingsLine(record), '', table([...SUMMARY_HEADER], summaryRows(record)), ...provenanceLines(record)].join('\n') + '\n';
}
