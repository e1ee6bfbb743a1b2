"""decide/v1: validation into values (validate, model), what fits where (feasibility), the choice
per group (strategy, packing, plan, and carry: what one pass of the plan hands the next), the
reply and its reasons (reply, explain), and the decision that ties them."""
