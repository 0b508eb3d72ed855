// The Plasma Stream dashboard: polls api/state once a second and draws
// each section of it. Sections the page knows have a renderer below; any
// other is drawn generically, so a new server-side section needs no
// change here. Our own code only: no libraries.
"use strict";

const POLL_MS = 1000;
const SVG = "http://www.w3.org/2000/svg";

// h builds an element: h("td", {class: "num"}, "12", child...).
function h(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v !== undefined && v !== null && v !== false) e.setAttribute(k, v);
  }
  for (const k of kids.flat()) {
    if (k !== undefined && k !== null) e.append(k instanceof Node ? k : String(k));
  }
  return e;
}

function bytes(n) {
  if (n === undefined || n === null) return "–";
  const u = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let i = 0;
  while (Math.abs(n) >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i === 0 ? n.toFixed(0) : n.toFixed(n < 10 ? 2 : 1)) + " " + u[i];
}
const rate = (n) => bytes(n) + "/s";

function duration(s) {
  if (s < 1) return (s * 1000).toFixed(0) + " ms";
  if (s < 60) return s.toFixed(1) + " s";
  const m = Math.floor(s / 60), hh = Math.floor(m / 60), d = Math.floor(hh / 24);
  if (d > 0) return d + "d " + (hh % 24) + "h";
  if (hh > 0) return hh + "h " + (m % 60) + "m";
  return m + "m " + Math.floor(s % 60) + "s";
}

const ago = (t) => duration(Math.max(0, (Date.now() - new Date(t).getTime()) / 1000)) + " ago";
const table = (heads, rows) => h("table", {}, h("thead", {}, h("tr", {}, heads.map((x) => h("th", { class: x.endsWith(" ") ? "num" : null }, x.trim())))), h("tbody", {}, rows));
const figure = (k, v, id) => h("div", { class: "figure" }, h("div", { class: "v", id: id }, v), h("div", { class: "k" }, k));
const badge = (cls, text) => h("span", { class: "badge " + cls }, text);

// bar is a progress bar: frac in [0, 1], or null when the total is unknown.
function bar(frac, label, cls) {
  const s = h("span");
  const b = h("div", { class: "bar " + (cls || "") + (frac === null ? " unknown" : "") }, s, h("em", {}, label));
  if (frac !== null) s.style.width = (Math.min(1, Math.max(0, frac)) * 100).toFixed(1) + "%";
  return b;
}

// lineChart draws series (each {cls, values: [[t, v]...]}) as an SVG.
function lineChart(series, fmt, area) {
  const W = 520, H = 140, L = 62, B = 18, T = 6;
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.setAttribute("class", "chart");
  svg.setAttribute("preserveAspectRatio", "none");
  const all = series.flatMap((s) => s.values);
  if (all.length < 2) {
    const t = document.createElementNS(SVG, "text");
    t.setAttribute("x", L); t.setAttribute("y", H / 2); t.textContent = "collecting samples…";
    svg.append(t);
    return svg;
  }
  const t0 = Math.min(...all.map((p) => p[0])), t1 = Math.max(...all.map((p) => p[0]));
  const vmax = Math.max(1, ...all.map((p) => p[1]));
  const x = (t) => L + (W - L - 4) * (t1 === t0 ? 1 : (t - t0) / (t1 - t0));
  const y = (v) => H - B - (H - B - T) * (v / vmax);
  const add = (tag, attrs, text) => {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    svg.append(e);
  };
  for (const f of [0, 0.5, 1]) {
    add("line", { class: "grid", x1: L, x2: W - 4, y1: y(vmax * f), y2: y(vmax * f) });
    add("text", { x: 2, y: y(vmax * f) + 3 }, fmt(vmax * f));
  }
  add("text", { x: L, y: H - 4 }, "-" + duration((t1 - t0) / 1000));
  add("text", { x: W - 30, y: H - 4 }, "now");
  for (const s of series) {
    let pts = s.values.map((p) => x(p[0]).toFixed(1) + "," + y(p[1]).toFixed(1)).join(" ");
    if (area && s.values.length) pts = `${x(s.values[0][0])},${y(0)} ${pts} ${x(s.values[s.values.length - 1][0])},${y(0)}`;
    add(area ? "polygon" : "polyline", { class: s.cls, points: pts });
  }
  return svg;
}

