// An invitation link: /console/invite#token=…

import { api } from "./api.js";
import { h } from "./dom.js";
import { t } from "./i18n.js";
import { checkLink, linkForm, newPasswordFields } from "./links.js";

export async function renderInvite(container, { onDone }) {
  const title = t("Welcome to jutella");
  const checked = await checkLink(container, "invite", title);
  if (!checked) return;
  const { email, name } = checked.info;
  const passwords = newPasswordFields(t("Choose a password"));
  const form = linkForm({
    container, kind: "invite", title, passwords, rows: [],
    submitLabel: t("Save the password"),
    send: () => api("POST", "/api/v1/public/staff/invitation", {
      token: checked.token, password: passwords.password.value,
    }),
    onDone: (me) => onDone(me), // signed in at once: the answer is /me's (docs/accounts.md)
  });
  // The user name field helps password managers store the right login.
  const hiddenUser = h("input", {
    type: "email", autocomplete: "username", value: email || "", hidden: true, readOnly: true,
  });
  form.prepend(hiddenUser);
  container.replaceChildren(
    h("h1", { id: "page-title", tabindex: "-1", text: title }),
    h("p", { text: t("You have been invited to the jutella staff console. Choose a password to activate your account.") }),
    h("dl", { class: "facts" },
      h("dt", { text: t("Name") }), h("dd", { testid: "invite-name", text: name || "" }),
      h("dt", { text: t("Email") }), h("dd", { testid: "invite-email", text: email || "" })),
    form);
  passwords.password.focus();
}
