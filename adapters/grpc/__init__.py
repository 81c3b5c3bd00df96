"""gRPC adapter: the contract in protos/, generated code in gen/, the servicers, the server,
the error table, a window client and its commands."""
