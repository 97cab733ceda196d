#!/usr/bin/env bash
# faceopt GPU check: build the TensorRT engines of one or more bundles (faceopt optimize --tensorrt)
# and record their latency in $OUT/gpu-check.json. Meant for a lent GPU machine without internet:
# it installs nothing, finishes in under 5 minutes (per-step timeouts, a global budget), and when
# TensorRT or a GPU is missing it still writes what it found.
#
# Usage: scripts/gpu-check.sh [BUNDLE_DIR ...]
#   default bundles: models/*.trt and test-artifacts/trt/*/ (folders with plan.json)
#   OUT (default ./gpu-check-out), BUDGET_S (default 270), TRTEXEC (path to trtexec) may be set.
# Order of tools: trtexec (build.sh --time), else python `tensorrt` (build + CUDA-event timing via torch).
set -u
cd "$(dirname "$0")/.."
OUT="${OUT:-$PWD/gpu-check-out}"
BUDGET_S="${BUDGET_S:-270}"
mkdir -p "$OUT/logs"
START=$SECONDS

json_str() { printf '"%s"' "$(printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g' | tr -d '\000-\037')"; }
left() { echo $((BUDGET_S - (SECONDS - START))); }
# seconds left minus a margin, at least 10
slot() { local s=$(( $(left) - $1 )); [ "$s" -lt 10 ] && s=10; echo "$s"; }

# --- what is here --------------------------------------------------------------------------------
GPU="absent"; DRIVER=""
if command -v nvidia-smi >/dev/null 2>&1; then
  GPU="$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n 1)"
  DRIVER="$(nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null | head -n 1)"
  [ -n "$GPU" ] || GPU="nvidia-smi present, no GPU listed"
fi
TRTEXEC="${TRTEXEC:-$(command -v trtexec 2>/dev/null || true)}"
if [ -z "$TRTEXEC" ] && [ -x /usr/src/tensorrt/bin/trtexec ]; then TRTEXEC=/usr/src/tensorrt/bin/trtexec; fi
TRT_BANNER=""
if [ -n "$TRTEXEC" ]; then TRT_BANNER="$(timeout 20 "$TRTEXEC" --help 2>&1 | sed -n 's/.*\(TensorRT v[0-9]*\).*/\1/p' | head -n 1)"; fi
PY_TRT=""; PY_TORCH=""
if command -v python3 >/dev/null 2>&1; then
  PY_TRT="$(timeout 30 python3 -c 'import tensorrt; print(tensorrt.__version__)' 2>/dev/null || true)"
  PY_TORCH="$(timeout 30 python3 -c 'import torch; print(torch.__version__, torch.cuda.is_available())' 2>/dev/null || true)"
fi
DPKG="$(dpkg-query -W -f='${Package}=${Version} ' 'libnvinfer*' tensorrt 2>/dev/null | head -c 300 || true)"

