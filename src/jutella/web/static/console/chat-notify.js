// Telling the agent that a visitor is waiting: a short chime (made with the
// Web Audio API, no sound file) and, when the tab is hidden, a browser
// notification. The rules:
//   * only for a conversation newly waiting, once per conversation;
//   * never while the agent's status is "offline";
//   * the chime can be muted (remembered in this browser, all tabs);
//   * notification permission is asked only when the agent presses
//     "Enable notifications", never on load;
//   * with several tabs open, one tab alerts (a visible tab first): the tabs
//     race for a Web Lock named after the conversation;
//   * the notification says that someone waits, never what they wrote (the
//     operating system keeps notifications where the console cannot erase them).
//   * each agent chooses (per account, in this browser's localStorage): sound,
//     browser notifications (also for new visitor messages in their own active
//     chats while the tab is hidden) and the unread count in the tab title.
//     Everything is on until switched off; see preferences() and setPreference().

import { getPresence } from "./presence.js";
import { t } from "./i18n.js";

const MUTE_KEY = "jutella-chat-sound";
const PREFS_PREFIX = "jutella-notify:";
const DEFAULTS = { sound: true, browser: true, title: true };
let account = null;
const HOLD_LOCK_MS = 10_000;
const HIDDEN_TAB_DELAY_MS = 400;

let audio = null;
let primed = false;
const alerted = new Set();
const listeners = new Set();

// -- the agent's preferences ---------------------------------------------------------
/** Whose preferences apply (chat-store.js calls it at sign-in). */
export function setAccount(id) {
  account = id == null ? null : String(id);
  changed();
}

function readPrefs() {
  let stored = {};
  try {
    if (account) stored = JSON.parse(localStorage.getItem(PREFS_PREFIX + account) || "{}") || {};
  } catch {
    stored = {};
  }
  const prefs = { ...DEFAULTS, ...stored };
  if (!("sound" in stored)) {
    try {
      prefs.sound = localStorage.getItem(MUTE_KEY) !== "off"; // the browser-wide switch of earlier versions
    } catch {
      // keep the default
    }
  }
  return prefs;
}

export function preferences() {
  return readPrefs();
}

export function setPreference(key, on) {
  if (!(key in DEFAULTS)) return;
  const prefs = { ...readPrefs(), [key]: Boolean(on) };
  try {
    if (account) localStorage.setItem(PREFS_PREFIX + account, JSON.stringify(prefs));
    if (key === "sound") {
      if (on) localStorage.removeItem(MUTE_KEY);
      else localStorage.setItem(MUTE_KEY, "off");
    }
  } catch {
    // not remembered
  }
  changed();
}

// -- sound ------------------------------------------------------------------------
export function isMuted() {
  return !readPrefs().sound;
}

/** Browsers let a page make sound only after the person has interacted with
 * it; the audio context is made on the first click or key press. */
function prime() {
  if (primed) return;
  primed = true;
  const Context = window.AudioContext || window.webkitAudioContext;
  if (!Context) return;
  try {
    audio = new Context();
  } catch {
    audio = null;
  }
}

export function chime() {
  if (isMuted() || !audio) return;
  if (audio.state === "suspended") audio.resume().catch(() => {});
  const start = audio.currentTime + 0.02;
  // two soft sine notes, E5 then A5, each with a short attack and decay
  for (const [frequency, offset] of [[659.25, 0], [880, 0.14]]) {
    const osc = audio.createOscillator();
    const gain = audio.createGain();
    osc.type = "sine";
    osc.frequency.value = frequency;
    const at = start + offset;
    gain.gain.setValueAtTime(0.0001, at);
    gain.gain.exponentialRampToValueAtTime(0.18, at + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, at + 0.35);
    osc.connect(gain);
    gain.connect(audio.destination);
    osc.start(at);
    osc.stop(at + 0.4);
  }
}

// -- notifications --------------------------------------------------------------------
export function notificationState() {
  if (!("Notification" in window)) return "unsupported";
  return Notification.permission; // "default" | "granted" | "denied"
}

