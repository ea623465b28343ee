// The filter bar above the conversation list and the history search: label
// (data-testid="filter-label"), state ("filter-state"), agent
// ("filter-agent"), department ("filter-department", from GET
// /api/v1/departments; hidden while there are none), site ("filter-site",
// from GET /api/v1/sites/choices; shown only when there is more than one
// site: 0 stands for the pages of the default look) and the dates the
// conversation started between ("filter-from", "filter-to", both inclusive,
// in the agent's own time zone).
//
// With any filter set, the live list gives way to the matching conversations
// from GET /api/v1/conversations (closed ones of any age included), one
// "filter-result" link each; the history search (chat-search.js) sends the
// same filters. "Clear filters" brings the live list back.

import { api, query as queryString } from "./api.js";
import { h, replace, uid } from "./dom.js";
import { t } from "./i18n.js";
import { platform, stateLabel, timeElement } from "./chat-text.js";
import { departmentBadge, labelChips, loadLabels } from "./chat-labels.js";

const LIMIT = 200;

/** A select of the sites (the conversation list's and the offline inbox's filter). */
export function siteSelect(testid) {
  return h("select", { testid }, h("option", { value: "", text: t("Any site") }));
}

/** Fills a siteSelect; true when there is more than one site to choose from. */
export async function fillSites(select) {
  try {
    const sites = await api("GET", "/api/v1/sites/choices");
    const chosen = select.value;
    replace(select, h("option", { value: "", text: t("Any site") }),
      h("option", { value: "0", text: t("Other pages (the default look)") }),
      sites.map((x) => h("option", { value: String(x.id), text: x.name ? `${x.name} (${x.origin})` : x.origin })));
    select.value = chosen;
    return sites.length > 0 || Boolean(chosen);
  } catch {
    return false;
  }
}

function isoStartOf(day, plusDays = 0) {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(day)) return null;
  const when = new Date(`${day}T00:00:00`);
  if (Number.isNaN(when.getTime())) return null;
  when.setDate(when.getDate() + plusDays);
  return when.toISOString();
}

function labelled(text, control) {
  control.id = control.id || uid("flt");
  return h("div", { class: "filter-field" }, h("label", { for: control.id, text }), control);
}

/**
 * The bar and its results. open(id) opens a conversation; onActive(on) says
 * whether filtered results replace the live list; onChange() after every
 * change (the search re-runs with the new filters).
 * Returns {el, results, params(), active(), reset()}.
 */
