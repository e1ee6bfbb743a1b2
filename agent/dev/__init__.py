"""`python -m agent dev`: the run against the embedded ACK (run), the summary (summary), the live
view (live_view) and the HTML report (report)."""
