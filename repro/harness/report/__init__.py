"""Reports: what a person reads first after a run (summary.md, results.json, junit.xml)."""
