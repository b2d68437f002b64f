"""The mini-program's chat: the /ws/chat socket, its protocol, replies and their history."""
