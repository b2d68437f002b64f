"""The operator's console: admin sessions, the admin API and the built single-page app."""
