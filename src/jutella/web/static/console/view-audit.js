// The audit log (administrators and the privacy contact): filters, the table
// and paging. Actions, targets and details are shown in words
// (audit-words.js), as text, never as markup.

import { api, query } from "./api.js";
import { field, h, messageBox, replace, uid } from "./dom.js";
import { actionText, detailPhrases, subjectText, targetText } from "./audit-words.js";
import { formatDateTime, pt, t } from "./i18n.js";

const PAGE_SIZE = 50;

export function renderAudit(container, ctx) {
  let offset = 0;
  let names = new Map();
  const filters = { account: "", subject: "", since: "", until: "" };

  const accountSelect = h("select", { name: "account", testid: "audit-account" },
    h("option", { value: "", text: t("All accounts") }));
  const subject = h("input", { type: "text", name: "subject", maxlength: "64", spellcheck: "false",
    testid: "audit-subject" });
  const since = h("input", { type: "date", name: "since", testid: "audit-since" });
  const until = h("input", { type: "date", name: "until", testid: "audit-until" });
  const clearButton = h("button", { type: "button", text: t("Clear") });
  const form = h("form", { class: "filters", role: "search", "aria-label": t("Filter the audit log"), novalidate: true },
    field(t("Account"), accountSelect).row,
    field(t("Record or data subject"), subject).row,
    field(pt("date range", "From"), since).row,
    field(pt("date range", "To"), until).row,
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary", text: t("Show") }), clearButton));

  const error = messageBox("error");
  const summary = h("p", { class: "summary", role: "status", testid: "audit-summary" });
  const tableSlot = h("div", { class: "table-slot" });
  const previous = h("button", { type: "button", text: t("Previous"), disabled: true });
  const next = h("button", { type: "button", text: t("Next"), disabled: true });
  const pager = h("nav", { class: "pager", "aria-label": t("Pages of the audit log") }, previous, next);

  function auditRow(row) {
    const details = detailPhrases(row, names);
    const cell = (labelText, ...content) => h("td", { dataset: { label: labelText } }, h("div", { class: "cell" }, content));
    return h("tr", { testid: "audit-row", dataset: { action: row.action } },
      cell(t("Time"), h("time", { datetime: row.at, text: formatDateTime(row.at) })),
      cell(t("Who"), row.actor !== null ? h("span", { class: "actor", text: row.actor })
        : row.actor_id !== null ? `#${row.actor_id}` : h("span", { class: "muted", text: t("the system") })),
      cell(t("Action"), h("span", { class: "action-text", text: actionText(row.action) })),
      cell(t("Target"), h("span", { class: "break", text: targetText(row, names) }),
        row.subject ? h("div", { class: "muted break", text: t("Data subject: {subject}", { subject: subjectText(row.subject) }) })
          : null),
      cell(t("Details"), details.length ? h("ul", { class: "audit-details" }, details.map((text) => h("li", { text }))) : ""));
  }

  function draw(page) {
    const head = [t("Time"), t("Who"), t("Action"), t("Target"), t("Details")]
      .map((label) => h("th", { scope: "col", text: label }));
    if (!page.rows.length) {
      replace(tableSlot, h("p", { class: "muted empty", text: t("No entries match these filters.") }));
      summary.textContent = "";
    } else {
      replace(tableSlot, h("div", { class: "table-wrap" }, h("table", { class: "data cards", testid: "audit-table" },
        h("caption", { class: "visually-hidden", text: t("Audit log entries, newest first") }),
        h("thead", {}, h("tr", {}, head)),
        h("tbody", {}, page.rows.map(auditRow)))));
      summary.textContent = t("Entries {start}–{end} of {total}, newest first.", {
        start: offset + 1, end: offset + page.rows.length, total: page.total,
      });
    }
    previous.disabled = offset === 0;
    next.disabled = offset + page.rows.length >= page.total;
  }

  async function load() {
    error.clear();
    tableSlot.setAttribute("aria-busy", "true");
    try {
      const page = await api("GET", `/api/v1/audit${query({ ...filters, limit: PAGE_SIZE, offset })}`);
      draw(page);
    } catch (failure) {
      if (!failure.handled) error.show(failure.message);
    } finally {
      tableSlot.removeAttribute("aria-busy");
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    filters.account = accountSelect.value;
    filters.subject = subject.value.trim();
    filters.since = since.value;
    filters.until = until.value;
    if (filters.since && filters.until && filters.until < filters.since) {
      error.show(t("The end date is before the start date."));
      until.focus();
      return;
    }
    offset = 0;
    load();
  });
  clearButton.addEventListener("click", () => {
    accountSelect.value = "";
    subject.value = since.value = until.value = "";
    Object.assign(filters, { account: "", subject: "", since: "", until: "" });
    offset = 0;
    load();
  });
  previous.addEventListener("click", () => {
    offset = Math.max(0, offset - PAGE_SIZE);
    load().then(() => summary.focus());
  });
  next.addEventListener("click", () => {
    offset += PAGE_SIZE;
    load().then(() => summary.focus());
  });
  summary.tabIndex = -1;

  const filtersId = uid("h");
  container.replaceChildren(
    h("h1", { id: "page-title", tabindex: "-1", text: t("Audit log") }),
    h("p", { class: "muted", text: t("Every view of personal data (conversations, messages, register records, searches and lists), every change to accounts, departments and the register, and every sign-in, newest first. Entries name records by their number, not by their content.") }),
    h("section", { class: "panel-section", "aria-labelledby": filtersId },
      h("h2", { id: filtersId, class: "visually-hidden", text: t("Filters") }), form),
    error.el, summary, tableSlot, pager);

  // Names for the account filter and for targets, then the first page.
  api("GET", "/api/v1/audit/actors").then((actors) => {
    names = new Map(actors.map((a) => [String(a.id), a.name]));
    const sorted = actors.slice().sort((a, b) => a.name.localeCompare(b.name));
    accountSelect.append(...sorted.map((a) => h("option", { value: String(a.id), text: a.name })));
  }, () => {}).finally(load);
}
