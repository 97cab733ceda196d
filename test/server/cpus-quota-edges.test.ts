/**
 * cpuQuota at its edges (a mutation audit found these unchecked): only the cpu controller's lines count
 * (not cpuset's), and a zero period is no limit rather than an infinite one.
 */
import { describe, expect, it } from 'vitest';
import { cpuQuota } from '../../server/cpus.js';

const fs = (files: Record<string, string>) => (file: string): string => {
  if (!(file in files)) throw Object.assign(new Error(`ENOENT: ${file}`), { code: 'ENOENT' });
  return files[file]!;
};

describe('cpuQuota edges', () => {
  it('cgroup v1: a cpuset line is not the cpu controller', () => {
    const files = { '/sys/fs/cgroup/cpu/pinned/cpu.cfs_quota_us': '100000', '/sys/fs/cgroup/cpu/pinned/cpu.cfs_period_us': '100000' };
    expect(cpuQuota(fs({ '/proc/self/cgroup': '3:cpuset:/pinned\n', ...files }))).toBeNull();
    expect(cpuQuota(fs({ '/proc/self/cgroup': '3:cpu:/pinned\n', ...files }))).toBe(1);
  });

  it('a zero or negative period is no limit', () => {
    expect(cpuQuota(fs({ '/proc/self/cgroup': '0::/\n', '/sys/fs/cgroup/cpu.max': '100000 0' }))).toBeNull();
    expect(cpuQuota(fs({ '/proc/self/cgroup': '1:cpu:/\n', '/sys/fs/cgroup/cpu/cpu.cfs_quota_us': '100000', '/sys/fs/cgroup/cpu/cpu.cfs_period_us': '-1' }))).toBeNull();
  });
});
