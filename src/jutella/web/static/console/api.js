// The one way the console talks to the server: JSON over fetch, same origin,
// the session in its HttpOnly cookie, and on every request, reads included,
// the session's CSRF token in the X-CSRF-Token header (the server refuses a
// staff read without it, so that a page on another site cannot make a
// signed-in browser read, and audit, anything). Before the token is known
// (GET /api/v1/me, which hands it out) X-Requested-With says the console
// asks: a page on another site cannot send either header.
//
// A refusal becomes an ApiFailure whose message is the server's own text,
// already translated to the page's language. Two refusals concern the whole
// console rather than the view that asked, so they are also announced as
// document events: 401 ("jutella:session-ended") and the 403
// totp_enrollment_required ("jutella:totp-enrollment-required"). Such a
// failure has handled = true: the view should not show it again.

import { t } from "./i18n.js";

let csrfToken = null;

export function setCsrfToken(token) {
  csrfToken = token || null;
}

/** The headers every console request carries (api(), and the few fetches it
 * cannot make: multipart uploads). */
export function consoleHeaders() {
  const headers = { "X-Requested-With": "jutella-console" };
  if (csrfToken) headers["X-CSRF-Token"] = csrfToken;
  return headers;
}

export class ApiFailure extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
    this.handled = false;
  }
}

export async function api(method, path, body) {
  const headers = { Accept: "application/json", ...consoleHeaders() };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method, headers, credentials: "same-origin", cache: "no-store",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiFailure(0, "network", t("Could not reach the server. Check your connection and try again."));
  }
  let data = null;
  const text = await response.text();
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (response.ok) return data;

  const error = data && data.error && typeof data.error.message === "string" ? data.error : {
    code: `http_${response.status}`,
    message: t("Something went wrong (error {status}). Try again.", { status: response.status }),
  };
  const failure = new ApiFailure(response.status, error.code, error.message);
  if (!path.startsWith("/api/v1/public/")) {
    let event = null;
    if (response.status === 401) event = "jutella:session-ended";
    else if (response.status === 403 && error.code === "totp_enrollment_required") {
      event = "jutella:totp-enrollment-required";
    }
    if (event) {
      failure.handled = document.dispatchEvent(new CustomEvent(event, { detail: failure, cancelable: true }))
        === false;
    }
  }
  throw failure;
}

/** Query string from an object, leaving out empty values. */
export function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") search.set(key, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}
