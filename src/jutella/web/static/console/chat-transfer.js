// Transferring a conversation (docs/departments.md): a "Transfer" button in
// the conversation's header opens a small panel listing the online agents
// (with their load) and the departments, and an optional note for the
// receiver, which only staff see. POST /api/v1/conversations/{id}/transfer.
//
// Names are staff-given text: option labels are set with textContent (h()).

import { api } from "./api.js";
import { busy, field, h, messageBox, replace, uid } from "./dom.js";
import { pt, t } from "./i18n.js";

const MAX_NOTE = 4_000;
export const STYLESHEET = "/static/console/departments.css";

export function ensureStylesheet() {
  if (document.querySelector(`link[href="${STYLESHEET}"]`)) return;
  const link = document.createElement("link");
  link.rel = "stylesheet";
  link.href = STYLESHEET;
  document.head.append(link);
}

function loadText(agent) {
  if (!agent.limit) return t("{active} chats", { active: agent.active });
  return t("{active}/{limit} chats", { active: agent.active, limit: agent.limit });
}

/** Whether the signed-in agent handles conversation `c`: it is theirs, or
 * they are an administrator. Who may transfer it, and close it once it is
 * active (the server refuses others a transfer; chat-thread.js hides Close). */
export function handles(store, c) {
  const me = store.me && store.me.account;
  return Boolean(c && me && (c.agent_id === store.myId || (me.roles && me.roles.includes("admin"))));
}

/**
 * The Transfer button and its panel for conversation `id`.
 * store: chat-store.js (for who is signed in); announce(text) for screen
 * readers. Returns {button, panel, update(conversation)}.
 */
export function transferControl(id, { store, announce }) {
  ensureStylesheet();
  const panelId = uid("transfer");
  const button = h("button", { type: "button", class: "small", testid: "transfer-button", text: t("Transfer"),
    "aria-expanded": "false", "aria-controls": panelId });
  const target = h("select", { testid: "transfer-target", required: true });
  const note = h("textarea", { rows: 2, maxlength: String(MAX_NOTE), testid: "transfer-note", autocomplete: "off" });
  const error = messageBox("error");
  const submit = h("button", { type: "submit", class: "primary", testid: "transfer-submit", text: t("Transfer") });
  const cancel = h("button", { type: "button", class: "quiet", text: t("Cancel") });
  const form = h("form", { class: "transfer-panel stack", id: panelId, testid: "transfer-dialog", hidden: true,
    novalidate: true, "aria-label": t("Transfer the conversation") },
    h("h3", { text: t("Transfer the conversation") }),
    field(pt("recipient", "To"), target).row,
    field(t("Note to the receiver (optional)"), note,
      { hint: t("Only staff see the note. The visitor sees who joined.") }).row,
    error.el,
    h("div", { class: "actions" }, submit, cancel));

  async function fill() {
    replace(target, h("option", { value: "", text: t("Loading…") }));
    const [agents, departments] = await Promise.all([
      api("GET", "/api/v1/agents/load"),
      api("GET", "/api/v1/departments"),
    ]);
    const others = agents.filter((a) => a.id !== store.myId && a.state === "online");
    const agentGroup = h("optgroup", { label: t("Agents online") });
    for (const a of others) {
      const full = a.limit && a.active >= a.limit;
      agentGroup.append(h("option", { value: `agent:${a.id}`, disabled: Boolean(full),
        text: `${a.name} (${loadText(a)}${full ? `, ${t("full")}` : ""})` }));
    }
    if (!others.length) agentGroup.append(h("option", { value: "", disabled: true, text: t("Nobody else is online") }));
    const deptGroup = h("optgroup", { label: t("Departments") });
    for (const d of departments) {
      deptGroup.append(h("option", { value: `department:${d.id}`,
        text: `${d.name} (${d.online ? t("someone online") : t("nobody online")})` }));
    }
    replace(target, h("option", { value: "", text: t("Choose…") }), agentGroup, departments.length ? deptGroup : null);
  }

  async function open() {
    error.clear();
    note.value = "";
    form.hidden = false;
    button.setAttribute("aria-expanded", "true");
    try {
      await fill();
    } catch (failure) {
      error.show(failure.message);
    }
    target.focus();
  }

  function close() {
    form.hidden = true;
    button.setAttribute("aria-expanded", "false");
  }

  button.addEventListener("click", () => (form.hidden ? open() : close()));
  cancel.addEventListener("click", () => {
    close();
    button.focus();
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.clear();
    const [kind, value] = target.value.split(":");
    if (!value) {
      error.show(t("Choose an agent or a department."));
      target.focus();
      return;
    }
    const body = { note: note.value.trim() || null };
    body[kind === "agent" ? "agent_id" : "department_id"] = Number(value);
    const done = busy(form);
    try {
      const summary = await api("POST", `/api/v1/conversations/${id}/transfer`, body);
      done();
      store.upsert(summary);
      close();
      const label = target.selectedOptions[0] ? target.selectedOptions[0].textContent : "";
      if (announce) announce(t("The conversation was transferred: {to}", { to: label }));
    } catch (failure) {
      done();
      error.show(failure.message);
    }
  });

  return {
    button,
    panel: form,
    update(c) {
      const allowed = c && c.state !== "closed" && handles(store, c);
      button.hidden = !allowed;
      if (!allowed) close();
    },
  };
}
