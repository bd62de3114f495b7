"""The gate: a policy over every stage's SARIF -> a verdict.

`policy` (the policy model and loader), `input` (the lean SARIF reader), `rules` (thresholds, metrics,
waivers, input checks), `engine` (the evaluation), `report` (JSON, markdown, SARIF). The CLI is
`stages/gate.py`. Nothing is imported here: `mlsec` start-up stays fast.
"""
