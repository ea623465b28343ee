// The audit log in words: each action, target and detail the server writes
// (accounts/audit.py record / record_shown) as a phrase in the console's
// language, never a code or JSON. tests/unit/test_audit_labels.py reads the
// action names in the Python sources and fails on one missing from ACTIONS
// (and on a literal detail key missing from DETAILS).

import { N_, t } from "./i18n.js";
import { roleList } from "./roles.js";
import { COUNT_LABELS } from "./view-privacy-find.js";
import { KINDS as REQUEST_KINDS, STATUS as REQUEST_STATUS } from "./view-privacy-requests.js";

export const ACTIONS = {
  "login": N_("Signed in"),
  "login.failed": N_("Sign-in failed"),
  "logout": N_("Signed out"),
  "account.setup": N_("First administrator set up"),
  "account.create": N_("Account created"),
  "account.reinvite": N_("New invitation link"),
  "account.invitation_accepted": N_("Invitation accepted"),
  "account.update": N_("Account changed"),
  "account.disable": N_("Account disabled"),
  "account.enable": N_("Account enabled"),
  "account.password_change": N_("Password changed"),
  "account.max_chats": N_("Chat limit of an agent changed"),
  "totp.enable": N_("Two-factor sign-in turned on"),
  "totp.disable": N_("Two-factor sign-in turned off"),
  "totp.recovery_code_used": N_("Recovery code used"),
  "settings.require_totp": N_("Two-factor requirement changed"),
  "audit.view": N_("Audit log viewed"),
  "audit.keyed": N_("Audit log sealed with its key"),
  "audit.pruned": N_("Old audit log entries removed"),
  "conversation.list": N_("Conversation list viewed"),
  "conversation.search": N_("Conversations searched"),
  "conversation.view": N_("Conversation viewed"),
  "conversation.transcript_email": N_("Transcript emailed"),
  "conversation.transfer": N_("Conversation transferred"),
  "attachment.view": N_("Attachment viewed"),
  "offline_message.list": N_("Offline messages listed"),
  "offline_message.view": N_("Offline message viewed"),
  "offline_message.assign": N_("Offline message assigned"),
  "offline_message.reply": N_("Offline message answered"),
  "offline_message.close": N_("Offline message closed"),
  "offline_message.reopen": N_("Offline message reopened"),
  "contacts.export": N_("Marketing contacts exported"),
  "department.create": N_("Department created"),
  "department.change": N_("Department changed"),
  "department.delete": N_("Department deleted"),
  "department.members": N_("Department members changed"),
  "subject.find": N_("Register searched for a person"),
  "subject.view": N_("Record viewed in the register"),
  "subject.export": N_("Access copy made"),
  "subject.rectify": N_("Record rectified"),
  "subject.erase": N_("Records erased"),
  "subject.objection.set": N_("Objection to direct marketing recorded"),
  "subject.objection.lift": N_("Objection to direct marketing withdrawn"),
  "subject.restriction.set": N_("Processing restricted"),
  "subject.restriction.lift": N_("Restriction of processing lifted"),
  "subject_request.list": N_("Register requests listed"),
  "subject_request.add": N_("Register request added"),
  "subject_request.update": N_("Register request changed"),
  "retention.run": N_("Old records deleted (retention)"),
  "hours.change": N_("Opening hours changed"),
  "site.add": N_("Site allowed to embed the chat"),
  "site.remove": N_("Site no longer allowed to embed the chat"),
  "token.create": N_("API token created"),
  "token.revoke": N_("API token revoked"),
  "token.use": N_("API token used"),
  "token.refused": N_("API token refused"),
  "prechat.change": N_("Pre-chat form changed"),
  "prechat.remove": N_("Pre-chat form removed"),
  "webhook.create": N_("Webhook added"),
  "webhook.update": N_("Webhook changed"),
  "webhook.delete": N_("Webhook removed"),
  "webhook.redeliver": N_("Webhook delivery sent again"),
  "site.rename": N_("Site renamed"),
  "site.profile": N_("Site's chat profile changed"),
  "site.logo": N_("Site's logo changed"),
  "site.logo_remove": N_("Site's logo removed"),
  "account.departments": N_("Departments of an account changed"),
  "sso.link": N_("Account tied to its identity at the identity provider"),
};

// how a sign-in without the sign-in form came about (accounts/actions.py open_session)
const VIA = { setup: N_("Signed in by setting up jutella"), invitation: N_("Signed in by accepting an invitation"),
  sso: N_("Through single sign-on") };

// target_type -> "<kind> {id}"
const TARGETS = {
  account: N_("Account {id}"),
  staff_account: N_("Account {id}"),
  conversation: N_("Conversation {id}"),
  attachment: N_("Attachment {id}"),
  offline_message: N_("Offline message {id}"),
  offline_reply: N_("Reply {id} to an offline message"),
  chat_event: N_("Chat message {id}"),
  department: N_("Department {id}"),
  site: N_("Site {id}"),
  webhook: N_("Webhook {id}"),
  webhook_delivery: N_("Webhook delivery {id}"),
  subject_request: N_("Register request {id}"),
  api_token: N_("API token {id}"),
  email_reply_file: N_("File {id} of a reply by email"),
};

