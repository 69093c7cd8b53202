// Runs a plugin's "execute" script in its sandboxed frame (chat.sandbox_execute): an opaque
// origin with no cookies, no way into the chat page and no network, and the one place
// whose CSP lets code be made from a string. The script is wrapped as Open WebUI wraps
// it (Chat.svelte); its value, or its error, goes to the page that framed this one.
(function () {
  "use strict";
  const target = document.documentElement.getAttribute("data-parent-origin") || "*";
  const code = JSON.parse(document.getElementById("plugin-code").textContent);

  function send(message) {
    window.parent.postMessage(message, target);
  }

  // What survives the trip as JSON (a value JSON cannot carry is sent as its text).
  function plain(value) {
    if (value === undefined) return null;
    try {
      const text = JSON.stringify(value);
      return text === undefined ? String(value) : JSON.parse(text);
    } catch (error) {
      return String(value);
    }
  }

  function failed(error) {
    const text = error && error.message ? error.name + ": " + error.message : String(error);
    send({ type: "execute:error", error: text });
  }

  let run;
  try {
    run = new Function("return (async () => { " + code + " })()");
  } catch (error) {
    failed(error);
    return;
  }
  Promise.resolve()
    .then(run)
    .then(function (value) { send({ type: "execute:result", value: plain(value) }); }, failed);
})();
