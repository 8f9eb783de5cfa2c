/**
 * The user-facing files stay true to the code: every example config validates,
 * the Grafana dashboard and the README only name metrics that exist, the
 * Prometheus example scrapes the admin's /metrics, the Dockerfile builds in
 * stages and runs as a non-root user on /etc/fulcrum/fulcrum.yaml, the README
 * opens with the two commands CI runs, and the deploy examples (Kubernetes,
 * Docker Compose, keepalived) agree with the Fulcrum configs they carry.
 */
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { execFile } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import { parseConfig, STRATEGY_NAMES } from '../../src/config';
import type { Config } from '../../src/config/types';
import { Metrics } from '../../src/metrics';

const ROOT = path.resolve(__dirname, '..', '..');
const EXAMPLES = path.join(ROOT, 'examples');
const ENV = { FULCRUM_ADMIN_TOKEN: 'example-token' };

function read(...parts: string[]): string {
  return fs.readFileSync(path.join(ROOT, ...parts), 'utf8');
}

/** Every fulcrum_* metric the code registers (no default process metrics). */
function registeredMetrics(): Set<string> {
  const metrics = new Metrics(() => [], { defaultMetrics: false });
  // Registered once a config has a cluster block (SPEC section 10).
  metrics.registerCluster(() => undefined);
  return new Set(metrics.registry.getMetricsAsArray().map((m) => m.name).filter((n) => n.startsWith('fulcrum_')));
}

/** `fulcrum_x_bucket` names the histogram `fulcrum_x`; a name is known if it or its base is registered. */
function unknownMetricNames(text: string, known: ReadonlySet<string>): string[] {
  const names = new Set(text.match(/\bfulcrum_[a-z_]+/g) ?? []);
  return [...names].filter((n) => !known.has(n) && !known.has(n.replace(/_(bucket|count|sum)$/, '')));
}

function metricNames(text: string): Set<string> {
  return new Set((text.match(/\bfulcrum_[a-z_]+/g) ?? []).map((n) => n.replace(/_(bucket|count|sum)$/, '')));
}

/** Every *.yaml under examples/, as paths relative to it. */
function exampleYamlFiles(dir = EXAMPLES): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) return exampleYamlFiles(full);
    return e.name.endsWith('.yaml') ? [path.relative(EXAMPLES, full)] : [];
  }).sort();
}

/** A Kubernetes manifest file: every document in it names an apiVersion and a kind. */
function isKubernetesManifest(text: string): boolean {
  const docs = parseAllDocuments(text);
  if (!Array.isArray(docs) || docs.length === 0) return false;
  return docs.every((d) => {
    const v = d.toJS() as unknown;
    return typeof v === 'object' && v !== null && 'apiVersion' in v && 'kind' in v;
  });
}

