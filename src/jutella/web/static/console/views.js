// The signed-in views, in navigation order. To add a view, write a module
// exporting render(container, ctx) and add one line here (or call
// registerView from that module). See router.js for the fields.

import { N_ } from "./i18n.js";
import { registerView } from "./router.js";
import { renderAccount } from "./view-account.js";
import { renderAccounts } from "./view-accounts.js";
import { renderAudit } from "./view-audit.js";
import { renderCanned } from "./view-canned.js";
import { renderChat } from "./chat.js";
import { renderDepartments } from "./view-departments.js";
import { renderEmbed } from "./view-embed.js";
import { renderOfflineInbox } from "./view-offline.js";
import { renderPrivacy } from "./view-privacy.js";
import { renderReports } from "./view-reports.js";
import { renderTokens } from "./view-tokens.js";
import { renderWebhooks } from "./view-webhooks.js";

registerView({ id: "conversations", label: N_("Conversations"), roles: ["agent"], render: renderChat });
registerView({ id: "offline", label: N_("Offline messages"), roles: ["agent"], render: renderOfflineInbox });
registerView({ id: "canned", label: N_("Canned responses"), roles: ["agent", "admin"], render: renderCanned });
registerView({ id: "accounts", label: N_("Accounts"), roles: ["admin"], render: renderAccounts });
registerView({ id: "departments", label: N_("Departments"), roles: ["admin"], render: renderDepartments });
registerView({ id: "embed", label: N_("Embed"), roles: ["admin"], render: renderEmbed });
registerView({ id: "reports", label: N_("Reports"), roles: ["admin"], render: renderReports });
registerView({ id: "tokens", label: N_("API tokens"), roles: ["admin"], render: renderTokens });
registerView({ id: "webhooks", label: N_("Webhooks"), roles: ["admin"], render: renderWebhooks });
registerView({ id: "audit", label: N_("Audit log"), roles: ["admin", "privacy"], render: renderAudit });
registerView({ id: "register", label: N_("Register"), roles: ["privacy"], render: renderPrivacy });
registerView({ id: "account", label: N_("My account"), roles: null, render: renderAccount });
