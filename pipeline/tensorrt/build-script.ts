/**
 * build.sh for a TensorRT bundle: one trtexec line per TensorRT release line and build mode, and a
 * small bash prelude that finds trtexec, detects the installed version (trtexec banner, then python
 * `tensorrt`, then dpkg) and runs the matching line. Modes:
 *  - int8 `qdq`   (default): the Q/DQ graph; `--int8 --fp16` on 8.6/10, `--stronglyTyped` on 11;
 *  - int8 `calib` (8.6/10 only): the float graph with the legacy calibration cache (`--calib`), its
 *    header rewritten to the installed version first (TensorRT 10 refuses another version's cache);
 *  - fp16: `--fp16` on 8.6/10, the float16 graph with `--stronglyTyped` on 11 (11 removed `--fp16`);
 *  - fp32: the float graph (`--stronglyTyped` on 11).
 * The lines come from `trtexecBuildArgs`, so every flag is checked against the documented table.
 */
import { type ShapeProfile, type TrtLine, TRT_LINES, trtexecBuildArgs, trtexecTimingArgs } from './trtexec.js';

export type Precision = 'int8' | 'fp16' | 'fp32';
export type BuildMode = 'qdq' | 'calib' | 'float';

export interface BuildInput {
  name: string;
  precision: Precision;
  profile: ShapeProfile;
  dynamic: boolean;
  workspaceMiB: number;
  optimizationLevel: number;
  /** Bundle-relative files: the float graph always; qdq for int8; fp16 graph for fp16; cache for int8. */
  files: { float: string; qdq?: string; fp16?: string; calibrationCache?: string };
}

export interface BuildLine {
  line: TrtLine;
  mode: BuildMode;
  engine: string;
  args: string[];
  /** trtexec argv that times the built engine at the profile's opt shape. */
  timing: string[];
}

const TIMING_CACHE = 'engines/timing.cache';
const LOCAL_CACHE = 'engines/calibration.local.cache';

/** Every trtexec line the bundle supports, per TensorRT line and mode. */
export function buildLines(input: BuildInput): BuildLine[] {
  const out: Omit<BuildLine, 'timing'>[] = [];
  const base = { timingCache: TIMING_CACHE, profile: input.profile, dynamic: input.dynamic, workspaceMiB: input.workspaceMiB, optimizationLevel: input.optimizationLevel };
  for (const line of TRT_LINES) {
    const strong = line === '11';
    if (input.precision === 'int8') {
      const engine = `engines/${input.name}.int8.plan`;
      out.push({ line, mode: 'qdq', engine, args: trtexecBuildArgs({ ...base, onnx: input.files.qdq!, engine, precisionFlags: ['--int8', '--fp16'], stronglyTyped: strong }, line) });
      if (!strong && input.files.calibrationCache) {
        const calibEngine = `engines/${input.name}.int8-calib.plan`;
        out.push({ line, mode: 'calib', engine: calibEngine, args: trtexecBuildArgs({ ...base, onnx: input.files.float, engine: calibEngine, precisionFlags: ['--int8', '--fp16'], calib: LOCAL_CACHE, stronglyTyped: false }, line) });
      }
    } else {
      const engine = `engines/${input.name}.${input.precision}.plan`;
      const onnx = strong && input.precision === 'fp16' ? input.files.fp16! : input.files.float;
      const flags = input.precision === 'fp16' ? ['--fp16'] : [];
      out.push({ line, mode: 'float', engine, args: trtexecBuildArgs({ ...base, onnx, engine, precisionFlags: flags, stronglyTyped: strong }, line) });
    }
  }
  const shapes = input.dynamic ? { input: input.profile.input, dims: input.profile.opt } : null;
  return out.map((l) => ({ ...l, timing: trtexecTimingArgs(l.engine, shapes, l.line, l.engine.replace(/\.plan$/, '.times.json')) }));
}

