// One message from the widget's email form, in the inbox's right pane: who
// sent it and from where (browser, OS, page, referrer: automatic metadata),
// the message, the replies with the delivery state of each one's mail, the
// reply composer (with the canned responses' "/" completion, chat-canned.js),
// assignment, and close / reopen.
//
// GET /api/v1/offline-messages/{id} is called once when the message is
// opened: that read is the audited view. After that the pane follows the
// socket's news (view-offline-live.js): state and assignment changes, and
// each reply's mail moving queued -> sent / failed / uncertain. A reply that
// another agent wrote meanwhile is not fetched by itself (that would be
// another audited view); a note offers to show it.
//
// Everything the visitor wrote (name, email, message, and the browser, OS,
// page and referrer their browser reported) becomes text nodes only.

import { api } from "./api.js";
import { h, messageBox, replace, uid } from "./dom.js";
import { N_, languageLabel, t } from "./i18n.js";
import { timeElement, urlOrText, withVersion } from "./chat-text.js";
import { attachCanned } from "./chat-canned.js";

export const STATE_LABELS = { new: N_("New"), answered: N_("Answered"), closed: N_("Closed") };
const REASONS = {
  no_agent: N_("Nobody was online"),
  wait_timeout: N_("The visitor waited too long in the chat"),
  agents_left: N_("The agents went offline during the chat"),
  transcript_reply: N_("The visitor replied by email to a chat transcript"),
};
// why an attachment of a reply by email was not taken (chat/attachments.py REFUSALS, the upload checks)
const REFUSED = {
  unsupported_type: N_("not an image or a PDF"),
  too_large: N_("too large"),
  too_many_pixels: N_("too many pixels"),
  unreadable: N_("could not be read"),
  empty: N_("empty"),
  not_a_file: N_("not a file"),
};
const DELIVERY = {
  queued: N_("Queued for sending"),
  sending: N_("Sending"),
  sent: N_("Sent"),
  refused: N_("Refused by the mail server"),
  failed: N_("Not delivered"),
  uncertain: N_("Delivery uncertain"),
  not_sent: N_("Not sent"),
};
const RANK = { queued: 0, sending: 1, sent: 2, refused: 2, failed: 2, uncertain: 2, not_sent: 2 };

/** A mail's delivery state as people read it (also the register's views). */
export function deliveryLabel(state) {
  return DELIVERY[state] ? t(DELIVERY[state]) : String(state);
}

export function stateLabel(state) {
  return STATE_LABELS[state] ? t(STATE_LABELS[state]) : String(state);
}

function fact(label, value, testid) {
  const empty = value === null || value === undefined || value === "";
  return [
    h("dt", { text: label }),
    h("dd", { testid, class: empty ? "muted" : "break" }, empty ? t("Not known") : value),
  ];
}

/**
 * Open message `id` in `pane`. opts: {me (the signed-in account), announce,
 * back(), changed(summary) (the list should know), focus}.
 * Returns {id, apply(frame), focus(), destroy()}.
 */
