// Translations. The page embeds the catalog of its language as JSON in
// <script type="application/json" id="jutella-i18n">: {lang, messages, languages}.
// English is the source language: a msgid is the English text itself, and a
// missing translation falls back to it.
//
// Every console string goes through t(msgid) or, where a string is only named
// and translated later (tables of labels), N_(msgid). Where one English word
// has two meanings ("To" a person, "To" a date), pt(context, msgid) picks the
// entry with that msgctxt (keyed "context\u0004msgid" in the JSON, as gettext
// keys it). Write msgids as plain double-quoted literals:
// tests/unit/test_i18n_catalogs.py finds them by that shape and checks that
// Finnish and Swedish have them. docs/i18n.md.

function readCatalog() {
  const block = document.getElementById("jutella-i18n");
  try {
    const data = JSON.parse(block ? block.textContent : "{}");
    return { lang: data.lang || "en", messages: data.messages || {}, languages: data.languages || [] };
  } catch {
    return { lang: "en", messages: {}, languages: [] };
  }
}

const catalog = readCatalog();

export const lang = catalog.lang;
export const languages = catalog.languages;

function fill(text, params) {
  if (!params) return text;
  return text.replace(/\{(\w+)\}/g, (whole, key) => (key in params ? String(params[key]) : whole));
}

/** Translate, then replace {name} placeholders with params.name (as text). */
export function t(msgid, params) {
  return fill(catalog.messages[msgid] || msgid, params);
}

/** Translate msgid in the sense context names (its msgctxt in the .po files). */
export function pt(context, msgid, params) {
  return fill(catalog.messages[`${context}\u0004${msgid}`] || msgid, params);
}

/** Mark a string for translation without translating it yet. */
export function N_(msgid) {
  return msgid;
}

const LANGUAGE_NAMES = { fi: N_("Finnish"), en: N_("English"), sv: N_("Swedish") };

/** A visitor's language in words ("en" -> "English", "englanti"); another tag as it was sent. */
export function languageLabel(code) {
  return Object.hasOwn(LANGUAGE_NAMES, code) ? t(LANGUAGE_NAMES[code]) : code; // a sent "__proto__" stays text
}

/** Remember a language for this browser (used before signing in). */
export function setLanguageCookie(code) {
  const secure = location.protocol === "https:" ? "; secure" : "";
  document.cookie = `jutella_lang=${encodeURIComponent(code)}; path=/; max-age=31536000; samesite=lax${secure}`;
}

export function languageCookie() {
  const found = document.cookie.split(";").map((c) => c.trim()).find((c) => c.startsWith("jutella_lang="));
  return found ? decodeURIComponent(found.slice("jutella_lang=".length)) : null;
}

/** The locale for dates: the browser's own when it is a variant of the console
 * language (en-GB for English), otherwise the console language. */
export function displayLocale() {
  const own = (navigator.languages || [navigator.language]).find((l) => l && l.split("-")[0] === lang);
  return own || lang;
}

const dateTimeFormat = new Intl.DateTimeFormat(displayLocale(), { dateStyle: "medium", timeStyle: "medium" });

export function formatDateTime(iso) {
  const when = new Date(iso);
  return Number.isNaN(when.getTime()) ? String(iso) : dateTimeFormat.format(when);
}
