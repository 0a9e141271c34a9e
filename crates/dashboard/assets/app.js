// goproxy-ha dashboard: polls /ui/data and renders it.
//
// Data holds attacker-influenced strings (request paths, token names, descriptions), so it
// only ever reaches the page as text: el() appends strings as text nodes and sets attributes
// with setAttribute; nothing here parses markup. The CSP forbids inline code besides.
'use strict';

const DATA_URL = '/ui/data'; // absolute: from /ui a relative "data" resolves to /data
const POLL_MS = 2000;
const FETCH_TIMEOUT_MS = 5000;
const HISTORY = 60; // sparkline samples: two minutes at POLL_MS
const SVG_NS = 'http://www.w3.org/2000/svg';
const LAG_WARN_ENTRIES = 100;
const DISK_WARN = 0.8;
const DISK_BAD = 0.9;

const state = {
  data: null, // last document rendered
  lastOkAt: null, // client clock (ms) of the last successful poll
  error: null, // why the last poll failed
  prev: null, // previous counters sample {node, t, c}
  rates: null, // rates between the last two samples
  history: [], // [{requests, hits}] per poll, oldest first
};

// ---- DOM helpers ---------------------------------------------------------------------------

/** An element with attributes (null/undefined/false skipped) and text or element children. */
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  setAttrs(e, attrs);
  for (const c of children.flat()) {
    if (c !== null && c !== undefined && c !== false) e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

function svg(tag, attrs) {
  const e = document.createElementNS(SVG_NS, tag);
  setAttrs(e, attrs);
  return e;
}

function setAttrs(e, attrs) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') e.setAttribute('class', v);
    else e.setAttribute(k, v === true ? '' : String(v));
  }
}

const $ = (id) => document.getElementById(id);

function text(id, value, attrs) {
  const e = $(id);
  e.textContent = value;
  setAttrs(e, attrs);
  return e;
}

/** Replaces a container's children, unless the operator is selecting text in it. */
function fill(container, children) {
  const sel = window.getSelection();
  if (sel && !sel.isCollapsed && container.contains(sel.anchorNode)) return;
  container.replaceChildren(...children);
}

function badge(word, kind) {
  return el('span', { class: `badge ${kind || ''}`.trim() }, word);
}

function bar(fraction, kind, attrs) {
  const f = Math.max(0, Math.min(1, fraction || 0));
  const inner = el('div', { class: `fill ${kind || ''}`.trim() });
  inner.style.width = `${(f * 100).toFixed(1)}%`; // CSSOM, which the CSP allows
  return el('div', Object.assign({ class: 'bar' }, attrs), inner);
}

// ---- formatting ----------------------------------------------------------------------------

const NUM = new Intl.NumberFormat('en-US');
const num = (n) => (n === null || n === undefined ? '—' : NUM.format(n));

function bytes(n) {
  if (n === null || n === undefined) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i += 1; }
  return i === 0 ? `${v} B` : `${v.toFixed(v >= 100 ? 0 : 1)} ${units[i]}`;
}

function rate(x) {
  if (x === null || x === undefined) return '—';
  return x >= 100 ? NUM.format(Math.round(x)) : x.toFixed(x >= 10 ? 0 : 1);
}

function ago(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 2) return 'just now';
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 48 * 3600) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

/** How long before `now` a Unix-ms timestamp was; '—' when the node did not say. */
const since = (now, ms) => (ms ? ago(now - ms) : '—');

const node = (id) => (id === null || id === undefined ? 'none' : `node ${id}`);
const lower = (s) => String(s || '').toLowerCase();

function modeKind(mode) {
  const m = lower(mode);
  if (m === 'sync' || m === 'synchronous') return 'ok';
  if (m === 'degraded') return 'warn';
  if (m === 'single') return 'info';
  return '';
}

const OUTCOME_KIND = {
  fill: 'info', hit: 'ok', forwarded: '', denied: 'warn', refused: 'warn', blocked: 'bad', error: 'bad',
};
const JOB_KIND = { queued: '', running: 'info', done: 'ok', failed: 'bad', cancelled: 'warn' };

// ---- rendering -----------------------------------------------------------------------------

