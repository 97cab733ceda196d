import os from 'node:os';
import { describe, expect, it } from 'vitest';
import { availableCores, cpuQuota } from '../../server/cpus.js';

/** A file reader over a fake /proc and /sys/fs/cgroup. */
const fs = (files: Record<string, string>) => (file: string): string => {
  if (!(file in files)) throw Object.assign(new Error(`ENOENT: ${file}`), { code: 'ENOENT' });
  return files[file]!;
};

describe('cpuQuota: a container\'s CFS quota as whole CPUs', () => {
  it('cgroup v2: cpu.max of this cgroup, an ancestor, or the namespace root; the tightest wins', () => {
    expect(cpuQuota(fs({ '/proc/self/cgroup': '0::/\n', '/sys/fs/cgroup/cpu.max': '200000 100000\n' }))).toBe(2);
    expect(cpuQuota(fs({ '/proc/self/cgroup': '0::/kubepods/pod1/c1\n', '/sys/fs/cgroup/kubepods/pod1/c1/cpu.max': 'max 100000\n', '/sys/fs/cgroup/kubepods/pod1/cpu.max': '400000 100000\n' }))).toBe(4);
    expect(cpuQuota(fs({ '/proc/self/cgroup': '0::/a/b\n', '/sys/fs/cgroup/a/b/cpu.max': '300000 100000', '/sys/fs/cgroup/a/cpu.max': '150000 100000' }))).toBe(1);
    // half a CPU still gets one thread
    expect(cpuQuota(fs({ '/proc/self/cgroup': '0::/\n', '/sys/fs/cgroup/cpu.max': '50000 100000' }))).toBe(1);
    expect(cpuQuota(fs({ '/proc/self/cgroup': '0::/\n', '/sys/fs/cgroup/cpu.max': 'max 100000' }))).toBeNull();
  });

  it('cgroup v1: cfs_quota_us / cfs_period_us under the cpu or cpu,cpuacct mount; -1 is no limit', () => {
    expect(cpuQuota(fs({ '/proc/self/cgroup': '4:memory:/x\n2:cpu,cpuacct:/docker/abc\n', '/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us': '250000', '/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us': '100000' }))).toBe(2);
    expect(cpuQuota(fs({ '/proc/self/cgroup': '1:cpu:/\n', '/sys/fs/cgroup/cpu/cpu.cfs_quota_us': '-1', '/sys/fs/cgroup/cpu/cpu.cfs_period_us': '100000' }))).toBeNull();
  });

  it('nothing readable (no /proc, no cgroup files): no quota', () => {
    expect(cpuQuota(fs({}))).toBeNull();
    expect(cpuQuota(fs({ '/proc/self/cgroup': 'garbage\n' }))).toBeNull();
  });

  it('availableCores caps the affinity mask by the quota, and never raises it', () => {
    const affinity = os.availableParallelism();
    expect(availableCores(fs({}))).toBe(affinity);
    expect(availableCores(fs({ '/proc/self/cgroup': '0::/\n', '/sys/fs/cgroup/cpu.max': '100000 100000' }))).toBe(1);
    expect(availableCores(fs({ '/proc/self/cgroup': '0::/\n', '/sys/fs/cgroup/cpu.max': `${(affinity + 8) * 100000} 100000` }))).toBe(affinity);
    // this machine, as it is
    expect(availableCores()).toBeGreaterThanOrEqual(1);
    expect(availableCores()).toBeLessThanOrEqual(affinity);
  });
});
