"use strict";

const KEY_STORAGE = "reid-dashboard.store-key";
const LIVE_RETRY_MS = 3000;
const LIVE_MAX_RETRY_MS = 30_000;
const REFRESH_AFTER_MS = 1500;
const DAY_S = 86_400;
const DAY_MS = DAY_S * 1000;
const NICE_STEPS_S = [900, 1800, 3600, 7200, 10_800, 21_600, 43_200, DAY_S];
const LABEL_PX = 46;
const MIN_CELL_PX = 8;
const DASHES = ["", "7 4", "2 4", "10 4 2 4"];
const SVG_NS = "http://www.w3.org/2000/svg";
const PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2"];
const COLD = [238, 243, 251];
const HOT = [8, 69, 148];

const state = {
  key: null,
  timezone: null,
  zoneNames: new Map(),
  report: null,
  timer: null,
  request: 0,
  searches: 0,
  refreshes: 0,
  photo: null,
  previewUrl: null,
  floor: null,
  includeStaff: false,
  live: null,
  liveSeq: null,
  reconnects: 0,
  refreshPending: null,
  flowsRequest: 0,
};

const $ = (id) => document.getElementById(id);

/* ---------- API ---------- */

class ApiError extends Error {
  constructor(status, detail, message) {
    super(message);
    this.status = status;
    this.detail = detail;
  }
}

function detailText(body) {
  const detail = body && body.detail;
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) {
    return detail.map((d) => `${(d.loc || []).slice(1).join(".") || "request"}: ${d.msg}`).join("; ");
  }
  return "no details given";
}

function explain(status, detail) {
  if (status === 401) {
    return `The store key was refused (${detail}). Use "Change key" to enter a valid store key.`;
  }
  if (status === 403) return `This key cannot be used here (${detail}).`;
  if (status >= 500) return `The service failed (HTTP ${status}: ${detail}). It will be tried again.`;
  return `The service refused the request (HTTP ${status}): ${detail}`;
}

async function api(path, options = {}) {
  const headers = new Headers(options.headers);
  headers.set("X-API-Key", state.key || "");
  let response;
  try {
    response = await fetch(new URL(path, document.baseURI), { ...options, headers });
  } catch (error) {
    throw new ApiError(0, error.message, `The service could not be reached (${error.message}).`);
  }
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    const detail = detailText(body);
    throw new ApiError(response.status, detail, explain(response.status, detail));
  }
  return body;
}

/* ---------- time in the store's zone ---------- */

const clockFormats = new Map();

