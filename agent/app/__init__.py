"""The running agent: its loop and wiring (runner), configuration (config), the `run`/`status` commands (commands), operations endpoints (ops) and logging (logs)."""
