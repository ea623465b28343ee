// Building the page: elements are made with createElement and filled with
// textContent only. Nothing here ever parses a string as HTML, so staff names,
// emails and audit details (untrusted text) can never become markup.

const PROPERTIES = new Set(["value", "checked", "disabled", "hidden", "selected", "readOnly", "required",
  "multiple", "indeterminate", "tabIndex"]);
const URL_ATTRIBUTES = new Set(["href", "src", "action", "formaction"]);

let counter = 0;

/** A unique element id, for label/for and aria-describedby pairs. */
export function uid(prefix = "j") {
  counter += 1;
  return `${prefix}-${counter}`;
}

function safeUrl(value) {
  const text = String(value);
  // Same-origin paths, fragments, http(s) and inline images (the QR code) only.
  if (/^(?:[/#?]|https?:|data:image\/)/i.test(text) && !/^\/\//.test(text)) return text;
  throw new Error(`refused URL ${text.slice(0, 40)}`);
}

/** Append children: strings and numbers become text nodes; arrays are flattened;
 * null, undefined and false are skipped. */
export function append(parent, ...children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    parent.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return parent;
}

/**
 * h("button", {type: "button", class: "primary", on: {click}}, "Save")
 *
 * Props: class (string or array), text (textContent), on ({event: handler}),
 * testid (data-testid), dataset ({key: value}), DOM properties (value,
 * checked, disabled, hidden, ...) and plain attributes. Event-handler
 * attributes (on*) and style are refused: the page's CSP forbids them anyway.
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") {
      el.className = Array.isArray(value) ? value.filter(Boolean).join(" ") : value;
    } else if (key === "text") {
      el.textContent = String(value);
    } else if (key === "on") {
      for (const [event, handler] of Object.entries(value)) el.addEventListener(event, handler);
    } else if (key === "testid") {
      el.dataset.testid = value;
    } else if (key === "dataset") {
      for (const [k, v] of Object.entries(value)) el.dataset[k] = String(v);
    } else if (PROPERTIES.has(key)) {
      el[key] = value;
    } else if (/^on/i.test(key) || key === "style" || key === "srcdoc") {
      throw new Error(`refused attribute ${key}`);
    } else {
      el.setAttribute(key, URL_ATTRIBUTES.has(key) ? safeUrl(value) : value === true ? "" : String(value));
    }
  }
  return append(el, children);
}

/** Empty an element, then optionally fill it again. */
export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

/**
 * A labelled form field. Returns {row, input}. `input` is any element made
 * with h(); the label is tied to it by id, and an optional hint by
 * aria-describedby.
 */
export function field(label, input, { hint } = {}) {
  if (!input.id) input.id = uid("f");
  const row = h("div", { class: "field" }, h("label", { for: input.id, text: label }));
  if (hint) {
    const hintId = uid("hint");
    input.setAttribute("aria-describedby", hintId);
    append(row, input, h("p", { class: "hint", id: hintId, text: hint }));
  } else {
    append(row, input);
  }
  return { row, input };
}

/** A checkbox with its label after it. Returns {row, input}. */
export function checkbox(label, props = {}, { hint } = {}) {
  const input = h("input", { type: "checkbox", id: uid("c"), ...props });
  const row = h("div", { class: "check" }, input, h("label", { for: input.id, text: label }));
  if (hint) {
    const hintId = uid("hint");
    input.setAttribute("aria-describedby", hintId);
    append(row, h("p", { class: "hint", id: hintId, text: hint }));
  }
  return { row, input };
}

/**
 * The message box of a form: role="alert" so a screen reader speaks an error
 * as soon as it appears. show(text) fills it, clear() empties it.
 */
export function messageBox(kind = "error") {
  const el = h("div", {
    class: ["message", kind], role: kind === "error" ? "alert" : "status", hidden: true,
  });
  return {
    el,
    show(text) {
      el.replaceChildren(document.createTextNode(text));
      el.hidden = false;
    },
    clear() {
      el.replaceChildren();
      el.hidden = true;
    },
  };
}

/** A visually hidden span: text for screen readers only. */
export function srOnly(text) {
  return h("span", { class: "visually-hidden", text });
}

/** Disable a form's controls while a request runs; returns a function that re-enables them. */
export function busy(form) {
  const controls = [...form.querySelectorAll("button, input, select, textarea")].filter((c) => !c.disabled);
  for (const c of controls) c.disabled = true;
  form.setAttribute("aria-busy", "true");
  return () => {
    for (const c of controls) c.disabled = false;
    form.removeAttribute("aria-busy");
  };
}

/** Load a view's own style sheet once (the console page links only console.css). */
export function ensureStylesheet(href) {
  if (document.querySelector(`link[href="${href}"]`)) return;
  const link = document.createElement("link");
  link.rel = "stylesheet";
  link.href = href;
  document.head.append(link);
}