function wallClock(tz, ms) {
  if (!clockFormats.has(tz)) {
    const options = { timeZone: tz, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit" };
    Object.assign(options, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
    clockFormats.set(tz, new Intl.DateTimeFormat("en-US", options));
  }
  const parts = clockFormats.get(tz).formatToParts(new Date(ms));
  const get = (type) => Number(parts.find((p) => p.type === type).value);
  const [year, month, day] = [get("year"), get("month"), get("day")];
  return { year, month, day, hour: get("hour"), minute: get("minute"), second: get("second") };
}

function offsetMs(tz, ms) {
  const c = wallClock(tz, ms);
  return Date.UTC(c.year, c.month - 1, c.day, c.hour, c.minute, c.second) - Math.floor(ms / 1000) * 1000;
}

function localMidnight(isoDate, tz) {
  const [y, m, d] = isoDate.split("-").map(Number);
  const wall = Date.UTC(y, m - 1, d);
  return wall - offsetMs(tz, wall - offsetMs(tz, wall));
}

function addDays(isoDate, days) {
  const [y, m, d] = isoDate.split("-").map(Number);
  return new Date(Date.UTC(y, m - 1, d + days)).toISOString().slice(0, 10);
}

function todayIn(tz) {
  const c = wallClock(tz, Date.now());
  return `${c.year}-${String(c.month).padStart(2, "0")}-${String(c.day).padStart(2, "0")}`;
}

function secondsIntoDay(iso) {
  const c = wallClock(state.timezone || "UTC", Date.parse(iso));
  return (c.hour * 60 + c.minute) * 60 + c.second;
}

function formatIn(options, iso) {
  const format = new Intl.DateTimeFormat(undefined, { timeZone: state.timezone || "UTC", ...options });
  return format.format(new Date(iso));
}

const CLOCK = { hour: "2-digit", minute: "2-digit", hourCycle: "h23" };
const fmtTime = (iso) => formatIn(CLOCK, iso);
const fmtSeconds = (iso) => formatIn({ ...CLOCK, second: "2-digit" }, iso);
const fmtDay = (iso) => formatIn({ month: "short", day: "numeric" }, iso);
const fmtDateTime = (iso) =>
  formatIn({ weekday: "short", month: "short", day: "numeric", ...CLOCK, second: "2-digit" }, iso);

function fmtDuration(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  const whole = Math.round(seconds);
  if (whole < 60) return `${whole} s`;
  return `${Math.floor(whole / 60)} min ${whole % 60} s`;
}

/* ---------- DOM helpers ---------- */

function setAttrs(el, attrs) {
  for (const [name, value] of Object.entries(attrs)) {
    if (value !== undefined && value !== null) el.setAttribute(name, String(value));
  }
  return el;
}

function svg(tag, attrs = {}, text) {
  const el = setAttrs(document.createElementNS(SVG_NS, tag), attrs);
  if (text !== undefined) el.textContent = text;
  return el;
}

function html(tag, attrs = {}, ...children) {
  const el = setAttrs(document.createElement(tag), attrs);
  el.append(...children);
  return el;
}

function showError(id, message) {
  const el = $(id);
  el.textContent = message;
  el.hidden = false;
}

function hideError(id) {
  const el = $(id);
  el.textContent = "";
  el.hidden = true;
}

function zoneName(zoneId) {
  return state.zoneNames.get(zoneId) || `zone #${zoneId}`;
}

/* ---------- density charts ---------- */

function heatColor(value, max) {
  if (value <= 0) return "#f4f5f7";
  const t = 0.15 + (0.85 * value) / max;
  const mix = COLD.map((c, i) => Math.round(c + (HOT[i] - c) * t));
  return `rgb(${mix.join(",")})`;
}

function columnLabel(bucket, report) {
  const spansDays = Date.parse(report.end) - Date.parse(report.start) > DAY_MS;
  const newDay = spansDays && secondsIntoDay(bucket.start) === 0;
  return report.bucket_s >= DAY_S || newDay ? fmtDay(bucket.start) : fmtTime(bucket.start);
}

function labelledColumns(report, cellWidth) {
  const buckets = report.zones[0].buckets;
  if (report.bucket_s >= DAY_S) {
    const every = Math.ceil(LABEL_PX / cellWidth);
    return buckets.map((_, i) => i % every === 0);
  }
  const wideEnough = (s) => s >= report.bucket_s && (s / report.bucket_s) * cellWidth >= LABEL_PX;
  const every = NICE_STEPS_S.find(wideEnough) || DAY_S;
  return buckets.map((bucket) => secondsIntoDay(bucket.start) % every === 0);
}

function bucketTitle(zone, bucket, report) {
  const day = fmtDay(bucket.start);
  const span = report.bucket_s >= DAY_S ? day : `${day} ${fmtTime(bucket.start)}–${fmtTime(bucket.end)}`;
  const count = bucket.unique_visitors;
  const people = count === 1 ? "1 unique visitor" : `${count} unique visitors`;
  return `${zone.name}, ${span}: ${people} (${bucket.sightings} sightings)`;
}

function renderHeatmap(report) {
  const host = $("heatmap");
  host.replaceChildren();
  const zones = report.zones;
  if (!zones.length) {
    host.append(html("p", { class: "muted" }, "This store has no zones yet."));
    $("heatmap-note").textContent = "";
    return;
  }
  const buckets = zones[0].buckets;
  const labelW = 140;
  const totalW = 70;
  const headH = 24;
  const cellH = 30;
  const room = Math.max(host.clientWidth, 480) - labelW - totalW;
  const cellW = Math.max(MIN_CELL_PX, Math.min(60, Math.floor(room / Math.max(buckets.length, 1))));
  const gap = cellW >= 8 ? 1 : 0;
  const gridW = cellW * buckets.length;
  const max = Math.max(1, ...zones.flatMap((z) => z.buckets.map((b) => b.unique_visitors)));
  const root = svg("svg", {
    class: "heatmap",
    width: labelW + gridW + totalW,
    height: headH + cellH * zones.length + 4,
    role: "img",
    "aria-label": "Unique visitors per zone and time bucket",
  });
  const labelled = labelledColumns(report, cellW);
  buckets.forEach((bucket, i) => {
    if (labelled[i]) {
      const at = { x: labelW + i * cellW + 2, y: headH - 8, class: "axis" };
      root.append(svg("text", at, columnLabel(bucket, report)));
    }
  });
  const totalX = labelW + gridW + totalW / 2;
  const totalHead = { x: totalX, y: headH - 8, class: "axis strong", "text-anchor": "middle" };
  root.append(svg("text", totalHead, "Total"));
  zones.forEach((zone, row) => {
    const y = headH + row * cellH;
    const middle = y + cellH / 2 + 4;
    const rowHead = { x: labelW - 8, y: middle, class: "zone-label", "text-anchor": "end" };
    root.append(svg("text", rowHead, zone.name));
    zone.buckets.forEach((bucket, col) => {
      const value = bucket.unique_visitors;
      const cell = svg("rect", {
        class: "cell",
        x: labelW + col * cellW,
        y,
        width: cellW - gap,
        height: cellH - 1,
        fill: heatColor(value, max),
        "data-zone": zone.zone_id,
        "data-zone-name": zone.name,
        "data-bucket": bucket.start,
        "data-bucket-end": bucket.end,
        "data-value": value,
      });
      cell.append(svg("title", {}, bucketTitle(zone, bucket, report)));
      root.append(cell);
      if (value > 0 && cellW >= 18) {
        const kind = value / max > 0.45 ? "cell-value dark" : "cell-value";
        const at = { x: labelW + col * cellW + cellW / 2, y: middle, class: kind, "text-anchor": "middle" };
        root.append(svg("text", at, value));
      }
    });
    const unique = zone.totals.unique_visitors;
    const at = { x: totalX, y: middle, class: "row-total", "text-anchor": "middle" };
    const total = svg("text", { ...at, "data-zone": zone.zone_id, "data-total": unique }, unique);
    total.append(svg("title", {}, `${zone.name}: ${unique} unique visitors over the whole period`));
    root.append(total);
  });
  host.append(root);
  const note = `Darker cells mean more unique visitors (busiest cell: ${max}). Point at a cell for details.`;
  $("heatmap-note").textContent = note;
}

function niceStep(max) {
  const rough = Math.max(1, max / 5);
  const power = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= rough);
  return Math.max(1, step);
}

function renderLines(report) {
  const host = $("lines");
  const legend = $("legend");
  host.replaceChildren();
  legend.replaceChildren();
  const zones = report.zones;
  if (!zones.length || !zones[0].buckets.length) return;
  const buckets = zones[0].buckets;
  const width = Math.max(host.clientWidth, 480);
  const height = 260;
  const m = { left: 44, right: 16, top: 12, bottom: 30 };
  const plotW = width - m.left - m.right;
  const plotH = height - m.top - m.bottom;
  const peak = Math.max(1, ...zones.flatMap((z) => z.buckets.map((b) => b.unique_visitors)));
  const step = niceStep(peak);
  const top = Math.ceil(peak / step) * step;
  const x = (i) => m.left + ((i + 0.5) * plotW) / buckets.length;
  const y = (v) => m.top + plotH - (v / top) * plotH;
  const label = "Unique visitors per zone over time";
  const root = svg("svg", { class: "lines", width, height, role: "img", "aria-label": label });
  for (let v = 0; v <= top; v += step) {
    root.append(svg("line", { x1: m.left, x2: width - m.right, y1: y(v), y2: y(v), class: "grid" }));
    root.append(svg("text", { x: m.left - 6, y: y(v) + 4, class: "axis", "text-anchor": "end" }, v));
  }
  const labelled = labelledColumns(report, plotW / buckets.length);
  buckets.forEach((bucket, i) => {
    if (labelled[i]) {
      const at = { x: x(i), y: height - 10, class: "axis", "text-anchor": "middle" };
      root.append(svg("text", at, columnLabel(bucket, report)));
    }
  });
  zones.forEach((zone, index) => {
    const color = PALETTE[index % PALETTE.length];
    const values = zone.buckets.map((b) => b.unique_visitors);
    const width = 2 + 2 * Math.min(3, zones.length - 1 - index);
    const dashes = DASHES[index % DASHES.length];
    root.append(
      svg("polyline", {
        class: "series",
        points: values.map((v, i) => `${x(i)},${y(v)}`).join(" "),
        stroke: color,
        "stroke-width": width,
        "stroke-dasharray": dashes || undefined,
        "data-zone": zone.zone_id,
        "data-values": values.join(","),
      }),
    );
    if (buckets.length <= 200) {
      values.forEach((v, i) => {
        const dot = svg("circle", { cx: x(i), cy: y(v), r: 1 + width / 2, fill: color, class: "dot" });
        dot.append(svg("title", {}, bucketTitle(zone, zone.buckets[i], report)));
        root.append(dot);
      });
    }
    const sample = svg("svg", { class: "swatch", width: 28, height: 12, "aria-hidden": "true" });
    const stroke = { stroke: color, "stroke-width": Math.min(width, 6), "stroke-dasharray": dashes || undefined };
    sample.append(svg("line", { x1: 0, x2: 28, y1: 6, y2: 6, ...stroke }));
    legend.append(html("li", {}, sample, zone.name));
  });
  host.append(root);
}

function totalsRow(zone) {
  const t = zone.totals;
  const number = (text, attrs = {}) => html("td", { class: "num", ...attrs }, String(text));
  return html(
    "tr",
    { "data-zone": zone.zone_id },
    html("td", {}, zone.name),
    number(t.unique_visitors, { "data-total-unique": t.unique_visitors }),
    number(t.sightings),
    number(t.entries),
    number(fmtDuration(t.mean_dwell_s)),
    number(t.occupancy_max),
  );
}

function renderTotals(report) {
  $("totals").tBodies[0].replaceChildren(...report.zones.map(totalsRow));
}

function renderDensity(report) {
  renderHeatmap(report);
  renderLines(report);
  renderTotals(report);
}

/* ---------- density loading ---------- */

function rememberStore(report) {
  state.timezone = report.timezone;
  for (const zone of report.zones) state.zoneNames.set(zone.zone_id, zone.name);
  $("store-info").textContent = `Store #${report.store_id} · times in ${report.timezone}`;
}

async function probe() {
  const end = Date.now();
  const hourAgo = new Date(end - 3_600_000).toISOString();
  const params = new URLSearchParams({ start: hourAgo, end: new Date(end).toISOString(), bucket: "3600" });
  rememberStore(await api(`density?${params}`));
}

function densityQuery() {
  const from = $("from").value;
  const to = $("to").value;
  if (!from || !to) throw new Error("Choose the first and the last day to show.");
  if (to < from) throw new Error("The last day comes before the first day.");
  const tz = state.timezone || "UTC";
  return new URLSearchParams({
    start: new Date(localMidnight(from, tz)).toISOString(),
    end: new Date(localMidnight(addDays(to, 1), tz)).toISOString(),
    bucket: $("bucket").value,
  });
}

async function loadDensity() {
  const request = ++state.request;
  const section = $("density");
  let report;
  try {
    if (!state.timezone) await probe();
    if (!$("from").value) $("from").value = todayIn(state.timezone);
    if (!$("to").value) $("to").value = $("from").value;
    report = await api(`density?${densityQuery()}${staffParam()}`);
  } catch (error) {
    if (request === state.request) {
      showError("density-error", tooManyBuckets(error) || error.message);
      section.classList.add("stale");
    }
    return;
  }
  if (request !== state.request) return;
  hideError("density-error");
  section.classList.remove("stale");
  rememberStore(report);
  state.report = report;
  renderDensity(report);
  state.refreshes += 1;
  section.dataset.refreshes = String(state.refreshes);
  $("density-updated").textContent = `Updated ${fmtSeconds(new Date().toISOString())}`;
}

function bucketSeconds(value) {
  const match = /^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?)?$/.exec(value);
  if (!match) return Number(value);
  const [days, hours, minutes] = match.slice(1).map((part) => Number(part || 0));
  return ((days * 24 + hours) * 60 + minutes) * 60;
}

