// Turning visitor-supplied text into page content, safely.
//
// The one rule: text is text. Every string that came from a visitor (message
// bodies, browser and operating system names, referrer, page address,
// language, visitor id) becomes text nodes; nothing here ever parses a string
// as HTML. Links are made only from http(s) URLs, as <a> elements whose text
// is the URL itself (another text node), with rel="noopener noreferrer" and
// target="_blank". Anything else (javascript:, data:, ...) stays plain text.

import { N_, displayLocale, t } from "./i18n.js";

// A candidate URL: http:// or https:// up to the next space or quote-like
// character. Trailing punctuation is trimmed off afterwards.
const URL_CANDIDATE = /\bhttps?:\/\/[^\s<>"'`\u0000-\u001f\u007f]+/giu;

/** The URL as a string when it is a well-formed http(s) URL, else null. */
export function httpUrl(text) {
  if (typeof text !== "string" || !/^https?:\/\//i.test(text)) return null;
  try {
    const url = new URL(text);
    return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
  } catch {
    return null;
  }
}

/** An <a> for a checked http(s) URL; the link text is `label` (the URL as given). */
export function safeLink(href, label) {
  const a = document.createElement("a");
  a.setAttribute("href", href);
  a.setAttribute("rel", "noopener noreferrer");
  a.setAttribute("target", "_blank");
  a.className = "chat-link";
  a.append(document.createTextNode(label));
  return a;
}

const CLOSERS = { ")": "(", "]": "[", "}": "{" };
const TRAILING_CHARS = new Set([".", ",", ";", ":", "!", "?", "…", "'", "\"", "»"]);

/** Trim sentence punctuation off a URL's end, but keep a closing bracket
 * whose opening one is inside the URL (https://en.wikipedia.org/wiki/Foo_(bar)). */
function trimUrl(candidate) {
  let url = candidate;
  while (url.length) {
    const last = url[url.length - 1];
    if (CLOSERS[last]) {
      const opens = url.split(CLOSERS[last]).length - 1;
      const closes = url.split(last).length - 1;
      if (closes <= opens) return url;
    } else if (!TRAILING_CHARS.has(last)) {
      return url;
    }
    url = url.slice(0, -1);
  }
  return url;
}

/**
 * Text with its http(s) URLs as links: an array of Text nodes and <a>
 * elements, ready to append. Everything else stays text.
 */
export function linkify(text) {
  const source = String(text ?? "");
  const out = [];
  let at = 0;
  URL_CANDIDATE.lastIndex = 0;
  let match;
  while ((match = URL_CANDIDATE.exec(source)) !== null) {
    const url = trimUrl(match[0]);
    const href = url ? httpUrl(url) : null;
    if (!href) continue;
    if (match.index > at) out.push(document.createTextNode(source.slice(at, match.index)));
    out.push(safeLink(href, url));
    at = match.index + url.length;
    URL_CANDIDATE.lastIndex = at;
  }
  if (at < source.length) out.push(document.createTextNode(source.slice(at)));
  return out;
}

/** A whole value that is one URL (referrer, page): a link when it is http(s), else text. */
export function urlOrText(value) {
  const href = httpUrl(value);
  return href ? safeLink(href, value) : document.createTextNode(String(value));
}

function escapeRegExp(text) {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/**
 * The text with every case-insensitive occurrence of the query's words in
 * <mark> elements: Text nodes and <mark> elements (whose content is a Text node).
 */
export function highlight(text, query) {
  const source = String(text ?? "");
  const words = [...new Set(String(query || "").split(/\s+/u).filter(Boolean))]
    .sort((a, b) => b.length - a.length)
    .map(escapeRegExp);
  if (!words.length) return [document.createTextNode(source)];
  const pattern = new RegExp(words.join("|"), "giu");
  const out = [];
  let at = 0;
  let match;
  while ((match = pattern.exec(source)) !== null) {
    if (!match[0].length) {
      pattern.lastIndex += 1;
      continue;
    }
    if (match.index > at) out.push(document.createTextNode(source.slice(at, match.index)));
    const mark = document.createElement("mark");
    mark.append(document.createTextNode(match[0]));
    out.push(mark);
    at = match.index + match[0].length;
  }
  if (at < source.length) out.push(document.createTextNode(source.slice(at)));
  return out;
}

// -- system messages ----------------------------------------------------------
// Events read over HTTP carry {key, name} rather than text; the socket's have
// the text in the agent's language already. The same msgids as the server's.
const SYSTEM_TEXT = {
  agent_joined: N_("{name} joined the chat."),
  closed_by_agent: N_("{name} closed the chat."),
  closed_by_visitor: N_("The visitor ended the chat."),
  closed_by_idle: N_("The chat was closed after a period of inactivity."),
  transferred: N_("The chat was passed on to {name}."),
};

export function systemText(event) {
  if (event.body) return event.body;
  const data = event.data || {};
  const template = SYSTEM_TEXT[data.key];
  if (template) return t(template, { name: data.name || t("An agent") });
  if (event.state === "closed") return t("The chat was closed.");
  if (event.state === "active") return t("The chat was accepted.");
  return "";
}

// -- names of things ------------------------------------------------------------
export const STATE_LABELS = {
  waiting: N_("Waiting"),
  active: N_("Active"),
  closed: N_("Closed"),
};

export function stateLabel(state) {
  return STATE_LABELS[state] ? t(STATE_LABELS[state]) : String(state);
}

/** "Firefox 128", "Linux", "" */
export function withVersion(name, version) {
  if (!name) return "";
  return version ? `${name} ${version}` : String(name);
}

/** "Firefox · Linux" from a summary, or "". */
export function platform(summary) {
  return [summary.browser, summary.os].filter(Boolean).join(" · ");
}

// -- time -----------------------------------------------------------------------------
const timeFormat = new Intl.DateTimeFormat(displayLocale(), { timeStyle: "short" });
const dayTimeFormat = new Intl.DateTimeFormat(displayLocale(), { dateStyle: "short", timeStyle: "short" });
const fullFormat = new Intl.DateTimeFormat(displayLocale(), { dateStyle: "full", timeStyle: "medium" });

function parse(iso) {
  const when = new Date(iso);
  return Number.isNaN(when.getTime()) ? null : when;
}

/** Short: the time for today, the date and time otherwise. */
export function shortTime(iso) {
  const when = parse(iso);
  if (!when) return "";
  const now = new Date();
  const sameDay = when.getFullYear() === now.getFullYear() && when.getMonth() === now.getMonth()
    && when.getDate() === now.getDate();
  return (sameDay ? timeFormat : dayTimeFormat).format(when);
}

export function longTime(iso) {
  const when = parse(iso);
  return when ? fullFormat.format(when) : "";
}

/** A <time> element: short text, the full date as its title. */
export function timeElement(iso, className = "") {
  const el = document.createElement("time");
  if (className) el.className = className;
  el.setAttribute("datetime", String(iso || ""));
  el.textContent = shortTime(iso);
  const full = longTime(iso);
  if (full) el.title = full;
  return el;
}
