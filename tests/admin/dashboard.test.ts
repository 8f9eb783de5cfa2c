/**
 * The dashboard page as the admin port serves it: src/admin/dashboard/'s three
 * files put together by src/admin/dashboard.ts, from src/ (compiled on the
 * spot, as every in-process test gets it) and from dist/ (as `npm run build`
 * leaves it). What the page does is tests/admin/dashboard.browser.test.ts.
 */
import fs from 'node:fs';
import path from 'node:path';
import { dashboardPage, inline, SCRIPT_TAG, STYLESHEET_TAG } from '../../src/admin/dashboard';
import { ensureBuilt, ROOT } from '../cli/build';

const page = dashboardPage().toString('utf8');
const SRC = path.join(ROOT, 'src', 'admin', 'dashboard');

test('is one document with the stylesheet and the compiled script inline, and nothing to load from anywhere', () => {
  // The only src or href left is the empty data: icon (no favicon request).
  expect([...page.matchAll(/\s(?:src|href)\s*=\s*["']?([^"'\s>]*)/gi)].map((m) => m[1])).toEqual(['data:,']);
  expect(page).not.toContain(STYLESHEET_TAG);
  expect(page).not.toContain(SCRIPT_TAG);
  expect(page).toContain(`<style>\n${fs.readFileSync(path.join(SRC, 'dashboard.css'), 'utf8')}</style>`);
  const scripts = [...page.matchAll(/<script([^>]*)>([\s\S]*?)<\/script>/g)];
  // uPlot first (a classic script defining the global the charts use), then the page's module.
  expect(scripts.map((m) => m[1])).toEqual(['', ' type="module"']);
  const uplot = require.resolve('uplot/dist/uPlot.iife.min.js');
  expect(scripts[0][2]).toBe(`\n${fs.readFileSync(uplot, 'utf8')}`);
  expect(page).toContain(`<style>\n${fs.readFileSync(path.join(path.dirname(uplot), 'uPlot.min.css'), 'utf8')}</style>`);
  const js = scripts[1][2];
  // Compiled: types gone, no import left, the code itself there.
  expect(js).not.toMatch(/^\s*import\b/m);
  expect(js).not.toMatch(/\binterface\s+Row\b|: HTMLTableRowElement\b/);
  expect(js).toContain("const TOKEN_KEY = 'fulcrum.adminToken';");
  expect(js.trimEnd()).toMatch(/void refresh\(\);\nexport \{\};$/);
  // The markup is index.html's, down to the test ids.
  for (const id of ['updated', 'error-banner', 'action-error', 'token-form', 'token-message', 'token-input', 'token-submit', 'forget-token', 'listeners', 'pools']) {
    expect(page).toContain(`data-testid="${id}"`);
  }
});

test('is assembled once per process', () => {
  expect(dashboardPage()).toBe(dashboardPage());
});

describe('inline', () => {
  const html = `<head>${STYLESHEET_TAG}</head><body>${SCRIPT_TAG}</body>`;

  test('puts the CSS and the JS in place of their tags, as written ($& and the like too)', () => {
    expect(inline(html, 'a { content: "$&"; }\n', "f('$1');\n")).toBe(
      '<head><style>\na { content: "$&"; }\n</style></head><body><script type="module">\nf(\'$1\');\n</script></body>',
    );
  });

  test('refuses text that would end the element early, an import, or a tag missing or twice', () => {
    expect(() => inline(html, 'a{}</STYLE>', '')).toThrow('dashboard.css must not contain');
    expect(() => inline(html, '', "s = '</script>';")).toThrow('dashboard.js must not contain');
    expect(() => inline(html, '', 'x = 1 <!--y;')).toThrow('dashboard.js must not contain');
    expect(() => inline(html, '', "import { x } from './x';")).toThrow('must not import');
    expect(() => inline(`<head></head><body>${SCRIPT_TAG}</body>`, '', '')).toThrow(`exactly once`);
    expect(() => inline(html + SCRIPT_TAG, '', '')).toThrow(`exactly once`);
  });
});

describe('npm run build', () => {
  beforeAll(ensureBuilt, 60_000);

  test('leaves the page in dist/, the same as the one assembled from src/', () => {
    const dist = path.join(ROOT, 'dist', 'admin');
    for (const f of ['index.html', 'dashboard.css', 'dashboard.js']) expect(fs.existsSync(path.join(dist, 'dashboard', f))).toBe(true);
    // dist/admin/dashboard.js reads the built files next to it (no typescript at run time).
    const built = (require(path.join(dist, 'dashboard.js')) as typeof import('../../src/admin/dashboard')).dashboardPage();
    expect(built.toString('utf8')).toBe(page);
  });
});
