"""
title: Plugin environment probe
author: fnplatform tests
version: 1.0.0
license: MIT
description: Imports every package of the plugin environment, undeclared, and uses each once.
"""

# Style: written for this suite, the way community files use these packages (none is
# declared in `requirements`, as none is in Open WebUI). Nothing touches the network:
# tiktoken gets a tiny in-memory encoding, the SDK clients are only constructed.
import asyncio
import io
import json
import os
import tempfile

import aiofiles
import aiohttp
import anthropic
import bs4
import docx
import fastapi
import h2
import httpx
import jinja2
import jwt
import lxml.etree
import markdown
import numpy as np
import openai
import openpyxl
import pandas as pd
import pypdf
import pytz
import requests
import sqlalchemy
import starlette.responses
import tenacity
import tiktoken
from loguru import logger
from PIL import Image


class Pipe:
    def __init__(self):
        self.name = "probe"

    async def pipe(self, body: dict) -> str:
        results = {}
        results["fastapi"] = fastapi.responses.JSONResponse({"a": 1}).body.decode()
        results["starlette"] = starlette.responses.PlainTextResponse("ok").media_type
        async with aiohttp.ClientSession() as session:
            results["aiohttp"] = type(session).__name__
        results["requests"] = requests.Request("GET", "http://example.invalid/x").prepare().method
        results["httpx_http2"] = bool(httpx.AsyncClient(http2=True)) and h2.__name__
        logger.info("probe ran")
        results["loguru"] = "logged"
        results["bs4"] = bs4.BeautifulSoup("<p>soup</p>", "html.parser").p.text
        results["lxml"] = lxml.etree.fromstring("<a><b>tree</b></a>").findtext("b")
        engine = sqlalchemy.create_engine("sqlite://")
        with engine.connect() as connection:
            results["sqlalchemy"] = connection.execute(sqlalchemy.text("select 40 + 2")).scalar()
        path = os.path.join(tempfile.gettempdir(), "probe.txt")
        async with aiofiles.open(path, "w") as handle:
            await handle.write("async file")
        async with aiofiles.open(path) as handle:
            results["aiofiles"] = await handle.read()
        results["pytz"] = pytz.timezone("Europe/Paris").zone
        results["markdown"] = markdown.markdown("**bold**")
        results["jinja2"] = jinja2.Template("hi {{ name }}").render(name="jinja")
        token = jwt.encode({"sub": "probe"}, "secret", algorithm="HS256")
        results["pyjwt"] = jwt.decode(token, "secret", algorithms=["HS256"])["sub"]
        tries = []

        @tenacity.retry(stop=tenacity.stop_after_attempt(3), wait=tenacity.wait_none())
        def flaky():
            tries.append(1)
            if len(tries) < 3:
                raise ValueError("again")
            return len(tries)

        results["tenacity"] = flaky()
        results["numpy"] = int(np.arange(5).sum())
        results["pandas"] = int(pd.DataFrame({"x": [1, 2, 3]})["x"].sum())
        picture = io.BytesIO()
        Image.new("RGB", (4, 3), "red").save(picture, format="PNG")
        results["pillow"] = Image.open(io.BytesIO(picture.getvalue())).size
        results["openai"] = type(openai.OpenAI(api_key="sk-none", base_url="http://127.0.0.1:9")).__name__
        results["anthropic"] = type(anthropic.Anthropic(api_key="none")).__name__
        ranks = {bytes([b]): b for b in range(256)}
        encoding = tiktoken.Encoding(name="probe", pat_str=r"\S+|\s+", mergeable_ranks=ranks, special_tokens={})
        results["tiktoken"] = len(encoding.encode("abc"))
        document = docx.Document()
        document.add_paragraph("docx text")
        saved = io.BytesIO()
        document.save(saved)
        results["python-docx"] = docx.Document(io.BytesIO(saved.getvalue())).paragraphs[0].text
        book = openpyxl.Workbook()
        book.active["A1"] = "cell"
        results["openpyxl"] = book.active["A1"].value
        writer = pypdf.PdfWriter()
        writer.add_blank_page(width=72, height=72)
        pdf = io.BytesIO()
        writer.write(pdf)
        results["pypdf"] = len(pypdf.PdfReader(io.BytesIO(pdf.getvalue())).pages)
        await asyncio.sleep(0)
        return json.dumps(results)
