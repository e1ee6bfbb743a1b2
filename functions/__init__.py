"""The decision core: a pure, standard-library-only scale-out planner (decide/v1)."""
