// One polite live region outside the views, for short confirmations that a
// screen reader should speak ("Saved.", "Copied.") without moving focus.

import { h } from "./dom.js";

let region = null;
let timer = null;

export function mountAnnouncer() {
  if (!region) {
    region = h("div", { id: "announcer", class: "visually-hidden", role: "status", "aria-live": "polite" });
    document.body.append(region);
  }
  return region;
}

export function announce(text) {
  mountAnnouncer();
  region.textContent = "";
  clearTimeout(timer);
  // A short pause so that the same text twice is spoken twice.
  timer = setTimeout(() => { region.textContent = text; }, 60);
}
