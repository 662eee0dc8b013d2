"""The HTTP routes, one Chalice blueprint per area. Each route parses its input, calls
one service verb and serialises the answer; the services live outside ``chalicelib.api``."""
