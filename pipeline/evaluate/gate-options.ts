/**
 * The `--gate-*` command-line flags that override gate thresholds, in one table: flag, the threshold it
 * sets, its valid range and help text. `addGateOptions` puts them on any commander command (`evaluate`,
 * `optimize`) and `gateThresholdsFromOptions` turns parsed options into GateThresholds, validating each
 * value with an error that names the flag.
 */
import type { Command } from 'commander';
import { checkNumber, FaceoptError } from '../errors.js';
import { DEFAULT_GATES, type GateThresholds } from './gates.js';

interface GateFlag {
  flag: string;
  /** commander's camelCase key for the flag. */
  key: string;
  section: keyof GateThresholds;
  field: string;
  min: number;
  max: number;
  help: string;
}

export const GATE_FLAGS: readonly GateFlag[] = [
  { flag: '--gate-mean-cosine', key: 'gateMeanCosine', section: 'recognizer', field: 'minMeanCosine', min: -1, max: 1, help: 'lowest allowed mean reference-vs-variant cosine' },
  { flag: '--gate-min-cosine', key: 'gateMinCosine', section: 'recognizer', field: 'minMinCosine', min: -1, max: 1, help: 'lowest allowed per-face cosine' },
  { flag: '--gate-accuracy-delta', key: 'gateAccuracyDelta', section: 'recognizer', field: 'minAccuracyDeltaPp', min: -100, max: 100, help: 'lowest allowed 10-fold accuracy change, in percentage points' },
  { flag: '--gate-recall', key: 'gateRecall', section: 'detector', field: 'minRecall', min: 0, max: 1, help: 'lowest allowed detection recall vs the reference at IoU 0.5 (fraction)' },
  { flag: '--gate-keypoint-error', key: 'gateKeypointError', section: 'detector', field: 'maxKeypointError', min: 0, max: 1, help: 'highest allowed mean keypoint error, as a fraction of face box size' },
];

/** Add every `--gate-*` flag (with its default in the help) to a commander command; returns the command. */
export function addGateOptions(command: Command): Command {
  for (const g of GATE_FLAGS) {
    const def = (DEFAULT_GATES[g.section] as unknown as Record<string, number>)[g.field];
    command.option(`${g.flag} <value>`, `${g.help} (default ${def})`);
  }
  return command;
}

/**
 * Gate thresholds from parsed commander options: `base` (the defaults) with every given `--gate-*` flag
 * applied. Throws FACEOPT_ERR_BAD_ARGUMENT naming the flag and its range on a bad value.
 */
export function gateThresholdsFromOptions(options: Record<string, unknown>, base: GateThresholds = DEFAULT_GATES): GateThresholds {
  const out = structuredClone(base);
  for (const g of GATE_FLAGS) {
    const raw = options[g.key];
    if (raw === undefined) continue;
    (out[g.section] as unknown as Record<string, number>)[g.field] = checkNumber(g.flag, raw, { min: g.min, max: g.max });
  }
  return out;
}

const list = (v: string, prev: string[] = []) => [...prev, v];

/** The evaluation-set flags `evaluate` and `optimize` share (same names, same meaning). */
export function addEvaluationSetOptions(cmd: Command): Command {
  return cmd
    .option('--pairs <file>', 'same/different pairs (paths relative to --faces; TSV or LFW pairs.txt) for verification accuracy')
    .option('--boxes <xml>', 'dlib XML face boxes for detector evaluation (repeatable)', list)
    .option('--face-free <image>', 'photo without human faces for false-positive counts (repeatable)', list)
    .option('--detector <model>', 'detector that aligns faces for a recognizer (default: a SCRFD model next to the model)');
}

/** An evaluation flag that applies to one role's evaluation only. */
export interface RoleFlag {
  flag: string;
  role: 'detector' | 'recognizer';
}

/** The role-only evaluation flags given (`--pairs`, `--boxes`, `--face-free`, the `--gate-*` flags), from parsed options. */
export function roleFlagsGiven(o: Record<string, unknown>): RoleFlag[] {
  const given = (k: string) => o[k] !== undefined && !(Array.isArray(o[k]) && o[k].length === 0);
  const flags: RoleFlag[] = [];
  if (given('pairs')) flags.push({ flag: '--pairs', role: 'recognizer' });
  if (given('boxes')) flags.push({ flag: '--boxes', role: 'detector' });
  if (given('faceFree')) flags.push({ flag: '--face-free', role: 'detector' });
  if (given('detector')) flags.push({ flag: '--detector', role: 'recognizer' }); // it aligns a recognizer's faces
  for (const g of GATE_FLAGS) if (given(g.key)) flags.push({ flag: g.flag, role: g.section });
  return flags;
}

/**
 * Refuse the role-only flags of the other role (all of them for a model that is neither): a recognizer's
 * evaluation read no --boxes and no --gate-recall, and said nothing.
 */
export function checkRoleFlags(role: 'detector' | 'recognizer' | 'generic', flags: readonly RoleFlag[], command = 'evaluate'): void {
  const wrong = flags.filter((f) => f.role !== role);
  if (!wrong.length) return;
  throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', {
    expected: role === 'generic' ? 'no face-evaluation settings (the model is not a face detector or recognizer: no face evaluation runs)' : `only ${role} settings (the model is a ${role})`,
    name: command,
    received: wrong.map((f) => `${f.flag} (${f.role}s only)`).join(', '),
  });
}
