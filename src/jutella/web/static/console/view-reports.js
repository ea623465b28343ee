// Reports (#/reports, administrators): the daily aggregates of
// GET /api/v1/reports/daily (docs/reports.md) for a date range and a
// department, drawn as charts of jutella's own (report-charts.js), each with
// its numbers in a table beside it, and the same days as a CSV download.
// The figures hold no personal data; agents' names (per-agent figures) are
// staff text and go in through textContent like everything else.

import { api, query } from "./api.js";
import { ensureStylesheet, field, h, messageBox, replace } from "./dom.js";
import { displayLocale, pt, t } from "./i18n.js";
import { barChart } from "./report-charts.js";

const STYLESHEET = "/static/console/reports.css";

function isoDay(date) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
}

function defaultRange() {
  const end = new Date();
  const start = new Date(end.getFullYear(), end.getMonth(), end.getDate() - 29);
  return { from: isoDay(start), to: isoDay(end) };
}

function dayDate(day) {
  const [y, m, d] = day.split("-").map(Number);
  return new Date(y, m - 1, d);
}

const shortDay = new Intl.DateTimeFormat(displayLocale(), { day: "numeric", month: "numeric" });
const longDay = new Intl.DateTimeFormat(displayLocale(), { dateStyle: "medium" });

/** A time in seconds, in words: "45 s", "2 min". */
function duration(seconds) {
  return seconds < 60 ? t("{n} s", { n: seconds }) : t("{n} min", { n: Math.round(seconds / 60) });
}

/** A percentile as the server gives it: {le: seconds}, {gt: seconds} or null. */
function bound(p) {
  if (!p) return "–";
  return "le" in p ? t("at most {time}", { time: duration(p.le) }) : t("over {time}", { time: duration(p.gt) });
}

/** Each histogram group in words ("30 s–1 min"), and short for the chart's axis ("1 min"). */
function bucketLabels(bounds) {
  return [...bounds.map((b, i) => (i === 0 ? `0–${duration(b)}` : `${duration(bounds[i - 1])}–${duration(b)}`)),
    `> ${duration(bounds[bounds.length - 1])}`];
}

function bucketTicks(bounds) {
  return [...bounds.map((b) => duration(b)), `>${duration(bounds[bounds.length - 1])}`];
}

function numbersTable(caption, headers, rows) {
  return h("details", { class: "rp-numbers" },
    h("summary", { text: t("Show the numbers") }),
    // a region that may scroll sideways on a phone: reachable by keyboard, named by its caption
    h("div", { class: "rp-scroll", tabindex: "0", role: "region", "aria-label": caption }, h("table", { class: "data" },
      h("caption", { class: "visually-hidden", text: caption }),
      h("thead", {}, h("tr", {}, headers.map((text) => h("th", { scope: "col", text })))),
      h("tbody", {}, rows.map((row) => h("tr", { dataset: row.key ? { key: row.key } : {} },
        row.cells.map((cell, i) => (i === 0 ? h("th", { scope: "row", text: cell })
          : h("td", { "data-label": headers[i], text: cell })))))))));
}

function chartFigure(id, title, note, svg, table, legend) {
  return h("figure", { class: "rp-chart", testid: "report-chart", dataset: { chart: id } },
    h("figcaption", {}, h("h2", { text: title }), note ? h("p", { class: "muted", text: note }) : null),
    svg, legend || null, table);
}

function legend(items) {
  return h("ul", { class: "rp-legend" }, items.map(([cls, text]) =>
    h("li", {}, h("span", { class: `rp-swatch ${cls}`, "aria-hidden": "true" }), text)));
}

function totalsList(report) {
  const tt = report.totals;
  const items = [
    ["chats", t("Chats"), tt.chats],
    ["answered", t("Answered"), tt.answered],
    ["missed", t("Missed"), tt.missed],
    ["offline", t("Offline messages"), tt.offline_messages],
    ["median", t("Median first answer"), bound(tt.first_answer.median)],
    ["p90", t("90% answered within"), bound(tt.first_answer.p90)],
  ];
  return h("dl", { class: "rp-totals", testid: "report-totals" }, items.map(([key, label, value]) =>
    h("div", { dataset: { total: key } }, h("dt", { text: label }), h("dd", { text: value }))));
}