// what record_shown names, by kind
const SHOWN = {
  conversations: N_("conversations {ids}"),
  messages: N_("messages {ids}"),
  offline_messages: N_("offline messages {ids}"),
  emails: N_("emails {ids}"),
  subject_requests: N_("register requests {ids}"),
};

const REASONS = {
  password: N_("wrong password"),
  disabled: N_("account disabled"),
  totp: N_("wrong two-factor code"),
  token_revoked: N_("the token was revoked"),
  token_expired: N_("the token had expired"),
  token_inactive: N_("the token's maker is disabled"),
  token_scope: N_("the token lacks the scope"),
  forbidden: N_("the token's maker lacks the role"),
  // single sign-on (accounts/oidc.py)
  unmapped: N_("no group of the identity provider gives a role"),
  sso_invalid: N_("the identity provider's answer did not verify"),
  sso_denied: N_("the identity provider did not sign the person in"),
  sso_unavailable: N_("the identity provider could not be reached"),
  sso_only: N_("password sign-in is off (single sign-on only)"),
  unverified: N_("the identity provider has not confirmed the email address"),
  no_email: N_("the identity provider gave no email address"),
  last_admin: N_("the last active administrator"),
};

const DEPARTMENT_FIELDS = { name: N_("name"), notify_email: N_("notification address"), position: N_("order"),
  // a site's profile (site.profile)
  colour: N_("colour"), launcher: N_("launcher position"), texts: N_("texts"), departments: N_("departments"),
  when_closed: N_("when closed") };
const RECORD_FIELDS = { name: N_("name"), email: N_("email address"), body: N_("text"), topic: N_("topic") };
const PRECHAT_FIELDS = { name: N_("name"), email: N_("email address"), topic: N_("topic") };
const WEBHOOK_FIELDS = { text: N_("text") };
const MORE_COUNTS = {
  audit_rows: N_("Audit log entries"),
  erasure_ledger: N_("Erasure ledger entries"),
  orphan_files: N_("Files without a record"),
  files_pending: N_("Files whose bytes are not deleted yet"),
  // PostgreSQL: an older database session kept old versions of the deleted rows past VACUUM's wait
  tables_pending_vacuum: N_("Tables still holding old versions of deleted rows"),
};

const yesNo = (value) => (value ? t("yes") : t("no"));
const ids = (list) => (list.length ? list.map((id) => `#${id}`).join(", ") : t("none"));
const countLabel = (key) => (COUNT_LABELS[key] ? t(COUNT_LABELS[key]) : MORE_COUNTS[key] ? t(MORE_COUNTS[key]) : key);
const counts = (object) => Object.entries(object).filter(([, n]) => n)
  .map(([key, n]) => t("{what}: {n}", { what: countLabel(key), n }));

