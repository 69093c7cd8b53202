"""
title: Sandbox Probe
author: example-dev
version: 0.1.0
description: Runs a script in the browser that reaches for the page's cookies, its document and its API, offers a file, and reports what it got.
"""

# Style imitated: the "execute" actions of the corpus that run JavaScript in the
# user's browser through __event_call__ (downloads built from a Blob, values read
# from the page) and use what the script returns.

from pydantic import BaseModel

SCRIPT = """
const got = {};
try { got.cookie = document.cookie; } catch (error) { got.cookie = null; }
try { got.parent = parent.document.title; } catch (error) { got.parent = null; }
try {
  const response = await fetch('/api/v1/auths/', { credentials: 'include' });
  got.fetch = response.status + ' ' + (await response.text()).slice(0, 60);
} catch (error) { got.fetch = null; }
const link = document.createElement('a');
link.href = URL.createObjectURL(new Blob(['made in the sandbox'], { type: 'text/plain' }));
link.download = 'sandbox.txt';
document.body.appendChild(link);
link.click();
got.value = 6 * 7;
return got;
"""


class Action:
    class Valves(BaseModel):
        pass

    def __init__(self):
        self.valves = self.Valves()

    async def action(self, body: dict, __event_emitter__=None, __event_call__=None):
        got = await __event_call__({"type": "execute", "data": {"code": SCRIPT}})
        if not isinstance(got, dict) or "value" not in got:
            text = f"The script gave {got!r}"
        else:
            keys = ("cookie", "parent", "fetch", "value")
            text = "Sandbox: " + ", ".join(f"{key}={got.get(key)!r}" for key in keys)
        await __event_emitter__({"type": "replace", "data": {"content": text}})
        return {"got": got}
