"""Implicit requirements: modules Open WebUI ships that a plugin imports undeclared.

Open WebUI's own environment holds torch, transformers, chromadb, faster-whisper
and more, so community files import them without a `requirements` line. The
plugin environment (plugin_env.py) carries only the light part of that set. For
the rest, a source is read (statically: the server never runs plugin code) for
the modules it imports; each one neither the standard library nor the plugin
environment provides, and that Open WebUI ships, becomes a requirement of that
function alone, pinned as Open WebUI pins it, and goes through the ordinary
requirement environments. Staff see each one, and why, as a load report warning.

Imports guarded by `try: ... except ImportError` (optional) and those under
`if TYPE_CHECKING:` are left alone: the plugin runs without them.
"""

import ast
import functools
import sys
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from functions.services import plugin_env
from functions.services.frontmatter import parse_frontmatter, split_requirements
from functions.services.imports import LEGACY_TOP_LEVEL, ROOT

# The Open WebUI release whose pins the table follows: its pyproject.toml. Modules
# whose package it installs without a pin of its own (torch through
# sentence-transformers, say) map to the package unpinned.
OPEN_WEBUI_RELEASE = "0.12.4"
OPEN_WEBUI_PACKAGES = {
    "torch": "torch",
    "torchvision": "torchvision",
    "transformers": "transformers==5.5.4",
    "sentence_transformers": "sentence-transformers==5.5.1",
    "accelerate": "accelerate==1.13.0",
    "sklearn": "scikit-learn",
    "scipy": "scipy",
    "chromadb": "chromadb==1.5.9",
    "faster_whisper": "faster-whisper==1.2.1",
    "onnxruntime": "onnxruntime==1.26.0",
    "cv2": "opencv-python-headless==4.13.0.92",
    "rapidocr_onnxruntime": "rapidocr-onnxruntime==1.4.4",
    "einops": "einops==0.8.2",
    "pyarrow": "pyarrow==20.0.0",
    "sentencepiece": "sentencepiece==0.2.1",
    "soundfile": "soundfile==0.13.1",
    "pydub": "pydub==0.25.1",
    "langchain": "langchain==1.2.10",
    "langchain_community": "langchain-community==0.4.2",
    "langchain_classic": "langchain-classic==1.0.7",
    "langchain_text_splitters": "langchain-text-splitters==1.1.2",
    "google.genai": "google-genai==1.66.0",
    # Open WebUI 0.12 no longer ships the deprecated SDK, but plugins written for earlier
    # releases import it; unpinned, as earlier releases left it.
    "google.generativeai": "google-generativeai",
    "googleapiclient": "google-api-python-client==2.197.0",
    "google_auth_oauthlib": "google-auth-oauthlib==1.4.0",
    "google_auth_httplib2": "google-auth-httplib2==0.4.0",
    "google.cloud.storage": "google-cloud-storage==3.9.0",
    "azure.identity": "azure-identity==1.25.3",
    "azure.storage.blob": "azure-storage-blob==12.29.0",
    "azure.ai.documentintelligence": "azure-ai-documentintelligence==1.0.2",
    "boto3": "boto3==1.42.62",
    "opensearchpy": "opensearch-py==3.2.0",
    "pymysql": "PyMySQL==1.2.0",
    "redis": "redis==8.0.0",
    "mcp": "mcp==1.27.2",
    "socketio": "python-socketio==5.16.3",
    "jose": "python-jose==3.5.0",
    "bcrypt": "bcrypt==5.0.0",
    "argon2": "argon2-cffi==25.1.0",
    "authlib": "authlib==1.7.2",
    "itsdangerous": "itsdangerous==2.2.0",
    "multipart": "python-multipart==0.0.27",
    "uvicorn": "uvicorn==0.41.0",
    "aiocache": "aiocache==0.12.3",
    "async_timeout": "async-timeout==5.0.1",
    "aiosqlite": "aiosqlite==0.22.1",
    "alembic": "alembic==1.18.4",
    "apscheduler": "APScheduler==3.11.2",
    "RestrictedPython": "RestrictedPython==8.2",
    "fake_useragent": "fake-useragent==2.2.0",
    "ftfy": "ftfy==6.3.1",
    "chardet": "chardet==7.4.3",
    "fpdf": "fpdf2==2.8.7",
    "pymdownx": "pymdown-extensions==10.21.3",
    "docx2txt": "docx2txt==0.9",
    "pptx": "python-pptx==1.0.2",
    "msoffcrypto": "msoffcrypto-tool==6.0.0",
    "nltk": "nltk==3.9.4",
    "pypandoc": "pypandoc==1.17",
    "pyxlsb": "pyxlsb==1.0.10",
    "xlrd": "xlrd==2.0.2",
    "validators": "validators==0.35.0",
    "psutil": "psutil==7.2.2",
    "rank_bm25": "rank-bm25==0.2.2",
    "black": "black==26.5.1",
    "youtube_transcript_api": "youtube-transcript-api==1.2.4",
    "pytube": "pytube==15.0.0",
    "ddgs": "ddgs==9.14.4",
    "ldap3": "ldap3==2.9.1",
    "pycrdt": "pycrdt==0.13.1",
    "brotli": "Brotli==1.2.0",
    # Installed through uvicorn[standard], which Open WebUI pins; unpinned here.
    "dotenv": "python-dotenv",
}
SHIPPED_EARLIER = ("google.generativeai",)
_OPTIONAL_ERRORS = frozenset({"ImportError", "ModuleNotFoundError", "Exception", "BaseException"})


