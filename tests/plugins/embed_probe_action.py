"""
title: Sandbox probe
author: fnplatform tests
version: 0.1.0
description: Shows an HTML card whose script reports what it can reach of the page around it.
license: MIT
"""

# Style: the actions that return HTML (Fu-Jie's cards, mind maps): an HTML answer
# with an inline disposition, rendered as an embed. Its script tries what a hostile
# embed would: the parent page's document, its cookies, storage, the API with
# credentials, and writing into the parent window.

HTML = """<!doctype html>
<html><head><style>body{font-family:sans-serif;margin:0}#card{height:420px;padding:12px;background:#eef3ff}</style></head>
<body><div id="card"><h2>Sandbox probe</h2><ul id="results"></ul></div>
<script>
  function report(name, text) {
    const item = document.createElement("li");
    item.textContent = name + ": " + text;
    document.getElementById("results").append(item);
  }
  function probe(name, attempt) {
    try { report(name, attempt()); } catch (error) { report(name, "blocked (" + error.name + ")"); }
  }
  probe("parent.document", () => parent.document.title ? "readable" : "empty");
  probe("document.cookie", () => document.cookie ? "readable" : "empty");
  probe("localStorage", () => { localStorage.setItem("probe", "1"); return "usable"; });
  probe("parent.__pwned", () => { parent.__pwned = 1; return "written"; });
  fetch("/api/v1/auths/", { credentials: "include" })
    .then((response) => report("api", "answered " + response.status))
    .catch((error) => report("api", "blocked (" + error.name + ")"));
</script></body></html>"""


class Action:
    async def action(self, body: dict, __event_emitter__=None):
        return HTML, {"Content-Disposition": "inline"}