function tooManyBuckets(error) {
  const limit = /the limit is (\d+)/.exec(error.detail || "");
  if (!limit || !$("from").value || !$("to").value) return null;
  const days = (Date.parse($("to").value) - Date.parse($("from").value)) / DAY_MS + 1;
  const fits = [...$("bucket").options].find((o) => Math.ceil((days * DAY_S) / bucketSeconds(o.value)) <= limit[1]);
  const advice = fits ? `choose a larger bucket, e.g. ${fits.textContent}` : "choose fewer days";
  return `Too many time buckets for ${days} days at this bucket size (at most ${limit[1]}): ${advice}.`;
}

function staffParam() {
  return state.includeStaff ? "&include_staff=true" : "";
}

function refreshFigures() {
  return loadDensity().then(loadFlows);
}

/* ---------- live occupancy: a server-sent event stream read with fetch (it carries the key header) ---------- */

function setLiveStatus(kind, detail) {
  const texts = {
    connecting: "Connecting…",
    live: "Live",
    reconnecting: "Connection lost, reconnecting…",
    refused: `The live view was refused: ${detail}`,
  };
  $("live").dataset.state = kind;
  $("live-status").textContent = texts[kind];
}

function renderLive(snapshot) {
  const peak = Math.max(1, ...snapshot.zones.map((z) => z.present));
  const rows = snapshot.zones.map((zone) => {
    const bar = html("span", { class: "live-bar" });
    bar.style.width = `${(100 * zone.present) / peak}%`; // CSSOM: the CSP allows no inline style attribute
    return html(
      "li",
      { "data-zone": zone.zone_id, "data-present": zone.present },
      html("span", { class: "live-name" }, zone.name),
      html("span", { class: "live-track" }, bar),
      html("strong", { class: "live-count" }, String(zone.present)),
    );
  });
  $("live-zones").replaceChildren(...rows);
  const total = $("live-total");
  total.textContent = String(snapshot.total);
  total.dataset.total = String(snapshot.total);
  $("live").dataset.seq = String(snapshot.seq);
  $("live-updated").textContent = `· as of ${fmtSeconds(snapshot.at)}`;
}

