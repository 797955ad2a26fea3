"""Entry point the Pulumi CLI runs (`python -m pulumi.policy` → runpy of this directory).

Only builds the PolicyPack: constructing it starts the analyzer's gRPC server and blocks, so
nothing else (tests included) may import this module. The policies live in policies.py.
"""

from pulumi_policy import EnforcementLevel, PolicyPack

from policies import PACK_NAME, POLICIES  # this directory is sys.path[0] under runpy

PolicyPack(name=PACK_NAME, enforcement_level=EnforcementLevel.MANDATORY, policies=POLICIES)
