"""From a snapshot to a reply: the decide/v1 request builder and the deciders (in-process, Function
Compute SDK, HTTP trigger)."""