function scheduleRefresh() {
  if (state.refreshPending) return;
  state.refreshPending = setTimeout(() => {
    state.refreshPending = null;
    refreshFigures();
  }, REFRESH_AFTER_MS);
}

function onOccupancy(snapshot) {
  renderLive(snapshot);
  if (state.liveSeq !== null && snapshot.seq !== state.liveSeq) scheduleRefresh();
  state.liveSeq = snapshot.seq;
}

function handleBlock(block, live) {
  let event = "message";
  const data = [];
  for (const line of block.split("\n")) {
    if (line.startsWith(":")) continue; // a heartbeat
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "retry") live.retryMs = Number(value) || LIVE_RETRY_MS;
    else if (field === "event") event = value;
    else if (field === "data") data.push(value);
  }
  if (event === "occupancy" && data.length && state.live === live) onOccupancy(JSON.parse(data.join("\n")));
}

async function readEvents(body, live) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replaceAll("\r\n", "\n");
    let cut = buffer.indexOf("\n\n");
    while (cut >= 0) {
      handleBlock(buffer.slice(0, cut), live);
      buffer = buffer.slice(cut + 2);
      cut = buffer.indexOf("\n\n");
    }
  }
}

const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function followLive() {
  stopLive();
  const live = { controller: new AbortController(), retryMs: LIVE_RETRY_MS, failures: 0 };
  state.live = live;
  const params = new URLSearchParams(state.includeStaff ? { include_staff: "true" } : {});
  while (state.live === live) {
    setLiveStatus(state.reconnects ? "reconnecting" : "connecting");
    try {
      const headers = { "X-API-Key": state.key || "", Accept: "text/event-stream" };
      const url = new URL(`occupancy/live?${params}`, document.baseURI);
      const response = await fetch(url, { headers, signal: live.controller.signal, cache: "no-store" });
      if (response.status === 401 || response.status === 403) {
        const body = await response.json().catch(() => null);
        setLiveStatus("refused", detailText(body));
        return;
      }
      if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`);
      setLiveStatus("live");
      live.failures = 0;
      await readEvents(response.body, live);
    } catch {
      if (live.controller.signal.aborted) return;
      live.failures += 1;
    }
    if (state.live !== live) return;
    state.reconnects += 1;
    $("live").dataset.reconnects = String(state.reconnects);
    setLiveStatus("reconnecting");
    await pause(Math.min(LIVE_MAX_RETRY_MS, live.retryMs * 2 ** Math.min(live.failures, 4)));
  }
}

function stopLive() {
  if (state.live) state.live.controller.abort();
  state.live = null;
}

/* ---------- paths between zones ---------- */

function flowCell(count, max, attrs, title) {
  const cell = html("td", { class: "num flow", ...attrs }, count ? String(count) : "");
  if (count) cell.style.backgroundColor = heatColor(count, max); // through the CSSOM, as the CSP requires
  if (count / max > 0.45) cell.classList.add("dark");
  cell.title = title;
  return cell;
}

function renderFlows(report) {
  const zones = report.zones;
  const names = new Map(zones.map((z) => [z.zone_id, z.name]));
  const moves = new Map(report.transitions.map((t) => [`${t.from_zone_id}>${t.to_zone_id}`, t]));
  const max = Math.max(1, ...report.transitions.map((t) => t.count), ...zones.flatMap((z) => [z.first, z.last]));
  $("flows-summary").textContent = `${report.visits} visits by ${report.visitors} visitors`;
  const select = $("funnel-zone");
  const chosen = select.value;
  select.replaceChildren(
    html("option", { value: "" }, "choose a zone"),
    ...zones.map((z) => html("option", { value: z.zone_id }, z.name)),
  );
  select.value = chosen;
  const head = html(
    "tr",
    {},
    html("th", { class: "corner" }, "From ↓ / to →"),
    ...zones.map((z) => html("th", { scope: "col", "data-zone": z.zone_id }, z.name)),
    html("th", { scope: "col", class: "exit" }, "Left the store"),
  );
  const entry = html(
    "tr",
    { class: "entry" },
    html("th", { scope: "row" }, "Came in"),
    ...zones.map((z) =>
      flowCell(z.first, max, { "data-first": z.zone_id, "data-count": z.first }, `${z.first} visits began in ${z.name}`),
    ),
    html("td", { class: "void" }),
  );
  const rows = zones.map((from) =>
    html(
      "tr",
      { "data-from": from.zone_id },
      html("th", { scope: "row" }, from.name),
      ...zones.map((to) => {
        const move = moves.get(`${from.zone_id}>${to.zone_id}`);
        const count = move ? move.count : 0;
        const attrs = { "data-from": from.zone_id, "data-to": to.zone_id, "data-count": count };
        if (move) attrs["data-median"] = move.median_transit_s;
        const title = move
          ? `${from.name} → ${to.name}: ${count} ${count === 1 ? "move" : "moves"}, median ${fmtDuration(move.median_transit_s)}`
          : `${from.name} → ${to.name}: none`;
        return flowCell(count, max, attrs, title);
      }),
      flowCell(from.last, max, { "data-last": from.zone_id, "data-count": from.last }, `${from.last} visits ended in ${from.name}`),
    ),
  );
  const table = html("table", { class: "flow-matrix" }, html("thead", {}, head), html("tbody", {}, entry, ...rows));
  $("flows-matrix").replaceChildren(zones.length ? table : html("p", { class: "muted" }, "This store has no zones yet."));
  const funnel = $("funnel");
  if (report.funnel) {
    const f = report.funnel;
    const bar = html("span");
    bar.style.width = `${Math.round(f.share * 100)}%`;
    funnel.replaceChildren(
      html("span", { class: "bar" }, bar),
      `${f.reached} of ${f.visits} visits (${Math.round(f.share * 100)} %) reached ${names.get(f.zone_id) || f.name}`,
    );
    funnel.dataset.share = String(f.share);
    funnel.hidden = false;
  } else {
    funnel.hidden = true;
  }
}

async function loadFlows() {
  const request = ++state.flowsRequest;
  let report;
  try {
    const range = densityQuery();
    const params = new URLSearchParams({ start: range.get("start"), end: range.get("end") });
    if (state.includeStaff) params.set("include_staff", "true");
    if ($("funnel-zone").value) params.set("zone_id", $("funnel-zone").value);
    report = await api(`flows?${params}`);
  } catch (error) {
    if (request === state.flowsRequest) showError("flows-error", error.message);
    return;
  }
  if (request !== state.flowsRequest) return;
  hideError("flows-error");
  renderFlows(report);
}

/* ---------- staff ---------- */

const SOURCES = { photos: "photos", visitor: "a marked visitor" };

function staffRow(member) {
  const remove = html("button", { type: "button", class: "secondary", "data-staff": member.id }, "Remove");
  remove.addEventListener("click", () => removeStaff(member.id));
  return html(
    "tr",
    { "data-staff": member.id, "data-visitors": member.visitor_ids.length },
    html("td", {}, member.name),
    html("td", {}, `${SOURCES[member.source] || member.source} (${member.enrolled})`),
    html("td", { class: "num" }, String(member.visitor_ids.length)),
    html("td", {}, remove),
  );
}

async function loadStaff() {
  try {
    const members = await api("staff");
    $("staff-table").tBodies[0].replaceChildren(...members.map(staffRow));
    hideError("staff-error");
  } catch (error) {
    showError("staff-error", error.message);
  }
}

async function staffChange(call) {
  try {
    await call();
    hideError("staff-error");
  } catch (error) {
    showError("staff-error", error.message);
    return false;
  }
  await loadStaff();
  refreshFigures();
  return true;
}

async function enrolStaff(event) {
  event.preventDefault();
  const form = new FormData();
  form.append("name", $("staff-name").value.trim());
  for (const file of $("staff-photos").files) form.append("images", file, file.name || "photo");
  const done = await staffChange(() => api("staff", { method: "POST", body: form }));
  if (done) event.target.reset();
}

function removeStaff(id) {
  return staffChange(() => api(`staff/${id}`, { method: "DELETE" }));
}

function markStaff(visitorId, name) {
  const body = JSON.stringify({ name });
  const headers = { "Content-Type": "application/json" };
  return staffChange(() => api(`visitors/${visitorId}/staff`, { method: "POST", headers, body }));
}

function markStaffForm(visitor) {
  const input = html("input", { type: "text", maxlength: 200, required: "", "aria-label": "Staff member's name" });
  const form = html(
    "form",
    { class: "mark-staff", "data-visitor": visitor.visitor_id },
    input,
    html("button", { type: "submit", class: "secondary" }, "Mark as staff"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    markStaff(visitor.visitor_id, input.value.trim());
  });
  return form;
}

/* ---------- returning shoppers ---------- */

async function loadReturning() {
  const note = $("returning-note");
  const table = $("returning-table");
  let report;
  try {
    const range = densityQuery();
    report = await api(`returning?${new URLSearchParams({ start: range.get("start"), end: range.get("end") })}`);
  } catch (error) {
    table.hidden = true;
    note.textContent =
      error.status === 403
        ? "Returning shoppers are off for this store. The store's administrator can turn them on: it links people across days by their appearance."
        : error.message;
    note.hidden = false;
    return;
  }
  note.hidden = true;
  const rows = report.days.map((d) =>
    html(
      "tr",
      { "data-day": d.day, "data-visitors": d.visitors, "data-returning": d.returning },
      html("td", {}, fmtDay(d.start)),
      html("td", { class: "num" }, String(d.visitors)),
      html("td", { class: "num" }, String(d.returning)),
      html("td", { class: "num" }, d.visitors ? `${Math.round(d.share * 100)} %` : "–"),
    ),
  );
  table.tBodies[0].replaceChildren(...rows);
  table.hidden = false;
}

/* ---------- finding a person ---------- */

function choosePhoto(file) {
  if (!file) return;
  state.photo = file;
  if (state.previewUrl) URL.revokeObjectURL(state.previewUrl);
  state.previewUrl = URL.createObjectURL(file);
  const preview = $("preview");
  preview.src = state.previewUrl;
  preview.hidden = false;
  $("drop-text").textContent = `${file.name || "photo"} — drop or choose another photo to search again`;
  search();
}

function matchForm() {
  const form = new FormData();
  form.append("image", state.photo, state.photo.name || "photo");
  form.append("case_id", $("case-id").value.trim());
  form.append("top_k", $("top-k").value || "10");
  const minimum = $("min-similarity").value;
  state.floor = minimum === "" ? null : Number(minimum);
  if (minimum !== "") form.append("min_similarity", minimum);
  if ($("match-in-range").checked) {
    const range = densityQuery();
    form.append("since", range.get("start"));
    form.append("until", range.get("end"));
  }
  return form;
}

function photoProblem(error) {
  if (error.status === 403) return `Person search is not available: ${error.detail}`;
  if (error.status === 422) return `This photo could not be used: ${error.detail}`;
  if (error.status === 413) return `This photo is too large: ${error.detail}`;
  return error.status === undefined ? error.message : `The search failed. ${error.message}`;
}

async function search() {
  const results = $("match-results");
  if (!state.photo) {
    showError("match-error", "Drop or choose a photo of the person first.");
    return;
  }
  if (!$("case-id").value.trim()) {
    showError("match-error", "Enter the case ID first: every search is written to the store's audit log.");
    $("case-id").focus();
    return;
  }
  const ticket = ++state.searches;
  hideError("match-error");
  $("search-button").textContent = "Search again";
  results.replaceChildren(html("p", { class: "muted" }, "Searching…"));
  results.setAttribute("aria-busy", "true");
  let body;
  try {
    body = await api("match", { method: "POST", body: matchForm() });
  } catch (error) {
    if (ticket === state.searches) {
      results.replaceChildren();
      showError("match-error", photoProblem(error));
    }
    return;
  } finally {
    if (ticket === state.searches) results.removeAttribute("aria-busy");
  }
  if (ticket === state.searches) renderMatches(body);
}

function similarityCell(value) {
  const filled = Math.max(0, Math.min(1, value)) * 100;
  const fill = html("span");
  fill.style.width = `${filled}%`; // set through the CSSOM: the CSP allows no inline style attribute
  const bar = html("span", { class: "bar" }, fill);
  return html("td", { class: "num" }, bar, value.toFixed(3));
}

function sightingRow(match) {
  return html(
    "tr",
    {
      class: "sighting",
      "data-sighting": match.sighting_id,
      "data-visitor": match.visitor_id,
      "data-zone": match.zone_id,
      "data-camera": match.camera_id,
      "data-captured-at": match.captured_at,
      "data-similarity": match.similarity,
      "data-track": match.track_id || "",
    },
    html("td", {}, fmtDateTime(match.captured_at)),
    html("td", {}, zoneName(match.zone_id)),
    html(
      "td",
      { class: "camera" },
      (match.camera_name || `camera #${match.camera_id}`) + (match.track_id ? ` · track ${match.track_id}` : ""),
    ),
    similarityCell(match.similarity),
  );
}

