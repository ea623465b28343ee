// The record of processing activities (GDPR article 30), read-only
// (#/register/record): GET /api/v1/privacy/record drawn as a definition
// list. It is made from the same settings as the privacy notice.

import { api } from "./api.js";
import { h, messageBox, replace, uid } from "./dom.js";
import { N_, lang, t } from "./i18n.js";

const LABELS = {
  controller: N_("Controller"),
  contact: N_("Contact person"),
  register: N_("Name of the register"),
  purposes: N_("Purposes of processing"),
  legal_basis: N_("Legal basis"),
  categories_of_data_subjects: N_("Categories of data subjects"),
  categories_of_personal_data: N_("Categories of personal data"),
  recipients: N_("Recipients"),
  transfers_outside_eea: N_("Transfers outside the EU/EEA"),
  retention_days: N_("Retention (days)"),
  security_measures: N_("Security measures"),
  name: N_("Name"),
  street: N_("Street address"),
  postcode: N_("Postcode"),
  city: N_("City"),
  phone: N_("Phone"),
  email: N_("Email"),
  chat: N_("Chat conversations"),
  offline_messages: N_("Offline messages"),
  metadata: N_("Automatically collected details"),
  audit_log: N_("Audit log"),
  version: N_("Version"),
  date: N_("Date"),
  data_protection_officer: N_("Data protection officer"),
  processors: N_("Processors"),
  retention_notes: N_("Notes on retention"),
  automated_decision_making: N_("Automated decision-making"),
  backups: N_("Backups"),
  service: N_("Service"),
  location: N_("Location"),
  kind: N_("Kind"),
};

function label(key) {
  return LABELS[key] ? t(LABELS[key]) : key.replace(/_/g, " ");
}

function value(v) {
  if (v === null || v === undefined || v === "") return h("span", { class: "muted", text: "—" });
  if (Array.isArray(v)) return h("ul", { class: "pv-plain-list" }, v.map((item) => h("li", {}, value(item))));
  if (typeof v === "object") return definitions(v);
  return h("span", { class: "break", text: String(v) });
}

function definitions(data) {
  return h("dl", { class: "facts pv-record-list" }, Object.entries(data).flatMap(([key, v]) => [
    h("dt", { text: label(key) }),
    h("dd", { dataset: { key } }, value(v)),
  ]));
}

export function renderRecord(container) {
  const error = messageBox("error");
  const slot = h("div", { class: "pv-record-slot", testid: "pv-record", "aria-busy": "true" },
    h("p", { class: "muted", text: t("Loading…") }));
  const titleId = uid("h");
  container.replaceChildren(h("section", { class: "panel-section", "aria-labelledby": titleId },
    h("h2", { id: titleId, text: t("Record of processing") }),
    h("p", { class: "muted", text: t("The record of processing activities (GDPR article 30), made from the same settings as the privacy notice.") }),
    h("p", {}, h("a", { href: `/privacy?lang=${encodeURIComponent(lang)}`, text: t("Privacy notice") })),
    error.el, slot));
  api("GET", `/api/v1/privacy/record?lang=${encodeURIComponent(lang)}`).then((data) => {
    replace(slot, definitions(data));
  }, (failure) => {
    slot.replaceChildren();
    if (!failure.handled) error.show(failure.message);
  }).finally(() => slot.removeAttribute("aria-busy"));
}
