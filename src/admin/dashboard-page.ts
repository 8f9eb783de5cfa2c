/**
 * The dashboard (SPEC section 5, `GET /`): one self-contained HTML document.
 * Inline CSS and JS, no CDN, no framework: the machines running Fulcrum often
 * have no internet, and the page must work from the admin port alone.
 *
 * The page holds no data. It reads `GET /api/overview` every 2 s (same origin,
 * relative URLs), computes request and error rates from the deltas of the
 * cumulative counters, and reads `GET /api/pools/{pool}/backends/{backend}`
 * for each open "why" panel. When the admin has a token, the first 401 shows a
 * token field; the token lives in sessionStorage and every call retries with
 * `Authorization: Bearer TOKEN`.
 *
 * The DOM is built once per shape (listeners, pools, backends) and then updated
 * in place, so open panels and buttons survive each refresh. Every value goes in
 * through textContent, never innerHTML: backend names and reasons come from
 * config and from the network.
 *
 * Written as String.raw so backslashes reach the browser untouched; the text
 * must contain no backtick and no dollar-brace (a test checks this).
 */
export const DASHBOARD_HTML: string = String.raw`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Fulcrum dashboard</title>
<link rel="icon" href="data:,">
<style>
  :root {
    --fg: #1f2328; --muted: #59636e; --faint: #818b98; --bg: #f6f8fa; --card: #ffffff;
    --border: #d1d9e0; --row: #eef1f4; --accent: #0969da;
    --mono: ui-monospace, SFMono-Regular, "SF Mono", Menlo, Consolas, "DejaVu Sans Mono", "Liberation Mono", monospace;
  }
  * { box-sizing: border-box; }
  body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "DejaVu Sans", sans-serif; color: var(--fg); background: var(--bg); }
  header { position: sticky; top: 0; z-index: 2; display: flex; align-items: center; gap: 16px; padding: 10px 24px; background: var(--card); border-bottom: 1px solid var(--border); }
  header h1 { margin: 0; font-size: 17px; letter-spacing: .2px; }
  header h1 small { font-weight: 400; color: var(--muted); margin-left: 6px; }
  .spacer { flex: 1; }
  .updated { font-family: var(--mono); font-size: 13px; color: var(--muted); }
  .updated::before { content: ""; display: inline-block; width: 8px; height: 8px; margin-right: 6px; border-radius: 50%; background: #8c959f; vertical-align: 1px; }
  body.live .updated::before { background: #1a7f37; }
  body.offline .updated::before { background: #cf222e; }
  .linkish { background: none; border: 0; padding: 0; color: var(--accent); font: inherit; font-size: 13px; cursor: pointer; }
  .linkish:hover { text-decoration: underline; }
  main { max-width: 1280px; margin: 0 auto; padding: 16px 24px 48px; }
  body.offline main > section { opacity: .6; }
  .banner { margin: 0 0 16px; padding: 10px 14px; border: 1px solid #ff8182; border-radius: 6px; background: #ffebe9; color: #82071e; font-weight: 600; }
  .banner.action-error { border-color: #d4a72c; background: #fff8c5; color: #4d2d00; }
  .token { margin: 0 0 16px; padding: 14px 16px; border: 1px solid #d4a72c; border-radius: 6px; background: #fff8c5; }
  .token p { margin: 0 0 8px; }
  .token input { width: 320px; max-width: 100%; padding: 5px 8px; border: 1px solid var(--border); border-radius: 6px; font: 14px var(--mono); }
  .token-message.refused { color: #82071e; font-weight: 600; }
  h2 { font-size: 15px; margin: 0; }
  .section-title { margin: 20px 0 8px; font-size: 12px; font-weight: 600; letter-spacing: .6px; text-transform: uppercase; color: var(--muted); }
  .card { background: var(--card); border: 1px solid var(--border); border-radius: 8px; overflow: hidden; }
  table { width: 100%; border-collapse: collapse; }
  th { text-align: left; font-size: 12px; font-weight: 600; color: var(--muted); padding: 7px 10px; border-bottom: 1px solid var(--border); background: #f6f8fa; white-space: nowrap; }
  td { padding: 7px 10px; border-top: 1px solid var(--row); vertical-align: middle; }
  tbody tr:first-child td { border-top: 0; }
  .num { font-family: var(--mono); font-variant-numeric: tabular-nums; text-align: right; white-space: nowrap; }
  th.num { font-family: inherit; }
  .mono { font-family: var(--mono); }
  .muted { color: var(--muted); }
  .faint { color: var(--faint); }
  .route { display: inline-block; margin: 1px 8px 1px 0; padding: 0 6px; border: 1px solid var(--border); border-radius: 4px; font: 12px/20px var(--mono); background: #f6f8fa; white-space: nowrap; }
  .tag { display: inline-block; margin-left: 6px; padding: 0 6px; border-radius: 4px; font-size: 11px; font-weight: 600; line-height: 18px; vertical-align: 1px; background: #eaeef2; color: var(--muted); }
  .pool { margin-bottom: 16px; }
  .pool-head { display: flex; align-items: baseline; gap: 10px; padding: 10px 14px; border-bottom: 1px solid var(--border); }
  .strategy { font: 12px var(--mono); color: var(--muted); padding: 1px 6px; border: 1px solid var(--border); border-radius: 4px; }
  .pool-summary { margin-left: auto; font-size: 13px; color: var(--muted); }
  .pool th { background: #fbfcfd; }
  tr.backend td:first-child { border-left: 4px solid transparent; }
  tr.backend[data-state="up"] td:first-child { border-left-color: #4ac26b; }
  tr.backend[data-state="down"] td:first-child { border-left-color: #cf222e; }
  tr.backend[data-state="ejected"] td:first-child { border-left-color: #e16f24; }
  tr.backend[data-state="draining"] td:first-child { border-left-color: #218bff; }
  .b-name { font: 600 13px var(--mono); }
  .b-url { font: 12px var(--mono); color: var(--faint); }
  .state { display: inline-flex; align-items: center; gap: 6px; min-width: 86px; padding: 1px 9px; border: 1px solid; border-radius: 999px; font-size: 12px; font-weight: 600; line-height: 18px; }
  .state::before { content: ""; width: 8px; height: 8px; border-radius: 50%; background: currentColor; }
  .state-up { color: #116329; background: #dafbe1; border-color: #6fdd8b; }
  .state-down { color: #a40e26; background: #ffebe9; border-color: #ff8182; }
  .state-ejected { color: #953800; background: #fff1e5; border-color: #fb8f44; }
  .state-draining { color: #0a3069; background: #ddf4ff; border-color: #80ccff; }
  .state-unknown { color: var(--muted); background: #eaeef2; border-color: var(--border); }
  .err-some { color: #bc4c00; font-weight: 600; }
  .err-high { color: #a40e26; font-weight: 700; }
  .actions { white-space: nowrap; text-align: right; }
  button.btn { margin-left: 4px; padding: 3px 10px; border: 1px solid var(--border); border-radius: 6px; background: #f6f8fa; color: var(--fg); font: 12px system-ui, sans-serif; font-weight: 600; cursor: pointer; }
  button.btn:hover:not(:disabled) { background: #eef1f4; border-color: #afb8c1; }
  button.btn:disabled { color: #9aa3ad; cursor: default; background: #fbfcfd; }
  button.btn[data-action="drain"]:not(:disabled) { color: #0a3069; }
  button.btn[data-action="enable"]:not(:disabled) { color: #116329; }
  button.btn[aria-expanded="true"] { background: #ddf4ff; border-color: #80ccff; }
  tr.why > td { padding: 0; background: #fbfcfd; border-top: 0; }
  .why-body { padding: 10px 14px 14px 18px; border-left: 4px solid #d1d9e0; }
  tr.why[data-state="up"] .why-body { border-left-color: #aceebb; }
  tr.why[data-state="down"] .why-body { border-left-color: #ffaba8; }
  tr.why[data-state="ejected"] .why-body { border-left-color: #ffc680; }
  tr.why[data-state="draining"] .why-body { border-left-color: #b6e3ff; }
  .why-grid h3 .count { font-weight: 400; text-transform: none; letter-spacing: 0; }
  .why-summary { margin: 0 0 10px; font-size: 13px; }
  .why-grid { display: grid; grid-template-columns: 1.3fr 1fr 0.8fr; gap: 16px; }
  .why-grid h3 { margin: 0 0 4px; font-size: 12px; font-weight: 600; color: var(--muted); text-transform: uppercase; letter-spacing: .5px; }
  .why-grid table { width: auto; }
  .why-grid table td { padding: 2px 14px 2px 0; border: 0; font-size: 12px; vertical-align: top; }
  .why-grid td.t { font-family: var(--mono); color: var(--muted); white-space: nowrap; }
  .ok { color: #116329; font-weight: 600; }
  .bad { color: #a40e26; font-weight: 600; }
  .empty { color: var(--faint); font-size: 12px; }
  footer { margin-top: 24px; font-size: 12px; color: var(--faint); }
</style>
</head>
<body>
<header>
  <h1>Fulcrum <small>load balancer</small></h1>
  <span class="spacer"></span>
  <button type="button" class="linkish" data-testid="forget-token" id="forget-token" hidden>forget token</button>
  <span class="updated" data-testid="updated" id="updated">loading…</span>
</header>
<main>
  <div class="banner" role="alert" data-testid="error-banner" id="error-banner" hidden></div>
  <div class="banner action-error" role="alert" data-testid="action-error" id="action-error" hidden></div>
  <form class="token" data-testid="token-form" id="token-form" hidden>
    <p class="token-message" data-testid="token-message" id="token-message">This admin API needs a token.</p>
    <label>Admin token <input type="password" id="token-input" data-testid="token-input" autocomplete="off" spellcheck="false"></label>
    <button type="submit" class="btn" data-testid="token-submit">Use token</button>
  </form>
  <section data-testid="listeners" id="listeners-section" hidden>
    <div class="section-title">Listeners</div>
    <div class="card">
      <table>
        <thead><tr><th>Listener</th><th>Address</th><th>Routes (first match wins)</th></tr></thead>
        <tbody id="listeners"></tbody>
      </table>
    </div>
  </section>
  <section data-testid="pools" id="pools-section" hidden>
    <div class="section-title">Pools</div>
    <div id="pools"></div>
  </section>
  <footer>Refreshes every 2 s. Rates are computed from the change in counters between refreshes.</footer>
</main>
<script>
(function () {
  'use strict';
  var REFRESH_MS = 2000;
  var TIMEOUT_MS = 5000;
  /** Shortest window a rate is computed over: a refresh right after a click would be noise. */
  var RATE_WINDOW_MS = 1000;
  var TOKEN_KEY = 'fulcrum.adminToken';
  var STATES = { up: 1, down: 1, ejected: 1, draining: 1 };

  var byId = function (id) { return document.getElementById(id); };
  var token = readToken();
  var tokenWait = null;
  var shape = '';
  var rows = {};
  var summaries = {};
  var prev = {};
  var open = new Set();
  var timer = 0;
  var running = false;
  var again = false;

  function readToken() { try { return sessionStorage.getItem(TOKEN_KEY) || ''; } catch (e) { return ''; } }
  function saveToken(t) { try { if (t) sessionStorage.setItem(TOKEN_KEY, t); else sessionStorage.removeItem(TOKEN_KEY); } catch (e) { /* storage off: keep it in memory */ } }

  /** el('td', { class: 'num' }, ['text', node]) */
  function el(tag, attrs, children) {
    var n = document.createElement(tag);
    if (attrs) for (var k in attrs) if (attrs[k] !== undefined && attrs[k] !== null) n.setAttribute(k, attrs[k]);
    if (children) for (var i = 0; i < children.length; i++) {
      var c = children[i];
      if (c === null || c === undefined) continue;
      n.appendChild(typeof c === 'string' ? document.createTextNode(c) : c);
    }
    return n;
  }
  function setText(node, text) { if (node.textContent !== text) node.textContent = text; }
  function pad(n) { return n < 10 ? '0' + n : String(n); }
  function hms(ms) { var d = new Date(ms); return pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds()); }
  function ago(ms) {
    var s = Math.max(0, Math.round((Date.now() - ms) / 1000));
    if (s < 60) return s + ' s ago';
    if (s < 3600) return Math.floor(s / 60) + ' min ago';
    return Math.floor(s / 3600) + ' h ago';
  }
  function fmtMs(v) {
    if (v === null || v === undefined) return '–';
    if (v < 1) return v.toFixed(2);
    if (v < 100) return v.toFixed(1);
    return String(Math.round(v));
  }
  function fmtRate(v) {
    if (v === null || v === undefined) return '–';
    if (v === 0) return '0';
    if (v < 10) return v.toFixed(1);
    return String(Math.round(v));
  }
  function enc(s) { return encodeURIComponent(s); }
  function backendPath(pool, backend) { return 'api/pools/' + enc(pool) + '/backends/' + enc(backend); }

  // ---- talking to the admin API ----

  function ApiError(message, unreachable) { this.message = message; this.unreachable = unreachable; }

  /** Resolves when the operator has entered a token. */
  function askToken(refused) {
    if (tokenWait === null) {
      var resolve;
      var promise = new Promise(function (r) { resolve = r; });
      tokenWait = { promise: promise, resolve: resolve };
    }
    var msg = byId('token-message');
    msg.textContent = refused ? 'The admin API refused that token. Enter the admin token:' : 'This admin API needs a token (admin.token in the config).';
    msg.className = 'token-message' + (refused ? ' refused' : '');
    byId('token-form').hidden = false;
    byId('error-banner').hidden = true;
    byId('forget-token').hidden = true;
    setText(byId('updated'), 'waiting for the token');
    document.body.classList.remove('live');
    byId('token-input').focus();
    return tokenWait.promise;
  }

  byId('token-form').addEventListener('submit', function (e) {
    e.preventDefault();
    var input = byId('token-input');
    var v = input.value.trim();
    if (!v) { input.focus(); return; }
    token = v;
    saveToken(v);
    input.value = '';
    byId('token-form').hidden = true;
    byId('forget-token').hidden = false;
    setText(byId('updated'), 'loading…');
    var w = tokenWait;
    tokenWait = null;
    if (w) w.resolve();
  });

  byId('forget-token').addEventListener('click', function () {
    token = '';
    saveToken('');
    byId('forget-token').hidden = true;
    refresh();
  });

  /** One API call; on 401 asks for the token and tries again with it. */
  async function api(method, path) {
    for (;;) {
      var headers = { accept: 'application/json' };
      if (token) headers.authorization = 'Bearer ' + token;
      var ctrl = new AbortController();
      var t = setTimeout(function () { ctrl.abort(); }, TIMEOUT_MS);
      var res;
      try {
        res = await fetch(path, { method: method, headers: headers, signal: ctrl.signal, cache: 'no-store' });
      } catch (err) {
        throw new ApiError(err && err.name === 'AbortError' ? 'no answer within ' + TIMEOUT_MS / 1000 + ' s' : 'connection failed', true);
      } finally {
        clearTimeout(t);
      }
      if (res.status === 401) {
        await askToken(token !== '');
        continue;
      }
      var body = null;
      try { body = await res.json(); } catch (e) { body = null; }
      if (!res.ok) throw new ApiError((body && body.error) || ('HTTP ' + res.status), res.status >= 500);
      if (token) byId('forget-token').hidden = false;
      return body;
    }
  }

  function banner(text) {
    var b = byId('error-banner');
    if (text) { setText(b, text); b.hidden = false; } else b.hidden = true;
    document.body.classList.toggle('offline', !!text);
    document.body.classList.toggle('live', !text);
  }

  // ---- the refresh loop ----

  async function refresh() {
    if (running) { again = true; return; }
    running = true;
    clearTimeout(timer);
    try {
      do {
        again = false;
        try {
          var data = await api('GET', 'api/overview');
          render(data);
          banner(null);
          setText(byId('updated'), 'updated ' + hms(Date.now()));
          await Promise.all(Array.from(open).map(loadWhy));
        } catch (err) {
          var last = byId('updated').textContent;
          var since = last.indexOf('updated ') === 0 ? ' Showing data from ' + last.slice(8) + '.' : '';
          if (!since) setText(byId('updated'), 'no data yet');
          banner((err.unreachable ? 'Cannot reach the admin API (' + err.message + ').' : 'The admin API answered: ' + err.message + '.') + since + ' Retrying every ' + REFRESH_MS / 1000 + ' s.');
        }
      } while (again);
    } finally {
      running = false;
      timer = setTimeout(refresh, REFRESH_MS);
    }
  }

  async function act(pool, backend, action, button) {
    button.disabled = true;
    var note = byId('action-error');
    try {
      await api('POST', backendPath(pool, backend) + '/' + action);
      note.hidden = true;
    } catch (err) {
      // Kept until the next action: the refresh right after must not wipe it.
      setText(note, action.charAt(0).toUpperCase() + action.slice(1) + ' ' + pool + '/' + backend + ' failed: ' + err.message);
      note.hidden = false;
    }
    await refresh();
  }

  // ---- rendering ----

  function render(data) {
    var pools = data.pools || [];
    var listeners = data.listeners || [];
    var sig = JSON.stringify([listeners, pools.map(function (p) {
      return [p.name, p.strategy, p.backends.map(function (b) { return [b.name, b.url, b.backup]; })];
    })]);
    if (sig !== shape) { build(pools, listeners); shape = sig; }
    var now = Date.now();
    pools.forEach(function (p) {
      var counts = {};
      p.backends.forEach(function (b) {
        updateRow(p.name, b, now);
        counts[b.state] = (counts[b.state] || 0) + 1;
      });
      var parts = ['up', 'down', 'ejected', 'draining'].filter(function (s) { return counts[s]; }).map(function (s) { return counts[s] + ' ' + s; });
      setText(summaries[p.name], p.backends.length + (p.backends.length === 1 ? ' backend' : ' backends') + (parts.length ? ' · ' + parts.join(' · ') : ''));
    });
  }

  function build(pools, listeners) {
    var lt = byId('listeners');
    lt.textContent = '';
    listeners.forEach(function (l) {
      var routes = el('td', { class: 'routes' }, l.routes.map(function (r) {
        var m = [];
        if (r.host) m.push('host ' + r.host);
        if (r.pathPrefix) m.push(r.pathPrefix);
        return el('span', { class: 'route' }, [(m.length ? m.join(' ') : '*') + ' → ' + r.pool]);
      }));
      lt.appendChild(el('tr', { 'data-listener': l.name }, [
        el('td', null, [el('strong', null, [l.name])]),
        el('td', { class: 'mono listen' }, [(l.tls ? 'https://' : 'http://') + l.listen]),
        routes,
      ]));
    });
    byId('listeners-section').hidden = listeners.length === 0;

    var pt = byId('pools');
    pt.textContent = '';
    rows = {};
    summaries = {};
    pools.forEach(function (p) {
      var summary = el('span', { class: 'pool-summary' });
      summaries[p.name] = summary;
      var tbody = el('tbody');
      p.backends.forEach(function (b) { buildRow(tbody, p.name, b); });
      pt.appendChild(el('section', { class: 'pool card', 'data-pool': p.name }, [
        el('div', { class: 'pool-head' }, [el('h2', { class: 'pool-name' }, [p.name]), el('span', { class: 'strategy', title: 'strategy' }, [p.strategy]), summary]),
        el('table', null, [
          el('thead', null, [el('tr', null, [
            el('th', null, ['Backend']), el('th', null, ['State']),
            el('th', { class: 'num', title: 'configured weight (effective weight while it ramps up in slow start)' }, ['Weight']),
            el('th', { class: 'num', title: 'requests in flight now' }, ['In flight']),
            el('th', { class: 'num', title: 'requests per second since the last refresh' }, ['Req/s']),
            el('th', { class: 'num', title: 'requests sent since start' }, ['Requests']),
            el('th', { class: 'num', title: 'failures / requests since the last refresh' }, ['Errors']),
            el('th', { class: 'num' }, ['p50 ms']), el('th', { class: 'num' }, ['p99 ms']),
            el('th', null, []),
          ])]),
          tbody,
        ]),
      ]));
    });
    if (pools.length === 0) pt.appendChild(el('p', { class: 'empty' }, ['No pools.']));
    byId('pools-section').hidden = false;
    // Rows that went away keep no rate baseline; panels that went away close.
    Object.keys(prev).forEach(function (k) { if (!rows[k]) delete prev[k]; });
    Array.from(open).forEach(function (k) { if (!rows[k]) open.delete(k); });
  }

  function buildRow(tbody, pool, b) {
    var key = pool + '/' + b.name;
    var r = {};
    r.state = el('span', { class: 'state' });
    r.weight = el('td', { class: 'num', 'data-field': 'weight' });
    r.inflight = el('td', { class: 'num', 'data-field': 'inflight' });
    r.rate = el('td', { class: 'num', 'data-field': 'rate' });
    r.requests = el('td', { class: 'num', 'data-field': 'requests' });
    r.errors = el('td', { class: 'num', 'data-field': 'errors' });
    r.p50 = el('td', { class: 'num', 'data-field': 'p50' });
    r.p99 = el('td', { class: 'num', 'data-field': 'p99' });
    r.why = el('button', { type: 'button', class: 'btn', 'data-action': 'why', 'aria-expanded': 'false', title: 'why is it in this state' }, ['Why']);
    r.drain = el('button', { type: 'button', class: 'btn', 'data-action': 'drain', title: 'stop sending new requests; in-flight ones finish' }, ['Drain']);
    r.enable = el('button', { type: 'button', class: 'btn', 'data-action': 'enable', title: 'back under the health checker' }, ['Enable']);
    r.tr = el('tr', { class: 'backend', 'data-backend': key }, [
      el('td', null, [
        el('div', { class: 'b-name' }, [b.name, b.backup ? el('span', { class: 'tag', title: 'used only when no primary is available' }, ['backup']) : null]),
        b.url !== 'http://' + b.name ? el('div', { class: 'b-url' }, [b.url]) : null,
      ]),
      el('td', null, [r.state]),
      r.weight, r.inflight, r.rate, r.requests, r.errors, r.p50, r.p99,
      el('td', { class: 'actions' }, [r.why, r.drain, r.enable]),
    ]);
    r.panel = el('div', { class: 'why-body' }, [el('p', { class: 'empty' }, ['loading…'])]);
    r.whyTr = el('tr', { class: 'why', 'data-why': key, hidden: '' }, [el('td', { colspan: '10' }, [r.panel])]);
    r.why.addEventListener('click', function () {
      var show = !open.has(key);
      if (show) open.add(key); else open.delete(key);
      r.whyTr.hidden = !show;
      r.why.setAttribute('aria-expanded', String(show));
      if (show) loadWhy(key);
    });
    r.drain.addEventListener('click', function () { act(pool, b.name, 'drain', r.drain); });
    r.enable.addEventListener('click', function () { act(pool, b.name, 'enable', r.enable); });
    r.pool = pool;
    r.name = b.name;
    if (open.has(key)) { r.whyTr.hidden = false; r.why.setAttribute('aria-expanded', 'true'); }
    rows[key] = r;
    tbody.appendChild(r.tr);
    tbody.appendChild(r.whyTr);
  }

  function updateRow(pool, b, now) {
    var key = pool + '/' + b.name;
    var r = rows[key];
    if (!r) return;
    var state = STATES[b.state] ? b.state : 'unknown';
    r.tr.setAttribute('data-state', state);
    r.whyTr.setAttribute('data-state', state);
    r.state.className = 'state state-' + state;
    r.state.setAttribute('data-state', b.state);
    setText(r.state, b.state);
    r.drain.disabled = b.state === 'draining';
    r.enable.disabled = b.state !== 'draining';

    if (b.effectiveWeight !== undefined && b.effectiveWeight !== b.weight) {
      setText(r.weight, b.effectiveWeight + ' of ' + b.weight);
      r.weight.title = 'slow start: effective weight ' + b.effectiveWeight + ', ramping up to ' + b.weight;
    } else {
      setText(r.weight, String(b.weight));
      r.weight.title = '';
    }
    setText(r.inflight, String(b.activeRequests));
    setText(r.requests, String(b.requests));

    // Rates from counter deltas. A counter that went down (reload, restart) starts a new baseline.
    var p = prev[key];
    if (!p || b.requests < p.requests || b.failures < p.failures) {
      p = prev[key] = { t: now, requests: b.requests, failures: b.failures, rate: null, err: null };
    } else if (now - p.t >= RATE_WINDOW_MS) {
      var dr = b.requests - p.requests;
      var df = b.failures - p.failures;
      p.rate = dr * 1000 / (now - p.t);
      p.err = dr > 0 ? Math.min(100, df * 100 / dr) : null;
      p.t = now; p.requests = b.requests; p.failures = b.failures;
    }
    setText(r.rate, fmtRate(p.rate));
    setText(r.errors, p.err === null ? '–' : (p.err === 0 ? '0%' : p.err.toFixed(p.err < 10 ? 1 : 0) + '%'));
    r.errors.className = 'num' + (p.err === null || p.err === 0 ? '' : p.err >= 5 ? ' err-high' : ' err-some');
    r.errors.title = 'failures since start: ' + b.failures;

    setText(r.p50, fmtMs(b.latencyMs ? b.latencyMs.p50 : null));
    setText(r.p99, fmtMs(b.latencyMs ? b.latencyMs.p99 : null));
  }

  // ---- the "why" panel ----

  async function loadWhy(key) {
    var r = rows[key];
    if (!r) return;
    try {
      var d = await api('GET', backendPath(r.pool, r.name));
      if (rows[key] === r && open.has(key)) renderWhy(r, d);
    } catch (err) {
      if (rows[key] === r) r.panel.replaceChildren(el('p', { class: 'bad' }, ['Could not load the history: ' + err.message]));
    }
  }

  /** Newest first, at most max rows; count is an optional note after the title. */
  function list(title, cls, items, max, count, empty, cells) {
    var shown = items.slice(-max).reverse();
    var body = shown.length
      ? el('table', null, [el('tbody', null, shown.map(function (it) { return el('tr', null, cells(it)); }))])
      : el('p', { class: 'empty' }, [empty]);
    return el('div', { class: cls }, [el('h3', null, [title, count ? el('span', { class: 'count' }, [' · ' + count]) : null]), body]);
  }

  function renderWhy(r, d) {
    var changes = d.stateChanges || [];
    var last = changes.length ? changes[changes.length - 1] : null;
    var summary = last && last.to === d.state
      ? el('p', { class: 'why-summary' }, [el('strong', null, [d.state]), ' since ' + hms(last.time) + ' (' + ago(last.time) + '): ', el('span', { class: 'why-reason' }, [last.reason])])
      : el('p', { class: 'why-summary' }, [el('strong', null, [d.state]), ' since start: no state change recorded.']);
    var probes = d.probes || [];
    var passed = probes.filter(function (p) { return p.ok; }).length;
    var failures = d.recentFailures || [];
    r.panel.replaceChildren(summary, el('div', { class: 'why-grid' }, [
      list('State changes', 'why-changes', changes, 8, changes.length > 8 ? 'newest 8 of ' + changes.length : '', 'none yet', function (c) {
        return [el('td', { class: 't' }, [hms(c.time)]), el('td', { class: 'mono' }, [c.from + ' → ' + c.to]), el('td', { class: 'reason' }, [c.reason])];
      }),
      list('Health probes', 'why-probes', probes, 5, probes.length ? passed + ' of the last ' + probes.length + ' passed' : '', 'none (no active health check, or not run yet)', function (p) {
        return [
          el('td', { class: 't' }, [hms(p.time)]),
          el('td', { class: p.ok ? 'ok' : 'bad' }, [p.ok ? 'pass' : 'fail']),
          el('td', { class: 'mono' }, [p.status !== undefined ? String(p.status) : '']),
          el('td', null, [p.error || '']),
          el('td', { class: 'num' }, [fmtMs(p.latencyMs) + ' ms']),
        ];
      }),
      list('Failures on live traffic', 'why-failures', failures, 5, failures.length > 5 ? 'newest 5 of ' + failures.length : '', 'none', function (f) {
        return [el('td', { class: 't' }, [hms(f.time)]), el('td', { class: 'bad' }, [f.reason])];
      }),
    ]));
  }

  refresh();
})();
</script>
</body>
</html>
`;
