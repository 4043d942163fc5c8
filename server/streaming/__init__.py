"""Audio streams: reading messages off the wire, decoding PCM, cutting windows, the per-stream
session, and deciding whether a new stream may start (slots, capacity, lateness)."""
