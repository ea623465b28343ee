// Accounts (administrators): the staff list, inviting someone new, per-account
// changes, and the two-factor requirement for everyone.

import { api } from "./api.js";
import { copyText } from "./clipboard.js";
import { busy, checkbox, field, h, messageBox, replace, uid } from "./dom.js";
import { t } from "./i18n.js";
import { ROLES, roleList } from "./roles.js";
import { deliveryLabel } from "./view-offline-message.js";

const MAIL_DONE = ["sent", "refused", "failed", "uncertain"];
const MAIL_FAILED = ["refused", "failed", "uncertain"];

/**
 * The invitation: mailed (SMTP is configured) or the link to send yourself.
 * A mailed invitation's state is followed (GET /api/v1/accounts,
 * invitation_delivery); the link to copy stays at hand, and is shown
 * outright when the mail could not be sent (docs/accounts.md).
 */
function invitationPanel(email, link, { mailed = false, accountId = null } = {}) {
  const copyPanel = linkPanel(email, link, mailed);
  if (!mailed) return copyPanel;
  const text = h("span", { text: t("The invitation is being mailed to {email}.", { email }) });
  const status = h("p", { class: ["delivery", "delivery-queued"], testid: "invitation-mail", role: "status",
    dataset: { delivery: "queued" } }, h("span", { class: "delivery-dot", "aria-hidden": "true" }), text);
  const more = h("details", { class: "invitation-link-more" },
    h("summary", { text: t("Show the link to send it yourself") }), copyPanel);
  const panel = h("div", { class: "message success invitation", testid: "invitation" }, status, more);
  function show(state) {
    status.dataset.delivery = state;
    status.className = `delivery delivery-${state}`;
    if (state === "sent") text.textContent = t("The invitation was mailed to {email}.", { email });
    else if (MAIL_FAILED.includes(state)) {
      text.textContent = t("The invitation mail to {email} could not be sent ({state}). Send the link below yourself.",
        { email, state: deliveryLabel(state) });
      panel.classList.replace("success", "error");
      more.open = true;
    }
  }
  const started = Date.now();
  const until = started + 3 * 60 * 1000;
  async function poll() {
    if (!panel.isConnected && Date.now() - started > 5000) return; // the panel was closed
    try {
      const list = await api("GET", "/api/v1/accounts");
      const account = list.find((a) => a.id === accountId);
      const state = account && account.invitation_delivery;
      if (state) show(state);
      if (MAIL_DONE.includes(state)) return;
    } catch (failure) {
      if (failure.handled) return;
    }
    if (Date.now() < until) setTimeout(poll, 1500);
  }
  if (accountId !== null) setTimeout(poll, 700);
  return panel;
}

/** The invitation link in a read-only field with a copy button. */
function linkPanel(email, link, mailed) {
  const input = h("input", {
    type: "text", readOnly: true, value: link, testid: "invitation-link", class: "mono", spellcheck: "false",
  });
  const note = h("span", { class: "copy-note", role: "status" });
  const copy = h("button", { type: "button", text: t("Copy") });
  copy.addEventListener("click", async () => {
    const ok = await copyText(input.value, input);
    note.textContent = ok ? t("Copied.") : t("Select the link and copy it.");
  });
  input.addEventListener("focus", () => input.select());
  const { row } = field(t("Invitation link"), input);
  row.append(h("div", { class: "copy-row" }, copy, note));
  if (mailed) {
    return h("div", { class: "invitation-copy" },
      h("p", {}, t("Send this link to {email} yourself. It can be used once, to choose a password.", { email })), row);
  }
  return h("div", { class: "message success invitation", testid: "invitation" },
    h("p", {}, t("Send this link to {email} yourself. It can be used once, to choose a password.", { email })),
    row);
}

function roleCheckboxes(legend, checked) {
  const inputs = [];
  const fieldset = h("fieldset", { class: "roles" }, h("legend", { text: legend }));
  for (const [code, label, description] of ROLES) {
    const { row, input } = checkbox(t(label), { value: code, checked: checked.includes(code), name: "role" },
      { hint: t(description) });
    inputs.push(input);
    fieldset.append(row);
  }
  return { fieldset, selected: () => inputs.filter((i) => i.checked).map((i) => i.value) };
}

