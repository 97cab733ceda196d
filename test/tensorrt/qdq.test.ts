import { describe, expect, it } from 'vitest';
import { DataType, attrInt } from '../../pipeline/onnx/index.js';
import { compareOnCpu } from '../../pipeline/tensorrt/cpu-check.js';
import { checkSymmetricQdq, exportSymmetricQdq } from '../../pipeline/tensorrt/qdq-export.js';
import { nonResidualInput } from '../../pipeline/tensorrt/placement.js';
import { parseCalibrationCache, scalesFromRanges, writeCalibrationCache } from '../../pipeline/tensorrt/calibration-cache.js';
import { probeModel, seededInput } from '../../pipeline/tensorrt/probe.js';
import { preparedFixture, preparedSmallMbf, rangesOf, syntheticStats } from './helpers.js';

const MBF_DIMS = [2, 3, 112, 112];

describe('symmetric Q/DQ graph for TensorRT (small MobileFaceNet)', async () => {
  const float = preparedSmallMbf();
  const stats = await syntheticStats(float, MBF_DIMS);
  const ranges = rangesOf(stats);
  const { model: qdq, check, quantization } = exportSymmetricQdq(float, ranges);
  const g = qdq.graph;
  const qdqNodes = g.nodes.filter((n) => n.opType === 'QuantizeLinear' || n.opType === 'DequantizeLinear');

  it('passes its own TensorRT rule check with Q and DQ present', () => {
    expect(check.violations).toEqual([]);
    expect(check.quantizeNodes).toBeGreaterThan(20);
    expect(check.weightDequantizers).toBe(float.graph.nodes.filter((n) => n.opType === 'Conv').length + 1); // + the head Gemm
  });

  it('every Q/DQ is int8 with zero point 0 and scales > 0', () => {
    for (const n of qdqNodes) {
      const [, scale, zp] = n.input!;
      const z = g.getTensor(zp!);
      expect(z.dataType, n.name!).toBe(DataType.INT8);
      expect(Array.from(z.data as Int8Array).every((v) => v === 0), n.name!).toBe(true);
      const s = g.getFloat(scale!);
      expect(s.length).toBeGreaterThan(0);
      expect(Array.from(s).every((v) => v > 0 && Number.isFinite(v)), n.name!).toBe(true);
    }
  });

  it('weights are int8 per channel on axis 0, one scale per output channel; biases stay float', () => {
    const weightDq = qdqNodes.filter((n) => n.opType === 'DequantizeLinear' && g.hasInitializer(n.input![0]!));
    expect(weightDq.length).toBeGreaterThan(10);
    for (const n of weightDq) {
      const w = g.getTensor(n.input![0]!);
      expect(w.dataType).toBe(DataType.INT8);
      expect(attrInt(n, 'axis', 1)).toBe(0);
      expect(g.getFloat(n.input![1]!).length).toBe(w.dims[0]);
    }
    expect(g.proto.initializer!.some((t) => t.dataType === DataType.INT32)).toBe(false);
    for (const n of g.nodes.filter((x) => x.opType === 'Conv' && x.input![2])) expect(g.initializer(n.input![2]!)?.dataType).toBe(DataType.FLOAT);
  });

  it('keeps graph outputs and weighted-op outputs float (no Q/DQ right after a Conv/Gemm)', () => {
    for (const o of g.outputs) expect(g.producer(o.name)?.opType).not.toBe('DequantizeLinear');
    const gemm = g.nodes.find((n) => n.opType === 'Gemm')!;
    expect(g.consumers(gemm.output![0]!).some((c) => c.opType === 'QuantizeLinear')).toBe(false);
  });

  it('residual Add: the skip input is quantized, the Conv branch feeding the Add is not', () => {
    const adds = float.graph.nodes.filter((n) => n.opType === 'Add');
    expect(adds.length).toBeGreaterThan(0);
    for (const add of adds) {
      const main = nonResidualInput(float.graph, add)!;
      const skip = add.input!.find((t) => t !== main)!;
      expect(float.graph.producer(main)?.opType).toBe('Conv');
      const qAdd = g.nodes.find((n) => n.name === add.name)!;
      expect(qAdd.input).toContain(main); // float tensor straight from the Conv
      expect(qAdd.input).toContain(`${skip}_dequantized`);
    }
  });

  it('loads and runs on CPU in onnxruntime-node, close to the float graph', async () => {
    const r = await compareOnCpu(float, qdq, [{ data: seededInput(3 * 112 * 112 * 2, 9), dims: MBF_DIMS }]);
    expect(r.outputs).toHaveLength(1);
    expect(r.outputs[0]!.samples).toBe(2);
    expect(r.outputs[0]!.cosineMin).toBeGreaterThan(0.95);
    expect(quantization.activations).toBeGreaterThan(20);
  });

  it('the legacy calibration cache carries the same scales as the Q/DQ graph, bit for bit', () => {
    const cache = parseCalibrationCache(writeCalibrationCache(scalesFromRanges(ranges), '10.3.0'));
    const byName = new Map(cache.entries.map((e) => [e.name, e]));
    let compared = 0;
    for (const n of g.nodes.filter((x) => x.opType === 'QuantizeLinear')) {
      const tensor = n.input![0]!;
      const entry = byName.get(tensor);
      if (!entry) continue;
      const qScale = g.getFloat(n.input![1]!)[0]!;
      expect(entry.scale, tensor).toBe(qScale);
      compared++;
    }
    expect(compared).toBe(check.quantizeNodes);
    // write -> parse is exact for every tensor of the stats
    for (const [name, scale] of scalesFromRanges(ranges)) expect(byName.get(name)!.scale).toBe(Math.fround(scale));
  });
});

describe('placement on other fixtures', () => {
  it('IResNet-18: main branch float, downsample/identity quantized, runs on CPU', async () => {
    const float = await preparedFixture('iresnet18');
    const stats = await syntheticStats(float, [1, 3, 112, 112], 1);
    const { model, check } = exportSymmetricQdq(float, rangesOf(stats));
    expect(check.violations).toEqual([]);
    for (const add of float.graph.nodes.filter((n) => n.opType === 'Add')) expect(nonResidualInput(float.graph, add)).toBeDefined();
    const out = await probeModel(model, [1, 3, 112, 112]);
    expect(Object.values(out.dims)[0]).toEqual([1, 512]);
  });

  it('refuses stats that do not cover the graph (stats from another graph)', () => {
    const float = preparedSmallMbf();
    expect(() => exportSymmetricQdq(float, { unrelated: [-1, 1] })).toThrow(/no calibrated range/);
  });

  it('checkSymmetricQdq reports a uint8 zero point and a per-channel activation scale', async () => {
    const float = preparedSmallMbf();
    const { model } = exportSymmetricQdq(float, rangesOf(await syntheticStats(float, [1, 3, 112, 112], 1)));
    const q = model.graph.nodes.find((n) => n.opType === 'QuantizeLinear')!;
    model.graph.setTensor(q.input![2]!, DataType.UINT8, [], [0]);
    const v = checkSymmetricQdq(model).violations;
    expect(v.some((x) => x.includes('is not int8'))).toBe(true);
  });
});