export async function enableNotifications() {
  if (notificationState() !== "default") return notificationState();
  try {
    await Notification.requestPermission();
  } catch {
    // an old browser with the callback form only: leave it
  }
  changed();
  return notificationState();
}

// kind: "waiting" (a new chat in the queue), "transfer" (a chat handed to me or
// my department) or "message" (a new message in one of mine)
function notificationTitle(kind, summary) {
  if (kind === "waiting") return t("A visitor is waiting");
  if (kind === "transfer") {
    return summary.state === "waiting" ? t("A conversation was transferred to your department")
      : t("A conversation was transferred to you");
  }
  return t("New message");
}

function showNotification(summary, open, kind) {
  if (notificationState() !== "granted" || !readPrefs().browser) return;
  try {
    const note = new Notification(notificationTitle(kind, summary), {
      body: t("Conversation {id}: visitor {visitor}", { id: summary.id, visitor: summary.visitor || "…" }),
      tag: `jutella-${kind}-${summary.id}`,
      lang: document.documentElement.lang || undefined,
    });
    note.addEventListener("click", () => {
      window.focus();
      open(summary.id);
      note.close();
    });
  } catch {
    // some platforms allow notifications from service workers only
  }
}

async function claim(id) {
  if (!navigator.locks || typeof navigator.locks.request !== "function") return true;
  if (document.visibilityState !== "visible") await new Promise((r) => setTimeout(r, HIDDEN_TAB_DELAY_MS));
  return new Promise((resolve) => {
    navigator.locks.request(`jutella-waiting-${id}`, { ifAvailable: true }, (lock) => {
      resolve(Boolean(lock));
      // the winner holds it a while, so a tab that hears of it late stays quiet
      return lock ? new Promise((r) => setTimeout(r, HOLD_LOCK_MS)) : null;
    }).catch(() => resolve(true));
  });
}

/**
 * A conversation is newly waiting. `open(id)` opens it (for a click on the
 * notification).
 */
export async function alertWaiting(summary, open) {
  if (alerted.has(summary.id)) return;
  alerted.add(summary.id);
  if (getPresence() === "offline") return;
  if (!(await claim(summary.id))) return;
  chime();
  if (document.visibilityState !== "visible") showNotification(summary, open, "waiting");
}

/**
 * A conversation was transferred to this agent or to their department: the
 * same alert as a new chat (chime, and a notification while the tab is
 * hidden), once per transfer (its seq), whatever the conversation alerted
 * before.
 */
export async function alertTransfer(summary, open) {
  const key = `transfer-${summary.id}-${summary.last_seq}`;
  if (alerted.has(key)) return;
  alerted.add(key);
  alerted.add(summary.id); // a transfer to a department makes it "newly waiting" too: one alert
  if (getPresence() === "offline") return;
  if (!(await claim(key))) return;
  chime();
  if (document.visibilityState !== "visible") showNotification(summary, open, "transfer");
}

/**
 * A new visitor message in one of the agent's own active conversations. Only
 * while the tab is hidden (a visible console shows it anyway), and never
 * what the visitor wrote.
 */
export async function alertMessage(summary, open) {
  if (document.visibilityState === "visible" || getPresence() === "offline") return;
  if (!(await claim(`${summary.id}-${summary.last_seq}`))) return;
  chime();
  showNotification(summary, open, "message");
}

/** Conversations already there when the list is first read: no alert for them. */
export function markKnown(ids) {
  for (const id of ids) alerted.add(id);
}

export function forgetAlerts() {
  alerted.clear();
}

// -- changes (mute, permission) for the controls that show them -----------------------------
export function onChange(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

function changed() {
  for (const fn of listeners) fn();
}

window.addEventListener("storage", (event) => {
  if (event.key === MUTE_KEY || (event.key && event.key.startsWith(PREFS_PREFIX))) changed();
});
document.addEventListener("pointerdown", prime, { capture: true, passive: true });
document.addEventListener("keydown", prime, { capture: true, passive: true });
