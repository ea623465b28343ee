// The request log (#/register/requests): every data-subject request with the
// date received, how the person's identity was verified, the one-month
// deadline and its status. Requests near or past their deadline carry a text
// badge (not colour alone).

import { api } from "./api.js";
import { field, h, messageBox, replace, uid } from "./dom.js";
import { N_, t } from "./i18n.js";
import { formatDate, todayIso } from "./view-privacy-common.js";

export const KINDS = {
  access: N_("Access to data"),
  rectification: N_("Rectification"),
  erasure: N_("Erasure"),
  restriction: N_("Restriction of processing"),
  portability: N_("Data portability"),
  objection: N_("Objection"),
};

export const STATUS = {
  open: N_("In progress"),
  done: N_("Done"),
  refused: N_("Refused"),
};

const URGENCY = {
  near: { text: N_("Deadline near"), class: "pv-near" },
  overdue: { text: N_("Overdue"), class: "pv-overdue" },
};

/** Local midnight of a YYYY-MM-DD date, as an ISO time with its zone (UTC). */
function receivedIso(date) {
  const [y, m, d] = date.split("-").map(Number);
  return new Date(y, m - 1, d, 0, 0, 0).toISOString();
}

export function renderRequests(container, ctx) {
  // -- adding one ------------------------------------------------------------------------
  const kind = h("select", { name: "kind", testid: "pv-request-kind" },
    Object.entries(KINDS).map(([value, label]) => h("option", { value, text: t(label) })));
  const received = h("input", { type: "date", name: "received", required: true, value: todayIso(), max: todayIso(),
    testid: "pv-request-received" });
  const verified = h("input", { type: "text", name: "verified", required: true, maxlength: "500",
    autocomplete: "off", testid: "pv-request-verified" });
  const note = h("textarea", { name: "note", rows: "2", maxlength: "5000", testid: "pv-request-note" });
  const addError = messageBox("error");
  const submit = h("button", { type: "submit", class: "primary", text: t("Add to the log"), testid: "pv-request-add" });
  const form = h("form", { class: "stack", novalidate: true, testid: "pv-request-form" },
    h("div", { class: "field-pair" },
      field(t("Kind of request"), kind).row,
      field(t("Date received"), received).row),
    field(t("How identity was verified"), verified,
      { hint: t("For example: in person with an ID card; a reply from the email address on record.") }).row,
    field(t("Note (optional)"), note).row,
    addError.el,
    h("div", { class: "actions" }, submit));

  const listError = messageBox("error");
  const summary = h("p", { class: "summary", role: "status", testid: "pv-request-summary" });
  const tableSlot = h("div", { class: "table-slot" });

  function statusCell(r) {
    const urgency = URGENCY[r.urgency];
    return [
      h("span", { class: ["badge", `pv-status-${r.status}`], text: STATUS[r.status] ? t(STATUS[r.status]) : r.status }),
      urgency ? [" ", h("span", { class: ["badge", urgency.class], testid: "pv-urgency", text: t(urgency.text) })] : null,
    ];
  }

  function row(r) {
    const cell = (label, ...content) => h("td", { dataset: { label } }, h("div", { class: "cell" }, content));
    const buttons = r.status === "open"
      ? [h("button", { type: "button", class: "small", text: t("Mark done"), testid: "pv-request-done",
        on: { click: (e) => update(e.currentTarget, r.id, "done") } }),
      h("button", { type: "button", class: "small", text: t("Mark refused"), testid: "pv-request-refused",
        on: { click: (e) => update(e.currentTarget, r.id, "refused") } })]
      : [h("button", { type: "button", class: "small quiet", text: t("Reopen"), testid: "pv-request-reopen",
        on: { click: (e) => update(e.currentTarget, r.id, "open") } })];
    return h("tr", { testid: "pv-request-row", dataset: { urgency: r.urgency, id: r.id },
      class: URGENCY[r.urgency] ? URGENCY[r.urgency].class : null },
    cell(t("Kind"), h("strong", { text: KINDS[r.kind] ? t(KINDS[r.kind]) : r.kind }),
      r.note ? h("div", { class: "muted break", text: r.note }) : null),
    cell(t("Received"), h("time", { datetime: r.received_at, text: formatDate(r.received_at) })),
    cell(t("Deadline"), h("time", { datetime: r.deadline, text: formatDate(r.deadline) })),
    cell(t("Identity verified"), h("span", { class: "break", text: r.verified_how })),
    cell(t("Status"), statusCell(r)),
    h("td", { class: "pv-row-actions", dataset: { label: t("Actions") } }, h("div", { class: "actions" }, buttons)));
  }

  function draw(rows) {
    if (!rows.length) {
      summary.textContent = "";
      replace(tableSlot, h("p", { class: "muted empty", text: t("No requests in the log.") }));
      return;
    }
    const open = rows.filter((r) => r.status === "open").length;
    const late = rows.filter((r) => r.urgency === "near" || r.urgency === "overdue").length;
    summary.textContent = t("Open requests: {open}. Near or past the deadline: {late}.", { open, late });
    const head = [t("Kind"), t("Received"), t("Deadline"), t("Identity verified"), t("Status"), t("Actions")]
      .map((label) => h("th", { scope: "col", text: label }));
    replace(tableSlot, h("div", { class: "table-wrap" }, h("table", { class: "data cards pv-requests",
      testid: "pv-request-table" },
    h("caption", { class: "visually-hidden", text: t("Requests, open ones first by deadline") }),
    h("thead", {}, h("tr", {}, head)),
    h("tbody", {}, rows.map(row)))));
  }

  async function load() {
    listError.clear();
    tableSlot.setAttribute("aria-busy", "true");
    try {
      draw(await api("GET", "/api/v1/privacy/requests"));
    } catch (failure) {
      if (!failure.handled) listError.show(failure.message);
    } finally {
      tableSlot.removeAttribute("aria-busy");
    }
  }

  async function update(button, id, status) {
    listError.clear();
    button.disabled = true;
    try {
      await api("PATCH", `/api/v1/privacy/requests/${id}`, { status });
      ctx.announce(t("The request is updated."));
      await load();
    } catch (failure) {
      button.disabled = false;
      if (!failure.handled) listError.show(failure.message);
    }
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    addError.clear();
    if (!verified.value.trim()) {
      addError.show(t("Write how the person’s identity was verified."));
      verified.focus();
      return;
    }
    if (!received.value || received.value > todayIso()) {
      addError.show(t("Give the date the request was received (today or earlier)."));
      received.focus();
      return;
    }
    submit.disabled = true;
    try {
      await api("POST", "/api/v1/privacy/requests", {
        kind: kind.value, received_at: receivedIso(received.value), verified_how: verified.value.trim(),
        note: note.value.trim() || null,
      });
      verified.value = note.value = "";
      received.value = todayIso();
      ctx.announce(t("The request is added to the log."));
      await load();
    } catch (failure) {
      if (!failure.handled) addError.show(failure.message);
    } finally {
      submit.disabled = false;
    }
  });

  const addTitle = uid("h");
  const listTitle = uid("h");
  container.replaceChildren(
    h("section", { class: "panel-section", "aria-labelledby": listTitle },
      h("h2", { id: listTitle, text: t("Request log") }),
      h("p", { class: "muted", text: t("Each request must be answered within one month of receiving it (GDPR article 12(3)).") }),
      listError.el, summary, tableSlot),
    h("section", { class: "panel-section", "aria-labelledby": addTitle },
      h("h2", { id: addTitle, text: t("Add a request") }), form));
  load();
}
