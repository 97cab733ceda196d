/**
 * The runtime module: onnxruntime's telemetry off by default, provider availability and its coded
 * errors, session options, warm-up and the declared signature, on the shared SCRFD model where present.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { makeNode } from '../../pipeline/onnx/index.js';
import { tinyModel } from '../onnx/tiny.js';
import { availableProviders, createSession, floatTensor, requireProvider, runSession, sessionSignature, warmUp, RUNTIME_VERSION } from '../../pipeline/runtime.js';
import { describeShared, shared } from '../helpers/shared.js';

describe('onnxruntime telemetry', () => {
  it('is off unless ORT_DISABLE_TELEMETRY is set: the runtime module sets it before the first session, and no $TMPDIR/mat-debug-PID.log appears where onnxruntime writes one', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'faceopt-telemetry-'));
    try {
      const model = path.join(dir, 'relu.onnx');
      writeFileSync(model, tinyModel({ opset: 13, input: { name: 'x', shape: [1, 4] }, outputs: ['y'], nodes: [makeNode('Relu', ['x'], ['y'], 'r')] }).toBytes());
      const runtime = pathToFileURL(path.resolve('dist/pipeline/runtime.js')).href;
      // a process whose first session is made through the runtime module, as every faceopt command's is
      // onnxruntime writes the log to $TMPDIR: a folder of each run's own, so no other process's log
      // (a leftover of an earlier process with the same pid) is read as this one's
      const run = (value: string | null): { env: string; log: boolean } => {
        const tmp = mkdtempSync(path.join(dir, 'tmp-'));
        const env: NodeJS.ProcessEnv = { ...process.env, TMPDIR: tmp };
        delete env.ORT_DISABLE_TELEMETRY;
        if (value !== null) env.ORT_DISABLE_TELEMETRY = value;
        const r = spawnSync(process.execPath, ['--input-type=module', '-e', `const r = await import(${JSON.stringify(runtime)}); const s = await r.createSession(${JSON.stringify(model)}); await s.release(); console.log(JSON.stringify({ pid: process.pid, env: process.env.ORT_DISABLE_TELEMETRY }));`], { encoding: 'utf8', env });
        expect(r.status, r.stderr).toBe(0);
        const out = JSON.parse(r.stdout.trim()) as { pid: number; env: string };
        const there = existsSync(path.join(tmp, `mat-debug-${out.pid}.log`));
        return { env: out.env, log: there };
      };
      const off = run(null);
      const on = run('0'); // a value the user set is left alone: onnxruntime's default, on
      expect(off.env).toBe('1');
      expect(on.env).toBe('0');
      // onnxruntime 1.29+ writes the log on Linux with telemetry on, but not on every host: where the
      // control run shows it, the default run must not
      if (on.log) expect(off.log).toBe(false);
      else console.log('onnxruntime wrote no $TMPDIR/mat-debug-PID.log here even with telemetry on: only the setting itself is checked');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('execution providers', () => {
  it('always offers cpu; reports the onnxruntime version', () => {
    expect(availableProviders()[0]).toBe('cpu');
    expect(RUNTIME_VERSION).toMatch(/^1\.\d+\.\d+/);
  });

  it.each(['cuda', 'tensorrt'] as const)('%s: available, or FACEOPT_ERR_PROVIDER_UNAVAILABLE listing what is', async (p) => {
    if (availableProviders().includes(p)) {
      expect(requireProvider(p)).toBe(p);
      return;
    }
    let err: unknown;
    try {
      requireProvider(p);
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code: 'FACEOPT_ERR_PROVIDER_UNAVAILABLE', params: { provider: p, available: availableProviders().join(', ') } });
    await expect(createSession(new Uint8Array(8), { provider: p })).rejects.toMatchObject({ code: 'FACEOPT_ERR_PROVIDER_UNAVAILABLE' });
  });

  it('an unknown provider name is a bad argument', () => {
    expect(() => requireProvider('metal')).toThrow(expect.objectContaining({ code: 'FACEOPT_ERR_BAD_ARGUMENT' }));
  });

  it('bytes that are not a model give FACEOPT_ERR_INFERENCE', async () => {
    await expect(createSession(new Uint8Array([1, 2, 3, 4]))).rejects.toMatchObject({ code: 'FACEOPT_ERR_INFERENCE' });
  });
});

describeShared('sessions on the shared SCRFD model', () => {
  const model = shared('models', 'scrfd_500m_bnkps.onnx');

  it('reports the declared signature and warms up', async () => {
    const s = await createSession(model, { intraOpThreads: 1, optimization: 'basic' });
    const sig = sessionSignature(s);
    expect(sig.inputs).toEqual([{ name: 'input.1', shape: [1, 3, 640, 640] }]);
    expect(sig.outputs.map((o) => o.name).slice(0, 3)).toEqual(['score_8', 'score_16', 'score_32']);
    const times = await warmUp(s, { 'input.1': [1, 3, 640, 640] }, 2);
    expect(times).toHaveLength(2);
    expect(times.every((t) => t > 0)).toBe(true);
    await s.release();
  });

  it('optimisation levels and thread counts change speed, not results', async () => {
    const input = new Float32Array(3 * 640 * 640).map((_, i) => ((i * 7919) % 255) / 128 - 1);
    const run = async (opts: Parameters<typeof createSession>[1]) => {
      const s = await createSession(model, opts);
      const out = await runSession(s, { 'input.1': floatTensor(input, [1, 3, 640, 640]) }, ['score_8']);
      await s.release();
      return out.score_8.data as Float32Array;
    };
    const a = await run({ optimization: 'disabled', intraOpThreads: 1 });
    const b = await run({ optimization: 'all', intraOpThreads: 2, executionMode: 'parallel', interOpThreads: 2 });
    let max = 0;
    for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
    expect(max).toBeLessThan(1e-4);
  });

  it('spinning off: same results, and the idle threads stop taking CPU after a run', async () => {
    const input = floatTensor(new Float32Array(3 * 640 * 640).map((_, i) => ((i * 31) % 255) / 128 - 1), [1, 3, 640, 640]);
    // CPU the process spends while the event loop sleeps 5 ms after each of 12 runs
    const idleCpu = async (spinning: boolean) => {
      const s = await createSession(model, { intraOpThreads: 2, spinning });
      const first = (await runSession(s, { 'input.1': input }, ['score_8'])).score_8.data as Float32Array;
      let cpu = 0;
      for (let i = 0; i < 12; i++) {
        await runSession(s, { 'input.1': input }, ['score_8']);
        const c0 = process.cpuUsage();
        await new Promise((r) => setTimeout(r, 5));
        const c = process.cpuUsage(c0);
        cpu += (c.user + c.system) / 1000;
      }
      await s.release();
      return { first, cpu };
    };
    const on = await idleCpu(true);
    const off = await idleCpu(false);
    expect(Array.from(off.first)).toEqual(Array.from(on.first));
    expect(off.cpu).toBeLessThan(on.cpu * 0.6);
  });

  it('a wrong input shape fails as FACEOPT_ERR_INFERENCE naming the model', async () => {
    const s = await createSession(model);
    const err = await runSession(s, { 'input.1': floatTensor(new Float32Array(3 * 32 * 32), [1, 3, 32, 32]) }, undefined, 'scrfd').then(() => null, (e: unknown) => e);
    expect(err).toMatchObject({ code: 'FACEOPT_ERR_INFERENCE', params: { model: 'scrfd' } });
    // onnxruntime's whole message on one line: its first line alone ended before the indices
    expect((err as Error).message).toMatch(/Got invalid dimensions for input: input\.1 for the following indices index: 2 Got: 32 Expected: 640/);
    expect((err as Error).message).not.toContain('\n');
    await s.release();
  });
});