function lastSeenLine(visitor) {
  return html(
    "p",
    {
      class: "last-seen",
      "data-visitor": visitor.visitor_id,
      "data-zone": visitor.zone_id,
      "data-camera": visitor.camera_id,
      "data-captured-at": visitor.captured_at,
    },
    "Last seen in ",
    html("strong", {}, visitor.zone_name),
    ` by camera ${visitor.camera_name || `#${visitor.camera_id}`} on ${fmtDateTime(visitor.captured_at)}`,
  );
}

const COLUMNS = ["Seen at", "Zone", "Camera", "Similarity"];

function visitorCard(visitor, matches, rank) {
  const newestFirst = [...matches].sort((a, b) => Date.parse(b.captured_at) - Date.parse(a.captured_at));
  const head = html(
    "div",
    { class: "visitor-head" },
    html("h3", {}, `${rank === 0 ? "Best match: visitor" : "Visitor"} #${visitor.visitor_id}`),
    html("span", { class: "badge" }, `best similarity ${visitor.best_similarity.toFixed(3)}`),
  );
  const table = html(
    "table",
    { class: "sightings" },
    html("thead", {}, html("tr", {}, ...COLUMNS.map((name) => html("th", {}, name)))),
    html("tbody", {}, ...newestFirst.map(sightingRow)),
  );
  const attrs = { class: rank === 0 ? "visitor best" : "visitor", "data-visitor": visitor.visitor_id };
  return html("section", attrs, head, lastSeenLine(visitor), table, markStaffForm(visitor));
}

