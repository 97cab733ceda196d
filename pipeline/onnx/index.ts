/** The ONNX core: read/write models, the Graph façade, tensors, attributes, opset upgrade. */
export { loadModel, saveModel, externalDataFiles, OnnxModel } from './model.js';
export { Graph, WEIGHTED_OPS, makeValueInfo, valueInfoOf, type ValueInfo } from './graph.js';
export { readTensor, makeTensor, tensorToFloat32, numel, halfToFloat, floatToHalf, type TensorData, type TypedArray } from './tensor.js';
export { onnx, DataType, AttrType, toNumber, getAttr, setAttr, removeAttr, attrInt, attrInts, attrFloat, attrString, makeNode, dataTypeName, type NodeProto, type TensorProto } from './proto.js';
export { upgradeOpset, irVersionFor, MIN_TARGET_OPSET, MAX_TARGET_OPSET } from './opset.js';
