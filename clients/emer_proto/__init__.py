"""Generated gRPC stubs for emer-serve (from emotion.proto; regenerate with `make protos`)."""