function renderMatches(body) {
  const results = $("match-results");
  for (const visitor of body.visitors) {
    if (!state.zoneNames.has(visitor.zone_id)) state.zoneNames.set(visitor.zone_id, visitor.zone_name);
  }
  if (!body.matches.length) {
    const floor = state.floor;
    const text =
      floor === null || floor <= -1
        ? "No sightings match this photo."
        : `Nobody above similarity ${floor.toFixed(2)} matches this photo. Lower "Min similarity" to see weaker matches.`;
    results.replaceChildren(html("p", { class: "empty" }, text), ...otherModelNotice(body));
    return;
  }
  const cards = body.visitors.map((visitor, rank) =>
    visitorCard(visitor, body.matches.filter((m) => m.visitor_id === visitor.visitor_id), rank),
  );
  const count = `${body.matches.length} most similar sightings`;
  const order = "grouped by visitor (most similar first), newest first";
  const note = html("p", { class: "muted" }, `${count}, ${order}.`);
  results.replaceChildren(note, ...otherModelNotice(body), ...cards);
}

function otherModelNotice(body) {
  const count = body.other_model_sightings || 0;
  if (!count) return [];
  const what = count === 1 ? "1 sighting" : `${count} sightings`;
  const text =
    `${what} in this range came from an earlier model and cannot be searched with the current one ` +
    "(until they are re-embedded or age out).";
  return [html("p", { class: "notice", id: "other-model-note", role: "note" }, text)];
}

