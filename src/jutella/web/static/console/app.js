// The console's entry point: picks the page (set-up link, invitation link or
// the console), signs in, draws the signed-in frame and routes #/… hashes to
// the views registered in views.js.
//
// Document events other modules can rely on:
//   jutella:signed-in   {detail: me}   after sign-in (or on load with a live session)
//   jutella:signed-out                 after signing out or when the session ended
//   jutella:presence    {detail: {state}}   (presence.js)
//   jutella:refresh-me                 dispatch it to make the console reload
//                                      the account (roles changed, for example)

import { announce, mountAnnouncer } from "./announce.js";
import { api, setCsrfToken } from "./api.js";
import { h, replace } from "./dom.js";
import { lang, setLanguageCookie, t } from "./i18n.js";
import { registerShell } from "./install.js";
import { languageSwitcher } from "./language.js";
import { navBadge } from "./nav-badges.js";
import { presenceControl, unmountPresence } from "./presence.js";
import { canSee, currentRoute, findView, routeHref, visibleViews } from "./router.js";
import { renderInvite } from "./view-invite.js";
import { renderLogin } from "./view-login.js";
import { renderSsoCode, sso } from "./sso.js";
import { renderSetup } from "./view-setup.js";
import "./views.js";

const root = document.getElementById("app");
const state = {
  me: null,
  cleanup: null,
  frame: null, // {nav, banner, view, who}
  enrolmentBanner: false,
};

// -- frames ------------------------------------------------------------------------
function skipLink() {
  const link = h("a", { class: "skip-link", href: "#main", text: t("Skip to content") });
  link.addEventListener("click", (event) => {
    event.preventDefault(); // the hash is the router's
    const main = document.getElementById("main");
    if (main) main.focus();
  });
  return link;
}

function brand() {
  return h("a", { class: "brand", href: "/console", text: "jutella" });
}

/** The frame of the signed-out pages: brand, language, one card. */
function publicFrame() {
  teardownView();
  unmountPresence();
  const card = h("div", { class: "card" });
  replace(root,
    skipLink(),
    h("header", { class: "topbar" }, brand(), h("div", { class: "topbar-tools" },
      languageSwitcher({ signedIn: () => false }))),
    h("main", { id: "main", tabindex: "-1", class: "public-main" }, card));
  state.frame = null;
  return card;
}

function showLogin({ email = "", notice = "", failure = "" } = {}) {
  state.me = null;
  setCsrfToken(null);
  document.title = `${t("Sign in")} – jutella`;
  renderLogin(publicFrame(), { email, notice, failure, onSignedIn: (me) => signedIn(me) });
}

/** After set-up or an accepted invitation the server has already signed the
 * person in (the answer is the same as /me's): straight into the console. */
function welcomeIn(me) {
  history.replaceState(null, "", "/console");
  signedIn(me);
  announce(t("Your password is saved. You are signed in."));
}

// -- signed in ------------------------------------------------------------------------
function needsEnrolment(me) {
  return me.require_totp && !me.account.totp_enabled;
}

function signedIn(me) {
  // The account's own language wins over the browser's; reload once into it.
  if (me.language && me.language !== lang && sessionStorage.getItem("jutella-lang-reload") !== me.language) {
    sessionStorage.setItem("jutella-lang-reload", me.language);
    setLanguageCookie(me.language);
    location.reload();
    return;
  }
  sessionStorage.removeItem("jutella-lang-reload");
  setCsrfToken(me.csrf_token);
  state.me = me;
  state.enrolmentBanner = needsEnrolment(me);
  if (location.pathname !== "/console") history.replaceState(null, "", `/console${location.hash}`);
  drawFrame();
  document.dispatchEvent(new CustomEvent("jutella:signed-in", { detail: me }));
  route({ focus: false });
}

function drawFrame() {
  teardownView();
  const { account } = state.me;
  const nav = h("nav", { class: "sidenav", "aria-label": t("Main") });
  const banner = h("div", { class: "banner-slot" });
  const view = h("div", { class: "view" });
  const who = h("span", { class: "who", testid: "signed-in-name", text: account.name });
  const logout = h("button", { type: "button", class: "quiet", testid: "logout", text: t("Sign out") });
  logout.addEventListener("click", signOut);
  const tools = h("div", { class: "topbar-tools" },
    account.roles.includes("agent") ? presenceControl() : null,
    languageSwitcher({ signedIn: () => state.me !== null }),
    who,
    logout);
  replace(root,
    skipLink(),
    h("header", { class: "topbar" }, brand(), tools),
    h("div", { class: "layout" }, nav, h("main", { id: "main", tabindex: "-1" }, banner, view)));
  state.frame = { nav, banner, view, who };
  drawNav();
}

function drawNav() {
  if (!state.frame) return;
  const active = currentRoute();
  const items = visibleViews(state.me.account).filter((v) => v.nav !== false).map((v) => {
    const link = h("a", { href: routeHref(v.id), dataset: { view: v.id } },
      h("span", { class: "nav-label", text: t(v.label) }), navBadge(v.id)); // unread counts: nav-badges.js
    if (active && active.id === v.id) link.setAttribute("aria-current", "page");
    return h("li", {}, link);
  });
  replace(state.frame.nav, h("ul", {}, items));
}

function drawBanner() {
  if (!state.frame) return;
  if (state.enrolmentBanner && needsEnrolment(state.me)) {
    replace(state.frame.banner, h("div", { class: "message warning banner", role: "alert", testid: "totp-banner" },
      state.me.totp_for_roles
        ? t("Your roles need two-factor sign-in, and the identity provider did not confirm one. Turn it on below before you continue.")
        : t("An administrator requires two-factor sign-in for every account. Turn it on below before you continue.")));
  } else {
    state.frame.banner.replaceChildren();
  }
}