function drawCharts(report) {
  const days = report.days;
  const dayLabels = days.map((d) => shortDay.format(dayDate(d.day)));
  const chats = chartFigure("chats", t("Chats per day"),
    t("{answered} answered, {missed} missed", { answered: report.totals.answered, missed: report.totals.missed }),
    barChart({
      labels: dayLabels,
      series: [{ name: t("Answered"), values: days.map((d) => d.answered), cls: "rp-answered" },
        { name: t("Missed"), values: days.map((d) => d.missed), cls: "rp-missed" }],
      ariaLabel: t("Chats per day: {answered} answered and {missed} missed in all",
        { answered: report.totals.answered, missed: report.totals.missed }),
    }),
    numbersTable(t("Chats per day"), [t("Day"), t("Answered"), t("Missed"), t("Chats")],
      days.map((d) => ({ key: d.day, cells: [longDay.format(dayDate(d.day)), d.answered, d.missed, d.chats] }))),
    legend([["rp-answered", t("Answered")], ["rp-missed", t("Missed")]]));

  const ranges = bucketLabels(report.bucket_bounds);
  const fa = report.totals.first_answer;
  const firstAnswer = chartFigure("first-answer", t("Time to first answer"),
    t("Median {median}; 90% {p90}. Times are grouped: each is given as its group's upper limit.",
      { median: bound(fa.median), p90: bound(fa.p90) }),
    barChart({
      labels: bucketTicks(report.bucket_bounds), showEvery: window.innerWidth < 600 ? 2 : 1,
      series: [{ name: t("Chats"), values: fa.buckets, cls: "rp-answered" }],
      ariaLabel: t("Time to first answer: median {median}, 90% {p90}", { median: bound(fa.median), p90: bound(fa.p90) }),
    }),
    numbersTable(t("Time to first answer"), [t("Time to first answer"), t("Chats")],
      ranges.map((range, i) => ({ key: `b${i}`, cells: [range, fa.buckets[i]] }))));

  const ratings = report.totals.ratings;
  const stars = ["1", "2", "3", "4", "5"];
  const ratingChart = chartFigure("ratings", t("Ratings"),
    t("{count} ratings", { count: stars.reduce((sum, s) => sum + ratings[s], 0) }),
    barChart({
      labels: stars, showEvery: 1,
      series: [{ name: t("Ratings"), values: stars.map((s) => ratings[s]), cls: "rp-rating" }],
      ariaLabel: t("Ratings from 1 to 5: {counts}", { counts: stars.map((s) => `${s}: ${ratings[s]}`).join(", ") }),
    }),
    numbersTable(t("Ratings"), [t("Rating"), t("Ratings")], stars.map((s) => ({ key: s, cells: [s, ratings[s]] }))));

  const offline = chartFigure("offline", t("Offline messages"),
    t("{count} in all", { count: report.totals.offline_messages }),
    barChart({
      labels: dayLabels,
      series: [{ name: t("Offline messages"), values: days.map((d) => d.offline_messages), cls: "rp-offline" }],
      ariaLabel: t("Offline messages per day: {count} in all", { count: report.totals.offline_messages }),
    }),
    numbersTable(t("Offline messages"), [t("Day"), t("Offline messages")],
      days.map((d) => ({ key: d.day, cells: [longDay.format(dayDate(d.day)), d.offline_messages] }))));

  return h("div", { class: "rp-charts" }, chats, firstAnswer, ratingChart, offline);
}

function agentsSection(report) {
  if (!report.agents) return null;
  return h("section", { class: "rp-agents", "aria-labelledby": "rp-agents-title" },
    h("h2", { id: "rp-agents-title", text: t("Agents") }),
    report.agents.length ? h("div", { class: "rp-scroll", tabindex: "0" }, h("table", { class: "data", testid: "report-agents" },
      h("thead", {}, h("tr", {}, [t("Agent"), t("Chats answered"), t("Median first answer")].map((text) =>
        h("th", { scope: "col", text })))),
      h("tbody", {}, report.agents.map((a) => h("tr", {},
        h("th", { scope: "row", text: a.name }),
        h("td", { "data-label": t("Chats answered"), text: a.chats_answered }),
        h("td", { "data-label": t("Median first answer"), text: bound(a.first_answer.median) }))))))
      : h("p", { class: "muted", text: t("No chats answered in these days.") }));
}

export function renderReports(container, ctx) {
  ensureStylesheet(STYLESHEET);
  container.classList.add("rp-view");
  const range = defaultRange();
  const from = h("input", { type: "date", name: "from", value: range.from, required: true, testid: "report-from" });
  const to = h("input", { type: "date", name: "to", value: range.to, required: true, testid: "report-to" });
  const department = h("select", { name: "department", testid: "report-department" },
    h("option", { value: "", text: t("All departments") }));
  const csv = h("a", { class: "button", href: "/api/v1/reports/daily.csv", testid: "report-csv",
    text: t("Download CSV") });
  const form = h("form", { class: "filters rp-filters", role: "search", "aria-label": t("Report filters"),
    novalidate: true },
  field(pt("date range", "From"), from).row, field(pt("date range", "To"), to).row, field(t("Department"), department).row,
  h("div", { class: "actions" }, h("button", { type: "submit", class: "primary", text: t("Show") }), csv));
  const error = messageBox("error");
  const status = h("p", { class: "muted rp-status", role: "status" });
  const body = h("div", { class: "rp-body" });
  let current = 0;

  function params() {
    return { from: from.value, to: to.value, department: department.value };
  }

  async function load() {
    const ask = ++current;
    error.clear();
    csv.setAttribute("href", `/api/v1/reports/daily.csv${query(params())}`);
    status.textContent = t("Loading…");
    try {
      const report = await api("GET", `/api/v1/reports/daily${query(params())}`);
      if (ask !== current) return;
      status.textContent = t("{from} to {to}, days in the time zone {zone}", {
        from: longDay.format(dayDate(report.from)), to: longDay.format(dayDate(report.to)), zone: report.time_zone,
      });
      replace(body, totalsList(report), drawCharts(report), agentsSection(report));
    } catch (failure) {
      if (ask !== current) return;
      status.textContent = "";
      replace(body);
      if (!failure.handled) error.show(failure.message);
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    load();
  });
  department.addEventListener("change", load);

  replace(container,
    h("h1", { id: "page-title", tabindex: "-1", text: t("Reports") }),
    h("p", { class: "muted", text: t("Counts only: the reports keep no names, messages or other personal data, and they stay when chats are deleted.") }),
    form, error.el, status, body);

  api("GET", "/api/v1/departments").then((list) => {
    for (const d of list || []) department.append(h("option", { value: String(d.id), text: d.name }));
  }).catch(() => {});
  load();
  return () => { current += 1; };
}