@dataclass(frozen=True)
class Implicit:
    module: str
    requirement: str

    def note(self) -> str:
        shipped = (
            "earlier Open WebUI releases shipped it"
            if self.module.startswith(SHIPPED_EARLIER)
            else f"Open WebUI {OPEN_WEBUI_RELEASE} ships it"
        )
        return (
            f"Installs {self.requirement} for `import {self.module}`: {shipped}, so the "
            "file does not declare it. It is this function's requirement alone."
        )


def function_requirements(source: str) -> list[str]:
    """What a function's environment must hold: its declared requirements, then the
    implicit ones."""
    declared = declared_requirements(source)
    return declared + [found.requirement for found in implicit_requirements(source, declared)]


def declared_requirements(source: str) -> list[str]:
    return split_requirements(parse_frontmatter(source).get("requirements", ""))[0]


def implicit_requirements(source: str, declared: list[str] | None = None) -> list[Implicit]:
    """The Open WebUI packages a source needs and neither declares nor finds."""
    declared = declared_requirements(source) if declared is None else declared
    declared_names = {_name(text) for text in declared}
    table = packages_table()
    found: dict[str, Implicit] = {}
    from_names = _from_names(source)
    for module in imported_modules(source):
        if provided(module):
            continue
        if module in from_names and module not in table:
            continue  # `from x import name`: only a listed submodule counts
        requirement = _lookup(module, table)
        if requirement and _name(requirement) not in declared_names:
            found.setdefault(requirement, Implicit(module, requirement))
    return list(found.values())


def packages_table() -> dict[str, str]:
    """Open WebUI's table, with the site's own additions (FNPLATFORM_IMPLICIT_REQUIREMENTS;
    an empty value turns a module's entry off)."""
    return OPEN_WEBUI_PACKAGES | dict(settings.FUNCTIONS_IMPLICIT_REQUIREMENTS)


def _lookup(module: str, table: dict[str, str]) -> str | None:
    """The entry for the module or its nearest listed parent (`google.genai.types`)."""
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        requirement = table.get(".".join(parts[:end]))
        if requirement is not None:
            return requirement or None
    return None


def _name(requirement: str) -> str:
    try:
        return canonicalize_name(Requirement(requirement).name)
    except InvalidRequirement:
        return requirement


def imported_modules(source: str) -> list[str]:
    """Absolute module names a source imports anywhere, except optional imports; for
    `from x import y`, both x and x.y (y may be a submodule: `from google import genai`)."""
    names: list[str] = []
    _collect(_parse(source), names)
    return list(dict.fromkeys(names))


@functools.lru_cache(maxsize=64)
def _parse(source: str) -> ast.AST:
    try:
        return ast.parse(source.lstrip("\ufeff"))
    except SyntaxError:
        return ast.Module(body=[], type_ignores=[])  # the check reports it


def _from_names(source: str) -> set[str]:
    """The x.y names that `from x import y` adds, which may or may not be modules."""
    return {
        f"{node.module}.{alias.name}"
        for node in ast.walk(_parse(source))
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module
        for alias in node.names
    }


def _collect(node: ast.AST, names: list[str]) -> None:
    if isinstance(node, ast.Try) and _optional(node):
        for child in (*node.orelse, *node.finalbody):
            _collect(child, names)
        return
    if isinstance(node, ast.If) and _type_checking(node.test):
        return
    if isinstance(node, ast.Import):
        names += [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
        names.append(node.module)
        names += [f"{node.module}.{alias.name}" for alias in node.names if alias.name != "*"]
    for child in ast.iter_child_nodes(node):
        _collect(child, names)


def _optional(node: ast.Try) -> bool:
    """A try whose handlers catch a failed import: what it imports is optional."""
    for handler in node.handlers:
        if handler.type is None:
            return True
        caught = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
        if any(_simple_name(kind) in _OPTIONAL_ERRORS for kind in caught):
            return True
    return False


def _simple_name(node: ast.AST) -> str:
    if isinstance(node, ast.Attribute):
        return node.attr
    return node.id if isinstance(node, ast.Name) else ""


def _type_checking(test: ast.AST) -> bool:
    return _simple_name(test) == "TYPE_CHECKING"


def provided(module: str) -> bool:
    """Whether plugin code can import the module without an environment of its own."""
    top = module.split(".")[0]
    if top in sys.stdlib_module_names or top == ROOT or top in LEGACY_TOP_LEVEL:
        return True
    return _present(module, tuple(plugin_env.paths()))


@functools.lru_cache(maxsize=1024)
def _present(module: str, paths: tuple[str, ...]) -> bool:
    """A module (or its package) file under one of the site dirs; namespace packages
    such as `google` are followed down to the named submodule."""
    *parents, last = module.split(".")
    for site in paths:
        folder = Path(site, *parents)
        if (folder / last).is_dir() or (folder / f"{last}.py").is_file():
            return True
        if folder.is_dir() and any(folder.glob(f"{last}.*.so")):
            return True
    return False
