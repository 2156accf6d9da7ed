// The debug page: one HTML document with its style and script inline, no build step and nothing fetched
// from elsewhere. It renders /debug/state every few seconds, and asks /debug/lookup from its form. Every
// value goes into the page through textContent, never as markup: repository names and tags come from clients.

export const DEBUG_STYLE = `
body { font: 14px/1.4 system-ui, sans-serif; margin: 0; color: #1d2330; background: #f4f6f9; }
header { background: #16324f; color: #fff; padding: 14px 24px; display: flex; gap: 24px; align-items: baseline; flex-wrap: wrap; }
header h1 { font-size: 20px; margin: 0; }
main { padding: 16px 24px; display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 16px; }
section { background: #fff; border-radius: 8px; padding: 12px 16px; box-shadow: 0 1px 3px rgba(0,0,0,.12); overflow-x: auto; }
section.wide { grid-column: 1 / -1; }
h2 { font-size: 15px; margin: 0 0 8px; }
table { border-collapse: collapse; width: 100%; font-size: 12.5px; }
th, td { text-align: left; padding: 3px 6px; border-bottom: 1px solid #e5e8ee; white-space: nowrap; vertical-align: top; }
td div { white-space: normal; }
th { color: #5b6475; font-weight: 600; }
.ok { color: #137333; font-weight: 600; } .bad { color: #b3261e; font-weight: 600; }
.muted { color: #6b7385; } .mono { font-family: ui-monospace, monospace; }
.fix { color: #5b4400; background: #fff6d6; padding: 2px 6px; border-radius: 4px; display: inline-block; margin-top: 2px; }
.badge { padding: 2px 8px; border-radius: 10px; font-size: 12px; background: #2e7d32; color: #fff; }
.badge.bad { background: #b3261e; color: #fff; }
form { display: flex; gap: 8px; margin-bottom: 8px; }
input { flex: 1; padding: 6px 8px; font: inherit; border: 1px solid #c6cbd5; border-radius: 6px; }
button { padding: 6px 14px; font: inherit; border: 0; border-radius: 6px; background: #16324f; color: #fff; cursor: pointer; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px; margin: 0; }
dt { color: #5b6475; }
dd { margin: 0; overflow-wrap: anywhere; }
`;