function render(d) {
  const now = d.generated_at_ms || Date.now();
  renderHeader(d);
  renderMembers(d);
  renderCache(d.cache || {}, d.counters || {});
  sample(d);
  renderTraffic(d.counters || {});
  renderJobs(d.jobs || [], now);
  renderTop(d.top_modules || []);
  renderRecent(d.recent || [], now);
  renderBlocks(d.blocks || [], now);
}

/** The cluster's health: a word for the pill, and the problems behind it. */
function health(d) {
  const c = d.cluster || {};
  const members = d.members || [];
  const problems = [];
  const noLeader = c.leader === null || c.leader === undefined;
  if (noLeader) problems.push('no leader: fills wait for an election');
  const down = members.filter((m) => !m.reachable).map((m) => node(m.id));
  if (down.length) problems.push(`${down.join(', ')} unreachable`);
  for (const m of members) {
    if (m.reachable && m.lag_entries > LAG_WARN_ENTRIES) problems.push(`${node(m.id)} lags ${num(m.lag_entries)} entries`);
  }
  if (modeKind(c.replication_mode) === 'warn') {
    problems.push(`replication ${c.replication_mode}: ${num(c.backlog_blobs)} blobs (${bytes(c.backlog_bytes)}) short of replicas`);
  }
  if (!noLeader && vipConfigured(d) && c.vip_holder !== c.leader) {
    problems.push(c.vip_holder == null ? 'nobody holds the VIP' : `VIP on ${node(c.vip_holder)}, leader is ${node(c.leader)}`);
  }
  if (c.missing_blobs > 0) problems.push(`${num(c.missing_blobs)} committed blobs not yet on ${node(d.node_id)}`);
  if (noLeader) return ['bad', 'No leader', problems];
  return problems.length ? ['warn', 'Degraded', problems] : ['ok', 'Healthy', problems];
}

/** No VIP configured: nobody holds it and every member says `vip_held: null`. */
function vipConfigured(d) {
  const held = (m) => m.vip_held !== null && m.vip_held !== undefined;
  return (d.cluster || {}).vip_holder != null || (d.members || []).some(held);
}

function renderHeader(d) {
  const c = d.cluster || {};
  const [kind, word, problems] = health(d);
  text('health', word, { 'data-health': kind, class: `pill ${kind}` });
  const issues = $('issues');
  fill(issues, problems.map((p) => el('li', null, p)));
  issues.hidden = problems.length === 0;
  issues.setAttribute('class', `issues ${kind}`);
  text('leader', node(c.leader), { 'data-leader': c.leader ?? 'none' });
  text('term', num(c.term));
  const vip = vipConfigured(d);
  const vipOff = vip && c.vip_holder !== c.leader;
  text('vip-holder', vip ? node(c.vip_holder) : 'not configured',
    { 'data-vip-holder': c.vip_holder ?? 'none', class: vipOff ? 'warn-text' : '' });
  const mode = c.replication_mode || 'unknown';
  text('replication-mode', mode, { class: `badge ${modeKind(mode)}`, 'data-mode': lower(mode) });
  text('backlog', c.backlog_blobs ? `${num(c.backlog_blobs)} blobs · ${bytes(c.backlog_bytes)}` : 'none',
    { class: c.backlog_blobs ? 'warn-text' : '' });
  text('missing', c.missing_blobs ? `${num(c.missing_blobs)} blobs` : 'none',
    { class: c.missing_blobs ? 'bad-text' : '' });
  text('answered-by', node(d.node_id), { 'data-node-id': d.node_id });
  document.title = `${kind === 'ok' ? '' : '⚠ '}goproxy-ha · leader ${c.leader ?? 'none'}`;
}

function renderMembers(d) {
  const members = (d.members || []).slice().sort((a, b) => a.id - b.id);
  text('members-count', `${members.filter((m) => m.reachable).length}/${members.length} reachable`);
  fill($('members'), members.map((m) => memberCard(m, d)));
}

