"""The machinery every incident uses; the incidents are the other folders of repro/.

  hosts/      Host protocol and backends: docker, qemu/ (own kernel), ec2/ (with its
              janitor), ssh (existing machines), sshhost (the ssh base they share)
  faults/     injected faults (after Jepsen's nemesis), healed however a run ends
  probes/     observers from outside the host: heartbeat, kernel log
  capture/    packet captures and their analysis
  services/   what incidents stand up for their workload: git server, databases
  workloads/  steps run on a host under test: the checkout step
  report/     summary.md, results.json, junit.xml, index.html
  scaffold/   `repro new`
  spec, incidents, envelope, directions, history, checks, rules: the incident contract
  plugin, cli, config, cleanup, doctor, gate, images, run, names, procs: the harness
"""