if [ $# -gt 0 ]; then BUNDLES=("$@"); else
  BUNDLES=()
  for d in models/*.trt test-artifacts/trt/*/; do [ -f "$d/plan.json" ] && BUNDLES+=("${d%/}"); done
fi

# --- python fallback: build with the TensorRT API, time with CUDA events (torch) ----------------------
PY_BUILD='
import json, os, sys, time
import tensorrt as trt
bundle, engine_path = sys.argv[1], sys.argv[2]
plan = json.load(open(os.path.join(bundle, "plan.json")))
major = int(trt.__version__.split(".")[0])
prec = plan["precision"]
onnx = {"int8": "model.qdq.onnx", "fp16": "model.fp16.onnx" if major >= 11 else "model.onnx", "fp32": "model.onnx"}[prec]
log = trt.Logger(trt.Logger.WARNING)
builder = trt.Builder(log)
flags = 0
if major < 10:
    flags |= 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
if major >= 11 and hasattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED"):
    flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
net = builder.create_network(flags)
parser = trt.OnnxParser(net, log)
if not parser.parse_from_file(os.path.join(bundle, onnx)):
    raise SystemExit("onnx parse failed: " + "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors)))
cfg = builder.create_builder_config()
cfg.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, 4 << 30)
if hasattr(cfg, "builder_optimization_level"):
    cfg.builder_optimization_level = 3
if major < 11 and prec == "int8":
    cfg.set_flag(trt.BuilderFlag.INT8); cfg.set_flag(trt.BuilderFlag.FP16)
elif major < 11 and prec == "fp16":
    cfg.set_flag(trt.BuilderFlag.FP16)
p = plan["input"]["profile"]
prof = builder.create_optimization_profile()
prof.set_shape(p["input"], p["min"], p["opt"], p["max"])
cfg.add_optimization_profile(prof)
t0 = time.time()
blob = builder.build_serialized_network(net, cfg)
if blob is None:
    raise SystemExit("engine build failed")
build_s = time.time() - t0
open(engine_path, "wb").write(bytes(blob))
res = {"tool": "python tensorrt " + trt.__version__, "onnx": onnx, "build_s": round(build_s, 2), "engine_bytes": os.path.getsize(engine_path), "shape": p["opt"]}
try:
    import torch
    assert torch.cuda.is_available()
    eng = trt.Runtime(log).deserialize_cuda_engine(bytes(blob))
    ctx = eng.create_execution_context()
    bufs = []
    for i in range(eng.num_io_tensors):
        n = eng.get_tensor_name(i)
        if eng.get_tensor_mode(n) == trt.TensorIOMode.INPUT:
            ctx.set_input_shape(n, p["opt"])
    for i in range(eng.num_io_tensors):
        n = eng.get_tensor_name(i)
        dt = {trt.float32: torch.float32, trt.float16: torch.float16, trt.int8: torch.int8, trt.int32: torch.int32}[eng.get_tensor_dtype(n)]
        t = torch.zeros(tuple(ctx.get_tensor_shape(n)), dtype=dt, device="cuda")
        bufs.append(t); ctx.set_tensor_address(n, t.data_ptr())
    s = torch.cuda.Stream()
    for _ in range(30):
        ctx.execute_async_v3(s.cuda_stream)
    s.synchronize()
    times = []
    for _ in range(300):
        a = torch.cuda.Event(enable_timing=True); b = torch.cuda.Event(enable_timing=True)
        a.record(s); ctx.execute_async_v3(s.cuda_stream); b.record(s); b.synchronize()
        times.append(a.elapsed_time(b))
    times.sort()
    q = lambda f: times[min(len(times) - 1, int(f * len(times)))]
    res["latency_ms"] = {"min": times[0], "median": q(0.5), "mean": sum(times) / len(times), "p90": q(0.9), "p99": q(0.99), "samples": len(times), "method": "CUDA events around execute_async_v3 (GPU time, no copies)"}
except Exception as e:
    res["latency_ms"] = None; res["timing_skipped"] = str(e)[:200]
print(json.dumps(res))
'

# Parse "GPU Compute Time: min = a ms, max = b ms, mean = c ms, median = d ms, percentile(90%) = e ms, ..., percentile(99%) = f ms"
latency_json() {
  local line q
  line="$(grep -E 'GPU Compute Time: min' "$1" | tail -n 1)"
  q="$(grep -E 'Throughput:' "$1" | tail -n 1 | sed -n 's/.*Throughput: \([0-9.eE+-]*\).*/\1/p')"
  [ -n "$line" ] || { echo null; return; }
  val() { printf '%s' "$line" | sed -n "s/.*$1 = \([0-9.eE+-]*\) ms.*/\1/p"; }
  printf '{"min": %s, "median": %s, "mean": %s, "p90": %s, "p99": %s, "throughput_qps": %s, "method": "trtexec GPU Compute Time (--useCudaGraph --noDataTransfers)"}' \
    "$(val min)" "$(val median)" "$(val mean)" "$(val 'percentile(90%)')" "$(val 'percentile(99%)')" "${q:-null}"
}

RESULTS=()
for b in "${BUNDLES[@]}"; do
  name="$(basename "$b")"; log="$OUT/logs/$name"
  if [ "$(left)" -lt 40 ]; then RESULTS+=("{\"bundle\": $(json_str "$b"), \"status\": \"skipped: time budget spent\"}"); continue; fi
  if [ "$GPU" = "absent" ]; then RESULTS+=("{\"bundle\": $(json_str "$b"), \"status\": \"skipped: no GPU (nvidia-smi absent)\"}"); continue; fi
  if [ -n "$TRTEXEC" ]; then
    t0=$SECONDS
    timeout "$(slot 30)" bash "$b/build.sh" --trtexec "$TRTEXEC" > "$log.build.log" 2>&1; rc=$?
    bs=$((SECONDS - t0))
    engine="$(sed -n 's/^build.sh: engine //p' "$log.build.log" | tail -n 1)"
    bytes=0; [ -n "$engine" ] && [ -f "$b/$engine" ] && bytes=$(stat -c %s "$b/$engine")
    lat=null; trc=""
    if [ $rc -eq 0 ] && [ "$(left)" -gt 25 ]; then
      timeout 25 bash "$b/build.sh" --time-only --trtexec "$TRTEXEC" > "$log.time.log" 2>&1; trc=$?
      lat="$(latency_json "$log.time.log")"
    fi
    RESULTS+=("{\"bundle\": $(json_str "$b"), \"tool\": \"trtexec\", \"build_rc\": $rc, \"build_s\": $bs, \"engine\": $(json_str "$engine"), \"engine_bytes\": $bytes, \"time_rc\": ${trc:-null}, \"latency_ms\": $lat, \"log\": $(json_str "$log.build.log")}")
  elif [ -n "$PY_TRT" ]; then
    mkdir -p "$b/engines"
    timeout "$(slot 20)" python3 -c "$PY_BUILD" "$b" "$b/engines/$name.python.plan" > "$log.py.json" 2> "$log.py.log"; rc=$?
    if [ $rc -eq 0 ] && [ -s "$log.py.json" ]; then RESULTS+=("{\"bundle\": $(json_str "$b"), \"status\": \"ok\", \"result\": $(tail -n 1 "$log.py.json")}")
    else RESULTS+=("{\"bundle\": $(json_str "$b"), \"status\": \"python build failed (rc $rc)\", \"error\": $(json_str "$(tail -c 400 "$log.py.log")")}"); fi
  else
    RESULTS+=("{\"bundle\": $(json_str "$b"), \"status\": \"skipped: TensorRT not installed (no trtexec, no python tensorrt)\"}")
  fi
done

{
  printf '{\n  "env": {"gpu": %s, "driver": %s, "trtexec": %s, "trtexec_banner": %s, "python_tensorrt": %s, "python_torch": %s, "dpkg": %s},\n' \
    "$(json_str "$GPU")" "$(json_str "$DRIVER")" "$(json_str "$TRTEXEC")" "$(json_str "$TRT_BANNER")" "$(json_str "$PY_TRT")" "$(json_str "$PY_TORCH")" "$(json_str "$DPKG")"
  printf '  "elapsed_s": %s,\n  "bundles": [\n' "$((SECONDS - START))"
  for i in "${!RESULTS[@]}"; do printf '    %s%s\n' "${RESULTS[$i]}" "$([ "$i" -lt $((${#RESULTS[@]} - 1)) ] && echo ,)"; done
  printf '  ]\n}\n'
} > "$OUT/gpu-check.json"
cat "$OUT/gpu-check.json"
