"""Pulumi entry point: the program lives in stacks/."""

from stacks.program import main

main()
