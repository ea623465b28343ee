// Role names and their labels (the server's role codes are admin, agent, privacy).

import { N_, t } from "./i18n.js";

export const ROLES = [
  ["admin", N_("Administrator"), N_("Manages accounts and settings.")],
  ["agent", N_("Agent"), N_("Answers chats and offline messages.")],
  ["privacy", N_("Privacy contact"), N_("Handles data-subject requests and reads the audit log.")],
];

export function roleLabel(code) {
  const found = ROLES.find(([c]) => c === code);
  return found ? t(found[1]) : code;
}

export function roleList(codes) {
  return codes.map(roleLabel).join(", ");
}
