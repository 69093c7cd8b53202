"""
title: Hostile Icon
author: fnplatform tests
version: 0.1.0
description: An action whose icon is an SVG carrying script and handlers.
icon_url: data:image/svg+xml;utf8,<svg xmlns="http://www.w3.org/2000/svg" onload="window.__pwned=1"><script>window.__pwned=1</script><circle r="8" cx="8" cy="8"/></svg>
license: MIT
"""

# Style imitated: actions with an icon_url data URI; a hostile one. Shown as an
# <img>, an SVG runs no script: the button shows a picture, nothing else.


class Action:
    async def action(self, body: dict, __event_emitter__=None):
        return None
