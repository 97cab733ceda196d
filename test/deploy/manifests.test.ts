/**
 * docker-compose.yml and deploy/k8s/*.yaml parse as YAML and point only at things that exist: the
 * Dockerfiles they build, `faceopt` subcommands and flags the CLI accepts (checked against the built
 * CLI's own --help), the port the server listens on, the models folder the image declares, zoo packs
 * and files that exist, Services/ConfigMaps/Deployments referenced by name, and probe paths the server
 * routes.
 */
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { describe, expect, it } from 'vitest';
import { faceopt } from '../helpers/cli.js';
import { envPairs, last, readDockerfile, ROOT, stage } from './dockerfile.js';

type Obj = Record<string, any>;

const serveHelp = faceopt(['serve', '--help']).stdout;
const zoo = JSON.parse(readFileSync(path.join(ROOT, 'models', 'zoo.json'), 'utf8')) as { packs: { name: string; files: { name: string }[] }[] };
const routes = readdirSync(path.join(ROOT, 'server', 'routes')).map((f) => readFileSync(path.join(ROOT, 'server', 'routes', f), 'utf8')).join('\n')
  + readFileSync(path.join(ROOT, 'server', 'app.ts'), 'utf8');
const imageEnv = envPairs(last(stage(readDockerfile('Dockerfile'), 'final'), 'ENV')!.args);

/** Check a `faceopt ...` argv: a known command whose every --flag appears in that command's --help. */
function checkFaceoptArgs(argv: string[]): void {
  expect(argv[0]).toBe('faceopt');
  expect(argv[1]).toBe('serve');
  for (const a of argv.filter((x) => x.startsWith('--'))) expect(serveHelp, `faceopt serve ${a}`).toContain(`${a.split('=')[0]} `);
  const port = argv[argv.indexOf('--port') + 1];
  expect(port).toBe('5555');
  expect(cores(argv)).toBeGreaterThanOrEqual(1);
}

/**
 * The cores a serve argv keeps busy: workers x lanes x threads, each given explicitly (Node 20 does not
 * see a container's CPU quota, so a layout left to the server would follow the host's core count). The
 * latency lane runs only while the other lanes are idle: it adds no cores.
 */
function cores(argv: string[]): number {
  const flag = (name: string) => (argv.includes(name) ? Number(argv[argv.indexOf(name) + 1]) : 1);
  const [workers, lanes, threads] = [flag('--workers'), flag('--lanes'), flag('--threads')];
  for (const n of [workers, lanes, threads]) expect(Number.isInteger(n) && n >= 1).toBe(true);
  expect(argv, 'the threads per lane are given').toContain('--threads');
  return workers * lanes * threads;
}

/** PACK/FILE model references must name a zoo pack and one of its files; FACEOPT_FETCH must name packs. */
function checkModelEnv(env: Record<string, string>): void {
  const packs = String(env.FACEOPT_FETCH ?? '').split(/[ ,]+/).filter(Boolean);
  for (const p of packs) expect(zoo.packs.map((x) => x.name), p).toContain(p);
  for (const key of ['FACEOPT_DETECTOR', 'FACEOPT_RECOGNIZER']) {
    const [pack, file] = String(env[key]).split('/');
    const entry = zoo.packs.find((x) => x.name === pack);
    expect(entry, `${key}=${env[key]}`).toBeDefined();
    expect(entry!.files.map((f) => f.name.replace(/\.onnx$/, '')), `${key}=${env[key]}`).toContain(file);
    expect(packs, `${key} names a pack that is fetched`).toContain(pack);
  }
}

/** The node -e fetch health command of compose: the path and port it probes. */
function probed(test: string[]): { port: string; path: string } {
  const m = /fetch\('http:\/\/127\.0\.0\.1:(\d+)(\/\w+)'/.exec(test.join(' '));
  if (!m) throw new Error(`no fetch probe in ${test.join(' ')}`);
  return { port: m[1], path: m[2] };
}

/** Compose's `${VAR:-default}` -> default. */
const composeDefault = (v: string) => v.replace(/\$\{\w+:?-([^}]*)\}/g, '$1'); // ${X:-d} and ${X-d} (set but empty stays empty)

