// One-time links (/console/setup#token=…, /console/invite#token=…) carry their
// token in the fragment, which browsers never send to the server. The console
// reads it, removes it from the address bar at once (so it does not stay in
// the history or get copied along), and keeps it in this tab's sessionStorage
// only until the link has been used, so that a reload (after switching
// language, say) still works.

import { api } from "./api.js";
import { busy, field, h, messageBox } from "./dom.js";
import { t } from "./i18n.js";

const LINK_ERRORS = new Set(["link_invalid", "link_used", "link_expired", "account_disabled"]);

export function readLinkToken(kind) {
  const key = `jutella-link-${kind}`;
  const match = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (match) {
    history.replaceState(null, "", location.pathname + location.search);
    let token = "";
    try {
      token = decodeURIComponent(match[1]);
    } catch {
      token = "";
    }
    try {
      sessionStorage.setItem(key, token);
    } catch {
      // without storage a reload simply needs the link again
    }
    return token;
  }
  try {
    return sessionStorage.getItem(key) || "";
  } catch {
    return "";
  }
}

export function forgetLinkToken(kind) {
  try {
    sessionStorage.removeItem(`jutella-link-${kind}`);
  } catch {
    // nothing kept
  }
}

/** Is this refusal about the link itself (so the form is pointless)? */
export function isLinkError(failure) {
  return LINK_ERRORS.has(failure.code);
}

/** The dead end shown for a used, expired or invalid link: the message, no form. */
export function linkProblem(container, title, message) {
  const box = messageBox("error");
  box.show(message);
  container.replaceChildren(
    h("h1", { id: "page-title", tabindex: "-1", text: title }),
    box.el,
    h("p", {}, h("a", { href: "/console", text: t("Go to the sign-in page") })));
}

/** Check a link's token; resolves to the server's answer or null after
 * drawing the problem. */
export async function checkLink(container, kind, title) {
  const token = readLinkToken(kind);
  if (!token) {
    linkProblem(container, title, t("This link is not complete. Open the whole link you were given."));
    return null;
  }
  container.replaceChildren(h("h1", { id: "page-title", tabindex: "-1", text: title }),
    h("p", { class: "muted", text: t("Checking the link…") }));
  const path = kind === "setup" ? "/api/v1/public/staff/setup/check" : "/api/v1/public/staff/invitation/check";
  try {
    const info = await api("POST", path, { token });
    return { token, info };
  } catch (failure) {
    if (isLinkError(failure)) forgetLinkToken(kind);
    linkProblem(container, title, failure.message);
    return null;
  }
}

/** New password and its repeat, with the policy as a hint. Returns
 * {rows, password, repeat, check()} where check() returns an error text or "". */
export function newPasswordFields(label = t("Password")) {
  const password = h("input", { type: "password", autocomplete: "new-password", name: "new-password" });
  const repeat = h("input", { type: "password", autocomplete: "new-password", name: "repeat-password" });
  return {
    rows: [
      field(label, password, {
        hint: t("At least 12 characters. A few unrelated words make a strong password that is easy to remember."),
      }).row,
      field(t("Repeat the password"), repeat).row,
    ],
    password,
    repeat,
    check() {
      if (!password.value) return t("Choose a password.");
      if (password.value !== repeat.value) return t("The passwords do not match.");
      return "";
    },
  };
}

/** Submit handler plumbing shared by the set-up and invitation forms. */
export function linkForm({ container, kind, title, rows, passwords, submitLabel, send, onDone }) {
  const error = messageBox("error");
  const form = h("form", { class: "stack", novalidate: true },
    rows, passwords.rows, error.el,
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary", text: submitLabel })));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.clear();
    const problem = passwords.check();
    if (problem) {
      error.show(problem);
      (passwords.password.value ? passwords.repeat : passwords.password).focus();
      return;
    }
    const done = busy(form);
    try {
      const result = await send();
      forgetLinkToken(kind);
      onDone(result);
    } catch (failure) {
      done();
      if (isLinkError(failure)) {
        forgetLinkToken(kind);
        linkProblem(container, title, failure.message);
      } else {
        error.show(failure.message);
      }
    }
  });
  return form;
}
