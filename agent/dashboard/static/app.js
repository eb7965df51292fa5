// The piswarm dashboard: plain ES module, no framework, no CDN (a Pi cluster
// often has no internet). It polls the agent that served it: /v1/cluster every
// REFRESH_MS and /v1/cluster/history (the serving agent's last ten minutes)
// less often. For a node whose health is warn or fail it also asks for the
// checks' output (/v1/cluster/nodes/<name>/checks, fetched from that node by
// the serving agent), only for those nodes, every OUTPUT_EVERY_MS or when
// gossip names other failing checks. Everything from the network is written
// with textContent, never as HTML: hostnames and check names come from other
// nodes.
const REFRESH_MS = 2000;
const HISTORY_EVERY = 5;
const OUTPUT_EVERY_MS = 10000;
// Below the agent's bound on peer reads at once (agent/cluster/remote.ts CHECKS_IN_FLIGHT).
const OUTPUT_AT_ONCE = 3;

const $ = (sel) => document.querySelector(sel);
function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c instanceof Node ? c : String(c));
  return e;
}
const pct = (v) => (v === null || v === undefined ? '–' : `${Math.round(v)}%`);
function duration(s) {
  if (s === null || s === undefined) return '–';
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  if (s < 172800) return `${Math.round(s / 3600)}h`;
  return `${Math.round(s / 86400)}d`;
}

function spark(points, index, max) {
  const vals = (points ?? []).map((p) => p[index]).filter((v) => typeof v === 'number');
  if (vals.length < 2) return null;
  const w = 60;
  const h = 16;
  const top = max ?? Math.max(...vals, 1);
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('class', 'spark');
  svg.setAttribute('width', w);
  svg.setAttribute('height', h);
  const line = document.createElementNS(ns, 'polyline');
  line.setAttribute('points', vals.map((v, i) => `${((i / (vals.length - 1)) * w).toFixed(1)},${(h - (Math.min(v, top) / top) * (h - 2) - 1).toFixed(1)}`).join(' '));
  svg.append(line);
  return svg;
}

let history = {};
// Check outputs by node id: { at, checks, omitted } or { at, error }; a node in flight is in `asking`.
const outputs = new Map();
const asking = new Set();

function troubled(n) {
  return (n.health.status === 'warn' || n.health.status === 'fail') && n.gossip?.state === 'alive';
}

function askOutputs(nodes) {
  const live = new Set(nodes.map((n) => n.id));
  for (const id of outputs.keys()) if (!live.has(id)) outputs.delete(id);
  for (const n of nodes.filter(troubled)) {
    const o = outputs.get(n.id);
    if (asking.size >= OUTPUT_AT_ONCE) break;
    // Asked again when gossip names other checks than those fetched (the agent still caches 5 s).
    const names = n.health.checks.join(',');
    if (asking.has(n.id) || (o && o.names === names && Date.now() - o.at < OUTPUT_EVERY_MS)) continue;
    asking.add(n.id);
    get(`/v1/cluster/nodes/${encodeURIComponent(n.hostname)}/checks`)
      .then((r) => outputs.set(n.id, { at: Date.now(), names, checks: r.checks, omitted: r.omitted }))
      .catch((err) => outputs.set(n.id, { at: Date.now(), names, error: err.message }))
      .finally(() => asking.delete(n.id));
  }
}

function outputList(n) {
  const o = troubled(n) ? outputs.get(n.id) : null;
  if (!o) return null;
  if (o.error) return el('span', { class: 'checks' }, `output unavailable (${o.error})`);
  return el('ul', { class: 'outputs' },
    ...o.checks.map((c) => el('li', { class: c.status, 'data-check': c.name, title: c.observedAt ?? '' }, `${c.name}${c.component ? ` (${c.component})` : ''}: ${c.output}`)),
    o.omitted ? el('li', { class: 'muted' }, `and ${o.omitted} more`) : null);
}

