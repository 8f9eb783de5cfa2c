// Summarise a V8 .cpuprofile: self time by function (name + url:line), top N;
// self time by category (fulcrum dist / undici / pino / node:http / other node / GC / idle);
// and total (inclusive) time per Fulcrum dist/*.js file.
// Usage: node analyze-cpuprofile.mjs FILE.cpuprofile [TOP=25]
import { readFileSync } from 'node:fs';

const file = process.argv[2];
const TOP = Number(process.argv[3] || 25);
const prof = JSON.parse(readFileSync(file, 'utf8'));
const nodes = new Map(prof.nodes.map((n) => [n.id, n]));
const parent = new Map();
for (const n of prof.nodes) for (const c of n.children || []) parent.set(c, n.id);

// self time per node id from samples x timeDeltas
const selfUs = new Map();
for (let i = 0; i < prof.samples.length; i++) {
  const id = prof.samples[i];
  const dt = prof.timeDeltas[i] ?? 0;
  selfUs.set(id, (selfUs.get(id) || 0) + Math.max(0, dt));
}
const total = [...selfUs.values()].reduce((a, b) => a + b, 0);

function short(url) {
  if (!url) return '';
  const m = url.match(/\/(?:main|wt-hot)\/(?:bench\/dist-snap|dist)\/(.*)$/);
  if (m) return `dist/${m[1]}`;
  const nm = url.match(/node_modules\/(.*)$/);
  if (nm) return nm[1];
  return url.replace(/^file:\/\//, '');
}
function category(cf) {
  const url = cf.url || '';
  const name = cf.functionName;
  if (name === '(idle)') return 'idle';
  if (name === '(garbage collector)') return 'GC';
  if (name === '(program)') return '(program: native/V8 outside JS)';
  if (/\/(bench\/dist-snap|dist)\//.test(url) && !url.includes('node_modules')) return 'fulcrum dist/*';
  if (url.includes('node_modules/undici')) return 'undici';
  if (url.includes('node_modules/pino') || url.includes('node_modules/sonic-boom') || url.includes('node_modules/fast-redact') || url.includes('node_modules/quick-format') || url.includes('safe-stable-stringify') || url.includes('atomic-sleep') || url.includes('on-exit-leak-free') || url.includes('thread-stream')) return 'pino (+sonic-boom etc.)';
  if (/node:(_http|http)/.test(url)) return 'node:http';
  if (/node:(net|stream|internal\/streams|internal\/stream_base|_stream)/.test(url)) return 'node:net/streams';
  if (url.startsWith('node:')) return 'other node:*';
  if (url === '') return `native/builtin (${name || 'anonymous'})`.startsWith('native') ? 'native/builtin (no url)' : 'other';
  return 'other JS';
}

const byFn = new Map();
const byCat = new Map();
for (const [id, us] of selfUs) {
  const cf = nodes.get(id).callFrame;
  const key = `${cf.functionName || '(anonymous)'}  ${short(cf.url)}${cf.url ? ':' + (cf.lineNumber + 1) : ''}`;
  byFn.set(key, (byFn.get(key) || 0) + us);
  const c = category(cf);
  byCat.set(c, (byCat.get(c) || 0) + us);
}
const idle = byCat.get('idle') || 0;
const busy = total - idle;
const pct = (us, base) => ((100 * us) / base).toFixed(1).padStart(5);

console.log(`profile ${file}: ${(total / 1e6).toFixed(2)} s sampled, ${(busy / 1e6).toFixed(2)} s non-idle; % below are of non-idle time`);
console.log(`\n== self time by category ==`);
for (const [c, us] of [...byCat].filter(([c]) => c !== 'idle').sort((a, b) => b[1] - a[1])) console.log(`${pct(us, busy)}%  ${c}`);

console.log(`\n== top ${TOP} functions by self time ==`);
for (const [k, us] of [...byFn].filter(([k]) => !k.startsWith('(idle)')).sort((a, b) => b[1] - a[1]).slice(0, TOP)) console.log(`${pct(us, busy)}%  ${k}`);

// inclusive time per Fulcrum dist file: a sample counts once per file that appears on its stack
const incl = new Map();
const inclFn = new Map();
for (const [id, us] of selfUs) {
  const files = new Set();
  const fns = new Set();
  for (let cur = id; cur !== undefined; cur = parent.get(cur)) {
    const cf = nodes.get(cur).callFrame;
    const s = short(cf.url);
    if (s.startsWith('dist/')) { files.add(s); fns.add(`${cf.functionName || '(anonymous)'}  ${s}:${cf.lineNumber + 1}`); }
  }
  for (const f of files) incl.set(f, (incl.get(f) || 0) + us);
  for (const f of fns) inclFn.set(f, (inclFn.get(f) || 0) + us);
}
console.log(`\n== total (inclusive) time by Fulcrum file ==`);
for (const [f, us] of [...incl].sort((a, b) => b[1] - a[1])) console.log(`${pct(us, busy)}%  ${f}`);
console.log(`\n== total (inclusive) time by Fulcrum function, top 15 ==`);
for (const [f, us] of [...inclFn].sort((a, b) => b[1] - a[1]).slice(0, 15)) console.log(`${pct(us, busy)}%  ${f}`);
