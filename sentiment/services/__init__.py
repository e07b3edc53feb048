"""What the web layer and the CLI call: one service per concern."""