describe('docker-compose.yml', () => {
  const compose = parse(readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8')) as Obj;
  const services = compose.services as Record<string, Obj>;

  it('has the CPU server, a GPU profile and Redis', () => {
    expect(Object.keys(services).sort()).toEqual(['faceopt', 'faceopt-gpu', 'redis']);
    expect(services['faceopt-gpu'].profiles).toEqual(['gpu']);
  });

  it.each(['faceopt', 'faceopt-gpu'])('%s: builds an existing Dockerfile, runs valid serve flags, probes /ready on the served port', (name) => {
    const s = services[name];
    expect(existsSync(path.join(ROOT, s.build.context, s.build.dockerfile))).toBe(true);
    if (s.command) checkFaceoptArgs(s.command as string[]);
    if (name === 'faceopt') expect(cores(s.command as string[])).toBe(Number(s.deploy.resources.limits.cpus));
    expect(s.ports[0]).toMatch(/^127\.0\.0\.1:\d+:5555$/); // published on the host's loopback: the API has no key by default
    const h = probed(s.healthcheck.test as string[]);
    expect(h).toEqual({ port: '5555', path: '/ready' });
    expect(routes).toContain("app.get('/ready'");
    // each service its own models volume: the two images run as different users (docs/deploy.md)
    expect(s.volumes).toContain(`${name === 'faceopt' ? 'models' : 'models-gpu'}:${imageEnv.FACEOPT_MODELS}`);
    const env = Object.fromEntries(Object.entries(s.environment as Record<string, string>).map(([k, v]) => [k, composeDefault(v)]));
    checkModelEnv(env);
    const redis = new URL(env.REDIS_URL);
    expect(redis.hostname).toBe('redis');
    expect(redis.port).toBe('6379');
    expect(s.depends_on.redis.condition).toBe('service_healthy');
    expect(s.deploy.resources.limits.memory).toMatch(/^\d+[mg]$/);
    expect(s.init).toBe(true);
  });

  it('Redis: a cache with a memory cap and eviction, below its container limit', () => {
    const r = services.redis;
    const cmd = r.command as string[];
    const maxmemory = Number.parseInt(cmd[cmd.indexOf('--maxmemory') + 1], 10);
    expect(cmd[cmd.indexOf('--maxmemory-policy') + 1]).toBe('allkeys-lru');
    expect(maxmemory).toBeLessThan(Number.parseInt(r.deploy.resources.limits.memory, 10));
    expect(r.healthcheck.test).toEqual(['CMD', 'redis-cli', 'ping']);
    expect(r.image).toMatch(/^redis:\d+\.\d+\.\d+-alpine$/);
  });
});

describe('deploy/k8s', () => {
  const dir = path.join(ROOT, 'deploy', 'k8s');
  const files = readdirSync(dir).filter((f) => f.endsWith('.yaml'));
  const docs: Obj[] = files.flatMap((f) => parseAllDocuments(readFileSync(path.join(dir, f), 'utf8')).map((d) => {
    expect(d.errors, f).toEqual([]);
    return d.toJS() as Obj;
  }));
  const find = (kind: string, name: string) => docs.find((d) => d.kind === kind && d.metadata?.name === name);
  const deploy = find('Deployment', 'faceopt')!;
  const pod = deploy?.spec.template.spec as Obj;
  const container = pod?.containers[0] as Obj;

  it('every file parses, and kustomization lists exactly the resource files', () => {
    const k = docs.find((d) => d.kind === 'Kustomization')!;
    expect([...k.resources].sort()).toEqual(files.filter((f) => f !== 'kustomization.yaml').sort());
    expect(docs.map((d) => d.kind).sort()).toEqual(['ConfigMap', 'Deployment', 'Deployment', 'HorizontalPodAutoscaler', 'Kustomization', 'Namespace', 'PodDisruptionBudget', 'Service', 'Service']);
  });

  it('Deployment: valid serve args, probes on routes the server has, the port and models folder of the image', () => {
    checkFaceoptArgs(container.args);
    expect(container.ports).toEqual([{ name: 'http', containerPort: 5555 }]);
    expect(container.readinessProbe.httpGet).toEqual({ path: '/ready', port: 'http' });
    expect(container.livenessProbe.httpGet).toEqual({ path: '/health', port: 'http' });
    expect(container.startupProbe.httpGet.path).toBe('/health');
    for (const p of ['/ready', '/health']) expect(routes).toContain(`app.get('${p}'`);
    expect(container.startupProbe.periodSeconds * container.startupProbe.failureThreshold).toBeGreaterThanOrEqual(120);
    expect(container.volumeMounts.map((m: Obj) => m.mountPath)).toContain(imageEnv.FACEOPT_MODELS);
    expect(deploy.spec.selector.matchLabels).toEqual(deploy.spec.template.metadata.labels);
  });

  it('Deployment: CPU requests = limits = workers x lanes x threads; memory request <= limit; drains within the grace period', () => {
    const args = container.args as string[];
    expect(Number(container.resources.requests.cpu)).toBe(cores(args));
    expect(container.resources.limits.cpu).toBe(container.resources.requests.cpu);
    const mi = (v: string) => Number.parseInt(v, 10) * (v.endsWith('Gi') ? 1024 : 1);
    expect(mi(container.resources.requests.memory)).toBeLessThanOrEqual(mi(container.resources.limits.memory));
    const shutdownMs = Number(args[args.indexOf('--shutdown-timeout-ms') + 1]);
    const preStopS = Number(container.lifecycle.preStop.exec.command[1]);
    expect(preStopS + shutdownMs / 1000).toBeLessThanOrEqual(pod.terminationGracePeriodSeconds);
    expect(container.securityContext.allowPrivilegeEscalation).toBe(false);
    expect(pod.securityContext.runAsNonRoot).toBe(true);
  });

  it('ConfigMap, Services and HPA reference what exists', () => {
    const cmName = container.envFrom[0].configMapRef.name;
    const cm = find('ConfigMap', cmName)!;
    checkModelEnv(cm.data);
    const redisUrl = new URL(cm.data.REDIS_URL);
    const redisSvc = find('Service', redisUrl.hostname)!;
    expect(redisSvc.spec.ports[0].port).toBe(Number(redisUrl.port));
    const redis = find('Deployment', 'faceopt-redis')!;
    expect(redisSvc.spec.selector).toEqual(redis.spec.template.metadata.labels);
    expect(redis.spec.template.spec.containers[0].ports.map((p: Obj) => p.name)).toContain(redisSvc.spec.ports[0].targetPort);
    const svc = find('Service', 'faceopt')!;
    expect(svc.spec.selector).toEqual(deploy.spec.template.metadata.labels);
    expect(container.ports.map((p: Obj) => p.name)).toContain(svc.spec.ports[0].targetPort);
    const hpa = find('HorizontalPodAutoscaler', 'faceopt')!;
    expect(hpa.spec.scaleTargetRef).toEqual({ apiVersion: 'apps/v1', kind: 'Deployment', name: 'faceopt' });
    expect(hpa.spec.minReplicas).toBeLessThanOrEqual(hpa.spec.maxReplicas);
    expect(find('PodDisruptionBudget', 'faceopt')!.spec.selector.matchLabels).toEqual(deploy.spec.template.metadata.labels);
  });
});
