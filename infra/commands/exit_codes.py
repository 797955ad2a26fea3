"""The exit-code contract of every `residency` command, in one place (README, "Exit codes").

1 means findings or drift and nothing else; a fault while reading is 3 (not checked), never 1.
"""

EXIT_OK = 0
EXIT_FINDINGS = 1  # findings (plan, audit) or drift (models)
EXIT_BAD_INPUT = 2
EXIT_INCOMPLETE = 3  # something was not checked or not finished
EXIT_BUG = 4  # an unexpected exception: a bug in residency
EXIT_INTERRUPTED = 130
