/**
 * The user-facing files stay true to the code: every example config validates,
 * the Grafana dashboard and the README only name metrics that exist, the
 * Prometheus example scrapes the admin's /metrics, the Dockerfile builds in
 * stages and runs as a non-root user on /etc/fulcrum/fulcrum.yaml, and the
 * README opens with the two commands CI runs.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { parseConfig, STRATEGY_NAMES } from '../../src/config';
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

describe('example configs', () => {
  const files = fs.readdirSync(EXAMPLES).filter((f) => f.endsWith('.yaml')).sort();

  it('include the quickstart and the production example', () => {
    expect(files).toEqual(expect.arrayContaining(['quickstart.yaml', 'production.yaml']));
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
    expect(routes.some((r) => r.host !== undefined && r.pathPrefix !== undefined)).toBe(true);
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

  it('points at files that exist', () => {
    for (const f of ['examples/quickstart.yaml', 'examples/production.yaml', 'examples/prometheus.yml', 'examples/grafana-dashboard.json']) {
      expect(readme).toContain(f);
      expect(fs.existsSync(path.join(ROOT, f))).toBe(true);
    }
  });
});
