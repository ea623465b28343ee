// The table of signed-in views. Each entry:
//   { id, label, roles, render }
// id     the hash route: #/<id> (anything after a further "/" is passed on as ctx.params)
// label  the navigation text, marked with N_() and translated when shown
// roles  the roles that may see it (any one of them), or null for everyone
// nav    false to leave it out of the navigation (default: shown)
// render (container, ctx) => optional cleanup function, called when the view is left
//
// views.js registers the console's views in navigation order; a later module
// (the chat, for instance) can call registerView() with the same id to replace
// an entry, or with a new id to add one.

const table = [];

export function registerView(view) {
  const at = table.findIndex((v) => v.id === view.id);
  if (at >= 0) table[at] = { ...table[at], ...view };
  else table.push(view);
}

export function allViews() {
  return table.slice();
}

export function findView(id) {
  return table.find((v) => v.id === id) || null;
}

export function canSee(view, account) {
  return !view.roles || view.roles.some((role) => account.roles.includes(role));
}

export function visibleViews(account) {
  return table.filter((v) => canSee(v, account));
}

/** The current hash route: {id, params} for "#/id/params", or null. */
export function currentRoute() {
  const match = /^#\/([\w-]+)(?:\/(.*))?$/.exec(location.hash);
  return match ? { id: match[1], params: match[2] ? decodeURIComponent(match[2]) : "" } : null;
}

export function routeHref(id, params) {
  return params ? `#/${id}/${encodeURIComponent(params)}` : `#/${id}`;
}