export const DEBUG_SCRIPT = `
'use strict';
function el(tag, attrs) {
  var node = document.createElement(tag);
  for (var key in attrs || {}) node.setAttribute(key, attrs[key]);
  for (var i = 2; i < arguments.length; i++) {
    var child = arguments[i];
    if (child === undefined || child === null) continue;
    node.appendChild(typeof child === 'object' ? child : document.createTextNode(String(child)));
  }
  return node;
}
function fill(id) {
  var target = document.getElementById(id);
  target.replaceChildren.apply(target, Array.prototype.slice.call(arguments, 1));
}
function ago(ms) {
  if (ms === undefined || ms === null) return 'never';
  var s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  return s < 60 ? s + ' s ago' : s < 3600 ? Math.round(s / 60) + ' min ago' : Math.round(s / 3600) + ' h ago';
}
function bytes(n) {
  if (n < 1024) return n + ' B';
  if (n < 1048576) return (n / 1024).toFixed(1) + ' KiB';
  if (n < 1073741824) return (n / 1048576).toFixed(1) + ' MiB';
  return (n / 1073741824).toFixed(2) + ' GiB';
}
function short(id) { return id && id.length > 16 ? id.slice(0, 8) + '…' + id.slice(-6) : id || ''; }
function table(head, rows) {
  return el('table', {}, el('thead', {}, el.apply(null, ['tr', {}].concat(head.map(function (h) { return el('th', {}, h); })))),
    el.apply(null, ['tbody', {}].concat(rows.map(function (row) {
      return el.apply(null, ['tr', {}].concat(row.map(function (cell) { return el('td', {}, cell); })));
    }))));
}
function render(state) {
  var node = state.node;
  fill('node', el('h1', {}, 'shoal'), el('span', { class: 'mono', title: node.peerId || '' }, node.peerId || 'standalone'),
    el('span', {}, 'v' + node.version), el('span', { class: node.ready ? 'badge' : 'badge bad' }, node.ready ? 'ready' : 'not ready'),
    el('span', {}, 'up ' + ago(node.startedAt).replace(' ago', '')));
  fill('identity', el('dl', {},
    el('dt', {}, 'registry'), el('dd', { class: 'mono' }, node.registry + (node.tlsPort ? ' (TLS port ' + node.tlsPort + ')' : '')),
    el('dt', {}, 'store'), el('dd', {}, node.store + (node.upstreamFallback ? ', pull-through on' : '')),
    el('dt', {}, 'mirrored'), el('dd', {}, node.mirroredRegistries.length ? node.mirroredRegistries.join(', ') : 'every registry'),
    el('dt', {}, 'router'), el('dd', { class: 'mono' }, node.routerAddresses.length ? node.routerAddresses.join(' ') : 'none (standalone)')));
  var pre = state.preflight;
  fill('preflight', pre === undefined || pre === null ? el('p', { class: 'muted' }, 'not run yet') :
    table(['', 'check', 'what was found'], pre.results.map(function (r) {
      return [el('span', { class: r.ok ? 'ok' : 'bad' }, r.ok ? '✓' : '✗'), el('span', { class: 'mono' }, r.check),
        el('div', {}, el('div', {}, r.summary), r.ok ? null : el('div', { class: 'fix' }, 'fix: ' + r.fix))];
    })));
  fill('members', state.members.length === 0 ? el('p', { class: 'muted' }, 'no members') :
    table(['peer', 'registry', 'health', 'latency', 'last answer'], state.members.map(function (m) {
      var health = m.aside.length ? m.aside.map(function (a) { return a.reason + ' until ' + new Date(a.until).toLocaleTimeString(); }).join(', ') : 'healthy';
      return [el('span', { class: 'mono', title: m.id }, short(m.id)), el('span', { class: 'mono' }, m.registry || '?'),
        el('span', { class: m.aside.length ? 'bad' : 'ok' }, health), m.latencyMs === undefined || m.latencyMs === null ? '–' : m.latencyMs + ' ms', ago(m.lastSeen)];
    })));
  var routing = state.routing;
  fill('routing', routing === undefined || routing === null ? el('p', { class: 'muted' }, 'standalone: no routing') : el('dl', {},
    el('dt', {}, 'routing table'), el('dd', {}, routing.tableSize + ' nodes' + (routing.alone ? ' (a cluster of one)' : '')),
    el('dt', {}, 'advertised'), el('dd', {}, routing.advertised.digest + ' digests, ' + routing.advertised.tag + ' tags'),
    el('dt', {}, 'last sync'), el('dd', {}, routing.lastSync ? '+' + routing.lastSync.advertised + ' −' + routing.lastSync.withdrawn + ' of ' + routing.lastSync.total + ' in ' + Math.round(routing.lastSync.ms) + ' ms' : 'not yet')));
  var hit = state.requests.lastHit;
  fill('last-hit', !state.requests.counted ? el('p', { class: 'muted' }, 'requests are not counted (--request-metrics=false)') :
    hit ? el('p', {}, 'last served: ', el('b', {}, hit.source), ' ', el('span', { class: 'mono' }, (hit.repository || '') + ' ' + (hit.reference || '')), ' ', ago(hit.at))
      : el('p', { class: 'muted' }, 'no client request served yet'));
  fill('requests', state.requests.recent.length === 0 ? el('p', { class: 'muted' }, 'none yet') :
    table(['when', 'request', 'kind', 'repository', 'reference', 'source', 'status', 'result', 'bytes', 'ms', 'peer'],
      state.requests.recent.map(function (r) {
        return [new Date(r.at).toLocaleTimeString(), r.method + (r.requester === 'member' ? ' (member)' : ''), r.kind, r.repository || '', el('span', { class: 'mono', title: r.reference || '' }, short(r.reference || '')),
          r.source, el('span', { class: r.status < 400 ? 'ok' : 'bad' }, String(r.status)), el('span', { title: r.why || '' }, r.result + (r.why ? ' *' : '')), bytes(r.bytes), String(r.ms), el('span', { class: 'mono', title: r.peer || '' }, short(r.peer || ''))];
      })));
}
function refresh() {
  fetch('debug/state', { cache: 'no-store' }).then(function (r) { return r.json(); }).then(render).catch(function (err) {
    fill('status', 'could not read debug/state: ' + err);
  });
}
document.getElementById('lookup-form').addEventListener('submit', function (event) {
  event.preventDefault();
  var ref = document.getElementById('lookup-ref').value;
  fill('lookup-result', el('p', { class: 'muted' }, 'asking the cluster…'));
  fetch('debug/lookup?ref=' + encodeURIComponent(ref)).then(function (r) { return r.json(); }).then(function (answer) {
    if (answer.error) return fill('lookup-result', el('p', { class: 'bad' }, answer.error));
    fill('lookup-result', el('dl', {},
      el('dt', {}, 'key'), el('dd', { class: 'mono' }, answer.key),
      el('dt', {}, 'this node'), el('dd', { class: answer.local ? 'ok' : 'muted' }, answer.local ? 'holds it' : 'does not hold it'),
      el('dt', {}, 'peers'), el('dd', {}, answer.providers.length ? el.apply(null, ['ul', {}].concat(answer.providers.map(function (p) {
        return el('li', { class: 'mono' }, short(p.id) + ' at ' + p.registry); }))) : (answer.note || 'no peer advertises it')),
      el('dt', {}, 'took'), el('dd', {}, answer.ms + ' ms')));
  }).catch(function (err) { fill('lookup-result', el('p', { class: 'bad' }, String(err))); });
});
refresh();
setInterval(refresh, 5000);
`;

export const DEBUG_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>shoal debug</title>
<style>${DEBUG_STYLE}</style>
</head>
<body>
<header id="node"><h1>shoal</h1><span class="muted">loading…</span></header>
<p id="status" class="muted"></p>
<main>
<section><h2>Node</h2><div id="identity"></div></section>
<section><h2>Routing</h2><div id="routing"></div></section>
<section class="wide"><h2>Preflight</h2><div id="preflight"></div></section>
<section class="wide"><h2>Members</h2><div id="members"></div></section>
<section class="wide"><h2>Who holds it?</h2>
<form id="lookup-form"><input id="lookup-ref" name="ref" placeholder="docker.io/library/nginx:1.27, or sha256:…" autocomplete="off" required><button type="submit">Look up</button></form>
<div id="lookup-result"></div></section>
<section class="wide"><h2>Requests</h2><div id="last-hit"></div><div id="requests"></div></section>
</main>
<script>${DEBUG_SCRIPT}</script>
</body>
</html>
`;
