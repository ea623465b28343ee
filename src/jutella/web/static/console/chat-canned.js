// Canned responses in the reply box: typing "/" at the start of the box opens
// a list of saved responses (data-testid="canned-suggestions", one
// "canned-option" each), narrowed as the agent types ("/hel"). The arrow keys
// move, Enter or Tab inserts, Escape closes; a click inserts too.
//
// The responses come from GET /api/v1/canned (the agent's own and the shared
// ones), read once per page and again after view-canned.js changes them.
// Those in the conversation's language come first, then the agent's own
// language, then the rest. Placeholders are filled in when inserted:
// {agent_name} with the agent's name, {visitor_name} with the name the
// visitor gave on the email form if there is one; otherwise it is left out
// and the space before the following punctuation with it ("Hei {visitor_name}!"
// becomes "Hei!").

import { api } from "./api.js";
import { h, uid } from "./dom.js";
import { lang as consoleLanguage, t } from "./i18n.js";

const SHOWN = 8;
const TYPED = /^\/([\p{L}\p{N}_-]*)$/u;
let cache = null;

export function loadCanned({ force = false } = {}) {
  if (!cache || force) {
    cache = api("GET", "/api/v1/canned").catch((failure) => {
      cache = null;
      throw failure;
    });
  }
  return cache;
}

export function forgetCanned() {
  cache = null;
}

/** The response's text with its placeholders filled in. */
export function fill(body, { visitorName, agentName }) {
  let text = String(body).replace(/\{agent_name\}/g, agentName || "");
  if (visitorName) return text.replace(/\{visitor_name\}/g, visitorName);
  text = text.replace(/[ \t]*\{visitor_name\}/g, "").replace(/\{visitor_name\}[ \t]*/g, "");
  return text.replace(/[ \t]{2,}/g, " ").trim();
}

function short(language) {
  return String(language || "").slice(0, 2).toLowerCase();
}

/** The responses that match what was typed after "/", best first. */
export function rank(all, typed, preferred) {
  const wanted = typed.toLocaleLowerCase();
  const order = (c) => {
    const at = preferred.indexOf(c.language);
    return at < 0 ? preferred.length : at;
  };
  return all.filter((c) => c.shortcut.startsWith(wanted))
    .sort((a, b) => (a.shortcut === wanted ? 0 : 1) - (b.shortcut === wanted ? 0 : 1)
      || order(a) - order(b) || a.shortcut.localeCompare(b.shortcut) || Number(a.shared) - Number(b.shared));
}

/**
 * Attach the completion to a reply box. `composer` is the form around it (its
 * capturing key handler runs before the box's own Enter-sends handler).
 * context(): {language, visitorName, agentName}.
 */
export function attachCanned(composer, input, context) {
  const list = h("ul", { class: "canned-list", role: "listbox", id: uid("canned"), testid: "canned-suggestions",
    "aria-label": t("Canned responses"), hidden: true });
  input.setAttribute("aria-autocomplete", "list");
  input.setAttribute("aria-controls", list.id);
  input.after(list);
  let options = [];
  let active = 0;
  let serial = 0;

  function close() {
    list.hidden = true;
    list.replaceChildren();
    options = [];
    input.removeAttribute("aria-activedescendant");
  }

  function highlight(index) {
    active = (index + options.length) % options.length;
    [...list.children].forEach((li, i) => li.setAttribute("aria-selected", String(i === active)));
    const li = list.children[active];
    if (li) {
      input.setAttribute("aria-activedescendant", li.id);
      li.scrollIntoView({ block: "nearest" });
    }
  }

  function insert(index) {
    const chosen = options[index];
    if (!chosen) return;
    const ctx = context();
    input.value = fill(chosen.body, ctx);
    close();
    input.focus();
    input.setSelectionRange(input.value.length, input.value.length);
    input.dispatchEvent(new Event("input", { bubbles: true }));
  }

  async function update() {
    const typed = TYPED.exec(input.value);
    if (!typed || input.disabled) {
      close();
      return;
    }
    const mine = ++serial;
    let all;
    try {
      all = await loadCanned();
    } catch {
      return;
    }
    if (mine !== serial) return;
    const ctx = context();
    const preferred = [...new Set([short(ctx.language), short(consoleLanguage), "fi", "en", "sv"].filter(Boolean))];
    options = rank(all, typed[1], preferred).slice(0, SHOWN);
    if (!options.length) {
      list.replaceChildren(h("li", { class: "canned-empty muted", role: "presentation",
        text: all.length ? t("No canned response starts like that.")
          : t("No canned responses yet. Add them under Canned responses.") }));
      list.hidden = false;
      return;
    }
    list.replaceChildren(...options.map((c, i) => h("li", {
      id: `${list.id}-${i}`, role: "option", class: "canned-option", testid: "canned-option",
      dataset: { shortcut: c.shortcut, language: c.language },
      on: {
        mousedown: (event) => event.preventDefault(), // keep the focus in the box
        click: () => insert(i),
      },
    },
    h("span", { class: "canned-shortcut", text: `/${c.shortcut}` }),
    h("span", { class: "canned-lang", text: c.language.toUpperCase() }),
    c.shared ? h("span", { class: "canned-shared muted", text: t("shared") }) : null,
    h("span", { class: "canned-body", text: fill(c.body, ctx) }))));
    list.hidden = false;
    highlight(0);
  }

  input.addEventListener("input", update);
  input.addEventListener("blur", () => setTimeout(() => {
    if (document.activeElement !== input) close();
  }, 150));
  composer.addEventListener("keydown", (event) => {
    if (event.target !== input || list.hidden) return;
    let handled = true;
    if (event.key === "Escape") close();
    else if (!options.length) handled = false;
    else if (event.key === "ArrowDown") highlight(active + 1);
    else if (event.key === "ArrowUp") highlight(active - 1);
    else if ((event.key === "Enter" && !event.shiftKey) || event.key === "Tab") insert(active);
    else handled = false;
    if (handled) {
      event.preventDefault();
      event.stopPropagation();
    }
  }, true);

  return { close };
}
