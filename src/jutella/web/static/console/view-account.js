// My account: own details, changing the password, and two-factor sign-in
// (turning it on with a QR code or the key, the recovery codes, turning it off).

import { api } from "./api.js";
import { copyText } from "./clipboard.js";
import { busy, field, h, messageBox, replace, uid } from "./dom.js";
import { t } from "./i18n.js";
import { roleList } from "./roles.js";

function passwordSection(ctx) {
  const current = h("input", { type: "password", autocomplete: "current-password", name: "current-password" });
  const fresh = h("input", { type: "password", autocomplete: "new-password", name: "new-password" });
  const repeat = h("input", { type: "password", autocomplete: "new-password", name: "repeat-password" });
  const error = messageBox("error");
  const status = messageBox("success");
  const form = h("form", { class: "stack narrow", novalidate: true, testid: "password-form" },
    // The user name lets password managers update the right entry.
    h("input", { type: "email", autocomplete: "username", value: ctx.me.account.email, hidden: true, readOnly: true }),
    field(t("Current password"), current).row,
    field(t("New password"), fresh, {
      hint: t("At least 12 characters. A few unrelated words make a strong password that is easy to remember."),
    }).row,
    field(t("Repeat the new password"), repeat).row,
    error.el, status.el,
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary", text: t("Change password") })));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.clear();
    status.clear();
    if (!current.value) {
      error.show(t("Enter your current password."));
      current.focus();
      return;
    }
    if (fresh.value !== repeat.value) {
      error.show(t("The new passwords do not match."));
      repeat.focus();
      return;
    }
    const done = busy(form);
    try {
      await api("POST", "/api/v1/me/password", { current: current.value, new: fresh.value });
      done();
      current.value = fresh.value = repeat.value = "";
      status.show(t("Your password is changed. Your other sessions have been signed out."));
    } catch (failure) {
      done();
      if (!failure.handled) {
        error.show(failure.message);
        (failure.code === "password_wrong" ? current : fresh).focus();
      }
    }
  });
  return form;
}

