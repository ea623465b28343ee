// Embed (administrators): the script tag a site pastes into its pages, and
// the sites allowed to show the chat (docs/sites.md). Sites added here are
// stored (the `site` table) and take effect on every worker within about a
// second, without a restart; those of JUTELLA_ALLOWED_ORIGINS are shown
// read-only. Each stored site may have a look of its own, and the default
// look serves the rest (view-embed-profile.js). Origins, names and texts are
// staff-given text: textContent only.

import { api } from "./api.js";
import { copyText } from "./clipboard.js";
import { busy, ensureStylesheet, field, h, messageBox, replace } from "./dom.js";
import { t } from "./i18n.js";
import { renderPrechat } from "./view-prechat.js";
import { profileEditor } from "./view-embed-profile.js";

const STYLESHEET = "/static/console/embed.css";

export function renderEmbed(container, ctx) {
  ensureStylesheet(STYLESHEET);
  const announce = ctx.announce || (() => {});
  let alive = true;
  const pageError = messageBox("error");

  // -- the snippet -------------------------------------------------------------------------------
  const code = h("code", { testid: "embed-snippet", class: "mono" });
  const copyNote = h("span", { class: "copy-note", role: "status" });
  const copy = h("button", { type: "button", testid: "embed-copy", text: t("Copy") });
  copy.addEventListener("click", async () => {
    const ok = await copyText(code.textContent, code);
    copyNote.textContent = ok ? t("Copied.") : t("Select the tag and copy it.");
  });
  const snippet = h("section", { class: "embed-snippet panel-section", "aria-labelledby": "embed-snippet-title" },
    h("h2", { id: "embed-snippet-title", text: t("The tag to paste") }),
    h("p", { text: t("Paste this tag into every page of your site that should show the chat, just before </body>.") }),
    h("pre", { class: "snippet" }, code),
    h("div", { class: "copy-row" }, copy, copyNote));

  // -- add a site ---------------------------------------------------------------------------------
  const origin = h("input", { type: "text", inputmode: "url", autocomplete: "off", spellcheck: "false",
    autocapitalize: "off", maxlength: "300", placeholder: "https://www.example.org", testid: "site-origin" });
  const name = h("input", { type: "text", maxlength: "100", autocomplete: "off", testid: "site-name" });
  const addError = messageBox("error");
  addError.el.dataset.testid = "site-error";
  const addForm = h("form", { class: "stack", novalidate: true, testid: "site-add" },
    h("div", { class: "field-pair" },
      field(t("Site address"), origin,
        { hint: t("The address the site's pages are on: https:// and the host name, with a port only if it has one. No path.") }).row,
      field(t("Name (optional)"), name).row),
    addError.el,
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary", testid: "site-add-submit",
      text: t("Allow this site") })));
  addForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    addError.clear();
    origin.removeAttribute("aria-invalid");
    const done = busy(addForm);
    try {
      const result = await api("POST", "/api/v1/sites", { origin: origin.value.trim(), name: name.value.trim() || null });
      done();
      const added = origin.value.trim();
      origin.value = "";
      name.value = "";
      draw(result);
      announce(t("{origin} may now show the chat.", { origin: added }));
    } catch (failure) {
      done();
      if (failure.handled) return;
      addError.show(failure.message);
      origin.setAttribute("aria-invalid", "true");
      origin.focus();
    }
  });

  // -- the list -----------------------------------------------------------------------------------
  const listSlot = h("div", {}, h("p", { class: "muted", text: t("Loading…") }));
  const editorSlot = h("div", {});
  let departments = [];
  let last = null;
  let editing; // undefined: no editor open; null: the default look; a number: that site's

  function openEditor(siteId, focus) {
    editing = siteId;
    const site = siteId === null ? null : last.sites.find((s) => s.id === siteId);
    if (siteId !== null && !site) {
      editing = undefined;
      replace(editorSlot);
      return;
    }
    const editor = profileEditor({ site, profile: site ? site.profile : last.default_profile, departments, announce,
      done: (result) => {
        draw(result);
        openEditor(siteId, false);
      } });
    replace(editorSlot, editor);
    if (focus) editor.querySelector("h2").focus();
  }

  const editDefault = h("button", { type: "button", testid: "profile-edit-default", text: t("Edit the default look") });
  editDefault.addEventListener("click", () => openEditor(null, true));

  function siteRow(site) {
    let source;
    let action = null;
    if (site.own) {
      source = t("This server: always allowed");
    } else if (site.from_settings) {
      source = t("Server setting JUTELLA_ALLOWED_ORIGINS: change it there");
    } else {
      source = t("Added here");
      const edit = h("button", { type: "button", class: "small", testid: "site-edit", text: t("Edit the look"),
        "aria-label": t("Edit the look on {origin}", { origin: site.origin }) });
      edit.addEventListener("click", () => openEditor(site.id, true));
      const drop = h("button", { type: "button", class: "small danger-outline", testid: "site-remove", text: t("Remove"),
        "aria-label": t("Remove {origin}", { origin: site.origin }) });
      drop.addEventListener("click", () => remove(site, drop));
      action = h("div", { class: "row-actions" }, edit, drop);
    }
    const look = site.own ? "" : site.profile ? t("Its own") : t("The default look");
    const swatch = site.profile && site.profile.colour ? h("span", { class: "swatch", "aria-hidden": "true" }) : null;
    // the colour through CSSOM (no style attribute: CSP)
    if (swatch) swatch.style.setProperty("--swatch", site.profile.colour);
    const cell = (label, ...content) => h("td", { dataset: { label } }, h("div", { class: "cell" }, content));
    return h("tr", { testid: "site", dataset: { origin: site.origin, source: site.own ? "own"
      : site.from_settings ? "settings" : "stored" } },
    cell(t("Site"), h("span", { class: "mono break", text: site.origin })),
    cell(t("Name"), h("span", { text: site.name || "" })),
    cell(t("Where it comes from"), h("span", { class: "muted", text: source })),
    cell(t("Look"), swatch, h("span", { text: look })),
    cell(t("Actions"), action));
  }

  async function remove(site, button) {
    // eslint-disable-next-line no-alert
    if (!window.confirm(t("Remove {origin}? Its pages stop showing the chat within a second.", { origin: site.origin }))) return;
    button.disabled = true;
    pageError.clear();
    try {
      draw(await api("DELETE", `/api/v1/sites/${site.id}`));
      if (editing === site.id) openEditor(null, false);
      announce(t("{origin} was removed.", { origin: site.origin }));
    } catch (failure) {
      button.disabled = false;
      if (!failure.handled) pageError.show(failure.message);
    }
  }

  function draw(data) {
    if (!alive) return;
    last = data;
    code.textContent = data.snippet;
    const rows = [{ origin: data.own_origin, name: null, own: true }, ...data.sites];
    replace(listSlot, h("div", { class: "table-wrap" }, h("table", { class: "data cards sites-table", testid: "sites" },
      h("thead", {}, h("tr", {},
        h("th", { scope: "col", text: t("Site") }), h("th", { scope: "col", text: t("Name") }),
        h("th", { scope: "col", text: t("Where it comes from") }), h("th", { scope: "col", text: t("Look") }),
        h("th", { scope: "col" }, h("span", { class: "visually-hidden", text: t("Actions") })))),
      h("tbody", {}, rows.map(siteRow)))));
  }

  async function reload() {
    try {
      const [data, depts] = await Promise.all([api("GET", "/api/v1/sites"), api("GET", "/api/v1/departments")]);
      departments = depts.map((d) => ({ id: d.id, name: d.name }));
      pageError.clear();
      draw(data);
    } catch (failure) {
      if (alive && !failure.handled) pageError.show(failure.message);
    }
  }

  replace(container, h("section", { class: "embed-page" },
    h("h1", { text: t("Embed the chat") }),
    pageError.el,
    snippet,
    h("section", { class: "panel-section", "aria-labelledby": "embed-sites-title" },
      h("h2", { id: "embed-sites-title", text: t("Allowed sites") }),
      h("p", { text: t("The chat opens only on these sites' pages. A change here takes effect within a second, without a restart.") }),
      listSlot,
      h("h3", { text: t("Add a site") }),
      addForm),
    h("section", { class: "panel-section", "aria-labelledby": "embed-looks-title" },
      h("h2", { id: "embed-looks-title", text: t("How the chat looks") }),
      h("p", { text: t("Each site may have its own colour, texts, departments and logo; the others use the default look. A change here takes effect within a second.") }),
      h("div", { class: "actions" }, editDefault)),
    editorSlot,
    renderPrechat({ announce })));
  reload();
  return () => {
    alive = false;
  };
}
