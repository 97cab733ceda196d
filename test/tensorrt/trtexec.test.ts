import { describe, expect, it } from 'vitest';
import { buildLines, type BuildInput } from '../../pipeline/tensorrt/build-script.js';
import { TRTEXEC_FLAGS, TRT_LINES, checkTrtexecArgs, documentedFlags, lineForVersion, shapeSpec } from '../../pipeline/tensorrt/trtexec.js';

const recognizer: BuildInput = {
  name: 'mbf', precision: 'int8', dynamic: true, workspaceMiB: 2048, optimizationLevel: 4,
  profile: { input: 'input.1', min: [1, 3, 112, 112], opt: [8, 3, 112, 112], max: [32, 3, 112, 112] },
  files: { float: 'model.onnx', qdq: 'model.qdq.onnx', calibrationCache: 'calibration.cache' },
};
const detector: BuildInput = {
  name: 'det', precision: 'fp16', dynamic: false, workspaceMiB: 4096, optimizationLevel: 3,
  profile: { input: 'input.1', min: [1, 3, 640, 640], opt: [1, 3, 640, 640], max: [1, 3, 640, 640] },
  files: { float: 'model.onnx', fp16: 'model.fp16.onnx' },
};

describe('documented trtexec flags per TensorRT line', () => {
  it('TensorRT 11 has no precision or calibration flags; --workspace is 8.6 only; --stronglyTyped from 10', () => {
    for (const f of ['--int8', '--fp16', '--best', '--calib']) expect(documentedFlags('11'), f).not.toContain(f);
    expect(TRTEXEC_FLAGS['--workspace']!.lines).toEqual(['8.6']);
    expect(TRTEXEC_FLAGS['--stronglyTyped']!.lines).toEqual(['10', '11']);
    for (const f of Object.values(TRTEXEC_FLAGS)) expect(f.source).toMatch(/^https:\/\//);
  });

  it.each([
    [['--workspace=1024'], '10', /not accepted by TensorRT 10/],
    [['--int8'], '11', /not accepted by TensorRT 11/],
    [['--calib=c.cache'], '11', /not accepted by TensorRT 11/],
    [['--stronglyTyped', '--int8'], '10', /cannot be combined/],
    [['--stronglyTyped'], '8.6', /not accepted by TensorRT 8.6/],
    [['--skipInference=1'], '10', /takes no value/],
    [['--onnx'], '10', /needs a value/],
    [['--explicitBatch'], '8.6', /not a documented trtexec flag/],
  ] as const)('refuses %j on %s', (args, line, msg) => {
    expect(checkTrtexecArgs(args, line).join('; ')).toMatch(msg);
  });

  it('maps installed versions to lines', () => {
    expect([lineForVersion(8, 5), lineForVersion(8, 6), lineForVersion(9, 3), lineForVersion(10, 13), lineForVersion(11, 0)]).toEqual([null, '8.6', '8.6', '10', '11']);
  });

  it('quotes tensor names that trtexec would split', () => {
    expect(shapeSpec('input.1', [1, 3, 4])).toBe('input.1:1x3x4');
    expect(shapeSpec('input:0', [1, 3])).toBe("'input:0':1x3");
  });
});

describe('generated trtexec lines', () => {
  const lines = [...buildLines(recognizer), ...buildLines(detector)];

  it('use only flags documented for their line, for builds and for timing', () => {
    expect(lines.length).toBe(3 + 2 + 3); // int8: qdq x3 + calib on 8.6/10; fp16: x3
    for (const l of lines) {
      expect(checkTrtexecArgs(l.args, l.line), `${l.line} ${l.mode}`).toEqual([]);
      expect(checkTrtexecArgs(l.timing, l.line)).toEqual([]);
    }
  });

  it('INT8: Q/DQ graph with --int8 --fp16 on 8.6/10, --stronglyTyped on 11; the cache only with the float graph on 8.6/10', () => {
    const rec = buildLines(recognizer);
    for (const line of TRT_LINES) {
      const q = rec.find((l) => l.line === line && l.mode === 'qdq')!;
      expect(q.args).toContain('--onnx=model.qdq.onnx');
      expect(q.args.some((a) => a.startsWith('--calib'))).toBe(false);
      if (line === '11') { expect(q.args).toContain('--stronglyTyped'); expect(q.args).not.toContain('--int8'); }
      else expect(q.args).toEqual(expect.arrayContaining(['--int8', '--fp16']));
    }
    const calib = rec.filter((l) => l.mode === 'calib');
    expect(calib.map((l) => l.line)).toEqual(['8.6', '10']);
    for (const c of calib) expect(c.args).toEqual(expect.arrayContaining(['--onnx=model.onnx', '--calib=engines/calibration.local.cache']));
  });

  it('profiles, workspace, timing cache and optimization level for a dynamic batch; none for a fixed detector', () => {
    const q = buildLines(recognizer)[0]!;
    expect(q.args).toEqual(expect.arrayContaining([
      '--minShapes=input.1:1x3x112x112', '--optShapes=input.1:8x3x112x112', '--maxShapes=input.1:32x3x112x112',
      '--memPoolSize=workspace:2048', '--timingCacheFile=engines/timing.cache', '--builderOptimizationLevel=4', '--skipInference',
      '--saveEngine=engines/mbf.int8.plan',
    ]));
    expect(q.timing).toEqual(expect.arrayContaining(['--loadEngine=engines/mbf.int8.plan', '--shapes=input.1:8x3x112x112']));
    const d = buildLines(detector);
    for (const l of d) expect(l.args.some((a) => /Shapes=/.test(a))).toBe(false);
    expect(d.find((l) => l.line === '11')!.args).toEqual(expect.arrayContaining(['--onnx=model.fp16.onnx', '--stronglyTyped']));
    expect(d.find((l) => l.line === '10')!.args).toEqual(expect.arrayContaining(['--onnx=model.onnx', '--fp16']));
  });
});