function memberCard(m, d) {
  const role = lower(m.role) || 'unknown';
  const roleKind = { leader: 'info', follower: '', learner: 'warn' }[role] ?? 'warn';
  const lagKind = m.lag_entries > LAG_WARN_ENTRIES ? 'warn-text' : '';
  const total = m.disk_total_bytes;
  const used = total && m.disk_free_bytes !== null && m.disk_free_bytes !== undefined ? total - m.disk_free_bytes : null;
  const frac = used !== null ? used / total : 0;
  const diskKind = frac >= DISK_BAD ? 'bad' : frac >= DISK_WARN ? 'warn' : '';
  return el('article', {
    class: `card member${m.reachable ? '' : ' down'}${role === 'leader' ? ' leading' : ''}`,
    'data-member-id': m.id, 'data-role': role, 'data-reachable': String(!!m.reachable),
    'data-vip': m.vip_held === null || m.vip_held === undefined ? 'none' : String(m.vip_held),
  },
  el('div', { class: 'card-head' },
    el('span', { class: 'node-name' }, node(m.id)),
    badge(role, `role ${roleKind}`),
    m.vip_held ? badge('VIP', 'ok vip') : null,
    m.id === d.node_id ? el('span', { class: 'you', title: 'this node answered the page' }, 'answering') : null,
    el('span', { class: `dot ${m.reachable ? 'ok' : 'bad'}`, title: m.reachable ? 'reachable' : 'unreachable' }),
  ),
  el('div', { class: 'addr mono' }, m.http_addr, el('span', { class: 'muted' }, ` · raft ${m.raft_addr}`)),
  m.reachable ? null : el('div', { class: 'status bad-text', 'data-status': 'unreachable' }, 'Unreachable'),
  el('dl', { class: 'kv' },
    el('div', null, el('dt', null, 'Applied'), el('dd', null, num(m.last_applied))),
    el('div', null, el('dt', null, 'Lag'), el('dd', { class: lagKind, 'data-lag': m.lag_entries ?? 'none' },
      m.lag_entries === null || m.lag_entries === undefined ? '—' : `${num(m.lag_entries)} entries`)),
    el('div', null, el('dt', null, 'Cache'), el('dd', null, bytes(m.cache_bytes))),
  ),
  el('div', { class: 'usage' },
    el('div', { class: 'usage-label' }, el('span', null, 'Disk'),
      el('span', { class: 'muted' }, used === null ? 'unknown' : `${bytes(used)} of ${bytes(total)} · ${Math.round(frac * 100)}%`)),
    bar(frac, diskKind, { 'data-disk-used': used === null ? 'none' : frac.toFixed(3) })),
  m.error ? el('p', { class: 'error', title: m.error }, m.error) : null);
}

function renderCache(c, counters) {
  text('cache-average', c.entries ? bytes(Math.round(c.bytes / c.entries)) : '—');
  text('cache-headroom', c.max_bytes ? bytes(Math.max(0, c.max_bytes - c.bytes)) : 'no limit');
  const looked = (counters.hits || 0) + (counters.fills || 0);
  text('cache-hit-ratio', looked ? `${((counters.hits / looked) * 100).toFixed(1)}%` : '—');
  text('cache-entries', num(c.entries));
  text('cache-pinned', num(c.pinned_versions));
  text('cache-evicted', num(c.evicted_versions));
  text('cache-bytes', bytes(c.bytes));
  const max = c.max_bytes;
  text('cache-max', max ? ` of ${bytes(max)} · ${Math.round((c.bytes / max) * 100)}%` : ' (no limit)');
  const frac = max ? c.bytes / max : 0;
  const old = $('cache-bar');
  // Near full is a cache's normal state (eviction keeps it under max_bytes): no alarm colour.
  const fresh = bar(frac, '', { id: 'cache-bar', 'data-fraction': max ? frac.toFixed(3) : 'none' });
  old.replaceWith(fresh);
}

/** Turns two successive counter samples from the same node into rates. */
function sample(d) {
  const c = d.counters || {};
  const cur = { node: d.node_id, t: d.generated_at_ms || Date.now(), c };
  const p = state.prev;
  if (p && p.node === cur.node && cur.t === p.t) return; // the same document again
  const keys = ['requests', 'hits', 'fills', 'refusals', 'served_bytes'];
  if (!p || p.node !== cur.node || cur.t < p.t || keys.some((k) => (c[k] || 0) < (p.c[k] || 0))) {
    // First sample, another node answered (the VIP moved) or it restarted: start over.
    state.rates = null;
    state.history = [];
  } else {
    const dt = (cur.t - p.t) / 1000;
    const r = {};
    for (const k of keys) r[k] = ((c[k] || 0) - (p.c[k] || 0)) / dt;
    const looked = r.hits + r.fills;
    r.ratio = looked > 0 ? r.hits / looked : null;
    state.rates = r;
    state.history.push({ requests: r.requests, hits: r.hits });
    if (state.history.length > HISTORY) state.history.shift();
  }
  state.prev = cur;
}

