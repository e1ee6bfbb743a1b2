"""The running agent: its loop (loop) and wiring (wiring), configuration (config), the
`run`/`status` commands (commands), operations endpoints (ops) and logging (logs)."""
