// Webhooks (administrators; docs/webhooks.md): the receivers jutella POSTs
// signed events to, the secret each one checks signatures with (shown once,
// when it is made), which personal fields a hook may carry, and the delivery
// log (state, attempts, the receiver's last answer, the next attempt; never a
// body or a secret). Names, URLs and the receivers' answers are text:
// textContent only.

import { api } from "./api.js";
import { copyText } from "./clipboard.js";
import { busy, checkbox, ensureStylesheet, field, h, messageBox, replace } from "./dom.js";
import { formatDateTime, N_, t } from "./i18n.js";

const STYLESHEET = "/static/console/webhooks.css";

export const EVENT_LABELS = {
  "conversation.created": N_("A chat starts"),
  "conversation.closed": N_("A chat ends"),
  "offline_message.created": N_("A message arrives through the email form"),
  "rating.created": N_("A visitor rates a chat"),
};
export const FIELD_LABELS = { name: N_("Name"), email: N_("Email address"), text: N_("Message text") };
const STATE_LABELS = { queued: N_("Being tried"), delivered: N_("Delivered"), failed: N_("Given up") };

export function renderWebhooks(container, ctx) {
  ensureStylesheet(STYLESHEET);
  const announce = ctx.announce || (() => {});
  let alive = true;
  let editing = null; // the hook being edited, or null for a new one
  let info = { events: Object.keys(EVENT_LABELS), personal_fields: Object.keys(FIELD_LABELS), allow_private: false };
  const pageError = messageBox("error");

  // -- the secret, shown once -------------------------------------------------------------------
  const secretSlot = h("div", { class: "webhook-secret", hidden: true, testid: "webhook-secret-box",
    role: "status" });
  function showSecret(hook) {
    const code = h("code", { class: "mono break", testid: "webhook-secret", text: hook.secret });
    const note = h("span", { class: "copy-note", role: "status" });
    const copy = h("button", { type: "button", text: t("Copy") });
    copy.addEventListener("click", async () => {
      note.textContent = (await copyText(hook.secret, code)) ? t("Copied.") : t("Select the secret and copy it.");
    });
    replace(secretSlot,
      h("p", { class: "strong", text: t("The secret of {name}. Copy it now: it is not shown again.", { name: hook.name }) }),
      h("pre", { class: "snippet" }, code),
      h("div", { class: "copy-row" }, copy, note),
      h("p", { class: "hint", text: t("The receiver checks each delivery's X-Jutella-Signature with it (docs/webhooks.md).") }));
    secretSlot.hidden = false;
  }

  // -- the form -------------------------------------------------------------------------------
  const name = h("input", { type: "text", maxlength: "100", autocomplete: "off", testid: "webhook-name" });
  const url = h("input", { type: "text", inputmode: "url", autocomplete: "off", spellcheck: "false",
    autocapitalize: "off", maxlength: "2000", placeholder: "https://helpdesk.example.org/hooks/jutella",
    testid: "webhook-url" });
  const eventBoxes = {};
  const fieldBoxes = {};
  const eventSet = h("fieldset", { class: "checks" }, h("legend", { text: t("Events") }),
    Object.entries(EVENT_LABELS).map(([key, label]) => {
      const box = checkbox(t(label), { value: key, testid: "webhook-event", dataset: { event: key } });
      eventBoxes[key] = box.input;
      return box.row;
    }));
  const fieldSet = h("fieldset", { class: "checks" }, h("legend", { text: t("Personal fields to include") }),
    h("p", { class: "hint", text: t("Without these a delivery carries only ids, site, department and times. A hook with personal fields is listed as a recipient in the privacy notice and the record of processing.") }),
    Object.entries(FIELD_LABELS).map(([key, label]) => {
      const box = checkbox(t(label), { value: key, testid: "webhook-personal", dataset: { field: key } });
      fieldBoxes[key] = box.input;
      return box.row;
    }));
  const enabled = checkbox(t("On: send deliveries"), { checked: true, testid: "webhook-enabled" });
  const formError = messageBox("error");
  formError.el.dataset.testid = "webhook-error";
  const formTitle = h("h2", { id: "webhook-form-title", text: t("Add a webhook") });
  const submit = h("button", { type: "submit", class: "primary", testid: "webhook-save", text: t("Add the webhook") });
  const cancel = h("button", { type: "button", hidden: true, text: t("Cancel") });
  const urlHint = h("span", {});
  const form = h("form", { class: "stack", novalidate: true, testid: "webhook-form" },
    h("div", { class: "field-pair" }, field(t("Name"), name).row, field(t("Receiver's address"), url,
      { hint: t("https:// only, on a public address; jutella refuses private and local addresses.") }).row),
    eventSet, fieldSet, enabled.row, formError.el,
    h("div", { class: "actions" }, submit, cancel));

  function fill(hook) {
    editing = hook;
    name.value = hook ? hook.name : "";
    url.value = hook ? hook.url : "";
    for (const [key, box] of Object.entries(eventBoxes)) box.checked = hook ? hook.events.includes(key) : false;
    for (const [key, box] of Object.entries(fieldBoxes)) box.checked = hook ? hook.personal.includes(key) : false;
    enabled.input.checked = hook ? hook.enabled : true;
    formTitle.textContent = hook ? t("Change {name}", { name: hook.name }) : t("Add a webhook");
    submit.textContent = hook ? t("Save") : t("Add the webhook");
    cancel.hidden = !hook;
    formError.clear();
    url.removeAttribute("aria-invalid");
  }
  cancel.addEventListener("click", () => fill(null));

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    formError.clear();
    url.removeAttribute("aria-invalid");
    const body = {
      name: name.value.trim(), url: url.value.trim(),
      events: Object.keys(eventBoxes).filter((k) => eventBoxes[k].checked),
      personal: Object.keys(fieldBoxes).filter((k) => fieldBoxes[k].checked),
      enabled: enabled.input.checked,
    };
    const done = busy(form);
    try {
      const hook = editing ? await api("PUT", `/api/v1/webhooks/${editing.id}`, body)
        : await api("POST", "/api/v1/webhooks", body);
      done();
      if (!editing) showSecret(hook);
      announce(editing ? t("{name} was saved.", { name: hook.name }) : t("{name} was added.", { name: hook.name }));
      fill(null);
      reload();
    } catch (failure) {
      done();
      if (failure.handled) return;
      formError.show(failure.message);
      if (failure.field === "url" || failure.code === "url_refused") {
        url.setAttribute("aria-invalid", "true");
        url.focus();
      }
    }
  });

  // -- the hooks --------------------------------------------------------------------------------
  const listSlot = h("div", {}, h("p", { class: "muted", text: t("Loading…") }));
  const cell = (label, ...content) => h("td", { dataset: { label } }, h("div", { class: "cell" }, content));

  function hookRow(hook) {
    const edit = h("button", { type: "button", class: "small", text: t("Change"),
      "aria-label": t("Change {name}", { name: hook.name }) });
    edit.addEventListener("click", () => {
      fill(hook);
      name.focus();
    });
    const rotate = h("button", { type: "button", class: "small", testid: "webhook-new-secret", text: t("New secret"),
      "aria-label": t("New secret for {name}", { name: hook.name }) });
    rotate.addEventListener("click", () => newSecret(hook, rotate));
    const remove = h("button", { type: "button", class: "small danger-outline", testid: "webhook-remove",
      text: t("Remove"), "aria-label": t("Remove {name}", { name: hook.name }) });
    remove.addEventListener("click", () => removeHook(hook, remove));
    const personal = hook.personal.length ? hook.personal.map((f) => t(FIELD_LABELS[f] || f)).join(", ") : t("none");
    return h("tr", { testid: "webhook", dataset: { id: hook.id, enabled: hook.enabled } },
      cell(t("Name"), h("span", { text: hook.name }),
        hook.enabled ? null : h("span", { class: "badge", text: t("Off") })),
      cell(t("Receiver"), h("span", { class: "mono break", text: hook.url })),
      cell(t("Events"), h("ul", { class: "plain" }, hook.events.map((e) => h("li", { text: t(EVENT_LABELS[e] || e) })))),
      cell(t("Personal fields"), h("span", { testid: "webhook-personal-list", text: personal })),
      cell(t("Secret"), h("span", { class: "mono", text: hook.secret_hint })),
      cell(t("Actions"), h("div", { class: "row-actions" }, edit, rotate, remove)));
  }

  async function newSecret(hook, button) {
    // eslint-disable-next-line no-alert
    if (!window.confirm(t("Make a new secret for {name}? The receiver must then use the new one.", { name: hook.name }))) return;
    button.disabled = true;
    try {
      const changed = await api("PUT", `/api/v1/webhooks/${hook.id}`, {
        name: hook.name, url: hook.url, events: hook.events, personal: hook.personal, enabled: hook.enabled,
        new_secret: true });
      showSecret(changed);
      reload();
    } catch (failure) {
      button.disabled = false;
      if (!failure.handled) pageError.show(failure.message);
    }
  }

  async function removeHook(hook, button) {
    // eslint-disable-next-line no-alert
    if (!window.confirm(t("Remove {name}? Its deliveries not yet sent are dropped.", { name: hook.name }))) return;
    button.disabled = true;
    try {
      await api("DELETE", `/api/v1/webhooks/${hook.id}`);
      announce(t("{name} was removed.", { name: hook.name }));
      if (editing && editing.id === hook.id) fill(null);
      reload();
    } catch (failure) {
      button.disabled = false;
      if (!failure.handled) pageError.show(failure.message);
    }
  }

  // -- the delivery log -------------------------------------------------------------------------
  const logSlot = h("div", {});
  const refresh = h("button", { type: "button", class: "small", testid: "webhook-log-refresh", text: t("Refresh") });
  refresh.addEventListener("click", () => reload());

  function deliveryRow(d, hooks) {
    const hook = hooks.get(d.hook_id);
    let again = null;
    if (d.state !== "queued") {
      again = h("button", { type: "button", class: "small redeliver", testid: "webhook-redeliver", text: t("Send again") });
      again.addEventListener("click", async () => {
        again.disabled = true;
        try {
          await api("POST", `/api/v1/webhooks/deliveries/${d.id}/redeliver`);
          reload();
        } catch (failure) {
          again.disabled = false;
          if (!failure.handled) pageError.show(failure.message);
        }
      });
    }
    const answer = d.last_status ? t("HTTP {status}", { status: d.last_status }) : d.last_error ? "" : "–";
    return h("tr", { testid: "webhook-delivery", dataset: { state: d.state, event: d.event } },
      cell(t("Time"), h("span", { text: formatDateTime(d.created_at) })),
      cell(t("Webhook"), h("span", { text: hook ? hook.name : `#${d.hook_id}` })),
      cell(t("Event"), h("span", { class: "mono break", text: d.event }),
        h("span", { class: "muted mono small-text break", title: t("Delivery id"), text: d.delivery_id })),
      cell(t("State"), h("span", { class: ["badge", `state-${d.state}`], testid: "webhook-delivery-state",
        text: t(STATE_LABELS[d.state] || d.state) }),
      h("span", { class: "small-text", text: t("Attempts: {n}", { n: d.attempts }) }), again),
      cell(t("Last answer"), h("span", { text: answer }),
        d.last_error ? h("span", { class: "muted small-text break", text: d.last_error }) : null),
      cell(t("Next attempt"), h("span", { text: d.next_attempt_at ? formatDateTime(d.next_attempt_at) : "–" })));
  }

  function draw(data, log) {
    if (!alive) return;
    info = data;
    const hooks = new Map(data.hooks.map((hk) => [hk.id, hk]));
    replace(listSlot, data.hooks.length
      ? h("div", { class: "table-wrap" }, h("table", { class: "data cards webhooks-table", testid: "webhooks" },
        h("thead", {}, h("tr", {}, [t("Name"), t("Receiver"), t("Events"), t("Personal fields"), t("Secret")]
          .map((label) => h("th", { scope: "col", text: label })),
        h("th", { scope: "col" }, h("span", { class: "visually-hidden", text: t("Actions") })))),
        h("tbody", {}, data.hooks.map(hookRow))))
      : h("p", { class: "muted", testid: "webhooks-none", text: t("No webhooks yet.") }));
    replace(logSlot, log.deliveries.length
      ? h("div", { class: "table-wrap" }, h("table", { class: "data cards deliveries-table", testid: "webhook-log" },
        h("thead", {}, h("tr", {}, [t("Time"), t("Webhook"), t("Event"), t("State"), t("Last answer"),
          t("Next attempt")].map((label) => h("th", { scope: "col", text: label })))),
        h("tbody", {}, log.deliveries.map((d) => deliveryRow(d, hooks)))))
      : h("p", { class: "muted", text: t("Nothing delivered yet.") }));
    replace(urlHint, info.allow_private
      ? t("This server allows private addresses and plain http (JUTELLA_WEBHOOK_ALLOW_PRIVATE).") : "");
  }

  async function reload() {
    try {
      const [data, log] = await Promise.all([api("GET", "/api/v1/webhooks"),
        api("GET", "/api/v1/webhooks/deliveries?limit=50")]);
      pageError.clear();
      draw(data, log);
    } catch (failure) {
      if (alive && !failure.handled) pageError.show(failure.message);
    }
  }

  replace(container, h("section", { class: "webhooks-page" },
    h("h1", { text: t("Webhooks") }),
    h("p", { text: t("jutella tells other systems (a helpdesk, a chat channel, a member register) what happens here by sending each event as a signed JSON POST. Failed deliveries are tried again for 24 hours.") }),
    pageError.el,
    secretSlot,
    h("section", { class: "panel-section", "aria-labelledby": "webhooks-title" },
      h("h2", { id: "webhooks-title", text: t("Webhooks") }), listSlot),
    h("section", { class: "panel-section", "aria-labelledby": "webhook-form-title" }, formTitle,
      h("p", { class: "hint" }, urlHint), form),
    h("section", { class: "panel-section", "aria-labelledby": "webhook-log-title" },
      h("div", { class: "section-head" }, h("h2", { id: "webhook-log-title", text: t("Delivery log") }), refresh),
      logSlot)));
  reload();
  return () => {
    alive = false;
  };
}
