/**
 * The CPU image without a Docker engine: the Dockerfile's stages are replayed in temporary folders
 * (emulate.ts): the build stage's `npm run build` on the COPYed sources, the deps stage's
 * `npm ci --omit=dev --ignore-scripts` and prune script as written, the runtime stage's COPYs. Then the
 * image's own ENTRYPOINT + CMD (read from the Dockerfile; only the port number is swapped for a free
 * one) serve the shared SCRFD-500M + MobileFaceNet models, and the image's own HEALTHCHECK command
 * turns healthy. Checked with numbers: node_modules <= 120 MB, the runtime layer under the 350 MB image
 * budget, a 128-d unit embedding from POST /embed, JSON log lines arriving while the server runs,
 * and a clean exit 0 on SIGTERM through the entrypoint's exec.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readlinkSync, rmSync, symlinkSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeShared, shared } from '../helpers/shared.js';
import { exampleRecognizerReport } from '../report/example.js';
import { execForm, healthcheck, last, readDockerfile, ROOT, stage } from './dockerfile.js';
import { emulateStage, hostPaths, type StageResult } from './emulate.js';

/** node:24.22.3-bookworm-slim, uncompressed, as docs/deploy.md derives it (no engine here to measure it). */
const BASE_IMAGE_MB = 233;
const IMAGE_BUDGET_MB = 350;
const NODE_MODULES_BUDGET_MB = 120;

const DF = readDockerfile('Dockerfile');
const RUNTIME = stage(DF, 'final');
/** Key of the runtime stage's root folder. */
const FINAL = RUNTIME.name ?? 'final';

/** Apparent size in MB (what a layer tarball holds), as `du -s --apparent-size` counts it. */
function sizeMb(dir: string): number {
  const r = spawnSync('du', ['-s', '--apparent-size', '--block-size=1', dir], { encoding: 'utf8' });
  return Number(r.stdout.split('\t')[0]) / 1e6;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let tmp = '';
const roots: Record<string, string> = {};
let runtime: StageResult;

/** Replay build, deps and runtime stages once for the suites below. */
function buildImage(): void {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'faceopt-image-'));
  for (const s of DF.stages) roots[s.name ?? 'final'] = path.join(tmp, s.name ?? 'final');
  // build: the dev tree is already installed here; linking it stands in for `npm ci --ignore-scripts` (1 GB)
  emulateStage(stage(DF, 'build'), {
    roots,
    replace: (cmd, cwd) => (cmd === 'npm ci --ignore-scripts' ? () => symlinkSync(path.join(ROOT, 'node_modules'), path.join(cwd, 'node_modules')) : null),
  });
  emulateStage(stage(DF, 'deps'), { roots });
  // runtime: `chown node:node` needs the image's user, which this machine does not have
  // jemalloc's apt install needs the image's package database: skipped here (LD_PRELOAD of a missing
  // file only makes ld.so print a warning, and the server runs on glibc's malloc)
  runtime = emulateStage(RUNTIME, { roots, replace: (cmd) => (/apt-get install -y --no-install-recommends libjemalloc2/.test(cmd) ? 'true' : cmd.replace(/ && chown \S+ \S+/g, '')) });
}

