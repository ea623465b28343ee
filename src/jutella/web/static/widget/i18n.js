// Translations for the frame. English is the source language (the msgids);
// the server puts the Finnish and Swedish catalogs (locale/*/widget.po) into
// the frame page's JSON block.
export const LANGS = ["fi", "en", "sv"];

function fill(text, params) {
  return params ? text.replace(/\{(\w+)\}/g, (m, k) => (k in params ? String(params[k]) : m)) : text;
}

export class I18n {
  constructor(strings, lang) {
    this.lang = LANGS.includes(lang) ? lang : "en";
    this.map = (strings && strings[this.lang]) || {};
  }

  t(id, params) {
    return fill(this.map[id] || id, params);
  }

  // id in the sense context names (its msgctxt; keyed "context\u0004id" as gettext keys it)
  pt(context, id, params) {
    return fill(this.map[`${context}\u0004${id}`] || id, params);
  }

  // Translates the elements marked data-i18n (text), data-i18n-label
  // (aria-label) and data-i18n-placeholder in the frame's markup.
  apply(doc) {
    doc.documentElement.lang = this.lang;
    doc.title = this.t("Chat");
    for (const el of doc.querySelectorAll("[data-i18n]")) el.textContent = this.t(el.dataset.i18n);
    for (const el of doc.querySelectorAll("[data-i18n-label]")) el.setAttribute("aria-label", this.t(el.dataset.i18nLabel));
    for (const el of doc.querySelectorAll("[data-i18n-placeholder]")) el.placeholder = this.t(el.dataset.i18nPlaceholder);
  }
}