describe('example configs', () => {
  // Fulcrum configs anywhere under examples/ (Kubernetes manifests are tested below).
  const files = exampleYamlFiles().filter((f) => !isKubernetesManifest(fs.readFileSync(path.join(EXAMPLES, f), 'utf8')));

  it('include the quickstart, the production example and the Compose config', () => {
    expect(files).toEqual(expect.arrayContaining(['quickstart.yaml', 'production.yaml', 'compose-fulcrum.yaml']));
  });

  it.each(files)('%s validates', (file) => {
    const full = path.join(EXAMPLES, file);
    expect(() => parseConfig(fs.readFileSync(full, 'utf8'), full, ENV)).not.toThrow();
  });

  it('production.yaml takes the admin token from FULCRUM_ADMIN_TOKEN and shows the features it comments on', () => {
    const full = path.join(EXAMPLES, 'production.yaml');
    const config = parseConfig(fs.readFileSync(full, 'utf8'), full, ENV);
    expect(config.admin).toMatchObject({ host: '127.0.0.1', port: 9901, token: 'example-token' });
    expect(config.listeners.length).toBeGreaterThanOrEqual(2);
    const routes = config.listeners.flatMap((l) => l.routes);
    expect(routes.some((r) => r.match.hosts !== undefined && r.match.pathPrefix !== undefined)).toBe(true);
    const strategies = config.pools.map((p) => p.strategy);
    expect(strategies).toEqual(expect.arrayContaining(['least-connections', 'consistent-hash']));
    for (const pool of config.pools) {
      expect(pool.healthCheck).toBeDefined();
      if (pool.strategy === 'consistent-hash') expect(pool.hashOn).toBeDefined();
    }
    expect(config.pools.some((p) => p.outlierDetection !== undefined)).toBe(true);
    expect(config.pools.some((p) => p.backends.some((b) => b.backup))).toBe(true);
    expect(config.pools.some((p) => p.retries.attempts > 0)).toBe(true);
  });

  it('production.yaml refuses to load without FULCRUM_ADMIN_TOKEN', () => {
    const full = path.join(EXAMPLES, 'production.yaml');
    expect(() => parseConfig(fs.readFileSync(full, 'utf8'), full, {})).toThrow(/FULCRUM_ADMIN_TOKEN is not set/);
  });
});

describe('examples/grafana-dashboard.json', () => {
  const dashboard = JSON.parse(read('examples', 'grafana-dashboard.json')) as {
    schemaVersion: number;
    __inputs: { name: string; type: string; pluginId: string }[];
    panels: { id: number; type: string; title: string; datasource?: { uid: string }; targets?: { expr: string }[] }[];
  };
  const panels = dashboard.panels.filter((p) => p.type !== 'row');
  const exprs = panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr));
  const known = registeredMetrics();

  it('is an importable dashboard with a Prometheus datasource input', () => {
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(36);
    expect(dashboard.__inputs).toContainEqual(expect.objectContaining({ name: 'DS_PROMETHEUS', type: 'datasource', pluginId: 'prometheus' }));
    for (const p of panels) expect(p.datasource?.uid).toBe('${DS_PROMETHEUS}');
    const ids = dashboard.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('only queries metrics that src/metrics registers', () => {
    expect(exprs.length).toBeGreaterThan(0);
    expect(unknownMetricNames(exprs.join('\n'), known)).toEqual([]);
  });

  it('charts every fulcrum metric', () => {
    const used = metricNames(exprs.join('\n'));
    expect([...known].filter((n) => !used.has(n))).toEqual([]);
  });

  it('derives latency quantiles from the duration histogram', () => {
    for (const q of ['0.5', '0.9', '0.99']) {
      expect(exprs.some((e) => e.includes(`histogram_quantile(${q},`) && e.includes('fulcrum_request_duration_seconds_bucket'))).toBe(true);
    }
  });
});

describe('examples/prometheus.yml', () => {
  const prom = parseYaml(read('examples', 'prometheus.yml')) as {
    scrape_configs: {
      job_name: string;
      metrics_path?: string;
      authorization?: { type?: string; credentials_file?: string };
      bearer_token_file?: string;
      static_configs: { targets: string[] }[];
    }[];
  };

  it('scrapes the admin /metrics on 127.0.0.1:9901 with a bearer token', () => {
    const job = prom.scrape_configs.find((j) => j.static_configs.some((s) => s.targets.includes('127.0.0.1:9901')));
    expect(job).toBeDefined();
    expect(job!.metrics_path).toBe('/metrics');
    expect(job!.authorization?.credentials_file ?? job!.bearer_token_file).toEqual(expect.any(String));
  });
});

