// Plugins' dialogs (chat.dialogs): the socket draws them into #dialogs; this opens each
// input or confirmation as a modal <dialog> (focus moves in and stays there, Escape
// cancels, focus goes back where it was when it closes), and sends an "execute"
// script's result, posted by its sandboxed frame, as that dialog's answer. The answers
// themselves are the forms' ws-send. No eval, no inline handlers: the page's CSP
// allows neither.
(function () {
  "use strict";

  // Where the focus was before the first of the open dialogs opened: it goes back
  // there when the last one closes (or to the composer, when that element is gone).
  let origin = null;

  function dialogsIn(node) {
    if (!(node instanceof Element)) return [];
    const found = Array.from(node.querySelectorAll("[data-dialog]"));
    return node.matches("[data-dialog]") ? [node].concat(found) : found;
  }

  function openDialogs() {
    return document.querySelectorAll("dialog[data-dialog][open]");
  }

  function open(dialog) {
    if (!(dialog instanceof HTMLDialogElement) || dialog.open || !dialog.isConnected) return;
    const active = document.activeElement;
    if (!openDialogs().length && active && active !== document.body && !active.closest("dialog")) {
      origin = active;
    }
    dialog.showModal();
    const first = dialog.querySelector("[autofocus]") || dialog.querySelector("button");
    if (first) first.focus();
  }

  function settleFocus() {
    const stillOpen = openDialogs();
    if (stillOpen.length) {
      const top = stillOpen[stillOpen.length - 1];
      if (!top.contains(document.activeElement)) (top.querySelector("[autofocus]") || top).focus();
      return;
    }
    const back = origin;
    origin = null;
    if (back && back.isConnected && !back.closest("dialog")) {
      back.focus();
    } else if (document.activeElement === document.body || !document.activeElement) {
      const composer = document.getElementById("composer-input");
      if (composer) composer.focus();
    }
  }

  // #dialogs drawn anew (a reconnect) names the scripts this page still runs: the
  // frames of the others (they ended while the socket was down) go.
  function pruneScripts(container) {
    const running = (container.dataset.running || "").split(" ");
    document.querySelectorAll("#scripts > [data-dialog]").forEach(function (frame) {
      if (running.indexOf(frame.dataset.dialog) < 0) frame.remove();
    });
  }

  // The socket swaps dialogs in and out (added, redrawn as expired, the whole list
  // again after a reconnect, removed when answered anywhere).
  function changed(records) {
    const removed = new Map();
    const added = [];
    records.forEach(function (record) {
      record.addedNodes.forEach(function (node) {
        if (node instanceof Element && node.id === "dialogs") pruneScripts(node);
      });
      record.removedNodes.forEach(function (node) {
        dialogsIn(node).forEach(function (d) { removed.set(d.dataset.dialog, d); });
      });
      record.addedNodes.forEach(function (node) { added.push.apply(added, dialogsIn(node)); });
    });
    added.forEach(function (dialog) {
      const id = dialog.dataset.dialog;
      const before = removed.get(id);
      removed.delete(id);
      // Drawn again (a reconnect): what was typed stays.
      const typed = before && before.querySelector("input[name=answer]");
      const field = dialog.querySelector("input[name=answer]");
      if (typed && field) field.value = typed.value;
      open(dialog);
    });
    if (removed.size) settleFocus();
  }

  // The browser keeps the rest of the page inert; Tab and Shift+Tab go round the
  // dialog's own controls rather than out to the browser's.
  const FOCUSABLE = "button, input:not([type=hidden]), select, textarea, [href], [tabindex]:not([tabindex='-1'])";

  document.addEventListener("keydown", function (event) {
    if (event.key !== "Tab") return;
    const all = document.querySelectorAll("dialog[data-dialog][open]");
    const dialog = all[all.length - 1];
    if (!dialog) return;
    const controls = Array.from(dialog.querySelectorAll(FOCUSABLE)).filter(function (c) {
      return !c.disabled && c.getClientRects().length > 0;
    });
    if (!controls.length) return;
    const first = controls[0];
    const last = controls[controls.length - 1];
    const inside = dialog.contains(document.activeElement);
    if (!inside || (event.shiftKey && document.activeElement === first)) {
      event.preventDefault();
      (event.shiftKey ? last : first).focus();
    } else if (!event.shiftKey && document.activeElement === last) {
      event.preventDefault();
      first.focus();
    }
  });

  function answering(dialog) {
    dialog.dataset.answered = "true";
  }

  // Cancel (the button, Escape, or closing it any other way) sends "cancel": the
  // plugin gets Open WebUI's answer to a cancelled dialog (false).
  function cancel(dialog) {
    if (dialog.dataset.answered || dialog.dataset.status !== "pending") return;
    const form = dialog.querySelector("form[data-dialog-cancel-form]");
    if (!form) return;
    answering(dialog);
    form.requestSubmit();
  }

  document.addEventListener("click", function (event) {
    const button = event.target.closest ? event.target.closest("[data-dialog-cancel], [data-dialog-dismiss]") : null;
    const dialog = button ? button.closest("dialog[data-dialog]") : null;
    if (!dialog) return;
    if (button.hasAttribute("data-dialog-cancel")) cancel(dialog);
    dialog.close();
  });

  // "close" does not bubble: listened for on the way down.
  document.addEventListener("close", function (event) {
    const dialog = event.target;
    if (!(dialog instanceof HTMLDialogElement) || !dialog.dataset.dialog) return;
    if (dialog.dataset.status === "pending") cancel(dialog);
    else dialog.remove();  // an expired one, read and dismissed
    settleFocus();
  }, true);

  document.addEventListener("submit", function (event) {
    const form = event.target;
    const dialog = form.closest ? form.closest("dialog[data-dialog]") : null;
    if (dialog && form.hasAttribute("data-dialog-answer")) answering(dialog);
  }, true);

  // Sent: the dialog closes here at once (the server removes it from every page).
  document.addEventListener("htmx:wsAfterSend", function (event) {
    const dialog = event.target.closest ? event.target.closest("dialog[data-dialog]") : null;
    if (dialog && dialog.open) dialog.close();
  });

  // An execute script's result: only from the sandboxed frame drawn for that dialog
  // (an opaque origin, so its origin is "null"), and only once.
  window.addEventListener("message", function (event) {
    const data = event.data;
    if (event.origin !== "null" || !data || typeof data !== "object") return;
    if (data.type !== "execute:result" && data.type !== "execute:error") return;
    const frames = document.querySelectorAll("iframe[data-dialog-frame]");
    const frame = Array.from(frames).find(function (f) { return f.contentWindow === event.source; });
    if (!frame || frame.dataset.answered) return;
    frame.dataset.answered = "true";
    const form = frame.closest("[data-dialog]").querySelector("form[data-execute-result]");
    const result = data.type === "execute:result" ? { value: data.value } : { error: String(data.error) };
    form.elements.result.value = JSON.stringify(result);
    form.requestSubmit();
  });

  document.addEventListener("DOMContentLoaded", function () {
    new MutationObserver(changed).observe(document.body, { childList: true, subtree: true });
    document.querySelectorAll("dialog[data-dialog]").forEach(open);
  });
})();