// ---- the sections the page knows -------------------------------------

const renderers = {};

renderers.node = (d) => {
  document.getElementById("node-name").textContent = d.name;
  document.title = "Plasma Stream · " + d.name;
  const st = d.store;
  const used = st ? bar(st.capacity ? st.used / st.capacity : 0, bytes(st.used) + " of " + bytes(st.capacity), "usage") : h("span", { class: "err" }, "store down");
  return [
    h("div", { class: "figures" },
      figure("version", d.version), figure("uptime", duration(d.uptime_seconds)),
      figure("objects", st ? st.objects : "–", "node-objects"), figure("store clients", st ? st.clients : "–"),
      figure("connections", d.connections), figure("security", d.secured)),
    h("h3", {}, "store ", d.store_up ? badge("ok", "up") : badge("bad", "down"), " ", h("span", { class: "mono muted" }, d.store_socket)),
    used,
    st ? h("div", { class: "muted" }, `${st.sealed} sealed, ${bytes(st.pinned)} pinned, ${st.evictions} evictions (${bytes(st.evicted_bytes)}), ${st.compactions} compactions`) : null,
    h("h3", {}, "moved since start"),
    h("div", { class: "figures" },
      figure("sent", bytes(d.counters.bytes_sent)), figure("objects sent", d.counters.objects_sent),
      figure("received", bytes(d.counters.bytes_received)), figure("objects received", d.counters.objects_received),
      figure("integrity failures", d.counters.integrity_failures)),
  ];
};

renderers.history = (d) => {
  const thr = { sent: [], received: [] };
  for (let i = 1; i < d.length; i++) {
    const dt = (d[i].t - d[i - 1].t) / 1000;
    if (dt <= 0) continue;
    thr.sent.push([d[i].t, Math.max(0, d[i].sent - d[i - 1].sent) / dt]);
    thr.received.push([d[i].t, Math.max(0, d[i].received - d[i - 1].received) / dt]);
  }
  const usage = d.filter((s) => s.store_up).map((s) => [s.t, s.used]);
  const legend = (items) => h("div", { class: "legend" }, items.map(([cls, name]) => {
    const i = h("i"); i.classList.add("swatch-" + cls);
    i.style.background = getComputedStyle(document.documentElement).getPropertyValue(cls === "used" ? "--ok" : cls === "sent" ? "--sent" : "--recv");
    return h("span", {}, i, name);
  }));
  return h("div", { class: "charts" },
    h("div", {}, h("h3", {}, "throughput"), legend([["sent", "sent"], ["received", "received"]]),
      lineChart([{ cls: "sent", values: thr.sent }, { cls: "received", values: thr.received }], rate)),
    h("div", {}, h("h3", {}, "store usage"), legend([["used", "used"]]),
      lineChart([{ cls: "used", values: usage }], bytes, true)));
};

const openDetails = new Set(); // recent transfers whose objects are shown
document.addEventListener("toggle", (ev) => {
  const id = Number(ev.target.dataset && ev.target.dataset.id);
  if (!id) return;
  if (ev.target.open) openDetails.add(id); else openDetails.delete(id);
}, true);
const lastBytes = new Map(); // transfer id -> [time ms, bytes]: for live rates

