/**
 * The dashboard (SPEC section 5, `GET /`): one self-contained HTML document.
 * Inline CSS and JS, no CDN, no framework: the machines running Fulcrum often
 * have no internet, and the page must work from the admin port alone.
 *
 * Its sources are real files in ./dashboard/: index.html, dashboard.css and
 * dashboard.ts (the browser code, with its own tsconfig). `npm run build`
 * (scripts/build.mjs) compiles dashboard.ts to dist/admin/dashboard/dashboard.js
 * and copies the other two next to it; this module puts the three together,
 * once per process, in place of the two tags of index.html that name them.
 */
import fs from 'node:fs';
import path from 'node:path';

const DIR = path.join(__dirname, 'dashboard');

/** The tags of index.html that inline() replaces; what they name is what a browser would load when opening the file itself. */
export const STYLESHEET_TAG = '<link rel="stylesheet" href="dashboard.css">';
export const SCRIPT_TAG = '<script type="module" src="dashboard.js"></script>';
/** uPlot (https://github.com/leeoniya/uPlot, MIT), the charts' library: its stylesheet and its script (an IIFE defining the global `uPlot`). */
export const UPLOT_STYLESHEET_TAG = '<link rel="stylesheet" href="uPlot.min.css">';
export const UPLOT_SCRIPT_TAG = '<script src="uPlot.iife.min.js"></script>';

/**
 * uPlot's files: from dist/ the copies `npm run build` puts beside the page;
 * from src/ the package's own (uplot is a dependency, so it is installed).
 */
function uplot(name: 'uPlot.min.css' | 'uPlot.iife.min.js'): string {
  if (path.extname(__filename) !== '.ts') return read(name);
  return fs.readFileSync(require.resolve(`uplot/dist/${name}`), 'utf8');
}

/** index.html with uPlot's stylesheet and script inline, refused on the same grounds as inline()'s. */
export function inlineUplot(html: string, css: string, js: string): string {
  if (/<\/style/i.test(css)) throw new Error('uPlot.min.css must not contain "</style"');
  if (/<\/script|<!--/i.test(js)) throw new Error('uPlot.iife.min.js must not contain "</script" or "<!--"');
  return replaceOnce(replaceOnce(html, UPLOT_STYLESHEET_TAG, `<style>\n${css}</style>`), UPLOT_SCRIPT_TAG, `<script>\n${js}</script>`);
}

function read(name: string): string {
  return fs.readFileSync(path.join(DIR, name), 'utf8');
}

/**
 * The compiled browser code. From dist/ it is dashboard.js, built next to
 * this file. Run from src/ (the test suite, under ts-jest) there is no .js
 * next to the .ts, so it is compiled here, from the source as it is now, with
 * the options of ./dashboard/tsconfig.json. Reading dist/ instead would serve
 * whatever was built last (dist/ is rebuilt by some test files while others
 * run, and may be from another revision of src/), and would make every
 * in-process test depend on a build. transpileModule only strips the types
 * (`npm run typecheck` checks them; isolatedModules in that tsconfig makes tsc
 * refuse what a one-file compile would get wrong), and its output is what tsc
 * emits. typescript is a devDependency: it is there whenever src/ runs, and
 * never loaded from dist/. Loading it and compiling cost about 0.4 s per test
 * file that starts an in-process Fulcrum (once per file: the page is kept).
 */
function script(): string {
  if (path.extname(__filename) !== '.ts') return read('dashboard.js');
  const ts = require('typescript') as typeof import('typescript');
  const configFile = path.join(DIR, 'tsconfig.json');
  const config = ts.readConfigFile(configFile, (f) => ts.sys.readFile(f));
  if (config.error !== undefined) throw new Error(ts.flattenDiagnosticMessageText(config.error.messageText, '\n'));
  const { options } = ts.convertCompilerOptionsFromJson(config.config.compilerOptions, DIR, configFile);
  return ts.transpileModule(read('dashboard.ts'), { compilerOptions: options, fileName: 'dashboard.ts' }).outputText;
}

/** Replace the one occurrence of `tag` (by position: a replacement string would expand `$&` and the like). */
function replaceOnce(html: string, tag: string, by: string): string {
  const at = html.indexOf(tag);
  if (at === -1 || html.indexOf(tag, at + 1) !== -1) throw new Error(`dashboard/index.html must contain ${tag} exactly once`);
  return html.slice(0, at) + by + html.slice(at + tag.length);
}

/**
 * index.html with the stylesheet and the script inline. Text that would end
 * the <style> or <script> element early (or, in a script, `<!--`, which
 * changes how the HTML parser reads the rest of it) is refused rather than
 * escaped: it has no business in either file.
 */
export function inline(html: string, css: string, js: string): string {
  if (/<\/style/i.test(css)) throw new Error('dashboard.css must not contain "</style"');
  if (/<\/script|<!--/i.test(js)) throw new Error('dashboard.js must not contain "</script" or "<!--"');
  // The browser code is one script with nothing to fetch: an import left in it
  // (only `import type` is erased) would make the page load another file.
  if (/^\s*import[\s{*'"(]/m.test(js)) throw new Error('dashboard.js must not import anything (use `import type`)');
  const withCss = replaceOnce(html, STYLESHEET_TAG, `<style>\n${css}</style>`);
  return replaceOnce(withCss, SCRIPT_TAG, `<script type="module">\n${js}</script>`);
}

let page: Buffer | undefined;

/** The page, assembled on the first call (AdminServer's constructor: at startup) and kept. */
export function dashboardPage(): Buffer {
  page ??= Buffer.from(inline(inlineUplot(read('index.html'), uplot('uPlot.min.css'), uplot('uPlot.iife.min.js')), read('dashboard.css'), script()), 'utf8');
  return page;
}
