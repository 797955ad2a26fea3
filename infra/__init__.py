"""ai-companion: per-geography AI stacks with residency policy as code.

`__version__` is the one version of the package (pyproject.toml reads it), of the SARIF the
audits write and of the CrossGuard pack (policy/PulumiPolicy.yaml must carry the same; a test
holds them together).
"""

__version__ = "1.1.0"