export function filterBar({ open, onActive, onChange }) {
  const label = h("select", { testid: "filter-label" }, h("option", { value: "", text: t("Any label") }));
  const state = h("select", { testid: "filter-state" },
    h("option", { value: "", text: t("Any state") }),
    h("option", { value: "waiting", text: stateLabel("waiting") }),
    h("option", { value: "active", text: stateLabel("active") }),
    h("option", { value: "closed", text: stateLabel("closed") }));
  const agent = h("select", { testid: "filter-agent" }, h("option", { value: "", text: t("Any agent") }));
  const department = h("select", { testid: "filter-department" },
    h("option", { value: "", text: t("Any department") }));
  const departmentField = labelled(t("Department"), department);
  departmentField.hidden = true; // shown once departments exist
  const site = siteSelect("filter-site");
  const siteField = labelled(t("Site"), site);
  siteField.hidden = true; // shown once there is more than one site
  const from = h("input", { type: "date", testid: "filter-from" });
  const to = h("input", { type: "date", testid: "filter-to" });
  const clear = h("button", { type: "button", class: "small quiet", text: t("Clear filters"), hidden: true,
    testid: "filter-clear" });
  const el = h("details", { class: "chat-filters" },
    h("summary", { text: t("Filters") }),
    h("div", { class: "filter-grid" },
      labelled(t("Label"), label), labelled(t("State"), state), labelled(t("Agent"), agent), departmentField, siteField,
      labelled(t("Started from"), from), labelled(t("Started until"), to)),
    clear);
  const status = h("p", { class: "muted filter-status", role: "status" });
  const list = h("ul", { class: "conv-list filter-results", testid: "filter-results" });
  const results = h("div", { class: "chat-filter-results", hidden: true }, status, list);
  let serial = 0;

  async function fillOptions() {
    try {
      const labels = await loadLabels();
      replace(label, h("option", { value: "", text: t("Any label") }),
        labels.map((x) => h("option", { value: String(x.id), text: x.name })));
    } catch {
      // the bar works without them
    }
    try {
      const agents = await api("GET", "/api/v1/agents");
      replace(agent, h("option", { value: "", text: t("Any agent") }),
        agents.map((x) => h("option", { value: String(x.id), text: x.name })));
    } catch {
      // likewise
    }
    try {
      const departments = await api("GET", "/api/v1/departments");
      const chosen = department.value;
      replace(department, h("option", { value: "", text: t("Any department") }),
        departments.map((x) => h("option", { value: String(x.id), text: x.name })));
      department.value = chosen;
      departmentField.hidden = departments.length === 0 && !chosen;
    } catch {
      // likewise
    }
    siteField.hidden = !(await fillSites(site));
  }

  function params() {
    const out = {};
    if (label.value) out.label = label.value;
    if (state.value) out.state = state.value;
    if (agent.value) out.agent = agent.value;
    if (department.value) out.department = department.value;
    if (site.value) out.site = site.value;
    const start = isoStartOf(from.value);
    const end = isoStartOf(to.value, 1);
    if (start) out.from = start;
    if (end) out.to = end;
    return out;
  }

  function active() {
    return Object.keys(params()).length > 0;
  }

  function row(c) {
    const a = h("a", { class: "conv-item", href: `#/conversations/${c.id}`, testid: "filter-result",
      dataset: { id: c.id, state: c.state } },
    h("span", { class: "conv-line" },
      h("span", { class: "conv-visitor", text: c.visitor || t("Visitor") }),
      timeElement(c.created_at, "conv-time")),
    h("span", { class: "conv-platform", text: platform(c) || t("Browser not known") }),
    h("span", { class: ["conv-preview", c.preview ? "" : "muted"], text: c.preview || t("No messages yet") }),
    labelChips(c.labels),
    departmentBadge(c),
    h("span", { class: "conv-state" },
      h("span", { class: ["state-dot", `state-${c.state}`], "aria-hidden": "true" }), stateLabel(c.state),
      c.agent_name ? h("span", { class: "conv-agent", text: ` · ${c.agent_name}` }) : null));
    a.addEventListener("click", (event) => {
      if (event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey || event.altKey) return;
      event.preventDefault();
      open(c.id);
    });
    return h("li", { class: "conv" }, a);
  }

  async function run() {
    const on = active();
    clear.hidden = !on;
    results.hidden = !on;
    onActive(on);
    onChange();
    const mine = ++serial;
    if (!on) {
      list.replaceChildren();
      return;
    }
    status.textContent = t("Loading conversations…");
    try {
      const rows = await api("GET", `/api/v1/conversations${queryString({ ...params(), limit: LIMIT })}`);
      if (mine !== serial) return;
      status.textContent = rows.length ? t("Conversations found: {count}", { count: rows.length })
        : t("No conversation matches these filters.");
      replace(list, rows.map(row));
    } catch (failure) {
      if (mine !== serial) return;
      status.textContent = failure.handled ? "" : failure.message;
    }
  }

  for (const control of [label, state, agent, department, site, from, to]) control.addEventListener("change", run);
  clear.addEventListener("click", () => {
    for (const control of [label, state, agent, department, site, from, to]) control.value = "";
    run();
  });
  el.addEventListener("toggle", () => {
    if (el.open) fillOptions();
  }, { once: true });

  return { el, results, params, active, refresh: () => (active() ? run() : null) };
}
