// Opening hours (administrators), on the Departments page: the whole service's
// hours and each department's own, with date exceptions. See docs/hours.md.
// The server checks everything (bad times, end before start, overlaps) and says
// what is wrong; this only turns the fields into its JSON and back.

import { api } from "./api.js";
import { busy, field, h, messageBox } from "./dom.js";
import { N_, t } from "./i18n.js";

const DAYS = [N_("Monday"), N_("Tuesday"), N_("Wednesday"), N_("Thursday"), N_("Friday"), N_("Saturday"), N_("Sunday")];

const show = (hours) => hours.map(([a, b]) => `${a}-${b}`).join(", ");
const read = (text) => text.split(",").map((s) => s.trim()).filter(Boolean).map((s) => s.split("-").map((x) => x.trim()));

function exceptionLines(list) {
  return list.map((e) => [e.date, e.hours.length ? show(e.hours).replace(/, /g, ",") : "closed", e.note || ""]
    .join(" ").trim()).join("\n");
}

function readExceptions(text) {
  return text.split("\n").map((l) => l.trim()).filter(Boolean).map((line) => {
    const [date, hours = "", ...note] = line.split(/\s+/);
    return { date, hours: hours === "closed" ? [] : read(hours), note: note.join(" ") || null };
  });
}

// One schedule's form: department {id, name} or null for the whole service.
export function hoursForm(department, schedule, announce) {
  const id = department ? department.id : null;
  const s = schedule || { weekly: {}, exceptions: [] };
  const inputs = DAYS.map((day, i) => h("input", { type: "text", maxlength: "120", autocomplete: "off",
    value: show(s.weekly[String(i)] || []), testid: `hours-day-${i}` }));
  const exceptions = h("textarea", { rows: "3", maxlength: "20000", testid: "hours-exceptions" });
  exceptions.value = exceptionLines(s.exceptions);
  const error = messageBox("error");
  const form = h("form", { class: "stack hours-form", novalidate: true, testid: "hours-form",
    dataset: { department: id === null ? "service" : id } },
    h("h3", { text: department ? department.name : t("Whole service") }),
    h("p", { class: "muted", text: t("Weekly hours, e.g. 09:00-12:00, 13:00-16:00") }),
    h("div", { class: "hours-days" }, inputs.map((input, i) => field(t(DAYS[i]), input).row)),
    field(t("Exceptions"), exceptions,
      { hint: t("Exceptions, one a line: 2026-12-24 closed Christmas Eve, or 2026-12-27 10:00-14:00") }).row,
    error.el,
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary", testid: "hours-save",
      text: t("Save hours") })));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.clear();
    const weekly = {};
    inputs.forEach((input, i) => {
      const hours = read(input.value);
      if (hours.length) weekly[String(i)] = hours;
    });
    const done = busy(form);
    try {
      await api("PUT", "/api/v1/hours", { department_id: id, weekly, exceptions: readExceptions(exceptions.value) });
      announce(t("Hours saved."));
    } catch (failure) {
      if (!failure.handled) error.show(failure.message);
    } finally {
      done();
    }
  });
  return form;
}

export async function hoursSection(departments, announce) {
  const found = await api("GET", "/api/v1/hours");
  const of = (id) => found.schedules.find((x) => x.department_id === id);
  return h("div", { class: "stack", testid: "opening-hours" },
    h("p", { class: "lead", text: t("Times are in {tz}. No hours: always open.", { tz: found.time_zone }) }),
    hoursForm(null, of(null), announce), departments.map((d) => hoursForm(d, of(d.id), announce)));
}
