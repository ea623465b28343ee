// A site's look on the Embed page (administrators; docs/sites.md "Profiles"):
// the colour (refused by the server when text would not read on it: its
// message is shown as it comes), the launcher's side and label, the header,
// greeting and offline texts per language, the departments offered and a
// logo. Empty fields take the default look's (and the default's the built-in
// look). Texts are staff-given: they only ever go into value and textContent.

import { api, ApiFailure, consoleHeaders } from "./api.js";
import { busy, checkbox, field, h, messageBox } from "./dom.js";
import { N_, t } from "./i18n.js";

const LANGS = [["fi", "suomi"], ["en", "English"], ["sv", "svenska"]];
const KINDS = [
  ["launcher", N_("Launcher label"), 40, false],
  ["header", N_("Header"), 60, false],
  ["greeting", N_("Greeting"), 300, true],
  ["offline", N_("Text above the message form when nobody is available"), 300, true],
];

async function sendLogo(path, file) {
  let response;
  try {
    response = await fetch(path, { method: "PUT", credentials: "same-origin", cache: "no-store",
      headers: { Accept: "application/json", "Content-Type": file.type || "application/octet-stream", ...consoleHeaders() },
      body: file });
  } catch {
    throw new ApiFailure(0, "network", t("Could not reach the server. Check your connection and try again."));
  }
  const data = await response.json().catch(() => null);
  if (response.ok) return data;
  const error = data && data.error ? data.error : { code: `http_${response.status}`,
    message: t("Something went wrong (error {status}). Try again.", { status: response.status }) };
  throw new ApiFailure(response.status, error.code, error.message);
}

/**
 * The editor of one profile. site: {id, origin, name, profile} or null for
 * the default look; departments: [{id, name}]; done(result) gets the
 * server's new list of sites after a change.
 */
