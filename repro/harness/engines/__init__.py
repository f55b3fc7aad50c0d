"""Adapters to engines people already run, each a thin layer over the shard contract.

The contract (repro.harness.shards, repro.harness.report.merge): `repro run --shard I/N
--run-id RUNID` runs a deterministic share of the reproductions and writes
`<reports>/RUNID.shard-I-of-N/` (with shard.json); `repro merge` joins the shard folders
of one run id into one report, red when a shard is missing. An engine only has to run
the N shards somewhere, bring their folders back and merge them:

  GitHub Actions  examples/github-actions/repro-nightly.yml (a matrix job per shard,
                  folders as artefacts, a merge job); no code here
  AWS Batch       repro.harness.engines.batch (`repro batch submit|status|collect`, an
                  array job of N children) and repro.harness.engines.batch_child (what
                  each child runs: its shard, then its folder to S3)

docs/engines.md says how to run each for real, and what was tested here.
"""
