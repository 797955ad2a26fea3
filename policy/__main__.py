"""Entry point the Pulumi CLI runs (`python -m pulumi.policy` → runpy of this directory).

Only builds the PolicyPack: constructing it starts the analyzer's gRPC server and blocks, so
nothing else (tests included) may import this module. The policies live in policies.py.

pulumi-policy 1.21.0's PolicyPack hard-codes version "0.0.1" for its analyzer, which then names the
pack `@v0.0.1` in its "can't run policy during preview" messages while the CLI reports
PulumiPolicy.yaml's version. The analyzer class is wrapped so that it gets PACK_VERSION (read from
PulumiPolicy.yaml): one version everywhere. tests/test_crossguard_wire.py checks it over gRPC.
"""

import sys

if __package__:  # `python -m policy` from the repository root: not how a pack runs
    print("policy/ is a CrossGuard policy pack, run by the Pulumi CLI, not by python:\n"
          "  pulumi preview --policy-pack policy --policy-pack-config policy/config.<stack>.json\n"
          "Offline, without the CLI: residency plan --stack <stack>, or residency audit --stack <stack> --export FILE",
          file=sys.stderr)
    sys.exit(2)

import pulumi_policy.policy as sdk  # noqa: E402
from pulumi_policy import EnforcementLevel, PolicyPack  # noqa: E402

from policies import PACK_NAME, PACK_VERSION, POLICIES  # noqa: E402  (this directory is sys.path[0] under runpy)


class _VersionedAnalyzer(sdk._PolicyAnalyzerServicer):
    def __init__(self, name, _sdk_version, *args, **kwargs):
        super().__init__(name, PACK_VERSION, *args, **kwargs)


sdk._PolicyAnalyzerServicer = _VersionedAnalyzer
PolicyPack(name=PACK_NAME, enforcement_level=EnforcementLevel.MANDATORY, policies=POLICIES)
