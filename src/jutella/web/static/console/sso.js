// Single sign-on (docs/sso.md): what the page says about it, embedded by
// the server as JSON in <script type="application/json" id="jutella-sso">:
// {enabled, sso_only, notice, step}. `enabled`: the sign-in page shows the
// "Sign in with single sign-on" button (a plain link to /console/sso/start,
// which sends the browser on to the identity provider). `notice`: why the
// last single sign-on was refused, already in the page's language. `step`:
// "totp" when the provider's answer was accepted and jutella's own
// two-factor code is asked next.

import { api } from "./api.js";
import { busy, field, h, messageBox } from "./dom.js";
import { t } from "./i18n.js";

function readConfig() {
  const block = document.getElementById("jutella-sso");
  try {
    const data = JSON.parse(block ? block.textContent : "{}");
    return { enabled: !!data.enabled, ssoOnly: !!data.sso_only, notice: data.notice || "", step: data.step || "" };
  } catch {
    return { enabled: false, ssoOnly: false, notice: "", step: "" };
  }
}

export const sso = readConfig();

/** The button of the sign-in page (null when single sign-on is not configured). */
export function ssoButton() {
  if (!sso.enabled) return null;
  return h("div", { class: "sso" },
    h("a", { class: "button primary sso-button", href: "/console/sso/start", testid: "login-sso",
      text: t("Sign in with single sign-on") }),
    h("p", { class: "muted small sso-or", text: sso.ssoOnly
      ? t("Signing in with a password is for the emergency administrator only.")
      : t("Or sign in with your jutella password:") }));
}

/**
 * The identity provider signed the person in, and their roles need jutella's
 * own two-factor code too: one field, then straight into the console.
 * @param container  where to draw
 * @param options    {onSignedIn(me), onGiveUp()}
 */
export function renderSsoCode(container, { onSignedIn, onGiveUp }) {
  const error = messageBox("error");
  const info = messageBox("info");
  const input = h("input", {
    type: "text", name: "totp", autocomplete: "one-time-code", testid: "login-totp",
    spellcheck: "false", autocapitalize: "off", maxlength: "32",
  });
  const submit = h("button", { type: "submit", class: "primary", testid: "login-submit", text: t("Sign in") });
  const again = h("button", { type: "button", class: "quiet", text: t("Start again") });
  again.addEventListener("click", () => onGiveUp());
  const form = h("form", { class: "stack", novalidate: true },
    field(t("Authentication code"), input,
      { hint: t("The 6-digit code from your authenticator app, or one of your recovery codes.") }).row,
    error.el,
    h("div", { class: "actions" }, submit, again));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.clear();
    const code = input.value.trim();
    if (!code) {
      error.show(t("Enter the code from your authenticator app."));
      input.focus();
      return;
    }
    const done = busy(form);
    let me = null;
    try {
      me = await api("POST", "/api/v1/public/staff/sso/totp", { code });
    } catch (failure) {
      done();
      error.show(failure.message);
      input.select();
      input.focus();
      return;
    }
    onSignedIn(me);
  });
  info.show(t("Your roles need two-factor sign-in. Enter the code from your authenticator app."));
  container.replaceChildren(
    h("h1", { id: "page-title", tabindex: "-1", text: t("Sign in to jutella") }),
    info.el,
    form);
  input.focus();
}