describe('Dockerfile', () => {
  /** Instructions with continuation lines joined and comments dropped. */
  const instructions = read('Dockerfile')
    .replace(/\\\r?\n/g, ' ')
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => {
      const m = /^(\S+)\s*(.*)$/.exec(l)!;
      return { op: m[1].toUpperCase(), args: m[2] };
    });
  const last = (op: string) => instructions.filter((i) => i.op === op).pop();

  it('builds in stages', () => {
    expect(instructions.filter((i) => i.op === 'FROM').length).toBeGreaterThanOrEqual(2);
    expect(instructions.some((i) => i.op === 'COPY' && i.args.startsWith('--from='))).toBe(true);
  });

  it('runs as a non-root user', () => {
    const user = last('USER');
    expect(user).toBeDefined();
    expect(user!.args.split(':')[0]).not.toMatch(/^(root|0)$/);
    // The USER of the final stage: after its FROM.
    const lastFrom = instructions.map((i) => i.op).lastIndexOf('FROM');
    expect(instructions.indexOf(user!)).toBeGreaterThan(lastFrom);
  });

  it('starts `node dist/cli.js --config /etc/fulcrum/fulcrum.yaml` in exec form', () => {
    const entrypoint = JSON.parse(last('ENTRYPOINT')!.args) as string[];
    const cmd = JSON.parse(last('CMD')!.args) as string[];
    expect(entrypoint).toEqual(['node', 'dist/cli.js']);
    expect([...entrypoint, ...cmd].join(' ')).toContain('--config /etc/fulcrum/fulcrum.yaml');
  });

  it('gives the build stage everything npm run build reads (the dashboard files are in src/)', () => {
    const copied = instructions.filter((i) => i.op === 'COPY' && !i.args.startsWith('--from=')).flatMap((i) => i.args.split(/\s+/).slice(0, -1));
    const pkg = JSON.parse(read('package.json')) as { scripts: { build: string } };
    expect(pkg.scripts.build).toBe('node scripts/build.mjs');
    expect(copied).toEqual(expect.arrayContaining(['package.json', 'tsconfig.json', 'tsconfig.build.json', 'scripts/build.mjs', 'src']));
    expect(instructions.some((i) => i.op === 'RUN' && i.args === 'npm run build')).toBe(true);
  });

  it('exposes the proxy and admin ports', () => {
    expect(last('EXPOSE')!.args.split(/\s+/)).toEqual(expect.arrayContaining(['8080', '9901']));
  });

  it('has a .dockerignore that keeps node_modules, dist and .git out of the context', () => {
    const ignored = read('.dockerignore').split(/\r?\n/).map((l) => l.trim());
    expect(ignored).toEqual(expect.arrayContaining(['node_modules', 'dist', '.git']));
  });
});

