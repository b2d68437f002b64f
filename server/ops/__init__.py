"""Keeping it running: presence of sockets, the ops panel, metrics and health."""
