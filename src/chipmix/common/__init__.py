"""common: low-level helpers below every room: reading YAML files, formatting pydantic
validation errors (`files`), precision names and units (`units`). Imports nothing of
chipmix but `errors`."""
