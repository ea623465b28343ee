// The department picker (docs/departments.md). When the server offers a
// choice (welcome and presence frames carry "departments": more than one
// department has someone online and the setting is on), the visitor may pick
// who they want to talk to before the first message; the choice goes with that
// message. Without a choice the chat goes to the shared queue. Names are
// staff-given text: they only ever become text nodes.

export class DepartmentPicker {
  constructor(doc, i18n, before, version) {
    this.doc = doc;
    this.i18n = i18n;
    this.list = [];
    this.chosen = null;
    this.open = false;
    const css = doc.createElement("link");
    css.rel = "stylesheet";
    css.href = `/static/widget/departments.css${version || ""}`;
    doc.head.append(css);
    this.el = doc.createElement("fieldset");
    this.el.className = "departments";
    this.el.dataset.testid = "department-picker";
    this.el.hidden = true;
    this.legend = doc.createElement("legend");
    this.options = doc.createElement("div");
    this.options.className = "department-options";
    this.el.append(this.legend, this.options);
    before.before(this.el);
  }

  // departments: [{id, name}] from the server; open: no conversation is going on.
  update({ departments, open }) {
    if (Array.isArray(departments)) {
      this.list = departments.filter((d) => d && typeof d.id === "number" && typeof d.name === "string");
      if (this.chosen !== null && !this.list.some((d) => d.id === this.chosen)) this.chosen = null;
    }
    if (typeof open === "boolean") this.open = open;
    this.render();
  }

  render() {
    const shown = this.open && this.list.length > 1;
    this.el.hidden = !shown;
    if (!shown) return;
    this.legend.textContent = this.i18n.t("Who would you like to talk to?");
    this.options.replaceChildren(...this.list.map((d) => {
      const b = this.doc.createElement("button");
      b.type = "button";
      b.className = "department-option";
      b.dataset.testid = "department-option";
      b.dataset.department = String(d.id);
      b.textContent = d.name;
      b.setAttribute("aria-pressed", String(d.id === this.chosen));
      b.addEventListener("click", () => {
        this.chosen = d.id;
        this.render();
        const input = this.doc.getElementById("input");
        if (input) input.focus();
      });
      return b;
    }));
  }

  // The department to send with a message that starts a conversation (or null).
  take() {
    const chosen = this.open && this.list.length > 1 ? this.chosen : null;
    this.open = false;
    this.render();
    return chosen;
  }

  reset() {
    this.chosen = null;
    this.open = true;
    this.render();
  }
}
