"""Evaluation: metrics, data-set readers, runners and the `python -m core eval` command.

Runners live in `core.evaluation.run` and load models only when called; importing this
package stays cheap so the CLI can register `eval` without slowing other commands.
"""
