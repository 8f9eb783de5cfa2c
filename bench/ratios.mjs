// Per-run paired ratios of proxy CPU us/req: TARGET / anchor (same run, same conns), medians.
// Usage: node ratios.mjs RESULTS.csv [TARGET=fulcrum]
import { readFileSync } from 'node:fs';
const [file, target = 'fulcrum'] = process.argv.slice(2);
const lines = readFileSync(file, 'utf8').split('\n').filter((l) => l && !l.startsWith('#'));
const head = lines.shift().split(',');
const rows = lines.map((l) => Object.fromEntries(l.split(',').map((v, i) => [head[i], v])));
const med = (a) => { const s = [...a].sort((x, y) => x - y); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
const get = (run, t, c) => rows.find((r) => r.run === run && r.target === t && r.conns === c);
for (const c of [...new Set(rows.map((r) => r.conns))]) {
  const mine = rows.filter((r) => r.target === target && r.conns === c);
  for (const anchor of ['undici', 'http-proxy', 'nginx-w1']) {
    const rs = mine.map((r) => { const a = get(r.run, anchor, c); return a ? +r.proxy_cpu_us_per_req / +a.proxy_cpu_us_per_req : NaN; }).filter(Number.isFinite);
    const ra = mine.map((r) => { const a = get(r.run, anchor, c); return a ? +r.rps / +a.rps : NaN; }).filter(Number.isFinite);
    const mA = med(rows.filter((r) => r.target === anchor && r.conns === c).map((r) => +r.proxy_cpu_us_per_req));
    const mT = med(mine.map((r) => +r.proxy_cpu_us_per_req));
    console.log(`c${c} ${target}/${anchor}: us/req ratio of medians ${(mT / mA).toFixed(2)}; paired per-run median ${med(rs).toFixed(2)} (${Math.min(...rs).toFixed(2)}..${Math.max(...rs).toFixed(2)}); req/s paired ${med(ra).toFixed(2)}`);
  }
}