renderers.transfers = (d, now) => {
  const seen = new Set();
  const active = d.active.map((t) => {
    seen.add(t.id);
    const prev = lastBytes.get(t.id);
    let r = t.seconds > 0 ? t.bytes / t.seconds : 0;
    if (prev && now > prev[0]) r = (t.bytes - prev[1]) / ((now - prev[0]) / 1000);
    lastBytes.set(t.id, [now, t.bytes]);
    const frac = t.total > 0 ? t.bytes / t.total : null;
    const label = bytes(t.bytes) + (t.total > 0 ? " of " + bytes(t.total) + " · " + (frac * 100).toFixed(0) + "%" : "");
    return h("tr", { "data-transfer": t.id, "data-bytes": t.bytes, "data-total": t.total },
      h("td", {}, t.kind), h("td", { class: "mono" }, t.peer), h("td", { class: "num" }, t.done + "/" + t.objects),
      h("td", {}, bar(frac, label)), h("td", { class: "num" }, rate(Math.max(0, r))), h("td", { class: "num" }, duration(t.seconds)));
  });
  for (const id of lastBytes.keys()) if (!seen.has(id)) lastBytes.delete(id);
  const recent = d.recent.map((t) => {
    const outcome = t.error ? badge("bad", "failed") : t.failed > 0 ? badge("warn", t.failed + " failed") : badge("ok", "ok");
    const objs = (t.outcomes || []).map((o) => h("tr", {},
      h("td", { class: "mono" }, o.id), h("td", {}, o.ok ? badge("ok", o.status) : badge("bad", o.status)),
      h("td", { class: "num" }, bytes(o.bytes)), h("td", { class: "err" }, o.message || "")));
    const details = objs.length || t.error ? h("details", { open: openDetails.has(t.id) ? "" : null, "data-id": t.id }, h("summary", {}, "objects"),
      t.error ? h("div", { class: "err" }, t.error) : null, objs.length ? table(["object", "outcome", "bytes ", ""], objs) : null) : null;
    return h("tr", { "data-recent": t.id },
      h("td", {}, t.kind), h("td", { class: "mono" }, t.peer), h("td", { class: "num" }, t.objects),
      h("td", { class: "num" }, bytes(t.bytes)), h("td", { class: "num" }, t.seconds > 0 ? rate(t.bytes / t.seconds) : "–"),
      h("td", { class: "num" }, duration(t.seconds)), h("td", {}, outcome, details), h("td", { class: "muted" }, ago(t.start)));
  });
  const errors = d.errors.map((e) => h("tr", {}, h("td", { class: "muted" }, ago(e.time)), h("td", { class: "mono" }, e.where), h("td", { class: "err" }, e.message)));
  return [
    h("h3", {}, "in progress"),
    active.length ? table(["kind", "peer", "objects ", "progress", "rate ", "elapsed "], active) : h("div", { class: "empty", id: "no-active" }, "no transfer under way"),
    h("h3", {}, "recent"),
    recent.length ? table(["kind", "peer", "objects ", "bytes ", "rate ", "took ", "outcome", "started"], recent) : h("div", { class: "empty" }, "none yet"),
    h("h3", {}, "errors"),
    errors.length ? table(["when", "where", "error"], errors) : h("div", { class: "empty" }, "none"),
  ];
};

renderers.cluster = (d) => {
  if (!d.clustered) return h("div", { class: "empty" }, "standalone: this node is not in a cluster (start it with --etcd)");
  const rows = d.nodes.map((n) => h("tr", { "data-node": n.name, class: n.alive ? "alive" : "dead" },
    h("td", {}, n.name, n.self ? h("span", { class: "muted" }, " (this node)") : null),
    h("td", {}, n.alive ? badge("alive", "alive") : badge("dead", "dead")),
    h("td", { class: "mono" }, n.address), h("td", {}, (n.groups || []).map((g) => badge("group", g))),
    h("td", {}, n.version), h("td", { class: "muted" }, n.alive ? "up " + ago(n.started).replace(" ago", "") : "last seen " + ago(n.last_seen))));
  return table(["node", "liveness", "address", "groups", "version", "since"], rows);
};

// tails are parts of a section drawn once, below what is redrawn (a form
// being typed into must not be replaced).
const tails = { cluster: (d) => (d.clustered ? locateBox() : null) };

