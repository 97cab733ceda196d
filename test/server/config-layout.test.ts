/**
 * resolveServerConfig at its edges (a mutation audit found these unchecked): each bound a flag has, the
 * API key's minimum length, hosts and Redis URLs that can never work, and the lane layout per worker,
 * on a machine pinned to 8 cores so the layout does not depend on the one running the tests.
 */
import { describe, expect, it, vi } from 'vitest';

vi.mock('../../server/cpus.js', () => ({ availableCores: () => 8, cpuQuota: () => null }));

const { resolveServerConfig } = await import('../../server/config.js');

const refused = (input: object, text: string | RegExp) => expect(() => resolveServerConfig(input as never)).toThrow(text);

describe('resolveServerConfig bounds', () => {
  it('API key: 7 characters (after trimming) are refused, 8 are taken', () => {
    refused({ apiKey: '1234567' }, 'API key of at least 8 characters');
    refused({ apiKey: ' 1234567 \n' }, 'API key of at least 8 characters');
    expect(resolveServerConfig({ apiKey: '12345678' }).apiKey).toBe('12345678');
  });

  it('host: blank text is refused by name', () => {
    refused({ host: '   ' }, 'for host');
    refused({ host: '' }, 'for host');
    expect(resolveServerConfig({ host: '0.0.0.0' }).host).toBe('0.0.0.0');
  });

  it('Redis URL: one without a host is refused', () => {
    for (const url of ['redis:///0', 'redis:/0', 'redis://']) refused({ cache: { redisUrl: url } }, 'a redis:// or rediss:// URL');
  });

  it('--body-limit: at least 1024 bytes', () => {
    refused({ bodyLimit: 1023 }, 'between 1024 and 1073741824 for --body-limit');
    expect(resolveServerConfig({ bodyLimit: 1024 }).bodyLimit).toBe(1024);
  });

  it('--headers-timeout-ms: at least 100', () => {
    refused({ headersTimeoutMs: 99 }, 'for --headers-timeout-ms');
    refused({ headersTimeoutMs: 0 }, 'for --headers-timeout-ms');
    expect(resolveServerConfig({ headersTimeoutMs: 100 }).headersTimeoutMs).toBe(100);
  });

  it('--match-threshold: any cosine from -1 to 1', () => {
    expect(resolveServerConfig({ matchThreshold: -0.5 }).matchThreshold).toBe(-0.5);
    expect(resolveServerConfig({ matchThreshold: -1 }).matchThreshold).toBe(-1);
    refused({ matchThreshold: -1.01 }, 'for --match-threshold');
    refused({ matchThreshold: 1.01 }, 'for --match-threshold');
  });

  it('--cache-size: a whole number of entries', () => {
    refused({ cache: { memoryEntries: 1.5 } }, 'integer between 0 and 10000000 for --cache-size');
    expect(resolveServerConfig({ cache: { memoryEntries: 0 } }).cache.memoryEntries).toBe(0);
  });

  it('--max-wait-ms: 0 to 1000, checked and converted like the other flags', () => {
    refused({ batch: { maxWaitMs: -1 } }, 'for --max-wait-ms');
    refused({ batch: { maxWaitMs: 1001 } }, 'for --max-wait-ms');
    refused({ batch: { maxWaitMs: 'soon' } }, 'for --max-wait-ms');
    expect(resolveServerConfig({ batch: { maxWaitMs: '5' as never } }).batch.maxWaitMs).toBe(5);
    expect(resolveServerConfig({ batch: { maxWaitMs: 0.5 } }).batch.maxWaitMs).toBe(0.5);
  });
});

describe('lane layout on 8 cores', () => {
  it('lanes are sized per worker: 8 workers have 1 core each, so one lane of one thread and no latency lane', () => {
    expect(resolveServerConfig({ workers: 8 })).toMatchObject({ workers: 8, lanes: 1, intraOpThreads: 1, latencyLaneThreads: null });
    expect(resolveServerConfig({ workers: 4 })).toMatchObject({ workers: 4, lanes: 2, intraOpThreads: 1, latencyLaneThreads: 2 });
    expect(resolveServerConfig()).toMatchObject({ workers: 1, lanes: 2, intraOpThreads: 4, latencyLaneThreads: 8 });
  });
});
