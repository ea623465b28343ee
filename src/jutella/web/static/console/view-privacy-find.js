// Find a person (#/register): one search, the records found grouped by kind
// with the match highlighted, a checkbox on each (the contact person confirms
// which records are the person's), and what can be done with that selection:
// the access copy, objection, restriction and erasure. Correcting a record
// opens under it (view-privacy-rectify.js).

import { api } from "./api.js";
import { checkbox, field, h, messageBox, replace, uid } from "./dom.js";
import { N_, formatDateTime, lang, languages, t } from "./i18n.js";
import { download, highlighted } from "./view-privacy-common.js";
import { recordDetail } from "./view-privacy-rectify.js";

const GROUPS = [
  { kind: "conversation", key: "conversations", title: N_("Chat conversations") },
  { kind: "offline_message", key: "offline_messages", title: N_("Offline messages") },
  { kind: "email", key: "emails", title: N_("Emails sent") },
];

const WHERE = {
  "conversation:message": N_("In a chat message"),
  "conversation:visitor": N_("In the visitor id"),
  "conversation:note": N_("In an internal note"),
  "conversation:page": N_("In the page address"),
  "conversation:referrer": N_("In the referring page"),
  "conversation:attachment": N_("In an attachment's name"),
  "conversation:rating_comment": N_("In the rating comment"),
  "conversation:transcript_email": N_("In a transcript address"),
  "offline_message:page": N_("In the page address"),
  "offline_message:referrer": N_("In the referring page"),
  "offline_message:name": N_("In the name"),
  "offline_message:email": N_("In the email address"),
  "offline_message:body": N_("In the message"),
  "offline_message:reply": N_("In a reply"),
  "offline_message:email_reply": N_("In a reply by email"),
  "offline_message:sender": N_("In the sender of a reply by email"),
  "offline_message:attachment": N_("In an attachment's name"),
  "offline_message:visitor": N_("In the visitor id"),
  "email:recipient": N_("In the recipient"),
  "email:body": N_("In the email text"),
};

// The erasure receipt's kinds (privacy/erasure.py KINDS), in its order.
export const COUNT_LABELS = {
  conversations: N_("Chat conversations"),
  messages: N_("Chat messages"),
  notes: N_("Internal notes"),
  label_links: N_("Labels on conversations"),
  attachments: N_("Attachments"),
  attachment_files: N_("Attachment files (their bytes)"),
  ratings: N_("Ratings and their comments"),
  transcript_emails: N_("Addresses a transcript was emailed to"),
  offline_messages: N_("Offline messages"),
  offline_replies: N_("Replies to offline messages"),
  email_replies: N_("Replies by email"),
  email_reply_files: N_("Files of replies by email"),
  reply_addresses: N_("Reply addresses of sent mails"),
  metadata: N_("Automatic data (browser, system, pages)"),
  emails: N_("Emails"),
  visitors: N_("Visitors"),
  flags: N_("Restrictions naming erased records"),
  offline_messages_unlinked: N_("Kept offline messages unlinked from an erased chat"),
  offline_replies_unlinked: N_("Kept replies unlinked from an erased email"),
};

const EMAIL_SHAPE = /^[^\s@…]+@[^\s@…]+\.[^\s@…]+$/u;

function recordTitle(kind, id) {
  if (kind === "conversation") return t("Chat conversation {id}", { id });
  if (kind === "offline_message") return t("Offline message {id}", { id });
  return t("Email {id}", { id });
}

/** The same visitor / the same email: how a related record was found. */
function relatedLabel(match) {
  return match.field === "visitor" ? t("Same visitor") : t("Same email");
}

