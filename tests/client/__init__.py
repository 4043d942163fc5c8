"""Tests of the client library and the genre-client CLI."""
