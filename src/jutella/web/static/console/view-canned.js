// Canned responses and labels (#/canned).
//
// Every agent keeps their own canned responses here; administrators also
// keep the shared ones and the set of labels. A response has a shortcut
// (typed after "/" in the reply box), a language (fi, en or sv) and its text,
// which may hold {visitor_name} and {agent_name} (chat-canned.js fills them
// in). The server checks every field and its words are shown beside the form.

import { api } from "./api.js";
import { busy, ensureStylesheet, field, h, messageBox, replace } from "./dom.js";
import { N_, t } from "./i18n.js";
import { forgetCanned } from "./chat-canned.js";
import { forgetLabels, labelChip } from "./chat-labels.js";

const STYLESHEET = "/static/console/agent-tools.css";
const LANGUAGES = [["fi", N_("Finnish")], ["en", N_("English")], ["sv", N_("Swedish")]];
const PALETTE = ["gray", "red", "orange", "yellow", "green", "teal", "blue", "purple", "pink"];
const COLOR_NAMES = {
  gray: N_("Grey"), red: N_("Red"), orange: N_("Orange"), yellow: N_("Yellow"), green: N_("Green"),
  teal: N_("Teal"), blue: N_("Blue"), purple: N_("Purple"), pink: N_("Pink"),
};

function languageName(code) {
  const found = LANGUAGES.find(([c]) => c === code);
  return found ? t(found[1]) : code;
}