export function profileEditor({ site, profile, departments, done, announce }) {
  const p = profile || { colour: null, position: null, when_closed: null, texts: {}, departments: [], logo: null };
  const base = site ? `/api/v1/sites/${site.id}` : "/api/v1/sites/default";
  const title = site ? t("The look on {origin}", { origin: site.origin }) : t("The default look");
  const error = messageBox("error");
  error.el.dataset.testid = "profile-error";
  // a refused colour: said right under the colour field, and tied to it
  const colourError = messageBox("error");
  colourError.el.dataset.testid = "profile-colour-error";
  colourError.el.id = `profile-colour-error-${site ? site.id : "default"}`;

  const name = site ? h("input", { type: "text", maxlength: "100", autocomplete: "off", testid: "profile-name",
    value: site.name || "" }) : null;
  const colour = h("input", { type: "text", maxlength: "7", autocomplete: "off", spellcheck: "false",
    placeholder: "#1f5fbf", testid: "profile-colour", value: p.colour || "", class: "mono" });
  const position = h("select", { testid: "profile-position" },
    h("option", { value: "", text: site ? t("As in the default look") : t("Bottom right") }),
    h("option", { value: "right", text: t("Bottom right") }),
    h("option", { value: "left", text: t("Bottom left") }));
  position.value = p.position || "";
  // outside the opening hours (docs/sites.md): the offline form, or no launcher at all
  const whenClosed = h("select", { testid: "profile-when-closed" },
    h("option", { value: "", text: site ? t("As in the default look") : t("Show the offline form") }),
    h("option", { value: "form", text: t("Show the offline form") }),
    h("option", { value: "hide", text: t("Hide the launcher") }));
  whenClosed.value = p.when_closed || "";

  const texts = {};
  const textSets = KINDS.map(([kind, label, max, long]) => {
    texts[kind] = {};
    const rows = LANGS.map(([lang, langName]) => {
      const input = h(long ? "textarea" : "input", { maxlength: String(max), rows: long ? "2" : undefined,
        type: long ? undefined : "text", lang, testid: `profile-${kind}-${lang}` });
      input.value = ((p.texts || {})[kind] || {})[lang] || "";
      texts[kind][lang] = input;
      return field(langName, input).row;
    });
    return h("fieldset", { class: "profile-texts" }, h("legend", { text: t(label) }), rows);
  });

  const chosen = new Set(p.departments || []);
  const boxes = departments.map((d) => {
    const box = checkbox(d.name, { value: String(d.id), checked: chosen.has(d.id), testid: "profile-department" });
    return box;
  });
  const deptSet = h("fieldset", { class: "profile-departments" },
    h("legend", { text: t("Departments offered") }),
    h("p", { class: "hint", text: t("None ticked: every department.") }),
    boxes.length ? boxes.map((b) => b.row) : h("p", { class: "muted", text: t("No departments yet.") }));

  const form = h("form", { class: "stack profile-form", novalidate: true, testid: "profile-form" },
    name ? field(t("Name"), name).row : null,
    h("div", { class: "field-pair" },
      field(t("Colour"), colour, { hint: t("As #RRGGBB. White or black text must read on it, and it must stand out on white (WCAG AA).") }).row,
      field(t("Launcher position"), position).row),
    colourError.el,
    textSets,
    h("p", { class: "hint", text: t("An empty text uses the default look's, or the built-in text.") }),
    deptSet,
    field(t("When closed"), whenClosed, { hint: t("Outside the opening hours. A hidden launcher shows again when the chat opens, on pages loaded from then on (within five minutes), and for a visitor whose chat is still going.") }).row,
    error.el,
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary", testid: "profile-save",
      text: t("Save the look") })));

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.clear();
    colourError.clear();
    colour.removeAttribute("aria-invalid");
    colour.removeAttribute("aria-errormessage");
    const body = {
      colour: colour.value.trim() || null,
      position: position.value || null,
      when_closed: whenClosed.value || null,
      texts: Object.fromEntries(Object.entries(texts).map(([kind, langs]) =>
        [kind, Object.fromEntries(Object.entries(langs).map(([lang, input]) => [lang, input.value]))])),
      departments: boxes.filter((b) => b.input.checked).map((b) => Number(b.input.value)),
    };
    if (name) body.name = name.value.trim() || null;
    const ready = busy(form);
    try {
      const result = await api("PUT", `${base}/profile`, body);
      ready();
      announce(t("The look was saved."));
      done(result);
    } catch (failure) {
      ready();
      if (failure.handled) return;
      if (failure.code && failure.code.startsWith("colour")) {
        colourError.show(failure.message);
        colour.setAttribute("aria-invalid", "true");
        colour.setAttribute("aria-errormessage", colourError.el.id);
        colour.focus();
      } else {
        error.show(failure.message);
      }
    }
  });

  // -- the logo ---------------------------------------------------------------------------------
  const logoError = messageBox("error");
  const file = h("input", { type: "file", accept: "image/png,image/jpeg,image/webp", testid: "profile-logo" });
  const preview = p.logo ? h("img", { class: "profile-logo", src: p.logo, alt: t("The current logo") }) : null;
  const removeLogo = p.logo ? h("button", { type: "button", class: "small danger-outline", testid: "profile-logo-remove",
    text: t("Remove the logo") }) : null;
  file.addEventListener("change", async () => {
    if (!file.files.length) return;
    logoError.clear();
    try {
      done(await sendLogo(`${base}/logo`, file.files[0]));
      announce(t("The logo was saved."));
    } catch (failure) {
      logoError.show(failure.message);
    }
  });
  if (removeLogo) {
    removeLogo.addEventListener("click", async () => {
      logoError.clear();
      try {
        done(await api("DELETE", `${base}/logo`));
        announce(t("The logo was removed."));
      } catch (failure) {
        if (!failure.handled) logoError.show(failure.message);
      }
    });
  }
  const logo = h("div", { class: "profile-logo-row" },
    preview,
    field(t("Logo (PNG, JPEG or WebP, at most 1 MB)"), file,
      { hint: t("Shown in the chat's header. It is stored as a new PNG picture, without the file's other data.") }).row,
    removeLogo, logoError.el);

  const headingId = `profile-title-${site ? site.id : "default"}`;
  return h("section", { class: "panel-section profile-editor", testid: "profile-editor",
    "aria-labelledby": headingId },
  h("h2", { id: headingId, tabindex: "-1", text: title }),
  h("p", { text: site ? t("Empty fields use the default look.")
    : t("Used by the sites without a look of their own and by those of JUTELLA_ALLOWED_ORIGINS.") }),
  form, logo);
}
