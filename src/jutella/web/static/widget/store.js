// The frame's only storage: one localStorage entry, written only after the
// visitor has clicked the launcher (consent). Before that the frame may read
// it (a returning visitor who consented earlier), never write it.
const KEY = "jutella-widget";

export class Store {
  constructor(storage) {
    this.storage = storage;
    this.allowed = false;
  }

  read() {
    try {
      const value = JSON.parse(this.storage.getItem(KEY) || "null");
      return value && typeof value === "object" && !Array.isArray(value) ? value : null;
    } catch (e) {
      return null;
    }
  }

  allow() {
    this.allowed = true;
  }

  save(value) {
    if (!this.allowed) return;
    try {
      this.storage.setItem(KEY, JSON.stringify(value));
    } catch (e) {
      // Storage full or blocked: the chat still works, it just won't survive a reload.
    }
  }

  // "Forget this browser": everything the widget ever stored, and no more writes.
  forget() {
    this.allowed = false;
    try {
      for (let i = this.storage.length - 1; i >= 0; i--) {
        const key = this.storage.key(i);
        if (key && key.startsWith(KEY)) this.storage.removeItem(key);
      }
    } catch (e) {
      // nothing stored, or storage blocked
    }
  }
}
