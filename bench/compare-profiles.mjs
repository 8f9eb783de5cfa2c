// Per-request self time of two V8 .cpuprofiles side by side (e.g. Fulcrum vs the bare undici proxy, same load),
// functions sorted by the largest difference. Usage: node bench/compare-profiles.mjs A.cpuprofile REQUESTS_A B.cpuprofile REQUESTS_B
// (REQUESTS: the "N requests in" figure wrk printed; TOP=N rows, default 40). Note: V8 samples wall time, so a
// process preempted inside a syscall shows it as self time of that syscall (writev, writeLatin1String).
import { readFileSync } from 'node:fs';
function load(file, reqs) {
  const p = JSON.parse(readFileSync(file, 'utf8'));
  const nodes = new Map(p.nodes.map((n) => [n.id, n]));
  const byFn = new Map(); let busy = 0;
  p.samples.forEach((id, i) => { const d = p.timeDeltas[i] || 0; const cf = nodes.get(id).callFrame; if (cf.functionName === '(idle)') return; busy += d;
    const k = `${cf.functionName || '(anon)'} ${(cf.url.split(/node_modules\/|main\/|wt-[a-z0-9]+\//).pop() || '').replace(/^bench\/dist-(base|snap)\//, 'dist/')}:${cf.lineNumber + 1}`; byFn.set(k, (byFn.get(k) || 0) + d); });
  for (const [k, v] of byFn) byFn.set(k, v / reqs);
  return { busy: busy / reqs, byFn };
}
const [fa, ra, fb, rb] = process.argv.slice(2);
const A = load(fa, +ra), B = load(fb, +rb);
console.log(`busy µs/req: A ${A.busy.toFixed(1)}  B ${B.busy.toFixed(1)}`);
const keys = new Set([...A.byFn.keys(), ...B.byFn.keys()]);
const rows = [...keys].map((k) => [k, A.byFn.get(k) || 0, B.byFn.get(k) || 0]).sort((x, y) => Math.abs(y[1] - y[2]) - Math.abs(x[1] - x[2]));
for (const [k, a, b] of rows.slice(0, +process.env.TOP || 40)) console.log(`${a.toFixed(2).padStart(6)} ${b.toFixed(2).padStart(6)} ${(a - b).toFixed(2).padStart(6)}  ${k}`);