describe('CPU image contents (Dockerfile stages replayed)', () => {
  beforeAll(buildImage, 300_000);
  afterAll(() => {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('production node_modules after the prune step: <= 120 MB, one platform, the modules faceopt loads', () => {
    const nm = path.join(roots.deps, 'app', 'node_modules');
    const mb = sizeMb(nm);
    console.log(`[deploy] pruned production node_modules: ${mb.toFixed(1)} MB`);
    expect(mb).toBeLessThanOrEqual(NODE_MODULES_BUDGET_MB);
    expect(mb).toBeGreaterThan(40); // onnxruntime (linux/x64) and libvips alone are ~65 MB: nothing essential was pruned
    const ortBin = path.join(nm, 'onnxruntime-node', 'bin', 'napi-v6');
    expect(spawnSync('ls', [ortBin], { encoding: 'utf8' }).stdout.trim().split('\n')).toEqual(['linux']);
    expect(existsSync(path.join(ortBin, 'linux', process.arch, 'onnxruntime_binding.node'))).toBe(true);
    const img = spawnSync('ls', [path.join(nm, '@img')], { encoding: 'utf8' }).stdout.trim().split('\n');
    expect(img.filter((n) => n.startsWith('sharp-')).sort()).toEqual([`sharp-libvips-linux-${process.arch}`, `sharp-linux-${process.arch}`]);
    expect(existsSync(path.join(nm, 'typescript'))).toBe(false);
    expect(existsSync(path.join(nm, 'vitest'))).toBe(false);
  });

  it('runtime layer + base image stays under the 350 MB budget', () => {
    const app = sizeMb(path.join(roots[FINAL], 'app'));
    const estimate = BASE_IMAGE_MB + app;
    console.log(`[deploy] runtime /app: ${app.toFixed(1)} MB; image estimate ${BASE_IMAGE_MB} + ${app.toFixed(1)} = ${estimate.toFixed(0)} MB`);
    expect(estimate).toBeLessThanOrEqual(IMAGE_BUDGET_MB);
    // dist/ holds the CLI and server only: no tests, benches or source maps
    expect(existsSync(path.join(roots[FINAL], 'app', 'dist', 'pipeline', 'cli', 'main.js'))).toBe(true);
    expect(existsSync(path.join(roots[FINAL], 'app', 'dist', 'test'))).toBe(false);
    expect(spawnSync('find', [path.join(roots[FINAL], 'app', 'dist'), '-name', '*.map'], { encoding: 'utf8' }).stdout).toBe('');
  });

  it('`faceopt --version` from the image layout prints the package version', () => {
    const bin = path.join(roots[FINAL], 'usr', 'local', 'bin', 'faceopt');
    expect(readlinkSync(bin)).toBe(path.join(roots[FINAL], 'app', 'bin', 'faceopt.js'));
    const r = spawnSync(bin, ['--version'], { encoding: 'utf8', cwd: path.join(roots[FINAL], 'app'), env: { PATH: `${path.dirname(process.execPath)}:/usr/bin:/bin` } });
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toContain(JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version);
  });

  it('the pruned echarts still renders report charts (faceopt report runs in the image too)', () => {
    const script = `
      const { renderChart } = await import('./dist/pipeline/report/charts.js');
      const report = JSON.parse(require('node:fs').readFileSync(0, 'utf8'));
      const out = ['cosine-histogram', 'roc', 'latency'].map((id) => (renderChart(report, id) ?? '').length);
      process.stdout.write(JSON.stringify(out)); process.exit(0);`;
    const r = spawnSync(process.execPath, ['--input-type=commonjs', '-e', `(async () => {${script}})()`], {
      cwd: path.join(roots[FINAL], 'app'), input: JSON.stringify(exampleRecognizerReport()), encoding: 'utf8', timeout: 60_000,
    });
    expect(r.stderr).toBe('');
    const lengths = JSON.parse(r.stdout) as number[];
    expect(lengths.filter((n) => n > 0).length).toBeGreaterThanOrEqual(2);
    for (const n of lengths.filter((x) => x > 0)) expect(n).toBeGreaterThan(500);
  });

  it('entrypoint: a FACEOPT_FETCH pack that does not exist stops the container with the coded error, before serving', () => {
    const entry = execForm(last(RUNTIME, 'ENTRYPOINT')!.args);
    const r = spawnSync(path.join(roots[FINAL], 'usr', 'local', 'bin', entry[0]), ['faceopt', 'serve', '--port', '1'], {
      encoding: 'utf8', cwd: path.join(roots[FINAL], 'app'), timeout: 60_000,
      env: { PATH: `${path.join(roots[FINAL], 'usr', 'local', 'bin')}:${path.dirname(process.execPath)}:/usr/bin:/bin`, FACEOPT_FETCH: 'no_such_pack,buffalo_sc', FACEOPT_MODELS: path.join(tmp, 'empty-models') },
    });
    expect(r.status).toBe(64);
    expect(r.stderr).toContain('FACEOPT_ERR_UNKNOWN_PACK');
    expect(r.stdout).not.toMatch(/"msg":"Server listening/);
  });

  describeShared('the image\'s CMD and HEALTHCHECK against the real server (shared models)', () => {
    let child: ChildProcess;
    let port = 0;
    let stdout = '';
    let stderr = '';
    let health: string[] = [];
    const base = () => `http://127.0.0.1:${port}`;
    const runHealthcheck = () => {
      const r = spawnSync(health[0], health.slice(1), { encoding: 'utf8', timeout: 5_000, env: { PATH: `${path.dirname(process.execPath)}:/usr/bin:/bin` } });
      return r.status;
    };

    beforeAll(async () => {
      port = await freePort();
      const swap = (a: string) => a.replaceAll('5555', String(port));
      health = healthcheck(RUNTIME).command.map(swap);
      const argv = [...execForm(last(RUNTIME, 'ENTRYPOINT')!.args), ...execForm(last(RUNTIME, 'CMD')!.args)].map(swap);
      const env: Record<string, string> = {
        PATH: `${path.join(roots[FINAL], 'usr', 'local', 'bin')}:${path.dirname(process.execPath)}:/usr/bin:/bin`,
        HOME: tmp,
        FACEOPT_DETECTOR: shared('models', 'scrfd_500m_bnkps.onnx'),
        FACEOPT_RECOGNIZER: shared('models', 'mobileface_paddle_128d.onnx'),
      };
      for (const [k, v] of Object.entries(runtime.env)) env[k] = hostPaths(v, roots[FINAL]);
      expect(runHealthcheck()).toBe(1); // nothing listens yet: the check must fail, not hang or pass
      child = spawn(path.join(roots[FINAL], 'usr', 'local', 'bin', argv[0]), argv.slice(1), { cwd: path.join(roots[FINAL], runtime.workdir), env });
      child.stdout!.on('data', (d: Buffer) => { stdout += d.toString(); });
      child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
    }, 60_000);
    afterAll(() => {
      if (child && child.exitCode === null) child.kill('SIGKILL');
    });

    it('HEALTHCHECK turns healthy within the start period, /ready follows, POST /embed answers', async () => {
      const startPeriodS = Number.parseInt(healthcheck(RUNTIME).flags['start-period'], 10);
      const t0 = Date.now();
      let healthy = false;
      while (!healthy && Date.now() - t0 < startPeriodS * 1000) {
        if (child.exitCode !== null) throw new Error(`server exited ${child.exitCode}: ${stderr}${stdout.slice(-2000)}`);
        healthy = runHealthcheck() === 0;
        if (!healthy) await sleep(250);
      }
      expect(healthy).toBe(true);
      let ready = 0;
      while (ready !== 200 && Date.now() - t0 < startPeriodS * 1000) {
        ready = (await fetch(`${base()}/ready`)).status;
        if (ready !== 200) await sleep(250);
      }
      expect(ready).toBe(200);
      console.log(`[deploy] healthy + ready ${((Date.now() - t0) / 1000).toFixed(1)} s after start (machine shared, indicative only)`);

      const form = new FormData();
      form.append('file', new Blob([readFileSync(shared('faces', 'lfw', 'Abdullah_Gul', 'Abdullah_Gul_0013.jpg'))], { type: 'image/jpeg' }), 'face.jpg');
      const res = await fetch(`${base()}/embed`, { method: 'POST', body: form });
      expect(res.status).toBe(200);
      const { embedding } = (await res.json()) as { embedding: number[] };
      expect(embedding).toHaveLength(128);
      expect(Math.hypot(...embedding)).toBeCloseTo(1, 4);

      // logs are not held back: the request's JSON line is on stdout while the server still runs
      await sleep(200);
      const lines = stdout.trim().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { msg?: string; url?: string; route?: string });
      expect(lines.some((l) => l.msg === 'request')).toBe(true);

      const metrics = await (await fetch(`${base()}/metrics`)).text();
      const rss = Number(/^faceopt_process_resident_memory_bytes (\d+)/m.exec(metrics)?.[1]);
      console.log(`[deploy] RSS after warm-up and one request: ${(rss / 2 ** 20).toFixed(0)} MiB`);
      expect(rss).toBeGreaterThan(50 * 2 ** 20);
      expect(rss).toBeLessThan(1024 * 2 ** 20);
    }, 180_000);

    it('SIGTERM reaches faceopt through the entrypoint\'s exec: exit 0, and the health check fails again', async () => {
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      child.kill('SIGTERM');
      const code = await Promise.race([exited, sleep(20_000).then(() => 'timeout' as const)]);
      expect(code).toBe(0);
      expect(runHealthcheck()).toBe(1);
    }, 30_000);
  });
});
