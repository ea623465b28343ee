// Sign in: email and password, then (when the account has two-factor sign-in
// and the server answers totp_required) the same again with a code.

import { api } from "./api.js";
import { busy, field, h, messageBox } from "./dom.js";
import { t } from "./i18n.js";
import { ssoButton } from "./sso.js";

/**
 * @param container  where to draw
 * @param options    {email, notice, failure (an error to show, e.g. a refused single sign-on), onSignedIn(me)}
 */
export function renderLogin(container, { email = "", notice = "", failure = "", onSignedIn }) {
  const error = messageBox("error");
  const info = messageBox("info");
  const emailInput = h("input", {
    type: "email", name: "email", autocomplete: "username", testid: "login-email", value: email,
    spellcheck: "false", autocapitalize: "off",
  });
  const passwordInput = h("input", {
    type: "password", name: "password", autocomplete: "current-password", testid: "login-password",
  });
  const totpSlot = h("div");
  let totpInput = null;
  const submit = h("button", { type: "submit", class: "primary", testid: "login-submit", text: t("Sign in") });
  const form = h("form", { class: "stack", novalidate: true },
    field(t("Email"), emailInput).row,
    field(t("Password"), passwordInput).row,
    totpSlot,
    error.el,
    h("div", { class: "actions" }, submit));

  function askForCode(message) {
    if (!totpInput) {
      totpInput = h("input", {
        type: "text", name: "totp", autocomplete: "one-time-code", testid: "login-totp",
        spellcheck: "false", autocapitalize: "off", maxlength: "32",
      });
      totpSlot.append(field(t("Authentication code"), totpInput,
        { hint: t("The 6-digit code from your authenticator app, or one of your recovery codes.") }).row);
    }
    info.show(message);
    totpInput.focus();
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.clear();
    const body = { email: emailInput.value.trim(), password: passwordInput.value };
    if (!body.email || !body.password) {
      error.show(t("Enter your email and password."));
      (body.email ? passwordInput : emailInput).focus();
      return;
    }
    if (totpInput) {
      body.totp = totpInput.value.trim();
      if (!body.totp) {
        error.show(t("Enter the code from your authenticator app."));
        totpInput.focus();
        return;
      }
    }
    const done = busy(form);
    let me = null;
    try {
      me = await api("POST", "/api/v1/public/staff/login", body);
    } catch (failure) {
      done();
      if (failure.code === "totp_required") {
        askForCode(failure.message);
      } else {
        error.show(failure.message);
        if (failure.code === "totp_invalid" && totpInput) {
          totpInput.select();
          totpInput.focus();
        } else if (failure.code === "login_invalid") {
          passwordInput.select();
          passwordInput.focus();
        }
      }
      return;
    }
    onSignedIn(me);
  });

  if (notice) info.show(notice);
  const refused = messageBox("error");
  if (failure) refused.show(failure);
  container.replaceChildren(...[
    h("h1", { id: "page-title", tabindex: "-1", text: t("Sign in to jutella") }),
    info.el,
    refused.el,
    ssoButton(), // null without single sign-on
    form].filter(Boolean));
  (email ? passwordInput : emailInput).focus();
}