export function openMessage(pane, id, opts) {
  let message = null; // the detail as the server last said, plus live changes
  let destroyed = false;
  let tick = 0; // counts live frames, to tell which news is newer than an answer
  const live = new Map(); // outbox id -> {state, error, tick}
  const unknownReplies = new Set();
  let visitorReplied = false; // an "offline" frame said a reply by email arrived: not fetched by itself
  const headingId = uid("offline-title");

  const box = messageBox("error");
  const note = messageBox("info");
  const input = h("textarea", { id: uid("reply"), rows: "6", testid: "offline-reply-input", maxlength: "20000" });
  const send = h("button", { type: "submit", class: "primary", testid: "offline-reply-send", text: t("Send reply") });
  const composerHint = h("p", { class: "hint", id: uid("hint") });
  input.setAttribute("aria-describedby", composerHint.id);
  const composer = h("form", { class: "offline-composer", novalidate: true },
    h("label", { for: input.id, class: "offline-composer-label", text: t("Reply by email") }),
    composerHint, input, box.el, h("div", { class: "actions" }, send));
  composer.addEventListener("submit", (event) => {
    event.preventDefault();
    reply();
  });
  // canned responses: "/" at the start, as in the chat's reply box (chat-canned.js);
  // {visitor_name} is the name the person gave on the form
  attachCanned(composer, input, () => ({
    language: message && message.language,
    visitorName: (message && message.name) || null,
    agentName: opts.me().account.name,
  }));

  pane.setAttribute("aria-labelledby", headingId);
  replace(pane, h("p", { class: "offline-loading muted", role: "status", text: t("Loading…") }));
  load();

  async function load() {
    try {
      const detail = await api("GET", `/api/v1/offline-messages/${id}`);
      if (destroyed) return;
      message = detail;
      draw();
      if (opts.focus) focus();
    } catch (failure) {
      if (destroyed || failure.handled) return;
      replace(pane, h("div", { class: "offline-missing" },
        h("h2", { id: headingId, tabindex: "-1", text: t("Message") }),
        h("p", { class: "message error", role: "alert", text: failure.message }),
        backButton()));
    }
  }

  function backButton() {
    const button = h("button", { type: "button", class: "quiet small offline-back", text: t("Back to the list") });
    button.addEventListener("click", () => opts.back());
    return button;
  }

  function focus() {
    const heading = pane.querySelector(`#${headingId}`);
    if (heading) heading.focus();
  }

  // -- drawing ------------------------------------------------------------------------
  function draw() {
    const m = message;
    const heading = h("h2", { id: headingId, class: "offline-title", tabindex: "-1", text: m.name });
    const parts = [
      backButton(),
      h("header", { class: "offline-header" },
        h("div", { class: "offline-heading" }, heading,
          h("span", { class: ["badge", `state-${m.state}`], testid: "offline-state", text: stateLabel(m.state) }),
          m.objection ? h("span", { class: "badge objection", testid: "offline-objection",
            title: t("This person has objected to direct marketing."), text: t("No marketing") }) : null),
        h("p", { class: "offline-email break", testid: "offline-email", text: m.email }),
        h("div", { class: "offline-actions" }, assignment(m), stateButton(m))),
      note.el,
      h("section", { class: "offline-section", "aria-label": t("The message") },
        h("p", { class: "offline-received muted" }, t("Received"), " ", timeElement(m.created_at)),
        m.reason === "transcript_reply" && !m.body
          ? h("p", { class: "offline-body muted", testid: "offline-body",
            text: t("A reply by email to the transcript of a chat. The replies are below.") })
          : h("div", { class: "offline-body", testid: "offline-body", text: m.body })),
      metadata(m),
      replies(m),
      composerSection(m),
    ];
    replace(pane, ...parts);
    drawNote();
  }

  function assignment(m) {
    const myId = opts.me().account.id;
    const mine = m.assigned_agent_id === myId;
    const who = m.assigned_agent_id === null ? t("Not assigned")
      : mine ? t("Assigned to you")
        : t("Assigned to {name}", { name: m.assigned_agent_name || t("another agent") });
    const wrap = h("p", { class: "offline-assignee", testid: "offline-assignee" }, h("span", { text: who }));
    if (!mine) {
      const take = h("button", { type: "button", class: "small", testid: "offline-assign-me", text: t("Assign to me") });
      take.addEventListener("click", () => act(take, "assign", { agent_id: myId }, t("Assigned to you.")));
      wrap.append(" ", take);
    }
    if (m.assigned_agent_id !== null) {
      const drop = h("button", { type: "button", class: "small quiet", testid: "offline-unassign", text: t("Unassign") });
      drop.addEventListener("click", () => act(drop, "assign", { agent_id: null }, t("No longer assigned.")));
      wrap.append(" ", drop);
    }
    return wrap;
  }

  function stateButton(m) {
    const closed = m.state === "closed";
    const button = h("button", { type: "button", class: "small", testid: closed ? "offline-reopen" : "offline-close",
      text: closed ? t("Reopen") : t("Close") });
    button.addEventListener("click", () => act(button, closed ? "reopen" : "close", undefined,
      closed ? t("The message was reopened.") : t("The message was closed.")));
    return button;
  }

  function metadata(m) {
    const conversation = m.conversation_id
      ? h("a", { href: `#/conversations/${m.conversation_id}`, testid: "offline-conversation",
        text: t("Conversation {id}", { id: m.conversation_id }) })
      : null;
    return h("section", { class: "offline-section offline-meta", testid: "offline-meta",
      "aria-labelledby": `${headingId}-meta` },
    h("h3", { id: `${headingId}-meta`, text: t("Details") }),
    h("dl", { class: "facts" },
      fact(t("Email"), m.email, "offline-meta-email"),
      fact(t("Why the form"), REASONS[m.reason] ? t(REASONS[m.reason]) : m.reason, "offline-reason"),
      fact(t("Browser"), withVersion(m.browser, m.browser_version), "offline-browser"),
      fact(t("Operating system"), withVersion(m.os, m.os_version), "offline-os"),
      fact(t("Language"), m.language ? languageLabel(m.language) : null, "offline-language"),
      fact(t("Page"), m.page_url ? urlOrText(m.page_url) : null, "offline-page"),
      fact(t("Referrer"), m.referrer ? urlOrText(m.referrer) : null, "offline-referrer"),
      fact(t("Chat before the form"), conversation, "offline-conversation-id"),
      fact(t("Visitor id"), m.visitor, "offline-visitor")));
  }

  function replies(m) {
    // the agents' answers and the visitor's replies by email, one thread in time order
    const thread = [...m.replies.map((r) => ({ at: r.created_at, el: () => replyItem(r) })),
      ...(m.email_replies || []).map((r) => ({ at: r.created_at, el: () => emailReplyItem(r, m) }))]
      .sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0));
    const list = thread.length
      ? h("ol", { class: "offline-replies", testid: "offline-replies" }, thread.map((x) => x.el()))
      : h("p", { class: "muted", testid: "offline-replies", text: t("No replies yet.") });
    return h("section", { class: "offline-section", "aria-labelledby": `${headingId}-replies` },
      h("h3", { id: `${headingId}-replies`, text: t("Replies") }), list);
  }

  function replyItem(r) {
    const item = h("li", { class: "offline-reply", testid: "offline-reply", dataset: { id: r.id } },
      h("p", { class: "offline-reply-meta" },
        h("span", { class: "offline-reply-author", text: r.agent_name || t("An agent") }), " · ",
        timeElement(r.created_at)),
      h("div", { class: "offline-reply-body", text: r.body }),
      delivery(r));
    return item;
  }

  // The visitor's reply by email: its new text, its files, the attachments not taken, and a
  // warning when it came from another address than the one the answer went to.
  function emailReplyItem(r, m) {
    const who = r.from_name ? `${r.from_name} <${r.from}>` : r.from;
    const item = h("li", { class: ["offline-reply", "offline-email-reply"], testid: "offline-email-reply",
      dataset: { id: r.id, differs: r.sender_differs ? "true" : "false" } },
    h("p", { class: "offline-reply-meta" },
      h("span", { class: "offline-reply-author", text: who }), " · ",
      h("span", { text: t("Replied by email") }), " · ", timeElement(r.created_at)));
    if (r.sender_differs) {
      item.append(h("p", { class: "offline-sender-differs", testid: "offline-sender-differs", role: "note" },
        t("Sent from {sender}, not from {email}, where the answer went. Check who this is before you answer.",
          { sender: r.from, email: m.email })));
    }
    item.append(r.body
      ? h("div", { class: "offline-reply-body", text: r.body })
      : h("p", { class: "offline-reply-body muted", text: t("No new text (only the quoted earlier messages).") }));
    if (r.files.length) {
      item.append(h("ul", { class: "offline-email-files", "aria-label": t("Attachments") },
        r.files.map((f) => h("li", {},
          h("a", { href: f.url, target: "_blank", rel: "noopener", testid: "offline-email-file", text: f.name })))));
    }
    for (const x of r.refused) {
      item.append(h("p", { class: "offline-email-refused muted", testid: "offline-email-refused" },
        t("Attachment {name} was not taken: {reason}.",
          { name: x.name, reason: REFUSED[x.code] ? t(REFUSED[x.code]) : x.code })));
    }
    return item;
  }

  function delivery(r) {
    const state = r.delivery;
    const wrap = h("p", { class: ["delivery", `delivery-${state}`], testid: "offline-delivery",
      dataset: { delivery: state, outbox: r.outbox_id ?? "" } },
    h("span", { class: "delivery-dot", "aria-hidden": "true" }),
    h("span", { class: "delivery-text", text: DELIVERY[state] ? t(DELIVERY[state]) : state }));
    if ((state === "failed" || state === "refused") && r.error) {
      wrap.append(h("span", { class: "delivery-error", text: ` (${r.error})` }));
    } else if (state === "uncertain") wrap.append(h("span", { class: "delivery-error",
      text: ` ${t("Sending was cut off; it may have arrived.")}` }));
    else if (state === "queued" && r.error) {
      wrap.append(h("span", { class: "delivery-error muted",
        text: ` ${t("Will try again. Last attempt: {error}", { error: r.error })}` }));
    }
    if (["failed", "refused", "uncertain"].includes(state) && r.outbox_id) {
      const again = h("button", { type: "button", class: "small", testid: "offline-retry", text: t("Send again") });
      again.addEventListener("click", () => retry(r, again));
      wrap.append(" ", again);
    }
    return wrap;
  }

  function composerSection(m) {
    const closed = m.state === "closed";
    composerHint.textContent = closed ? t("This message is closed. Reopen it to answer.")
      : (m.email_replies || []).length
        ? t("The reply goes by email to {email}, with the visitor's latest reply quoted.", { email: m.email })
        : t("The reply goes by email to {email}, with the original message quoted.", { email: m.email });
    input.disabled = closed;
    send.disabled = closed;
    return h("section", { class: "offline-section" }, composer);
  }

  function redrawReplies() {
    if (!message) return;
    const old = pane.querySelector(".offline-replies, p[data-testid=offline-replies]");
    const section = old ? old.closest("section") : null;
    if (section) section.replaceWith(replies(message));
  }

  function redrawHeader() {
    if (!message) return;
    const focusTestid = document.activeElement && pane.contains(document.activeElement)
      ? document.activeElement.dataset.testid : null;
    const had = input.value;
    const focusedInput = document.activeElement === input;
    draw();
    input.value = had;
    if (focusedInput) input.focus();
    else if (focusTestid) {
      const again = pane.querySelector(`[data-testid="${focusTestid}"]`);
      if (again) again.focus();
    }
  }

  function drawNote() {
    if (unknownReplies.size || visitorReplied) {
      note.el.replaceChildren(document.createTextNode(`${visitorReplied ? t("The visitor has replied by email.")
        : t("Someone else has replied to this message.")} `));
      const show = h("button", { type: "button", class: "small", testid: "offline-show-latest",
        text: t("Show the latest") });
      show.addEventListener("click", () => {
        unknownReplies.clear();
        visitorReplied = false;
        note.clear();
        load();
      });
      note.el.append(show);
      note.el.hidden = false;
    } else {
      note.clear();
    }
  }

  // The answer to a request, with anything the socket said since it was sent.
  function adopt(detail, sentAt) {
    for (const r of detail.replies) {
      const news = r.outbox_id ? live.get(r.outbox_id) : null;
      if (news && (news.tick > sentAt || RANK[news.state] > RANK[r.delivery])) {
        r.delivery = news.state;
        r.error = news.error;
      }
    }
    message = detail;
  }

  // -- actions -----------------------------------------------------------------------------
  async function reply() {
    box.clear();
    const body = input.value.trim();
    if (!body) {
      box.show(t("Write a reply."));
      input.focus();
      return;
    }
    send.disabled = true;
    input.setAttribute("aria-busy", "true");
    const sentAt = tick;
    try {
      const detail = await api("POST", `/api/v1/offline-messages/${id}/reply`, { body });
      if (destroyed) return;
      adopt(detail, sentAt);
      input.value = "";
      draw();
      opts.changed(message);
      opts.announce(t("Reply saved. It is sent by email now."));
      input.focus();
    } catch (failure) {
      if (destroyed || failure.handled) return;
      box.show(failure.message);
      input.focus();
    } finally {
      send.disabled = Boolean(message && message.state === "closed");
      input.removeAttribute("aria-busy");
    }
  }

  async function act(button, action, body, done) {
    box.clear();
    button.disabled = true;
    try {
      const summary = await api("POST", `/api/v1/offline-messages/${id}/${action}`, body);
      if (destroyed) return;
      merge(summary);
      redrawHeader();
      opts.changed(message);
      opts.announce(done);
    } catch (failure) {
      if (destroyed || failure.handled) return;
      button.disabled = false;
      note.el.replaceChildren(document.createTextNode(failure.message));
      note.el.hidden = false;
    }
  }

  async function retry(r, button) {
    button.disabled = true;
    try {
      await api("POST", `/api/v1/outbox/${r.outbox_id}/retry`);
      if (destroyed) return;
      tick += 1;
      live.set(r.outbox_id, { state: "queued", error: null, tick });
      r.delivery = "queued";
      r.error = null;
      redrawReplies();
      opts.announce(t("The mail is queued to be sent again."));
    } catch (failure) {
      if (destroyed || failure.handled) return;
      button.disabled = false;
      note.el.replaceChildren(document.createTextNode(failure.message));
      note.el.hidden = false;
    }
  }

  // A summary (from an action's answer or from the socket) over what we have.
  function merge(summary) {
    if (!message || summary.id !== message.id) return;
    const sameAgent = summary.assigned_agent_id === message.assigned_agent_id;
    const me = opts.me().account;
    let name = summary.assigned_agent_name;
    if (!name && summary.assigned_agent_id === me.id) name = me.name;
    if (!name && sameAgent) name = message.assigned_agent_name;
    message = { ...message, state: summary.state, assigned_agent_id: summary.assigned_agent_id,
      assigned_agent_name: name || null };
  }

  // -- live news ---------------------------------------------------------------------------
  function apply(frame) {
    if (destroyed) return;
    tick += 1;
    if (frame.type === "outbox" && frame.outbox) {
      const o = frame.outbox;
      live.set(o.id, { state: o.state, error: o.error, tick });
      if (!message || o.offline_message_id !== id) return;
      const r = message.replies.find((x) => x.outbox_id === o.id);
      if (r) {
        r.delivery = o.state;
        r.error = o.error;
        redrawReplies();
      } else if (pane.querySelector("[aria-busy=true]") === null) {
        unknownReplies.add(o.id);
        drawNote();
      }
    } else if (frame.type === "offline" && frame.message && message && frame.message.id === id) {
      const before = `${message.state}/${message.assigned_agent_id}`;
      merge(frame.message);
      if (`${message.state}/${message.assigned_agent_id}` !== before) redrawHeader();
      if (frame.new) { // a reply by email came into this thread (chat/email_replies.py)
        visitorReplied = true;
        drawNote();
      }
    }
  }

  return {
    id,
    apply,
    focus,
    destroy() {
      destroyed = true;
    },
  };
}
