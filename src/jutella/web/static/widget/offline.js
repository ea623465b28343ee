// The view for when nobody is online. For now the chat view's status line says
// so and the visitor can still write. The offline e-mail form (data-testids
// offline-form, offline-name, offline-email, offline-message, offline-submit,
// offline-sent) will live here: offlineView() then returns its element, and
// the frame mounts it in #offline instead of the composer.
export function offlineView() {
  return null;
}
