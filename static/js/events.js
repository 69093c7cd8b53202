// What plugins' events need of the chat page beyond htmx's swaps: toasts that hide
// themselves and can be dismissed, embeds' frames sized to their content, and the
// tab's title following the chat's. No eval, no inline handlers: the page's
// Content-Security-Policy allows neither.
(function () {
  "use strict";

  // Toasts (templates/chat/_toast.html): each hides itself after its data-timeout,
  // not while the pointer or the focus is on it; its button dismisses it at once.
  const timers = new WeakMap();

  function hideLater(toast) {
    const wait = Number(toast.getAttribute("data-timeout")) || 6000;
    clearTimeout(timers.get(toast));
    timers.set(toast, setTimeout(function () { toast.remove(); }, wait));
  }

  function hold(toast) {
    clearTimeout(timers.get(toast));
  }

  function watchToasts(region) {
    new MutationObserver(function (changes) {
      for (const change of changes) {
        for (const node of change.addedNodes) {
          if (node instanceof HTMLElement && node.hasAttribute("data-toast")) hideLater(node);
        }
      }
    }).observe(region, { childList: true });
  }

  document.addEventListener("click", function (event) {
    const button = event.target.closest ? event.target.closest("[data-toast-dismiss]") : null;
    const toast = button ? button.closest("[data-toast]") : null;
    if (toast) toast.remove();
  });
  for (const type of ["mouseover", "focusin"]) {
    document.addEventListener(type, function (event) {
      const toast = event.target.closest ? event.target.closest("[data-toast]") : null;
      if (toast) hold(toast);
    });
  }
  for (const type of ["mouseout", "focusout"]) {
    document.addEventListener(type, function (event) {
      const toast = event.target.closest ? event.target.closest("[data-toast]") : null;
      const into = event.relatedTarget;
      if (toast && !(into instanceof Node && toast.contains(into))) hideLater(toast);
    });
  }

  // Embeds (chat/sandbox.py): a frame says how tall its document is; only a message
  // from one of the page's own embed frames counts, and the height is clamped.
  const MIN_HEIGHT = 24;
  const MAX_HEIGHT = 3000;

  window.addEventListener("message", function (event) {
    const data = event.data;
    if (!data || typeof data !== "object" || data.type !== "fnplatform:embed-size") return;
    const height = Number(data.height);
    if (!Number.isFinite(height)) return;
    for (const frame of document.querySelectorAll("iframe[data-embed]")) {
      if (frame.contentWindow === event.source) {
        const clamped = Math.min(Math.max(Math.ceil(height), MIN_HEIGHT), MAX_HEIGHT);
        frame.style.height = clamped + "px";
        return;
      }
    }
  });

  // The tab's title follows the chat's heading when a plugin renames the chat.
  document.addEventListener("htmx:wsAfterMessage", function () {
    const heading = document.getElementById("chat-title");
    const title = heading ? heading.textContent.trim() + " · fnplatform" : "";
    if (title && document.title !== title) document.title = title;
  });

  document.addEventListener("DOMContentLoaded", function () {
    for (const id of ["toasts", "toast-alerts"]) {
      const region = document.getElementById(id);
      if (region) watchToasts(region);
    }
  });
})();
