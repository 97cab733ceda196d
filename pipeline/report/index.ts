/**
 * The report package's public surface: the Report type, reading/writing report folders, the Markdown
 * rendering and the key numbers. Other stages (evaluate, optimize, serve) import from here. The HTML
 * rendering is imported from './html.js' directly: it loads the chart library, which readers do not need.
 */
export * from './types.js';
export { findNewestReport, loadReport, REPORT_FILES, reportJsonPath, stringifyReport, validateReport, writeReport } from './io.js';
export { renderMarkdown } from './markdown.js';
export { keyNumbers, reportTitle, terminalCompare, terminalSummary, verdictLine, type KeyNumber } from './summary.js';