// The locate form outlives the redraws of its section.
let locateEl = null;
function locateBox() {
  if (locateEl) return locateEl;
  locateEl = h("div", {}, h("h3", {}, "find an object"), document.getElementById("locate-form").content.cloneNode(true));
  locateEl.querySelector("form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const out = locateEl.querySelector("#locate-result");
    const id = locateEl.querySelector("#locate-id").value.trim();
    out.replaceChildren(h("span", { class: "muted" }, "looking…"));
    try {
      const r = await fetch("api/locate?id=" + encodeURIComponent(id));
      const j = await r.json();
      if (!r.ok) { out.replaceChildren(h("div", { class: "err" }, j.error)); return; }
      const hs = j.holders || [], cold = j.cold || [];
      const parts = [hs.length
        ? table(["holder", "address", "size ", "digest"], hs.map((l) => h("tr", { "data-holder": l.node }, h("td", {}, l.node), h("td", { class: "mono" }, l.address), h("td", { class: "num" }, bytes(l.size)), h("td", { class: "mono" }, l.digest || "–"))))
        : h("div", { class: "empty", id: "locate-none" }, (cold.length ? "no node holds it in memory: " : "no node holds ") + j.id)];
      if (cold.length) {
        parts.push(table(["cold copy in", "written by", "size ", "digest"], cold.map((c) => h("tr", { "data-cold": c.tier }, h("td", { class: "mono" }, c.host ? c.tier + " on " + c.host : c.tier), h("td", {}, c.node), h("td", { class: "num" }, bytes(c.size)), h("td", { class: "mono" }, c.digest || "–")))));
      }
      out.replaceChildren(...parts);
    } catch (e) {
      out.replaceChildren(h("div", { class: "err" }, "locate failed: " + e));
    }
  });
  return locateEl;
}

// generic draws a section no renderer knows: a table for a list of
// records, a list of fields for a record, else the value.
function generic(d) {
  const cell = (v) => (v !== null && typeof v === "object" ? JSON.stringify(v) : String(v));
  if (Array.isArray(d)) {
    if (!d.length) return h("div", { class: "empty" }, "none");
    const keys = [...new Set(d.flatMap((r) => (r && typeof r === "object" ? Object.keys(r) : ["value"])))];
    return table(keys, d.map((r) => h("tr", {}, keys.map((k) => h("td", {}, cell(r && typeof r === "object" ? r[k] ?? "" : r))))));
  }
  if (d && typeof d === "object") {
    return table(["", ""], Object.entries(d).map(([k, v]) => h("tr", {}, h("th", {}, k), h("td", {}, Array.isArray(v) || (v && typeof v === "object") ? generic(v) : cell(v)))));
  }
  return h("div", {}, cell(d));
}

// ---- polling ------------------------------------------------------------

const wide = new Set(["history", "transfers"]);
const boxes = new Map(); // section name -> its <section>

function draw(state) {
  const main = document.getElementById("sections");
  for (const s of state.sections) {
    let box = boxes.get(s.name);
    if (!box) {
      box = h("section", { id: "section-" + s.name, class: wide.has(s.name) ? "wide" : null },
        h("h2", {}, s.title), h("div", { class: "body" }), h("div", { class: "tail" }));
      boxes.set(s.name, box);
      main.append(box);
    }
    const tail = box.querySelector(".tail");
    if (!tail.firstChild && tails[s.name] && !s.error) {
      const t = tails[s.name](s.data);
      if (t) tail.append(t);
    }
    let body;
    if (s.error) body = h("div", { class: "err" }, s.error);
    else {
      try { body = (renderers[s.name] || generic)(s.data, Date.now()); }
      catch (e) { body = h("div", { class: "err" }, "cannot draw this section: " + e); }
    }
    box.querySelector(".body").replaceChildren(...[body].flat().filter((x) => x != null));
  }
}

let lastOK = 0;
async function poll() {
  const status = document.getElementById("status");
  try {
    const r = await fetch("api/state", { cache: "no-store" });
    if (!r.ok) throw new Error((await r.text()).trim() || r.statusText);
    draw(await r.json());
    lastOK = Date.now();
    status.textContent = "live · updated " + new Date().toLocaleTimeString();
    status.classList.remove("lost");
  } catch (e) {
    status.textContent = "connection lost" + (lastOK ? " since " + new Date(lastOK).toLocaleTimeString() : "") + ": " + e.message;
    status.classList.add("lost");
  }
  setTimeout(poll, POLL_MS);
}
poll();
