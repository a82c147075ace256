// app.js draws a round's dashboard from the tracker's snapshots: it listens
// to api/events and, if the browser cannot stream, polls api/status.
//
// Every string in a snapshot is untrusted: peers choose their own IDs, and
// reasons and event details quote them. So the page is built with
// createElement, textContent and setAttribute only; nothing here parses
// snapshot data as HTML.
(function () {
  "use strict";

  const SVG_NS = "http://www.w3.org/2000/svg";
  const POLL_MS = 2000;          // polling period when streaming fails
  const STREAM_RETRY_POLLS = 15; // try streaming again after this many polls
  const STEP_ROWS = 20;
  const EVENT_ROWS = 50;

  // Headless browsers that render a page for a screenshot or a DOM dump
  // wait until no request is pending, and a stream is always pending. In
  // them (and in browsers under automation) the page reads one snapshot
  // from the stream, closes it, and polls.
  const HEADLESS = navigator.webdriver === true || /\bHeadless/.test(navigator.userAgent);

  let last = null;   // the latest snapshot
  let pollTimer = 0; // the next poll, while polling

  // ---- small helpers -------------------------------------------------

  function $(id) { return document.getElementById(id); }

  // el makes an HTML element with an optional class and text.
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  // svg makes an SVG element; attribute values here are numbers or our own
  // constants, never snapshot strings.
  function svg(tag, attrs) {
    const e = document.createElementNS(SVG_NS, tag);
    for (const k in attrs) e.setAttribute(k, String(attrs[k]));
    return e;
  }

  function setText(id, text) {
    const e = $(id);
    const t = String(text);
    if (e.textContent !== t) e.textContent = t;
  }

  // short abbreviates a long ID or CID to its start and end.
  function short(s) {
    const cs = Array.from(String(s || ""));
    if (cs.length <= 14) return cs.join("");
    return cs.slice(0, 4).join("") + "…" + cs.slice(-6).join("");
  }

  // idSpan shows a shortened ID with the full value as its tooltip.
  function idSpan(s, cls) {
    const e = el("span", cls ? "id " + cls : "id", s ? short(s) : "—");
    if (s) e.setAttribute("title", String(s));
    return e;
  }

  function num(x) { return typeof x === "number" && isFinite(x) ? x : 0; }

  function fmtInt(n) { return Math.round(num(n)).toLocaleString("en-US"); }

  function fmtLoss(v) {
    v = num(v);
    return Math.abs(v) < 100 ? v.toFixed(3) : v.toPrecision(4);
  }

  // fmtSI writes v with an SI prefix: 1.23 MB/s, 950 B/s.
  function fmtSI(v, unit) {
    v = num(v);
    const prefixes = ["", "k", "M", "G", "T", "P", "E"];
    let i = 0;
    while (Math.abs(v) >= 999.5 && i < prefixes.length - 1) { v /= 1000; i++; }
    const digits = i === 0 && Number.isInteger(v) ? 0 : Math.abs(v) >= 100 ? 0 : Math.abs(v) >= 10 ? 1 : 2;
    return v.toFixed(digits) + " " + prefixes[i] + unit;
  }

  function fmtRate(v) {
    v = num(v);
    if (v >= 10000) return fmtInt(v);
    return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
  }

  // fmtDur writes a number of seconds: 0.42 s, 12.3 s, 3 min 20 s, 2 h 5 min.
  function fmtDur(sec) {
    sec = num(sec);
    if (sec < 0) sec = 0;
    if (sec < 10) return sec.toFixed(sec < 1 ? 2 : 1) + " s";
    if (sec < 60) return Math.round(sec) + " s";
    const s = Math.round(sec);
    if (s < 3600) return Math.floor(s / 60) + " min " + (s % 60) + " s";
    if (s < 86400) return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
    return Math.floor(s / 86400) + " d " + Math.floor((s % 86400) / 3600) + " h";
  }

  // parseTime reads an RFC 3339 time from Go; the zero time (an unset
  // field) and anything unreadable give null.
  function parseTime(s) {
    if (typeof s !== "string") return null;
    const t = Date.parse(s.replace(/(\.\d{3})\d+/, "$1"));
    if (!isFinite(t) || t < Date.UTC(1971, 0, 1)) return null;
    return t;
  }

  // clock writes the UTC time of day of an RFC 3339 time.
  function clock(s) {
    const t = parseTime(s);
    return t === null ? "—" : new Date(t).toISOString().slice(11, 19);
  }

  function since(s, now) {
    const t = parseTime(s);
    if (t === null || now === null) return "—";
    return fmtDur((now - t) / 1000) + " ago";
  }

  function list(x) { return Array.isArray(x) ? x : []; }

  // ---- rendering -----------------------------------------------------

  function render(s) {
    last = s;
    renderHeader(s);
    renderChart(s);
    renderSample(s);
    renderThroughput(s);
    renderPeers(s);
    renderSteps(s);
    renderEvents(s);
  }

  function renderHeader(s) {
    const name = s.name ? String(s.name) : "Unnamed round";
    setText("name", name);
    document.title = name + " · step " + num(s.step) + " · " + $("app-title").textContent;

    const round = $("round");
    round.replaceChildren(idSpan(s.round));
    setText("step", fmtInt(s.step));
    const phase = $("phase");
    const p = s.phase ? String(s.phase) : "—";
    phase.textContent = p;
    phase.setAttribute("data-phase", /^(idle|open|closed)$/.test(p) ? p : "other");
    $("head").replaceChildren(idSpan(s.head));
    setText("model", s.model || "—");
    setText("codec", s.codec || "—");
    setText("rule", s.rule || "—");
    const now = parseTime(s.now), started = parseTime(s.started);
    setText("uptime", now !== null && started !== null ? fmtDur((now - started) / 1000) : "—");

    const invite = $("invite");
    const inv = s.invite ? String(s.invite) : "";
    if (invite.value !== inv) invite.value = inv;
    $("copy").disabled = inv === "";
  }

  // niceTicks returns about n round numbers in [lo, hi], at least
  // minStep apart.
  function niceTicks(lo, hi, n, minStep) {
    const span = hi - lo;
    if (!(span > 0)) return [lo];
    const raw = span / Math.max(1, n);
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const f = raw / mag;
    const step = Math.max(minStep, (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * mag);
    const first = Math.ceil(lo / step - 1e-9);
    const ticks = [];
    for (let i = first; i * step <= hi + step * 1e-9; i++) ticks.push(i * step);
    return ticks;
  }

  function tickLabel(v, ticks) {
    const step = ticks.length > 1 ? Math.abs(ticks[1] - ticks[0]) : 1;
    const digits = Math.max(0, Math.min(6, -Math.floor(Math.log10(step) + 1e-9)));
    return v.toFixed(digits);
  }

  function renderChart(s) {
    const box = $("chart");
    const waiting = $("waiting");
    const legend = $("legend");
    const pts = list(s.loss).filter(p => typeof p.train === "number" && isFinite(p.train));
    const floor = num(s.floor), target = num(s.target);

    if (pts.length === 0) {
      box.hidden = true;
      box.replaceChildren();
      legend.hidden = true;
      waiting.hidden = false;
      const live = list(s.peers).filter(p => p.state === "live").length;
      const peers = live + (live === 1 ? " peer" : " peers") + " live";
      let detail;
      switch (s.phase) {
        case "open": detail = "Step " + fmtInt(s.step) + " is open, with " + peers + "."; break;
        case "closed": detail = "Step " + fmtInt(s.step) + " is closed, waiting for a quorum of commits."; break;
        default: detail = "Waiting for workers to join: " + peers + ".";
      }
      setText("waiting-detail", detail + " The loss curve appears once a step is finalised.");
      setText("loss-summary", "");
      return;
    }
    waiting.hidden = true;
    box.hidden = false;
    legend.hidden = false;

    const latest = pts[pts.length - 1];
    let summary = "train " + fmtLoss(latest.train) + " after step " + fmtInt(latest.step);
    const evals = pts.filter(p => num(p.eval) > 0);
    if (evals.length > 0) summary += " · eval " + fmtLoss(evals[evals.length - 1].eval);
    if (floor > 0) summary += " · floor " + fmtLoss(floor);
    setText("loss-summary", summary);
    $("legend-eval").hidden = evals.length === 0;
    $("legend-floor").hidden = !(floor > 0);
    $("legend-target").hidden = !(target > 0);

    const W = Math.max(280, Math.round(box.clientWidth || 800));
    const H = W < 600 ? 220 : 300;
    const m = { l: 52, r: 14, t: 12, b: 30 };
    const iw = W - m.l - m.r, ih = H - m.t - m.b;

    let ylo = Infinity, yhi = -Infinity;
    for (const p of pts) {
      ylo = Math.min(ylo, p.train); yhi = Math.max(yhi, p.train);
      if (num(p.eval) > 0) { ylo = Math.min(ylo, p.eval); yhi = Math.max(yhi, p.eval); }
    }
    if (floor > 0) { ylo = Math.min(ylo, floor); yhi = Math.max(yhi, floor); }
    if (target > 0) { ylo = Math.min(ylo, target); yhi = Math.max(yhi, target); }
    if (yhi - ylo < 1e-9) { const pad = Math.max(Math.abs(yhi) * 0.1, 0.1); ylo -= pad; yhi += pad; }
    const ypad = (yhi - ylo) * 0.06;
    ylo = Math.max(0, ylo - ypad); yhi += ypad;

    let xlo = pts[0].step, xhi = pts[0].step;
    for (const p of pts) { xlo = Math.min(xlo, p.step); xhi = Math.max(xhi, p.step); }
    if (xhi === xlo) { xlo -= 1; xhi += 1; }

    const X = v => m.l + (v - xlo) / (xhi - xlo) * iw;
    const Y = v => m.t + (1 - (v - ylo) / (yhi - ylo)) * ih;
    const r2 = v => Math.round(v * 100) / 100;

    const root = svg("svg", {
      width: W, height: H, viewBox: "0 0 " + W + " " + H,
      role: "img", "aria-label": "Loss by outer step", class: "loss-chart",
    });

    // Axes and grid.
    const yt = niceTicks(ylo, yhi, H < 250 ? 4 : 5, 0);
    for (const v of yt) {
      const y = r2(Y(v));
      root.appendChild(svg("line", { class: "grid", x1: m.l, x2: W - m.r, y1: y, y2: y }));
      const t = svg("text", { class: "tick", x: m.l - 6, y: y, "text-anchor": "end", "dominant-baseline": "middle" });
      t.textContent = tickLabel(v, yt);
      root.appendChild(t);
    }
    const xt = niceTicks(xlo, xhi, Math.max(2, Math.floor(iw / 90)), 1);
    for (const v of xt) {
      const x = r2(X(v));
      root.appendChild(svg("line", { class: "tick-mark", x1: x, x2: x, y1: m.t + ih, y2: m.t + ih + 4 }));
      const t = svg("text", { class: "tick", x: x, y: m.t + ih + 16, "text-anchor": "middle" });
      t.textContent = String(v);
      root.appendChild(t);
    }
    root.appendChild(svg("line", { class: "axis", x1: m.l, x2: W - m.r, y1: m.t + ih, y2: m.t + ih }));
    root.appendChild(svg("line", { class: "axis", x1: m.l, x2: m.l, y1: m.t, y2: m.t + ih }));
    const xl = svg("text", { class: "axis-label", x: W - m.r, y: H - 2, "text-anchor": "end" });
    xl.textContent = "step";
    root.appendChild(xl);

    // Reference lines.
    const ref = (v, cls, label) => {
      const y = r2(Y(v));
      root.appendChild(svg("line", { class: cls, x1: m.l, x2: W - m.r, y1: y, y2: y }));
      const t = svg("text", { class: cls + "-label", x: W - m.r - 4, y: y - 4, "text-anchor": "end" });
      t.textContent = label + " " + fmtLoss(v);
      root.appendChild(t);
    };
    if (floor > 0) ref(floor, "floor", "floor");
    if (target > 0) ref(target, "target", "target");

    // Curves, then points on top.
    const line = (ps, key, cls) => {
      if (ps.length < 2) return;
      const d = ps.map(p => r2(X(p.step)) + "," + r2(Y(p[key]))).join(" ");
      root.appendChild(svg("polyline", { class: cls, points: d }));
    };
    line(pts, "train", "train");
    line(evals, "eval", "eval");
    const r = pts.length > 200 ? 1.5 : pts.length > 60 ? 2.5 : 3.5;
    const dot = (p, key, cls) => {
      const c = svg("circle", { class: cls, cx: r2(X(p.step)), cy: r2(Y(p[key])), r: r });
      const tip = svg("title", {});
      tip.textContent = "step " + p.step + ": " + key + " " + fmtLoss(p[key]);
      c.appendChild(tip);
      root.appendChild(c);
    };
    for (const p of evals) dot(p, "eval", "pt eval");
    for (const p of pts) dot(p, "train", "pt");

    box.replaceChildren(root);
  }

  // The observer's sample of text from the newest head that has one. It
  // is model output, so it is shown as text, never as markup.
  function renderSample(s) {
    const pts = list(s.loss).filter(p => typeof p.sample === "string" && p.sample !== "");
    $("sample-box").hidden = pts.length === 0;
    if (pts.length === 0) return;
    const p = pts[pts.length - 1];
    setText("sample-title", "What the model writes after step " + fmtInt(p.step) + " (the observer's sample, seed 1)");
    $("sample").textContent = p.sample;
  }

  function renderThroughput(s) {
    const t = s.throughput || {};
    setText("tp-samples", fmtRate(t.samples_per_sec) + " samples/s");
    setText("tp-in", fmtSI(t.bytes_in_per_sec, "B/s"));
    setText("tp-out", fmtSI(t.bytes_out_per_sec, "B/s"));
    setText("tp-step", num(t.step_seconds) > 0 ? fmtDur(t.step_seconds) : "—");
  }

  function stateClass(state) {
    return /^(live|gone|excluded)$/.test(state) ? state : "other";
  }

  // Peers are listed as a leaderboard: most verified samples first (the
  // credit a volunteer earns), then by ID.
  function byCredit(a, b) {
    const d = num(b.verified) - num(a.verified);
    if (d !== 0) return d;
    const x = String(a.id), y = String(b.id);
    return x < y ? -1 : x > y ? 1 : 0;
  }

  function renderPeers(s) {
    const peers = list(s.peers).slice().sort(byCredit);
    const now = parseTime(s.now);
    const rows = peers.map((p, i) => {
      const tr = el("tr", "peer");
      tr.appendChild(el("td", "num rank", fmtInt(i + 1)));
      const idCell = el("td");
      idCell.appendChild(idSpan(p.id));
      tr.appendChild(idCell);
      tr.appendChild(el("td", "", p.role || "—"));
      const st = el("td");
      st.appendChild(el("span", "state state-" + stateClass(p.state), p.state || "unknown"));
      tr.appendChild(st);
      tr.appendChild(el("td", "num", fmtInt(p.head_step)));
      tr.appendChild(el("td", "num", fmtInt(p.units)));
      tr.appendChild(el("td", "num", fmtInt(p.samples)));
      tr.appendChild(el("td", "num", fmtInt(p.verified)));
      tr.appendChild(el("td", "num", fmtInt(p.checks)));
      tr.appendChild(el("td", num(p.mismatches) > 0 ? "num warn" : "num", fmtInt(p.mismatches)));
      tr.appendChild(el("td", "when", since(p.last_seen, now)));
      tr.appendChild(el("td", "reason", p.reason || ""));
      return tr;
    });
    $("peers").tBodies[0].replaceChildren(...rows);
    $("no-peers").hidden = peers.length > 0;

    const count = {};
    for (const p of peers) count[p.state] = (count[p.state] || 0) + 1;
    const parts = ["live", "gone", "excluded"].filter(k => count[k]).map(k => count[k] + " " + k);
    setText("peer-summary", peers.length === 0 ? "" :
      peers.length + (peers.length === 1 ? " peer" : " peers") + (parts.length ? ": " + parts.join(", ") : ""));
  }

  function stepDuration(st, now) {
    const opened = parseTime(st.opened);
    if (opened === null) return "—";
    const end = parseTime(st.finalised) ?? parseTime(st.closed);
    if (end !== null) return fmtDur((end - opened) / 1000);
    return now !== null ? "running " + fmtDur((now - opened) / 1000) : "running";
  }

  function renderSteps(s) {
    const steps = list(s.steps).slice(-STEP_ROWS).reverse();
    const now = parseTime(s.now);
    const rows = steps.map(st => {
      const tr = el("tr", "step");
      tr.appendChild(el("td", "num", fmtInt(st.step)));
      tr.appendChild(el("td", "num", stepDuration(st, now)));
      tr.appendChild(el("td", "num", fmtInt(st.members)));
      tr.appendChild(el("td", "num", fmtInt(st.included)));
      tr.appendChild(el("td", "num", fmtInt(st.samples)));
      tr.appendChild(el("td", num(st.disputes) > 0 ? "num warn" : "num", fmtInt(st.disputes)));
      const cp = el("td");
      cp.appendChild(idSpan(st.checkpoint));
      tr.appendChild(cp);
      return tr;
    });
    $("steps").tBodies[0].replaceChildren(...rows);
    $("no-steps").hidden = steps.length > 0;
  }

  function renderEvents(s) {
    const events = list(s.events).slice(-EVENT_ROWS).reverse();
    const items = events.map(ev => {
      const li = el("li", "event");
      const kind = ev.kind ? String(ev.kind) : "event";
      li.setAttribute("data-kind", /^[a-z]+$/.test(kind) ? kind : "other");
      li.appendChild(el("time", "at", clock(ev.at)));
      li.appendChild(el("span", "kind", kind));
      li.appendChild(el("span", "ev-step", "step " + fmtInt(ev.step)));
      if (ev.peer) li.appendChild(idSpan(ev.peer, "ev-peer"));
      li.appendChild(el("span", "detail", ev.detail || ""));
      return li;
    });
    $("events").replaceChildren(...items);
    $("no-events").hidden = events.length > 0;
  }

  // ---- connection ----------------------------------------------------

  function setConn(state, text) {
    const c = $("conn");
    c.setAttribute("data-state", state);
    if (last && state !== "live" && state !== "poll") text += " · last update " + clock(last.now) + " UTC";
    if (c.textContent !== text) c.textContent = text;
  }

  function accept(text) {
    let s;
    try {
      s = JSON.parse(text);
    } catch (e) {
      setConn("error", "unreadable update from the tracker");
      return false;
    }
    try {
      render(s);
    } catch (e) {
      setConn("error", "cannot show this update: " + e.message);
      return false;
    }
    return true;
  }

  function startStream() {
    clearTimeout(pollTimer);
    if (typeof EventSource !== "function") { startPolling("no EventSource", 0); return; }
    let got = false;
    const es = new EventSource("api/events");
    // In a headless browser, one event is all the stream is for.
    const once = () => {
      if (!HEADLESS) return false;
      es.close();
      startPolling("headless browser", POLL_MS);
      return true;
    };
    es.onmessage = e => {
      got = true;
      const ok = accept(e.data);
      if (!once() && ok) setConn("live", "live");
    };
    es.addEventListener("fault", e => {
      got = true;
      if (!once()) setConn("error", "tracker: " + e.data);
    });
    es.onerror = () => {
      // The browser reconnects a dropped stream by itself. If the stream
      // never worked, or the browser has given up, poll instead.
      if (!got || es.readyState === EventSource.CLOSED) {
        es.close();
        startPolling("no event stream", 0);
      } else {
        setConn("stale", "reconnecting…");
      }
    };
  }

  // startPolling polls api/status every POLL_MS, the first time after
  // delay; why says why the page is not streaming.
  function startPolling(why, delay) {
    const text = "polling every " + POLL_MS / 1000 + " s (" + why + ")";
    if (delay > 0) setConn("poll", text);
    let polls = 0;
    const tick = () => {
      fetch("api/status", { cache: "no-store" })
        .then(r => {
          if (!r.ok) throw new Error("HTTP " + r.status);
          return r.text();
        })
        .then(body => { if (accept(body)) setConn("poll", text); },
          err => setConn("error", "cannot reach the tracker (" + err.message + ")"))
        .finally(() => {
          polls++;
          if (polls % STREAM_RETRY_POLLS === 0 && !HEADLESS && typeof EventSource === "function") startStream();
          else pollTimer = setTimeout(tick, POLL_MS);
        });
    };
    pollTimer = setTimeout(tick, delay);
  }

  function copyInvite() {
    const input = $("invite");
    const btn = $("copy");
    const done = ok => {
      btn.textContent = ok ? "Copied" : "Press Ctrl+C";
      setTimeout(() => { btn.textContent = "Copy"; }, 1500);
    };
    input.focus();
    input.select();
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(input.value).then(() => done(true), () => done(false));
      return;
    }
    let ok = false;
    try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
    done(ok);
  }

  function start() {
    $("copy").addEventListener("click", copyInvite);
    $("invite").addEventListener("focus", e => e.target.select());
    let resizeTimer = 0;
    window.addEventListener("resize", () => {
      clearTimeout(resizeTimer);
      resizeTimer = setTimeout(() => { if (last) renderChart(last); }, 100);
    });
    startStream();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
