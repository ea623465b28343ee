// Makes the console installable (docs/console.md, "Installing the console"):
// registers the service worker that keeps only the static shell. A browser
// without service workers, or one that refuses (private windows), simply runs
// the console as a page.

export function registerShell() {
  if (!("serviceWorker" in navigator)) return;
  navigator.serviceWorker.register("/console-sw.js", { scope: "/console" }).catch(() => {});
}