function twoFactorSection(ctx) {
  const box = h("div", { class: "stack", testid: "totp-section", tabindex: "-1" });

  function showOff() {
    const error = messageBox("error");
    const start = h("button", { type: "button", class: "primary", testid: "totp-begin",
      text: t("Turn on two-factor sign-in") });
    start.addEventListener("click", async () => {
      error.clear();
      start.disabled = true;
      try {
        showEnrol(await api("POST", "/api/v1/me/totp/begin"));
      } catch (failure) {
        start.disabled = false;
        if (!failure.handled) error.show(failure.message);
      }
    });
    replace(box,
      h("p", {}, h("span", { class: "badge off", text: t("Off") }), " ",
        t("Two-factor sign-in is off. With it on, signing in also needs a code from an app on your phone, so a stolen password alone is not enough.")),
      error.el,
      h("div", { class: "actions" }, start));
  }

  function showEnrol(setup) {
    const code = h("input", { type: "text", inputmode: "numeric", autocomplete: "one-time-code",
      testid: "totp-code", maxlength: "6", spellcheck: "false", pattern: "[0-9]*" });
    const error = messageBox("error");
    const confirm = h("button", { type: "submit", class: "primary", testid: "totp-confirm", text: t("Confirm") });
    const cancel = h("button", { type: "button", text: t("Cancel") });
    cancel.addEventListener("click", () => { showOff(); box.querySelector("button").focus(); });
    const form = h("form", { class: "stack narrow", novalidate: true },
      field(t("Code from the app"), code, { hint: t("Enter the 6-digit code the app shows now.") }).row,
      error.el,
      h("div", { class: "actions" }, confirm, cancel));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      error.clear();
      if (!code.value.trim()) {
        error.show(t("Enter the code from your authenticator app."));
        code.focus();
        return;
      }
      const done = busy(form);
      try {
        const result = await api("POST", "/api/v1/me/totp/confirm", { code: code.value.trim() });
        showCodes(result.recovery_codes);
        ctx.refreshMe();
      } catch (failure) {
        done();
        if (!failure.handled) {
          error.show(failure.message);
          code.select();
          code.focus();
        }
      }
    });
    const secretId = uid("secret");
    replace(box,
      h("ol", { class: "steps" },
        h("li", {},
          h("p", { text: t("Scan this QR code with an authenticator app (for example Aegis, FreeOTP, Google Authenticator or Microsoft Authenticator).") }),
          h("img", { src: setup.qr_svg_data_uri, alt: t("QR code for setting up two-factor sign-in"),
            testid: "totp-qr", class: "qr", width: "200", height: "200" }),
          h("p", { id: secretId, text: t("If you cannot scan it, enter this key in the app by hand:") }),
          h("code", { class: "secret", testid: "totp-secret", "aria-describedby": secretId, text: setup.secret })),
        h("li", {}, form)));
    code.focus();
  }

  function showCodes(codes) {
    const list = h("ol", { class: "recovery-codes", testid: "recovery-codes" },
      codes.map((c) => h("li", {}, h("code", { text: c }))));
    const note = h("span", { class: "copy-note", role: "status" });
    const copy = h("button", { type: "button", text: t("Copy the codes") });
    copy.addEventListener("click", async () => {
      note.textContent = (await copyText(codes.join("\n"), list)) ? t("Copied.") : "";
      copy.focus();
    });
    const done = h("button", { type: "button", class: "primary", text: t("I have stored the codes") });
    done.addEventListener("click", () => { showOn(); box.focus(); });
    replace(box,
      h("div", { class: "message success", role: "status" }, t("Two-factor sign-in is on.")),
      h("h3", { tabindex: "-1", text: t("Your recovery codes") }),
      h("p", { text: t("Store these codes somewhere safe, such as a password manager. If you lose your phone, each code lets you sign in once instead of an app code. They are not shown again.") }),
      list,
      h("div", { class: "actions" }, copy, done, note));
    box.querySelector("h3").focus();
  }

  function showOn() {
    const parts = [h("p", {}, h("span", { class: "badge on", text: t("On") }), " ",
      t("Two-factor sign-in is on. Signing in asks for a code from your authenticator app."))];
    if (ctx.me.totp_for_roles) { // single sign-on without the provider's second factor (docs/sso.md)
      parts.push(h("p", { class: "muted", text: t("Your roles need two-factor sign-in, so it cannot be turned off.") }));
    } else if (ctx.me.require_totp) {
      parts.push(h("p", { class: "muted", text: t("An administrator requires two-factor sign-in for everyone, so it cannot be turned off.") }));
    } else if (!ctx.me.account.password) { // turning it off asks for a password this account does not have
      parts.push(h("p", { class: "muted", text: t("You sign in through the identity provider; an administrator can turn two-factor sign-in off for you.") }));
    } else {
      const password = h("input", { type: "password", autocomplete: "current-password", name: "password" });
      const error = messageBox("error");
      const form = h("form", { class: "stack narrow", novalidate: true, testid: "totp-disable" },
        field(t("Your password"), password).row, error.el,
        h("div", { class: "actions" }, h("button", { type: "submit", class: "danger",
          text: t("Turn off two-factor sign-in") })));
      form.addEventListener("submit", async (event) => {
        event.preventDefault();
        error.clear();
        const done = busy(form);
        try {
          await api("POST", "/api/v1/me/totp/disable", { password: password.value });
          await ctx.refreshMe();
          ctx.me.account.totp_enabled = false;
          showOff();
          ctx.announce(t("Two-factor sign-in is off."));
        } catch (failure) {
          done();
          if (!failure.handled) {
            error.show(failure.message);
            password.focus();
          }
        }
      });
      parts.push(h("h3", { text: t("Turn it off") }), form);
    }
    replace(box, parts);
  }

  if (ctx.me.account.totp_enabled) showOn();
  else showOff();
  return box;
}

export function renderAccount(container, ctx) {
  const { account } = ctx.me;
  const ids = { details: uid("h"), password: uid("h"), totp: uid("h") };
  container.replaceChildren(...[
    h("h1", { id: "page-title", tabindex: "-1", text: t("My account") }),
    h("section", { class: "panel-section", "aria-labelledby": ids.details },
      h("h2", { id: ids.details, text: t("Your details") }),
      h("dl", { class: "facts" },
        h("dt", { text: t("Name") }), h("dd", { text: account.name }),
        h("dt", { text: t("Email") }), h("dd", { class: "break", text: account.email }),
        h("dt", { text: t("Roles") }), h("dd", { text: roleList(account.roles) }))),
    h("section", { class: "panel-section", "aria-labelledby": ids.totp },
      h("h2", { id: ids.totp, text: t("Two-factor sign-in") }),
      twoFactorSection(ctx)),
    // an account that signs in through the identity provider has no password of its own here
    account.password ? h("section", { class: "panel-section", "aria-labelledby": ids.password },
      h("h2", { id: ids.password, text: t("Change password") }),
      passwordSection(ctx)) : null].filter(Boolean));
}
