"""The executor's gRPC contract: generated stubs (``make protos``) and their conversion to models."""