function renderTraffic(c) {
  const r = state.rates;
  text('rate-requests', rate(r && r.requests));
  text('rate-hits', rate(r && r.hits));
  text('rate-fills', rate(r && r.fills));
  text('rate-refusals', rate(r && r.refusals), { class: `value${r && r.refusals > 0 ? ' warn-text' : ''}` });
  text('hit-ratio', r && r.ratio !== null ? `${(r.ratio * 100).toFixed(1)}%` : '—');
  const [amount, unit] = r ? bytes(Math.round(r.served_bytes)).split(' ') : ['—', ''];
  $('rate-bytes').replaceChildren(amount, unit ? el('span', { class: 'unit' }, ` ${unit}/s`) : '');
  text('traffic-hint', r ? '' : 'rates appear after two samples');
  text('totals', `Since start: ${num(c.requests)} requests · ${num(c.hits)} hits · ${num(c.fills)} fills · ${num(c.refusals)} refusals · ${bytes(c.served_bytes)} served`);
  drawSparkline();
}

/** Requests and hits per second over the last HISTORY polls, scaled to the busiest. */
function drawSparkline() {
  const h = state.history;
  const W = 600;
  const H = 72;
  const max = Math.max(1, ...h.map((p) => p.requests), ...h.map((p) => p.hits));
  const x = (i) => (i / Math.max(1, h.length - 1)) * W;
  const y = (v) => H - 2 - (v / max) * (H - 8);
  const points = (key) => h.map((p, i) => `${x(i).toFixed(1)},${y(p[key]).toFixed(1)}`).join(' ');
  const children = [svg('line', { x1: 0, x2: W, y1: H - 1, y2: H - 1, class: 'axis' })];
  if (h.length >= 2) {
    children.push(svg('polygon', { class: 'area', points: `0,${H} ${points('requests')} ${W},${H}` }));
    children.push(svg('polyline', { class: 'line requests', points: points('requests') }));
    children.push(svg('polyline', { class: 'line hits', points: points('hits') }));
  }
  const s = $('sparkline');
  s.replaceChildren(...children);
  s.setAttribute('data-samples', h.length);
  $('spark-empty').hidden = h.length >= 2;
  const span = (h.length * POLL_MS) / 1000;
  text('spark-max', h.length >= 2 ? `last ${span < 120 ? `${span} s` : `${Math.round(span / 60)} min`} · peak ${rate(max)}/s` : '');
}

function renderJobs(jobs, now) {
  const active = jobs.filter((j) => ['queued', 'running'].includes(lower(j.state))).length;
  text('jobs-count', jobs.length ? `${active} active` : '');
  if (!jobs.length) return fill($('jobs'), [emptyRow(6, 'No prefetch jobs')]);
  fill($('jobs'), jobs.map((j) => {
    const st = lower(j.state);
    const pct = j.total ? Math.round((j.done / j.total) * 100) : 0;
    return el('tr', { 'data-job-id': j.id, 'data-state': st },
      el('td', null,
        el('div', { class: 'job-title' }, el('span', { class: 'mono' }, j.id), j.pinned ? badge('pinned', 'small') : null),
        el('div', { class: 'job-desc', title: j.description }, j.description),
        el('div', { class: 'muted small' }, `by ${j.submitted_by} · ${since(now, j.submitted_at_ms)}`)),
      el('td', null, badge(st || 'unknown', JOB_KIND[st] ?? '')),
      el('td', { class: 'progress-col' },
        bar(j.total ? j.done / j.total : 0, st === 'failed' ? 'bad' : st === 'done' ? 'ok' : '',
          { role: 'progressbar', 'aria-valuemin': 0, 'aria-valuemax': j.total, 'aria-valuenow': j.done, 'data-done': j.done, 'data-total': j.total }),
        el('div', { class: 'small progress-text' }, `${num(j.done)} / ${num(j.total)} · ${pct}%`)),
      el('td', { class: `num${j.failed ? ' bad-text' : ''}` }, num(j.failed)),
      el('td', { class: 'num' }, bytes(j.bytes)),
      el('td', null, j.runner === null || j.runner === undefined ? '—' : node(j.runner)));
  }));
}

