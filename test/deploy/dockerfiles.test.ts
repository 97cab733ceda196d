/**
 * Both Dockerfiles: clean under dockerfile-utils' validator (the linter .ci/run also runs), and the
 * properties the deployment guide promises, read from the files themselves: multi-stage, pinned bases,
 * non-root, no compilers installed in the runtime stage, exec-form HEALTHCHECK with a start period on the
 * port the CMD serves, the GPU image's CUDA/cuDNN base and provider libraries; and a .dockerignore that
 * admits every COPY source and keeps node_modules, dist, models and .git out of the build context.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { validate } from 'dockerfile-utils';
import { describe, expect, it } from 'vitest';
import { baseImage, copyParts, execForm, healthcheck, inContext, last, readDockerfile, ROOT, stage } from './dockerfile.js';

const FILES = ['Dockerfile', 'Dockerfile.gpu'] as const;
const IGNORE = readFileSync(path.join(ROOT, '.dockerignore'), 'utf8');

describe('Dockerfile linter (dockerfile-utils)', () => {
  it.each(FILES)('%s: no errors and no warnings', (file) => {
    const diagnostics = validate(readFileSync(path.join(ROOT, file), 'utf8'));
    expect(diagnostics.map((d) => `${d.range.start.line + 1}: ${d.message}`)).toEqual([]);
  });

  it('the linter is live: it flags a broken Dockerfile', () => {
    const bad = validate('FROM node:20 AS a\nHEALTHCHECK --interval=1x CMD true\nEXPOSE notaport\nCMD ["a", \'b\']\n');
    expect(bad.length).toBeGreaterThanOrEqual(2);
  });
});

describe.each(FILES)('%s', (file) => {
  const df = readDockerfile(file);
  const runtime = stage(df, 'final');
  const text = readFileSync(path.join(ROOT, file), 'utf8');

  it('is multi-stage: build (npm run build) -> deps (npm ci --omit=dev + prune) -> runtime', () => {
    expect(df.stages.map((s) => s.name)).toEqual(['build', 'deps', 'runtime']);
    const runs = (name: string) => stage(df, name).instructions.filter((i) => i.keyword === 'RUN').map((i) => i.args).join('\n');
    expect(runs('build')).toMatch(/^npm ci --ignore-scripts$/m);
    expect(runs('build')).toMatch(/npm run build/);
    expect(runs('deps')).toMatch(/^npm ci --omit=dev --ignore-scripts$/m);
    expect(runs('deps')).toMatch(/bash \/tmp\/prune-runtime\.sh node_modules/);
    // the runtime gets dependencies and code only from the two earlier stages, never a dev install
    const fromStages = runtime.instructions.filter((i) => i.keyword === 'COPY' && i.flags.from).map((i) => copyParts(i).from);
    expect(new Set(fromStages)).toEqual(new Set(['deps', 'build']));
  });

  it('pins every base image by version tag (never latest)', () => {
    for (const s of df.stages) {
      const image = baseImage(df, s);
      expect(image, s.name ?? '').toMatch(/^[\w./-]+:\d+\.\d+(\.\d+)?-[\w.-]+$/);
    }
    expect(baseImage(df, stage(df, 'build'))).toMatch(/^node:24\.\d+\.\d+-bookworm-slim$/);
  });

  it('runs as a non-root user and installs no compiler or package cache in the runtime stage', () => {
    const user = last(runtime, 'USER');
    expect(user?.args).toMatch(/^(node|faceopt)$/);
    const runs = runtime.instructions.filter((i) => i.keyword === 'RUN').map((i) => i.args).join('\n');
    expect(runs).not.toMatch(/\b(gcc|g\+\+|make|build-essential|python3|curl|wget|npm)\b/);
    if (/apt-get install/.test(runs)) {
      expect(runs).toMatch(/--no-install-recommends/);
      expect(runs).toMatch(/rm -rf \/var\/lib\/apt\/lists/);
    }
  });

  it('serves faceopt on 0.0.0.0:5555 through the entrypoint, with /models as the models folder', () => {
    const cmd = execForm(last(runtime, 'CMD')!.args);
    expect(cmd.slice(0, 6)).toEqual(['faceopt', 'serve', '--host', '0.0.0.0', '--port', '5555']);
    expect(execForm(last(runtime, 'ENTRYPOINT')!.args)).toEqual(['faceopt-entrypoint']);
    expect(last(runtime, 'EXPOSE')?.args).toBe('5555');
    expect(last(runtime, 'VOLUME')?.args).toBe('["/models"]');
    expect(text).toMatch(/FACEOPT_MODELS=\/models/);
    expect(text).toMatch(/ln -s \/app\/bin\/faceopt\.js \/usr\/local\/bin\/faceopt/);
  });

  it('HEALTHCHECK: exec form, Node fetch on /health of the served port, a start period for model loading', () => {
    const h = healthcheck(runtime);
    expect(h.command.slice(0, 2)).toEqual(['node', '-e']);
    expect(h.command[2]).toContain("fetch('http://127.0.0.1:5555/health'");
    expect(h.command[2]).toMatch(/AbortSignal\.timeout\((\d+)\)/);
    const seconds = (v: string) => Number.parseInt(v, 10) * (v.endsWith('m') ? 60 : 1);
    const timeoutMs = Number(/AbortSignal\.timeout\((\d+)\)/.exec(h.command[2])![1]);
    expect(timeoutMs).toBeLessThan(seconds(h.flags.timeout) * 1000); // fetch gives up before Docker kills the check
    expect(seconds(h.flags['start-period'])).toBeGreaterThanOrEqual(60);
    expect(Number(h.flags.retries)).toBeGreaterThanOrEqual(2);
  });

  it('every COPY source exists and is in the build context; node_modules, dist, models, .git are not', () => {
    for (const s of df.stages) {
      for (const ins of s.instructions.filter((i) => i.keyword === 'COPY' && !i.flags.from)) {
        for (const src of copyParts(ins).sources) {
          expect(existsSync(path.join(ROOT, src)), `${file}:${ins.line} ${src}`).toBe(true);
          expect(inContext(IGNORE, src), `${file}:${ins.line} ${src} excluded by .dockerignore`).toBe(true);
        }
      }
    }
    for (const out of ['node_modules/sharp/package.json', 'dist/pipeline/cli/main.js', 'models/buffalo_l/det_10g.onnx', 'models/manifest.json', '.git/HEAD', 'reports/x/report.json', 'test/server/real.test.ts', 'scratch/q.onnx', 'pipeline/x.test.ts']) {
      expect(inContext(IGNORE, out), out).toBe(false);
    }
  });
});

describe('Dockerfile.gpu specifics', () => {
  const df = readDockerfile('Dockerfile.gpu');
  const runtime = stage(df, 'final');
  const text = readFileSync(path.join(ROOT, 'Dockerfile.gpu'), 'utf8');

  it('CUDA 12 + cuDNN runtime base, TensorRT 10 runtime libraries, Node from the pinned Node image', () => {
    expect(baseImage(df, runtime)).toMatch(/^nvidia\/cuda:12\.\d+\.\d+-cudnn-runtime-ubuntu\d+\.\d+$/);
    expect(text).toMatch(/libnvinfer10=.*libnvinfer-plugin10=.*libnvonnxparsers10=/);
    const node = runtime.instructions.find((i) => i.keyword === 'COPY' && copyParts(i).sources[0] === '/usr/local/bin/node');
    expect(node?.flags.from).toBe('deps');
  });

  it('installs onnxruntime-node\'s CUDA/TensorRT providers and checks all three libraries arrived', () => {
    const deps = stage(df, 'deps').instructions.filter((i) => i.keyword === 'RUN').map((i) => i.args).join('\n');
    expect(deps).toMatch(/ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules\/onnxruntime-node\/script\/install\.js/);
    for (const lib of ['libonnxruntime_providers_shared.so', 'libonnxruntime_providers_cuda.so', 'libonnxruntime_providers_tensorrt.so']) expect(deps).toContain(lib);
    // the prune step runs after the install, and keeps linux/x64 where the providers live
    expect(deps.indexOf('install.js')).toBeLessThan(deps.indexOf('prune-runtime.sh'));
  });

  it('serves with the TensorRT provider, one worker per GPU, and a long start period for engine builds', () => {
    const cmd = execForm(last(runtime, 'CMD')!.args);
    const flag = (name: string) => cmd[cmd.indexOf(name) + 1];
    expect(flag('--provider')).toBe('tensorrt');
    expect(flag('--workers')).toBe('1');
    expect(Number.parseInt(healthcheck(runtime).flags['start-period'], 10)).toBeGreaterThanOrEqual(300);
  });
});
