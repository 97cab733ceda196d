/**
 * `faceopt models list | fetch PACK | verify [PACK]`: the model zoo on the command line. The work lives
 * in pipeline/zoo; this file parses options, formats what those functions return, and turns a failed
 * verification into a coded error (so the exit code is non-zero). The format functions are exported so
 * tests can check the exact output without spawning a process.
 */
import type { Command } from 'commander';
import { existsSync, statSync } from 'node:fs';
import { checkNumber, FaceoptError } from '../errors.js';
import { modelsDir as defaultModelsDir } from '../paths.js';
import { fetchPack, type FetchResult } from '../zoo/fetch.js';
import { checkPackDir, isBadStatus, verifyPacks, type FileCheck, type FileStatus, type PackCheck } from '../zoo/verify.js';
import { loadZoo, packDir, type Zoo } from '../zoo/zoo.js';

export interface ModelsCliOptions {
  readonly modelsDir?: string;
  readonly zoo?: Zoo;
}

function mb(bytes: number | null): string {
  return bytes === null ? '?' : `${(bytes / 1e6).toFixed(1)} MB`;
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  return rows.map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]!))).join('  ').trimEnd()).join('\n');
}

const LOCAL_WORDS: Record<FileStatus, string> = {
  'ok': 'yes', 'size-ok': 'yes', 'present': 'yes (unchecked)', 'missing': 'no', 'size-mismatch': 'WRONG SIZE', 'sha256-mismatch': 'WRONG SHA256',
};

/**
 * The `models list` report: one row per file (pack, zip size, file, role, input, embedding, size, whether
 * it is in the models folder, judged by existence and size only), then a line naming the present packs.
 */
export async function listModelsText(opts: ModelsCliOptions = {}): Promise<string> {
  const zoo = opts.zoo ?? loadZoo();
  const dir = opts.modelsDir ?? defaultModelsDir();
  const rows: string[][] = [['PACK', 'ZIP', 'FILE', 'ROLE', 'INPUT', 'EMB', 'SIZE', 'LOCAL']];
  const present: string[] = [];
  for (const pack of zoo.packs) {
    const check = await checkPackDir(pack, packDir(dir, pack), false);
    const have = check.files.filter((f) => f.status !== 'missing').length;
    if (have > 0) present.push(`${pack.name} (${have}/${pack.files.length})`);
    pack.files.forEach((f, i) => {
      rows.push([
        i === 0 ? pack.name : '', i === 0 ? mb(pack.zip.size) : '', f.name, f.role,
        f.inputSize ? `${f.inputSize[0]}x${f.inputSize[1]}` : '?', f.embeddingSize === null ? '-' : String(f.embeddingSize),
        mb(f.size), LOCAL_WORDS[check.files[i]!.status],
      ]);
    });
  }
  return [
    `Models folder: ${dir}`,
    table(rows),
    present.length ? `Downloaded: ${present.join(', ')}` : 'Downloaded: none',
    'Get a pack with `faceopt models fetch PACK`; use one as PACK/FILE, e.g. buffalo_l/w600k_r50.onnx.',
  ].join('\n');
}

/** The `models list --json` document: the manifest facts plus the local status of each file. */
export async function listModelsJson(opts: ModelsCliOptions = {}): Promise<unknown> {
  const zoo = opts.zoo ?? loadZoo();
  const dir = opts.modelsDir ?? defaultModelsDir();
  const packs = [];
  for (const pack of zoo.packs) {
    const check = await checkPackDir(pack, packDir(dir, pack), false);
    packs.push({
      name: pack.name, url: pack.url, license: pack.license, zip: { size: pack.zip.size, sha256: pack.zip.sha256 },
      files: pack.files.map((f, i) => ({
        name: f.name, role: f.role, inputSize: f.inputSize, embeddingSize: f.embeddingSize, size: f.size, sha256: f.sha256,
        local: check.files[i]!.status,
      })),
    });
  }
  return { modelsDir: dir, zoo: zoo.file, version: zoo.version, packs };
}

function describeCheck(f: FileCheck): string {
  const short = (s: string | null): string => (s ? `${s.slice(0, 12)}…` : '?');
  switch (f.status) {
    case 'ok': return `ok            sha256 ${short(f.actualSha256)} matches`;
    case 'size-ok': return `ok (size)     ${f.actualSize} bytes match; no published sha256 (have ${short(f.actualSha256)})`;
    case 'present': return `present       nothing published to compare (sha256 ${short(f.actualSha256)}, ${f.actualSize} bytes)`;
    case 'missing': return `MISSING       ${f.path}`;
    case 'size-mismatch': return `WRONG SIZE    ${f.actualSize} bytes, expected ${f.expectedSize}`;
    case 'sha256-mismatch': return `WRONG SHA256  ${f.actualSha256}, expected ${f.expectedSha256}`;
  }
}

/** Per-file lines for a list of pack checks; packs with no folder are one "not downloaded" line. */
export function formatChecks(checks: readonly PackCheck[]): string {
  const rows: string[][] = [];
  for (const c of checks) {
    if (!c.present) { rows.push([c.pack, '-', `not downloaded (${c.dir})`]); continue; }
    for (const f of c.files) rows.push([c.pack, f.file, describeCheck(f)]);
  }
  return table(rows);
}

