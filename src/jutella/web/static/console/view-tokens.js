// API tokens (administrators; docs/api.md): the tokens other programs use
// with `Authorization: Bearer`, each limited to its scopes. A new token is
// shown once, right after it is made (jutella keeps only its hash); after
// that the list names tokens only by name. Names are staff-given text:
// textContent only.

import { api } from "./api.js";
import { copyText } from "./clipboard.js";
import { busy, checkbox, ensureStylesheet, field, h, messageBox, replace } from "./dom.js";
import { formatDateTime, N_, t } from "./i18n.js";
import { roleList } from "./roles.js";

const STYLESHEET = "/static/console/tokens.css";

// each scope of accounts/scopes.py in words
export const SCOPE_TEXT = {
  "conversations:read": N_("Read conversations and their messages, and search them"),
  "offline:read": N_("Read the messages left through the email form"),
  "reports:read": N_("Read the daily reports (no personal data)"),
  "webhooks:manage": N_("Manage webhooks"),
};

const EXPIRIES = [
  ["30", N_("In 30 days")],
  ["90", N_("In 90 days")],
  ["365", N_("In a year")],
  ["", N_("Never")],
];

const STATES = { active: N_("Active"), expired: N_("Expired"), revoked: N_("Revoked") };
const BADGES = { active: "active", expired: "", revoked: "disabled" };

