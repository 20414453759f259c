// The edgerelay dashboard: reads the statistics, message and suppression
// APIs with the key typed in (kept in this tab's session storage, sent only
// in the Authorization header) and draws them. Every value from the API is
// written as text, never as markup.
"use strict";

const KEY = "edgerelay.key";
const SVG = "http://www.w3.org/2000/svg";
const RATES = [
  ["delivered", "Delivered", "#23864a"],
  ["bounced", "Bounced", "#c23b3b"],
  ["complained", "Complained", "#8e44ad"],
  ["human_opened", "Opened (people)", "#2f6fde"],
  ["human_clicked", "Clicked (people)", "#c77c0a"],
];
const $ = (id) => document.getElementById(id);

class ApiError extends Error {
  constructor(status, body) {
    const e = (body && body.error) || {};
    super(e.message || `HTTP ${status}`);
    this.status = status;
    this.rule = e.rule || "";
  }
}

async function api(path) {
  const resp = await fetch(path, {
    headers: { Authorization: `Bearer ${sessionStorage.getItem(KEY) || ""}` },
    credentials: "omit",
    cache: "no-store",
  });
  let body = null;
  try { body = await resp.json(); } catch (_) { body = null; }
  if (!resp.ok) throw new ApiError(resp.status, body);
  return body;
}

function el(tag, attrs = {}, text) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = String(text);
  return node;
}

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = String(text);
  return node;
}

const pct = (r) => (r === null || r === undefined ? "–" : `${(r * 100).toFixed(r < 0.01 && r > 0 ? 2 : 1)}%`);
const num = (n) => Number(n || 0).toLocaleString("en");
const when = (secs) => new Date(secs * 1000).toISOString().replace("T", " ").slice(0, 16) + " UTC";

function range() {
  const choice = $("range").value;
  const now = new Date();
  const day = (d) => d.toISOString().slice(0, 10);
  if (choice === "48h") {
    const from = new Date(now.getTime() - 47 * 3600 * 1000);
    return { bucket: "hour", from: from.toISOString().slice(0, 13) + ":00:00Z", to: day(now) };
  }
  const days = choice === "30d" ? 30 : 7;
  return { bucket: "day", from: day(new Date(now.getTime() - (days - 1) * 86400 * 1000)), to: day(now) };
}

function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v) q.set(k, v);
  return q.toString();
}

function cards(totals) {
  const m = totals.metrics;
  const r = totals.rates;
  const list = [
    ["Accepted", num(m.requests), ""],
    ["Sent", num(m.sent), "taken by a smarthost"],
    ["Delivered", pct(r.delivered), `${num(m.delivered)} with evidence`],
    ["Bounced", pct(r.bounced), `${num(m.hard_bounces)} hard · ${num(m.soft_bounces)} soft`, r.bounced >= 0.05],
    ["Complaints", pct(r.complained), `${num(m.spam_reports)} reports`, r.complained >= 0.003],
    ["Opened", pct(r.human_opened), `${num(m.human_opens)} by people · ${num(m.opens - m.human_opens)} by machines`],
    ["Clicked", pct(r.human_clicked), `${num(m.human_clicks)} by people`],
  ];
  const box = $("cards");
  box.replaceChildren();
  for (const [label, value, sub, bad] of list) {
    const card = el("div", { class: bad ? "card bad" : "card" });
    card.append(el("div", { class: "label" }, label), el("div", { class: "value" }, value));
    if (sub) card.append(el("div", { class: "sub" }, sub));
    box.append(card);
  }
}

function frame(width, height, pad, labels, max, format) {
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img" });
  const plotH = height - pad.top - pad.bottom;
  for (let i = 0; i <= 4; i += 1) {
    const y = pad.top + plotH - (plotH * i) / 4;
    root.append(svg("line", { class: "axis", x1: pad.left, x2: width - pad.right, y1: y, y2: y }));
    root.append(svg("text", { x: pad.left - 6, y: y + 4, "text-anchor": "end" }, format((max * i) / 4)));
  }
  const step = Math.max(1, Math.ceil(labels.length / 8));
  labels.forEach((label, i) => {
    if (i % step !== 0) return;
    const x = pad.left + ((width - pad.left - pad.right) * (i + 0.5)) / labels.length;
    root.append(svg("text", { x, y: height - 6, "text-anchor": "middle" }, label));
  });
  return root;
}

