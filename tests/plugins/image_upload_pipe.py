"""
title: Image Archive
author: fnplatform tests
version: 0.2.0
description: Stores a generated image in Open WebUI's files and answers with markdown that shows it.
"""

# Style: the corpus's image pipes (nano_banana, image_to_file_storage): decode a data URL
# with load_b64_image_data / get_image_data, store it with upload_image (the newer awaited
# form and the older plain one) for Users.get_user_by_id(...), and embed the URL.
import base64
import json

from open_webui.models.users import Users
from open_webui.routers.images import get_image_data, load_b64_image_data, upload_image
from pydantic import BaseModel, Field

PIXEL = base64.b64encode(b"\x89PNG\r\n\x1a\n fake pixel").decode()


class Pipe:
    class Valves(BaseModel):
        PROMPT: str = Field(default="a red square", description="Prompt recorded in the metadata")

    def __init__(self):
        self.valves = self.Valves()

    async def pipe(self, body: dict, __user__: dict, __request__=None, __metadata__=None) -> str:
        user = Users.get_user_by_id(__user__["id"])
        data_uri = f"data:image/png;base64,{PIXEL}"
        image_data, content_type = load_b64_image_data(data_uri)
        # Newer Open WebUI: awaited, positional, answers (file_item, url).
        file_item, url = await upload_image(
            __request__, image_data, content_type, {"prompt": self.valves.PROMPT}, user
        )
        # Older Open WebUI: plain call, keywords, answers the URL.
        again, again_type = get_image_data(PIXEL)
        old_url = upload_image(
            __request__,
            metadata={"instances": {"prompt": self.valves.PROMPT}},
            image_data=again,
            content_type=again_type,
            user=user,
        )
        awaited_data, _ = await get_image_data(data_uri)
        bad = load_b64_image_data("data:image/png;base64,@@not base64@@")
        return json.dumps(
            {
                "markdown": f"![Generated Image]({url})",
                "id": file_item.id,
                "name": file_item.meta["name"],
                "content_type": file_item.meta["content_type"],
                "size": file_item.meta["size"],
                "prompt": file_item.meta["data"]["prompt"],
                "old_url": old_url,
                "same_bytes": awaited_data == image_data == again,
                "bad": bad,
            }
        )
