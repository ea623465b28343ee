// The chat frame's entry module. It talks to the loader on the host page by
// postMessage (strict origin checks both ways), keeps the consent state, and
// wires the protocol client (client.js) to the view (chat.js).
//
// Consent first: until the loader says the visitor clicked the launcher
// ("open"), this frame writes nothing and connects nowhere. It only reads its
// storage: a token stored in an earlier, consented visit means the visitor has
// already agreed, and an open chat from then is resumed straight away.
//
// The modules this one needs at once (the list below, before .map(load)) come
// inside this same response: the server (web/widget.py) fills them in at
// BUNDLED, so that opening the widget is one request for its scripts, not
// eight (issue 17: 30 KiB on the wire, headers included). Served as a plain
// file, BUNDLED stays empty and each is imported on its own. The modules
// loaded later (departments, and extras.js's) are imported with this
// module's own ?v=... so that a new version of the widget is never mixed with
// cached pieces of the old one.

const config = JSON.parse(document.getElementById("jutella-config").textContent);
const ORIGINS = new Set([...(config.origins || []), location.origin]);
const standalone = window.parent === window;
let hostOrigin = null;
let handle = null;
const early = [];

addEventListener("message", (e) => {
  if (standalone || e.source !== window.parent || !ORIGINS.has(e.origin)) return;
  if (hostOrigin && e.origin !== hostOrigin) return;
  const m = e.data;
  if (!m || typeof m !== "object" || m.jutella !== 1 || typeof m.type !== "string") return;
  if (!hostOrigin && m.type !== "init") return;
  hostOrigin = e.origin;
  if (handle) handle(m);
  else early.push(m);
});

function toHost(type, extra) {
  if (hostOrigin) window.parent.postMessage({ jutella: 1, type, ...extra }, hostOrigin);
}

const BUNDLED = {/*__JUTELLA_MODULES__*/};
const version = new URL(import.meta.url).search;
const load = (name) => (Object.hasOwn(BUNDLED, name) ? Promise.resolve(BUNDLED[name]) : import(`./${name}.js${version}`));
const [{ Client, newClientId }, { Store }, { I18n, LANGS }, { ChatView }, { linkify }, { OfflineView }, { setupExtras }] =
  await Promise.all(["client", "store", "i18n", "chat", "linkify", "offline", "extras"].map(load));

// What the host page may tell us, and nothing else: an http(s) address without
// query string or fragment, at most 2000 characters.
function cleanUrl(value) {
  if (typeof value !== "string" || !value) return "";
  try {
    const u = new URL(value);
    if (u.protocol !== "http:" && u.protocol !== "https:") return "";
    return (u.origin + u.pathname).slice(0, 2000);
  } catch (e) {
    return "";
  }
}

const store = new Store(safeLocalStorage());
const saved = store.read() || {};
const state = {
  inited: false,
  consented: saved.v === 1,
  visible: false,
  lang: "en",
  page: "",
  referrer: "",
  seen: saved.seen && typeof saved.seen.conv === "number" ? saved.seen : { conv: null, seq: 0 },
  unread: 0,
  // the email form's per-browser rate-limit key, and when the current chat began to wait
  browserKey: typeof saved.bk === "string" ? saved.bk : null,
  wait: saved.wait && typeof saved.wait.conv === "number" ? saved.wait : null,
};
if (state.consented) store.allow();
let view = null;
let client = null;
let offline = null;
let extras = null; // attachments, the rating and the transcript (extras.js)
let picker = null; // departments.js
let prechat = null; // prechat.js: the site's pre-chat form, loaded only when the site has one
let profile = {}; // the host site's profile (docs/sites.md), from config.sites