function bucketLabel(start, bucket) {
  return bucket === "hour" ? start.slice(11, 16) : start.slice(5, 10);
}

function rateChart(report) {
  const width = 720, height = 260;
  const pad = { top: 12, right: 12, bottom: 26, left: 48 };
  const buckets = report.buckets;
  const labels = buckets.map((b) => bucketLabel(b.start, report.bucket));
  let max = 0;
  for (const b of buckets) for (const [k] of RATES) max = Math.max(max, b.rates[k] || 0);
  max = max <= 0 ? 0.01 : Math.min(1, max * 1.15);
  const root = frame(width, height, pad, labels, max, (v) => pct(v));
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  for (const [k, , color] of RATES) {
    const points = [];
    buckets.forEach((b, i) => {
      const v = b.rates[k];
      if (v === null || v === undefined) return;
      const x = pad.left + (plotW * (i + 0.5)) / buckets.length;
      const y = pad.top + plotH - (plotH * v) / max;
      points.push(`${x.toFixed(1)},${y.toFixed(1)}`);
      root.append(svg("circle", { cx: x.toFixed(1), cy: y.toFixed(1), r: 3, fill: color, "data-series": k }));
    });
    if (points.length > 1) {
      root.append(svg("polyline", { points: points.join(" "), fill: "none", stroke: color, "stroke-width": 2, "data-series": k }));
    }
  }
  $("chart").replaceChildren(root);
  const legend = $("legend");
  legend.replaceChildren();
  for (const [, label, color] of RATES) {
    const item = el("span");
    const swatch = svg("svg", { viewBox: "0 0 14 4", width: 14, height: 4, "aria-hidden": "true" });
    swatch.append(svg("rect", { width: 14, height: 4, fill: color }));
    item.append(swatch, document.createTextNode(label));
    legend.append(item);
  }
}

function volumeChart(report) {
  const width = 720, height = 180;
  const pad = { top: 10, right: 12, bottom: 26, left: 48 };
  const buckets = report.buckets;
  const labels = buckets.map((b) => bucketLabel(b.start, report.bucket));
  const max = Math.max(1, ...buckets.map((b) => b.metrics.requests));
  const root = frame(width, height, pad, labels, max, (v) => num(Math.round(v)));
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  const barW = Math.max(2, (plotW / buckets.length) * 0.35);
  buckets.forEach((b, i) => {
    const x = pad.left + (plotW * (i + 0.5)) / buckets.length;
    [["requests", "#9db7e8", -barW], ["sent", "#2f6fde", 0]].forEach(([k, color, dx]) => {
      const h = (plotH * b.metrics[k]) / max;
      const bar = svg("rect", { x: (x + dx).toFixed(1), y: (pad.top + plotH - h).toFixed(1), width: barW.toFixed(1), height: h.toFixed(1), fill: color, "data-series": k });
      bar.append(svg("title", {}, `${b.start}: ${num(b.metrics[k])} ${k}`));
      root.append(bar);
    });
  });
  $("volume").replaceChildren(root);
}

function table(id, head, rows, empty) {
  const t = $(id);
  t.replaceChildren();
  const tr = el("tr");
  for (const [label, cls] of head) tr.append(el("th", cls ? { class: cls } : {}, label));
  const thead = el("thead");
  thead.append(tr);
  const body = el("tbody");
  t.append(thead, body);
  if (!rows.length) {
    const row = el("tr");
    row.append(el("td", { colspan: head.length, class: "empty" }, empty));
    body.append(row);
    return;
  }
  for (const cells of rows) {
    const row = el("tr");
    cells.forEach((value, i) => row.append(el("td", head[i][1] ? { class: head[i][1] } : {}, value)));
    body.append(row);
  }
}

