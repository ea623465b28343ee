// Small pieces the register's pages share: the download of an access copy,
// the highlighted match, offsets as the server counts them, date formatting.

import { ApiFailure } from "./api.js";
import { h } from "./dom.js";
import { displayLocale, t } from "./i18n.js";

const dateFormat = new Intl.DateTimeFormat(displayLocale(), { dateStyle: "medium" });

export function formatDate(iso) {
  const when = new Date(iso);
  return Number.isNaN(when.getTime()) ? String(iso) : dateFormat.format(when);
}

/** Today as YYYY-MM-DD in the browser's time zone (for <input type="date">). */
export function todayIso() {
  const now = new Date();
  const pad = (n) => String(n).padStart(2, "0");
  return `${now.getFullYear()}-${pad(now.getMonth() + 1)}-${pad(now.getDate())}`;
}

/**
 * The matching text with the match in a <mark>: three separate text nodes,
 * never markup. `start` and `end` count code points (as the server does).
 */
export function highlighted(text, start, end) {
  const chars = Array.from(String(text));
  if (!(end > start) || start < 0 || end > chars.length) return [chars.join("")];
  return [
    chars.slice(0, start).join(""),
    h("mark", { text: chars.slice(start, end).join("") }),
    chars.slice(end).join(""),
  ];
}

/**
 * A position in a textarea's value (UTF-16 units, line breaks normalised to
 * "\n") as an offset into the original text in code points, which is how
 * the server counts.
 */
export function serverOffset(original, index) {
  let seen = 0; // UTF-16 units of the textarea's value
  let points = 0; // code points of the original
  let i = 0;
  while (i < original.length && seen < index) {
    if (original[i] === "\r" && original[i + 1] === "\n") {
      i += 2;
      seen += 1;
      points += 2;
      continue;
    }
    const width = original.codePointAt(i) > 0xffff ? 2 : 1;
    i += width;
    seen += width;
    points += 1;
  }
  return points;
}

function filenameOf(response, fallback) {
  const header = response.headers.get("Content-Disposition") || "";
  const match = /filename="?([\w.-]+)"?/.exec(header);
  return match ? match[1] : fallback;
}

/**
 * POST a body and save the answer as a file: fetch it, then hand the Blob to
 * an <a download> made here (the CSP allows blob: downloads; no window opens).
 * Refusals become ApiFailure, as api() makes them.
 */
export async function download(path, body, csrfToken, fallbackName) {
  let response;
  try {
    response = await fetch(path, {
      method: "POST",
      credentials: "same-origin",
      cache: "no-store",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfToken || "" },
      body: JSON.stringify(body),
    });
  } catch {
    throw new ApiFailure(0, "network", t("Could not reach the server. Check your connection and try again."));
  }
  if (!response.ok) {
    let error = null;
    try {
      error = (await response.json()).error;
    } catch {
      error = null;
    }
    const failure = error && typeof error.message === "string"
      ? new ApiFailure(response.status, error.code, error.message)
      : new ApiFailure(response.status, `http_${response.status}`,
        t("Something went wrong (error {status}). Try again.", { status: response.status }));
    if (response.status === 401) {
      failure.handled = document.dispatchEvent(new CustomEvent("jutella:session-ended",
        { detail: failure, cancelable: true })) === false;
    }
    throw failure;
  }
  const blob = await response.blob();
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url; // a blob: URL, which h() would refuse; it never holds markup of ours
  link.download = filenameOf(response, fallbackName);
  link.hidden = true;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
  return link.download;
}
