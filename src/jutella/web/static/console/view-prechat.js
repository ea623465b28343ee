// The pre-chat form per site (administrators; docs/prechat.md), a section of
// the Embed page: for the default of every site, or one site's own form,
// whether the widget asks for a topic, a name and an email address before the
// chat starts (each off, optional or required), and the topics offered, each
// routed to a department. Saved through PUT /api/v1/prechat; every widget
// opened after that (on any worker within a second) shows it. Topic names and
// site names are staff-given text: textContent only.

import { api } from "./api.js";
import { busy, ensureStylesheet, h, messageBox, replace, uid } from "./dom.js";
import { N_, t } from "./i18n.js";

const FIELDS = [["topic", N_("Topic")], ["name", N_("Name")], ["email", N_("Email address")]];
const MODES = [["off", N_("Off")], ["optional", N_("Optional")], ["required", N_("Required")]];
const LANGS = [["en", N_("English")], ["fi", N_("Finnish")], ["sv", N_("Swedish")]];
const MAX_TOPICS = 20;

export function renderPrechat(ctx = {}) {
  ensureStylesheet("/static/console/prechat.css");
  const announce = ctx.announce || (() => {});
  const error = messageBox("error");
  error.el.dataset.testid = "prechat-error";
  const body = h("div", {}, h("p", { class: "muted", text: t("Loading…") }));
  const siteSelect = h("select", { id: uid("pre-site"), testid: "prechat-site" });
  let data = null;
  let chosen = "";

  function formOf(origin) {
    return (data.forms || []).find((f) => f.origin === origin) || null;
  }

  function select(options, value, props = {}) {
    const s = h("select", props, options.map(([v, label]) => h("option", { value: v, text: label })));
    s.value = value;
    return s;
  }

  function topicRow(topic, list) {
    const inputs = {};
    const labels = LANGS.map(([lang, word]) => {
      const input = h("input", { type: "text", maxlength: "80", id: uid("pre-topic"), testid: `prechat-topic-${lang}` });
      input.value = (topic.labels && topic.labels[lang]) || "";
      inputs[lang] = input;
      return h("div", { class: "field" }, h("label", { for: input.id, text: t(word) }), input);
    });
    const depts = [["", t("The shared queue")], ...data.departments.map((d) => [String(d.id), d.name])];
    const dept = select(depts, topic.department_id ? String(topic.department_id) : "",
      { id: uid("pre-dept"), testid: "prechat-topic-department" });
    const remove = h("button", { type: "button", class: "small danger-outline", text: t("Remove topic") });
    const row = h("fieldset", { class: "prechat-topic", testid: "prechat-topic" },
      h("legend", { text: t("Topic") }),
      h("div", { class: "field-pair" }, ...labels),
      h("div", { class: "field" }, h("label", { for: dept.id, text: t("Chats on this topic go to") }), dept),
      h("div", { class: "actions" }, remove));
    const item = {
      row,
      value: () => ({ key: topic.key || null, department_id: dept.value ? Number(dept.value) : null,
        labels: Object.fromEntries(LANGS.map(([lang]) => [lang, inputs[lang].value.trim()]).filter(([, v]) => v)) }),
    };
    remove.addEventListener("click", () => {
      list.splice(list.indexOf(item), 1);
      row.remove();
    });
    return item;
  }

  function drawForm() {
    const own = formOf(chosen);
    const fallback = chosen ? formOf("") : null;
    const shown = own || { name: "off", email: "off", topic: "off", topics: [] };
    let status;
    if (own) status = chosen ? t("This site has its own form.") : t("The default form: every site without its own shows it.");
    else if (chosen) status = fallback ? t("This site shows the default form.") : t("This site shows no form.");
    else status = t("No default form: sites without their own show none.");
    const modes = {};
    const modeRows = FIELDS.map(([name, word]) => {
      const s = select(MODES.map(([v, label]) => [v, t(label)]), shown[name], { id: uid("pre-mode"), testid: `prechat-mode-${name}` });
      modes[name] = s;
      return h("div", { class: "field" }, h("label", { for: s.id, text: t(word) }), s);
    });
    const topics = [];
    const topicList = h("div", { class: "prechat-topics" });
    for (const topic of shown.topics || []) {
      const item = topicRow(topic, topics);
      topics.push(item);
      topicList.append(item.row);
    }
    const add = h("button", { type: "button", class: "small", testid: "prechat-topic-add", text: t("Add a topic") });
    add.addEventListener("click", () => {
      if (topics.length >= MAX_TOPICS) return;
      const item = topicRow({ labels: {}, department_id: null }, topics);
      topics.push(item);
      topicList.append(item.row);
      item.row.querySelector("input").focus();
    });
    const topicSection = h("div", { class: "prechat-topic-section" },
      h("h4", { text: t("Topics") }),
      h("p", { class: "hint", text: t("The visitor chooses one; the chat goes to its department. Give each topic a name in at least one language.") }),
      topicList, add);
    const showTopics = () => { topicSection.hidden = modes.topic.value === "off"; };
    modes.topic.addEventListener("change", showTopics);
    showTopics();
    const save = h("button", { type: "submit", class: "primary", testid: "prechat-save", text: t("Save the form") });
    const remove = own ? h("button", { type: "button", class: "danger-outline", testid: "prechat-remove",
      text: chosen ? t("Use the default form here") : t("Remove the default form") }) : null;
    const form = h("form", { class: "stack prechat-editor", novalidate: true },
      h("p", { class: "prechat-status", testid: "prechat-status", text: status }),
      h("div", { class: "field-pair prechat-modes" }, ...modeRows),
      topicSection,
      h("div", { class: "actions" }, save, remove));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      error.clear();
      const done = busy(form);
      try {
        data = await api("PUT", "/api/v1/prechat", { origin: chosen, name: modes.name.value, email: modes.email.value,
          topic: modes.topic.value, topics: topics.map((item) => item.value()) });
        done();
        draw();
        announce(t("The pre-chat form was saved."));
      } catch (failure) {
        done();
        if (!failure.handled) error.show(failure.message);
      }
    });
    if (remove) {
      remove.addEventListener("click", async () => {
        error.clear();
        remove.disabled = true;
        try {
          data = await api("DELETE", `/api/v1/prechat?origin=${encodeURIComponent(chosen)}`);
          draw();
          announce(t("The pre-chat form was removed."));
        } catch (failure) {
          remove.disabled = false;
          if (!failure.handled) error.show(failure.message);
        }
      });
    }
    replace(body, form);
  }

  function draw() {
    const options = [["", t("All sites (the default)")],
      ...data.sites.map((s) => [s.origin, s.name ? `${s.origin} (${s.name})` : s.origin])];
    siteSelect.replaceChildren(...options.map(([v, label]) => h("option", { value: v,
      text: formOf(v) && v ? `${label} · ${t("own form")}` : label })));
    if (!options.some(([v]) => v === chosen)) chosen = "";
    siteSelect.value = chosen;
    drawForm();
  }

  siteSelect.addEventListener("change", () => {
    chosen = siteSelect.value;
    error.clear();
    drawForm();
  });

  (async () => {
    try {
      data = await api("GET", "/api/v1/prechat");
      draw();
    } catch (failure) {
      if (!failure.handled) error.show(failure.message);
    }
  })();

  return h("section", { class: "panel-section", "aria-labelledby": "prechat-title", testid: "prechat-settings" },
    h("h2", { id: "prechat-title", text: t("Pre-chat form") }),
    h("p", { text: t("Off by default. The widget can ask for a topic, a name and an email address before the chat starts. The privacy notice lists every field a site asks for.") }),
    h("div", { class: "field" }, h("label", { for: siteSelect.id, text: t("Form for") }), siteSelect),
    error.el,
    body);
}