/**
 * `models verify [PACK]`: hash the files and compare them with the manifest. Without PACK, packs with no
 * folder are skipped; with PACK, a missing pack folder counts as missing files. Returns the report and
 * the first failing check (null when all is well).
 */
export async function verifyModels(packName: string | undefined, opts: ModelsCliOptions = {}): Promise<{ text: string; firstBad: FileCheck | null }> {
  const zoo = opts.zoo ?? loadZoo();
  const dir = opts.modelsDir ?? defaultModelsDir();
  // a mistyped --models-dir would otherwise "verify" nothing and pass (a named pack says it is missing)
  if (packName === undefined && !existsSync(dir)) throw new FaceoptError('FACEOPT_ERR_FILE_NOT_FOUND', { path: dir, hint: ' (the models folder: --models-dir or FACEOPT_MODELS)' });
  if (existsSync(dir) && !statSync(dir).isDirectory()) throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected: 'a folder', name: '--models-dir', received: `${dir} (a file)` });
  const checks = await verifyPacks(zoo, dir, packName, true);
  const considered = packName === undefined ? checks.filter((c) => c.present) : checks;
  const firstBad = considered.flatMap((c) => c.files).find((f) => isBadStatus(f.status)) ?? null;
  if (packName === undefined && considered.length === 0) {
    return { text: `No model packs in ${dir}. Get one with \`faceopt models fetch PACK\`.`, firstBad: null };
  }
  return { text: formatChecks(checks), firstBad };
}

/** The error a failed check stops the CLI with (exit code from the error table); `modelsDir` as given, for the command it suggests. */
export function checkError(bad: FileCheck, modelsDir?: string): FaceoptError {
  if (bad.status === 'missing') return new FaceoptError('FACEOPT_ERR_MODEL_MISSING', { path: bad.path, pack: bad.pack });
  return new FaceoptError('FACEOPT_ERR_CHECKSUM', {
    path: bad.path,
    actual: bad.status === 'size-mismatch' ? `${bad.actualSha256 ?? '?'} (${bad.actualSize} bytes)` : bad.actualSha256,
    expected: bad.status === 'size-mismatch' ? `${bad.expectedSha256 ?? 'unpublished'} (${bad.expectedSize} bytes)` : bad.expectedSha256,
    remedy: `Fetch it again: \`faceopt models fetch ${bad.pack} --force${modelsDir ? ` --models-dir ${modelsDir}` : ''}\`.`,
  });
}

/** The summary `models fetch` prints on stdout once a pack is in place. */
export function formatFetch(r: FetchResult): string {
  const head = r.status === 'already-present'
    ? `${r.pack}: already present and intact in ${r.dir} (use --force to fetch again)`
    : `${r.pack}: fetched ${mb(r.bytes)} from ${r.url} into ${r.dir}`;
  return `${head}\n${formatChecks([{ pack: r.pack, dir: r.dir, present: true, files: r.files }])}`;
}

interface DirOpt { modelsDir?: string }

/** Register `faceopt models` and its three subcommands. */
export function register(program: Command): void {
  const models = program.command('models').description('InsightFace model packs: list, download, verify (see models/README.md)');
  const dirHelp = 'models folder (default: $FACEOPT_MODELS or ./models)';

  models.command('list')
    .description('List the known packs and files, and which are in the models folder')
    .option('--models-dir <dir>', dirHelp)
    .option('--json', 'print JSON instead of a table')
    .action(async (o: DirOpt & { json?: boolean }) => {
      const opts = { modelsDir: o.modelsDir };
      process.stdout.write(o.json ? `${JSON.stringify(await listModelsJson(opts), null, 2)}\n` : `${await listModelsText(opts)}\n`);
    });

  models.command('fetch')
    .description('Download a pack, check its sha256, unpack it into <models-dir>/<PACK>/')
    .argument('<pack>', 'pack name, e.g. buffalo_l (see `faceopt models list`)')
    .option('--models-dir <dir>', dirHelp)
    .option('--url <url>', 'download from this mirror instead (checksums still apply)')
    .option('--force', 'download again even if an intact copy is present')
    .option('--no-progress', 'no progress display on stderr')
    .option('--timeout <seconds>', 'deadline for connecting and for each stall of the download', '10')
    .action(async (pack: string, o: DirOpt & { url?: string; force?: boolean; progress: boolean; timeout: string }) => {
      const secs = checkNumber('--timeout', o.timeout, { min: 1, max: 600 });
      const result = await fetchPack(pack, {
        modelsDir: o.modelsDir, url: o.url, force: o.force, progress: o.progress ? process.stderr : null,
        connectTimeoutMs: secs * 1000, idleTimeoutMs: Math.max(secs, 30) * 1000,
      });
      process.stdout.write(`${formatFetch(result)}\n`);
    });

  models.command('verify')
    .description('Check sha256 and size of downloaded files; non-zero exit on any mismatch')
    .argument('[pack]', 'only this pack (default: every pack present)')
    .option('--models-dir <dir>', dirHelp)
    .action(async (pack: string | undefined, o: DirOpt) => {
      const { text, firstBad } = await verifyModels(pack, { modelsDir: o.modelsDir });
      process.stdout.write(`${text}\n`);
      if (firstBad) throw checkError(firstBad, o.modelsDir);
    });
}
