"""scale-in/v1: validation, model, assessment, drain search, selection, reply, and the decision
that ties them."""
