// Inclusive time under every profile node matching a function (FUNC@URL part): which callees the time goes to.
// Usage: node bench/children.mjs FILE.cpuprofile "onComplete@dist/proxy/exchange.js" (DEPTH=N levels, default 1)
import { readFileSync } from 'node:fs';
const [file, match] = process.argv.slice(2);
const p = JSON.parse(readFileSync(file, 'utf8'));
const nodes = new Map(p.nodes.map((n) => [n.id, n]));
const self = new Map(); let busy = 0;
p.samples.forEach((id, i) => { const d = p.timeDeltas[i] || 0; self.set(id, (self.get(id) || 0) + d); if (nodes.get(id).callFrame.functionName !== '(idle)') busy += d; });
const incl = (id) => { const n = nodes.get(id); let t = self.get(id) || 0; for (const c of n.children || []) t += incl(c); return t; };
const name = (n) => `${n.callFrame.functionName || '(anon)'}@${(n.callFrame.url.split(/node_modules\/|main\/|wt-[a-z0-9]+\//).pop() || '')}:${n.callFrame.lineNumber + 1}`;
const agg = new Map(); let tot = 0, selfT = 0;
const depth = +process.env.DEPTH || 1;
function walk(id, d, prefix) { const n = nodes.get(id); for (const c of n.children || []) { const k = prefix + name(nodes.get(c)); if (d === 1) agg.set(k, (agg.get(k) || 0) + incl(c)); else walk(c, d - 1, k + ' > '); } }
for (const n of p.nodes) if (name(n).includes(match)) { tot += incl(n.id); selfT += self.get(n.id) || 0; walk(n.id, depth, ''); }
console.log(`${match}: incl ${(100 * tot / busy).toFixed(1)}% self ${(100 * selfT / busy).toFixed(1)}%`);
for (const [k, us] of [...agg].sort((a, b) => b[1] - a[1]).slice(0, 15)) console.log(`  ${(100 * us / busy).toFixed(1)}%  ${k}`);
