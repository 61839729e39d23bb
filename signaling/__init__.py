"""Video consults: the consult lifecycle and its consent rules, the signaling protocol's codec,
and TURN credentials. Pure domain: no aiohttp here (see docs/signaling.md)."""
