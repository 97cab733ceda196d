/**
 * The CPUs this process may use: the affinity mask (`os.availableParallelism`, which honours
 * `--cpuset-cpus`) capped by a CFS quota (`docker --cpus 2`, a Kubernetes CPU limit). Node 20's libuv
 * (1.46) does not read the quota (from 1.49 on it does: libuv issue #4146, PR #4746), so a container
 * limited to 2 CPUs on a 32-core node sized its inference lanes and threads for 32 and ran them on 2.
 * The quota is read from cgroup v2's `cpu.max` or v1's `cpu.cfs_quota_us` / `cpu.cfs_period_us`, for
 * this process's cgroup and each one above it (the tightest wins), and at the mount root, which is what
 * a container with its own cgroup namespace sees.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';

type Read = (file: string) => string;
const readText: Read = (file) => readFileSync(file, 'utf8');

/** `/a/b/c` -> [`/a/b/c`, `/a/b`, `/a`, ``]: a cgroup path and every one above it, the root last. */
function upwards(cgroupPath: string): string[] {
  const parts = cgroupPath.split('/').filter(Boolean);
  return Array.from({ length: parts.length + 1 }, (_, i) => (i === parts.length ? '' : `/${parts.slice(0, parts.length - i).join('/')}`));
}

/** Whole CPUs a quota of `quota` microseconds per `period` allows (at least 1), or null for no limit. */
function cpusOf(quota: number, period: number): number | null {
  return Number.isFinite(quota) && Number.isFinite(period) && quota > 0 && period > 0 ? Math.max(1, Math.floor(quota / period)) : null;
}

/** The CFS quota of this process as whole CPUs (at least 1), or null when none is set or none can be read. */
export function cpuQuota(read: Read = readText): number | null {
  let lines: string[] = [];
  try {
    lines = read('/proc/self/cgroup').split('\n');
  } catch {
    // not Linux, or no /proc: no quota to read
  }
  const limits: number[] = [];
  const add = (cpus: number | null) => { if (cpus !== null) limits.push(cpus); };
  const tryRead = (file: string): string | null => {
    try {
      return read(file).trim();
    } catch {
      return null;
    }
  };
  for (const line of lines) {
    const [, controllers, cgroupPath] = line.split(':');
    if (cgroupPath === undefined) continue;
    if (controllers === '') {
      // cgroup v2: "0::/path"
      for (const dir of upwards(cgroupPath)) {
        const max = tryRead(`/sys/fs/cgroup${dir}/cpu.max`);
        if (max) { const [quota, period] = max.split(/\s+/); if (quota !== 'max') add(cpusOf(Number(quota), Number(period))); }
      }
    } else if (controllers!.split(',').includes('cpu')) {
      // cgroup v1: "N:cpu,cpuacct:/path", mounted as cpu or cpu,cpuacct
      for (const mount of ['/sys/fs/cgroup/cpu', '/sys/fs/cgroup/cpu,cpuacct']) {
        for (const dir of upwards(cgroupPath)) {
          const quota = tryRead(`${mount}${dir}/cpu.cfs_quota_us`);
          const period = tryRead(`${mount}${dir}/cpu.cfs_period_us`);
          if (quota !== null && period !== null) add(cpusOf(Number(quota), Number(period)));
        }
      }
    }
  }
  return limits.length > 0 ? Math.min(...limits) : null;
}

/** CPUs for sizing lanes and threads: the affinity mask, capped by the CFS quota. */
export function availableCores(read: Read = readText): number {
  const affinity = typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
  const quota = cpuQuota(read);
  return quota === null ? affinity : Math.min(affinity, quota);
}