function nodeRow(n) {
  const f = n.facts;
  const hist = history[n.id]?.points;
  const state = n.gossip ? n.gossip.state : 'noagent';
  const role = n.swarm.managerStatus === 'Leader' ? ['manager', el('span', { class: 'badge' }, 'leader')] : [n.swarm.role];
  const health = n.health.status ?? '–';
  return el('tr', { class: `row-${state}`, 'data-node': n.hostname, 'data-state': state },
    el('td', {}, n.hostname, n.self ? el('span', { class: 'badge', title: 'this page is served by this node' }, 'here') : null, el('span', { class: 'checks' }, n.addr ?? '')),
    el('td', {}, ...role, n.swarm.availability && n.swarm.availability !== 'active' ? el('span', { class: 'badge' }, n.swarm.availability) : null),
    el('td', {}, el('span', { class: state }, n.gossip ? state : 'no agent'), el('span', { class: 'checks' }, n.gossip ? `for ${duration(n.gossip.sinceS)}` : '', n.swarm.state ? ` · swarm ${n.swarm.state}` : '')),
    el('td', {}, el('span', { class: health }, health), n.health.checks.length ? el('span', { class: 'checks' }, n.health.checks.join(', ')) : null, outputList(n)),
    el('td', {}, pct(f.cpuPct), spark(hist, 1, 100)),
    el('td', {}, pct(f.memPct), spark(hist, 2, 100)),
    el('td', {}, f.tempC === null ? '–' : `${f.tempC}°C`, f.throttledNow ? el('span', { class: 'badge fail' }, 'throttled') : null, f.undervoltage ? el('span', { class: 'badge warn' }, 'under-voltage') : null, spark(hist, 3, 90)),
    el('td', {}, pct(f.rootFreePct)),
    el('td', {}, f.diskReadMBps === null ? '–' : `${f.diskReadMBps} MB/s`),
    el('td', {}, duration(f.uptimeS)),
    el('td', {}, f.model ?? '–', el('span', { class: 'checks' }, f.arch ?? '')),
    el('td', {}, f.version ?? '–'),
    el('td', { class: f.stale ? 'warn' : 'muted' }, f.ageS === null ? 'none' : `${duration(f.ageS)} old${f.stale ? ' (stale)' : ''}`),
  );
}

function render(doc) {
  const c = doc.cluster;
  $('#cluster-name').textContent = c.name;
  const managers = `managers ${c.managersReachable ?? '?'}/${c.managers}${c.managerTarget !== null ? ` (target ${c.managerTarget})` : ''}${c.quorumMargin !== null ? `, quorum margin ${c.quorumMargin}` : ''}`;
  $('#summary').textContent = `${c.members.alive} alive · ${c.members.suspect} suspect · ${c.members.dead} dead · ${managers} · served by ${doc.servedBy.hostname} (${c.source === 'engine' ? "manager's view" : 'gossip view'})`;
  $('#nodes tbody').replaceChildren(...doc.nodes.map(nodeRow));
  askOutputs(doc.nodes);

  const services = doc.services ?? null;
  $('#services-note').textContent = services === null ? 'Services are listed by managers; no manager answered this node yet.' : services.length === 0 ? 'No services.' : '';
  $('#services').hidden = !services || services.length === 0;
  $('#services tbody').replaceChildren(...(services ?? []).map((s) =>
    el('tr', { 'data-service': s.name }, el('td', {}, s.name), el('td', {}, s.image), el('td', { class: s.running >= (s.desired ?? s.running) ? 'pass' : 'warn' }, `${s.running}/${s.desired ?? 'global'}`), el('td', {}, s.ports.join(', ') || '–'), el('td', {}, s.nodes.join(', ')))));

  const e = c.election;
  $('#formation').replaceChildren(
    el('dt', {}, 'swarm'), el('dd', {}, c.swarmId ?? 'none yet'),
    el('dt', {}, 'created by'), el('dd', {}, e ? (doc.nodes.find((n) => n.id === e.winner)?.hostname ?? e.winner ?? 'undecided') : 'unknown here'),
    el('dt', {}, 'when'), el('dd', {}, e ? new Date(e.at).toLocaleString() : '–'),
    el('dt', {}, 'why'), el('dd', {}, e ? e.why : '–'),
  );
  const steps = c.autopilot?.steps ?? [];
  $('#steps').replaceChildren(...(c.autopilot === null ? [el('li', {}, 'the autopilot runs on managers')] : steps.length === 0 ? [el('li', { class: 'none' }, 'no steps taken')] : steps.slice().reverse().map((s) =>
    el('li', {}, `${new Date(s.at).toLocaleTimeString()} ${s.kind} ${s.hostname} (${s.reason}) ${s.outcome === 'refused' ? `refused: ${s.refusal}` : ''}`))));
}

async function get(path) {
  const r = await fetch(path, { cache: 'no-store' });
  if (!r.ok) throw new Error(`${path}: HTTP ${r.status}`);
  return r.json();
}

let round = 0;
async function refresh() {
  try {
    if (round++ % HISTORY_EVERY === 0) history = (await get('/v1/cluster/history')).nodes;
    render(await get('/v1/cluster'));
    $('#conn').textContent = `updated ${new Date().toLocaleTimeString()}`;
  } catch (err) {
    $('#conn').textContent = `cannot reach the agent (${err.message}); retrying`;
  } finally {
    setTimeout(refresh, REFRESH_MS);
  }
}
refresh();