/* ---------- key handling and start-up ---------- */

function keyProblem(error) {
  if (error.status === 401) {
    return `This key was not accepted: ${error.detail}. Check that the whole store key was pasted.`;
  }
  if (error.status === 403) return `This key cannot open a store dashboard: ${error.detail}.`;
  return error.message;
}

function showKeyPanel(message) {
  $("dashboard").hidden = true;
  $("change-key").hidden = true;
  $("key-panel").hidden = false;
  if (message) showError("key-error", message);
  else hideError("key-error");
  $("key-input").focus();
}

function openDashboard() {
  $("key-panel").hidden = true;
  $("dashboard").hidden = false;
  $("change-key").hidden = false;
  refreshFigures();
  loadStaff();
  followLive();
}

function forgetKey() {
  sessionStorage.removeItem(KEY_STORAGE);
  stopLive();
  clearTimeout(state.refreshPending);
  Object.assign(state, { key: null, timezone: null, report: null, photo: null, liveSeq: null, refreshPending: null });
  state.request += 1;
  state.flowsRequest += 1;
  state.searches += 1;
  state.zoneNames.clear();
  $("store-info").textContent = "";
  const panels = ["heatmap", "heatmap-note", "lines", "legend", "match-results", "live-zones", "flows-matrix"];
  for (const id of panels) $(id).replaceChildren();
  for (const id of ["totals", "staff-table", "returning-table"]) $(id).tBodies[0].replaceChildren();
  $("returning-table").hidden = true;
  $("returning-note").hidden = true;
  $("preview").hidden = true;
  $("drop-text").textContent = "Drop a photo here, or click to choose one";
  $("search-button").textContent = "Search";
  for (const id of ["density-error", "match-error", "flows-error", "staff-error"]) hideError(id);
}

