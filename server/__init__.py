"""wxgpt HTTP API, WebSocket endpoints, auth, presence and command line."""
