"""The WVS executor: runs task ops against the workspace filesystem. It never touches the database."""