function renderTop(top) {
  if (!top.length) return fill($('top-modules'), [emptyRow(2, 'No downloads yet')]);
  const max = Math.max(1, ...top.map((t) => t.downloads));
  fill($('top-modules'), top.map((t) => el('tr', { 'data-module': t.module },
    el('td', null,
      el('div', { class: 'mono module', title: `${t.module}@${t.version}` }, t.module, el('span', { class: 'muted' }, `@${t.version}`)),
      bar(t.downloads / max, '', { class: 'bar thin' })),
    el('td', { class: 'num' }, num(t.downloads)))));
}

function renderRecent(events, now) {
  if (!events.length) return fill($('recent'), [emptyRow(7, 'Nothing yet')]);
  fill($('recent'), events.map((e) => {
    const t = Date.parse(e.time);
    const outcome = lower(e.outcome);
    return el('tr', { 'data-outcome': outcome },
      el('td', { class: 'nowrap', title: e.time }, Number.isNaN(t) ? e.time : ago(now - t)),
      el('td', null, e.node),
      el('td', null, badge(outcome || 'unknown', OUTCOME_KIND[outcome] ?? '')),
      el('td', { class: 'num mono' }, e.status),
      el('td', { class: 'mono path', title: e.path }, e.path),
      el('td', { class: 'token' }, e.token ?? '—'),
      el('td', { class: 'mono muted' }, e.client ?? '—'));
  }));
}

function renderBlocks(blocks, now) {
  text('blocks-count', blocks.length ? `${blocks.length}` : '');
  if (!blocks.length) return fill($('blocks'), [el('li', { class: 'empty' }, 'No block rules')]);
  fill($('blocks'), blocks.map((b) => el('li', { 'data-rule': b.rule },
    el('div', { class: 'mono rule' }, b.rule),
    el('div', { class: 'reason' }, b.reason),
    el('div', { class: 'muted small' }, `by ${b.by} · ${since(now, b.at_ms)}`))));
}

function emptyRow(span, words) {
  return el('tr', { class: 'empty' }, el('td', { colspan: span }, words));
}

/** The banner, the page state and "updated … ago": redrawn every second and after each poll. */
function renderStatus() {
  const since = state.lastOkAt === null ? null : ago(Date.now() - state.lastOkAt);
  const banner = $('banner');
  if (state.error) {
    document.body.setAttribute('data-state', state.data ? 'stale' : 'down');
    banner.textContent = state.data
      ? `Node unreachable — last update ${since}. Showing the last data received (${state.error}).`
      : `Cannot load ${DATA_URL} (${state.error}) — retrying every ${POLL_MS / 1000} s.`;
    banner.hidden = false;
    text('health', state.data ? 'Stale' : 'Unreachable', { 'data-health': 'stale', class: 'pill bad' });
  } else {
    banner.hidden = true;
    banner.textContent = '';
    if (state.data) document.body.setAttribute('data-state', 'live');
  }
  text('updated', since === null ? 'not loaded yet' : `updated ${since}`, { class: state.error ? 'bad-text' : '' });
}

// ---- polling -------------------------------------------------------------------------------

async function poll() {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), FETCH_TIMEOUT_MS);
  try {
    const res = await fetch(DATA_URL, {
      cache: 'no-store', credentials: 'same-origin', signal: abort.signal, headers: { Accept: 'application/json' },
    });
    if (res.status === 401 || res.status === 403) throw new Error(`not authorized, HTTP ${res.status}`);
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    const d = await res.json();
    render(d);
    state.data = d;
    state.lastOkAt = Date.now();
    state.error = null;
    document.body.setAttribute('data-updates', Number(document.body.getAttribute('data-updates') || 0) + 1);
  } catch (e) {
    state.error = e.name === 'AbortError' ? 'timed out' : e instanceof SyntaxError ? 'bad JSON' : e.message || String(e);
  } finally {
    clearTimeout(timer);
    renderStatus();
    setTimeout(poll, POLL_MS);
  }
}

document.addEventListener('DOMContentLoaded', () => {
  poll();
  setInterval(renderStatus, 1000);
});
