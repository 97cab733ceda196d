/**
 * The suites run without the developer's faceopt settings (test/global-setup.ts): an API key, REDIS_URL
 * or FACEOPT_MODELS in the shell changed answers of servers and CLIs the tests start.
 */
import { describe, expect, it } from 'vitest';
import { scrubEnvironment } from './global-setup.js';

describe('test environment', () => {
  it('drops FACEOPT_* settings but the data and fixture locations and the int8 CPU override, REDIS_URL, NODE_OPTIONS and ORT_DISABLE_TELEMETRY', () => {
    const env: NodeJS.ProcessEnv = { PATH: '/usr/bin', FACEOPT_API_KEY: 'k'.repeat(12), FACEOPT_MODELS: '/m', FACEOPT_SHARED: '/s', FACEOPT_FIXTURE_CACHE: '/c', FACEOPT_TEST_INT8_DOT: 'AVX2 without VNNI', REDIS_URL: 'redis://x', NODE_OPTIONS: '--inspect', ORT_DISABLE_TELEMETRY: '0' };
    expect(scrubEnvironment(env).sort()).toEqual(['FACEOPT_API_KEY', 'FACEOPT_MODELS', 'NODE_OPTIONS', 'ORT_DISABLE_TELEMETRY', 'REDIS_URL']);
    expect(env).toEqual({ PATH: '/usr/bin', FACEOPT_SHARED: '/s', FACEOPT_FIXTURE_CACHE: '/c', FACEOPT_TEST_INT8_DOT: 'AVX2 without VNNI' });
  });
  it('this worker runs without them', () => {
    for (const k of ['FACEOPT_API_KEY', 'FACEOPT_MODELS', 'FACEOPT_REPORTS', 'REDIS_URL']) expect(process.env[k], k).toBeUndefined();
  });
});