describe('README.md', () => {
  const readme = read('README.md');

  it('gives the two commands in its first 40 lines', () => {
    const head = readme.split(/\r?\n/).slice(0, 40).join('\n');
    expect(head).toContain('npm ci && npm start');
    expect(head).toContain('npm test');
  });

  it('only names metrics that src/metrics registers', () => {
    expect(unknownMetricNames(readme, registeredMetrics())).toEqual([]);
  });

  it('names every strategy', () => {
    for (const name of STRATEGY_NAMES) expect(readme).toContain(`\`${name}\``);
  });

  it('has full config examples that validate', () => {
    const blocks = [...readme.matchAll(/```yaml\r?\n([\s\S]*?)```/g)].map((m) => m[1]);
    const full = blocks.filter((b) => /^listeners:/m.test(b) && /^pools:/m.test(b));
    expect(full.length).toBeGreaterThan(0);
    for (const text of full) {
      expect(() => parseConfig(text, path.join(ROOT, 'README.md'), ENV)).not.toThrow();
    }
  });

  it('documents every listener limit with the default the code applies', () => {
    const minimal = parseConfig('listeners: { l: { listen: 127.0.0.1:8080, routes: [{ pool: p }] } }\npools: { p: { backends: [{ url: http://127.0.0.1:9000 }] } }\n', path.join(ROOT, 'min.yaml'), {});
    const limits = minimal.listeners[0]!.limits;
    const seconds = (ms: number) => `${ms / 1000}s`;
    const rows: Record<string, string> = {
      maxBodySize: limits.maxBodySize === 0 ? '`0` (unlimited)' : String(limits.maxBodySize),
      headersTimeout: `\`${seconds(limits.headersTimeoutMs)}\``,
      bodyTimeout: `\`${seconds(limits.bodyTimeoutMs)}\``,
      maxConnections: limits.maxConnections === 0 ? '`0` (unlimited)' : String(limits.maxConnections),
      rateLimit: limits.rateLimit === undefined ? 'none' : 'on',
    };
    for (const [key, value] of Object.entries(rows)) {
      expect(readme).toContain(`| \`limits.${key}\` | ${value} |`);
    }
  });

  it('no longer calls built features "not yet"', () => {
    const notYet = readme.slice(readme.indexOf('## Not yet'));
    expect(notYet).not.toMatch(/^- `(workers|discovery\.dns|limits\.maxBodySize|limits\.rateLimit)`:/m);
    for (const heading of ['## Scaling out', '#### workers', '#### discovery', '#### limits']) expect(readme).toContain(heading);
  });

  it('points at files that exist', () => {
    for (const f of [
      'examples/quickstart.yaml', 'examples/production.yaml', 'examples/prometheus.yml', 'examples/grafana-dashboard.json',
      'examples/docker-compose.yml', 'examples/compose-fulcrum.yaml', 'examples/kubernetes/README.md', 'examples/keepalived/README.md',
    ]) {
      expect(readme).toContain(f);
      expect(fs.existsSync(path.join(ROOT, f))).toBe(true);
    }
  });
});

// ---------------------------------------------------------------------------
// Deploy examples: Kubernetes, Docker Compose, keepalived.

interface Probe {
  httpGet?: { path: string; port: number | string; httpHeaders?: { name: string; value: string }[] };
  exec?: { command: string[] };
}

interface Container {
  name: string;
  image: string;
  args?: string[];
  command?: string[];
  env?: { name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } }[];
  ports?: { name?: string; containerPort: number }[];
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  lifecycle?: { preStop?: { exec?: { command: string[] }; sleep?: { seconds: number }; httpGet?: unknown } };
  securityContext?: { runAsNonRoot?: boolean; runAsUser?: number; readOnlyRootFilesystem?: boolean };
  resources?: { requests?: object; limits?: object };
  volumeMounts?: { name: string; mountPath: string; subPath?: string }[];
}

interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
  data?: Record<string, string>;
  stringData?: Record<string, string>;
  spec?: {
    replicas?: number;
    selector?: { matchLabels?: Record<string, string> } | Record<string, string>;
    clusterIP?: string;
    ports?: { name?: string; port: number; targetPort?: number | string }[];
    template?: {
      metadata: { labels: Record<string, string> };
      spec: {
        terminationGracePeriodSeconds?: number;
        securityContext?: { runAsNonRoot?: boolean; runAsUser?: number };
        containers: Container[];
        volumes?: { name: string; configMap?: { name: string; items?: { key: string; path: string }[] } }[];
      };
    };
  };
}

const K8S = path.join(EXAMPLES, 'kubernetes');

