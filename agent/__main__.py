"""`python -m agent`: the command line."""

from agent.cli import main

raise SystemExit(main())
