"""`mlsec train`'s parts: the work tree watched around the run, the environment recorded, the provenance.

The training command is the caller's repository code: it runs as a bounded child process (own process group,
scrubbed environment, time limit) and everything it leaves is judged after it exits. Reference: docs/train.md.
"""
