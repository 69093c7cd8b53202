"""fnplatform's stand-in for the `open_webui` package, as seen by plugin code.

Only what plugins import is provided, module by module, mirroring Open WebUI's
layout. Modules inside this package import each other relatively, because the
package is reachable both as `open_webui` (through the plugin import finder)
and as `functions.compat.open_webui` (in tests and server code).
"""

# The plugin contract version we implement (see docs spec), not fnplatform's own version.
__version__ = "0.11.0"