// A site's profile: its colour as custom properties in a constructed style
// sheet (no style attribute or element: CSP), its header and greeting in the visitor's language (staff
// text: textContent only), its logo. Empty: the built-in look and texts.
function applyProfile(i18n) {
  const c = profile.colour;
  const hex = (v) => (/^#[0-9a-f]{6}$/.test(v) ? v : null);
  if (c && hex(c.bg) && hex(c.hover) && hex(c.fg) && hex(c.text)) {
    try {
      const sheet = new CSSStyleSheet();
      sheet.replaceSync(`:root{--accent:${c.bg};--accent-dark:${c.hover};--on-accent:${c.fg};--accent-ink:${c.text}}`);
      document.adoptedStyleSheets = [...document.adoptedStyleSheets, sheet];
    } catch (e) {
      // an old browser: the built-in colours
    }
  }
  const text = (kind) => ((profile.texts || {})[kind] || {})[i18n.lang] || "";
  const title = document.querySelector(".title");
  if (text("header")) title.textContent = text("header");
  if (text("greeting")) document.querySelector(".intro").textContent = text("greeting");
  if (typeof profile.logo === "string" && profile.logo.startsWith("/widget/logo/")) {
    const img = document.createElement("img");
    img.className = "logo";
    img.src = profile.logo;
    img.alt = "";
    title.before(img);
  }
  return text("offline");
}

// The departments the site offers (its profile; none listed: all).
function offered(list) {
  const only = Array.isArray(profile.departments) && profile.departments.length ? profile.departments : null;
  return only && Array.isArray(list) ? list.filter((d) => d && only.includes(d.id)) : list;
}

// The department picker (departments.js) is fetched only when there is a
// choice to offer (more than one department online): most sites have none,
// and the opened widget stays within its weight budget (docs/widget.md).
function lazyPicker(i18n) {
  let impl = null;
  let loading = false;
  let last = { departments: [], open: false };
  return {
    get chosen() {
      return impl ? impl.chosen : null;
    },
    // one department offered on this site: the chat goes to it (when it is online)
    take: () => (impl ? impl.take() : last.departments.length === 1 && profile.departments ? last.departments[0].id : null),
    reset() {
      if (impl) impl.reset();
    },
    update(u) {
      if (u.departments !== undefined) u = { ...u, departments: offered(u.departments) };
      last = { ...last, ...Object.fromEntries(Object.entries(u).filter(([, v]) => v !== undefined)) };
      if (impl) {
        impl.update(u);
        return;
      }
      if (loading || !Array.isArray(last.departments) || last.departments.length < 2) return;
      loading = true;
      load("departments").then(({ DepartmentPicker }) => {
        impl = new DepartmentPicker(document, i18n, view.el.composer, version);
        impl.update(last);
      }, () => {
        loading = false; // try again with the next update
      });
    },
  };
}

// The site's pre-chat form (prechat.js, docs/prechat.md): fetched only when the
// server's welcome says the site has one, so other sites' widgets carry none of it.
function lazyPrechat(i18n) {
  let impl = null;
  let loading = false;
  let last = { config: null, open: false, offline: false };
  const ready = () => {
    updateOffline();
    view.focusInput();
  };
  return {
    get shown() {
      return impl ? impl.shown : !!last.config && last.open;
    },
    take: () => (impl ? impl.take() : null),
    started() {
      last.open = false;
      if (impl) impl.started();
    },
    reset(message) {
      last.open = true;
      if (impl) impl.reset(message);
    },
    focus: () => (impl ? impl.focus() : false),
    update(u) {
      last = { ...last, ...Object.fromEntries(Object.entries(u).filter(([, v]) => v !== undefined)) };
      if (impl) {
        impl.update(u);
        return;
      }
      if (loading || !last.config) return;
      loading = true;
      load("prechat").then(({ PrechatForm }) => {
        impl = new PrechatForm(document, i18n, view.el.composer, version, ready);
        impl.update(last);
        if (state.visible && impl.shown && document.activeElement === view.el.input) impl.focus();
      }, () => {
        loading = false;
      });
    },
  };
}

function safeLocalStorage() {
  try {
    return window.localStorage;
  } catch (e) {
    return { getItem: () => null, setItem() {}, removeItem() {}, key: () => null, length: 0 };
  }
}

function persist() {
  if (!state.consented) return;
  store.save({
    v: 1,
    token: client ? client.token : saved.token || null,
    conv: client ? client.conv : null,
    active: view ? view.conversationState !== null && view.conversationState !== "closed" : false,
    panel: state.visible,
    seen: state.seen,
    pending: client ? client.pendingList() : [],
    bk: state.browserKey,
    wait: state.wait,
  });
}

function wsUrl() {
  return `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}/ws/visitor`;
}

function startClient() {
  if (client) return;
  client = new Client({
    url: wsUrl(),
    hello: { lang: state.lang, page: state.page, referrer: state.referrer },
    token: typeof saved.token === "string" ? saved.token : null,
    conversation: saved.conv,
    pending: Array.isArray(saved.pending) ? saved.pending : [],
    emit: onClient,
    persist,
  });
  view.restorePending(client.pendingList());
  client.start();
}

function onClient(kind, f) {
  switch (kind) {
    case "status":
      view.setConnection(f);
      break;
    case "welcome":
      view.welcome(f);
      tellPage();
      picker.update({ departments: f.departments, open: view.conversationState === null });
      prechat.update({ config: f.prechat || null, open: view.conversationState === null,
        onDuty: Array.isArray(f.on_duty) ? f.on_duty : [] });
      updateOffline();
      persist();
      markSeen();
      break;
    case "event":
      view.event(f);
      tellPage(); // a conversation that has just begun hears of a move made before it
      if (view.conversationState !== null && view.conversationState !== "closed") prechat.started();
      updateOffline();
      if (state.visible) markSeen();
      else if (f.author !== "visitor" && !(state.seen.conv === f.conversation && f.seq <= state.seen.seq)) {
        state.unread += 1;
        toHost("unread", { n: state.unread });
      }
      persist();
      break;
    case "ack":
      view.ack(f);
      break;
    case "typing":
      view.setTyping(!!f.active);
      break;
    case "seen":
      view.seenUpTo(f.conversation, f.seq);
      break;
    case "departments":
      picker.update({ departments: f });
      break;
    case "on_duty":
      prechat.update({ onDuty: f });
      break;
    case "closed":
      view.setClosed(f);
      break;
    case "presence":
      view.setAgentsOnline(f);
      updateOffline();
      break;
    case "queue":
      view.setQueue(f);
      break;
    case "error":
      if (f.client_id) view.fail(f.client_id);
      if (f.code === "department_unavailable") picker.reset(); // choose again from what is offered now
      if (f.code === "prechat_invalid") { // the form again, with the server's word (docs/prechat.md)
        prechat.reset(errorText(f));
        updateOffline();
        if (prechat.shown) break; // else (the form came after this widget's welcome): the line below says it
      }
      view.showError(errorText(f));
      break;
    case "reset":
      view.clear();
      view.restorePending(client.pendingList());
      updateOffline();
      break;
    default:
      break;
  }
}

const ERRORS = {
  empty: "Write something first.",
  too_long: "The message is too long (at most 4000 characters).",
  too_large: "The message is too long (at most 4000 characters).",
  rate_limited: "You are sending messages too fast. Wait a moment and try again.",
  closed: "This chat has ended.",
};

function errorText(f) {
  if (typeof f.message === "string" && f.message.trim()) return f.message.trim().slice(0, 300);
  return view.t(ERRORS[f.code] || "Something went wrong. Please try again.");
}

// The email form (offline.js): told of every change in who is online and in
// the conversation's state; it shows the form, an offer of it, or nothing.
function updateOffline() {
  if (extras) extras.update({ conv: view.conv, state: view.conversationState });
  if (!offline) return;
  const before = offline.replacesComposer;
  offline.update({
    online: view.agentsOnline,
    conv: view.conv,
    state: view.conversationState,
  });
  view.offlineForm = offline.replacesComposer;
  view.renderStatus();
  // The form took the composer's place while the visitor was in it: follow.
  if (!before && offline.replacesComposer && state.visible) {
    const active = document.activeElement;
    if (!active || active === document.body || active === view.el.input) offline.focus();
  }
}

function browserKey() {
  if (!state.browserKey) {
    state.browserKey = newClientId();
    persist();
  }
  return state.browserKey;
}

function markSeen() {
  if (!state.visible || document.visibilityState !== "visible" || !client) return;
  if (client.conv !== null && (state.seen.conv !== client.conv || state.seen.seq < client.highest)) {
    state.seen = { conv: client.conv, seq: client.highest };
    persist();
  }
  state.unread = 0;
  client.seen();
}

function consent() {
  if (state.consented) return;
  state.consented = true;
  store.allow();
  browserKey();
}

function setVisible(visible) {
  state.visible = visible;
  persist();
  if (visible) markSeen();
}

const actions = {
  send(body) {
    if (!client) {
      consent();
      startClient();
    }
    return client.send(body, picker.take(), prechat.take());
  },
  typing: (active) => client && client.typing(active),
  end() {
    if (!client) return;
    client.end();
    view.setConversationState("closed");
    updateOffline();
    persist();
    view.focusInput();
  },
  close() {
    setVisible(false);
    toHost("close");
  },
  forget() {
    if (client) client.stop();
    client = null;
    for (const key of Object.keys(saved)) delete saved[key];
    state.consented = false;
    state.seen = { conv: null, seq: 0 };
    state.browserKey = null;
    state.wait = null;
    store.forget();
    view.showStart(view.t("This browser no longer remembers the chat."));
    view.agentsOnline = null;
    offline.reset();
    updateOffline();
    view.focusInput();
  },
  newChat() {
    view.reopen();
    picker.reset();
    prechat.reset();
    offline.reset();
    updateOffline();
    if (!offline.focus()) view.focusInput();
    persist();
  },
  restart() {
    consent();
    view.hideStart();
    startClient();
    view.focusInput();
  },
};

// The host page moved (a single-page site's pushState, say): the server hears
// of it only while this browser's chat is open (consent given, a conversation
// going); reconnects say it in their hello (the server stores it cleaned).
function movedTo(value) {
  const page = cleanUrl(value);
  if (!page || page === state.page) return;
  state.page = page;
  if (!client) return;
  client.hello.page = page;
  tellPage();
}

// The one rule for telling the server the page: while a conversation is open,
// whenever the page the server last heard (the hello's, or the last "page"
// frame's) is not the current one. So a move while the hello was on its way
// (before the welcome said a conversation is open) is told at the welcome.
function tellPage() {
  const s = view.conversationState;
  if (client.conv === null || s === null || s === "closed" || client.toldPage === state.page) return;
  client.toldPage = state.page;
  client.raw({ type: "page", page: state.page });
}

function init(m) {
  state.page = cleanUrl(m.page);
  state.referrer = cleanUrl(m.referrer);
  if (state.inited) return;
  state.inited = true;
  state.lang = LANGS.includes(m.lang) ? m.lang : "en";
  const i18n = new I18n(config.strings, state.lang);
  i18n.apply(document);
  const sites = config.sites || {};
  profile = (hostOrigin && sites[hostOrigin]) || sites[""] || {};
  const offlineText = applyProfile(i18n);
  view = new ChatView(document, i18n, linkify, actions);
  extras = setupExtras(document, i18n, { token: () => (client ? client.token : null), lang: () => state.lang }, view);
  picker = lazyPicker(i18n);
  prechat = lazyPrechat(i18n);
  offline = new OfflineView(document, i18n, {
    slot: document.getElementById("offline"),
    queueSlot: document.getElementById("queue-offer"), // the wait-too-long offer, in the queue status
    waitSeconds: Number(config.offline_wait_seconds) || 180,
    intro: offlineText, // the site's own text above the form, when nobody is available
    // the marketing consent box ({version, text}), only when the feature is on
    consent: config.marketing
      ? { version: config.marketing.version, text: config.marketing.text[state.lang] || config.marketing.text.en }
      : null,
    context: () => ({ lang: state.lang, page: state.page, referrer: state.referrer,
      token: client ? client.token : null, browserKey: browserKey(), department: picker ? picker.chosen : null }),
    getWait: () => state.wait,
    setWait(w) {
      state.wait = w;
      persist();
    },
    // A message left from a chat: the chat's text went along with it, so the
    // chat ends here rather than wait in the queue for a second answer.
    sent(reason) {
      if (reason !== "no_agent" && client && view.conversationState !== "closed" && view.conversationState !== null) {
        client.end();
        view.setConversationState("closed");
        updateOffline();
        persist();
      }
    },
    chat() {
      updateOffline();
      view.focusInput();
    },
    close: standalone ? null : () => actions.close(),
  });
  document.documentElement.dataset.ready = "";
  toHost("ready");
  if (standalone) {
    state.visible = true;
    if (state.consented) startClient();
    else view.showStart(view.t("Nothing is stored in this browser until you start a chat."));
    return;
  }
  // A visitor who agreed earlier and has a chat going: reconnect, and show the
  // panel again if it was open when they left the previous page.
  if (state.consented && (saved.active || (Array.isArray(saved.pending) && saved.pending.length))) {
    startClient();
    if (saved.panel) {
      state.visible = true;
      toHost("show");
    }
  }
}

handle = (m) => {
  switch (m.type) {
    case "init":
      init(m);
      break;
    case "open":
      if (!view) return;
      if (view.el.start.hidden) {
        // The click on the launcher: the visitor's consent.
        consent();
        startClient();
      }
      setVisible(true);
      if (m.focus && !offline.focus() && !prechat.focus()) view.focusInput();
      break;
    case "hidden":
      setVisible(false);
      break;
    case "page":
      movedTo(m.page);
      break;
    default:
      break;
  }
};

document.addEventListener("keydown", (e) => {
  if (e.key === "Escape" && !standalone) {
    e.preventDefault();
    actions.close();
  }
});
document.addEventListener("visibilitychange", markSeen);

if (standalone) {
  const nav = [...(navigator.languages || []), navigator.language].map((l) => String(l || "").slice(0, 2).toLowerCase());
  init({ type: "init", page: "", referrer: "", lang: nav.find((l) => LANGS.includes(l)) || "en" });
}
early.splice(0).forEach(handle);
