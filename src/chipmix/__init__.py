"""chipmix: plan transformer training across accelerator vendors."""
