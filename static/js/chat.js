// The chat pages' few behaviours htmx has no attribute for. No eval, no inline
// handlers: the page's Content-Security-Policy allows neither.
(function () {
  "use strict";

  // Enter sends, Shift+Enter adds a line (and Enter while an IME composes does neither).
  document.addEventListener("keydown", function (event) {
    const field = event.target;
    if (!(field instanceof HTMLTextAreaElement) || !field.hasAttribute("data-enter-sends")) return;
    if (event.key !== "Enter" || event.shiftKey || event.isComposing) return;
    event.preventDefault();
    if (field.value.trim() && field.form) field.form.requestSubmit();
  });

  // A message sent over the socket leaves the composer empty for the next one (the
  // server gives it back, with the reason, if it refuses it).
  document.addEventListener("htmx:wsAfterSend", function (event) {
    const form = event.target.closest ? event.target.closest("form") : null;
    if (form && form.id === "composer") form.reset();
  });

  // Keep the newest text in view while an answer streams, unless the reader scrolled up.
  let following = true;
  window.addEventListener("scroll", function () {
    const bottom = document.documentElement.scrollHeight - window.innerHeight;
    following = window.scrollY >= bottom - 80;
  }, { passive: true });
  document.addEventListener("htmx:wsAfterMessage", function () {
    if (following) window.scrollTo(0, document.documentElement.scrollHeight);
  });

  // What the reader opened (a status history, a source's snippet: <details>) stays open
  // when the socket draws its message again (each status, the answer's end). A
  // <details> is known by the nearest id around it and its place among that one's.
  function detailsKey(details) {
    const holder = details.parentElement && details.parentElement.closest("[id]");
    if (!holder) return null;
    return holder.id + "#" + Array.from(holder.querySelectorAll("details")).indexOf(details);
  }
  let opened = [];
  document.addEventListener("htmx:wsBeforeMessage", function () {
    opened = Array.from(document.querySelectorAll("details[open]")).map(detailsKey).filter(Boolean);
  });
  document.addEventListener("htmx:wsAfterMessage", function () {
    if (!opened.length) return;
    const wanted = new Set(opened);
    opened = [];
    document.querySelectorAll("details:not([open])").forEach(function (details) {
      if (wanted.has(detailsKey(details))) details.open = true;
    });
  });

  // The chat list folds away at phone width behind its button.
  document.addEventListener("click", function (event) {
    const toggle = event.target.closest ? event.target.closest(".sidebar-toggle") : null;
    if (!toggle) return;
    const open = toggle.getAttribute("aria-expanded") !== "true";
    toggle.setAttribute("aria-expanded", String(open));
    document.body.classList.toggle("sidebar-open", open);
  });

  document.addEventListener("DOMContentLoaded", function () {
    const composer = document.getElementById("composer-input");
    if (composer && window.matchMedia("(min-width: 48rem)").matches) composer.focus();
    window.scrollTo(0, document.documentElement.scrollHeight);
  });
})();