async function load() {
  const r = range();
  const stream = $("stream").value;
  $("board-error").hidden = true;
  const [report, tags, failed, suppressed, guard] = await Promise.all([
    api(`/v1/stats?${query({ ...r, stream })}`),
    api(`/v1/stats/tags?${query({ from: r.from.slice(0, 10), to: r.to, stream })}`),
    api("/v1/messages?status=failed&limit=10"),
    api("/v1/suppressions?limit=20"),
    api("/v1/streams/marketing"),
  ]);
  banner(guard);
  cards(report.totals);
  rateChart(report);
  volumeChart(report);
  table("tags", [["Tag"], ["Accepted", "num"], ["Sent", "num"], ["Bounced", "num"], ["Complaints", "num"], ["Opened", "num"], ["Clicked", "num"]],
    tags.data.map((t) => [t.tag, num(t.metrics.requests), num(t.metrics.sent), pct(t.rates.bounced), pct(t.rates.complained), pct(t.rates.human_opened), pct(t.rates.human_clicked)]),
    "No tagged mail in this range.");
  table("failures", [["When"], ["To"], ["Subject"], ["Reply", "reply"]],
    failed.data.map((m) => [when(m.updated_at), (m.rcpt_to || []).join(", "), m.subject || "", m.last_error || ""]),
    "No failed messages.");
  table("suppressions", [["Address"], ["Reason"], ["Scope"], ["Since"]],
    suppressed.data.map((s) => [s.address, s.reason, s.scope, when(s.created_at)]),
    "Nobody is suppressed.");
}

// The reputation guard's pause, when there is one: why, and how to lift it.
function banner(guard) {
  const box = $("paused");
  if (!guard || guard.state !== "paused") {
    box.hidden = true;
    return;
  }
  const p = guard.paused || {};
  const rates = p.rates || {};
  const limits = p.thresholds || {};
  const why = guard.reason === "hard_bounce_rate"
    ? `the hard-bounce rate reached ${pct(rates.hard_bounce)} (threshold ${pct(limits.hard_bounce_rate)})`
    : `the complaint rate reached ${pct(rates.complaint)} (threshold ${pct(limits.complaint_rate)})`;
  const sent = p.volume ? ` over ${num(p.volume.sent)} messages sent` : "";
  const since = guard.paused_at ? ` since ${guard.paused_at.replace("T", " ").slice(0, 16)} UTC` : "";
  box.textContent = `Marketing mail is paused${since}: ${why}${sent}. It is held, not lost; ` +
    "transactional mail goes on. An admin key resumes it with POST /v1/streams/marketing/resume.";
  box.hidden = false;
}

function show(board) {
  $("login").hidden = board;
  $("board").hidden = !board;
  $("controls").hidden = !board;
}

function explain(err) {
  if (err.status === 401) return "That key was not accepted. Check it and try again.";
  if (err.status === 403) return `This key may not read these records (${err.rule || "forbidden"}).`;
  return `The dashboard could not load: ${err.message}`;
}

async function open() {
  try {
    await load();
    show(true);
  } catch (err) {
    if (err.status === 401 || err.status === 403) {
      sessionStorage.removeItem(KEY);
      show(false);
      const msg = $("login-error");
      msg.textContent = explain(err);
      msg.hidden = false;
    } else {
      show(true);
      const msg = $("board-error");
      msg.textContent = explain(err);
      msg.hidden = false;
    }
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("login").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(KEY, $("key").value.trim());
    $("key").value = "";
    $("login-error").hidden = true;
    open();
  });
  $("refresh").addEventListener("click", open);
  $("range").addEventListener("change", open);
  $("stream").addEventListener("change", open);
  $("forget").addEventListener("click", () => {
    sessionStorage.removeItem(KEY);
    show(false);
  });
  if (sessionStorage.getItem(KEY)) open();
});
