// What plugins' events need of the chat page beyond htmx's swaps: toasts that hide
// themselves and can be dismissed, embeds' frames sized to their content, embeds'
// prompts put into the composer (or sent), and the tab's title following the chat's.
// No eval, no inline handlers: the page's Content-Security-Policy allows neither.
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

  // The embed frame whose window sent a message; null for any other sender (the page
  // itself, another window, a frame nested in an embed). Frames are opaque origins
  // (event.origin is "null" for all of them), so only the window's identity tells.
  function embedFrame(source) {
    if (!source) return null;
    for (const frame of document.querySelectorAll("iframe[data-embed]")) {
      if (frame.contentWindow === source) return frame;
    }
    return null;
  }

  window.addEventListener("message", function (event) {
    const data = event.data;
    if (!data || typeof data !== "object" || data.type !== "fnplatform:embed-size") return;
    const height = Number(data.height);
    if (!Number.isFinite(height)) return;
    const frame = embedFrame(event.source);
    if (frame) {
      const clamped = Math.min(Math.max(Math.ceil(height), MIN_HEIGHT), MAX_HEIGHT);
      frame.style.height = clamped + "px";
    }
  });

  // Embeds' prompts, as Open WebUI's chat page reads them (its onMessageHandler in
  // src/lib/components/chat/Chat.svelte): {type: "input:prompt", text} puts the text
  // in the composer and focuses it; {type: "input:prompt:submit", text} sends the text
  // as the user's next message; {type: "action:submit"} sends what the composer holds.
  // The text is read from `text` only, as there. Open WebUI takes these only from its
  // own origin (event.origin === window.origin: a frame only when its sandbox allows
  // same-origin); ours never are, so instead the sender must be one of our own HTML
  // embed frames, by window (an embed that is a URL is someone else's page: not taken).
  //
  // Sending goes the way Enter does (chat.js): the composer form's requestSubmit, so
  // over the socket's `send` and through the same services. While an answer is being
  // written nothing is sent: the text waits in the composer (the server would refuse
  // it anyway), so nothing is lost.
  //
  // The guard: an embed's script runs without the user, and could post submits in a
  // loop, on load, or from an old answer. So a message counts only while the frame
  // that posts it holds the page's focus (the user clicked or tabbed into it; Chromium
  // lets no cross-origin frame's script take the focus without a gesture) and, where
  // the browser tells, the page has a fresh user gesture (navigator.userActivation
  // .isActive, a few seconds, which a click inside a frame gives its parents too).
  // Taking one moves the focus to the composer, so the frame gets one prompt each time
  // the user goes into it: a looping script gets at most one, and one it posts without
  // the user, none.
  // Anything else is dropped whole: not even put in the composer, which a loop would
  // otherwise keep overwriting under the user's typing. (Requiring the newest answer's
  // frames was not chosen: a suggestion button in an earlier answer is fair use, as in
  // Open WebUI.)
  const MAX_PROMPT = 20000;
  const PROMPT_TYPES = ["input:prompt", "input:prompt:submit", "action:submit"];

  function userIsHere(frame) {
    if (document.activeElement !== frame) return false;
    const activation = navigator.userActivation;
    return !activation || activation.isActive;
  }

  function busy() {
    const thread = document.getElementById("thread");
    if (thread && thread.getAttribute("aria-busy") === "true") return true;
    return Boolean(document.querySelector("#composer-controls input[name='action'][value='stop']"));
  }

  function fill(field, text) {
    field.value = text;
    field.dispatchEvent(new Event("input", { bubbles: true }));
  }

  window.addEventListener("message", function (event) {
    const data = event.data;
    if (!data || typeof data !== "object" || !PROMPT_TYPES.includes(data.type)) return;
    const frame = embedFrame(event.source);
    if (!frame || frame.classList.contains("external") || !userIsHere(frame)) return;
    const field = document.getElementById("composer-input");
    if (!field || !field.form) return;
    if (data.type !== "action:submit") {
      const text = data.text;
      if (typeof text !== "string" || text.length > MAX_PROMPT) return;
      if (data.type === "input:prompt:submit" && !text.trim()) return;
      fill(field, text);
    }
    field.focus();
    if (data.type !== "input:prompt" && !busy() && field.value.trim()) field.form.requestSubmit();
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
