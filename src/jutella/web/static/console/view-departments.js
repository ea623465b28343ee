// Departments (administrators): add, rename and delete departments, set their
// notification address and members, and see each agent's load (active chats
// against their limit, online state) with a per-agent limit. See
// docs/departments.md. Names and addresses are staff-given text: textContent only.

import { api } from "./api.js";
import { busy, checkbox, field, h, messageBox, replace } from "./dom.js";
import { N_, t } from "./i18n.js";
import { ensureStylesheet } from "./chat-transfer.js";
import { hoursSection } from "./view-hours.js";

const STATES = { online: N_("Online"), away: N_("Away"), offline: N_("Offline") };

export function renderDepartments(container, ctx) {
  ensureStylesheet();
  const announce = ctx.announce || (() => {});
  let alive = true;
  const pageError = messageBox("error");
  const listSlot = h("div", {}, h("p", { class: "muted", text: t("Loading…") }));
  const loadSlot = h("div", {});
  const hoursSlot = h("div", {});

  // -- add ----------------------------------------------------------------------------------
  const name = h("input", { type: "text", maxlength: "100", autocomplete: "off", testid: "department-name" });
  const email = h("input", { type: "email", maxlength: "320", autocomplete: "off", spellcheck: "false" });
  const createError = messageBox("error");
  const createForm = h("form", { class: "stack", novalidate: true, testid: "department-create" },
    h("div", { class: "field-pair" }, field(t("Name"), name).row,
      field(t("Notification address (optional)"), email,
        { hint: t("New offline messages for this department are announced here instead of the general address.") })
        .row),
    createError.el,
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary", testid: "department-create-submit",
      text: t("Add department") })));
  createForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    createError.clear();
    const done = busy(createForm);
    try {
      await api("POST", "/api/v1/departments", { name: name.value, notify_email: email.value.trim() || null });
      done();
      announce(t("Department {name} added.", { name: name.value.trim() }));
      name.value = "";
      email.value = "";
      await reload();
    } catch (failure) {
      done();
      createError.show(failure.message);
    }
  });

  // -- one department -----------------------------------------------------------------------
  function departmentItem(d, agents) {
    const nameInput = h("input", { type: "text", maxlength: "100", value: d.name, autocomplete: "off" });
    const emailInput = h("input", { type: "email", maxlength: "320", value: d.notify_email || "", autocomplete: "off",
      spellcheck: "false" });
    const error = messageBox("error");
    const boxes = agents.map((a) => checkbox(a.name, { value: String(a.id), checked: d.members.includes(a.id) }));
    const members = h("fieldset", { class: "dept-members" }, h("legend", { text: t("Members") }),
      boxes.length ? boxes.map((b) => b.row) : h("p", { class: "muted", text: t("There are no agents yet.") }));
    const save = h("button", { type: "submit", class: "primary", text: t("Save") });
    const remove = h("button", { type: "button", class: "danger-outline", text: t("Delete") });
    const form = h("form", { class: "stack", novalidate: true },
      h("div", { class: "field-pair" }, field(t("Name"), nameInput).row,
        field(t("Notification address (optional)"), emailInput).row),
      members, error.el, h("div", { class: "actions" }, save, remove));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      error.clear();
      const done = busy(form);
      try {
        await api("PATCH", `/api/v1/departments/${d.id}`,
          { name: nameInput.value, notify_email: emailInput.value.trim() || null });
        await api("PUT", `/api/v1/departments/${d.id}/members`,
          { account_ids: boxes.filter((b) => b.input.checked).map((b) => Number(b.input.value)) });
        done();
        announce(t("Department {name} saved.", { name: nameInput.value.trim() }));
        await reload();
      } catch (failure) {
        done();
        error.show(failure.message);
      }
    });
    remove.addEventListener("click", async () => {
      // eslint-disable-next-line no-alert
      if (!window.confirm(t("Delete the department {name}? Its conversations stay, without a department.",
        { name: d.name }))) return;
      error.clear();
      try {
        await api("DELETE", `/api/v1/departments/${d.id}`);
        announce(t("Department {name} deleted.", { name: d.name }));
        await reload();
      } catch (failure) {
        error.show(failure.message);
      }
    });
    return h("li", { class: "dept-item", testid: "department", dataset: { department: d.id } },
      h("h3", { text: d.name }), form);
  }

  // -- the agents' load ---------------------------------------------------------------------------
  function loadTable(agents, departments) {
    const deptNames = new Map(departments.map((d) => [d.id, d.name]));
    const rows = agents.map((a) => {
      const limit = h("input", { type: "number", min: "0", max: "1000", class: "limit-input",
        value: a.max_chats === null || a.max_chats === undefined ? "" : String(a.max_chats),
        "aria-label": t("Own limit for {name}", { name: a.name }), placeholder: t("default") });
      const status = h("span", { class: "muted", role: "status" });
      const save = h("button", { type: "button", class: "small", text: t("Save") });
      save.addEventListener("click", async () => {
        status.textContent = "";
        const value = limit.value.trim();
        try {
          await api("PUT", `/api/v1/agents/${a.id}/max-chats`, { max_chats: value === "" ? null : Number(value) });
          status.textContent = t("Saved.");
          await reload();
        } catch (failure) {
          status.textContent = failure.message;
        }
      });
      return h("tr", { testid: "agent-load", dataset: { agent: a.id } },
        h("th", { scope: "row", text: a.name }),
        h("td", { text: t(STATES[a.state] || a.state) }),
        h("td", { text: a.limit ? `${a.active} / ${a.limit}` : `${a.active} / ${t("no limit")}` }),
        h("td", { text: a.departments.map((id) => deptNames.get(id)).filter(Boolean).join(", ") || "–" }),
        h("td", {}, limit, " ", save, " ", status));
    });
    return h("table", { class: "table" },
      h("thead", {}, h("tr", {}, h("th", { scope: "col", text: t("Agent") }), h("th", { scope: "col", text: t("Status") }),
        h("th", { scope: "col", text: t("Active chats / limit") }), h("th", { scope: "col", text: t("Departments") }),
        h("th", { scope: "col", text: t("Own limit") }))),
      h("tbody", {}, rows));
  }

  async function reload() {
    try {
      const [departments, agents] = await Promise.all([api("GET", "/api/v1/departments"),
        api("GET", "/api/v1/agents/load")]);
      if (!alive) return;
      pageError.clear();
      replace(listSlot, departments.length
        ? h("ul", { class: "dept-list" }, departments.map((d) => departmentItem(d, agents)))
        : h("p", { class: "muted", text: t("No departments yet: every chat goes to the shared queue.") }));
      replace(loadSlot, loadTable(agents, departments));
      replace(hoursSlot, await hoursSection(departments, announce));
    } catch (failure) {
      if (alive && !failure.handled) pageError.show(failure.message);
    }
  }

  replace(container, h("section", { class: "departments-page" },
    h("h1", { text: t("Departments") }),
    h("p", { class: "lead", text: t("Agents see the waiting chats of their own departments and those without one.") }),
    h("p", { class: "lead", text: t("The widget lets visitors choose when more than one department is online.") }),
    pageError.el,
    h("h2", { text: t("Add a department") }), createForm,
    h("h2", { text: t("All departments") }), listSlot,
    h("h2", { text: t("Opening hours") }), hoursSlot,
    h("h2", { text: t("Agents' load") }), loadSlot));
  reload();
  return () => {
    alive = false;
  };
}
