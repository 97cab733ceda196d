/**
 * Reading a variant's report for serving decisions: the gates verdict, the match threshold the
 * evaluation measured, and the key numbers /v1/models shows. It validates with pipeline/report's schema
 * checker but does not import pipeline/report/io.js: that module pulls in the HTML renderer (echarts),
 * close to a second of start-up the server does not need.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { FaceoptError } from '../pipeline/errors.js';
import { reportSchema, SchemaError } from '../pipeline/report/schema.js';
import { keyNumbers } from '../pipeline/report/summary.js';
import { REPORT_SCHEMA_VERSION, type Report } from '../pipeline/report/types.js';

/** A report as the server uses it. */
export interface LoadedReport {
  /** Absolute path of report.json. */
  readonly file: string;
  readonly report: Report;
}

/**
 * Read and validate a report (folder or report.json). FACEOPT_ERR_REPORT when it is missing, not JSON,
 * of another schema version, or misses a field (naming the JSON path).
 */
export async function readReport(dirOrFile: string): Promise<LoadedReport> {
  const file = path.resolve(dirOrFile.endsWith('.json') ? dirOrFile : path.join(dirOrFile, 'report.json'));
  const bad = (reason: string, cause?: unknown) => new FaceoptError('FACEOPT_ERR_REPORT', { path: file, reason }, cause === undefined ? undefined : { cause });
  let json: unknown;
  try {
    json = JSON.parse(await readFile(file, 'utf8'));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw bad(code === 'ENOENT' ? 'the file does not exist. Pass a report folder written by `faceopt optimize` or `faceopt evaluate`' : `it is not readable JSON (${(e as Error).message})`, e);
  }
  const version = (json as { schemaVersion?: unknown } | null)?.schemaVersion;
  if (version !== REPORT_SCHEMA_VERSION) {
    throw bad(`it has schema version ${JSON.stringify(version ?? null)}, this faceopt reads ${REPORT_SCHEMA_VERSION}; regenerate it with this version`);
  }
  try {
    reportSchema(json, '');
  } catch (e) {
    throw bad(e instanceof SchemaError ? `${e.message} (see docs/report-schema.md)` : (e as Error).message, e);
  }
  return { file, report: json as Report };
}

/** The cosine threshold the variant's own LFW evaluation chose, or null when the report has none. */
export function reportMatchThreshold(r: Report): number | null {
  return r.recognizer?.verification?.variant.bestThreshold.threshold ?? null;
}

/** Key numbers for /v1/models: id, label, value, text. */
export function reportKeyNumbers(r: Report): { id: string; label: string; value: number | null; text: string }[] {
  return keyNumbers(r).map((k) => ({ id: k.id, label: k.label, value: k.value, text: k.text }));
}
