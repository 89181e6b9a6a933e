"""The HTTP surfaces: the web board, the REST API with live streams, and MCP."""
