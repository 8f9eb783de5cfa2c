#!/usr/bin/env node
/**
 * `npm run build`: dist/ from src/, in three steps.
 *
 *   1. tsc -p tsconfig.build.json                 the server: CommonJS, node types
 *   2. tsc -p src/admin/dashboard/tsconfig.json   the dashboard's browser code: one
 *                                                 ES module, DOM types, to
 *                                                 dist/admin/dashboard/dashboard.js
 *   3. copy src/admin/dashboard/index.html and dashboard.css next to it, and
 *      uPlot's script and stylesheet (node_modules/uplot/dist/), the charts' library
 *   4. delete what tsc wrote before for a source that is gone: a stale
 *      dist/cluster.js would shadow dist/cluster/index.js for require('./cluster')
 *
 * At startup dist/admin/dashboard.js puts the three files together into the
 * one page the admin port serves. No bundler: the browser code is one file
 * that imports types only, so tsc's output is the script as it is inlined.
 *
 * The Dockerfile runs this script too (through npm run build), and the test
 * suite (tests/cli/build.ts) runs it directly, so there is one list of steps.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const TSC = createRequire(import.meta.url).resolve('typescript/bin/tsc');
const DASHBOARD_SRC = path.join(ROOT, 'src', 'admin', 'dashboard');
const DASHBOARD_OUT = path.join(ROOT, 'dist', 'admin', 'dashboard');

function tsc(project) {
  try {
    execFileSync(process.execPath, [TSC, '-p', project], { cwd: ROOT, stdio: 'inherit' });
  } catch {
    // tsc has printed its diagnostics.
    console.error(`build: tsc -p ${project} failed`);
    process.exit(1);
  }
}

tsc('tsconfig.build.json');
tsc(path.relative(ROOT, path.join(DASHBOARD_SRC, 'tsconfig.json')));
for (const file of ['index.html', 'dashboard.css']) {
  fs.copyFileSync(path.join(DASHBOARD_SRC, file), path.join(DASHBOARD_OUT, file));
}
const UPLOT = path.dirname(createRequire(import.meta.url).resolve('uplot/dist/uPlot.iife.min.js'));
/** Copied, not compiled: pruneStale must not take them for the output of a deleted source. */
const VENDOR = new Set(['uPlot.iife.min.js', 'uPlot.min.css'].map((file) => path.join(DASHBOARD_OUT, file)));
for (const file of VENDOR) fs.copyFileSync(path.join(UPLOT, path.basename(file)), file);

/** Removes X.js, X.js.map and X.d.ts under dist/ when src/ has no X.ts any more (moved or deleted). */
function pruneStale(dir) {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      pruneStale(p);
      if (fs.readdirSync(p).length === 0) fs.rmdirSync(p);
      continue;
    }
    if (VENDOR.has(p)) continue;
    const stem = entry.name.match(/^(.*?)(\.js|\.js\.map|\.d\.ts|\.d\.ts\.map)$/)?.[1];
    if (stem === undefined) continue;
    const source = path.join(ROOT, 'src', path.relative(DIST, dir), `${stem}.ts`);
    if (!fs.existsSync(source)) fs.rmSync(p);
  }
}

const DIST = path.join(ROOT, 'dist');
pruneStale(DIST);
