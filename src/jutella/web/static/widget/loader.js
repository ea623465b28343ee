/* jutella chat widget loader. A site embeds it with
 *   <script src="https://chat.example.org/widget.js" async></script>
 * (optionally data-lang="fi|en|sv"). It shows a launcher button and nothing
 * else; the chat itself runs in an iframe from jutella's own origin.
 * Consent first: this script stores nothing and opens no connection. It tells
 * the frame only the page's address and referrer (without query string or
 * fragment) and the language, by postMessage. See docs/widget.md. */
(() => {
  "use strict";
  const me = document.currentScript || document.querySelector('script[src$="/widget.js"]');
  if (!me || !me.src || window.jutellaWidget) return;
  window.jutellaWidget = true;

  const ORIGIN = new URL(me.src).origin;
  const VERSION = "__JUTELLA_VERSION__";
  const STRINGS = {/*__JUTELLA_STRINGS__*/};
  const LANGS = ["fi", "en", "sv"];
  const norm = (v) => {
    const l = String(v || "").trim().toLowerCase().split(/[-_]/)[0];
    return LANGS.includes(l) ? l : "";
  };
  const lang = norm(me.dataset.lang) || norm(document.documentElement.lang) ||
    [...(navigator.languages || []), navigator.language].map(norm).find(Boolean) || "en";
  const t = (s, n) => ((STRINGS[lang] || {})[s] || s).replace("{n}", n);
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
  const wrap = el("div", "jutella");
  const sheet = el("link");
  sheet.rel = "stylesheet";
  sheet.href = ORIGIN + "/static/widget/launcher.css?v=" + VERSION;
  const btn = el("button", "launcher");
  btn.type = "button";
  btn.hidden = true;
  btn.setAttribute("data-testid", "launcher");
  btn.setAttribute("aria-expanded", "false");
  sheet.onload = sheet.onerror = () => { btn.hidden = false; };
  const badge = el("span", "badge");
  badge.hidden = true;
  badge.setAttribute("aria-hidden", "true");
  btn.append(
    icon("i-chat", "M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H9.5L4 22v-4a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2z"),
    icon("i-close", "M6.4 5 12 10.6 17.6 5 19 6.4 13.4 12l5.6 5.6-1.4 1.4-5.6-5.6L6.4 19 5 17.6l5.6-5.6L5 6.4z"),
    badge);
  wrap.append(sheet, btn);
  root.append(wrap);

  let frame = null;
  let loaded = false;
  let open = false;
  let unread = 0;
  const outbox = [];

  const label = () => btn.setAttribute("aria-label",
    open ? t("Close chat") : unread ? t("Open chat ({n} new)", unread) : t("Open chat"));
  const post = (m) => {
    if (!loaded) return void outbox.push(m);
    frame.contentWindow.postMessage(Object.assign({ jutella: 1 }, m), ORIGIN);
  };
  const makeFrame = () => {
    if (frame) return;
    frame = el("iframe", "panel");
    frame.title = t("Chat window");
    frame.hidden = true;
    frame.referrerPolicy = "no-referrer";
    frame.setAttribute("data-jutella", "frame");
    frame.addEventListener("load", () => {
      loaded = true;
      post({ type: "init", page: clean(location.href), referrer: clean(document.referrer), lang });
      outbox.splice(0).forEach(post);
    });
    frame.src = ORIGIN + "/widget/frame";
    wrap.append(frame);
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
    if (!frame || e.source !== frame.contentWindow || e.origin !== ORIGIN) return;
    const m = e.data;
    if (!m || m.jutella !== 1) return;
    if (m.type === "show" && !open) setOpen(true);
    else if (m.type === "close" && open) close();
    else if (m.type === "unread" && !open) {
      unread = Math.max(0, Math.min(99, m.n | 0));
      badge.textContent = unread > 9 ? "9+" : String(unread);
      badge.hidden = !unread;
      label();
    }
  });

  const mount = () => {
    label();
    document.body.append(host);
  };
  // The frame comes in the background once the page has loaded: it only reads
  // whether this browser has an open chat from an earlier, consented visit.
  const preload = () => ("requestIdleCallback" in window
    ? requestIdleCallback(makeFrame, { timeout: 3000 }) : setTimeout(makeFrame, 500));
  if (document.body) mount();
  else document.addEventListener("DOMContentLoaded", mount);
  if (document.readyState === "complete") preload();
  else addEventListener("load", preload);
})();
