"""The browser's way in (``GENRE_HTTP_PORT``): a page that shows the streaming path live.

``site`` serves the page, its static files and ``/api/models``; ``bridge`` drives a WebSocket
through ``ClassifyAudioStream`` in-process; ``guard`` checks Origin and token; ``messages`` is the
WebSocket's JSON. The page itself is ``static/``: plain JavaScript, no build step, no CDN.
"""