export function renderTokens(container, ctx) {
  ensureStylesheet(STYLESHEET);
  const announce = ctx.announce || (() => {});
  const myRoles = new Set(ctx.me.account.roles);
  let alive = true;
  const pageError = messageBox("error");

  // -- the new token, shown once ------------------------------------------------------------------
  const secretSlot = h("div", { class: "token-secret-slot" });

  function showSecret(made) {
    const code = h("code", { class: "mono break", testid: "token-secret", text: made.token });
    const note = h("span", { class: "copy-note", role: "status" });
    const copy = h("button", { type: "button", testid: "token-copy", text: t("Copy") });
    copy.addEventListener("click", async () => {
      const ok = await copyText(made.token, code);
      note.textContent = ok ? t("Copied.") : t("Select the token and copy it.");
    });
    const done = h("button", { type: "button", class: "primary", testid: "token-done", text: t("I have copied it") });
    const box = h("div", { class: "message success token-secret", testid: "token-secret-box", role: "status" },
      h("p", {}, h("strong", { text: t("Copy the token {name} now.", { name: made.made.name }) }), " ",
        t("It is shown only this once: jutella keeps only a fingerprint of it, and cannot show it again.")),
      h("pre", { class: "snippet" }, code),
      h("div", { class: "copy-row" }, copy, note, done));
    done.addEventListener("click", () => {
      replace(secretSlot);
      nameInput.focus();
    });
    replace(secretSlot, box);
    copy.focus();
  }

  // -- make a token -------------------------------------------------------------------------------
  const nameInput = h("input", { type: "text", maxlength: "100", autocomplete: "off", testid: "token-name" });
  const scopeSet = h("fieldset", { class: "token-scopes", testid: "token-scopes" },
    h("legend", { text: t("What it may do") }));
  const expiry = h("select", { testid: "token-expiry" },
    EXPIRIES.map(([value, label]) => h("option", { value, text: t(label), selected: value === "90" })));
  const formError = messageBox("error");
  formError.el.dataset.testid = "token-error";
  const form = h("form", { class: "stack", novalidate: true, testid: "token-form" },
    field(t("Name"), nameInput, { hint: t("Say which program uses it, for example “Helpdesk” or “Monthly report”.") }).row,
    scopeSet,
    field(t("Expires"), expiry).row,
    formError.el,
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary", testid: "token-create",
      text: t("Create token") })));
  let scopeInputs = [];

  function drawScopes(scopes) {
    scopeInputs = [];
    replace(scopeSet, h("legend", { text: t("What it may do") }));
    for (const scope of scopes) {
      const mine = scope.roles.some((r) => myRoles.has(r));
      const hint = mine ? scope.name
        : t("{scope}: needs the role {roles}, which you do not have", { scope: scope.name, roles: roleList(scope.roles) });
      const { row, input } = checkbox(SCOPE_TEXT[scope.name] ? t(SCOPE_TEXT[scope.name]) : scope.name,
        { value: scope.name, disabled: !mine, dataset: { scope: scope.name } }, { hint });
      input.dataset.testid = "token-scope";
      scopeInputs.push(input);
      scopeSet.append(row);
    }
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    formError.clear();
    const scopes = scopeInputs.filter((i) => i.checked).map((i) => i.value);
    if (!nameInput.value.trim()) {
      formError.show(t("Give the token a name."));
      nameInput.focus();
      return;
    }
    if (!scopes.length) {
      formError.show(t("Choose at least one scope."));
      return;
    }
    const done = busy(form);
    try {
      const made = await api("POST", "/api/v1/tokens", { name: nameInput.value.trim(), scopes,
        expires_days: expiry.value ? Number(expiry.value) : null });
      done();
      nameInput.value = "";
      for (const input of scopeInputs) input.checked = false;
      showSecret(made);
      announce(t("Token {name} created. Copy it now.", { name: made.made.name }));
      reload();
    } catch (failure) {
      done();
      if (!failure.handled) formError.show(failure.message);
    }
  });

  // -- the list -----------------------------------------------------------------------------------
  const listSlot = h("div", {}, h("p", { class: "muted", text: t("Loading…") }));
  const when = (iso) => (iso ? formatDateTime(iso) : "");

  function tokenRow(token) {
    let action = null;
    if (token.state === "active") {
      action = h("button", { type: "button", class: "small danger-outline", testid: "token-revoke", text: t("Revoke"),
        "aria-label": t("Revoke {name}", { name: token.name }) });
      action.addEventListener("click", () => revoke(token, action));
    }
    const cell = (label, ...content) => h("td", { dataset: { label } }, h("div", { class: "cell" }, content));
    return h("tr", { testid: "token-row", dataset: { state: token.state, id: token.id } },
      cell(t("Name"), h("span", { class: "break", text: token.name })),
      cell(t("Scopes"), h("ul", { class: "plain token-scope-list" },
        token.scopes.map((s) => h("li", { class: "mono", text: s })))),
      cell(t("Made"), h("span", { class: "token-maker", text: token.created_by_name || t("Operator (command line)") }),
        h("span", { class: "muted token-when", text: when(token.created_at) })),
      cell(t("Expires"), h("span", { text: token.expires_at ? when(token.expires_at) : t("Never") })),
      cell(t("Last used"), h("span", { text: token.last_used_at ? when(token.last_used_at) : t("Not used yet") })),
      cell(t("State"), h("span", { class: ["badge", BADGES[token.state]], text: t(STATES[token.state]) })),
      cell(t("Actions"), action));
  }

  async function revoke(token, button) {
    // eslint-disable-next-line no-alert
    if (!window.confirm(t("Revoke {name}? Programs using it are refused from their next request.", { name: token.name }))) return;
    button.disabled = true;
    pageError.clear();
    try {
      await api("POST", `/api/v1/tokens/${token.id}/revoke`);
      announce(t("Token {name} revoked.", { name: token.name }));
      reload();
    } catch (failure) {
      button.disabled = false;
      if (!failure.handled) pageError.show(failure.message);
    }
  }

  function draw(data) {
    if (!alive) return;
    if (!scopeInputs.length) drawScopes(data.scopes);
    if (!data.tokens.length) {
      replace(listSlot, h("p", { class: "muted", testid: "tokens-empty", text: t("No tokens yet.") }));
      return;
    }
    replace(listSlot, h("div", { class: "table-wrap" }, h("table", { class: "data cards tokens-table", testid: "tokens" },
      h("thead", {}, h("tr", {},
        [t("Name"), t("Scopes"), t("Made"), t("Expires"), t("Last used"), t("State")]
          .map((text) => h("th", { scope: "col", text })),
        h("th", { scope: "col" }, h("span", { class: "visually-hidden", text: t("Actions") })))),
      h("tbody", {}, data.tokens.map(tokenRow)))));
  }

  async function reload() {
    try {
      const data = await api("GET", "/api/v1/tokens");
      pageError.clear();
      draw(data);
    } catch (failure) {
      if (alive && !failure.handled) pageError.show(failure.message);
    }
  }

  replace(container, h("section", { class: "tokens-page" },
    h("h1", { text: t("API tokens") }),
    h("p", { text: t("A token lets another program use jutella's API: it sends the token in the Authorization header. A token works only for what its scopes allow, never beyond your own roles, and never in the console.") }),
    pageError.el,
    secretSlot,
    h("section", { class: "panel-section", "aria-labelledby": "tokens-new-title" },
      h("h2", { id: "tokens-new-title", text: t("New token") }),
      form),
    h("section", { class: "panel-section", "aria-labelledby": "tokens-list-title" },
      h("h2", { id: "tokens-list-title", text: t("Tokens") }),
      listSlot)));
  reload();
  return () => {
    alive = false;
  };
}
