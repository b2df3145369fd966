"""Cross-node transport: the wire format and secured ZeroMQ sockets."""