function teardownView() {
  if (state.cleanup) {
    try {
      state.cleanup();
    } catch (error) {
      console.error(error);
    }
  }
  state.cleanup = null;
}

function defaultView() {
  return visibleViews(state.me.account).find((v) => v.nav !== false) || findView("account");
}

function route({ focus = true } = {}) {
  if (!state.me || !state.frame) return;
  const wanted = currentRoute();
  if (needsEnrolment(state.me) && (!wanted || wanted.id !== "account")) {
    state.enrolmentBanner = true;
    history.replaceState(null, "", routeHref("account"));
    return route({ focus });
  }
  if (!wanted) {
    history.replaceState(null, "", routeHref(defaultView().id));
    return route({ focus });
  }
  teardownView();
  drawNav();
  drawBanner();
  const view = findView(wanted.id);
  const container = h("section", { class: "view-body", "aria-labelledby": "page-title" });
  replace(state.frame.view, container);
  if (!view) {
    document.title = `${t("Page not found")} – jutella`;
    replace(container, h("h1", { id: "page-title", tabindex: "-1", text: t("Page not found") }),
      h("p", {}, h("a", { href: routeHref(defaultView().id), text: t("Go to the start page") })));
  } else if (!canSee(view, state.me.account)) {
    document.title = `${t("Not allowed")} – jutella`;
    replace(container, h("h1", { id: "page-title", tabindex: "-1", text: t("Not allowed") }),
      h("p", { testid: "not-allowed", text: t("Your account does not have the role needed for this page.") }));
  } else {
    document.title = `${t(view.label)} – jutella`;
    const ctx = {
      get me() { return state.me; },
      params: wanted.params,
      announce,
      navigate: (id, params) => { location.hash = routeHref(id, params); },
      refreshMe,
    };
    try {
      const cleanup = view.render(container, ctx);
      if (typeof cleanup === "function") state.cleanup = cleanup;
      else if (cleanup && typeof cleanup.then === "function") {
        cleanup.then((fn) => { if (typeof fn === "function") state.cleanup = fn; }, (error) => console.error(error));
      }
    } catch (error) {
      console.error(error);
      replace(container, h("p", { class: "message error", role: "alert", text: t("This page could not be shown.") }));
    }
  }
  if (focus) {
    const heading = container.querySelector("h1");
    (heading || document.getElementById("main")).focus();
  }
}

async function refreshMe() {
  try {
    const me = await api("GET", "/api/v1/me");
    setCsrfToken(me.csrf_token);
    const rolesChanged = me.account.roles.join() !== state.me.account.roles.join();
    state.me = me;
    if (!needsEnrolment(me)) state.enrolmentBanner = false;
    if (state.frame) {
      state.frame.who.textContent = me.account.name;
      drawNav();
      drawBanner();
      if (rolesChanged) route({ focus: false });
    }
    return me;
  } catch (failure) {
    return null;
  }
}

async function signOut() {
  if (!state.me) return;
  // Leave first (views close their sockets), so that the server ending the
  // session cannot reach the console as "your session has ended".
  const email = leave();
  try {
    await api("POST", "/api/v1/me/logout");
  } catch {
    // the session is gone either way
  }
  showLogin({ email, notice: t("You have signed out.") });
}

/** Stop being signed in here: the view's cleanup, the state, the event.
 * Returns the email, to fill in on the sign-in page. */
function leave() {
  const email = state.me ? state.me.account.email : "";
  teardownView();
  state.me = null;
  history.replaceState(null, "", "/console");
  document.dispatchEvent(new CustomEvent("jutella:signed-out"));
  return email;
}

function endSession(notice) {
  showLogin({ email: leave(), notice });
}

// -- wiring ----------------------------------------------------------------------------
document.addEventListener("jutella:session-ended", (event) => {
  if (!state.me) return;
  event.preventDefault();
  // Keep the place so that signing in again returns to it.
  const hash = location.hash;
  endSession(t("Your session has ended. Sign in again."));
  if (hash) history.replaceState(null, "", `/console${hash}`);
});

document.addEventListener("jutella:totp-enrollment-required", (event) => {
  if (!state.me) return;
  event.preventDefault();
  state.me.require_totp = true;
  state.enrolmentBanner = true;
  if (currentRoute()?.id === "account") drawBanner();
  else location.hash = routeHref("account");
});

document.addEventListener("jutella:refresh-me", () => { if (state.me) refreshMe(); });

window.addEventListener("hashchange", () => {
  if (state.me) route({ focus: true });
});

async function boot() {
  root.removeAttribute("aria-live"); // messages are announced by their own live regions
  mountAnnouncer();
  const path = location.pathname.replace(/\/+$/, "");
  if (path === "/console/setup") {
    document.title = `${t("Set up jutella")} – jutella`;
    await renderSetup(publicFrame(), { onDone: welcomeIn });
    return;
  }
  if (path === "/console/invite") {
    document.title = `${t("Welcome to jutella")} – jutella`;
    await renderInvite(publicFrame(), { onDone: welcomeIn });
    return;
  }
  if (path === "/console/sso") { // back from the identity provider (web/routes_sso.py)
    history.replaceState(null, "", "/console");
    if (sso.step === "totp") {
      document.title = `${t("Sign in")} – jutella`;
      renderSsoCode(publicFrame(), { onSignedIn: (me) => signedIn(me), onGiveUp: () => showLogin() });
    } else {
      showLogin({ failure: sso.notice });
    }
    return;
  }
  try {
    signedIn(await api("GET", "/api/v1/me"));
  } catch (failure) {
    showLogin({ notice: failure.status === 401 ? "" : failure.message });
  }
}

registerShell();
boot();
