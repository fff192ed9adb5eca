// jobledger dashboard — the page's only script (inlined with a CSP nonce).
// Every value from the server is rendered with text nodes (h() below): never innerHTML.
"use strict";
(() => {
  const meta = (name) => document.querySelector(`meta[name="${name}"]`).getAttribute("content");
  const CSRF = meta("jobledger-csrf");
  const STATES = ["waiting", "active", "delayed", "paused", "completed", "failed"];
  const app = document.getElementById("app");
  const SVG = "http://www.w3.org/2000/svg";

  // ------------------------------------------------------------ DOM helpers

  const append = (el, children) => {
    for (const c of children.flat(Infinity)) {
      if (c === null || c === undefined || c === false) continue;
      el.appendChild(typeof c === "string" || typeof c === "number" ? document.createTextNode(String(c)) : c);
    }
    return el;
  };
  const setAttrs = (el, attrs) => {
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? "" : String(v));
    }
    return el;
  };
  /** Replaces an element's children (null/false skipped, arrays flattened: unlike replaceChildren, which would print them). */
  const fill = (el, ...children) => {
    el.replaceChildren();
    return append(el, children);
  };
  const h = (tag, attrs, ...children) => append(setAttrs(document.createElement(tag), attrs), children);
  const s = (tag, attrs, ...children) => append(setAttrs(document.createElementNS(SVG, tag), attrs), children);

  const iso = (ms) => (ms === undefined || ms === null ? "–" : new Date(ms).toISOString());
  const short = (ms) => iso(ms).replace("T", " ").slice(0, 19);
  const json = (v) => (v === undefined ? "" : JSON.stringify(v, null, 2));
  const enc = encodeURIComponent;
  const num = (n) => Number(n).toLocaleString("en-US");

  // ------------------------------------------------------------ server

  const api = async (path) => {
    const res = await fetch(path, { headers: { accept: "application/json" }, credentials: "same-origin" });
    const body = await res.json().catch(() => ({ error: `HTTP ${res.status}` }));
    if (!res.ok) throw new Error(body.error || `HTTP ${res.status}`);
    return body;
  };
  const post = async (path) => {
    const res = await fetch(path, { method: "POST", headers: { "x-jobledger-csrf": CSRF, accept: "application/json" }, credentials: "same-origin" });
    const body = await res.json().catch(() => ({ error: `HTTP ${res.status}` }));
    if (!res.ok) throw new Error(body.error || `HTTP ${res.status}`);
    return body;
  };

  // ------------------------------------------------------------ feedback

  const toast = (text, kind) => {
    const t = h("div", { class: `toast ${kind || ""}`, role: "status", "data-testid": "toast" }, text);
    document.getElementById("toasts").appendChild(t);
    setTimeout(() => t.remove(), 6000);
  };

  /** A modal question; resolves true on Confirm. */
  const confirmAction = (title, detail) =>
    new Promise((resolve) => {
      const done = (answer) => {
        overlay.remove();
        document.removeEventListener("keydown", onKey);
        resolve(answer);
      };
      const onKey = (e) => {
        if (e.key === "Escape") done(false);
      };
      const ok = h("button", { class: "primary", "data-testid": "confirm-ok", onclick: () => done(true) }, "Confirm");
      const overlay = h(
        "div",
        { class: "overlay", "data-testid": "confirm" },
        h("div", { class: "dialog", role: "dialog", "aria-modal": "true" }, h("h3", {}, title), h("p", {}, detail), h("div", { class: "row end" }, h("button", { "data-testid": "confirm-cancel", onclick: () => done(false) }, "Cancel"), ok))
      );
      document.body.appendChild(overlay);
      document.addEventListener("keydown", onKey);
      ok.focus();
    });

  /** Runs an action after confirmation, says what happened. */
  const act = async (title, detail, path, doneText) => {
    if (!(await confirmAction(title, detail))) return false;
    try {
      await post(path);
      toast(doneText, "ok");
      return true;
    } catch (e) {
      toast(`refused: ${e.message}`, "bad");
      return false;
    }
  };

  // ------------------------------------------------------------ chart (hand-made SVG)

  const niceMax = (v) => {
    if (!(v > 0)) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * p) return m * p;
    return 10 * p;
  };

  /** Throughput (jobs/s: completed, failed, added) and failure rate over the series' window. */
  const chart = (series, opts) => {
    const W = (opts && opts.width) || 640;
    const H = (opts && opts.height) || 150;
    const pad = { l: 44, r: 44, t: 10, b: 22 };
    const n = series.counts.completed.length;
    const perSec = 1000 / series.bucketMs;
    const rate = (k) => series.counts[k].map((c) => c * perSec);
    const lines = [
      ["added", "#5b8def", "4 3"],
      ["completed", "#2f9e61", ""],
      ["failed", "#d9534f", ""]
    ];
    const max = niceMax(Math.max(...lines.map(([k]) => Math.max(...rate(k)))));
    const x = (i) => pad.l + ((W - pad.l - pad.r) * i) / Math.max(1, n - 1);
    const y = (v) => H - pad.b - ((H - pad.t - pad.b) * v) / max;
    const yr = (f) => H - pad.b - (H - pad.t - pad.b) * f;
    const g = s("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img", "data-testid": "chart" });
    g.appendChild(s("title", {}, "Throughput (jobs/s) and failure rate over the last 10 minutes"));
    for (const f of [0, 0.5, 1]) g.appendChild(s("line", { x1: pad.l, x2: W - pad.r, y1: yr(f), y2: yr(f), class: "grid" }));
    g.appendChild(s("text", { x: pad.l - 6, y: yr(1) + 4, class: "axis", "text-anchor": "end" }, `${max}/s`));
    g.appendChild(s("text", { x: pad.l - 6, y: yr(0) + 4, class: "axis", "text-anchor": "end" }, "0"));
    g.appendChild(s("text", { x: W - pad.r + 6, y: yr(1) + 4, class: "axis rate" }, "100%"));
    g.appendChild(s("text", { x: W - pad.r + 6, y: yr(0) + 4, class: "axis rate" }, "0%"));
    const minutes = Math.round((n * series.bucketMs) / 60000);
    g.appendChild(s("text", { x: pad.l, y: H - 6, class: "axis" }, `−${minutes} min`));
    g.appendChild(s("text", { x: W - pad.r, y: H - 6, class: "axis", "text-anchor": "end" }, "now"));
    for (const [k, color, dash] of lines) {
      const points = rate(k).map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
      g.appendChild(s("polyline", { points, fill: "none", stroke: color, "stroke-width": 1.6, "stroke-dasharray": dash || undefined, "data-series": k }));
    }
    // failure rate: failed / (completed + failed) in buckets where something finished
    let path = "";
    let pen = false;
    series.counts.failed.forEach((f, i) => {
      const done = f + series.counts.completed[i];
      if (done === 0) return void (pen = false);
      path += `${pen ? "L" : "M"}${x(i).toFixed(1)},${yr(f / done).toFixed(1)} `;
      pen = true;
    });
    if (path !== "") g.appendChild(s("path", { d: path, fill: "none", stroke: "#e0a100", "stroke-width": 1.2, "stroke-dasharray": "1 2", "data-series": "failure-rate" }));
    series.counts.failed.forEach((f, i) => {
      const done = f + series.counts.completed[i];
      if (done > 0) g.appendChild(s("circle", { cx: x(i).toFixed(1), cy: yr(f / done).toFixed(1), r: 1.8, fill: "#e0a100" }));
    });
    return h(
      "figure",
      { class: "chartbox" },
      g,
      h("figcaption", {}, legend("#5b8def", "added/s"), legend("#2f9e61", "completed/s"), legend("#d9534f", "failed/s"), legend("#e0a100", "failure rate (right axis)"), h("span", { class: "muted" }, ` · ${series.bucketMs / 1000} s buckets`))
    );
  };
  const legend = (color, text) => {
    const sw = h("span", { class: "swatch" });
    sw.style.background = color; // CSSOM, allowed by the CSP (no inline style attribute)
    return h("span", { class: "legend" }, sw, text);
  };

  const totals = (series) => {
    const sum = (k) => series.counts[k].reduce((a, b) => a + b, 0);
    const done = sum("completed") + sum("failed");
    return { completed: sum("completed"), failed: sum("failed"), added: sum("added"), failureRate: done === 0 ? undefined : sum("failed") / done };
  };
  const pct = (f) => (f === undefined ? "–" : `${(f * 100).toFixed(1)}%`);

  // ------------------------------------------------------------ pieces

  const counts = (queue, stats, active) =>
    h(
      "div",
      { class: "counts", "data-testid": "counts" },
      STATES.map((st) =>
        h(
          "a",
          { class: `count ${st}${active === st ? " on" : ""}`, href: `#/q/${enc(queue)}?state=${st}`, "data-state": st, "data-testid": `count-${st}` },
          h("span", { class: "n" }, num(stats[st])),
          h("span", { class: "label" }, st)
        )
      )
    );
  const updateCounts = (root, stats) => {
    for (const st of STATES) {
      const el = root.querySelector(`[data-testid="count-${st}"] .n`);
      if (el) el.textContent = num(stats[st]);
    }
  };
  const pausedBadge = (paused) => h("span", { class: `badge ${paused ? "paused" : "running"}`, "data-testid": "paused" }, paused ? "paused" : "running");
  const pauseButton = (queue, paused, after) =>
    h(
      "button",
      {
        "data-testid": paused ? "resume" : "pause",
        onclick: async () => {
          const verb = paused ? "resume" : "pause";
          const ok = await act(`${paused ? "Resume" : "Pause"} queue '${queue}'?`, paused ? "Paused jobs become waiting and start again." : "No job starts until it is resumed; running jobs finish.", `/api/queues/${enc(queue)}/${verb}`, `${verb} of '${queue}' requested: the engine applies it`);
          if (ok && after) after();
        }
      },
      paused ? "Resume" : "Pause"
    );
  const crumbs = (...items) => h("nav", { class: "crumbs" }, h("a", { href: "#/" }, "queues"), items.map((it) => [" / ", it]));

  const kv = (rows) => h("dl", { class: "kv" }, rows.filter(Boolean).map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
  const pre = (text, testid) => h("pre", { class: "code", "data-testid": testid }, text);

  // ------------------------------------------------------------ views

  /** Every queue: counts, paused, throughput. */
  const overviewView = () => {
    let cards = new Map();
    const root = h("section", { "data-testid": "overview" }, h("h1", {}, "Queues"), h("p", { class: "muted" }, "loading…"));
    const load = async () => {
      const o = await api("/api/overview");
      document.getElementById("log").textContent = `${o.backend} · ${o.log}`;
      cards = new Map();
      const list = o.queues.map((q) => {
        const t = totals(q.series);
        const card = h(
          "article",
          { class: "card", "data-queue": q.name, "data-testid": "queue-card" },
          h("div", { class: "row" }, h("h2", {}, h("a", { href: `#/q/${enc(q.name)}`, "data-testid": "queue-link" }, q.name)), pausedBadge(q.paused), h("span", { class: "muted" }, `${q.partitions} partition${q.partitions === 1 ? "" : "s"}`)),
          counts(q.name, q.stats),
          chart(q.series, { width: 640, height: 130 }),
          h("div", { class: "row small" }, h("span", {}, `last 10 min: ${num(t.completed)} completed, ${num(t.failed)} failed, failure rate ${pct(t.failureRate)}`), h("span", { class: q.deadLetters > 0 ? "warn" : "muted" }, `dead letters: ${num(q.deadLetters)}`))
        );
        cards.set(q.name, card);
        return card;
      });
      fill(root, h("h1", {}, "Queues"), list.length === 0 ? h("p", { class: "muted" }, "No queue on this log yet.") : list);
    };
    const timer = setInterval(() => load().catch(() => {}), 5000);
    load().catch((e) => fill(root, h("p", { class: "bad" }, e.message)));
    return {
      root,
      live: (d) => {
        for (const q of d.queues) {
          const card = cards.get(q.name);
          if (!card) return void load().catch(() => {});
          updateCounts(card, q.stats);
          card.querySelector('[data-testid="paused"]').replaceWith(pausedBadge(q.paused));
        }
      },
      destroy: () => clearInterval(timer)
    };
  };

  /** One queue: counts, chart, actions, a page of its jobs. */
  const queueView = (queue, params) => {
    const state = params.get("state") || "";
    const search = params.get("search") || "";
    const cursors = [""]; // cursor of each page shown so far (back = previous one)
    let page = 0;
    let detail;
    const root = h("section", { "data-testid": "queue" }, h("p", { class: "muted" }, "loading…"));
    const head = h("div");
    const listBox = h("div", { "data-testid": "job-list" });
    const searchBox = h("input", { type: "search", placeholder: "search id or name", value: search, "data-testid": "search", "aria-label": "search jobs by id or name" });
    let searchTimer;
    searchBox.addEventListener("input", () => {
      clearTimeout(searchTimer);
      searchTimer = setTimeout(() => {
        const p = new URLSearchParams(params);
        if (searchBox.value) p.set("search", searchBox.value);
        else p.delete("search");
        location.hash = `#/q/${enc(queue)}?${p}`;
      }, 300);
    });
    const renderHead = () => {
      const t = totals(detail.series);
      fill(head, 
        crumbs(h("span", {}, queue)),
        h("div", { class: "row" }, h("h1", {}, queue), pausedBadge(detail.paused), pauseButton(queue, detail.paused, refresh), h("a", { class: "button", href: `#/q/${enc(queue)}/travel`, "data-testid": "travel-link" }, "Time travel & verify")),
        counts(queue, detail.stats, state),
        chart(detail.series, { width: 900, height: 170 }),
        h("p", { class: "small muted" }, `last 10 min: ${num(t.added)} added, ${num(t.completed)} completed, ${num(t.failed)} failed, failure rate ${pct(t.failureRate)} · dead letters ${num(detail.deadLetters)} · ${num(detail.held)} jobs held in memory · ${detail.range.endOffsets.reduce((a, b) => a + b, 0).toLocaleString("en-US")} events in the log`)
      );
    };
    const loadList = async () => {
      const p = new URLSearchParams({ limit: "50" });
      if (state) p.set("state", state);
      if (search) p.set("search", search);
      if (cursors[page]) p.set("cursor", cursors[page]);
      const list = await api(`/api/queues/${enc(queue)}/jobs?${p}`);
      cursors[page + 1] = list.next;
      const rows = list.jobs.map((j) =>
        h(
          "tr",
          { "data-job": j.id, "data-testid": "job-row" },
          h("td", { class: "mono" }, h("a", { href: `#/q/${enc(queue)}/job/${enc(j.id)}` }, j.id)),
          h("td", {}, j.name),
          h("td", {}, h("span", { class: `state ${j.state}` }, j.state)),
          h("td", {}, `${j.attemptsMade}/${j.maxAttempts}`),
          h("td", { class: "mono" }, short(j.updatedAt)),
          h("td", { class: "err" }, j.error || "")
        )
      );
      const what = `${state || "all"} jobs`;
      const heldNote = list.held < list.count ? ` (${num(list.count)} in the log; finished jobs beyond the retention are not held — find one by its full id)` : "";
      fill(listBox, 
        h("div", { class: "row" }, h("h2", {}, state ? `${state} jobs` : "all jobs"), searchBox, h("span", { class: "muted small", "data-testid": "list-note" }, `${num(list.matched)} ${search ? "matching " : ""}of ${num(list.held)} held ${what}${heldNote}`)),
        list.found ? h("p", { "data-testid": "found" }, "Found in the log: ", h("a", { href: `#/q/${enc(queue)}/job/${enc(list.found.id)}` }, list.found.id), ` (${list.found.state})`) : null,
        rows.length === 0 ? h("p", { class: "muted", "data-testid": "empty" }, `no ${what}${search ? " matching the search" : ""}`) : h("table", { class: "jobs" }, h("thead", {}, h("tr", {}, ["id", "name", "state", "attempts", "updated (UTC)", "error"].map((c) => h("th", {}, c)))), h("tbody", {}, rows)),
        h(
          "div",
          { class: "row pager" },
          h("button", { disabled: page === 0, "data-testid": "newer", onclick: () => ((page -= 1), loadList()) }, "← newer"),
          h("span", { class: "muted small" }, `page ${page + 1}`),
          h("button", { disabled: !list.next, "data-testid": "older", onclick: () => ((page += 1), loadList()) }, "older →")
        )
      );
    };
    const refresh = async () => {
      detail = await api(`/api/queues/${enc(queue)}`);
      renderHead();
    };
    (async () => {
      await refresh();
      fill(root, head, listBox);
      await loadList();
      if (search) searchBox.focus();
    })().catch((e) => fill(root, crumbs(h("span", {}, queue)), h("p", { class: "bad", "data-testid": "error" }, e.message)));
    const listLater = throttle(() => loadList().catch(() => {}), 1000);
    const chartTimer = setInterval(() => refresh().catch(() => {}), 5000);
    return {
      root,
      live: (d) => {
        const q = d.queues.find((x) => x.name === queue);
        if (!q || !detail) return;
        const pausedChanged = q.paused !== detail.paused;
        detail.stats = q.stats;
        detail.paused = q.paused;
        if (pausedChanged) renderHead();
        else updateCounts(head, q.stats);
        listLater();
      },
      destroy: () => clearInterval(chartTimer)
    };
  };

  /** One job: fields, data, result, error with stack, timeline from the log. */
  const jobView = (queue, id) => {
    const root = h("section", { "data-testid": "job" }, h("p", { class: "muted" }, "loading…"));
    const load = async () => {
      const d = await api(`/api/queues/${enc(queue)}/jobs/${enc(id)}`);
      const j = d.job;
      const retry =
        j.state === "failed"
          ? h(
              "button",
              {
                class: "primary",
                "data-testid": "retry",
                onclick: async () => {
                  if (await act(`Retry job '${j.id}'?`, "It runs again with a fresh retry budget (attempts back to 0).", `/api/queues/${enc(queue)}/jobs/${enc(j.id)}/retry`, `retry of '${j.id}' requested: the engine applies it`)) load().catch(() => {});
                }
              },
              "Retry"
            )
          : null;
      const control = (label, verb, question, detail, testid) =>
        h(
          "button",
          {
            "data-testid": testid,
            onclick: async () => {
              if (await act(question, detail, `/api/queues/${enc(queue)}/jobs/${enc(j.id)}/${verb}`, `${verb} of '${j.id}' requested: the engine applies it`)) load().catch(() => {});
            }
          },
          label
        );
      const cancel = j.state === "active" ? control("Cancel", "cancel", `Cancel job '${j.id}'?`, "Its handler's AbortSignal fires; the job fails for good (no retry).", "cancel") : null;
      const remove = j.state !== "active" ? control("Remove", "remove", `Remove job '${j.id}'?`, "It leaves the queue's views and counts; its history stays in the log.", "remove") : null;
      const multi = d.partitions > 1;
      const timeline = h(
        "table",
        { class: "timeline", "data-testid": "timeline" },
        h("thead", {}, h("tr", {}, [multi ? "partition/offset" : "offset", "time (UTC)", "event", "state", "details", ""].map((c) => h("th", {}, c)))),
        h(
          "tbody",
          {},
          d.timeline.map((e) =>
            h(
              "tr",
              { "data-testid": "timeline-row", "data-event": e.type },
              h("td", { class: "mono" }, multi ? `${d.partition}/${e.offset}` : String(e.offset)),
              h("td", { class: "mono" }, iso(e.time)),
              h("td", {}, e.type),
              h("td", {}, h("span", { class: `state ${e.state}` }, e.state)),
              h("td", { class: "detail" }, e.detail ? Object.entries(e.detail).map(([k, v]) => h("span", { class: "kv1" }, `${k}=${k === "runAt" ? iso(v) : typeof v === "string" ? v : JSON.stringify(v)}`)) : ""),
              h("td", {}, h("a", { href: `#/q/${enc(queue)}/travel?until=${e.offset}&job=${enc(j.id)}`, title: "the queue and this job as of this event", "data-testid": "as-of" }, "as of"))
            )
          )
        )
      );
      fill(root, 
        crumbs(h("a", { href: `#/q/${enc(queue)}` }, queue), h("span", { class: "mono" }, j.id)),
        h("div", { class: "row" }, h("h1", { class: "mono", "data-testid": "job-id" }, j.id), h("span", { class: `state big ${j.state}`, "data-testid": "job-state" }, j.state), retry, cancel, remove),
        d.source === "pending" ? h("p", { class: "warn" }, "Added, but no engine has accepted it yet: no events so far.") : null,
        kv([
          ["name", h("span", { "data-testid": "job-name" }, j.name)],
          ["attempts", `${j.attemptsMade}/${j.maxAttempts} (retries made/allowed)`],
          ["priority", String(j.priority)],
          ["created", iso(j.createdAt)],
          ["run at", iso(j.runAt)],
          ["updated", iso(j.updatedAt)],
          j.metadata ? ["metadata", pre(json(j.metadata), "job-metadata")] : null,
          j.progress !== undefined ? ["progress", pre(json(j.progress), "job-progress")] : null,
          j.schedule ? ["schedule", h("span", { "data-testid": "job-schedule" }, `${j.schedule.id} (tick ${iso(j.schedule.tick)})`)] : null
        ]),
        h("h2", {}, "data"),
        pre(json(j.data), "job-data"),
        j.result !== undefined ? [h("h2", {}, "result"), pre(json(j.result), "job-result")] : null,
        j.error ? [h("h2", {}, "error"), h("p", { class: "bad", "data-testid": "job-error" }, `${j.error.name ? `${j.error.name}: ` : ""}${j.error.message}`), j.error.stack ? pre(j.error.stack, "job-stack") : null] : null,
        h("h2", {}, `timeline from the log (${d.source === "index" ? "found by index" : d.source === "replay" ? "replayed" : "none yet"})`),
        timeline
      );
    };
    load().catch((e) => fill(root, crumbs(h("a", { href: `#/q/${enc(queue)}` }, queue)), h("p", { class: "bad", "data-testid": "error" }, e.message)));
    const later = throttle(() => load().catch(() => {}), 1000);
    return {
      root,
      live: (d) => {
        const q = d.queues.find((x) => x.name === queue);
        if (q && (q.jobs === null || q.jobs.includes(id))) later();
      },
      destroy: () => {}
    };
  };

  /** Time travel (the queue, and a job, as of an offset or a time) and replay --verify. */
  const travelView = (queue, params) => {
    const root = h("section", { "data-testid": "travel" }, h("p", { class: "muted" }, "loading…"));
    const untilBox = h("input", { type: "text", value: params.get("until") || "", placeholder: "offset (e.g. 1200) or ISO time", "data-testid": "until", "aria-label": "until: offset or ISO time" });
    const jobBox = h("input", { type: "text", value: params.get("job") || "", placeholder: "job id (optional)", "data-testid": "travel-job", "aria-label": "job id" });
    const slider = h("input", { type: "range", min: 0, max: 1000, value: 1000, "data-testid": "slider", "aria-label": "time" });
    const out = h("div", { "data-testid": "travel-result" });
    const verifyOut = h("div", { "data-testid": "verify-result" });
    let detail;
    const go = () => {
      const p = new URLSearchParams();
      if (untilBox.value.trim()) p.set("until", untilBox.value.trim());
      if (jobBox.value.trim()) p.set("job", jobBox.value.trim());
      location.hash = `#/q/${enc(queue)}/travel?${p}`;
    };
    slider.addEventListener("input", () => {
      const { firstTime, lastTime } = detail.range;
      if (firstTime === undefined) return;
      untilBox.value = iso(Math.round(firstTime + ((lastTime - firstTime) * Number(slider.value)) / 1000));
    });
    slider.addEventListener("change", go);
    untilBox.addEventListener("keydown", (e) => e.key === "Enter" && go());
    jobBox.addEventListener("keydown", (e) => e.key === "Enter" && go());
    const replay = async () => {
      const p = new URLSearchParams();
      if (params.get("until")) p.set("until", params.get("until"));
      if (params.get("job")) p.set("job", params.get("job"));
      fill(out, h("p", { class: "muted" }, "replaying…"));
      const r = await api(`/api/queues/${enc(queue)}/replay?${p}`);
      const bound = r.until.offset !== undefined ? `offset ${r.until.offset}` : r.until.time !== undefined ? iso(r.until.time) : "now";
      const rows = STATES.map((st) => {
        const then = r.stats[st];
        const now = detail.stats[st];
        return h("tr", { "data-state": st }, h("td", {}, st), h("td", { class: "n", "data-testid": `then-${st}` }, num(then)), h("td", { class: "n" }, num(now)), h("td", { class: "n muted" }, then === now ? "" : `${now - then > 0 ? "+" : ""}${num(now - then)}`));
      });
      fill(out, 
        h("p", { "data-testid": "travel-summary" }, `As of ${bound}: ${num(r.events)} events replayed over ${r.partitions} partition${r.partitions === 1 ? "" : "s"} in ${r.tookMs} ms${r.undecodable ? `, ${r.undecodable} undecodable` : ""}.`),
        h("table", { class: "compare" }, h("thead", {}, h("tr", {}, ["state", `as of ${bound}`, "now", "change since"].map((c) => h("th", {}, c)))), h("tbody", {}, rows)),
        r.job === undefined
          ? null
          : r.job === null
            ? h("p", { class: "warn", "data-testid": "travel-job-state" }, `job '${params.get("job")}' did not exist yet as of ${bound}`)
            : h(
                "div",
                {},
                h("h2", {}, "job as of then: ", h("a", { class: "mono", href: `#/q/${enc(queue)}/job/${enc(r.job.job.id)}` }, r.job.job.id), " ", h("span", { class: `state big ${r.job.job.state}`, "data-testid": "travel-job-state" }, r.job.job.state)),
                kv([
                  ["attempts", `${r.job.job.attemptsMade}/${r.job.job.maxAttempts}`],
                  ["updated", iso(r.job.job.updatedAt)],
                  r.job.job.error ? ["error", r.job.job.error.message] : null
                ]),
                h("table", { class: "timeline" }, h("tbody", {}, r.job.timeline.map((e) => h("tr", {}, h("td", { class: "mono" }, String(e.offset)), h("td", { class: "mono" }, iso(e.time)), h("td", {}, e.type), h("td", {}, h("span", { class: `state ${e.state}` }, e.state))))))
              )
      );
    };
    const verify = async () => {
      fill(verifyOut, h("p", { class: "muted" }, "verifying every event…"));
      const r = await api(`/api/queues/${enc(queue)}/replay?verify=1`);
      const v = r.verify;
      fill(verifyOut, 
        h("p", { class: v.ok ? "ok" : "bad", "data-testid": "verify-summary" }, v.ok ? `OK — ${num(v.events)} events of ${num(v.jobs)} jobs, every transition legal, no duplicate, no gap (${r.tookMs} ms)` : `${num(v.problems)} problem${v.problems === 1 ? "" : "s"} in ${num(v.events)} events of ${num(v.jobs)} jobs`),
        v.issues.length === 0
          ? null
          : h(
              "table",
              { class: "issues", "data-testid": "verify-issues" },
              h("thead", {}, h("tr", {}, ["offset", "job", "problem", "details"].map((c) => h("th", {}, c)))),
              h("tbody", {}, v.issues.map((i) => h("tr", {}, h("td", { class: "mono" }, i.partition === undefined ? String(i.offset) : `${i.partition}/${i.offset}`), h("td", { class: "mono" }, i.jobId === null ? "(queue)" : i.jobId), h("td", {}, i.kind), h("td", {}, i.message))))
            ),
        v.problems > v.issues.length ? h("p", { class: "muted" }, `… and ${num(v.problems - v.issues.length)} more (jobledger replay --verify lists them all)`) : null
      );
    };
    (async () => {
      detail = await api(`/api/queues/${enc(queue)}`);
      const { firstTime, lastTime } = detail.range;
      const until = params.get("until") || "";
      if (firstTime !== undefined && lastTime > firstTime && /^\d{4}-/.test(until)) slider.value = String(Math.round((1000 * (Date.parse(until) - firstTime)) / (lastTime - firstTime)));
      fill(root, 
        crumbs(h("a", { href: `#/q/${enc(queue)}` }, queue), h("span", {}, "time travel")),
        h("h1", {}, `Time travel: ${queue}`),
        h("p", { class: "muted small" }, `The log holds ${detail.range.endOffsets.reduce((a, b) => a + b, 0).toLocaleString("en-US")} events from ${iso(firstTime)} to ${iso(lastTime)}. A replay rebuilds the queue from them up to an offset (per partition, inclusive) or a time — what jobledger replay --until computes; it reads the history up to that point.`),
        h("div", { class: "row" }, h("label", {}, "until ", untilBox), h("label", {}, "job ", jobBox), h("button", { class: "primary", "data-testid": "travel-go", onclick: go }, "Replay")),
        h("div", { class: "row" }, h("span", { class: "muted small" }, short(firstTime)), slider, h("span", { class: "muted small" }, short(lastTime))),
        out,
        h("h2", {}, "Audit"),
        h("div", { class: "row" }, h("button", { "data-testid": "verify", onclick: () => verify().catch((e) => fill(verifyOut, h("p", { class: "bad" }, e.message))) }, "Run replay --verify"), h("span", { class: "muted small" }, "re-runs every event of the queue through the job machine")),
        verifyOut
      );
      if (params.get("until") || params.get("job")) await replay().catch((e) => fill(out, h("p", { class: "bad", "data-testid": "error" }, e.message)));
      else fill(out, h("p", { class: "muted" }, "Pick a time on the slider, or type an offset or a time, then Replay."));
    })().catch((e) => fill(root, crumbs(h("a", { href: `#/q/${enc(queue)}` }, queue)), h("p", { class: "bad", "data-testid": "error" }, e.message)));
    return { root, live: () => {}, destroy: () => {} };
  };

  // ------------------------------------------------------------ routing, live stream

  const throttle = (f, ms) => {
    let last = 0;
    let timer;
    return () => {
      if (timer) return;
      const wait = Math.max(0, last + ms - Date.now());
      timer = setTimeout(() => {
        timer = undefined;
        last = Date.now();
        f();
      }, wait);
    };
  };

  let current;
  const render = () => {
    if (current) current.destroy();
    const hash = location.hash.replace(/^#/, "") || "/";
    const [path, query = ""] = hash.split("?");
    const params = new URLSearchParams(query);
    const parts = path.split("/").filter(Boolean).map((p) => {
      try {
        return decodeURIComponent(p);
      } catch {
        return p;
      }
    });
    if (parts[0] === "q" && parts[1] && parts.length === 2) current = queueView(parts[1], params);
    else if (parts[0] === "q" && parts[1] && parts[2] === "job" && parts[3] !== undefined) current = jobView(parts[1], parts.slice(3).join("/"));
    else if (parts[0] === "q" && parts[1] && parts[2] === "travel") current = travelView(parts[1], params);
    else current = overviewView();
    fill(app, current.root);
    window.scrollTo(0, 0);
  };
  window.addEventListener("hashchange", render);
  render();

  const liveBadge = document.getElementById("live");
  const stream = new EventSource("/api/events");
  stream.addEventListener("hello", () => {
    liveBadge.textContent = "live";
    liveBadge.className = "live on";
  });
  stream.addEventListener("queues", (e) => {
    liveBadge.textContent = "live";
    liveBadge.className = "live on";
    liveBadge.dataset.updates = String(Number(liveBadge.dataset.updates || 0) + 1);
    if (current) current.live(JSON.parse(e.data));
  });
  stream.addEventListener("error", () => {
    liveBadge.textContent = "reconnecting…";
    liveBadge.className = "live off";
  });
})();
