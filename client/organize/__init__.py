"""The organizer: sorts a music folder or a Spotify export into genre playlists through the
service. Built on the SDK at the top of ``client``; the SDK never imports it."""
