"""How artifacts are written (atomically, keyed by their parameters) and how stale ones are
found."""