/** One detail key of a row, in words: a list of phrases (none when there is nothing to say). */
export const DETAILS = {
  shown: (v) => {
    const parts = Object.entries(v).filter(([, list]) => list.length)
      .map(([kind, list]) => (SHOWN[kind] ? t(SHOWN[kind], { ids: ids(list) }) : `${kind} ${ids(list)}`));
    return [parts.length ? t("Shown: {what}", { what: parts.join("; ") }) : t("Nothing shown")];
  },
  results: (v) => [t("Results: {n}", { n: v })],
  roles: (v) => [t("Roles: {roles}", { roles: v.length ? roleList(v) : t("none") })],
  invited: (v) => (v ? [t("Invitation link made")] : []),
  name: () => [t("Name changed")],
  sessions_ended: (v) => [t("Sessions ended: {n}", { n: v })],
  reason: (v) => [t("Reason: {reason}", { reason: REASONS[v] ? t(REASONS[v]) : v })],
  second_factor: (v) => [t("Two-factor code: {answer}", { answer: yesNo(v) })],
  value: (v) => [v ? t("Two-factor sign-in required from everyone") : t("Two-factor sign-in not required")],
  account: (v, names) => (v === null ? [] : [t("Only the account {name}", { name: names.get(String(v)) || `#${v}` })]),
  subject: (v) => (v ? [t("Only one record or data subject")] : []),
  from_agent: (v, names) => (v === null ? [] : [t("From: {name}", { name: names.get(String(v)) || `#${v}` })]),
  to_agent: (v, names) => (v === null ? [] : [t("To agent: {name}", { name: names.get(String(v)) || `#${v}` })]),
  to_department: (v) => (v === null ? [] : [t("To department #{id}", { id: v })]),
  note: (v) => (v ? [t("With a note to the receiver")] : []),
  agent: (v, names) => [v === null ? t("Assigned to nobody") : t("Assigned to {name}", { name: names.get(String(v)) || `#${v}` })],
  reply: (v) => [t("Reply #{id}", { id: v })],
  contacts: (v) => [t("Contacts: {n}", { n: v })],
  fields: (v) => [t("Changed: {fields}", { fields: v.map((f) => (DEPARTMENT_FIELDS[f] ? t(DEPARTMENT_FIELDS[f]) : f)).join(", ") })],
  members: (v, names) => [t("Members: {names}", { names: v.length ? v.map((id) => names.get(String(id)) || `#${id}`).join(", ") : t("none") })],
  max_chats: (v) => [v === null ? t("Chat limit: the default") : t("Chat limit: {n}", { n: v })],
  kind: (v) => [REQUEST_KINDS[v] ? t(REQUEST_KINDS[v]) : v],
  status: (v) => [t("Status: {status}", { status: REQUEST_STATUS[v] ? t(REQUEST_STATUS[v]) : v })],
  format: (v) => [t("Format: {format}", { format: String(v).toUpperCase() })],
  field: (v) => [t("Field: {field}", { field: RECORD_FIELDS[v] ? t(RECORD_FIELDS[v]) : v })],
  span: (v) => (v ? [t("Part of the text")] : [t("The whole text")]),
  records: (v) => [t("Records: {n}", { n: v })],
  unkeyed_through: (v) => [t("Entries up to #{seq} sealed", { seq: v })],
  through: (v) => [t("Entries up to #{seq} removed", { seq: v })],
  rows: (v) => [t("Entries removed: {n}", { n: v })],
  hash: () => [],
  scope: (v) => [v === "service" ? t("Hours of the whole service") : t("Hours of one department")],
  days: (v) => [t("Days with opening hours: {n}", { n: v.length })],
  exceptions: (v) => [t("Exception dates: {n}", { n: v })],
  mailed: (v) => (v ? [t("Invitation mailed")] : []),
  origin: (v) => [v === null ? t("The default profile") : t("Site: {origin}", { origin: v })],
  colour: (v) => (v ? [t("Colour: {colour}", { colour: v })] : []),
  via: (v) => [VIA[v] ? t(VIA[v]) : v],
  scopes: (v) => [t("Scopes: {scopes}", { scopes: v.join(", ") })],
  expires_days: (v) => [v === null ? t("Never expires") : t("Expires in {n} days", { n: v })],
  route: (v) => [t("Request: {route}", { route: v })],
  token: (v) => [t("Through API token #{id}", { id: v })],
  form: (v) => [v ? t("Pre-chat form of {origin}", { origin: v }) : t("The default pre-chat form")],
  asks: (v) => [t("Asks: {fields}", { fields: Object.entries(v || {}).filter(([, mode]) => mode !== "off")
    .map(([f, mode]) => `${PRECHAT_FIELDS[f] ? t(PRECHAT_FIELDS[f]) : f} (${mode === "required" ? t("required") : t("optional")})`)
    .join(", ") || t("nothing") })],
  topics: (v) => [t("Topics: {n}", { n: v })],
  host: (v) => [t("Receiver: {host}", { host: v })],
  events: (v) => [t("Events: {events}", { events: v.join(", ") })],
  personal: (v) => [t("Personal fields: {fields}", { fields: v.length ? v.map((f) => (RECORD_FIELDS[f] ? t(RECORD_FIELDS[f]) : WEBHOOK_FIELDS[f] ? t(WEBHOOK_FIELDS[f]) : f)).join(", ") : t("none") })],
  enabled: (v) => [v ? t("Turned on") : t("Turned off")],
  new_secret: (v) => (v ? [t("New secret made")] : []),
  hook: (v) => [t("Webhook {id}", { id: v })],
  sso: (v) => (v ? [t("Following the identity provider's groups")] : []),
  departments: (v) => [t("Departments: {ids}", { ids: ids(v) })],
};

/** The row's details as phrases; count-like keys (an erasure's or retention's counts, an export's
 * selection) as "<what>: n". */
export function detailPhrases(row, names) {
  const out = [];
  for (const [key, value] of Object.entries(row.detail || {})) {
    if (DETAILS[key]) out.push(...DETAILS[key](value, names));
    else if (typeof value === "number") out.push(...counts({ [key]: value }));
    else if (Array.isArray(value)) out.push(`${countLabel(key)}: ${ids(value)}`);
    else out.push(`${countLabel(key)}: ${String(value)}`);
  }
  return out;
}

export function actionText(action) {
  return ACTIONS[action] ? t(ACTIONS[action]) : action;
}

export function targetText(row, names) {
  if (!row.target_type) return "";
  const id = row.target_id === null ? "" : row.target_id;
  const text = TARGETS[row.target_type] ? t(TARGETS[row.target_type], { id }) : `${row.target_type} ${id}`;
  const known = (row.target_type === "account" || row.target_type === "staff_account") && names.get(String(row.target_id));
  return known ? `${text}: ${known}` : text;
}

/** "visitor:12" -> "Visitor 12"; another reference as it is. */
export function subjectText(subject) {
  const match = /^visitor:(\d+)$/.exec(subject || "");
  return match ? t("Visitor {id}", { id: match[1] }) : subject;
}