describe('examples/kubernetes', () => {
  const files = fs.readdirSync(K8S).filter((f) => f.endsWith('.yaml')).sort();
  const all: { file: string; m: Manifest }[] = files.flatMap((file) => {
    const docs = parseAllDocuments(fs.readFileSync(path.join(K8S, file), 'utf8'));
    if (!Array.isArray(docs)) return [];
    return docs.map((d) => {
      if (d.errors.length > 0) throw new Error(`${file}: ${d.errors.map((e) => e.message).join('; ')}`);
      return { file, m: d.toJS() as Manifest };
    });
  });
  const one = (kind: string, pick: (m: Manifest) => boolean = () => true): Manifest => {
    const found = all.map((x) => x.m).filter((m) => m.kind === kind && pick(m));
    expect(found).toHaveLength(1);
    return found[0]!;
  };

  const configMap = () => one('ConfigMap');
  const deployment = () => one('Deployment');
  const container = () => deployment().spec!.template!.spec.containers[0]!;
  const headless = () => one('Service', (m) => m.spec?.clusterIP === 'None');
  const frontService = () => one('Service', (m) => m.spec?.clusterIP !== 'None');
  const configFile = '/etc/fulcrum/fulcrum.yaml';
  const fulcrumConfig = (): Config => {
    const text = configMap().data?.[path.basename(configFile)];
    expect(typeof text).toBe('string');
    return parseConfig(text!, path.join(K8S, 'configmap.yaml'), ENV);
  };
  /** A probe's or Service's port, by number or by the container port's name. */
  const portNumber = (port: number | string | undefined): number | undefined => {
    if (typeof port === 'number') return port;
    return container().ports?.find((p) => p.name === port)?.containerPort;
  };

  it('has the manifests the README lists', () => {
    expect(files).toEqual(expect.arrayContaining(['configmap.yaml', 'deployment.yaml', 'service.yaml', 'backend-headless-service.yaml', 'secret.yaml']));
    const readme = fs.readFileSync(path.join(K8S, 'README.md'), 'utf8');
    for (const f of files) expect(readme).toContain(f);
  });

  it('every manifest parses and has apiVersion, kind and metadata.name, all in one namespace', () => {
    expect(all.length).toBeGreaterThanOrEqual(files.length);
    for (const { file, m } of all) {
      expect({ file, apiVersion: typeof m.apiVersion, kind: typeof m.kind, name: typeof m.metadata?.name }).toEqual({ file, apiVersion: 'string', kind: 'string', name: 'string' });
    }
    expect(new Set(all.map(({ m }) => m.metadata.namespace ?? 'default'))).toEqual(new Set(['default']));
  });

  it("the ConfigMap's fulcrum.yaml validates, with the admin token from FULCRUM_ADMIN_TOKEN on a non-loopback admin", () => {
    const config = fulcrumConfig();
    expect(config.admin).toMatchObject({ host: '0.0.0.0', port: 9901, token: 'example-token' });
    expect(config.listeners).toEqual([expect.objectContaining({ host: '0.0.0.0', port: 8080 })]);
    const text = configMap().data!['fulcrum.yaml']!;
    expect(() => parseConfig(text, path.join(K8S, 'configmap.yaml'), {})).toThrow(/FULCRUM_ADMIN_TOKEN is not set/);
  });

  it('the config discovers its backends through DNS, with health checks', () => {
    const pools = fulcrumConfig().pools.filter((p) => p.discovery?.dns !== undefined);
    expect(pools.length).toBeGreaterThanOrEqual(1);
    for (const p of pools) {
      expect(p.discovery!.dns).toMatchObject({ name: 'web-backend.default.svc.cluster.local', port: 8080 });
      expect(p.healthCheck).toBeDefined();
    }
  });

  it('the headless Service is the name the config resolves, on the port it uses', () => {
    const svc = headless();
    const dns = fulcrumConfig().pools.find((p) => p.discovery?.dns !== undefined)!.discovery!.dns!;
    expect(`${svc.metadata.name}.${svc.metadata.namespace ?? 'default'}.svc.cluster.local`).toBe(dns.name);
    // A headless Service does no port mapping: DNS gives pod IPs, the config gives the pods' port.
    expect(svc.spec!.ports!.map((p) => p.targetPort ?? p.port)).toContain(dns.port);
    expect(svc.spec!.ports!.map((p) => p.port)).toContain(dns.port);
    expect(svc.spec!.selector).toEqual({ app: 'web-backend' });
  });

  it('the Deployment runs 2+ replicas of fulcrum:latest on the ConfigMap mounted where --config points', () => {
    const d = deployment();
    expect(d.spec!.replicas).toBeGreaterThanOrEqual(2);
    const c = container();
    expect(c.image).toBe('fulcrum:latest');
    expect([...(c.command ?? []), ...(c.args ?? [])].join(' ')).toContain(`--config ${configFile}`);
    const mount = c.volumeMounts!.find((v) => v.mountPath === path.dirname(configFile));
    expect(mount).toBeDefined();
    expect(mount!.subPath).toBeUndefined(); // a subPath mount would not follow ConfigMap updates
    const volume = d.spec!.template!.spec.volumes!.find((v) => v.name === mount!.name);
    expect(volume?.configMap?.name).toBe(configMap().metadata.name);
    const items = volume!.configMap!.items;
    if (items !== undefined) expect(items).toContainEqual({ key: 'fulcrum.yaml', path: path.basename(configFile) });
    else expect(Object.keys(configMap().data!)).toContain(path.basename(configFile));
  });

  it('takes FULCRUM_ADMIN_TOKEN from the Secret', () => {
    const env = container().env!.find((e) => e.name === 'FULCRUM_ADMIN_TOKEN');
    const ref = env?.valueFrom?.secretKeyRef;
    expect(ref).toBeDefined();
    const secret = one('Secret');
    expect(ref!.name).toBe(secret.metadata.name);
    expect(Object.keys({ ...secret.data, ...secret.stringData })).toContain(ref!.key);
  });

  it('probes readiness on /readyz with the token and liveness on /healthz, on the admin port of the config', () => {
    const admin = fulcrumConfig().admin;
    const c = container();
    expect(c.ports!.map((p) => p.containerPort)).toEqual(expect.arrayContaining([8080, admin.port]));
    const ready = c.readinessProbe!;
    if (ready.httpGet !== undefined) {
      expect(ready.httpGet.path).toBe('/readyz');
      expect(portNumber(ready.httpGet.port)).toBe(admin.port);
      expect(ready.httpGet.httpHeaders?.some((h) => h.name.toLowerCase() === 'authorization' && h.value.startsWith('Bearer '))).toBe(true);
    } else {
      const script = ready.exec!.command.join(' ');
      expect(script).toMatch(new RegExp(`http://(127\\.0\\.0\\.1|localhost):${admin.port}/readyz`));
      expect(script).toContain('FULCRUM_ADMIN_TOKEN');
      expect(script.toLowerCase()).toContain('authorization');
    }
    const live = c.livenessProbe!.httpGet!;
    expect(live.path).toBe('/healthz');
    expect(portNumber(live.port)).toBe(admin.port);
  });

  it('the exec readiness probe passes on 200 with the token, and fails on 503, 401 or no answer', async () => {
    const ready = container().readinessProbe!;
    if (ready.exec === undefined) return;
    const admin = fulcrumConfig().admin;
    let status = 200;
    const seen: (string | undefined)[] = [];
    const server = http.createServer((req, res) => {
      seen.push(req.headers.authorization);
      const ok = req.url === '/readyz' && req.headers.authorization === 'Bearer example-token';
      res.writeHead(ok ? status : 401).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    const [cmd, ...args] = ready.exec.command.map((a) => a.replace(`:${admin.port}/`, `:${port}/`));
    const run = (token: string) => new Promise<number>((resolve) => {
      execFile(cmd!, args, { env: { ...process.env, FULCRUM_ADMIN_TOKEN: token }, timeout: 10_000 }, (err) => {
        resolve(err === null ? 0 : typeof err.code === 'number' ? err.code : -1);
      });
    });
    try {
      expect(cmd).toBe('node');
      expect(await run('example-token')).toBe(0);
      expect(seen.pop()).toBe('Bearer example-token');
      expect(await run('wrong')).not.toBe(0);
      status = 503;
      expect(await run('example-token')).not.toBe(0);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
    expect(await run('example-token')).not.toBe(0); // nothing listening
  }, 30_000);

  it('drains gracefully: a preStop pause, then more grace than preStop plus shutdownTimeout', () => {
    const preStop = container().lifecycle?.preStop;
    expect(preStop).toBeDefined();
    const sleep = preStop!.sleep?.seconds
      ?? Number(/\bsleep\s+(\d+)/.exec(preStop!.exec?.command.join(' ') ?? '')?.[1] ?? 0);
    expect(sleep).toBeGreaterThan(0);
    const grace = deployment().spec!.template!.spec.terminationGracePeriodSeconds!;
    expect(grace).toBeGreaterThan(sleep + fulcrumConfig().shutdownTimeoutMs / 1000);
  });

  it('runs as a non-root user id on a read-only root filesystem, with resources', () => {
    const pod = deployment().spec!.template!.spec.securityContext ?? {};
    const c = container();
    expect(c.securityContext?.runAsNonRoot ?? pod.runAsNonRoot).toBe(true);
    // The image's USER is a name (node); the kubelet can only check runAsNonRoot against a number.
    expect(c.securityContext?.runAsUser ?? pod.runAsUser).toBeGreaterThan(0);
    expect(c.securityContext?.readOnlyRootFilesystem).toBe(true);
    expect(c.resources?.requests).toBeDefined();
    expect(c.resources?.limits).toBeDefined();
  });

  it('the Service sends port 80 to the listener port of the config on the Fulcrum pods', () => {
    const svc = frontService();
    expect(svc.metadata.name).not.toBe(headless().metadata.name);
    const labels = deployment().spec!.template!.metadata.labels;
    for (const [k, v] of Object.entries(svc.spec!.selector as Record<string, string>)) expect(labels[k]).toBe(v);
    const listenerPort = fulcrumConfig().listeners[0]!.port;
    const port = svc.spec!.ports!.find((p) => p.port === 80);
    expect(port).toBeDefined();
    expect(portNumber(port!.targetPort ?? port!.port)).toBe(listenerPort);
  });
});

interface ComposeService {
  image?: string;
  build?: string | { context: string; dockerfile?: string };
  command?: string[] | string;
  environment?: Record<string, string> | string[];
  volumes?: (string | { type?: string; source: string; target: string })[];
  ports?: (string | number)[];
  stop_grace_period?: string;
}

describe('examples/docker-compose.yml', () => {
  const compose = parseYaml(read('examples', 'docker-compose.yml')) as { services: Record<string, ComposeService> };
  const fulcrumName = Object.keys(compose.services).find((n) => compose.services[n]!.build !== undefined)!;
  const fulcrum = compose.services[fulcrumName]!;
  const target = '/etc/fulcrum/fulcrum.yaml';
  const mounted = (fulcrum.volumes ?? []).map((v) => {
    if (typeof v !== 'string') return { source: v.source, target: v.target };
    const [source, dest] = v.split(':');
    return { source: source!, target: dest! };
  }).find((v) => v.target === target);
  const configPath = mounted === undefined ? '' : path.resolve(EXAMPLES, mounted.source);
  const config = () => parseConfig(fs.readFileSync(configPath, 'utf8'), configPath, ENV);

  it('builds Fulcrum from the repository root and mounts the config where the image reads it', () => {
    expect(fulcrumName).toBe('fulcrum');
    const context = typeof fulcrum.build === 'string' ? fulcrum.build : fulcrum.build!.context;
    expect(fs.existsSync(path.join(path.resolve(EXAMPLES, context), 'Dockerfile'))).toBe(true);
    expect(mounted).toBeDefined();
    expect(configPath).toBe(path.join(EXAMPLES, 'compose-fulcrum.yaml'));
    const command = Array.isArray(fulcrum.command) ? fulcrum.command.join(' ') : fulcrum.command;
    if (command !== undefined) expect(command).toContain(`--config ${target}`);
  });

  it('passes FULCRUM_ADMIN_TOKEN, publishes the listener and the admin API on loopback only', () => {
    const env = fulcrum.environment;
    const names = Array.isArray(env) ? env.map((e) => e.split('=')[0]) : Object.keys(env ?? {});
    expect(names).toContain('FULCRUM_ADMIN_TOKEN');
    const c = config();
    const ports = (fulcrum.ports ?? []).map(String);
    expect(ports).toContain(`${c.listeners[0]!.port}:${c.listeners[0]!.port}`);
    expect(ports).toContain(`127.0.0.1:${c.admin.port}:${c.admin.port}`);
    expect(c.admin.host).toBe('0.0.0.0'); // reachable through the published port, so it has a token
    expect(c.admin.token).toBe('example-token');
  });

  it('the config balances over three backends named by their Compose services', () => {
    const backends = config().pools.flatMap((p) => p.backends);
    expect(backends.length).toBeGreaterThanOrEqual(3);
    for (const b of backends) expect(Object.keys(compose.services)).toContain(new URL(b.url).hostname);
  });

  it('gives Fulcrum more time to stop than shutdownTimeout', () => {
    const m = /^(\d+)s$/.exec(fulcrum.stop_grace_period ?? '');
    expect(m).not.toBeNull();
    expect(Number(m![1])).toBeGreaterThan(config().shutdownTimeoutMs / 1000);
  });
});

describe('examples/keepalived', () => {
  const master = read('examples', 'keepalived', 'keepalived-master.conf');
  const backup = read('examples', 'keepalived', 'keepalived-backup.conf');
  const vip = (c: string) => /virtual_ipaddress\s*\{\s*\n\s*(\d+\.\d+\.\d+\.\d+)/.exec(c)?.[1];
  const priority = (c: string) => Number(/^\s*priority\s+(\d+)/m.exec(c)?.[1]);
  const weight = (c: string) => Number(/^\s*weight\s+(-?\d+)/m.exec(c)?.[1]);

  it('a MASTER and a BACKUP share one virtual IP and router id, each tracking a check script', () => {
    expect(master).toMatch(/state\s+MASTER/);
    expect(backup).toMatch(/state\s+BACKUP/);
    expect(vip(master)).toBeDefined();
    expect(vip(backup)).toBe(vip(master));
    expect(/virtual_router_id\s+(\d+)/.exec(backup)?.[1]).toBe(/virtual_router_id\s+(\d+)/.exec(master)?.[1]);
    for (const c of [master, backup]) expect(c).toMatch(/vrrp_script\s+(\S+)\s*\{[\s\S]*track_script\s*\{\s*\n\s*\1\b/);
  });

  it("the check is Fulcrum's /readyz (SPEC section 10); a failing master drops below the backup, a failing backup never rises above the master", () => {
    for (const c of [master, backup]) expect(c).toContain('curl -fs -o /dev/null -m 1 http://127.0.0.1:9901/readyz');
    expect(priority(master) + weight(master)).toBeLessThan(priority(backup));
    expect(priority(backup) + weight(backup)).toBeLessThan(priority(master) + weight(master));
  });

  it('names a script_user when script security is on (keepalived drops the check otherwise)', () => {
    for (const c of [master, backup]) if (/^\s*enable_script_security/m.test(c)) expect(c).toMatch(/^\s*script_user\s+\S+/m);
  });

  it("Fulcrum's config accepts on every address and keeps its admin API where the check asks; a drain waits for the VIP to move", () => {
    const c = parseConfig(read('examples', 'keepalived', 'fulcrum.yaml'), path.join(EXAMPLES, 'keepalived', 'fulcrum.yaml'), ENV);
    expect(c.listeners[0]!.host).toBe('0.0.0.0');
    expect(c.admin).toMatchObject({ host: '127.0.0.1', port: 9901 });
    expect(c.shutdownDelayMs).toBeGreaterThanOrEqual(3000);
  });
});