export function renderFind(container, ctx) {
  const records = new Map(); // "kind:id" -> record
  const known = { objection: null, restriction: null }; // flags learned this session

  // -- the search ---------------------------------------------------------------------
  const queryInput = h("input", { type: "text", name: "q", minlength: "3", maxlength: "200", required: true,
    autocomplete: "off", spellcheck: "false", testid: "pv-query" });
  const searchError = messageBox("error");
  const searchForm = h("form", { class: "pv-search", role: "search", novalidate: true },
    field(t("Email, name, student number, phone or visitor id"), queryInput,
      { hint: t("At least 3 characters. Capital and small letters are the same.") }).row,
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary", text: t("Find"),
      testid: "pv-find" })));
  const summary = h("p", { class: "summary", role: "status", testid: "pv-summary", tabindex: "-1" });
  const resultsSlot = h("div", { class: "pv-results-slot", testid: "pv-results" });
  const outcome = h("div", { class: "pv-outcome", testid: "pv-outcome" });

  // -- the actions ------------------------------------------------------------------------
  const selectedLine = h("p", { class: "pv-selected", testid: "pv-selected" });
  const flagLine = h("p", { class: "pv-flags muted", testid: "pv-flags" });
  const actionError = messageBox("error");
  const actionStatus = messageBox("success");

  const langSelect = h("select", { class: "compact", testid: "pv-copy-lang" },
    languages.map((l) => h("option", { value: l.code, lang: l.code, text: l.name, selected: l.code === lang })));
  const jsonButton = h("button", { type: "button", text: t("Access copy (JSON)"), testid: "pv-copy-json" });
  const htmlButton = h("button", { type: "button", text: t("Printable copy (HTML)"), testid: "pv-copy-html" });
  const copyBox = h("fieldset", { class: "pv-box" }, h("legend", { text: t("Access copy") }),
    h("p", { class: "hint", text: t("Everything held in the selected records, for the person (articles 15 and 20).") }),
    field(t("Language of the copy"), langSelect).row,
    h("div", { class: "actions" }, jsonButton, htmlButton));

  const emailInput = h("input", { type: "email", name: "email", maxlength: "320", autocomplete: "off",
    spellcheck: "false", testid: "pv-objection-email" });
  const objectButton = h("button", { type: "button", text: t("Object to direct marketing"),
    testid: "pv-object" });
  const unobjectButton = h("button", { type: "button", class: "quiet", text: t("Withdraw the objection"),
    testid: "pv-unobject" });
  const objectionBox = h("fieldset", { class: "pv-box" }, h("legend", { text: t("Objection to direct marketing") }),
    field(t("The person’s email address"), emailInput,
      { hint: t("Kept only as a one-way fingerprint, so the objection outlives an erasure.") }).row,
    h("div", { class: "actions" }, objectButton, unobjectButton));

  const restrictButton = h("button", { type: "button", text: t("Restrict processing"), testid: "pv-restrict" });
  const liftButton = h("button", { type: "button", text: t("Lift restriction"), testid: "pv-lift" });
  const restrictionBox = h("fieldset", { class: "pv-box" }, h("legend", { text: t("Restriction of processing") }),
    h("p", { class: "hint", text: t("While restricted, the person’s chats and messages are hidden from everyone without the contact person’s role.") }),
    h("div", { class: "actions" }, restrictButton, liftButton));

  const eraseButton = h("button", { type: "button", class: "danger-outline", text: t("Erase…"), testid: "pv-erase" });
  const eraseBox = h("fieldset", { class: "pv-box pv-box-erase" }, h("legend", { text: t("Erasure") }),
    h("p", { class: "hint", text: t("Deletes the selected records for good. You confirm on the next step.") }),
    h("div", { class: "actions" }, eraseButton));

  const actionsTitle = uid("h");
  const actions = h("section", { class: "panel-section pv-actions", hidden: true, "aria-labelledby": actionsTitle,
    testid: "pv-actions" },
  h("h2", { id: actionsTitle, text: t("With the selected records") }),
  selectedLine, flagLine, actionError.el, actionStatus.el,
  h("div", { class: "pv-boxes" }, copyBox, objectionBox, restrictionBox, eraseBox));

  const confirmSlot = h("div", { class: "pv-confirm-slot" });

  // -- selection ---------------------------------------------------------------------------
  function selection() {
    const sel = { conversations: [], offline_messages: [], emails: [] };
    for (const record of records.values()) {
      if (record.checkbox.checked) sel[GROUPS.find((g) => g.kind === record.kind).key].push(record.id);
    }
    return sel;
  }

  function selectedCount(sel) {
    return sel.conversations.length + sel.offline_messages.length + sel.emails.length;
  }

  function drawSelection() {
    const sel = selection();
    const none = selectedCount(sel) === 0;
    selectedLine.textContent = none ? t("Nothing is selected. Check the records that belong to the person.")
      : t("Selected: chat conversations {conversations}, offline messages {offline}, emails sent {emails}.", {
        conversations: sel.conversations.length, offline: sel.offline_messages.length, emails: sel.emails.length,
      });
    for (const b of [jsonButton, htmlButton, restrictButton, liftButton, eraseButton]) b.disabled = none;
    const hasEmail = emailInput.value.trim() !== "";
    objectButton.disabled = unobjectButton.disabled = !hasEmail;
  }

  function drawFlags() {
    const state = (value) => (value === null ? t("not checked") : value ? t("yes") : t("no"));
    flagLine.textContent = t("Objection to direct marketing: {objection}. Restriction of processing: {restriction}.", {
      objection: state(known.objection), restriction: state(known.restriction),
    });
    for (const record of records.values()) drawRecordFlags(record);
  }

  function drawRecordFlags(record) {
    const badges = [];
    if (record.flags.objection) {
      badges.push(h("span", { class: "badge pv-flag", testid: "pv-flag-objection", text: t("Objects to direct marketing") }));
    }
    if (record.flags.restricted) {
      badges.push(h("span", { class: "badge pv-flag", testid: "pv-flag-restricted", text: t("Processing restricted") }));
    }
    replace(record.flagSlot, badges);
  }

  /** What a record's detail said about the flags (rectify panel). */
  function learnFlags(record, flags) {
    if ("restricted" in flags) {
      record.flags.restricted = flags.restricted;
      if (record.checkbox.checked && known.restriction !== true) known.restriction = flags.restricted;
    }
    if ("objection" in flags) {
      record.flags.objection = flags.objection;
      if (record.checkbox.checked && known.objection !== true) known.objection = flags.objection;
    }
    drawFlags();
  }

  // -- results ------------------------------------------------------------------------------
  function matchLine(match) {
    const where = WHERE[`${match.kind}:${match.field}`];
    if (match.related) {
      const how = match.field === "visitor" ? t("Found through the same visitor") : t("Found through the same email address");
      return h("li", { class: "pv-match" },
        h("span", { class: "pv-where", text: `${how}: ` }),
        h("span", { class: "pv-snippet break", text: match.text }));
    }
    return h("li", { class: "pv-match" },
      h("span", { class: "pv-where", text: `${where ? t(where) : match.field}: ` }),
      h("span", { class: "pv-snippet break", testid: "pv-snippet" }, highlighted(match.text, match.start, match.end)));
  }

  function recordItem(record) {
    const direct = record.matches.some((m) => !m.related);
    const { row, input } = checkbox(recordTitle(record.kind, record.id), { checked: direct,
      testid: "pv-select" });
    record.checkbox = input;
    input.addEventListener("change", drawSelection);
    record.flagSlot = h("span", { class: "pv-flag-slot" });
    const relatedMatch = record.matches.find((m) => m.related);
    const head = h("div", { class: "pv-record-head" }, row,
      h("time", { class: "muted", datetime: record.at, text: formatDateTime(record.at) }),
      direct ? null : h("span", { class: "badge pv-related", testid: "pv-related", text: relatedLabel(relatedMatch) }),
      record.flagSlot);
    const shown = record.matches.filter((m) => !m.related).concat(direct ? [] : [relatedMatch]);
    const matchList = h("ul", { class: "pv-matches" }, shown.map(matchLine));
    const item = h("li", { class: ["pv-record", direct ? "" : "is-related"], testid: "pv-result",
      dataset: { kind: record.kind, id: record.id, related: String(!direct) } },
    head, matchList);
    // After a correction the matching text above is out of date (and may be
    // the very text that was corrected): it goes.
    const corrected = () => replace(matchList, h("li", { class: "pv-match muted pv-stale", testid: "pv-stale",
      text: t("Corrected. Search again to see the current matches.") }));
    if (record.kind === "conversation" || record.kind === "offline_message") {
      const detail = h("div", { class: "pv-detail", hidden: true });
      const open = h("button", { type: "button", class: "small", text: t("Show and correct"),
        testid: "pv-open", "aria-expanded": "false" });
      let loaded = false;
      open.addEventListener("click", () => {
        const opening = detail.hidden;
        detail.hidden = !opening;
        open.setAttribute("aria-expanded", String(opening));
        open.textContent = opening ? t("Hide") : t("Show and correct");
        if (opening && !loaded) {
          loaded = true;
          recordDetail(detail, record, { onFlags: (flags) => learnFlags(record, flags), onCorrected: corrected });
        }
      });
      item.append(h("div", { class: "actions pv-record-actions" }, open), detail);
    }
    drawRecordFlags(record);
    return item;
  }

  function suggestEmail(query, matches) {
    if (EMAIL_SHAPE.test(query)) return query;
    const fields = ["offline_message:email", "email:recipient", "offline_message:visitor"];
    const candidates = matches.filter((m) => fields.includes(`${m.kind}:${m.field}`) && EMAIL_SHAPE.test(m.text));
    const best = candidates.find((m) => !m.related) || candidates[0];
    return best ? best.text : "";
  }

  function drawResults(query, matches) {
    records.clear();
    known.objection = known.restriction = null;
    for (const m of matches) {
      const key = `${m.kind}:${m.id}`;
      if (!records.has(key)) {
        records.set(key, { kind: m.kind, id: m.id, at: m.at, matches: [], flags: {} });
      }
      const record = records.get(key);
      record.matches.push(m);
      if (m.at < record.at) record.at = m.at;
    }
    outcome.replaceChildren();
    confirmSlot.replaceChildren();
    if (!records.size) {
      summary.textContent = t("Nothing found for “{query}”.", { query });
      resultsSlot.replaceChildren();
      actions.hidden = true;
      return;
    }
    const direct = [...records.values()].filter((r) => r.matches.some((m) => !m.related)).length;
    summary.textContent = t("Records found: {total} ({direct} matching the search, {related} related). Check the ones that belong to the person.", {
      total: records.size, direct, related: records.size - direct,
    });
    const groups = GROUPS.map((group) => {
      const list = [...records.values()].filter((r) => r.kind === group.kind)
        .sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : a.id - b.id));
      if (!list.length) return null;
      const titleId = uid("h");
      return h("section", { class: "pv-group", "aria-labelledby": titleId, testid: `pv-group-${group.kind}` },
        h("h3", { id: titleId, text: `${t(group.title)} (${list.length})` }),
        h("ul", { class: "pv-records" }, list.map(recordItem)));
    });
    replace(resultsSlot, groups);
    emailInput.value = suggestEmail(query, matches);
    actionError.clear();
    actionStatus.clear();
    actions.hidden = false;
    drawSelection();
    drawFlags();
  }

  async function search(query) {
    searchError.clear();
    resultsSlot.setAttribute("aria-busy", "true");
    summary.textContent = t("Searching…");
    try {
      const matches = await api("GET", `/api/v1/privacy/subjects?q=${encodeURIComponent(query)}`);
      drawResults(query, matches);
    } catch (failure) {
      summary.textContent = "";
      if (!failure.handled) searchError.show(failure.message);
    } finally {
      resultsSlot.removeAttribute("aria-busy");
    }
  }

  searchForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const query = queryInput.value.split(/\s+/).filter(Boolean).join(" ");
    if (query.length < 3) {
      searchError.show(t("Search with at least 3 characters."));
      queryInput.focus();
      return;
    }
    search(query);
  });

  // -- acting on the selection ----------------------------------------------------------------
  async function act(button, work) {
    actionError.clear();
    actionStatus.clear();
    const was = button.disabled;
    button.disabled = true;
    button.setAttribute("aria-busy", "true");
    try {
      const message = await work();
      if (message) {
        actionStatus.show(message);
        ctx.announce(message);
      }
    } catch (failure) {
      if (!failure.handled) actionError.show(failure.message);
    } finally {
      button.disabled = was;
      button.removeAttribute("aria-busy");
      drawSelection();
    }
  }

  function copy(format) {
    const button = format === "json" ? jsonButton : htmlButton;
    act(button, async () => {
      const name = await download(`/api/v1/privacy/export?format=${format}&lang=${encodeURIComponent(langSelect.value)}`,
        selection(), ctx.me.csrf_token, `access-copy.${format}`);
      return t("Downloaded {file}.", { file: name });
    });
  }
  jsonButton.addEventListener("click", () => copy("json"));
  htmlButton.addEventListener("click", () => copy("html"));

  function objection(on) {
    const email = emailInput.value.trim();
    act(on ? objectButton : unobjectButton, async () => {
      await api("POST", "/api/v1/privacy/flags", { kind: "objection", on, email });
      known.objection = on;
      for (const record of records.values()) {
        if (record.kind !== "conversation" && record.checkbox.checked) record.flags.objection = on;
      }
      drawFlags();
      return on ? t("The objection to direct marketing is recorded for {email}.", { email })
        : t("The objection of {email} is withdrawn.", { email });
    });
  }
  objectButton.addEventListener("click", () => objection(true));
  unobjectButton.addEventListener("click", () => objection(false));
  emailInput.addEventListener("input", drawSelection);

  function restriction(on) {
    act(on ? restrictButton : liftButton, async () => {
      await api("POST", "/api/v1/privacy/flags", { kind: "restriction", on, ...selection() });
      known.restriction = on;
      for (const record of records.values()) {
        if (record.checkbox.checked && record.kind !== "email") record.flags.restricted = on;
      }
      drawFlags();
      return on ? t("Processing of the selected records is restricted.") : t("The restriction is lifted.");
    });
  }
  restrictButton.addEventListener("click", () => restriction(true));
  liftButton.addEventListener("click", () => restriction(false));

  // -- erasure: a separate, deliberate step ---------------------------------------------------
  function openErase() {
    const sel = selection();
    if (!selectedCount(sel)) return;
    const word = t("ERASE");
    const titleId = uid("h");
    const wordInput = h("input", { type: "text", autocomplete: "off", spellcheck: "false", testid: "pv-erase-word" });
    const finalButton = h("button", { type: "button", class: "danger", disabled: true,
      text: t("Erase for good"), testid: "pv-erase-confirm" });
    const cancel = h("button", { type: "button", text: t("Cancel"), testid: "pv-erase-cancel" });
    const error = messageBox("error");
    const heading = h("h2", { id: titleId, tabindex: "-1", text: t("Erase the selected records?") });
    const panel = h("section", { class: "panel-section pv-erase", "aria-labelledby": titleId, testid: "pv-erase-panel" },
      heading,
      h("p", { class: "pv-warning", text: t("This cannot be undone. These will be deleted for good, with their search index entries:") }),
      h("ul", { class: "pv-counts", testid: "pv-erase-counts" },
        h("li", { text: t("Chat conversations, with all their messages: {n}", { n: sel.conversations.length }) }),
        h("li", { text: t("Offline messages, with their replies and the emails about them: {n}", { n: sel.offline_messages.length }) }),
        h("li", { text: t("Emails sent: {n}", { n: sel.emails.length }) })),
      h("p", { class: "muted", text: t("The audit log keeps a note that an erasure happened (who, when and how many records), without personal data.") }),
      field(t("To confirm, type {word}", { word }), wordInput).row,
      error.el,
      h("div", { class: "actions" }, finalButton, cancel));
    const matchesWord = () => wordInput.value.trim().toLocaleUpperCase(lang) === word.toLocaleUpperCase(lang);
    wordInput.addEventListener("input", () => { finalButton.disabled = !matchesWord(); });
    const lock = (locked) => {
      for (const record of records.values()) record.checkbox.disabled = locked;
    };
    const close = () => {
      confirmSlot.replaceChildren();
      lock(false);
      actions.hidden = false;
      eraseButton.focus();
    };
    cancel.addEventListener("click", close);
    finalButton.addEventListener("click", async () => {
      if (!matchesWord()) return;
      error.clear();
      finalButton.disabled = cancel.disabled = wordInput.disabled = true;
      try {
        const receipt = await api("POST", "/api/v1/privacy/erase", { ...sel, confirm: true });
        erased(receipt);
      } catch (failure) {
        finalButton.disabled = cancel.disabled = wordInput.disabled = false;
        if (!failure.handled) error.show(failure.message);
      }
    });
    actions.hidden = true;
    lock(true); // the panel erases exactly what it lists
    replace(confirmSlot, panel);
    heading.focus();
  }
  eraseButton.addEventListener("click", openErase);

  /** A receipt's id: a number, or "conversation:3" (what the automatic data belonged to) in words. */
  function receiptId(id) {
    const match = /^(conversation|offline_message):(\d+)$/.exec(String(id));
    return match ? recordTitle(match[1], match[2]) : String(id);
  }

  /** The receipt: every kind with something removed, with its count and ids. */
  function erased(receipt) {
    confirmSlot.replaceChildren();
    for (const [key, record] of [...records.entries()]) {
      if (record.checkbox.checked) records.delete(key);
    }
    resultsSlot.replaceChildren();
    actions.hidden = true;
    summary.textContent = "";
    const titleId = uid("h");
    const heading = h("h2", { id: titleId, tabindex: "-1", text: t("Erased") });
    replace(outcome, h("section", { class: "message success pv-erased", role: "status", "aria-labelledby": titleId },
      heading,
      h("dl", { class: "facts", testid: "pv-erased-counts" }, Object.entries(receipt.counts)
        .filter(([, value]) => value > 0).flatMap(([key, value]) => [
          h("dt", { text: COUNT_LABELS[key] ? t(COUNT_LABELS[key]) : key }),
          h("dd", { dataset: { count: key }, text: String(value) }),
        ])),
      h("details", { class: "pv-receipt-ids", testid: "pv-erased-ids" },
        h("summary", { text: t("Ids of the erased records") }),
        h("ul", {}, Object.entries(receipt.ids).filter(([, ids]) => ids.length).map(([key, ids]) => h("li", {
          dataset: { ids: key }, text: `${COUNT_LABELS[key] ? t(COUNT_LABELS[key]) : key}: ${ids.map(receiptId).join(", ")}` })))),
      // an object store that did not answer: those files' bytes are not gone yet (privacy/erasure.py files_pending)
      receipt.files_pending && receipt.files_pending.length ? h("p", { class: "message warning", testid: "pv-files-pending",
        text: t("Not yet deleted: {n} attachment file(s). The file store did not answer; they are deleted as soon as it does.",
          { n: receipt.files_pending.length }) }) : null,
      records.size ? h("p", { text: t("Records that were not selected were kept. Search again to see them.") }) : null));
    records.clear();
    ctx.announce(t("The selected records are erased."));
    heading.focus();
  }

  const searchTitle = uid("h");
  container.replaceChildren(
    h("section", { class: "panel-section", "aria-labelledby": searchTitle },
      h("h2", { id: searchTitle, text: t("Find a person") }),
      h("p", { class: "muted", text: t("Search for everything held about one person. Then check which of the records found are really theirs: only the checked ones are copied, corrected or erased.") }),
      searchForm, searchError.el),
    outcome, summary, resultsSlot, actions, confirmSlot);
}
