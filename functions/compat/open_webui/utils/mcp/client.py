"""Mirrors open_webui.utils.mcp.client: `MCPClient`, which plugins build to talk to MCP
servers over streamable HTTP.

fnplatform has no MCP support yet (no MCP server connections, and not the MCP SDK
upstream uses), so the client can be built, and then every attempt to use it
raises MCPNotSupported saying so: a plugin that reaches an MCP path fails clearly
instead of carrying on with no tools. `disconnect()` is harmless, as upstream's is
on a client that never connected.
"""

from typing import Any

NOT_SUPPORTED = (
    "MCPClient.{}: fnplatform has no MCP support yet (it connects to no MCP servers), "
    "so this plugin's MCP tools are not available here"
)


class MCPNotSupported(RuntimeError):
    """Raised by every MCPClient operation: fnplatform has no MCP support yet."""


class MCPClient:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.session = None
        self.exit_stack = None

    def _refuse(self, operation: str):
        raise MCPNotSupported(NOT_SUPPORTED.format(operation))

    async def connect(self, url: str = "", headers: dict | None = None, *args: Any, **kwargs: Any):
        self._refuse("connect")

    async def list_tool_specs(self) -> Any:
        self._refuse("list_tool_specs")

    async def call_tool(self, function_name: str, function_args: dict) -> Any:
        self._refuse("call_tool")

    async def list_resources(self, cursor: str | None = None) -> Any:
        self._refuse("list_resources")

    async def read_resource(self, uri: str) -> Any:
        self._refuse("read_resource")

    async def disconnect(self) -> None:
        self.session = None
        self.exit_stack = None

    async def __aenter__(self):
        self._refuse("__aenter__")

    async def __aexit__(self, exc_type, exc_value, traceback) -> None:
        await self.disconnect()
