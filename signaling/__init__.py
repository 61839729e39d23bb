"""Video consult signaling: rooms, waiting room, protocol codec, TURN credentials (to come)."""
