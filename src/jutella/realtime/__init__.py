"""Real-time delivery: the sans-I/O protocol, the hub, the WebSocket endpoints
(connection.py, visitor.py, agent.py, coalesce.py)."""
