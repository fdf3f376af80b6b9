"""The practice console (ASGI): server-rendered pages and plain forms over `app/`."""
