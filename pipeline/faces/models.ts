/**
 * Model arguments for the face commands: a flag value or else an environment variable, resolved by the
 * zoo's one resolver (a path, or a PACK/FILE zoo reference), so every command accepts the same names.
 */
import { FaceoptError } from '../errors.js';
import { resolveModelArg } from '../zoo/resolve.js';

export { resolveModelArg };

/** Environment variables that name the default detector and recognizer. */
export const DETECTOR_ENV = 'FACEOPT_DETECTOR';
export const RECOGNIZER_ENV = 'FACEOPT_RECOGNIZER';

/**
 * The model for a role from an explicit argument or else its environment variable, resolved to an
 * existing file; when neither is given, FACEOPT_ERR_BAD_ARGUMENT says which flag or variable to set.
 */
export function modelFromArgOrEnv(arg: string | undefined, role: 'detector' | 'recognizer', flag: string): string {
  const env = role === 'detector' ? DETECTOR_ENV : RECOGNIZER_ENV;
  const value = arg ?? process.env[env];
  if (!value) {
    throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected: `a ${role} model (${flag} PATH|PACK/FILE, or the ${env} environment variable)`, name: flag, received: 'nothing' });
  }
  return resolveModelArg(value, { flag: arg !== undefined ? flag : env });
}