function stateOf(account) {
  if (account.disabled) return ["disabled", t("Disabled")];
  if (!account.active) return ["invited", t("Invited")];
  if (account.sso) return ["active", t("Active (single sign-on)")];
  return ["active", t("Active")];
}

export function renderAccounts(container, ctx) {
  const { announce, me } = ctx;
  const pageError = messageBox("error");
  const tableStatus = messageBox("info");
  const tableError = messageBox("error");
  const tableSlot = h("div", { class: "table-slot" }, h("p", { class: "muted", text: t("Loading…") }));
  const createResult = h("div", { class: "result-slot" });
  let accounts = [];
  let openPanel = null; // {row, accountId}

  // -- create -------------------------------------------------------------------
  const email = h("input", { type: "email", name: "email", autocomplete: "off", spellcheck: "false",
    autocapitalize: "off" });
  const name = h("input", { type: "text", name: "name", autocomplete: "off", maxlength: "200" });
  const createRoles = roleCheckboxes(t("Roles"), ["agent"]);
  const createError = messageBox("error");
  const createForm = h("form", { class: "stack", novalidate: true, testid: "account-create" },
    h("div", { class: "field-pair" }, field(t("Email"), email).row, field(t("Name"), name).row),
    createRoles.fieldset,
    createError.el,
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary", testid: "account-create-submit",
      text: t("Create account and invitation link") })));
  createForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    createError.clear();
    const roles = createRoles.selected();
    if (!roles.length) {
      createError.show(t("Choose at least one role."));
      return;
    }
    const done = busy(createForm);
    try {
      const created = await api("POST", "/api/v1/accounts", { email: email.value.trim(), name: name.value, roles });
      done();
      closePanel();
      email.value = "";
      name.value = "";
      replace(createResult, created.invitation_link
        ? invitationPanel(created.account.email, created.invitation_link,
          { mailed: created.invitation_mailed, accountId: created.account.id })
        : h("p", { class: "message success", text: t("The account is created.") }));
      announce(t("The account for {name} is created.", { name: created.account.name }));
      await loadAccounts();
      const link = createResult.querySelector("[data-testid=invitation-mail], [data-testid=invitation-link]");
      if (link) {
        if (!link.matches("input")) link.tabIndex = -1;
        link.focus();
      }
    } catch (failure) {
      done();
      if (!failure.handled) {
        createError.show(failure.message);
        email.focus();
      }
    }
  });

  // -- the table --------------------------------------------------------------------
  function closePanel() {
    if (openPanel) openPanel.row.remove();
    openPanel = null;
  }

  function openRowPanel(tr, account, content) {
    closePanel();
    createResult.replaceChildren();
    const cell = h("td", { colspan: "6" }, content);
    const row = h("tr", { class: "row-panel" }, cell);
    tr.after(row);
    openPanel = { row, accountId: account.id };
    const first = row.querySelector("input, button");
    if (first) first.focus();
  }

  async function act(account, request, success) {
    tableError.clear();
    tableStatus.clear();
    try {
      const result = await request();
      closePanel();
      const text = success(result);
      if (text) {
        tableStatus.show(text);
        announce(text);
      }
      await loadAccounts();
      const again = tableSlot.querySelector(`tr[data-account-id="${account.id}"] button`);
      if (again) again.focus();
      return result;
    } catch (failure) {
      if (!failure.handled) tableError.show(failure.message);
      return null;
    }
  }

  function confirmPanel(tr, account, question, confirmLabel, run) {
    const yes = h("button", { type: "button", class: "danger", text: confirmLabel });
    const no = h("button", { type: "button", text: t("Cancel") });
    yes.addEventListener("click", run);
    no.addEventListener("click", () => { closePanel(); tr.querySelector("button").focus(); });
    openRowPanel(tr, account, h("div", { class: "panel" }, h("p", { text: question }),
      h("div", { class: "actions" }, yes, no)));
  }

  function editRoles(tr, account) {
    const boxes = roleCheckboxes(t("Roles of {name}", { name: account.name }), account.roles);
    const error = messageBox("error");
    const form = h("form", { class: "panel stack", novalidate: true }, boxes.fieldset, error.el,
      h("div", { class: "actions" },
        h("button", { type: "submit", class: "primary", text: t("Save roles") }),
        h("button", { type: "button", class: "cancel", text: t("Cancel") })));
    form.querySelector(".cancel").addEventListener("click", () => { closePanel(); tr.querySelector("button").focus(); });
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      error.clear();
      const roles = boxes.selected();
      if (!roles.length) {
        error.show(t("Choose at least one role."));
        return;
      }
      const done = busy(form);
      try {
        await api("PATCH", `/api/v1/accounts/${account.id}`, { roles });
      } catch (failure) {
        done();
        if (!failure.handled) error.show(failure.message);
        return;
      }
      closePanel();
      const text = t("The roles of {name} are saved.", { name: account.name });
      tableStatus.show(text);
      announce(text);
      if (account.id === me.account.id) await ctx.refreshMe();
      await loadAccounts();
    });
    openRowPanel(tr, account, form);
  }

  function accountRow(account) {
    const [stateCode, stateText] = stateOf(account);
    const self = account.id === me.account.id;
    const tr = h("tr", { testid: "account-row", dataset: { accountId: account.id, state: stateCode } });
    const button = (label, handler, props = {}) => {
      const b = h("button", { type: "button", class: "small", text: label, ...props });
      b.addEventListener("click", () => handler(tr, account));
      return b;
    };
    const actions = [
      button(t("Edit roles"), editRoles, { "aria-label": t("Edit roles of {name}", { name: account.name }) }),
    ];
    if (!account.active && !account.disabled) {
      actions.push(button(t("New invitation link"), async () => {
        const result = await act(account, () => api("POST", `/api/v1/accounts/${account.id}/invitation`),
          () => "");
        if (result) {
          const slotRow = tableSlot.querySelector(`tr[data-account-id="${account.id}"]`);
          if (slotRow) {
            openRowPanel(slotRow, account, invitationPanel(account.email, result.invitation_link,
              { mailed: result.invitation_mailed, accountId: account.id }));
          }
        }
      }, { "aria-label": t("New invitation link for {name}", { name: account.name }) }));
    }
    if (account.totp_enabled && !self) {
      actions.push(button(t("Reset two-factor"), () => confirmPanel(tr, account,
        t("Turn off two-factor sign-in for {name}? Do this only when they have lost their device; they can turn it on again.",
          { name: account.name }),
        t("Reset two-factor"),
        () => act(account, () => api("POST", `/api/v1/accounts/${account.id}/totp/reset`),
          () => t("Two-factor sign-in is off for {name}.", { name: account.name }))),
      { "aria-label": t("Reset two-factor sign-in of {name}", { name: account.name }) }));
    }
    if (account.disabled) {
      actions.push(button(t("Enable"), () => act(account, () => api("POST", `/api/v1/accounts/${account.id}/enable`),
        () => t("{name} can sign in again.", { name: account.name })),
      { "aria-label": t("Enable {name}", { name: account.name }) }));
    } else if (!self) {
      actions.push(button(t("Disable"), () => confirmPanel(tr, account,
        t("Disable {name}? They are signed out at once and cannot sign in until the account is enabled again.",
          { name: account.name }),
        t("Disable account"),
        () => act(account, () => api("POST", `/api/v1/accounts/${account.id}/disable`),
          () => t("{name} is disabled.", { name: account.name }))),
      { "aria-label": t("Disable {name}", { name: account.name }), class: "small danger-outline" }));
    }
    const cell = (label, ...content) => h("td", { dataset: { label } }, h("div", { class: "cell" }, content));
    tr.append(
      cell(t("Name"), h("span", { class: "account-name", text: account.name }),
        self ? h("span", { class: "muted", text: ` ${t("(you)")}` }) : null),
      cell(t("Email"), h("span", { class: "break", text: account.email })),
      cell(t("Roles"), roleList(account.roles)),
      cell(t("State"), h("span", { class: ["badge", stateCode], text: stateText }),
        account.invitation_delivery && !account.active
          ? h("span", { class: "muted small invitation-delivery", testid: "invitation-delivery",
            dataset: { delivery: account.invitation_delivery },
            text: ` ${t("Invitation mail: {state}", { state: deliveryLabel(account.invitation_delivery) })}` })
          : null),
      cell(t("Two-factor"), h("span", { class: ["badge", account.totp_enabled ? "on" : "off"],
        text: account.totp_enabled ? t("On") : t("Off") })),
      h("td", { class: "row-actions", dataset: { label: t("Actions") } }, h("div", { class: "button-row" }, actions)));
    return tr;
  }

  function drawTable() {
    closePanel();
    const head = [t("Name"), t("Email"), t("Roles"), t("State"), t("Two-factor")]
      .map((label) => h("th", { scope: "col", text: label }));
    replace(tableSlot, h("div", { class: "table-wrap" }, h("table", { class: "data cards", testid: "accounts-table" },
      h("caption", { class: "visually-hidden", text: t("Staff accounts") }),
      h("thead", {}, h("tr", {}, head, h("th", { scope: "col" }, h("span", { class: "visually-hidden",
        text: t("Actions") })))),
      h("tbody", {}, accounts.map(accountRow)))));
  }

  async function loadAccounts() {
    try {
      accounts = await api("GET", "/api/v1/accounts");
      drawTable();
    } catch (failure) {
      if (!failure.handled) {
        replace(tableSlot);
        tableError.show(failure.message);
      }
    }
  }

  // -- two-factor for everyone --------------------------------------------------------
  const requireBox = checkbox(t("Require two-factor sign-in for everyone"), { testid: "require-totp", disabled: true },
    { hint: t("Everyone without it is asked to turn it on before they can do anything else in the console.") });
  const securityStatus = messageBox("info");
  const securityError = messageBox("error");
  requireBox.input.addEventListener("change", async () => {
    const value = requireBox.input.checked;
    securityStatus.clear();
    securityError.clear();
    requireBox.input.disabled = true;
    try {
      await api("PUT", "/api/v1/settings/security", { require_totp: value });
      const text = value ? t("Two-factor sign-in is now required for everyone.")
        : t("Two-factor sign-in is no longer required.");
      securityStatus.show(text);
      announce(text);
      const fresh = await ctx.refreshMe();
      if (fresh && fresh.require_totp && !fresh.account.totp_enabled) ctx.navigate("account");
    } catch (failure) {
      requireBox.input.checked = !value;
      if (!failure.handled) securityError.show(failure.message);
    } finally {
      requireBox.input.disabled = false;
    }
  });

  const headingId = uid("h");
  container.replaceChildren(
    h("h1", { id: "page-title", tabindex: "-1", text: t("Accounts") }),
    pageError.el,
    h("section", { class: "panel-section", "aria-labelledby": `${headingId}-new` },
      h("h2", { id: `${headingId}-new`, text: t("Invite a member of staff") }),
      h("p", { class: "muted", text: t("Each person gets their own account. They choose their password through the invitation link.") }),
      createForm, createResult),
    h("section", { class: "panel-section", "aria-labelledby": `${headingId}-list` },
      h("h2", { id: `${headingId}-list`, text: t("Staff accounts") }),
      tableStatus.el, tableError.el, tableSlot),
    h("section", { class: "panel-section", "aria-labelledby": `${headingId}-sec` },
      h("h2", { id: `${headingId}-sec`, text: t("Sign-in security") }),
      requireBox.row, securityStatus.el, securityError.el));

  loadAccounts();
  api("GET", "/api/v1/settings/security").then((settings) => {
    requireBox.input.checked = settings.require_totp;
    requireBox.input.disabled = false;
  }, (failure) => {
    if (!failure.handled) securityError.show(failure.message);
  });
}
