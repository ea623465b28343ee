// The first administrator's set-up link: /console/setup#token=…

import { api } from "./api.js";
import { field, h } from "./dom.js";
import { t } from "./i18n.js";
import { checkLink, linkForm, newPasswordFields } from "./links.js";

export async function renderSetup(container, { onDone }) {
  const title = t("Set up jutella");
  const checked = await checkLink(container, "setup", title);
  if (!checked) return;
  const name = h("input", { type: "text", name: "name", autocomplete: "name", maxlength: "200" });
  const email = h("input", {
    type: "email", name: "email", autocomplete: "username", spellcheck: "false", autocapitalize: "off",
  });
  const passwords = newPasswordFields();
  const form = linkForm({
    container, kind: "setup", title, passwords,
    rows: [field(t("Your name"), name).row, field(t("Email"), email).row],
    submitLabel: t("Create the administrator account"),
    send: () => api("POST", "/api/v1/public/staff/setup", {
      token: checked.token, name: name.value, email: email.value.trim(), password: passwords.password.value,
    }),
    onDone: (me) => onDone(me), // signed in at once: the answer is /me's (docs/accounts.md)
  });
  container.replaceChildren(
    h("h1", { id: "page-title", tabindex: "-1", text: title }),
    h("p", { text: t("Create the first administrator account. You can invite the rest of the staff after signing in.") }),
    form);
  name.focus();
}
