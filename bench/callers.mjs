// Who calls a (native) function: self time of FUNC grouped by its 3 nearest JS callers.
// Usage: node callers.mjs FILE.cpuprofile FUNC
import { readFileSync } from 'node:fs';
const [file, fn] = process.argv.slice(2);
const p = JSON.parse(readFileSync(file, 'utf8'));
const nodes = new Map(p.nodes.map((n) => [n.id, n])); const parent = new Map();
for (const n of p.nodes) for (const c of n.children || []) parent.set(c, n.id);
const self = new Map(); let busy = 0;
p.samples.forEach((id, i) => { const d = p.timeDeltas[i] || 0; self.set(id, (self.get(id) || 0) + d); if (nodes.get(id).callFrame.functionName !== '(idle)') busy += d; });
const out = new Map();
for (const [id, us] of self) {
  if (nodes.get(id).callFrame.functionName !== fn) continue;
  const chain = []; for (let c = parent.get(id); c !== undefined && chain.length < (+process.env.DEPTH || 4); c = parent.get(c)) {
    const cf = nodes.get(c).callFrame; chain.push(`${cf.functionName || '(anon)'}@${(cf.url.split(/node_modules\/|main\/|wt-[a-z0-9]+\//).pop() || '')}:${cf.lineNumber + 1}`); }
  const k = chain.join(' < '); out.set(k, (out.get(k) || 0) + us);
}
for (const [k, us] of [...out].sort((a, b) => b[1] - a[1]).slice(0, 6)) console.log(`${(100 * us / busy).toFixed(1)}%  ${k}`);
