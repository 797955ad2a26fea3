"""The offline harness: runs the Pulumi program (infra/program) under Pulumi's mocks and hands the
result to the residency engine's model (infra/engine). It stands above both, so neither imports it.
"""
