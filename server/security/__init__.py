"""What a public server guards: request bodies, the origin of changes and of sockets, who may
open a WebSocket and how many, and single-use tickets for sockets opened by browsers."""