/** Single-quote one shell word. */
export function shQuote(s: string): string {
  return /^[A-Za-z0-9_./:=@%+,-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

function caseBody(lines: BuildLine[]): string {
  const arms: string[] = [];
  for (const l of lines) {
    const cmd = ['"${TRTEXEC:-trtexec}"', ...l.args.map(shQuote)].join(' \\\n        ');
    const time = ['"${TRTEXEC:-trtexec}"', ...l.timing.map(shQuote)].join(' \\\n        ');
    const pre = l.mode === 'calib' ? `        write_local_cache\n` : '';
    arms.push(`    ${l.line}:${l.mode})\n      ENGINE=${shQuote(l.engine)}\n      if [ "$TIME_ONLY" != 1 ]; then\n${pre}        run ${cmd}\n      fi\n      if [ "$TIME" = 1 ]; then\n        run ${time}\n      fi\n      ;;`);
  }
  return arms.join('\n');
}

/** The build.sh text for a bundle. */
export function renderBuildScript(input: BuildInput, lines: BuildLine[], meta: { tool: string; model: string }): string {
  const defaultMode = input.precision === 'int8' ? 'qdq' : 'float';
  const modes = [...new Set(lines.map((l) => l.mode))].join('|');
  return `#!/usr/bin/env bash
# Build a TensorRT engine for ${meta.model} (${input.precision}), written by faceopt ${meta.tool}.
# Usage: ./build.sh [--mode ${modes}] [--dry-run] [--time | --time-only] [--trtexec PATH]
#   Detects the installed TensorRT (trtexec banner, python tensorrt, dpkg) and runs the matching
#   trtexec line. Override the detection with FACEOPT_TRT_VERSION=10.3.0 and the binary with TRTEXEC=.
${input.precision === 'int8' ? '#   --mode calib (TensorRT 8.6/10 only) builds the float graph with the legacy calibration cache.\n' : ''}#   --time builds then times the engine (trtexec --loadEngine); --time-only times an existing engine.
set -euo pipefail
cd "$(dirname "$0")"

MODE=${defaultMode}
DRY_RUN=0
TIME=0
TIME_ONLY=0
TRTEXEC="\${TRTEXEC:-}"
while [ $# -gt 0 ]; do
  case "$1" in
    --mode) MODE="\${2:?--mode needs a value}"; shift 2 ;;
    --dry-run) DRY_RUN=1; shift ;;
    --time) TIME=1; shift ;;
    --time-only) TIME=1; TIME_ONLY=1; shift ;;
    --trtexec) TRTEXEC="\${2:?--trtexec needs a path}"; shift 2 ;;
    -h|--help) sed -n '2,/^set /{/^#/p;}' "$0"; exit 0 ;;
    *) echo "build.sh: unknown argument $1 (see --help)" >&2; exit 64 ;;
  esac
done

if [ -z "$TRTEXEC" ]; then
  if command -v trtexec >/dev/null 2>&1; then TRTEXEC="$(command -v trtexec)"
  elif [ -x /usr/src/tensorrt/bin/trtexec ]; then TRTEXEC=/usr/src/tensorrt/bin/trtexec
  fi
fi

# Decode NV_TENSORRT_VERSION numbers: 8601 -> 8.6.1, 100300 -> 10.3.0.
decode_number() {
  local n="$1"
  if [ "$n" -ge 10000 ]; then echo "$((n / 10000)).$(((n % 10000) / 100)).$((n % 100))"
  else echo "$((n / 1000)).$(((n % 1000) / 100)).$((n % 100))"; fi
}

detect_version() {
  if [ -n "\${FACEOPT_TRT_VERSION:-}" ]; then echo "$FACEOPT_TRT_VERSION"; return; fi
  local n=""
  if [ -n "$TRTEXEC" ]; then
    n="$("$TRTEXEC" --help 2>&1 | sed -n 's/.*TensorRT v\\([0-9][0-9]*\\).*/\\1/p' | head -n 1 || true)"
    if [ -n "$n" ]; then decode_number "$n"; return; fi
  fi
  local v=""
  if command -v python3 >/dev/null 2>&1; then
    v="$(python3 -c 'import tensorrt; print(tensorrt.__version__)' 2>/dev/null || true)"
  fi
  if [ -z "$v" ] && command -v dpkg-query >/dev/null 2>&1; then
    v="$(dpkg-query -W -f='\${Version}\\n' tensorrt libnvinfer-bin libnvinfer10 libnvinfer8 2>/dev/null | grep -E '^[0-9]' | head -n 1 || true)"
  fi
  echo "$v" | sed -n 's/^\\([0-9][0-9]*\\.[0-9][0-9]*\\(\\.[0-9][0-9]*\\)\\{0,1\\}\\).*/\\1/p'
}

VERSION="$(detect_version)"
if [ -z "$VERSION" ]; then
  echo "build.sh: TensorRT not found (no trtexec banner, python tensorrt or dpkg package). Install TensorRT or set FACEOPT_TRT_VERSION and TRTEXEC." >&2
  exit 69
fi
if ! printf '%s' "$VERSION" | grep -Eq '^[0-9]+(\\.[0-9]+){0,2}$'; then
  echo "build.sh: TensorRT version '$VERSION' is not a version number; FACEOPT_TRT_VERSION takes e.g. 10.3 or 8.6.1." >&2
  exit 64
fi
MAJOR="\${VERSION%%.*}"
# a bare major version ("10") is 10.0.0: without a dot, \${VERSION#*.} would be the major again
case "$VERSION" in *.*) REST="\${VERSION#*.}" ;; *) REST=0 ;; esac
MINOR="\${REST%%.*}"
PATCH=0
case "$REST" in *.*) PATCH="\${REST#*.}"; PATCH="\${PATCH%%.*}" ;; esac
if [ "$MAJOR" -ge 10 ]; then TRT_NUMBER=$((MAJOR * 10000 + MINOR * 100 + PATCH)); else TRT_NUMBER=$((MAJOR * 1000 + MINOR * 100 + PATCH)); fi
if [ "$MAJOR" -ge 11 ]; then LINE=11
elif [ "$MAJOR" -eq 10 ]; then LINE=10
elif [ "$MAJOR" -eq 9 ] || { [ "$MAJOR" -eq 8 ] && [ "$MINOR" -ge 6 ]; }; then LINE=8.6
else
  echo "build.sh: TensorRT $VERSION is older than 8.6, which this plan needs (builder optimization levels, --skipInference)." >&2
  exit 69
fi
echo "build.sh: TensorRT $VERSION (line $LINE), mode $MODE" >&2

# The legacy cache names the TensorRT version in its header; TensorRT 10 refuses another version's.
write_local_cache() {
  if [ "$DRY_RUN" = 1 ]; then return 0; fi
  mkdir -p engines
  sed "1s/^TRT-[0-9]*-/TRT-$TRT_NUMBER-/" ${shQuote(input.files.calibrationCache ?? 'calibration.cache')} > ${LOCAL_CACHE}
}

run() {
  if [ "$DRY_RUN" = 1 ]; then printf 'build.sh: would run'; else printf 'build.sh: running'; fi
  printf ' %q' "$@"; printf '\\n'
  if [ "$DRY_RUN" = 1 ]; then return 0; fi
  if [ -z "$TRTEXEC" ]; then echo "build.sh: trtexec not found; pass --trtexec PATH or set TRTEXEC" >&2; exit 69; fi
  mkdir -p engines
  "$@"
}

case "$LINE:$MODE" in
${caseBody(lines)}
${input.precision === 'int8' ? `    11:calib)
      echo "build.sh: TensorRT 11 removed implicit INT8 calibration (--int8/--calib); use --mode qdq." >&2
      exit 64
      ;;
` : ''}    *)
      echo "build.sh: no line for TensorRT $LINE in mode $MODE (modes: ${modes})" >&2
      exit 64
      ;;
esac
echo "build.sh: engine $ENGINE" >&2
`;
}