async function submitKey(event) {
  event.preventDefault();
  const input = $("key-input");
  const button = event.target.querySelector("button");
  hideError("key-error");
  button.disabled = true;
  state.key = input.value.trim();
  try {
    await probe();
    sessionStorage.setItem(KEY_STORAGE, state.key);
    input.value = "";
    openDashboard();
  } catch (error) {
    state.key = null;
    showError("key-error", keyProblem(error));
  } finally {
    button.disabled = false;
  }
}

function bindEvents() {
  $("key-form").addEventListener("submit", submitKey);
  $("change-key").addEventListener("click", () => {
    forgetKey();
    showKeyPanel();
  });
  $("density-form").addEventListener("submit", (event) => {
    event.preventDefault();
    refreshFigures();
  });
  $("include-staff").addEventListener("change", (event) => {
    state.includeStaff = event.target.checked;
    refreshFigures();
    followLive();
  });
  $("funnel-zone").addEventListener("change", loadFlows);
  $("funnel-form").addEventListener("submit", (event) => event.preventDefault());
  $("staff-form").addEventListener("submit", enrolStaff);
  $("returning-button").addEventListener("click", loadReturning);
  $("match-form").addEventListener("submit", (event) => {
    event.preventDefault();
    search();
  });
  $("photo").addEventListener("change", (event) => {
    choosePhoto(event.target.files[0]);
    event.target.value = "";
  });
  $("preview").addEventListener("error", (event) => {
    event.target.hidden = true;
  });
  const drop = $("drop");
  for (const type of ["dragenter", "dragover"]) {
    drop.addEventListener(type, (event) => {
      event.preventDefault();
      drop.classList.add("over");
    });
  }
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    choosePhoto(event.dataTransfer.files[0]);
  });
  for (const type of ["dragover", "drop"]) window.addEventListener(type, (event) => event.preventDefault());
  let resizing = null;
  window.addEventListener("resize", () => {
    clearTimeout(resizing);
    resizing = setTimeout(() => state.report && renderDensity(state.report), 150);
  });
}

async function start() {
  bindEvents();
  const saved = sessionStorage.getItem(KEY_STORAGE);
  if (!saved) {
    showKeyPanel();
    return;
  }
  state.key = saved;
  try {
    await probe();
  } catch (error) {
    if (error.status === 401 || error.status === 403) {
      forgetKey();
      showKeyPanel(`The saved key no longer works: ${error.detail}. Enter a valid store key.`);
      return;
    }
  }
  openDashboard();
}

start();
