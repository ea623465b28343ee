// The register (#/register, role "privacy"): the contact person's tools for
// data-subject requests. Three pages under one navigation entry:
//   #/register            find a person, then act on the confirmed records
//                         (view-privacy-find.js, view-privacy-rectify.js)
//   #/register/requests   the request log with its deadlines (view-privacy-requests.js)
//   #/register/record     the record of processing activities (view-privacy-record.js)
// Everything shown here is untrusted text and goes in through textContent.

import { ensureStylesheet, h, replace } from "./dom.js";
import { N_, t } from "./i18n.js";
import { routeHref } from "./router.js";
import { renderFind } from "./view-privacy-find.js";
import { renderRecord } from "./view-privacy-record.js";
import { renderRequests } from "./view-privacy-requests.js";

const STYLESHEET = "/static/console/privacy.css";

ensureStylesheet(STYLESHEET);

const PAGES = [
  { id: "", label: N_("Find a person"), render: renderFind },
  { id: "requests", label: N_("Request log"), render: renderRequests },
  { id: "record", label: N_("Record of processing"), render: renderRecord },
];

export function renderPrivacy(container, ctx) {
  ensureStylesheet(STYLESHEET);
  container.classList.add("pv-view");
  const page = PAGES.find((p) => p.id === (ctx.params || "")) || PAGES[0];
  const tabs = h("nav", { class: "pv-tabs", "aria-label": t("Register") },
    h("ul", {}, PAGES.map((p) => {
      const link = h("a", { href: routeHref("register", p.id), text: t(p.label), testid: `pv-tab-${p.id || "find"}` });
      if (p === page) link.setAttribute("aria-current", "page");
      return h("li", {}, link);
    })));
  const body = h("div", { class: "pv-page" });
  replace(container,
    h("h1", { id: "page-title", tabindex: "-1", text: t("Register") }),
    tabs, body);
  return page.render(body, ctx);
}
