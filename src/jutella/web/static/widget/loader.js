/* jutella chat widget loader. A site embeds it with
 *   <script src="https://chat.example.org/widget.js" async></script>
 * (optionally data-lang="fi|en|sv"). It shows a launcher button and nothing
 * else; the chat itself runs in an iframe from jutella's own origin.
 * Consent first: this script stores nothing and opens no connection. It tells
 * the frame only the page's address and referrer (without query string or
 * fragment) and the language, by postMessage. See docs/widget.md.
 * Light: until the launcher is pointed at, focused or clicked, only a storage
 * probe (under 1 KiB) loads, and the chat frame comes only when the probe says
 * this browser has a chat going from an earlier, consented visit. */
(() => {
  "use strict";
  const me = document.currentScript || document.querySelector('script[src$="/widget.js"]');
  if (!me || !me.src || window.jutellaWidget) return;
  window.jutellaWidget = true;

  const ORIGIN = new URL(me.src).origin;
  const VERSION = "__JUTELLA_VERSION__";
  const STRINGS = {/*__JUTELLA_STRINGS__*/};
  const CSS = "__JUTELLA_CSS__"; // launcher.css, filled in by the route: no request of its own
  // The launcher's look per site (docs/sites.md): [colour, its text colour, "l" for left, {lang: label},
  // 1: closed now and the profile hides the launcher then (it shows only for a chat going)]
  const SITES = {/*__JUTELLA_SITES__*/};
  const LANGS = ["fi", "en", "sv"];
  const norm = (v) => {
    const l = String(v || "").trim().toLowerCase().split(/[-_]/)[0];
    return LANGS.includes(l) ? l : "";
  };
  const lang = norm(me.dataset.lang) || norm(document.documentElement.lang) ||
    [...(navigator.languages || []), navigator.language].map(norm).find(Boolean) || "en";
  const t = (s, n) => ((STRINGS[lang] || {})[s] || s).replace("{n}", n);
  const [bg, fg, side, names, off] = SITES[location.origin] || SITES[""] || [];
  const name = names && names[lang];
  // the site's colour as custom properties in the launcher's own sheet (no style attribute: CSP)
  const css = CSS + (bg ? `.jutella{--bg:${bg};--fg:${fg}}` : "") + (off ? ".jutella:not(.on){display:none}" : "");
  const clean = (u) => {
    try {
      const x = new URL(u);
      return /^https?:$/.test(x.protocol) ? x.origin + x.pathname : "";
    } catch (e) {
      return "";
    }
  };

  const NS = "http://www.w3.org/2000/svg";
  const el = (name, cls, ns) => {
    const e = ns ? document.createElementNS(NS, name) : document.createElement(name);
    if (cls) e.setAttribute("class", cls);
    return e;
  };
  const icon = (cls, d) => {
    const svg = el("svg", cls, 1);
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    const p = el("path", "", 1);
    p.setAttribute("d", d);
    svg.append(p);
    return svg;
  };

  const host = el("div");
  host.setAttribute("data-jutella", "");
  const root = host.attachShadow({ mode: "open" });
  const wrap = el("div", "jutella" + (side ? " left" : "") + (name ? " named" : ""));
  // A constructed stylesheet: the host page's CSP (style-src) does not govern it.
  try {
    const sheet = new CSSStyleSheet();
    sheet.replaceSync(css);
    root.adoptedStyleSheets = [sheet];
  } catch (e) {
    const style = el("style");
    style.textContent = css;
    wrap.append(style);
  }
  const btn = el("button", "launcher");
  btn.type = "button";
  btn.setAttribute("data-testid", "launcher");
  btn.setAttribute("aria-expanded", "false");
  const badge = el("span", "badge");
  badge.hidden = true;
  badge.setAttribute("aria-hidden", "true");
  btn.append(
    icon("i-chat", "M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H9.5L4 22v-4a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2z"),
    icon("i-close", "M6.4 5 12 10.6 17.6 5 19 6.4 13.4 12l5.6 5.6-1.4 1.4-5.6-5.6L6.4 19 5 17.6l5.6-5.6L5 6.4z"),
    badge);
  if (name) btn.append(Object.assign(el("span", "name"), { textContent: name }));
  wrap.append(btn);
  root.append(wrap);

  let frame = null; // the chat frame's iframe, once wanted
  let probe = null; // the storage probe's iframe, until the chat frame comes
  let loaded = false;
  let open = false;
  let unread = 0;
  let page = clean(location.href);
  const outbox = [];

  const label = () => btn.setAttribute("aria-label",
    open ? t("Close chat") : (name ? name + ": " : "") + (unread ? t("Open chat ({n} new)", unread) : t("Open chat")));
  const post = (m) => {
    if (!loaded) return void outbox.push(m);
    frame.contentWindow.postMessage(Object.assign({ jutella: 1 }, m), ORIGIN);
  };
  const iframe = (cls, path) => {
    const f = el("iframe", cls);
    f.hidden = true;
    f.referrerPolicy = "no-referrer";
    f.src = ORIGIN + path;
    return f;
  };
  const makeFrame = () => {
    if (frame) return;
    if (probe) probe.remove();
    probe = null;
    frame = iframe("panel", "/widget/frame");
    frame.title = t("Chat window");
    frame.setAttribute("data-jutella", "frame");
    frame.addEventListener("load", () => {
      loaded = true;
      post({ type: "init", page, referrer: clean(document.referrer), lang });
      outbox.splice(0).forEach(post);
    });
    wrap.append(frame);
  };
  // Does this browser have a chat going (stored on jutella's origin after an
  // earlier click)? The probe reads, never writes, and answers only "resume".
  const makeProbe = () => {
    if (frame || probe) return;
    probe = iframe("", "/widget/probe?v=" + VERSION);
    probe.setAttribute("aria-hidden", "true");
    probe.tabIndex = -1;
    probe.setAttribute("data-jutella", "probe");
    probe.addEventListener("load", () => {
      if (probe) probe.contentWindow.postMessage({ jutella: 1, type: "probe" }, ORIGIN);
    });
    wrap.append(probe);
  };
  // The host page's address while it stays: a single-page site moves with
  // history.pushState; the frame tells the server only while a chat is open.
  const moved = () => {
    const now = clean(location.href);
    if (now === page) return;
    page = now;
    if (loaded) post({ type: "page", page });
  };
  const setOpen = (v) => {
    open = v;
    wrap.classList.toggle("open", v);
    btn.setAttribute("aria-expanded", String(v));
    frame.hidden = !v;
    if (v) {
      unread = 0;
      badge.hidden = true;
    }
    label();
  };
  const close = () => {
    setOpen(false);
    post({ type: "hidden" });
    btn.focus();
  };

  btn.addEventListener("pointerenter", makeFrame);
  btn.addEventListener("focus", makeFrame);
  btn.addEventListener("click", () => {
    makeFrame();
    if (open) return close();
    setOpen(true);
    post({ type: "open", focus: true });
    frame.focus();
  });
  wrap.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && open) close();
  });
  addEventListener("message", (e) => {
    const m = e.data;
    if (e.origin !== ORIGIN || !m || m.jutella !== 1) return;
    if (probe && e.source === probe.contentWindow) {
      return void (m.type === "resume" && (wrap.classList.add("on"), makeFrame()));
    }
    if (!frame || e.source !== frame.contentWindow) return;
    if (m.type === "show" && !open) setOpen(true);
    else if (m.type === "close" && open) close();
    else if (m.type === "unread" && !open) {
      unread = Math.max(0, Math.min(99, m.n | 0));
      badge.textContent = unread > 9 ? "9+" : String(unread);
      badge.hidden = !unread;
      label();
    }
  });

  addEventListener("popstate", moved);
  addEventListener("hashchange", moved);
  if (window.navigation) navigation.addEventListener("currententrychange", moved);
  else {
    for (const k of ["pushState", "replaceState"]) {
      const orig = history[k];
      history[k] = function () {
        const r = orig.apply(this, arguments);
        moved();
        return r;
      };
    }
  }

  const mount = () => {
    label();
    document.body.append(host);
  };
  // The probe comes in the background once the page has loaded.
  const preload = () => ("requestIdleCallback" in window
    ? requestIdleCallback(makeProbe, { timeout: 3000 }) : setTimeout(makeProbe, 500));
  if (document.body) mount();
  else document.addEventListener("DOMContentLoaded", mount);
  if (document.readyState === "complete") preload();
  else addEventListener("load", preload);
})();