export function renderCanned(container, ctx) {
  ensureStylesheet(STYLESHEET);
  const roles = ctx.me.account.roles;
  const isAdmin = roles.includes("admin");
  const isAgent = roles.includes("agent");
  let gone = false;

  // -- canned responses -------------------------------------------------------------
  const cannedList = h("div", { class: "canned-table", testid: "canned-table" });
  const cannedMsg = messageBox();
  const shortcut = h("input", { type: "text", maxlength: "32", required: true, testid: "canned-shortcut",
    autocomplete: "off", spellcheck: "false" });
  const language = h("select", { testid: "canned-language" },
    LANGUAGES.map(([code, name]) => h("option", { value: code, text: t(name) })));
  const body = h("textarea", { rows: 4, maxlength: "4000", required: true, testid: "canned-body" });
  const shared = h("input", { type: "checkbox", id: "canned-shared", testid: "canned-shared" });
  const save = h("button", { type: "submit", class: "primary", testid: "canned-save", text: t("Save") });
  const cancel = h("button", { type: "button", class: "quiet", text: t("Cancel"), hidden: true });
  let editing = null;
  const form = h("form", { class: "canned-form", novalidate: true },
    h("h2", { text: t("Add a canned response") }),
    field(t("Shortcut"), shortcut, { hint: t("Typed after / in the reply box, for example hello.") }).row,
    field(t("Language"), language).row,
    field(t("Text"), body, { hint: t("{visitor_name} becomes the visitor’s name when known; {agent_name} your name.") }).row,
    isAdmin ? h("div", { class: "check" }, shared, h("label", { for: "canned-shared",
      text: t("Shared with every agent") })) : null,
    cannedMsg.el,
    h("div", { class: "actions" }, save, cancel));
  const formTitle = form.querySelector("h2");

  function startEdit(row) {
    editing = row;
    shortcut.value = row.shortcut;
    language.value = row.language;
    body.value = row.body;
    shared.checked = row.shared;
    shared.disabled = true;
    formTitle.textContent = t("Edit /{shortcut}", { shortcut: row.shortcut });
    cancel.hidden = false;
    shortcut.focus();
  }

  function stopEdit() {
    editing = null;
    form.reset();
    shared.disabled = false;
    formTitle.textContent = t("Add a canned response");
    cancel.hidden = true;
  }

  async function loadCanned() {
    try {
      const rows = await api("GET", "/api/v1/canned");
      if (gone) return;
      if (!rows.length) {
        replace(cannedList, h("p", { class: "muted", text: t("No canned responses yet.") }));
        return;
      }
      replace(cannedList, h("table", {},
        h("thead", {}, h("tr", {}, [t("Shortcut"), t("Language"), t("Text"), t("Whose"), ""].map(
          (x) => h("th", { text: x })))),
        h("tbody", {}, rows.map((row) => {
          const mayChange = row.shared ? isAdmin : row.mine;
          return h("tr", { testid: "canned-row", dataset: { shortcut: row.shortcut } },
            h("td", {}, h("code", { text: `/${row.shortcut}` })),
            h("td", { text: languageName(row.language) }),
            h("td", { class: "canned-text", text: row.body }),
            h("td", { text: row.shared ? t("Shared") : t("Mine") }),
            h("td", {}, mayChange ? [
              h("button", { type: "button", class: "small quiet", text: t("Edit"),
                on: { click: () => startEdit(row) } }),
              h("button", { type: "button", class: "small danger-outline", text: t("Delete"),
                on: { click: () => remove(row) } }),
            ] : null));
        }))));
    } catch (failure) {
      if (!gone && !failure.handled) replace(cannedList, h("p", { class: "message error", text: failure.message }));
    }
  }

  async function remove(row) {
    if (!window.confirm(t("Delete /{shortcut}?", { shortcut: row.shortcut }))) return;
    cannedMsg.clear();
    try {
      await api("DELETE", `/api/v1/canned/${row.id}`);
      forgetCanned();
      if (editing && editing.id === row.id) stopEdit();
      loadCanned();
    } catch (failure) {
      if (!failure.handled) cannedMsg.show(failure.message);
    }
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    cannedMsg.clear();
    const done = busy(form);
    const payload = { shortcut: shortcut.value, language: language.value, body: body.value, shared: shared.checked };
    try {
      if (editing) await api("PUT", `/api/v1/canned/${editing.id}`, payload);
      else await api("POST", "/api/v1/canned", payload);
      forgetCanned();
      done();
      stopEdit();
      if (ctx.announce) ctx.announce(t("Saved."));
      loadCanned();
    } catch (failure) {
      done();
      if (!failure.handled) cannedMsg.show(failure.message);
    }
  });
  cancel.addEventListener("click", stopEdit);
  if (!isAgent && !isAdmin) form.hidden = true;
  if (!isAgent) { // administrators without the agent role keep the shared ones only
    shared.checked = true;
    shared.disabled = true;
  }

  // -- labels (administrators) -------------------------------------------------------------
  const labelList = h("div", { class: "label-admin-list", testid: "label-list" });
  const labelMsg = messageBox();
  const labelName = h("input", { type: "text", maxlength: "40", testid: "label-name", autocomplete: "off" });
  const labelColor = h("select", { testid: "label-color" },
    PALETTE.map((c) => h("option", { value: c, text: t(COLOR_NAMES[c]) })));
  const labelForm = h("form", { class: "label-form", novalidate: true },
    field(t("Name"), labelName).row, field(t("Colour"), labelColor).row, labelMsg.el,
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary", testid: "label-save",
      text: t("Add label") })));

  async function loadLabelList() {
    try {
      const rows = await api("GET", "/api/v1/labels");
      if (gone) return;
      replace(labelList, rows.length ? h("ul", { class: "label-admin" }, rows.map((x) => h("li", {},
        labelChip(x), " ",
        isAdmin ? h("button", { type: "button", class: "small danger-outline", text: t("Delete"),
          on: { click: () => removeLabel(x) } }) : null)))
        : h("p", { class: "muted", text: t("No labels yet.") }));
    } catch (failure) {
      if (!gone && !failure.handled) replace(labelList, h("p", { class: "message error", text: failure.message }));
    }
  }

  async function removeLabel(x) {
    if (!window.confirm(t("Delete the label {name}? It comes off every conversation.", { name: x.name }))) return;
    try {
      await api("DELETE", `/api/v1/labels/${x.id}`);
      forgetLabels();
      loadLabelList();
    } catch (failure) {
      if (!failure.handled) labelMsg.show(failure.message);
    }
  }

  labelForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    labelMsg.clear();
    const done = busy(labelForm);
    try {
      await api("POST", "/api/v1/labels", { name: labelName.value, color: labelColor.value });
      forgetLabels();
      done();
      labelForm.reset();
      loadLabelList();
    } catch (failure) {
      done();
      if (!failure.handled) labelMsg.show(failure.message);
    }
  });

  replace(container,
    h("h1", { id: "page-title", tabindex: "-1", text: t("Canned responses and labels") }),
    h("section", { class: "card" }, h("h2", { text: t("Canned responses") }),
      h("p", { class: "muted", text: t("Type / and a shortcut in the reply box to insert a response.") }),
      cannedList),
    h("section", { class: "card" }, form),
    h("section", { class: "card" }, h("h2", { text: t("Labels") }),
      h("p", { class: "muted", text: isAdmin ? t("Agents put these labels on conversations and filter by them.")
        : t("Administrators define the labels.") }),
      labelList, isAdmin ? labelForm : null));
  loadCanned();
  loadLabelList();
  return () => {
    gone = true;
  };
}
