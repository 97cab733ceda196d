/**
 * README.md of a TensorRT bundle: what each file is, how to build and time engines with trtexec, how
 * to use the ONNX Runtime TensorRT EP options, and how to serve the Triton repository (docker command
 * and a request with curl against Triton's KServe v2 HTTP API).
 */
import type { BuildLine, Precision } from './build-script.js';

export interface ReadmeInput {
  name: string;
  source: string;
  role: 'detector' | 'recognizer';
  precision: Precision;
  input: { name: string; dims: readonly (number | string)[] };
  outputs: { name: string; dims: readonly (number | string)[] }[];
  /** Dims of one example request (with the batch: the profile's smallest). */
  exampleDims: readonly number[];
  files: string[];
  lines: BuildLine[];
  tritonName: string;
  maxBatchSize: number;
}

const cmd = (l: BuildLine) => ['trtexec', ...l.args].join(' \\\n    ');

/** The bundle README text. */
export function renderReadme(r: ReadmeInput): string {
  const byLine = (line: string, mode: string) => r.lines.find((l) => l.line === line && l.mode === mode);
  const main = r.precision === 'int8' ? 'qdq' : 'float';
  const calib = byLine('10', 'calib');
  const count = r.exampleDims.reduce((a, b) => a * b, 1);
  return `# ${r.name} — TensorRT plan (${r.precision})

Written by \`faceopt optimize --tensorrt\` from \`${r.source}\` (${r.role}).
Input \`${r.input.name}\` [${r.input.dims.join(', ')}]; outputs ${r.outputs.map((o) => `\`${o.name}\` [${o.dims.join(', ')}]`).join(', ')}.

## Files

${r.files.map((f) => `- \`${f}\``).join('\n')}

\`plan.json\` lists every file with its sha256, the shape profile, the rewrites faceopt made and the
exact trtexec lines.

## Build an engine

\`\`\`sh
./build.sh            # detects TensorRT (trtexec banner, python tensorrt, dpkg) and builds engines/${r.name}.*.plan
./build.sh --dry-run  # print the trtexec line it would run
./build.sh --time     # build, then time the engine (trtexec --loadEngine ... --useCudaGraph --noDataTransfers)
${r.precision === 'int8' ? './build.sh --mode calib   # TensorRT 8.6/10 only: float graph + legacy calibration.cache\n' : ''}\`\`\`

TensorRT 8.6 / 10 (${main}):

\`\`\`sh
${cmd(byLine('10', main)!)}
\`\`\`

TensorRT 11 (strongly typed; precision comes from the graph, \`--int8/--fp16/--calib\` were removed):

\`\`\`sh
${cmd(byLine('11', main)!)}
\`\`\`
${calib ? `\nLegacy implicit INT8 (8.6/10): the float graph with the calibration cache. TensorRT 10 refuses a cache whose\nheader names another version; build.sh rewrites the header to the installed version first.\n\n\`\`\`sh\n${cmd(calib)}\n\`\`\`\n` : ''}
Time a built engine:

\`\`\`sh
${['trtexec', ...byLine('11', main)!.timing].join(' ')}
\`\`\`

## ONNX Runtime (TensorRT execution provider)

\`ort-tensorrt.json\` holds provider options for the same plan (engine and timing caches in
\`ort-engines/\`). Python:

\`\`\`python
import json, onnxruntime as ort
plan = json.load(open("ort-tensorrt.json"))["default"]
sess = ort.InferenceSession(plan["model"], providers=[("TensorrtExecutionProvider", plan["providerOptions"]), "CUDAExecutionProvider"])
\`\`\`

## Triton Inference Server

\`triton/\` is a model repository (ONNX Runtime backend, TensorRT accelerator${r.maxBatchSize > 0 ? ', dynamic batching' : ''}).${r.precision === 'int8' ? `
The backend takes one \`precision_mode\`: INT8 turns on int8 only, so the layers the Q/DQ graph keeps
float run in FP32 here, where trtexec (\`--int8 --fp16\`) and the ORT options run them in FP16: time it in
Triton before comparing with the trtexec numbers.` : ''}

\`\`\`sh
docker run --rm --gpus all -p 8000:8000 -p 8001:8001 -p 8002:8002 \\
  -v "$PWD/triton:/models" nvcr.io/nvidia/tritonserver:<yy.mm>-py3 \\
  tritonserver --model-repository=/models
curl -s localhost:8000/v2/health/ready && echo ready
curl -s localhost:8000/v2/models/${r.tritonName}/config | head -c 400
\`\`\`

Send a request (KServe v2 JSON; ${count} float32 values, row-major${r.role === 'recognizer' ? ', an aligned 112x112 face normalised as the model expects' : ''}):

\`\`\`sh
python3 - <<'PY' > request.json
import json; n = ${count}
print(json.dumps({"inputs": [{"name": "${r.input.name}", "shape": [${r.exampleDims.join(', ')}], "datatype": "FP32", "data": [0.0] * n}]}))
PY
curl -s -X POST localhost:8000/v2/models/${r.tritonName}/infer -H 'Content-Type: application/json' -d @request.json | head -c 400
\`\`\`

The first request builds the TensorRT engine inside Triton (minutes); engines are cached in the
path given by \`trt_engine_cache_path\` in config.pbtxt.
`;
}
